//! Validation and error bodies: auth, versions, URLs, JSON, ids, query and PATCH validation.

use serde_json::json;

use crate::helpers::{Api, VERSION, assert_error, fast_config, sim};

#[tokio::test]
async fn auth_version_and_url_errors() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let wrong = Api {
        token: "secret_nope".into(),
        ..Api::new(&sim)
    };
    let res = wrong.get("/v1/users/me").await;
    assert_error(&res, 401, "unauthorized");
    assert_eq!(res.body["message"], "API token is invalid.");

    let res = api
        .send(reqwest::Method::GET, "/v1/users/me", None, None)
        .await;
    assert_error(&res, 400, "missing_version");
    assert!(
        res.body["message"]
            .as_str()
            .unwrap()
            .starts_with("Notion-Version header failed validation")
    );

    let res = api
        .send(
            reqwest::Method::GET,
            "/v1/users/me",
            Some("1999-01-01"),
            None,
        )
        .await;
    assert_error(&res, 400, "validation_error");

    let res = api.get("/v1/nope/nothing").await;
    assert_error(&res, 400, "invalid_request_url");
    assert_eq!(res.body["message"], "Invalid request URL.");
    let res = api
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/pages/{}", sim.pages()[0].id),
            Some(VERSION),
            None,
        )
        .await;
    assert_error(&res, 400, "invalid_request_url");

    let me = api.get("/v1/users/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["type"], "bot");
    assert_eq!(me.body["id"], sim.bot_user_id());
    assert_eq!(
        me.body["bot"]["owner"],
        json!({"type": "workspace", "workspace": true})
    );
    assert!(me.body["bot"]["workspace_name"].is_string());
}

/// Answers are shaped by the request's version: 2025-09-03 pages carry `archived`
/// beside `in_trash`, 2026-03-11 pages only `in_trash`; a version the simulator does not
/// model (2022-06-28: pre-data-source shapes) is refused with Notion's error. The bot
/// user carries its workspace id and limits.
#[tokio::test]
async fn versions_shape_answers_and_unmodelled_ones_are_refused() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let page = sim.pages()[0].id.clone();
    let path = format!("/v1/pages/{page}");
    let old = api.get(&path).await;
    assert_eq!(old.status, 200);
    assert_eq!(old.body["archived"], old.body["in_trash"]);
    let new = api
        .send(reqwest::Method::GET, &path, Some("2026-03-11"), None)
        .await;
    assert_eq!(new.status, 200);
    assert!(new.body.get("archived").is_none(), "{}", new.body);
    assert_eq!(new.body["in_trash"], false);
    let query = api
        .send(
            reqwest::Method::POST,
            &format!("/v1/data_sources/{}/query", sim.data_source_id()),
            Some("2026-03-11"),
            Some(&json!({"page_size": 2})),
        )
        .await;
    assert!(query.body["results"][0].get("archived").is_none());

    let refused = api
        .send(
            reqwest::Method::GET,
            "/v1/users/me",
            Some("2022-06-28"),
            None,
        )
        .await;
    assert_error(&refused, 400, "validation_error");
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("should be one of 2025-09-03, 2026-03-11")
    );

    let me = api.get("/v1/users/me").await;
    let bot = &me.body["bot"];
    assert!(
        bot["workspace_id"].as_str().is_some_and(|s| s.len() == 36),
        "{bot}"
    );
    assert!(
        bot["workspace_limits"]["max_file_upload_size_in_bytes"]
            .as_u64()
            .is_some()
    );
}

#[tokio::test]
async fn ids_json_and_missing_objects() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let res = api.get("/v1/pages/not-a-uuid").await;
    assert_error(&res, 400, "validation_error");
    let missing = "0b5e3c5e-0000-4000-8000-000000000000";
    let res = api.get(&format!("/v1/pages/{missing}")).await;
    assert_error(&res, 404, "object_not_found");
    assert_eq!(
        res.body["message"],
        format!(
            "Could not find page with ID: {missing}. Make sure the relevant pages and databases are shared with your integration."
        )
    );
    assert_error(
        &api.get(&format!("/v1/databases/{missing}")).await,
        404,
        "object_not_found",
    );
    assert_error(
        &api.get(&format!("/v1/data_sources/{}", sim.database_id()))
            .await,
        404,
        "object_not_found",
    );
    assert_error(
        &api.get(&format!("/v1/blocks/{missing}/children")).await,
        404,
        "object_not_found",
    );

    // Undashed ids work like dashed ones.
    let page = sim.pages()[0].id.clone();
    let res = api
        .get(&format!("/v1/pages/{}", page.replace('-', "")))
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["id"], page);

    let raw = api
        .http
        .post(format!(
            "{}/v1/data_sources/{}/query",
            api.base,
            sim.data_source_id()
        ))
        .bearer_auth(&api.token)
        .header("Notion-Version", VERSION)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let body: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(body["code"], "invalid_json");
}

