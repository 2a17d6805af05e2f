//! `start`: generates the workspace, binds the listener and serves the API and the
//! `/_sim` control endpoints until the simulator is stopped.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::SimClock;
use crate::config::SimConfig;
use crate::handle::SimHandle;
use crate::limits::Limits;
use crate::log::RequestLog;
use crate::shared::{Ids, Settings, Shared};
use crate::webhooks::{Hub, Workspace};

/// Starts a simulator: binds `config.listen`, generates the workspace, spawns the HTTP server
/// and the webhook sender. Must be called inside a tokio runtime.
pub async fn start(config: SimConfig) -> std::io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let clock = SimClock::new(config.start_time);
    let world = crate::generate::workspace(
        config.seed,
        config.pages,
        config.extra_task_databases,
        clock.now(),
    );
    let mut accessible_by: Vec<Value> = world
        .people
        .iter()
        .map(|p| json!({"id": p.id, "type": "person"}))
        .collect();
    accessible_by.push(json!({"id": world.bot.id, "type": "bot"}));
    let workspace = Workspace {
        workspace_id: world.workspace_id.clone(),
        workspace_name: world.workspace_name.clone(),
        integration_id: world.integration_id.clone(),
        accessible_by: Value::Array(accessible_by),
    };
    let ids = Ids {
        database_id: world.tasks().database_id.clone(),
        data_source_id: world.tasks_data_source_id.clone(),
        task_data_source_ids: std::iter::once(&world.tasks_data_source_id)
            .chain(&world.extra_task_data_source_ids)
            .cloned()
            .collect(),
        other_data_source_id: world.other_data_source_id.clone(),
        other_page_ids: world
            .pages_of(&world.other_data_source_id)
            .iter()
            .map(|p| p.id.clone())
            .collect(),
        bot_user_id: world.bot.id.clone(),
        person_id: world
            .people
            .first()
            .map(|p| p.id.clone())
            .unwrap_or_default(),
    };
    let cancel = CancellationToken::new();
    let hub = Arc::new(Hub::new(
        workspace,
        config.webhook.clone(),
        config.seed,
        cancel.child_token(),
    ));
    let shared = Arc::new(Shared {
        token: config.token.clone(),
        extra_tokens: config.extra_tokens.clone(),
        addr,
        clock,
        started: Instant::now(),
        world: Mutex::new(world),
        limits: Mutex::new(Limits::new(
            1 + config.extra_tokens.len(),
            config.rate_limit,
            config.workspace_limit,
            config.seed,
        )),
        settings: Mutex::new(Settings {
            visibility_delay: config.visibility_delay,
            markdown_enabled: config.markdown_endpoint_enabled,
            markdown_block_limit: config.markdown_block_limit,
            query_result_limit: config.query_result_limit,
            silent: false,
        }),
        log: Mutex::new(RequestLog::default()),
        hub,
        cancel: cancel.clone(),
        server: Mutex::new(None),
        ids,
    });
    let app = crate::control::routes()
        .merge(crate::api::routes())
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            crate::gate::api_middleware,
        ))
        .with_state(Arc::clone(&shared));
    let server = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "notion-sim server stopped with an error");
        }
    });
    *crate::lock(&shared.server) = Some(server);
    tracing::info!(sim.addr = %addr, "notion-sim listening");
    Ok(SimHandle { inner: shared })
}
