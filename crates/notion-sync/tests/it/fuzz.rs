//! Fuzzing `POST /webhooks/notion` (its parser and verifier) through the real endpoint.
//! cargo-fuzz needs a nightly toolchain, which this machine does not have, so these are
//! proptest properties on stable with a fixed seed: random bytes and JSON, mutated valid
//! events (truncated, bytes flipped, fields dropped or of the wrong type, deep nesting,
//! duplicate keys), malformed and wrong signatures, valid signatures over garbage, bodies
//! over the size limit. For every request: the status is one of 200, 400, 401, 413, never
//! 5xx; nothing is recorded or enqueued unless the signature is valid and the body an event
//! (or a verification handshake, which is stored as a pending token by design); the
//! server keeps answering.
//!
//! Notion is unreachable for this daemon, so a job once enqueued stays in the queue
//! (retrying) and "nothing enqueued" is an exact check.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{Value, json};
use sync_store::JobFilter;

use crate::support::{RunningApp, sim_config, start_app};

const SECRET: &str = "secret_fuzz_webhook_key";
const MAX_BODY: usize = 4096;

/// One daemon on its own runtime; the properties drive it with `block_on`.
struct Target {
    rt: tokio::runtime::Runtime,
    app: RunningApp,
    sim: Option<notion_sim::SimHandle>,
    http: reqwest::Client,
    ds: String,
    _dir: tempfile::TempDir,
}

/// What the daemon holds that a delivery could add to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    events: u64,
    tokens: usize,
    jobs: u64,
}

impl Target {
    fn new() -> Target {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (app, sim) = rt.block_on(async {
            let sim = notion_sim::start(sim_config(1)).await.unwrap();
            let app = start_app(
                &sim,
                &dir.path().join("fuzz.db"),
                &[
                    // Nothing answers there: enqueued jobs stay queued (retrying).
                    ("NOTION__API_URL", "http://127.0.0.1:9"),
                    ("NOTION__MAX_ATTEMPTS", "1"),
                    ("NOTION__TIMEOUT_SECONDS", "1"),
                    ("SERVER__MAX_BODY_BYTES", "4096"),
                ],
                SECRET,
                notion_sync::BuildOptions::default(),
            )
            .await
            .unwrap();
            (app, sim)
        });
        let ds = sim.data_source_id();
        Target {
            rt,
            app,
            sim: Some(sim),
            http: reqwest::Client::new(),
            ds,
            _dir: dir,
        }
    }

    fn snapshot(&self) -> Snapshot {
        self.rt.block_on(async {
            let store = &self.app.store;
            let q = store.queue_stats().await.unwrap();
            Snapshot {
                events: store.event_count().await.unwrap(),
                tokens: store.verification_tokens().await.unwrap().len(),
                jobs: q.queued_interactive + q.queued_bulk + q.running + q.dead,
            }
        })
    }

    /// Jobs whose key names `entity` (`page:<id>`).
    fn jobs_for(&self, entity: &str) -> usize {
        self.rt.block_on(async {
            self.app
                .store
                .list_jobs(JobFilter {
                    key: Some(format!("page:{entity}")),
                    ..JobFilter::default()
                })
                .await
                .unwrap()
                .len()
        })
    }

    /// POSTs `body` with the given raw `X-Notion-Signature` values; status and `outcome`.
    fn post(&self, body: &[u8], signature: &Sig) -> (u16, String) {
        self.rt.block_on(async {
            let mut req = self
                .http
                .post(self.app.url("/webhooks/notion"))
                .header("content-type", "application/json")
                .body(body.to_vec());
            if let Some(value) = signature.header(body) {
                req = req.header(
                    "x-notion-signature",
                    reqwest::header::HeaderValue::from_bytes(&value).expect("header bytes"),
                );
            }
            let response = req.send().await.expect("the server answers");
            let status = response.status().as_u16();
            let json: Value = response.json().await.unwrap_or_default();
            let said = json["outcome"]
                .as_str()
                .or(json["error"].as_str())
                .unwrap_or_default()
                .to_owned();
            (status, said)
        })
    }

    /// After the run: the server still accepts a valid event and stops cleanly.
    fn finish(mut self) {
        let body = event(
            &self.ds,
            &Shape::page("page.created"),
            "ffffffff-0000-4000-8000-000000000001",
            &fresh_uuid(u64::MAX),
        );
        let (status, said) = self.post(&body, &Sig::Valid);
        assert_eq!((status, said.as_str()), (200, "queued"), "still serving");
        let sim = self.sim.take().unwrap();
        let app = self.app;
        self.rt.block_on(async move {
            let health = reqwest::get(app.url("/healthz"))
                .await
                .expect("/healthz answers");
            println!("after the run: /healthz {}", health.status());
            app.stop().await.unwrap();
            sim.shutdown().await;
        });
    }
}

