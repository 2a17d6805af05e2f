//! Shared plumbing of the scenarios: simulator set-up, signed webhook bodies, reading the
//! mirror file, waiting for the daemon to settle, and the sim's request log.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use notion_sim::{RateLimit, RequestRecord, SimConfig, SimHandle};
use serde::Serialize;
use sync_store::{NotionId, PageRow, Store, StoreConfig, SystemClock};

use crate::daemon::{Daemon, WEBHOOK_SECRET, wait_for};

/// Seed of every simulated workspace (same seed, same pages).
pub const SEED: u64 = 7;

/// A simulated workspace of `pages` tasks with Notion's webhook behaviour (1 s aggregation
/// window for content events) and the given per-integration rate limit.
pub async fn start_sim(pages: usize, rate: Option<RateLimit>) -> anyhow::Result<SimHandle> {
    notion_sim::start(SimConfig {
        pages,
        seed: SEED,
        rate_limit: rate,
        ..SimConfig::default()
    })
    .await
    .context("starting notion-sim")
}

/// Notion's documented average with a small burst allowance.
pub fn notion_like(per_second: f64, burst: u32) -> Option<RateLimit> {
    Some(RateLimit { per_second, burst })
}

/// Subscribes the daemon's webhook endpoint with the token the daemon already has.
pub async fn subscribe(sim: &SimHandle, daemon: &Daemon) -> anyhow::Result<()> {
    sim.subscribe_with_token(&daemon.webhook_url(), WEBHOOK_SECRET)
        .await
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("webhook handshake with the daemon failed: {e}"))
}

/// Waits until the sim has delivered every webhook and the daemon's queue is empty,
/// twice in a row (a delivery may land while we look at the queue).
pub async fn settle(sim: &SimHandle, daemon: &Daemon, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        sim.webhooks_idle().await;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        daemon.wait_queue_empty(left).await?;
        if sim.webhook_stats().pending == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "webhooks still pending after {timeout:?}"
        );
    }
}

/// Signed webhook deliveries shaped like Notion's (`page.properties_updated` and
/// `page.content_updated` for existing pages), each with a fresh event id.
pub struct Deliveries {
    pub database_id: String,
    pub data_source_id: String,
    pub person_id: String,
    pub pages: Vec<String>,
    /// Post an event type the daemon records but makes no job for (isolates the webhook
    /// path from the workers).
    pub noop: bool,
}

impl Deliveries {
    pub fn for_sim(sim: &SimHandle) -> Deliveries {
        Deliveries {
            database_id: sim.database_id(),
            data_source_id: sim.data_source_id(),
            person_id: sim.person_user_id(),
            pages: sim.pages().into_iter().map(|p| p.id).collect(),
            noop: false,
        }
    }

