//! The HTTP client against wiremock: pagination, rate limits, retries, timeouts, errors, headers.

use std::time::Duration;

use futures::TryStreamExt;
use notion_api::{
    BlockContent, ClientConfig, ErrorClass, Filter, Lane, NotionClient, NotionId, Pacer,
    PacerConfig, QueryRequest, render_markdown,
};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{self, Recorder, TOKEN, error_body, list, task_page};

fn page_id() -> NotionId {
    support::PAGE_ID.parse().unwrap()
}

fn ds_id() -> NotionId {
    support::DS_ID.parse().unwrap()
}

fn page_n(n: u32) -> Value {
    task_page(
        &format!("00000000-0000-4000-8000-{n:012}"),
        &format!("Task {n}"),
        "To Do",
    )
}

#[tokio::test]
async fn query_stream_follows_cursors() {
    let server = MockServer::start().await;
    let base = format!("/v1/data_sources/{}/query", support::DS_ID);
    // Mounted first = matched first: the cursor-specific pages.
    Mock::given(method("POST"))
        .and(path(base.as_str()))
        .and(body_partial_json(
            json!({"start_cursor": "c2", "page_size": 100}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(
            vec![page_n(5)],
            None,
            "page_or_data_source",
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(base.as_str()))
        .and(body_partial_json(
            json!({"start_cursor": "c1", "page_size": 100}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(
            vec![page_n(3), page_n(4)],
            Some("c2"),
            "page_or_data_source",
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(base.as_str()))
        .and(body_partial_json(
            json!({"page_size": 100, "filter": {"property": "Status"}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(
            vec![page_n(1), page_n(2)],
            Some("c1"),
            "page_or_data_source",
        )))
        .expect(1)
        .mount(&server)
        .await;

    let client = support::client(&server.uri());
    let req = QueryRequest::new().with_filter(Filter::status("Status").equals("To Do"));
    let pages: Vec<_> = client
        .query_data_source_stream(ds_id(), req)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 3);
    let titles: Vec<String> = pages
        .iter()
        .flat_map(|p| p.value.results.iter().map(|r| r.title()))
        .collect();
    assert_eq!(titles, ["Task 1", "Task 2", "Task 3", "Task 4", "Task 5"]);
    // the first request carried no cursor
    let first: Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert!(first.get("start_cursor").is_none());
}

#[tokio::test]
async fn stream_stops_on_a_cursor_that_does_not_advance() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(
            vec![page_n(1)],
            Some("same"),
            "page_or_data_source",
        )))
        .mount(&server)
        .await;
    let client = support::client(&server.uri());
    let out: Vec<_> = futures::StreamExt::collect::<Vec<_>>(
        client.query_data_source_stream(ds_id(), QueryRequest::new()),
    )
    .await;
    assert_eq!(
        out.len(),
        2,
        "the first page, then the error instead of a loop"
    );
    assert!(out[0].is_ok());
    assert_eq!(out[1].as_ref().unwrap_err().class(), ErrorClass::Decode);
}

#[tokio::test]
async fn rate_limit_pauses_every_caller() {
    let server = MockServer::start().await;
    let limited = Recorder::new(vec![
        ResponseTemplate::new(429)
            .insert_header("Retry-After", "1")
            .set_body_json(error_body(
                429,
                "rate_limited",
                "You have been rate limited.",
            )),
        ResponseTemplate::new(200)
            .set_body_json(json!({"object":"user","id":support::USER_ID,"type":"bot","bot":{}})),
    ]);
    Mock::given(method("GET"))
        .and(path("/v1/users/me"))
        .respond_with(limited.clone())
        .mount(&server)
        .await;
    let other = Recorder::new(vec![ResponseTemplate::new(200).set_body_json(task_page(
        support::PAGE_ID,
        "x",
        "To Do",
    ))]);
    Mock::given(method("GET"))
        .and(path(format!("/v1/pages/{}", support::PAGE_ID)))
        .respond_with(other.clone())
        .mount(&server)
        .await;

    let client = support::client(&server.uri());
    let a = tokio::spawn({
        let c = client.clone();
        async move { c.users_me().await }
    });
    // Wait (bounded) until the 429 has been processed and the pause is in force.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while client.pacer().snapshot().paused_for.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the 429 never paused the pacer"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let b = client
        .with_lane(Lane::Bulk)
        .retrieve_page(page_id())
        .await
        .unwrap();
    assert_eq!(b.value.id, page_id());
    a.await.unwrap().unwrap();

    let t429 = limited.times()[0];
    let a_retry = limited.times()[1];
    let b_sent = other.times()[0];
    assert!(
        a_retry.duration_since(t429) >= Duration::from_secs(1),
        "caller A retried early"
    );
    assert!(
        b_sent.duration_since(t429) >= Duration::from_secs(1),
        "caller B was not paused"
    );

    let snap = client.pacer().snapshot();
    assert_eq!(snap.rate_limited_total, 1);
    assert!(snap.current_rate < snap.configured_rate);
    let stats = client.stats();
    assert_eq!(stats.rate_limited_total, 1);
    assert_eq!(stats.requests_total, 3);
    assert_eq!(stats.errors_total, 0);
}

#[tokio::test]
async fn an_exhausted_rate_limited_call_still_pauses_everyone() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "30")
                .set_body_json(error_body(429, "rate_limited", "slow down")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut cfg = support::config(&server.uri());
    cfg.max_attempts = 1;
    let client = NotionClient::new(cfg, support::fast_pacer()).unwrap();
    let e = client.users_me().await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
    assert!(e.is_retryable());
    let paused = client.pacer().snapshot().paused_for.expect("paused");
    assert!(paused > Duration::from_secs(25));
}

#[tokio::test]
async fn rate_limit_without_header_uses_additional_data() {
    let server = MockServer::start().await;
    let mut body = error_body(529, "service_overload", "Overloaded");
    body["additional_data"] = json!({"retry_after": 0.2});
    let r = Recorder::new(vec![
        ResponseTemplate::new(529).set_body_json(body),
        ResponseTemplate::new(200).set_body_json(task_page(support::PAGE_ID, "x", "To Do")),
    ]);
    Mock::given(method("PATCH"))
        .respond_with(r.clone())
        .mount(&server)
        .await;
    let client = support::client(&server.uri());
    client
        .update_page_properties(page_id(), json!({"Done": {"checkbox": true}}))
        .await
        .unwrap();
    let t = r.times();
    assert_eq!(t.len(), 2, "PATCH is retried on 529");
    assert!(t[1].duration_since(t[0]) >= Duration::from_millis(200));
}

#[tokio::test]
async fn server_errors_are_retried_for_reads_only() {
    let server = MockServer::start().await;
    let get = Recorder::new(vec![
        ResponseTemplate::new(503).set_body_json(error_body(
            503,
            "service_unavailable",
            "try later",
        )),
        ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"),
        ResponseTemplate::new(200).set_body_json(task_page(support::PAGE_ID, "x", "To Do")),
    ]);
    Mock::given(method("GET"))
        .respond_with(get.clone())
        .mount(&server)
        .await;
    let patch = Recorder::new(vec![ResponseTemplate::new(500).set_body_json(error_body(
        500,
        "internal_server_error",
        "boom",
    ))]);
    Mock::given(method("PATCH"))
        .respond_with(patch.clone())
        .mount(&server)
        .await;
    let query = Recorder::new(vec![
        ResponseTemplate::new(504).set_body_json(error_body(504, "gateway_timeout", "slow")),
        ResponseTemplate::new(200).set_body_json(list(vec![], None, "page_or_data_source")),
    ]);
    Mock::given(method("POST"))
        .respond_with(query.clone())
        .mount(&server)
        .await;

    let client = support::client(&server.uri());
    client.retrieve_page(page_id()).await.unwrap();
    assert_eq!(get.times().len(), 3, "GET retried on 503 and 502");

    let e = client
        .update_page_properties(page_id(), json!({"Done": {"checkbox": true}}))
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Transient);
    assert_eq!(e.status(), Some(500));
    assert!(e.is_retryable(), "the job layer may retry it later");
    assert_eq!(patch.times().len(), 1, "PATCH is not retried on 5xx");

    client
        .query_data_source(ds_id(), &QueryRequest::new())
        .await
        .unwrap();
    assert_eq!(query.times().len(), 2, "the query POST is a read");
    assert_eq!(client.stats().errors_total, 1);
}

#[tokio::test]
async fn patch_is_retried_on_conflict() {
    let server = MockServer::start().await;
    let r = Recorder::new(vec![
        ResponseTemplate::new(409).set_body_json(error_body(409, "conflict_error", "collision")),
        ResponseTemplate::new(200).set_body_json(task_page(support::PAGE_ID, "x", "Overdue")),
    ]);
    Mock::given(method("PATCH"))
        .and(body_partial_json(
            json!({"properties": {"Status": {"status": {"name": "Overdue"}}}}),
        ))
        .respond_with(r.clone())
        .mount(&server)
        .await;
    let client = support::client(&server.uri());
    let p = client
        .update_page_properties(
            page_id(),
            json!({"Status": {"status": {"name": "Overdue"}}}),
        )
        .await
        .unwrap();
    assert_eq!(
        p.value.property("Status").unwrap().status_name(),
        Some("Overdue")
    );
    assert_eq!(r.times().len(), 2);
}

#[tokio::test]
async fn attempts_are_bounded() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).set_body_json(error_body(
            500,
            "internal_server_error",
            "x",
        )))
        .expect(4)
        .mount(&server)
        .await;
    let client = support::client(&server.uri());
    let e = client.retrieve_page(page_id()).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Transient);
    assert_eq!(client.stats().requests_total, 4);
}

