//! The Notion HTTP client: paced, retried, classified, instrumented requests.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::{self, Stream};
use http::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::NotionId;
use crate::error::{ErrorBody, ErrorClass, NotionError};
use crate::markdown::PageMarkdown;
use crate::models::{
    Block, BlockContent, BlockNode, DataSource, Database, ListResponse, Page, User,
};
use crate::pacer::{Lane, Pacer};
use crate::query::{MAX_PAGE_SIZE, QueryRequest};
use crate::workspace::{Workspace, is_workspace_limit};

/// Notion's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.notion.com";
/// The API version every request sends.
pub const NOTION_VERSION: &str = "2025-09-03";
/// The version sent to the page-markdown endpoint (that request only): the one Notion's
/// OpenAPI documents for it. Recorded traffic shows it answered at 2025-09-03 too, so a
/// second version is not strictly needed; the documented one is the safer contract.
pub const MARKDOWN_VERSION: &str = "2026-03-11";
/// Used when a 429/529 carries no `Retry-After` anywhere.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// `Retry-After` values are capped here (Notion's workspace limit can exceed a minute).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// A value together with Notion's clock: the response's `Date` header.
#[derive(Debug, Clone, PartialEq)]
pub struct Dated<T> {
    /// The response value.
    pub value: T,
    /// The `Date` header of the response it came from.
    pub date: Option<DateTime<Utc>>,
    /// When the request that answered left for Notion (after the pacer let it go):
    /// every change made before this moment is in the value.
    pub sent: tokio::time::Instant,
}

impl<T> Dated<T> {
    /// Transforms the value, keeping the date.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Dated<U> {
        Dated {
            value: f(self.value),
            date: self.date,
            sent: self.sent,
        }
    }

    /// The value, dropping the date.
    pub fn into_inner(self) -> T {
        self.value
    }
}

/// Client settings. `Debug` masks the token as `ntn_****`.
#[derive(Clone)]
pub struct ClientConfig {
    /// API root, e.g. `https://api.notion.com` (a simulator in tests).
    pub base_url: String,
    /// Integration token.
    pub token: SecretString,
    /// `Notion-Version` for every request.
    pub notion_version: String,
    /// `Notion-Version` for `GET /v1/pages/{id}/markdown` only.
    pub markdown_version: String,
    /// Per-attempt timeout (send + body).
    pub timeout: Duration,
    /// Attempts per call, including the first (at least 1).
    pub max_attempts: u32,
    /// First backoff step for 5xx/timeouts (full jitter, doubling).
    pub backoff_base: Duration,
    /// Backoff cap.
    pub backoff_max: Duration,
    /// `User-Agent`.
    pub user_agent: String,
    /// The workspace this integration shares a workspace-wide limit with, if any: a
    /// workspace-limit 429 pauses every integration of it.
    pub workspace: Option<Arc<Workspace>>,
}

impl ClientConfig {
    /// Defaults for everything but the token.
    pub fn new(token: impl Into<SecretString>) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            token: token.into(),
            notion_version: NOTION_VERSION.to_owned(),
            markdown_version: MARKDOWN_VERSION.to_owned(),
            timeout: Duration::from_secs(60),
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            user_agent: format!("notion-sync/{}", env!("CARGO_PKG_VERSION")),
            workspace: None,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("token", &"ntn_****")
            .field("notion_version", &self.notion_version)
            .field("markdown_version", &self.markdown_version)
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_max", &self.backoff_max)
            .field("user_agent", &self.user_agent)
            .field("workspace", &self.workspace.as_ref().map(|w| w.name()))
            .finish()
    }
}

