//! The task rule and the schema guard, as pure functions over Notion values.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use notion_api::{DataSource, NotionDate, Page, PropertyKind};

use crate::config::TaskConfig;

/// How the status property is typed in the schema (the PATCH body differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Status,
    Select,
}

/// What the schema guard learned: enough to evaluate and write the task rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaInfo {
    pub status_kind: StatusKind,
    /// Resolved open statuses (config list, or every option outside "Complete").
    pub open_statuses: Vec<String>,
}

/// One precise schema problem, phrased for the operator.
pub type SchemaProblem = String;

/// Checks that the data source can carry the task rule. All problems are returned.
pub fn check_schema(ds: &DataSource, tasks: &TaskConfig) -> Result<SchemaInfo, Vec<SchemaProblem>> {
    let mut problems = Vec::new();
    let names = || {
        let mut v: Vec<_> = ds.properties.keys().map(|k| format!("{k:?}")).collect();
        v.sort();
        v.join(", ")
    };
    let status = ds.property(&tasks.status_property);
    let mut info = None;
    match status.map(|p| &p.kind) {
        None => problems.push(format!(
            "status property {:?} not found in data source {} (it has: {})",
            tasks.status_property,
            ds.id,
            names()
        )),
        Some(PropertyKind::Status { options, groups }) => {
            let option_names: Vec<&str> = options.iter().map(|o| o.name.as_str()).collect();
            let open = if tasks.open_statuses.is_empty() {
                let complete: Vec<&str> = groups
                    .iter()
                    .filter(|g| g.name.eq_ignore_ascii_case("complete"))
                    .flat_map(|g| g.option_ids.iter().map(String::as_str))
                    .collect();
                options
                    .iter()
                    .filter(|o| !o.id.as_deref().is_some_and(|id| complete.contains(&id)))
                    .filter(|o| o.name != tasks.overdue_status)
                    .map(|o| o.name.clone())
                    .collect()
            } else {
                tasks.open_statuses.clone()
            };
            check_options(tasks, &option_names, &mut problems);
            info = Some(SchemaInfo {
                status_kind: StatusKind::Status,
                open_statuses: open,
            });
        }
        Some(PropertyKind::Select { options }) => {
            let option_names: Vec<&str> = options.iter().map(|o| o.name.as_str()).collect();
            if tasks.open_statuses.is_empty() {
                problems.push(format!(
                    "status property {:?} is a select property, which has no \"Complete\" group: set tasks.open_statuses",
                    tasks.status_property
                ));
            }
            check_options(tasks, &option_names, &mut problems);
            info = Some(SchemaInfo {
                status_kind: StatusKind::Select,
                open_statuses: tasks.open_statuses.clone(),
            });
        }
        Some(other) => problems.push(format!(
            "status property {:?} is a {} property; it must be a status or select property",
            tasks.status_property,
            other.type_name()
        )),
    }
    match ds.property(&tasks.due_property).map(|p| &p.kind) {
        None => problems.push(format!(
            "due property {:?} not found in data source {} (it has: {})",
            tasks.due_property,
            ds.id,
            names()
        )),
        Some(PropertyKind::Date) => {}
        Some(other) => problems.push(format!(
            "due property {:?} is a {} property; it must be a date property",
            tasks.due_property,
            other.type_name()
        )),
    }
    match info {
        Some(info) if problems.is_empty() => Ok(info),
        _ => Err(problems),
    }
}

fn check_options(tasks: &TaskConfig, options: &[&str], problems: &mut Vec<SchemaProblem>) {
    let listed = options
        .iter()
        .map(|o| format!("{o:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if !options.contains(&tasks.overdue_status.as_str()) {
        problems.push(format!(
            "overdue status {:?} is not an option of property {:?} (options: {listed})",
            tasks.overdue_status, tasks.status_property
        ));
    }
    for open in &tasks.open_statuses {
        if !options.contains(&open.as_str()) {
            problems.push(format!(
                "open status {open:?} (tasks.open_statuses) is not an option of property {:?} (options: {listed})",
                tasks.status_property
            ));
        }
    }
}

/// "Today" in the configured time zone.
pub fn today(now: DateTime<Utc>, tz: chrono_tz::Tz) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// The first instant of `day` in `tz` (the earliest, across DST changes).
pub fn start_of_day(day: NaiveDate, tz: chrono_tz::Tz) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    match tz.from_local_datetime(&midnight) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.with_timezone(&Utc)
        }
        // A DST gap at midnight: the day starts an hour later.
        chrono::LocalResult::None => tz
            .from_local_datetime(&(midnight + chrono::Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&midnight)),
    }
}

/// Due before today: date-only values compare as dates, date-times as instants
/// against the start of today in `tz`.
pub fn is_past_due(due: &NotionDate, now: DateTime<Utc>, tz: chrono_tz::Tz) -> bool {
    let today = today(now, tz);
    match due {
        NotionDate::Date(d) => *d < today,
        NotionDate::DateTime(t) => t.with_timezone(&Utc) < start_of_day(today, tz),
    }
}

