//! Unsigned verification handshakes: anyone who can reach the webhook URL can send one,
//! so they are refused once a webhook secret is set (unless `server.accept_handshakes`),
//! at most [`PER_WINDOW`] per [`WINDOW`] are stored (the rest get 429 without touching
//! the database), stored tokens are never evicted, and the log line is rate-limited.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use sync_store::{Store, TokenOrigin, TokenRecorded};

use crate::log_gate::LogGate;
use crate::webhook_error::WebhookError;

/// Handshakes stored per window; Notion sends one per subscription (and one per
/// "resend token"), so a burst beyond this is not Notion.
pub const PER_WINDOW: u32 = 5;
/// The window of [`PER_WINDOW`].
pub const WINDOW: Duration = Duration::from_secs(600);

/// The handshake policy and its in-memory admission (the first [`PER_WINDOW`] of each
/// window).
#[derive(Debug, Default)]
pub struct HandshakeGate {
    /// `server.accept_handshakes`: store handshakes even with a secret configured.
    accept_with_secret: bool,
    window: Mutex<Option<(Instant, u32)>>,
    /// Lines about refused handshakes (anyone can cause them).
    refused_log: LogGate,
}

impl HandshakeGate {
    pub fn new(accept_with_secret: bool) -> HandshakeGate {
        HandshakeGate {
            accept_with_secret,
            ..HandshakeGate::default()
        }
    }

    /// Whether handshakes are refused (and so no pending token may stay in the
    /// database): a secret is configured and `server.accept_handshakes` is off.
    pub fn closed(&self, secret_set: bool) -> bool {
        secret_set && !self.accept_with_secret
    }

    /// Whether one more handshake may be stored in the current window.
    fn admit(&self) -> bool {
        let mut w = self.window.lock().expect("handshake gate lock");
        let now = Instant::now();
        match &mut *w {
            Some((start, n)) if now.duration_since(*start) < WINDOW => {
                if *n >= PER_WINDOW {
                    return false;
                }
                *n += 1;
            }
            other => *other = Some((now, 1)),
        }
        true
    }
}

/// Whether a string looks like Notion's verification tokens (`secret_` and a few dozen
/// letters and digits): anything else is refused.
fn is_verification_token(token: &str) -> bool {
    token.strip_prefix("secret_").is_some_and(|rest| {
        (16..=128).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// Where a handshake came from: the TCP peer and `X-Forwarded-For`, cut to printable
/// ASCII (at most 200 characters) so the listing cannot be spoofed with control bytes.
pub fn origin(peer: Option<SocketAddr>, headers: &HeaderMap) -> TokenOrigin {
    let forwarded_for = headers
        .get("x-forwarded-for")
        .map(|v| {
            v.as_bytes()
                .iter()
                .filter(|b| b.is_ascii_graphic() || **b == b' ')
                .take(200)
                .map(|b| char::from(*b))
                .collect::<String>()
        })
        .filter(|s| !s.is_empty());
    TokenOrigin {
        peer: peer.map(|p| p.to_string()),
        forwarded_for,
    }
}

impl HandshakeGate {
    /// Handles a `verification_token` body (`secret_set`: a webhook secret is configured).
    pub async fn record(
        &self,
        secret_set: bool,
        store: &Store,
        integration: &str,
        token: &str,
        origin: &TokenOrigin,
    ) -> Result<&'static str, WebhookError> {
        if self.closed(secret_set) {
            self.refused_log.warn(|suppressed| {
                tracing::warn!(suppressed, "{}: 403", REFUSED_WITH_SECRET);
            });
            return Err(WebhookError::HandshakeClosed);
        }
        if !is_verification_token(token) {
            self.refused_log.warn(|suppressed| {
                tracing::warn!(
                    bytes = token.len(),
                    suppressed,
                    "unsigned handshake with something that is not a verification token: 400"
                );
            });
            return Err(WebhookError::Malformed(
                "verification_token is not a Notion verification token".into(),
            ));
        }
        if !self.admit() {
            self.refused_log.warn(|suppressed| {
                tracing::warn!(
                    suppressed,
                    per_window = PER_WINDOW,
                    window_s = WINDOW.as_secs(),
                    "handshake refused: too many in this window (not Notion's pattern): 429"
                );
            });
            return Err(WebhookError::TooManyHandshakes);
        }
        let recorded = store
            .record_verification_token(integration, token, origin)
            .await
            .map_err(WebhookError::Store)?;
        if recorded == TokenRecorded::Full {
            self.refused_log.warn(|suppressed| {
                tracing::warn!(
                    suppressed,
                    max = sync_store::MAX_VERIFICATION_TOKENS,
                    "handshake refused: the pending tokens are full; see `notion-sync webhook tokens` (--clear): 429"
                );
            });
            return Err(WebhookError::TooManyHandshakes);
        }
        // Not rate-limited: admission already bounds these to PER_WINDOW per WINDOW, and
        // a flood of refusals must not hide the line about a real token.
        tracing::warn!(
            peer = origin.peer.as_deref().unwrap_or("?"),
            integration,
            "{}",
            TOKEN_RECEIVED
        );
        Ok("verification_token_stored")
    }
}

/// The line for a refused handshake while a secret is configured.
const REFUSED_WITH_SECRET: &str = "handshake refused: a webhook secret is configured (set server.accept_handshakes = true to receive a new subscription's token)";
/// The line for a stored token.
const TOKEN_RECEIVED: &str = "webhook verification token received: run `notion-sync webhook tokens`, paste it into Notion's \"Verify subscription\" dialog, and set NOTION_WEBHOOK_SECRET to the one Notion accepted";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_token_shape() {
        let check = |t: &str, ok: bool| assert_eq!(is_verification_token(t), ok, "{t:?}");
        check("secret_tMrlL1qK5vuQAh1b6cZGhFChZTSYJlce98V0pYn7yBl", true);
        check("secret_short", false);
        check("tMrlL1qK5vuQAh1b6cZGhFChZTSYJlce98V0pYn7yBl", false);
        check("secret_with spaces and more text here", false);
        check(&format!("secret_{}", "a".repeat(200)), false);
    }

    #[test]
    fn the_first_of_a_window_are_admitted_and_the_rest_refused() {
        let gate = HandshakeGate::default();
        let admitted = (0..100).filter(|_| gate.admit()).count();
        assert_eq!(admitted, PER_WINDOW as usize);
        // A new window admits again.
        gate.window.lock().unwrap().as_mut().unwrap().0 = Instant::now() - WINDOW;
        assert!(gate.admit());
    }

    #[test]
    fn origin_keeps_printable_ascii_only() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"1.2.3.4,\xff\xfe 5.6.7.8").unwrap(),
        );
        let o = origin(Some("127.0.0.1:9".parse().unwrap()), &h);
        assert_eq!(o.peer.as_deref(), Some("127.0.0.1:9"));
        assert_eq!(o.forwarded_for.as_deref(), Some("1.2.3.4, 5.6.7.8"));
    }
}
