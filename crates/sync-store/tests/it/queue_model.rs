//! Property test: random interleavings of enqueue / claim / complete / fail / release /
//! extend / lease expiry against a model. Checks, after every step, that no key runs twice
//! at once, that the running jobs are exactly the live claims, that fencing accepts live
//! leases and rejects reaped ones, and that a key requested after its last completed run is
//! always still queued or running. At the end the queue is drained and every request must
//! have been served.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use sync_store::{
    ClaimedJob, Clock, FailOutcome, JobFailure, JobFilter, JobState, Lane, ManualClock, NewJob,
    Store, StoreError,
};

use crate::helpers::{config_in, t0};

const KEYS: u8 = 4;
const MAX_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        key: u8,
        interactive: bool,
        delay_s: u8,
    },
    Claim {
        n: u8,
        lease_s: u8,
    },
    Complete {
        pick: u8,
    },
    Fail {
        pick: u8,
        permanent: bool,
    },
    Release {
        pick: u8,
    },
    Extend {
        pick: u8,
        lease_s: u8,
    },
    Advance {
        secs: u8,
    },
    Reap,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..KEYS, any::<bool>(), 0u8..4).prop_map(|(key, interactive, delay_s)| Op::Enqueue { key, interactive, delay_s }),
        3 => (1u8..4, 1u8..20).prop_map(|(n, lease_s)| Op::Claim { n, lease_s }),
        2 => any::<u8>().prop_map(|pick| Op::Complete { pick }),
        2 => (any::<u8>(), prop::bool::weighted(0.2)).prop_map(|(pick, permanent)| Op::Fail { pick, permanent }),
        1 => any::<u8>().prop_map(|pick| Op::Release { pick }),
        1 => (any::<u8>(), 1u8..20).prop_map(|(pick, lease_s)| Op::Extend { pick, lease_s }),
        2 => (1u8..30).prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::Reap),
    ]
}

/// A claim the model's workers hold (until they complete, fail or release it).
struct Held {
    job: ClaimedJob,
    /// Logical time of the claim.
    seq: u64,
    lease_until: chrono::DateTime<chrono::Utc>,
    /// The lease was reaped: every fenced call must be rejected.
    lost: bool,
}

#[derive(Default)]
struct Model {
    seq: u64,
    held: Vec<Held>,
    /// Logical time of the latest enqueue per key.
    last_request: HashMap<String, u64>,
    /// Keys with a request not yet served by a run that started after it.
    pending: HashMap<String, bool>,
}

impl Model {
    fn tick(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A run that started at `claim_seq` finished (completed or dead): it served every
    /// request made before it started.
    fn served(&mut self, key: &str, claim_seq: u64) {
        if self.last_request.get(key).is_some_and(|&r| claim_seq > r) {
            self.pending.insert(key.to_owned(), false);
        }
    }

    /// Mirrors the store's reaping: leases ending at or before `now` are lost; a run that
    /// used its last attempt ends dead.
    fn reap(&mut self, now: chrono::DateTime<chrono::Utc>) -> u64 {
        let mut n = 0;
        let mut dead = Vec::new();
        for h in self
            .held
            .iter_mut()
            .filter(|h| !h.lost && h.lease_until <= now)
        {
            h.lost = true;
            n += 1;
            if h.job.attempts >= MAX_ATTEMPTS {
                dead.push((h.job.key.clone(), h.seq));
            }
        }
        for (key, seq) in dead {
            self.served(&key, seq);
        }
        n
    }

    fn pick(&self, pick: u8) -> Option<usize> {
        (!self.held.is_empty()).then(|| usize::from(pick) % self.held.len())
    }
}

fn key_name(k: u8) -> String {
    format!("page:{k}")
}

async fn check_invariants(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    let rows = store.list_jobs(JobFilter::default()).await.unwrap();
    let mut queued: HashMap<&str, usize> = HashMap::new();
    let mut running: HashMap<&str, i64> = HashMap::new();
    for r in &rows {
        match r.state {
            JobState::Queued => *queued.entry(&r.key).or_default() += 1,
            JobState::Running => {
                prop_assert!(
                    running.insert(&r.key, r.id).is_none(),
                    "key {} runs twice at once",
                    r.key
                );
            }
            JobState::Dead => {}
        }
    }
    prop_assert!(
        queued.values().all(|&n| n == 1),
        "more than one queued job per key"
    );
    let live: Vec<&Held> = model.held.iter().filter(|h| !h.lost).collect();
    prop_assert_eq!(live.len(), running.len(), "running jobs != live claims");
    for h in &live {
        prop_assert_eq!(running.get(h.job.key.as_str()), Some(&h.job.id));
    }
    for (key, &pending) in &model.pending {
        if !pending {
            continue;
        }
        let request = model.last_request[key];
        let queued_now = queued.contains_key(key.as_str());
        let running_after_request = live.iter().any(|h| h.job.key == *key && h.seq > request);
        prop_assert!(
            queued_now || running_after_request,
            "key {} was requested at {} but is neither queued nor running since",
            key,
            request
        );
    }
    Ok(())
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path()).await;
    config.max_attempts = MAX_ATTEMPTS;
    config.backoff_base = Duration::from_secs(1);
    config.backoff_max = Duration::from_secs(8);
    let clock = ManualClock::new(t0());
    let store = Store::open(config, clock.clone() as Arc<dyn Clock>)
        .await
        .unwrap();
    let mut m = Model::default();

