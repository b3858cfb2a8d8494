//! What every source adapter shares: checking the source's own secret, the
//! "authenticate → parse → map → submit → answer" shape, a small durable memory for the
//! facts a payload alone does not carry (was this PR approved? which nodes did this
//! workflow have?), and helpers for reading foreign JSON.
//!
//! Adapters build plain [`Event`]s and hand them to [`Mapped::push`], which runs the same
//! validation as `POST /v1/events` (flattening, redaction, field checks), so an adapter
//! can never store something the native API would refuse.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{IngestReport, Rejection};
use crate::api::auth::constant_time_eq;
use crate::api::error::{ApiError, ApiResult};
use crate::api::events::read_body;
use crate::api::AppState;
use crate::config::Scope;
use crate::event::{
    parse_event, Actor, ActorType, Attributes, Environment, Event, EventError, Source,
};

/// `POST /v1/ingest/<source>` for every adapter (and Okta's verification `GET`).
pub fn routes() -> axum::Router<AppState> {
    use super::{cloudtrail, github, gitlab, make, n8n, okta, openai, vault};
    use axum::routing::post;
    axum::Router::new()
        .route("/v1/ingest/github", post(github::post))
        .route("/v1/ingest/gitlab", post(gitlab::post))
        .route("/v1/ingest/n8n", post(n8n::post))
        .route("/v1/ingest/make", post(make::post))
        .route("/v1/ingest/vault", post(vault::post))
        .route("/v1/ingest/cloudtrail", post(cloudtrail::post))
        .route(
            "/v1/ingest/okta",
            axum::routing::get(okta::verify).post(okta::post),
        )
        .route("/v1/ingest/openai", post(openai::post))
}

/// The result of checking a source's own secret.
pub enum SourceAuth {
    /// No secret configured for this source: the API-token rules apply.
    NotConfigured,
    Valid,
    Invalid(String),
}

/// Lets a request through when the source's secret verifies, or (secret not configured)
/// when the API-token rules allow it. A request signed wrongly may still carry an API
/// token with the `ingest` scope: such a token can post any event to `/v1/events`
/// anyway, and it is how `plumbline ingest --source` back-fills without the source secret.
pub fn authorize(state: &AppState, headers: &HeaderMap, source: SourceAuth) -> ApiResult<()> {
    match source {
        SourceAuth::Valid => Ok(()),
        SourceAuth::NotConfigured => state.auth.check(headers, Scope::Ingest).map(|_| ()),
        SourceAuth::Invalid(reason) => {
            if !state.auth.is_open() && state.auth.check(headers, Scope::Ingest).is_ok() {
                return Ok(());
            }
            Err(ApiError::unauthorized(reason))
        }
    }
}

/// `X-Hub-Signature-256: sha256=<hex>` style HMAC-SHA256 over the raw body.
pub fn check_hmac_sha256(secret: &str, body: &[u8], presented: Option<&str>) -> SourceAuth {
    if secret.is_empty() {
        return SourceAuth::NotConfigured;
    }
    let Some(sig) = presented else {
        return SourceAuth::Invalid("missing signature header".into());
    };
    let hex_part = sig.trim().strip_prefix("sha256=").unwrap_or(sig.trim());
    let Ok(given) = hex::decode(hex_part) else {
        return SourceAuth::Invalid("signature is not hex".into());
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    match mac.verify_slice(&given) {
        Ok(()) => SourceAuth::Valid,
        Err(_) => SourceAuth::Invalid("signature does not match the configured secret".into()),
    }
}

/// HMAC-SHA256 of `body` as `sha256=<hex>` (what GitHub sends; the CLI signs back-fills).
pub fn sign_sha256(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A shared token compared in constant time (over digests, so the length does not leak).
/// `presented` are the candidate header values; `Bearer ` / `Token ` prefixes are ignored.
pub fn check_token<'a>(
    secret: &str,
    presented: impl IntoIterator<Item = Option<&'a str>>,
    what: &str,
) -> SourceAuth {
    if secret.is_empty() {
        return SourceAuth::NotConfigured;
    }
    let want = Sha256::digest(secret.as_bytes());
    let mut seen = false;
    for value in presented.into_iter().flatten() {
        seen = true;
        let v = value.trim();
        for candidate in [
            v,
            v.strip_prefix("Bearer ").unwrap_or(v),
            v.strip_prefix("bearer ").unwrap_or(v),
            v.strip_prefix("Token ").unwrap_or(v),
        ] {
            if constant_time_eq(&Sha256::digest(candidate.trim().as_bytes()), &want) {
                return SourceAuth::Valid;
            }
        }
    }
    if seen {
        SourceAuth::Invalid(format!("{what} does not match the configured secret"))
    } else {
        SourceAuth::Invalid(format!("missing {what}"))
    }
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Reads the body (413 beyond the limit) — a thin re-export so adapters need one import.
pub async fn body(state: &AppState, headers: &HeaderMap, body: Body) -> ApiResult<bytes::Bytes> {
    read_body(state, headers, body).await
}

/// Parses a JSON body, or a 400 that says where it broke.
pub fn json_body(bytes: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(bytes).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        ApiError::bad_request(format!(
            "body is not JSON: {msg} (line {}, column {})",
            e.line(),
            e.column()
        ))
        .with("line", e.line())
        .with("column", e.column())
    })
}

