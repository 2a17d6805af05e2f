//! Rate limiting (token buckets on tokio time), forced errors and random fault injection.

use std::collections::VecDeque;
use std::time::Duration;

use axum::http::StatusCode;
use rand::prelude::*;
use serde_json::json;
use tokio::time::Instant;

use crate::config::{Faults, RateLimit};
use crate::error::ApiError;

/// A token bucket refilled continuously at `per_second`, holding at most `burst` tokens.
#[derive(Debug)]
pub(crate) struct Bucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst.max(1)),
            last: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        let cap = f64::from(self.limit.burst.max(1));
        self.tokens = (self.tokens + elapsed * self.limit.per_second).min(cap);
    }

    /// Gives back a token taken for a request that another limit rejected.
    pub(crate) fn refund(&mut self) {
        let cap = f64::from(self.limit.burst.max(1));
        self.tokens = (self.tokens + 1.0).min(cap);
    }

    /// Takes a token, or says how long until one is available and until the bucket is full.
    pub(crate) fn try_take(&mut self, now: Instant) -> Result<(), (Duration, Duration)> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let rate = self.limit.per_second.max(f64::MIN_POSITIVE);
        let cap = f64::from(self.limit.burst.max(1));
        let next = Duration::from_secs_f64(((1.0 - self.tokens) / rate).min(1e9));
        let full = Duration::from_secs_f64(((cap - self.tokens) / rate).min(1e9));
        Err((next, full))
    }
}

/// Whole seconds, at least 1: Notion's integer `Retry-After`.
pub(crate) fn retry_after_secs(d: Duration) -> u32 {
    let secs = d.as_secs_f64().ceil();
    if secs >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        // `secs` is a non-negative whole number below u32::MAX here.
        (secs as u32).max(1)
    }
}

pub(crate) fn rate_limited(retry_after: u32, reason: &str) -> ApiError {
    let mut e = ApiError::for_status(429, Some(retry_after));
    e.additional_data = Some(json!({"rate_limit_reason": reason}));
    e
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Forced {
    /// Only this integration's requests (`None`: every integration's).
    pub integration: Option<usize>,
    pub status: u16,
    pub remaining: u32,
    pub retry_after: Option<u32>,
}

/// An error forced on the next requests of one route (`PATCH /v1/pages/{id}`, say) with
/// its own code and message.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub method: String,
    pub route: String,
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub remaining: u32,
}

/// What fault injection decided for one request.
#[derive(Debug)]
pub(crate) enum FaultDecision {
    Proceed {
        hang: Option<Duration>,
        latency: Duration,
    },
    Error(ApiError),
    Drop,
}

/// Mutable limits and faults, behind one mutex in the shared state.
#[derive(Debug)]
pub(crate) struct Limits {
    /// One bucket per integration (index 0: the main token).
    pub integrations: Vec<Option<Bucket>>,
    pub workspace: Option<Bucket>,
    pub faults: Faults,
    pub forced: VecDeque<Forced>,
    pub refusals: Vec<Refusal>,
    pub rng: StdRng,
}

impl Limits {
    pub(crate) fn new(
        integrations: usize,
        integration: Option<RateLimit>,
        workspace: Option<RateLimit>,
        seed: u64,
    ) -> Self {
        Self {
            integrations: (0..integrations.max(1))
                .map(|_| integration.map(Bucket::new))
                .collect(),
            workspace: workspace.map(Bucket::new),
            faults: Faults::default(),
            forced: VecDeque::new(),
            refusals: Vec::new(),
            rng: StdRng::seed_from_u64(seed ^ 0xfa17_fa17_fa17_fa17),
        }
    }

    /// The refusal waiting for `method route`, if any (counted down).
    pub(crate) fn take_refusal(&mut self, method: &str, route: &str) -> Option<ApiError> {
        let i = self
            .refusals
            .iter()
            .position(|r| r.method == method && r.route == route)?;
        let r = &mut self.refusals[i];
        let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
        let err = ApiError::new(status, r.code, r.message.clone());
        r.remaining = r.remaining.saturating_sub(1);
        if r.remaining == 0 {
            self.refusals.remove(i);
        }
        Some(err)
    }

