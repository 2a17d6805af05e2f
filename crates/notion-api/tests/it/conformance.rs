//! Conformance against real Notion data in `../shared/fixtures`: recorded responses
//! deserialize, properties survive re-serialization, and the requests the client
//! builds validate against Notion's OpenAPI subset.

use std::collections::BTreeMap;
use std::path::Path;

use notion_api::{
    Block, DataSource, Database, Direction, ErrorBody, Filter, ListResponse, NotionId, Page,
    PropertyValue, QueryRequest, Sort, User,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{self, fixtures_dir, json_files, read_json};

/// Deserializes one recorded response body by its `object`, checks what it
/// can about the typed value, and returns the object kind.
fn check_response(body: &Value, origin: &str) -> String {
    let object = body["object"]
        .as_str()
        .unwrap_or_else(|| panic!("{origin}: no `object`"));
    match object {
        "page" => check_page(body, origin),
        "database" => {
            let db: Database = serde_json::from_value(body.clone())
                .unwrap_or_else(|e| panic!("{origin}: database: {e}"));
            assert_eq!(db.id.to_string(), body["id"].as_str().unwrap(), "{origin}");
            let raw_sources = body["data_sources"].as_array().map_or(0, Vec::len);
            assert_eq!(db.data_sources.len(), raw_sources, "{origin}");
            assert_eq!(
                db.title_text(),
                body["title"][0]["plain_text"].as_str().unwrap_or(""),
                "{origin}"
            );
        }
        "data_source" => check_data_source(body, origin),
        "block" => check_block(body, origin),
        "list" => {
            let kind = body["type"].as_str().unwrap_or("");
            match kind {
                "block" => {
                    let l: ListResponse<Block> = serde_json::from_value(body.clone())
                        .unwrap_or_else(|e| panic!("{origin}: block list: {e}"));
                    assert_eq!(l.has_more, body["has_more"].as_bool().unwrap());
                    for b in body["results"].as_array().unwrap() {
                        check_block(b, origin);
                    }
                }
                "page_or_data_source" => {
                    let l: ListResponse<Page> = serde_json::from_value(body.clone())
                        .unwrap_or_else(|e| panic!("{origin}: query list: {e}"));
                    assert_eq!(l.results.len(), body["results"].as_array().unwrap().len());
                    for p in body["results"].as_array().unwrap() {
                        check_page(p, origin);
                    }
                }
                other => panic!("{origin}: unhandled list type {other:?}"),
            }
        }
        "error" => {
            let e: ErrorBody = serde_json::from_value(body.clone())
                .unwrap_or_else(|e| panic!("{origin}: error body: {e}"));
            assert_eq!(u64::from(e.status), body["status"].as_u64().unwrap());
            assert_eq!(e.code, body["code"].as_str().unwrap());
        }
        "user" => {
            serde_json::from_value::<User>(body.clone())
                .unwrap_or_else(|e| panic!("{origin}: user: {e}"));
        }
        other => panic!("{origin}: unhandled object {other:?}"),
    }
    object.to_owned()
}

fn check_page(body: &Value, origin: &str) {
    let page: Page =
        serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{origin}: page: {e}"));
    // The mirror stores what Notion returned: raw and re-serialized properties are identical.
    assert_eq!(page.raw_properties(), &body["properties"], "{origin}");
    let again = serde_json::to_value(&page).unwrap();
    assert_eq!(
        again["properties"], body["properties"],
        "{origin}: re-serialized properties"
    );
    let back: Page = serde_json::from_value(again).unwrap();
    assert_eq!(back, page, "{origin}: typed round trip");
    // Every typed value survives its own JSON form.
    for (name, v) in page.properties.iter() {
        let rt = PropertyValue::from_json(v.to_json()).unwrap();
        assert_eq!(&rt, v, "{origin}: property {name:?}");
        assert_eq!(
            v.type_name(),
            body["properties"][name]["type"].as_str().unwrap()
        );
    }
    let title_raw: String = body["properties"]
        .as_object()
        .unwrap()
        .values()
        .find(|p| p["type"] == "title")
        .map(|p| {
            p["title"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["plain_text"].as_str().unwrap())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(page.title(), title_raw, "{origin}");
    assert_eq!(page.in_trash, body["in_trash"].as_bool().unwrap_or(false));
}

fn check_data_source(body: &Value, origin: &str) {
    let ds: DataSource = serde_json::from_value(body.clone())
        .unwrap_or_else(|e| panic!("{origin}: data source: {e}"));
    let raw = body["properties"].as_object().unwrap();
    assert_eq!(ds.properties.len(), raw.len(), "{origin}");
    for (name, schema) in &ds.properties {
        assert_eq!(&schema.name, name);
        assert_eq!(schema.kind.type_name(), raw[name]["type"].as_str().unwrap());
        assert_eq!(schema.id, raw[name]["id"].as_str().unwrap());
    }
    assert_eq!(
        ds.database_id().map(|d| d.to_string()),
        body["parent"]["database_id"].as_str().map(str::to_owned),
        "{origin}"
    );
}

fn check_block(body: &Value, origin: &str) {
    let b: Block =
        serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{origin}: block: {e}"));
    assert_eq!(
        b.content.type_name(),
        body["type"].as_str().unwrap(),
        "{origin}"
    );
    assert_eq!(b.has_children, body["has_children"].as_bool().unwrap());
    assert_eq!(b.in_trash, body["in_trash"].as_bool().unwrap_or(false));
    let again: Block = serde_json::from_value(serde_json::to_value(&b).unwrap()).unwrap();
    assert_eq!(again, b, "{origin}: block round trip");
}

#[test]
fn every_recorded_api_response_deserializes() {
    let Some(dir) = fixtures_dir() else { return };
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for file in json_files(&dir.join("api")) {
        let doc = read_json(&file);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (i, interaction) in doc["interactions"].as_array().unwrap().iter().enumerate() {
            let origin = format!("{name}#{i} {}", interaction["request"]["uri"]);
            let kind = check_response(&interaction["response"]["body"], &origin);
            *seen.entry(kind).or_default() += 1;
        }
    }
    for file in json_files(&dir.join("errors")) {
        let kind = check_response(&read_json(&file), &file.display().to_string());
        *seen.entry(kind).or_default() += 1;
    }
    for kind in ["page", "database", "data_source", "block", "list", "error"] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} in fixtures: {seen:?}"
        );
    }
}

