//! Typed models on project-written, docs-shaped JSON: every property type, schema, users.

use chrono::NaiveDate;
use notion_api::{
    DataSource, FormulaValue, NotionDate, NotionId, Page, PropertyKind, PropertyValue,
    RollupResult, User, UserKind,
};
use serde_json::json;

use crate::support::{self, task_data_source, task_page};

fn page() -> Page {
    serde_json::from_value(task_page(support::PAGE_ID, "Write report", "In Progress")).unwrap()
}

#[test]
fn page_accessors() {
    let p = page();
    assert_eq!(p.title(), "Write report");
    assert_eq!(p.data_source_id(), Some(support::DS_ID.parse().unwrap()));
    assert_eq!(
        p.parent.database_id(),
        Some(support::DB_ID.parse().unwrap())
    );
    assert!(!p.is_trashed());
    assert_eq!(
        p.property("Status").unwrap().status_name(),
        Some("In Progress")
    );
    assert_eq!(p.property("Priority").unwrap().status_name(), Some("High"));
    assert_eq!(p.property("Status").unwrap().id(), Some("%5EOE%40"));
    let due = p.property("Due Date").unwrap().date().unwrap();
    assert_eq!(
        due.start,
        NotionDate::Date(NaiveDate::from_ymd_opt(2025, 1, 30).unwrap())
    );
    assert_eq!(due.start.to_string(), "2025-01-30");
    assert_eq!(p.properties.len(), 24);
    assert_eq!(p.properties.get_by_id("M%3BBw").unwrap().0, "Due Date");
}

#[test]
fn a_page_with_odd_unused_fields_still_decodes() {
    let mut v = task_page(support::PAGE_ID, "Write report", "In Progress");
    v["created_by"] = json!({"object": "user", "id": ""});
    v.as_object_mut().unwrap().remove("last_edited_by");
    let p: Page = serde_json::from_value(v.clone()).unwrap();
    assert_eq!((p.created_by, p.last_edited_by), (None, None));
    assert_eq!(p.title(), "Write report");
    // The parent decides what the page belongs to: it stays strict.
    v["parent"] = json!({"type": "data_source_id", "data_source_id": ""});
    assert!(serde_json::from_value::<Page>(v).is_err());
}

