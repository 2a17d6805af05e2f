//! Generator determinism, API and Rust-API mutations, schema changes, the "Other" data source.

use chrono::TimeZone;
use notion_sim::{BodyEdit, NewTask, SimConfig, SimError};
use serde_json::json;

use crate::helpers::{Api, assert_error, fast_config, sim};

fn fixed(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        start_time: Some(chrono::Utc.with_ymd_and_hms(2026, 5, 4, 10, 0, 0).unwrap()),
        ..fast_config()
    }
}

#[tokio::test]
async fn same_seed_same_workspace() {
    let a = sim(fixed(7)).await;
    let b = sim(fixed(7)).await;
    let c = sim(fixed(8)).await;
    assert_eq!(a.database_id(), b.database_id());
    assert_eq!(a.data_source_id(), b.data_source_id());
    assert_eq!(a.other_page_ids(), b.other_page_ids());
    let strip = |p: notion_sim::SimPage| {
        (
            p.id,
            p.title,
            p.status,
            p.due,
            p.markdown,
            p.properties,
            p.created_time,
        )
    };
    let pa: Vec<_> = a.pages().into_iter().map(strip).collect();
    let pb: Vec<_> = b.pages().into_iter().map(strip).collect();
    assert_eq!(pa, pb);
    assert_ne!(a.data_source_id(), c.data_source_id());
    assert_eq!(pa.len(), 20);

    let ta = a.random_edits(99, 40);
    let tb = b.random_edits(99, 40);
    assert_eq!(ta, tb);
    assert_eq!(ta.len(), 40);
    let after_a: Vec<_> = a
        .pages()
        .into_iter()
        .map(|p| (p.id, p.title, p.status, p.in_trash, p.markdown))
        .collect();
    let after_b: Vec<_> = b
        .pages()
        .into_iter()
        .map(|p| (p.id, p.title, p.status, p.in_trash, p.markdown))
        .collect();
    assert_eq!(after_a, after_b);
}

#[tokio::test]
async fn generated_tasks_are_realistic() {
    let sim = sim(SimConfig {
        pages: 60,
        ..fast_config()
    })
    .await;
    let pages = sim.pages();
    let statuses: std::collections::BTreeSet<_> =
        pages.iter().filter_map(|p| p.status.clone()).collect();
    assert!(statuses.len() >= 3, "{statuses:?}");
    let today = sim.now().date_naive();
    let dues: Vec<_> = pages
        .iter()
        .filter_map(|p| p.due.as_deref())
        .map(|d| chrono::NaiveDate::parse_from_str(&d[..10], "%Y-%m-%d").unwrap())
        .collect();
    assert!(dues.iter().any(|d| *d < today) && dues.iter().any(|d| *d > today));
    assert!(
        pages.iter().any(|p| p.markdown.contains("\t")),
        "nested blocks"
    );
    assert!(
        pages.iter().any(|p| p.markdown.contains("```")),
        "code blocks"
    );
    assert!(pages.iter().any(|p| {
        !p.properties["Assignee"]["people"]
            .as_array()
            .unwrap()
            .is_empty()
    }));
    assert!(
        pages
            .iter()
            .any(|p| p.properties["Notes"]["rich_text"].as_array().unwrap().len() > 1)
    );
    assert!(pages.iter().all(|p| p.created_time <= p.last_edited_time));
}

