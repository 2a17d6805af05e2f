//! Several sources over one database: each handle claims only its source's jobs, the
//! jobs and pages it writes say their source, listings filter by source, and the store's
//! maintenance still sees every source.

use std::time::Duration;

use chrono::Duration as ChronoDuration;
use sync_store::{DEFAULT_SOURCE, JobFilter, Lane, PageFilter, PageUpsert};

use crate::helpers::{id, job, open};

const LEASE: Duration = Duration::from_secs(30);

fn page(n: u32, at: chrono::DateTime<chrono::Utc>) -> PageUpsert {
    PageUpsert {
        id: id(&format!("00000000-0000-4000-8000-{n:012x}")),
        data_source_id: Some(id("248104cd-477e-80af-bc30-000bd6b0d5c5")),
        title: format!("Task {n}"),
        status: Some("To Do".into()),
        due: None,
        url: format!("https://www.notion.so/Task-{n}"),
        created_time: at - ChronoDuration::days(1),
        last_edited_time: at,
        in_trash: false,
        properties: "{}".into(),
        observed_at: at,
    }
}

#[tokio::test]
async fn each_source_claims_only_its_own_jobs() {
    let t = open().await;
    let a = t.store.for_source("a");
    let b = t.store.for_source("b");
    assert_eq!(t.store.source(), DEFAULT_SOURCE);
    for i in 0..3 {
        a.enqueue(job(&format!("page:a{i}"), Lane::Bulk))
            .await
            .unwrap();
    }
    b.enqueue(job("page:b0", Lane::Interactive)).await.unwrap();

    // b's one job is b's to claim, whatever a's backlog; a never sees it.
    let got = a.claim(10, "wa", LEASE).await.unwrap();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|j| j.key.starts_with("page:a")));
    assert!(a.claim(10, "wa", LEASE).await.unwrap().is_empty());
    assert!(
        a.next_due_at().await.unwrap().is_some(),
        "a's running leases"
    );
    let got = b.claim(10, "wb", LEASE).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].key, "page:b0");
    // The default source holds nothing.
    assert!(t.store.claim(10, "w", LEASE).await.unwrap().is_empty());

    // Per-source figures, and the store's total.
    assert_eq!(
        t.store.job_sources().await.unwrap(),
        vec![("a".to_owned(), 3), ("b".to_owned(), 1)]
    );
    assert_eq!(a.source_queue_stats().await.unwrap().running, 3);
    assert_eq!(b.source_queue_stats().await.unwrap().running, 1);
    assert_eq!(t.store.queue_stats().await.unwrap().running, 4);
    let rows = t
        .store
        .list_jobs(JobFilter {
            source: Some("b".into()),
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].source, "b");

    // Lease expiry is store-wide: any handle's reaper returns every source's jobs, each
    // to its own source.
    t.advance(31);
    assert_eq!(t.store.reap_expired_leases().await.unwrap(), 4);
    assert_eq!(b.claim(10, "wb", LEASE).await.unwrap().len(), 1);
    assert_eq!(a.claim(10, "wa", LEASE).await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_job_requested_by_another_source_moves_to_it() {
    // A page moved from a's data source to b's: b's request for the key takes the job over.
    let t = open().await;
    let a = t.store.for_source("a");
    let b = t.store.for_source("b");
    a.enqueue(job("page:x", Lane::Bulk)).await.unwrap();
    b.enqueue(job("page:x", Lane::Interactive)).await.unwrap();
    assert!(a.claim(10, "wa", LEASE).await.unwrap().is_empty());
    let got = b.claim(10, "wb", LEASE).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].lane, Lane::Interactive);
}

#[tokio::test]
async fn pages_say_their_source_and_list_by_it() {
    let t = open().await;
    let a = t.store.for_source("a");
    let b = t.store.for_source("b");
    a.upsert_page(&page(1, t.now())).await.unwrap();
    b.upsert_page(&page(2, t.now())).await.unwrap();
    let one = t
        .store
        .get_page(&page(1, t.now()).id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.source, "a");
    let listed = t
        .store
        .list_pages(PageFilter {
            source: Some("b".into()),
            ..PageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].title, "Task 2");
    // A later read by another source (the page moved) takes the row over.
    t.advance(1);
    b.upsert_page(&page(1, t.now())).await.unwrap();
    let one = t
        .store
        .get_page(&page(1, t.now()).id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.source, "b");
}

#[tokio::test]
async fn a_source_trashes_only_its_own_rows() {
    // A page out of one source's scope may be another's: only the source that mirrors it
    // marks it gone.
    let t = open().await;
    let a = t.store.for_source("a");
    let b = t.store.for_source("b");
    let p = page(3, t.now());
    b.upsert_page(&p).await.unwrap();
    t.advance(1);
    assert!(!a.mark_trashed(&p.id, t.now()).await.unwrap());
    assert!(!t.store.get_page(&p.id).await.unwrap().unwrap().in_trash);
    assert!(b.mark_trashed(&p.id, t.now()).await.unwrap());
    assert!(t.store.get_page(&p.id).await.unwrap().unwrap().in_trash);
}