    for op in ops {
        let seq = m.tick();
        match op {
            Op::Enqueue {
                key,
                interactive,
                delay_s,
            } => {
                let lane = if interactive {
                    Lane::Interactive
                } else {
                    Lane::Bulk
                };
                let at = clock.now() + chrono::Duration::seconds(i64::from(delay_s));
                let k = key_name(key);
                store
                    .enqueue(NewJob::new(&k, "sync", serde_json::json!({}), lane).run_at(at))
                    .await
                    .unwrap();
                m.last_request.insert(k.clone(), seq);
                m.pending.insert(k, true);
            }
            Op::Claim { n, lease_s } => {
                m.reap(clock.now());
                let lease = Duration::from_secs(u64::from(lease_s));
                let jobs = store.claim(usize::from(n), "w", lease).await.unwrap();
                prop_assert!(jobs.len() <= usize::from(n));
                for job in jobs {
                    let lease_until = job.lease_until;
                    m.held.push(Held {
                        job,
                        seq,
                        lease_until,
                        lost: false,
                    });
                }
            }
            Op::Complete { pick } => {
                let Some(i) = m.pick(pick) else { continue };
                let h = m.held.remove(i);
                let result = store.complete(&h.job).await;
                if h.lost {
                    prop_assert!(
                        matches!(result, Err(StoreError::LeaseLost { .. })),
                        "{:?}",
                        result
                    );
                } else {
                    prop_assert!(result.is_ok(), "{:?}", result);
                    m.served(&h.job.key, h.seq);
                }
            }
            Op::Fail { pick, permanent } => {
                let Some(i) = m.pick(pick) else { continue };
                let h = m.held.remove(i);
                let failure = if permanent {
                    JobFailure::permanent("permanent")
                } else {
                    JobFailure::transient("transient")
                };
                let result = store.fail(&h.job, failure).await;
                if h.lost {
                    prop_assert!(
                        matches!(result, Err(StoreError::LeaseLost { .. })),
                        "{:?}",
                        result
                    );
                } else if permanent || h.job.attempts >= MAX_ATTEMPTS {
                    prop_assert_eq!(result.unwrap(), FailOutcome::Dead);
                    m.served(&h.job.key, h.seq);
                } else {
                    let outcome = result.unwrap();
                    prop_assert!(
                        matches!(outcome, FailOutcome::Retrying { .. }),
                        "{:?}",
                        outcome
                    );
                }
            }
            Op::Release { pick } => {
                let Some(i) = m.pick(pick) else { continue };
                let h = m.held.remove(i);
                let result = store.release(&h.job).await;
                prop_assert_eq!(h.lost, matches!(result, Err(StoreError::LeaseLost { .. })));
                prop_assert!(h.lost || result.is_ok(), "{:?}", result);
            }
            Op::Extend { pick, lease_s } => {
                let Some(i) = m.pick(pick) else { continue };
                let lease = Duration::from_secs(u64::from(lease_s));
                let result = store.extend(&m.held[i].job, lease).await;
                if m.held[i].lost {
                    prop_assert!(
                        matches!(result, Err(StoreError::LeaseLost { .. })),
                        "{:?}",
                        result
                    );
                } else {
                    prop_assert!(result.is_ok(), "{:?}", result);
                    m.held[i].lease_until =
                        clock.now() + chrono::Duration::seconds(i64::from(lease_s));
                }
            }
            Op::Advance { secs } => clock.advance(Duration::from_secs(u64::from(secs))),
            Op::Reap => {
                let expected = m.reap(clock.now());
                prop_assert_eq!(store.reap_expired_leases().await.unwrap(), expected);
            }
        }
        check_invariants(&store, &m).await?;
    }

    // Workers vanish; time passes (their leases expire: a run on its last attempt ends
    // dead); a fresh worker drains the queue completely.
    clock.advance(Duration::from_secs(3600));
    m.reap(clock.now());
    m.held.clear();
    for _ in 0..100 {
        let seq = m.tick();
        let jobs = store
            .claim(16, "drain", Duration::from_secs(60))
            .await
            .unwrap();
        if jobs.is_empty() {
            break;
        }
        for job in jobs {
            store.complete(&job).await.unwrap();
            m.served(&job.key, seq);
        }
    }
    let stats = store.queue_stats().await.unwrap();
    prop_assert_eq!(
        (stats.queued_interactive, stats.queued_bulk, stats.running),
        (0, 0, 0)
    );
    for (key, pending) in &m.pending {
        prop_assert!(!pending, "request for {} was lost", key);
    }
    store.close().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_interleavings_never_lose_a_request_or_double_run_a_key(ops in prop::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops))?;
    }
}
