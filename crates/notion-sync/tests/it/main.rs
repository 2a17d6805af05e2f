//! The daemon end to end: real sockets, a real SQLite file, a real notion-sim.

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
mod ship;
mod sources;
mod support;
mod webhooks;
