//! Conversions between `DateTime<Utc>` and the two stored time formats: unix milliseconds
//! (queue bookkeeping) and ISO-8601 UTC text with milliseconds (everything users query).

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::{DatabaseError, StoreError};

/// Unix milliseconds.
pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A stored unix-ms value back to a time; a value chrono cannot represent means a damaged row.
pub(crate) fn from_ms(path: &Path, ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| {
        StoreError::Database(DatabaseError::corrupt(
            path,
            format!("stored time {ms} ms is out of range"),
        ))
    })
}

/// `2026-11-23T17:43:00.000Z`: fixed width for years 0000-9999, so text order is time order.
pub(crate) fn to_iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses a stored ISO-8601 time.
pub(crate) fn from_iso(path: &Path, s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            StoreError::Database(DatabaseError::corrupt(
                path,
                format!("stored time {s:?} is not ISO-8601: {e}"),
            ))
        })
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Truncates to whole milliseconds (what the store keeps), so comparisons with stored values
/// are exact.
pub(crate) fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}
