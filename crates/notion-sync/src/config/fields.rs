//! Readers for the keys a source and an integration are made of, shared by the
//! single-source sections (`[notion]`, `[tasks]`) and each `[sources.<name>]` /
//! `[integrations.<name>]`: the data source or database id, the task rules, the rate.

use notion_api::NotionId;
use sync_engine::{Source, TaskConfig};

use super::doc::Section;
use super::error::ConfigError;

/// `requests_per_second` of the section (`[notion]`, `[integrations.<name>]`).
pub(crate) fn rate(s: &mut Section<'_>, default: f64) -> Result<f64, ConfigError> {
    s.float(
        "requests_per_second",
        default,
        |r| r.is_finite() && r > 0.0 && r <= 100.0,
        "must be greater than 0 and at most 100 (Notion allows about 3)",
    )
}

/// `data_source_id` or `database_id` of the section (at most one); `None` when neither.
pub(crate) fn source_ids(s: &mut Section<'_>) -> Result<Option<Source>, ConfigError> {
    let id = |s: &mut Section<'_>, key: &str| {
        s.text(
            key,
            None,
            "must be a Notion id (32 hex digits, dashes optional)",
            |v| match v.trim() {
                "" => Some(None),
                v => NotionId::parse(v).ok().map(Some),
            },
            |v: &Option<NotionId>| v.map(|id| id.to_string()).unwrap_or_default(),
        )
    };
    let data_source = id(s, "data_source_id")?;
    let database = id(s, "database_id")?;
    Ok(match (data_source, database) {
        (Some(ds), Some(_)) => {
            let path = s.path().to_owned();
            return Err(ConfigError::Invalid {
                key: format!("{path}.data_source_id"),
                value: format!("{:?}", ds.to_string()),
                allowed: format!(
                    "set either {path}.data_source_id or {path}.database_id, not both"
                ),
            });
        }
        (Some(ds), None) => Some(Source::DataSource(ds)),
        (None, Some(db)) => Some(Source::Database(db)),
        (None, None) => None,
    })
}

/// The task rules of the section, each key defaulting to `d`'s.
pub(crate) fn tasks(mut s: Section<'_>, d: TaskConfig) -> Result<TaskConfig, ConfigError> {
    let named = |v: &str| !v.trim().is_empty();
    let status_property = s.string(
        "status_property",
        d.status_property,
        "must not be empty",
        named,
    )?;
    let due_property = s.string("due_property", d.due_property, "must not be empty", named)?;
    let open_statuses = s.strings(
        "open_statuses",
        d.open_statuses,
        "must be a list of status names",
        |_| true,
    )?;
    let overdue_status = s.string(
        "overdue_status",
        d.overdue_status,
        "must not be empty",
        named,
    )?;
    if open_statuses.contains(&overdue_status) {
        let path = s.path().to_owned();
        return Err(ConfigError::Invalid {
            key: format!("{path}.open_statuses"),
            value: format!("{open_statuses:?}"),
            allowed: format!("must not contain {path}.overdue_status"),
        });
    }
    let tasks = TaskConfig {
        status_property,
        due_property,
        open_statuses,
        overdue_status,
        timezone: s.text(
            "timezone",
            d.timezone,
            "must be an IANA time zone such as \"UTC\" or \"Europe/Berlin\"",
            |v| v.parse::<chrono_tz::Tz>().ok(),
            |tz| tz.name().to_owned(),
        )?,
        mark_overdue: s.boolean("mark_overdue", d.mark_overdue)?,
    };
    s.finish()?;
    Ok(tasks)
}
