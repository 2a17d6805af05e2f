//! When a body may have changed, decided without reading it: the rules that keep
//! bodies exact while `last_edited_time` is truncated to the minute (pure; see the
//! crate README, "Body freshness").

use std::time::Duration;

use notion_api::Page;
use sync_store::PageRow;

/// Page-sync (GET) view of "the body may have changed": never fetched, or the page
/// was edited since the mirror's copy and the properties don't explain the edit.
pub(crate) fn body_may_have_changed_on_get(mirror: Option<&PageRow>, page: &Page) -> bool {
    let Some(row) = mirror else { return true };
    if row.body_hash.is_none() {
        return true;
    }
    page.last_edited_time > row.last_edited_time
        && properties_equal(&row.properties, page.raw_properties())
}

/// Query view (the reconciler): decides from a query result alone (no GET).
/// - no body yet → fetch;
/// - body fetched after the edit's minute closed (+ margin) → current, skip;
/// - edited since the mirror's copy: fetch unless the properties changed (they explain it);
/// - same minute as the mirror's copy and properties unchanged, with the body fetched
///   while that minute was open → a second edit in the same minute may hide there:
///   fetch;
/// - the same, with the mirror's copy read while the minute was open (a property edit
///   read by its webhook's GET, which does not read the body: a silent body edit later
///   in that minute leaves `last_edited_time` where it was) → fetch once the minute has
///   closed at this query (`observed_at`), so the read proves it: once per page and
///   minute, however often passes run.
///
/// With `audit`, every body not proven current is fetched (the daily full scan).
pub(crate) fn body_may_have_changed_on_query(
    mirror: Option<&PageRow>,
    page: &Page,
    observed_at: chrono::DateTime<chrono::Utc>,
    margin: Duration,
    audit: bool,
) -> bool {
    let Some(row) = mirror else { return true };
    if page.in_trash {
        return false;
    }
    let (Some(_), Some(fetched)) = (&row.body_hash, row.body_fetched_at) else {
        return true;
    };
    let closed = page.last_edited_time
        + chrono::TimeDelta::seconds(60)
        + chrono::TimeDelta::from_std(margin).unwrap_or_default();
    if fetched >= closed {
        return false;
    }
    if audit {
        return true;
    }
    let same_props = properties_equal(&row.properties, page.raw_properties());
    if page.last_edited_time > row.last_edited_time {
        same_props
    } else {
        // The mirror's copy is labelled with the instant it proves (a query's answer less
        // the margin, a GET's answer): before the minute's end, a later edit in that
        // minute may hide.
        let minute_end = page.last_edited_time + chrono::TimeDelta::seconds(60);
        let read_while_open = row.observed_at < minute_end && observed_at >= closed;
        same_props && (fetched >= page.last_edited_time || read_while_open)
    }
}

/// Compares user-editable properties; computed ones (formulas, rollups, edit stamps)
/// change on every edit and would explain every edit away.
pub(crate) fn properties_equal(mirror_json: &str, fresh: &serde_json::Value) -> bool {
    let Ok(old) = serde_json::from_str::<serde_json::Value>(mirror_json) else {
        return false;
    };
    editable(&old) == editable(fresh)
}

fn editable(props: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    const COMPUTED: &[&str] = &[
        "formula",
        "rollup",
        "last_edited_time",
        "last_edited_by",
        "created_time",
        "created_by",
        "unique_id",
        "button",
        "verification",
    ];
    let mut out: Vec<_> = props
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| {
                    !v.get("type")
                        .and_then(|t| t.as_str())
                        .is_some_and(|t| COMPUTED.contains(&t))
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