#[tokio::test]
async fn timeouts_are_retried_for_reads_not_writes() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(task_page(support::PAGE_ID, "x", "To Do"))
                .set_delay(Duration::from_secs(3)),
        )
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(task_page(support::PAGE_ID, "x", "To Do"))
                .set_delay(Duration::from_secs(3)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut cfg = support::config(&server.uri());
    cfg.timeout = Duration::from_millis(150);
    cfg.max_attempts = 2;
    let client = NotionClient::new(cfg, support::fast_pacer()).unwrap();

    let started = std::time::Instant::now();
    let e = client.retrieve_page(page_id()).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Timeout);
    assert!(e.is_retryable());
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "two attempts of 150 ms each"
    );

    let e = client
        .update_page_properties(page_id(), json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Timeout);
}

#[tokio::test]
async fn not_found_is_classified_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(error_body(
            404,
            "object_not_found",
            "Could not find page with ID. Make sure the relevant pages and databases are shared with your integration.",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let client = support::client(&server.uri());
    let e = client.retrieve_page(page_id()).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::NotFound);
    assert!(!e.is_retryable());
    assert_eq!(e.code(), Some("object_not_found"));
    assert_eq!(e.request_id(), Some("a1b2c3d4-0000-4000-8000-000000000000"));
    assert!(
        e.to_string()
            .starts_with("notion 404 object_not_found: Could not find page")
    );
    assert!(
        e.to_string()
            .ends_with("(request_id a1b2c3d4-0000-4000-8000-000000000000)")
    );
}

