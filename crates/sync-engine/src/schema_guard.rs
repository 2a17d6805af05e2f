//! The schema guard: reads a data source's schema, decides whether it can carry the task
//! rule (`rules::check_schema`), pauses task writes on drift and resumes them when fixed.
//! Owns when the schema was last read (the periodic re-read).

use std::sync::{Arc, Mutex};

use notion_api::{Lane as PaceLane, NotionError, NotionId, Page, PropertyValue};
use tokio::time::Instant;

use crate::context::Ctx;
use crate::rules;
use crate::status::SchemaState;

pub(crate) struct SchemaGuard {
    ctx: Arc<Ctx>,
    last_check: Mutex<Option<Instant>>,
}

impl SchemaGuard {
    pub(crate) fn new(ctx: Arc<Ctx>) -> SchemaGuard {
        SchemaGuard {
            ctx,
            last_check: Mutex::new(None),
        }
    }

    /// Reads the data source's schema on `lane` and updates the guard (health, writes).
    #[tracing::instrument(skip_all, fields(data_source.id = %ds), err)]
    pub(crate) async fn check(
        &self,
        ds: NotionId,
        lane: PaceLane,
    ) -> Result<SchemaState, NotionError> {
        let ctx = &self.ctx;
        let client = ctx.client().with_lane(lane);
        let schema = ctx.observe(client.retrieve_data_source(ds).await)?;
        *self.last_check.lock().expect("lock") = Some(Instant::now());
        let state = match rules::check_schema(&schema.value, &ctx.config.tasks) {
            Ok(info) => SchemaState::Ok(info),
            Err(problems) => SchemaState::Drift(problems),
        };
        let was = ctx.status.schema();
        let new_problems = ctx.status.set_schema(state.clone());
        for problem in &new_problems {
            tracing::error!(data_source.id = %ds, problem = %problem, "schema drift: task writes paused until the schema is fixed");
        }
        if matches!(was, SchemaState::Drift(_)) && matches!(state, SchemaState::Ok(_)) {
            tracing::info!(data_source.id = %ds, "schema fixed: task writes resumed");
        }
        let ok = matches!(state, SchemaState::Ok(_));
        metrics::gauge!("schema_ok", "source" => self.ctx.source()).set(if ok { 1.0 } else { 0.0 });
        Ok(state)
    }

    /// Whether the periodic re-read is due (always while the schema is not known good).
    pub(crate) fn check_due(&self) -> bool {
        let last = *self.last_check.lock().expect("lock");
        !matches!(self.ctx.status.schema(), SchemaState::Ok(_))
            || last.is_none_or(|t| t.elapsed() >= self.ctx.config.reconcile.schema_check_interval)
    }

    /// Whether a page read from Notion disagrees with the guard's picture (the status or
    /// due property missing or retyped): the schema should be read again.
    pub(crate) fn contradicts(&self, page: &Page) -> bool {
        let tasks = &self.ctx.config.tasks;
        let status_ok = page.property(&tasks.status_property).is_some_and(|p| {
            p.status_name().is_some()
                || matches!(
                    p,
                    PropertyValue::Status { .. } | PropertyValue::Select { .. }
                )
        });
        let due_ok = page
            .property(&tasks.due_property)
            .is_some_and(|p| matches!(p, PropertyValue::Date { .. }));
        !(status_ok && due_ok)
    }
}
