//! Routing verified webhook events to the jobs they cause (pure: no I/O). The webhook
//! handler commits the result with `Store::ingest` in one transaction.

use notion_api::{EventType, NotionId, WebhookEvent};
use sync_store::{IncomingEvent, Lane};

use crate::job::{Job, PageSyncPayload, PropsBatch};

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
    let page_sync = |page: &NotionId, props: bool, body: bool| {
        Job::PageSync {
            page: *page,
            work: PageSyncPayload {
                props,
                body,
                human: !only_our_bot,
                event_time: Some(
                    event
                        .timestamp
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                ),
            },
        }
        .to_new_job(Lane::Interactive)
    };
    let entity = event.entity.id;
    // A page event whose parent is a data source we don't mirror costs nothing.
    let parent_ds = event.data.parent.as_ref().and_then(|p| p.data_source());
    let page_parent_elsewhere = parent_ds.is_some_and(|ds| !ctx.is_ours(&ds));
    let jobs = match (&event.event_type, event.entity.kind.as_str()) {
        (_, "page") if page_parent_elsewhere => Vec::new(),
        (EventType::PageCreated | EventType::PageUndeleted, "page") => {
            vec![page_sync(&entity, true, true)]
        }
        (EventType::PageContentUpdated, "page") => vec![page_sync(&entity, false, true)],
        (EventType::PagePropertiesUpdated, "page") => {
            let job = page_sync(&entity, true, false);
            // A person's property edit in a data source we mirror may be one of a bulk
            // edit's: one query can answer the lot (bulk_read.rs). Our own echoes cost
            // nothing anyway.
            // With one data source mirrored, a parent that does not say is taken as it
            // (a page elsewhere is simply not in the query's rows: its own GET decides).
            let single = match ctx.data_sources.as_slice() {
                [only] => Some(*only),
                _ => None,
            };
            let batch = parent_ds.or(single).filter(|_| !only_our_bot).map(|ds| {
                let authors: Vec<String> = event.authors.iter().map(|a| a.id.to_string()).collect();
                PropsBatch::of_edit(
                    ds,
                    authors.iter().map(String::as_str),
                    event.data.updated_properties.iter().map(String::as_str),
                )
                .key()
            });
            vec![job.in_batch(batch)]
        }
        (
            EventType::PageDeleted
            | EventType::PageMoved
            | EventType::PageLocked
            | EventType::PageUnlocked,
            "page",
        ) => vec![page_sync(&entity, true, false)],
        (EventType::DataSourceSchemaUpdated, "data_source") if ctx.is_ours(&entity) => {
            vec![
                Job::SchemaCheck {
                    data_source: entity,
                }
                .to_new_job(Lane::Interactive),
            ]
        }
        (EventType::DataSourceContentUpdated, "data_source") if ctx.is_ours(&entity) => event
            .data
            .updated_blocks
            .iter()
            .filter(|b| matches!(b.kind.as_str(), "block" | "page"))
            .map(|b| page_sync(&b.id, true, false))
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
                let work: PageSyncPayload = serde_json::from_value(j.payload.clone()).unwrap();
                (j.key.clone(), work, j.lane)
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
    fn a_persons_property_edit_joins_the_batch_of_its_data_source_authors_and_properties() {
        let ds = NotionId::parse(DS).unwrap();
        let edit = |author: (&str, &str), parent: serde_json::Value, props: &[&str]| {
            let mut e = page_event("page.properties_updated", author, parent);
            e.data.updated_properties = props.iter().map(|p| (*p).to_owned()).collect();
            route_event(&e, &ctx()).jobs[0].batch.clone()
        };
        // 2025-09-03 names the data source inside a database parent.
        let in_db = serde_json::json!({"id": OTHER_DS, "type": "database", "data_source_id": DS});
        let status = edit((PERSON, "person"), in_db.clone(), &["%3AStatus"]);
        let expected = PropsBatch::of_edit(ds, [PERSON], ["%3AStatus"]).key();
        assert_eq!(status.as_deref(), Some(expected.as_str()));
        let direct = serde_json::json!({"id": DS, "type": "data_source"});
        assert_eq!(edit((PERSON, "person"), direct, &["%3AStatus"]), status);
        // With one data source mirrored, a parent that does not say is taken as it.
        let space = serde_json::json!({"id": OTHER_DS, "type": "space"});
        assert_eq!(edit((PERSON, "person"), space, &["%3AStatus"]), status);
        assert_ne!(edit((PERSON, "person"), in_db.clone(), &["title"]), status);
        // Our own writes' echoes cost nothing already: never a batch.
        assert_eq!(edit((BOT, "bot"), in_db.clone(), &["%3AStatus"]), None);
        // A page of a data source we don't mirror, named by its database parent: nothing.
        let elsewhere =
            serde_json::json!({"id": DS, "type": "database", "data_source_id": OTHER_DS});
        let mut e = page_event("page.properties_updated", (PERSON, "person"), elsewhere);
        e.data.updated_properties = vec!["title".into()];
        assert!(route_event(&e, &ctx()).jobs.is_empty());
        // Content and other page events are read on their own.
        let created = route_event(
            &page_event("page.created", (PERSON, "person"), in_db),
            &ctx(),
        );
        assert_eq!(created.jobs[0].batch, None);
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
        assert_eq!(routed.jobs[0].kind, "schema.check");
        assert_eq!(routed.jobs[0].key, format!("schema:{DS}"));
    }
}