#[tokio::test]
async fn missing_version_is_an_error() {
    // A client cannot be built without a version ...
    let mut cfg = support::config("http://127.0.0.1:9");
    cfg.notion_version = String::new();
    let e = NotionClient::new(cfg, support::fast_pacer()).unwrap_err();
    assert_eq!(e.class(), ErrorClass::Validation);
    // ... and Notion's missing_version answer is a validation error, not retried.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(400).set_body_json(error_body(
            400,
            "missing_version",
            "Notion-Version header failed validation: Notion-Version header should be defined, instead was `undefined`.",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let e = support::client(&server.uri()).users_me().await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Validation);
    assert_eq!(e.code(), Some("missing_version"));
}

#[tokio::test]
async fn every_request_sends_auth_and_version_markdown_its_own() {
    let server = MockServer::start().await;
    let md = json!({"object":"page_markdown","id":support::PAGE_ID,"markdown":"# Hi\n- a",
                    "truncated":true,"unknown_block_ids":["153104cd477e80eca87df7ff0236d35c"]});
    Mock::given(method("GET"))
        .and(path(format!("/v1/pages/{}/markdown", support::PAGE_ID)))
        .and(header("Notion-Version", "2026-03-11"))
        .and(header("Authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(md))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/pages/{}", support::PAGE_ID)))
        .and(header("Notion-Version", "2025-09-03"))
        .and(header("Authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Date", "Fri, 31 Jan 2025 17:42:13 GMT")
                .set_body_json(task_page(support::PAGE_ID, "x", "To Do")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = support::client(&server.uri());
    let md = client.page_markdown(page_id()).await.unwrap().value;
    assert!(md.truncated);
    assert_eq!(md.unknown_block_ids.len(), 1);
    assert_eq!(md.markdown, "# Hi\n- a");
    let page = client.retrieve_page(page_id()).await.unwrap();
    let want = chrono::DateTime::parse_from_rfc3339("2025-01-31T17:42:13Z").unwrap();
    assert_eq!(page.date, Some(want.to_utc()), "Notion's clock is surfaced");
    assert_eq!(client.stats().last_date, Some(want.to_utc()));
}

#[tokio::test]
async fn the_token_never_leaks() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(error_body(
            401,
            "unauthorized",
            "API token is invalid.",
        )))
        .mount(&server)
        .await;
    let client = support::client(&server.uri());
    let e = client.users_me().await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Unauthorized);
    for s in [
        e.to_string(),
        format!("{e:?}"),
        format!("{client:?}"),
        format!("{:?}", client.config()),
    ] {
        assert!(!s.contains(TOKEN), "token leaked: {s}");
        assert!(!s.contains("never_logged"), "token leaked: {s}");
    }
    assert!(format!("{:?}", client.config()).contains("ntn_****"));
    // a dead port: transport errors do not carry it either
    let dead = NotionClient::new(
        {
            let mut c = support::config("http://127.0.0.1:9");
            c.max_attempts = 1;
            c
        },
        support::fast_pacer(),
    )
    .unwrap();
    let e = dead.users_me().await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Transport);
    assert!(!format!("{e:?}").contains(TOKEN));
}

