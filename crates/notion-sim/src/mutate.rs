//! Changes to pages (create, properties, flags, sharing) and to the schema, each producing
//! a new version and the webhook events Notion would send for it (body edits:
//! `block_edit.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::SimBlock;
use crate::clock::floor_minute;
use crate::error::SimError;
use crate::generate::{PROP_DUE, PROP_STATUS, from_sim_blocks};
use crate::model::{
    Block, DatePoint, DateValue, PageRecord, PageSnapshot, PropKind, PropValue, RenderCache,
    Segment, SelectOption, World,
};
use crate::webhooks::{Author, EventSpec};

/// When and by whom a change is made.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    pub now: DateTime<Utc>,
    pub instant: Instant,
    pub delay: Duration,
    pub author: Author,
}

/// A page to create: its property values, body, icon and cover.
#[derive(Clone, Debug, Default)]
pub(crate) struct NewPage {
    /// Values by property id; the rest start empty.
    pub props: Vec<(String, PropValue)>,
    pub body: Vec<Block>,
    pub icon: Value,
    pub cover: Value,
}

/// A change to a page's properties and flags, applied as one version.
#[derive(Clone, Debug, Default)]
pub(crate) struct PageEdit {
    pub props: Vec<(String, PropValue)>,
    pub in_trash: Option<bool>,
    pub icon: Option<Value>,
    pub cover: Option<Value>,
    pub is_locked: Option<bool>,
}

impl World {
    fn page_parent(&self, page: &PageRecord) -> Value {
        let db = self
            .data_source(&page.data_source_id)
            .map(|d| d.database_id.clone())
            .unwrap_or_default();
        json!({"id": db, "type": "database", "data_source_id": page.data_source_id})
    }

    fn ds_parent(&self, ds_id: &str) -> Value {
        let db = self
            .data_source(ds_id)
            .map(|d| d.database_id.clone())
            .unwrap_or_default();
        json!({"id": db, "type": "database"})
    }

    pub(crate) fn page_event(&self, page: &PageRecord, kind: &'static str, ctx: &Ctx) -> EventSpec {
        EventSpec {
            kind,
            entity_id: page.id.clone(),
            entity_type: "page",
            parent: self.page_parent(page),
            updated_blocks: None,
            updated_properties: None,
            authors: vec![ctx.author.clone()],
            at: ctx.now,
        }
    }

    fn ds_content_event(&self, page: &PageRecord, ctx: &Ctx) -> EventSpec {
        EventSpec {
            kind: "data_source.content_updated",
            entity_id: page.data_source_id.clone(),
            entity_type: "data_source",
            parent: self.ds_parent(&page.data_source_id),
            updated_blocks: Some(vec![page.id.clone()]),
            updated_properties: None,
            authors: vec![ctx.author.clone()],
            at: ctx.now,
        }
    }

    fn page_mut(&mut self, id: &str) -> Result<&mut PageRecord, SimError> {
        self.pages
            .get_mut(id)
            .ok_or_else(|| SimError::PageNotFound(id.to_owned()))
    }

    /// Commits `snap` as the page's newest version, stamped by `ctx`.
    pub(crate) fn commit(
        &mut self,
        ctx: &Ctx,
        page_id: &str,
        mut snap: PageSnapshot,
    ) -> Result<(), SimError> {
        snap.last_edited_time = floor_minute(ctx.now);
        snap.last_edited_by = ctx.author.id.clone();
        let body = Arc::clone(&snap.body);
        self.page_mut(page_id)?.push(snap, ctx.instant, ctx.delay);
        self.index_blocks(page_id, &body);
        Ok(())
    }

    pub(crate) fn status_value(&self, ds_id: &str, name: &str) -> Result<PropValue, SimError> {
        let ds = self
            .data_source(ds_id)
            .ok_or_else(|| SimError::UnknownProperty("Status".to_owned()))?;
        let schema = ds
            .prop_by_id(PROP_STATUS)
            .or_else(|| {
                ds.props
                    .iter()
                    .find(|p| matches!(p.kind, PropKind::Status { .. }))
            })
            .ok_or_else(|| SimError::UnknownProperty("Status".to_owned()))?;
        let option = schema
            .option_by_name(name)
            .ok_or_else(|| SimError::UnknownOption {
                property: schema.name.clone(),
                option: name.to_owned(),
            })?;
        Ok(PropValue::Status(Some(option.id.clone())))
    }

