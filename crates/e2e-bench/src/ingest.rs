//! Webhook ingest: signed deliveries per second from 64 closed-loop senders, then ack
//! latency under an open-loop generator at a fixed rate, at one `synchronous` setting.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::daemon::{Daemon, DaemonConfig, Memory, cpu_seconds, loopback_client, machine_jiffies};
use crate::stats::{Summary, bucket_diff, bucket_quantile, bucket_share_le, rate};
use crate::support::{self, Deliveries, Mirror, notion_like};

#[derive(Debug, Clone)]
pub struct IngestParams {
    pub pages: usize,
    pub senders: usize,
    pub warmup: Duration,
    pub closed_loop: Duration,
    pub open_rate: u32,
    pub open_loop: Duration,
    /// Deliveries of an event type that makes no job (`--ingest-noop-events`).
    pub noop_events: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct IngestResult {
    pub synchronous: &'static str,
    /// Deliveries made no job (`--ingest-noop-events`): the webhook path alone.
    pub noop_events: bool,
    pub startup_ms: f64,
    pub senders: usize,
    pub closed_loop_s: f64,
    pub deliveries_ok: u64,
    pub deliveries_failed: u64,
    pub deliveries_per_s: f64,
    /// Latency of each closed-loop delivery (the senders wait for it).
    pub closed_loop_latency_ms: Summary,
    /// Acknowledged deliveries in each whole second of the closed loop (does the rate hold
    /// as the event log grows?).
    pub closed_loop_per_second: Vec<u64>,
    pub open_loop_target_per_s: u32,
    pub open_loop_s: f64,
    pub open_loop_sent: u64,
    pub open_loop_failed: u64,
    pub open_loop_achieved_per_s: f64,
    /// From handing the request to the client to the 200.
    pub ack_latency_ms: Summary,
    /// How late the generator started each request against its schedule.
    pub schedule_lag_ms: Summary,
    /// The daemon's own `webhook_ack_seconds` histogram over the open loop (handler time:
    /// verify, parse, commit; excludes HTTP parsing and the client): bucket upper bounds.
    /// Acks slower than 10 ms: (seconds into the open loop, ms), to see whether they
    /// cluster (a stall of the daemon) or scatter (scheduling noise).
    pub slow_acks: Vec<(f64, f64)>,
    pub daemon_side_p50_le_ms: Option<f64>,
    pub daemon_side_p99_le_ms: Option<f64>,
    pub daemon_side_share_le_10ms: Option<f64>,
    /// CPU cores used during the closed loop by the daemon and by this benchmark (the
    /// 64 senders and the sim share the same machine).
    pub daemon_cores: f64,
    pub bench_cores: f64,
    /// Everything else on the machine meanwhile (other builds and tests; steal included).
    pub other_cores: f64,
    /// Deliveries per CPU-second of the daemon: throughput per core it actually got.
    pub deliveries_per_daemon_cpu_s: f64,
    /// The daemon's busiest threads during the closed loop: (name, cores).
    pub busiest_threads: Vec<(String, f64)>,
    /// Webhook events in the daemon's event log after the run: every 200 is durable.
    pub events_stored: u64,
    pub events_acknowledged: u64,
    pub queue_after: u64,
    pub memory_after: Memory,
    /// Bytes the daemon logged (JSON, level info) during the scenario.
    pub daemon_log_bytes: u64,
}

pub async fn run(
    bin: &Path,
    synchronous: &'static str,
    p: &IngestParams,
) -> anyhow::Result<IngestResult> {
    let dir = tempfile::tempdir()?;
    // Notion's 3 req/s: the workers barely use CPU and the queue grows, as it would.
    let sim = support::start_sim(p.pages, notion_like(3.0, 10)).await?;
    let cfg = DaemonConfig {
        synchronous,
        ..DaemonConfig::new(3.0)
    };
    let daemon = Daemon::start(bin, dir.path(), None, &sim, &cfg).await?;
    support::subscribe(&sim, &daemon).await?;
    daemon.wait_initialized().await?;
    let url = Arc::new(vec![daemon.webhook_url()]);
    let factory = Arc::new(Deliveries {
        noop: p.noop_events,
        ..Deliveries::for_sim(&sim)
    });
    let http = loopback_client(p.senders * 2);
    let counter = Arc::new(AtomicU64::new(0));

    // Warm-up (connections, SQLite cache), not counted.
    let warm_ok = closed_loop(&http, &url, &factory, &counter, p.senders, p.warmup)
        .await
        .ok;

    let (daemon_cpu0, bench_cpu0) = (daemon.cpu_seconds()?, cpu_seconds("/proc/self/stat")?);
    let (busy0, total0) = machine_jiffies()?;
    let threads0 = daemon.thread_cpu();
    let closed = closed_loop(&http, &url, &factory, &counter, p.senders, p.closed_loop).await;
    let (ok, failed, elapsed) = (closed.ok, closed.failed, closed.elapsed);
    let daemon_cores = (daemon.cpu_seconds()? - daemon_cpu0) / elapsed.as_secs_f64();
    let bench_cores = (cpu_seconds("/proc/self/stat")? - bench_cpu0) / elapsed.as_secs_f64();
    let (busy1, total1) = machine_jiffies()?;
    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let machine_cores = if total1 > total0 {
        (busy1 - busy0) / (total1 - total0) * nproc
    } else {
        0.0
    };
    let other_cores = (machine_cores - daemon_cores - bench_cores).max(0.0);
    // The busiest daemon threads: which one limits ingest.
    let mut busiest_threads: Vec<(String, f64)> = daemon
        .thread_cpu()
        .into_iter()
        .filter_map(|(tid, name, cpu)| {
            let before = threads0.iter().find(|t| t.0 == tid).map_or(0.0, |t| t.2);
            let cores = (cpu - before) / elapsed.as_secs_f64();
            (cores >= 0.01).then(|| (name, (cores * 100.0).round() / 100.0))
        })
        .collect();
    busiest_threads.sort_by(|a, b| b.1.total_cmp(&a.1));
    busiest_threads.truncate(4);

    tokio::time::sleep(Duration::from_secs(1)).await;
    let hist_before = daemon.histogram("webhook_ack_seconds").await?;
    let open = open_loop(&http, &url, &factory, &counter, p.open_rate, p.open_loop).await;
    let hist = bucket_diff(
        &hist_before,
        &daemon.histogram("webhook_ack_seconds").await?,
    );

    let health = daemon.health().await?;
    let memory_after = daemon.memory()?;
    let mirror = Mirror::open(&daemon.db).await?;
    let events_stored = mirror.event_count().await?;
    mirror.close().await;
    let result = IngestResult {
        synchronous,
        noop_events: p.noop_events,
        startup_ms: support::ms(daemon.startup),
        senders: p.senders,
        closed_loop_s: elapsed.as_secs_f64(),
        deliveries_ok: ok,
        deliveries_failed: failed,
        deliveries_per_s: rate(ok as f64, elapsed),
        closed_loop_latency_ms: Summary::of_durations_ms(&closed.latency),
        closed_loop_per_second: closed.per_second.clone(),
        open_loop_target_per_s: p.open_rate,
        open_loop_s: p.open_loop.as_secs_f64(),
        open_loop_sent: open.sent,
        open_loop_failed: open.failed,
        open_loop_achieved_per_s: open.achieved,
        ack_latency_ms: Summary::of_durations_ms(&open.latency),
        schedule_lag_ms: Summary::of_durations_ms(&open.lag),
        slow_acks: open.slow.clone(),
        daemon_side_p50_le_ms: bucket_quantile(&hist, 0.50).map(|s| s * 1e3),
        daemon_side_p99_le_ms: bucket_quantile(&hist, 0.99).map(|s| s * 1e3),
        daemon_side_share_le_10ms: bucket_share_le(&hist, 0.01),
        daemon_cores,
        bench_cores,
        other_cores,
        deliveries_per_daemon_cpu_s: if daemon_cores > 0.0 {
            rate(ok as f64, elapsed) / daemon_cores
        } else {
            0.0
        },
        busiest_threads,
        events_stored,
        events_acknowledged: warm_ok + ok + (open.sent - open.failed),
        queue_after: health["queue"]["queued"].as_u64().unwrap_or(0),
        memory_after,
        daemon_log_bytes: daemon.log_bytes(),
    };
    daemon.stop().await?;
    sim.shutdown().await;
    Ok(result)
}

/// `senders` tasks POST as fast as answers come back until `window` is over, delivery
/// `n` to `urls[n % len]` (several replicas: as a load balancer spreads them).
/// Returns (2xx, failures, latencies, elapsed until the last answer).
pub(crate) async fn closed_loop(
    http: &reqwest::Client,
    url: &Arc<Vec<String>>,
    factory: &Arc<Deliveries>,
    counter: &Arc<AtomicU64>,
    senders: usize,
    window: Duration,
) -> ClosedLoop {
    let started = Instant::now();
    let end = started + window;
    let mut set = JoinSet::new();
    for _ in 0..senders {
        let (http, url, factory, counter) = (
            http.clone(),
            Arc::clone(url),
            Arc::clone(factory),
            Arc::clone(counter),
        );
        set.spawn(async move {
            let mut ok = 0u64;
            let mut failed = 0u64;
            let mut lat = Vec::with_capacity(8192);
            let mut per_second = vec![0u64; window.as_secs_f64().ceil() as usize + 1];
            while Instant::now() < end {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let (body, sig) = factory.delivery(n);
                let t0 = Instant::now();
                let to = &url[n as usize % url.len()];
                if support::post_delivery(&http, to, body, sig).await {
                    ok += 1;
                    lat.push(t0.elapsed());
                    let second = started.elapsed().as_secs() as usize;
                    if let Some(c) = per_second.get_mut(second) {
                        *c += 1;
                    }
                } else {
                    failed += 1;
                }
            }
            (ok, failed, lat, per_second)
        });
    }
    let mut out = ClosedLoop {
        ok: 0,
        failed: 0,
        latency: Vec::new(),
        per_second: Vec::new(),
        elapsed: Duration::ZERO,
    };
    while let Some(r) = set.join_next().await {
        let (o, f, l, p) = r.expect("sender task panicked");
        out.ok += o;
        out.failed += f;
        out.latency.extend(l);
        out.per_second.resize(out.per_second.len().max(p.len()), 0);
        for (total, n) in out.per_second.iter_mut().zip(p) {
            *total += n;
        }
    }
    // Whole seconds of the window only (the last partial one is the drain of in-flight sends).
    out.per_second.truncate(window.as_secs() as usize);
    out.elapsed = started.elapsed();
    out
}

pub(crate) struct ClosedLoop {
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    pub(crate) latency: Vec<Duration>,
    /// Acknowledged deliveries in each second of the window.
    per_second: Vec<u64>,
    pub(crate) elapsed: Duration,
}

pub(crate) struct OpenLoop {
    pub(crate) sent: u64,
    pub(crate) failed: u64,
    pub(crate) achieved: f64,
    pub(crate) latency: Vec<Duration>,
    lag: Vec<Duration>,
    /// (seconds into the window, ms) of acks slower than 10 ms.
    slow: Vec<(f64, f64)>,
}

/// Starts request `i` at `start + i / rate` (to `urls[i % len]`), never waiting for
/// answers to pace.
pub(crate) async fn open_loop(
    http: &reqwest::Client,
    url: &Arc<Vec<String>>,
    factory: &Arc<Deliveries>,
    counter: &Arc<AtomicU64>,
    per_second: u32,
    window: Duration,
) -> OpenLoop {
    let n = (f64::from(per_second) * window.as_secs_f64()).round() as u64;
    let start = Instant::now() + Duration::from_millis(20);
    let mut set = JoinSet::new();
    for i in 0..n {
        let at = start + Duration::from_secs_f64(i as f64 / f64::from(per_second));
        let (body, sig) = factory.delivery(counter.fetch_add(1, Ordering::Relaxed));
        tokio::time::sleep_until(at).await;
        let (http, url) = (http.clone(), Arc::clone(url));
        set.spawn(async move {
            let t0 = Instant::now();
            let to = &url[i as usize % url.len()];
            let ok = support::post_delivery(&http, to, body, sig).await;
            (t0.saturating_duration_since(at), t0.elapsed(), ok, t0)
        });
    }
    let mut out = OpenLoop {
        sent: n,
        failed: 0,
        achieved: 0.0,
        latency: Vec::with_capacity(n as usize),
        lag: Vec::with_capacity(n as usize),
        slow: Vec::new(),
    };
    let mut first: Option<Instant> = None;
    let mut last: Option<Instant> = None;
    while let Some(r) = set.join_next().await {
        let (lag, latency, ok, t0) = r.expect("request task panicked");
        out.lag.push(lag);
        if ok {
            out.latency.push(latency);
            if latency > Duration::from_millis(10) {
                let at = t0.saturating_duration_since(start).as_secs_f64();
                out.slow.push((
                    (at * 1e3).round() / 1e3,
                    (latency.as_secs_f64() * 1e4).round() / 10.0,
                ));
            }
        } else {
            out.failed += 1;
        }
        first = Some(first.map_or(t0, |f: Instant| f.min(t0)));
        last = Some(last.map_or(t0, |l: Instant| l.max(t0)));
    }
    out.slow.sort_by(|a, b| a.0.total_cmp(&b.0));
    if let (Some(f), Some(l)) = (first, last)
        && n > 1
    {
        out.achieved = (n - 1) as f64 / (l - f).as_secs_f64();
    }
    out
}
