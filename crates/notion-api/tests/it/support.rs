//! Shared test helpers: fixture lookup (with the loud skip), a wiremock-backed client, sample JSON.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notion_api::{ClientConfig, NotionClient, Pacer, PacerConfig};
use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

pub const TOKEN: &str = "ntn_test_token_never_logged_0123456789";

/// `<repo>/../shared/fixtures`, or `NOTION_FIXTURES_DIR`. `None` (after
/// printing a loud SKIP line) when absent.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("NOTION_FIXTURES_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        // Written to the stderr handle directly: libtest captures `eprintln!`
        // of passing tests, and a skip must be seen.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIP: fixtures not found at {} (set NOTION_FIXTURES_DIR to run the conformance tests)",
            dir.display()
        );
        None
    }
}

/// Every `*.json` file in `dir`, sorted.
pub fn json_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    v
}

pub fn read_json(p: &std::path::Path) -> Value {
    let text =
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", p.display()))
}

/// A fast pacer that never slows a test down.
pub fn fast_pacer() -> Arc<Pacer> {
    Pacer::new(PacerConfig {
        requests_per_second: 1000.0,
        burst: 50,
        bulk_floor: 0.1,
    })
}

pub fn config(base_url: &str) -> ClientConfig {
    let mut c = ClientConfig::new(TOKEN);
    c.base_url = base_url.to_owned();
    c.timeout = Duration::from_secs(5);
    c.max_attempts = 4;
    c.backoff_base = Duration::from_millis(5);
    c.backoff_max = Duration::from_millis(20);
    c
}

pub fn client(base_url: &str) -> NotionClient {
    NotionClient::new(config(base_url), fast_pacer()).expect("client")
}

pub const PAGE_ID: &str = "59833787-2cf9-4fdf-8782-e53db20768a5";
pub const DS_ID: &str = "1a44be12-0953-4631-b498-9e5817518db8";
pub const DB_ID: &str = "daf41515-aa5f-4d14-97a8-9193425ec491";
pub const USER_ID: &str = "7775f3a3-893f-43fa-b625-460c61094c78";

/// A task page shaped like Notion's documented page object, with one
/// property of every documented type.
pub fn task_page(id: &str, title: &str, status: &str) -> Value {
    let ann = json!({"bold":false,"italic":false,"strikethrough":false,"underline":false,"code":false,"color":"default"});
    json!({
        "object": "page",
        "id": id,
        "created_time": "2025-01-10T09:00:00.000Z",
        "last_edited_time": "2025-01-31T17:42:00.000Z",
        "created_by": {"object": "user", "id": USER_ID},
        "last_edited_by": {"object": "user", "id": USER_ID},
        "cover": null,
        "icon": {"type": "emoji", "emoji": "✅"},
        "parent": {"type": "data_source_id", "data_source_id": DS_ID, "database_id": DB_ID},
        "in_trash": false,
        "archived": false,
        "is_locked": false,
        "properties": {
            "Name": {"id": "title", "type": "title", "title": [
                {"type":"text","text":{"content": title,"link":null},"annotations":ann,"plain_text": title,"href":null}
            ]},
            "Status": {"id": "%5EOE%40", "type": "status", "status": {"id": "s1", "name": status, "color": "blue"}},
            "Due Date": {"id": "M%3BBw", "type": "date", "date": {"start": "2025-01-30", "end": null, "time_zone": null}},
            "Notes": {"id": "Bb%7Dd", "type": "rich_text", "rich_text": [
                {"type":"text","text":{"content":"see ","link":null},"annotations":ann,"plain_text":"see ","href":null},
                {"type":"text","text":{"content":"docs","link":{"url":"https://developers.notion.com"}},"annotations":ann,"plain_text":"docs","href":"https://developers.notion.com"}
            ]},
            "Estimate": {"id": "est", "type": "number", "number": 2.5},
            "Priority": {"id": "pri", "type": "select", "select": {"id": "p1", "name": "High", "color": "red"}},
            "Tags": {"id": "tag", "type": "multi_select", "multi_select": [
                {"id": "t1", "name": "backend", "color": "gray"}, {"id": "t2", "name": "infra", "color": "green"}
            ]},
            "Owner": {"id": "own", "type": "people", "people": [
                {"object": "user", "id": USER_ID, "name": "Ada", "avatar_url": null, "type": "person", "person": {"email": "ada@example.com"}}
            ]},
            "Spec": {"id": "spc", "type": "files", "files": [
                {"name": "spec.pdf", "type": "external", "external": {"url": "https://example.com/spec.pdf"}},
                {"name": "shot.png", "type": "file", "file": {"url": "https://s3.example.com/shot.png", "expiry_time": "2025-02-01T10:00:00.000Z"}}
            ]},
            "Done": {"id": "dn", "type": "checkbox", "checkbox": false},
            "Link": {"id": "lnk", "type": "url", "url": "https://example.com"},
            "Contact": {"id": "eml", "type": "email", "email": "ops@example.com"},
            "Phone": {"id": "phn", "type": "phone_number", "phone_number": "+1 555 0100"},
            "Days Left": {"id": "frm", "type": "formula", "formula": {"type": "number", "number": -1}},
            "Blocked By": {"id": "rel", "type": "relation", "relation": [{"id": "0ef104cd-477e-80e1-8571-cfd10e92339a"}], "has_more": false},
            "Total": {"id": "rol", "type": "rollup", "rollup": {"type": "number", "number": 3, "function": "count"}},
            "Created": {"id": "crt", "type": "created_time", "created_time": "2025-01-10T09:00:00.000Z"},
            "Creator": {"id": "crb", "type": "created_by", "created_by": {"object": "user", "id": USER_ID}},
            "Edited": {"id": "let", "type": "last_edited_time", "last_edited_time": "2025-01-31T17:42:00.000Z"},
            "Editor": {"id": "leb", "type": "last_edited_by", "last_edited_by": {"object": "user", "id": USER_ID}},
            "Task ID": {"id": "uid", "type": "unique_id", "unique_id": {"number": 42, "prefix": "TASK"}},
            "Verified": {"id": "ver", "type": "verification", "verification": {"state": "unverified", "verified_by": null, "date": null}},
            "Start": {"id": "btn", "type": "button", "button": {}},
            "Where": {"id": "plc", "type": "place", "place": {"lat": 48.85, "lon": 2.35, "name": "Paris"}}
        },
        "url": format!("https://www.notion.so/Task-{}", id.replace('-', "")),
        "public_url": null
    })
}