/// Counters shared by every clone of a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP attempts sent (retries included).
    pub requests_total: u64,
    /// 429/529 answers.
    pub rate_limited_total: u64,
    /// Calls that ended in an error (after retries).
    pub errors_total: u64,
    /// Notion's clock: the latest `Date` header seen.
    pub last_date: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct Stats {
    requests_total: AtomicU64,
    rate_limited_total: AtomicU64,
    errors_total: AtomicU64,
    last_date: Mutex<Option<DateTime<Utc>>>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    auth: HeaderValue,
    version: HeaderValue,
    markdown_version: HeaderValue,
    config: ClientConfig,
    pacer: Arc<Pacer>,
    stats: Stats,
}

/// A Notion API client. Cheap to clone; clones share the HTTP pool, the
/// pacer and the stats. Each clone has a lane (default interactive).
#[derive(Clone)]
pub struct NotionClient {
    inner: Arc<Inner>,
    lane: Lane,
}

impl fmt::Debug for NotionClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotionClient")
            .field("config", &self.inner.config)
            .field("lane", &self.lane)
            .finish()
    }
}

/// One logical request.
struct Call {
    method: Method,
    /// Route template for metrics and logs, never a raw id.
    route: &'static str,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Bytes>,
    markdown: bool,
    /// Reads (GET and the query POST) are retried on 5xx, timeouts and
    /// connection errors; writes only on 409/429/529.
    read: bool,
}

struct Answer {
    status: u16,
    date: Option<DateTime<Utc>>,
    retry_after: Option<Duration>,
    body: Bytes,
}

fn header_value(s: &str, what: &str) -> Result<HeaderValue, NotionError> {
    HeaderValue::from_str(s).map_err(|_| {
        NotionError::validation(format!(
            "{what} contains characters not allowed in an HTTP header"
        ))
    })
}

/// Parses an HTTP `Date` header (IMF-fixdate, e.g. `Tue, 15 Nov 1994 08:12:31 GMT`).
pub fn parse_http_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// `Retry-After`: delay-seconds (decimals tolerated) or an HTTP date
/// (relative to `now`, Notion's clock when known).
fn parse_retry_after(s: &str, now: DateTime<Utc>) -> Option<Duration> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())));
    }
    let at = parse_http_date(s)?;
    Some(
        (at - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// `additional_data.retry_after` / `retry_after_seconds`, when Notion puts it in the body.
fn retry_after_in_body(body: Option<&ErrorBody>) -> Option<Duration> {
    let data = body?.additional_data.as_ref()?;
    ["retry_after", "retry_after_seconds"].iter().find_map(|k| {
        let v = data.get(*k)?;
        let secs = v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())?;
        (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())))
    })
}

/// Full-jitter exponential backoff: uniform in `[0, min(max, base·2^(attempt−1))]`.
pub fn backoff_delay(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(31)));
    let cap = exp.min(max);
    if cap.is_zero() {
        return Duration::ZERO;
    }
    let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::random_range(0..=nanos))
}

fn decode<T: DeserializeOwned>(route: &str, body: &[u8]) -> Result<T, NotionError> {
    serde_json::from_slice(body)
        .map_err(|e| NotionError::decode(format!("decoding the {route} response: {e}"), e))
}

