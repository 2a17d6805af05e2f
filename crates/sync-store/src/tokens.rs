//! Pending webhook verification tokens: the first [`MAX_VERIFICATION_TOKENS`] are kept
//! (a flood can never evict one already stored), each with where it came from; they are
//! purged once a webhook secret is configured, so the database holds no HMAC key.

use chrono::{DateTime, Utc};

use crate::db;
use crate::error::StoreError;
use crate::store::Store;
use crate::time::{from_iso, to_iso};
use crate::writer::{BoxFut, WriteCx, WriteOp};

/// Pending verification tokens kept; once full, new ones are refused (never evicting).
pub const MAX_VERIFICATION_TOKENS: i64 = 20;

/// A verification token received by the webhook endpoint. `Debug` masks it.
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationToken {
    /// The value, to be pasted into Notion's UI. Never log it.
    pub token: String,
    pub received_at: DateTime<Utc>,
    /// Where it came from.
    pub origin: TokenOrigin,
    /// The integration whose webhook endpoint it arrived on.
    pub integration: String,
}

/// The network origin of a handshake, as the daemon saw it (not proof of anything:
/// `forwarded_for` is whatever the sender or a proxy put in `X-Forwarded-For`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenOrigin {
    /// The TCP peer address.
    pub peer: Option<String>,
    /// `X-Forwarded-For`, cut to 200 printable characters.
    pub forwarded_for: Option<String>,
}

impl std::fmt::Debug for VerificationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationToken")
            .field("token", &mask(&self.token))
            .field("received_at", &self.received_at)
            .field("origin", &self.origin)
            .field("integration", &self.integration)
            .finish()
    }
}

/// `secret_****`: the prefix before the first `_` (if short) and nothing else.
fn mask(token: &str) -> String {
    match token.split_once('_') {
        Some((prefix, _)) if prefix.len() <= 8 => format!("{prefix}_****"),
        _ => "****".to_owned(),
    }
}

/// What [`Store::record_verification_token`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRecorded {
    Stored,
    /// The same token was already pending (it keeps its first receipt).
    AlreadyKnown,
    /// [`MAX_VERIFICATION_TOKENS`] are pending: refused, nothing evicted.
    Full,
}

struct RecordToken {
    integration: String,
    token: String,
    origin: TokenOrigin,
}

impl WriteOp for RecordToken {
    type Output = TokenRecorded;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<TokenRecorded, StoreError>> {
        Box::pin(async move {
            let row = db::query(
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN token = $1 THEN 1 ELSE 0 END), 0) \
                 FROM verification_tokens",
            )
            .bind(&self.token)
            .fetch_one(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
            let (count, known): (i64, i64) = (row.get(0), row.get(1));
            if known > 0 {
                return Ok(TokenRecorded::AlreadyKnown);
            }
            if count >= MAX_VERIFICATION_TOKENS {
                return Ok(TokenRecorded::Full);
            }
            db::query(
                "INSERT INTO verification_tokens (token, received_at, peer, forwarded_for, \
                                                  integration) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&self.token)
            .bind(to_iso(cx.now()))
            .bind(&self.origin.peer)
            .bind(&self.origin.forwarded_for)
            .bind(&self.integration)
            .execute(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
            Ok(TokenRecorded::Stored)
        })
    }
}

/// Every integration's, or one's.
struct ClearTokens(Option<String>);

impl WriteOp for ClearTokens {
    type Output = u64;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut deleted = 0;
            // SQLite: overwrite the deleted rows' bytes too, so a copy of the file does not
            // hold a token in a free page. (PostgreSQL keeps dead rows until VACUUM; its
            // files are the server's, not something users copy.)
            const DELETE: &str =
                "DELETE FROM verification_tokens WHERE $1 IS NULL OR integration = $1";
            let statements: &[&'static str] = match cx.backend() {
                db::Backend::Sqlite => &[
                    "PRAGMA secure_delete = ON",
                    DELETE,
                    "PRAGMA secure_delete = OFF",
                ],
                db::Backend::Postgres => &[DELETE],
            };
            for &sql in statements {
                let done = db::query(sql)
                    .bind(self.0.as_deref())
                    .execute(&mut cx.conn)
                    .await
                    .map_err(|e| cx.err(e))?;
                if sql.starts_with("DELETE") {
                    deleted = done.rows_affected();
                }
            }
            Ok(deleted)
        })
    }
}

impl Store {
    /// Stores a verification token that arrived on `integration`'s endpoint as pending,
    /// unless it is already pending or [`MAX_VERIFICATION_TOKENS`] (of all integrations)
    /// are. The store never uses it as a signing key.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn record_verification_token(
        &self,
        integration: &str,
        token: &str,
        origin: &TokenOrigin,
    ) -> Result<TokenRecorded, StoreError> {
        self.write(RecordToken {
            integration: integration.to_owned(),
            token: token.to_owned(),
            origin: origin.clone(),
        })
        .await
    }

    /// Deletes the pending verification tokens of `integration`, or of every integration
    /// (once a secret is configured, or on `webhook tokens --clear`); returns how many
    /// there were.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn clear_verification_tokens(
        &self,
        integration: Option<&str>,
    ) -> Result<u64, StoreError> {
        self.write(ClearTokens(integration.map(str::to_owned)))
            .await
    }

    /// Every pending verification token, oldest first.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn verification_tokens(&self) -> Result<Vec<VerificationToken>, StoreError> {
        let rows = db::query(
            "SELECT token, received_at, peer, forwarded_for, integration FROM verification_tokens \
             ORDER BY received_at, token",
        )
        .fetch_all(self.readers())
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                let received_at: String = r.get(1);
                Ok(VerificationToken {
                    token: r.get(0),
                    received_at: from_iso(self.path(), &received_at)?,
                    origin: TokenOrigin {
                        peer: r.get(2),
                        forwarded_for: r.get(3),
                    },
                    integration: r.get(4),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_debug_is_masked() {
        let t = VerificationToken {
            token: "secret_abcdefghijklmnop".to_owned(),
            received_at: DateTime::from_timestamp(0, 0).unwrap(),
            origin: TokenOrigin::default(),
            integration: "default".into(),
        };
        let shown = format!("{t:?}");
        assert!(!shown.contains("abcdefghijklmnop"), "{shown}");
        assert!(shown.contains("secret_****"), "{shown}");
        assert_eq!(mask("nounderscoresecret"), "****");
        assert_eq!(mask("averylongprefix_secret"), "****");
    }
}
