//! The simulated clock (Notion's notion of "now") and the time formats Notion uses.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use tokio::time::Instant;

/// Sim time = `base + (tokio now - base_instant) + offset`. It flows with tokio time (so a
/// paused tokio clock pauses it) and can be set or advanced by tests.
#[derive(Debug)]
pub(crate) struct SimClock {
    base: DateTime<Utc>,
    base_instant: Instant,
    offset: Mutex<TimeDelta>,
}

impl SimClock {
    pub(crate) fn new(start: Option<DateTime<Utc>>) -> Self {
        Self {
            base: start.unwrap_or_else(Utc::now),
            base_instant: Instant::now(),
            offset: Mutex::new(TimeDelta::zero()),
        }
    }

    fn flowing(&self) -> DateTime<Utc> {
        let elapsed = TimeDelta::from_std(self.base_instant.elapsed()).unwrap_or(TimeDelta::MAX);
        self.base + elapsed
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.flowing() + *crate::lock(&self.offset)
    }

    pub(crate) fn set_now(&self, t: DateTime<Utc>) {
        let mut offset = crate::lock(&self.offset);
        *offset = t - self.flowing();
    }

    pub(crate) fn advance(&self, d: Duration) {
        let mut offset = crate::lock(&self.offset);
        *offset += TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
    }
}

/// Pages, blocks and data sources carry times truncated to the minute (observed on the
/// recorded 2025-09-03 traffic).
pub(crate) fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t)
}

/// `2026-07-04T09:08:00.000Z`: pages, blocks, data sources, webhook timestamps.
pub(crate) fn iso_z(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `2026-07-04T09:09:12.949+00:00`: databases keep milliseconds and this offset form.
pub(crate) fn iso_offset(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string()
}

/// RFC 7231 IMF-fixdate for the `Date` header, second resolution.
pub(crate) fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats_match_notion() {
        let t = Utc.with_ymd_and_hms(2026, 7, 4, 9, 8, 14).unwrap() + TimeDelta::milliseconds(736);
        assert_eq!(iso_z(floor_minute(t)), "2026-07-04T09:08:00.000Z");
        assert_eq!(iso_offset(t), "2026-07-04T09:08:14.736+00:00");
        assert_eq!(http_date(t), "Sat, 04 Jul 2026 09:08:14 GMT");
    }

    #[tokio::test(start_paused = true)]
    async fn clock_can_be_set_and_advanced() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let clock = SimClock::new(Some(start));
        assert_eq!(clock.now(), start);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(clock.now(), start + TimeDelta::seconds(5));
        clock.advance(Duration::from_secs(3600));
        assert_eq!(clock.now(), start + TimeDelta::seconds(3605));
        let target = Utc.with_ymd_and_hms(2030, 5, 5, 5, 5, 5).unwrap();
        clock.set_now(target);
        assert_eq!(clock.now(), target);
    }
}
