//! Queue rules: coalescing, follow-ups, lane order, leases and fencing, failure handling,
//! crash recovery, CLI repair tools, stats.

use std::time::Duration;

use chrono::Duration as ChronoDuration;
use sync_store::{EnqueueOutcome, FailOutcome, JobFailure, JobFilter, JobState, Lane, StoreError};

use crate::helpers::{job, open, open_with};

const LEASE: Duration = Duration::from_secs(30);

fn is_lease_lost<T: std::fmt::Debug>(r: Result<T, StoreError>, id: i64) -> bool {
    matches!(r, Err(StoreError::LeaseLost { job_id }) if job_id == id)
}

#[tokio::test]
async fn queued_job_absorbs_requests_earliest_run_at_and_highest_lane_win() {
    let t = open().await;
    let s = &t.store;
    let later = t.now() + ChronoDuration::seconds(60);
    let soon = t.now() + ChronoDuration::seconds(5);

    let first = s
        .enqueue(job("page:a", Lane::Bulk).run_at(later))
        .await
        .unwrap();
    let EnqueueOutcome::Inserted(id) = first else {
        panic!("{first:?}")
    };
    let mut newer = job("page:a", Lane::Interactive).run_at(soon);
    newer.payload = serde_json::json!({"v": 2});
    assert_eq!(
        s.enqueue(newer).await.unwrap(),
        EnqueueOutcome::Coalesced(id)
    );
    // A later, lower-lane request changes neither run_at nor lane.
    assert_eq!(
        s.enqueue(job("page:a", Lane::Bulk).run_at(later))
            .await
            .unwrap(),
        EnqueueOutcome::Coalesced(id)
    );

    let rows = s.list_jobs(JobFilter::default()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, id);
    assert_eq!(rows[0].state, JobState::Queued);
    assert_eq!(rows[0].lane, Lane::Interactive);
    assert_eq!(rows[0].run_at, soon);

    // Nothing due before `soon`.
    assert!(s.claim(10, "w", LEASE).await.unwrap().is_empty());
    t.advance(5);
    let claimed = s.claim(10, "w", LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, id);
    assert_eq!(
        claimed[0].payload,
        serde_json::json!({"key": "page:a", "v": 2}),
        "payloads of coalesced requests are joined field by field"
    );
}

/// A webhook's request merged into a queued bulk job raises its lane; its freshness
/// counts from the interactive request, not from the bulk one (which may be minutes old
/// during an initial sync).
#[tokio::test]
async fn an_interactive_request_merged_into_a_bulk_job_counts_from_its_own_arrival() {
    let t = open().await;
    let s = &t.store;
    let bulk_at = t.now();
    s.enqueue(job("page:a", Lane::Bulk)).await.unwrap();
    t.advance(30);
    let webhook_at = t.now();
    s.enqueue(job("page:a", Lane::Interactive)).await.unwrap();
    t.advance(5);
    s.enqueue(job("page:a", Lane::Interactive)).await.unwrap();
    let claimed = s.claim(1, "w", LEASE).await.unwrap().remove(0);
    assert_eq!(claimed.lane, Lane::Interactive);
    assert_eq!(claimed.first_enqueued_at, bulk_at);
    assert_eq!(claimed.interactive_since, Some(webhook_at));
    assert_eq!(claimed.lane_since(), webhook_at);

    // A bulk job's freshness counts from its first request.
    s.enqueue(job("page:b", Lane::Bulk)).await.unwrap();
    let b = s.claim(1, "w", LEASE).await.unwrap().remove(0);
    assert_eq!(
        (b.interactive_since, b.lane_since()),
        (None, b.first_enqueued_at)
    );
}

