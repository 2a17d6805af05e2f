//! The reconciler catches what webhooks miss (here: no webhooks at all).

use std::time::Duration;

use notion_sim::{BodyEdit, NewTask, SimBlock};
use sync_engine::PassKind;

use crate::support::{env, sim_config};

#[tokio::test]
async fn first_pass_is_a_full_scan_that_mirrors_everything_exactly() {
    let env = env(sim_config(120)).await;
    let summary = env.pass().await;
    assert_eq!(summary.kind, "full");
    assert_eq!(summary.pages_seen, 120);
    assert_eq!(summary.bodies_queued, 120);
    env.assert_exact().await;
    let rec = env.engine.status().reconcile();
    assert!(rec.last_success_at.is_some());
    assert!(rec.last_error.is_none());
    assert!(summary.watermark.is_some());
}

#[tokio::test]
async fn silent_body_edit_reaches_the_mirror_in_the_next_pass_despite_a_5s_visibility_delay() {
    let mut config = sim_config(20);
    config.visibility_delay = Duration::from_secs(5);
    let env = env(config).await;
    env.pass().await;
    env.assert_exact().await;

    env.sim.set_silent(true);
    let id = env.live_ids()[3].clone();
    env.sim
        .edit_body(&id, BodyEdit::AppendParagraph("Silent addendum".into()))
        .unwrap();
    // Queried at once, Notion does not show the edit yet.
    let early = env.pass().await;
    assert_eq!(early.bodies_queued, 0, "the edit is not visible yet");
    assert!(!env.mismatches().await.is_empty(), "mirror cannot know yet");

    env.wait_visible(Duration::from_secs(5)).await;
    let next = env.pass().await;
    assert!(next.bodies_queued >= 1);
    env.assert_exact().await;
    let row = env
        .store
        .get_page(&crate::support::id(&id))
        .await
        .unwrap()
        .unwrap();
    assert!(row.body_markdown.unwrap().ends_with("Silent addendum"));
}

#[tokio::test]
async fn two_silent_edits_within_one_minute_both_arrive() {
    let env = env(sim_config(10)).await;
    env.pass().await;
    env.sim.set_silent(true);
    let id = env.live_ids()[0].clone();
    env.sim.set_now(crate::support::at("2026-11-23T10:05:05Z"));

    env.sim
        .edit_body(&id, BodyEdit::AppendParagraph("first edit".into()))
        .unwrap();
    env.pass().await;
    env.assert_exact().await;

    // Same minute: last_edited_time does not move.
    env.sim.advance(Duration::from_secs(30));
    let before = env.sim.page(&id).unwrap().last_edited_time;
    env.sim
        .edit_body(&id, BodyEdit::AppendParagraph("second edit".into()))
        .unwrap();
    assert_eq!(env.sim.page(&id).unwrap().last_edited_time, before);
    let summary = env.pass().await;
    assert_eq!(summary.bodies_queued, 1);
    env.assert_exact().await;
    let body = env
        .store
        .get_page(&crate::support::id(&id))
        .await
        .unwrap()
        .unwrap()
        .body_markdown
        .unwrap();
    assert!(
        body.contains("first edit") && body.contains("second edit"),
        "{body}"
    );
}

/// A property edit whose webhook's GET read it while its minute was open, then a silent
/// body edit later in the same minute (no event, `last_edited_time` unchanged): the
/// next incremental pass re-checks that body (bulk lane) instead of leaving it to the
/// nightly full scan; and only once.
#[tokio::test]
async fn a_silent_body_edit_in_the_minute_of_a_property_edit_already_read_is_caught_by_the_next_pass()
 {
    let env = env(sim_config(10)).await;
    env.pass().await;
    env.assert_exact().await;
    let id = env.live_ids()[0].clone();
    env.sim.set_now(crate::support::at("2026-11-23T10:07:05Z"));
    env.sim
        .set_title(&id, "Renamed in the open minute")
        .unwrap();
    // The webhook's job reads the properties at once, within the minute.
    env.sim.advance(Duration::from_secs(1));
    env.read_props(&id).await;
    let before = env.sim.page(&id).unwrap().last_edited_time;
    env.sim.set_silent(true);
    env.sim.advance(Duration::from_secs(20));
    env.sim
        .edit_body(&id, BodyEdit::AppendParagraph("silent, same minute".into()))
        .unwrap();
    assert_eq!(env.sim.page(&id).unwrap().last_edited_time, before);
    // The minute closes; the next incremental pass finds it.
    env.sim.advance(Duration::from_secs(120));
    // (Other pages the first scan read while their minute was open are re-checked
    // once too.)
    let summary = env.pass().await;
    assert!(summary.bodies_queued >= 1);
    env.assert_exact().await;
    // Proven now (read after the minute closed): the pass after costs no body read.
    env.sim.advance(Duration::from_secs(60));
    assert_eq!(env.pass().await.bodies_queued, 0);
}

