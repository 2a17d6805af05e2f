//! Percentiles and summaries of measured samples.

use std::time::Duration;

use serde::Serialize;

/// The `q`-quantile (0.0..=1.0) of `sorted` by the nearest-rank method: the smallest sample
/// such that at least `q` of all samples are ≤ it. `None` for no samples.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let q = q.clamp(0.0, 1.0);
    // Nearest rank: ceil(q * n), at least 1.
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// Count, p50, p99, max and mean of a set of samples (milliseconds or any unit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    /// Summarises `samples` (any order). All zeros for no samples.
    pub fn of(samples: &[f64]) -> Summary {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return Summary::default();
        }
        sorted.sort_by(f64::total_cmp);
        let sum: f64 = sorted.iter().sum();
        Summary {
            count: sorted.len(),
            p50: percentile(&sorted, 0.50).unwrap_or_default(),
            p99: percentile(&sorted, 0.99).unwrap_or_default(),
            max: *sorted.last().unwrap_or(&0.0),
            mean: sum / sorted.len() as f64,
        }
    }

    /// Summarises durations in milliseconds.
    pub fn of_durations_ms(samples: &[Duration]) -> Summary {
        let ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        Summary::of(&ms)
    }
}

/// Events per second over a window; 0 for an empty window.
pub fn rate(count: f64, window: Duration) -> f64 {
    let s = window.as_secs_f64();
    if s > 0.0 { count / s } else { 0.0 }
}

/// Achieved request rate of a series of arrival times (seconds): requests after the first
/// divided by the span from the first to the last. The first request opens the window, so
/// `n` requests paced exactly `1/r` apart give exactly `r`. `None` for fewer than 2.
pub fn arrival_rate(arrivals_s: &[f64]) -> Option<f64> {
    if arrivals_s.len() < 2 {
        return None;
    }
    let first = arrivals_s.iter().copied().fold(f64::INFINITY, f64::min);
    let last = arrivals_s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = last - first;
    (span > 0.0).then(|| (arrivals_s.len() - 1) as f64 / span)
}

/// `a / b`, or `None` when `b` is zero (a ratio to an ideal that cost nothing).
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b != 0.0 && a.is_finite() && b.is_finite()).then(|| a / b)
}

/// Cumulative Prometheus buckets `(le, count)` of `after` minus those of `before` (same
/// bucket bounds): the histogram of what happened in between.
pub fn bucket_diff(before: &[(f64, u64)], after: &[(f64, u64)]) -> Vec<(f64, u64)> {
    after
        .iter()
        .map(|&(le, n)| {
            let old = before.iter().find(|(b, _)| *b == le).map_or(0, |(_, c)| *c);
            (le, n.saturating_sub(old))
        })
        .collect()
}

/// From cumulative buckets: the upper bound of the bucket holding the `q`-quantile.
pub fn bucket_quantile(buckets: &[(f64, u64)], q: f64) -> Option<f64> {
    let total = buckets.iter().map(|(_, c)| *c).max()?;
    if total == 0 {
        return None;
    }
    let need = (q * total as f64).ceil() as u64;
    buckets
        .iter()
        .find(|(_, c)| *c >= need.max(1))
        .map(|(le, _)| *le)
}

/// From cumulative buckets: the share of observations ≤ `bound` (an exact bucket bound).
pub fn bucket_share_le(buckets: &[(f64, u64)], bound: f64) -> Option<f64> {
    let total = buckets.iter().map(|(_, c)| *c).max()?;
    let at = buckets
        .iter()
        .find(|(le, _)| (*le - bound).abs() < 1e-12)?
        .1;
    (total > 0).then(|| at as f64 / total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets() {
        let before = [(0.001, 10), (0.01, 20), (f64::INFINITY, 20)];
        let after = [(0.001, 100), (0.01, 208), (f64::INFINITY, 210)];
        let d = bucket_diff(&before, &after);
        assert_eq!(d, vec![(0.001, 90), (0.01, 188), (f64::INFINITY, 190)]);
        assert_eq!(bucket_quantile(&d, 0.5), Some(0.01));
        assert_eq!(bucket_quantile(&d, 0.40), Some(0.001));
        assert_eq!(bucket_quantile(&d, 0.999), Some(f64::INFINITY));
        assert_eq!(bucket_share_le(&d, 0.01), Some(188.0 / 190.0));
        assert_eq!(bucket_share_le(&d, 0.5), None);
        assert_eq!(bucket_quantile(&[(1.0, 0)], 0.5), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.50), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&v, 1.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
        // Small sets: p99 of 10 samples is the maximum, p50 the 5th.
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 0.99), Some(10.0));
        assert_eq!(percentile(&ten, 0.50), Some(5.0));
    }

    #[test]
    fn summary_sorts_and_ignores_non_finite() {
        let s = Summary::of(&[3.0, 1.0, f64::NAN, 2.0, 4.0]);
        assert_eq!(s.count, 4);
        assert_eq!(s.p50, 2.0);
        assert_eq!(s.p99, 4.0);
        assert_eq!(s.max, 4.0);
        assert_eq!(s.mean, 2.5);
        assert_eq!(Summary::of(&[]), Summary::default());
        let d = Summary::of_durations_ms(&[Duration::from_millis(5), Duration::from_micros(1500)]);
        assert_eq!(d.max, 5.0);
        assert_eq!(d.p50, 1.5);
    }

    #[test]
    fn arrival_rate_counts_intervals_not_requests() {
        // 4 requests 0.5 s apart: 3 intervals over 1.5 s = 2/s.
        assert_eq!(arrival_rate(&[0.0, 0.5, 1.0, 1.5]), Some(2.0));
        assert_eq!(arrival_rate(&[1.5, 0.0, 1.0, 0.5]), Some(2.0));
        assert_eq!(arrival_rate(&[3.0]), None);
        assert_eq!(arrival_rate(&[2.0, 2.0]), None);
        assert_eq!(rate(10.0, Duration::from_secs(4)), 2.5);
        assert_eq!(rate(10.0, Duration::ZERO), 0.0);
        assert_eq!(ratio(6.0, 3.0), Some(2.0));
        assert_eq!(ratio(1.0, 0.0), None);
    }
}