#[tokio::test]
async fn a_running_key_gets_exactly_one_follow_up() {
    let t = open().await;
    let s = &t.store;
    s.enqueue(job("page:a", Lane::Interactive)).await.unwrap();
    let running = s.claim(1, "w1", LEASE).await.unwrap().remove(0);

    let follow = s.enqueue(job("page:a", Lane::Interactive)).await.unwrap();
    let EnqueueOutcome::FollowUp(follow_id) = follow else {
        panic!("{follow:?}")
    };
    assert_ne!(follow_id, running.id);
    for _ in 0..3 {
        assert_eq!(
            s.enqueue(job("page:a", Lane::Bulk)).await.unwrap(),
            EnqueueOutcome::Coalesced(follow_id)
        );
    }
    let queued = s
        .list_jobs(JobFilter {
            state: Some(JobState::Queued),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);

    // The follow-up is not claimable while its key runs.
    assert!(s.claim(5, "w2", LEASE).await.unwrap().is_empty());
    s.complete(&running).await.unwrap();
    let next = s.claim(5, "w2", LEASE).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].id, follow_id);
    assert_eq!(next[0].attempts, 1);
}

#[tokio::test]
async fn claim_serves_interactive_first_then_run_at_then_id() {
    let t = open_with(|c| c.bulk_floor_every = 0).await;
    let s = &t.store;
    let t0 = t.now();
    s.enqueue(job("bulk:1", Lane::Bulk).run_at(t0 - ChronoDuration::seconds(100)))
        .await
        .unwrap();
    s.enqueue(job("int:late", Lane::Interactive)).await.unwrap();
    s.enqueue(job("int:early", Lane::Interactive).run_at(t0 - ChronoDuration::seconds(10)))
        .await
        .unwrap();
    s.enqueue(job("bulk:2", Lane::Bulk)).await.unwrap();
    s.enqueue(job("int:future", Lane::Interactive).run_at(t0 + ChronoDuration::seconds(10)))
        .await
        .unwrap();

    let claimed = s.claim(10, "w", LEASE).await.unwrap();
    let keys: Vec<&str> = claimed.iter().map(|j| j.key.as_str()).collect();
    assert_eq!(keys, ["int:early", "int:late", "bulk:1", "bulk:2"]);
    for j in &claimed {
        assert_eq!(j.attempts, 1);
        assert_eq!(j.lease_until, t0 + ChronoDuration::seconds(30));
        assert_eq!(j.lease_token.len(), 32);
    }
    let tokens: std::collections::HashSet<_> = claimed.iter().map(|j| &j.lease_token).collect();
    assert_eq!(tokens.len(), claimed.len(), "every lease token is distinct");
    let stats = s.queue_stats().await.unwrap();
    assert_eq!(stats.running, 4);
    assert_eq!(stats.queued_interactive, 1);
}

#[tokio::test]
async fn bulk_lane_keeps_a_floor_under_interactive_load() {
    let t = open().await; // bulk_floor_every = 4
    let s = &t.store;
    for i in 0..6 {
        s.enqueue(job(&format!("int:{i}"), Lane::Interactive))
            .await
            .unwrap();
    }
    for i in 0..2 {
        s.enqueue(job(&format!("bulk:{i}"), Lane::Bulk))
            .await
            .unwrap();
    }
    let mut lanes = Vec::new();
    for _ in 0..8 {
        let j = s.claim(1, "w", LEASE).await.unwrap().remove(0);
        lanes.push(j.lane);
    }
    use Lane::{Bulk as B, Interactive as I};
    assert_eq!(lanes, [I, I, I, I, B, I, I, B]);
}

#[tokio::test]
async fn stale_worker_is_fenced_out_after_its_lease_is_reaped() {
    let t = open().await;
    let s = &t.store;
    s.enqueue(job("page:a", Lane::Interactive)).await.unwrap();
    let old = s.claim(1, "w1", LEASE).await.unwrap().remove(0);

    t.advance(31);
    assert_eq!(s.reap_expired_leases().await.unwrap(), 1);
    assert!(is_lease_lost(s.complete(&old).await, old.id));
    assert!(is_lease_lost(s.extend(&old, LEASE).await, old.id));
    assert!(is_lease_lost(s.release(&old).await, old.id));
    assert!(is_lease_lost(
        s.fail(&old, JobFailure::permanent("x")).await,
        old.id
    ));
    let msg = s.complete(&old).await.unwrap_err().to_string();
    assert!(
        msg.contains("lease lost") && msg.contains(&old.id.to_string()),
        "{msg}"
    );

    let new = s.claim(1, "w2", LEASE).await.unwrap().remove(0);
    assert_eq!(new.id, old.id);
    assert_eq!(new.attempts, 2, "the expired run counted as an attempt");
    assert_ne!(new.lease_token, old.lease_token);
    // The stale worker still cannot touch it while the new one holds it.
    assert!(is_lease_lost(s.complete(&old).await, old.id));
    s.complete(&new).await.unwrap();
    assert!(
        is_lease_lost(s.complete(&new).await, new.id),
        "finished jobs are gone"
    );
    assert!(s.list_jobs(JobFilter::default()).await.unwrap().is_empty());
    assert_eq!(s.queue_stats().await.unwrap().leases_expired_total, 1);
}