    /// The `n`-th delivery: body and `X-Notion-Signature`. Every fourth is a content update.
    pub fn delivery(&self, n: u64) -> (String, String) {
        let page = &self.pages[(n as usize) % self.pages.len()];
        let id = uuid::Uuid::new_v4();
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let (kind, extra) = if self.noop {
            (
                "workspace.bench_noop",
                r#""updated_properties":["title"]"#.to_owned(),
            )
        } else if n % 4 == 3 {
            (
                "page.content_updated",
                format!(r#""updated_blocks":[{{"id":"{page}","type":"block"}}]"#),
            )
        } else {
            (
                "page.properties_updated",
                r#""updated_properties":["title"]"#.to_owned(),
            )
        };
        let body = format!(
            r#"{{"id":"{id}","timestamp":"{ts}","workspace_id":"13950b26-c203-4f3b-b97d-93ec06319565","workspace_name":"Bench","subscription_id":"29d75c0d-5546-4414-8459-7b7a92f1fc4b","integration_id":"0ef2e755-4912-8096-91c1-00376a88a5ca","type":"{kind}","authors":[{{"id":"{person}","type":"person"}}],"accessible_by":[{{"id":"{person}","type":"person"}}],"attempt_number":1,"api_version":"2025-09-03","entity":{{"id":"{page}","type":"page"}},"data":{{"parent":{{"id":"{db}","type":"database","data_source_id":"{ds}"}},{extra}}}}}"#,
            person = self.person_id,
            db = self.database_id,
            ds = self.data_source_id,
        );
        let sig = notion_sim::webhook_signature(WEBHOOK_SECRET, body.as_bytes());
        (body, sig)
    }
}

/// POSTs one signed delivery; true for a 2xx.
pub async fn post_delivery(
    http: &reqwest::Client,
    url: &str,
    body: String,
    signature: String,
) -> bool {
    http.post(url)
        .header("content-type", "application/json")
        .header("x-notion-signature", signature)
        .body(body)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// The daemon's mirror, opened read-only like a user's query tool would.
pub struct Mirror {
    store: Store,
}

impl Mirror {
    pub async fn open(db: &Path) -> anyhow::Result<Mirror> {
        let store = Store::open_read_only(StoreConfig::for_path(db), Arc::new(SystemClock))
            .await
            .with_context(|| format!("opening the mirror {} read-only", db.display()))?;
        Ok(Mirror { store })
    }

    /// The mirror at store URL `url` (SQLite or PostgreSQL), read-only.
    pub async fn open_url(url: &str) -> anyhow::Result<Mirror> {
        let config = StoreConfig {
            url: url.to_owned(),
            ..StoreConfig::default()
        };
        let shown = config.display_url();
        let store = Store::open_read_only(config, Arc::new(SystemClock))
            .await
            .with_context(|| format!("opening the mirror {shown} read-only"))?;
        Ok(Mirror { store })
    }

    pub async fn page(&self, id: &str) -> anyhow::Result<Option<PageRow>> {
        Ok(self.store.get_page(&NotionId::parse(id)?).await?)
    }

    pub async fn event_count(&self) -> anyhow::Result<u64> {
        Ok(self.store.event_count().await?)
    }

    /// Polls every 2 ms until `pred` holds for the page's row; returns when it did.
    pub async fn wait_page<F>(
        &self,
        id: &str,
        timeout: Duration,
        mut pred: F,
    ) -> anyhow::Result<tokio::time::Instant>
    where
        F: FnMut(&PageRow) -> bool,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(row) = self.page(id).await?
                && pred(&row)
            {
                return Ok(tokio::time::Instant::now());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "page {id} did not reach the expected state in the mirror within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub async fn close(self) {
        self.store.close().await;
    }
}

/// Requests of a log slice, by route template (for the JSON report).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouteCounts {
    pub total: usize,
    pub query: usize,
    pub page_get: usize,
    pub markdown: usize,
    pub block_children: usize,
    pub data_source_get: usize,
    pub other: usize,
    pub rate_limited_429: usize,
}

impl RouteCounts {
    pub fn of(log: &[RequestRecord]) -> RouteCounts {
        let mut c = RouteCounts::default();
        for r in log {
            c.total += 1;
            if r.status == 429 {
                c.rate_limited_429 += 1;
            }
            match (r.method.as_str(), r.route.as_str()) {
                ("POST", "/v1/data_sources/{id}/query") => c.query += 1,
                ("GET", "/v1/pages/{id}") => c.page_get += 1,
                ("GET", "/v1/pages/{id}/markdown") => c.markdown += 1,
                ("GET", "/v1/blocks/{id}/children") => c.block_children += 1,
                ("GET", "/v1/data_sources/{id}") => c.data_source_get += 1,
                _ => c.other += 1,
            }
        }
        c
    }

    /// `query 1, page 2, markdown 1` — the non-zero routes.
    pub fn breakdown(&self) -> String {
        let parts: Vec<String> = [
            ("query", self.query),
            ("page", self.page_get),
            ("markdown", self.markdown),
            ("blocks", self.block_children),
            ("data_source", self.data_source_get),
            ("other", self.other),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// Waits until the sim's request log holds at least `n` records.
pub async fn wait_requests(sim: &SimHandle, n: usize, timeout: Duration) -> anyhow::Result<()> {
    wait_for(
        "requests to reach the simulator",
        timeout,
        Duration::from_millis(5),
        || async { sim.request_log().len() >= n },
    )
    .await
}

/// Seconds since the simulator started, of each record.
pub fn arrivals(log: &[RequestRecord]) -> Vec<f64> {
    log.iter().map(|r| r.elapsed.as_secs_f64()).collect()
}

/// Milliseconds, rounded for humans.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

/// The same stream of human edits for the daemon and the baseline: `changes` title edits,
/// one every `gap`, to pages spread over the workspace.
#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    pub changes: usize,
    #[serde(serialize_with = "ser_ms", rename = "gap_ms")]
    pub gap: Duration,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

impl Workload {
    /// Page index and new title of change `i` in a workspace of `pages` pages.
    pub fn change(&self, i: usize, pages: usize) -> (usize, String) {
        ((i * 7 + 3) % pages, format!("Workload change {i}"))
    }
}