    pub(crate) fn status_prop_id(&self, ds_id: &str) -> Option<String> {
        let ds = self.data_source(ds_id)?;
        ds.prop_by_id(PROP_STATUS)
            .or_else(|| {
                ds.props
                    .iter()
                    .find(|p| matches!(p.kind, PropKind::Status { .. }))
            })
            .map(|p| p.id.clone())
    }

    /// The Tasks due-date property: the well-known id, else a date property named "Due Date".
    pub(crate) fn due_prop_id(&self, ds_id: &str) -> Option<String> {
        let ds = self.data_source(ds_id)?;
        ds.prop_by_id(PROP_DUE)
            .or_else(|| ds.prop("Due Date"))
            .filter(|p| matches!(p.kind, PropKind::Date))
            .map(|p| p.id.clone())
    }

    pub(crate) fn due_value(due: Option<&str>) -> Result<PropValue, SimError> {
        match due {
            None => Ok(PropValue::Date(None)),
            Some(s) => {
                let start = DatePoint::parse(s)
                    .ok_or_else(|| SimError::Invalid(format!("{s:?} is not an ISO 8601 date")))?;
                Ok(PropValue::Date(Some(DateValue {
                    start,
                    end: None,
                    time_zone: None,
                })))
            }
        }
    }

    /// Creates a page in `ds_id` with title, optional status and due date and a body.
    pub(crate) fn create_page(
        &mut self,
        ctx: &Ctx,
        ds_id: &str,
        title: &str,
        status: Option<&str>,
        due: Option<&str>,
        body: &[SimBlock],
    ) -> Result<(String, Vec<EventSpec>), SimError> {
        let ds = self
            .data_source(ds_id)
            .ok_or_else(|| SimError::Invalid(format!("no data source {ds_id}")))?;
        let mut props = vec![(
            ds.title_prop().id.clone(),
            PropValue::Title(vec![Segment::plain(title)]),
        )];
        match (self.status_prop_id(ds_id), status) {
            (Some(status_id), Some(s)) => props.push((status_id, self.status_value(ds_id, s)?)),
            (None, Some(s)) => {
                return Err(SimError::UnknownOption {
                    property: "Status".to_owned(),
                    option: s.to_owned(),
                });
            }
            (_, None) => {}
        }
        if due.is_some() {
            let due_id = self
                .due_prop_id(ds_id)
                .ok_or_else(|| SimError::UnknownProperty("Due Date".to_owned()))?;
            props.push((due_id, World::due_value(due)?));
        }
        let body = from_sim_blocks(self, body, floor_minute(ctx.now), &ctx.author.id);
        let new = NewPage {
            props,
            body,
            icon: Value::Null,
            cover: Value::Null,
        };
        self.insert_page(ctx, ds_id, new)
    }

    /// Inserts a new page: every property not given is empty, except a status, which starts
    /// at the default to-do option (as in Notion).
    pub(crate) fn insert_page(
        &mut self,
        ctx: &Ctx,
        ds_id: &str,
        new: NewPage,
    ) -> Result<(String, Vec<EventSpec>), SimError> {
        let ds = self
            .data_source(ds_id)
            .ok_or_else(|| SimError::Invalid(format!("no data source {ds_id}")))?;
        let mut props: HashMap<String, PropValue> = ds
            .props
            .iter()
            .map(|p| (p.id.clone(), p.kind.empty_value()))
            .collect();
        if let Some(status_id) = self.status_prop_id(ds_id) {
            let value = self.status_value(ds_id, crate::generate::STATUS_TODO)?;
            props.insert(status_id, value);
        }
        props.extend(new.props);
        let at = floor_minute(ctx.now);
        let id = self.new_id();
        let seq = self.next_seq;
        self.next_seq += 1;
        self.index_blocks(&id, &new.body);
        let snap = PageSnapshot {
            last_edited_time: at,
            last_edited_by: ctx.author.id.clone(),
            in_trash: false,
            is_locked: false,
            icon: new.icon,
            cover: new.cover,
            props,
            body: Arc::new(new.body),
            rendered: RenderCache::default(),
        };
        let mut record = PageRecord {
            id: id.clone(),
            data_source_id: ds_id.to_owned(),
            seq,
            created_time: at,
            created_by: ctx.author.id.clone(),
            shared: true,
            versions: Vec::new(),
        };
        record.push(snap, ctx.instant, ctx.delay);
        let events = vec![
            self.page_event(&record, "page.created", ctx),
            self.ds_content_event(&record, ctx),
        ];
        self.pages.insert(id.clone(), record);
        Ok((id, events))
    }

