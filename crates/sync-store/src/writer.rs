//! The single write path: one task owns the only read-write connection and commits every
//! write request, batching whatever is queued into one transaction (group commit).
//!
//! The loop takes the first request from the channel, then everything already waiting (up
//! to `group_commit_max_batch`), runs them inside one `BEGIN IMMEDIATE … COMMIT` and only
//! then answers each caller through its oneshot. A burst of concurrent callers therefore
//! costs one fsync, not one per caller. Operations that group (webhook ingests) are
//! merged into one operation per batch, which runs first with multi-row statements; the
//! other requests follow in arrival order. (All requests of a batch are concurrent and
//! commit at once, so any order is a valid serialization.)
//!
//! On PostgreSQL every replica has such a writer, and batches of all replicas take turns:
//! the first statement of each transaction takes a transaction-level advisory lock
//! (`pg_advisory_xact_lock`, released by its `COMMIT` or `ROLLBACK`), and at `READ
//! COMMITTED` every later statement reads what the previous batch committed, so batches
//! run one at a time as on SQLite, whose one writer serializes everything. Group commit
//! still shares one turn among a replica's concurrent callers. Should PostgreSQL still
//! report a serialization failure or a deadlock ([`StoreError::Conflict`]), the batch is
//! rolled back (which ends its turn) and run again, up to [`CONFLICT_RETRIES`] times.
//! (Measured with three replicas ingesting: `SERIALIZABLE` without turns, 704/s with a
//! 451 ms ack p99, its page-level predicate locks failing unrelated inserts; `REPEATABLE
//! READ` without turns, 1,005/s, hot keys conflicting; with turns, ~3,600/s. See
//! BENCHMARKS.md.) A frozen holder's transaction is ended by the server after
//! `postgres::IDLE_IN_TRANSACTION`; a lost connection is re-opened before the next batch.
//!
//! Failure rules:
//! * an environmental error ([`StoreError::aborts_batch`]: disk full, busy, read-only, I/O)
//!   from any statement, or a failed `COMMIT`, rolls back and fails every caller in the
//!   batch with that error: nothing of the batch is written;
//! * any other error is blamed on the operation that raised it: the transaction is rolled
//!   back, that caller gets the error, and the remaining operations are re-run from scratch
//!   in a new transaction. Operations are therefore written to be re-runnable (they only
//!   read the database and the clock). The ingest group is instead re-run in one-by-one
//!   mode, so only the caller whose event failed gets the error.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::StoreConfig;
use crate::db::{self, Backend, Conn};
use crate::error::StoreError;

/// A boxed, sendable future (the writer stores heterogeneous operations).
pub(crate) type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Requests waiting for the writer beyond this make callers wait (backpressure).
const CHANNEL_CAPACITY: usize = 4096;

/// What an operation sees: the write connection and the store's settings.
pub(crate) struct WriteCx {
    pub(crate) conn: Conn,
    /// How to open the connection again after PostgreSQL lost it (`None` on SQLite).
    pub(crate) reconnect: Option<sqlx::postgres::PgConnectOptions>,
    /// The connection failed and is re-opened before the next batch.
    pub(crate) broken: bool,
    /// The database as errors name it (the file, or the URL without its password).
    pub(crate) path: PathBuf,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: StoreConfig,
    /// Per source: consecutive interactive claims since its last bulk claim (the
    /// bulk-lane floor is each source's own).
    pub(crate) interactive_streak: std::collections::HashMap<String, u32>,
    pub(crate) stats: Arc<WriterCounters>,
}

/// Counters the writer keeps, shared with the store handle.
#[derive(Debug, Default)]
pub(crate) struct WriterCounters {
    requests: AtomicU64,
    transactions: AtomicU64,
    failed_transactions: AtomicU64,
    conflicts: AtomicU64,
}

/// How the single write path is doing (for metrics: `requests / transactions` is the mean
/// group-commit batch size).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Write requests received (each `ingest`, `enqueue`, `claim`, … call is one).
    pub requests: u64,
    /// Transactions committed.
    pub transactions: u64,
    /// Transactions rolled back because of an environmental error or a failed commit.
    pub failed_transactions: u64,
    /// Batches run again because another replica changed a row they write (PostgreSQL).
    pub conflicts: u64,
}

impl WriterCounters {
    pub(crate) fn snapshot(&self) -> WriteStats {
        WriteStats {
            requests: self.requests.load(Ordering::Relaxed),
            transactions: self.transactions.load(Ordering::Relaxed),
            failed_transactions: self.failed_transactions.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
        }
    }
}

