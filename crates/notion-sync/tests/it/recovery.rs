//! Crash recovery at start: overdue writes a killed daemon began and did not finish are
//! confirmed against Notion and finished by the next start at once (not left "in flight"
//! for the claim window), each PATCHed at most once in all.

use std::sync::Arc;

use sync_store::{Store, StoreConfig, SystemClock};

use crate::support::{
    add_waiting_status, id, make_overdue_candidate, patches_per_page, poll_until, sim_config,
    start_app,
};

#[tokio::test]
async fn overdue_writes_a_killed_daemon_left_unfinished_are_finished_by_the_next_start() {
    if crate::support::sqlite_only(
        "the instance lock lets the next start take over at once; replicas take over a dead replica by its heartbeat (chaos::replicas_*)",
    ) {
        return;
    }
    let sim = notion_sim::start(sim_config(6)).await.unwrap();
    add_waiting_status(&sim);
    let tasks: Vec<String> = sim.pages().into_iter().map(|p| p.id).take(2).collect();
    let (landed, lost) = (tasks[0].clone(), tasks[1].clone());
    for t in &tasks {
        make_overdue_candidate(&sim, t);
    }
    let due = sim.page(&lost).unwrap().due.unwrap();
    // The killed daemon had begun both writes; Notion had applied one of the PATCHes.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notion-sync.db");
    let dead = Store::open(
        StoreConfig {
            claimant: "serve:4242:0badc0de".into(),
            ..crate::support::store_config(&db)
        },
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    for t in &tasks {
        dead.begin_status_write(&id(t), &due, "Overdue")
            .await
            .unwrap();
    }
    dead.close().await;
    sim.set_status(&landed, "Overdue").unwrap();
    sim.clear_request_log();

    let open = [("TASKS__OPEN_STATUSES", "[\"Waiting\"]")];
    let app = start_app(&sim, &db, &open, None, Default::default())
        .await
        .unwrap();
    poll_until("the unfinished writes to be finished", 20, || async {
        app.store.transitions(None).await.unwrap().len() == 2
    })
    .await;
    assert_eq!(sim.page(&lost).unwrap().status.as_deref(), Some("Overdue"));
    let patches = patches_per_page(&sim);
    assert_eq!(
        patches.keys().cloned().collect::<Vec<_>>(),
        vec![format!("/v1/pages/{lost}")],
        "the lost PATCH is made once, the landed one is confirmed by a GET: {patches:?}"
    );
    assert_eq!(patches.values().copied().collect::<Vec<_>>(), vec![1]);
    let confirmed = app.store.transitions(Some(&id(&landed))).await.unwrap();
    assert!(
        confirmed[0]
            .reason
            .ends_with("(confirmed after an interrupted write)"),
        "{}",
        confirmed[0].reason
    );
    app.stop().await.unwrap();
}
