//! `notion-sim` binary: serves a generated workspace and prints one JSON line once listening.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use notion_sim::{Faults, RateLimit, SimConfig, WebhookConfig};

/// A simulated Notion API for trying notion-sync without a token.
#[derive(Debug, Parser)]
#[command(name = "notion-sim", version, about)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Bearer token the API accepts.
    #[arg(long, default_value = "secret_sim_token")]
    token: String,
    /// Another integration of the workspace, by its token (repeat for more); each has
    /// its own rate budget.
    #[arg(long = "extra-token", value_name = "TOKEN")]
    extra_tokens: Vec<String>,
    /// Number of generated tasks.
    #[arg(long, default_value_t = 50)]
    pages: usize,
    /// Generator seed: same seed, same workspace.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Per-integration average requests per second.
    #[arg(long, default_value_t = 3.0)]
    rate: f64,
    /// Per-integration burst.
    #[arg(long, default_value_t = 10)]
    burst: u32,
    /// Disable per-integration rate limiting.
    #[arg(long)]
    no_rate_limit: bool,
    /// Workspace-wide requests per second (off when absent).
    #[arg(long)]
    workspace_rate: Option<f64>,
    /// Workspace-wide burst.
    #[arg(long, default_value_t = 30)]
    workspace_burst: u32,
    /// Query visibility delay in milliseconds.
    #[arg(long, default_value_t = 0)]
    visibility_delay_ms: u64,
    /// Probability of a random 5xx answer.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Added latency per request in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Probability that a request hangs for --hang-ms.
    #[arg(long, default_value_t = 0.0)]
    hang_rate: f64,
    /// How long a hanging request stalls, in milliseconds.
    #[arg(long, default_value_t = 120_000)]
    hang_ms: u64,
    /// Probability that a connection is dropped.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Markdown endpoint block limit.
    #[arg(long, default_value_t = 1000)]
    markdown_block_limit: usize,
    /// Answer 404 on the markdown endpoint.
    #[arg(long)]
    no_markdown: bool,
    /// Results one data source query returns at most (Notion: 10,000).
    #[arg(long, default_value_t = 10_000)]
    query_result_limit: usize,
    /// Webhook drop probability.
    #[arg(long, default_value_t = 0.0)]
    webhook_drop_rate: f64,
    /// Webhook duplicate probability.
    #[arg(long, default_value_t = 0.0)]
    webhook_duplicate_rate: f64,
    /// Sim clock start (RFC 3339); defaults to the wall clock.
    #[arg(long)]
    start_time: Option<chrono::DateTime<chrono::Utc>>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let config = SimConfig {
        listen: SocketAddr::new(args.host, args.port),
        token: args.token,
        extra_tokens: args.extra_tokens,
        extra_task_databases: 0,
        seed: args.seed,
        pages: args.pages,
        rate_limit: (!args.no_rate_limit).then_some(RateLimit {
            per_second: args.rate,
            burst: args.burst,
        }),
        workspace_limit: args.workspace_rate.map(|per_second| RateLimit {
            per_second,
            burst: args.workspace_burst,
        }),
        visibility_delay: Duration::from_millis(args.visibility_delay_ms),
        markdown_block_limit: args.markdown_block_limit,
        markdown_endpoint_enabled: !args.no_markdown,
        query_result_limit: args.query_result_limit,
        webhook: WebhookConfig {
            drop_rate: args.webhook_drop_rate,
            duplicate_rate: args.webhook_duplicate_rate,
            ..WebhookConfig::default()
        },
        start_time: args.start_time,
    };
    let sim = notion_sim::start(config).await?;
    sim.set_faults(Faults {
        error_rate: args.error_rate,
        latency: Duration::from_millis(args.latency_ms),
        hang_rate: args.hang_rate,
        hang_for: Duration::from_millis(args.hang_ms),
        drop_rate: args.drop_rate,
        ..Faults::default()
    });
    let line = serde_json::json!({
        "listen": sim.addr().to_string(),
        "token": sim.token(),
        "database_id": sim.database_id(),
        "data_source_id": sim.data_source_id(),
    });
    println!("{line}");
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
