//! The daemon end to end: real sockets, a real SQLite file, a real notion-sim.

mod binary;
mod health;
mod pacing;
mod ship;
mod support;
mod webhooks;
