//! Slack summaries: one message per pass that marked tasks, ten titles and "and N more",
//! retried, outside the Notion budget.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use notion_sim::NewTask;
use secrecy::SecretString;
use sync_engine::{Engine, Notifier};
use tokio_util::sync::CancellationToken;

use crate::support::{client, sim_config};

/// A fake Slack incoming webhook: fails the first `fail` posts with 500, records the rest.
async fn fake_slack(fail: usize) -> (String, Arc<Mutex<Vec<String>>>, Arc<Mutex<usize>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let attempts = Arc::new(Mutex::new(0usize));
    let (r, a) = (received.clone(), attempts.clone());
    let app = axum::Router::new().route(
        "/services/T000/B000/XXXX",
        axum::routing::post(move |body: axum::Json<serde_json::Value>| {
            let (r, a) = (r.clone(), a.clone());
            async move {
                let n = {
                    let mut a = a.lock().unwrap();
                    *a += 1;
                    *a
                };
                if n <= fail {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                r.lock()
                    .unwrap()
                    .push(body["text"].as_str().unwrap_or_default().to_owned());
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (
        format!("http://{addr}/services/T000/B000/XXXX"),
        received,
        attempts,
    )
}

#[tokio::test]
async fn one_summary_per_pass_with_ten_titles_retried_after_a_failure() {
    let (url, received, attempts) = fake_slack(1).await;
    let sim = notion_sim::start(sim_config(0)).await.unwrap();
    for i in 0..12 {
        sim.create_task(NewTask {
            title: format!("Late task {i:02}"),
            status: Some("To Do".into()),
            due: Some("2026-11-02".into()),
            silent: true,
            ..NewTask::default()
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let store = sync_store::Store::open(
        sync_store::StoreConfig::for_path(&dir.path().join("m.db")),
        Arc::new(sync_store::SystemClock),
    )
    .await
    .unwrap();
    let (notifier, task) = Notifier::slack(SecretString::from(url));
    let cancel = CancellationToken::new();
    let sender = tokio::spawn(
        task.with_retry_base(Duration::from_millis(10))
            .run(cancel.clone()),
    );
    let ds = notion_api::NotionId::parse(&sim.data_source_id()).unwrap();
    let engine = Engine::new(
        sync_engine::EngineConfig::new(sync_engine::Source::DataSource(ds)),
        store,
        client(&sim, 1000.0),
        notifier,
    );
    engine.initialize().await.unwrap();
    let requests_before = sim.request_log().len();
    let summary = engine
        .reconcile(sync_engine::PassKind::Incremental, &cancel)
        .await
        .unwrap();
    assert_eq!(summary.overdue_marked, 12);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while received.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Slack message arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let messages = received.lock().unwrap().clone();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert!(m.starts_with("notion-sync marked 12 tasks overdue:"), "{m}");
    assert_eq!(m.matches("\n• Late task").count(), 10, "{m}");
    assert!(m.ends_with("\nand 2 more"), "{m}");
    assert_eq!(
        *attempts.lock().unwrap(),
        2,
        "first post failed, the retry succeeded"
    );
    // Slack is outside the Notion budget: the pass made only its own Notion requests.
    assert!(
        sim.request_log()
            .iter()
            .skip(requests_before)
            .all(|r| r.route.starts_with("/v1/"))
    );

    // A pass that marks nothing queues nothing (the summary is built at the pass's end).
    sim.advance(Duration::from_secs(120));
    let quiet = engine
        .reconcile(sync_engine::PassKind::Incremental, &cancel)
        .await
        .unwrap();
    assert_eq!(quiet.overdue_marked, 0);
    assert_eq!(engine.notifier().flush(), None);
    cancel.cancel();
    sender.await.unwrap();
}
