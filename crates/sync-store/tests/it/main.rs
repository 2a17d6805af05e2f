//! Integration tests for sync-store, through its public API.

mod helpers;

mod crash;
mod errors;
mod ingest;
mod ingest_model;
mod mirror;
mod open;
mod queue;
mod queue_model;
mod replicas;
mod sources;
mod state;
