//! Why a job or a pass did not complete, and whether trying again can help.

use std::time::Duration;

use notion_api::{ErrorClass, NotionError};
use sync_store::StoreError;

/// Why a job did not complete.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Notion(#[from] NotionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Permanent(String),
    /// Worth another attempt after the usual backoff (Notion's answer was overtaken by a
    /// later change, e.g. a task restored from the trash right after a write was refused).
    #[error("{0}")]
    Retry(String),
}

impl JobError {
    /// Permanent failures (bad request, unauthorized, forbidden, not found) go straight
    /// to `dead`.
    pub fn is_permanent(&self) -> bool {
        match self {
            JobError::Notion(e) => matches!(
                e.class(),
                ErrorClass::Unauthorized
                    | ErrorClass::Forbidden
                    | ErrorClass::Validation
                    | ErrorClass::NotFound
            ),
            JobError::Store(_) | JobError::Retry(_) => false,
            JobError::Permanent(_) => true,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            JobError::Notion(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// Why a reconcile pass did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("a reconcile pass is already running")]
    AlreadyRunning,
    #[error("reconcile pass cancelled (shutdown); a full scan resumes where it stopped")]
    Cancelled,
    #[error(
        "no data source to reconcile: set notion.data_source_id or notion.database_id (with [sources.*]: the source's own; a database whose every data source another source names leaves this one none)"
    )]
    NoDataSource,
    #[error(transparent)]
    Notion(#[from] NotionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

impl From<JobError> for ReconcileError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Notion(e) => ReconcileError::Notion(e),
            JobError::Store(e) => ReconcileError::Store(e),
            JobError::Permanent(m) | JobError::Retry(m) => ReconcileError::Invalid(m),
        }
    }
}
