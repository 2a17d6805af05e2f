//! The way people do this job today: a script that, every run, queries the whole data
//! source, then GETs each page and its Markdown body, sleeping 350 ms between requests;
//! no queue, no webhooks. Its own small reqwest loop (not notion-api), against a sim
//! workspace identical to the daemon's, driven by the same edit workload.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::stats::Summary;
use crate::support::{self, RouteCounts, Workload, notion_like};

#[derive(Debug, Clone)]
pub struct BaselineParams {
    pub pages: usize,
    pub rate: f64,
    pub sleep: Duration,
    pub workload: Workload,
}

#[derive(Debug, Clone, Serialize)]
pub struct BaselineResult {
    pub pages: usize,
    pub sleep_ms: f64,
    pub sim_rate_per_s: f64,
    /// Requests of one complete run (query pages + a page GET and a Markdown GET per page).
    pub requests_per_run: usize,
    /// Completed runs (none when every edit was seen within the first run).
    pub run_duration_s: Summary,
    /// `requests_per_run` at the achieved request rate.
    pub run_estimate_s: f64,
    pub runs_completed: usize,
    pub workload: Workload,
    pub synced: usize,
    pub freshness_ms: Summary,
    /// From the first edit until the script had seen the last one.
    pub window_s: f64,
    /// Requests in that window.
    pub requests: RouteCounts,
    pub requests_per_change: f64,
    pub achieved_per_s: f64,
    pub budget_share: f64,
    pub rate_limited_429: usize,
}

/// One page as the script last saw it.
struct Seen {
    page: String,
    title: String,
    at: Instant,
}

struct Script {
    http: reqwest::Client,
    base: String,
    token: String,
    data_source: String,
    sleep: Duration,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Requests a run makes: its queries plus two per page (known once it has queried).
    per_run: std::sync::atomic::AtomicUsize,
}

impl Script {
    /// One request, then the script's sleep; returns the answer and when it arrived. A 429
    /// waits `Retry-After` and tries again.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        version: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(Value, Instant)> {
        loop {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .header("Notion-Version", version);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req
                .send()
                .await
                .with_context(|| format!("{method} {path}"))?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let value: Value = resp.json().await.unwrap_or(Value::Null);
            let received = Instant::now();
            tokio::time::sleep(self.sleep).await;
            if status.as_u16() == 429 {
                tokio::time::sleep(Duration::from_secs(retry_after.unwrap_or(1))).await;
                continue;
            }
            anyhow::ensure!(status.is_success(), "{method} {path}: {status}");
            return Ok((value, received));
        }
    }

    /// One run: every page of the data source, each page and its body.
    async fn run_once(&self, started: &tokio::sync::Notify) -> anyhow::Result<usize> {
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        let mut requests = 0;
        loop {
            let mut body = json!({ "page_size": 100 });
            if let Some(c) = &cursor {
                body["start_cursor"] = json!(c);
            }
            let (r, _) = self
                .call(
                    reqwest::Method::POST,
                    &format!("/v1/data_sources/{}/query", self.data_source),
                    "2025-09-03",
                    Some(&body),
                )
                .await?;
            requests += 1;
            started.notify_one();
            for p in r["results"].as_array().into_iter().flatten() {
                if let Some(id) = p["id"].as_str() {
                    pages.push(id.to_owned());
                }
            }
            match r["next_cursor"].as_str() {
                Some(c) if r["has_more"].as_bool() == Some(true) => cursor = Some(c.to_owned()),
                _ => break,
            }
        }
        self.per_run.store(
            requests + 2 * pages.len(),
            std::sync::atomic::Ordering::Relaxed,
        );
        for id in pages {
            let (page, at) = self
                .call(
                    reqwest::Method::GET,
                    &format!("/v1/pages/{id}"),
                    "2025-09-03",
                    None,
                )
                .await?;
            let _body = self
                .call(
                    reqwest::Method::GET,
                    &format!("/v1/pages/{id}/markdown"),
                    "2026-03-11",
                    None,
                )
                .await?;
            requests += 2;
            self.seen.lock().expect("lock").push(Seen {
                page: id,
                title: title_of(&page),
                at,
            });
        }
        Ok(requests)
    }
}