/// The task's status and due date as the rule sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    pub status: Option<String>,
    pub due: Option<NotionDate>,
}

impl TaskView {
    pub fn of(page: &Page, tasks: &TaskConfig) -> TaskView {
        TaskView {
            status: page
                .property(&tasks.status_property)
                .and_then(|p| p.status_name())
                .map(str::to_owned),
            due: page
                .property(&tasks.due_property)
                .and_then(|p| p.date())
                .map(|d| d.start),
        }
    }
}

/// Should this task become overdue now?
pub fn should_mark_overdue(
    task: &TaskView,
    schema: &SchemaInfo,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> bool {
    let open = task
        .status
        .as_ref()
        .is_some_and(|s| schema.open_statuses.iter().any(|o| o == s));
    open && task.due.as_ref().is_some_and(|d| is_past_due(d, now, tz))
}

/// The `properties` body of the PATCH that writes `status`.
pub fn status_patch(tasks: &TaskConfig, kind: StatusKind, status: &str) -> serde_json::Value {
    let key = match kind {
        StatusKind::Status => "status",
        StatusKind::Select => "select",
    };
    serde_json::json!({ tasks.status_property.clone(): { key: { "name": status } } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn date(s: &str) -> NotionDate {
        NotionDate::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
    }

    fn datetime(s: &str) -> NotionDate {
        NotionDate::DateTime(DateTime::<FixedOffset>::parse_from_rfc3339(s).unwrap())
    }

    #[test]
    fn past_due_by_date_and_instant() {
        let now = utc("2026-11-23T10:00:00Z");
        let check = |due: NotionDate, tz: chrono_tz::Tz, expected: bool| {
            assert_eq!(is_past_due(&due, now, tz), expected, "{due:?} in {tz}");
        };
        check(date("2026-11-22"), chrono_tz::UTC, true);
        check(date("2026-11-23"), chrono_tz::UTC, false);
        check(date("2026-11-24"), chrono_tz::UTC, false);
        // In UTC+14 it is already 2026-11-24 00:00: a task due the 23rd is past due.
        check(date("2026-11-23"), chrono_tz::Pacific::Kiritimati, true);
        // In UTC-10 it is still the 23rd (00:00): due the 22nd is past due, the 23rd is today.
        check(date("2026-11-23"), chrono_tz::Pacific::Honolulu, false);
        check(date("2026-11-22"), chrono_tz::Pacific::Honolulu, true);
        // Instants compare against the start of today in the zone.
        check(datetime("2026-11-22T23:59:00Z"), chrono_tz::UTC, true);
        check(datetime("2026-11-23T00:00:00Z"), chrono_tz::UTC, false);
        check(datetime("2026-11-23T09:00:00+02:00"), chrono_tz::UTC, false);
        check(datetime("2026-11-23T01:00:00+02:00"), chrono_tz::UTC, true);
    }

    #[test]
    fn start_of_day_handles_zones() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert_eq!(start_of_day(d, chrono_tz::UTC), utc("2026-11-23T00:00:00Z"));
        assert_eq!(
            start_of_day(d, chrono_tz::Pacific::Kiritimati),
            utc("2026-11-22T10:00:00Z")
        );
        // São Paulo had DST starting at midnight (2018-11-04 00:00 did not exist).
        let gap = NaiveDate::from_ymd_opt(2018, 11, 4).unwrap();
        assert_eq!(
            start_of_day(gap, chrono_tz::America::Sao_Paulo),
            utc("2018-11-04T03:00:00Z")
        );
    }

    #[test]
    fn rule_needs_open_status_and_past_due() {
        let schema = SchemaInfo {
            status_kind: StatusKind::Status,
            open_statuses: vec!["To Do".into(), "In Progress".into()],
        };
        let now = utc("2026-11-23T10:00:00Z");
        let check = |status: Option<&str>, due: Option<NotionDate>, expected: bool| {
            let t = TaskView {
                status: status.map(str::to_owned),
                due,
            };
            assert_eq!(
                should_mark_overdue(&t, &schema, now, chrono_tz::UTC),
                expected,
                "{t:?}"
            );
        };
        check(Some("To Do"), Some(date("2026-11-01")), true);
        check(Some("In Progress"), Some(date("2026-11-22")), true);
        check(Some("Done"), Some(date("2026-11-01")), false);
        check(Some("Overdue"), Some(date("2026-11-01")), false);
        check(Some("To Do"), Some(date("2026-11-23")), false);
        check(Some("To Do"), None, false);
        check(None, Some(date("2026-11-01")), false);
    }

    #[test]
    fn status_patch_shapes() {
        let t = TaskConfig::default();
        assert_eq!(
            status_patch(&t, StatusKind::Status, "Overdue"),
            serde_json::json!({"Status": {"status": {"name": "Overdue"}}})
        );
        assert_eq!(
            status_patch(&t, StatusKind::Select, "Overdue"),
            serde_json::json!({"Status": {"select": {"name": "Overdue"}}})
        );
    }
}
