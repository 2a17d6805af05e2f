//! The demo's numbers and its screen: the initial sync shown as what it is (progress
//! and an ETA at the rate limit, with the reason it takes that long), then steady-state
//! freshness, for the whole mirror and for each source (one of them under a 429 storm).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use notion_sim::SimHandle;
use sync_engine::{Source, Sources};

use super::budget::{DAEMON_RATE, SOURCES};
use super::storm::StormState;

/// The mirror against the simulated workspace: cheap enough to take every [`SAMPLE`]
/// (one mirror read per live task, one queue count).
pub(super) struct MirrorCheck {
    /// Live (not trashed, shared) tasks in the simulated workspace.
    pub sim_pages: usize,
    /// Live tasks with a mirror row.
    pub present: usize,
    /// Live tasks whose body has been read at least once.
    pub bodies_read: usize,
    /// Live tasks whose row equals Notion's (title, status, body).
    pub in_sync: usize,
    /// Seconds since the oldest change not yet mirrored, counted from `since`.
    pub oldest_unsynced_s: Option<i64>,
    /// Live tasks whose row differs from Notion.
    pub unsynced: Vec<String>,
    /// Bulk jobs queued (the first sync's body reads, reconcile re-checks).
    pub queued_bulk: u64,
    /// Whether every source's reconcile pass has completed (the first reads every task).
    pub first_pass_done: bool,
    /// Each source's tasks that differ (its part of `unsynced`), by source name.
    pub unsynced_by_source: BTreeMap<String, Vec<String>>,
    /// Each source's live tasks and those identical to Notion, by source name.
    pub per_source: BTreeMap<String, (usize, usize)>,
}

/// One source's line on the screen.
pub(super) struct SourceLine {
    pub name: String,
    pub integration: String,
    /// Requests its integration sent.
    pub requests: usize,
    pub rate_limited: u64,
    /// Its integration's pacer is paused (a 429 said so).
    pub paused: bool,
}

/// One status screen's worth of numbers: the mirror check and the rest of the daemon.
pub(super) struct Snapshot {
    pub mirror: MirrorCheck,
    pub queued: u64,
    pub running: u64,
    pub dead: u64,
    pub requests: usize,
    /// Requests/s over the last few seconds (set by the caller).
    pub rate: f64,
    pub rate_limited: u64,
    pub mirror_pages: u64,
    pub overdue_marked: usize,
    pub reconcile: String,
    pub health: String,
    pub sources: Vec<SourceLine>,
    /// A 429 storm is raging on the second integration now.
    pub storm: bool,
}

impl MirrorCheck {
    /// Compares every live task with its mirror row. Unmirrored changes count from
    /// `since` at the earliest (before it, a change is initial-sync backlog).
    pub(super) async fn take(
        sources: &Sources,
        sim: &SimHandle,
        since: chrono::DateTime<chrono::Utc>,
    ) -> MirrorCheck {
        let store = sources.store();
        let owner: BTreeMap<String, String> = sources
            .all()
            .iter()
            .filter_map(|e| match e.config().source {
                Source::DataSource(ds) => Some((ds.to_string(), e.name().to_owned())),
                Source::Database(_) => None,
            })
            .collect();
        let mut unsynced_by_source: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut per_source: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let pages = sim.pages();
        let now = sim.now();
        let (mut in_sync, mut present, mut bodies_read) = (0, 0, 0);
        let mut oldest: Option<i64> = None;
        let mut unsynced = Vec::new();
        let live: Vec<_> = pages.iter().filter(|p| !p.in_trash && p.shared).collect();
        for p in &live {
            let Ok(id) = notion_api::NotionId::parse(&p.id) else {
                continue;
            };
            let row = store
                .get_page(&id)
                .await
                .ok()
                .flatten()
                .filter(|r| !r.in_trash);
            present += usize::from(row.is_some());
            bodies_read += usize::from(row.as_ref().is_some_and(|r| r.body_markdown.is_some()));
            let synced = row.is_some_and(|row| {
                row.title == p.title
                    && row.status == p.status
                    && row.body_markdown.as_deref() == Some(p.markdown.as_str())
            });
            let source = owner.get(&p.data_source_id).cloned().unwrap_or_default();
            let counts = per_source.entry(source.clone()).or_default();
            counts.0 += 1;
            if synced {
                in_sync += 1;
                counts.1 += 1;
            } else {
                unsynced.push(p.id.clone());
                unsynced_by_source
                    .entry(source)
                    .or_default()
                    .push(p.id.clone());
                let age = (now - p.last_edited_time.max(since)).num_seconds().max(0);
                oldest = Some(oldest.map_or(age, |o: i64| o.max(age)));
            }
        }
        MirrorCheck {
            sim_pages: live.len(),
            present,
            bodies_read,
            in_sync,
            oldest_unsynced_s: oldest,
            unsynced,
            queued_bulk: store.queue_stats().await.map_or(0, |s| s.queued_bulk),
            first_pass_done: sources
                .all()
                .iter()
                .all(|e| e.status().reconcile().last_summary.is_some()),
            unsynced_by_source,
            per_source,
        }
    }

