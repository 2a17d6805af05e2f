//! The several-sources rows and target in the report (N sources on one daemon, each
//! through its own integration, beside one source, same run).

use super::format::{TargetCheck, secs};
use crate::sources::SourcesResult;

/// Per-source figures within noise of one source's: requests per change within 0.25 of
/// it, freshness p50 within max(2 ×, +250 ms).
pub(super) fn sources_targets(s: &SourcesResult) -> Vec<TargetCheck> {
    let one = &s.one;
    let worst_rpc = s
        .many
        .per_source
        .iter()
        .map(|f| f.requests_per_change)
        .fold(0.0, f64::max);
    let worst_p50 = s
        .many
        .per_source
        .iter()
        .map(|f| f.freshness_ms.p50)
        .fold(0.0, f64::max);
    let bound = (one.freshness_ms.p50 * 2.0).max(one.freshness_ms.p50 + 250.0);
    vec![TargetCheck {
        target: format!(
            "{} sources × {} pages on one daemon: requests per change and freshness per source equal one source's within noise",
            s.many.sources, s.many.pages_per_source
        ),
        measured: format!(
            "worst source {worst_rpc:.2} req/change, p50 {worst_p50:.0} ms; one source {:.2} req/change, p50 {:.0} ms; 429s {}",
            one.requests_per_change,
            one.freshness_ms.p50,
            s.many
                .per_source
                .iter()
                .map(|f| f.rate_limited_429)
                .sum::<usize>()
        ),
        met: worst_rpc <= one.requests_per_change + 0.25 && worst_p50 <= bound,
    }]
}

/// The rows: N sources (daemon column) beside one source (baseline column).
pub(super) fn sources_rows(rows: &mut Vec<[String; 5]>, s: &SourcesResult) {
    let (many, one) = (&s.many, &s.one);
    rows.push([
        format!(
            "## {} sources × {} pages, each through its own integration (baseline column: one source of {} pages)",
            many.sources, many.pages_per_source, one.pages_per_source
        ),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ]);
    let mut row = |m: String, a: String, z: String| {
        rows.push([m, a, z, "-".into(), String::new()]);
    };
    row(
        "first sync (start to every source drained)".into(),
        format!(
            "{:.1} s, {} requests",
            many.first_sync_s, many.first_sync_requests
        ),
        format!(
            "{:.1} s, {} requests",
            one.first_sync_s, one.first_sync_requests
        ),
    );
    row(
        "requests per change (all sources)".into(),
        format!("{:.2}", many.requests_per_change),
        format!("{:.2}", one.requests_per_change),
    );
    row(
        "freshness p50 / p99 (all sources)".into(),
        secs(&many.freshness_ms),
        secs(&one.freshness_ms),
    );
    let base = &one.per_source[0];
    for f in &many.per_source {
        row(
            format!("source {}: req/change, freshness p50 / p99, 429s", f.name),
            format!(
                "{:.2}, {}, {}",
                f.requests_per_change,
                secs(&f.freshness_ms),
                f.rate_limited_429
            ),
            format!(
                "{:.2}, {}, {}",
                base.requests_per_change,
                secs(&base.freshness_ms),
                base.rate_limited_429
            ),
        );
    }
    row(
        "daemon CPU: first sync, workload".into(),
        format!(
            "{:.2} s, {:.2} s",
            many.cpu_first_sync_s, many.cpu_workload_s
        ),
        format!("{:.2} s, {:.2} s", one.cpu_first_sync_s, one.cpu_workload_s),
    );
    row(
        "RSS / peak after the workload".into(),
        format!(
            "{:.1} / {:.1} MiB",
            many.memory_after.rss_mib, many.memory_after.hwm_mib
        ),
        format!(
            "{:.1} / {:.1} MiB",
            one.memory_after.rss_mib, one.memory_after.hwm_mib
        ),
    );
}
