//! Webhooks: handshake, signatures (independent HMAC + known-answer vector), event types and
//! shapes, aggregation, retries, drops, duplicates, silence.

use std::collections::BTreeSet;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use notion_sim::{BodyEdit, NewTask, SimHandle, WebhookConfig};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{Api, Receiver, fast_config, fixtures_dir, read_fixture, sim};

fn independent_signature(token: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn subscribed() -> (SimHandle, Receiver, String) {
    let sim = sim(fast_config()).await;
    let rx = Receiver::start().await;
    let token = sim.subscribe(&rx.url).await.unwrap();
    (sim, rx, token)
}

fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == t).collect()
}

#[tokio::test]
async fn handshake_is_unsigned_minified_and_once() {
    let (_sim, rx, token) = subscribed().await;
    assert!(token.starts_with("secret_") && token.len() > 20);
    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].body.as_ref(),
        format!("{{\"verification_token\":\"{token}\"}}").as_bytes()
    );
    assert!(!got[0].headers.contains_key("x-notion-signature"));
    assert_eq!(got[0].headers["content-type"], "application/json");
}

/// As in Notion, a refused handshake still subscribes (verification is the token the
/// operator pastes); an unreachable URL subscribes nothing.
#[tokio::test]
async fn a_refused_handshake_still_subscribes_an_unreachable_url_does_not() {
    let sim = sim(fast_config()).await;
    let rx = Receiver::start().await;
    rx.fail_next(1);
    let token = sim.subscribe(&rx.url).await.unwrap();
    sim.create_task(NewTask::default());
    sim.webhooks_idle().await;
    assert_eq!(
        rx.received().len(),
        3,
        "the refused handshake, then the events"
    );
    assert!(sim.webhook_stats().events_emitted > 0);
    assert!(token.starts_with("secret_"));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    assert!(sim.subscribe(&url).await.is_err());
    let chosen = sim
        .subscribe_with_token(&rx.url, "secret_chosen_by_test")
        .await
        .unwrap();
    assert_eq!(chosen, "secret_chosen_by_test");
}

#[tokio::test]
async fn signature_matches_the_documented_vector() {
    let Some(dir) = fixtures_dir() else { return };
    let v = read_fixture(&dir, "webhooks/signature_vector.json");
    let token = v["verification_token"].as_str().unwrap();
    let body = v["body"].as_str().unwrap();
    let expected = v["x_notion_signature"].as_str().unwrap();
    assert_eq!(
        notion_sim::webhook_signature(token, body.as_bytes()),
        expected
    );
    assert_eq!(independent_signature(token, body.as_bytes()), expected);
    let exact = std::fs::read(dir.join("webhooks/verification_request.body.json")).unwrap();
    assert_eq!(exact, body.as_bytes());
}

#[tokio::test]
async fn every_event_is_signed_over_its_exact_bytes() {
    let (sim, rx, token) = subscribed().await;
    let id = sim.create_task(NewTask {
        title: "Signed".into(),
        ..Default::default()
    });
    sim.set_status(&id, "Done").unwrap();
    sim.webhooks_idle().await;
    let got = rx.received();
    assert!(got.len() >= 3);
    for r in &got[1..] {
        let header = r.headers["x-notion-signature"].to_str().unwrap();
        assert_eq!(header, independent_signature(&token, &r.body));
        assert_ne!(header, independent_signature("secret_other", &r.body));
        assert_eq!(r.headers["content-type"], "application/json");
    }
}

