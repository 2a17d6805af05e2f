//! Pagination (opaque cursors, page sizes), sorts and `filter_properties`.

use std::collections::HashSet;

use notion_sim::{NewTask, SimConfig};
use serde_json::{Value, json};

use crate::helpers::{Api, assert_error, fast_config, sim};

/// A workspace of `n` silent tasks titled `Task 000`, `Task 001`, … (no generated pages).
async fn with_tasks(config: SimConfig, n: usize) -> notion_sim::SimHandle {
    let sim = sim(SimConfig { pages: 0, ..config }).await;
    for i in 0..n {
        sim.create_task(NewTask {
            title: format!("Task {i:03}"),
            silent: true,
            ..Default::default()
        });
    }
    sim
}

#[tokio::test]
async fn three_full_pages_and_a_remainder() {
    let sim = with_tasks(fast_config(), 350).await;
    let api = Api::new(&sim);
    let ds = sim.data_source_id();
    let mut body = json!({});
    let mut sizes = Vec::new();
    let mut seen = HashSet::new();
    loop {
        let res = api.query(&ds, &body).await;
        assert_eq!(res.status, 200);
        let results = res.body["results"].as_array().unwrap();
        sizes.push(results.len());
        for r in results {
            assert!(
                seen.insert(r["id"].as_str().unwrap().to_owned()),
                "duplicate row"
            );
        }
        let more = res.body["has_more"].as_bool().unwrap();
        assert_eq!(more, res.body["next_cursor"].is_string());
        if !more {
            assert!(res.body["next_cursor"].is_null());
            break;
        }
        body = json!({"start_cursor": res.body["next_cursor"]});
    }
    assert_eq!(sizes, vec![100, 100, 100, 50]);
    assert_eq!(seen.len(), 350);

    let small = api.query(&ds, &json!({"page_size": 7})).await;
    assert_eq!(small.body["results"].as_array().unwrap().len(), 7);
    assert_eq!(
        api.query_ids(&ds, &json!({"page_size": 33})).await.len(),
        350
    );
}

#[tokio::test]
async fn cursors_are_opaque_and_bound_to_their_query() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let ds = sim.data_source_id();
    let first = api.query(&ds, &json!({"page_size": 5})).await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let bad = api
        .query(&ds, &json!({"start_cursor": "not-a-cursor"}))
        .await;
    assert_error(&bad, 400, "validation_error");
    let other_query = api
        .query(
            &ds,
            &json!({"start_cursor": cursor, "sorts": [{"property": "Name", "direction": "ascending"}]}),
        )
        .await;
    assert_error(&other_query, 400, "validation_error");
    let second = api
        .query(&ds, &json!({"page_size": 5, "start_cursor": cursor}))
        .await;
    assert_eq!(second.status, 200);
    assert_ne!(
        second.body["results"][0]["id"],
        first.body["results"][0]["id"]
    );
}

#[tokio::test]
async fn cursor_survives_the_next_row_being_trashed() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let ds = sim.data_source_id();
    let all = api.query_ids(&ds, &json!({})).await;
    let first = api.query(&ds, &json!({"page_size": 5})).await;
    sim.trash(&all[5]).unwrap();
    let rest = api
        .query_ids(&ds, &json!({"start_cursor": first.body["next_cursor"]}))
        .await;
    assert_eq!(rest, all[6..].to_vec());
}

fn numbers(rows: &[Value], prop: &str) -> Vec<Option<f64>> {
    rows.iter()
        .map(|r| r["properties"][prop]["number"].as_f64())
        .collect()
}