#[tokio::test]
async fn api_patch_updates_properties_as_the_bot() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let id = sim.create_task(NewTask {
        title: "Patch me".into(),
        due: Some("2026-01-01".into()),
        ..Default::default()
    });
    let res = api
        .patch(
            &format!("/v1/pages/{id}"),
            &json!({"properties": {
                "Status": {"status": {"name": "Overdue"}},
                "Due Date": {"date": {"start": "2026-02-03T04:05:00+02:00"}},
                "Priority": {"select": {"name": "Critical"}},
                "Tags": {"multi_select": [{"name": "Ops"}]},
                "title": {"title": [{"text": {"content": "Patched", "link": {"url": "https://x.example"}}, "annotations": {"bold": true}}]},
                "Estimate": {"number": 2.5},
                "Blocked": {"checkbox": true},
                "Notes": {"rich_text": []},
            }}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let p = &res.body["properties"];
    assert_eq!(p["Status"]["status"]["name"], "Overdue");
    assert_eq!(
        p["Due Date"]["date"]["start"],
        "2026-02-03T04:05:00.000+02:00"
    );
    assert_eq!(
        p["Priority"]["select"]["name"], "Critical",
        "select options are created on demand"
    );
    assert_eq!(p["Tags"]["multi_select"][0]["name"], "Ops");
    assert_eq!(p["Name"]["title"][0]["href"], "https://x.example");
    assert_eq!(p["Name"]["title"][0]["annotations"]["bold"], true);
    assert_eq!(p["Estimate"]["number"], 2.5);
    assert_eq!(res.body["last_edited_by"]["id"], sim.bot_user_id());
    assert_eq!(res.body["created_by"]["id"], sim.person_user_id());
    assert!(
        res.body["url"]
            .as_str()
            .unwrap()
            .starts_with("https://app.notion.com/p/Patched-")
    );
    let page = sim.page(&id).unwrap();
    assert_eq!(page.status.as_deref(), Some("Overdue"));
    assert_eq!(page.title, "Patched");
    let ds = api
        .get(&format!("/v1/data_sources/{}", sim.data_source_id()))
        .await;
    let priority = ds.body["properties"]["Priority"]["select"]["options"]
        .as_array()
        .unwrap();
    assert!(priority.iter().any(|o| o["name"] == "Critical"));

    let res = api
        .patch(&format!("/v1/pages/{id}"), &json!({"in_trash": true}))
        .await;
    assert_eq!(res.body["in_trash"], true);
    assert_eq!(res.body["archived"], true);
    assert!(sim.page(&id).unwrap().in_trash);
    let res = api
        .patch(&format!("/v1/pages/{id}"), &json!({"archived": false}))
        .await;
    assert_eq!(res.body["in_trash"], false);
}

#[tokio::test]
async fn schema_changes_show_in_the_data_source_and_validation() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let ds_path = format!("/v1/data_sources/{}", sim.data_source_id());
    let schema = api.get(&ds_path).await.body;
    let status = &schema["properties"]["Status"]["status"];
    let names: Vec<&str> = status["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["To Do", "In Progress", "Overdue", "Done"]);
    let groups: Vec<(&str, usize)> = status["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap(),
                g["option_ids"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(groups, [("To-do", 1), ("In progress", 2), ("Complete", 1)]);
    for (name, ty) in [
        ("Name", "title"),
        ("Due Date", "date"),
        ("Assignee", "people"),
        ("Priority", "select"),
        ("Tags", "multi_select"),
        ("Notes", "rich_text"),
        ("Estimate", "number"),
        ("Blocked", "checkbox"),
    ] {
        assert_eq!(schema["properties"][name]["type"], ty, "{name}");
    }

    sim.rename_property("Due Date", "Deadline").unwrap();
    sim.remove_status_option("Overdue").unwrap();
    sim.add_status_option("Waiting", "In progress").unwrap();
    assert!(matches!(
        sim.add_status_option("Nope", "No group"),
        Err(SimError::UnknownGroup(_))
    ));
    assert!(matches!(
        sim.rename_property("Missing", "X"),
        Err(SimError::UnknownProperty(_))
    ));
    let schema = api.get(&ds_path).await.body;
    assert!(schema["properties"]["Due Date"].is_null());
    assert_eq!(schema["properties"]["Deadline"]["id"], "%3AbEt");
    let names: Vec<&str> = schema["properties"]["Status"]["status"]["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["To Do", "In Progress", "Done", "Waiting"]);

    let page = sim.pages()[0].id.clone();
    let res = api
        .patch(
            &format!("/v1/pages/{page}"),
            &json!({"properties": {"Status": {"status": {"name": "Overdue"}}}}),
        )
        .await;
    assert_error(&res, 400, "validation_error");
    let res = api
        .patch(&format!("/v1/pages/{page}"), &json!({"properties": {"Deadline": {"date": null}, "Status": {"status": {"name": "Waiting"}}}}))
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body["properties"]["Deadline"]["date"].is_null());
    // The Rust API follows the property by id across renames.
    sim.set_due(&page, Some("2026-09-09")).unwrap();
    assert_eq!(sim.page(&page).unwrap().due.as_deref(), Some("2026-09-09"));
    sim.remove_property("Blocked").unwrap();
    assert!(api.get(&ds_path).await.body["properties"]["Blocked"].is_null());
}

#[tokio::test]
async fn rust_api_mutations_and_the_other_data_source() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let id = sim.create_task(NewTask {
        title: "Body".into(),
        body: vec![notion_sim::SimBlock::Paragraph("one".into())],
        ..Default::default()
    });
    sim.edit_body(&id, BodyEdit::AppendParagraph("two".into()))
        .unwrap();
    sim.edit_body(
        &id,
        BodyEdit::ReplaceParagraph {
            index: 0,
            text: "uno".into(),
        },
    )
    .unwrap();
    assert_eq!(sim.page(&id).unwrap().markdown, "uno\ntwo");
    assert!(matches!(
        sim.edit_body(
            &id,
            BodyEdit::ReplaceParagraph {
                index: 9,
                text: "x".into()
            }
        ),
        Err(SimError::BadBlockIndex(9))
    ));
    sim.edit_body(
        &id,
        BodyEdit::Replace(vec![notion_sim::SimBlock::Heading1("New".into())]),
    )
    .unwrap();
    assert_eq!(sim.page(&id).unwrap().markdown, "# New");
    assert!(matches!(
        sim.set_status(&id, "Nope"),
        Err(SimError::UnknownOption { .. })
    ));
    assert!(matches!(
        sim.set_due(&id, Some("tomorrow")),
        Err(SimError::Invalid(_))
    ));
    assert!(matches!(
        sim.set_status("00000000-0000-4000-8000-000000000000", "Done"),
        Err(SimError::PageNotFound(_))
    ));
    sim.set_due(&id, None).unwrap();
    assert_eq!(sim.page(&id).unwrap().due, None);
    sim.set_property(&id, "Estimate", json!({"number": 5}))
        .unwrap();
    assert!(matches!(
        sim.set_property(&id, "Nope", json!({"number": 5})),
        Err(SimError::UnknownProperty(_))
    ));
    assert!(matches!(
        sim.set_property(&id, "Estimate", json!({"number": "x"})),
        Err(SimError::Invalid(_))
    ));
    assert!(
        sim.try_create_task(NewTask {
            status: Some("Nope".into()),
            ..Default::default()
        })
        .is_err()
    );

    sim.unshare(&id).unwrap();
    let all = sim.pages();
    assert!(all.iter().any(|p| p.id == id && !p.shared));

    let other = sim.other_page_ids();
    assert_eq!(other.len(), 3);
    let rows = api.query_ids(&sim.other_data_source_id(), &json!({})).await;
    assert_eq!(rows, other);
    let page = api.get(&format!("/v1/pages/{}", other[0])).await;
    assert_eq!(
        page.body["parent"]["data_source_id"],
        sim.other_data_source_id()
    );
    assert!(page.body["properties"]["Status"].is_null());
    assert!(!sim.pages().iter().any(|p| other.contains(&p.id)));
    sim.set_title(&other[0], "Renamed handbook").unwrap();
    assert_eq!(sim.page(&other[0]).unwrap().title, "Renamed handbook");
}