    /// The first forced error that applies to `integration`'s request (counted down).
    pub(crate) fn take_forced(&mut self, integration: usize) -> Option<ApiError> {
        let i = self
            .forced
            .iter()
            .position(|f| f.integration.is_none_or(|only| only == integration))?;
        let front = &mut self.forced[i];
        let mut err = ApiError::for_status(front.status, front.retry_after);
        if front.status == 429 {
            err.additional_data = Some(json!({"rate_limit_reason": "integration_rate_limit"}));
        }
        front.remaining = front.remaining.saturating_sub(1);
        if front.remaining == 0 {
            self.forced.remove(i);
        }
        Some(err)
    }

    /// Applies `integration`'s bucket, then the workspace bucket.
    pub(crate) fn admit(&mut self, integration: usize, now: Instant) -> Result<(), ApiError> {
        if let Some(Some(b)) = self.integrations.get_mut(integration)
            && let Err((next, _)) = b.try_take(now)
        {
            return Err(rate_limited(
                retry_after_secs(next),
                "integration_rate_limit",
            ));
        }
        if let Some(b) = &mut self.workspace
            && let Err((_, full)) = b.try_take(now)
        {
            // A rejected request costs nothing.
            if let Some(Some(i)) = self.integrations.get_mut(integration) {
                i.refund();
            }
            // The workspace limit is shared by every integration: back off until it refills.
            return Err(rate_limited(retry_after_secs(full), "workspace_rate_limit"));
        }
        Ok(())
    }

    pub(crate) fn roll_faults(&mut self) -> FaultDecision {
        let f = &self.faults;
        if f.drop_rate > 0.0 && self.rng.random_bool(f.drop_rate.clamp(0.0, 1.0)) {
            return FaultDecision::Drop;
        }
        if f.error_rate > 0.0
            && !f.error_statuses.is_empty()
            && self.rng.random_bool(f.error_rate.clamp(0.0, 1.0))
        {
            let status = f.error_statuses[self.rng.random_range(0..f.error_statuses.len())];
            return FaultDecision::Error(ApiError::for_status(status, None));
        }
        let hang = (f.hang_rate > 0.0 && self.rng.random_bool(f.hang_rate.clamp(0.0, 1.0)))
            .then_some(f.hang_for);
        FaultDecision::Proceed {
            hang,
            latency: f.latency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_burst_then_refills_at_rate() {
        let mut b = Bucket::new(RateLimit {
            per_second: 2.0,
            burst: 3,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(b.try_take(t0).is_ok());
        }
        let (next, full) = b.try_take(t0).unwrap_err();
        assert_eq!(next, Duration::from_millis(500));
        assert_eq!(full, Duration::from_millis(1500));
        assert_eq!(retry_after_secs(next), 1);
        assert_eq!(retry_after_secs(full), 2);
        assert!(b.try_take(t0 + Duration::from_millis(500)).is_ok());
        assert!(b.try_take(t0 + Duration::from_millis(500)).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_workspace_rejection_does_not_spend_the_integration_budget() {
        let mut l = Limits::new(
            2,
            Some(RateLimit {
                per_second: 1.0,
                burst: 2,
            }),
            Some(RateLimit {
                per_second: 0.1,
                burst: 1,
            }),
            1,
        );
        let t0 = Instant::now();
        assert!(l.admit(0, t0).is_ok());
        // The workspace bucket is shared: integration 1 meets it empty too.
        let e = l.admit(1, t0).unwrap_err();
        assert_eq!(
            e.additional_data.unwrap()["rate_limit_reason"],
            "workspace_rate_limit"
        );
        assert_eq!(e.retry_after, Some(10));
        l.workspace = None;
        assert!(
            l.admit(0, t0).is_ok(),
            "the integration bucket still holds its second token"
        );
        assert!(l.admit(0, t0).is_err());
        assert!(
            l.admit(1, t0).is_ok(),
            "integration 1 has a budget of its own"
        );
    }

    #[test]
    fn forced_errors_are_consumed_in_order() {
        let mut l = Limits::new(2, None, None, 1);
        l.forced.push_back(Forced {
            integration: Some(1),
            status: 429,
            remaining: 1,
            retry_after: Some(3),
        });
        l.forced.push_back(Forced {
            integration: None,
            status: 529,
            remaining: 2,
            retry_after: Some(7),
        });
        let e = l.take_forced(0).unwrap();
        assert_eq!(
            (e.status.as_u16(), e.code, e.retry_after),
            (529, "service_overload", Some(7))
        );
        let e = l.take_forced(1).unwrap();
        assert_eq!((e.status.as_u16(), e.retry_after), (429, Some(3)));
        assert!(l.take_forced(1).is_some());
        assert!(l.take_forced(0).is_none());
    }
}
