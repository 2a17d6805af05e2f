//! sync-engine against a real notion-sim server and a temporary SQLite file.

mod cost;
mod notify;
mod overdue;
mod page_sync;
mod reconcile;
mod schema;
mod support;
