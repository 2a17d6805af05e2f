//! Shared helpers: a fast simulator, a Notion-style client, a webhook receiver, fixtures.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use notion_sim::{SimConfig, SimHandle, WebhookConfig};
use serde_json::Value;

pub const VERSION: &str = "2025-09-03";

/// A simulator without rate limiting and with quick webhook timings.
pub fn fast_config() -> SimConfig {
    SimConfig {
        pages: 20,
        rate_limit: None,
        webhook: WebhookConfig {
            aggregate_window: Duration::from_millis(50),
            retry_base: Duration::from_millis(10),
            timeout: Duration::from_secs(5),
            ..WebhookConfig::default()
        },
        ..SimConfig::default()
    }
}

pub async fn sim(config: SimConfig) -> SimHandle {
    notion_sim::start(config).await.expect("simulator starts")
}

/// A thin Notion client for tests: bearer token, `Notion-Version`, JSON bodies.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

pub struct Res {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Api {
    pub fn new(sim: &SimHandle) -> Self {
        Self {
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            base: sim.base_url(),
            token: sim.token().to_owned(),
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        version: Option<&str>,
        body: Option<&Value>,
    ) -> Res {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(v) = version {
            req = req.header("Notion-Version", v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.expect("request reaches the simulator");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Res {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Res {
        self.send(reqwest::Method::GET, path, Some(VERSION), None)
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Res {
        self.send(reqwest::Method::POST, path, Some(VERSION), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Res {
        self.send(reqwest::Method::PATCH, path, Some(VERSION), Some(body))
            .await
    }

    pub async fn query(&self, ds: &str, body: &Value) -> Res {
        self.post(&format!("/v1/data_sources/{ds}/query"), body)
            .await
    }

    /// All ids a query returns, following cursors.
    pub async fn query_ids(&self, ds: &str, body: &Value) -> Vec<String> {
        let mut ids = Vec::new();
        let mut body = body.clone();
        loop {
            let res = self.query(ds, &body).await;
            assert_eq!(res.status, 200, "query failed: {}", res.body);
            for p in res.body["results"].as_array().unwrap() {
                ids.push(p["id"].as_str().unwrap().to_owned());
            }
            match res.body["next_cursor"].as_str() {
                Some(c) => body["start_cursor"] = Value::String(c.to_owned()),
                None => return ids,
            }
        }
    }
}

/// Asserts a Notion error body.
pub fn assert_error(res: &Res, status: u16, code: &str) {
    assert_eq!(res.status, status, "unexpected body {}", res.body);
    assert_eq!(res.body["object"], "error");
    assert_eq!(res.body["status"], status);
    assert_eq!(res.body["code"], code, "body {}", res.body);
    assert!(res.body["message"].is_string());
    assert!(res.body["request_id"].is_string());
}

/// One request a receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct ReceiverState {
    got: Vec<Received>,
    fail_next: u32,
}

/// A local webhook endpoint recording every POST; can fail the next N requests with 500.
#[derive(Clone)]
pub struct Receiver {
    state: Arc<Mutex<ReceiverState>>,
    pub url: String,
}

impl Receiver {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { state, url }
    }

    pub fn fail_next(&self, n: u32) {
        self.state.lock().unwrap().fail_next = n;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }

    /// Received events (the handshake excluded).
    pub fn events(&self) -> Vec<Value> {
        self.received()
            .iter()
            .map(Received::json)
            .filter(|v| v.get("verification_token").is_none())
            .collect()
    }
}

async fn receive(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut s = state.lock().unwrap();
    s.got.push(Received { headers, body });
    if s.fail_next > 0 {
        s.fail_next -= 1;
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

/// `<repo>/../shared/fixtures`, or `NOTION_FIXTURES_DIR`; `None` (with a loud note) if absent.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("NOTION_FIXTURES_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"),
        PathBuf::from,
    );
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: fixtures not found at {} (set NOTION_FIXTURES_DIR)",
            dir.display()
        );
        None
    }
}

pub fn read_fixture(dir: &std::path::Path, rel: &str) -> Value {
    let text = std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}
