//! Rate limits (429 then success after Retry-After), forced errors, fault injection, the
//! request log.

use std::time::{Duration, Instant};

use notion_sim::{Faults, RateLimit, SimConfig};
use serde_json::json;

use crate::helpers::{Api, assert_error, fast_config, sim};

fn retry_after(res: &crate::helpers::Res) -> u64 {
    res.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn integration_limit_answers_429_then_succeeds_after_retry_after() {
    let sim = sim(SimConfig {
        rate_limit: Some(RateLimit {
            per_second: 1.0,
            burst: 2,
        }),
        ..fast_config()
    })
    .await;
    let api = Api::new(&sim);
    assert_eq!(api.get("/v1/users/me").await.status, 200);
    assert_eq!(api.get("/v1/users/me").await.status, 200);
    let limited = api.get("/v1/users/me").await;
    assert_error(&limited, 429, "rate_limited");
    assert_eq!(
        limited.body["additional_data"]["rate_limit_reason"],
        "integration_rate_limit"
    );
    let wait = retry_after(&limited);
    assert!(wait >= 1);
    let slept = Instant::now();
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert!(slept.elapsed() >= Duration::from_secs(wait));
    assert_eq!(api.get("/v1/users/me").await.status, 200);
    assert_eq!(sim.count_requests("GET", "/v1/users/me"), 4);
}

#[tokio::test]
async fn workspace_limit_has_longer_retry_after_and_a_reason() {
    let sim = sim(SimConfig {
        workspace_limit: Some(RateLimit {
            per_second: 0.25,
            burst: 1,
        }),
        ..fast_config()
    })
    .await;
    let api = Api::new(&sim);
    assert_eq!(api.get("/v1/users/me").await.status, 200);
    let limited = api.get("/v1/users/me").await;
    assert_error(&limited, 429, "rate_limited");
    assert_eq!(
        limited.body["additional_data"]["rate_limit_reason"],
        "workspace_rate_limit"
    );
    assert_eq!(retry_after(&limited), 4);
    sim.set_workspace_limit(None);
    assert_eq!(api.get("/v1/users/me").await.status, 200);
}

#[tokio::test]
async fn integrations_of_one_workspace_have_their_own_budgets_and_share_the_workspace_limit() {
    let sim = sim(SimConfig {
        extra_tokens: vec!["secret_second_integration".into()],
        rate_limit: Some(RateLimit {
            per_second: 0.5,
            burst: 1,
        }),
        ..fast_config()
    })
    .await;
    let first = Api::new(&sim);
    let second = Api {
        token: sim.integration_token(1).unwrap().to_owned(),
        ..Api::new(&sim)
    };
    assert_eq!(first.get("/v1/users/me").await.status, 200);
    assert_error(&first.get("/v1/users/me").await, 429, "rate_limited");
    // The first integration's budget is spent; the second's is its own.
    assert_eq!(second.get("/v1/users/me").await.status, 200);
    let unknown = Api {
        token: "secret_nobody".into(),
        ..Api::new(&sim)
    };
    assert_error(&unknown.get("/v1/users/me").await, 401, "unauthorized");
    let log = sim.request_log();
    assert_eq!(
        log.iter().map(|r| r.integration).collect::<Vec<_>>(),
        vec![Some(0), Some(0), Some(1), None]
    );

    // Forced errors for one integration leave the other alone.
    sim.set_rate_limit(None);
    sim.force_errors_for(1, 429, 1, Some(1));
    assert_eq!(first.get("/v1/users/me").await.status, 200);
    let limited = second.get("/v1/users/me").await;
    assert_error(&limited, 429, "rate_limited");
    assert_eq!(
        limited.body["additional_data"]["rate_limit_reason"],
        "integration_rate_limit"
    );

    // The workspace limit is one bucket for both.
    sim.set_workspace_limit(Some(RateLimit {
        per_second: 0.1,
        burst: 1,
    }));
    assert_eq!(first.get("/v1/users/me").await.status, 200);
    let limited = second.get("/v1/users/me").await;
    assert_eq!(
        limited.body["additional_data"]["rate_limit_reason"],
        "workspace_rate_limit"
    );
}

#[tokio::test]
async fn forced_errors_answer_in_order_then_recover() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    sim.force_errors(529, 2, Some(5));
    sim.force_errors(429, 1, None);
    sim.force_errors(500, 1, None);
    sim.force_errors(502, 1, None);
    for _ in 0..2 {
        let res = api.get("/v1/users/me").await;
        assert_error(&res, 529, "service_overload");
        assert_eq!(retry_after(&res), 5);
    }
    let res = api.get("/v1/users/me").await;
    assert_error(&res, 429, "rate_limited");
    assert_eq!(retry_after(&res), 1);
    assert_error(&api.get("/v1/users/me").await, 500, "internal_server_error");
    let gateway = api.get("/v1/users/me").await;
    assert_eq!(gateway.status, 502);
    assert!(gateway.body.is_null(), "502 comes from the edge as HTML");
    assert_eq!(api.get("/v1/users/me").await.status, 200);
}