#[tokio::test]
async fn query_validation() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let ds = sim.data_source_id();
    let leaf = json!({"property": "Blocked", "checkbox": {"equals": true}});
    let cases = [
        json!({"page_size": 0}),
        json!({"page_size": 101}),
        json!({"page_size": "ten"}),
        json!({"unknown_key": 1}),
        json!({"filter": {"property": "Nope", "checkbox": {"equals": true}}}),
        json!({"filter": {"property": "Status", "select": {"equals": "Done"}}}),
        json!({"filter": {"property": "Status", "status": {"contains": "Done"}}}),
        json!({"filter": {"property": "Due Date", "date": {"before": "yesterday"}}}),
        json!({"filter": {"property": "Estimate", "number": {"equals": "3"}}}),
        json!({"filter": {"property": "Notes", "rich_text": {"is_empty": false}}}),
        json!({"filter": {"timestamp": "deleted_time", "deleted_time": {"after": "2026-01-01"}}}),
        json!({"filter": {"and": [{"or": [{"and": [leaf]}]}]}}),
        json!({"sorts": [{"property": "Nope", "direction": "ascending"}]}),
        json!({"sorts": [{"property": "Name", "direction": "up"}]}),
    ];
    for body in cases {
        let res = api.query(&ds, &body).await;
        assert_error(&res, 400, "validation_error");
        assert!(!res.body["message"].as_str().unwrap().is_empty(), "{body}");
    }
    let res = api.query(&ds, &json!({"page_size": 101})).await;
    assert_eq!(
        res.body["message"],
        "body failed validation: body.page_size should be ≤ `100`, instead was `101`."
    );
    let res = api
        .query(
            &ds,
            &json!({"filter": {"property": "Nope", "checkbox": {"equals": true}}}),
        )
        .await;
    assert_eq!(
        res.body["message"],
        "Could not find property with name or id: Nope"
    );
    // Two levels are fine.
    let ok = api
        .query(
            &ds,
            &json!({"filter": {"and": [{"or": [leaf, leaf]}, leaf]}}),
        )
        .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn patch_validation_like_notion() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let page = sim.pages()[0].id.clone();
    let path = format!("/v1/pages/{page}");
    let before = sim.page(&page).unwrap();

    let res = api
        .patch(&path, &json!({"properties": {"Nope": {"checkbox": true}}}))
        .await;
    assert_error(&res, 400, "validation_error");
    assert_eq!(res.body["message"], "Nope is not a property that exists.");

    let res = api
        .patch(
            &path,
            &json!({"properties": {"Status": {"status": {"name": "Blocked forever"}}}}),
        )
        .await;
    assert_error(&res, 400, "validation_error");
    assert!(
        res.body["message"]
            .as_str()
            .unwrap()
            .contains("Blocked forever")
    );

    let res = api
        .patch(
            &path,
            &json!({"properties": {"Status": {"select": {"name": "Done"}}}}),
        )
        .await;
    assert_error(&res, 400, "validation_error");
    let message = res.body["message"].as_str().unwrap();
    assert!(message.starts_with("body failed validation. Fix one:\n"));
    assert!(
        message
            .contains("body.properties.Status.status should be defined, instead was `undefined`.")
    );
    let res = api
        .patch(&path, &json!({"properties": {"Estimate": {"number": "3"}}}))
        .await;
    assert_error(&res, 400, "validation_error");
    let res = api
        .patch(
            &path,
            &json!({"properties": {"Due Date": {"date": {"start": "soon"}}}}),
        )
        .await;
    assert_error(&res, 400, "validation_error");
    let res = api.patch(&path, &json!({"bogus": true})).await;
    assert_error(&res, 400, "validation_error");
    let long = "x".repeat(2001);
    let res = api
        .patch(
            &path,
            &json!({"properties": {"Name": {"title": [{"text": {"content": long}}]}}}),
        )
        .await;
    assert_error(&res, 400, "validation_error");

    // A rejected PATCH changes nothing, not even partially.
    let res = api
        .patch(
            &path,
            &json!({"properties": {"Blocked": {"checkbox": !before.properties["Blocked"]["checkbox"].as_bool().unwrap()}, "Nope": {"checkbox": true}}}),
        )
        .await;
    assert_eq!(res.status, 400);
    assert_eq!(sim.page(&page).unwrap(), before);

    // Trashed pages must be restored before editing.
    sim.trash(&page).unwrap();
    let res = api
        .patch(
            &path,
            &json!({"properties": {"Blocked": {"checkbox": true}}}),
        )
        .await;
    assert_error(&res, 400, "validation_error");
    let res = api
        .patch(
            &path,
            &json!({"in_trash": false, "properties": {"Blocked": {"checkbox": true}}}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["in_trash"], false);
    assert_eq!(res.body["properties"]["Blocked"]["checkbox"], true);
}

#[tokio::test]
async fn secrets_stay_out_of_debug_output() {
    let config = notion_sim::SimConfig {
        token: "secret_do_not_print".into(),
        ..fast_config()
    };
    assert!(!format!("{config:?}").contains("secret_do_not_print"));
    let sim = sim(config).await;
    assert!(!format!("{sim:?}").contains("secret_do_not_print"));
    assert_eq!(sim.token(), "secret_do_not_print");
}
