//! What every source adapter shares: the [`Adapter`] trait, checking a source's own
//! secret ([`SourceAuth`]), the mapping result ([`Mapped`]) and its errors
//! ([`IngestError`]), and the small [`Memory`] of facts a payload alone does not carry
//! (was this PR approved? which nodes did this workflow have?).
//!
//! Adapters build plain [`Event`]s and hand them to [`Mapped::push`], which runs the same
//! validation as `POST /v1/events` (flattening, redaction, field checks), so an adapter
//! can never store something the native API would refuse. They know nothing of HTTP
//! servers or storage: the API (`POST /v1/ingest/<source>`), the Vault socket and tests
//! call them the same way.

use std::collections::BTreeMap;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use http::{HeaderMap, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::Rejection;
use plumbline_event::{parse_event, Event, EventError, Source, RESERVED_PREFIX, VERIFIED_BY};

/// One source's wire format: how its requests are authenticated and how their bodies
/// map to events. An HTTP front end serves every adapter the same way:
///
/// 1. check the credential with [`verify`](Adapter::verify) — before reading the body,
///    or after it when [`verifies_body`](Adapter::verifies_body) (a signature over the
///    raw body); `NotConfigured` and `Invalid` fall back to the API-token rules;
/// 2. read the body (within the size limit);
/// 3. [`map`](Adapter::map) it, reading [`Memory`];
/// 4. store the events, then apply the memory updates;
/// 5. answer [`success`](Adapter::success) with the ingest report, or the
///    [`IngestError`] as a 4xx.
///
/// A source with a one-time `GET` handshake on its endpoint (Okta's event-hook
/// verification) answers it in [`handshake`](Adapter::handshake). Replay protection is
/// the mapping's job: event ids come from the source's delivery id (a header or the
/// payload) or a content hash, and storage is idempotent on them.
pub trait Adapter: Send + Sync {
    /// The source its events carry.
    fn source(&self) -> Source;

    /// Its endpoint's name, `/v1/ingest/<endpoint>`: the source's name unless one source
    /// arrives in two wire formats (GitHub's webhooks at `github`, its audit log at
    /// `github-audit`, both events of `source: github`).
    fn endpoint(&self) -> &'static str {
        self.source().as_str()
    }

    /// Checks the source's own credential in the headers (and, when
    /// [`verifies_body`](Adapter::verifies_body), over the raw body; otherwise `body` is
    /// empty). Sources without a credential of their own answer `NotConfigured`.
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> SourceAuth;

    /// Whether [`verify`](Adapter::verify) needs the body (a signature over it): the body
    /// is then read first. Otherwise the credential is checked before the body is read.
    fn verifies_body(&self) -> bool {
        false
    }

    /// Maps one request's body to events, refusals and memory updates. An error refuses
    /// the whole request and stores nothing.
    fn map(&self, delivery: &Delivery<'_>, memory: &dyn Memory) -> Result<Mapped, IngestError>;

    /// The status of a successful answer (Okta counts only 200/204 as delivered).
    fn success(&self) -> StatusCode {
        StatusCode::ACCEPTED
    }

    /// Whether the endpoint answers `GET` with [`handshake`](Adapter::handshake).
    fn has_handshake(&self) -> bool {
        false
    }

    /// The JSON answer to an authorised `GET` on the endpoint (see
    /// [`has_handshake`](Adapter::has_handshake)).
    fn handshake(&self, _headers: &HeaderMap) -> Result<Value, IngestError> {
        Err(IngestError::NotFound(format!(
            "{} has no handshake",
            self.source()
        )))
    }

    /// A coding agent's hook endpoint answers in the agent's own format: which mapped
    /// event is the call awaiting a verdict and how to render one
    /// ([`crate::agents::HookReply`]). `None` (every other source): the ingest report.
    fn hook_reply(
        &self,
        _delivery: &Delivery<'_>,
        _mapped: &Mapped,
    ) -> Option<crate::agents::HookReply> {
        None
    }

    /// An OTLP/HTTP receiver, served at `/v1/logs` or `/v1/traces` with OTLP's answers
    /// instead of `/v1/ingest/<endpoint>`.
    fn otlp(&self) -> Option<crate::agents::otlp::Signal> {
        None
    }
}

/// One request to a source endpoint, as an adapter maps it.
pub struct Delivery<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// When it was received: the time of events whose payload carries none.
    pub received: OffsetDateTime,
}