impl WriteCx {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn err(&self, e: sqlx::Error) -> StoreError {
        StoreError::from_sqlx(&self.path, e)
    }

    pub(crate) fn backend(&self) -> Backend {
        self.conn.backend()
    }

    /// Re-opens a PostgreSQL connection that failed; true when the connection is usable.
    async fn ensure_connected(&mut self) -> Result<(), StoreError> {
        if !self.broken {
            return Ok(());
        }
        let Some(options) = &self.reconnect else {
            self.broken = false;
            return Ok(());
        };
        use sqlx::ConnectOptions;
        let within = self
            .config
            .busy_timeout
            .max(std::time::Duration::from_secs(5));
        let connected = match tokio::time::timeout(within, options.connect()).await {
            Ok(c) => c,
            Err(_) => {
                return Err(StoreError::Io {
                    path: self.path.clone(),
                    message: format!("no connection within {} s", within.as_secs()),
                });
            }
        };
        match connected {
            Ok(conn) => {
                let old = std::mem::replace(&mut self.conn, Conn::Postgres(conn));
                drop(old);
                self.broken = false;
                tracing::info!(db.url = %self.path.display(), "store write connection re-opened");
                Ok(())
            }
            Err(e) => Err(self.err(e)),
        }
    }
}

/// Batches run again after a serialization failure before their callers get it.
const CONFLICT_RETRIES: u32 = 16;

/// One kind of write. `apply` runs inside the batch transaction (or alone, outside any
/// transaction, when `STANDALONE`), must not commit, and must be re-runnable after a
/// rollback. An `Err` from `apply` aborts the operation (see the module docs); a domain
/// rejection that wrote nothing (e.g. a lost lease) belongs in `Output` instead.
pub(crate) trait WriteOp: Send + 'static {
    type Output: Send + 'static;
    /// Runs outside the batch transaction, alone (migrations manage their own transactions).
    const STANDALONE: bool = false;
    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<Self::Output, StoreError>>;
}

/// A queued operation with its result slot and reply channel, type-erased.
pub(crate) trait Erased: std::any::Any + Send {
    fn standalone(&self) -> bool;
    fn apply<'a>(&'a mut self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<(), StoreError>>;
    /// The transaction committed: send the computed output.
    fn reply_ok(self: Box<Self>);
    fn reply_err(self: Box<Self>, e: StoreError);
    /// `apply` failed with a non-environmental error and the transaction was rolled back.
    /// Return true to be re-run (the operation switched to a slower, failure-isolating
    /// strategy) instead of being answered with the error.
    fn retry_after(&mut self, _e: &StoreError) -> bool {
        false
    }
    /// True for operations that run as one per batch: the writer hands every later
    /// operation of the batch to the first such one's `absorb`.
    fn groups(&self) -> bool {
        false
    }
    /// Takes `other` into this operation if it is of the same kind; else gives it back.
    fn absorb(&mut self, other: Box<dyn Erased>) -> Result<(), Box<dyn Erased>> {
        Err(other)
    }
}

struct Pending<O: WriteOp> {
    op: O,
    out: Option<O::Output>,
    reply: oneshot::Sender<Result<O::Output, StoreError>>,
}

impl<O: WriteOp> Erased for Pending<O> {
    fn standalone(&self) -> bool {
        O::STANDALONE
    }

    fn apply<'a>(&'a mut self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.out = None;
            let out = self.op.apply(cx).await?;
            self.out = Some(out);
            Ok(())
        })
    }

    fn reply_ok(self: Box<Self>) {
        // `out` is always set when the writer calls this (apply returned Ok in the committed
        // run); a missing value would be a writer bug, reported as a closed store rather
        // than a panic.
        let result = self.out.ok_or(StoreError::Closed);
        // The caller may have gone away (cancelled); the write stands regardless.
        let _ = self.reply.send(result);
    }

    fn reply_err(self: Box<Self>, e: StoreError) {
        let _ = self.reply.send(Err(e));
    }
}

enum Message {
    Op(Box<dyn Erased>),
    Shutdown,
}

