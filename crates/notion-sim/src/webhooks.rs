//! The webhook sender: subscriptions, the verification handshake, aggregation, signing,
//! drop/duplicate/reorder faults and retries with exponential backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use rand::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::iso_z;
use crate::config::WebhookConfig;
use crate::error::SimError;

/// The API version stamped on every event.
pub const WEBHOOK_API_VERSION: &str = "2025-09-03";

/// `sha256=<hex HMAC-SHA256(key = verification_token, msg = body)>`, Notion's
/// `X-Notion-Signature` header value.
pub fn webhook_signature(verification_token: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(verification_token.as_bytes())
        .expect("HMAC-SHA256 accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Who made a change: a person, or the integration's bot (API edits).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Author {
    pub id: String,
    pub bot: bool,
}

/// An event before it is addressed to a subscription.
#[derive(Clone, Debug)]
pub(crate) struct EventSpec {
    pub kind: &'static str,
    pub entity_id: String,
    pub entity_type: &'static str,
    pub parent: Value,
    pub updated_blocks: Option<Vec<String>>,
    pub updated_properties: Option<Vec<Value>>,
    pub authors: Vec<Author>,
    pub at: DateTime<Utc>,
}

impl EventSpec {
    fn aggregated(&self) -> bool {
        matches!(
            self.kind,
            "page.content_updated" | "data_source.content_updated"
        )
    }

    fn merge(&mut self, other: EventSpec) {
        if let (Some(mine), Some(theirs)) = (&mut self.updated_blocks, other.updated_blocks) {
            for b in theirs {
                if !mine.contains(&b) {
                    mine.push(b);
                }
            }
        }
        for a in other.authors {
            if !self.authors.contains(&a) {
                self.authors.push(a);
            }
        }
    }
}

/// Counters for assertions; see [`crate::SimHandle::webhook_stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WebhookStats {
    /// Events addressed to a subscription (after aggregation, before drop).
    pub events_emitted: u64,
    /// Deliveries that got a 2xx.
    pub deliveries_ok: u64,
    /// Deliveries that exhausted every attempt.
    pub deliveries_failed: u64,
    /// Events never sent (drop rate).
    pub dropped: u64,
    /// Events sent twice (duplicate rate).
    pub duplicated: u64,
    /// Events aggregating, waiting, in flight or retrying.
    pub pending: u64,
    /// HTTP attempts made (handshakes excluded).
    pub attempts: u64,
    /// Attempts that failed (non-2xx or transport error).
    pub attempts_failed: u64,
}

/// Identity stamped on every event.
#[derive(Clone, Debug)]
pub(crate) struct Workspace {
    pub workspace_id: String,
    pub workspace_name: String,
    pub integration_id: String,
    pub accessible_by: Value,
}

/// Not `Debug`: it holds the verification token.
#[derive(Clone)]
struct Subscription {
    id: String,
    url: String,
    token: String,
    /// Only events of these databases (their pages and data sources): an integration
    /// that only these databases are shared with. `None`: every event.
    databases: Option<Vec<String>>,
}

impl Subscription {
    fn wants(&self, ev: &EventSpec) -> bool {
        match &self.databases {
            None => true,
            Some(dbs) => {
                ev.parent["type"] == "database"
                    && ev.parent["id"]
                        .as_str()
                        .is_some_and(|id| dbs.iter().any(|d| d == id))
            }
        }
    }
}

