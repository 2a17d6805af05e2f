//! The process's one shutdown signal: SIGINT or SIGTERM cancels one token (the only
//! place signal handlers are installed).

use tokio_util::sync::CancellationToken;

/// SIGINT or SIGTERM cancels `token` (a second signal is left to the default handler).
pub fn spawn_handler(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler installs");
            tokio::select! {
                _ = ctrl_c => tracing::info!("SIGINT received"),
                _ = term.recv() => tracing::info!("SIGTERM received"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        token.cancel();
    });
}
