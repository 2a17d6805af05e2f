#![doc = include_str!("../README.md")]

mod body;
mod bulk_read;
pub mod config;
pub(crate) mod context;
mod engine;
mod error;
mod freshness;
mod job;
pub mod notify;
mod overdue;
mod page_sync;
mod query_window;
mod recent;
mod reconcile;
mod route;
pub mod rules;
pub mod schedule;
mod schema_guard;
mod scope;
mod sources;
pub mod status;
pub mod worker;

pub use config::{EngineConfig, ReconcileConfig, Source, TaskConfig, WorkerConfig};
pub use context::Handoff;
pub use engine::Engine;
pub use error::{JobError, ReconcileError};
pub use job::{Job, PageSyncPayload, UnknownJob};
pub use notify::{Notifier, NotifierTask};
pub use overdue::MarkOutcome;
pub use reconcile::{PassKind, next_watermark};
pub use route::{RouteContext, route_event};
pub use schedule::run_scheduler;
pub use sources::{Routed, Sources};
pub use status::{BulkBurst, BulkStatus, EngineStatus, PassProgress, PassSummary, SchemaState};
pub use worker::{DrainReport, WorkerPool};