/// A data source schema with a status property and its groups.
pub fn task_data_source() -> Value {
    json!({
        "object": "data_source",
        "id": DS_ID,
        "title": [{"type":"text","text":{"content":"Tasks","link":null},"plain_text":"Tasks","href":null}],
        "description": [],
        "parent": {"type": "database_id", "database_id": DB_ID},
        "database_parent": {"type": "workspace", "workspace": true},
        "created_time": "2025-01-01T00:00:00.000Z",
        "last_edited_time": "2025-01-31T17:42:00.000Z",
        "in_trash": false,
        "archived": false,
        "is_inline": false,
        "url": "https://www.notion.so/tasks",
        "public_url": null,
        "properties": {
            "Name": {"id": "title", "name": "Name", "type": "title", "title": {}},
            "Status": {"id": "%5EOE%40", "name": "Status", "type": "status", "status": {
                "options": [
                    {"id": "s0", "name": "To Do", "color": "default"},
                    {"id": "s1", "name": "In Progress", "color": "blue"},
                    {"id": "s2", "name": "Done", "color": "green"},
                    {"id": "s3", "name": "Overdue", "color": "red"}
                ],
                "groups": [
                    {"id": "g0", "name": "To-do", "color": "gray", "option_ids": ["s0"]},
                    {"id": "g1", "name": "In progress", "color": "blue", "option_ids": ["s1", "s3"]},
                    {"id": "g2", "name": "Complete", "color": "green", "option_ids": ["s2"]}
                ]
            }},
            "Due Date": {"id": "M%3BBw", "name": "Due Date", "type": "date", "date": {}},
            "Priority": {"id": "pri", "name": "Priority", "type": "select", "select": {"options": [
                {"id": "p1", "name": "High", "color": "red"}
            ]}},
            "Where": {"id": "plc", "name": "Where", "type": "place", "place": {}}
        }
    })
}

pub fn list(results: Vec<Value>, next_cursor: Option<&str>, kind: &str) -> Value {
    json!({
        "object": "list",
        "results": results,
        "next_cursor": next_cursor,
        "has_more": next_cursor.is_some(),
        "type": kind,
        kind: {}
    })
}

pub fn error_body(status: u16, code: &str, message: &str) -> Value {
    json!({"object": "error", "status": status, "code": code, "message": message,
           "request_id": "a1b2c3d4-0000-4000-8000-000000000000"})
}

/// A wiremock responder that records when each request arrived and then
/// answers from a fixed list (the last answer repeats).
#[derive(Clone)]
pub struct Recorder {
    pub arrivals: Arc<Mutex<Vec<std::time::Instant>>>,
    answers: Arc<Vec<ResponseTemplate>>,
}

impl Recorder {
    pub fn new(answers: Vec<ResponseTemplate>) -> Self {
        Self {
            arrivals: Arc::default(),
            answers: Arc::new(answers),
        }
    }
    pub fn times(&self) -> Vec<std::time::Instant> {
        self.arrivals.lock().unwrap().clone()
    }
}

impl Respond for Recorder {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let mut a = self.arrivals.lock().unwrap();
        a.push(std::time::Instant::now());
        let i = (a.len() - 1).min(self.answers.len() - 1);
        self.answers[i].clone()
    }
}
