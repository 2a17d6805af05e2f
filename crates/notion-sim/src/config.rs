//! Configuration of a simulated workspace: listener, token, generator, limits, webhooks, faults.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Everything [`crate::start`] needs. `Default` gives a small, Notion-like workspace.
#[derive(Clone)]
pub struct SimConfig {
    /// Address to bind; port 0 picks a free port. Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// The bearer token the API accepts. Default `"secret_sim_token"`.
    pub token: String,
    /// More integrations of the same workspace, one token each (integration 1, 2, …;
    /// `token` is integration 0). Each has its own per-integration bucket (`rate_limit`)
    /// and shares the workspace bucket; each sees every page. Default none.
    pub extra_tokens: Vec<String>,
    /// Seed of the workspace generator (ids, titles, bodies). Default 1.
    pub seed: u64,
    /// Number of generated tasks in the "Tasks" data source. Default 50.
    pub pages: usize,
    /// More task databases ("Tasks 2", …: the same schema, `pages` tasks each), for
    /// several sources in one workspace. Default 0.
    pub extra_task_databases: usize,
    /// Per-integration token bucket. Default `Some(3.0/s, burst 10)`; `None` disables it.
    pub rate_limit: Option<RateLimit>,
    /// Optional workspace-wide bucket with longer `Retry-After`. Default `None`.
    pub workspace_limit: Option<RateLimit>,
    /// How long a committed edit stays invisible to queries. Default 0.
    pub visibility_delay: Duration,
    /// Blocks the markdown endpoint renders before answering `truncated: true`. Default 1000.
    pub markdown_block_limit: usize,
    /// When false, `GET /v1/pages/{id}/markdown` answers 404. Default true.
    pub markdown_endpoint_enabled: bool,
    /// Results one data source query returns at most (over all its cursor pages) before
    /// it stops with `request_status: incomplete`, as Notion's does. Default 10,000.
    pub query_result_limit: usize,
    /// Webhook delivery behaviour.
    pub webhook: WebhookConfig,
    /// Start of the simulated clock; `None` starts at the wall clock.
    pub start_time: Option<DateTime<Utc>>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: "secret_sim_token".to_owned(),
            extra_tokens: Vec::new(),
            seed: 1,
            pages: 50,
            extra_task_databases: 0,
            rate_limit: Some(RateLimit::default()),
            workspace_limit: None,
            visibility_delay: Duration::ZERO,
            markdown_block_limit: 1000,
            markdown_endpoint_enabled: true,
            query_result_limit: 10_000,
            webhook: WebhookConfig::default(),
            start_time: None,
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("listen", &self.listen)
            .field("token", &"****")
            .field("seed", &self.seed)
            .field("pages", &self.pages)
            .field("rate_limit", &self.rate_limit)
            .field("workspace_limit", &self.workspace_limit)
            .field("visibility_delay", &self.visibility_delay)
            .field("markdown_block_limit", &self.markdown_block_limit)
            .field("query_result_limit", &self.query_result_limit)
            .field("markdown_endpoint_enabled", &self.markdown_endpoint_enabled)
            .field("webhook", &self.webhook)
            .field("start_time", &self.start_time)
            .finish()
    }
}

/// A token bucket: `per_second` average refill, `burst` capacity.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Average requests per second.
    pub per_second: f64,
    /// Bucket capacity (requests that may be sent at once after an idle period).
    pub burst: u32,
}

impl Default for RateLimit {
    /// Notion's documented average of 3 requests/s with a small burst allowance.
    fn default() -> Self {
        Self {
            per_second: 3.0,
            burst: 10,
        }
    }
}

/// How the webhook sender behaves. Durations are (de)serialized as milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookConfig {
    /// `page.content_updated` / `data_source.content_updated` events for the same entity
    /// within this window merge into one. Default 1 s.
    #[serde(with = "duration_ms", rename = "aggregate_window_ms")]
    pub aggregate_window: Duration,
    /// Probability that an event is silently never sent. Default 0.
    pub drop_rate: f64,
    /// Probability that an event is delivered twice (same `id`). Default 0.
    pub duplicate_rate: f64,
    /// Each delivery waits a random delay in `0..=reorder_max` first. Default 0.
    #[serde(with = "duration_ms", rename = "reorder_max_ms")]
    pub reorder_max: Duration,
    /// Backoff before attempt `n + 1` is `retry_base * 2^(n-1)`. Default 1 s.
    #[serde(with = "duration_ms", rename = "retry_base_ms")]
    pub retry_base: Duration,
    /// Attempts per delivery, including the first. Default 8 (like Notion).
    pub max_attempts: u32,
    /// Per-attempt HTTP timeout. Default 10 s.
    #[serde(with = "duration_ms", rename = "timeout_ms")]
    pub timeout: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            aggregate_window: Duration::from_secs(1),
            drop_rate: 0.0,
            duplicate_rate: 0.0,
            reorder_max: Duration::ZERO,
            retry_base: Duration::from_secs(1),
            max_attempts: 8,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Runtime fault injection for API requests. Durations are (de)serialized as milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Probability that a request answers one of `error_statuses` instead.
    pub error_rate: f64,
    /// Statuses picked uniformly when `error_rate` fires. Default `[500, 502, 503, 504]`.
    pub error_statuses: Vec<u16>,
    /// Added to every API response.
    #[serde(with = "duration_ms", rename = "latency_ms")]
    pub latency: Duration,
    /// Probability that a request stalls for `hang_for` before being answered.
    pub hang_rate: f64,
    /// How long a hanging request stalls (set it past the client's timeout).
    #[serde(with = "duration_ms", rename = "hang_for_ms")]
    pub hang_for: Duration,
    /// Probability that the connection is dropped without a complete response.
    pub drop_rate: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            error_statuses: vec![500, 502, 503, 504],
            latency: Duration::ZERO,
            hang_rate: 0.0,
            hang_for: Duration::from_secs(120),
            drop_rate: 0.0,
        }
    }
}

/// Serde helper: `Duration` as integer milliseconds.
pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
