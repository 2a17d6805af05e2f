//! Property test: the group-commit fast path (one batch of concurrent ingests applied with
//! multi-row statements) leaves the queue exactly as the reference path does: the same
//! events recorded one at a time, their jobs enqueued one by one with `enqueue`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use sync_store::{
    Clock, IncomingEvent, IngestOutcome, JobFilter, Lane, ManualClock, NewJob, Store,
};

use crate::helpers::{config_in, t0};

#[derive(Debug, Clone)]
struct Req {
    event: u8,
    key: u8,
    interactive: bool,
    delay_s: u8,
    props: bool,
    n: u8,
}

fn req() -> impl Strategy<Value = Req> {
    (
        0u8..12,
        0u8..4,
        any::<bool>(),
        0u8..5,
        any::<bool>(),
        0u8..5,
    )
        .prop_map(|(event, key, interactive, delay_s, props, n)| Req {
            event,
            key,
            interactive,
            delay_s,
            props,
            n,
        })
}

fn new_job(r: &Req, now: chrono::DateTime<chrono::Utc>) -> NewJob {
    let lane = if r.interactive {
        Lane::Interactive
    } else {
        Lane::Bulk
    };
    NewJob::new(
        format!("page:{}", r.key),
        format!("kind{}", r.n % 2),
        serde_json::json!({ "props": r.props, "n": r.n, "ids": [r.event] }),
        lane,
    )
    .run_at(now + chrono::Duration::seconds(i64::from(r.delay_s)))
}

fn incoming(r: &Req, now: chrono::DateTime<chrono::Utc>) -> IncomingEvent {
    IncomingEvent {
        event_id: format!("evt-{}", r.event),
        event_type: "page.properties_updated".into(),
        entity_type: "page".into(),
        entity_id: format!("p{}", r.key),
        attempt_number: 1,
        event_time: None,
        jobs: vec![new_job(r, now)],
    }
}

/// Same starting state in both stores: key 0 queued, key 1 running (so requests for it
/// become a follow-up), key 2 running with a queued follow-up.
async fn prepare(store: &Store, now: chrono::DateTime<chrono::Utc>) {
    let base = |key: u8| Req {
        event: 0,
        key,
        interactive: false,
        delay_s: 3,
        props: false,
        n: 9,
    };
    store
        .enqueue(new_job(&base(1), now - chrono::Duration::seconds(10)))
        .await
        .unwrap();
    store
        .enqueue(new_job(&base(2), now - chrono::Duration::seconds(10)))
        .await
        .unwrap();
    assert_eq!(
        store
            .claim(2, "w", Duration::from_secs(600))
            .await
            .unwrap()
            .len(),
        2
    );
    store.enqueue(new_job(&base(2), now)).await.unwrap();
    store.enqueue(new_job(&base(0), now)).await.unwrap();
}

/// Everything observable about the queue: rows, then (after finishing the running jobs)
/// the payload each key's job carries.
async fn snapshot(store: &Store, clock: &ManualClock) -> Vec<String> {
    let mut out: Vec<String> = store
        .list_jobs(JobFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|j| {
            format!(
                "{} {} {} {} {} {}",
                j.key, j.kind, j.state, j.lane, j.run_at, j.first_enqueued_at
            )
        })
        .collect();
    out.sort();
    clock.advance(Duration::from_secs(3600)); // the running leases expire
    store.reap_expired_leases().await.unwrap();
    let mut claimed = store
        .claim(100, "check", Duration::from_secs(60))
        .await
        .unwrap();
    claimed.sort_by(|a, b| a.key.cmp(&b.key));
    out.extend(
        claimed
            .into_iter()
            .map(|j| format!("{} {}", j.key, j.payload)),
    );
    out
}

async fn open_at(dir: &std::path::Path) -> (Store, Arc<ManualClock>) {
    let clock = ManualClock::new(t0());
    let store = Store::open(config_in(dir).await, clock.clone() as Arc<dyn Clock>)
        .await
        .unwrap();
    (store, clock)
}

async fn run(reqs: Vec<Req>) -> Result<(), TestCaseError> {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (batched, clock_a) = open_at(dir_a.path()).await;
    let (reference, clock_b) = open_at(dir_b.path()).await;
    let now = t0();
    prepare(&batched, now).await;
    prepare(&reference, now).await;
    clock_a.advance(Duration::from_secs(1));
    clock_b.advance(Duration::from_secs(1));

    // A: every request at once (this current-thread runtime sends them all before the
    // writer runs, so they form one batch).
    let before = batched.write_stats().transactions;
    let mut tasks = Vec::new();
    for r in &reqs {
        let s = batched.clone();
        let ev = incoming(r, now);
        tasks.push(tokio::spawn(async move { s.ingest(ev).await.unwrap() }));
    }
    let mut outcomes_a = Vec::new();
    for t in tasks {
        outcomes_a.push(t.await.unwrap());
    }
    prop_assert_eq!(batched.write_stats().transactions - before, 1, "one batch");

    // B: the reference, one request at a time through `enqueue`.
    let mut seen = HashSet::new();
    let mut outcomes_b = Vec::new();
    for r in &reqs {
        if seen.insert(r.event) {
            reference.enqueue(new_job(r, now)).await.unwrap();
            outcomes_b.push(IngestOutcome::Inserted);
        } else {
            outcomes_b.push(IngestOutcome::Duplicate);
        }
    }
    prop_assert_eq!(outcomes_a, outcomes_b);
    prop_assert_eq!(
        snapshot(&batched, &clock_a).await,
        snapshot(&reference, &clock_b).await
    );
    batched.close().await;
    reference.close().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn batched_ingest_matches_one_by_one_enqueue(reqs in prop::collection::vec(req(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(reqs))?;
    }
}
