//! `start` and `SimHandle`: the Rust API to run, mutate, observe and stop a simulator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand::prelude::*;
use serde_json::Value;

use crate::config::{Faults, RateLimit, WebhookConfig};
use crate::error::SimError;
use crate::generate::{STATUS_DONE, STATUS_IN_PROGRESS, STATUS_TODO};
use crate::limits::{Bucket, Forced};
use crate::log::RouteCount;
use crate::model::{PropValue, World, plain_text};
use crate::mutate::PageEdit;
use crate::shared::Shared;
use crate::types::{BodyEdit, NewTask, RequestRecord, SimBlock, SimPage};
use crate::webhooks::WebhookStats;

/// A running simulator. Cheap to clone; every clone controls the same workspace.
#[derive(Clone)]
pub struct SimHandle {
    pub(crate) inner: Arc<Shared>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.inner.addr)
            .field("token", &"****")
            .field("data_source_id", &self.inner.ids.data_source_id)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `http://127.0.0.1:PORT`, to use as the Notion API base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// The bearer token the API accepts.
    pub fn token(&self) -> &str {
        &self.inner.token
    }

    /// The "Tasks" database.
    pub fn database_id(&self) -> String {
        self.inner.ids.database_id.clone()
    }

    /// The "Tasks" data source.
    pub fn data_source_id(&self) -> String {
        self.inner.ids.data_source_id.clone()
    }

    /// Every task data source: "Tasks", then "Tasks 2", … (`extra_task_databases`).
    pub fn task_data_source_ids(&self) -> Vec<String> {
        self.inner.ids.task_data_source_ids.clone()
    }

    /// The database of each task data source, in the same order.
    pub fn task_database_ids(&self) -> Vec<String> {
        let w = crate::lock(&self.inner.world);
        self.inner
            .ids
            .task_data_source_ids
            .iter()
            .filter_map(|ds| w.data_source(ds).map(|d| d.database_id.clone()))
            .collect()
    }

    /// The "Other" data source (pages that are not tasks).
    pub fn other_data_source_id(&self) -> String {
        self.inner.ids.other_data_source_id.clone()
    }

    /// Pages of the "Other" data source.
    pub fn other_page_ids(&self) -> Vec<String> {
        self.inner.ids.other_page_ids.clone()
    }

    /// The integration's bot user (`GET /v1/users/me`).
    pub fn bot_user_id(&self) -> String {
        self.inner.ids.bot_user_id.clone()
    }

    /// The person that Rust-API and `/_sim` mutations are authored by.
    pub fn person_user_id(&self) -> String {
        self.inner.ids.person_id.clone()
    }

    // ----- clock -----

    /// Whether queries see every page as it is now (each page's latest edit was made at
    /// least the visibility delay ago).
    pub fn queries_current(&self) -> bool {
        let delay = self.inner.visibility_delay();
        let now = tokio::time::Instant::now();
        crate::lock(&self.inner.world).pages.values().all(|p| {
            p.visible(now, delay)
                .is_some_and(|v| Arc::ptr_eq(v, p.latest()))
        })
    }

    /// Notion's "now".
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Jumps the sim clock to `t` (it keeps flowing from there).
    pub fn set_now(&self, t: DateTime<Utc>) {
        self.inner.clock.set_now(t);
    }

    /// Moves the sim clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.inner.clock.advance(d);
    }

    // ----- mutations (authored by a person) -----

    /// Creates a task; panics on an unknown status or unparsable due date (see
    /// [`SimHandle::try_create_task`]).
    pub fn create_task(&self, task: NewTask) -> String {
        match self.try_create_task(task) {
            Ok(id) => id,
            Err(e) => panic!("notion-sim: create_task failed: {e}"),
        }
    }

    /// Creates a task in the Tasks data source; emits `page.created`.
    pub fn try_create_task(&self, task: NewTask) -> Result<String, SimError> {
        let ds = self.inner.ids.data_source_id.clone();
        self.inner
            .mutate(self.inner.person(), task.silent, |w, ctx| {
                w.create_page(
                    ctx,
                    &ds,
                    &task.title,
                    task.status.as_deref(),
                    task.due.as_deref(),
                    &task.body,
                )
            })
    }

    fn edit(&self, page_id: &str, edit: PageEdit) -> Result<(), SimError> {
        let id = crate::model::normalize_id(page_id).unwrap_or_else(|| page_id.to_owned());
        self.inner.mutate(self.inner.person(), false, |w, ctx| {
            Ok(((), w.edit_page(ctx, &id, edit)?))
        })
    }

    fn page_ds(&self, page_id: &str) -> Result<(String, String), SimError> {
        let id = crate::model::normalize_id(page_id).unwrap_or_else(|| page_id.to_owned());
        let w = crate::lock(&self.inner.world);
        let ds = w
            .pages
            .get(&id)
            .map(|p| p.data_source_id.clone())
            .ok_or_else(|| SimError::PageNotFound(page_id.to_owned()))?;
        Ok((id, ds))
    }

    /// Sets the Status by option name; emits `page.properties_updated`.
    pub fn set_status(&self, page_id: &str, status: &str) -> Result<(), SimError> {
        let (id, ds) = self.page_ds(page_id)?;
        let (prop, value) = {
            let w = crate::lock(&self.inner.world);
            let prop = w
                .status_prop_id(&ds)
                .ok_or_else(|| SimError::UnknownProperty("Status".to_owned()))?;
            (prop, w.status_value(&ds, status)?)
        };
        self.edit(
            &id,
            PageEdit {
                props: vec![(prop, value)],
                ..PageEdit::default()
            },
        )
    }

    /// Sets or clears `Due Date` (`YYYY-MM-DD` or RFC 3339).
    pub fn set_due(&self, page_id: &str, due: Option<&str>) -> Result<(), SimError> {
        let value = World::due_value(due)?;
        let (id, ds) = self.page_ds(page_id)?;
        let prop = {
            crate::lock(&self.inner.world)
                .due_prop_id(&ds)
                .ok_or_else(|| SimError::UnknownProperty("Due Date".to_owned()))?
        };
        self.edit(
            &id,
            PageEdit {
                props: vec![(prop, value)],
                ..PageEdit::default()
            },
        )
    }

    /// Sets the title.
    pub fn set_title(&self, page_id: &str, title: &str) -> Result<(), SimError> {
        let (id, ds) = self.page_ds(page_id)?;
        let prop = {
            let w = crate::lock(&self.inner.world);
            w.data_source(&ds)
                .map(|d| d.title_prop().id.clone())
                .ok_or_else(|| SimError::PageNotFound(page_id.to_owned()))?
        };
        self.edit(
            &id,
            PageEdit {
                props: vec![(
                    prop,
                    PropValue::Title(vec![crate::model::Segment::plain(title)]),
                )],
                ..PageEdit::default()
            },
        )
    }

    /// Sets any property from Notion's property value JSON, e.g.
    /// `json!({"select": {"name": "High"}})` or `json!({"checkbox": true})`.
    pub fn set_property(&self, page_id: &str, name: &str, value: Value) -> Result<(), SimError> {
        let (id, ds) = self.page_ds(page_id)?;
        let (prop, parsed) = {
            let w = crate::lock(&self.inner.world);
            let data_source = w
                .data_source(&ds)
                .ok_or_else(|| SimError::PageNotFound(page_id.to_owned()))?;
            if data_source.prop(name).is_none() {
                return Err(SimError::UnknownProperty(name.to_owned()));
            }
            crate::values::parse_update(&w, data_source, name, &value)
                .map_err(|e| SimError::Invalid(e.message))?
        };
        self.inner.mutate(self.inner.person(), false, |w, ctx| {
            let value = crate::values::apply(w, &ds, &prop, parsed);
            let events = w.edit_page(
                ctx,
                &id,
                PageEdit {
                    props: vec![(prop.clone(), value)],
                    ..PageEdit::default()
                },
            )?;
            Ok(((), events))
        })
    }

    /// Edits the body; emits `page.content_updated` (aggregated).
    pub fn edit_body(&self, page_id: &str, edit: BodyEdit) -> Result<(), SimError> {
        let (id, _) = self.page_ds(page_id)?;
        self.inner.mutate(self.inner.person(), false, |w, ctx| {
            Ok(((), w.edit_body(ctx, &id, edit)?))
        })
    }

    /// Moves the page to the trash; emits `page.deleted`.
    pub fn trash(&self, page_id: &str) -> Result<(), SimError> {
        self.edit(
            page_id,
            PageEdit {
                in_trash: Some(true),
                ..PageEdit::default()
            },
        )
    }

    /// Restores the page from the trash; emits `page.undeleted`.
    pub fn restore(&self, page_id: &str) -> Result<(), SimError> {
        self.edit(
            page_id,
            PageEdit {
                in_trash: Some(false),
                ..PageEdit::default()
            },
        )
    }

    /// Revokes the integration's access: the page answers 404 everywhere and leaves query
    /// results, without any webhook.
    pub fn unshare(&self, page_id: &str) -> Result<(), SimError> {
        let (id, _) = self.page_ds(page_id)?;
        crate::lock(&self.inner.world).set_shared(&id, false)
    }

    /// Shares the page again (no webhook).
    pub fn share(&self, page_id: &str) -> Result<(), SimError> {
        let (id, _) = self.page_ds(page_id)?;
        crate::lock(&self.inner.world).set_shared(&id, true)
    }

    /// Renames a Tasks property; emits `data_source.schema_updated`.
    pub fn rename_property(&self, old: &str, new: &str) -> Result<(), SimError> {
        let ds = self.inner.ids.data_source_id.clone();
        self.inner.mutate(self.inner.person(), false, |w, ctx| {
            Ok(((), w.rename_property(ctx, &ds, old, new)?))
        })
    }

    /// Deletes a Tasks property (not the title); emits `data_source.schema_updated`.
    pub fn remove_property(&self, name: &str) -> Result<(), SimError> {
        let ds = self.inner.ids.data_source_id.clone();
        self.inner.mutate(self.inner.person(), false, |w, ctx| {
            Ok(((), w.remove_property(ctx, &ds, name)?))
        })
    }

    /// Deletes a Status option; pages holding it read `status: null` afterwards.
    pub fn remove_status_option(&self, name: &str) -> Result<(), SimError> {
        let ds = self.inner.ids.data_source_id.clone();
        self.inner.mutate(self.inner.person(), false, |w, ctx| {
            Ok(((), w.remove_status_option(ctx, &ds, name)?))
        })
    }

    /// Adds a Status option to a group (`To-do`, `In progress`, `Complete`) of every task
    /// data source.
    pub fn add_status_option(&self, name: &str, group: &str) -> Result<(), SimError> {
        for ds in self.inner.ids.task_data_source_ids.clone() {
            self.inner.mutate(self.inner.person(), false, |w, ctx| {
                Ok(((), w.add_status_option(ctx, &ds, name, group)?))
            })?;
        }
        Ok(())
    }

    /// While true, no mutation emits a webhook.
    pub fn set_silent(&self, silent: bool) {
        crate::lock(&self.inner.settings).silent = silent;
    }

    /// Applies `n` realistic random edits (status, due, title, body, create, trash, restore)
    /// from `rng_seed` to the "Tasks" data source; returns the touched page ids in order.
    pub fn random_edits(&self, rng_seed: u64, n: usize) -> Vec<String> {
        self.random_edits_in(&self.inner.ids.data_source_id.clone(), rng_seed, n)
    }

    /// [`random_edits`](Self::random_edits) in the task data source `data_source` (in
    /// another than "Tasks", a creation is a title edit instead).
    pub fn random_edits_in(&self, data_source: &str, rng_seed: u64, n: usize) -> Vec<String> {
        let creates = data_source == self.inner.ids.data_source_id;
        let mut rng = StdRng::seed_from_u64(rng_seed);
        let mut touched = Vec::with_capacity(n);
        for i in 0..n {
            let (live, trashed) = {
                let w = crate::lock(&self.inner.world);
                let mut live = Vec::new();
                let mut trashed = Vec::new();
                for p in w.pages_of(data_source) {
                    if p.latest().in_trash {
                        trashed.push(p.id.clone());
                    } else {
                        live.push(p.id.clone());
                    }
                }
                (live, trashed)
            };
            let roll = rng.random_range(0..100);
            let target = live.choose(&mut rng).cloned();
            let result = match (roll, target) {
                (80..90, Some(id)) if !creates => self
                    .set_title(&id, &format!("Renamed task {rng_seed}-{i}"))
                    .map(|()| id),
                (_, None) if !creates => continue,
                (80..90, _) | (_, None) => self.try_create_task(NewTask {
                    title: format!("Follow-up {rng_seed}-{i}"),
                    due: Some(
                        (self.now() + TimeDelta::days(rng.random_range(-3..10)))
                            .date_naive()
                            .to_string(),
                    ),
                    body: vec![SimBlock::Paragraph(
                        "Created during a busy afternoon.".to_owned(),
                    )],
                    ..NewTask::default()
                }),
                (0..30, Some(id)) => {
                    let status = *[STATUS_TODO, STATUS_IN_PROGRESS, STATUS_DONE]
                        .choose(&mut rng)
                        .unwrap_or(&STATUS_DONE);
                    self.set_status(&id, status).map(|()| id)
                }
                (30..45, Some(id)) => {
                    let due = rng.random_bool(0.85).then(|| {
                        (self.now() + TimeDelta::days(rng.random_range(-10..15)))
                            .date_naive()
                            .to_string()
                    });
                    self.set_due(&id, due.as_deref()).map(|()| id)
                }
                (45..55, Some(id)) => self
                    .set_title(&id, &format!("Revised task {rng_seed}-{i}"))
                    .map(|()| id),
                (55..80, Some(id)) => {
                    let edit = if rng.random_bool(0.5) {
                        BodyEdit::AppendParagraph(format!("Note {i}: checked with the team."))
                    } else {
                        BodyEdit::Replace(vec![
                            SimBlock::Heading2("Update".to_owned()),
                            SimBlock::Paragraph(format!("Rewritten in edit {i}.")),
                            SimBlock::ToDo("Confirm with owner".to_owned(), rng.random_bool(0.5)),
                        ])
                    };
                    self.edit_body(&id, edit).map(|()| id)
                }
                (90..95, Some(id)) => self.trash(&id).map(|()| id),
                (_, Some(id)) => match trashed.choose(&mut rng) {
                    Some(t) => self.restore(t).map(|()| t.clone()),
                    None => self.set_status(&id, STATUS_IN_PROGRESS).map(|()| id),
                },
            };
            match result {
                Ok(id) => touched.push(id),
                Err(e) => tracing::warn!(error = %e, "random edit failed"),
            }
        }
        touched
    }

    // ----- webhooks -----

    /// Subscribes `url`: sends the unsigned `{"verification_token": …}` handshake once and
    /// returns the token that signs every later event. The handshake's answer does not
    /// matter (Notion verifies by the pasted token); fails (and subscribes nothing) only
    /// when the URL cannot be reached.
    pub async fn subscribe(&self, url: &str) -> Result<String, SimError> {
        self.inner
            .hub
            .subscribe(url, None, None)
            .await
            .map(|(t, _)| t)
    }

    /// Like [`SimHandle::subscribe`] with a verification token chosen by the caller, so a
    /// receiver can be configured with its secret before the handshake arrives.
    pub async fn subscribe_with_token(
        &self,
        url: &str,
        verification_token: &str,
    ) -> Result<String, SimError> {
        self.inner
            .hub
            .subscribe(url, Some(verification_token.to_owned()), None)
            .await
            .map(|(t, _)| t)
    }

    /// Like [`SimHandle::subscribe`] (with the caller's verification token when given) for
    /// an integration that only the databases `databases` are shared with: the
    /// subscription gets only their pages' and data sources' events.
    pub async fn subscribe_scoped(
        &self,
        url: &str,
        verification_token: Option<&str>,
        databases: &[String],
    ) -> Result<String, SimError> {
        self.inner
            .hub
            .subscribe(
                url,
                verification_token.map(str::to_owned),
                Some(databases.to_vec()),
            )
            .await
            .map(|(t, _)| t)
    }

    /// Replaces the webhook behaviour for events emitted from now on.
    pub fn set_webhook_config(&self, c: WebhookConfig) {
        self.inner.hub.set_config(c);
    }

    /// Webhook counters.
    pub fn webhook_stats(&self) -> WebhookStats {
        self.inner.hub.stats()
    }

    /// Resolves when no event is aggregating, waiting, in flight or retrying.
    pub async fn webhooks_idle(&self) {
        self.inner.hub.idle().await;
    }

    // ----- faults and limits -----

    /// Replaces the random fault injection settings.
    pub fn set_faults(&self, f: Faults) {
        crate::lock(&self.inner.limits).faults = f;
    }

    /// Answers the next `count` requests of one route (`method`, and the route as axum
    /// matches it, e.g. `"/v1/pages/{id}"`) with `status`, `code` and `message`, as Notion
    /// would (e.g. 400 `validation_error` "Can't edit block that is archived…"), before
    /// anything else. Other routes are untouched.
    pub fn refuse_next(
        &self,
        method: &str,
        route: &str,
        status: u16,
        code: &'static str,
        message: &str,
        count: u32,
    ) {
        if count == 0 {
            return;
        }
        crate::lock(&self.inner.limits)
            .refusals
            .push(crate::limits::Refusal {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
                code,
                message: message.to_owned(),
                remaining: count,
            });
    }

    /// The next `count` API requests answer `status` (429 `rate_limited`, 529
    /// `service_overload`, 5xx, 409 …) with `Retry-After: retry_after` when given.
    pub fn force_errors(&self, status: u16, count: u32, retry_after: Option<u32>) {
        if count == 0 {
            return;
        }
        crate::lock(&self.inner.limits).forced.push_back(Forced {
            integration: None,
            status,
            remaining: count,
            retry_after,
        });
    }

    /// [`force_errors`](Self::force_errors) for integration `integration`'s requests only
    /// (0: the main token; `n`: `extra_tokens[n - 1]`).
    pub fn force_errors_for(
        &self,
        integration: usize,
        status: u16,
        count: u32,
        retry_after: Option<u32>,
    ) {
        if count == 0 {
            return;
        }
        crate::lock(&self.inner.limits).forced.push_back(Forced {
            integration: Some(integration),
            status,
            remaining: count,
            retry_after,
        });
    }

    /// Drops every forced error still waiting (the storm ends).
    pub fn clear_forced_errors(&self) {
        crate::lock(&self.inner.limits).forced.clear();
    }

    /// Replaces every integration's bucket (full); `None` disables rate limiting.
    pub fn set_rate_limit(&self, r: Option<RateLimit>) {
        for b in &mut crate::lock(&self.inner.limits).integrations {
            *b = r.map(Bucket::new);
        }
    }

    /// Replaces integration `integration`'s bucket (full); `None` disables it.
    pub fn set_integration_rate_limit(&self, integration: usize, r: Option<RateLimit>) {
        if let Some(b) = crate::lock(&self.inner.limits)
            .integrations
            .get_mut(integration)
        {
            *b = r.map(Bucket::new);
        }
    }

    /// The token of integration `integration` (0: the main one).
    pub fn integration_token(&self, integration: usize) -> Option<&str> {
        match integration {
            0 => Some(&self.inner.token),
            n => self.inner.extra_tokens.get(n - 1).map(String::as_str),
        }
    }

    /// Replaces the workspace-wide bucket (full); `None` disables it.
    pub fn set_workspace_limit(&self, r: Option<RateLimit>) {
        crate::lock(&self.inner.limits).workspace = r.map(Bucket::new);
    }

    /// Sets the query visibility delay for edits committed from now on.
    pub fn set_visibility_delay(&self, d: Duration) {
        crate::lock(&self.inner.settings).visibility_delay = d;
    }

    /// Sets how many results one data source query returns at most.
    pub fn set_query_result_limit(&self, limit: usize) {
        crate::lock(&self.inner.settings).query_result_limit = limit;
    }

    /// Enables/disables `GET /v1/pages/{id}/markdown` and sets its block limit.
    pub fn set_markdown_endpoint(&self, enabled: bool, block_limit: usize) {
        let mut s = crate::lock(&self.inner.settings);
        s.markdown_enabled = enabled;
        s.markdown_block_limit = block_limit;
    }

    // ----- observation -----

    /// Every API request since start or the last [`SimHandle::clear_request_log`].
    pub fn request_log(&self) -> Vec<RequestRecord> {
        crate::lock(&self.inner.log).records()
    }

    /// Forgets the request log (cumulative counters are kept).
    pub fn clear_request_log(&self) {
        crate::lock(&self.inner.log).clear();
    }

    /// Requests in the log for a method and route template, e.g. `("GET", "/v1/pages/{id}")`.
    pub fn count_requests(&self, method: &str, route: &str) -> usize {
        crate::lock(&self.inner.log).count(method, route)
    }

    /// Cumulative counters per route, method and status since start.
    pub fn route_counts(&self) -> Vec<RouteCount> {
        crate::lock(&self.inner.log).counters()
    }

    /// A page of any data source, as it is now.
    pub fn page(&self, id: &str) -> Option<SimPage> {
        let id = crate::model::normalize_id(id)?;
        let w = crate::lock(&self.inner.world);
        let page = w.pages.get(&id)?;
        sim_page(&w, page)
    }

    /// Every page of the task data sources ("Tasks", then "Tasks 2", …; trashed and
    /// unshared included), each oldest first.
    pub fn pages(&self) -> Vec<SimPage> {
        let w = crate::lock(&self.inner.world);
        self.inner
            .ids
            .task_data_source_ids
            .iter()
            .flat_map(|ds| w.pages_of(ds))
            .filter_map(|p| sim_page(&w, p))
            .collect()
    }

    /// Stops the server (in-flight requests get up to 2 s) and the webhook sender.
    pub async fn shutdown(self) {
        self.inner.cancel.cancel();
        let server = crate::lock(&self.inner.server).take();
        if let Some(mut server) = server
            && tokio::time::timeout(Duration::from_secs(2), &mut server)
                .await
                .is_err()
        {
            server.abort();
            let _ = server.await;
        }
        self.inner.hub.shutdown().await;
    }
}

fn sim_page(w: &World, page: &crate::model::PageRecord) -> Option<SimPage> {
    let ds = w.data_source(&page.data_source_id)?;
    let snap = page.latest();
    let status = w.status_prop_id(&ds.id).and_then(|pid| {
        let schema = ds.prop_by_id(&pid)?;
        match snap.props.get(&pid) {
            Some(PropValue::Status(Some(o))) => schema.option_by_id(o).map(|o| o.name.clone()),
            _ => None,
        }
    });
    let due = w
        .due_prop_id(&ds.id)
        .and_then(|pid| match snap.props.get(&pid) {
            Some(PropValue::Date(Some(d))) => Some(d.start.render()),
            _ => None,
        });
    let title = match snap.props.get(&ds.title_prop().id) {
        Some(PropValue::Title(t)) => plain_text(t),
        _ => String::new(),
    };
    Some(SimPage {
        id: page.id.clone(),
        data_source_id: page.data_source_id.clone(),
        title,
        status,
        due,
        created_time: page.created_time,
        last_edited_time: snap.last_edited_time,
        in_trash: snap.in_trash,
        shared: page.shared,
        markdown: crate::markdown::render(&snap.body),
        properties: crate::render::properties(w, ds, snap, None),
    })
}