/// The handle the store keeps: sends operations, stops the task.
pub(crate) struct Writer {
    tx: mpsc::Sender<Message>,
    task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Spawns the writer task, which owns `cx` (and so the write connection) until shutdown.
    pub(crate) fn spawn(cx: WriteCx) -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let task = tokio::spawn(run(cx, rx));
        Self {
            tx,
            task: tokio::sync::Mutex::new(Some(task)),
        }
    }

    /// Runs `op` in the next group commit and waits for the durable result.
    pub(crate) async fn call<O: WriteOp>(&self, op: O) -> Result<O::Output, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Message::Op(Box::new(Pending {
                op,
                out: None,
                reply,
            })))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Hands an operation that answers its callers itself (a grouping one) to the writer.
    pub(crate) async fn submit(&self, op: Box<dyn Erased>) -> Result<(), StoreError> {
        self.tx
            .send(Message::Op(op))
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// Lets the writer finish everything sent before this call, then stops it and closes the
    /// connection. Later calls fail with [`StoreError::Closed`]. Idempotent; concurrent callers
    /// all return after the task has ended.
    pub(crate) async fn shutdown(&self) {
        let mut task = self.task.lock().await;
        if let Some(handle) = task.take() {
            // Fails only if the task already ended (its receiver is gone).
            let _ = self.tx.send(Message::Shutdown).await;
            if let Err(e) = handle.await {
                tracing::error!(error = %e, "store writer task panicked");
            }
        }
    }
}

async fn run(mut cx: WriteCx, mut rx: mpsc::Receiver<Message>) {
    let max_batch = cx.config.group_commit_max_batch.max(1);
    let mut ops: Vec<Box<dyn Erased>> = Vec::with_capacity(max_batch);
    let mut grouped: Vec<Box<dyn Erased>> = Vec::new();
    let mut group: Vec<Box<dyn Erased>> = Vec::with_capacity(max_batch);
    let mut stopping = false;
    while !stopping {
        let mut take = |message: Message| match message {
            Message::Op(op) if op.groups() => {
                let mut op = op;
                for g in grouped.iter_mut() {
                    match g.absorb(op) {
                        Ok(()) => return true,
                        Err(back) => op = back,
                    }
                }
                grouped.push(op);
                true
            }
            Message::Op(op) => {
                ops.push(op);
                true
            }
            Message::Shutdown => false,
        };
        match rx.recv().await {
            Some(message) => {
                if !take(message) {
                    break;
                }
            }
            None => break,
        }
        let mut taken: u64 = 1;
        while taken < max_batch as u64 {
            let Ok(message) = rx.try_recv() else { break };
            if !take(message) {
                stopping = true;
                break;
            }
            taken += 1;
        }
        cx.stats.requests.fetch_add(taken, Ordering::Relaxed);
        tracing::trace!(batch.size = taken, "store writer batch");
        // Every request in a batch is concurrent with the others and all commit together,
        // so any order within the batch is a valid serialization: grouped operations
        // (ingests) go first.
        group.append(&mut grouped);
        for op in ops.drain(..) {
            if op.standalone() {
                commit_group(&mut cx, &mut group).await;
                run_standalone(&mut cx, op).await;
            } else {
                group.push(op);
            }
        }
        commit_group(&mut cx, &mut group).await;
    }
    // Refuse new requests, answer those that raced with the shutdown.
    rx.close();
    while let Some(message) = rx.recv().await {
        match message {
            Message::Op(op) => op.reply_err(StoreError::Closed),
            Message::Shutdown => {}
        }
    }
    let WriteCx { conn, path, .. } = cx;
    if let Err(e) = conn.close().await {
        tracing::warn!(error = %e, db.path = %path.display(), "closing the store's write connection");
    }
}

async fn run_standalone(cx: &mut WriteCx, mut op: Box<dyn Erased>) {
    match op.apply(cx).await {
        Ok(()) => op.reply_ok(),
        Err(e) => op.reply_err(e),
    }
}

/// Commits `ops` in one transaction (see the module docs for the failure rules). Leaves
/// `ops` empty: every operation has been answered.
async fn commit_group(cx: &mut WriteCx, ops: &mut Vec<Box<dyn Erased>>) {
    let mut conflicts = 0;
    while !ops.is_empty() {
        if let Err(e) = cx.ensure_connected().await {
            cx.stats.failed_transactions.fetch_add(1, Ordering::Relaxed);
            fail_all(ops, &e);
            return;
        }
        if !attempt(cx, ops, &mut conflicts).await {
            return;
        }
    }
}

/// The advisory lock whose holder is the one writer, of all replicas, inside a batch on
/// PostgreSQL (an arbitrary constant: "nsync-w").
const WRITER_TURN: i64 = 0x006e_7379_6e63_2d77;

