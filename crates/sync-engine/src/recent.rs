//! What the last reads of each page covered, so that a `page.sync` job whose every
//! request is already answered costs no request, and each part of a page is read at
//! most once per [`SETTLE`].
//!
//! A read of Notion sent at `S` holds every change made before `S`. So a job is
//! covered, part by part (properties, body), by a completed read when either
//! * every request behind it arrived before the read was sent (`enqueued_at ≤ S`):
//!   deliveries that came while an earlier job waited for the pacer; or
//! * its newest event is no newer than the newest event the reading job served
//!   (`event_time ≤ E`, both Notion's clock): an event for a change that read
//!   already saw arrived late — typically the aggregated
//!   `data_source.content_updated` that follows every `page.properties_updated`.
//!
//! A job also waits until [`SETTLE`] has passed since the last read of a part it asks
//! for, so that a burst of requests for one page is answered by two reads.
//!
//! The memory is in-process and bounded ([`MAX_PAGES`], [`KEEP`]); after a restart
//! it is empty, which only costs a read. One running job per key (the queue's rule)
//! means a page's entry is only ever written by one job at a time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use notion_api::NotionId;
use tokio::time::Instant;

use crate::job::PageSyncPayload;

/// The shortest time between two reads of one page by `page.sync` jobs: requests that
/// arrive in between wait and are answered by one read (Notion itself aggregates
/// content events over about a second).
pub const SETTLE: Duration = Duration::from_millis(1000);
/// Entries older than this are forgotten.
const KEEP: Duration = Duration::from_secs(600);
/// At most this many pages are remembered (the oldest are forgotten first).
const MAX_PAGES: usize = 10_000;

/// One completed read of a page part.
#[derive(Debug, Clone, Copy)]
struct Read {
    /// When it was sent (the store's clock, like `enqueued_at`).
    sent: DateTime<Utc>,
    /// The newest event time the reading job served.
    events_until: Option<DateTime<Utc>>,
    /// When it was sent, on tokio's clock (settling).
    at: Instant,
}

impl Read {
    fn covers(&self, enqueued_at: DateTime<Utc>, event_time: Option<DateTime<Utc>>) -> bool {
        enqueued_at <= self.sent
            || matches!((event_time, self.events_until), (Some(t), Some(u)) if t <= u)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    props: Option<Read>,
    body: Option<Read>,
}

impl Entry {
    /// The latest read of either part, on tokio's clock (expiry).
    fn last(&self) -> Option<Instant> {
        self.props.map(|r| r.at).max(self.body.map(|r| r.at))
    }
}

/// Which part of a page a read fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Props,
    Body,
}

/// The engine's memory of recent page reads.
#[derive(Debug, Default)]
pub struct RecentReads {
    pages: Mutex<HashMap<NotionId, Entry>>,
}

impl RecentReads {
    /// Whether completed reads already answer every part `payload` asks for.
    pub fn covers(
        &self,
        id: &NotionId,
        payload: &PageSyncPayload,
        enqueued_at: DateTime<Utc>,
    ) -> bool {
        if !payload.props && !payload.body {
            return false;
        }
        let pages = self.pages.lock().expect("recent reads lock");
        let Some(entry) = pages.get(id) else {
            return false;
        };
        let event_time = payload.event_time();
        let part = |read: Option<Read>| read.is_some_and(|r| r.covers(enqueued_at, event_time));
        (!payload.props || part(entry.props)) && (!payload.body || part(entry.body))
    }

    /// When the reads `payload` asks for may be sent (`None`: now): [`SETTLE`] after the
    /// last read of each part it asks for. A read of the other part does not delay it.
    pub fn settle_until(&self, id: &NotionId, payload: &PageSyncPayload) -> Option<Instant> {
        let pages = self.pages.lock().expect("recent reads lock");
        let entry = pages.get(id)?;
        let parts = [(payload.props, entry.props), (payload.body, entry.body)];
        let next = parts
            .iter()
            .filter_map(|(asked, read)| read.filter(|_| *asked))
            .map(|r| r.at + SETTLE)
            .max()?;
        (next > Instant::now()).then_some(next)
    }

