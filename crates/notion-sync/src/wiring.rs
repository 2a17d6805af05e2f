//! Wiring the sources: one Notion client (and pacer) per integration, linked to the
//! pacers of its workspace, and one engine per source over the shared store, each with
//! its own notifier batch; replicas sharing a database share each integration's budget
//! (`store_budget.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use notion_api::{ClientConfig, NotionClient, Pacer, PacerConfig, Workspace};
use sync_engine::{Engine, EngineConfig, Notifier, NotifierTask, Sources};
use sync_store::Store;

use crate::config::{Config, IntegrationConfig, Secrets, SourceConfig, secret_var};
use crate::replica::BudgetSharing;
use crate::store_budget::StoreBudget;

/// One integration's Notion client, with its own pacer (its own budget), joined to its
/// workspace when it shares one.
pub fn integration_client(
    config: &Config,
    integration: &IntegrationConfig,
    secrets: &Secrets,
    workspace: Option<Arc<Workspace>>,
) -> anyhow::Result<NotionClient> {
    let var = secret_var("NOTION_TOKEN", &integration.name);
    let token = secrets.token(&integration.name).cloned().with_context(|| {
        format!(
            "{var} is not set: create an internal integration at https://www.notion.so/profile/integrations and export its token (or {var}_FILE)"
        )
    })?;
    let pacer = Pacer::named(
        PacerConfig {
            requests_per_second: integration.requests_per_second,
            // A small burst keeps Notion's own bucket from emptying, so timing jitter
            // between us and Notion never turns into a 429.
            burst: 2,
            ..PacerConfig::default()
        },
        &integration.name,
    );
    let client = NotionClient::new(
        ClientConfig {
            base_url: config.notion.api_url.trim_end_matches('/').to_owned(),
            timeout: config.notion.timeout,
            max_attempts: config.notion.max_attempts,
            workspace,
            ..ClientConfig::new(token)
        },
        pacer,
    )
    .with_context(|| {
        format!(
            "building the Notion client of integration {}",
            integration.name
        )
    })?;
    Ok(client)
}

/// One source's engine configuration, as configured.
pub fn engine_config(config: &Config, source: &SourceConfig) -> EngineConfig {
    let excluded_data_sources = config
        .sources()
        .iter()
        .filter(|s| s.name != source.name)
        .filter_map(|s| match s.source {
            sync_engine::Source::DataSource(id) => Some(id),
            sync_engine::Source::Database(_) => None,
        })
        .collect();
    EngineConfig {
        name: source.name.clone(),
        integration: source.integration.clone(),
        excluded_data_sources,
        tasks: source.tasks.clone(),
        reconcile: config.reconcile.clone(),
        workers: config.workers.clone(),
        ..EngineConfig::new(source.source)
    }
}

/// Builds every source's engine over an open store (one client per integration, shared
/// by its sources); the notifier task (when Slack is set) must be run.
pub fn build_sources(
    config: &Config,
    secrets: &Secrets,
    store: Store,
) -> anyhow::Result<(Sources, Option<NotifierTask>)> {
    let sources = config.sources();
    if sources.is_empty() {
        anyhow::bail!(
            "no data source configured: set notion.data_source_id (or notion.database_id, or [sources.<name>]) in the config file or NOTION_SYNC_NOTION__DATA_SOURCE_ID"
        );
    }
    let mut workspaces: BTreeMap<String, Arc<Workspace>> = BTreeMap::new();
    let mut clients = BTreeMap::new();
    for integration in config.integrations() {
        let workspace = integration.workspace.as_ref().map(|w| {
            workspaces
                .entry(w.clone())
                .or_insert_with(|| Workspace::new(w.clone()))
                .clone()
        });
        let client = integration_client(config, &integration, secrets, workspace)?;
        // Replicas on one database draw from one budget per integration.
        if store.shared() && config.replicas.budget == BudgetSharing::Shared {
            client
                .pacer()
                .share_budget(Arc::new(StoreBudget::new(store.clone(), &integration.name)));
        }
        clients.insert(integration.name.clone(), client);
    }
    let (notifier, task) = match &secrets.slack_webhook_url {
        Some(url) => {
            let (n, t) = Notifier::slack(url.clone());
            (n, Some(t))
        }
        None => (Notifier::disabled(), None),
    };
    let engines = sources
        .iter()
        .map(|s| {
            Engine::new(
                engine_config(config, s),
                store.clone(),
                clients[&s.integration].clone(),
                notifier.for_source(&s.name),
            )
        })
        .collect();
    Ok((Sources::new(engines), task))
}
