//! Small named state: reconcile watermarks, resumable scan cursors, flags.

use crate::db;
use crate::error::StoreError;
use crate::store::Store;
use crate::time::to_iso;
use crate::writer::{BoxFut, WriteCx, WriteOp};

enum StateOp {
    Set { name: String, value: String },
    Delete { name: String },
}

impl WriteOp for StateOp {
    type Output = ();

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let result = match self {
                Self::Set { name, value } => {
                    db::query(
                        "INSERT INTO sync_state (name, value, updated_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
                                                          updated_at = excluded.updated_at",
                    )
                    .bind(name)
                    .bind(value)
                    .bind(to_iso(cx.now()))
                    .execute(&mut cx.conn)
                    .await
                }
                Self::Delete { name } => {
                    db::query("DELETE FROM sync_state WHERE name = $1")
                        .bind(name)
                        .execute(&mut cx.conn)
                        .await
                }
            };
            result.map(|_| ()).map_err(|e| cx.err(e))
        })
    }
}

impl Store {
    /// The value stored under `name`, if any.
    #[tracing::instrument(skip_all, fields(state.name = %name), err(level = "debug"))]
    pub async fn get_state(&self, name: &str) -> Result<Option<String>, StoreError> {
        db::query_scalar("SELECT value FROM sync_state WHERE name = $1")
            .bind(name)
            .fetch_optional(self.readers())
            .await
            .map_err(|e| self.err(e))
    }

    /// Stores `value` under `name` (replacing any previous value), durably.
    #[tracing::instrument(skip_all, fields(state.name = %name), err(level = "debug"))]
    pub async fn set_state(&self, name: &str, value: &str) -> Result<(), StoreError> {
        self.write(StateOp::Set {
            name: name.to_owned(),
            value: value.to_owned(),
        })
        .await
    }

    /// Removes `name` (no error if absent).
    #[tracing::instrument(skip_all, fields(state.name = %name), err(level = "debug"))]
    pub async fn delete_state(&self, name: &str) -> Result<(), StoreError> {
        self.write(StateOp::Delete {
            name: name.to_owned(),
        })
        .await
    }
}
