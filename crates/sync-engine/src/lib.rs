#![doc = include_str!("../README.md")]

pub mod config;
pub mod engine;
pub mod jobs;
pub mod notify;
mod recent;
pub mod reconcile;
pub mod rules;
pub mod schedule;
pub mod status;
pub mod worker;

pub use config::{EngineConfig, ReconcileConfig, Source, TaskConfig};
pub use engine::{Engine, JobError, MarkOutcome};
pub use jobs::{PageSyncPayload, RouteContext, route_event};
pub use notify::{Notifier, NotifierTask};
pub use reconcile::{PassKind, ReconcileError};
pub use schedule::run_scheduler;
pub use status::{EngineStatus, PassProgress, PassSummary, SchemaState};
pub use worker::{DrainReport, WorkerPool};
