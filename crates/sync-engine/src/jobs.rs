//! Job kinds, keys and payloads, and the routing of webhook events to jobs (pure).
//!
//! Payloads are flat JSON objects whose fields only ever grow when two requests for
//! the same key coalesce (booleans OR, timestamps max), so a merged job does at least
//! what each request asked for.

use chrono::{DateTime, Utc};
use notion_api::{EventType, NotionId, WebhookEvent};
use serde::{Deserialize, Serialize};
use sync_store::{IncomingEvent, Lane, NewJob};

/// Fetch one page (and its body when asked) into the mirror; apply the task rule.
pub const KIND_PAGE_SYNC: &str = "page.sync";
/// Re-read a data source's schema and re-evaluate the schema guard.
pub const KIND_SCHEMA_CHECK: &str = "schema.check";

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
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("payload serializes")
    }

    pub fn from_json(v: &serde_json::Value) -> Self {
        serde_json::from_value(v.clone()).unwrap_or(Self {
            props: true,
            body: true,
            human: true,
            event_time: None,
        })
    }

    pub fn event_time(&self) -> Option<DateTime<Utc>> {
        self.event_time
            .as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    }
}

pub fn page_key(id: &NotionId) -> String {
    format!("page:{id}")
}

pub fn page_sync_job(id: &NotionId, payload: &PageSyncPayload, lane: Lane) -> NewJob {
    NewJob {
        key: page_key(id),
        kind: KIND_PAGE_SYNC.into(),
        payload: payload.to_json(),
        lane,
        run_at: None,
    }
}

pub fn schema_check_job(data_source: &NotionId, lane: Lane) -> NewJob {
    NewJob {
        key: format!("schema:{data_source}"),
        kind: KIND_SCHEMA_CHECK.into(),
        payload: serde_json::json!({ "data_source_id": data_source.to_string() }),
        lane,
        run_at: None,
    }
}

/// Routing context: who we are and which data sources we mirror.
#[derive(Debug, Clone, Default)]
pub struct RouteContext {
    /// Our integration's bot user (`users/me`), once known.
    pub bot_user: Option<NotionId>,
    /// Data sources we mirror; empty while not yet resolved (then nothing is filtered).
    pub data_sources: Vec<NotionId>,
}

impl RouteContext {
    fn is_ours(&self, data_source: &NotionId) -> bool {
        self.data_sources.is_empty() || self.data_sources.contains(data_source)
    }
}

