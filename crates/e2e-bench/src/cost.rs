//! Requests per synced change on the webhook path: a property change, a body change (by
//! the Markdown endpoint and by block children), and 100 deliveries for one page.

use std::path::Path;
use std::time::Duration;

use notion_sim::{BodyEdit, SimHandle};
use serde::Serialize;

use crate::daemon::{Daemon, DaemonConfig};
use crate::support::{self, Mirror, RouteCounts, notion_like};

#[derive(Debug, Clone)]
pub struct CostParams {
    pub pages: usize,
    /// Changes measured per kind (each settled before the next).
    pub samples: usize,
    /// Deliveries for one page in the burst case.
    pub burst: usize,
}

/// Requests for `changes` changes of one kind, each measured alone.
#[derive(Debug, Clone, Serialize)]
pub struct CostCase {
    pub changes: usize,
    pub requests: RouteCounts,
    pub per_change: f64,
    /// Requests of each change, in order.
    pub each: Vec<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BurstCase {
    pub deliveries_acknowledged: u64,
    pub page_fetches: usize,
    pub requests: RouteCounts,
    pub mirror_has_last_title: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CostResult {
    pub property_change: CostCase,
    pub body_change_markdown: CostCase,
    pub body_change_blocks: CostCase,
    /// Blocks of the pages measured in the blocks case (top level and nested).
    pub blocks_case_pages: Vec<String>,
    pub one_page_burst: BurstCase,
}

pub async fn run(bin: &Path, p: &CostParams) -> anyhow::Result<CostResult> {
    let dir = tempfile::tempdir()?;
    // Counts, not time: a fast limit keeps this short; the daemon stays under it.
    let sim = support::start_sim(p.pages, notion_like(20.0, 20)).await?;
    let cfg = DaemonConfig {
        on_start: true,
        ..DaemonConfig::new(15.0)
    };
    let daemon = Daemon::start(bin, dir.path(), None, &sim, &cfg).await?;
    support::subscribe(&sim, &daemon).await?;
    daemon.wait_initialized().await?;
    // The pass at start fills the mirror (properties and bodies): steady state.
    let mirror = Mirror::open(&daemon.db).await?;
    crate::daemon::wait_for(
        "the first sync",
        Duration::from_secs(120),
        Duration::from_millis(50),
        || async { mirror.page_count().await.unwrap_or(0) >= p.pages as u64 },
    )
    .await?;
    support::settle(&sim, &daemon, Duration::from_secs(120)).await?;

    let ids: Vec<String> = sim.pages().into_iter().map(|p| p.id).collect();
    let n = p.samples.min(ids.len());
    // Distinct pages per case, so no case sees another's follow-up work.
    let prop_pages: Vec<String> = ids.iter().skip(5).step_by(3).take(n).cloned().collect();
    let md_pages: Vec<String> = ids.iter().skip(6).step_by(3).take(n).cloned().collect();
    // Index 2 carries a 131-block checklist (pagination); the others are typical pages.
    let mut block_pages: Vec<String> = vec![ids[2].clone()];
    block_pages.extend(
        ids.iter()
            .skip(7)
            .step_by(3)
            .take(n.saturating_sub(1))
            .cloned(),
    );

    let property_change = measure(&sim, &daemon, &mirror, &prop_pages, |sim, id, i| {
        let title = format!("Cost property change {i}");
        sim.set_title(id, &title)?;
        Ok(Box::new(move |row: &sync_store::PageRow| {
            row.title == title
        }))
    })
    .await?;
    let body_change_markdown = measure(&sim, &daemon, &mirror, &md_pages, |sim, id, i| {
        let text = format!("Cost body change {i}");
        sim.edit_body(id, BodyEdit::AppendParagraph(text.clone()))?;
        Ok(Box::new(move |row: &sync_store::PageRow| {
            row.body_markdown
                .as_deref()
                .is_some_and(|b| b.contains(&text))
        }))
    })
    .await?;
    sim.set_markdown_endpoint(false, 1000);
    let body_change_blocks = measure(&sim, &daemon, &mirror, &block_pages, |sim, id, i| {
        let text = format!("Cost blocks change {i}");
        sim.edit_body(id, BodyEdit::AppendParagraph(text.clone()))?;
        Ok(Box::new(move |row: &sync_store::PageRow| {
            row.body_markdown
                .as_deref()
                .is_some_and(|b| b.contains(&text))
        }))
    })
    .await?;
    sim.set_markdown_endpoint(true, 1000);
    let blocks_case_pages = block_pages
        .iter()
        .map(|id| {
            let md = sim.page(id).map(|p| p.markdown).unwrap_or_default();
            format!("{id}: {} Markdown lines", md.lines().count())
        })
        .collect();

    // 100 deliveries for one page: 100 property edits in a row, each a signed webhook.
    let target = ids[ids.len() - 1].clone();
    support::settle(&sim, &daemon, Duration::from_secs(60)).await?;
    let before = sim.webhook_stats().deliveries_ok;
    sim.clear_request_log();
    let last_title = format!("Burst edit {}", p.burst - 1);
    for i in 0..p.burst {
        sim.set_title(&target, &format!("Burst edit {i}"))?;
    }
    support::settle(&sim, &daemon, Duration::from_secs(120)).await?;
    let log = sim.request_log();
    let requests = RouteCounts::of(&log);
    let page_fetches = log
        .iter()
        .filter(|r| r.method == "GET" && r.route == "/v1/pages/{id}")
        .count();
    let row = mirror.page(&target).await?;
    let one_page_burst = BurstCase {
        deliveries_acknowledged: sim.webhook_stats().deliveries_ok - before,
        page_fetches,
        requests,
        mirror_has_last_title: row.is_some_and(|r| r.title == last_title),
    };
    mirror.close().await;
    daemon.stop().await?;
    sim.shutdown().await;
    Ok(CostResult {
        property_change,
        body_change_markdown,
        body_change_blocks,
        blocks_case_pages,
        one_page_burst,
    })
}

type Check = Box<dyn Fn(&sync_store::PageRow) -> bool + Send>;

/// For each page: clear the log, change it, wait until the mirror shows the change and
/// everything settled (webhooks delivered, queue empty), count the requests.
async fn measure<F>(
    sim: &SimHandle,
    daemon: &Daemon,
    mirror: &Mirror,
    pages: &[String],
    change: F,
) -> anyhow::Result<CostCase>
where
    F: Fn(&SimHandle, &str, usize) -> anyhow::Result<Check>,
{
    let mut all = Vec::new();
    let mut each = Vec::new();
    for (i, id) in pages.iter().enumerate() {
        support::settle(sim, daemon, Duration::from_secs(60)).await?;
        sim.clear_request_log();
        let check = change(sim, id, i)?;
        mirror
            .wait_page(id, Duration::from_secs(60), |row| check(row))
            .await?;
        support::settle(sim, daemon, Duration::from_secs(60)).await?;
        let log = sim.request_log();
        each.push(log.len());
        all.extend(log);
    }
    let requests = RouteCounts::of(&all);
    Ok(CostCase {
        changes: pages.len(),
        per_change: requests.total as f64 / pages.len().max(1) as f64,
        requests,
        each,
    })
}