#[test]
fn recorded_errors_map_to_classes() {
    let Some(dir) = fixtures_dir() else { return };
    let doc = read_json(&dir.join("api/test_api_response_error.json"));
    let mut classes = Vec::new();
    for i in doc["interactions"].as_array().unwrap() {
        let body: ErrorBody = serde_json::from_value(i["response"]["body"].clone()).unwrap();
        let status = body.status;
        let e = notion_api::NotionError::from_response(status, Some(body), None);
        assert!(e.to_string().contains(e.request_id().unwrap()), "{e}");
        classes.push((status, e.class(), e.is_retryable()));
    }
    assert_eq!(
        classes,
        vec![
            (400, notion_api::ErrorClass::Validation, false),
            (401, notion_api::ErrorClass::Unauthorized, false)
        ]
    );
    let body: ErrorBody = serde_json::from_value(read_json(
        &dir.join("errors/notion-docs.query-data-source.503.json"),
    ))
    .unwrap();
    let e = notion_api::NotionError::from_response(body.status, Some(body), None);
    assert_eq!(e.class(), notion_api::ErrorClass::Transient);
    assert!(e.is_retryable());
}

#[test]
fn own_doc_shaped_page_and_schema_conform_too() {
    // Project-written samples (every property type) go through the same checks.
    check_page(
        &support::task_page(support::PAGE_ID, "Write report", "In Progress"),
        "task_page",
    );
    check_data_source(&support::task_data_source(), "task_data_source");
}

// ---------------------------------------------------------------------------
// A small JSON-schema subset checker for the OpenAPI document.

struct Spec {
    doc: Value,
}

impl Spec {
    fn load(dir: &Path) -> Spec {
        Spec {
            doc: read_json(&dir.join("openapi/notion-openapi.json")),
        }
    }

    fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        while let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let ptr = r.strip_prefix('#').expect("local $ref");
            schema = self
                .doc
                .pointer(ptr)
                .unwrap_or_else(|| panic!("dangling $ref {r}"));
        }
        schema
    }

    /// The operation for `method` and a concrete path, preferring literal segments.
    fn operation(&self, method: &str, path: &str) -> Option<(&str, &Value)> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut best: Option<(usize, &str, &Value)> = None;
        for (template, item) in self.doc["paths"].as_object().unwrap() {
            let t: Vec<&str> = template.trim_matches('/').split('/').collect();
            if t.len() != segs.len() {
                continue;
            }
            let mut params = 0;
            let ok = t.iter().zip(&segs).all(|(a, b)| {
                if a.starts_with('{') {
                    params += 1;
                    true
                } else {
                    a == b
                }
            });
            if !ok {
                continue;
            }
            if let Some(op) = item.get(method.to_lowercase())
                && best.is_none_or(|(p, _, _)| params < p)
            {
                best = Some((params, template.as_str(), op));
            }
        }
        best.map(|(_, t, op)| (t, op))
    }

    fn check(&self, schema: &Value, value: &Value, at: &str, errs: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if let Some(alts) = schema.get("oneOf").and_then(Value::as_array) {
            let passing = alts.iter().filter(|s| self.passes(s, value)).count();
            if passing != 1 {
                errs.push(format!("{at}: matches {passing} of oneOf"));
            }
        }
        if let Some(alts) = schema.get("anyOf").and_then(Value::as_array)
            && !alts.iter().any(|s| self.passes(s, value))
        {
            errs.push(format!("{at}: matches none of anyOf"));
        }
        if let Some(t) = schema.get("type") {
            let types: Vec<&str> = match t {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if !types.iter().any(|t| type_matches(t, value)) {
                errs.push(format!("{at}: expected {types:?}, got {value}"));
                return;
            }
        }
        if let Some(c) = schema.get("const")
            && c != value
        {
            errs.push(format!("{at}: expected const {c}, got {value}"));
        }
        if let Some(e) = schema.get("enum").and_then(Value::as_array)
            && !e.contains(value)
        {
            errs.push(format!("{at}: {value} not in enum {e:?}"));
        }
        if schema.get("format").and_then(Value::as_str) == Some("uuid")
            && let Some(s) = value.as_str()
            && !is_uuid(s)
        {
            errs.push(format!("{at}: {s:?} is not a uuid"));
        }
        if let Value::Object(obj) = value {
            let props = schema.get("properties").and_then(Value::as_object);
            for req in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let req = req.as_str().unwrap();
                if !obj.contains_key(req) {
                    errs.push(format!("{at}: missing required `{req}`"));
                }
            }
            for (k, v) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => self.check(s, v, &format!("{at}.{k}"), errs),
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            errs.push(format!("{at}: unexpected property `{k}`"));
                        }
                        Some(s @ Value::Object(_)) => self.check(s, v, &format!("{at}.{k}"), errs),
                        _ => {}
                    },
                }
            }
        }
        if let Value::Array(items) = value {
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                errs.push(format!("{at}: more than {max} items"));
            }
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    self.check(s, item, &format!("{at}[{i}]"), errs);
                }
            }
        }
    }

    fn passes(&self, schema: &Value, value: &Value) -> bool {
        let mut errs = Vec::new();
        self.check(schema, value, "$", &mut errs);
        errs.is_empty()
    }

    /// Validates one captured request against its operation; returns the
    /// violations (empty = conforms).
    fn validate_request(&self, req: &wiremock::Request) -> Vec<String> {
        let method = req.method.as_str();
        let path = req.url.path();
        let Some((template, op)) = self.operation(method, path) else {
            return vec![format!("{method} {path}: not in the spec")];
        };
        let mut errs = Vec::new();
        let params: Vec<&Value> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| self.resolve(p))
            .collect();
        // path parameters
        let t: Vec<&str> = template.trim_matches('/').split('/').collect();
        let s: Vec<&str> = path.trim_matches('/').split('/').collect();
        for (a, b) in t.iter().zip(&s) {
            if let Some(name) = a.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
                let p = params
                    .iter()
                    .find(|p| p["in"] == "path" && p["name"] == name);
                match p {
                    Some(p) => {
                        self.check(&p["schema"], &json!(b), &format!("path {name}"), &mut errs)
                    }
                    None => errs.push(format!("path parameter {name} not declared")),
                }
            }
        }
        // query parameters: declared, and of the declared type
        for (k, v) in req.url.query_pairs() {
            match params
                .iter()
                .find(|p| p["in"] == "query" && p["name"] == k.as_ref())
            {
                None => errs.push(format!("query parameter `{k}` not declared")),
                Some(p) => {
                    let schema = self.resolve(&p["schema"]);
                    let item = if schema["type"] == "array" {
                        &schema["items"]
                    } else {
                        schema
                    };
                    let value = if item["type"] == "integer" {
                        v.parse::<i64>().map(|n| json!(n)).unwrap_or(json!(v))
                    } else {
                        json!(v)
                    };
                    self.check(item, &value, &format!("query {k}"), &mut errs);
                }
            }
        }
        // headers: required ones present; a documented default version must be what we send
        for p in params.iter().filter(|p| p["in"] == "header") {
            let name = p["name"].as_str().unwrap();
            let got = req.headers.get(name).and_then(|v| v.to_str().ok());
            match (got, p["required"].as_bool().unwrap_or(false)) {
                (None, true) => errs.push(format!("required header {name} missing")),
                (Some(v), _) => {
                    if let Some(d) = self.resolve(&p["schema"])["default"].as_str()
                        && v != d
                    {
                        errs.push(format!("header {name}: sent {v}, spec documents {d}"));
                    }
                }
                (None, false) => {}
            }
        }
        // body
        let schema = op.pointer("/requestBody/content/application~1json/schema");
        let body_required =
            op.pointer("/requestBody/required").and_then(Value::as_bool) == Some(true);
        if req.body.is_empty() {
            if body_required {
                errs.push("request body required".to_owned());
            }
        } else {
            match (schema, serde_json::from_slice::<Value>(&req.body)) {
                (None, _) => errs.push(format!("{method} {template} takes no body")),
                (_, Err(e)) => errs.push(format!("body is not JSON: {e}")),
                (Some(s), Ok(body)) => self.check(s, &body, "$", &mut errs),
            }
        }
        errs
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    }
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

