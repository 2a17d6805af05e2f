//! An integration's request budget as a row of the store, drawn from by every replica on
//! the database: the [`notion_api::SharedBudget`] the pacers of a replicated daemon use.

use std::time::Duration;

use sync_store::Store;

/// An integration's budget row in the store, shared by every replica
/// ([`notion_api::SharedBudget`]).
#[derive(Debug)]
pub struct StoreBudget {
    store: Store,
    name: String,
}

impl StoreBudget {
    pub fn new(store: Store, integration: &str) -> StoreBudget {
        StoreBudget {
            store,
            name: format!("notion:{integration}"),
        }
    }
}

impl notion_api::SharedBudget for StoreBudget {
    fn reserve(&self, interval: Duration) -> notion_api::BudgetFuture<'_, Duration> {
        Box::pin(async move {
            self.store
                .reserve_request_slot(&self.name, interval)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn paused_for(&self) -> notion_api::BudgetFuture<'_, Duration> {
        Box::pin(async move {
            self.store
                .budget_paused_for(&self.name)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn pause(&self, d: Duration) -> notion_api::BudgetFuture<'_, ()> {
        Box::pin(async move {
            self.store
                .pause_budget(&self.name, d)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
