//! The engine's jobs as types, and their one encoding as the queue's key, kind and
//! payload ([`Job::to_new_job`], [`Job::decode`]).
//!
//! Payloads are flat JSON objects whose fields only ever grow when two requests for
//! the same key coalesce (booleans OR, timestamps max), so a merged job does at least
//! what each request asked for.

use chrono::{DateTime, Utc};
use notion_api::NotionId;
use serde::{Deserialize, Serialize};
use sync_store::{ClaimedJob, Lane, NewJob};

const KIND_PAGE_SYNC: &str = "page.sync";
const KIND_SCHEMA_CHECK: &str = "schema.check";
const PAGE_PREFIX: &str = "page:";
const SCHEMA_PREFIX: &str = "schema:";
const PROPS_BATCH_PREFIX: &str = "props:";
/// Longest batch key stored (a key only groups: a cut one still groups the same edits).
const MAX_BATCH_LEN: usize = 240;

/// One unit of work in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Read one page (and its body when asked) into the mirror; apply the task rule.
    PageSync {
        page: NotionId,
        work: PageSyncPayload,
    },
    /// Re-read a data source's schema and re-evaluate the schema guard.
    SchemaCheck { data_source: NotionId },
}

/// A queue row that is not one of our jobs (an older or newer version wrote it, or
/// someone edited the database).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a job of this version: kind {kind:?}, key {key:?}")]
pub struct UnknownJob {
    pub kind: String,
    pub key: String,
}

impl Job {
    /// The queue's coalescing key: one queued and one running job per key.
    pub fn key(&self) -> String {
        match self {
            Job::PageSync { page, .. } => format!("{PAGE_PREFIX}{page}"),
            Job::SchemaCheck { data_source } => format!("{SCHEMA_PREFIX}{data_source}"),
        }
    }

    /// The kind stored with the job (also a metrics label).
    pub fn kind(&self) -> &'static str {
        match self {
            Job::PageSync { .. } => KIND_PAGE_SYNC,
            Job::SchemaCheck { .. } => KIND_SCHEMA_CHECK,
        }
    }

    /// The queue request for this job on `lane`, due now.
    pub fn to_new_job(&self, lane: Lane) -> NewJob {
        let payload = match self {
            Job::PageSync { work, .. } => {
                serde_json::to_value(work).expect("the payload serializes")
            }
            Job::SchemaCheck { .. } => serde_json::json!({}),
        };
        NewJob::new(self.key(), self.kind(), payload, lane)
    }

    /// The job a claimed queue row stands for. The page or data source comes from the
    /// key; a payload that does not parse asks for everything (conservative).
    pub fn decode(job: &ClaimedJob) -> Result<Job, UnknownJob> {
        let unknown = || UnknownJob {
            kind: job.kind.clone(),
            key: job.key.clone(),
        };
        let id = |prefix: &str| {
            job.key
                .strip_prefix(prefix)
                .and_then(|s| NotionId::parse(s).ok())
                .ok_or_else(unknown)
        };
        match job.kind.as_str() {
            KIND_PAGE_SYNC => Ok(Job::PageSync {
                page: id(PAGE_PREFIX)?,
                work: serde_json::from_value(job.payload.clone()).unwrap_or(PageSyncPayload {
                    props: true,
                    body: true,
                    human: true,
                    event_time: None,
                }),
            }),
            KIND_SCHEMA_CHECK => Ok(Job::SchemaCheck {
                data_source: id(SCHEMA_PREFIX)?,
            }),
            _ => Err(unknown()),
        }
    }
}

/// Property reads one data-source query can answer together: the reads caused by one
/// kind of edit (same people, same properties) in one data source, which is what a bulk
/// edit in Notion produces (select 200 rows, set Status). Its queue form is the job's
/// batch key ([`PropsBatch::key`], [`PropsBatch::parse`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropsBatch {
    pub data_source: NotionId,
    /// The edit's signature: sorted author ids and sorted updated property ids.
    pub signature: String,
}

impl PropsBatch {
    /// The batch of a property edit made by `authors` to `properties` in `data_source`.
    pub fn of_edit<'a>(
        data_source: NotionId,
        authors: impl IntoIterator<Item = &'a str>,
        properties: impl IntoIterator<Item = &'a str>,
    ) -> PropsBatch {
        let sorted = |it: &mut dyn Iterator<Item = &'a str>| {
            let mut v: Vec<&str> = it.collect();
            v.sort_unstable();
            v.dedup();
            v.join(",")
        };
        PropsBatch {
            data_source,
            signature: format!(
                "{}:{}",
                sorted(&mut authors.into_iter()),
                sorted(&mut properties.into_iter())
            ),
        }
    }

    /// The queue's batch key.
    pub fn key(&self) -> String {
        let mut key = format!(
            "{PROPS_BATCH_PREFIX}{}:{}",
            self.data_source, self.signature
        );
        if key.len() > MAX_BATCH_LEN {
            let mut end = MAX_BATCH_LEN;
            while !key.is_char_boundary(end) {
                end -= 1;
            }
            key.truncate(end);
        }
        key
    }

    /// The data source a batch key reads from; `None` for keys this version did not write.
    pub fn parse(key: &str) -> Option<NotionId> {
        let rest = key.strip_prefix(PROPS_BATCH_PREFIX)?;
        let (ds, _) = rest.split_once(':')?;
        NotionId::parse(ds).ok()
    }
}