    /// Whether the first sync's work is done: a pass has read every task, and every
    /// body has been read or the body reads it queued are drained (tasks created since
    /// may still be on their way).
    pub(super) fn initial_sync_done(&self) -> bool {
        self.first_pass_done && (self.bodies_read >= self.sim_pages || self.queued_bulk == 0)
    }

    /// Requests the first sync still needs (a query returns 100 pages; a body is one
    /// request) and the time they take at the daemon's rate, every integration reading
    /// its own source at once.
    fn eta(&self) -> (usize, Duration) {
        let pages = self.sim_pages.saturating_sub(self.present).div_ceil(100);
        let bodies = self.sim_pages.saturating_sub(self.bodies_read);
        let requests = pages + bodies;
        (
            requests,
            Duration::from_secs_f64(requests as f64 / self.budget()),
        )
    }

    /// Requests/s of all integrations together.
    fn budget(&self) -> f64 {
        DAEMON_RATE * self.per_source.len().max(1) as f64
    }
}

impl Snapshot {
    /// Reads the rest of the daemon beside a mirror check (for the screen).
    pub(super) async fn take(
        sources: &Sources,
        sim: &SimHandle,
        storm: &StormState,
        mirror: MirrorCheck,
    ) -> Snapshot {
        let engine = sources.first();
        let store = engine.store();
        let stats = store.queue_stats().await.ok();
        let reconcile = sources
            .all()
            .iter()
            .map(|e| {
                let rec = e.status().reconcile();
                let what = match (&rec.running, &rec.last_summary) {
                    (Some(p), _) => {
                        format!("{} pass running: {} pages seen", p.kind, p.pages_seen)
                    }
                    (None, Some(s)) => format!(
                        "last {} pass: {} pages, {} bodies, {} overdue marked",
                        s.kind, s.pages_seen, s.bodies_queued, s.overdue_marked
                    ),
                    (None, None) => "no pass yet".into(),
                };
                format!("{}: {what}", e.name())
            })
            .collect::<Vec<_>>()
            .join("; ");
        let log = sim.request_log();
        let lines: Vec<SourceLine> = sources
            .all()
            .iter()
            .map(|e| {
                let index = SOURCES
                    .iter()
                    .find(|(name, _)| *name == e.config().integration)
                    .map(|(_, i)| *i);
                let client = e.client();
                SourceLine {
                    name: e.name().to_owned(),
                    integration: e.config().integration.clone(),
                    requests: log
                        .iter()
                        .filter(|r| index.is_some() && r.integration == index)
                        .count(),
                    rate_limited: client.stats().rate_limited_total,
                    paused: client.pacer().snapshot().paused_for.is_some(),
                }
            })
            .collect();
        let secrets: Vec<(String, bool)> = sources
            .all()
            .iter()
            .map(|e| (e.config().integration.clone(), true))
            .collect();
        let health = crate::health::collect(
            sources,
            &secrets,
            crate::health::Intake::Open,
            crate::replica::ReplicaHealth::default(),
        )
        .await;
        Snapshot {
            mirror,
            queued: stats
                .as_ref()
                .map_or(0, |s| s.queued_interactive + s.queued_bulk),
            running: stats.as_ref().map_or(0, |s| s.running),
            dead: stats.as_ref().map_or(0, |s| s.dead),
            requests: log.len(),
            rate: 0.0,
            rate_limited: lines.iter().map(|l| l.rate_limited).sum(),
            mirror_pages: store.page_count().await.unwrap_or(0),
            overdue_marked: store.transitions(None).await.map(|t| t.len()).unwrap_or(0),
            reconcile,
            health: format!("{:?}", health.status).to_lowercase(),
            sources: lines,
            storm: storm.raging.load(Ordering::Relaxed),
        }
    }