#[tokio::test]
async fn a_page_created_silently_arrives_and_a_deleted_one_is_found_by_the_full_scan() {
    let env = env(sim_config(10)).await;
    env.pass().await;
    env.sim.set_silent(true);
    let new = env.sim.create_task(NewTask {
        title: "Created without a webhook".into(),
        status: Some("To Do".into()),
        due: Some("2026-12-01".into()),
        body: vec![SimBlock::Paragraph("hello".into())],
        silent: true,
    });
    let gone = env.live_ids()[0].clone();
    env.sim.unshare(&gone).unwrap();

    let incremental = env.pass().await;
    assert_eq!(incremental.kind, "incremental");
    let row = env
        .store
        .get_page(&crate::support::id(&new))
        .await
        .unwrap()
        .expect("new page mirrored");
    assert_eq!(row.title, "Created without a webhook");
    assert_eq!(row.body_markdown.as_deref(), Some("hello"));
    // Unsharing leaves no trace in an incremental query: only a full scan finds it.
    assert!(
        !env.store
            .get_page(&crate::support::id(&gone))
            .await
            .unwrap()
            .unwrap()
            .in_trash
    );

    env.sim.advance(Duration::from_secs(120));
    let full = env.full_pass().await;
    assert_eq!(full.kind, "full");
    assert_eq!(full.pages_trashed, 1);
    assert!(
        env.store
            .get_page(&crate::support::id(&gone))
            .await
            .unwrap()
            .unwrap()
            .in_trash
    );
    env.assert_exact().await;
}

/// Query rows count as observed a visibility margin before their answer, so a page read
/// by a GET inside that margin just before a full scan looks as recent as the scan's own
/// rows. Trashed right after that read (its webhook lost), the scan does not return it:
/// the scan's ids tell, and that scan finds it trashed (not the next one, a day later).
#[tokio::test]
async fn a_page_read_just_before_a_full_scan_and_trashed_silently_is_found_by_that_scan() {
    let env = env(sim_config(5)).await;
    assert_eq!(env.pass().await.kind, "full");
    env.drain().await;
    env.sim.advance(Duration::from_secs(120));
    let read = env.live_ids()[0].clone();
    env.read_props(&read).await;
    env.sim.advance(Duration::from_secs(2));
    env.sim.trash(&read).unwrap();
    env.sim.advance(Duration::from_secs(2));

    let full = env.full_pass().await;
    assert_eq!(full.pages_trashed, 1, "{full:?}");
    let row = env
        .store
        .get_page(&crate::support::id(&read))
        .await
        .unwrap()
        .unwrap();
    assert!(row.in_trash);
    env.assert_exact().await;
}

/// Notion's queries return at most 10,000 results (here 30), then stop with
/// `request_status: incomplete`: a full scan queries on from the last row's minute, so a
/// large data source is mirrored whole and no page past the limit looks deleted.
#[tokio::test]
async fn a_full_scan_reads_past_the_per_query_result_limit() {
    let env = env(sim_config(80)).await;
    env.sim.set_query_result_limit(30);
    let first = env.pass().await;
    assert_eq!(first.kind, "full");
    assert!(first.pages_seen >= 80, "{first:?}");
    assert!(first.query_requests >= 3, "{first:?}");
    env.drain().await;
    env.assert_exact().await;
    env.sim.advance(Duration::from_secs(120));
    env.sim.clear_request_log();
    let full = env.full_pass().await;
    assert_eq!(full.pages_trashed, 0, "{full:?}");
    assert_eq!(
        env.count("GET", "/v1/pages/{id}"),
        0,
        "no page past the limit is confirmed by a GET as if deleted"
    );
    env.assert_exact().await;
}

