//! How fast the simulator answers without rate limits: 16 concurrent clients for 3 s doing a
//! mix of page GETs, 100-row queries and block-children reads. Prints req/s and latencies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use notion_sim::SimConfig;
use serde_json::json;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let sim = notion_sim::start(SimConfig {
        pages: 1000,
        rate_limit: None,
        ..SimConfig::default()
    })
    .await?;
    let pages: Arc<Vec<String>> = Arc::new(sim.pages().into_iter().map(|p| p.id).collect());
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(std::io::Error::other)?;
    let run_for = Duration::from_secs(3);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..16usize {
        let client = client.clone();
        let pages = Arc::clone(&pages);
        let base = sim.base_url();
        let token = sim.token().to_owned();
        let ds = sim.data_source_id();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = worker;
            while started.elapsed() < run_for {
                let page = &pages[i % pages.len()];
                let req = match i % 3 {
                    0 => client.get(format!("{base}/v1/pages/{page}")),
                    1 => client
                        .post(format!("{base}/v1/data_sources/{ds}/query"))
                        .json(&json!({"page_size": 100})),
                    _ => client.get(format!("{base}/v1/blocks/{page}/children")),
                };
                let t = Instant::now();
                let ok = req
                    .bearer_auth(&token)
                    .header("Notion-Version", "2025-09-03")
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                if ok {
                    latencies.push(t.elapsed());
                }
                i += 16;
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(std::io::Error::other)?);
    }
    all.sort();
    let secs = started.elapsed().as_secs_f64();
    let pct = |p: f64| all[((all.len() as f64 - 1.0) * p) as usize];
    println!(
        "{} requests in {secs:.1} s = {:.0} req/s; p50 {:?}, p99 {:?}",
        all.len(),
        all.len() as f64 / secs,
        pct(0.5),
        pct(0.99)
    );
    sim.shutdown().await;
    Ok(())
}