/// How a request is signed.
#[derive(Debug, Clone)]
enum Sig {
    /// No header.
    Missing,
    /// `sha256=<hex>` of the body under the secret.
    Valid,
    /// The valid value in upper case (accepted: hex and scheme are case-insensitive).
    ValidUpper,
    /// Anything else, as raw header bytes.
    Raw(Vec<u8>),
    /// The valid value with one hex digit replaced by another.
    OneDigitOff(Index, u8),
    /// The valid value cut short.
    Truncated(Index),
    /// A valid signature of other bytes or under another key.
    Other { body_suffix: Vec<u8>, key: String },
}

impl Sig {
    fn header(&self, body: &[u8]) -> Option<Vec<u8>> {
        let valid = notion_api::sign(SECRET.as_bytes(), body);
        Some(match self {
            Sig::Missing => return None,
            Sig::Valid => valid.into_bytes(),
            Sig::ValidUpper => valid.to_uppercase().into_bytes(),
            Sig::Raw(bytes) => bytes.clone(),
            Sig::OneDigitOff(i, d) => {
                let mut v = valid.into_bytes();
                let at = 7 + i.index(64);
                let digits = b"0123456789abcdef";
                let mut new = digits[usize::from(*d) % 16];
                if new == v[at] {
                    new = digits[(usize::from(*d) + 1) % 16];
                }
                v[at] = new;
                v
            }
            Sig::Truncated(i) => valid.as_bytes()[..i.index(valid.len())].to_vec(),
            Sig::Other { body_suffix, key } => {
                let mut other = body.to_vec();
                other.extend_from_slice(body_suffix);
                if body_suffix.is_empty() && key == SECRET {
                    other.push(b' ');
                }
                notion_api::sign(key.as_bytes(), &other).into_bytes()
            }
        })
    }

    /// Whether the endpoint should accept it as a signature of the body.
    fn is_valid(&self) -> bool {
        matches!(self, Sig::Valid | Sig::ValidUpper)
    }
}

fn bad_signature() -> impl Strategy<Value = Sig> {
    prop_oneof![
        Just(Sig::Missing),
        any::<Vec<u8>>()
            .prop_filter("a header value", |b| b
                .iter()
                .all(|&c| c == b'\t' || (c >= 0x20 && c != 0x7f)))
            .prop_map(Sig::Raw),
        "\\PC{0,80}".prop_map(|s| Sig::Raw(s.into_bytes())),
        "(sha256|SHA256|sha1|md5|)=[0-9a-fA-F]{0,130}".prop_map(|s| Sig::Raw(s.into_bytes())),
        (any::<Index>(), any::<u8>()).prop_map(|(i, d)| Sig::OneDigitOff(i, d)),
        any::<Index>().prop_map(Sig::Truncated),
        (prop::collection::vec(any::<u8>(), 0..4), "[a-z_]{0,24}")
            .prop_map(|(body_suffix, key)| Sig::Other { body_suffix, key }),
    ]
}

fn any_signature() -> impl Strategy<Value = Sig> {
    prop_oneof![
        2 => Just(Sig::Valid),
        1 => Just(Sig::ValidUpper),
        3 => bad_signature(),
    ]
}

/// The kinds of event the daemon routes differently.
#[derive(Debug, Clone)]
struct Shape {
    kind: &'static str,
    entity_type: &'static str,
    /// `data.parent` names the mirrored data source.
    parented: bool,
    /// The daemon's answer to the unmutated event: `queued` (a page of ours, or one
    /// without a parent hint), `recorded` (nothing to fetch) or `unclaimed` (a data
    /// source no source mirrors).
    outcome: &'static str,
}

impl Shape {
    fn page(kind: &'static str) -> Shape {
        Shape {
            kind,
            entity_type: "page",
            parented: true,
            outcome: "queued",
        }
    }

    fn other(
        kind: &'static str,
        entity_type: &'static str,
        parented: bool,
        outcome: &'static str,
    ) -> Shape {
        Shape {
            kind,
            entity_type,
            parented,
            outcome,
        }
    }
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::page("page.created")),
        Just(Shape::page("page.properties_updated")),
        Just(Shape::page("page.content_updated")),
        Just(Shape::page("page.deleted")),
        Just(Shape::other("page.moved", "page", false, "queued")),
        Just(Shape::other(
            "data_source.content_updated",
            "data_source",
            false,
            "unclaimed"
        )),
        Just(Shape::other(
            "comment.created",
            "comment",
            false,
            "recorded"
        )),
        Just(Shape::other("page.transcribed", "page", true, "recorded")),
    ]
}

