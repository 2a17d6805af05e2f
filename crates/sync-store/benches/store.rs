//! Store benchmarks: acknowledged webhook ingests (1 and 64 concurrent callers, at
//! `synchronous = FULL` and `NORMAL`) and claim + complete throughput. After the criterion
//! runs, prints an ingest latency table (p50/p99/max per call). See BENCHMARKS.md.
//!
//! `cargo bench -p sync-store --bench store`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use sync_store::{
    IncomingEvent, IngestOutcome, Lane, NewJob, Store, StoreConfig, Synchronous, SystemClock,
};
use tokio::runtime::Runtime;

/// Unique event ids across every iteration of every benchmark.
static NEXT_EVENT: AtomicU64 = AtomicU64::new(0);

fn next_event() -> IncomingEvent {
    let n = NEXT_EVENT.fetch_add(1, Ordering::Relaxed);
    // Pages repeat, as in a real burst: the job enqueue coalesces.
    let page = format!("{:08x}-0000-4000-8000-{:012x}", n % 1000, n % 1000);
    IncomingEvent {
        event_id: format!("{n:08x}-1e57-4d4a-b02c-9c8c16f28e53"),
        event_type: "page.properties_updated".to_owned(),
        entity_type: "page".to_owned(),
        entity_id: page.clone(),
        attempt_number: 1,
        event_time: None,
        jobs: vec![NewJob::new(
            format!("page:{page}"),
            "sync_page",
            serde_json::json!({ "page_id": page }),
            Lane::Interactive,
        )],
    }
}

struct Bench {
    store: Store,
    _dir: tempfile::TempDir,
}

fn open(rt: &Runtime, synchronous: Synchronous) -> Bench {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = StoreConfig {
        synchronous,
        ..StoreConfig::for_path(&dir.path().join("bench.db"))
    };
    let store = rt
        .block_on(Store::open(config, Arc::new(SystemClock)))
        .expect("open store");
    Bench { store, _dir: dir }
}

/// `total` ingests spread over `callers` concurrent tasks; returns wall time and, per call,
/// its latency.
async fn ingest_burst(store: &Store, callers: u64, total: u64) -> (Duration, Vec<Duration>) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..callers {
        let store = store.clone();
        let n = total / callers + u64::from(c < total % callers);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
            for _ in 0..n {
                let t = Instant::now();
                let outcome = store.ingest(next_event()).await.expect("ingest");
                latencies.push(t.elapsed());
                assert_eq!(outcome, IngestOutcome::Inserted);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("caller task"));
    }
    (start.elapsed(), latencies)
}

fn bench_ingest(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("ingest");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    for synchronous in [Synchronous::Full, Synchronous::Normal] {
        let bench = open(rt, synchronous);
        for callers in [1u64, 64] {
            let id = BenchmarkId::new(format!("{callers}_callers"), synchronous);
            group.bench_function(id, |b| {
                b.iter_custom(|iters| rt.block_on(ingest_burst(&bench.store, callers, iters)).0);
            });
        }
        rt.block_on(bench.store.close());
    }
    group.finish();
}

/// Workers claim 16 due jobs at a time and complete them concurrently (so completions share
/// group commits, as a worker pool's do).
fn bench_claim_complete(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("claim_complete");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    for synchronous in [Synchronous::Full, Synchronous::Normal] {
        let bench = open(rt, synchronous);
        let store = &bench.store;
        group.bench_function(BenchmarkId::new("batch_16", synchronous), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let base = NEXT_EVENT.fetch_add(iters, Ordering::Relaxed);
                    let jobs: Vec<NewJob> = (0..iters)
                        .map(|i| {
                            NewJob::new(
                                format!("job:{}", base + i),
                                "sync_page",
                                serde_json::json!({}),
                                Lane::Bulk,
                            )
                        })
                        .collect();
                    for chunk in jobs.chunks(1000) {
                        store.enqueue_batch(chunk.to_vec()).await.expect("prefill");
                    }
                    let start = Instant::now();
                    let mut done = 0;
                    while done < iters {
                        let claimed = store
                            .claim(16, "bench", Duration::from_secs(60))
                            .await
                            .expect("claim");
                        assert!(!claimed.is_empty(), "queue ran dry after {done} of {iters}");
                        done += claimed.len() as u64;
                        let mut tasks = Vec::with_capacity(claimed.len());
                        for job in claimed {
                            let store = store.clone();
                            tasks.push(tokio::spawn(async move { store.complete(&job).await }));
                        }
                        for t in tasks {
                            t.await.expect("task").expect("complete");
                        }
                    }
                    start.elapsed()
                })
            });
        });
        rt.block_on(store.close());
    }
    group.finish();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Per-call latency of acknowledged ingests, which criterion's per-element mean hides once
/// callers run concurrently.
fn latency_report(rt: &Runtime, quick: bool) {
    println!("\ningest latency per acknowledged call (fresh database per configuration)");
    println!(
        "{:<8} {:>7} {:>8} {:>10} {:>9} {:>9} {:>9}",
        "sync", "callers", "ingests", "ingests/s", "p50_ms", "p99_ms", "max_ms"
    );
    for synchronous in [Synchronous::Full, Synchronous::Normal] {
        for (callers, total) in [(1u64, 3_000u64), (64, 30_000)] {
            let total = if quick { total / 100 } else { total };
            let bench = open(rt, synchronous);
            let (wall, mut lat) = rt.block_on(ingest_burst(&bench.store, callers, total));
            rt.block_on(bench.store.close());
            lat.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            println!(
                "{:<8} {:>7} {:>8} {:>10.0} {:>9.3} {:>9.3} {:>9.3}",
                synchronous.as_str(),
                callers,
                total,
                total as f64 / wall.as_secs_f64(),
                ms(percentile(&lat, 0.50)),
                ms(percentile(&lat, 0.99)),
                ms(*lat.last().expect("latencies")),
            );
        }
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut c = Criterion::default().configure_from_args();
    bench_ingest(&mut c, &rt);
    bench_claim_complete(&mut c, &rt);
    c.final_summary();
    // `cargo test --benches` runs each benchmark once in test mode; keep the report short.
    let quick = std::env::args().any(|a| a == "--test");
    latency_report(&rt, quick);
}
