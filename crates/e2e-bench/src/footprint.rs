//! Footprint with a large mirror: 100,000 pages written into the daemon's SQLite file with
//! the store API before it starts (populating them through Notion at 3 req/s would take
//! hours), then start-up time and RSS idle and after a few webhook-driven syncs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use sync_store::{NotionId, PageUpsert, Store, StoreConfig, Synchronous, SystemClock};

use crate::daemon::{Daemon, DaemonConfig, Memory};
use crate::support::{self, Mirror, notion_like};

#[derive(Debug, Clone)]
pub struct FootprintParams {
    pub mirror_pages: usize,
    pub sim_pages: usize,
    pub changes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct FootprintResult {
    pub mirror_pages: u64,
    pub db_file_mib: f64,
    /// `upsert_pages` in batches of 1,000, then `set_page_body` 512 at a time.
    pub populate_rows_s: f64,
    pub populate_bodies_s: f64,
    pub startup_ms: f64,
    pub memory_at_ready: Memory,
    /// After `/healthz` (counts the mirror) and a second of idling.
    pub memory_idle: Memory,
    /// After `changes` webhook-driven page syncs into the large mirror.
    pub memory_after_syncs: Memory,
    pub changes: usize,
}

/// A large mirror written and waiting for the daemon (kept apart from the measurement
/// so the CPU-heavy population can overlap a sleep-bound scenario).
pub struct Prepared {
    dir: tempfile::TempDir,
    db: std::path::PathBuf,
    sim: notion_sim::SimHandle,
    rows_s: f64,
    bodies_s: f64,
}

pub async fn prepare(p: &FootprintParams) -> anyhow::Result<Prepared> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("mirror.db");
    let sim = support::start_sim(p.sim_pages, notion_like(10.0, 10)).await?;
    let (rows_s, bodies_s) = populate(&sim, &db, p.mirror_pages).await?;
    Ok(Prepared {
        dir,
        db,
        sim,
        rows_s,
        bodies_s,
    })
}

pub async fn measure(
    bin: &Path,
    p: &FootprintParams,
    prepared: Prepared,
) -> anyhow::Result<FootprintResult> {
    let Prepared {
        dir,
        db,
        sim,
        rows_s,
        bodies_s,
    } = prepared;
    let db_file_mib = std::fs::metadata(&db)?.len() as f64 / (1024.0 * 1024.0);
    let cfg = DaemonConfig::new(10.0);
    let daemon = Daemon::start(bin, dir.path(), Some(&db), &sim, &cfg).await?;
    let memory_at_ready = daemon.memory()?;
    support::subscribe(&sim, &daemon).await?;
    daemon.wait_initialized().await?;
    let health = daemon.health().await?;
    let mirror_pages = health["mirror"]["pages"].as_u64().unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let memory_idle = daemon.memory()?;

    let mirror = Mirror::open(&db).await?;
    let ids: Vec<String> = sim.pages().into_iter().map(|p| p.id).collect();
    let changes = p.changes.min(ids.len());
    for (i, id) in ids.iter().take(changes).enumerate() {
        sim.set_title(id, &format!("Large mirror change {i}"))?;
    }
    for (i, id) in ids.iter().take(changes).enumerate() {
        let title = format!("Large mirror change {i}");
        mirror
            .wait_page(id, Duration::from_secs(60), |r| r.title == title)
            .await?;
    }
    support::settle(&sim, &daemon, Duration::from_secs(60)).await?;
    let memory_after_syncs = daemon.memory()?;
    mirror.close().await;
    let startup_ms = support::ms(daemon.startup);
    daemon.stop().await?;
    sim.shutdown().await;
    Ok(FootprintResult {
        mirror_pages,
        db_file_mib,
        populate_rows_s: rows_s,
        populate_bodies_s: bodies_s,
        startup_ms,
        memory_at_ready,
        memory_idle,
        memory_after_syncs,
        changes,
    })
}

/// Writes `n` mirror rows shaped like the sim's pages (their `properties` JSON and
/// Markdown bodies, cycled) in batches of 1,000, then a body for each.
/// Returns the seconds spent on the rows and on the bodies.
async fn populate(sim: &notion_sim::SimHandle, db: &Path, n: usize) -> anyhow::Result<(f64, f64)> {
    let store = Store::open(
        StoreConfig {
            synchronous: Synchronous::Normal,
            ..StoreConfig::for_path(db)
        },
        Arc::new(SystemClock),
    )
    .await?;
    let templates = sim.pages();
    let now = chrono::Utc::now();
    let ds = NotionId::parse(&sim.data_source_id())?;
    let mut ids = Vec::with_capacity(n);
    let t0 = std::time::Instant::now();
    for chunk_start in (0..n).step_by(1000) {
        let batch: Vec<PageUpsert> = (chunk_start..(chunk_start + 1000).min(n))
            .map(|i| {
                let t = &templates[i % templates.len()];
                let uuid = uuid::Uuid::new_v4();
                let id = NotionId::from_bytes(*uuid.as_bytes());
                ids.push((id, i % templates.len()));
                PageUpsert {
                    id,
                    data_source_id: Some(ds),
                    title: format!("{} #{i}", t.title),
                    status: t.status.clone(),
                    due: t.due.clone(),
                    url: format!("https://www.notion.so/{}", uuid.simple()),
                    created_time: t.created_time,
                    last_edited_time: t.last_edited_time,
                    in_trash: false,
                    properties: t.properties.to_string(),
                    observed_at: now,
                }
            })
            .collect();
        store.upsert_pages(&batch).await?;
    }
    let rows_s = t0.elapsed().as_secs_f64();
    let store_ref = &store;
    let templates = &templates;
    let results: Vec<_> = futures::stream::iter(ids)
        .map(|(id, t)| async move {
            let md = &templates[t].markdown;
            let hash = format!(
                "{:064x}",
                md.len() as u128 * 0x9e37_79b9_7f4a_7c15 + t as u128
            );
            store_ref.set_page_body(&id, md, &hash, now).await
        })
        .buffer_unordered(512)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let bodies_s = t0.elapsed().as_secs_f64() - rows_s;
    store.close().await;
    Ok((rows_s, bodies_s))
}
