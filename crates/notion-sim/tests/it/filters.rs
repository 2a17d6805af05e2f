//! Every filter operator, compound filters and timestamp filters, through real queries.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::TimeZone;
use notion_sim::{NewTask, SimConfig, SimHandle};
use serde_json::{Value, json};

use crate::helpers::{Api, fast_config, sim};

struct World {
    sim: SimHandle,
    api: Api,
    titles: HashMap<String, &'static str>,
}

impl World {
    /// Four tasks with known values; A and B created at 12:00, C and D at 14:00.
    async fn new() -> Self {
        let sim = sim(SimConfig {
            pages: 0,
            start_time: Some(chrono::Utc.with_ymd_and_hms(2026, 1, 11, 12, 0, 0).unwrap()),
            ..fast_config()
        })
        .await;
        let person = sim.person_user_id();
        let mut titles = HashMap::new();
        let mut make = |sim: &SimHandle,
                        key: &'static str,
                        title: &str,
                        status: &str,
                        due: Option<&str>,
                        props: Vec<(&str, Value)>| {
            let id = sim.create_task(NewTask {
                title: title.into(),
                status: Some(status.into()),
                due: due.map(str::to_owned),
                ..Default::default()
            });
            for (name, value) in props {
                sim.set_property(&id, name, value).unwrap();
            }
            titles.insert(id, key);
        };
        make(
            &sim,
            "A",
            "Alpha report",
            "To Do",
            Some("2026-01-10"),
            vec![
                ("Priority", json!({"select": {"name": "High"}})),
                (
                    "Tags",
                    json!({"multi_select": [{"name": "Backend"}, {"name": "Bug"}]}),
                ),
                (
                    "Notes",
                    json!({"rich_text": [{"text": {"content": "urgent fix"}}]}),
                ),
                ("Estimate", json!({"number": 3})),
                ("Blocked", json!({"checkbox": true})),
                ("Assignee", json!({"people": [{"id": person}]})),
            ],
        );
        make(
            &sim,
            "B",
            "Beta launch",
            "In Progress",
            Some("2026-01-15T10:00:00Z"),
            vec![
                ("Priority", json!({"select": {"name": "Low"}})),
                ("Tags", json!({"multi_select": [{"name": "Docs"}]})),
                ("Estimate", json!({"number": 8})),
            ],
        );
        sim.advance(Duration::from_secs(2 * 3600));
        make(&sim, "C", "gamma cleanup", "Done", None, vec![]);
        make(
            &sim,
            "D",
            "Delta alpha",
            "Overdue",
            Some("2026-01-12"),
            vec![
                ("Priority", json!({"select": {"name": "Medium"}})),
                ("Tags", json!({"multi_select": [{"name": "Backend"}]})),
                (
                    "Notes",
                    json!({"rich_text": [{"text": {"content": "Alpha beta"}}]}),
                ),
                ("Estimate", json!({"number": 1})),
            ],
        );
        let api = Api::new(&sim);
        Self { sim, api, titles }
    }

    async fn check(&self, filter: Value, expected: &str) {
        let ids = self
            .api
            .query_ids(&self.sim.data_source_id(), &json!({"filter": filter}))
            .await;
        let got: BTreeSet<&str> = ids.iter().map(|id| self.titles[id]).collect();
        let want: BTreeSet<&str> = expected.split_whitespace().collect();
        assert_eq!(got, want, "filter {filter}");
    }
}

fn prop(name: &str, kind: &str, cond: Value) -> Value {
    json!({"property": name, kind: cond})
}

#[tokio::test]
async fn text_filters() {
    let w = World::new().await;
    let cases = [
        (prop("Name", "title", json!({"equals": "Beta launch"})), "B"),
        (prop("Name", "title", json!({"equals": "beta launch"})), ""),
        (
            prop("Name", "title", json!({"does_not_equal": "Beta launch"})),
            "A C D",
        ),
        (prop("Name", "title", json!({"contains": "ALPHA"})), "A D"),
        (
            prop("Name", "title", json!({"does_not_contain": "alpha"})),
            "B C",
        ),
        (prop("Name", "title", json!({"starts_with": "gamma"})), "C"),
        (prop("Name", "title", json!({"ends_with": "launch"})), "B"),
        (
            prop("Name", "rich_text", json!({"contains": "report"})),
            "A",
        ),
        (prop("Notes", "rich_text", json!({"is_empty": true})), "B C"),
        (
            prop("Notes", "rich_text", json!({"is_not_empty": true})),
            "A D",
        ),
        (prop("Notes", "rich_text", json!({"contains": "beta"})), "D"),
        (prop("title", "title", json!({"starts_with": "Delta"})), "D"),
    ];
    for (f, want) in cases {
        w.check(f, want).await;
    }
}

#[tokio::test]
async fn status_select_and_multi_select_filters() {
    let w = World::new().await;
    let cases = [
        (prop("Status", "status", json!({"equals": "Done"})), "C"),
        (
            prop("Status", "status", json!({"does_not_equal": "Done"})),
            "A B D",
        ),
        (prop("Status", "status", json!({"is_empty": true})), ""),
        (
            prop("Status", "status", json!({"is_not_empty": true})),
            "A B C D",
        ),
        (prop("Priority", "select", json!({"equals": "High"})), "A"),
        (
            prop("Priority", "select", json!({"does_not_equal": "High"})),
            "B C D",
        ),
        (prop("Priority", "select", json!({"is_empty": true})), "C"),
        (
            prop("Priority", "select", json!({"is_not_empty": true})),
            "A B D",
        ),
        (
            prop("Tags", "multi_select", json!({"contains": "Backend"})),
            "A D",
        ),
        (
            prop(
                "Tags",
                "multi_select",
                json!({"does_not_contain": "Backend"}),
            ),
            "B C",
        ),
        (prop("Tags", "multi_select", json!({"is_empty": true})), "C"),
        (
            prop("Tags", "multi_select", json!({"is_not_empty": true})),
            "A B D",
        ),
    ];
    for (f, want) in cases {
        w.check(f, want).await;
    }
}