impl NotionClient {
    /// A client using `pacer` for every request. Fails on an unusable
    /// config (bad URL, empty token or version, zero attempts or timeout).
    pub fn new(config: ClientConfig, pacer: Arc<Pacer>) -> Result<NotionClient, NotionError> {
        let mut base = Url::parse(config.base_url.trim())
            .map_err(|e| NotionError::validation(format!("base_url {:?}: {e}", config.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(NotionError::validation(format!(
                "base_url {:?}: expected an http(s) URL",
                config.base_url
            )));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let token = config.token.expose_secret();
        if token.trim().is_empty() {
            return Err(NotionError::validation("the Notion token is empty"));
        }
        let mut auth = header_value(&format!("Bearer {}", token.trim()), "the Notion token")?;
        auth.set_sensitive(true);
        if config.notion_version.trim().is_empty() {
            return Err(NotionError::validation("notion_version is empty"));
        }
        if config.markdown_version.trim().is_empty() {
            return Err(NotionError::validation("markdown_version is empty"));
        }
        let version = header_value(config.notion_version.trim(), "notion_version")?;
        let markdown_version = header_value(config.markdown_version.trim(), "markdown_version")?;
        if config.max_attempts == 0 {
            return Err(NotionError::validation("max_attempts must be at least 1"));
        }
        if config.timeout.is_zero() {
            return Err(NotionError::validation("timeout must be positive"));
        }
        if let Some(ws) = &config.workspace {
            ws.join(&pacer);
        }
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| NotionError::transport("building the HTTP client", Some(Box::new(e))))?;
        Ok(NotionClient {
            inner: Arc::new(Inner {
                http,
                base,
                auth,
                version,
                markdown_version,
                config,
                pacer,
                stats: Stats::default(),
            }),
            lane: Lane::Interactive,
        })
    }

    /// The same client, queuing in `lane`.
    pub fn with_lane(&self, lane: Lane) -> NotionClient {
        NotionClient {
            inner: Arc::clone(&self.inner),
            lane,
        }
    }

    /// This client's lane.
    pub fn lane(&self) -> Lane {
        self.lane
    }

    /// The shared pacer.
    pub fn pacer(&self) -> &Arc<Pacer> {
        &self.inner.pacer
    }

    /// The configuration (token masked in `Debug`).
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Counters shared by all clones.
    pub fn stats(&self) -> ClientStats {
        let s = &self.inner.stats;
        ClientStats {
            requests_total: s.requests_total.load(Ordering::Relaxed),
            rate_limited_total: s.rate_limited_total.load(Ordering::Relaxed),
            errors_total: s.errors_total.load(Ordering::Relaxed),
            last_date: *s.last_date.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    fn url(&self, call: &Call) -> Result<Url, NotionError> {
        let mut url = self
            .inner
            .base
            .join(call.path.trim_start_matches('/'))
            .map_err(|e| {
                NotionError::validation(format!("building the URL for {}: {e}", call.route))
            })?;
        if !call.query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in &call.query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    async fn send_once(&self, call: &Call, url: &Url) -> Result<Answer, NotionError> {
        let inner = &self.inner;
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, inner.auth.clone());
        headers.insert(
            "Notion-Version",
            if call.markdown {
                inner.markdown_version.clone()
            } else {
                inner.version.clone()
            },
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let mut req = inner
            .http
            .request(call.method.clone(), url.clone())
            .headers(headers);
        if let Some(body) = &call.body {
            req = req
                .header(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )
                .body(body.clone());
        }
        let exchange = async {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        };
        let (status, headers, body) = match tokio::time::timeout(inner.config.timeout, exchange)
            .await
        {
            Err(_) => return Err(NotionError::timeout(inner.config.timeout)),
            Ok(Err(e)) if e.is_timeout() => return Err(NotionError::timeout(inner.config.timeout)),
            Ok(Err(e)) => {
                let what = if e.is_connect() {
                    "connecting to Notion"
                } else {
                    "talking to Notion"
                };
                return Err(NotionError::transport(
                    what,
                    Some(Box::new(e.without_url())),
                ));
            }
            Ok(Ok(x)) => x,
        };
        let date = headers
            .get(header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date);
        let retry_after = headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, date.unwrap_or_else(Utc::now)));
        Ok(Answer {
            status,
            date,
            retry_after,
            body,
        })
    }

    fn error_from(answer: &Answer) -> NotionError {
        let body: Option<ErrorBody> = serde_json::from_slice(&answer.body).ok();
        let retry_after = if matches!(answer.status, 429 | 529) {
            Some(
                answer
                    .retry_after
                    .or_else(|| retry_after_in_body(body.as_ref()))
                    .unwrap_or(DEFAULT_RETRY_AFTER),
            )
        } else {
            answer.retry_after
        };
        match body {
            Some(b) => NotionError::from_response(answer.status, Some(b), retry_after),
            None => {
                let text = String::from_utf8_lossy(&answer.body);
                let snippet: String = text.chars().take(120).collect();
                NotionError::from_response(
                    answer.status,
                    Some(ErrorBody {
                        status: answer.status,
                        code: format!("http_{}", answer.status),
                        message: if snippet.trim().is_empty() {
                            "empty error body".to_owned()
                        } else {
                            snippet
                        },
                        request_id: None,
                        additional_data: None,
                    }),
                    retry_after,
                )
            }
        }
    }

    fn should_retry(call: &Call, e: &NotionError) -> bool {
        match e.class() {
            ErrorClass::RateLimited | ErrorClass::Conflict => true,
            ErrorClass::Transient => call.read && matches!(e.status(), Some(500 | 502 | 503 | 504)),
            ErrorClass::Timeout | ErrorClass::Transport => call.read,
            _ => false,
        }
    }

    async fn execute<T: DeserializeOwned>(&self, call: Call) -> Result<Dated<T>, NotionError> {
        let url = self.url(&call)?;
        let inner = &self.inner;
        let method = call.method.as_str().to_owned();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            inner.pacer.acquire(self.lane).await;
            let started = tokio::time::Instant::now();
            let outcome = self.send_once(&call, &url).await;
            metrics::histogram!("notion_request_duration_seconds", "endpoint" => call.route)
                .record(started.elapsed().as_secs_f64());
            inner.stats.requests_total.fetch_add(1, Ordering::Relaxed);
            let status_label = match &outcome {
                Ok(a) => a.status.to_string(),
                Err(e) => e.class().as_str().to_owned(),
            };
            metrics::counter!("notion_requests_total",
                "endpoint" => call.route, "method" => method.clone(), "status" => status_label,
                "integration" => inner.pacer.name().to_owned())
            .increment(1);

            let err = match outcome {
                Ok(answer) => {
                    if let Some(d) = answer.date {
                        *inner
                            .stats
                            .last_date
                            .lock()
                            .unwrap_or_else(|p| p.into_inner()) = Some(d);
                    }
                    if (200..300).contains(&answer.status) {
                        inner.pacer.on_success();
                        return decode::<T>(call.route, &answer.body)
                            .map(|value| Dated {
                                value,
                                date: answer.date,
                                sent: started,
                            })
                            .inspect_err(|_| {
                                inner.stats.errors_total.fetch_add(1, Ordering::Relaxed);
                            });
                    }
                    if matches!(answer.status, 429 | 529) {
                        inner
                            .stats
                            .rate_limited_total
                            .fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("notion_rate_limited_total", "integration" => inner.pacer.name().to_owned()).increment(1);
                    } else if answer.status < 500 {
                        inner.pacer.on_success();
                    }
                    Self::error_from(&answer)
                }
                Err(e) => e,
            };

            let rate_limited = err.class() == ErrorClass::RateLimited;
            if rate_limited {
                // Every caller backs off, whether or not this call retries.
                let wait = err.retry_after().unwrap_or(DEFAULT_RETRY_AFTER);
                tracing::info!(
                    endpoint = call.route, attempt, wait_ms = wait.as_millis() as u64,
                    error = %err, "notion rate limited; pausing every caller"
                );
                inner.pacer.on_rate_limited(wait);
                inner.pacer.pause_shared(wait).await;
                if let Some(ws) = &inner.config.workspace
                    && is_workspace_limit(&err)
                {
                    let paused = ws.pause_others(&inner.pacer, wait);
                    tracing::info!(
                        workspace = ws.name(),
                        integrations = paused,
                        wait_ms = wait.as_millis() as u64,
                        "workspace rate limit: pausing every integration of the workspace"
                    );
                }
            }
            if attempt >= inner.config.max_attempts || !Self::should_retry(&call, &err) {
                inner.stats.errors_total.fetch_add(1, Ordering::Relaxed);
                return Err(err);
            }
            if !rate_limited {
                let wait =
                    backoff_delay(attempt, inner.config.backoff_base, inner.config.backoff_max);
                tracing::warn!(
                    endpoint = call.route, attempt, wait_ms = wait.as_millis() as u64,
                    error = %err, "notion request failed; retrying"
                );
                tokio::time::sleep(wait).await;
            }
        }
    }

    fn get(route: &'static str, path: String) -> Call {
        Call {
            method: Method::GET,
            route,
            path,
            query: Vec::new(),
            body: None,
            markdown: false,
            read: true,
        }
    }

    /// `GET /v1/users/me`: the bot user of the token.
    #[tracing::instrument(skip_all, fields(lane = self.lane.as_str()), err(level = "debug"))]
    pub async fn users_me(&self) -> Result<Dated<User>, NotionError> {
        self.execute(Self::get("/v1/users/me", "v1/users/me".to_owned()))
            .await
    }

    /// `GET /v1/databases/{id}`: the database and its data sources.
    #[tracing::instrument(skip_all, fields(database.id = %id), err(level = "debug"))]
    pub async fn retrieve_database(&self, id: NotionId) -> Result<Dated<Database>, NotionError> {
        self.execute(Self::get(
            "/v1/databases/{id}",
            format!("v1/databases/{id}"),
        ))
        .await
    }

    /// `GET /v1/data_sources/{id}`: the schema.
    #[tracing::instrument(skip_all, fields(data_source.id = %id), err(level = "debug"))]
    pub async fn retrieve_data_source(
        &self,
        id: NotionId,
    ) -> Result<Dated<DataSource>, NotionError> {
        self.execute(Self::get(
            "/v1/data_sources/{id}",
            format!("v1/data_sources/{id}"),
        ))
        .await
    }

    /// `POST /v1/data_sources/{id}/query`: one page of results (from
    /// `req.start_cursor`). Validates the request first.
    #[tracing::instrument(skip_all, fields(data_source.id = %id, lane = self.lane.as_str()), err(level = "debug"))]
    pub async fn query_data_source(
        &self,
        id: NotionId,
        req: &QueryRequest,
    ) -> Result<Dated<ListResponse<Page>>, NotionError> {
        req.validate()?;
        let body = serde_json::to_vec(&req.body())
            .map_err(|e| NotionError::validation(format!("encoding the query: {e}")))?;
        self.execute(Call {
            method: Method::POST,
            route: "/v1/data_sources/{id}/query",
            path: format!("v1/data_sources/{id}/query"),
            query: req
                .filter_properties
                .iter()
                .map(|p| ("filter_properties", p.clone()))
                .collect(),
            body: Some(Bytes::from(body)),
            markdown: false,
            read: true,
        })
        .await
    }

    /// All pages of a query, following `next_cursor` (`page_size` defaults
    /// to 100). Ends after the last page or the first error.
    pub fn query_data_source_stream(
        &self,
        id: NotionId,
        mut req: QueryRequest,
    ) -> impl Stream<Item = Result<Dated<ListResponse<Page>>, NotionError>> + Send + use<> {
        if req.page_size.is_none() {
            req.page_size = Some(MAX_PAGE_SIZE);
        }
        let client = self.clone();
        stream::unfold(Some(req), move |state| {
            let client = client.clone();
            async move {
                let req = state?;
                match client.query_data_source(id, &req).await {
                    Ok(page) => {
                        let next = next_cursor(req.start_cursor.as_deref(), &page.value);
                        let next = match next {
                            Ok(c) => c.map(|c| QueryRequest {
                                start_cursor: Some(c),
                                ..req
                            }),
                            Err(e) => return Some((Err(e), None)),
                        };
                        Some((Ok(page), next))
                    }
                    Err(e) => Some((Err(e), None)),
                }
            }
        })
    }

    /// `GET /v1/pages/{id}`. A 404 means deleted or not shared.
    #[tracing::instrument(skip_all, fields(page.id = %id, lane = self.lane.as_str()), err(level = "debug"))]
    pub async fn retrieve_page(&self, id: NotionId) -> Result<Dated<Page>, NotionError> {
        self.execute(Self::get("/v1/pages/{id}", format!("v1/pages/{id}")))
            .await
    }

    /// `PATCH /v1/pages/{id}` with `{"properties": properties}`. Retried
    /// only on 409/429/529.
    #[tracing::instrument(skip_all, fields(page.id = %id, lane = self.lane.as_str()), err(level = "debug"))]
    pub async fn update_page_properties(
        &self,
        id: NotionId,
        properties: Value,
    ) -> Result<Dated<Page>, NotionError> {
        if !properties.is_object() {
            return Err(NotionError::validation("properties must be a JSON object"));
        }
        let body = serde_json::to_vec(&serde_json::json!({ "properties": properties }))
            .map_err(|e| NotionError::validation(format!("encoding the properties: {e}")))?;
        self.execute(Call {
            method: Method::PATCH,
            route: "/v1/pages/{id}",
            path: format!("v1/pages/{id}"),
            query: Vec::new(),
            body: Some(Bytes::from(body)),
            markdown: false,
            read: false,
        })
        .await
    }

    /// `GET /v1/blocks/{id}/children`: one page (100 blocks) from `start_cursor`.
    #[tracing::instrument(skip_all, fields(block.id = %id, lane = self.lane.as_str()), err(level = "debug"))]
    pub async fn block_children(
        &self,
        id: NotionId,
        start_cursor: Option<&str>,
    ) -> Result<Dated<ListResponse<Block>>, NotionError> {
        let mut call = Self::get(
            "/v1/blocks/{id}/children",
            format!("v1/blocks/{id}/children"),
        );
        call.query.push(("page_size", MAX_PAGE_SIZE.to_string()));
        if let Some(c) = start_cursor {
            call.query.push(("start_cursor", c.to_owned()));
        }
        self.execute(call).await
    }

    /// All pages of a block's children, following `next_cursor`.
    pub fn block_children_stream(
        &self,
        id: NotionId,
    ) -> impl Stream<Item = Result<Dated<ListResponse<Block>>, NotionError>> + Send + use<> {
        let client = self.clone();
        stream::unfold(Some(None::<String>), move |state| {
            let client = client.clone();
            async move {
                let cursor = state?;
                match client.block_children(id, cursor.as_deref()).await {
                    Ok(page) => match next_cursor(cursor.as_deref(), &page.value) {
                        Ok(next) => Some((Ok(page), next.map(Some))),
                        Err(e) => Some((Err(e), None)),
                    },
                    Err(e) => Some((Err(e), None)),
                }
            }
        })
    }

    /// A page's (or block's) whole body: every page of children, recursing
    /// into blocks with `has_children` down to `max_depth` nested levels
    /// (0 = top level only). Child pages and child databases are not
    /// entered (they are separate pages). `date` and `sent` are the first response's.
    #[tracing::instrument(skip_all, fields(block.id = %id, max_depth, lane = self.lane.as_str()), err(level = "debug"))]
    pub async fn block_tree(
        &self,
        id: NotionId,
        max_depth: usize,
    ) -> Result<Dated<Vec<BlockNode>>, NotionError> {
        let mut first = None;
        let value = self.tree_level(id, 0, max_depth, &mut first).await?;
        let (date, sent) = first.unwrap_or((None, tokio::time::Instant::now()));
        Ok(Dated { value, date, sent })
    }

    fn tree_level<'a>(
        &'a self,
        id: NotionId,
        depth: usize,
        max_depth: usize,
        first: &'a mut Option<(Option<DateTime<Utc>>, tokio::time::Instant)>,
    ) -> BoxFuture<'a, Result<Vec<BlockNode>, NotionError>> {
        Box::pin(async move {
            let mut blocks = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = self.block_children(id, cursor.as_deref()).await?;
                if first.is_none() {
                    *first = Some((page.date, page.sent));
                }
                let next = next_cursor(cursor.as_deref(), &page.value)?;
                blocks.extend(page.value.results);
                match next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            let mut nodes = Vec::with_capacity(blocks.len());
            for block in blocks {
                let enter = block.has_children
                    && depth < max_depth
                    && !matches!(
                        block.content,
                        BlockContent::ChildPage { .. } | BlockContent::ChildDatabase { .. }
                    );
                let children = if enter {
                    self.tree_level(block.id, depth + 1, max_depth, first)
                        .await?
                } else {
                    Vec::new()
                };
                nodes.push(BlockNode { block, children });
            }
            Ok(nodes)
        })
    }

