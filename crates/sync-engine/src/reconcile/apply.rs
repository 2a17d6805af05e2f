//! Turning query results into mirror rows (no per-page GET) with the body re-checks they
//! call for, and confirming the deletions a full scan implies.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use notion_api::{ErrorClass, NotionClient, NotionId, Page};
use sync_store::{Lane, PageRow, UpsertOutcome};
use tokio_util::sync::CancellationToken;

use crate::context::Ctx;
use crate::error::ReconcileError;
use crate::freshness::{body_may_have_changed_on_query, properties_equal};
use crate::job::{Job, PageSyncPayload};
use crate::schema_guard::SchemaGuard;
use crate::scope::Scope;
use crate::status::PassSummary;

/// Mirrors one page of query results (answered at `observed_at`, Notion's clock) and
/// queues body re-checks (bulk lane) where the body may have changed (with `audit`,
/// every body not proven current: the full scan). Returns whether the rows disagree with
/// the schema guard's picture (a property missing or retyped).
///
/// A query row holds what was visible to queries, which may lag an edit by the
/// visibility margin, so it is stored as observed at `observed_at − margin` (what it
/// proves). A row whose mirror copy was read after that is not written: that read may
/// hold an edit the row lacks; where the two differ, a GET decides.
pub(crate) async fn mirror_results(
    ctx: &Ctx,
    schema: &SchemaGuard,
    pages: &[Page],
    observed_at: DateTime<Utc>,
    audit: bool,
    summary: &mut PassSummary,
) -> Result<bool, ReconcileError> {
    let store = &ctx.store;
    let margin = ctx.config.reconcile.visibility_margin;
    let mut upserts = Vec::with_capacity(pages.len());
    let mut bodies = Vec::new();
    let mut suspect = false;
    let proven = observed_at - chrono::TimeDelta::from_std(margin).unwrap_or_default();
    let mut rereads = Vec::new();
    // The mirror's copies of the whole result page in one read.
    let ids: Vec<NotionId> = pages.iter().map(|p| p.id).collect();
    let mut copies = store.get_pages(&ids).await?;
    for page in pages {
        let mirror = copies.remove(&page.id);
        if body_may_have_changed_on_query(mirror.as_ref(), page, observed_at, margin, audit) {
            let job = Job::PageSync {
                page: page.id,
                work: PageSyncPayload::body_check(),
            };
            bodies.push(job.to_new_job(Lane::Bulk));
        }
        suspect |= schema.contradicts(page);
        match &mirror {
            // Read after what this row proves: which of the two is newer is unknown. Where
            // they differ, a GET decides (bulk lane); where they agree, nothing to write.
            Some(m) if m.observed_at > proven => {
                if m.observed_at <= observed_at && !same_state(m, page) {
                    let job = Job::PageSync {
                        page: page.id,
                        work: PageSyncPayload::props_check(),
                    };
                    rereads.push(job.to_new_job(Lane::Bulk));
                }
            }
            // Labelled with what it proves, so a later read that is newer wins.
            _ => upserts.push(ctx.page_upsert(page, proven)?),
        }
    }
    if !rereads.is_empty() {
        tracing::debug!(
            pages = rereads.len(),
            "query rows may be older than the mirror's reads: read again by GET"
        );
    }
    let outcomes = store.upsert_pages(&upserts).await?;
    summary.pages_seen += pages.len() as u64;
    summary.pages_updated += outcomes
        .iter()
        .filter(|o| matches!(o, UpsertOutcome::Inserted | UpsertOutcome::Updated))
        .count() as u64;
    if !bodies.is_empty() || !rereads.is_empty() {
        summary.bodies_queued += bodies.len() as u64;
        bodies.append(&mut rereads);
        store.enqueue_batch(bodies).await?;
        ctx.wake_workers();
    }
    Ok(suspect)
}

/// Whether a query row shows what the mirror holds (edit minute, trash, editable
/// properties).
fn same_state(mirror: &PageRow, page: &Page) -> bool {
    mirror.last_edited_time == page.last_edited_time
        && mirror.in_trash == page.in_trash
        && properties_equal(&mirror.properties, page.raw_properties())
}

/// A finished full scan, for [`confirm_deletions`].
pub(super) struct FullScan<'a> {
    pub ds: NotionId,
    /// Notion's clock at the scan's first answer.
    pub start: DateTime<Utc>,
    /// Every page the scan returned, if this process ran all of it.
    pub seen: Option<&'a HashSet<NotionId>>,
}

/// After a full scan: mirrored pages the scan did not see are confirmed with a GET
/// (404 or in_trash → trashed; still there → mirrored again). Returns how many were
/// found trashed.
///
/// The scan's rows are stored as observed a visibility margin before their answer, so a
/// row observed before `start − margin` was not returned. A row read (by a GET) in the
/// margin just before the scan may or may not have been: with the scan's ids at hand it
/// is confirmed unless returned; for a resumed scan (ids of its first part gone) it waits
/// for the next full scan.
pub(super) async fn confirm_deletions(
    ctx: &Ctx,
    scope: &Scope,
    scan: FullScan<'_>,
    client: &NotionClient,
    cancel: &CancellationToken,
) -> Result<u64, ReconcileError> {
    // Ids only: a full scan of a large workspace must not load every row.
    let margin =
        chrono::TimeDelta::from_std(ctx.config.reconcile.visibility_margin).unwrap_or_default();
    let unseen: Vec<NotionId> = match scan.seen {
        Some(seen) => ctx
            .store
            .page_ids_observed_before(&scan.ds, scan.start)
            .await?
            .into_iter()
            .filter(|id| !seen.contains(id))
            .collect(),
        None => {
            ctx.store
                .page_ids_observed_before(&scan.ds, scan.start - margin)
                .await?
        }
    };
    let ds = scan.ds;
    let mut trashed = 0;
    for id in unseen {
        if cancel.is_cancelled() {
            return Err(ReconcileError::Cancelled);
        }
        match ctx.observe(client.retrieve_page(id).await) {
            Ok(page) => {
                let at = page.date.unwrap_or_else(|| ctx.now());
                if scope.contains(&page.value).await {
                    ctx.mirror(&page.value, at).await?;
                    trashed += u64::from(page.value.in_trash);
                } else if ctx.page_gone(&id, at).await? {
                    trashed += 1;
                }
            }
            Err(e) if e.class() == ErrorClass::NotFound => {
                if ctx.page_gone(&id, ctx.now()).await? {
                    trashed += 1;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    if trashed > 0 {
        tracing::info!(data_source.id = %ds, pages = trashed, "full scan: pages deleted or unshared without an event marked in_trash");
    }
    Ok(trashed)
}