/// What a `page.sync` job must do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PageSyncPayload {
    /// Retrieve the page (properties, trash state). Reconciler body jobs skip it:
    /// the query already delivered the properties.
    pub props: bool,
    /// The body may have changed: fetch it.
    pub body: bool,
    /// Someone other than our own integration caused this (or we don't know who).
    /// An echo of our own write (`human == false`) costs nothing when the mirror
    /// already holds a state observed at or after `event_time`.
    pub human: bool,
    /// Latest event time behind this job (ISO-8601, so `max` merges are string maxes).
    pub event_time: Option<String>,
}

impl PageSyncPayload {
    /// A body re-check the reconciler queues (no GET: its query read the properties).
    pub fn body_check() -> Self {
        Self {
            props: false,
            body: true,
            human: true,
            event_time: None,
        }
    }

    /// A property re-read the reconciler queues when a query row and the mirror's newer
    /// read disagree (a GET decides).
    pub fn props_check() -> Self {
        Self {
            props: true,
            body: false,
            human: true,
            event_time: None,
        }
    }

    pub fn event_time(&self) -> Option<DateTime<Utc>> {
        self.event_time
            .as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(kind: &str, key: &str, payload: serde_json::Value) -> ClaimedJob {
        let t = DateTime::from_timestamp(0, 0).unwrap();
        ClaimedJob {
            id: 1,
            key: key.into(),
            kind: kind.into(),
            payload,
            lane: Lane::Interactive,
            attempts: 1,
            lease_token: "t".into(),
            lease_until: t,
            first_enqueued_at: t,
            enqueued_at: t,
            interactive_since: Some(t),
        }
    }

    fn round_trip(job: Job) {
        let new = job.to_new_job(Lane::Bulk);
        let back = Job::decode(&claimed(&new.kind, &new.key, new.payload)).unwrap();
        assert_eq!(back, job);
    }

    #[test]
    fn jobs_encode_and_decode_in_one_place() {
        let page = NotionId::parse("153104cd-477e-809d-8dc4-ff2d96ae3090").unwrap();
        round_trip(Job::PageSync {
            page,
            work: PageSyncPayload {
                props: true,
                body: false,
                human: false,
                event_time: Some("2026-11-23T10:00:00.000Z".into()),
            },
        });
        round_trip(Job::SchemaCheck { data_source: page });
        let job = Job::PageSync {
            page,
            work: PageSyncPayload::body_check(),
        };
        assert_eq!(job.key(), "page:153104cd-477e-809d-8dc4-ff2d96ae3090");
        assert_eq!(job.kind(), "page.sync");
    }

    #[test]
    fn an_edit_signature_is_its_batch_whatever_the_order() {
        let ds = NotionId::parse("248104cd-477e-80af-bc30-000bd28de8f9").unwrap();
        let a = PropsBatch::of_edit(ds, ["u2", "u1"], ["title", "%3AStatus"]);
        let b = PropsBatch::of_edit(ds, ["u1", "u2", "u1"], ["%3AStatus", "title"]);
        assert_eq!(a.key(), b.key());
        assert_ne!(a.key(), PropsBatch::of_edit(ds, ["u1"], ["title"]).key());
        assert_eq!(PropsBatch::parse(&a.key()), Some(ds));
        assert_eq!(PropsBatch::parse("page:x"), None);
        let long = PropsBatch::of_edit(ds, ["u"], std::iter::repeat_n("property", 100));
        assert!(long.key().len() <= MAX_BATCH_LEN);
        assert_eq!(PropsBatch::parse(&long.key()), Some(ds));
    }

    #[test]
    fn a_garbled_payload_asks_for_everything_and_strangers_are_refused() {
        let key = "page:153104cd-477e-809d-8dc4-ff2d96ae3090";
        let Job::PageSync { work, .. } =
            Job::decode(&claimed("page.sync", key, serde_json::json!("garbage"))).unwrap()
        else {
            panic!("a page job")
        };
        assert!(work.props && work.body && work.human);
        // Schema jobs written by earlier versions carried their data source in the payload.
        let old = claimed(
            "schema.check",
            "schema:248104cd-477e-80af-bc30-000bd28de8f9",
            serde_json::json!({"data_source_id": "248104cd-477e-80af-bc30-000bd28de8f9"}),
        );
        assert!(matches!(Job::decode(&old), Ok(Job::SchemaCheck { .. })));
        assert!(Job::decode(&claimed("mystery", key, serde_json::json!({}))).is_err());
        assert!(Job::decode(&claimed("page.sync", "page:xyz", serde_json::json!({}))).is_err());
    }
}
