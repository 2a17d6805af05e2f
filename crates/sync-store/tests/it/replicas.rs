//! Several replicas on one database: leases, heartbeats, shared budgets, and claims by
//! two store handles (two processes' worth of connections) that never take one job twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sync_store::{Clock, Lane, Store};

use crate::helpers::{job, open};

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires_or_is_released() {
    let t = open().await;
    let ttl = Duration::from_secs(15);
    let a = t.store.acquire_lease("leader", "a", ttl).await.unwrap();
    assert_eq!((a.holder.as_str(), a.fence), ("a", 1));
    // b cannot take it while a's lease runs; a renews it and keeps its fence and since.
    t.advance(10);
    assert_eq!(
        t.store
            .acquire_lease("leader", "b", ttl)
            .await
            .unwrap()
            .holder,
        "a"
    );
    let renewed = t.store.acquire_lease("leader", "a", ttl).await.unwrap();
    assert_eq!((renewed.fence, renewed.since), (1, a.since));
    assert!(renewed.until > a.until);
    // a stops renewing: once its lease ran out, b takes it with the next fence.
    t.advance(16);
    let b = t.store.acquire_lease("leader", "b", ttl).await.unwrap();
    assert_eq!((b.holder.as_str(), b.fence), ("b", 2));
    assert_eq!(
        t.store
            .acquire_lease("leader", "a", ttl)
            .await
            .unwrap()
            .holder,
        "b"
    );
    // Released at shutdown: taken over at once.
    assert!(!t.store.release_lease("leader", "a").await.unwrap());
    assert!(t.store.release_lease("leader", "b").await.unwrap());
    let a = t.store.acquire_lease("leader", "a", ttl).await.unwrap();
    assert_eq!((a.holder.as_str(), a.fence), ("a", 3));
    assert_eq!(t.store.lease("leader").await.unwrap(), Some(a));
    assert_eq!(t.store.lease("other").await.unwrap(), None);
}

#[tokio::test]
async fn heartbeats_list_the_replicas_until_forgotten() {
    let t = open().await;
    let started = t.now();
    t.store.replica_heartbeat("r1", started).await.unwrap();
    t.advance(2);
    t.store.replica_heartbeat("r2", t.now()).await.unwrap();
    t.store.replica_heartbeat("r1", started).await.unwrap();
    let replicas = t.store.replicas().await.unwrap();
    assert_eq!(replicas.len(), 2);
    assert_eq!(
        (replicas[0].id.as_str(), replicas[0].started),
        ("r1", started)
    );
    assert_eq!(replicas[0].seen, t.now());
    t.store.forget_replica("r1").await.unwrap();
    let ids: Vec<String> = t
        .store
        .replicas()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["r2"]);
}

#[tokio::test]
async fn a_shared_budget_hands_out_slots_one_interval_apart_and_honours_a_pause() {
    let t = open().await;
    let every = Duration::from_millis(250);
    let waits: Vec<Duration> = {
        let mut w = Vec::new();
        for _ in 0..4 {
            w.push(t.store.reserve_request_slot("alpha", every).await.unwrap());
        }
        w
    };
    assert_eq!(waits, [0, 250, 500, 750].map(Duration::from_millis));
    // Another integration's budget is its own.
    assert_eq!(
        t.store.reserve_request_slot("beta", every).await.unwrap(),
        Duration::ZERO
    );
    // A rate-limited answer pauses every replica: the next slot is after the pause.
    t.store
        .pause_budget("alpha", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        t.store.budget_paused_for("alpha").await.unwrap(),
        Duration::from_secs(5)
    );
    assert_eq!(
        t.store.reserve_request_slot("alpha", every).await.unwrap(),
        Duration::from_secs(5)
    );
    t.advance(10);
    assert_eq!(
        t.store.budget_paused_for("alpha").await.unwrap(),
        Duration::ZERO
    );
    assert_eq!(
        t.store.reserve_request_slot("alpha", every).await.unwrap(),
        Duration::ZERO
    );
}

/// Two handles opened on one database (as two replicas are) claim concurrently: every job
/// is claimed exactly once. On PostgreSQL this is `FOR UPDATE SKIP LOCKED` with
/// batches re-run on conflicts; on SQLite the file's write lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_claiming_one_queue_never_take_a_job_twice() {
    let t = open().await;
    let other = Store::open(t.config.clone(), t.clock.clone() as Arc<dyn Clock>)
        .await
        .unwrap();
    const JOBS: usize = 200;
    for n in 0..JOBS {
        t.store
            .enqueue(job(&format!("page:{n}"), Lane::Interactive))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for (r, store) in [t.store.clone(), other.clone()].into_iter().enumerate() {
        for w in 0..3 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut keys = Vec::new();
                loop {
                    let claimed = store
                        .claim(2, &format!("r{r}:w{w}"), Duration::from_secs(60))
                        .await
                        .unwrap();
                    if claimed.is_empty() {
                        return keys;
                    }
                    for j in claimed {
                        keys.push(j.key.clone());
                        store.complete(&j).await.unwrap();
                    }
                }
            }));
        }
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), JOBS, "every job claimed once");
    assert_eq!(unique.len(), JOBS);
    assert_eq!(t.store.queue_stats().await.unwrap().running, 0);
    other.close().await;
}
