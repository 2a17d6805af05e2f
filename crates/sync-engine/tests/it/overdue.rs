//! The overdue rule: exactly the right tasks, each written once.

use notion_sim::NewTask;

use crate::support::{self, Env, env, env_with, sim_config};

fn task(env: &Env, title: &str, status: &str, due: Option<&str>) -> String {
    env.sim.create_task(NewTask {
        title: title.into(),
        status: Some(status.into()),
        due: due.map(Into::into),
        silent: true,
        ..NewTask::default()
    })
}

fn patches(env: &Env) -> usize {
    env.count("PATCH", "/v1/pages/{id}")
}

#[tokio::test]
async fn marks_exactly_open_past_due_tasks_once_across_passes_and_a_restart() {
    // The sim clock starts at 2026-11-23T10:00:05Z.
    let env = env(sim_config(0)).await;
    let a = task(&env, "A open, due last week", "To Do", Some("2026-11-16"));
    let b = task(
        &env,
        "B in progress, due yesterday",
        "In Progress",
        Some("2026-11-22"),
    );
    let h = task(
        &env,
        "H due yesterday 23:00 UTC",
        "To Do",
        Some("2026-11-22T23:00:00.000+00:00"),
    );
    let keep = [
        (
            "Done",
            task(&env, "C done long ago", "Done", Some("2026-11-01")),
        ),
        (
            "To Do",
            task(&env, "D due today", "To Do", Some("2026-11-23")),
        ),
        (
            "Overdue",
            task(&env, "E already overdue", "Overdue", Some("2026-11-01")),
        ),
        ("To Do", task(&env, "F no due date", "To Do", None)),
        (
            "To Do",
            task(&env, "G due tomorrow", "To Do", Some("2026-11-24")),
        ),
        (
            "In Progress",
            task(
                &env,
                "I due today 09:00 UTC",
                "In Progress",
                Some("2026-11-23T09:00:00.000+00:00"),
            ),
        ),
    ];
    let first = env.pass().await;
    assert_eq!(first.overdue_marked, 3);
    for id in [&a, &b, &h] {
        assert_eq!(
            env.sim.page(id).unwrap().status.as_deref(),
            Some("Overdue"),
            "{id}"
        );
        let row = env.store.get_page(&support::id(id)).await.unwrap().unwrap();
        assert_eq!(
            row.status.as_deref(),
            Some("Overdue"),
            "mirror updated from the PATCH response"
        );
    }
    for (status, id) in &keep {
        let p = env.sim.page(id).unwrap();
        assert_eq!(p.status.as_deref(), Some(*status), "{} left alone", p.title);
    }
    assert_eq!(patches(&env), 3);
    let transitions = env.store.transitions(None).await.unwrap();
    assert_eq!(transitions.len(), 3);
    let ta = transitions
        .iter()
        .find(|t| t.page_id == support::id(&a))
        .unwrap();
    assert_eq!(ta.from_status.as_deref(), Some("To Do"));
    assert_eq!(ta.to_status, "Overdue");
    assert!(ta.reason.contains("2026-11-16"), "{}", ta.reason);

    env.sim.advance(std::time::Duration::from_secs(90));
    let second = env.pass().await;
    assert_eq!(second.overdue_marked, 0);
    let env = env.restart().await;
    env.sim.advance(std::time::Duration::from_secs(90));
    env.pass().await;
    assert_eq!(patches(&env), 3, "no task is written twice");

    // A person moves A back: it is left alone for that due date.
    env.sim.set_status(&a, "In Progress").unwrap();
    env.sim.advance(std::time::Duration::from_secs(90));
    env.pass().await;
    assert_eq!(
        env.sim.page(&a).unwrap().status.as_deref(),
        Some("In Progress")
    );
    assert_eq!(patches(&env), 3);
    // ...until its due date changes and passes again.
    env.sim.set_due(&a, Some("2026-11-21")).unwrap();
    env.sim.advance(std::time::Duration::from_secs(90));
    env.pass().await;
    assert_eq!(env.sim.page(&a).unwrap().status.as_deref(), Some("Overdue"));
    assert_eq!(patches(&env), 4);
    env.assert_exact().await;
}

#[tokio::test]
async fn today_depends_on_the_configured_time_zone() {
    // 10:00 UTC on the 23rd is already the 24th in Kiritimati (UTC+14).
    for (tz, expected) in [
        (chrono_tz::UTC, None),
        (chrono_tz::Pacific::Kiritimati, Some("Overdue")),
    ] {
        let env = env_with(sim_config(0), move |c| c.tasks.timezone = tz).await;
        let id = task(&env, "due the 23rd", "To Do", Some("2026-11-23"));
        env.pass().await;
        let status = env.sim.page(&id).unwrap().status;
        assert_eq!(status.as_deref(), expected.or(Some("To Do")), "in {tz}");
    }
}

#[tokio::test]
async fn the_rule_can_be_turned_off() {
    let env = env_with(sim_config(0), |c| c.tasks.mark_overdue = false).await;
    let id = task(&env, "late", "To Do", Some("2026-11-01"));
    env.pass().await;
    assert_eq!(env.sim.page(&id).unwrap().status.as_deref(), Some("To Do"));
    assert_eq!(patches(&env), 0);
}