/// Opens the batch's transaction: SQLite's write lock, or on PostgreSQL a transaction
/// whose first statement waits for the writers' turn (a wait past `lock_timeout` is
/// `Busy`).
async fn begin(cx: &mut WriteCx) -> Result<(), StoreError> {
    match cx.backend() {
        Backend::Sqlite => exec(cx, "BEGIN IMMEDIATE").await,
        Backend::Postgres => {
            exec(cx, "BEGIN").await?;
            let turn = db::query("SELECT pg_advisory_xact_lock($1)")
                .bind(WRITER_TURN)
                .execute(&mut cx.conn)
                .await;
            match turn {
                Ok(_) => Ok(()),
                Err(e) => {
                    let e = cx.err(e);
                    rollback(cx).await;
                    Err(e)
                }
            }
        }
    }
}

/// One try at committing `ops`; true when the remaining ones are to be tried again.
async fn attempt(cx: &mut WriteCx, ops: &mut Vec<Box<dyn Erased>>, conflicts: &mut u32) -> bool {
    if let Err(e) = begin(cx).await {
        cx.stats.failed_transactions.fetch_add(1, Ordering::Relaxed);
        note_failure(cx, &e);
        fail_all(ops, &e);
        return false;
    }
    let mut failure = None;
    for (i, op) in ops.iter_mut().enumerate() {
        if let Err(e) = op.apply(cx).await {
            failure = Some((i, e));
            break;
        }
    }
    match failure {
        None => match exec(cx, "COMMIT").await {
            Ok(()) => {
                cx.stats.transactions.fetch_add(1, Ordering::Relaxed);
                for op in ops.drain(..) {
                    op.reply_ok();
                }
                false
            }
            Err(e) => {
                rollback(cx).await;
                if retry_conflict(cx, &e, conflicts).await {
                    return true;
                }
                cx.stats.failed_transactions.fetch_add(1, Ordering::Relaxed);
                note_failure(cx, &e);
                fail_all(ops, &e);
                false
            }
        },
        Some((i, e)) => {
            rollback(cx).await;
            if retry_conflict(cx, &e, conflicts).await {
                return true;
            }
            if e.aborts_batch() {
                note_failure(cx, &e);
                cx.stats.failed_transactions.fetch_add(1, Ordering::Relaxed);
                fail_all(ops, &e);
                false
            } else {
                if !ops[i].retry_after(&e) {
                    // Blame the one operation; re-run the others without it.
                    ops.remove(i).reply_err(e);
                }
                !ops.is_empty()
            }
        }
    }
}

/// A serialization failure: wait a moment (jittered, growing) and say whether to run the
/// batch again.
async fn retry_conflict(cx: &WriteCx, e: &StoreError, conflicts: &mut u32) -> bool {
    if !matches!(e, StoreError::Conflict { .. }) || *conflicts >= CONFLICT_RETRIES {
        return false;
    }
    cx.stats.conflicts.fetch_add(1, Ordering::Relaxed);
    *conflicts += 1;
    // The other transaction has usually committed by now: retry soon, spread out.
    let ceiling = 1u64 << (*conflicts).min(5);
    let wait = rand::random_range(0..=ceiling);
    tracing::debug!(error = %e, retry = *conflicts, wait_ms = wait, "store write batch conflicted; running it again");
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    true
}

/// A connection-level failure on PostgreSQL: re-open the connection before the next batch.
fn note_failure(cx: &mut WriteCx, e: &StoreError) {
    if cx.reconnect.is_some() && matches!(e, StoreError::Io { .. } | StoreError::Closed) {
        cx.broken = true;
    }
}

fn fail_all(ops: &mut Vec<Box<dyn Erased>>, e: &StoreError) {
    tracing::debug!(error = %e, batch.size = ops.len(), "store write batch failed");
    for op in ops.drain(..) {
        op.reply_err(e.clone());
    }
}

pub(crate) async fn exec(cx: &mut WriteCx, sql: &'static str) -> Result<(), StoreError> {
    match db::query(sql).execute(&mut cx.conn).await {
        Ok(_) => Ok(()),
        Err(e) => Err(cx.err(e)),
    }
}

async fn rollback(cx: &mut WriteCx) {
    // SQLite rolls back by itself after some errors (e.g. SQLITE_FULL); then ROLLBACK
    // reports "no transaction is active", which is the state we want.
    if let Err(e) = db::query("ROLLBACK").execute(&mut cx.conn).await {
        tracing::trace!(error = %e, "ROLLBACK after a failed batch");
    }
}