/// Turns a verified webhook event into the event-log record and the jobs it causes.
/// No I/O: the webhook handler calls this and commits the result in one transaction.
pub fn route_event(event: &WebhookEvent, ctx: &RouteContext) -> IncomingEvent {
    let only_our_bot = ctx
        .bot_user
        .is_some_and(|bot| !event.authors.is_empty() && event.authors.iter().all(|a| a.id == bot));
    let page_payload = |props: bool, body: bool| PageSyncPayload {
        props,
        body,
        human: !only_our_bot,
        event_time: Some(
            event
                .timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ),
    };
    let entity = event.entity.id;
    // A page event whose parent is a data source we don't mirror costs nothing.
    let page_parent_elsewhere = event
        .data
        .parent
        .as_ref()
        .is_some_and(|p| p.kind == "data_source" && !ctx.is_ours(&p.id));
    let jobs = match (&event.event_type, event.entity.kind.as_str()) {
        (_, "page") if page_parent_elsewhere => Vec::new(),
        (EventType::PageCreated | EventType::PageUndeleted, "page") => {
            vec![page_sync_job(
                &entity,
                &page_payload(true, true),
                Lane::Interactive,
            )]
        }
        (EventType::PageContentUpdated, "page") => {
            vec![page_sync_job(
                &entity,
                &page_payload(false, true),
                Lane::Interactive,
            )]
        }
        (
            EventType::PagePropertiesUpdated
            | EventType::PageDeleted
            | EventType::PageMoved
            | EventType::PageLocked
            | EventType::PageUnlocked,
            "page",
        ) => vec![page_sync_job(
            &entity,
            &page_payload(true, false),
            Lane::Interactive,
        )],
        (EventType::DataSourceSchemaUpdated, "data_source") if ctx.is_ours(&entity) => {
            vec![schema_check_job(&entity, Lane::Interactive)]
        }
        (EventType::DataSourceContentUpdated, "data_source") if ctx.is_ours(&entity) => event
            .data
            .updated_blocks
            .iter()
            .filter(|b| matches!(b.kind.as_str(), "block" | "page"))
            .map(|b| page_sync_job(&b.id, &page_payload(true, false), Lane::Interactive))
            .collect(),
        _ => Vec::new(),
    };
    IncomingEvent {
        event_id: event.id.clone(),
        event_type: event.event_type.as_str().to_owned(),
        entity_type: event.entity.kind.clone(),
        entity_id: entity.to_string(),
        attempt_number: event.attempt_number,
        event_time: Some(event.timestamp),
        jobs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: serde_json::Value) -> WebhookEvent {
        match notion_api::WebhookBody::parse(json.to_string().as_bytes()).unwrap() {
            notion_api::WebhookBody::Event(e) => e,
            other => panic!("not an event: {other:?}"),
        }
    }

    const PAGE: &str = "153104cd-477e-809d-8dc4-ff2d96ae3090";
    const DS: &str = "248104cd-477e-80af-bc30-000bd28de8f9";
    const OTHER_DS: &str = "11111111-477e-80af-bc30-000bd28de8f9";
    const BOT: &str = "1edc05f6-2702-81b5-8408-00279347f034";
    const PERSON: &str = "c7c11cca-1d73-471d-9b6e-bdef51470190";

    fn page_event(kind: &str, author: (&str, &str), parent: serde_json::Value) -> WebhookEvent {
        event(serde_json::json!({
            "id": "1782edd6-a853-4d4a-b02c-9c8c16f28e53",
            "timestamp": "2024-12-05T23:57:05.379Z",
            "type": kind,
            "authors": [{"id": author.0, "type": author.1}],
            "attempt_number": 2,
            "entity": {"id": PAGE, "type": "page"},
            "data": {"parent": parent}
        }))
    }

    fn ctx() -> RouteContext {
        RouteContext {
            bot_user: Some(NotionId::parse(BOT).unwrap()),
            data_sources: vec![NotionId::parse(DS).unwrap()],
        }
    }

    fn payloads(e: &IncomingEvent) -> Vec<(String, PageSyncPayload, Lane)> {
        e.jobs
            .iter()
            .map(|j| {
                (
                    j.key.clone(),
                    PageSyncPayload::from_json(&j.payload),
                    j.lane,
                )
            })
            .collect()
    }

    #[test]
    fn page_events_route_to_page_sync_with_the_right_work() {
        let parent = serde_json::json!({"id": DS, "type": "data_source"});
        let check = |kind: &str, props: bool, body: bool| {
            let routed = route_event(
                &page_event(kind, (PERSON, "person"), parent.clone()),
                &ctx(),
            );
            let jobs = payloads(&routed);
            assert_eq!(jobs.len(), 1, "{kind}");
            let (key, p, lane) = &jobs[0];
            assert_eq!(key, &format!("page:{PAGE}"));
            assert_eq!((p.props, p.body, p.human), (props, body, true), "{kind}");
            assert_eq!(*lane, Lane::Interactive);
            assert_eq!(routed.attempt_number, 2);
            assert_eq!(routed.event_type, kind);
        };
        check("page.created", true, true);
        check("page.undeleted", true, true);
        check("page.content_updated", false, true);
        check("page.properties_updated", true, false);
        check("page.deleted", true, false);
        check("page.moved", true, false);
    }

    #[test]
    fn echo_of_our_own_write_is_marked_and_other_sources_cost_nothing() {
        let parent = serde_json::json!({"id": DS, "type": "data_source"});
        let routed = route_event(
            &page_event("page.properties_updated", (BOT, "bot"), parent),
            &ctx(),
        );
        assert!(!payloads(&routed)[0].1.human);

        let elsewhere = serde_json::json!({"id": OTHER_DS, "type": "data_source"});
        let routed = route_event(
            &page_event("page.properties_updated", (PERSON, "person"), elsewhere),
            &ctx(),
        );
        assert!(routed.jobs.is_empty());
        assert_eq!(routed.entity_id, PAGE);
    }

    #[test]
    fn unknown_and_comment_events_are_recorded_only() {
        let parent = serde_json::json!({"id": DS, "type": "data_source"});
        let routed = route_event(
            &page_event("page.transcribed", (PERSON, "person"), parent),
            &ctx(),
        );
        assert!(routed.jobs.is_empty());
        assert_eq!(routed.event_type, "page.transcribed");
    }

    #[test]
    fn data_source_events() {
        let content = event(serde_json::json!({
            "id": "25e44fe0-6785-45bb-adc2-a321526c12c5",
            "timestamp": "2024-12-13T17:48:13.700Z",
            "type": "data_source.content_updated",
            "authors": [{"id": PERSON, "type": "person"}],
            "attempt_number": 1,
            "entity": {"id": DS, "type": "data_source"},
            "data": {"updated_blocks": [
                {"id": "15b104cd-477e-80a4-bff3-cd05428a4d55", "type": "block"},
                {"id": "15b104cd-477e-80be-98e7-cdf0897fa5c9", "type": "block"}
            ]}
        }));
        let routed = route_event(&content, &ctx());
        let keys: Vec<_> = payloads(&routed).into_iter().map(|j| j.0).collect();
        assert_eq!(
            keys,
            vec![
                "page:15b104cd-477e-80a4-bff3-cd05428a4d55",
                "page:15b104cd-477e-80be-98e7-cdf0897fa5c9"
            ]
        );
        let mut other = content.clone();
        other.entity.id = NotionId::parse(OTHER_DS).unwrap();
        assert!(route_event(&other, &ctx()).jobs.is_empty());

        let mut schema = content;
        schema.event_type = EventType::DataSourceSchemaUpdated;
        let routed = route_event(&schema, &ctx());
        assert_eq!(routed.jobs.len(), 1);
        assert_eq!(routed.jobs[0].kind, KIND_SCHEMA_CHECK);
        assert_eq!(routed.jobs[0].key, format!("schema:{DS}"));
    }

    #[test]
    fn payload_defaults_are_conservative() {
        let p = PageSyncPayload::from_json(&serde_json::json!("garbage"));
        assert!(p.props && p.body && p.human);
    }
}