/// A 400 naming the field of the source payload that is wrong.
pub fn malformed(field: &str, reason: impl Into<String>) -> ApiError {
    let reason = reason.into();
    ApiError::bad_request(format!("`{field}`: {reason}"))
        .with("field", field)
        .with("reason", reason)
}

/// A pending change to adapter memory, applied only after the events are durable
/// (a retried delivery must see the same memory as the failed one).
struct Remember {
    key: Vec<u8>,
    value: Option<Value>,
}

/// Events mapped from one request, with their body positions and refusals.
#[derive(Default)]
pub struct Mapped {
    pub events: Vec<Event>,
    pub indexes: Vec<usize>,
    pub rejected: Vec<Rejection>,
    remember: Vec<Remember>,
}

impl Mapped {
    /// Validates and normalises one event (exactly as `POST /v1/events` would).
    pub fn push(&mut self, index: usize, event: Event) {
        let checked = serde_json::to_value(&event)
            .map_err(|e| EventError::new("(event)", e.to_string()))
            .and_then(parse_event);
        match checked {
            Ok(e) => {
                self.events.push(e);
                self.indexes.push(index);
            }
            Err(err) => self.rejected.push(Rejection::new(index, err)),
        }
    }

    pub fn reject(&mut self, index: usize, field: &str, reason: impl Into<String>) {
        self.rejected.push(Rejection {
            index,
            field: field.to_string(),
            reason: reason.into(),
        });
    }

    pub fn remember(&mut self, source: Source, kind: &str, key: &str, value: Option<Value>) {
        self.remember.push(Remember {
            key: memory_key(source, kind, key),
            value,
        });
    }

    /// What memory holds for `key`, counting what earlier items of this same request
    /// will remember (a page of audit logs can create and then widen a key).
    pub fn recall(&self, memory: &Memory, source: Source, kind: &str, key: &str) -> Option<Value> {
        let k = memory_key(source, kind, key);
        match self.remember.iter().rev().find(|r| r.key == k) {
            Some(r) => r.value.clone(),
            None => memory.get(source, kind, key),
        }
    }
}

/// Stores the mapped events and answers with the `POST /v1/events` report shape.
pub async fn submit(state: &AppState, mapped: Mapped, status: StatusCode) -> ApiResult<Response> {
    let report = store(state, mapped).await?;
    Ok((status, Json(report)).into_response())
}

/// Stores the mapped events durably, then applies the memory updates.
pub async fn store(state: &AppState, mapped: Mapped) -> ApiResult<IngestReport> {
    let Mapped {
        events,
        indexes,
        rejected,
        remember,
    } = mapped;
    let report = state.ingest.submit(events, indexes, rejected).await?;
    if !remember.is_empty() {
        let tree = memory_tree(state)?;
        for r in remember {
            let res = match r.value {
                Some(v) => tree.insert(r.key, serde_json::to_vec(&v).unwrap_or_default()),
                None => tree.remove(r.key),
            };
            res.map_err(|e| ApiError::from(crate::store::StoreError::from(e)))?;
        }
    }
    Ok(report)
}