#[tokio::test]
async fn sorts_by_property_and_timestamp_with_empties_last() {
    let sim = sim(SimConfig {
        pages: 0,
        ..fast_config()
    })
    .await;
    for (title, estimate, status) in [
        ("b", Some(5), "Done"),
        ("a", None, "To Do"),
        ("c", Some(1), "In Progress"),
        ("d", Some(5), "Overdue"),
    ] {
        let id = sim.create_task(NewTask {
            title: title.into(),
            status: Some(status.into()),
            ..Default::default()
        });
        if let Some(e) = estimate {
            sim.set_property(&id, "Estimate", json!({"number": e}))
                .unwrap();
        }
    }
    let api = Api::new(&sim);
    let ds = sim.data_source_id();
    let rows = |body: Value| {
        let api = &api;
        let ds = ds.clone();
        async move {
            let res = api.query(&ds, &body).await;
            assert_eq!(res.status, 200, "{}", res.body);
            res.body["results"].as_array().unwrap().clone()
        }
    };
    let titles = |rows: &[Value]| -> Vec<String> {
        rows.iter()
            .map(|r| {
                r["properties"]["Name"]["title"][0]["plain_text"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };

    let asc = rows(json!({"sorts": [{"property": "Estimate", "direction": "ascending"}]})).await;
    assert_eq!(
        numbers(&asc, "Estimate"),
        vec![Some(1.0), Some(5.0), Some(5.0), None]
    );
    assert_eq!(
        titles(&asc),
        ["c", "b", "d", "a"],
        "ties keep creation order"
    );
    let desc = rows(json!({"sorts": [{"property": "Estimate", "direction": "descending"}]})).await;
    assert_eq!(
        numbers(&desc, "Estimate"),
        vec![Some(5.0), Some(5.0), Some(1.0), None]
    );
    let two = rows(json!({"sorts": [
        {"property": "Estimate", "direction": "descending"},
        {"property": "Name", "direction": "descending"},
    ]}))
    .await;
    assert_eq!(titles(&two), ["d", "b", "c", "a"]);
    let by_name = rows(json!({"sorts": [{"property": "Name", "direction": "ascending"}]})).await;
    assert_eq!(titles(&by_name), ["a", "b", "c", "d"]);
    let by_status =
        rows(json!({"sorts": [{"property": "Status", "direction": "ascending"}]})).await;
    assert_eq!(
        titles(&by_status),
        ["a", "c", "d", "b"],
        "status sorts by option order"
    );
    let newest =
        rows(json!({"sorts": [{"timestamp": "created_time", "direction": "descending"}]})).await;
    assert_eq!(
        titles(&newest),
        ["b", "a", "c", "d"],
        "same minute: creation order breaks ties"
    );
    let edited =
        rows(json!({"sorts": [{"timestamp": "last_edited_time", "direction": "ascending"}]})).await;
    assert_eq!(edited.len(), 4);
}

#[tokio::test]
async fn filter_properties_limits_returned_properties() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let ds = sim.data_source_id();
    let res = api
        .post(
            &format!(
                "/v1/data_sources/{ds}/query?filter_properties=title&filter_properties=Zq%253Ab"
            ),
            &json!({"page_size": 3}),
        )
        .await;
    assert_eq!(res.status, 200);
    for row in res.body["results"].as_array().unwrap() {
        let keys: Vec<&String> = row["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["Name", "Status"]);
    }
    let page = &res.body["results"][0]["id"].as_str().unwrap().to_owned();
    let single = api
        .get(&format!("/v1/pages/{page}?filter_properties=%253AbEt"))
        .await;
    let keys: Vec<&String> = single.body["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["Due Date"]);
}

/// `GET /v1/users` pages through every person and the bot; `GET /v1/users/{id}` and
/// `GET /v1/blocks/{id}` answer one object, or Notion's 404.
#[tokio::test]
async fn users_list_and_retrieve_and_block_retrieve() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/v1/users?page_size=1".to_owned(),
            Some(c) => format!("/v1/users?page_size=1&start_cursor={c}"),
        };
        let res = api.get(&path).await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["object"], "list");
        assert_eq!(res.body["type"], "user");
        for u in res.body["results"].as_array().unwrap() {
            ids.push(u["id"].as_str().unwrap().to_owned());
        }
        match res.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert!(ids.len() >= 2, "people and the bot: {ids:?}");
    let me = api.get("/v1/users/me").await;
    assert!(ids.contains(&me.body["id"].as_str().unwrap().to_owned()));
    for id in &ids {
        let one = api.get(&format!("/v1/users/{id}")).await;
        assert_eq!(one.status, 200);
        assert_eq!(one.body["id"], id.as_str());
    }
    let missing = api
        .get("/v1/users/00000000-0000-4000-8000-000000000000")
        .await;
    assert_error(&missing, 404, "object_not_found");

    // A block read alone equals the same block in its page's children.
    let page = sim.pages()[0].id.clone();
    let children = api.get(&format!("/v1/blocks/{page}/children")).await;
    let first = children.body["results"][0].clone();
    let block_id = first["id"].as_str().unwrap();
    let one = api.get(&format!("/v1/blocks/{block_id}")).await;
    assert_eq!(one.status, 200);
    let mut expected = first.clone();
    expected["request_id"] = one.body["request_id"].clone();
    assert_eq!(one.body, expected);
    let missing = api
        .get("/v1/blocks/00000000-0000-4000-8000-000000000000")
        .await;
    assert_error(&missing, 404, "object_not_found");
}

/// `POST /v1/search`: titles containing the query, one kind by filter, sorted by
/// `last_edited_time`, paginated; a bad filter is Notion's validation error.
#[tokio::test]
async fn search_by_title_kind_sort_and_cursor() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    for i in 0..3 {
        sim.create_task(NewTask {
            title: format!("Searchable needle {i}"),
            silent: true,
            ..Default::default()
        });
    }
    let post = |body: Value| {
        let api = &api;
        async move {
            api.send(
                reqwest::Method::POST,
                "/v1/search",
                Some(crate::helpers::VERSION),
                Some(&body),
            )
            .await
        }
    };
    let res = post(json!({"query": "NEEDLE", "page_size": 2})).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["type"], "page_or_data_source");
    assert_eq!(res.body["results"].as_array().unwrap().len(), 2);
    let cursor = res.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = post(json!({"query": "needle", "start_cursor": cursor})).await;
    assert_eq!(rest.body["results"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["has_more"], false);

    let pages = post(json!({"filter": {"property": "object", "value": "page"}})).await;
    let all_pages = pages.body["results"].as_array().unwrap();
    assert!(all_pages.iter().all(|r| r["object"] == "page"));
    let sources = post(json!({"filter": {"property": "object", "value": "data_source"}})).await;
    let sources = sources.body["results"].as_array().unwrap();
    assert!(!sources.is_empty() && sources.iter().all(|r| r["object"] == "data_source"));

    let asc = post(
        json!({"sort": {"timestamp": "last_edited_time", "direction": "ascending"},
                          "filter": {"property": "object", "value": "page"}}),
    )
    .await;
    let times: Vec<String> = asc.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["last_edited_time"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);

    let bad = post(json!({"filter": {"property": "object", "value": "database"}})).await;
    assert_error(&bad, 400, "validation_error");
}

