//! What every HTTP handler shares: the engine, the webhook signing key, the metrics
//! handle, the intake switch and the body limit.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretString;
use sync_engine::Engine;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub webhook_secret: Arc<SecretSlot>,
    pub metrics: PrometheusHandle,
    /// False once shutdown began: webhooks get 503 so Notion retries elsewhere/later.
    pub accepting: Arc<AtomicBool>,
    /// `server.max_body_bytes`: larger webhook bodies get 413.
    pub max_body_bytes: u64,
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