#[tokio::test]
async fn random_errors_latency_drops_and_hangs() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);

    sim.set_faults(Faults {
        error_rate: 1.0,
        error_statuses: vec![503],
        ..Faults::default()
    });
    assert_error(&api.get("/v1/users/me").await, 503, "service_unavailable");

    sim.set_faults(Faults {
        latency: Duration::from_millis(150),
        ..Faults::default()
    });
    let t = Instant::now();
    assert_eq!(api.get("/v1/users/me").await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));

    sim.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    let dropped = api
        .http
        .get(format!("{}/v1/users/me", api.base))
        .bearer_auth(&api.token)
        .header("Notion-Version", "2025-09-03")
        .send()
        .await;
    let failed = match dropped {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(
        failed,
        "a dropped connection must not yield a complete response"
    );

    sim.set_faults(Faults {
        hang_rate: 1.0,
        hang_for: Duration::from_secs(30),
        ..Faults::default()
    });
    let hung = api
        .http
        .get(format!("{}/v1/users/me", api.base))
        .bearer_auth(&api.token)
        .header("Notion-Version", "2025-09-03")
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(hung.unwrap_err().is_timeout());

    sim.set_faults(Faults::default());
    assert_eq!(api.get("/v1/users/me").await.status, 200);
    let statuses: Vec<u16> = sim.request_log().iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..3], &[503, 200, 0]);
}

#[tokio::test]
async fn request_log_records_routes_versions_and_statuses() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let page = sim.pages()[0].id.clone();
    api.get(&format!("/v1/pages/{page}")).await;
    api.get(&format!("/v1/pages/{page}")).await;
    api.query(&sim.data_source_id(), &json!({})).await;
    api.get("/v1/nowhere").await;
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/_sim/info", sim.base_url()))
        .send()
        .await
        .unwrap();
    let log = sim.request_log();
    assert_eq!(log.len(), 4, "control requests are not logged");
    assert_eq!(log[0].route, "/v1/pages/{id}");
    assert_eq!(log[0].path, format!("/v1/pages/{page}"));
    assert_eq!(log[0].method, "GET");
    assert_eq!(log[0].status, 200);
    assert_eq!(log[0].notion_version.as_deref(), Some("2025-09-03"));
    assert_eq!(log[2].route, "/v1/data_sources/{id}/query");
    assert_eq!(log[3].route, "unmatched");
    assert_eq!(log[3].status, 400);
    assert_eq!(sim.count_requests("GET", "/v1/pages/{id}"), 2);
    assert_eq!(sim.count_requests("POST", "/v1/data_sources/{id}/query"), 1);
    sim.clear_request_log();
    assert_eq!(sim.count_requests("GET", "/v1/pages/{id}"), 0);
    let counts = sim.route_counts();
    assert!(
        counts
            .iter()
            .any(|c| c.route == "/v1/pages/{id}" && c.status == 200 && c.count == 2)
    );
}