type AggKey = (String, &'static str, String);

pub(crate) struct Hub {
    workspace: Workspace,
    subs: Mutex<Vec<Subscription>>,
    config: Mutex<WebhookConfig>,
    stats: Mutex<WebhookStats>,
    pending: watch::Sender<usize>,
    aggregating: Mutex<HashMap<AggKey, EventSpec>>,
    rng: Mutex<StdRng>,
    client: reqwest::Client,
    tracker: TaskTracker,
    cancel: CancellationToken,
    runtime: tokio::runtime::Handle,
}

impl Hub {
    pub(crate) fn new(
        workspace: Workspace,
        config: WebhookConfig,
        seed: u64,
        cancel: CancellationToken,
    ) -> Self {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_default();
        Self {
            workspace,
            subs: Mutex::new(Vec::new()),
            config: Mutex::new(config),
            stats: Mutex::new(WebhookStats::default()),
            pending: watch::Sender::new(0),
            aggregating: Mutex::new(HashMap::new()),
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x5eed_1e55_f00d_cafe)),
            client,
            tracker: TaskTracker::new(),
            cancel,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    pub(crate) fn set_config(&self, c: WebhookConfig) {
        *crate::lock(&self.config) = c;
    }

    pub(crate) fn stats(&self) -> WebhookStats {
        let mut s = *crate::lock(&self.stats);
        s.pending = u64::try_from(*self.pending.borrow()).unwrap_or(u64::MAX);
        s
    }

    pub(crate) async fn idle(&self) {
        let mut rx = self.pending.subscribe();
        // The sender lives as long as `self`, so this only ends when pending hits zero.
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    pub(crate) async fn shutdown(&self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    fn add_pending(&self, n: usize) {
        self.pending.send_modify(|p| *p += n);
    }

    fn done_pending(&self) {
        self.pending.send_modify(|p| *p = p.saturating_sub(1));
    }

    fn with_stats(&self, f: impl FnOnce(&mut WebhookStats)) {
        f(&mut crate::lock(&self.stats));
    }

    async fn sleep(&self, d: Duration) -> bool {
        if d.is_zero() {
            return !self.cancel.is_cancelled();
        }
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            () = self.cancel.cancelled() => false,
        }
    }

    /// Creates a subscription after delivering the unsigned handshake; returns the token.
    #[tracing::instrument(skip_all, fields(webhook.url = %url))]
    pub(crate) async fn subscribe(
        &self,
        url: &str,
        token: Option<String>,
        databases: Option<Vec<String>>,
    ) -> Result<(String, String), SimError> {
        let token = token.unwrap_or_else(|| {
            let mut rng = crate::lock(&self.rng);
            let suffix: String = (0..43)
                .map(|_| {
                    const CHARS: &[u8] =
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                    char::from(CHARS[rng.random_range(0..CHARS.len())])
                })
                .collect();
            format!("secret_{suffix}")
        });
        let body = serde_json::to_vec(&json!({"verification_token": token}))
            .map_err(|e| SimError::Invalid(e.to_string()))?;
        let timeout = crate::lock(&self.config).timeout;
        let res = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .timeout(timeout)
            .body(body)
            .send()
            .await;
        // As in Notion, the answer does not decide the subscription: it is verified by
        // the token the operator pastes (a receiver that already holds its secret
        // refuses handshakes). Only an unreachable URL is an error.
        match res {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                tracing::debug!(
                    status = r.status().as_u16(),
                    "the receiver did not store the handshake"
                );
            }
            Err(e) => {
                return Err(SimError::Handshake {
                    url: url.to_owned(),
                    reason: e.without_url().to_string(),
                });
            }
        }
        let id = uuid::Uuid::new_v4().to_string();
        crate::lock(&self.subs).push(Subscription {
            id: id.clone(),
            url: url.to_owned(),
            token: token.clone(),
            databases,
        });
        tracing::debug!(webhook.subscription_id = %id, "webhook subscription created");
        Ok((token, id))
    }

    /// Addresses events to every subscription, aggregating content updates.
    pub(crate) fn emit(self: &Arc<Self>, events: Vec<EventSpec>) {
        let subs = crate::lock(&self.subs).clone();
        for sub in subs {
            for ev in events.iter().filter(|ev| sub.wants(ev)) {
                let ev = ev.clone();
                if ev.aggregated() {
                    let key: AggKey = (sub.id.clone(), ev.kind, ev.entity_id.clone());
                    let mut agg = crate::lock(&self.aggregating);
                    if let Some(existing) = agg.get_mut(&key) {
                        existing.merge(ev);
                        continue;
                    }
                    agg.insert(key.clone(), ev);
                    drop(agg);
                    self.add_pending(1);
                    let window = crate::lock(&self.config).aggregate_window;
                    let hub = Arc::clone(self);
                    let sub = sub.clone();
                    self.tracker.spawn_on(
                        async move {
                            let alive = hub.sleep(window).await;
                            let ev = crate::lock(&hub.aggregating).remove(&key);
                            match ev {
                                Some(ev) if alive => hub.finalize(&sub, ev),
                                _ => hub.done_pending(),
                            }
                        },
                        &self.runtime,
                    );
                } else {
                    self.add_pending(1);
                    self.finalize(&sub, ev);
                }
            }
        }
    }

    fn payload(&self, sub: &Subscription, ev: &EventSpec) -> Value {
        let mut data = serde_json::Map::new();
        data.insert("parent".to_owned(), ev.parent.clone());
        if let Some(blocks) = &ev.updated_blocks {
            data.insert(
                "updated_blocks".to_owned(),
                Value::Array(
                    blocks
                        .iter()
                        .map(|id| json!({"id": id, "type": "block"}))
                        .collect(),
                ),
            );
        }
        if let Some(props) = &ev.updated_properties {
            data.insert("updated_properties".to_owned(), Value::Array(props.clone()));
        }
        json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "timestamp": iso_z(ev.at),
            "workspace_id": self.workspace.workspace_id,
            "workspace_name": self.workspace.workspace_name,
            "subscription_id": sub.id,
            "integration_id": self.workspace.integration_id,
            "type": ev.kind,
            "authors": ev.authors.iter().map(|a| json!({
                "id": a.id,
                "type": if a.bot { "bot" } else { "person" },
            })).collect::<Vec<_>>(),
            "accessible_by": self.workspace.accessible_by,
            "attempt_number": 1,
            "api_version": WEBHOOK_API_VERSION,
            "entity": {"id": ev.entity_id, "type": ev.entity_type},
            "data": data,
        })
    }

    /// Called with one pending unit held for this event.
    fn finalize(self: &Arc<Self>, sub: &Subscription, ev: EventSpec) {
        let config = crate::lock(&self.config).clone();
        let payload = self.payload(sub, &ev);
        self.with_stats(|s| s.events_emitted += 1);
        let (drop_it, dup, delays) = {
            let mut rng = crate::lock(&self.rng);
            let drop_it = rng.random_bool(config.drop_rate.clamp(0.0, 1.0));
            let dup = rng.random_bool(config.duplicate_rate.clamp(0.0, 1.0));
            let max = u64::try_from(config.reorder_max.as_millis()).unwrap_or(u64::MAX);
            let mut delay = || {
                Duration::from_millis(if max == 0 {
                    0
                } else {
                    rng.random_range(0..=max)
                })
            };
            (drop_it, dup, [delay(), delay()])
        };
        if drop_it {
            self.with_stats(|s| s.dropped += 1);
            self.done_pending();
            return;
        }
        let copies = if dup {
            self.with_stats(|s| s.duplicated += 1);
            self.add_pending(1);
            2
        } else {
            1
        };
        for delay in delays.into_iter().take(copies) {
            let hub = Arc::clone(self);
            let sub = sub.clone();
            let payload = payload.clone();
            let config = config.clone();
            self.tracker.spawn_on(
                async move {
                    hub.deliver(&sub, payload, delay, &config).await;
                    hub.done_pending();
                },
                &self.runtime,
            );
        }
    }

    async fn deliver(
        &self,
        sub: &Subscription,
        mut payload: Value,
        delay: Duration,
        c: &WebhookConfig,
    ) {
        if !self.sleep(delay).await {
            return;
        }
        let attempts = c.max_attempts.max(1);
        for attempt in 1..=attempts {
            payload["attempt_number"] = json!(attempt);
            let Ok(body) = serde_json::to_vec(&payload) else {
                return;
            };
            let signature = webhook_signature(&sub.token, &body);
            let res = self
                .client
                .post(&sub.url)
                .header("content-type", "application/json")
                .header("x-notion-signature", signature)
                .timeout(c.timeout)
                .body(body)
                .send()
                .await;
            let ok = matches!(&res, Ok(r) if r.status().is_success());
            self.with_stats(|s| {
                s.attempts += 1;
                if !ok {
                    s.attempts_failed += 1;
                }
            });
            if ok {
                self.with_stats(|s| s.deliveries_ok += 1);
                return;
            }
            tracing::debug!(
                webhook.attempt = attempt,
                webhook.status = res.as_ref().map(|r| r.status().as_u16()).unwrap_or(0),
                "webhook delivery attempt failed"
            );
            if attempt < attempts {
                let factor = 2u32.saturating_pow(attempt - 1);
                if !self.sleep(c.retry_base.saturating_mul(factor)).await {
                    return;
                }
            }
        }
        self.with_stats(|s| s.deliveries_failed += 1);
    }
}
