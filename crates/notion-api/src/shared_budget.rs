//! A request budget several processes draw from: replicas of the daemon on one database
//! share each integration's requests per second. The pacer takes a local slot first (its
//! lanes and AIMD stay local), then the next slot of the shared budget, waiting for it;
//! a rate-limited answer pauses the shared budget too. The store implements it (the
//! binary wires it); when the budget cannot be reached the pacer paces alone.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed, sendable future (the budget is used as a trait object).
pub type BudgetFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// The budget every replica of one integration draws from.
pub trait SharedBudget: Send + Sync + std::fmt::Debug {
    /// Reserves the next slot, slots being `interval` apart across all replicas: how long
    /// to wait before sending.
    fn reserve(&self, interval: Duration) -> BudgetFuture<'_, Duration>;
    /// How long the budget stays paused (a replica was rate limited).
    fn paused_for(&self) -> BudgetFuture<'_, Duration>;
    /// Pauses every replica for `d` (extends, never shortens).
    fn pause(&self, d: Duration) -> BudgetFuture<'_, ()>;
}