    /// `GET /v1/pages/{id}/markdown`, sent with the markdown API version
    /// (2026-03-11) on this request only. Check `truncated` and
    /// `unknown_block_ids`; fall back to [`NotionClient::block_tree`].
    #[tracing::instrument(skip_all, fields(page.id = %id, lane = self.lane.as_str()), err(level = "debug"))]
    pub async fn page_markdown(&self, id: NotionId) -> Result<Dated<PageMarkdown>, NotionError> {
        let mut call = Self::get("/v1/pages/{id}/markdown", format!("v1/pages/{id}/markdown"));
        call.markdown = true;
        self.execute(call).await
    }
}

/// The cursor to continue from, or an error when Notion says `has_more`
/// but repeats the cursor it was given (which would loop forever).
fn next_cursor<T>(
    current: Option<&str>,
    page: &ListResponse<T>,
) -> Result<Option<String>, NotionError> {
    if !page.has_more {
        return Ok(None);
    }
    match page.next_cursor.as_deref() {
        None | Some("") => Ok(None),
        Some(c) if Some(c) == current => Err(NotionError::protocol(
            "pagination did not advance: Notion returned the same cursor again",
        )),
        Some(c) => Ok(Some(c.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_and_retry_after() {
        let d = parse_http_date("Tue, 15 Nov 1994 08:12:31 GMT").unwrap();
        assert_eq!(d.to_rfc3339(), "1994-11-15T08:12:31+00:00");
        assert_eq!(parse_retry_after("7", d), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("0.25", d),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_retry_after("Tue, 15 Nov 1994 08:12:41 GMT", d),
            Some(Duration::from_secs(10))
        );
        assert_eq!(parse_retry_after("-1", d), None);
        assert_eq!(parse_retry_after("soon", d), None);
        assert_eq!(parse_retry_after("100000", d), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn retry_after_from_additional_data() {
        let body = ErrorBody {
            status: 429,
            code: "rate_limited".into(),
            message: "slow down".into(),
            request_id: None,
            additional_data: Some(serde_json::json!({"retry_after": 12})),
        };
        assert_eq!(
            retry_after_in_body(Some(&body)),
            Some(Duration::from_secs(12))
        );
    }

    #[test]
    fn backoff_is_capped_full_jitter() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for attempt in 1..40 {
            let d = backoff_delay(attempt, base, max);
            let cap = (base * 2u32.saturating_pow(attempt - 1)).min(max);
            assert!(d <= cap, "attempt {attempt}: {d:?} > {cap:?}");
        }
        assert_eq!(backoff_delay(3, Duration::ZERO, max), Duration::ZERO);
    }

    #[test]
    fn config_debug_masks_token() {
        let c = ClientConfig::new("ntn_supersecret123");
        let s = format!("{c:?}");
        assert!(s.contains("ntn_****"));
        assert!(!s.contains("supersecret"));
    }
}
