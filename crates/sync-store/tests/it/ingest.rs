//! Webhook ingest: dedup by event id, jobs enqueued with the event, group commit under
//! concurrency, retention, verification tokens, and the docs' real webhook payloads.

use std::collections::HashMap;
use std::time::Duration;

use sync_store::{
    IncomingEvent, IngestOutcome, JobFilter, JobState, Lane, NewJob, PageUpsert, StoreError,
    TokenOrigin, TokenRecorded,
};

use crate::helpers::{fixtures_dir, job, open, open_with};

pub fn event(id: &str, page: &str) -> IncomingEvent {
    IncomingEvent {
        event_id: id.to_owned(),
        event_type: "page.properties_updated".to_owned(),
        entity_type: "page".to_owned(),
        entity_id: page.to_owned(),
        attempt_number: 1,
        event_time: None,
        jobs: vec![job(&format!("page:{page}"), Lane::Interactive)],
    }
}

#[tokio::test]
async fn a_new_event_is_recorded_with_its_job_and_a_redelivery_is_a_duplicate() {
    let t = open().await;
    let s = &t.store;
    assert_eq!(s.last_event_at().await.unwrap(), None);
    assert_eq!(
        s.ingest(event("evt-1", "p1")).await.unwrap(),
        IngestOutcome::Inserted
    );
    t.advance(60);
    let mut again = event("evt-1", "p1");
    again.attempt_number = 2;
    again.jobs.push(job("page:other", Lane::Interactive));
    assert_eq!(s.ingest(again).await.unwrap(), IngestOutcome::Duplicate);

    let jobs = s.list_jobs(JobFilter::default()).await.unwrap();
    assert_eq!(jobs.len(), 1, "a duplicate enqueues nothing");
    assert_eq!(jobs[0].key, "page:p1");
    assert_eq!(jobs[0].lane, Lane::Interactive);
    assert_eq!(s.event_count().await.unwrap(), 1);
    assert_eq!(s.last_event_at().await.unwrap(), Some(crate::helpers::t0()));
}

#[tokio::test]
async fn events_for_one_page_coalesce_into_one_job_and_recorded_only_events_enqueue_nothing() {
    let t = open().await;
    let s = &t.store;
    for i in 0..5 {
        assert_eq!(
            s.ingest(event(&format!("evt-{i}"), "p1")).await.unwrap(),
            IngestOutcome::Inserted
        );
    }
    let mut comment = event("evt-comment", "c1");
    comment.event_type = "comment.created".into();
    comment.jobs.clear();
    assert_eq!(s.ingest(comment).await.unwrap(), IngestOutcome::Inserted);
    assert_eq!(s.list_jobs(JobFilter::default()).await.unwrap().len(), 1);
    assert_eq!(s.event_count().await.unwrap(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_each_get_a_durable_answer_exactly_once() {
    let t = open_with(|c| c.synchronous = sync_store::Synchronous::Full).await;
    let s = t.store.clone();
    // 64 callers; every event is delivered twice, from different callers.
    let mut tasks = Vec::new();
    for caller in 0..64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in 0..20 {
                let n = (caller * 20 + i) % 640; // callers c and c+32 send the same ids
                let id = format!("evt-{n}");
                let outcome = s.ingest(event(&id, &format!("p{}", n % 50))).await.unwrap();
                out.push((id, outcome));
            }
            out
        }));
    }
    let mut inserted: HashMap<String, usize> = HashMap::new();
    for task in tasks {
        for (id, outcome) in task.await.unwrap() {
            if outcome == IngestOutcome::Inserted {
                *inserted.entry(id).or_default() += 1;
            }
        }
    }
    assert_eq!(inserted.len(), 640, "every event was inserted once");
    assert!(inserted.values().all(|&n| n == 1));
    assert_eq!(s.event_count().await.unwrap(), 640);
    let queued = s
        .list_jobs(JobFilter {
            state: Some(JobState::Queued),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(queued.len(), 50, "one coalesced job per page");
}

/// Group commit: callers that arrive while the writer is busy share one transaction. On a
/// current-thread runtime all 64 spawned callers send before the writer runs.
#[tokio::test]
async fn concurrent_ingests_share_one_commit() {
    let t = open_with(|c| c.synchronous = sync_store::Synchronous::Full).await;
    let before = t.store.write_stats();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let s = t.store.clone();
        tasks.push(tokio::spawn(async move {
            s.ingest(event(&format!("e{i}"), &format!("p{}", i % 8)))
                .await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), IngestOutcome::Inserted);
    }
    let after = t.store.write_stats();
    assert_eq!(after.requests - before.requests, 64);
    assert_eq!(after.transactions - before.transactions, 1);
    assert_eq!(
        t.store.list_jobs(JobFilter::default()).await.unwrap().len(),
        8
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_write_in_a_batch_fails_alone() {
    let t = open().await;
    let s = t.store.clone();
    let bad = PageUpsert {
        id: crate::helpers::id("393abc1e-edcd-81f5-ae94-ec2d55fe98ed"),
        data_source_id: None,
        title: "t".into(),
        status: None,
        due: None,
        url: "u".into(),
        created_time: t.now(),
        last_edited_time: t.now(),
        in_trash: false,
        properties: "{not json".into(),
        observed_at: t.now(),
    };
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.ingest(event(&format!("e{i}"), "p")).await
        }));
    }
    let bad_result = s.upsert_page(&bad).await;
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), IngestOutcome::Inserted);
    }
    let err = bad_result.unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert!(!err.is_unavailable());
    assert_eq!(s.event_count().await.unwrap(), 40);
    assert_eq!(s.get_page(&bad.id).await.unwrap(), None);
}