#[tokio::test]
async fn claim_reaps_expired_leases_and_counts_them() {
    let t = open().await;
    let s = &t.store;
    s.enqueue(job("page:a", Lane::Bulk)).await.unwrap();
    let first = s.claim(1, "crashed", LEASE).await.unwrap().remove(0);
    t.advance(29);
    assert!(
        s.claim(1, "w2", LEASE).await.unwrap().is_empty(),
        "lease still valid"
    );
    t.advance(1);
    let again = s.claim(1, "w2", LEASE).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, first.id);
    let row = &s.list_jobs(JobFilter::default()).await.unwrap()[0];
    assert_eq!(row.worker.as_deref(), Some("w2"));
    assert!(row.last_error.as_deref().unwrap().contains("crashed"));
    assert_eq!(s.queue_stats().await.unwrap().leases_expired_total, 1);
}

#[tokio::test]
async fn extend_keeps_a_lease_alive() {
    let t = open().await;
    let s = &t.store;
    s.enqueue(job("page:a", Lane::Interactive)).await.unwrap();
    let j = s.claim(1, "w", LEASE).await.unwrap().remove(0);
    t.advance(20);
    s.extend(&j, LEASE).await.unwrap();
    t.advance(20); // 40 s after the claim, 20 s after the extension
    assert_eq!(s.reap_expired_leases().await.unwrap(), 0);
    let row = &s.list_jobs(JobFilter::default()).await.unwrap()[0];
    assert_eq!(
        row.lease_until,
        Some(j.lease_until + ChronoDuration::seconds(20))
    );
    s.complete(&j).await.unwrap();
}

#[tokio::test]
async fn transient_failure_retries_with_capped_jittered_backoff() {
    let t = open_with(|c| {
        c.backoff_base = Duration::from_secs(2);
        c.backoff_max = Duration::from_secs(5);
        c.max_attempts = 10;
    })
    .await;
    let s = &t.store;
    s.enqueue(job("page:a", Lane::Interactive)).await.unwrap();
    // Nominal delays 2, 4, 5 (capped), 5 s; equal jitter keeps each in [nominal/2, nominal].
    for (attempt, nominal) in [(1u32, 2i64), (2, 4), (3, 5), (4, 5)] {
        let j = s.claim(1, "w", LEASE).await.unwrap().remove(0);
        assert_eq!(j.attempts, attempt);
        let now = t.now();
        let FailOutcome::Retrying { run_at, attempts } = s
            .fail(&j, JobFailure::transient("503 from Notion"))
            .await
            .unwrap()
        else {
            panic!("expected a retry")
        };
        assert_eq!(attempts, attempt);
        let delay = (run_at - now).num_milliseconds();
        assert!(
            (nominal * 500..=nominal * 1000).contains(&delay),
            "attempt {attempt}: delay {delay} ms"
        );
        let row = &s.list_jobs(JobFilter::default()).await.unwrap()[0];
        assert_eq!(row.state, JobState::Queued);
        assert_eq!(row.last_error.as_deref(), Some("503 from Notion"));
        assert!(
            s.claim(1, "w", LEASE).await.unwrap().is_empty(),
            "not before run_at"
        );
        t.clock.set(run_at);
    }
}