#[tokio::test]
async fn mutations_emit_notion_events() {
    let (sim, rx, _) = subscribed().await;
    let api = Api::new(&sim);
    let id = sim.create_task(NewTask {
        title: "Evented".into(),
        body: vec![notion_sim::SimBlock::Paragraph("first".into())],
        ..Default::default()
    });
    sim.set_status(&id, "In Progress").unwrap();
    sim.set_due(&id, Some("2026-02-01")).unwrap();
    sim.webhooks_idle().await;
    sim.trash(&id).unwrap();
    sim.webhooks_idle().await;
    sim.restore(&id).unwrap();
    sim.webhooks_idle().await;
    sim.rename_property("Notes", "Remarks").unwrap();
    let res = api
        .patch(
            &format!("/v1/pages/{id}"),
            &json!({"properties": {"Status": {"status": {"name": "Overdue"}}}}),
        )
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["last_edited_by"]["id"], sim.bot_user_id());
    sim.unshare(&id).unwrap();
    sim.webhooks_idle().await;

    let events = rx.events();
    let created = of_type(&events, "page.created");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["entity"], json!({"id": id, "type": "page"}));
    assert_eq!(created[0]["authors"][0]["type"], "person");
    assert_eq!(created[0]["authors"][0]["id"], sim.person_user_id());

    let props = of_type(&events, "page.properties_updated");
    assert_eq!(props.len(), 3, "status, due, API status");
    // Deliveries are concurrent, so compare without relying on arrival order.
    let mut updated: Vec<String> = props
        .iter()
        .map(|e| e["data"]["updated_properties"].to_string())
        .collect();
    updated.sort();
    assert_eq!(updated, [r#"["%3AbEt"]"#, r#"["Zq%3Ab"]"#, r#"["Zq%3Ab"]"#]);
    let by_bot = props
        .iter()
        .find(|e| e["authors"][0]["type"] == "bot")
        .expect("API edit authored by the bot");
    assert_eq!(by_bot["authors"][0]["id"], sim.bot_user_id());

    assert_eq!(of_type(&events, "page.deleted").len(), 1);
    assert_eq!(of_type(&events, "page.undeleted").len(), 1);
    let schema = of_type(&events, "data_source.schema_updated");
    assert_eq!(schema.len(), 1);
    assert_eq!(schema[0]["entity"]["id"], sim.data_source_id());
    assert_eq!(
        schema[0]["data"]["updated_properties"][0],
        json!({"id": "vT%3FG", "name": "Remarks", "action": "updated"})
    );
    let content = of_type(&events, "data_source.content_updated");
    assert!(!content.is_empty());
    assert!(content.iter().all(|e| e["entity"]["type"] == "data_source"
        && e["data"]["updated_blocks"][0] == json!({"id": id, "type": "block"})));
    for e in &events {
        assert_eq!(e["api_version"], "2025-09-03");
        assert_eq!(e["attempt_number"], 1);
    }
    let stats = sim.webhook_stats();
    assert_eq!(stats.events_emitted as usize, events.len());
    assert_eq!(stats.deliveries_ok as usize, events.len());
    assert_eq!(stats.pending, 0);
}

#[tokio::test]
async fn content_updates_aggregate_within_the_window() {
    let (sim, rx, _) = subscribed().await;
    let id = sim.create_task(NewTask {
        title: "Busy".into(),
        body: vec![notion_sim::SimBlock::Paragraph("p".into())],
        silent: true,
        ..Default::default()
    });
    sim.set_webhook_config(WebhookConfig {
        aggregate_window: Duration::from_millis(300),
        ..fast_config().webhook
    });
    sim.edit_body(&id, BodyEdit::AppendParagraph("one".into()))
        .unwrap();
    sim.edit_body(&id, BodyEdit::AppendParagraph("two".into()))
        .unwrap();
    sim.edit_body(
        &id,
        BodyEdit::ReplaceParagraph {
            index: 0,
            text: "zero".into(),
        },
    )
    .unwrap();
    sim.webhooks_idle().await;
    let events = rx.events();
    let content = of_type(&events, "page.content_updated");
    assert_eq!(content.len(), 1, "{events:#?}");
    let blocks = content[0]["data"]["updated_blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 3);
    assert!(blocks.iter().all(|b| b["type"] == "block"));
    let md = sim.page(&id).unwrap().markdown;
    assert_eq!(md, "zero\none\ntwo");
}

#[tokio::test]
async fn failed_deliveries_retry_with_attempt_numbers() {
    let (sim, rx, _) = subscribed().await;
    rx.fail_next(3);
    sim.create_task(NewTask {
        title: "Retry me".into(),
        ..Default::default()
    });
    sim.set_silent(true);
    sim.webhooks_idle().await;
    let created: Vec<Value> = rx
        .events()
        .into_iter()
        .filter(|e| e["type"] == "page.created")
        .collect();
    assert!(!created.is_empty());
    let ids: BTreeSet<&str> = created.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1, "retries keep the event id");
    let attempts: Vec<u64> = created
        .iter()
        .map(|e| e["attempt_number"].as_u64().unwrap())
        .collect();
    assert_eq!(*attempts.last().unwrap(), attempts.len() as u64);
    let stats = sim.webhook_stats();
    assert_eq!(stats.attempts_failed, 3);
    assert_eq!(stats.deliveries_ok, stats.events_emitted);

    sim.set_silent(false);
    sim.set_webhook_config(WebhookConfig {
        max_attempts: 3,
        ..fast_config().webhook
    });
    rx.fail_next(1000);
    sim.trash(&sim.pages()[0].id).unwrap();
    sim.webhooks_idle().await;
    let after = sim.webhook_stats();
    assert_eq!(
        after.deliveries_failed, 2,
        "page.deleted and data_source.content_updated"
    );
    assert_eq!(after.attempts - stats.attempts, 6);
}

#[tokio::test]
async fn drops_duplicates_and_silence() {
    let (sim, rx, _) = subscribed().await;
    sim.set_webhook_config(WebhookConfig {
        drop_rate: 1.0,
        ..fast_config().webhook
    });
    sim.create_task(NewTask::default());
    sim.webhooks_idle().await;
    assert!(rx.events().is_empty());
    assert_eq!(sim.webhook_stats().dropped, 2);

    sim.set_webhook_config(WebhookConfig {
        duplicate_rate: 1.0,
        reorder_max: Duration::from_millis(30),
        ..fast_config().webhook
    });
    let id = sim.create_task(NewTask::default());
    sim.webhooks_idle().await;
    let created = of_type(&rx.events(), "page.created")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(created.len(), 2);
    assert_eq!(created[0]["id"], created[1]["id"]);
    assert_eq!(created[0]["entity"]["id"], id);
    assert_eq!(sim.webhook_stats().duplicated, 2);

    sim.set_webhook_config(fast_config().webhook);
    let before = rx.events().len();
    sim.create_task(NewTask {
        silent: true,
        ..Default::default()
    });
    sim.set_silent(true);
    sim.set_status(&id, "Done").unwrap();
    sim.set_silent(false);
    sim.unshare(&id).unwrap();
    sim.webhooks_idle().await;
    assert_eq!(rx.events().len(), before);
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn events_have_the_documented_shapes() {
    let Some(dir) = fixtures_dir() else { return };
    let (sim, rx, _) = subscribed().await;
    let id = sim.create_task(NewTask {
        title: "Shapes".into(),
        ..Default::default()
    });
    sim.set_status(&id, "Done").unwrap();
    sim.edit_body(&id, BodyEdit::AppendParagraph("x".into()))
        .unwrap();
    sim.trash(&id).unwrap();
    sim.rename_property("Notes", "Remarks").unwrap();
    sim.webhooks_idle().await;
    let events = rx.events();
    for t in [
        "page.created",
        "page.properties_updated",
        "page.content_updated",
        "page.deleted",
        "data_source.schema_updated",
        "data_source.content_updated",
    ] {
        let file = format!("webhooks/{}.json", t.replace('.', "__"));
        let doc = read_fixture(&dir, &file);
        let ours = of_type(&events, t);
        assert!(!ours.is_empty(), "no {t} emitted");
        let ours = ours[0];
        let mut expected = keys(&doc);
        expected.insert("api_version".to_owned());
        assert_eq!(keys(ours), expected, "{t} envelope");
        assert_eq!(keys(&ours["data"]), keys(&doc["data"]), "{t} data");
        assert_eq!(ours["entity"]["type"], doc["entity"]["type"], "{t} entity");
        assert_eq!(keys(&ours["authors"][0]), keys(&doc["authors"][0]));
        assert_eq!(
            keys(&ours["accessible_by"][0]),
            keys(&doc["accessible_by"][0])
        );
        if let Some(first) = doc["data"]["updated_blocks"].get(0) {
            assert_eq!(keys(&ours["data"]["updated_blocks"][0]), keys(first));
        }
        if let Some(first) = doc["data"]["updated_properties"].get(0) {
            let ours_first = &ours["data"]["updated_properties"][0];
            if first.is_object() {
                assert_eq!(keys(ours_first), keys(first));
            } else {
                assert!(ours_first.is_string());
            }
        }
        let ts = ours["timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok() && ts.ends_with('Z'));
    }
}

/// An integration only some databases are shared with hears only their events.
#[tokio::test]
async fn a_scoped_subscription_gets_only_its_databases_events() {
    let sim = sim(notion_sim::SimConfig {
        extra_task_databases: 1,
        pages: 3,
        ..fast_config()
    })
    .await;
    let all = Receiver::start().await;
    let second = Receiver::start().await;
    sim.subscribe(&all.url).await.unwrap();
    let dbs = sim.task_database_ids();
    sim.subscribe_scoped(&second.url, None, &dbs[1..])
        .await
        .unwrap();
    let ds = sim.task_data_source_ids();
    let in_first = sim
        .pages()
        .into_iter()
        .find(|p| p.data_source_id == ds[0])
        .unwrap();
    let in_second = sim
        .pages()
        .into_iter()
        .find(|p| p.data_source_id == ds[1])
        .unwrap();
    sim.set_title(&in_first.id, "first").unwrap();
    sim.set_title(&in_second.id, "second").unwrap();
    sim.webhooks_idle().await;
    // Page events, and the data source events beside them.
    let entities = |rx: &Receiver| -> Vec<String> {
        rx.events()
            .iter()
            .filter(|e| e["entity"]["type"] == "page")
            .map(|e| e["entity"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(entities(&all), [in_first.id.clone(), in_second.id.clone()]);
    assert_eq!(entities(&second), [in_second.id]);
    assert!(
        second
            .events()
            .iter()
            .all(|e| e["data"]["parent"]["id"] == dbs[1].as_str()),
        "{:?}",
        second.events()
    );
}