/// Coalescing inside a group-committed batch joins payloads exactly like `enqueue` does,
/// including with a job queued before the batch.
#[tokio::test]
async fn batched_ingests_join_the_payloads_of_one_key() {
    let t = open().await;
    let with = |id: &str, payload: serde_json::Value| IncomingEvent {
        jobs: vec![NewJob::new("page:p", "sync_page", payload, Lane::Bulk)],
        ..event(id, "p")
    };
    t.store
        .ingest(with("e0", serde_json::json!({"reasons": ["a"]})))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for (id, payload) in [
        ("e1", serde_json::json!({"props": true, "reasons": ["b"]})),
        ("e2", serde_json::json!({"body": true, "reasons": ["c"]})),
        ("e1", serde_json::json!({"evil": true})),
    ] {
        let s = t.store.clone();
        let ev = with(id, payload);
        tasks.push(tokio::spawn(async move { s.ingest(ev).await.unwrap() }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    use IngestOutcome::{Duplicate, Inserted};
    assert_eq!(outcomes, [Inserted, Inserted, Duplicate]);
    let claimed = t
        .store
        .claim(5, "w", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        claimed[0].payload,
        serde_json::json!({"props": true, "body": true, "reasons": ["a", "b", "c"]})
    );
}

#[tokio::test]
async fn events_older_than_the_retention_are_pruned() {
    let t = open_with(|c| c.event_retention = Duration::from_secs(3600)).await;
    let s = &t.store;
    s.ingest(event("old", "p")).await.unwrap();
    t.advance(1800);
    s.ingest(event("recent", "p")).await.unwrap();
    t.advance(1801);
    assert_eq!(s.prune_events().await.unwrap(), 1);
    assert_eq!(s.event_count().await.unwrap(), 1);
    assert_eq!(
        s.ingest(event("recent", "p")).await.unwrap(),
        IngestOutcome::Duplicate
    );
    assert_eq!(s.prune_events().await.unwrap(), 0);
}

#[tokio::test]
async fn verification_tokens_are_kept_pending_deduplicated_and_masked_in_debug() {
    let t = open().await;
    let s = &t.store;
    let origin = TokenOrigin {
        peer: Some("127.0.0.1:40000".into()),
        forwarded_for: None,
    };
    let record = |token: &'static str| s.record_verification_token("default", token, &origin);
    assert_eq!(
        record("secret_first0123456789").await.unwrap(),
        TokenRecorded::Stored
    );
    t.advance(5);
    assert_eq!(
        record("secret_second0123456789").await.unwrap(),
        TokenRecorded::Stored
    );
    assert_eq!(
        record("secret_first0123456789").await.unwrap(),
        TokenRecorded::AlreadyKnown
    );
    let tokens = s.verification_tokens().await.unwrap();
    let values: Vec<_> = tokens.iter().map(|t| t.token.as_str()).collect();
    assert_eq!(
        values,
        ["secret_first0123456789", "secret_second0123456789"]
    );
    assert_eq!(tokens[0].received_at, crate::helpers::t0());
    assert_eq!(tokens[0].origin, origin);
    let shown = format!("{tokens:?}");
    assert!(
        !shown.contains("first0123456789") && !shown.contains("second0123456789"),
        "{shown}"
    );
    assert_eq!(s.clear_verification_tokens(None).await.unwrap(), 2);
    assert!(s.verification_tokens().await.unwrap().is_empty());
}

/// A flood cannot evict a token already stored: once full, new ones are refused.
#[tokio::test]
async fn the_first_verification_tokens_are_kept_and_the_rest_refused() {
    let t = open().await;
    let s = &t.store;
    let n = sync_store::MAX_VERIFICATION_TOKENS + 5;
    let mut refused = 0;
    for i in 0..n {
        let outcome = s
            .record_verification_token(
                "default",
                &format!("secret_flood{i:04}"),
                &TokenOrigin::default(),
            )
            .await
            .unwrap();
        refused += usize::from(outcome == TokenRecorded::Full);
        t.advance(1);
    }
    assert_eq!(refused, 5);
    let tokens = s.verification_tokens().await.unwrap();
    assert_eq!(tokens.len() as i64, sync_store::MAX_VERIFICATION_TOKENS);
    assert_eq!(tokens[0].token, "secret_flood0000");
    assert_eq!(
        tokens.last().unwrap().token,
        format!("secret_flood{:04}", sync_store::MAX_VERIFICATION_TOKENS - 1)
    );
}

/// Conformance: Notion's documented webhook payloads go through ingest as the HTTP layer
/// would pass them (id, type, entity, attempt, timestamp).
#[tokio::test]
async fn documented_webhook_payloads_ingest_once() {
    let Some(dir) = fixtures_dir() else { return };
    let t = open().await;
    let s = &t.store;
    let mut n = 0;
    let mut keys = std::collections::HashSet::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir.join("webhooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let body: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let (Some(id), Some(kind), Some(entity)) = (
            body["id"].as_str(),
            body["type"].as_str(),
            body.get("entity"),
        ) else {
            continue; // the handshake and the signature vector are not events
        };
        let entity_id = entity["id"].as_str().unwrap();
        keys.insert(format!("{}:{entity_id}", entity["type"].as_str().unwrap()));
        let ev = IncomingEvent {
            event_id: id.to_owned(),
            event_type: kind.to_owned(),
            entity_type: entity["type"].as_str().unwrap().to_owned(),
            entity_id: entity_id.to_owned(),
            attempt_number: u32::try_from(body["attempt_number"].as_u64().unwrap()).unwrap(),
            event_time: body["timestamp"].as_str().map(|t| t.parse().unwrap()),
            jobs: vec![NewJob::new(
                format!("{}:{entity_id}", entity["type"].as_str().unwrap()),
                "sync",
                body.clone(),
                Lane::Interactive,
            )],
        };
        assert_eq!(
            s.ingest(ev.clone()).await.unwrap(),
            IngestOutcome::Inserted,
            "{path:?}"
        );
        assert_eq!(
            s.ingest(ev).await.unwrap(),
            IngestOutcome::Duplicate,
            "{path:?}"
        );
        n += 1;
    }
    assert!(n >= 6, "expected the documented events, found {n}");
    let claimed = s.claim(100, "w", Duration::from_secs(30)).await.unwrap();
    assert_eq!(claimed.len(), keys.len(), "one coalesced job per entity");
    assert!(
        claimed.iter().all(|j| j.payload.get("entity").is_some()),
        "payload round-trips"
    );
}
