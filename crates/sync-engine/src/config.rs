//! The engine's own configuration and its defaults (written here once; the binary's
//! `config/default.toml` documents them and a test keeps the two equal).

use std::time::Duration;

use notion_api::NotionId;

/// Where the task rows live: one data source, or every data source of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    DataSource(NotionId),
    Database(NotionId),
}

/// The task rule's settings (`[tasks]`).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskConfig {
    pub status_property: String,
    pub due_property: String,
    /// Empty: every status outside the schema's "Complete" group.
    pub open_statuses: Vec<String>,
    pub overdue_status: String,
    pub timezone: chrono_tz::Tz,
    /// `false` turns the overdue rule off (mirror only).
    pub mark_overdue: bool,
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self {
            status_property: "Status".into(),
            due_property: "Due Date".into(),
            open_statuses: vec!["To Do".into(), "In Progress".into()],
            overdue_status: "Overdue".into(),
            timezone: chrono_tz::UTC,
            mark_overdue: true,
        }
    }
}

/// The reconciler's settings (`[reconcile]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// 6-field cron (with seconds), UTC. Empty: no scheduled incremental pass.
    pub schedule: String,
    /// 6-field cron for the full scan that finds deletions. Empty: none.
    pub full_schedule: String,
    /// Subtracted from the minute-floored pass start to form the next watermark.
    pub backstep: Duration,
    /// How long a fresh edit may stay invisible to queries; bodies fetched within
    /// `minute + 60 s + margin` of an edit are re-checked.
    pub visibility_margin: Duration,
    /// Run one pass at start-up.
    pub on_start: bool,
    /// Re-read the schema at least this often during passes.
    pub schema_check_interval: Duration,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            schedule: "0 */5 * * * *".into(),
            full_schedule: "0 30 3 * * *".into(),
            backstep: Duration::from_secs(60),
            visibility_margin: Duration::from_secs(15),
            on_start: true,
            schema_check_interval: Duration::from_secs(3600),
        }
    }
}

/// The worker pool's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Worker tasks draining the queue.
    pub count: usize,
    /// Job lease; renewed every third of it while a job runs.
    pub lease: Duration,
    /// How long running jobs may take to finish after shutdown is requested.
    pub shutdown_grace: Duration,
    /// Pending property reads of one kind of edit in one data source from which one
    /// query answers them instead of a GET each (`bulk_read.rs`); 0 turns it off.
    pub bulk_read_threshold: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            count: 4,
            lease: Duration::from_secs(120),
            shutdown_grace: Duration::from_secs(30),
            // A query must wait for the edits to become visible (the 15 s margin); GETs
            // drain at 3 req/s. From about 3 × 16 s ≈ 48 pending reads the query finishes
            // the group no later than GETs would, for 1 request per 100 instead of 1 each;
            // 40 leans to the budget every other change and overdue write shares.
            bulk_read_threshold: 40,
        }
    }
}

/// Everything the engine needs besides its handles. One engine mirrors one configured
/// source (its `name`), through one integration (`integration`: token, budget, webhook).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// The source's name: its jobs, mirror rows, metrics and health say it.
    pub name: String,
    /// The integration it reads through (sources of one integration share its budget).
    pub integration: String,
    pub source: Source,
    /// Data sources other sources mirror by name: a database source leaves them out of
    /// its own (each data source belongs to one source).
    pub excluded_data_sources: Vec<NotionId>,
    pub tasks: TaskConfig,
    pub reconcile: ReconcileConfig,
    pub workers: WorkerConfig,
    /// Depth limit for the block-children fallback.
    pub max_block_depth: usize,
}

impl EngineConfig {
    /// Defaults for everything but the source.
    pub fn new(source: Source) -> Self {
        Self {
            name: sync_store::DEFAULT_SOURCE.to_owned(),
            integration: sync_store::DEFAULT_SOURCE.to_owned(),
            source,
            excluded_data_sources: Vec::new(),
            tasks: TaskConfig::default(),
            reconcile: ReconcileConfig::default(),
            workers: WorkerConfig::default(),
            max_block_depth: 8,
        }
    }
}
