//! Reading a page body into the mirror: the Markdown endpoint (one request), falling back
//! to block children when it is unavailable or truncates. Owns the Markdown switch: an
//! endpoint that proved unavailable is skipped for [`MARKDOWN_RETRY_AFTER`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use notion_api::{ErrorClass, NotionClient, NotionId};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::context::Ctx;
use crate::error::JobError;

/// How long the Markdown endpoint is skipped after it proved unavailable.
const MARKDOWN_RETRY_AFTER: Duration = Duration::from_secs(600);

/// How the body was obtained, for metrics and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodySource {
    Markdown,
    Blocks,
}

impl BodySource {
    fn as_str(self) -> &'static str {
        match self {
            BodySource::Markdown => "markdown",
            BodySource::Blocks => "blocks",
        }
    }
}

pub(crate) struct BodyReader {
    ctx: Arc<Ctx>,
    markdown_off_until: Mutex<Option<Instant>>,
}

impl BodyReader {
    pub(crate) fn new(ctx: Arc<Ctx>) -> BodyReader {
        BodyReader {
            ctx,
            markdown_off_until: Mutex::new(None),
        }
    }

    /// Reads the body and stores it with its hash; returns when the read that produced
    /// it was sent. A 404 comes back as an error (the caller decides the page is gone).
    pub(crate) async fn read(
        &self,
        client: &NotionClient,
        id: NotionId,
    ) -> Result<Instant, JobError> {
        let ctx = &self.ctx;
        let mut result = None;
        let mut markdown_not_found = false;
        if self.markdown_on() {
            match ctx.observe(client.page_markdown(id).await) {
                Ok(md) if !md.value.truncated => {
                    let at = md.date.unwrap_or_else(|| ctx.now());
                    result = Some((md.value.markdown, at, md.sent, BodySource::Markdown));
                }
                Ok(_) => {
                    metrics::counter!("sync_markdown_truncated_total").increment(1);
                    tracing::debug!("markdown truncated: falling back to block children");
                }
                Err(e)
                    if matches!(
                        e.class(),
                        ErrorClass::Validation | ErrorClass::NotFound | ErrorClass::Forbidden
                    ) =>
                {
                    tracing::debug!(error = %e, "markdown endpoint unavailable: falling back to block children");
                    if e.class() == ErrorClass::NotFound {
                        // The page may be gone: decided below, by the block children.
                        markdown_not_found = true;
                    } else {
                        self.markdown_off();
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        let (markdown, fetched_at, sent, source) = match result {
            Some(r) => r,
            None => {
                let tree = ctx.observe(client.block_tree(id, ctx.config.max_block_depth).await)?;
                if markdown_not_found {
                    // The page exists but the Markdown endpoint answered 404: it is not
                    // available to us; stop paying a request for it on every body.
                    self.markdown_off();
                }
                let at = tree.date.unwrap_or_else(|| ctx.now());
                (
                    notion_api::render_markdown(&tree.value),
                    at,
                    tree.sent,
                    BodySource::Blocks,
                )
            }
        };
        let hash = hex::encode(Sha256::digest(markdown.as_bytes()));
        ctx.store
            .set_page_body(&id, &markdown, &hash, fetched_at)
            .await?;
        metrics::counter!("sync_bodies_fetched_total", "via" => source.as_str(), "source" => self.ctx.source()).increment(1);
        Ok(sent)
    }

    fn markdown_on(&self) -> bool {
        self.markdown_off_until
            .lock()
            .expect("lock")
            .is_none_or(|t| Instant::now() >= t)
    }

    /// Skips the Markdown endpoint for [`MARKDOWN_RETRY_AFTER`].
    fn markdown_off(&self) {
        let mut off = self.markdown_off_until.lock().expect("lock");
        if off.is_none_or(|t| Instant::now() >= t) {
            tracing::info!(
                retry_in_s = MARKDOWN_RETRY_AFTER.as_secs(),
                "markdown endpoint unavailable: reading bodies from block children"
            );
        }
        *off = Some(Instant::now() + MARKDOWN_RETRY_AFTER);
    }
}
