//! `/healthz`: one JSON document saying whether the daemon is ok, degraded or failing,
//! and why, for the daemon and for each source; plus the gauges `/metrics` refreshes
//! on each scrape (labelled by source and integration).

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sync_engine::{Engine, SchemaState, Sources};

use crate::replica::ReplicaHealth;
use crate::state::AppState;

/// A failed commit keeps health `failing` this long (unless another fails meanwhile).
pub const STORE_FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Queued work older than this makes the daemon `degraded`.
pub const STUCK_QUEUE_AFTER: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Degraded,
    Failing,
    /// After SIGTERM, for `server.drain_seconds`: webhooks are still taken but the replica
    /// leaves the load balancer (503).
    Draining,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    pub status: Status,
    pub version: String,
    /// Why the status is not `ok`, one sentence each.
    pub reasons: Vec<String>,
    pub queue: QueueHealth,
    pub reconcile: ReconcileHealth,
    pub notion: NotionHealth,
    pub webhook: WebhookHealth,
    pub mirror: MirrorHealth,
    #[serde(default)]
    pub bulk_reads: BulkReadHealth,
    /// Each source on its own (the top-level `reconcile`, `notion` and `bulk_reads` are
    /// the first source's; `queue` and `mirror` count every source).
    #[serde(default)]
    pub sources: Vec<SourceHealth>,
    /// This replica among the others on the database (on SQLite it always leads).
    #[serde(default)]
    pub replica: ReplicaHealth,
}

/// One source's health.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceHealth {
    pub name: String,
    pub integration: String,
    pub status: Status,
    pub reasons: Vec<String>,
    pub queue: QueueHealth,
    pub reconcile: ReconcileHealth,
    pub notion: NotionHealth,
    pub bulk_reads: BulkReadHealth,
    pub pages: u64,
}

/// One integration's webhook endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IntegrationWebhookHealth {
    pub name: String,
    pub path: String,
    pub secret_configured: bool,
    pub pending_tokens: usize,
}

