#![doc = include_str!("../README.md")]

mod checkpoint;
mod clock;
mod config;
mod coord;
mod db;
mod error;
mod ingest;
mod intents;
mod migrate;
mod mirror;
mod postgres;
mod queue;
mod state;
mod store;
mod time;
mod tokens;
mod writer;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Location, ParseSynchronousError, StoreConfig, Synchronous, redact_url};
pub use coord::{Lease, Replica};
pub use error::{DatabaseError, MigrationError, StoreError};
pub use ingest::{IncomingEvent, IngestOutcome};
pub use intents::{STATUS_WRITE_CLAIM, StatusWrite};
pub use mirror::{PageFilter, PageRow, PageUpsert, Transition, UpsertOutcome};
pub use notion_id::NotionId;
pub use queue::{
    ClaimedJob, EnqueueOutcome, FailOutcome, JobFailure, JobFilter, JobRow, JobState, Lane, NewJob,
    ParseEnumError, QueueStats,
};
pub use store::{DEFAULT_SOURCE, Store};
pub use tokens::{MAX_VERIFICATION_TOKENS, TokenOrigin, TokenRecorded, VerificationToken};
pub use writer::WriteStats;
