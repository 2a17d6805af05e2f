//! Cell formatting shared by the report's sections, and the target check type.

use serde::Serialize;

use crate::stats::Summary;

/// One target of the issue, checked against a measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    pub target: String,
    pub measured: String,
    pub met: bool,
}

pub(super) fn f0(v: f64) -> String {
    format!("{v:.0}")
}

pub(super) fn f1(v: f64) -> String {
    format!("{v:.1}")
}

pub(super) fn pct(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

pub(super) fn lat(s: &Summary) -> String {
    format!("{:.1} / {:.1} / {:.1}", s.p50, s.p99, s.max)
}

/// p50 / p99 of milliseconds, in ms below a second, else in seconds.
pub(super) fn secs(s: &Summary) -> String {
    if s.p99 < 1000.0 {
        format!("{:.0} / {:.0} ms", s.p50, s.p99)
    } else {
        format!("{:.2} / {:.2} s", s.p50 / 1e3, s.p99 / 1e3)
    }
}

pub(super) fn times(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |r| format!("{r:.1}x"))
}

pub(super) fn yes(b: bool) -> String {
    if b { "yes".to_owned() } else { "NO".to_owned() }
}