    /// Applies property/flag changes as one version; unchanged values cost nothing.
    pub(crate) fn edit_page(
        &mut self,
        ctx: &Ctx,
        page_id: &str,
        edit: PageEdit,
    ) -> Result<Vec<EventSpec>, SimError> {
        let page = self
            .pages
            .get(page_id)
            .ok_or_else(|| SimError::PageNotFound(page_id.to_owned()))?;
        let ds = self
            .data_source(&page.data_source_id)
            .ok_or_else(|| SimError::PageNotFound(page_id.to_owned()))?;
        let mut snap = PageSnapshot::clone(page.latest());
        let mut changed_props = Vec::new();
        for (prop_id, value) in edit.props {
            let current = snap
                .props
                .get(&prop_id)
                .cloned()
                .or_else(|| ds.prop_by_id(&prop_id).map(|p| p.kind.empty_value()));
            if current.as_ref() != Some(&value) {
                changed_props.push(prop_id.clone());
                snap.props.insert(prop_id, value);
            }
        }
        let trash_change = edit.in_trash.filter(|t| *t != snap.in_trash);
        if let Some(t) = trash_change {
            snap.in_trash = t;
        }
        let mut other_change = false;
        if let Some(icon) = edit.icon.filter(|i| *i != snap.icon) {
            snap.icon = icon;
            other_change = true;
        }
        if let Some(cover) = edit.cover.filter(|c| *c != snap.cover) {
            snap.cover = cover;
            other_change = true;
        }
        if let Some(lock) = edit.is_locked.filter(|l| *l != snap.is_locked) {
            snap.is_locked = lock;
            other_change = true;
        }
        if changed_props.is_empty() && trash_change.is_none() && !other_change {
            return Ok(Vec::new());
        }
        let page = page.clone();
        self.commit(ctx, page_id, snap)?;
        let mut events = Vec::new();
        if !changed_props.is_empty() {
            let mut ev = self.page_event(&page, "page.properties_updated", ctx);
            ev.updated_properties = Some(changed_props.into_iter().map(Value::String).collect());
            events.push(ev);
        }
        match trash_change {
            Some(true) => events.push(self.page_event(&page, "page.deleted", ctx)),
            Some(false) => events.push(self.page_event(&page, "page.undeleted", ctx)),
            None => {}
        }
        if !events.is_empty() {
            events.push(self.ds_content_event(&page, ctx));
        }
        Ok(events)
    }

    pub(crate) fn set_shared(&mut self, page_id: &str, shared: bool) -> Result<(), SimError> {
        self.page_mut(page_id)?.shared = shared;
        Ok(())
    }

    fn schema_event(&self, ctx: &Ctx, ds_id: &str, changes: Vec<Value>) -> EventSpec {
        EventSpec {
            kind: "data_source.schema_updated",
            entity_id: ds_id.to_owned(),
            entity_type: "data_source",
            parent: self.ds_parent(ds_id),
            updated_blocks: None,
            updated_properties: Some(changes),
            authors: vec![ctx.author.clone()],
            at: ctx.now,
        }
    }

    fn touch_ds(&mut self, ctx: &Ctx, ds_id: &str) {
        self.schema_gen += 1;
        if let Some(ds) = self.data_source_mut(ds_id) {
            ds.last_edited_time = floor_minute(ctx.now);
            ds.last_edited_by = ctx.author.id.clone();
        }
        if let Some(db) = self
            .data_source(ds_id)
            .map(|d| d.database_id.clone())
            .and_then(|db| self.databases.iter_mut().find(|d| d.id == db))
        {
            db.last_edited_time = ctx.now;
        }
    }