    /// One line per source: its tasks, freshness, requests and whether its integration is
    /// paused by a 429.
    fn source_lines(&self, by_source: &BTreeMap<String, Freshness>) -> Vec<String> {
        self.sources
            .iter()
            .map(|s| {
                let (live, same) = self
                    .mirror
                    .per_source
                    .get(&s.name)
                    .copied()
                    .unwrap_or_default();
                let fresh = by_source
                    .get(&s.name)
                    .and_then(|f| f.quantile(0.5).map(|p50| (p50, f.count())))
                    .map_or_else(
                        || "no change measured yet".to_owned(),
                        |(p50, n)| format!("edit → mirror p50 {} ({n} changes)", show(p50.as_secs_f64())),
                    );
                let state = match (s.paused, self.storm && s.integration == SOURCES[1].0) {
                    (true, _) => "PAUSED: Notion answered 429, waiting for Retry-After",
                    (false, true) => "429 storm raging on this integration",
                    (false, false) => "pacing normally",
                };
                format!(
                    "source {:<7} {same}/{live} identical; {fresh}; integration {}: {} requests, {} rate-limited, {state}",
                    s.name, s.integration, s.requests, s.rate_limited
                )
            })
            .collect()
    }

    /// The lines about the mirror: progress during the first sync, freshness after it.
    fn progress_lines(&self, freshness: &Freshness) -> Vec<String> {
        let m = &self.mirror;
        if !m.initial_sync_done() {
            let (left, eta) = m.eta();
            let done = m.bodies_read.min(m.sim_pages);
            let width = 30;
            let filled = (done * width).checked_div(m.sim_pages).unwrap_or(0);
            vec![
                format!(
                    "initial sync  [{}{}] pages {}/{}, bodies {}/{}, ~{left} requests left, ETA ~{} s",
                    "#".repeat(filled),
                    ".".repeat(width - filled),
                    m.present.min(m.sim_pages),
                    m.sim_pages,
                    done,
                    m.sim_pages,
                    eta.as_secs()
                ),
                format!(
                    "              why: Notion allows about 3 requests/s per integration; the first sync reads all {} bodies once ({} s: {} integrations at {DAEMON_RATE:.1} req/s each), then each change costs about one request",
                    m.sim_pages,
                    (m.sim_pages as f64 / m.budget()).round(),
                    m.per_source.len().max(1)
                ),
            ]
        } else {
            let oldest = match m.oldest_unsynced_s {
                None => "every change mirrored".to_owned(),
                Some(s) => format!("oldest unmirrored change {s} s old"),
            };
            vec![
                format!(
                    "mirror        {} pages; {}/{} tasks identical to Notion",
                    self.mirror_pages, m.in_sync, m.sim_pages
                ),
                format!("freshness     {}; {oldest}", freshness.describe()),
            ]
        }
    }

    pub(super) fn print(
        &self,
        terminal: bool,
        elapsed: Duration,
        freshness: &Freshness,
        by_source: &BTreeMap<String, Freshness>,
    ) {
        let lines = self.progress_lines(freshness);
        let sources = self.source_lines(by_source);
        if terminal {
            let mut out = std::io::stdout().lock();
            let _ = write!(
                out,
                "\x1b[2J\x1b[H notion-sync demo — {:>4} s   health: {}   (Ctrl-C to stop)\n\n",
                elapsed.as_secs(),
                self.health
            );
            for line in lines.iter().chain(&sources) {
                let _ = writeln!(out, "  {line}");
            }
            let _ = write!(
                out,
                "  queue         {} queued, {} running, {} dead\n\
                 \x20 Notion        {:.1} req/s (budget {DAEMON_RATE:.1} per integration), {} requests, {} rate-limited\n\
                 \x20 overdue       {} tasks marked\n\
                 \x20 reconciler    {}\n",
                self.queued,
                self.running,
                self.dead,
                self.rate,
                self.requests,
                self.rate_limited,
                self.overdue_marked,
                self.reconcile
            );
            let _ = out.flush();
        } else {
            for line in &sources {
                println!("t={}s {line}", elapsed.as_secs());
            }
            println!(
                "t={}s health={} {} queue={}/{}/{} req_rate={:.1}/s requests={} rate_limited={} overdue_marked={} reconcile=\"{}\"",
                elapsed.as_secs(),
                self.health,
                lines
                    .first()
                    .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                    .unwrap_or_default(),
                self.queued,
                self.running,
                self.dead,
                self.rate,
                self.requests,
                self.rate_limited,
                self.overdue_marked,
                self.reconcile
            );
        }
    }
}