#[tokio::test]
async fn malformed_success_bodies_are_decode_errors() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object":"page","id":"nope"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = support::client(&server.uri())
        .retrieve_page(page_id())
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Decode);
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn invalid_requests_are_rejected_before_sending() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let client = support::client(&server.uri());
    let leaf = || Filter::checkbox("Done").equals(true);
    let deep = Filter::and(vec![Filter::or(vec![Filter::and(vec![leaf()])])]);
    let e = client
        .query_data_source(ds_id(), &QueryRequest::new().with_filter(deep))
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Validation);
    let e = client
        .update_page_properties(page_id(), json!(["not", "an", "object"]))
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Validation);
    let e = NotionClient::new(ClientConfig::new("  "), support::fast_pacer()).unwrap_err();
    assert_eq!(e.class(), ErrorClass::Validation);
    assert!(NotionClient::new(support::config("ftp://x"), support::fast_pacer()).is_err());
}

fn block(id: &str, kind: &str, payload: Value, has_children: bool) -> Value {
    json!({"object":"block","id":id,"created_time":"2025-01-31T17:42:00.000Z",
           "last_edited_time":"2025-01-31T17:42:00.000Z","has_children":has_children,
           "in_trash":false,"archived":false,"type":kind,kind:payload})
}

fn text(s: &str) -> Value {
    json!({"rich_text":[{"type":"text","text":{"content":s,"link":null},"plain_text":s,"href":null,
        "annotations":{"bold":false,"italic":false,"strikethrough":false,"underline":false,"code":false,"color":"default"}}],
        "color":"default"})
}

