//! The daemon under test: the real release `notion-sync serve` binary in a child process,
//! configured by a TOML file in a fresh temporary directory, pointed at an in-process sim.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use notion_sim::SimHandle;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

/// The webhook verification token the sim signs with and the daemon verifies with
/// (`NOTION_WEBHOOK_SECRET`), known before the daemon starts.
pub const WEBHOOK_SECRET: &str = "secret_e2e_bench_webhook_verification_token";

/// Finds `notion-sync` next to the running benchmark binary (both live in
/// `target/release` after `cargo build --release`).
pub fn daemon_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the benchmark executable")?;
    let dir = exe
        .parent()
        .context("the benchmark executable has no parent directory")?;
    let bin = dir.join("notion-sync");
    if !bin.is_file() {
        bail!(
            "the daemon binary {} does not exist: build it first with `cargo build --release -p notion-sync` (the benchmark runs the real release binary next to its own executable)",
            bin.display()
        );
    }
    Ok(bin)
}

/// Builds the daemon with the cargo that launched us (`cargo run` sets `CARGO`), so
/// `cargo run --release -p e2e-bench` always measures the current source.
pub fn build_daemon_if_under_cargo() -> anyhow::Result<()> {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return Ok(());
    };
    let exe = std::env::current_exe()?;
    let release = exe
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|n| n == "release");
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "-p", "notion-sync", "--bin", "notion-sync"]);
    if release {
        cmd.arg("--release");
    }
    if let Some(manifest) = option_env!("CARGO_MANIFEST_DIR") {
        cmd.current_dir(manifest);
    }
    eprintln!(
        "building the daemon: cargo {:?}",
        cmd.get_args().collect::<Vec<_>>()
    );
    let status = cmd
        .status()
        .context("running cargo build for notion-sync")?;
    if !status.success() {
        bail!("`cargo build -p notion-sync` failed ({status})");
    }
    Ok(())
}

/// Settings of one daemon instance (everything else is `config/default.toml`).
#[derive(Debug, Clone, Serialize)]
pub struct DaemonConfig {
    pub requests_per_second: f64,
    /// `FULL` or `NORMAL`.
    pub synchronous: &'static str,
    /// Incremental reconcile cron (6 fields, UTC); empty disables it.
    pub schedule: String,
    pub on_start: bool,
    pub mark_overdue: bool,
    pub workers: usize,
    /// `workers.bulk_read_threshold` (0: one GET per property change).
    pub bulk_read_threshold: usize,
    /// 1: the single-source configuration (`notion.data_source_id`, `NOTION_TOKEN`);
    /// n > 1: sources `s0`…, source `si` reading the sim's task data source i through
    /// integration `si` (the sim's integration i: its own token and budget), each at
    /// `requests_per_second`.
    pub sources: usize,
    /// The store URL (default: the SQLite file `db`); a `postgres://` URL for replicas.
    pub store_url: Option<String>,
    /// TOML appended to the configuration file as written (e.g. a `[replicas]` table).
    pub extra: String,
}

/// The name of source (and integration) `i` of a several-source daemon.
pub fn source_name(i: usize) -> String {
    format!("s{i}")
}

impl DaemonConfig {
    /// Defaults of `config/default.toml` except: the given rate, no scheduled passes, no
    /// pass at start, no overdue writes (the baseline script doesn't write either).
    pub fn new(requests_per_second: f64) -> DaemonConfig {
        DaemonConfig {
            requests_per_second,
            synchronous: "FULL",
            schedule: String::new(),
            on_start: false,
            mark_overdue: false,
            workers: 4,
            bulk_read_threshold: 40,
            sources: 1,
            store_url: None,
            extra: String::new(),
        }
    }
}

/// VmRSS and VmHWM of a process, in MiB.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Memory {
    pub rss_mib: f64,
    pub hwm_mib: f64,
}

