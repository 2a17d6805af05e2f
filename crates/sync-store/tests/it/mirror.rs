//! The mirror: upsert outcomes and stale-write protection, bodies, trash, listing filters,
//! transitions, overdue write intents, and the public column contract.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use sqlx::Row;
use sync_store::{PageFilter, PageUpsert, StatusWrite, StoreError, Transition, UpsertOutcome};

use crate::helpers::{fixtures_dir, id, open, raw};

const DS: &str = "248104cd-477e-80af-bc30-000bd6b0d5c5";

fn page(n: u32, status: Option<&str>, due: Option<&str>, observed_at: DateTime<Utc>) -> PageUpsert {
    PageUpsert {
        id: id(&format!("00000000-0000-4000-8000-{n:012x}")),
        data_source_id: Some(id(DS)),
        title: format!("Task {n}"),
        status: status.map(str::to_owned),
        due: due.map(str::to_owned),
        url: format!("https://www.notion.so/Task-{n}"),
        created_time: observed_at - ChronoDuration::days(3),
        last_edited_time: observed_at - ChronoDuration::minutes(1),
        in_trash: false,
        properties: format!(r#"{{"Name":{{"title":[{{"plain_text":"Task {n}"}}]}}}}"#),
        observed_at,
    }
}

#[tokio::test]
async fn upsert_reports_inserted_unchanged_updated_and_ignores_stale_observations() {
    let t = open().await;
    let s = &t.store;
    let t0 = t.now();
    let p = page(1, Some("To Do"), Some("2026-11-20"), t0);
    assert_eq!(s.upsert_page(&p).await.unwrap(), UpsertOutcome::Inserted);
    t.advance(10);

    let later = PageUpsert {
        observed_at: t0 + ChronoDuration::seconds(5),
        ..p.clone()
    };
    assert_eq!(
        s.upsert_page(&later).await.unwrap(),
        UpsertOutcome::Unchanged
    );
    let row = s.get_page(&p.id).await.unwrap().unwrap();
    assert_eq!(row.observed_at, later.observed_at);
    assert_eq!(row.synced_at, t.now());

    // A slow GET that started before `later` finishes now with older data: ignored.
    let slow = PageUpsert {
        status: Some("In Progress".into()),
        observed_at: t0 + ChronoDuration::seconds(1),
        ..p.clone()
    };
    assert_eq!(s.upsert_page(&slow).await.unwrap(), UpsertOutcome::Stale);
    assert_eq!(
        s.get_page(&p.id).await.unwrap().unwrap().status.as_deref(),
        Some("To Do")
    );

    // Equal observation time applies.
    let equal = PageUpsert {
        status: Some("Done".into()),
        ..later.clone()
    };
    assert_eq!(s.upsert_page(&equal).await.unwrap(), UpsertOutcome::Updated);
    let row = s.get_page(&p.id).await.unwrap().unwrap();
    assert_eq!(row.status.as_deref(), Some("Done"));
    assert_eq!(row.title, "Task 1");
    assert_eq!(row.created_time, p.created_time);
    assert_eq!(row.last_edited_time, p.last_edited_time);
    assert_eq!(row.properties, p.properties);
    assert!(!row.in_trash);
}

#[tokio::test]
async fn ids_are_stored_as_dashed_lowercase_uuids() {
    let t = open().await;
    let s = &t.store;
    let mut p = page(7, None, None, t.now());
    p.id = id("393ABC1EEDCD81F5AE94EC2D55FE98ED");
    s.upsert_page(&p).await.unwrap();
    let row = s
        .get_page(&id("393abc1e-edcd-81f5-ae94-ec2d55fe98ed"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.id.to_string(), "393abc1e-edcd-81f5-ae94-ec2d55fe98ed");
    let stored = crate::helpers::raw_strings(&t, "SELECT id FROM pages").await;
    assert_eq!(stored, ["393abc1e-edcd-81f5-ae94-ec2d55fe98ed"]);
    assert!(
        s.get_page(&p.id).await.unwrap().is_some(),
        "lookups normalise too"
    );
}

#[tokio::test]
async fn upsert_pages_is_one_call_with_one_outcome_per_page() {
    let t = open().await;
    let s = &t.store;
    let pages: Vec<_> = (0..100)
        .map(|n| page(n, Some("To Do"), None, t.now()))
        .collect();
    let out = s.upsert_pages(&pages).await.unwrap();
    assert_eq!(out.len(), 100);
    assert!(out.iter().all(|o| *o == UpsertOutcome::Inserted));
    let mut changed = pages.clone();
    changed[3].title = "renamed".into();
    let out = s.upsert_pages(&changed).await.unwrap();
    assert_eq!(out[3], UpsertOutcome::Updated);
    assert_eq!(
        out.iter()
            .filter(|o| **o == UpsertOutcome::Unchanged)
            .count(),
        99
    );
    assert_eq!(s.page_count().await.unwrap(), 100);
}

#[tokio::test]
async fn bodies_are_stored_with_hash_and_notion_fetch_time_and_never_go_back_in_time() {
    let t = open().await;
    let s = &t.store;
    let p = page(1, None, None, t.now());
    let err = s
        .set_page_body(&p.id, "# hi", "h0", t.now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PageNotFound { ref id } if *id == p.id.to_string()),
        "{err:?}"
    );

    s.upsert_page(&p).await.unwrap();
    let fetched = t.now() + ChronoDuration::seconds(2);
    s.set_page_body(&p.id, "# Title\n\nbody", "h1", fetched)
        .await
        .unwrap();
    let older = t.now() + ChronoDuration::seconds(1);
    s.set_page_body(&p.id, "# old", "h-old", older)
        .await
        .unwrap();
    let row = s.get_page(&p.id).await.unwrap().unwrap();
    assert_eq!(row.body_markdown.as_deref(), Some("# Title\n\nbody"));
    assert_eq!(row.body_hash.as_deref(), Some("h1"));
    assert_eq!(row.body_fetched_at, Some(fetched));
    // Property upserts leave the body alone.
    s.upsert_page(&PageUpsert {
        title: "new".into(),
        observed_at: fetched,
        ..p.clone()
    })
    .await
    .unwrap();
    assert_eq!(
        s.get_page(&p.id)
            .await
            .unwrap()
            .unwrap()
            .body_hash
            .as_deref(),
        Some("h1")
    );
}

#[tokio::test]
async fn mark_trashed_respects_observation_order_and_restores_on_newer_data() {
    let t = open().await;
    let s = &t.store;
    let t0 = t.now();
    let p = page(1, Some("To Do"), None, t0);
    assert!(!s.mark_trashed(&p.id, t0).await.unwrap(), "unknown page");
    s.upsert_page(&p).await.unwrap();
    assert!(
        !s.mark_trashed(&p.id, t0 - ChronoDuration::seconds(1))
            .await
            .unwrap(),
        "stale"
    );
    assert!(
        s.mark_trashed(&p.id, t0 + ChronoDuration::seconds(1))
            .await
            .unwrap()
    );
    assert!(
        !s.mark_trashed(&p.id, t0 + ChronoDuration::seconds(2))
            .await
            .unwrap(),
        "already"
    );
    assert_eq!(s.page_count().await.unwrap(), 0);
    assert!(s.page_ids(&id(DS), false).await.unwrap().is_empty());
    assert_eq!(
        s.page_ids(&id(DS), true).await.unwrap(),
        std::slice::from_ref(&p.id)
    );
    assert!(s.get_page(&p.id).await.unwrap().unwrap().in_trash);
    // Restored from the trash in Notion, observed later.
    let back = PageUpsert {
        observed_at: t0 + ChronoDuration::seconds(3),
        ..p.clone()
    };
    assert_eq!(s.upsert_page(&back).await.unwrap(), UpsertOutcome::Updated);
    assert_eq!(s.page_count().await.unwrap(), 1);
}

#[tokio::test]
async fn list_pages_filters_by_source_status_due_and_trash() {
    let t = open().await;
    let s = &t.store;
    let now = t.now();
    s.upsert_page(&page(1, Some("To Do"), Some("2026-11-20"), now))
        .await
        .unwrap();
    s.upsert_page(&page(
        2,
        Some("In Progress"),
        Some("2026-11-22T09:00:00.000+01:00"),
        now,
    ))
    .await
    .unwrap();
    s.upsert_page(&page(3, Some("Done"), Some("2026-11-01"), now))
        .await
        .unwrap();
    s.upsert_page(&page(4, Some("To Do"), Some("2026-11-24"), now))
        .await
        .unwrap();
    s.upsert_page(&page(5, Some("To Do"), None, now))
        .await
        .unwrap();
    let mut other = page(6, Some("To Do"), Some("2026-11-02"), now);
    other.data_source_id = Some(id("0000000a-477e-80af-bc30-000bd6b0d5c5"));
    s.upsert_page(&other).await.unwrap();
    let trashed = page(7, Some("To Do"), Some("2026-11-03"), now);
    s.upsert_page(&trashed).await.unwrap();
    s.mark_trashed(&trashed.id, now).await.unwrap();

    let titles = |rows: Vec<sync_store::PageRow>| -> Vec<String> {
        rows.into_iter().map(|r| r.title).collect()
    };
    let open_overdue = PageFilter {
        data_source_id: Some(id(DS)),
        statuses: Some(vec!["To Do".into(), "In Progress".into()]),
        due_before: Some("2026-11-23".into()),
        ..Default::default()
    };
    assert_eq!(
        titles(s.list_pages(open_overdue.clone()).await.unwrap()),
        ["Task 1", "Task 2"]
    );
    let with_trash = PageFilter {
        include_trashed: true,
        ..open_overdue.clone()
    };
    assert_eq!(
        titles(s.list_pages(with_trash).await.unwrap()),
        ["Task 7", "Task 1", "Task 2"]
    );
    let everything = titles(s.list_pages(PageFilter::default()).await.unwrap());
    assert_eq!(
        everything,
        ["Task 3", "Task 6", "Task 1", "Task 2", "Task 4", "Task 5"]
    );
    let none = PageFilter {
        statuses: Some(vec![]),
        ..Default::default()
    };
    assert!(s.list_pages(none).await.unwrap().is_empty());
    let limited = PageFilter {
        limit: Some(2),
        ..Default::default()
    };
    assert_eq!(s.list_pages(limited).await.unwrap().len(), 2);
}

#[tokio::test]
async fn scan_helpers_return_ids_counts_and_dues_without_whole_rows() {
    let t = open().await;
    let s = &t.store;
    let t0 = t.now();
    let seen_before = page(1, Some("To Do"), Some("2026-11-20"), t0);
    let seen_after = page(
        2,
        Some("Done"),
        Some("2026-11-01"),
        t0 + ChronoDuration::seconds(30),
    );
    let no_due = page(3, Some("To Do"), None, t0);
    let mut other = page(4, Some("To Do"), Some("2026-11-02"), t0);
    other.data_source_id = Some(id("11111111-477e-80af-bc30-000bd6b0d5c5"));
    let mut trashed = page(5, Some("To Do"), Some("2026-11-03"), t0);
    trashed.in_trash = true;
    for p in [&seen_before, &seen_after, &no_due, &other, &trashed] {
        s.upsert_page(p).await.unwrap();
    }
    let scan_start = t0 + ChronoDuration::seconds(10);
    assert_eq!(
        s.page_ids_observed_before(&id(DS), scan_start)
            .await
            .unwrap(),
        vec![seen_before.id, no_due.id]
    );
    assert_eq!(s.page_count_in(&id(DS)).await.unwrap(), 3);
    let open_dues = s
        .dues_with_status(&id(DS), &["To Do".to_owned(), "In Progress".to_owned()])
        .await
        .unwrap();
    assert_eq!(open_dues, vec![(seen_before.id, "2026-11-20".to_owned())]);
    assert!(s.dues_with_status(&id(DS), &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn transitions_are_recorded_in_order() {
    let t = open().await;
    let s = &t.store;
    let a = Transition {
        page_id: id("00000000-0000-4000-8000-000000000001"),
        from_status: Some("To Do".into()),
        to_status: "Overdue".into(),
        reason: "overdue".into(),
        at: t.now(),
    };
    let b = Transition {
        page_id: id("00000000-0000-4000-8000-000000000002"),
        from_status: None,
        to_status: "Overdue".into(),
        reason: "overdue".into(),
        at: t.now() + ChronoDuration::seconds(1),
    };
    s.record_transition(&b).await.unwrap();
    s.record_transition(&a).await.unwrap();
    assert_eq!(s.transitions(None).await.unwrap(), [a.clone(), b.clone()]);
    assert_eq!(s.transitions(Some(&a.page_id)).await.unwrap(), [a]);
}

/// A killed `serve` leaves its intents pending under its instance name; the next `serve`
/// (holding the instance lock) frees them at once; anonymous and done intents stay.
#[tokio::test]
async fn a_dead_instances_pending_intents_are_reclaimed_by_its_successor() {
    let t = crate::helpers::open_with(|c| c.claimant = "serve:111:aa".into()).await;
    let (due, to) = ("2026-11-20", "Overdue");
    let [left, done, anonymous] = [1, 2, 3].map(|n| page(n, Some("To Do"), Some(due), t.now()));
    for p in [&left, &done, &anonymous] {
        t.store.upsert_page(p).await.unwrap();
    }
    assert_eq!(
        t.store.begin_status_write(&left.id, due, to).await.unwrap(),
        StatusWrite::New
    );
    t.store.begin_status_write(&done.id, due, to).await.unwrap();
    let transition = Transition {
        page_id: done.id,
        from_status: Some("To Do".into()),
        to_status: to.into(),
        reason: "overdue".into(),
        at: t.now(),
    };
    t.store
        .finish_status_write(&done.id, due, to, &transition, None)
        .await
        .unwrap();
    t.store.close().await;
    let reopen = |claimant: &str| {
        let config = sync_store::StoreConfig {
            claimant: claimant.to_owned(),
            ..t.config.clone()
        };
        sync_store::Store::open(config, t.clock.clone())
    };
    let cli = reopen("").await.unwrap();
    assert_eq!(
        cli.begin_status_write(&anonymous.id, due, to)
            .await
            .unwrap(),
        StatusWrite::New
    );
    cli.close().await;

    let next = reopen("serve:222:bb").await.unwrap();
    assert_eq!(
        next.begin_status_write(&left.id, due, to).await.unwrap(),
        StatusWrite::InFlight,
        "inside the claim window, without reclaiming, it looks in flight"
    );
    assert!(next.reclaim_status_writes("").await.unwrap().is_empty());
    assert!(next.reclaim_status_writes("cli:").await.unwrap().is_empty());
    assert_eq!(
        next.reclaim_status_writes("serve:").await.unwrap(),
        vec![left.id]
    );
    assert_eq!(
        next.begin_status_write(&left.id, due, to).await.unwrap(),
        StatusWrite::Pending,
        "the successor confirms and finishes it"
    );
    assert_eq!(
        next.begin_status_write(&anonymous.id, due, to)
            .await
            .unwrap(),
        StatusWrite::InFlight,
        "an anonymous claim waits for its window"
    );
    assert_eq!(
        next.begin_status_write(&done.id, due, to).await.unwrap(),
        StatusWrite::Done
    );
    assert_eq!(
        next.reclaim_status_writes("serve:").await.unwrap(),
        vec![left.id],
        "the taken-over intent now carries the successor's name"
    );
    next.close().await;
}

#[tokio::test]
async fn status_write_intents_make_the_patch_happen_once() {
    let t = open().await;
    let s = &t.store;
    let p = page(1, Some("To Do"), Some("2026-11-20"), t.now());
    s.upsert_page(&p).await.unwrap();
    let (due, to) = ("2026-11-20", "Overdue");

    assert_eq!(s.status_write(&p.id, due, to).await.unwrap(), None);
    assert_eq!(
        s.begin_status_write(&p.id, due, to).await.unwrap(),
        StatusWrite::New
    );
    // Begun moments ago by someone else (maybe another process): leave it to them.
    assert_eq!(
        s.begin_status_write(&p.id, due, to).await.unwrap(),
        StatusWrite::InFlight
    );
    // Still unfinished after the claim window: a crash; the next attempt takes it over
    // and learns an earlier one is unfinished.
    t.advance(sync_store::STATUS_WRITE_CLAIM.as_secs() + 1);
    assert_eq!(
        s.begin_status_write(&p.id, due, to).await.unwrap(),
        StatusWrite::Pending
    );
    assert_eq!(
        s.begin_status_write(&p.id, due, to).await.unwrap(),
        StatusWrite::InFlight,
        "taking over renews the claim"
    );
    // A failed PATCH gives the claim up: the next attempt confirms at once.
    s.release_status_write(&p.id, due, to).await.unwrap();
    assert_eq!(
        s.begin_status_write(&p.id, due, to).await.unwrap(),
        StatusWrite::Pending
    );

    let transition = Transition {
        page_id: p.id,
        from_status: Some("To Do".into()),
        to_status: to.into(),
        reason: "overdue".into(),
        at: t.now(),
    };
    let patched = PageUpsert {
        status: Some(to.into()),
        observed_at: t.now() + ChronoDuration::seconds(1),
        ..p.clone()
    };
    assert_eq!(
        s.status_write(&p.id, due, to).await.unwrap(),
        Some(StatusWrite::Pending),
        "looking up does not create or change the intent"
    );
    s.finish_status_write(&p.id, due, to, &transition, Some(&patched))
        .await
        .unwrap();
    assert_eq!(
        s.status_write(&p.id, due, to).await.unwrap(),
        Some(StatusWrite::Done)
    );
    assert_eq!(
        s.begin_status_write(&p.id, due, to).await.unwrap(),
        StatusWrite::Done
    );
    assert_eq!(
        s.transitions(Some(&p.id)).await.unwrap(),
        std::slice::from_ref(&transition)
    );
    assert_eq!(
        s.get_page(&p.id).await.unwrap().unwrap().status.as_deref(),
        Some(to)
    );

    // A new due date is a new intent; abandoning a pending one forgets it, a done one stays.
    let due2 = "2026-11-21";
    assert_eq!(
        s.begin_status_write(&p.id, due2, to).await.unwrap(),
        StatusWrite::New
    );
    s.abandon_status_write(&p.id, due2, to).await.unwrap();
    assert_eq!(
        s.begin_status_write(&p.id, due2, to).await.unwrap(),
        StatusWrite::New
    );
    s.abandon_status_write(&p.id, due, to).await.unwrap();
    assert_eq!(
        s.begin_status_write(&p.id, due, to).await.unwrap(),
        StatusWrite::Done
    );
}

/// The `pages` and `task_transitions` columns are a public contract (users query them).
/// The mirror's first columns, in order: what users' queries name.
const CONTRACT_COLUMNS: [&str; 13] = [
    "id",
    "data_source_id",
    "title",
    "status",
    "due",
    "url",
    "created_time",
    "last_edited_time",
    "in_trash",
    "properties",
    "body_markdown",
    "body_hash",
    "synced_at",
];

#[tokio::test]
async fn mirror_tables_have_the_contract_columns_and_formats() {
    let t = open().await;
    let s = &t.store;
    s.upsert_page(&page(1, Some("To Do"), Some("2026-11-20"), t.now()))
        .await
        .unwrap();
    s.record_transition(&Transition {
        page_id: page(1, None, None, t.now()).id,
        from_status: Some("To Do".into()),
        to_status: "Overdue".into(),
        reason: "overdue".into(),
        at: t.now(),
    })
    .await
    .unwrap();
    if crate::helpers::on_postgres() {
        let pages = crate::helpers::raw_strings(
            &t,
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_name = 'pages' ORDER BY ordinal_position",
        )
        .await;
        assert_eq!(pages[..13], CONTRACT_COLUMNS);
        let row = crate::helpers::raw_strings(
            &t,
            "SELECT created_time || ' ' || synced_at || ' ' || in_trash || ' ' || \
                    pg_typeof(in_trash)::text FROM pages",
        )
        .await;
        assert_eq!(
            row,
            ["2026-11-20T17:43:00.000Z 2026-11-23T17:43:00.000Z 0 integer"]
        );
        return;
    }
    let mut conn = raw(&t.path()).await;
    let columns = |table: &'static str| {
        let sql = match table {
            "pages" => "SELECT name FROM pragma_table_info('pages') ORDER BY cid",
            _ => "SELECT name FROM pragma_table_info('task_transitions') ORDER BY cid",
        };
        sqlx::query_scalar::<_, String>(sql)
    };
    let pages = columns("pages").fetch_all(&mut conn).await.unwrap();
    assert_eq!(pages[..13], CONTRACT_COLUMNS);
    let transitions = columns("task_transitions")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    for c in ["page_id", "from_status", "to_status", "reason", "at"] {
        assert!(transitions.iter().any(|x| x == c), "task_transitions.{c}");
    }
    let row = sqlx::query("SELECT created_time, synced_at, in_trash, typeof(in_trash) FROM pages")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>(0), "2026-11-20T17:43:00.000Z");
    assert_eq!(row.get::<String, _>(1), "2026-11-23T17:43:00.000Z");
    assert_eq!(row.get::<i64, _>(2), 0);
    assert_eq!(row.get::<String, _>(3), "integer");
    let at: String = sqlx::query_scalar("SELECT at FROM task_transitions")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(at, "2026-11-23T17:43:00.000Z");
}

/// Conformance: a page as Notion returned it (recorded traffic) round-trips byte-exactly.
#[tokio::test]
async fn recorded_notion_page_properties_round_trip() {
    let Some(dir) = fixtures_dir() else { return };
    let t = open().await;
    let s = &t.store;
    let text = std::fs::read_to_string(dir.join("api/test_pages_retrieve.json")).unwrap();
    let cassette: serde_json::Value = serde_json::from_str(&text).unwrap();
    let get = cassette["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["request"]["method"] == "GET")
        .expect("a GET /v1/pages interaction");
    let body = &get["response"]["body"];
    let properties = serde_json::to_string(&body["properties"]).unwrap();
    let title = body["properties"]["title"]["title"][0]["plain_text"]
        .as_str()
        .unwrap();
    let upsert = PageUpsert {
        id: id(body["id"].as_str().unwrap()),
        data_source_id: Some(id(body["parent"]["page_id"].as_str().unwrap())),
        title: title.into(),
        status: None,
        due: None,
        url: body["url"].as_str().unwrap().into(),
        created_time: body["created_time"].as_str().unwrap().parse().unwrap(),
        last_edited_time: body["last_edited_time"].as_str().unwrap().parse().unwrap(),
        in_trash: body["in_trash"].as_bool().unwrap(),
        properties: properties.clone(),
        observed_at: t.now(),
    };
    assert_eq!(
        s.upsert_page(&upsert).await.unwrap(),
        UpsertOutcome::Inserted
    );
    let row = s.get_page(&upsert.id).await.unwrap().unwrap();
    assert_eq!(row.properties, properties);
    assert_eq!(row.id, id(body["id"].as_str().unwrap()));
    assert_eq!(
        row.last_edited_time
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        body["last_edited_time"].as_str().unwrap()
    );
    assert_eq!(
        s.upsert_page(&upsert).await.unwrap(),
        UpsertOutcome::Unchanged
    );
}

#[tokio::test]
async fn get_pages_reads_many_rows_at_once() {
    let t = open().await;
    let s = &t.store;
    let a = page(1, Some("To Do"), None, t.now());
    let b = page(2, Some("Done"), None, t.now());
    s.upsert_page(&a).await.unwrap();
    s.upsert_page(&b).await.unwrap();
    s.mark_trashed(&b.id, t.now()).await.unwrap();
    let missing = id("99999999-9999-4999-8999-999999999999");
    let got = s.get_pages(&[a.id, b.id, missing]).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[&a.id], s.get_page(&a.id).await.unwrap().unwrap());
    assert!(got[&b.id].in_trash, "trashed rows too");
    assert!(s.get_pages(&[]).await.unwrap().is_empty());
}
