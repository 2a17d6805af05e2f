//! The daemon end to end: real sockets, a real SQLite file (or PostgreSQL server:
//! `NOTION_SYNC_TEST_BACKEND=postgres`), a real notion-sim.

mod balancer;
mod binary;
mod bulk;
mod chaos;
mod disk;
mod edge;
mod faults;
mod fuzz;
mod health;
mod observability;
mod pacing;
mod recovery;
mod replicas;
mod ship;
mod sources;
mod support;
mod webhooks;
