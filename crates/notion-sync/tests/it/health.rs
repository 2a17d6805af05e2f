//! `/healthz` and `/metrics`.

use crate::support::{event_json, sim_config, spawn_app, spawn_app_with_token};

async fn health(app: &crate::support::TestApp) -> (u16, serde_json::Value) {
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn healthy_daemon_reports_ok_with_every_section() {
    let app = spawn_app().await;
    app.wait_until("schema checked", || async {
        matches!(
            app.engine.status().schema(),
            sync_engine::SchemaState::Ok(_)
        )
    })
    .await;
    app.engine
        .reconcile(sync_engine::PassKind::Full, &Default::default())
        .await
        .unwrap();
    app.settle().await;
    let (code, h) = health(&app).await;
    assert_eq!(code, 200, "{h}");
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    for key in ["queued", "running", "dead", "oldest_queued_age_s"] {
        assert!(h["queue"].get(key).is_some(), "queue.{key}");
    }
    assert!(h["reconcile"]["last_success_at"].is_string());
    assert!(h["reconcile"]["watermark"].is_string());
    assert!(h["notion"]["requests_total"].as_u64().unwrap() > 0);
    assert_eq!(h["notion"]["rate_limited_total"], 0);
    assert!(h["notion"].get("paused_until").is_some());
    assert_eq!(h["notion"]["schema"], "ok");
    assert!(h["webhook"].get("last_event_at").is_some());
    assert_eq!(h["mirror"]["pages"], 20);
    app.stop().await;
}

#[tokio::test]
async fn schema_drift_degrades_and_a_broken_token_fails() {
    let app = spawn_app().await;
    app.wait_until("schema checked", || async {
        matches!(
            app.engine.status().schema(),
            sync_engine::SchemaState::Ok(_)
        )
    })
    .await;
    // The simulator announces the rename with a signed data_source.schema_updated event.
    app.sim.rename_property("Status", "State").unwrap();
    app.wait_until("drift noticed", || async {
        matches!(
            app.engine.status().schema(),
            sync_engine::SchemaState::Drift(_)
        )
    })
    .await;
    let (code, h) = health(&app).await;
    assert_eq!(code, 200);
    assert_eq!(h["status"], "degraded");
    assert_eq!(h["notion"]["schema"], "drift");
    let reason = h["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("status property \"Status\" not found"),
        "{reason}"
    );
    app.stop().await;

    // A revoked or mistyped token: Notion answers 401 and health says failing (503).
    let bad = spawn_app_with_token(sim_config(2), &[], Some("secret_wrong_token")).await;
    bad.wait_until("auth error noticed", || async {
        bad.engine.status().auth_error().is_some()
    })
    .await;
    let (code, h) = health(&bad).await;
    assert_eq!(code, 503, "{h}");
    assert_eq!(h["status"], "failing");
    let reasons = h["reasons"].to_string();
    assert!(reasons.contains("Notion rejected the token"), "{reasons}");
    assert!(
        !reasons.contains("secret_wrong_token"),
        "the token never appears"
    );
    bad.stop().await;
}

#[tokio::test]
async fn metrics_expose_requests_queue_and_webhooks() {
    let app = spawn_app().await;
    let page = app.live_ids()[0].clone();
    let body = event_json(
        "2f0f0f0f-0000-4000-8000-000000000001",
        "page.created",
        &page,
        "page",
        None,
    );
    app.post_webhook(&body, None).await;
    app.settle().await;
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "notion_requests_total",
        "webhook_deliveries_total",
        "webhook_ack_seconds_bucket",
        "queue_jobs",
        "sync_jobs_total",
        "mirror_pages",
        "notion_pacer_rate",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    assert!(
        text.contains("endpoint=\"/v1/pages/{id}\""),
        "requests labelled by route template"
    );
    assert!(!text.contains(&page), "no page ids in labels");
    app.stop().await;
}
