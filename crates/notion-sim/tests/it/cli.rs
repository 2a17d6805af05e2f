//! The `notion-sim` binary prints one JSON line once listening and serves the workspace.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

/// Kills the child process it owns when dropped, even if an assertion fails first.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn first_line(seed: &str) -> (Running, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_notion-sim"))
        .args([
            "--port",
            "0",
            "--token",
            "secret_cli",
            "--pages",
            "5",
            "--seed",
            seed,
            "--no-rate-limit",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    (
        Running(child),
        serde_json::from_str(&line).expect("one JSON line"),
    )
}

#[tokio::test]
async fn binary_serves_a_seeded_workspace() {
    let (_a, info) = first_line("42");
    let (_b, again) = first_line("42");
    let keys: Vec<&String> = info.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["data_source_id", "database_id", "listen", "token"]);
    assert_eq!(info["token"], "secret_cli");
    assert_eq!(
        info["data_source_id"], again["data_source_id"],
        "same seed, same workspace"
    );
    let res = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!(
            "http://{}/v1/data_sources/{}/query",
            info["listen"].as_str().unwrap(),
            info["data_source_id"].as_str().unwrap()
        ))
        .bearer_auth("secret_cli")
        .header("Notion-Version", "2025-09-03")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["results"].as_array().unwrap().len(), 5);
}
