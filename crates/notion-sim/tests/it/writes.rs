//! Writes through the API beyond `PATCH /v1/pages`: creating pages, appending children,
//! updating, trashing and restoring blocks, with their webhooks and Notion's errors.

use notion_sim::{NewTask, SimBlock, SimConfig};
use serde_json::{Value, json};

use crate::helpers::{Api, Receiver, assert_error, fast_config, sim};

fn text(s: &str) -> Value {
    json!([{"type": "text", "text": {"content": s}}])
}

fn ids(list: &Value) -> Vec<String> {
    list["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A workspace without generated tasks.
async fn empty() -> notion_sim::SimHandle {
    sim(SimConfig {
        pages: 0,
        ..fast_config()
    })
    .await
}

/// An empty workspace with a webhook receiver subscribed.
async fn subscribed() -> (notion_sim::SimHandle, Receiver) {
    let sim = empty().await;
    let rx = Receiver::start().await;
    sim.subscribe(&rx.url).await.unwrap();
    (sim, rx)
}

async fn delete(api: &Api, path: &str) -> crate::helpers::Res {
    api.send(
        reqwest::Method::DELETE,
        path,
        Some(crate::helpers::VERSION),
        None,
    )
    .await
}

#[tokio::test]
async fn a_page_created_through_the_api_is_a_task_like_any_other() {
    let (sim, rx) = subscribed().await;
    let api = Api::new(&sim);
    let ds = sim.data_source_id();
    let res = api
        .post(
            "/v1/pages",
            &json!({
                "parent": {"type": "data_source_id", "data_source_id": ds},
                "icon": {"type": "emoji", "emoji": "🧪"},
                "properties": {
                    "Name": {"title": text("Made by the API")},
                    "Due Date": {"date": {"start": "2026-12-24"}},
                    "Priority": {"select": {"name": "High"}}
                },
                "children": [
                    {"object": "block", "type": "heading_2", "heading_2": {"rich_text": text("Plan")}},
                    {"bulleted_list_item": {"rich_text": text("step"), "children": [
                        {"to_do": {"rich_text": text("check"), "checked": true}}
                    ]}}
                ]
            }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let page = &res.body;
    assert_eq!(page["object"], "page");
    assert_eq!(page["parent"]["data_source_id"], ds.as_str());
    assert_eq!(page["icon"]["emoji"], "🧪");
    assert_eq!(
        page["properties"]["Name"]["title"][0]["plain_text"],
        "Made by the API"
    );
    assert_eq!(
        page["properties"]["Status"]["status"]["name"], "To Do",
        "a status not given starts at the default to-do option"
    );
    assert_eq!(page["created_by"]["id"], sim.bot_user_id().as_str());
    let id = page["id"].as_str().unwrap().to_owned();

    let mirror = sim.page(&id).unwrap();
    assert_eq!(mirror.due.as_deref(), Some("2026-12-24"));
    assert_eq!(mirror.markdown, "## Plan\n- step\n\t- [x] check");
    let got = api.get(&format!("/v1/pages/{id}")).await;
    assert_eq!(got.body["properties"], page["properties"]);
    let kids = api.get(&format!("/v1/blocks/{id}/children")).await;
    assert_eq!(kids.body["results"][1]["has_children"], true);

    let by_db = api
        .post(
            "/v1/pages",
            &json!({"parent": {"database_id": sim.database_id()}, "properties": {}}),
        )
        .await;
    assert_eq!(by_db.status, 200, "{}", by_db.body);
    assert_eq!(by_db.body["parent"]["data_source_id"], ds.as_str());
    assert_eq!(by_db.body["properties"]["Name"]["title"], json!([]));

    sim.webhooks_idle().await;
    let events = rx.events();
    let created: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "page.created" && e["entity"]["id"] == id.as_str())
        .collect();
    assert_eq!(created.len(), 1, "{events:?}");
    assert_eq!(created[0]["authors"][0]["type"], "bot");
    let queried = api.query_ids(&ds, &json!({})).await;
    assert_eq!(queried.len(), 2);
}

#[tokio::test]
async fn page_creation_answers_notions_errors_and_creates_nothing() {
    let sim = empty().await;
    let api = Api::new(&sim);
    let ds = sim.data_source_id();
    let cases = [
        (
            json!({"properties": {}}),
            400,
            "body.parent should be defined",
        ),
        (
            json!({"parent": {"data_source_id": "not-an-id"}}),
            400,
            "valid uuid",
        ),
        (
            json!({"parent": {"data_source_id": "11111111-2222-4333-8444-555555555555"}}),
            404,
            "Could not find data source",
        ),
        (
            json!({"parent": {"page_id": sim.other_page_ids()[0]}}),
            400,
            "data sources only",
        ),
        (
            json!({"parent": {"data_source_id": ds}, "properties": {"Nope": {"title": []}}}),
            400,
            "Nope is not a property that exists.",
        ),
        (
            json!({"parent": {"data_source_id": ds}, "properties": {"Status": {"status": {"name": "Nope"}}}}),
            400,
            "Nope",
        ),
        (
            json!({"parent": {"data_source_id": ds}, "markdown": "# hi"}),
            400,
            "body.markdown is not modelled",
        ),
        (
            json!({"parent": {"data_source_id": ds}, "children": [{"image": {}}]}),
            400,
            "body.children[0].image",
        ),
        (
            json!({"parent": {"data_source_id": ds}, "colour": "red"}),
            400,
            "body.colour should be not present",
        ),
    ];
    for (body, status, needle) in cases {
        let res = api.post("/v1/pages", &body).await;
        let code = if status == 404 {
            "object_not_found"
        } else {
            "validation_error"
        };
        assert_error(&res, status, code);
        let message = res.body["message"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
    assert!(api.query_ids(&ds, &json!({})).await.is_empty());
}

#[tokio::test]
async fn appended_children_land_where_asked_and_emit_content_updated() {
    let (sim, rx) = subscribed().await;
    let id = sim.create_task(NewTask {
        title: "Body".into(),
        body: vec![
            SimBlock::Paragraph("first".into()),
            SimBlock::Toggle("fold".into(), vec![]),
            SimBlock::Divider,
        ],
        silent: true,
        ..Default::default()
    });
    let api = Api::new(&sim);
    let path = format!("/v1/blocks/{id}/children");
    let before = ids(&api.get(&path).await.body);

    let end = api
        .patch(
            &path,
            &json!({"children": [{"paragraph": {"rich_text": text("last")}}]}),
        )
        .await;
    assert_eq!(end.status, 200, "{}", end.body);
    assert_eq!(end.body["object"], "list");
    assert_eq!(end.body["type"], "block");
    assert_eq!(end.body["results"][0]["parent"]["page_id"], id.as_str());
    let last = ids(&end.body)[0].clone();
    let start = api
        .patch(
            &path,
            &json!({"children": [{"quote": {"rich_text": text("top")}}], "position": {"type": "start"}}),
        )
        .await;
    let top = ids(&start.body)[0].clone();
    let after = api
        .patch(
            &path,
            &json!({"children": [{"paragraph": {"rich_text": text("second")}}], "after": before[0]}),
        )
        .await;
    assert_eq!(after.status, 200, "{}", after.body);
    let second = ids(&after.body)[0].clone();
    let nested = api
        .patch(
            &format!("/v1/blocks/{}/children", before[1]),
            &json!({"children": [{"paragraph": {"rich_text": text("inside")}}],
                    "position": {"type": "after_block", "after_block": {"id": null}}}),
        )
        .await;
    assert_error(&nested, 400, "validation_error");
    let nested = api
        .patch(
            &format!("/v1/blocks/{}/children", before[1]),
            &json!({"children": [{"paragraph": {"rich_text": text("inside")}}]}),
        )
        .await;
    assert_eq!(nested.status, 200, "{}", nested.body);
    assert_eq!(
        nested.body["results"][0]["parent"]["block_id"],
        before[1].as_str()
    );

    let now = ids(&api.get(&path).await.body);
    assert_eq!(
        now,
        vec![
            top,
            before[0].clone(),
            second,
            before[1].clone(),
            before[2].clone(),
            last
        ]
    );
    let md = sim.page(&id).unwrap().markdown;
    assert!(md.starts_with("> top\nfirst\nsecond\n"), "{md}");
    assert!(md.ends_with("---\nlast") && md.contains("inside"), "{md}");

    let too_many = Value::Array(vec![json!({"divider": {}}); 101]);
    assert_error(
        &api.patch(&path, &json!({"children": too_many})).await,
        400,
        "validation_error",
    );
    let stranger = api
        .patch(
            &path,
            &json!({"children": [{"divider": {}}], "after": "11111111-2222-4333-8444-555555555555"}),
        )
        .await;
    assert_error(&stranger, 400, "validation_error");
    let on_divider = api
        .patch(
            &format!("/v1/blocks/{}/children", before[2]),
            &json!({"children": [{"divider": {}}]}),
        )
        .await;
    assert_error(&on_divider, 400, "validation_error");
    assert_error(
        &api.patch(
            "/v1/blocks/11111111-2222-4333-8444-555555555555/children",
            &json!({"children": []}),
        )
        .await,
        404,
        "object_not_found",
    );
    assert_eq!(
        ids(&api.get(&path).await.body).len(),
        6,
        "rejected appends add nothing"
    );

    sim.webhooks_idle().await;
    let content: Vec<Value> = rx
        .events()
        .into_iter()
        .filter(|e| e["type"] == "page.content_updated")
        .collect();
    assert!(content.iter().all(|e| e["authors"][0]["type"] == "bot"));
    let announced: Vec<&str> = content
        .iter()
        .flat_map(|e| e["data"]["updated_blocks"].as_array().unwrap().iter())
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    for appended in [&now[0], &now[2], &now[5]] {
        assert!(
            announced.contains(&appended.as_str()),
            "{appended} not in updated_blocks {announced:?}"
        );
    }
}

#[tokio::test]
async fn blocks_update_go_to_the_trash_and_come_back_in_place() {
    let sim = empty().await;
    let id = sim.create_task(NewTask {
        title: "Trash".into(),
        body: vec![
            SimBlock::Paragraph("one".into()),
            SimBlock::ToDo("two".into(), false),
            SimBlock::Bulleted("three".into(), vec![SimBlock::Paragraph("kid".into())]),
        ],
        silent: true,
        ..Default::default()
    });
    let api = Api::new(&sim);
    let path = format!("/v1/blocks/{id}/children");
    let blocks = ids(&api.get(&path).await.body);

    let updated = api
        .patch(
            &format!("/v1/blocks/{}", blocks[0]),
            &json!({"paragraph": {"rich_text": text("uno")}}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(
        updated.body["paragraph"]["rich_text"][0]["plain_text"],
        "uno"
    );
    let checked = api
        .patch(
            &format!("/v1/blocks/{}", blocks[1]),
            &json!({"to_do": {"checked": true}}),
        )
        .await;
    assert_eq!(checked.body["to_do"]["checked"], true);
    assert_eq!(checked.body["to_do"]["rich_text"][0]["plain_text"], "two");
    let mismatch = api
        .patch(
            &format!("/v1/blocks/{}", blocks[0]),
            &json!({"heading_1": {"rich_text": text("x")}}),
        )
        .await;
    assert_error(&mismatch, 400, "validation_error");

    let gone = delete(&api, &format!("/v1/blocks/{}", blocks[2])).await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert_eq!(gone.body["in_trash"], true);
    assert_eq!(ids(&api.get(&path).await.body), blocks[..2].to_vec());
    let kept = api.get(&format!("/v1/blocks/{}", blocks[2])).await;
    assert_eq!(kept.status, 200);
    assert_eq!(kept.body["in_trash"], true);
    assert_eq!(kept.body["parent"]["page_id"], id.as_str());
    let kid = ids(&api
        .get(&format!("/v1/blocks/{}/children", blocks[2]))
        .await
        .body);
    assert_eq!(kid.len(), 1);
    assert_eq!(
        api.get(&format!("/v1/blocks/{}", kid[0])).await.body["in_trash"],
        true
    );
    assert_eq!(sim.page(&id).unwrap().markdown, "uno\n- [x] two");

    let edit_trashed = api
        .patch(
            &format!("/v1/blocks/{}", blocks[2]),
            &json!({"bulleted_list_item": {"rich_text": text("x")}}),
        )
        .await;
    assert_error(&edit_trashed, 400, "validation_error");
    assert!(
        edit_trashed.body["message"]
            .as_str()
            .unwrap()
            .contains("archived")
    );
    assert_error(
        &delete(&api, &format!("/v1/blocks/{}", blocks[2])).await,
        400,
        "validation_error",
    );

    let back = api
        .patch(
            &format!("/v1/blocks/{}", blocks[2]),
            &json!({"in_trash": false}),
        )
        .await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(back.body["in_trash"], false);
    assert_eq!(ids(&api.get(&path).await.body), blocks);
    let archived = api
        .patch(
            &format!("/v1/blocks/{}", blocks[0]),
            &json!({"archived": true}),
        )
        .await;
    assert_eq!(archived.body["in_trash"], true);
    assert_eq!(ids(&api.get(&path).await.body), blocks[1..].to_vec());

    let page_gone = delete(&api, &format!("/v1/blocks/{id}")).await;
    assert_eq!(page_gone.status, 200, "{}", page_gone.body);
    assert_eq!(page_gone.body["type"], "child_page");
    assert_eq!(page_gone.body["child_page"]["title"], "Trash");
    assert_eq!(page_gone.body["in_trash"], true);
    assert!(sim.page(&id).unwrap().in_trash);
    let append_to_trashed = api
        .patch(&path, &json!({"children": [{"divider": {}}]}))
        .await;
    assert_error(&append_to_trashed, 400, "validation_error");
    assert_error(
        &delete(&api, "/v1/blocks/11111111-2222-4333-8444-555555555555").await,
        404,
        "object_not_found",
    );
}
