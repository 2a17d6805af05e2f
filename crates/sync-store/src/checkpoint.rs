//! The WAL checkpointer: copies committed WAL frames into the database file from its own
//! connection, so that no commit — and so no webhook acknowledgement — waits for
//! checkpoint I/O. The writer connection runs with `wal_autocheckpoint = 0`.
//!
//! Every [`CHECKPOINT_EVERY`] it runs `PRAGMA wal_checkpoint(PASSIVE)`, which copies
//! what it can without waiting for readers or the writer. When a checkpoint has
//! copied the whole log, the writer's next transaction starts the WAL from its
//! beginning again; `journal_size_limit` then truncates a WAL that grew during a burst.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row, SqliteConnection};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often committed frames are copied into the database file.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// The running checkpointer task; [`Checkpointer::shutdown`] stops and awaits it.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    stop: watch::Sender<bool>,
    task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    pub(crate) fn spawn(path: PathBuf, options: SqliteConnectOptions) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(path, options, stopped));
        Self {
            stop,
            task: tokio::sync::Mutex::new(Some(task)),
        }
    }

    pub(crate) async fn shutdown(&self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.lock().await.take()
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "WAL checkpointer task panicked");
        }
    }
}

async fn run(path: PathBuf, options: SqliteConnectOptions, mut stopped: watch::Receiver<bool>) {
    let mut conn: Option<SqliteConnection> = None;
    let mut failing = false;
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = tick.tick() => {}
        }
        let result = match conn.as_mut() {
            Some(c) => checkpoint(c).await,
            None => match options.connect().await {
                Ok(mut c) => {
                    let r = checkpoint(&mut c).await;
                    conn = Some(c);
                    r
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Ok((busy, log, copied)) => {
                if failing {
                    tracing::info!(db.path = %path.display(), "WAL checkpoints work again");
                    failing = false;
                }
                tracing::trace!(busy, log, copied, "WAL checkpoint");
            }
            Err(e) => {
                // Disk full or read-only: commits report it to callers; say it once here.
                if !failing {
                    tracing::warn!(db.path = %path.display(), error = %e, "WAL checkpoint failed; retrying every 500 ms");
                    failing = true;
                }
                if let Some(c) = conn.take() {
                    let _ = c.close().await;
                }
            }
        }
    }
    if let Some(c) = conn {
        let _ = c.close().await;
    }
}

/// One passive checkpoint: (busy, frames in the log, frames copied).
async fn checkpoint(conn: &mut SqliteConnection) -> Result<(i64, i64, i64), sqlx::Error> {
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *conn)
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
}
