//! The state one simulator shares between its HTTP server, its webhook sender and every
//! `SimHandle` clone, and the one way to change the workspace (`Shared::mutate`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::SimClock;
use crate::error::SimError;
use crate::limits::Limits;
use crate::log::RequestLog;
use crate::model::World;
use crate::mutate::Ctx;
use crate::webhooks::{Author, EventSpec, Hub};

#[derive(Debug)]
pub(crate) struct Settings {
    pub visibility_delay: Duration,
    pub markdown_enabled: bool,
    pub markdown_block_limit: usize,
    pub query_result_limit: usize,
    pub silent: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Ids {
    pub database_id: String,
    pub data_source_id: String,
    /// "Tasks" first, then the extra task databases'.
    pub task_data_source_ids: Vec<String>,
    pub other_data_source_id: String,
    pub other_page_ids: Vec<String>,
    pub bot_user_id: String,
    pub person_id: String,
}

/// State shared by the HTTP server, the webhook sender and every `SimHandle` clone.
/// Deliberately not `Debug`: it holds the token.
pub(crate) struct Shared {
    /// Integration 0's token.
    pub token: String,
    /// Integrations 1, 2, …'s tokens.
    pub extra_tokens: Vec<String>,
    pub addr: SocketAddr,
    pub clock: SimClock,
    pub started: Instant,
    pub world: Mutex<World>,
    pub limits: Mutex<Limits>,
    pub settings: Mutex<Settings>,
    pub log: Mutex<RequestLog>,
    pub hub: Arc<Hub>,
    pub cancel: CancellationToken,
    pub server: Mutex<Option<JoinHandle<()>>>,
    pub ids: Ids,
}

impl Shared {
    /// The integration a bearer token belongs to (0 for `token`).
    pub(crate) fn integration_of(&self, bearer: &str) -> Option<usize> {
        if bearer == self.token {
            return Some(0);
        }
        self.extra_tokens
            .iter()
            .position(|t| t == bearer)
            .map(|i| i + 1)
    }

    pub(crate) fn bot(&self) -> Author {
        Author {
            id: self.ids.bot_user_id.clone(),
            bot: true,
        }
    }

    pub(crate) fn person(&self) -> Author {
        Author {
            id: self.ids.person_id.clone(),
            bot: false,
        }
    }

    pub(crate) fn visibility_delay(&self) -> Duration {
        crate::lock(&self.settings).visibility_delay
    }

    /// Runs a change under the world lock, then hands its events to the webhook sender.
    pub(crate) fn mutate<T>(
        &self,
        author: Author,
        silent: bool,
        f: impl FnOnce(&mut World, &Ctx) -> Result<(T, Vec<EventSpec>), SimError>,
    ) -> Result<T, SimError> {
        let ctx = Ctx {
            now: self.clock.now(),
            instant: Instant::now(),
            delay: self.visibility_delay(),
            author,
        };
        let (out, events) = {
            let mut w = crate::lock(&self.world);
            f(&mut w, &ctx)?
        };
        let silent = silent || crate::lock(&self.settings).silent;
        if !silent && !events.is_empty() {
            self.hub.emit(events);
        }
        Ok(out)
    }
}