#[tokio::test]
async fn retry_at_from_retry_after_is_honoured() {
    let t = open().await;
    let s = &t.store;
    s.enqueue(job("page:a", Lane::Interactive)).await.unwrap();
    let j = s.claim(1, "w", LEASE).await.unwrap().remove(0);
    let at = t.now() + ChronoDuration::seconds(90);
    let failure = JobFailure {
        retry_at: Some(at),
        ..JobFailure::transient("429")
    };
    assert_eq!(
        s.fail(&j, failure).await.unwrap(),
        FailOutcome::Retrying {
            run_at: at,
            attempts: 1
        }
    );
    assert_eq!(s.next_due_at().await.unwrap(), Some(at));
}

#[tokio::test]
async fn permanent_failure_and_exhausted_attempts_go_dead_with_the_error() {
    let t = open_with(|c| c.max_attempts = 2).await;
    let s = &t.store;
    s.enqueue(job("page:gone", Lane::Interactive))
        .await
        .unwrap();
    let j = s.claim(1, "w", LEASE).await.unwrap().remove(0);
    assert_eq!(
        s.fail(&j, JobFailure::permanent("404 object_not_found"))
            .await
            .unwrap(),
        FailOutcome::Dead
    );

    s.enqueue(job("page:flaky", Lane::Interactive))
        .await
        .unwrap();
    let j = s.claim(1, "w", LEASE).await.unwrap().remove(0);
    assert!(matches!(
        s.fail(&j, JobFailure::transient("timeout 1"))
            .await
            .unwrap(),
        FailOutcome::Retrying { attempts: 1, .. }
    ));
    t.advance(3600);
    let j = s.claim(1, "w", LEASE).await.unwrap().remove(0);
    assert_eq!(j.attempts, 2);
    assert_eq!(
        s.fail(&j, JobFailure::transient("timeout 2"))
            .await
            .unwrap(),
        FailOutcome::Dead
    );

    let dead = s
        .list_jobs(JobFilter {
            state: Some(JobState::Dead),
            ..Default::default()
        })
        .await
        .unwrap();
    let errors: Vec<_> = dead
        .iter()
        .map(|r| (r.key.as_str(), r.last_error.as_deref()))
        .collect();
    assert_eq!(
        errors,
        [
            ("page:gone", Some("404 object_not_found")),
            ("page:flaky", Some("timeout 2"))
        ]
    );
    assert_eq!(s.queue_stats().await.unwrap().dead, 2);
    // A dead key can be requested again: a fresh job, the dead one stays for inspection.
    assert!(matches!(
        s.enqueue(job("page:gone", Lane::Bulk)).await.unwrap(),
        EnqueueOutcome::Inserted(_)
    ));
}

#[tokio::test]
async fn failure_of_a_running_key_merges_into_its_follow_up() {
    let t = open().await;
    let s = &t.store;
    s.enqueue(job("page:a", Lane::Bulk)).await.unwrap();
    let j = s.claim(1, "w", LEASE).await.unwrap().remove(0);
    let EnqueueOutcome::FollowUp(follow) =
        s.enqueue(job("page:a", Lane::Interactive)).await.unwrap()
    else {
        panic!()
    };
    let out = s.fail(&j, JobFailure::transient("boom")).await.unwrap();
    // The follow-up (due now) carries the failed attempt count.
    assert_eq!(
        out,
        FailOutcome::Retrying {
            run_at: t.now(),
            attempts: 1
        }
    );
    let rows = s.list_jobs(JobFilter::default()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, follow);
    assert_eq!(rows[0].lane, Lane::Interactive);
    assert_eq!(rows[0].first_enqueued_at, j.first_enqueued_at);
    let again = s.claim(1, "w", LEASE).await.unwrap().remove(0);
    assert_eq!((again.id, again.attempts), (follow, 2));
}

#[tokio::test]
async fn a_failed_run_merged_into_its_follow_up_keeps_what_it_was_asked_to_do() {
    let t = open().await;
    let s = &t.store;
    let with = |payload: serde_json::Value| sync_store::NewJob {
        payload,
        ..job("page:a", Lane::Interactive)
    };
    s.enqueue(with(serde_json::json!({"body": true, "props": false})))
        .await
        .unwrap();
    let j = s.claim(1, "w", LEASE).await.unwrap().remove(0);
    s.enqueue(with(serde_json::json!({"body": false, "props": true})))
        .await
        .unwrap();
    s.fail(&j, JobFailure::transient("502")).await.unwrap();
    let again = s.claim(1, "w", LEASE).await.unwrap().remove(0);
    assert_eq!(
        again.payload,
        serde_json::json!({"body": true, "props": true})
    );
}