/// Edit → mirror freshness as a user sees it: the demo samples the workspace and the
/// mirror every [`SAMPLE`]; a task that differs is timed from the first sample that saw
/// it differ to the first that sees it equal again (so the figures are ± one sample).
/// Only changes after the first sync count.
#[derive(Debug, Default)]
pub(super) struct Freshness {
    /// Set by [`Freshness::start`]: before it nothing is measured.
    started: bool,
    pending: std::collections::HashMap<String, std::time::Instant>,
    lags: Vec<Duration>,
}

/// How often the demo samples (the resolution of [`Freshness`]).
pub(super) const SAMPLE: Duration = Duration::from_millis(250);

impl Freshness {
    /// Takes one sample: the tasks that differ from Notion now.
    pub(super) fn observe(&mut self, unsynced: &[String]) {
        if !self.started {
            return;
        }
        let now = std::time::Instant::now();
        let differ: std::collections::HashSet<&String> = unsynced.iter().collect();
        let lags = &mut self.lags;
        self.pending.retain(|id, since| {
            let still = differ.contains(id);
            if !still {
                lags.push(now - *since);
            }
            still
        });
        for id in unsynced {
            self.pending.entry(id.clone()).or_insert(now);
        }
    }

    /// Forgets what differs now (the first sync's backlog is not a stale change).
    pub(super) fn start(&mut self, unsynced: &[String]) {
        self.started = true;
        let now = std::time::Instant::now();
        self.pending = unsynced.iter().map(|id| (id.clone(), now)).collect();
        self.lags.clear();
    }

    pub(super) fn count(&self) -> usize {
        self.lags.len()
    }

    /// The `q` quantile of the measured lags.
    pub(super) fn quantile(&self, q: f64) -> Option<Duration> {
        let mut v = self.lags.clone();
        v.sort();
        let last = v.len().checked_sub(1)?;
        Some(v[((last as f64) * q).round() as usize])
    }

    pub(super) fn describe(&self) -> String {
        match (self.quantile(0.5), self.quantile(0.95), self.quantile(1.0)) {
            (Some(p50), Some(p95), Some(max)) => format!(
                "edit → mirror p50 {}, p95 {}, max {} ({} changes, sampled every {} ms)",
                show(p50.as_secs_f64()),
                show(p95.as_secs_f64()),
                show(max.as_secs_f64()),
                self.count(),
                SAMPLE.as_millis()
            ),
            _ if !self.started => {
                "edit → mirror: measured once the first sync is done (not yet)".to_owned()
            }
            _ => "edit → mirror: no change since the first sync yet".to_owned(),
        }
    }
}

fn show(seconds: f64) -> String {
    if seconds.is_infinite() {
        "∞".into()
    } else if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1000.0)
    } else {
        format!("{seconds:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_timed_from_the_first_sample_that_saw_it() {
        let mut f = Freshness::default();
        f.observe(&["before the first sync".into()]);
        f.start(&["backlog".into()]);
        f.observe(&["a".into()]);
        std::thread::sleep(Duration::from_millis(20));
        f.observe(&["a".into()]);
        f.observe(&[]);
        assert_eq!(f.count(), 2, "the backlog task and a");
        assert!(f.quantile(1.0).unwrap() >= Duration::from_millis(20));
        assert!(Freshness::default().quantile(0.5).is_none());
    }
}