/// A dashed UUID from a number (distinct numbers, distinct ids).
fn fresh_uuid(n: u64) -> String {
    let h = format!(
        "{:016x}{:016x}",
        n,
        n.rotate_left(17) ^ 0x5eed_f00d_dead_beef
    );
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// A well-formed event body for `entity` shaped like Notion's.
fn event_value(ds: &str, shape: &Shape, id: &str, entity: &str) -> Value {
    let mut data = json!({});
    if shape.parented {
        data["parent"] = json!({"id": ds, "type": "data_source", "data_source_id": ds});
    }
    if shape.kind == "data_source.content_updated" {
        data["updated_blocks"] = json!([{"id": entity, "type": "block"}]);
    }
    json!({
        "id": id,
        // Now: older signed events are refused as replays.
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "workspace_id": "13950b26-c203-4f3b-b97d-93ec06319565",
        "subscription_id": "29d75c0d-5546-4414-8459-7b7a92f1fc4b",
        "integration_id": "0ef2e755-4912-8096-91c1-00376a88a5ca",
        "type": shape.kind,
        "authors": [{"id": "c7c11cca-1d73-471d-9b6e-bdef51470190", "type": "person"}],
        "attempt_number": 1,
        "api_version": "2025-09-03",
        "entity": {"id": entity, "type": shape.entity_type},
        "data": data
    })
}

fn event(ds: &str, shape: &Shape, id: &str, entity: &str) -> Vec<u8> {
    serde_json::to_vec(&event_value(ds, shape, id, entity)).unwrap()
}

/// The body read as JSON by serde_json's `Value` (not the daemon's parser).
enum Json {
    Object(serde_json::Map<String, Value>),
    /// Valid JSON but not an object, or not JSON at all.
    Other,
    /// Nested deeper than `Value` reads (128): the daemon's parser, which skips fields it
    /// ignores, may still read it, so nothing can be concluded.
    TooDeep,
}

/// Invalid UTF-8 is replaced first: serde_json skips the strings of fields the daemon
/// ignores without validating them, so the daemon accepts a signed event with invalid
/// UTF-8 there (`lenient_utf8` in the report).
fn json_object(body: &[u8]) -> Json {
    match serde_json::from_str::<Value>(&String::from_utf8_lossy(body)) {
        Ok(Value::Object(o)) => Json::Object(o),
        Ok(_) => Json::Other,
        Err(e) if e.to_string().contains("recursion limit") => Json::TooDeep,
        Err(_) => Json::Other,
    }
}

/// Independent of the daemon's parser: could this body be an event at all? (A JSON
/// object with string `id`, `type`, `timestamp` and an `entity` object.) The daemon may
/// refuse more (bad ids, duplicate keys, wrong types elsewhere), never less.
fn could_be_event(body: &[u8]) -> bool {
    let o = match json_object(body) {
        Json::Object(o) => o,
        Json::Other => return false,
        Json::TooDeep => return true,
    };
    o.get("id").is_some_and(Value::is_string)
        && o.get("type").is_some_and(Value::is_string)
        && o.get("timestamp").is_some_and(Value::is_string)
        && o.get("entity").is_some_and(|e| {
            e.get("id").is_some_and(Value::is_string) && e.get("type").is_some_and(Value::is_string)
        })
}

/// Could this body be the verification handshake (`{"verification_token": "…"}`)?
fn could_be_handshake(body: &[u8]) -> bool {
    let o = match json_object(body) {
        Json::Object(o) => o,
        Json::Other => return false,
        Json::TooDeep => return true,
    };
    o.get("verification_token").is_some_and(Value::is_string)
}

/// The checks every request gets; `entity` is the page a valid event would enqueue.
fn check(
    target: &Target,
    body: &[u8],
    sig: &Sig,
    entity: Option<&str>,
) -> Result<(u16, String), TestCaseError> {
    let before = target.snapshot();
    let jobs_before = entity.map(|e| target.jobs_for(e));
    let (status, said) = target.post(body, sig);
    let after = target.snapshot();
    prop_assert!(
        [200, 400, 401, 403, 413].contains(&status),
        "status {status} ({said}) for {} bytes, signature {sig:?}",
        body.len()
    );
    if body.len() > MAX_BODY {
        prop_assert_eq!(status, 413, "{}", said);
    } else {
        prop_assert!(status != 413, "413 for {} bytes", body.len());
    }
    if status == 403 {
        // The target has a secret: handshakes are refused, nothing else is.
        prop_assert!(
            could_be_handshake(body),
            "403 for a non-handshake: {}",
            said
        );
    }
    if status == 200 {
        match said.as_str() {
            "queued" | "recorded" | "unclaimed" => {
                prop_assert!(sig.is_valid(), "accepted with signature {sig:?}");
                prop_assert!(could_be_event(body), "accepted a non-event");
                prop_assert_eq!(after.events, before.events + 1);
                prop_assert_eq!(after.tokens, before.tokens);
            }
            "duplicate" => {
                prop_assert!(sig.is_valid(), "accepted with signature {sig:?}");
                prop_assert_eq!(&after, &before);
            }
            "verification_token_stored" => {
                prop_assert!(
                    could_be_handshake(body),
                    "a non-handshake stored as a token"
                );
                prop_assert!(matches!(sig, Sig::Missing) || sig.is_valid(), "{sig:?}");
                prop_assert_eq!(after.events, before.events);
                prop_assert_eq!(after.jobs, before.jobs);
            }
            other => prop_assert!(false, "unexpected outcome {other:?}"),
        }
    } else {
        // Refused: nothing recorded, nothing enqueued, no token.
        prop_assert_eq!(
            &after,
            &before,
            "status {} ({}) changed the store",
            status,
            said
        );
        if let (Some(e), Some(n)) = (entity, jobs_before) {
            prop_assert_eq!(target.jobs_for(e), n);
        }
    }
    if sig.is_valid() && body.len() <= MAX_BODY {
        prop_assert!(status != 401, "valid signature refused: {said}");
        if !could_be_event(body) && !could_be_handshake(body) {
            prop_assert_eq!(status, 400, "{}", said);
        }
    }
    if !sig.is_valid() && body.len() <= MAX_BODY {
        // Only an unsigned handshake may pass without a valid signature.
        if !(matches!(sig, Sig::Missing) && could_be_handshake(body)) {
            prop_assert_eq!(status, 401, "{}", said);
        }
    }
    Ok((status, said))
}

/// Runs `cases` cases of `strategy` from a fixed seed; panics with the minimal failure.
fn run<S: Strategy>(
    name: &str,
    seed: u8,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let started = std::time::Instant::now();
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{name} (seed byte {seed}): {e}");
    }
    println!(
        "{name}: {cases} cases in {:.1} s (seed byte {seed})",
        started.elapsed().as_secs_f64()
    );
}

