//! Who we are and what we mirror: our integration's bot user (to recognise echoes of
//! our own writes) and the data sources of the configured source (a database's are
//! discovered on first use). Owns the routing context webhook events are routed with.

use std::sync::{Arc, RwLock};

use notion_api::{Lane as PaceLane, NotionError, NotionId, Page, Parent};

use crate::config::Source;
use crate::context::Ctx;
use crate::route::RouteContext;

pub(crate) struct Scope {
    ctx: Arc<Ctx>,
    route: RwLock<RouteContext>,
    /// A database's data sources were read (possibly none left: every one is another
    /// source's), so an empty list means "none", not "not known yet".
    discovered: std::sync::atomic::AtomicBool,
}

impl Scope {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Scope {
        let route = RouteContext {
            bot_user: None,
            data_sources: match ctx.config.source {
                Source::DataSource(id) => vec![id],
                Source::Database(_) => Vec::new(),
            },
        };
        Scope {
            ctx,
            route: RwLock::new(route),
            discovered: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Who we are and what we mirror, as known now.
    pub(crate) fn route_context(&self) -> RouteContext {
        self.route.read().expect("route lock").clone()
    }

    /// Learns our bot user (`users/me`) once, on `lane`.
    pub(crate) async fn ensure_identity(&self, lane: PaceLane) -> Result<(), NotionError> {
        if self.route_context().bot_user.is_some() {
            return Ok(());
        }
        let client = self.ctx.client().with_lane(lane);
        let me = self.ctx.observe(client.users_me().await)?;
        self.route.write().expect("route lock").bot_user = Some(me.value.id);
        Ok(())
    }

    /// The data sources we mirror, discovering a database's on first use.
    pub(crate) async fn data_sources(&self) -> Result<Vec<NotionId>, NotionError> {
        let known = self.route_context().data_sources;
        if !known.is_empty() || self.discovered.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(known);
        }
        let Source::Database(db) = self.ctx.config.source else {
            return Ok(known);
        };
        let database = self
            .ctx
            .observe(self.ctx.client().retrieve_database(db).await)?;
        let excluded = &self.ctx.config.excluded_data_sources;
        let (ids, others): (Vec<NotionId>, Vec<NotionId>) = database
            .value
            .data_sources
            .iter()
            .map(|d| d.id)
            .partition(|id| !excluded.contains(id));
        if !others.is_empty() {
            tracing::warn!(database.id = %db, data_sources = ?others.iter().map(ToString::to_string).collect::<Vec<_>>(), "data sources of this database that another source names are left to that source");
            if ids.is_empty() {
                tracing::error!(database.id = %db, "every data source of this database is another source's: this source mirrors nothing");
            }
        }
        tracing::info!(database.id = %db, data_sources = ?ids.iter().map(ToString::to_string).collect::<Vec<_>>(), "discovered data sources");
        self.route.write().expect("route lock").data_sources = ids.clone();
        self.discovered
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(ids)
    }

    /// Whether the data sources we mirror are known (named, or read from the database;
    /// possibly none).
    pub(crate) fn resolved(&self) -> bool {
        !self.route_context().data_sources.is_empty()
            || self.discovered.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether a page belongs to a data source we mirror.
    pub(crate) async fn contains(&self, page: &Page) -> bool {
        let sources = match self.data_sources().await {
            Ok(s) => s,
            Err(_) => self.route_context().data_sources,
        };
        match (page.data_source_id(), &page.parent) {
            (Some(ds), _) => {
                let unknown_yet = sources.is_empty()
                    && !self.discovered.load(std::sync::atomic::Ordering::Acquire);
                !self.ctx.config.excluded_data_sources.contains(&ds)
                    && (unknown_yet || sources.contains(&ds))
            }
            (None, Parent::Database { database_id }) => {
                self.ctx.config.source == Source::Database(*database_id)
            }
            _ => false,
        }
    }
}