/// A bulk edit of more pages than one query returns puts them all in one minute of
/// `last_edited_time`: the pass reads that minute in windows of `created_time`.
#[tokio::test]
async fn a_bulk_edit_larger_than_the_result_limit_in_one_minute_is_read_whole() {
    let env = env(sim_config(80)).await;
    assert_eq!(env.pass().await.kind, "full");
    env.drain().await;
    let minute = chrono::DateTime::parse_from_rfc3339("2030-01-07T09:30:05Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    env.sim.set_now(minute);
    env.sim.set_silent(true);
    for (i, id) in env.live_ids().iter().enumerate() {
        env.sim.set_title(id, &format!("Bulk renamed {i}")).unwrap();
    }
    env.sim.set_query_result_limit(30);
    env.sim.clear_request_log();
    let pass = env.pass().await;
    assert!(pass.pages_seen >= 80, "{pass:?}");
    assert_eq!(
        env.count("GET", "/v1/pages/{id}"),
        0,
        "read by query, not one GET each"
    );
    env.drain().await;
    env.assert_exact().await;
}

#[tokio::test]
async fn watermark_follows_notions_clock_not_ours() {
    let env = env(sim_config(3)).await;
    // Notion's clock is 3 days behind ours here.
    env.sim.set_now(crate::support::at("2026-11-20T08:30:42Z"));
    let s = env
        .engine
        .reconcile(PassKind::Full, &env.cancel)
        .await
        .unwrap();
    assert_eq!(s.watermark.as_deref(), Some("2026-11-20T08:29:00.000Z"));
}

#[tokio::test]
async fn passes_never_overlap() {
    let env = env(sim_config(300)).await;
    let (a, b) = tokio::join!(
        env.engine.reconcile(PassKind::Full, &env.cancel),
        env.engine.reconcile(PassKind::Full, &env.cancel)
    );
    let errors = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Err(sync_engine::ReconcileError::AlreadyRunning)))
        .count();
    assert_eq!(errors, 1, "exactly one of two concurrent passes runs");
}

#[tokio::test]
async fn an_interrupted_first_sync_resumes_where_it_stopped() {
    let env = env(sim_config(450)).await;
    // Slow Notion down so the scan can be stopped after its second page of results.
    env.sim.set_faults(notion_sim::Faults {
        latency: Duration::from_millis(60),
        ..notion_sim::Faults::default()
    });
    let cancel = env.cancel.clone();
    let engine = env.engine.clone();
    let watcher = tokio::spawn(async move {
        loop {
            let seen = engine
                .status()
                .reconcile()
                .running
                .map_or(0, |p| p.pages_seen);
            if seen >= 200 {
                cancel.cancel();
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let r = env
        .engine
        .reconcile(PassKind::Incremental, &env.cancel)
        .await;
    assert!(
        matches!(r, Err(sync_engine::ReconcileError::Cancelled)),
        "{r:?}"
    );
    let seen_before = watcher.await.unwrap();
    let progress = env
        .store
        .get_state(&format!("scan:{}", env.sim.data_source_id()))
        .await
        .unwrap();
    assert!(progress.is_some(), "full-scan progress is persisted");
    env.sim.set_faults(notion_sim::Faults::default());
    let env = env.restart().await;
    env.sim.clear_request_log();
    let resumed = env.pass().await;
    assert!(resumed.resumed);
    assert_eq!(resumed.kind, "full");
    // It went on from the last processed page instead of starting over: the pages it
    // queried again are the 250 left plus the few sharing the last minute.
    let requeried = resumed.pages_seen - seen_before;
    assert!(
        requeried < 300,
        "{requeried} pages queried again after stopping at {seen_before}"
    );
    env.assert_exact().await;
}
