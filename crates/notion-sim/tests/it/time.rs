//! Minute truncation, the controllable clock, the `Date` header and query visibility delay.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use notion_sim::{NewTask, SimConfig};
use serde_json::json;

use crate::helpers::{Api, fast_config, sim};

#[tokio::test]
async fn timestamps_are_truncated_to_the_minute_and_follow_the_sim_clock() {
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 9, 15, 42).unwrap();
    let sim = sim(SimConfig {
        start_time: Some(start),
        ..fast_config()
    })
    .await;
    let api = Api::new(&sim);
    let id = sim.create_task(NewTask {
        title: "Truncated".into(),
        ..Default::default()
    });
    let page = api.get(&format!("/v1/pages/{id}")).await;
    assert_eq!(page.body["created_time"], "2026-03-01T09:15:00.000Z");
    assert_eq!(page.body["last_edited_time"], "2026-03-01T09:15:00.000Z");

    // Two edits in the same minute share one timestamp.
    sim.advance(Duration::from_secs(10));
    sim.set_status(&id, "In Progress").unwrap();
    let first = sim.page(&id).unwrap().last_edited_time;
    sim.set_status(&id, "Done").unwrap();
    assert_eq!(sim.page(&id).unwrap().last_edited_time, first);
    assert_eq!(first.to_rfc3339(), "2026-03-01T09:15:00+00:00");

    sim.advance(Duration::from_secs(3600));
    sim.set_title(&id, "Later").unwrap();
    let page = api.get(&format!("/v1/pages/{id}")).await;
    assert_eq!(page.body["last_edited_time"], "2026-03-01T10:15:00.000Z");
    assert_eq!(page.body["created_time"], "2026-03-01T09:15:00.000Z");

    let blocks = api
        .get(&format!("/v1/blocks/{}/children", sim.pages()[2].id))
        .await;
    for b in blocks.body["results"].as_array().unwrap() {
        assert!(
            b["last_edited_time"]
                .as_str()
                .unwrap()
                .ends_with(":00.000Z")
        );
    }
    for p in sim.pages() {
        assert_eq!(p.created_time.timestamp() % 60, 0);
        assert_eq!(p.last_edited_time.timestamp() % 60, 0);
    }
}

#[tokio::test]
async fn date_header_comes_from_the_sim_clock() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let target = Utc.with_ymd_and_hms(2030, 6, 15, 8, 0, 0).unwrap();
    sim.set_now(target);
    let res = api.get("/v1/users/me").await;
    let date = res.headers["date"].to_str().unwrap();
    let parsed = DateTime::parse_from_rfc2822(date)
        .unwrap()
        .with_timezone(&Utc);
    assert!(
        parsed >= target && parsed < target + chrono::TimeDelta::seconds(5),
        "{date}"
    );
    assert!(date.ends_with(" GMT"));
    let err = api.get("/v1/nowhere").await;
    assert!(err.headers.contains_key("date"));
    assert!(sim.now() >= target);
}

#[tokio::test]
async fn queries_see_edits_only_after_the_visibility_delay() {
    // Long enough that "not yet visible" cannot flake; shortened below to watch it expire.
    let sim = sim(SimConfig {
        visibility_delay: Duration::from_secs(3600),
        ..fast_config()
    })
    .await;
    let api = Api::new(&sim);
    let ds = sim.data_source_id();
    let done = json!({"filter": {"property": "Status", "status": {"equals": "Done"}}});
    let before = api.query_ids(&ds, &done).await;
    // Generated pages exist "since before the start" and are visible at once.
    assert_eq!(api.query_ids(&ds, &json!({})).await.len(), 20);

    let id = sim.create_task(NewTask {
        title: "Fresh".into(),
        status: Some("Done".into()),
        ..Default::default()
    });
    let existing = sim
        .pages()
        .into_iter()
        .find(|p| p.status.as_deref() == Some("To Do"))
        .unwrap()
        .id;
    sim.set_status(&existing, "Done").unwrap();
    let committed = Instant::now();

    // GET sees the latest version immediately; queries still see the old world.
    assert_eq!(api.get(&format!("/v1/pages/{id}")).await.status, 200);
    let page = api.get(&format!("/v1/pages/{existing}")).await;
    assert_eq!(page.body["properties"]["Status"]["status"]["name"], "Done");
    assert_eq!(api.query_ids(&ds, &done).await, before);
    let all = api.query_ids(&ds, &json!({})).await;
    assert!(!all.contains(&id) && all.contains(&existing));

    let delay = Duration::from_millis(300);
    sim.set_visibility_delay(delay);
    tokio::time::sleep(delay).await;
    assert!(committed.elapsed() >= delay);
    let later = api.query_ids(&ds, &done).await;
    assert!(later.contains(&id));
    assert!(later.contains(&existing));
    assert_eq!(later.len(), before.len() + 2);
}