/// A running `notion-sync serve`.
pub struct Daemon {
    child: tokio::process::Child,
    pub pid: u32,
    pub port: u16,
    pub db: PathBuf,
    /// The store it runs on (`sqlite://` the file `db`, or a PostgreSQL database).
    pub store_url: String,
    /// Spawn to the first 200 from `/healthz`.
    pub startup: Duration,
    log: PathBuf,
    http: reqwest::Client,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A loopback HTTP client that ignores proxy settings of the environment.
pub fn loopback_client(max_idle: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(max_idle)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a plain HTTP client builds")
}

impl Daemon {
    /// Writes `dir/notion-sync.toml`, spawns the binary with the sim's token and
    /// [`WEBHOOK_SECRET`] and waits for the first 200 from `/healthz`. The mirror is
    /// `db`, or `dir/mirror.db`.
    pub async fn start(
        bin: &Path,
        dir: &Path,
        db: Option<&Path>,
        sim: &SimHandle,
        cfg: &DaemonConfig,
    ) -> anyhow::Result<Daemon> {
        let port = free_port()?;
        let db = db.map_or_else(|| dir.join("mirror.db"), Path::to_path_buf);
        let config = dir.join("notion-sync.toml");
        let mut env = vec![
            ("NOTION_TOKEN".to_owned(), sim.token().to_owned()),
            (
                "NOTION_WEBHOOK_SECRET".to_owned(),
                WEBHOOK_SECRET.to_owned(),
            ),
        ];
        let (data_source, sources) = if cfg.sources > 1 {
            let mut text = String::new();
            for (i, ds) in sim
                .task_data_source_ids()
                .iter()
                .take(cfg.sources)
                .enumerate()
            {
                let name = source_name(i);
                text.push_str(&format!(
                    "[integrations.{name}]\n[sources.{name}]\nintegration = \"{name}\"\ndata_source_id = \"{ds}\"\n"
                ));
                let token = sim
                    .integration_token(i)
                    .with_context(|| format!("the sim has no integration {i}"))?;
                let upper = name.to_ascii_uppercase();
                env.push((format!("NOTION_TOKEN_{upper}"), token.to_owned()));
                env.push((
                    format!("NOTION_WEBHOOK_SECRET_{upper}"),
                    WEBHOOK_SECRET.to_owned(),
                ));
            }
            (String::new(), text)
        } else {
            (sim.data_source_id(), String::new())
        };
        let store_url = cfg
            .store_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", db.display()));
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace_seconds = 2\n\
                 [store]\nurl = \"{store_url}\"\nsynchronous = \"{sync}\"\n\
                 [notion]\napi_url = \"{api}\"\ndata_source_id = \"{data_source}\"\nrequests_per_second = {rps:.3}\ntimeout_seconds = 10\n\
                 [workers]\nconcurrency = {workers}\nbulk_read_threshold = {bulk}\n\
                 [reconcile]\nschedule = \"{schedule}\"\nfull_schedule = \"\"\non_start = {on_start}\n\
                 [tasks]\nmark_overdue = {mark}\n\
                 [log]\nformat = \"json\"\nlevel = \"{level}\"\n{sources}{extra}",
                extra = cfg.extra,
                sync = cfg.synchronous,
                api = sim.base_url(),
                rps = cfg.requests_per_second,
                workers = cfg.workers,
                bulk = cfg.bulk_read_threshold,
                // `E2E_DAEMON_LOG=debug` to see what a daemon did (its log is in the
                // scenario's temporary directory).
                level = std::env::var("E2E_DAEMON_LOG").unwrap_or_else(|_| "info".into()),
                schedule = cfg.schedule,
                on_start = cfg.on_start,
                mark = cfg.mark_overdue,
            ),
        )
        .with_context(|| format!("writing {}", config.display()))?;
        let log = dir.join("daemon.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let spawned = Instant::now();
        let child = tokio::process::Command::new(bin)
            .args(["serve", "--config"])
            .arg(&config)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let pid = child.id().context("the daemon exited at once")?;
        let mut daemon = Daemon {
            child,
            pid,
            port,
            db,
            store_url,
            startup: Duration::ZERO,
            log,
            http: loopback_client(4),
        };
        let deadline = spawned + Duration::from_secs(60);
        loop {
            if let Ok(r) = daemon.http.get(daemon.url("/healthz")).send().await
                && r.status().is_success()
            {
                break;
            }
            if let Some(status) = daemon.child.try_wait()? {
                bail!(
                    "the daemon exited before it was ready ({status}); its log:\n{}",
                    daemon.log_tail()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "the daemon did not answer /healthz with 200 within 60 s; its log:\n{}",
                    daemon.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        daemon.startup = spawned.elapsed();
        Ok(daemon)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn webhook_url(&self) -> String {
        self.url("/webhooks/notion")
    }

    /// The last lines of the daemon's log (for error messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Size of the daemon's log in bytes.
    pub fn log_bytes(&self) -> u64 {
        std::fs::metadata(&self.log).map_or(0, |m| m.len())
    }

    /// `GET /healthz` as JSON (also for 503 answers).
    pub async fn health(&self) -> anyhow::Result<Value> {
        let r = self
            .http
            .get(self.url("/healthz"))
            .send()
            .await
            .context("GET /healthz")?;
        r.json().await.context("/healthz is not JSON")
    }

    /// VmRSS and VmHWM from `/proc/<pid>/status`.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .context("reading /proc/<pid>/status")?;
        let kib = |key: &str| -> anyhow::Result<f64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(key))
                .with_context(|| format!("{key} missing from /proc/<pid>/status"))?;
            let n: f64 = line
                .trim_start_matches(key)
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .with_context(|| format!("parsing {line:?}"))?;
            Ok(n)
        };
        Ok(Memory {
            rss_mib: kib("VmRSS:")? / 1024.0,
            hwm_mib: kib("VmHWM:")? / 1024.0,
        })
    }

    /// CPU seconds (user + system) the daemon used so far.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(&format!("/proc/{}/stat", self.pid))
    }

