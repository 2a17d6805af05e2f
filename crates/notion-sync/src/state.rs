//! What every HTTP handler shares: the sources, each integration's webhook endpoint and
//! signing key, the metrics handle, the intake switch, the webhook limits and the
//! rate-limited log lines.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretString;
use sync_engine::{Engine, Sources};

use crate::config::ServerConfig;
use crate::handshake::HandshakeGate;
use crate::log_gate::WebhookLogs;
use crate::replica::Replica;

/// One integration's webhook endpoint (`/webhooks/notion/{integration}`).
pub struct Endpoint {
    pub integration: String,
    /// Its signing key (the subscription's verification token).
    pub secret: Arc<SecretSlot>,
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// Every source's engine.
    pub sources: Sources,
    /// One per integration, in order of first use (`Config::integrations`).
    pub endpoints: Arc<Vec<Endpoint>>,
    /// The first source's engine (the store and clock every source shares).
    pub engine: Engine,
    /// The first integration's signing key.
    pub webhook_secret: Arc<SecretSlot>,
    pub metrics: PrometheusHandle,
    /// False once shutdown began: webhooks get 503 so Notion retries elsewhere/later.
    pub accepting: Arc<AtomicBool>,
    /// True while draining after SIGTERM: `/healthz` answers 503, webhooks are still taken.
    pub draining: Arc<AtomicBool>,
    /// This replica (its id and leadership, for health).
    pub replica: Arc<Replica>,
    /// `server.max_body_bytes`: larger webhook bodies get 413.
    pub max_body_bytes: u64,
    /// `server.body_timeout_seconds`: a body not received within this gets 408.
    pub body_timeout: Duration,
    /// Signed events older than this are refused as replays (the event log forgets ids
    /// after `store.event_retention_days`; this is that minus [`REPLAY_MARGIN`]).
    pub replay_window: chrono::TimeDelta,
    pub handshakes: Arc<HandshakeGate>,
    pub logs: Arc<WebhookLogs>,
}

/// How much shorter than the event retention the replay window is: room for a clock
/// difference between Notion and us.
pub const REPLAY_MARGIN: chrono::TimeDelta = chrono::TimeDelta::hours(1);

impl AppState {
    /// The state of a server with `server`'s limits, whose event log forgets event ids
    /// after `event_retention`, serving as `replica`.
    pub fn new(
        sources: Sources,
        endpoints: Vec<Endpoint>,
        metrics: PrometheusHandle,
        server: &ServerConfig,
        event_retention: Duration,
        replica: Arc<Replica>,
    ) -> AppState {
        let retention =
            chrono::TimeDelta::from_std(event_retention).unwrap_or(chrono::TimeDelta::MAX);
        AppState {
            engine: sources.first().clone(),
            webhook_secret: endpoints[0].secret.clone(),
            sources,
            endpoints: Arc::new(endpoints),
            metrics,
            accepting: Arc::new(AtomicBool::new(true)),
            draining: Arc::new(AtomicBool::new(false)),
            replica,
            max_body_bytes: server.max_body_bytes,
            body_timeout: server.body_timeout,
            replay_window: retention - REPLAY_MARGIN,
            handshakes: Arc::new(HandshakeGate::new(server.accept_handshakes)),
            logs: Arc::default(),
        }
    }
}

impl AppState {
    /// The endpoint of `integration`; `None` names the unnamed path, which serves the one
    /// integration of a daemon that has only one.
    pub fn endpoint(&self, integration: Option<&str>) -> Option<&Endpoint> {
        match integration {
            Some(name) => self.endpoints.iter().find(|e| e.integration == name),
            None if self.endpoints.len() == 1 => self.endpoints.first(),
            None => None,
        }
    }
}

/// The webhook signing key (`NOTION_WEBHOOK_SECRET`); settable at run time so the
/// demo can play the operator who pastes the verification token.
#[derive(Default)]
pub struct SecretSlot(std::sync::RwLock<Option<SecretString>>);

impl SecretSlot {
    pub fn new(secret: Option<SecretString>) -> Arc<SecretSlot> {
        Arc::new(SecretSlot(std::sync::RwLock::new(secret)))
    }

    pub fn set(&self, secret: SecretString) {
        *self.0.write().expect("secret lock") = Some(secret);
    }

    pub fn get(&self) -> Option<SecretString> {
        self.0.read().expect("secret lock").clone()
    }

    pub fn is_set(&self) -> bool {
        self.0.read().expect("secret lock").is_some()
    }
}
