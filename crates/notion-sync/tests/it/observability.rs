//! What ops load beside the daemon (`deploy/grafana/notion-sync.json`,
//! `deploy/prometheus/notion-sync-rules.yml`) matches what it exports: every metric a
//! panel or an alert uses is on a running daemon's `/metrics`, and every alert's runbook
//! line names a row of the README's troubleshooting table.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::support::{
    add_waiting_status, event_json, make_overdue_candidate, metrics_text, poll_until,
    quick_retries, sim_config, start_app,
};

const SECRET: &str = "secret_observability_webhook_key";

fn repo_file(path: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every `expr` of the dashboard's panels.
fn dashboard_exprs() -> Vec<String> {
    let dash: serde_json::Value =
        serde_json::from_str(&repo_file("deploy/grafana/notion-sync.json"))
            .expect("the dashboard is JSON");
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    assert!(out.len() >= 15, "{} panel queries", out.len());
    out
}

/// The rules file's alerts: (name, expr, runbook). A small reader for this file's shape
/// (`- alert:`, `expr:` inline or as a `|` block, `runbook:` inline or as a `>-` block), so the test needs no YAML
/// parser; promtool checks the file itself in CI.
fn alert_rules() -> Vec<(String, String, String)> {
    let text = repo_file("deploy/prometheus/notion-sync-rules.yml");
    let mut rules = Vec::new();
    let mut lines = text.lines().peekable();
    let (mut name, mut expr) = (String::new(), String::new());
    while let Some(line) = lines.next() {
        let t = line.trim();
        if let Some(n) = t.strip_prefix("- alert:") {
            name = n.trim().to_owned();
        } else if let Some(e) = t.strip_prefix("expr:") {
            expr = e.trim().to_owned();
            if expr == "|" {
                expr.clear();
                while let Some(next) = lines.peek() {
                    if next.trim_start().starts_with("for:") || next.trim().is_empty() {
                        break;
                    }
                    expr.push_str(next.trim());
                    expr.push(' ');
                    lines.next();
                }
            }
        } else if let Some(r) = t.strip_prefix("runbook:") {
            let mut r = r.trim().trim_matches('"').replace("\\\"", "\"");
            if r == ">-" {
                // A folded block: the more indented lines after it, joined by spaces.
                let indent = line.len() - line.trim_start().len();
                let mut words = Vec::new();
                while let Some(next) = lines.peek() {
                    if next.len() - next.trim_start().len() <= indent || next.trim().is_empty() {
                        break;
                    }
                    words.push(next.trim().to_owned());
                    lines.next();
                }
                r = words.join(" ");
            }
            rules.push((name.clone(), expr.clone(), r));
        }
    }
    assert!(rules.len() >= 7, "{} alerts", rules.len());
    rules
}

/// The metric names a PromQL expression reads (label matchers, grouping clauses,
/// functions and keywords removed).
fn metric_names(expr: &str) -> BTreeSet<String> {
    const WORDS: &[&str] = &[
        "sum",
        "max",
        "min",
        "rate",
        "increase",
        "histogram_quantile",
        "time",
        "by",
        "on",
        "and",
        "or",
        "unless",
        "without",
        "ignoring",
        "le",
    ];
    let mut plain = String::new();
    let mut depth = 0;
    for c in expr.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ if depth > 0 => {}
            _ => plain.push(c),
        }
    }
    // `by (a, b)` / `on (instance)`: drop the label lists.
    for kw in ["by (", "on ("] {
        while let Some(at) = plain.find(kw) {
            let end = plain[at..].find(')').map_or(plain.len(), |e| at + e + 1);
            plain.replace_range(at..end, " ");
        }
    }
    plain
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty() && !w.starts_with(|c: char| c.is_ascii_digit()))
        .filter(|w| !WORDS.contains(w))
        .map(str::to_owned)
        .collect()
}

#[test]
fn metric_names_are_read_out_of_promql() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (le) (rate(webhook_ack_seconds_bucket{instance=~"$instance"}[5m]))) and on (instance) up"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["up", "webhook_ack_seconds_bucket"]
    );
}

#[test]
fn every_runbook_line_names_a_troubleshooting_row_of_the_readme() {
    let readme = repo_file("README.md");
    let table = readme
        .split("## Troubleshooting")
        .nth(1)
        .expect("a troubleshooting section");
    let symptoms: Vec<String> = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| symptom"))
        .map(|l| l.split('|').nth(1).unwrap().trim().replace('`', ""))
        .collect();
    for (name, _, runbook) in alert_rules() {
        let symptom = runbook.split(": ").next().unwrap();
        assert!(
            symptoms.iter().any(|s| s.starts_with(symptom)),
            "{name}: runbook symptom {symptom:?} is not a row of the README's troubleshooting table ({symptoms:?})"
        );
    }
}

/// A daemon that has done each kind of work (webhooks, a pass, an overdue mark, 429s)
/// exports every metric the dashboard and the alerts read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_alerts_use_is_exported() {
    let sim = notion_sim::start(sim_config(5)).await.unwrap();
    add_waiting_status(&sim);
    let candidate = sim.pages()[0].id.clone();
    make_overdue_candidate(&sim, &candidate);
    let dir = tempfile::tempdir().unwrap();
    let app = start_app(
        &sim,
        &dir.path().join("o.db"),
        &[("TASKS__OPEN_STATUSES", "[\"Waiting\"]")],
        SECRET,
        quick_retries(),
    )
    .await
    .unwrap();
    sim.subscribe_with_token(&app.url("/webhooks/notion"), SECRET)
        .await
        .unwrap();
    app.engine
        .reconcile(sync_engine::PassKind::Full, &CancellationToken::new())
        .await
        .expect("a full pass");
    let http = reqwest::Client::new();
    // A signed delivery (and its job), then Notion's 429s with Retry-After on the next.
    let page = sim.pages()[1].id.clone();
    let body = event_json(
        "0a0a0a0a-0000-4000-8000-000000000001",
        "page.properties_updated",
        &page,
        "page",
        Some(&sim.data_source_id()),
    );
    let sig = notion_api::sign(SECRET.as_bytes(), &body);
    assert_eq!(
        app.post(&http, &body, Some(&sig)).await.status().as_u16(),
        200
    );
    poll_until("the job to run", 10, || async {
        app.store.queue_stats().await.unwrap().queued_interactive == 0
    })
    .await;
    sim.force_errors(429, 2, Some(1));
    sim.set_title(&page, "Edited while Notion rate-limits")
        .unwrap();
    let metrics = || metrics_text(&http, app.addr);
    poll_until("a 429 pause to be counted", 20, || async {
        metrics().await.contains("notion_pacer_pauses_total")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = metrics().await;
    let exported: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let mut used = BTreeSet::new();
    for expr in dashboard_exprs() {
        used.extend(metric_names(&expr));
    }
    for (_, expr, _) in alert_rules() {
        used.extend(metric_names(&expr));
    }
    let missing: Vec<&String> = used
        .iter()
        .filter(|m| !exported.contains(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "used by the dashboard or the alerts but not exported: {missing:?}\nexported: {exported:?}"
    );
    app.stop().await.unwrap();
    sim.shutdown().await;
}