#[tokio::test]
async fn reclaim_workers_returns_a_dead_predecessors_jobs_at_once() {
    let t = open().await;
    let s = &t.store;
    for key in ["a", "b", "c"] {
        s.enqueue(job(key, Lane::Interactive)).await.unwrap();
    }
    let old = s.claim(2, "host-1/pid-10/w0", LEASE).await.unwrap();
    let other = s
        .claim(1, "host-2/pid-7/w0", LEASE)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        s.reclaim_workers("").await.unwrap(),
        0,
        "an empty prefix matches nothing"
    );
    assert_eq!(s.reclaim_workers("host-1/pid-10/").await.unwrap(), 2);
    for j in &old {
        assert!(is_lease_lost(s.complete(j).await, j.id));
    }
    s.extend(&other, LEASE).await.unwrap();
    let again = s.claim(5, "host-1/pid-11/w0", LEASE).await.unwrap();
    let mut keys: Vec<_> = again.iter().map(|j| j.key.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(s.queue_stats().await.unwrap().leases_expired_total, 2);
}

#[tokio::test]
async fn release_returns_the_job_without_counting_the_attempt() {
    let t = open().await;
    let s = &t.store;
    s.enqueue(job("page:a", Lane::Interactive).run_at(t.now()))
        .await
        .unwrap();
    let j = s.claim(1, "w", LEASE).await.unwrap().remove(0);
    t.advance(3);
    s.release(&j).await.unwrap();
    let row = &s.list_jobs(JobFilter::default()).await.unwrap()[0];
    assert_eq!(
        (row.state, row.attempts, row.run_at),
        (JobState::Queued, 0, t.now())
    );
    assert_eq!(row.worker, None);
    let again = s.claim(1, "w", LEASE).await.unwrap().remove(0);
    assert_eq!(again.attempts, 1);
}

#[tokio::test]
async fn a_job_whose_lease_keeps_expiring_ends_dead() {
    let t = open_with(|c| c.max_attempts = 2).await;
    let s = &t.store;
    s.enqueue(job("page:poison", Lane::Interactive))
        .await
        .unwrap();
    s.claim(1, "w1", LEASE).await.unwrap();
    t.advance(31);
    let second = s.claim(1, "w2", LEASE).await.unwrap().remove(0);
    assert_eq!(second.attempts, 2);
    t.advance(31);
    assert_eq!(s.reap_expired_leases().await.unwrap(), 1);
    let row = &s.list_jobs(JobFilter::default()).await.unwrap()[0];
    assert_eq!(row.state, JobState::Dead);
    assert!(row.last_error.as_deref().unwrap().contains("lease expired"));
    assert_eq!(s.queue_stats().await.unwrap().leases_expired_total, 2);
}

#[tokio::test]
async fn expired_lease_with_a_follow_up_leaves_one_queued_job() {
    let t = open().await;
    let s = &t.store;
    s.enqueue(job("page:a", Lane::Bulk)).await.unwrap();
    let j = s.claim(1, "w", LEASE).await.unwrap().remove(0);
    let follow = s.enqueue(job("page:a", Lane::Bulk)).await.unwrap().job_id();
    t.advance(60);
    assert_eq!(s.reap_expired_leases().await.unwrap(), 1);
    let rows = s.list_jobs(JobFilter::default()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].id, rows[0].attempts), (follow, 1));
    assert_eq!(rows[0].first_enqueued_at, j.first_enqueued_at);
}

