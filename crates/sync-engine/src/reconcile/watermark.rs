//! What the reconciler persists per data source: the watermark (the next incremental
//! pass's lower bound, on Notion's clock) and a running full scan's cursor, so a restart
//! continues where it stopped.

use chrono::{DateTime, Duration as TimeDelta, DurationRound, SecondsFormat, Utc};
use notion_api::NotionId;
use serde::{Deserialize, Serialize};
use sync_store::{Store, StoreError};

/// A full scan in progress, persisted after every page of results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ScanState {
    /// Notion's clock when the scan started: the watermark it will set.
    pub(crate) started_at: DateTime<Utc>,
    /// Every page edited before this was processed (results are sorted ascending).
    pub(crate) resume_from: Option<DateTime<Utc>>,
    pub(crate) pages_seen: u64,
}

fn watermark_key(ds: &NotionId) -> String {
    format!("watermark:{ds}")
}

fn scan_key(ds: &NotionId) -> String {
    format!("scan:{ds}")
}

/// Minute floor of Notion's clock, minus the backstep: the next pass's lower bound.
pub fn next_watermark(t: DateTime<Utc>, backstep: std::time::Duration) -> DateTime<Utc> {
    let floored = t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t);
    floored - TimeDelta::from_std(backstep).unwrap_or_default()
}

/// The data source's watermark, if a pass ever succeeded.
pub(crate) async fn load(
    store: &Store,
    ds: &NotionId,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(store
        .get_state(&watermark_key(ds))
        .await?
        .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc)))
}

/// The interrupted full scan of the data source, if any.
pub(crate) async fn load_scan(
    store: &Store,
    ds: &NotionId,
) -> Result<Option<ScanState>, StoreError> {
    Ok(store
        .get_state(&scan_key(ds))
        .await?
        .and_then(|s| serde_json::from_str(&s).ok()))
}

pub(crate) async fn save_scan(
    store: &Store,
    ds: &NotionId,
    scan: &ScanState,
) -> Result<(), StoreError> {
    let text = serde_json::to_string(scan).expect("scan state serializes");
    store.set_state(&scan_key(ds), &text).await
}

/// A pass succeeded: the watermark moves to `w` and a scan cursor is done with.
/// Returns the stored text.
pub(crate) async fn advance(
    store: &Store,
    ds: &NotionId,
    w: DateTime<Utc>,
) -> Result<String, StoreError> {
    let text = w.to_rfc3339_opts(SecondsFormat::Millis, true);
    store.set_state(&watermark_key(ds), &text).await?;
    store.delete_state(&scan_key(ds)).await?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_floors_to_the_minute_then_steps_back() {
        let t = DateTime::parse_from_rfc3339("2026-11-23T17:43:27.512Z")
            .unwrap()
            .with_timezone(&Utc);
        let w = next_watermark(t, std::time::Duration::from_secs(60));
        assert_eq!(w.to_rfc3339(), "2026-11-23T17:42:00+00:00");
        let w0 = next_watermark(t, std::time::Duration::ZERO);
        assert_eq!(w0.to_rfc3339(), "2026-11-23T17:43:00+00:00");
    }
}
