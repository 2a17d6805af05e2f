//! Terminal progress for `notion-sync reconcile`: pages seen against the mirror's
//! size, and an ETA from the queue and the pacer's current rate.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sync_engine::Engine;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Progress {
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts drawing when `terminal`; otherwise does nothing.
    pub fn start(engine: Engine, terminal: bool) -> Progress {
        let stop = CancellationToken::new();
        if !terminal {
            return Progress { stop, task: None };
        }
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} pages  {msg}")
                .expect("template is valid")
                .progress_chars("=> "),
        );
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = s.cancelled() => break,
                    _ = tick.tick() => draw(&engine, &bar).await,
                }
            }
            draw(&engine, &bar).await;
            bar.finish();
        });
        Progress {
            stop,
            task: Some(task),
        }
    }

    pub async fn finish(mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

async fn draw(engine: &Engine, bar: &ProgressBar) {
    let rec = engine.status().reconcile();
    let queued = engine
        .store()
        .queue_stats()
        .await
        .map(|s| s.queued_bulk + s.queued_interactive + s.running)
        .unwrap_or(0);
    let rate = engine.client().pacer().snapshot().current_rate.max(0.01);
    match rec.running {
        Some(p) => {
            bar.set_prefix(p.kind);
            let len = p.expected_pages.max(p.pages_seen);
            bar.set_length(len);
            bar.set_position(p.pages_seen);
            // Each remaining 100 pages is one query; each queued job about one request.
            let requests = (len - p.pages_seen).div_ceil(100) + queued;
            bar.set_message(format!(
                "{queued} bodies queued, {rate:.1} req/s, ETA {}",
                eta(requests as f64 / rate)
            ));
        }
        None => {
            bar.set_prefix("draining");
            bar.set_message(format!(
                "{queued} jobs left, {rate:.1} req/s, ETA {}",
                eta(queued as f64 / rate)
            ));
        }
    }
}

fn eta(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