#[tokio::test]
async fn retry_and_purge_dead_jobs() {
    let t = open().await;
    let s = &t.store;
    let mut dead_ids = Vec::new();
    for key in ["page:1", "page:2", "page:3"] {
        s.enqueue(job(key, Lane::Interactive)).await.unwrap();
        let j = s.claim(1, "w", LEASE).await.unwrap().remove(0);
        s.fail(&j, JobFailure::permanent("403")).await.unwrap();
        dead_ids.push(j.id);
    }
    // page:2 was requested again meanwhile: retrying its dead job merges into that one.
    let queued2 = s
        .enqueue(job("page:2", Lane::Bulk).run_at(t.now() + ChronoDuration::hours(1)))
        .await
        .unwrap()
        .job_id();

    assert!(s.retry_job(dead_ids[0]).await.unwrap());
    assert!(!s.retry_job(999_999).await.unwrap(), "unknown id");
    let row = s
        .list_jobs(JobFilter {
            key: Some("page:1".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (row.state, row.attempts, row.run_at),
        (JobState::Queued, 0, t.now())
    );

    let running = s.claim(1, "w", LEASE).await.unwrap().remove(0);
    assert_eq!(running.key, "page:1");
    assert!(
        !s.retry_job(running.id).await.unwrap(),
        "running jobs are not retried"
    );

    assert_eq!(s.retry_dead().await.unwrap(), 2);
    let page2 = s
        .list_jobs(JobFilter {
            key: Some("page:2".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page2.len(), 1);
    assert_eq!(
        (page2[0].id, page2[0].run_at, page2[0].lane),
        (queued2, t.now(), Lane::Interactive)
    );

    // Kill them again, then purge.
    let jobs = s.claim(10, "w", LEASE).await.unwrap();
    assert_eq!(jobs.len(), 2);
    for j in &jobs {
        s.fail(j, JobFailure::permanent("403")).await.unwrap();
    }
    assert_eq!(s.purge_dead().await.unwrap(), 2);
    let stats = s.queue_stats().await.unwrap();
    assert_eq!((stats.dead, stats.running), (0, 1));
}

#[tokio::test]
async fn stats_count_states_lanes_and_oldest_age() {
    let t = open().await;
    let s = &t.store;
    assert_eq!(s.queue_stats().await.unwrap(), Default::default());
    s.enqueue(job("a", Lane::Interactive)).await.unwrap();
    t.advance(10);
    s.enqueue(job("b", Lane::Bulk)).await.unwrap();
    s.enqueue(job("c", Lane::Bulk)).await.unwrap();
    s.enqueue(job("a", Lane::Interactive)).await.unwrap(); // coalesces, keeps its age
    t.advance(5);
    let stats = s.queue_stats().await.unwrap();
    assert_eq!(stats.queued_interactive, 1);
    assert_eq!(stats.queued_bulk, 2);
    assert_eq!(stats.oldest_queued_age, Some(Duration::from_secs(15)));
}

#[tokio::test]
async fn next_due_at_tracks_claimable_work_and_lease_expiry() {
    let t = open().await;
    let s = &t.store;
    assert_eq!(s.next_due_at().await.unwrap(), None);
    let at = t.now() + ChronoDuration::seconds(42);
    s.enqueue(job("a", Lane::Bulk).run_at(at)).await.unwrap();
    assert_eq!(s.next_due_at().await.unwrap(), Some(at));

    s.enqueue(job("b", Lane::Interactive)).await.unwrap();
    let running = s.claim(1, "w", LEASE).await.unwrap().remove(0);
    // A follow-up of a running key is not claimable: only the lease expiry and `a` count.
    s.enqueue(job("b", Lane::Interactive)).await.unwrap();
    assert_eq!(s.next_due_at().await.unwrap(), Some(running.lease_until));
    s.complete(&running).await.unwrap();
    assert_eq!(s.next_due_at().await.unwrap(), Some(t.now()));
}

#[tokio::test]
async fn enqueue_batch_applies_in_order_in_one_call() {
    let t = open().await;
    let s = &t.store;
    let out = s
        .enqueue_batch(vec![
            job("a", Lane::Bulk),
            job("b", Lane::Bulk),
            job("a", Lane::Interactive),
        ])
        .await
        .unwrap();
    assert!(matches!(out[0], EnqueueOutcome::Inserted(_)));
    assert!(matches!(out[1], EnqueueOutcome::Inserted(_)));
    assert_eq!(out[2], EnqueueOutcome::Coalesced(out[0].job_id()));
    assert!(s.enqueue_batch(Vec::new()).await.unwrap().is_empty());
    assert_eq!(
        s.list_jobs(JobFilter {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .len(),
        1
    );
}