/// Bursts of property reads answered by query instead of a GET each.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BulkReadHealth {
    /// Pending reads of one edit from which a query answers them (0: off).
    pub threshold: usize,
    /// Bursts in progress: data source, jobs taken, answered, sent back, queries.
    pub active: Vec<serde_json::Value>,
    /// The last burst that ended.
    pub last: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueueHealth {
    pub queued: u64,
    pub queued_interactive: u64,
    pub queued_bulk: u64,
    pub running: u64,
    pub dead: u64,
    pub oldest_queued_age_s: Option<f64>,
    pub leases_expired_total: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReconcileHealth {
    pub last_success_at: Option<String>,
    pub watermark: Option<String>,
    pub watermark_lag_s: Option<i64>,
    pub last_error: Option<String>,
    /// The pass running now, with its progress (a first sync shows how far it got).
    pub running: Option<serde_json::Value>,
    /// Every mirrored data source with its own watermark.
    #[serde(default)]
    pub data_sources: Vec<DataSourceHealth>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DataSourceHealth {
    pub id: String,
    pub watermark: Option<String>,
    pub watermark_lag_s: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NotionHealth {
    pub requests_total: u64,
    pub rate_limited_total: u64,
    pub paused_until: Option<String>,
    pub current_rate: f64,
    pub configured_rate: f64,
    pub schema: String,
    pub schema_problems: Vec<String>,
    pub auth_error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WebhookHealth {
    pub last_event_at: Option<String>,
    /// Every integration has its secret.
    pub secret_configured: bool,
    pub pending_tokens: usize,
    #[serde(default)]
    pub integrations: Vec<IntegrationWebhookHealth>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MirrorHealth {
    pub pages: u64,
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Why the daemon is not `ok`, gathered part by part.
#[derive(Default)]
struct Findings {
    reasons: Vec<String>,
    failing: bool,
    /// Draining after SIGTERM (503 unless failing anyway).
    draining: bool,
}

impl Findings {
    /// Something is wrong but the daemon works: `degraded`.
    fn degraded(&mut self, reason: String) {
        self.reasons.push(reason);
    }

    /// The daemon cannot do its job: `failing` (503).
    fn failing(&mut self, reason: String) {
        self.failing = true;
        self.reasons.push(reason);
    }

    fn status(&self) -> Status {
        if self.failing {
            Status::Failing
        } else if self.draining {
            Status::Draining
        } else if self.reasons.is_empty() {
            Status::Ok
        } else {
            Status::Degraded
        }
    }
}

/// Gathers the health document; `secrets` says, per integration, whether its webhook
/// secret is set. Store failures make it `failing`, as does any source failing.
pub async fn collect(
    sources: &Sources,
    secrets: &[(String, bool)],
    intake: Intake,
    replica: ReplicaHealth,
) -> Health {
    let mut f = Findings::default();
    let store_stats = sources.store().queue_stats().await;
    let queue = queue_health(store_stats, &mut f);
    for engine in sources.all() {
        // A commit failed lately (webhooks answered 503): failing for a while after it.
        if let Some((ago, e)) = engine
            .status()
            .recent_store_write_failure(STORE_FAILURE_WINDOW)
        {
            f.failing(format!(
                "storage could not commit {} s ago (webhooks get 503): {e}",
                ago.as_secs()
            ));
            break;
        }
    }
    let webhook = webhook_health(sources.first(), secrets, &mut f).await;
    let mirror = MirrorHealth {
        pages: sources.store().page_count().await.unwrap_or(0),
    };
    match intake {
        Intake::Open => {}
        Intake::Draining => f.draining = true,
        Intake::Closed => f.failing("shutting down".into()),
    }
    let several = sources.all().len() > 1;
    let mut each = Vec::new();
    for engine in sources.all() {
        let one = source_health(engine).await;
        for r in &one.reasons {
            let r = if several {
                format!("source {}: {r}", one.name)
            } else {
                r.clone()
            };
            match one.status {
                Status::Failing => f.failing(r),
                _ => f.degraded(r),
            }
        }
        each.push(one);
    }
    let first = &each[0];
    Health {
        status: f.status(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        reasons: f.reasons,
        queue,
        reconcile: first.reconcile.clone(),
        notion: first.notion.clone(),
        webhook,
        mirror,
        bulk_reads: first.bulk_reads.clone(),
        sources: each,
        replica,
    }
}

/// Whether webhooks are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    Open,
    /// After SIGTERM, before intake closes.
    Draining,
    Closed,
}

impl Intake {
    pub fn of(app: &AppState) -> Intake {
        if !app.accepting.load(Ordering::Acquire) {
            Intake::Closed
        } else if app.draining.load(Ordering::Acquire) {
            Intake::Draining
        } else {
            Intake::Open
        }
    }
}

/// One source: its queue, passes, Notion budget and schema, bulk reads, mirror rows.
async fn source_health(engine: &Engine) -> SourceHealth {
    let mut f = Findings::default();
    let queue = match engine.store().source_queue_stats().await {
        Ok(s) => queue_figures(&s),
        Err(e) => {
            f.failing(format!("store unavailable: {e}"));
            QueueHealth::default()
        }
    };
    let reconcile = reconcile_health(engine, &mut f).await;
    let notion = notion_health(engine, &mut f);
    let bulk = engine.status().bulk();
    let bulk_reads = BulkReadHealth {
        threshold: engine.config().workers.bulk_read_threshold,
        active: bulk
            .active
            .values()
            .filter_map(|b| serde_json::to_value(b).ok())
            .collect(),
        last: bulk.last.and_then(|b| serde_json::to_value(b).ok()),
    };
    SourceHealth {
        name: engine.name().to_owned(),
        integration: engine.config().integration.clone(),
        status: f.status(),
        reasons: f.reasons,
        queue,
        reconcile,
        notion,
        bulk_reads,
        pages: engine.store().source_page_count().await.unwrap_or(0),
    }
}

fn queue_figures(s: &sync_store::QueueStats) -> QueueHealth {
    QueueHealth {
        queued: s.queued_interactive + s.queued_bulk,
        queued_interactive: s.queued_interactive,
        queued_bulk: s.queued_bulk,
        running: s.running,
        dead: s.dead,
        oldest_queued_age_s: s.oldest_queued_age.map(|d| d.as_secs_f64()),
        leases_expired_total: s.leases_expired_total,
    }
}

fn queue_health(
    stats: Result<sync_store::QueueStats, sync_store::StoreError>,
    f: &mut Findings,
) -> QueueHealth {
    let queue = match stats {
        Ok(s) => queue_figures(&s),
        Err(e) => {
            f.failing(format!("store unavailable: {e}"));
            QueueHealth::default()
        }
    };
    if queue.dead > 0 {
        f.degraded(format!(
            "{} dead job(s): see `notion-sync jobs list --state dead`",
            queue.dead
        ));
    }
    if let Some(age) = queue
        .oldest_queued_age_s
        .filter(|a| *a > STUCK_QUEUE_AFTER.as_secs_f64())
    {
        f.degraded(format!("oldest queued job is {age:.0} s old"));
    }
    queue
}

async fn reconcile_health(engine: &Engine, f: &mut Findings) -> ReconcileHealth {
    let now = engine.now();
    let rec = engine.status().reconcile();
    let data_sources: Vec<DataSourceHealth> = match engine.watermarks().await {
        Ok(w) => w
            .into_iter()
            .map(|(ds, w)| DataSourceHealth {
                id: ds.to_string(),
                watermark: w.map(iso),
                watermark_lag_s: w.map(|w| (now - w).num_seconds()),
            })
            .collect(),
        Err(e) => {
            f.failing(format!("store unavailable: {e}"));
            Vec::new()
        }
    };
    if let Some(e) = &rec.last_error {
        f.degraded(format!("last reconcile pass failed: {e}"));
    }
    // The headline watermark is the one furthest behind.
    let behind = data_sources
        .iter()
        .filter(|d| d.watermark.is_some())
        .max_by_key(|d| d.watermark_lag_s);
    ReconcileHealth {
        last_success_at: rec.last_success_at.map(iso),
        watermark: behind.and_then(|d| d.watermark.clone()),
        watermark_lag_s: behind.and_then(|d| d.watermark_lag_s),
        last_error: rec.last_error.clone(),
        running: rec
            .running
            .as_ref()
            .and_then(|p| serde_json::to_value(p).ok()),
        data_sources,
    }
}

fn notion_health(engine: &Engine, f: &mut Findings) -> NotionHealth {
    let client = engine.client();
    let stats = client.stats();
    let pacer = client.pacer().snapshot();
    let schema = engine.status().schema();
    let schema_problems = match &schema {
        SchemaState::Drift(p) => p.clone(),
        _ => Vec::new(),
    };
    for p in &schema_problems {
        f.degraded(format!("schema drift (task writes paused): {p}"));
    }
    let auth_error = engine.status().auth_error();
    if let Some(e) = &auth_error {
        f.failing(format!("Notion rejected the token: {e}"));
    }
    if let Some(p) = pacer.paused_for {
        f.degraded(format!(
            "Notion rate limit: paused for {:.0} s",
            p.as_secs_f64()
        ));
    }
    NotionHealth {
        requests_total: stats.requests_total,
        rate_limited_total: stats.rate_limited_total,
        paused_until: pacer
            .paused_for
            .and_then(|d| chrono::TimeDelta::from_std(d).ok())
            .map(|d| iso(engine.now() + d)),
        current_rate: pacer.current_rate,
        configured_rate: pacer.configured_rate,
        schema: schema.label().to_owned(),
        schema_problems,
        auth_error,
    }
}

async fn webhook_health(
    engine: &Engine,
    secrets: &[(String, bool)],
    f: &mut Findings,
) -> WebhookHealth {
    let store = engine.store();
    let tokens = store.verification_tokens().await.unwrap_or_default();
    let one = secrets.len() == 1;
    let mut integrations = Vec::new();
    for (name, set) in secrets {
        if !set {
            f.degraded(format!(
                "{} is not set: signed webhooks are refused (run `notion-sync webhook tokens`)",
                crate::config::secret_var("NOTION_WEBHOOK_SECRET", name)
            ));
        }
        integrations.push(IntegrationWebhookHealth {
            name: name.clone(),
            path: if one {
                "/webhooks/notion".to_owned()
            } else {
                format!("/webhooks/notion/{name}")
            },
            secret_configured: *set,
            pending_tokens: tokens.iter().filter(|t| &t.integration == name).count(),
        });
    }
    WebhookHealth {
        last_event_at: store.last_event_at().await.ok().flatten().map(iso),
        secret_configured: secrets.iter().all(|(_, set)| *set),
        pending_tokens: tokens.len(),
        integrations,
    }
}

/// Whether each integration's webhook secret is set, in order of first use.
pub fn secrets_configured(app: &AppState) -> Vec<(String, bool)> {
    app.endpoints
        .iter()
        .map(|e| (e.integration.clone(), e.secret.is_set()))
        .collect()
}

/// `GET /healthz`: 200 for ok/degraded, 503 for failing.
pub async fn healthz(State(app): State<AppState>) -> Response {
    let health = collect(
        &app.sources,
        &secrets_configured(&app),
        Intake::of(&app),
        app.replica.health(),
    )
    .await;
    let code = match health.status {
        Status::Ok | Status::Degraded => StatusCode::OK,
        Status::Failing | Status::Draining => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, axum::Json(health)).into_response()
}

/// Sets the queue, mirror and pacer gauges from current state, per source (and per
/// integration for the pacer).
pub async fn refresh_gauges(sources: &Sources) {
    let store = sources.store();
    metrics::counter!("store_write_conflicts_total").absolute(store.write_stats().conflicts);
    if let Ok(Some(at)) = store.last_event_at().await {
        metrics::gauge!("webhook_last_event_timestamp_seconds").set(at.timestamp() as f64);
    }
    let mut failing = false;
    for engine in sources.all() {
        let source = engine.name().to_owned();
        let store = engine.store();
        if let Ok(s) = store.source_queue_stats().await {
            let gauge = |state: &'static str, lane: &'static str, v: u64| {
                metrics::gauge!("queue_jobs", "state" => state, "lane" => lane, "source" => source.clone())
                    .set(v as f64);
            };
            gauge("queued", "interactive", s.queued_interactive);
            gauge("queued", "bulk", s.queued_bulk);
            gauge("running", "any", s.running);
            gauge("dead", "any", s.dead);
            metrics::gauge!("queue_oldest_queued_age_seconds", "source" => source.clone())
                .set(s.oldest_queued_age.map_or(0.0, |d| d.as_secs_f64()));
        }
        if let Ok(n) = store.source_page_count().await {
            metrics::gauge!("mirror_pages", "source" => source.clone()).set(n as f64);
        }
        let status = engine.status();
        metrics::gauge!("notion_token_rejected", "source" => source.clone())
            .set(f64::from(u8::from(status.auth_error().is_some())));
        failing |= status
            .recent_store_write_failure(STORE_FAILURE_WINDOW)
            .is_some();
    }
    metrics::gauge!("store_write_failing").set(f64::from(u8::from(failing)));
    let mut seen = Vec::new();
    for engine in sources.all() {
        let pacer = engine.client().pacer();
        if seen.contains(&pacer.name().to_owned()) {
            continue;
        }
        seen.push(pacer.name().to_owned());
        let integration = pacer.name().to_owned();
        let snap = pacer.snapshot();
        metrics::gauge!("notion_pacer_rate", "integration" => integration.clone())
            .set(snap.current_rate);
        metrics::gauge!("notion_pacer_waiters", "lane" => "interactive", "integration" => integration.clone())
            .set(snap.waiters_interactive as f64);
        metrics::gauge!("notion_pacer_waiters", "lane" => "bulk", "integration" => integration)
            .set(snap.waiters_bulk as f64);
    }
}