#[tokio::test]
async fn open_statuses_default_to_everything_outside_the_complete_group() {
    let env = env_with(sim_config(0), |c| c.tasks.open_statuses.clear()).await;
    let todo = task(&env, "todo", "To Do", Some("2026-11-01"));
    let done = task(&env, "done", "Done", Some("2026-11-01"));
    env.pass().await;
    assert_eq!(
        env.sim.page(&todo).unwrap().status.as_deref(),
        Some("Overdue")
    );
    assert_eq!(env.sim.page(&done).unwrap().status.as_deref(), Some("Done"));
}

#[tokio::test]
async fn an_interrupted_write_that_landed_is_confirmed_not_repeated() {
    let mut config = sim_config(0);
    let delay = std::time::Duration::from_secs(3);
    config.visibility_delay = delay;
    let env = env(config).await;
    let id = task(&env, "written before a crash", "To Do", Some("2026-11-10"));
    env.wait_visible(delay).await;
    // A previous run began the write and crashed after Notion applied the PATCH...
    env.store
        .begin_status_write(&support::id(&id), "2026-11-10", "Overdue")
        .await
        .unwrap();
    env.store
        .release_status_write(&support::id(&id), "2026-11-10", "Overdue")
        .await
        .unwrap();
    env.sim.set_status(&id, "Overdue").unwrap();
    // ...and queries still show the old status (visibility delay).
    let summary = env.pass().await;
    assert_eq!(summary.overdue_marked, 1);
    assert_eq!(patches(&env), 0, "confirmed with a GET, not written again");
    let transitions = env
        .store
        .transitions(Some(&support::id(&id)))
        .await
        .unwrap();
    assert_eq!(transitions.len(), 1);
    assert!(
        transitions[0]
            .reason
            .ends_with("(confirmed after an interrupted write)"),
        "{}",
        transitions[0].reason
    );
    let row = env
        .store
        .get_page(&support::id(&id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status.as_deref(), Some("Overdue"));
}

#[tokio::test]
async fn a_task_trashed_before_its_overdue_write_is_left_alone_not_a_failure() {
    let env = env(sim_config(0)).await;
    let id = task(
        &env,
        "late, about to be trashed",
        "To Do",
        Some("2026-11-01"),
    );
    // Queries lag: the pass still sees the task open while it is already in the trash,
    // so the PATCH meets "Can't edit block that is archived" (400).
    let delay = std::time::Duration::from_secs(2);
    env.sim.set_visibility_delay(delay);
    env.wait_visible(delay).await;
    env.sim.set_silent(true);
    env.sim.trash(&id).unwrap();
    let summary = env.pass().await;
    assert_eq!(summary.overdue_marked, 0);
    assert_eq!(patches(&env), 1, "one write tried");
    let page = env.sim.page(&id).unwrap();
    assert!(page.in_trash);
    assert_eq!(page.status.as_deref(), Some("To Do"));
    let row = env
        .store
        .get_page(&support::id(&id))
        .await
        .unwrap()
        .unwrap();
    assert!(row.in_trash, "the mirror learned it from a GET");
    assert!(env.store.transitions(None).await.unwrap().is_empty());
    // Nothing is retried and no job died.
    let report = env.drain().await;
    assert_eq!(report.dead, 0);
    assert_eq!(patches(&env), 1);
}

/// The PATCH meets "Can't edit block that is archived" (the task was in the trash at that
/// moment) but the GET after it shows the task restored: the job is retried, not dead,
/// and the retry marks it once.
#[tokio::test]
async fn a_task_restored_right_after_its_write_was_refused_is_retried_not_dead() {
    let env = env(sim_config(0)).await;
    env.pass().await;
    let id = task(&env, "trashed and restored", "To Do", Some("2026-11-01"));
    env.sim.refuse_next(
        "PATCH",
        "/v1/pages/{id}",
        400,
        "validation_error",
        "Can't edit block that is archived. You must unarchive the block before editing.",
        1,
    );
    let work = sync_engine::PageSyncPayload::props_check();
    let first = env
        .engine
        .sync_page(support::id(&id), &work, sync_store::Lane::Interactive)
        .await
        .unwrap_err();
    assert!(!first.is_permanent(), "{first}");
    assert_eq!(env.sim.page(&id).unwrap().status.as_deref(), Some("To Do"));
    env.engine
        .sync_page(support::id(&id), &work, sync_store::Lane::Interactive)
        .await
        .unwrap();
    assert_eq!(
        env.sim.page(&id).unwrap().status.as_deref(),
        Some("Overdue")
    );
    let written = env
        .sim
        .request_log()
        .iter()
        .filter(|r| r.method == "PATCH" && r.status == 200)
        .count();
    assert_eq!(written, 1);
    assert_eq!(
        env.store
            .transitions(Some(&support::id(&id)))
            .await
            .unwrap()
            .len(),
        1
    );
}
