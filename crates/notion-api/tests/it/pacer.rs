//! The pacer on tokio's paused clock: GCRA bounds, lanes, the bulk floor, pauses and AIMD.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use notion_api::{Lane, Pacer, PacerConfig};
use tokio::time::Instant;

fn pacer(rps: f64, burst: u32, floor: f64) -> Arc<Pacer> {
    Pacer::new(PacerConfig {
        requests_per_second: rps,
        burst,
        bulk_floor: floor,
    })
}

/// Lets spawned tasks run until they are all parked on the pacer.
async fn settle(p: &Pacer, waiting: usize) {
    for _ in 0..10_000 {
        let s = p.snapshot();
        if s.waiters_interactive + s.waiters_bulk == waiting {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("waiters never reached {waiting}: {:?}", p.snapshot());
}

#[tokio::test(start_paused = true)]
async fn n_requests_take_at_least_n_minus_burst_over_rate() {
    for (rps, burst, n) in [(3.0, 3u32, 12u32), (3.0, 1, 7), (10.0, 5, 40), (0.5, 2, 5)] {
        let p = pacer(rps, burst, 0.1);
        let start = Instant::now();
        for _ in 0..n {
            p.acquire(Lane::Interactive).await;
        }
        let took = start.elapsed();
        let lower = Duration::from_secs_f64(f64::from(n - burst) / rps);
        assert!(
            took >= lower,
            "{n} at {rps}/s burst {burst}: {took:?} < {lower:?}"
        );
        // virtual time is exact: not slower than one extra interval
        assert!(
            took <= lower + Duration::from_secs_f64(1.0 / rps),
            "{n} at {rps}/s burst {burst}: {took:?} is too slow"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_the_budget() {
    let p = pacer(3.0, 3, 0.1);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..15 {
        let p = p.clone();
        let lane = if i % 3 == 0 {
            Lane::Bulk
        } else {
            Lane::Interactive
        };
        tasks.push(tokio::spawn(async move {
            p.acquire(lane).await;
            Instant::now()
        }));
    }
    let mut times = Vec::new();
    for t in tasks {
        times.push(t.await.unwrap());
    }
    let last = times.iter().max().unwrap().duration_since(start);
    assert!(
        last >= Duration::from_secs(4),
        "15 requests at 3/s with burst 3: {last:?}"
    );
    times.sort();
    // after the burst, grants are at least one interval apart
    for w in times[3..].windows(2) {
        assert!(w[1] - w[0] >= Duration::from_millis(333));
    }
    let s = p.snapshot();
    assert_eq!(s.granted_interactive + s.granted_bulk, 15);
    assert_eq!(s.granted_bulk, 5);
}

async fn record_order(p: &Arc<Pacer>, lanes: Vec<Lane>) -> Vec<Lane> {
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for lane in lanes {
        let p = p.clone();
        let order = order.clone();
        tasks.push(tokio::spawn(async move {
            p.acquire(lane).await;
            order.lock().unwrap().push(lane);
        }));
        // queue in spawn order
        tokio::task::yield_now().await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(order).unwrap().into_inner().unwrap()
}

#[tokio::test(start_paused = true)]
async fn interactive_overtakes_queued_bulk() {
    let p = pacer(5.0, 1, 0.1);
    // Ten bulk requests queue first (a reconcile scan) ...
    let bulk: Vec<_> = (0..10)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move {
                p.acquire(Lane::Bulk).await;
                Instant::now()
            })
        })
        .collect();
    settle(&p, 9).await; // one went through on the burst
    // ... then a webhook-driven request arrives.
    let arrived = Instant::now();
    p.acquire(Lane::Interactive).await;
    let waited = arrived.elapsed();
    assert!(
        waited <= Duration::from_millis(200),
        "interactive waited {waited:?} behind bulk"
    );
    assert_eq!(
        p.snapshot().waiters_bulk,
        9,
        "no bulk request went before it"
    );
    for b in bulk {
        b.await.unwrap();
    }
    assert_eq!(p.snapshot().granted_bulk, 10);
}

#[tokio::test(start_paused = true)]
async fn bulk_floor_holds_under_interactive_load() {
    let p = pacer(50.0, 1, 0.1);
    p.pause_for(Duration::from_secs(1)); // let everyone queue first
    let mut lanes = vec![Lane::Bulk; 30];
    lanes.extend(vec![Lane::Interactive; 170]);
    let order = record_order(&p, lanes).await;
    assert_eq!(order.len(), 200);
    assert_eq!(order[0], Lane::Interactive, "interactive is served first");
    // While both lanes wait, every window of 40 grants gives bulk its 10 %.
    let both_waiting = &order[..190];
    for (i, w) in both_waiting.windows(40).enumerate() {
        let bulk = w.iter().filter(|l| **l == Lane::Bulk).count();
        assert!(bulk >= 3, "window at {i}: bulk got {bulk}/40");
        assert!(
            bulk <= 6,
            "window at {i}: bulk got {bulk}/40, more than its floor needs"
        );
    }
    // And interactive still gets the lion's share.
    let first_100 = order[..100]
        .iter()
        .filter(|l| **l == Lane::Interactive)
        .count();
    assert!(first_100 >= 85, "interactive got {first_100}/100");
}

#[tokio::test(start_paused = true)]
async fn zero_floor_serves_interactive_first() {
    let p = pacer(50.0, 1, 0.0);
    p.pause_for(Duration::from_millis(100));
    let mut lanes = vec![Lane::Bulk; 5];
    lanes.extend(vec![Lane::Interactive; 5]);
    let order = record_order(&p, lanes).await;
    assert_eq!(order[..5], [Lane::Interactive; 5]);
}

#[tokio::test(start_paused = true)]
async fn pause_holds_every_caller_and_never_shortens() {
    let p = pacer(100.0, 10, 0.1);
    let start = Instant::now();
    p.pause_for(Duration::from_secs(5));
    p.pause_for(Duration::from_secs(2)); // does not shorten
    assert!(p.snapshot().paused_for.unwrap() > Duration::from_secs(4));
    let a = tokio::spawn({
        let p = p.clone();
        async move {
            p.acquire(Lane::Interactive).await;
            Instant::now()
        }
    });
    let b = tokio::spawn({
        let p = p.clone();
        async move {
            p.acquire(Lane::Bulk).await;
            Instant::now()
        }
    });
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert!(a.duration_since(start) >= Duration::from_secs(5));
    assert!(b.duration_since(start) >= Duration::from_secs(5));
    // resumes at the steady rate, no burst after a pause
    assert!(a.max(b) - a.min(b) >= Duration::from_millis(10));
    assert_eq!(p.snapshot().pauses_total, 2);
    assert_eq!(p.snapshot().paused_for, None);
}

#[tokio::test(start_paused = true)]
async fn a_pause_arriving_while_waiting_extends_the_wait() {
    let p = pacer(1.0, 1, 0.1);
    p.acquire(Lane::Interactive).await; // uses the slot; next one is 1 s away
    let start = Instant::now();
    let waiter = tokio::spawn({
        let p = p.clone();
        async move {
            p.acquire(Lane::Interactive).await;
            Instant::now()
        }
    });
    settle(&p, 1).await;
    p.on_rate_limited(Duration::from_secs(30));
    let granted = waiter.await.unwrap();
    assert!(granted.duration_since(start) >= Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn aimd_decreases_once_per_episode_and_recovers() {
    let p = pacer(3.0, 3, 0.1);
    p.on_rate_limited(Duration::from_secs(2));
    assert_eq!(p.snapshot().current_rate, 1.5);
    // more 429s from the same burst: no further decrease
    p.on_rate_limited(Duration::from_secs(2));
    p.on_rate_limited(Duration::from_secs(3));
    assert_eq!(p.snapshot().current_rate, 1.5);
    assert_eq!(p.snapshot().rate_limited_total, 3);
    // a new episode after the pause ended halves again, down to the floor (3/6)
    tokio::time::advance(Duration::from_secs(4)).await;
    p.on_rate_limited(Duration::from_secs(1));
    assert_eq!(p.snapshot().current_rate, 0.75);
    tokio::time::advance(Duration::from_secs(2)).await;
    p.on_rate_limited(Duration::from_secs(1));
    assert_eq!(p.snapshot().current_rate, 0.5);
    // recovery: +10 % of the configured rate (0.3/s) per 5 s of success, counted
    // from the end of the pause
    tokio::time::advance(Duration::from_secs(1)).await;
    p.on_success();
    assert_eq!(p.snapshot().current_rate, 0.5);
    tokio::time::advance(Duration::from_secs(5)).await;
    p.on_success();
    assert!((p.snapshot().current_rate - 0.8).abs() < 1e-9);
    // from the floor back to the configured rate within 45 s
    tokio::time::advance(Duration::from_secs(40)).await;
    p.on_success();
    assert_eq!(
        p.snapshot().current_rate,
        3.0,
        "capped at the configured rate"
    );
}

#[tokio::test(start_paused = true)]
async fn decreased_rate_slows_grants() {
    let p = pacer(4.0, 1, 0.1);
    p.on_rate_limited(Duration::from_secs(1)); // now 2/s
    let start = Instant::now();
    for _ in 0..5 {
        p.acquire(Lane::Bulk).await;
    }
    // 1 s pause, then 5 grants at 2/s starting at the pause end
    assert!(start.elapsed() >= Duration::from_secs(1) + Duration::from_millis(2000));
}

#[tokio::test(start_paused = true)]
async fn cancelled_waiters_leave_the_queue() {
    let p = pacer(1.0, 1, 0.1);
    p.acquire(Lane::Interactive).await;
    let cancelled = tokio::spawn({
        let p = p.clone();
        async move { p.acquire(Lane::Interactive).await }
    });
    settle(&p, 1).await;
    cancelled.abort();
    let _ = cancelled.await;
    assert_eq!(p.snapshot().waiters_interactive, 0);
    let start = Instant::now();
    p.acquire(Lane::Bulk).await;
    assert!(start.elapsed() <= Duration::from_secs(1));
    assert_eq!(p.snapshot().granted_interactive, 1);
}

#[test]
fn config_validation() {
    assert!(PacerConfig::default().validate().is_ok());
    for bad in [
        PacerConfig {
            requests_per_second: 0.0,
            ..Default::default()
        },
        PacerConfig {
            requests_per_second: f64::NAN,
            ..Default::default()
        },
        PacerConfig {
            burst: 0,
            ..Default::default()
        },
        PacerConfig {
            bulk_floor: 1.0,
            ..Default::default()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
        // clamped, never a panic or a zero rate
        let p = Pacer::new(bad);
        assert!(p.snapshot().current_rate > 0.0);
    }
}
