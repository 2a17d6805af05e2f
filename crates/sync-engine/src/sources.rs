//! The configured sources of one daemon, side by side: which source a verified webhook
//! of an integration belongs to (by the data source it names, else by the mirror row of
//! its page, else the integration's first source, which hands the page on once read), and
//! the hand-off of a page to the source that mirrors it (`context::Handoff`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use notion_api::{NotionId, WebhookEvent};
use sync_store::{IncomingEvent, NewJob, Store, StoreError};

use crate::config::Source;
use crate::context::Handoff;
use crate::engine::Engine;

/// Every source's engine, in the configuration's order (sources by name). Cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct Sources {
    engines: Arc<Vec<Engine>>,
}

/// Where a verified delivery goes.
#[derive(Debug)]
pub enum Routed {
    /// This source's engine commits it (its jobs are this source's).
    To(Engine, IncomingEvent),
    /// No source of the integration mirrors what it names: recorded (for dedup), not queued.
    Unclaimed(IncomingEvent),
}

impl Sources {
    /// The sources, each wired to hand pages to its siblings (through a weak link: the
    /// engines do not keep one another alive).
    pub fn new(engines: Vec<Engine>) -> Sources {
        let sources = Sources {
            engines: Arc::new(engines),
        };
        let handoff: Arc<dyn Handoff> = Arc::new(Siblings(Arc::downgrade(&sources.engines)));
        for e in sources.engines.iter() {
            e.set_handoff(handoff.clone());
        }
        sources
    }

    /// Every engine, in the configuration's order (sources by name).
    pub fn all(&self) -> &[Engine] {
        &self.engines
    }

    /// The first source's engine (the store, clock and defaults every source shares).
    pub fn first(&self) -> &Engine {
        &self.engines[0]
    }

    /// The source called `name`.
    pub fn get(&self, name: &str) -> Option<&Engine> {
        self.engines.iter().find(|e| e.config().name == name)
    }

    /// The sources reading through `integration`.
    pub fn of_integration<'a>(&'a self, integration: &'a str) -> impl Iterator<Item = &'a Engine> {
        self.engines
            .iter()
            .filter(move |e| e.config().integration == integration)
    }

    /// The store, for store-wide work (any source's handle).
    pub fn store(&self) -> &Store {
        self.first().store()
    }

    /// The source of `integration` a verified event belongs to, with the record and jobs
    /// to commit for it. Reads the mirror (never Notion) when the event does not say.
    pub async fn route(
        &self,
        integration: &str,
        event: &WebhookEvent,
    ) -> Result<Routed, StoreError> {
        let candidates: Vec<&Engine> = self.of_integration(integration).collect();
        let Some(home) = candidates.first() else {
            return Ok(Routed::Unclaimed(unclaimed(self.first(), event)));
        };
        // With one source, an event that does not say its data source is that source's
        // (no mirror read on the webhook path).
        let several = candidates.len() > 1;
        let (engine, guessed) = match self.owner(&candidates, event, several).await? {
            Owner::Source(e) => (e, false),
            Owner::Nobody => return Ok(Routed::Unclaimed(unclaimed(home, event))),
            Owner::Unknown => ((*home).clone(), several),
        };
        let mut incoming = engine.accept(event);
        if guessed {
            // Not known to be this source's data source: read on its own, not by a query.
            for job in &mut incoming.jobs {
                job.batch = None;
            }
        }
        Ok(Routed::To(engine, incoming))
    }

    /// The source of `many` that mirrors what the event names; with `look_up`, the
    /// source of its page's mirror row when it names no data source.
    async fn owner(
        &self,
        many: &[&Engine],
        event: &WebhookEvent,
        look_up: bool,
    ) -> Result<Owner, StoreError> {
        let named = match event.entity.kind.as_str() {
            "data_source" => Some(event.entity.id),
            _ => event.data.parent.as_ref().and_then(|p| p.data_source()),
        };
        if let Some(ds) = named {
            return Ok(match many.iter().find(|e| e.data_sources().contains(&ds)) {
                Some(e) => Owner::Source((*e).clone()),
                // A database source not yet resolved may hold it: let it decide.
                None => match many.iter().find(|e| !e.data_sources_known()) {
                    Some(e) => Owner::Source((*e).clone()),
                    None => Owner::Nobody,
                },
            });
        }
        if !look_up {
            return Ok(Owner::Unknown);
        }
        // The page's mirror row knows its source (a comment names its page as parent).
        let page = match event.entity.kind.as_str() {
            "page" => Some(event.entity.id),
            _ => event
                .data
                .parent
                .as_ref()
                .filter(|p| p.kind == "page")
                .map(|p| p.id),
        };
        if let Some(page) = page
            && let Some(row) = self.store().get_page(&page).await?
            && let Some(e) = many.iter().find(|e| e.config().name == row.source)
        {
            return Ok(Owner::Source((*e).clone()));
        }
        Ok(Owner::Unknown)
    }
}

enum Owner {
    Source(Engine),
    Nobody,
    Unknown,
}

/// The event's record without its jobs.
fn unclaimed(engine: &Engine, event: &WebhookEvent) -> IncomingEvent {
    let mut incoming = engine.accept(event);
    incoming.jobs.clear();
    incoming
}

/// The hand-off's view of every source.
struct Siblings(std::sync::Weak<Vec<Engine>>);

impl Handoff for Siblings {
    fn hand_off<'a>(
        &'a self,
        from: &'a str,
        data_source: NotionId,
        database: Option<NotionId>,
        job: NewJob,
    ) -> Pin<Box<dyn Future<Output = Result<bool, StoreError>> + Send + 'a>> {
        Box::pin(async move {
            let Some(engines) = self.0.upgrade() else {
                return Ok(false);
            };
            // Any source, of any integration (it reads the page through its own): the one
            // that mirrors the data source, else one mirroring its whole database (whose
            // data sources may not be known yet).
            let others = || engines.iter().filter(|e| e.config().name != from);
            let owner = others()
                .find(|e| e.data_sources().contains(&data_source))
                .or_else(|| {
                    others().find(|e| {
                        database.is_some_and(|db| e.config().source == Source::Database(db))
                    })
                });
            let Some(owner) = owner else {
                return Ok(false);
            };
            owner.store().enqueue(job).await?;
            owner.wake_workers();
            Ok(true)
        })
    }
}