#[tokio::test]
async fn date_filters_compare_dates_or_instants() {
    let w = World::new().await;
    let d = |cond: Value| prop("Due Date", "date", cond);
    let cases = [
        (d(json!({"equals": "2026-01-10"})), "A"),
        (d(json!({"before": "2026-01-12"})), "A"),
        (d(json!({"after": "2026-01-12"})), "B"),
        (d(json!({"on_or_before": "2026-01-12"})), "A D"),
        (d(json!({"on_or_after": "2026-01-12"})), "B D"),
        (d(json!({"is_empty": true})), "C"),
        (d(json!({"is_not_empty": true})), "A B D"),
        // B is 10:00 UTC on the 15th: a date-only value means midnight UTC.
        (d(json!({"before": "2026-01-15"})), "A D"),
        (d(json!({"equals": "2026-01-15"})), ""),
        (d(json!({"on_or_after": "2026-01-15T10:00:00Z"})), "B"),
        (d(json!({"after": "2026-01-15T10:00:00Z"})), ""),
        (d(json!({"equals": "2026-01-15T12:00:00+02:00"})), "B"),
        // Relative to the sim clock (now 2026-01-11T14:00Z).
        (d(json!({"past_week": {}})), "A"),
        (d(json!({"next_week": {}})), "B D"),
    ];
    for (f, want) in cases {
        w.check(f, want).await;
    }
}

#[tokio::test]
async fn checkbox_number_and_people_filters() {
    let w = World::new().await;
    let person = w.sim.person_user_id();
    let n = |cond: Value| prop("Estimate", "number", cond);
    let cases = [
        (prop("Blocked", "checkbox", json!({"equals": true})), "A"),
        (
            prop("Blocked", "checkbox", json!({"does_not_equal": true})),
            "B C D",
        ),
        (n(json!({"equals": 3})), "A"),
        (n(json!({"does_not_equal": 3})), "B C D"),
        (n(json!({"greater_than": 2})), "A B"),
        (n(json!({"less_than": 3})), "D"),
        (n(json!({"greater_than_or_equal_to": 3})), "A B"),
        (n(json!({"less_than_or_equal_to": 3})), "A D"),
        (n(json!({"is_empty": true})), "C"),
        (n(json!({"is_not_empty": true})), "A B D"),
        (prop("Assignee", "people", json!({"contains": person})), "A"),
        (
            prop("Assignee", "people", json!({"does_not_contain": person})),
            "B C D",
        ),
        (
            prop("Assignee", "people", json!({"is_empty": true})),
            "B C D",
        ),
        (
            prop("Assignee", "people", json!({"is_not_empty": true})),
            "A",
        ),
    ];
    for (f, want) in cases {
        w.check(f, want).await;
    }
}

#[tokio::test]
async fn timestamp_and_compound_filters() {
    let w = World::new().await;
    let cases = [
        (
            json!({"timestamp": "created_time", "created_time": {"on_or_after": "2026-01-11T13:00:00Z"}}),
            "C D",
        ),
        (
            json!({"timestamp": "created_time", "created_time": {"before": "2026-01-11T13:00:00Z"}}),
            "A B",
        ),
        (
            json!({"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": "2026-01-11T14:00:00.000Z"}}),
            "C D",
        ),
        (
            json!({"timestamp": "last_edited_time", "last_edited_time": {"equals": "2026-01-11T12:00:00Z"}}),
            "A B",
        ),
        (
            json!({"and": [
                prop("Status", "status", json!({"does_not_equal": "Done"})),
                prop("Due Date", "date", json!({"before": "2026-01-12"})),
            ]}),
            "A",
        ),
        (
            json!({"or": [
                prop("Priority", "select", json!({"equals": "High"})),
                prop("Tags", "multi_select", json!({"contains": "Docs"})),
            ]}),
            "A B",
        ),
        (
            json!({"and": [
                {"or": [
                    prop("Status", "status", json!({"equals": "To Do"})),
                    prop("Status", "status", json!({"equals": "Overdue"})),
                ]},
                prop("Blocked", "checkbox", json!({"equals": false})),
            ]}),
            "D",
        ),
        (json!({"and": []}), "A B C D"),
        (json!({"or": []}), ""),
    ];
    for (f, want) in cases {
        w.check(f, want).await;
    }
}

#[tokio::test]
async fn trashed_and_unshared_pages_are_never_returned() {
    let w = World::new().await;
    let (a, _) = w.titles.iter().find(|(_, t)| **t == "A").unwrap();
    let (b, _) = w.titles.iter().find(|(_, t)| **t == "B").unwrap();
    w.sim.trash(a).unwrap();
    w.sim.unshare(b).unwrap();
    w.check(json!({"and": []}), "C D").await;
    w.sim.restore(a).unwrap();
    w.sim.share(b).unwrap();
    w.check(json!({"and": []}), "A B C D").await;
}
