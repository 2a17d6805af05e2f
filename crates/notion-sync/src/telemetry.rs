//! Global telemetry, installed once by the binary: the tracing subscriber (JSON or
//! pretty; `RUST_LOG` wins over `log.level`) and the Prometheus metrics recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl LogFormat {
    /// The `log.format` value.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Json => "json",
            LogFormat::Pretty => "pretty",
        }
    }
}

/// Installs the global subscriber writing to stderr. `RUST_LOG`, when set, replaces
/// `level`. Calling it twice is harmless (the second call changes nothing).
pub fn init_tracing(format: LogFormat, level: &str) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(level));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
    drop(result);
}

/// Buckets for latency histograms (seconds): webhook acks are milliseconds, Notion
/// requests and freshness are seconds.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

/// The process-wide Prometheus recorder (installed on first use).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .expect("buckets are valid");
            match builder.install_recorder() {
                Ok(handle) => handle,
                // Someone else installed a recorder (only in unusual embeddings): still
                // render our own, unregistered, so /metrics keeps working.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// Describes the metrics we emit so `/metrics` carries HELP lines.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "notion_requests_total",
        "Notion API requests by endpoint template, method and status"
    );
    describe_histogram!(
        "notion_request_duration_seconds",
        "Notion API request latency"
    );
    describe_counter!("notion_rate_limited_total", "429/529 answers from Notion");
    describe_histogram!(
        "notion_pacer_wait_seconds",
        "Time spent waiting for the global rate limiter, by lane"
    );
    describe_counter!(
        "notion_pacer_pauses_total",
        "Global pauses caused by Retry-After"
    );
    describe_gauge!(
        "notion_pacer_rate",
        "Current request rate of an integration's pacer (requests/s), by integration"
    );
    describe_counter!(
        "webhook_deliveries_total",
        "Webhook deliveries by event type, outcome and integration"
    );
    describe_histogram!("webhook_ack_seconds", "Time from request to webhook answer");
    describe_gauge!("queue_jobs", "Jobs by state, lane and source");
    describe_gauge!(
        "queue_oldest_queued_age_seconds",
        "Age of the oldest queued job"
    );
    describe_counter!("sync_jobs_total", "Jobs by kind and outcome");
    describe_histogram!("sync_job_duration_seconds", "Job run time by kind");
    describe_histogram!(
        "sync_freshness_seconds",
        "Time from the oldest request of the job's lane to its completion, by lane"
    );
    describe_counter!(
        "sync_bodies_fetched_total",
        "Page bodies fetched, by how (via: markdown or blocks) and source"
    );
    describe_counter!(
        "sync_echo_skipped_total",
        "Echoes of our own writes that cost no request"
    );
    describe_gauge!(
        "mirror_pages",
        "Pages in the mirror (not trashed), by source"
    );
    describe_counter!(
        "webhook_unclaimed_total",
        "Verified events for a data source no source of the integration mirrors (acknowledged, not queued)"
    );
    describe_counter!(
        "sync_pages_handed_off_total",
        "Pages one source read that belong to another source, handed to it"
    );
    describe_counter!(
        "reconcile_runs_total",
        "Reconcile passes by kind and outcome"
    );
    describe_counter!("overdue_marked_total", "Tasks marked overdue");
    describe_counter!(
        "reconcile_pages_updated_total",
        "Pages reconcile passes found changed (edits are happening)"
    );
    describe_gauge!(
        "reconcile_watermark_timestamp_seconds",
        "The incremental watermark (Unix seconds, Notion's clock)"
    );
    describe_gauge!(
        "webhook_last_event_timestamp_seconds",
        "When the newest webhook event was received (Unix seconds)"
    );
    describe_gauge!(
        "notion_token_rejected",
        "1 while Notion rejects the integration token (401)"
    );
    describe_gauge!(
        "store_write_failing",
        "1 when the store failed to commit within the last minute"
    );
    describe_counter!(
        "http_connections_refused_total",
        "Connections closed at accept: server.max_connections reached"
    );
    describe_gauge!(
        "schema_ok",
        "1 when the data source schema fits the task rule, by source"
    );
}
