#![doc = include_str!("../README.md")]

mod api;
mod api_blocks;
mod api_pages;
mod api_workspace;
mod block_edit;
mod block_json;
mod clock;
mod comments;
mod config;
mod control;
mod error;
mod gate;
mod generate;
mod handle;
mod limits;
mod log;
mod markdown;
mod model;
mod mutate;
mod paging;
mod property_item;
mod query;
mod render;
mod respond;
mod search;
mod server;
mod shared;
mod types;
mod values;
mod webhooks;

pub use config::{Faults, RateLimit, SimConfig, WebhookConfig};
pub use error::SimError;
pub use handle::SimHandle;
pub use log::RouteCount;
pub use server::start;
pub use types::{BodyEdit, NewTask, RequestRecord, SimBlock, SimPage};
pub use webhooks::{WEBHOOK_API_VERSION, WebhookStats, webhook_signature};

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the simulator's
/// state stays usable for the remaining assertions).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