/// Arbitrary JSON values, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_owned()),
                    Just("type".to_owned()),
                    Just("entity".to_owned()),
                    Just("timestamp".to_owned()),
                    Just("data".to_owned()),
                    Just("verification_token".to_owned()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn garbage_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..600),
        2 => "\\PC{0,300}".prop_map(String::into_bytes),
        3 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => "\\PC{0,40}".prop_map(|t| serde_json::to_vec(&json!({"verification_token": t})).unwrap()),
        1 => prop::collection::vec(any::<u8>(), MAX_BODY - 8..MAX_BODY + 600),
    ]
}

#[test]
fn random_bodies_under_any_signature_never_5xx_and_record_only_what_is_verified() {
    let target = Target::new();
    run(
        "random bodies, any signature",
        1,
        400,
        (garbage_body(), any_signature()),
        |(body, sig)| check(&target, &body, &sig, None).map(|_| ()),
    );
    let s = target.snapshot();
    println!("random bodies: the store ends with {s:?}");
    target.finish();
}

/// What to do to a valid event before sending it.
#[derive(Debug, Clone)]
enum Mutation {
    None,
    Truncate(Index),
    FlipByte(Index, u8),
    InsertByte(Index, u8),
    DeleteField(&'static str),
    WrongType(&'static str, Value),
    Nest(&'static str, usize),
    DuplicateKey(&'static str, Value),
    Splice(Index, Vec<u8>),
}

const FIELDS: [&str; 8] = [
    "id",
    "type",
    "entity",
    "timestamp",
    "data",
    "authors",
    "attempt_number",
    "unknown_field",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let field = prop::sample::select(FIELDS.to_vec());
    prop_oneof![
        2 => Just(Mutation::None),
        2 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::FlipByte(i, b)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::InsertByte(i, b)),
        2 => field.clone().prop_map(Mutation::DeleteField),
        3 => (field.clone(), json_value()).prop_map(|(f, v)| Mutation::WrongType(f, v)),
        1 => (field.clone(), 1usize..1700).prop_map(|(f, d)| Mutation::Nest(f, d)),
        1 => (field, json_value()).prop_map(|(f, v)| Mutation::DuplicateKey(f, v)),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Splice(i, b)),
    ]
}

fn mutate(base: &Value, m: &Mutation) -> Vec<u8> {
    let text = serde_json::to_vec(base).unwrap();
    match m {
        Mutation::None => text,
        Mutation::Truncate(i) => text[..i.index(text.len())].to_vec(),
        Mutation::FlipByte(i, b) => {
            let mut t = text;
            let at = i.index(t.len());
            t[at] ^= b.max(&1);
            t
        }
        Mutation::InsertByte(i, b) => {
            let mut t = text;
            t.insert(i.index(t.len() + 1), *b);
            t
        }
        Mutation::DeleteField(f) => {
            let mut v = base.clone();
            v.as_object_mut().unwrap().remove(*f);
            serde_json::to_vec(&v).unwrap()
        }
        Mutation::WrongType(f, value) => {
            let mut v = base.clone();
            v[*f] = value.clone();
            serde_json::to_vec(&v).unwrap()
        }
        Mutation::Nest(f, depth) => {
            let mut v = base.clone();
            v[*f] = json!("__nest__");
            let nested = format!("{}{}", "[".repeat(*depth), "]".repeat(*depth));
            serde_json::to_string(&v)
                .unwrap()
                .replace("\"__nest__\"", &nested)
                .into_bytes()
        }
        Mutation::DuplicateKey(f, value) => {
            // `{"f": value, …rest}`: the key appears twice when the event has it.
            let mut t = format!("{{\"{f}\":{},", value).into_bytes();
            t.extend_from_slice(&text[1..]);
            t
        }
        Mutation::Splice(i, bytes) => {
            let mut t = text;
            let at = i.index(t.len() + 1);
            t.splice(at..at, bytes.iter().copied());
            t
        }
    }
}

#[test]
fn mutated_events_with_valid_signatures_are_400_or_recorded_never_5xx() {
    let target = Target::new();
    let n = std::cell::Cell::new(0u64);
    let outcomes = std::cell::RefCell::new(std::collections::BTreeMap::<String, usize>::new());
    run(
        "mutated valid events, signed",
        2,
        500,
        (shape(), mutation()),
        |(shape, m)| {
            n.set(n.get() + 1);
            let entity = fresh_uuid(n.get());
            let base = event_value(&target.ds, &shape, &fresh_uuid(1 << 40 | n.get()), &entity);
            let body = mutate(&base, &m);
            let (status, said) = check(&target, &body, &Sig::Valid, Some(&entity))?;
            if matches!(m, Mutation::None) {
                prop_assert_eq!(status, 200, "{}", said);
                prop_assert_eq!(said.as_str(), shape.outcome, "{:?}", shape);
                if shape.outcome == "queued" {
                    prop_assert_eq!(
                        target.jobs_for(&entity),
                        1,
                        "the valid event enqueued its page"
                    );
                }
            }
            // Bucket 400s by the first words of the reason (positions and values vary).
            let reason: Vec<&str> = said
                .trim_start_matches("malformed webhook body: ")
                .split_whitespace()
                .take(3)
                .collect();
            let mut key = format!("{status} {}", reason.join(" "));
            if status == 200 && std::str::from_utf8(&body).is_err() {
                key.push_str(" (invalid UTF-8 in an ignored field: lenient_utf8)");
            }
            *outcomes.borrow_mut().entry(key).or_default() += 1;
            Ok(())
        },
    );
    println!("mutated events: outcomes {:?}", outcomes.borrow());
    target.finish();
}

#[test]
fn a_valid_event_under_a_wrong_or_malformed_signature_is_401_and_not_recorded() {
    let target = Target::new();
    let n = std::cell::Cell::new(0u64);
    let reasons = std::cell::RefCell::new(BTreeSet::new());
    run(
        "valid events, bad signatures",
        3,
        400,
        (shape(), bad_signature()),
        |(shape, sig)| {
            n.set(n.get() + 1);
            let entity = fresh_uuid(n.get());
            let body = event(&target.ds, &shape, &fresh_uuid(1 << 41 | n.get()), &entity);
            let (status, said) = check(&target, &body, &sig, Some(&entity))?;
            prop_assert_eq!(status, 401, "{:?}: {}", sig, said);
            prop_assert_eq!(target.jobs_for(&entity), 0);
            reasons.borrow_mut().insert(said);
            Ok(())
        },
    );
    println!("bad signatures: 401 reasons {:?}", reasons.borrow());
    target.finish();
}