#[tokio::test]
async fn block_tree_recurses_paginates_and_respects_depth() {
    let server = MockServer::start().await;
    let top = support::PAGE_ID;
    let toggle = "10000000-0000-4000-8000-000000000001";
    let inner = "10000000-0000-4000-8000-000000000002";
    let sub = "10000000-0000-4000-8000-000000000003";
    let child_page = "10000000-0000-4000-8000-000000000004";
    // top level, two pages of results
    Mock::given(method("GET"))
        .and(path(format!("/v1/blocks/{top}/children")))
        .and(query_param("start_cursor", "p2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(
            vec![block(
                child_page,
                "child_page",
                json!({"title":"Sub page"}),
                true,
            )],
            None,
            "block",
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/blocks/{top}/children")))
        .and(query_param("page_size", "100"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Date", "Fri, 31 Jan 2025 17:42:13 GMT")
                .set_body_json(list(
                    vec![
                        block(
                            "10000000-0000-4000-8000-000000000000",
                            "heading_1",
                            text("Plan"),
                            false,
                        ),
                        block(toggle, "toggle", text("Details"), true),
                    ],
                    Some("p2"),
                    "block",
                )),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/blocks/{toggle}/children")))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(
            vec![block(inner, "bulleted_list_item", text("step"), true)],
            None,
            "block",
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/blocks/{inner}/children")))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(
            vec![block(sub, "paragraph", text("detail"), false)],
            None,
            "block",
        )))
        .expect(1)
        .mount(&server)
        .await;
    // child pages are never entered
    Mock::given(method("GET"))
        .and(path(format!("/v1/blocks/{child_page}/children")))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;

    let client = support::client(&server.uri());
    let tree = client.block_tree(page_id(), 5).await.unwrap();
    assert_eq!(
        tree.date,
        Some(
            chrono::DateTime::parse_from_rfc3339("2025-01-31T17:42:13Z")
                .unwrap()
                .to_utc()
        )
    );
    assert_eq!(tree.value.len(), 3);
    assert!(matches!(
        tree.value[2].block.content,
        BlockContent::ChildPage { .. }
    ));
    assert_eq!(
        render_markdown(&tree.value),
        "# Plan\n<details>\n<summary>Details</summary>\n\t- step\n\t\tdetail\n</details>\n<page>Sub page</page>"
    );
}

#[tokio::test]
async fn block_tree_depth_zero_fetches_only_the_top_level() {
    let server = MockServer::start().await;
    let toggle = "10000000-0000-4000-8000-000000000001";
    Mock::given(method("GET"))
        .and(path(format!("/v1/blocks/{}/children", support::PAGE_ID)))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(
            vec![block(toggle, "toggle", text("Details"), true)],
            None,
            "block",
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/blocks/{toggle}/children")))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let tree = support::client(&server.uri())
        .block_tree(page_id(), 0)
        .await
        .unwrap();
    assert!(tree.value[0].block.has_children);
    assert!(tree.value[0].children.is_empty());
    assert_eq!(
        render_markdown(&tree.value),
        "<details>\n<summary>Details</summary>\n</details>"
    );
}

#[tokio::test]
async fn odd_values_in_fields_the_daemon_does_not_use_do_not_fail_a_body() {
    // Seen in a held-out run: a block whose parent.page_id is empty made every body
    // read of its page fail until the job was dead.
    let server = MockServer::start().await;
    let mut odd = block(
        "10000000-0000-4000-8000-000000000000",
        "paragraph",
        text("still here"),
        false,
    );
    odd["parent"] = json!({"type": "page_id", "page_id": ""});
    odd["created_by"] = json!({"object": "user", "id": 7});
    odd["created_time"] = json!("yesterday");
    Mock::given(method("GET"))
        .and(path(format!("/v1/blocks/{}/children", support::PAGE_ID)))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(vec![odd], None, "block")))
        .expect(1)
        .mount(&server)
        .await;
    let tree = support::client(&server.uri())
        .block_tree(page_id(), 3)
        .await
        .unwrap();
    let b = &tree.value[0].block;
    assert_eq!(
        (b.parent.as_ref(), b.created_by, b.created_time),
        (None, None, None)
    );
    assert_eq!(render_markdown(&tree.value), "still here");
    // A value the daemon does use stays strict.
    let mut bad = block(
        "10000000-0000-4000-8000-000000000000",
        "paragraph",
        text("x"),
        false,
    );
    bad["last_edited_time"] = json!("never");
    assert!(serde_json::from_value::<notion_api::Block>(bad).is_err());
}

#[tokio::test]
async fn lanes_share_one_pacer_and_stats() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(task_page(
            support::PAGE_ID,
            "x",
            "To Do",
        )))
        .mount(&server)
        .await;
    let pacer = Pacer::new(PacerConfig::default());
    let client = NotionClient::new(support::config(&server.uri()), pacer.clone()).unwrap();
    let bulk = client.with_lane(Lane::Bulk);
    assert_eq!(bulk.lane(), Lane::Bulk);
    assert_eq!(client.lane(), Lane::Interactive);
    client.retrieve_page(page_id()).await.unwrap();
    bulk.retrieve_page(page_id()).await.unwrap();
    let snap = pacer.snapshot();
    assert_eq!((snap.granted_interactive, snap.granted_bulk), (1, 1));
    assert_eq!(client.stats().requests_total, 2);
    assert!(std::sync::Arc::ptr_eq(client.pacer(), bulk.pacer()));
}