const MEMORY_TREE: &str = "ingest.adapter_memory";

fn memory_key(source: Source, kind: &str, key: &str) -> Vec<u8> {
    format!("{source}\u{0}{kind}\u{0}{key}").into_bytes()
}

fn memory_tree(state: &AppState) -> ApiResult<sled::Tree> {
    state
        .store
        .db()
        .open_tree(MEMORY_TREE)
        .map_err(|e| ApiError::from(crate::store::StoreError::from(e)))
}

/// Read access to adapter memory while mapping. Updates are read-modify-write per
/// request: two deliveries racing on the same key (two reviews of one pull request in the
/// same instant) can lose one update; the events themselves are never lost.
pub struct Memory {
    tree: Option<sled::Tree>,
}

impl Memory {
    pub fn open(state: &AppState) -> ApiResult<Memory> {
        Ok(Memory {
            tree: Some(memory_tree(state)?),
        })
    }

    /// No memory (unit tests of pure mapping).
    pub fn none() -> Memory {
        Memory { tree: None }
    }

    pub fn get(&self, source: Source, kind: &str, key: &str) -> Option<Value> {
        let tree = self.tree.as_ref()?;
        let bytes = tree.get(memory_key(source, kind, key)).ok()??;
        serde_json::from_slice(&bytes).ok()
    }
}

/// An event with the fields every adapter sets; the rest default.
pub fn event(
    source: Source,
    id: String,
    time: OffsetDateTime,
    actor: Actor,
    system: &str,
    action: &str,
) -> Event {
    Event {
        id,
        time,
        source,
        actor,
        system: if system.is_empty() {
            source.as_str().to_string()
        } else {
            system.to_string()
        },
        action: action.to_string(),
        resource: String::new(),
        environment: Environment::Unknown,
        destination: None,
        volume: None,
        attributes: Attributes::new(),
    }
}

pub fn actor(id: &str, kind: ActorType, display: &str) -> Actor {
    Actor {
        id: if id.is_empty() {
            "unknown".to_string()
        } else {
            id.to_string()
        },
        kind,
        display: display.to_string(),
    }
}

/// Bot and service-account logins that are AI coding agents. Matched on the login of an
/// account that the source already marks as a bot/service, never on people's names.
const AI_AGENT_MARKERS: &[&str] = &[
    "copilot",
    "devin",
    "claude",
    "codex",
    "cursor",
    "openhands",
    "sweep",
    "aider",
    "gemini",
    "jules",
    "codegen",
    "ai-agent",
    "agent[bot]",
];

pub fn is_ai_agent_login(login: &str) -> bool {
    let l = login.to_ascii_lowercase();
    AI_AGENT_MARKERS.iter().any(|m| l.contains(m))
}

/// `<source>.<type>` for types an adapter does not know, with the type turned into valid
/// action segments (lower case; anything but a-z, 0-9, `_`, `-` becomes `_`).
pub fn unknown_action(source: Source, kind: &str) -> String {
    let segs: Vec<String> = kind
        .split('.')
        .map(segment)
        .filter(|s| !s.is_empty())
        .collect();
    if segs.is_empty() {
        format!("{source}.unknown")
    } else {
        format!("{source}.{}", segs.join("."))
    }
}

/// One action segment: `DescribeInstances` → `describe_instances`, `Push Hook` → `push_hook`.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut prev_lower = false;
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
            prev_lower = true;
        } else if c == '-' || c == '_' {
            out.push(c);
            prev_lower = false;
        } else {
            if !out.ends_with('_') {
                out.push('_');
            }
            prev_lower = false;
        }
    }
    out.trim_matches('_').to_string()
}