impl<'a> Delivery<'a> {
    /// A header's value, when present and text.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        header(self.headers, name)
    }
}

/// The result of checking a source's own secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceAuth {
    /// No secret configured for this source: the API-token rules apply.
    NotConfigured,
    Valid,
    Invalid(String),
}

/// Why a whole request was refused while mapping. The API answers each with the status
/// of [`status_hint`](IngestError::status_hint) and a JSON error naming the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestError {
    /// The body is not JSON (400, with the line and column where it broke).
    NotJson {
        reason: String,
        line: usize,
        column: usize,
    },
    /// A field of the payload (or a header the source sends) is missing or wrong (400,
    /// naming it).
    Malformed { field: String, reason: String },
    /// The request asks for something turned off or absent (404).
    NotFound(String),
    /// The body's content type is not one the endpoint reads (415, naming it and what is).
    UnsupportedMediaType(String),
}

impl IngestError {
    /// A 400 naming the field of the source payload that is wrong.
    pub fn malformed(field: &str, reason: impl Into<String>) -> Self {
        IngestError::Malformed {
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    pub fn status_hint(&self) -> StatusCode {
        match self {
            IngestError::NotJson { .. } | IngestError::Malformed { .. } => StatusCode::BAD_REQUEST,
            IngestError::NotFound(_) => StatusCode::NOT_FOUND,
            IngestError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// The field at fault, if one is.
    pub fn field(&self) -> Option<&str> {
        match self {
            IngestError::Malformed { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IngestError::NotJson {
                reason,
                line,
                column,
            } => write!(
                f,
                "body is not JSON: {reason} (line {line}, column {column})"
            ),
            IngestError::Malformed { field, reason } => write!(f, "`{field}`: {reason}"),
            IngestError::NotFound(message) | IngestError::UnsupportedMediaType(message) => {
                f.write_str(message)
            }
        }
    }
}

impl std::error::Error for IngestError {}

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

/// Byte slices compared without an early exit on the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The shared token of a source with no signing of its own (n8n, make.com, OpenAI
/// shippers): sent as `Authorization` or `X-Plumbline-Token`.
pub fn check_shared_token(secret: &str, headers: &HeaderMap, source: &str) -> SourceAuth {
    check_token(
        secret,
        [
            header(headers, "authorization"),
            header(headers, "x-plumbline-token"),
        ],
        &format!("{source} token (Authorization or X-Plumbline-Token)"),
    )
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A pending change to adapter memory, applied only after the events are durable
/// (a retried delivery must see the same memory as the failed one).
#[derive(Debug, Clone, PartialEq)]
pub struct Remember {
    pub source: Source,
    pub kind: String,
    pub key: String,
    /// `None` forgets the key.
    pub value: Option<Value>,
}

/// Events mapped from one request, with their body positions and refusals.
#[derive(Debug, Default)]
pub struct Mapped {
    pub events: Vec<Event>,
    pub indexes: Vec<usize>,
    pub rejected: Vec<Rejection>,
    pub remember: Vec<Remember>,
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

    /// Changes the first mapped event and validates it again (as [`Mapped::push`] did),
    /// keeping its place; if it no longer passes, it stays as it was.
    pub fn amend_first(&mut self, change: impl FnOnce(&mut Event)) {
        let Some(first) = self.events.first() else {
            return;
        };
        let mut e = first.clone();
        change(&mut e);
        if let Ok(checked) = serde_json::to_value(&e)
            .map_err(|e| EventError::new("(event)", e.to_string()))
            .and_then(parse_event)
        {
            self.events[0] = checked;
        }
    }

    /// Records where the events came from: Plumbline's own attributes a payload might
    /// carry are dropped, and events whose source credential verified (`verified`) are
    /// marked so, which response actions require of the events they act on.
    pub fn stamp(&mut self, verified: bool) {
        for e in &mut self.events {
            e.attributes.retain(|k, _| !k.starts_with(RESERVED_PREFIX));
            if verified {
                e.attributes
                    .insert(VERIFIED_BY.to_string(), Value::from(e.source.as_str()));
            }
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
            source,
            kind: kind.to_string(),
            key: key.to_string(),
            value,
        });
    }

    /// What memory holds for `key`, counting what earlier items of this same request
    /// will remember (a page of audit logs can create and then widen a key).
    pub fn recall(
        &self,
        memory: &dyn Memory,
        source: Source,
        kind: &str,
        key: &str,
    ) -> Option<Value> {
        let pending = self
            .remember
            .iter()
            .rev()
            .find(|r| r.source == source && r.kind == kind && r.key == key);
        match pending {
            Some(r) => r.value.clone(),
            None => memory.get(source, kind, key),
        }
    }
}

/// Adapter memory: JSON values by (source, kind, key), read while mapping and updated
/// (by the ingest stage, from [`Mapped::remember`]) once the events are durable. Updates
/// are read-modify-write per request: two deliveries racing on the same key (two reviews
/// of one pull request in the same instant) can lose one update; the events themselves
/// are never lost.
pub trait Memory: Send + Sync {
    fn get(&self, source: Source, kind: &str, key: &str) -> Option<Value>;

    /// Sets (`Some`) or forgets (`None`) a value.
    fn remember(
        &self,
        source: Source,
        kind: &str,
        key: &str,
        value: Option<&Value>,
    ) -> Result<(), MemoryError>;
}

/// Memory could not be written (the storage behind it failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryError(pub String);

impl std::fmt::Display for MemoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MemoryError {}

/// Memory in a map, for tests and tools that map without storing.
#[derive(Debug, Default)]
pub struct InMemory {
    values: Mutex<BTreeMap<(Source, String, String), Value>>,
}

impl Memory for InMemory {
    fn get(&self, source: Source, kind: &str, key: &str) -> Option<Value> {
        let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        values
            .get(&(source, kind.to_string(), key.to_string()))
            .cloned()
    }

    fn remember(
        &self,
        source: Source,
        kind: &str,
        key: &str,
        value: Option<&Value>,
    ) -> Result<(), MemoryError> {
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let k = (source, kind.to_string(), key.to_string());
        match value {
            Some(v) => values.insert(k, v.clone()),
            None => values.remove(&k),
        };
        Ok(())
    }
}

/// Applies a request's memory updates in order.
pub fn apply(memory: &dyn Memory, remember: &[Remember]) -> Result<(), MemoryError> {
    for r in remember {
        memory.remember(r.source, &r.kind, &r.key, r.value.as_ref())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hmac_signatures_verify_in_constant_time_and_name_the_problem() {
        let body = br#"{"zen":"Keep it logically awesome."}"#;
        let sig = sign_sha256("s3cret", body);
        assert_eq!(
            check_hmac_sha256("s3cret", body, Some(&sig)),
            SourceAuth::Valid
        );
        assert!(matches!(
            check_hmac_sha256("other", body, Some(&sig)),
            SourceAuth::Invalid(_)
        ));
        assert!(matches!(
            check_hmac_sha256("s3cret", body, None),
            SourceAuth::Invalid(_)
        ));
        assert_eq!(check_hmac_sha256("", body, None), SourceAuth::NotConfigured);
    }

    #[test]
    fn tokens_accept_bearer_and_raw_forms() {
        assert_eq!(
            check_token("t0ken-value", [Some("Bearer t0ken-value")], "token"),
            SourceAuth::Valid
        );
        assert_eq!(
            check_token("t0ken-value", [None, Some("t0ken-value")], "token"),
            SourceAuth::Valid
        );
        assert!(matches!(
            check_token("t0ken-value", [Some("nope")], "token"),
            SourceAuth::Invalid(_)
        ));
    }

    #[test]
    fn recall_sees_this_requests_pending_updates_before_memory() {
        let memory = InMemory::default();
        memory
            .remember(Source::Make, "k", "a", Some(&json!(1)))
            .unwrap();
        let mut m = Mapped::default();
        assert_eq!(m.recall(&memory, Source::Make, "k", "a"), Some(json!(1)));
        m.remember(Source::Make, "k", "a", Some(json!(2)));
        assert_eq!(m.recall(&memory, Source::Make, "k", "a"), Some(json!(2)));
        m.remember(Source::Make, "k", "a", None);
        assert_eq!(m.recall(&memory, Source::Make, "k", "a"), None);
        apply(&memory, &m.remember).unwrap();
        assert_eq!(memory.get(Source::Make, "k", "a"), None);
    }
}
