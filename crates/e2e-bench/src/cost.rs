//! Requests per synced change on the webhook path: a property change, a body change (by
//! the Markdown endpoint and by block children), and 100 deliveries for one page.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use notion_sim::{BodyEdit, SimHandle};
use serde::Serialize;
use tokio::time::Instant;

use crate::daemon::{Daemon, DaemonConfig};
use crate::support::{self, Deliveries, Mirror, RouteCounts, notion_like};

#[derive(Debug, Clone)]
pub struct CostParams {
    pub pages: usize,
    /// Changes measured per kind (each settled before the next).
    pub samples: usize,
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
    /// When each page fetch reached the sim, ms after the first one.
    pub page_fetch_offsets_ms: Vec<f64>,
    pub requests: RouteCounts,
    /// The mirror holds the page's final state.
    pub mirror_current: bool,
    /// From the first delivery: the change visible in the mirror, and the queue empty.
    pub visible_after_ms: Option<f64>,
    pub queue_empty_after_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CostResult {
    pub property_change: CostCase,
    pub body_change_markdown: CostCase,
    pub body_change_blocks: CostCase,
    /// Blocks of the pages measured in the blocks case (top level and nested).
    pub blocks_case_pages: Vec<String>,
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
    // The pass at start fills the mirror (properties, then a body job per page): wait for
    // it to finish, then for its jobs: steady state.
    daemon.wait_first_pass(Duration::from_secs(120)).await?;
    let mirror = Mirror::open(&daemon.db).await?;
    support::settle(&sim, &daemon, Duration::from_secs(120)).await?;

    let ids: Vec<String> = sim.pages().into_iter().map(|p| p.id).collect();
    let n = p.samples.min(ids.len());
    // Distinct pages per case, so no case sees another's follow-up work.
    let prop_pages: Vec<String> = ids.iter().skip(5).step_by(3).take(n).cloned().collect();
    let md_pages: Vec<String> = ids.iter().skip(6).step_by(3).take(n).cloned().collect();
    // The longest body (a 131-block checklist: block-children pagination) and typical pages.
    let longest = sim
        .pages()
        .into_iter()
        .max_by_key(|p| p.markdown.len())
        .map_or_else(|| ids[0].clone(), |p| p.id);
    let mut block_pages: Vec<String> = vec![longest.clone()];
    block_pages.extend(
        ids.iter()
            .skip(7)
            .step_by(3)
            .filter(|id| **id != longest)
            .take(n.saturating_sub(1))
            .cloned(),
    );
    let blocks_case_pages = block_pages
        .iter()
        .map(|id| {
            let md = sim.page(id).map(|p| p.markdown).unwrap_or_default();
            format!(
                "{id}: {} Markdown lines before the edit",
                md.lines().count()
            )
        })
        .collect();

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

    mirror.close().await;
    daemon.stop().await?;
    sim.shutdown().await;
    Ok(CostResult {
        property_change,
        body_change_markdown,
        body_change_blocks,
        blocks_case_pages,
    })
}

/// 100 deliveries for one page, twice, on a settled daemon. (a) The bench posts `burst`
/// signed `page.properties_updated` deliveries for one page, 10 at a time, after a silent
/// title change; (b) `burst` property edits in the sim: as many deliveries plus the
/// aggregated `data_source.content_updated`, as Notion sends them.
pub async fn one_page_bursts(
    sim: &SimHandle,
    daemon: &Daemon,
    mirror: &Mirror,
    burst: usize,
) -> anyhow::Result<(BurstCase, BurstCase)> {
    let ids: Vec<String> = sim.pages().into_iter().map(|p| p.id).collect();
    let direct_target = ids[ids.len() - 2].clone();
    let sim_target = ids[ids.len() - 1].clone();
    support::settle(sim, daemon, Duration::from_secs(60)).await?;
    sim.set_silent(true);
    sim.set_title(&direct_target, "Burst target, changed silently")?;
    sim.set_silent(false);
    sim.clear_request_log();
    let factory = Deliveries {
        pages: vec![direct_target.clone()],
        ..Deliveries::for_sim(sim)
    };
    let http = crate::daemon::loopback_client(16);
    let url = daemon.webhook_url();
    let t0 = Instant::now();
    let acked: u64 = futures::stream::iter(0..burst as u64)
        .map(|n| {
            // Even numbers only: property updates (every fourth is a content update).
            let (body, sig) = factory.delivery(n * 4);
            let (http, url) = (http.clone(), url.clone());
            async move { u64::from(support::post_delivery(&http, &url, body, sig).await) }
        })
        .buffer_unordered(10)
        .fold(0, |a, b| async move { a + b })
        .await;
    let visible = mirror
        .wait_page(&direct_target, Duration::from_secs(60), |r| {
            r.title == "Burst target, changed silently"
        })
        .await?;
    daemon.wait_queue_empty(Duration::from_secs(60)).await?;
    let done = Instant::now();
    let one_page_direct = burst_case(
        &sim.request_log(),
        acked,
        true,
        Some((visible - t0, done - t0)),
    );

    support::settle(sim, daemon, Duration::from_secs(60)).await?;
    let before = sim.webhook_stats().deliveries_ok;
    sim.clear_request_log();
    let last_title = format!("Burst edit {}", burst - 1);
    for i in 0..burst {
        sim.set_title(&sim_target, &format!("Burst edit {i}"))?;
    }
    support::settle(sim, daemon, Duration::from_secs(120)).await?;
    let row = mirror.page(&sim_target).await?;
    let one_page_sim = burst_case(
        &sim.request_log(),
        sim.webhook_stats().deliveries_ok - before,
        row.is_some_and(|r| r.title == last_title),
        None,
    );
    Ok((one_page_direct, one_page_sim))
}

fn burst_case(
    log: &[notion_sim::RequestRecord],
    acknowledged: u64,
    mirror_current: bool,
    timing: Option<(Duration, Duration)>,
) -> BurstCase {
    let fetches: Vec<f64> = log
        .iter()
        .filter(|r| r.method == "GET" && r.route == "/v1/pages/{id}")
        .map(|r| r.elapsed.as_secs_f64() * 1e3)
        .collect();
    let first = fetches.first().copied().unwrap_or(0.0);
    BurstCase {
        deliveries_acknowledged: acknowledged,
        page_fetches: fetches.len(),
        page_fetch_offsets_ms: fetches.iter().map(|t| (t - first).round()).collect(),
        requests: RouteCounts::of(log),
        mirror_current,
        visible_after_ms: timing.map(|(v, _)| support::ms(v)),
        queue_empty_after_ms: timing.map(|(_, d)| support::ms(d)),
    }
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