/// `sha256:<hex>` over bytes: the id of payloads that carry none of their own.
pub fn content_id(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Parses the time formats sources use: RFC 3339, `2024-01-02 03:04:05 UTC`,
/// `2024-01-02 03:04:05 +0100`, and unix seconds or milliseconds.
pub fn parse_time(v: &Value) -> Option<OffsetDateTime> {
    match v {
        Value::Number(n) => {
            // Anything past year 5138 in seconds is milliseconds.
            let nanos = match n.as_i64() {
                Some(i) if i > 100_000_000_000 => i as i128 * 1_000_000,
                Some(i) => i as i128 * 1_000_000_000,
                None => {
                    let x = n.as_f64()?;
                    (if x > 1e11 { x * 1e6 } else { x * 1e9 }) as i128
                }
            };
            OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
        }
        Value::String(s) => parse_time_str(s),
        _ => None,
    }
}

pub fn parse_time_str(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    // `2024-01-02 03:04:05 UTC` / `2024-01-02 03:04:05 +0100` (GitLab hooks).
    let (date_time, zone) = s.rsplit_once(' ')?;
    let iso = date_time.replacen(' ', "T", 1);
    let zone = match zone {
        "UTC" | "Z" => "Z".to_string(),
        z if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            format!("{}:{}", &z[..3], &z[3..])
        }
        _ => return None,
    };
    OffsetDateTime::parse(&format!("{iso}{zone}"), &Rfc3339).ok()
}

/// The value at a dotted path (`a.b.0.c`), if any.
pub fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    if cur.is_null() {
        None
    } else {
        Some(cur)
    }
}

/// A string (or number rendered as a string) at a dotted path; empty when absent.
pub fn s(v: &Value, path: &str) -> String {
    match at(v, path) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

pub fn b(v: &Value, path: &str) -> Option<bool> {
    at(v, path).and_then(Value::as_bool)
}

pub fn u(v: &Value, path: &str) -> Option<u64> {
    match at(v, path)? {
        Value::Number(n) => n.as_u64(),
        Value::String(x) => x.parse().ok(),
        _ => None,
    }
}

/// Strings of an array at a path (scalars only).
pub fn strings(v: &Value, path: &str) -> Vec<String> {
    at(v, path)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Sets an attribute unless the value is empty/null (keeps events small and honest:
/// an absent fact stays absent rather than becoming `""`).
pub fn set(e: &mut Event, key: &str, value: impl Into<Value>) {
    let value = value.into();
    let empty = match &value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if !empty {
        e.attributes.insert(key.to_string(), value);
    }
}

/// Copies the value at `path` of `v` into attribute `key` when present.
pub fn copy(e: &mut Event, key: &str, v: &Value, path: &str) {
    if let Some(x) = at(v, path) {
        set(e, key, x.clone());
    }
}

/// Most attributes kept from a raw payload under one prefix.
pub const PAYLOAD_BUDGET: usize = 160;

/// Keeps a raw payload as flattened attributes under `prefix`, skipping API link fields
/// (`*_url`, `_links`) and stopping after `budget` keys. What is dropped is counted in
/// `<prefix>.dropped`, and the whole payload's hash is kept in `<prefix>.sha256`, so
/// nothing is lost silently and the event stays within the attribute limit.
pub fn keep_payload(e: &mut Event, prefix: &str, payload: &Value, budget: usize) {
    let mut flat = Vec::new();
    flatten_into(&mut flat, prefix.to_string(), payload, 0);
    let mut dropped = 0usize;
    for (k, v) in flat {
        if e.attributes.len() >= budget + 8 || e.attributes.len() >= 480 {
            dropped += 1;
            continue;
        }
        e.attributes.entry(k).or_insert(v);
    }
    if dropped > 0 {
        e.attributes
            .insert(format!("{prefix}.dropped"), Value::from(dropped as u64));
    }
    let bytes = serde_json::to_vec(payload).unwrap_or_default();
    e.attributes.insert(
        format!("{prefix}.sha256"),
        Value::String(hex::encode(Sha256::digest(&bytes))),
    );
}

fn flatten_into(out: &mut Vec<(String, Value)>, key: String, v: &Value, depth: usize) {
    let leaf = key.rsplit('.').next().unwrap_or("");
    if leaf.ends_with("_url") || leaf == "url" && depth > 1 || leaf == "_links" {
        return;
    }
    match v {
        Value::Object(m) if depth < 6 => {
            for (k, x) in m {
                flatten_into(out, format!("{key}.{k}"), x, depth + 1);
            }
        }
        Value::Array(a) if depth < 6 => {
            for (i, x) in a.iter().enumerate().take(32) {
                flatten_into(out, format!("{key}.{i}"), x, depth + 1);
            }
        }
        Value::Object(_) | Value::Array(_) => out.push((key, Value::String(v.to_string()))),
        Value::Null => {}
        scalar => out.push((key, scalar.clone())),
    }
}

/// The host of a URL (`https://api.example.com:8443/x` → `api.example.com`); expressions
/// and bare paths give `None`.
pub fn url_host(url: &str) -> Option<String> {
    let u = url.trim().trim_start_matches('=');
    let rest = u.split_once("://").map(|(_, r)| r)?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if host_port.starts_with('[') {
        host_port.split(']').next()?.trim_start_matches('[')
    } else {
        host_port.split(':').next()?
    };
    let host = host.to_ascii_lowercase();
    let ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == ':');
    ok.then_some(host)
}

/// Environment from names: a path segment or word such as `prod`, `staging`, `test`.
pub fn guess_environment<'a>(names: impl IntoIterator<Item = &'a str>) -> Environment {
    for name in names {
        for word in name
            .to_ascii_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
        {
            match word {
                "prod" | "production" | "prd" | "live" => return Environment::Prod,
                "staging" | "stage" | "stg" | "preprod" => return Environment::Staging,
                "test" | "testing" | "dev" | "development" | "qa" | "sandbox" => {
                    return Environment::Test
                }
                _ => {}
            }
        }
    }
    Environment::Unknown
}

/// An environment named by a source field (`production`, `Staging`, ...).
pub fn environment_named(name: &str) -> Environment {
    guess_environment([name])
}

/// Items of a container: the array itself, or the array under one of `keys`, or the
/// object as a single item.
pub fn items<'a>(v: &'a Value, keys: &[&str]) -> Vec<&'a Value> {
    if let Value::Array(a) = v {
        return a.iter().collect();
    }
    for k in keys {
        if let Some(Value::Array(a)) = v.get(*k) {
            return a.iter().collect();
        }
    }
    vec![v]
}