#[test]
fn every_property_type_is_typed() {
    let p = page();
    let by = |n: &str| p.property(n).unwrap_or_else(|| panic!("{n}"));
    let text = |n: &str| by(n).plain_text();
    assert_eq!(text("Notes").as_deref(), Some("see docs"));
    assert_eq!(text("Estimate").as_deref(), Some("2.5"));
    assert_eq!(text("Tags").as_deref(), Some("backend, infra"));
    assert_eq!(text("Done").as_deref(), Some("false"));
    assert_eq!(text("Link").as_deref(), Some("https://example.com"));
    assert_eq!(text("Contact").as_deref(), Some("ops@example.com"));
    assert_eq!(text("Phone").as_deref(), Some("+1 555 0100"));
    assert_eq!(text("Days Left").as_deref(), Some("-1"));
    assert_eq!(text("Task ID").as_deref(), Some("TASK-42"));
    assert_eq!(text("Owner"), None);
    match by("Owner") {
        PropertyValue::People { people, .. } => {
            assert_eq!(people[0].kind, UserKind::Person);
            assert_eq!(people[0].email.as_deref(), Some("ada@example.com"));
        }
        other => panic!("{other:?}"),
    }
    match by("Spec") {
        PropertyValue::Files { files, .. } => {
            assert_eq!(files.len(), 2);
            assert_eq!(files[0].kind, "external");
            assert_eq!(
                files[1].url.as_deref(),
                Some("https://s3.example.com/shot.png")
            );
            assert!(files[1].expiry_time.is_some());
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(by("Days Left"), PropertyValue::Formula { formula: FormulaValue::Number { number: Some(n) }, .. } if *n == -1.0)
    );
    match by("Blocked By") {
        PropertyValue::Relation {
            relation, has_more, ..
        } => {
            assert_eq!(
                relation,
                &[NotionId::parse("0ef104cd477e80e18571cfd10e92339a").unwrap()]
            );
            assert!(!has_more);
        }
        other => panic!("{other:?}"),
    }
    match by("Total") {
        PropertyValue::Rollup { rollup, .. } => {
            assert_eq!(rollup.function.as_deref(), Some("count"));
            assert_eq!(rollup.result, RollupResult::Number(Some(3.0)));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(by("Created"), PropertyValue::CreatedTime { .. }));
    assert!(matches!(by("Creator"), PropertyValue::CreatedBy { .. }));
    assert!(matches!(by("Edited"), PropertyValue::LastEditedTime { .. }));
    assert!(matches!(by("Editor"), PropertyValue::LastEditedBy { .. }));
    assert!(
        matches!(by("Verified"), PropertyValue::Verification { verification: Some(v), .. } if v.state == "unverified")
    );
    assert!(matches!(by("Start"), PropertyValue::Button { .. }));
    // a type this crate does not know keeps its raw JSON
    match by("Where") {
        PropertyValue::Unknown { raw } => assert_eq!(raw["place"]["name"], "Paris"),
        other => panic!("{other:?}"),
    }
    assert_eq!(by("Where").type_name(), "place");
    assert_eq!(by("Where").id(), Some("plc"));
}

#[test]
fn documented_value_shapes_reserialize_identically() {
    let raw = task_page(support::PAGE_ID, "Write report", "In Progress");
    let p = page();
    // These types carry every field Notion sends, so the typed form writes back the same JSON.
    for name in [
        "Name",
        "Status",
        "Due Date",
        "Notes",
        "Estimate",
        "Priority",
        "Tags",
        "Done",
        "Link",
        "Contact",
        "Phone",
        "Blocked By",
        "Total",
        "Created",
        "Creator",
        "Edited",
        "Editor",
        "Task ID",
        "Verified",
        "Start",
        "Where",
        "Spec",
        "Owner",
    ] {
        assert_eq!(
            p.property(name).unwrap().to_json(),
            raw["properties"][name],
            "{name}"
        );
    }
    // and the page writes back exactly what Notion returned
    assert_eq!(
        serde_json::to_value(&p).unwrap()["properties"],
        raw["properties"]
    );
}

#[test]
fn empty_values_are_none_not_errors() {
    let props = json!({
        "Status": {"id": "s", "type": "status", "status": null},
        "Due Date": {"id": "d", "type": "date", "date": null},
        "Estimate": {"id": "e", "type": "number", "number": null},
        "Link": {"id": "u", "type": "url", "url": null},
        "F": {"id": "f", "type": "formula", "formula": {"type": "string", "string": null}},
        "R": {"id": "r", "type": "rollup", "rollup": {"type": "array", "array": [], "function": "show_original"}},
        "Range": {"id": "g", "type": "date", "date": {"start": "2025-01-30T09:00:00.000+02:00", "end": "2025-01-31", "time_zone": "Europe/Paris"}}
    });
    let mut raw = task_page(support::PAGE_ID, "x", "To Do");
    raw["properties"] = props;
    let p: Page = serde_json::from_value(raw).unwrap();
    assert_eq!(p.property("Status").unwrap().status_name(), None);
    assert_eq!(p.property("Due Date").unwrap().date(), None);
    assert_eq!(p.property("Estimate").unwrap().plain_text(), None);
    assert_eq!(p.property("F").unwrap().plain_text(), None);
    assert!(matches!(
        p.property("R").unwrap(),
        PropertyValue::Rollup { rollup, .. } if rollup.result == RollupResult::Array(vec![])
    ));
    let range = p.property("Range").unwrap().date().unwrap();
    assert_eq!(range.start.to_string(), "2025-01-30T09:00:00.000+02:00");
    assert_eq!(
        range.start.date_naive(),
        NaiveDate::from_ymd_opt(2025, 1, 30).unwrap()
    );
    assert!(range.end.unwrap().is_date_only());
    assert_eq!(range.time_zone.as_deref(), Some("Europe/Paris"));
    assert_eq!(p.title(), "", "no title property");
}

#[test]
fn data_source_schema_and_status_groups() {
    let ds: DataSource = serde_json::from_value(task_data_source()).unwrap();
    assert_eq!(ds.title_text(), "Tasks");
    assert_eq!(ds.database_id(), Some(support::DB_ID.parse().unwrap()));
    let status = ds.property("Status").unwrap();
    assert_eq!(status.kind.type_name(), "status");
    let PropertyKind::Status { options, groups } = &status.kind else {
        panic!()
    };
    assert_eq!(options.len(), 4);
    assert_eq!(groups.len(), 3);
    assert_eq!(status.status_group_of("Done").unwrap().name, "Complete");
    assert_eq!(
        status.status_group_of("Overdue").unwrap().name,
        "In progress"
    );
    assert!(status.status_group_of("Nope").is_none());
    assert_eq!(ds.property("Due Date").unwrap().kind, PropertyKind::Date);
    assert_eq!(
        ds.property("Priority").unwrap().kind.options()[0].name,
        "High"
    );
    assert_eq!(
        ds.property("Where").unwrap().kind,
        PropertyKind::Unknown("place".into())
    );
    assert_eq!(ds.property_by_id("M%3BBw").unwrap().name, "Due Date");
    let again: DataSource = serde_json::from_value(serde_json::to_value(&ds).unwrap()).unwrap();
    assert_eq!(again, ds);
}

#[test]
fn users() {
    let bot: User = serde_json::from_value(json!({"object":"user","id":support::USER_ID,"name":"notion-sync",
        "avatar_url":null,"type":"bot","bot":{"owner":{"type":"workspace","workspace":true},"workspace_name":"Acme"}}))
    .unwrap();
    assert_eq!(bot.kind, UserKind::Bot);
    assert_eq!(bot.workspace_name(), Some("Acme"));
    let partial: User =
        serde_json::from_value(json!({"object":"user","id":support::USER_ID})).unwrap();
    assert_eq!(partial.kind, UserKind::Unknown);
    for u in [bot, partial] {
        let again: User = serde_json::from_value(serde_json::to_value(&u).unwrap()).unwrap();
        assert_eq!(again, u);
    }
}
