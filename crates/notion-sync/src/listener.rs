//! The connection layer of the HTTP server: accepts at most `server.max_connections`
//! connections, closes any that do not send a complete request head within
//! `server.header_timeout_seconds` (slow headers and idle keep-alive alike), tags each
//! request with its peer address, and drains within a hard deadline on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::log_gate::LogGate;

/// How the listener treats connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections served at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// A connection must send a complete request head within this, from the moment
    /// it opens or its previous response was sent (so it also bounds idle keep-alive).
    pub header_timeout: Duration,
}

/// Serves `app` on `listener` until `stop` fires; then stops accepting, asks every
/// open connection to finish its request and close, and returns by `deadline()` at
/// the latest (connections still open then are dropped). `deadline` is read when
/// `stop` fires.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
    deadline: impl FnOnce() -> tokio::time::Instant,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let drain = CancellationToken::new();
    let mut connections = JoinSet::new();
    let refused_log = LogGate::default();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, do not spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!("http_connections_refused_total").increment(1);
            refused_log.warn(|suppressed| {
                tracing::warn!(
                    limit = limits.max_connections,
                    suppressed,
                    "connection refused: server.max_connections reached"
                );
            });
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let svc = app
            .clone()
            .map_request(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
        let drain = drain.clone();
        connections.spawn(async move {
            let _permit = permit;
            tokio::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => log_connection_end(res, peer),
                _ = drain.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    log_connection_end(conn.await, peer);
                }
            }
        });
    }
    drop(listener);
    drain.cancel();
    let deadline = deadline();
    let open = connections.len();
    let drained = tokio::time::timeout_at(deadline, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            of = open,
            "HTTP connections still open at the shutdown deadline: closed"
        );
        connections.abort_all();
    }
}

fn log_connection_end(res: Result<(), hyper::Error>, peer: SocketAddr) {
    if let Err(e) = res {
        if e.is_timeout() {
            metrics::counter!("http_connections_timed_out_total").increment(1);
        }
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}