    /// Records a read of `part`, sent at `sent` (tokio's clock; `now` is the store's
    /// clock at this moment), for a job whose newest event is `event_time`.
    pub fn record(
        &self,
        id: NotionId,
        part: Part,
        sent: Instant,
        now: DateTime<Utc>,
        event_time: Option<DateTime<Utc>>,
    ) {
        let age = chrono::TimeDelta::from_std(sent.elapsed()).unwrap_or_default();
        let read = Read {
            sent: now - age,
            events_until: event_time,
            at: sent,
        };
        let mut pages = self.pages.lock().expect("recent reads lock");
        if pages.len() >= MAX_PAGES && !pages.contains_key(&id) {
            let cutoff = Instant::now().checked_sub(KEEP);
            pages.retain(|_, e| cutoff.is_none_or(|c| e.last() >= Some(c)));
            if pages.len() >= MAX_PAGES
                && let Some(oldest) = pages.iter().min_by_key(|(_, e)| e.last()).map(|(k, _)| *k)
            {
                pages.remove(&oldest);
            }
        }
        let entry = pages.entry(id).or_default();
        let slot = match part {
            Part::Props => &mut entry.props,
            Part::Body => &mut entry.body,
        };
        // Keep the later read; a late-finishing older one must not replace it, but what it
        // proves still counts (each test of `Read::covers` is a maximum, so the two
        // maxima prove exactly what the two reads prove).
        match slot {
            Some(old) if old.sent > read.sent => {
                old.events_until = old.events_until.max(read.events_until);
            }
            _ => {
                *slot = Some(Read {
                    events_until: read.events_until.max(slot.and_then(|old| old.events_until)),
                    ..read
                });
            }
        }
    }

    /// Forgets a page (it was found deleted or out of scope).
    pub fn forget(&self, id: &NotionId) {
        self.pages.lock().expect("recent reads lock").remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> NotionId {
        NotionId::parse(&format!("{n:02x}3104cd-477e-809d-8dc4-ff2d96ae3090")).unwrap()
    }

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_780_000_000_000 + ms).unwrap()
    }

    fn payload(props: bool, body: bool, event_ms: Option<i64>) -> PageSyncPayload {
        PageSyncPayload {
            props,
            body,
            human: true,
            event_time: event_ms
                .map(|ms| at(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn requests_that_arrived_before_the_read_was_sent_are_covered() {
        let r = RecentReads::default();
        let sent = Instant::now();
        tokio::time::advance(Duration::from_millis(300)).await;
        // the read left at store time 1000 (recorded 300 ms later, at 1300)
        r.record(id(1), Part::Props, sent, at(1300), Some(at(500)));
        assert!(r.covers(&id(1), &payload(true, false, Some(900)), at(1000)));
        assert!(r.covers(&id(1), &payload(true, false, None), at(999)));
        // a request after the send is not, unless its event is no newer than the read's
        assert!(!r.covers(&id(1), &payload(true, false, Some(600)), at(1001)));
        assert!(r.covers(&id(1), &payload(true, false, Some(500)), at(2000)));
        assert!(r.covers(&id(1), &payload(true, false, Some(400)), at(2000)));
        // another part or another page is not covered
        assert!(!r.covers(&id(1), &payload(true, true, Some(400)), at(900)));
        assert!(!r.covers(&id(1), &payload(false, true, None), at(900)));
        assert!(!r.covers(&id(2), &payload(true, false, None), at(900)));
        // both parts read: covered
        r.record(id(1), Part::Body, sent, at(1300), None);
        assert!(r.covers(&id(1), &payload(true, true, None), at(900)));
        r.forget(&id(1));
        assert!(!r.covers(&id(1), &payload(true, false, None), at(900)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_is_read_at_most_once_per_settle_period() {
        let r = RecentReads::default();
        let props = payload(true, false, None);
        let body = payload(false, true, None);
        assert_eq!(r.settle_until(&id(1), &props), None);
        let sent = Instant::now();
        r.record(id(1), Part::Props, sent, at(0), None);
        assert_eq!(r.settle_until(&id(1), &props), Some(sent + SETTLE));
        assert_eq!(
            r.settle_until(&id(1), &body),
            None,
            "a body read is other work"
        );
        tokio::time::advance(SETTLE).await;
        assert_eq!(r.settle_until(&id(1), &props), None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_older_read_finishing_late_does_not_replace_a_newer_one() {
        let r = RecentReads::default();
        let old = Instant::now();
        tokio::time::advance(Duration::from_millis(100)).await;
        let new = Instant::now();
        r.record(id(1), Part::Props, new, at(100), Some(at(50)));
        r.record(id(1), Part::Props, old, at(100), Some(at(10)));
        assert!(r.covers(&id(1), &payload(true, false, None), at(100)));
        assert!(r.covers(&id(1), &payload(true, false, Some(50)), at(5000)));
    }

    #[tokio::test(start_paused = true)]
    async fn memory_is_bounded() {
        let r = RecentReads::default();
        for n in 0..MAX_PAGES + 10 {
            let page = NotionId::parse(&format!("{n:08x}-477e-809d-8dc4-ff2d96ae3090")).unwrap();
            r.record(page, Part::Props, Instant::now(), at(0), None);
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert!(r.pages.lock().unwrap().len() <= MAX_PAGES);
    }
}
