//! Conformance with recorded Notion traffic: for every interaction in the fixtures, the
//! simulator's answer to the equivalent request has the same object kinds, keys and value
//! types (ids and times aside); error bodies match.

use serde_json::{Value, json};

use crate::helpers::{Api, fast_config, fixtures_dir, read_fixture, sim};

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Differences in structure between a recorded value and the simulator's.
fn shape_diff(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    if kind(expected) != kind(actual) {
        out.push(format!(
            "{path}: expected {} got {}",
            kind(expected),
            kind(actual)
        ));
        return;
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for k in e.keys() {
                match a.get(k) {
                    Some(av) => shape_diff(&e[k], av, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}: missing")),
                }
            }
            for k in a.keys().filter(|k| !e.contains_key(*k)) {
                out.push(format!("{path}.{k}: unexpected"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let Some(first) = e.first() {
                for (i, item) in a.iter().enumerate() {
                    shape_diff(first, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        (Value::String(e), Value::String(a))
            if (path.ends_with(".object") || path.ends_with(".type"))
                && !path.ends_with("parent.type")
                && e != a =>
        {
            out.push(format!("{path}: expected {e:?} got {a:?}"));
        }
        _ => {}
    }
}

fn assert_same_shape(what: &str, expected: &Value, actual: &Value) {
    let mut diffs = Vec::new();
    shape_diff(expected, actual, "$", &mut diffs);
    assert!(
        diffs.is_empty(),
        "{what}: {diffs:#?}\nsim answered {actual:#}"
    );
}

fn without(v: &Value, keys: &[&str]) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
    v
}

fn is_minute(t: &Value) -> bool {
    t.as_str().is_some_and(|s| s.ends_with(":00.000Z"))
}

/// A page recorded under a page parent vs a sim page in a data source: same envelope, same
/// title property shape; `parent` differs in kind by design and is checked separately.
fn compare_page(recorded: &Value, ours: &Value) {
    assert_same_shape(
        "page",
        &without(recorded, &["parent", "properties"]),
        &without(ours, &["parent", "properties"]),
    );
    assert_same_shape(
        "page title property",
        &recorded["properties"]["title"],
        &ours["properties"]["Name"],
    );
    assert_eq!(ours["parent"]["type"], "data_source_id");
    assert!(ours["parent"]["data_source_id"].is_string());
    assert!(ours["parent"]["database_id"].is_string());
    assert!(is_minute(&ours["created_time"]) && is_minute(&ours["last_edited_time"]));
    assert!(is_minute(&recorded["created_time"]));
}

fn compare_block(recorded: &Value, ours: &Value) {
    let rk = recorded["type"].as_str().unwrap();
    let ok = ours["type"].as_str().unwrap();
    assert_same_shape(
        "block",
        &without(recorded, &[rk, "type", "request_id"]),
        &without(ours, &[ok, "type"]),
    );
}

#[tokio::test]
async fn every_recorded_interaction_has_a_faithful_equivalent() {
    let Some(dir) = fixtures_dir() else { return };
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let ds = sim.data_source_id();
    let some_page = sim.pages()[0].id.clone();
    let empty_page = sim.create_task(notion_sim::NewTask {
        title: "Empty".into(),
        ..Default::default()
    });
    let with_body = sim.create_task(notion_sim::NewTask {
        title: "Body".into(),
        body: vec![notion_sim::SimBlock::Paragraph("hello".into())],
        ..Default::default()
    });

    let mut checked = 0;
    for file in [
        "api/test_pages_retrieve.json",
        "api/test_data_sources_retrieve.json",
        "api/test_databases_retrieve.json",
        "api/test_data_sources_query.json",
        "api/test_blocks_children_list.json",
        "api/test_api_response_error.json",
    ] {
        let fixture = read_fixture(&dir, file);
        for it in fixture["interactions"].as_array().unwrap() {
            let method = it["request"]["method"].as_str().unwrap();
            let uri = it["request"]["uri"].as_str().unwrap();
            let path = uri.trim_start_matches("https://api.notion.com");
            let recorded = &it["response"]["body"];
            let status = it["response"]["status"].as_u64().unwrap();
            let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            match (method, segs.as_slice()) {
                ("POST", ["v1", "pages"]) | ("GET", ["v1", "pages", _]) => {
                    let ours = api.get(&format!("/v1/pages/{some_page}")).await;
                    assert_eq!(ours.status, 200);
                    compare_page(recorded, &ours.body);
                }
                ("DELETE", ["v1", "blocks", _]) => {
                    let ours = api.get(&format!("/v1/blocks/{with_body}/children")).await;
                    compare_block(recorded, &ours.body["results"][0]);
                }
                ("POST", ["v1", "databases"]) | ("GET", ["v1", "databases", _]) => {
                    let ours = api
                        .get(&format!("/v1/databases/{}", sim.database_id()))
                        .await;
                    assert_same_shape("database", recorded, &ours.body);
                    assert_eq!(ours.body["data_sources"][0]["id"], ds);
                }
                ("POST", ["v1", "data_sources"]) | ("GET" | "PATCH", ["v1", "data_sources", _]) => {
                    let ours = api.get(&format!("/v1/data_sources/{ds}")).await;
                    assert_same_shape(
                        "data source",
                        &without(recorded, &["properties"]),
                        &without(&ours.body, &["properties"]),
                    );
                    assert_same_shape(
                        "title property schema",
                        &recorded["properties"]["Name"],
                        &ours.body["properties"]["Name"],
                    );
                }
                ("POST", ["v1", "data_sources", _, "query"]) => {
                    let none = json!({"filter": {"property": "Name", "title": {"equals": "no such task"}}});
                    let ours = api.query(&ds, &none).await;
                    assert_same_shape("empty query", recorded, &ours.body);
                    assert_eq!(ours.body["type"], "page_or_data_source");
                }
                ("GET", ["v1", "blocks", _, "children"]) => {
                    let ours = api.get(&format!("/v1/blocks/{empty_page}/children")).await;
                    assert_same_shape("empty children", recorded, &ours.body);
                }
                ("GET", ["v1", "invalid"]) => {
                    let ours = api.get("/v1/invalid").await;
                    assert_eq!(u64::from(ours.status), status);
                    assert_eq!(
                        without(&ours.body, &["request_id"]),
                        without(recorded, &["request_id"])
                    );
                }
                ("GET", ["v1", "users"]) => {
                    let bad = Api {
                        token: "secret_wrong".into(),
                        ..Api::new(&sim)
                    };
                    let ours = bad.get("/v1/users").await;
                    assert_eq!(u64::from(ours.status), status);
                    assert_eq!(
                        without(&ours.body, &["request_id"]),
                        without(recorded, &["request_id"])
                    );
                }
                other => panic!("no equivalent for recorded {other:?} in {file}"),
            }
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} interactions checked");
}

#[tokio::test]
async fn query_results_are_pages_shaped_like_retrieved_pages() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let res = api
        .query(&sim.data_source_id(), &json!({"page_size": 5}))
        .await;
    let first = &res.body["results"][0];
    let single = api
        .get(&format!("/v1/pages/{}", first["id"].as_str().unwrap()))
        .await;
    assert_eq!(without(&single.body, &["request_id"]), *first);
}

#[tokio::test]
async fn documented_503_body_matches() {
    let Some(dir) = fixtures_dir() else { return };
    let recorded = read_fixture(&dir, "errors/notion-docs.query-data-source.503.json");
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    sim.force_errors(503, 1, None);
    let ours = api.query(&sim.data_source_id(), &json!({})).await;
    assert_eq!(ours.status, 503);
    for key in ["object", "status", "code"] {
        assert_eq!(ours.body[key], recorded[key], "{key}");
    }
    assert!(ours.body["message"].is_string());
}
