//! The bulk edit's rows and targets in the report (bulk reads on beside one GET each).

use super::format::{TargetCheck, secs, times};
use crate::bulk::BulkResult;
use crate::stats::ratio;

/// The bulk edit's targets (issue: bulk reads by query).
pub(super) fn bulk_targets(b: &BulkResult) -> Vec<TargetCheck> {
    let on = &b.on;
    vec![
        TargetCheck {
            target: format!(
                "bulk edit of {} tasks: mirror exact ≤ 30 s after the last delivery with ≤ 20 requests",
                on.edited
            ),
            measured: format!(
                "{:.1} s, {} requests ({}); one GET each: {:.1} s, {} requests",
                on.exact_after_last_edit_s,
                on.requests_until_exact.total,
                on.requests_until_exact.breakdown(),
                b.off.exact_after_last_edit_s,
                b.off.requests_until_exact.total
            ),
            met: on.exact_after_last_edit_s <= 30.0 && on.requests_until_exact.total <= 20,
        },
        TargetCheck {
            target: "during the burst: a single edit mirrored ≤ 2 s; an overdue write (its GET, then the PATCH) ≤ 3 s, not behind the burst".into(),
            measured: format!(
                "single edit {:.0} ms, overdue write {:.0} ms (one GET each: {:.0} ms, {:.0} ms)",
                on.single_edit_during_burst_ms,
                on.overdue_write_during_burst_ms,
                b.off.single_edit_during_burst_ms,
                b.off.overdue_write_during_burst_ms
            ),
            met: on.single_edit_during_burst_ms <= 2000.0
                && on.overdue_write_during_burst_ms <= 3000.0,
        },
        TargetCheck {
            target: "idle single edit: 1 request, freshness p50 ≤ 1 s".into(),
            measured: format!(
                "{:.2} requests, p50 {:.0} ms",
                b.idle_requests_per_edit, b.idle_single_edit_ms.p50
            ),
            met: b.idle_requests_per_edit <= 1.0 && b.idle_single_edit_ms.p50 <= 1000.0,
        },
    ]
}

/// The bulk edit's rows: bulk reads on (daemon column) beside one GET each (baseline
/// column), same run.
pub(super) fn bulk_rows(rows: &mut Vec<[String; 5]>, b: &BulkResult) {
    rows.push([
        format!(
            "## bulk edit of {} tasks over {:.0} ms at {} req/s, visibility delay {:.0} ms (baseline column: bulk reads off, one GET each)",
            b.on.edited, b.spread_ms, b.configured_per_s, b.visibility_delay_ms
        ),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ]);
    let ratio = |on: f64, off: f64| times(ratio(off, on));
    let (on, off) = (&b.on, &b.off);
    let mut row = |m: &str, a: String, z: String, r: String| {
        rows.push([m.to_owned(), a, z, r, String::new()]);
    };
    row(
        "mirror exact after the last edit",
        format!("{:.1} s", on.exact_after_last_edit_s),
        format!("{:.1} s", off.exact_after_last_edit_s),
        ratio(on.exact_after_last_edit_s, off.exact_after_last_edit_s),
    );
    row(
        "Notion requests until exact",
        format!(
            "{} ({})",
            on.requests_until_exact.total,
            on.requests_until_exact.breakdown()
        ),
        format!(
            "{} ({})",
            off.requests_until_exact.total,
            off.requests_until_exact.breakdown()
        ),
        ratio(
            on.requests_until_exact.total as f64,
            off.requests_until_exact.total as f64,
        ),
    );
    row(
        "Notion requests until nothing is queued",
        format!(
            "{} ({})",
            on.requests_until_settled.total,
            on.requests_until_settled.breakdown()
        ),
        format!(
            "{} ({})",
            off.requests_until_settled.total,
            off.requests_until_settled.breakdown()
        ),
        "-".into(),
    );
    row(
        "429s",
        on.requests_until_exact.rate_limited_429.to_string(),
        off.requests_until_exact.rate_limited_429.to_string(),
        "-".into(),
    );
    for (name, a, z) in [
        (
            "single edit during the burst → mirror",
            on.single_edit_during_burst_ms,
            off.single_edit_during_burst_ms,
        ),
        (
            "overdue write during the burst",
            on.overdue_write_during_burst_ms,
            off.overdue_write_during_burst_ms,
        ),
    ] {
        row(
            name,
            format!("{a:.0} ms"),
            format!("{z:.0} ms"),
            ratio(a, z),
        );
    }
    row(
        "next incremental pass: body re-checks (bulk lane)",
        on.next_pass_body_rechecks.to_string(),
        off.next_pass_body_rechecks.to_string(),
        "-".into(),
    );
    row(
        "idle single edit: requests, freshness p50 / p99",
        format!(
            "{:.2}, {}",
            b.idle_requests_per_edit,
            secs(&b.idle_single_edit_ms)
        ),
        "-".into(),
        "-".into(),
    );
}