    /// CPU seconds per thread: `(tid, name, seconds)`.
    pub fn thread_cpu(&self) -> Vec<(String, String, f64)> {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return Vec::new();
        };
        dir.filter_map(Result::ok)
            .filter_map(|e| {
                let tid = e.file_name().to_string_lossy().into_owned();
                let base = e.path();
                let name = std::fs::read_to_string(base.join("comm")).ok()?;
                let cpu = cpu_seconds(&base.join("stat").to_string_lossy()).ok()?;
                Some((tid, name.trim().to_owned(), cpu))
            })
            .collect()
    }

    /// The cumulative buckets `(le, count)` of a Prometheus histogram on `/metrics`.
    pub async fn histogram(&self, name: &str) -> anyhow::Result<Vec<(f64, u64)>> {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .context("GET /metrics")?
            .text()
            .await?;
        let prefix = format!("{name}_bucket{{le=\"");
        let mut out = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(&prefix) else {
                continue;
            };
            let Some((le, count)) = rest.split_once("\"}") else {
                continue;
            };
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse()?
            };
            out.push((le, count.trim().parse()?));
        }
        Ok(out)
    }

    /// Waits until `/healthz` reports nothing queued or running.
    pub async fn wait_queue_empty(&self, timeout: Duration) -> anyhow::Result<()> {
        wait_for(
            "the daemon's queue to drain",
            timeout,
            Duration::from_millis(20),
            || async {
                self.health().await.is_ok_and(|h| {
                    h["queue"]["queued"].as_u64() == Some(0)
                        && h["queue"]["running"].as_u64() == Some(0)
                })
            },
        )
        .await
    }

    /// Waits until a reconcile pass has succeeded (`/healthz` `reconcile.last_success_at`).
    pub async fn wait_first_pass(&self, timeout: Duration) -> anyhow::Result<()> {
        wait_for(
            "a reconcile pass to succeed",
            timeout,
            Duration::from_millis(20),
            || async {
                self.health()
                    .await
                    .is_ok_and(|h| h["reconcile"]["last_success_at"].is_string())
            },
        )
        .await
    }

    /// Waits until the start-up check against Notion has run (schema known).
    pub async fn wait_initialized(&self) -> anyhow::Result<()> {
        wait_for(
            "the daemon's start-up check",
            Duration::from_secs(30),
            Duration::from_millis(10),
            || async {
                self.health()
                    .await
                    .is_ok_and(|h| h["notion"]["schema"].as_str() == Some("ok"))
            },
        )
        .await
    }

    /// SIGTERM, then up to 10 s for a graceful exit; SIGKILL after that.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    bail!(
                        "the daemon exited with {status}; its log:\n{}",
                        self.log_tail()
                    );
                }
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("the daemon did not stop within 10 s of SIGTERM");
            }
        }
        Ok(())
    }
}

/// User + system CPU seconds from a `/proc/<pid>/stat` file (USER_HZ is 100 on Linux).
pub fn cpu_seconds(stat_path: &str) -> anyhow::Result<f64> {
    let stat =
        std::fs::read_to_string(stat_path).with_context(|| format!("reading {stat_path}"))?;
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .with_context(|| format!("short {stat_path}"))?
            .parse::<f64>()?)
    };
    // utime and stime are fields 14 and 15: indexes 11 and 12 after the name.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// Busy and total jiffies of the whole machine from `/proc/stat` (busy excludes idle and
/// iowait; steal counts as busy: another guest had the CPU).
pub fn machine_jiffies() -> anyhow::Result<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse::<f64>().unwrap_or(0.0))
        .collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0.0);
    // user nice system idle iowait irq softirq steal
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    Ok((busy, busy + get(3) + get(4)))
}

/// Polls `cond` every `poll` until it holds; an error naming `what` after `timeout`.
pub async fn wait_for<F, Fut>(
    what: &str,
    timeout: Duration,
    poll: Duration,
    mut cond: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !cond().await {
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(poll).await;
    }
    Ok(())
}
