//! The schema guard: drift pauses writes (mirroring goes on), a fix resumes them.

use std::time::Duration;

use notion_sim::NewTask;
use sync_engine::SchemaState;

use crate::support::{env, sim_config};

#[tokio::test]
async fn renaming_the_due_property_pauses_writes_and_renaming_back_resumes_them() {
    let env = env(sim_config(5)).await;
    env.pass().await;
    assert!(matches!(env.engine.status().schema(), SchemaState::Ok(_)));
    let patches_before = env.count("PATCH", "/v1/pages/{id}");

    env.sim.rename_property("Due Date", "Deadline").unwrap();
    let late = env.sim.create_task(NewTask {
        title: "late while drifted".into(),
        status: Some("To Do".into()),
        due: Some("2026-11-02".into()),
        silent: true,
        ..NewTask::default()
    });
    env.sim.advance(Duration::from_secs(90));
    env.pass().await;
    match env.engine.status().schema() {
        SchemaState::Drift(problems) => {
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].starts_with("due property \"Due Date\" not found in data source"),
                "{}",
                problems[0]
            );
            assert!(problems[0].contains("\"Deadline\""), "{}", problems[0]);
        }
        other => panic!("expected drift, got {other:?}"),
    }
    assert_eq!(
        env.count("PATCH", "/v1/pages/{id}"),
        patches_before,
        "no write while drifted"
    );
    // Mirroring continues.
    let row = env
        .store
        .get_page(&crate::support::id(&late))
        .await
        .unwrap()
        .expect("still mirrored");
    assert_eq!(row.title, "late while drifted");
    assert_eq!(row.due, None);

    env.sim.rename_property("Deadline", "Due Date").unwrap();
    env.sim.advance(Duration::from_secs(90));
    env.pass().await;
    assert!(matches!(env.engine.status().schema(), SchemaState::Ok(_)));
    assert_eq!(
        env.sim.page(&late).unwrap().status.as_deref(),
        Some("Overdue")
    );
}

#[tokio::test]
async fn a_missing_overdue_option_or_a_retyped_status_is_drift() {
    let env = env(sim_config(2)).await;
    env.sim.remove_status_option("Overdue").unwrap();
    // The schema guard reads the schema again (as a `schema.check` job would).
    env.engine.initialize().await.unwrap();
    match env.engine.status().schema() {
        SchemaState::Drift(p) => assert!(
            p[0].starts_with("overdue status \"Overdue\" is not an option of property \"Status\""),
            "{p:?}"
        ),
        other => panic!("{other:?}"),
    }
    env.sim.add_status_option("Overdue", "In progress").unwrap();
    env.engine.initialize().await.unwrap();
    assert!(matches!(env.engine.status().schema(), SchemaState::Ok(_)));
}