#[test]
fn checker_catches_violations() {
    // The checker itself must not pass everything.
    let Some(dir) = fixtures_dir() else { return };
    let spec = Spec::load(&dir);
    let op = spec.operation("PATCH", "/v1/pages/x").unwrap().1;
    let schema = op
        .pointer("/requestBody/content/application~1json/schema")
        .unwrap();
    let mut errs = Vec::new();
    spec.check(
        schema,
        &json!({"properties": [], "in_trash": "yes", "icon": {"emoji": 1, "x": 2}}),
        "$",
        &mut errs,
    );
    assert_eq!(errs.len(), 4, "{errs:?}");
    let sort = json!({"$ref": "#/components/schemas/sortObject"});
    assert!(!spec.passes(&sort, &json!({"property": "Due", "direction": "up"})));
    assert!(spec.passes(&sort, &json!({"property": "Due", "direction": "ascending"})));
    assert_eq!(
        spec.operation("GET", "/v1/users/me").unwrap().0,
        "/v1/users/me"
    );
}

#[tokio::test]
async fn requests_built_by_the_client_validate_against_openapi() {
    let Some(dir) = fixtures_dir() else { return };
    let spec = Spec::load(&dir);
    let server = MockServer::start().await;
    let page = support::task_page(support::PAGE_ID, "Write report", "In Progress");
    let block = json!({"object":"block","id":"153104cd-477e-80ec-a87d-f7ff0236d35c",
        "created_time":"2025-01-31T17:42:00.000Z","last_edited_time":"2025-01-31T17:42:00.000Z",
        "has_children":false,"in_trash":false,"type":"divider","divider":{}});
    let routes: Vec<(&str, &str, Value)> = vec![
        (
            "GET",
            r"^/v1/users/me$",
            json!({"object":"user","id":support::USER_ID,"type":"bot","bot":{},"name":"sync"}),
        ),
        (
            "GET",
            r"^/v1/databases/[^/]+$",
            json!({"object":"database","id":support::DB_ID,
            "parent":{"type":"workspace","workspace":true},"data_sources":[{"id":support::DS_ID,"name":"Tasks"}]}),
        ),
        (
            "GET",
            r"^/v1/data_sources/[^/]+$",
            support::task_data_source(),
        ),
        (
            "POST",
            r"^/v1/data_sources/[^/]+/query$",
            support::list(vec![page.clone()], None, "page_or_data_source"),
        ),
        ("GET", r"^/v1/pages/[^/]+$", page.clone()),
        ("PATCH", r"^/v1/pages/[^/]+$", page.clone()),
        (
            "GET",
            r"^/v1/blocks/[^/]+/children$",
            support::list(vec![block], None, "block"),
        ),
        (
            "GET",
            r"^/v1/pages/[^/]+/markdown$",
            json!({"object":"page_markdown","id":support::PAGE_ID,
            "markdown":"# hi","truncated":false,"unknown_block_ids":[]}),
        ),
    ];
    for (m, p, body) in routes {
        Mock::given(method(m))
            .and(path_regex(p))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
    }
    let client = support::client(&server.uri());
    let undashed: NotionId = support::PAGE_ID.replace('-', "").parse().unwrap();
    let ds: NotionId = support::DS_ID.parse().unwrap();

    client.users_me().await.unwrap();
    client
        .retrieve_database(support::DB_ID.parse().unwrap())
        .await
        .unwrap();
    client.retrieve_data_source(ds).await.unwrap();
    let q = QueryRequest::new()
        .with_filter(Filter::and(vec![
            Filter::status("Status").does_not_equal("Done"),
            Filter::or(vec![
                Filter::date("Due Date")
                    .before(chrono::NaiveDate::from_ymd_opt(2025, 2, 1).unwrap()),
                Filter::checkbox("Done").equals(false),
            ]),
        ]))
        .with_sort(Sort::property("Due Date", Direction::Ascending))
        .with_page_size(100)
        .with_start_cursor("cursor-1")
        .with_filter_properties(["title", "%5EOE%40"]);
    client.query_data_source(ds, &q).await.unwrap();
    client.retrieve_page(undashed).await.unwrap();
    client
        .update_page_properties(undashed, json!({"Status": {"status": {"name": "Overdue"}}}))
        .await
        .unwrap();
    client
        .block_children(undashed, Some("cursor-2"))
        .await
        .unwrap();
    client.page_markdown(undashed).await.unwrap();

    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 8);
    for req in &received {
        let errs = spec.validate_request(req);
        assert!(errs.is_empty(), "{} {}: {errs:?}", req.method, req.url);
        let auth = req.headers.get("authorization").unwrap().to_str().unwrap();
        assert_eq!(auth, format!("Bearer {}", support::TOKEN));
        assert!(req.headers.get("notion-version").is_some());
        // ids are sent dashed whatever form the caller used
        assert!(!req.url.path().contains(&support::PAGE_ID.replace('-', "")));
    }

    // The reconciler's query (timestamp filter + timestamp sort): the only
    // deviation is the spec subset's sortObject, which lists property sorts
    // only; Notion's docs also define `{"timestamp", "direction"}` sorts.
    let q = QueryRequest::new()
        .with_filter(
            Filter::last_edited_time()
                .on_or_after(chrono::DateTime::parse_from_rfc3339("2025-01-31T17:41:00Z").unwrap()),
        )
        .with_sort(Sort::last_edited_time(Direction::Ascending));
    client.query_data_source(ds, &q).await.unwrap();
    let received = server.received_requests().await.unwrap();
    let errs = spec.validate_request(received.last().unwrap());
    assert_eq!(
        errs,
        vec!["$.sorts[0]: missing required `property`".to_owned()]
    );
}