/// `POST /v1/comments` opens a discussion on a page or replies in one (by the bot);
/// `GET /v1/comments?block_id=…` lists a page's comments oldest first, paginated;
/// missing parameters, unknown pages and unknown discussions are Notion's errors.
#[tokio::test]
async fn comments_are_created_on_pages_and_listed_with_a_cursor() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let page = sim.pages()[0].id.clone();
    let text = |s: &str| json!([{"text": {"content": s}}]);
    let first = api
        .post(
            "/v1/comments",
            &json!({"parent": {"page_id": page}, "rich_text": text("First")}),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["object"], "comment");
    assert_eq!(
        first.body["parent"],
        json!({"type": "page_id", "page_id": page})
    );
    assert_eq!(first.body["created_by"]["id"], sim.bot_user_id());
    assert_eq!(first.body["rich_text"][0]["plain_text"], "First");
    let created = first.body["created_time"].as_str().unwrap();
    assert!(created.ends_with(":00.000Z"), "minute-truncated: {created}");
    let discussion = first.body["discussion_id"].as_str().unwrap().to_owned();
    for reply in ["Second", "Third"] {
        let r = api
            .post(
                "/v1/comments",
                &json!({"discussion_id": discussion, "rich_text": text(reply)}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["discussion_id"], discussion.as_str());
    }
    let listed = api
        .get(&format!("/v1/comments?block_id={page}&page_size=2"))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["type"], "comment");
    let texts = |b: &Value| -> Vec<String> {
        b["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["rich_text"][0]["plain_text"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(texts(&listed.body), ["First", "Second"]);
    let cursor = listed.body["next_cursor"].as_str().unwrap();
    let rest = api
        .get(&format!(
            "/v1/comments?block_id={page}&start_cursor={cursor}"
        ))
        .await;
    assert_eq!(texts(&rest.body), ["Third"]);
    assert_eq!(rest.body["has_more"], false);
    let other = &sim.pages()[1].id;
    let none = api.get(&format!("/v1/comments?block_id={other}")).await;
    assert_eq!(texts(&none.body), Vec::<String>::new());

    assert_error(&api.get("/v1/comments").await, 400, "validation_error");
    let unknown = "00000000-0000-4000-8000-000000000000";
    assert_error(
        &api.get(&format!("/v1/comments?block_id={unknown}")).await,
        404,
        "object_not_found",
    );
    let bad_parent = json!({"parent": {"page_id": unknown}, "rich_text": text("x")});
    assert_error(
        &api.post("/v1/comments", &bad_parent).await,
        404,
        "object_not_found",
    );
    let bad_thread = json!({"discussion_id": unknown, "rich_text": text("x")});
    assert_error(
        &api.post("/v1/comments", &bad_thread).await,
        404,
        "object_not_found",
    );
    let no_text = json!({"parent": {"page_id": page}});
    assert_error(
        &api.post("/v1/comments", &no_text).await,
        400,
        "validation_error",
    );
    let no_parent = json!({"rich_text": text("x")});
    assert_error(
        &api.post("/v1/comments", &no_parent).await,
        400,
        "validation_error",
    );
}

/// `GET /v1/pages/{id}/properties/{property_id}`: a status is one `property_item`; a
/// title is a list of one item per rich-text segment, paginated; unknown properties and
/// pages are 404.
#[tokio::test]
async fn page_property_items_are_single_or_paginated_lists() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let id = sim.pages()[0].id.clone();
    let page = api.get(&format!("/v1/pages/{id}")).await.body;
    let status = &page["properties"]["Status"];
    let status_id = status["id"].as_str().unwrap();
    let item = api
        .get(&format!("/v1/pages/{id}/properties/{status_id}"))
        .await;
    assert_eq!(item.status, 200, "{}", item.body);
    assert_eq!(item.body["object"], "property_item");
    assert_eq!(item.body["type"], "status");
    assert_eq!(item.body["status"], status["status"]);

    sim.set_property(
        &id,
        "Name",
        json!({"title": [{"text": {"content": "One "}}, {"text": {"content": "two"}}]}),
    )
    .unwrap();
    let first = api
        .get(&format!("/v1/pages/{id}/properties/title?page_size=1"))
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["object"], "list");
    assert_eq!(first.body["type"], "property_item");
    assert_eq!(first.body["property_item"]["type"], "title");
    assert_eq!(first.body["results"][0]["title"]["plain_text"], "One ");
    assert_eq!(first.body["has_more"], true);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let rest = api
        .get(&format!(
            "/v1/pages/{id}/properties/title?start_cursor={cursor}"
        ))
        .await;
    assert_eq!(rest.body["results"][0]["title"]["plain_text"], "two");
    assert_eq!(rest.body["has_more"], false);

    assert_error(
        &api.get(&format!("/v1/pages/{id}/properties/nope")).await,
        404,
        "object_not_found",
    );
    let unknown = "00000000-0000-4000-8000-000000000000";
    assert_error(
        &api.get(&format!("/v1/pages/{unknown}/properties/title"))
            .await,
        404,
        "object_not_found",
    );
}