    pub(crate) fn rename_property(
        &mut self,
        ctx: &Ctx,
        ds_id: &str,
        old: &str,
        new: &str,
    ) -> Result<Vec<EventSpec>, SimError> {
        let ds = self
            .data_source_mut(ds_id)
            .ok_or_else(|| SimError::UnknownProperty(old.to_owned()))?;
        if ds.props.iter().any(|p| p.name == new) {
            return Err(SimError::NameTaken(new.to_owned()));
        }
        let prop = ds
            .props
            .iter_mut()
            .find(|p| p.name == old)
            .ok_or_else(|| SimError::UnknownProperty(old.to_owned()))?;
        prop.name = new.to_owned();
        let change = json!({"id": prop.id, "name": new, "action": "updated"});
        self.touch_ds(ctx, ds_id);
        Ok(vec![self.schema_event(ctx, ds_id, vec![change])])
    }

    pub(crate) fn remove_property(
        &mut self,
        ctx: &Ctx,
        ds_id: &str,
        name: &str,
    ) -> Result<Vec<EventSpec>, SimError> {
        let ds = self
            .data_source_mut(ds_id)
            .ok_or_else(|| SimError::UnknownProperty(name.to_owned()))?;
        let idx = ds
            .props
            .iter()
            .position(|p| p.name == name && !matches!(p.kind, PropKind::Title))
            .ok_or_else(|| SimError::UnknownProperty(name.to_owned()))?;
        let prop = ds.props.remove(idx);
        let change = json!({"id": prop.id, "name": prop.name, "action": "deleted"});
        self.touch_ds(ctx, ds_id);
        Ok(vec![self.schema_event(ctx, ds_id, vec![change])])
    }

    pub(crate) fn remove_status_option(
        &mut self,
        ctx: &Ctx,
        ds_id: &str,
        name: &str,
    ) -> Result<Vec<EventSpec>, SimError> {
        let status_id = self
            .status_prop_id(ds_id)
            .ok_or_else(|| SimError::UnknownProperty("Status".to_owned()))?;
        let prop = self
            .data_source_mut(ds_id)
            .and_then(|d| d.prop_mut(&status_id))
            .ok_or_else(|| SimError::UnknownProperty("Status".to_owned()))?;
        let PropKind::Status { options, groups } = &mut prop.kind else {
            return Err(SimError::UnknownProperty("Status".to_owned()));
        };
        let idx =
            options
                .iter()
                .position(|o| o.name == name)
                .ok_or_else(|| SimError::UnknownOption {
                    property: prop.name.clone(),
                    option: name.to_owned(),
                })?;
        let removed = options.remove(idx);
        for g in groups.iter_mut() {
            g.option_ids.retain(|id| *id != removed.id);
        }
        let change = json!({"id": prop.id, "name": prop.name, "action": "updated"});
        self.touch_ds(ctx, ds_id);
        Ok(vec![self.schema_event(ctx, ds_id, vec![change])])
    }

    pub(crate) fn add_status_option(
        &mut self,
        ctx: &Ctx,
        ds_id: &str,
        name: &str,
        group: &str,
    ) -> Result<Vec<EventSpec>, SimError> {
        let status_id = self
            .status_prop_id(ds_id)
            .ok_or_else(|| SimError::UnknownProperty("Status".to_owned()))?;
        let option_id = self.new_id();
        let prop = self
            .data_source_mut(ds_id)
            .and_then(|d| d.prop_mut(&status_id))
            .ok_or_else(|| SimError::UnknownProperty("Status".to_owned()))?;
        let PropKind::Status { options, groups } = &mut prop.kind else {
            return Err(SimError::UnknownProperty("Status".to_owned()));
        };
        if options.iter().any(|o| o.name == name) {
            return Err(SimError::NameTaken(name.to_owned()));
        }
        let g = groups
            .iter_mut()
            .find(|g| g.name == group)
            .ok_or_else(|| SimError::UnknownGroup(group.to_owned()))?;
        g.option_ids.push(option_id.clone());
        let color = g.color.clone();
        options.push(SelectOption {
            id: option_id,
            name: name.to_owned(),
            color,
        });
        let change = json!({"id": prop.id, "name": prop.name, "action": "updated"});
        self.touch_ds(ctx, ds_id);
        Ok(vec![self.schema_event(ctx, ds_id, vec![change])])
    }
}
