//! The `/_sim/*` HTTP control API: no token, JSON in/out, mirrors `SimHandle`.

use serde_json::{Value, json};

use crate::helpers::{Api, Receiver, fast_config, sim};

struct Ctl {
    http: reqwest::Client,
    base: String,
}

impl Ctl {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
}

#[tokio::test]
async fn control_endpoints_mirror_the_rust_api() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let ctl = Ctl {
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        base: sim.base_url(),
    };
    let (s, info) = ctl.get("/_sim/info").await;
    assert_eq!(s, 200);
    assert_eq!(info["data_source_id"], sim.data_source_id());

    let (s, created) = ctl
        .post(
            "/_sim/pages",
            json!({"title": "From HTTP", "status": "In Progress", "due": "2026-04-01",
                   "body": [{"heading_1": "Plan"}, {"bulleted": ["step", [{"to_do": ["check", true]}]]}, "divider",
                            {"code": {"language": "rust", "text": "fn main() {}"}}]}),
        )
        .await;
    assert_eq!(s, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, page) = ctl.get(&format!("/_sim/pages/{id}")).await;
    assert_eq!(page["status"], "In Progress");
    assert_eq!(
        page["markdown"],
        "# Plan\n- step\n\t- [x] check\n---\n```rust\nfn main() {}\n```"
    );

    let (s, _) = ctl
        .call(
            reqwest::Method::PATCH,
            &format!("/_sim/pages/{id}"),
            Some(json!({"properties": {"Status": {"status": {"name": "Done"}}, "Blocked": {"checkbox": true}}})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(sim.page(&id).unwrap().status.as_deref(), Some("Done"));
    let (s, _) = ctl
        .post(
            &format!("/_sim/pages/{id}/body"),
            json!({"append_paragraph": "more"}),
        )
        .await;
    assert_eq!(s, 200);
    assert!(sim.page(&id).unwrap().markdown.ends_with("\nmore"));
    for action in ["trash", "restore", "unshare", "share"] {
        assert_eq!(
            ctl.post(&format!("/_sim/pages/{id}/{action}"), json!({}))
                .await
                .0,
            200
        );
    }
    let (s, err) = ctl
        .post(
            "/_sim/pages/00000000-0000-4000-8000-000000000000/trash",
            json!({}),
        )
        .await;
    assert_eq!(s, 404);
    assert!(err["error"].is_string());

    assert_eq!(
        ctl.post(
            "/_sim/schema/rename",
            json!({"old": "Notes", "new": "Remarks"})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        ctl.post(
            "/_sim/schema/status_options",
            json!({"name": "Waiting", "group": "To-do"})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        ctl.call(
            reqwest::Method::DELETE,
            "/_sim/schema/status_options/Waiting",
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        ctl.post("/_sim/schema/rename", json!({"old": "Nope", "new": "X"}))
            .await
            .0,
        400
    );

    let (_, clock) = ctl
        .post("/_sim/clock", json!({"now": "2031-01-01T00:00:00Z"}))
        .await;
    assert!(
        clock["now"]
            .as_str()
            .unwrap()
            .starts_with("2031-01-01T00:00")
    );
    let (_, clock) = ctl
        .post("/_sim/clock", json!({"advance_ms": 86_400_000}))
        .await;
    assert!(clock["now"].as_str().unwrap().starts_with("2031-01-02"));

    assert_eq!(
        ctl.post("/_sim/force_errors", json!({"status": 503, "count": 1}))
            .await
            .0,
        200
    );
    assert_eq!(api.get("/v1/users/me").await.status, 503);
    assert_eq!(
        ctl.post(
            "/_sim/faults",
            json!({"error_rate": 1.0, "error_statuses": [504]})
        )
        .await
        .0,
        200
    );
    assert_eq!(api.get("/v1/users/me").await.status, 504);
    assert_eq!(ctl.post("/_sim/faults", json!({})).await.0, 200);
    assert_eq!(
        ctl.post("/_sim/rate_limit", json!({"per_second": 1.0, "burst": 1}))
            .await
            .0,
        200
    );
    assert_eq!(api.get("/v1/users/me").await.status, 200);
    assert_eq!(api.get("/v1/users/me").await.status, 429);
    assert_eq!(ctl.post("/_sim/rate_limit", Value::Null).await.0, 200);
    assert_eq!(api.get("/v1/users/me").await.status, 200);
    assert_eq!(
        ctl.post("/_sim/visibility", json!({"delay_ms": 0})).await.0,
        200
    );
    assert_eq!(
        ctl.post(
            "/_sim/markdown",
            json!({"enabled": false, "block_limit": 10})
        )
        .await
        .0,
        200
    );
    let md = api
        .send(
            reqwest::Method::GET,
            &format!("/v1/pages/{id}/markdown"),
            Some("2026-03-11"),
            None,
        )
        .await;
    assert_eq!(md.status, 404);

    let rx = Receiver::start().await;
    let (s, sub) = ctl
        .post("/_sim/webhooks/subscribe", json!({"url": rx.url}))
        .await;
    assert_eq!(s, 200);
    assert!(
        sub["verification_token"]
            .as_str()
            .unwrap()
            .starts_with("secret_")
    );
    assert_eq!(
        ctl.post(
            "/_sim/webhooks/config",
            json!({"aggregate_window_ms": 10, "retry_base_ms": 5})
        )
        .await
        .0,
        200
    );
    let (_, touched) = ctl
        .post("/_sim/random_edits", json!({"seed": 3, "n": 5}))
        .await;
    assert_eq!(touched["touched"].as_array().unwrap().len(), 5);
    let (_, idle) = ctl.post("/_sim/webhooks/idle", json!({})).await;
    assert_eq!(idle["pending"], 0);
    assert!(idle["deliveries_ok"].as_u64().unwrap() >= 5);
    assert_eq!(
        ctl.post("/_sim/silent", json!({"silent": true})).await.0,
        200
    );

    let (_, log) = ctl.get("/_sim/log").await;
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .all(|r| r["path"].as_str().unwrap().starts_with("/v1/"))
    );
    assert!(log[0]["latency_ms"].is_u64());
    let (_, stats) = ctl.get("/_sim/stats").await;
    assert!(
        stats["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["route"] == "/v1/users/me" && r["status"] == 429)
    );
    assert_eq!(
        ctl.call(reqwest::Method::DELETE, "/_sim/log", None).await.0,
        200
    );
    assert!(sim.request_log().is_empty());
    let (_, pages) = ctl.get("/_sim/pages").await;
    assert_eq!(pages.as_array().unwrap().len(), sim.pages().len());
    assert_eq!(
        ctl.post("/_sim/pages", json!({"title": "bad", "status": "Nope"}))
            .await
            .0,
        400
    );
}