/// A query returns at most `query_result_limit` results over all its cursor pages, then
/// stops with `has_more: false` and `request_status: incomplete`; a new query (another
/// filter) starts counting again.
#[tokio::test]
async fn a_query_stops_at_the_result_limit_and_says_so() {
    let sim = with_tasks(
        SimConfig {
            query_result_limit: 250,
            ..fast_config()
        },
        400,
    )
    .await;
    let api = Api::new(&sim);
    let ds = sim.data_source_id();
    let mut body = json!({});
    let mut sizes = Vec::new();
    let last = loop {
        let res = api.query(&ds, &body).await;
        assert_eq!(res.status, 200, "{}", res.body);
        sizes.push(res.body["results"].as_array().unwrap().len());
        match res.body["next_cursor"].as_str() {
            Some(c) => {
                assert!(res.body.get("request_status").is_none());
                body = json!({"start_cursor": c});
            }
            None => break res.body,
        }
    };
    assert_eq!(sizes, vec![100, 100, 50]);
    assert_eq!(last["has_more"], false);
    assert_eq!(
        last["request_status"],
        json!({"type": "incomplete", "incomplete_reason": "query_result_limit_reached"})
    );
    let under = api
        .query(
            &ds,
            &json!({"filter": {"property": "Name", "title": {"starts_with": "Task 3"}}}),
        )
        .await;
    assert_eq!(under.body["results"].as_array().unwrap().len(), 100);
    assert!(under.body.get("request_status").is_none(), "{}", under.body);
    sim.set_query_result_limit(200);
    let exact = api.query_ids(&ds, &json!({"page_size": 100})).await;
    assert_eq!(exact.len(), 200);
}