/// JSON objects of an NDJSON body (blank lines skipped). A line that is not JSON is
/// reported with its position.
pub fn ndjson(body: &[u8]) -> Vec<Result<Value, String>> {
    body.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(|l| {
            serde_json::from_slice::<Value>(l).map_err(|e| {
                let m = e.to_string();
                format!("not JSON: {}", m.split(" at line ").next().unwrap_or(&m))
            })
        })
        .collect()
}

/// `a` and `b` of a JSON object as an owned map (for merging detail into attributes).
pub fn object(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// Scopes are sets of words (`repo read:org`, `["a","b"]`); growth is an escalation.
pub fn scope_set(v: &Value) -> std::collections::BTreeSet<String> {
    match v {
        Value::String(x) => x
            .split([' ', ','])
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect(),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Default::default(),
    }
}

/// Keeps a credential's scopes as `credential.scope` on `e`, remembers them, and derives
/// `credential.scope.increased` (id `<id>:scope`) when they grew since the last time this
/// credential was seen. A first sighting has no baseline and derives nothing.
pub fn track_scope(
    e: &mut Event,
    scopes: &Value,
    credential: &str,
    memory: &Memory,
    out: &mut Mapped,
) -> Option<Event> {
    let now = scope_set(scopes);
    let before = out
        .recall(memory, e.source, "credential_scope", credential)
        .map(|v| scope_set(&v))
        .unwrap_or_default();
    let join =
        |s: &std::collections::BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(" ");
    e.attributes
        .insert("credential.scope".into(), Value::String(join(&now)));
    out.remember(
        e.source,
        "credential_scope",
        credential,
        Some(Value::Array(
            now.iter().cloned().map(Value::String).collect(),
        )),
    );
    let added: std::collections::BTreeSet<String> = now.difference(&before).cloned().collect();
    if before.is_empty() || added.is_empty() {
        return None;
    }
    let mut d = e.clone();
    d.id = format!("{}:scope", e.id);
    d.action = "credential.scope.increased".into();
    d.attributes
        .insert("credential.scope.added".into(), Value::String(join(&added)));
    d.attributes.insert(
        "credential.scope.before".into(),
        Value::String(join(&before)),
    );
    Some(d)
}

/// Whether a filename matches a glob (`*` within a segment, `**` across segments, `?`).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = &p[2..];
                (0..=t.len()).any(|i| go(rest, &t[i..]))
            }
            Some(b'*') => {
                let rest = &p[1..];
                for i in 0..=t.len() {
                    if go(rest, &t[i..]) {
                        return true;
                    }
                    if i < t.len() && t[i] == b'/' {
                        break;
                    }
                }
                false
            }
            Some(b'?') => !t.is_empty() && t[0] != b'/' && go(&p[1..], &t[1..]),
            Some(c) => !t.is_empty() && t[0] == *c && go(&p[1..], &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// Categories of high-risk paths: a change there deserves a second look whoever makes it.
/// Matched case-insensitively against each path segment (and the whole path for the CI
/// files), so `src/auth/session.rs` is `auth` and `.github/workflows/ci.yml` is `ci`.
pub const HIGH_RISK_PATHS: &[(&str, &[&str])] = &[
    (
        "ci",
        &[
            ".github/workflows/",
            ".github/actions/",
            ".gitlab-ci.yml",
            ".gitlab/ci/",
            "jenkinsfile",
            ".circleci/",
            "azure-pipelines.yml",
            ".buildkite/",
            ".drone.yml",
            "bitbucket-pipelines.yml",
        ],
    ),
    ("codeowners", &["codeowners"]),
    (
        "auth",
        &[
            "auth",
            "authn",
            "authentication",
            "login",
            "oauth",
            "oidc",
            "saml",
            "sso",
            "session",
            "sessions",
            "jwt",
            "mfa",
            "2fa",
            "password",
            "passwords",
        ],
    ),
    (
        "permissions",
        &[
            "authz",
            "authorization",
            "permission",
            "permissions",
            "rbac",
            "acl",
            "acls",
            "iam",
            "roles",
            "policy",
            "policies",
            "access",
        ],
    ),
    (
        "secrets",
        &[
            "secret",
            "secrets",
            "credential",
            "credentials",
            "vault",
            "keys",
            ".env",
            "kms",
            "certs",
            "tls",
        ],
    ),
    (
        "payments",
        &[
            "payment", "payments", "billing", "invoice", "invoices", "checkout", "stripe",
            "ledger", "payout", "payouts",
        ],
    ),
];

/// The high-risk categories a path falls in. Needles with a `/` or a file extension
/// match anywhere in the path; dot-file needles (`.env`) match a segment's start; plain
/// words match whole words of the path (split on `/ _ - .`).
pub fn risk_categories(path: &str) -> Vec<&'static str> {
    let lower = path.to_ascii_lowercase();
    let segments: Vec<&str> = lower.split('/').collect();
    let words: Vec<&str> = segments
        .iter()
        .flat_map(|seg| seg.split(['_', '-', '.']))
        .collect();
    let mut out = Vec::new();
    for (cat, needles) in HIGH_RISK_PATHS {
        let hit = needles.iter().any(|n| {
            if n.contains('/') || n.ends_with(".yml") {
                lower.contains(n)
            } else if n.starts_with('.') {
                segments.iter().any(|seg| seg.starts_with(n))
            } else {
                words.iter().any(|w| w == n)
            }
        });
        if hit {
            out.push(*cat);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hmac_signatures_verify_in_constant_time_and_name_the_problem() {
        let body = br#"{"zen":"Keep it logically awesome."}"#;
        let sig = sign_sha256("s3cret", body);
        assert!(matches!(
            check_hmac_sha256("s3cret", body, Some(&sig)),
            SourceAuth::Valid
        ));
        assert!(matches!(
            check_hmac_sha256("other", body, Some(&sig)),
            SourceAuth::Invalid(_)
        ));
        assert!(matches!(
            check_hmac_sha256("s3cret", body, None),
            SourceAuth::Invalid(_)
        ));
        assert!(matches!(
            check_hmac_sha256("", body, None),
            SourceAuth::NotConfigured
        ));
    }

    #[test]
    fn tokens_accept_bearer_and_raw_forms() {
        assert!(matches!(
            check_token("t0ken-value", [Some("Bearer t0ken-value")], "token"),
            SourceAuth::Valid
        ));
        assert!(matches!(
            check_token("t0ken-value", [None, Some("t0ken-value")], "token"),
            SourceAuth::Valid
        ));
        assert!(matches!(
            check_token("t0ken-value", [Some("nope")], "token"),
            SourceAuth::Invalid(_)
        ));
    }

    #[test]
    fn times_in_source_formats() {
        let t = |v: Value| {
            parse_time(&v).map(|t| crate::event::format_time(t.to_offset(time::UtcOffset::UTC)))
        };
        assert_eq!(
            t(json!("2024-05-01T10:00:00.5+02:00")).unwrap(),
            "2024-05-01T08:00:00.5Z"
        );
        assert_eq!(
            t(json!("2013-12-03 17:23:34 UTC")).unwrap(),
            "2013-12-03T17:23:34Z"
        );
        assert_eq!(
            t(json!("2013-12-03 17:23:34 +0100")).unwrap(),
            "2013-12-03T16:23:34Z"
        );
        assert_eq!(t(json!(1720804090)).unwrap(), "2024-07-12T17:08:10Z");
        assert_eq!(
            t(json!(1720804090123u64)).unwrap(),
            "2024-07-12T17:08:10.123Z"
        );
        assert_eq!(t(json!("yesterday")), None);
    }

    #[test]
    fn segments_and_unknown_actions() {
        assert_eq!(segment("DescribeInstances"), "describe_instances");
        assert_eq!(segment("Push Hook"), "push_hook");
        assert_eq!(
            unknown_action(Source::Okta, "app.oauth2.as.consent.Grant"),
            "okta.app.oauth2.as.consent.grant"
        );
        assert!(
            crate::event::check_action(&unknown_action(Source::Github, "Weird Event!")).is_ok()
        );
    }

    #[test]
    fn globs_follow_fnmatch_pathname_rules() {
        assert!(glob_match("main", "main"));
        assert!(glob_match("release/*", "release/1.2"));
        assert!(!glob_match("release/*", "release/1/2"));
        assert!(glob_match("release/**", "release/1/2"));
        assert!(glob_match("v?", "v1"));
    }

    #[test]
    fn risk_categories_by_segment() {
        assert_eq!(risk_categories(".github/workflows/release.yml"), vec!["ci"]);
        assert_eq!(risk_categories("src/auth/session.rs"), vec!["auth"]);
        assert_eq!(
            risk_categories("services/billing/invoice.go"),
            vec!["payments"]
        );
        assert_eq!(risk_categories("config/.env.production"), vec!["secrets"]);
        assert_eq!(risk_categories("docs/CODEOWNERS"), vec!["codeowners"]);
        assert!(risk_categories("README.md").is_empty());
        // "author" is not "auth", "accessibility" is not "access".
        assert!(risk_categories("src/author/accessibility.md").is_empty());
    }

    #[test]
    fn url_hosts_and_environments() {
        assert_eq!(
            url_host("https://user:pw@API.example.com:8443/x?y").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(url_host("={{ $json.url }}"), None);
        assert_eq!(url_host("/relative"), None);
        assert_eq!(
            guess_environment(["secret/data/prod/db"]),
            Environment::Prod
        );
        assert_eq!(guess_environment(["n8n-staging"]), Environment::Staging);
        assert_eq!(guess_environment(["product"]), Environment::Unknown);
    }

    #[test]
    fn payloads_are_kept_within_budget_with_a_hash() {
        let mut e = event(
            Source::Github,
            "x".into(),
            OffsetDateTime::UNIX_EPOCH,
            actor("a", ActorType::Human, ""),
            "s",
            "github.star.created",
        );
        let big: Map<String, Value> = (0..500).map(|i| (format!("k{i}"), json!(i))).collect();
        keep_payload(&mut e, "payload", &Value::Object(big), 100);
        assert!(e.attributes.len() <= 110, "{}", e.attributes.len());
        assert!(e.attributes["payload.dropped"].as_u64().unwrap() > 380);
        assert!(e.attributes.contains_key("payload.sha256"));
        let mut m = Mapped::default();
        m.push(0, e);
        assert!(m.rejected.is_empty(), "{:?}", m.rejected);
    }
}
