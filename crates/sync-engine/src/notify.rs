//! Slack summaries of tasks marked overdue: one message per pass of each source (naming
//! the source when there are several), sent by a task of its own outside the Notion
//! budget, retried, never blocking the pass.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Titles listed in one message; the rest are counted.
pub const MAX_TITLES: usize = 10;
const ATTEMPTS: u32 = 5;

/// Collects marked tasks and hands summaries to the sender task.
#[derive(Clone, Debug)]
pub struct Notifier {
    marked: Arc<Mutex<Vec<String>>>,
    tx: Option<mpsc::UnboundedSender<String>>,
    /// The source its summaries name (`None`: the single-source daemon's).
    source: Option<String>,
}

/// The sender half; its owner runs [`NotifierTask::run`] and awaits it.
pub struct NotifierTask {
    rx: mpsc::UnboundedReceiver<String>,
    url: SecretString,
    http: reqwest::Client,
    retry_base: Duration,
}

impl Notifier {
    /// A notifier that only counts (no Slack URL configured).
    pub fn disabled() -> Notifier {
        Notifier {
            marked: Arc::default(),
            tx: None,
            source: None,
        }
    }

    /// A notifier of its own for source `name` (its own batch, the same sender): its
    /// summaries say "in `name`" unless `name` is the single-source `default`.
    pub fn for_source(&self, name: &str) -> Notifier {
        Notifier {
            marked: Arc::default(),
            tx: self.tx.clone(),
            source: (name != sync_store::DEFAULT_SOURCE).then(|| name.to_owned()),
        }
    }

    /// A notifier posting to a Slack incoming-webhook URL.
    pub fn slack(url: SecretString) -> (Notifier, NotifierTask) {
        let (tx, rx) = mpsc::unbounded_channel();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client builds");
        (
            Notifier {
                marked: Arc::default(),
                tx: Some(tx),
                source: None,
            },
            NotifierTask {
                rx,
                url,
                http,
                retry_base: Duration::from_secs(1),
            },
        )
    }

    pub(crate) fn record_marked(&self, title: String) {
        self.marked.lock().expect("lock").push(title);
    }

    /// Ends a pass: queues one summary when tasks were marked since the last one.
    /// Returns the message (also when Slack is not configured).
    pub fn flush(&self) -> Option<String> {
        let titles = std::mem::take(&mut *self.marked.lock().expect("lock"));
        let message = summary(self.source.as_deref(), &titles)?;
        if let Some(tx) = &self.tx {
            let _ = tx.send(message.clone());
        }
        Some(message)
    }
}

impl NotifierTask {
    /// Test hook: shorter retry pauses.
    pub fn with_retry_base(mut self, d: Duration) -> Self {
        self.retry_base = d;
        self
    }

    /// Sends queued summaries until cancelled; each is retried with backoff.
    pub async fn run(mut self, cancel: CancellationToken) {
        loop {
            let message = tokio::select! {
                _ = cancel.cancelled() => return,
                m = self.rx.recv() => match m { Some(m) => m, None => return },
            };
            self.send(&message, &cancel).await;
        }
    }

    async fn send(&self, message: &str, cancel: &CancellationToken) {
        let body = serde_json::json!({ "text": message });
        for attempt in 1..=ATTEMPTS {
            let result = self
                .http
                .post(self.url.expose_secret())
                .json(&body)
                .send()
                .await
                .and_then(|r| r.error_for_status());
            match result {
                Ok(_) => {
                    metrics::counter!("slack_messages_total", "outcome" => "sent").increment(1);
                    return;
                }
                Err(e) => {
                    // reqwest errors carry the URL, which is a secret here.
                    let e = e.without_url();
                    tracing::warn!(attempt, error = %e, "Slack summary not delivered");
                }
            }
            let pause = self.retry_base * 2u32.pow(attempt - 1);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        metrics::counter!("slack_messages_total", "outcome" => "failed").increment(1);
        tracing::error!(attempts = ATTEMPTS, "Slack summary dropped after retries");
    }
}

/// "notion-sync marked N tasks overdue:" (with " in `source`" for a named source) with
/// up to ten titles and "and N more".
pub fn summary(source: Option<&str>, titles: &[String]) -> Option<String> {
    if titles.is_empty() {
        return None;
    }
    let n = titles.len();
    let mut out = format!(
        "notion-sync marked {n} task{} overdue{}:",
        if n == 1 { "" } else { "s" },
        source.map(|s| format!(" in {s}")).unwrap_or_default()
    );
    for t in titles.iter().take(MAX_TITLES) {
        out.push_str("\n• ");
        out.push_str(if t.is_empty() { "(untitled)" } else { t });
    }
    if n > MAX_TITLES {
        out.push_str(&format!("\nand {} more", n - MAX_TITLES));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_ten_and_counts_the_rest() {
        assert_eq!(summary(None, &[]), None);
        assert_eq!(
            summary(None, &["A".into()]).unwrap(),
            "notion-sync marked 1 task overdue:\n• A"
        );
        let titles: Vec<String> = (1..=13).map(|i| format!("T{i}")).collect();
        let s = summary(None, &titles).unwrap();
        assert!(s.starts_with("notion-sync marked 13 tasks overdue:\n• T1\n"));
        assert!(s.contains("• T10\nand 3 more"));
        assert!(!s.contains("T11"));
    }

    #[test]
    fn each_source_batches_and_names_its_own() {
        let n = Notifier::disabled();
        let (a, b) = (n.for_source("eng"), n.for_source("default"));
        a.record_marked("A".into());
        b.record_marked("B".into());
        assert_eq!(
            a.flush().unwrap(),
            "notion-sync marked 1 task overdue in eng:\n• A"
        );
        assert_eq!(
            b.flush().unwrap(),
            "notion-sync marked 1 task overdue:\n• B"
        );
        assert_eq!(a.flush(), None);
    }

    #[test]
    fn flush_empties_the_batch() {
        let n = Notifier::disabled();
        n.record_marked("A".into());
        assert!(n.flush().is_some());
        assert!(n.flush().is_none());
    }
}