/// The plain text of a page's title property.
fn title_of(page: &Value) -> String {
    page["properties"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .find(|p| p["type"] == "title")
        .and_then(|p| p["title"].as_array())
        .map(|parts| {
            parts
                .iter()
                .filter_map(|t| t["plain_text"].as_str())
                .collect::<String>()
        })
        .unwrap_or_default()
}

pub async fn run(p: &BaselineParams) -> anyhow::Result<BaselineResult> {
    let sim = support::start_sim(p.pages, notion_like(p.rate, 10)).await?;
    let ids: Vec<String> = sim.pages().into_iter().map(|p| p.id).collect();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Script {
        http: crate::daemon::loopback_client(4),
        base: sim.base_url(),
        token: sim.token().to_owned(),
        data_source: sim.data_source_id(),
        sleep: p.sleep,
        seen: Arc::clone(&seen),
        per_run: std::sync::atomic::AtomicUsize::new(0),
    });
    // Requests and duration of each completed run.
    let runs: Arc<Mutex<Vec<(usize, Duration)>>> = Arc::default();
    let started = Arc::new(tokio::sync::Notify::new());
    let task = {
        let (script, runs, started) =
            (Arc::clone(&script), Arc::clone(&runs), Arc::clone(&started));
        tokio::spawn(async move {
            let err: anyhow::Error = loop {
                let t = Instant::now();
                match script.run_once(&started).await {
                    Ok(n) => runs.lock().expect("lock").push((n, t.elapsed())),
                    Err(e) => break e,
                }
            };
            Err::<(), _>(err)
        })
    };

    // The workload starts right after the script's first run started (its query returned).
    tokio::time::timeout(Duration::from_secs(30), started.notified())
        .await
        .context("the baseline script never queried")?;
    sim.clear_request_log();
    let begin = Instant::now();
    let mut edits = Vec::new();
    for i in 0..p.workload.changes {
        let (page, title) = p.workload.change(i, ids.len());
        tokio::time::sleep_until(begin + p.workload.gap * i as u32).await;
        let t0 = Instant::now();
        sim.set_title(&ids[page], &title)?;
        edits.push((ids[page].clone(), title, t0));
    }
    // Wait until the script has seen every edit (at most a run after the last one).
    let found = |edits: &[(String, String, Instant)]| -> Vec<Option<Duration>> {
        let seen = seen.lock().expect("lock");
        edits
            .iter()
            .map(|(id, title, t0)| {
                seen.iter()
                    .find(|s| &s.page == id && &s.title == title && s.at >= *t0)
                    .map(|s| s.at - *t0)
            })
            .collect()
    };
    let run_bound = p.sleep * (2 * p.pages as u32 + 2) * 3 + Duration::from_secs(60);
    let deadline = Instant::now() + run_bound;
    let delays = loop {
        let f = found(&edits);
        if f.iter().all(Option::is_some) {
            break f.into_iter().flatten().collect::<Vec<_>>();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the baseline script did not see every edit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let window = begin.elapsed();
    let log = sim.request_log();
    // The script would go on forever: stop it here (a failure would have ended it early).
    if task.is_finished() {
        task.await.context("baseline task")??;
        anyhow::bail!("the baseline script stopped on its own");
    }
    task.abort();
    let _ = task.await;
    sim.shutdown().await;
    let runs = runs.lock().expect("lock").clone();

    let requests = RouteCounts::of(&log);
    // Same measure as the daemon's drain: intervals over the span of arrivals.
    let achieved = crate::stats::arrival_rate(&support::arrivals(&log)).unwrap_or(0.0);
    let complete: Vec<f64> = runs.iter().map(|(_, d)| d.as_secs_f64() * 1e3).collect();
    Ok(BaselineResult {
        pages: p.pages,
        sleep_ms: p.sleep.as_secs_f64() * 1e3,
        sim_rate_per_s: p.rate,
        requests_per_run: script.per_run.load(std::sync::atomic::Ordering::Relaxed),
        run_estimate_s: script.per_run.load(std::sync::atomic::Ordering::Relaxed) as f64
            / achieved.max(f64::MIN_POSITIVE),
        run_duration_s: {
            let s = Summary::of(&complete);
            Summary {
                p50: s.p50 / 1e3,
                p99: s.p99 / 1e3,
                max: s.max / 1e3,
                mean: s.mean / 1e3,
                count: s.count,
            }
        },
        runs_completed: runs.len(),
        workload: p.workload.clone(),
        synced: delays.len(),
        window_s: window.as_secs_f64(),
        freshness_ms: Summary::of_durations_ms(&delays),
        requests_per_change: requests.total as f64 / p.workload.changes.max(1) as f64,
        rate_limited_429: requests.rate_limited_429,
        achieved_per_s: achieved,
        budget_share: achieved / p.rate,
        requests,
    })
}
