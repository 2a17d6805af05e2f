//! A load balancer in front of several replicas, as a Kubernetes Service or a reverse
//! proxy is: real HTTP on a real socket, forwarding each webhook delivery to one replica
//! in turn. `Routing::Ready` sends only to replicas whose `/healthz` answered 200 at the
//! last probe (every 100 ms, like a readiness probe); `Routing::Live` to any that accepts
//! the connection. It records every answer it gave.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routing {
    /// Only replicas that passed their last readiness probe.
    Ready,
    /// Any replica that accepts the connection.
    Live,
}

struct Backend {
    port: u16,
    ready: AtomicBool,
}

struct Shared {
    backends: Vec<Backend>,
    next: AtomicUsize,
    http: reqwest::Client,
    /// Every answer given: (status, which backend; `usize::MAX` when none took it).
    answers: Mutex<Vec<(u16, usize)>>,
}

pub struct Balancer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Balancer {
    /// In front of the replicas listening on `ports`.
    pub async fn start(ports: &[u16], routing: Routing) -> Balancer {
        let shared = Arc::new(Shared {
            backends: ports
                .iter()
                .map(|&p| Backend {
                    port: p,
                    ready: AtomicBool::new(routing == Routing::Live),
                })
                .collect(),
            next: AtomicUsize::new(0),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            answers: Mutex::new(Vec::new()),
        });
        let stop = CancellationToken::new();
        if routing == Routing::Ready {
            let (s, c) = (shared.clone(), stop.clone());
            tokio::spawn(async move { probe(s, c).await });
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let s = shared.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let s = s.clone();
            async move { forward(&s, uri, headers, body).await }
        });
        let c = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { c.cancelled().await })
                .await
                .unwrap();
        });
        Balancer { addr, shared, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Every answer so far: (status, backend index or `usize::MAX`).
    pub fn answers(&self) -> Vec<(u16, usize)> {
        self.shared.answers.lock().unwrap().clone()
    }

    /// Whether backend `i` passed its last readiness probe.
    pub fn ready(&self, i: usize) -> bool {
        self.shared.backends[i].ready.load(Ordering::Relaxed)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn probe(s: Arc<Shared>, stop: CancellationToken) {
    loop {
        for b in &s.backends {
            let port = b.port;
            let ok = s
                .http
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .timeout(Duration::from_millis(500))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            b.ready.store(ok, Ordering::Relaxed);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

async fn forward(s: &Shared, uri: Uri, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let n = s.backends.len();
    let first = s.next.fetch_add(1, Ordering::Relaxed);
    for k in 0..n {
        let i = (first + k) % n;
        let b = &s.backends[i];
        if !b.ready.load(Ordering::Relaxed) {
            continue;
        }
        let port = b.port;
        let mut req = s
            .http
            .post(format!("http://127.0.0.1:{port}{}", uri.path()))
            .body(body.clone());
        for name in ["content-type", "x-notion-signature"] {
            if let Some(v) = headers.get(name) {
                req = req.header(name, v.clone());
            }
        }
        match req.send().await {
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                s.answers.lock().unwrap().push((status.as_u16(), i));
                return (status, text);
            }
            // Not listening (killed, restarting): the next one, as a proxy with retries
            // on connect failure does.
            Err(e) if e.is_connect() => continue,
            Err(e) => {
                s.answers.lock().unwrap().push((502, i));
                return (StatusCode::BAD_GATEWAY, e.to_string());
            }
        }
    }
    s.answers.lock().unwrap().push((503, usize::MAX));
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "no replica available".to_owned(),
    )
}
