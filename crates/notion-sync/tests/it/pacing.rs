//! One pacer for the whole daemon: a backlog at the simulator's own limit gets no 429,
//! and a 429 with Retry-After pauses every worker.

use std::time::Duration;

use notion_sim::RateLimit;

use crate::support::{event_json, sim_config, spawn_app_with};

async fn queue_backlog(app: &crate::support::TestApp, pages: &[String]) {
    let ds = app.sim.data_source_id();
    for (i, page) in pages.iter().enumerate() {
        let body = event_json(
            &format!("1f0f0f0f-0000-4000-8000-{i:012}"),
            "page.created",
            page,
            "page",
            Some(&ds),
        );
        assert_eq!(app.post_webhook(&body, None).await.status().as_u16(), 200);
    }
}

#[tokio::test]
async fn a_backlog_drained_at_the_simulators_limit_gets_no_429() {
    let mut config = sim_config(40);
    config.rate_limit = Some(RateLimit {
        per_second: 20.0,
        burst: 20,
    });
    let app = spawn_app_with(
        config,
        &[
            ("NOTION__REQUESTS_PER_SECOND", "20"),
            ("WORKERS__CONCURRENCY", "8"),
        ],
    )
    .await;
    app.sim.clear_request_log();
    let started = tokio::time::Instant::now();
    queue_backlog(&app, &app.live_ids()).await;
    app.settle().await;
    let elapsed = started.elapsed();
    let log = app.sim.request_log();
    let limited = log.iter().filter(|r| r.status == 429).count();
    println!(
        "{} requests in {:.2} s, {limited} answered 429",
        log.len(),
        elapsed.as_secs_f64()
    );
    assert_eq!(limited, 0);
    assert_eq!(app.sim.count_requests("GET", "/v1/pages/{id}"), 40);
    assert_eq!(app.sim.count_requests("GET", "/v1/pages/{id}/markdown"), 40);
    // The pacer, not luck, kept us under the limit: N requests at 20/s after a burst of 2.
    let floor = (log.len() as f64 - 2.0) / 20.0;
    assert!(
        elapsed.as_secs_f64() >= floor * 0.95,
        "{elapsed:?} for {} requests",
        log.len()
    );
    assert!(app.mismatches().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_429_with_retry_after_pauses_every_worker() {
    let app = spawn_app_with(sim_config(30), &[("WORKERS__CONCURRENCY", "4")]).await;
    app.sim.clear_request_log();
    app.sim.force_errors(429, 1, Some(2));
    queue_backlog(&app, &app.live_ids()).await;
    app.settle().await;
    let log = app.sim.request_log();
    let i = log.iter().position(|r| r.status == 429).expect("one 429");
    let t429 = log[i].at;
    let since = |r: &notion_sim::RequestRecord| (r.at - t429).to_std().unwrap_or_default();
    // Requests other workers had already sent may land just after the 429; nothing new
    // may be sent until Retry-After (2 s) has passed, from any worker.
    let in_flight = Duration::from_millis(250);
    let paused: Vec<_> = log[i + 1..]
        .iter()
        .filter(|r| since(r) > in_flight && since(r) < Duration::from_millis(1900))
        .collect();
    assert!(paused.is_empty(), "requests during the pause: {paused:?}");
    let resumed = log[i + 1..]
        .iter()
        .map(since)
        .filter(|d| *d > in_flight)
        .min()
        .expect("work resumed");
    println!(
        "first new request after the 429 came {:.2} s later",
        resumed.as_secs_f64()
    );
    let stats = app.store.queue_stats().await.unwrap();
    assert_eq!(stats.dead, 0);
    assert_eq!(app.engine.client().stats().rate_limited_total, 1);
    assert!(app.mismatches().await.is_empty());
    app.stop().await;
}
