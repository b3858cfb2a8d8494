//! The OTLP/HTTP receiver's reading and mapping: `POST /v1/logs` and `POST /v1/traces`
//! (served by the API, which decodes `Content-Encoding: gzip` and shapes OTLP's answer),
//! in both OTLP/HTTP encodings:
//!
//! - `application/x-protobuf`: `ExportLogsServiceRequest` / `ExportTraceServiceRequest`,
//!   decoded with the OpenTelemetry project's generated types;
//! - `application/json`: OTLP/JSON (lowerCamelCase fields, hex trace ids, 64-bit integers
//!   as strings or numbers — Codex sends every integer as a string), read into the same
//!   types, so both encodings map identically and give the same event ids.
//!
//! Log records of Claude Code (`service.name` `claude-code`, events `claude_code.*`) and
//! Codex (`codex.*`) map onto the coding-agent vocabulary; `execute_tool` spans of the
//! GenAI conventions from any agent map to tool calls. Records of other services are
//! refused (counted in OTLP's `partialSuccess`); streaming noise (Codex's per-chunk
//! `codex.sse_event`s other than `response.completed`, websocket events) and spans that
//! are not tool calls are skipped, neither stored nor refused.

use base64::Engine;
use http::HeaderMap;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use super::{
    decision, hash_id, json_text, merge, put, repository, tool_event, truncate, unknown,
    AgentsConfig, Attrs, Phase, Session, ToolCall,
};
use crate::adapter::{
    check_token, header, Adapter, Delivery, IngestError, Mapped, Memory, SourceAuth,
};
use crate::map::json_body;
use plumbline_event::Source;

/// The two OTLP signals Plumbline reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Logs,
    Traces,
}

impl Signal {
    /// The OTLP/HTTP path.
    pub fn path(self) -> &'static str {
        match self {
            Signal::Logs => "/v1/logs",
            Signal::Traces => "/v1/traces",
        }
    }
}

/// OTLP/HTTP's two encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Protobuf,
}

impl Encoding {
    /// From a `Content-Type` (parameters such as `charset` ignored).
    pub fn from_content_type(ct: Option<&str>) -> Option<Encoding> {
        let mime = ct?.split(';').next()?.trim().to_ascii_lowercase();
        match mime.as_str() {
            "application/json" => Some(Encoding::Json),
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/json",
            Encoding::Protobuf => "application/x-protobuf",
        }
    }
}

/// OTLP's success answer in the request's encoding: an empty export response, or one with
/// `partialSuccess` counting the refused records (spans) and saying why.
pub fn response(signal: Signal, encoding: Encoding, rejected: usize, message: &str) -> Vec<u8> {
    let n = rejected as i64;
    match (encoding, signal) {
        (Encoding::Json, _) if rejected == 0 => b"{}".to_vec(),
        (Encoding::Json, Signal::Logs) => {
            json!({"partialSuccess": {"rejectedLogRecords": n, "errorMessage": message}})
                .to_string()
                .into_bytes()
        }
        (Encoding::Json, Signal::Traces) => {
            json!({"partialSuccess": {"rejectedSpans": n, "errorMessage": message}})
                .to_string()
                .into_bytes()
        }
        (Encoding::Protobuf, Signal::Logs) => ExportLogsServiceResponse {
            partial_success: (rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: n,
                error_message: message.to_string(),
            }),
        }
        .encode_to_vec(),
        (Encoding::Protobuf, Signal::Traces) => ExportTraceServiceResponse {
            partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: n,
                error_message: message.to_string(),
            }),
        }
        .encode_to_vec(),
    }
}

/// The receiver of one signal, as an [`Adapter`]: the `[agents] otlp_token` credential and
/// the mapping. The API serves it at [`Signal::path`] (not under `/v1/ingest/`).
pub struct OtlpAdapter {
    signal: Signal,
    config: AgentsConfig,
}

impl OtlpAdapter {
    pub fn new(signal: Signal, config: AgentsConfig) -> Self {
        OtlpAdapter { signal, config }
    }
}

impl Adapter for OtlpAdapter {
    /// Events carry the agent they came from (`claude-code`, `codex`, `otel`).
    fn source(&self) -> Source {
        Source::Otel
    }

    fn endpoint(&self) -> &'static str {
        match self.signal {
            Signal::Logs => "otlp-logs",
            Signal::Traces => "otlp-traces",
        }
    }

    fn verify(&self, headers: &HeaderMap, _body: &[u8]) -> SourceAuth {
        check_token(
            &self.config.otlp_token,
            [
                header(headers, "authorization"),
                header(headers, "x-plumbline-token"),
            ],
            "OTLP token (Authorization: Bearer <[agents] otlp_token>)",
        )
    }

    fn map(&self, d: &Delivery<'_>, _memory: &dyn Memory) -> Result<Mapped, IngestError> {
        let ct = d.header("content-type");
        let encoding = Encoding::from_content_type(ct).ok_or_else(|| unsupported(ct))?;
        Ok(match self.signal {
            Signal::Logs => map_logs(&decode_logs(encoding, d.body)?, d.received),
            Signal::Traces => map_traces(&decode_traces(encoding, d.body)?, d.received),
        })
    }

    fn success(&self) -> http::StatusCode {
        http::StatusCode::OK
    }

    fn otlp(&self) -> Option<Signal> {
        Some(self.signal)
    }
}

/// 415 naming the content type and the two OTLP/HTTP encodings.
pub fn unsupported(ct: Option<&str>) -> IngestError {
    IngestError::UnsupportedMediaType(format!(
        "content type `{}` is not OTLP/HTTP: use application/x-protobuf or application/json",
        ct.unwrap_or("")
    ))
}

/// An `ExportLogsServiceRequest` in either encoding.
pub fn decode_logs(
    encoding: Encoding,
    body: &[u8],
) -> Result<ExportLogsServiceRequest, IngestError> {
    match encoding {
        Encoding::Protobuf => ExportLogsServiceRequest::decode(body).map_err(|e| {
            IngestError::malformed(
                "(body)",
                format!("not an OTLP ExportLogsServiceRequest in protobuf: {e}"),
            )
        }),
        Encoding::Json => logs_from_json(&json_body(body)?),
    }
}

/// An `ExportTraceServiceRequest` in either encoding.
pub fn decode_traces(
    encoding: Encoding,
    body: &[u8],
) -> Result<ExportTraceServiceRequest, IngestError> {
    match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body).map_err(|e| {
            IngestError::malformed(
                "(body)",
                format!("not an OTLP ExportTraceServiceRequest in protobuf: {e}"),
            )
        }),
        Encoding::Json => traces_from_json(&json_body(body)?),
    }
}

/// OTLP/JSON re-encoded as protobuf (what an exporter set to `http/protobuf` sends for the
/// same records): for tests and tools.
pub fn json_to_protobuf(signal: Signal, json: &[u8]) -> Result<Vec<u8>, IngestError> {
    let v = json_body(json)?;
    Ok(match signal {
        Signal::Logs => logs_from_json(&v)?.encode_to_vec(),
        Signal::Traces => traces_from_json(&v)?.encode_to_vec(),
    })
}

// ---- OTLP/JSON into the protobuf types -------------------------------------------------

/// A field by its OTLP/JSON (lowerCamelCase) name, or the proto (snake_case) name.
fn field<'a>(v: &'a Value, camel: &str) -> Option<&'a Value> {
    let o = v.as_object()?;
    if let Some(x) = o.get(camel).filter(|x| !x.is_null()) {
        return Some(x);
    }
    let mut snake = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    o.get(&snake).filter(|x| !x.is_null())
}

fn bad(path: &str, reason: impl Into<String>) -> IngestError {
    IngestError::malformed(path, reason)
}

fn list<'a>(v: &'a Value, key: &str, path: &str) -> Result<&'a [Value], IngestError> {
    match field(v, key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(bad(&format!("{path}{key}"), "expected an array")),
    }
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Value, IngestError> {
    if v.is_object() {
        Ok(v)
    } else {
        Err(bad(path, "expected an object"))
    }
}

/// A 64-bit unsigned integer: a number or a decimal string (`"0"` when absent).
fn uint(v: &Value, key: &str, path: &str) -> Result<u64, IngestError> {
    match field(v, key) {
        None => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| bad(&format!("{path}{key}"), "not an unsigned integer")),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| {
            bad(
                &format!("{path}{key}"),
                format!("`{s}` is not an unsigned integer"),
            )
        }),
        Some(_) => Err(bad(
            &format!("{path}{key}"),
            "expected an integer (number or string)",
        )),
    }
}

/// A small integer or an enum given by number (an enum's name reads as 0).
fn small(v: &Value, key: &str) -> i32 {
    match field(v, key) {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0) as i32,
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn text(v: &Value, key: &str, path: &str) -> Result<String, IngestError> {
    match field(v, key) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(bad(&format!("{path}{key}"), "expected a string")),
    }
}

/// Trace and span ids: hex in OTLP/JSON.
fn hex_id(v: &Value, key: &str, path: &str) -> Result<Vec<u8>, IngestError> {
    match field(v, key) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => hex::decode(s)
            .map_err(|_| bad(&format!("{path}{key}"), format!("`{s}` is not a hex id"))),
        Some(_) => Err(bad(&format!("{path}{key}"), "expected a hex string")),
    }
}

fn any_value(v: &Value, path: &str) -> Result<AnyValue, IngestError> {
    use any_value::Value as V;
    let o = v
        .as_object()
        .ok_or_else(|| bad(path, "expected an AnyValue object"))?;
    let value = if let Some(s) = field(v, "stringValue") {
        Some(V::StringValue(
            s.as_str()
                .ok_or_else(|| bad(&format!("{path}.stringValue"), "expected a string"))?
                .to_string(),
        ))
    } else if let Some(b) = field(v, "boolValue") {
        Some(V::BoolValue(match b {
            Value::Bool(b) => *b,
            Value::String(s) if s == "true" || s == "false" => s == "true",
            _ => return Err(bad(&format!("{path}.boolValue"), "expected a boolean")),
        }))
    } else if let Some(i) = field(v, "intValue") {
        let n = match i {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        Some(V::IntValue(n.ok_or_else(|| {
            bad(
                &format!("{path}.intValue"),
                format!("`{i}` is not a 64-bit integer"),
            )
        })?))
    } else if let Some(d) = field(v, "doubleValue") {
        let x = match d {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        Some(V::DoubleValue(x.ok_or_else(|| {
            bad(&format!("{path}.doubleValue"), "not a number")
        })?))
    } else if let Some(a) = field(v, "arrayValue") {
        let p = format!("{path}.arrayValue.");
        let values = list(a, "values", &p)?
            .iter()
            .enumerate()
            .map(|(i, x)| any_value(x, &format!("{p}values.{i}")))
            .collect::<Result<_, _>>()?;
        Some(V::ArrayValue(ArrayValue { values }))
    } else if let Some(kv) = field(v, "kvlistValue") {
        Some(V::KvlistValue(KeyValueList {
            values: key_values(kv, "values", &format!("{path}.kvlistValue."))?,
        }))
    } else if let Some(b) = field(v, "bytesValue") {
        let s = b
            .as_str()
            .ok_or_else(|| bad(&format!("{path}.bytesValue"), "expected base64 text"))?;
        Some(V::BytesValue(
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| bad(&format!("{path}.bytesValue"), format!("not base64: {e}")))?,
        ))
    } else if o.is_empty() {
        None
    } else {
        return Err(bad(path, "an AnyValue holds one of stringValue, boolValue, intValue, doubleValue, arrayValue, kvlistValue, bytesValue"));
    };
    Ok(AnyValue { value })
}

fn key_values(v: &Value, key: &str, path: &str) -> Result<Vec<KeyValue>, IngestError> {
    list(v, key, path)?
        .iter()
        .enumerate()
        .map(|(i, kv)| {
            let p = format!("{path}{key}.{i}");
            object(kv, &p)?;
            let k = text(kv, "key", &format!("{p}."))?;
            let value = match field(kv, "value") {
                Some(x) => Some(any_value(x, &format!("{p}.value"))?),
                None => None,
            };
            Ok(KeyValue {
                key: k,
                value,
                ..Default::default()
            })
        })
        .collect()
}

fn resource(v: &Value, path: &str) -> Result<Option<Resource>, IngestError> {
    match field(v, "resource") {
        None => Ok(None),
        Some(r) => Ok(Some(Resource {
            attributes: key_values(
                object(r, &format!("{path}resource"))?,
                "attributes",
                &format!("{path}resource."),
            )?,
            ..Default::default()
        })),
    }
}

/// OTLP/JSON logs into `ExportLogsServiceRequest`; an error names the path at fault
/// (`resourceLogs.0.scopeLogs.1.logRecords.3.timeUnixNano`).
pub fn logs_from_json(v: &Value) -> Result<ExportLogsServiceRequest, IngestError> {
    object(v, "(body)")?;
    let mut out = ExportLogsServiceRequest::default();
    for (i, rl) in list(v, "resourceLogs", "")?.iter().enumerate() {
        let p = format!("resourceLogs.{i}.");
        object(rl, &p)?;
        let mut r = ResourceLogs {
            resource: resource(rl, &p)?,
            ..Default::default()
        };
        for (j, sl) in list(rl, "scopeLogs", &p)?.iter().enumerate() {
            let p = format!("{p}scopeLogs.{j}.");
            object(sl, &p)?;
            let mut s = ScopeLogs::default();
            for (k, lr) in list(sl, "logRecords", &p)?.iter().enumerate() {
                let p = format!("{p}logRecords.{k}.");
                object(lr, &p)?;
                s.log_records.push(LogRecord {
                    time_unix_nano: uint(lr, "timeUnixNano", &p)?,
                    observed_time_unix_nano: uint(lr, "observedTimeUnixNano", &p)?,
                    severity_number: small(lr, "severityNumber"),
                    severity_text: text(lr, "severityText", &p)?,
                    body: match field(lr, "body") {
                        Some(b) => Some(any_value(b, &format!("{p}body"))?),
                        None => None,
                    },
                    attributes: key_values(lr, "attributes", &p)?,
                    trace_id: hex_id(lr, "traceId", &p)?,
                    span_id: hex_id(lr, "spanId", &p)?,
                    event_name: text(lr, "eventName", &p)?,
                    ..Default::default()
                });
            }
            r.scope_logs.push(s);
        }
        out.resource_logs.push(r);
    }
    Ok(out)
}

/// OTLP/JSON traces into `ExportTraceServiceRequest`.
pub fn traces_from_json(v: &Value) -> Result<ExportTraceServiceRequest, IngestError> {
    object(v, "(body)")?;
    let mut out = ExportTraceServiceRequest::default();
    for (i, rs) in list(v, "resourceSpans", "")?.iter().enumerate() {
        let p = format!("resourceSpans.{i}.");
        object(rs, &p)?;
        let mut r = ResourceSpans {
            resource: resource(rs, &p)?,
            ..Default::default()
        };
        for (j, ss) in list(rs, "scopeSpans", &p)?.iter().enumerate() {
            let p = format!("{p}scopeSpans.{j}.");
            object(ss, &p)?;
            let mut s = ScopeSpans::default();
            for (k, sp) in list(ss, "spans", &p)?.iter().enumerate() {
                let p = format!("{p}spans.{k}.");
                object(sp, &p)?;
                let status = match field(sp, "status") {
                    Some(st) => Some(Status {
                        message: text(
                            object(st, &format!("{p}status"))?,
                            "message",
                            &format!("{p}status."),
                        )?,
                        code: small(st, "code"),
                    }),
                    None => None,
                };
                let mut events = Vec::new();
                for (e, ev) in list(sp, "events", &p)?.iter().enumerate() {
                    let p = format!("{p}events.{e}.");
                    object(ev, &p)?;
                    events.push(span::Event {
                        time_unix_nano: uint(ev, "timeUnixNano", &p)?,
                        name: text(ev, "name", &p)?,
                        attributes: key_values(ev, "attributes", &p)?,
                        ..Default::default()
                    });
                }
                s.spans.push(Span {
                    trace_id: hex_id(sp, "traceId", &p)?,
                    span_id: hex_id(sp, "spanId", &p)?,
                    parent_span_id: hex_id(sp, "parentSpanId", &p)?,
                    name: text(sp, "name", &p)?,
                    kind: small(sp, "kind"),
                    start_time_unix_nano: uint(sp, "startTimeUnixNano", &p)?,
                    end_time_unix_nano: uint(sp, "endTimeUnixNano", &p)?,
                    attributes: key_values(sp, "attributes", &p)?,
                    events,
                    status,
                    ..Default::default()
                });
            }
            r.scope_spans.push(s);
        }
        out.resource_spans.push(r);
    }
    Ok(out)
}

// ---- mapping --------------------------------------------------------------------------

/// An `AnyValue` as JSON (bytes as hex).
fn value(v: &AnyValue) -> Value {
    use any_value::Value as V;
    match &v.value {
        None => Value::Null,
        Some(V::StringValue(s)) => Value::from(s.as_str()),
        Some(V::BoolValue(b)) => Value::from(*b),
        Some(V::IntValue(i)) => Value::from(*i),
        Some(V::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Some(V::ArrayValue(a)) => Value::Array(a.values.iter().map(value).collect()),
        Some(V::KvlistValue(kv)) => Value::Object(
            kv.values
                .iter()
                .map(|k| {
                    (
                        k.key.clone(),
                        k.value.as_ref().map(value).unwrap_or(Value::Null),
                    )
                })
                .collect(),
        ),
        Some(V::BytesValue(b)) => Value::from(hex::encode(b)),
        // An index into a profile's string table: meaningless outside profiles.
        Some(V::StringValueStrindex(_)) => Value::Null,
    }
}

fn attrs(kvs: &[KeyValue]) -> Attrs {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(value).unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// One record's attributes with its resource's behind them.
struct Rec<'a> {
    attrs: Attrs,
    res: &'a Attrs,
}

impl Rec<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.attrs
            .get(key)
            .or_else(|| self.res.get(key))
            .filter(|v| !v.is_null())
    }

    /// Text (numbers and booleans rendered), empty strings absent.
    fn str(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// An integer, also from a string (Codex sends integers as strings).
    fn int(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .ok()
                .or_else(|| s.trim().parse::<f64>().ok().map(|f| f as i64)),
            _ => None,
        }
    }

    fn num(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }
}

fn nanos(n: u64) -> Option<OffsetDateTime> {
    (n > 0)
        .then(|| OffsetDateTime::from_unix_timestamp_nanos(n as i128).ok())
        .flatten()
}

/// Which agent a record or span comes from, by `service.name` or its event's prefix.
fn agent_of(service: &str, event: &str) -> Option<(Source, &'static str)> {
    if service == "claude-code" || event.starts_with("claude_code.") {
        Some((Source::ClaudeCode, "Claude Code"))
    } else if service.starts_with("codex") || event.starts_with("codex.") {
        Some((Source::Codex, "Codex"))
    } else {
        None
    }
}

/// Prompt text as sent; the placeholders agents put in its place when prompt logging is off
/// are not prompts.
fn prompt_text(s: Option<String>) -> Option<String> {
    s.filter(|p| {
        !matches!(
            p.as_str(),
            "[REDACTED]" | "<REDACTED>" | "<redacted>" | "redacted"
        )
    })
}

/// Maps the log records of one export request. A record's index is its position across
/// the whole request (resource by resource, scope by scope).
pub fn map_logs(req: &ExportLogsServiceRequest, received: OffsetDateTime) -> Mapped {
    let mut out = Mapped::default();
    let mut index = 0;
    for rl in &req.resource_logs {
        let res = rl
            .resource
            .as_ref()
            .map(|r| attrs(&r.attributes))
            .unwrap_or_default();
        for sl in &rl.scope_logs {
            for lr in &sl.log_records {
                map_log(lr, &res, index, received, &mut out);
                index += 1;
            }
        }
    }
    out
}

fn map_log(lr: &LogRecord, res: &Attrs, index: usize, received: OffsetDateTime, out: &mut Mapped) {
    let rec = Rec {
        attrs: attrs(&lr.attributes),
        res,
    };
    let body = lr.body.as_ref().map(value).unwrap_or(Value::Null);
    let names = [
        lr.event_name.clone(),
        body.as_str().unwrap_or("").to_string(),
        rec.attrs
            .get("event.name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    ];
    let full = names
        .iter()
        .find(|n| n.starts_with("claude_code.") || n.starts_with("codex."))
        .or_else(|| names.iter().find(|n| !n.is_empty()))
        .cloned()
        .unwrap_or_default();
    let service = rec
        .res
        .get("service.name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some((source, agent)) = agent_of(service, &full) else {
        out.reject(
            index,
            "resource.service.name",
            format!(
                "not a Claude Code or Codex log record (service.name `{service}`, event `{full}`); \
                 other agents' tool calls are read from execute_tool spans at /v1/traces"
            ),
        );
        return;
    };
    let kind = full
        .trim_start_matches("claude_code.")
        .trim_start_matches("codex.")
        .to_string();
    let session_key = if source == Source::Codex {
        "conversation.id"
    } else {
        "session.id"
    };
    let Some(session_id) = rec.str(session_key).or_else(|| rec.str("session.id")) else {
        out.reject(
            index,
            &format!("attributes.{session_key}"),
            format!("a {agent} event names its session"),
        );
        return;
    };
    let session = Session {
        source: Some(source),
        agent: agent.to_string(),
        id: session_id,
        user: rec.str("user.email"),
        cwd: rec
            .str("cwd")
            .or_else(|| rec.str("process.working_directory")),
        repository: repository(|k| rec.str(k)),
    };
    let time = nanos(lr.time_unix_nano)
        .or_else(|| nanos(lr.observed_time_unix_nano))
        .or_else(|| {
            rec.str("event.timestamp")
                .and_then(|t| crate::map::parse_time_str(&t))
        })
        .unwrap_or(received);
    let record_id = || {
        session.id(&hash_id(&json!({
            "name": full, "attrs": rec.attrs, "body": body,
            "time": lr.time_unix_nano, "observed": lr.observed_time_unix_nano,
        })))
    };
    let call_id = rec
        .str("tool_use_id")
        .or_else(|| rec.str("call_id"))
        .or_else(|| rec.str("gen_ai.tool.call.id"));
    let e = match kind.as_str() {
        "tool_result" => {
            let input = merge(
                json_text(rec.get("tool_parameters")),
                json_text(rec.get("tool_input")),
            );
            let input = merge(input, json_text(rec.get("arguments")));
            let call = ToolCall {
                name: rec.str("tool_name").unwrap_or_else(|| "unknown".into()),
                call_id: call_id.clone(),
                phase: Phase::Completed,
                input,
                success: rec.bool("success"),
                duration_ms: rec.int("duration_ms"),
                output: rec
                    .str("output")
                    .or_else(|| rec.str("tool_output"))
                    .or_else(|| rec.str("tool_result")),
            };
            let id = match &call_id {
                Some(c) => session.id(&format!("{c}:completed")),
                None => record_id(),
            };
            let mut e = tool_event(&session, id, time, &call, &kind);
            put(
                &mut e,
                "decision.source",
                rec.str("decision_source").or_else(|| rec.str("source")),
            );
            put(&mut e, "tool.error", rec.str("error").map(|s| truncate(&s)));
            e
        }
        "tool_decision" => {
            let id = match &call_id {
                Some(c) => session.id(&format!("{c}:decision")),
                None => record_id(),
            };
            let mut e = session.event(id, time, "agent.tool.decision", &kind);
            let word = rec.str("decision").unwrap_or_default();
            put(&mut e, "tool.name", rec.str("tool_name"));
            put(&mut e, "tool.call_id", call_id);
            put(
                &mut e,
                "tool.decision",
                decision(&word).map(Value::from).or(Some(Value::from(word))),
            );
            put(
                &mut e,
                "decision.source",
                rec.str("source").or_else(|| rec.str("decision_source")),
            );
            e
        }
        "user_prompt" => {
            let mut e = session.event(record_id(), time, "agent.prompt", &kind);
            let text = prompt_text(rec.str("prompt"));
            let length = rec
                .int("prompt_length")
                .or_else(|| text.as_ref().map(|t| t.chars().count() as i64));
            put(&mut e, "prompt.length", length.map(Value::from));
            put(&mut e, "prompt.text", text.map(|t| truncate(&t)));
            e
        }
        "api_request" | "api_error" => {
            let mut e = session.event(record_id(), time, "agent.model.request", &kind);
            put(&mut e, "model", rec.str("model"));
            put(
                &mut e,
                "tokens.input",
                rec.int("input_tokens").map(Value::from),
            );
            put(
                &mut e,
                "tokens.output",
                rec.int("output_tokens").map(Value::from),
            );
            put(
                &mut e,
                "tokens.cache_read",
                rec.int("cache_read_tokens").map(Value::from),
            );
            put(
                &mut e,
                "tokens.cache_creation",
                rec.int("cache_creation_tokens").map(Value::from),
            );
            put(&mut e, "cost.usd", rec.num("cost_usd").map(Value::from));
            put(
                &mut e,
                "request.duration_ms",
                rec.int("duration_ms").map(Value::from),
            );
            put(
                &mut e,
                "request.status_code",
                rec.int("status_code")
                    .or_else(|| rec.int("http.response.status_code"))
                    .map(Value::from),
            );
            let error = rec.str("error").or_else(|| rec.str("error.message"));
            put(
                &mut e,
                "request.success",
                Value::from(kind == "api_request" && error.is_none()),
            );
            put(&mut e, "request.error", error.map(|s| truncate(&s)));
            e
        }
        "sse_event" => {
            if rec.str("event.kind").as_deref() != Some("response.completed") {
                return; // per-chunk stream noise
            }
            let mut e = session.event(record_id(), time, "agent.model.request", &kind);
            put(&mut e, "model", rec.str("model"));
            put(
                &mut e,
                "tokens.input",
                rec.int("input_token_count").map(Value::from),
            );
            put(
                &mut e,
                "tokens.output",
                rec.int("output_token_count").map(Value::from),
            );
            put(
                &mut e,
                "tokens.cache_read",
                rec.int("cached_token_count").map(Value::from),
            );
            put(
                &mut e,
                "tokens.reasoning",
                rec.int("reasoning_token_count").map(Value::from),
            );
            put(&mut e, "request.success", Value::from(true));
            e
        }
        "websocket_request" | "websocket_event" => return,
        "conversation_starts" | "session_start" | "session_started" => {
            let mut e = session.event(record_id(), time, "agent.session.started", &kind);
            put(&mut e, "agent.model", rec.str("model"));
            put(&mut e, "agent.sandbox", rec.str("sandbox_policy"));
            put(&mut e, "agent.approval_policy", rec.str("approval_policy"));
            put(&mut e, "agent.permission_mode", rec.str("permission_mode"));
            put(&mut e, "agent.mcp_servers", rec.str("mcp_servers"));
            put(
                &mut e,
                "agent.reasoning_effort",
                rec.str("reasoning_effort"),
            );
            e
        }
        "permission_mode_changed" => {
            let mut e = session.event(record_id(), time, "agent.permission.changed", &kind);
            put(&mut e, "agent.permission_mode", rec.str("to_mode"));
            put(&mut e, "previous", rec.str("from_mode"));
            put(&mut e, "trigger", rec.str("trigger"));
            e
        }
        other => {
            let mut e = session.event(record_id(), time, &unknown(source, other), &kind);
            let detail: Map<String, Value> = rec
                .attrs
                .iter()
                .filter(|(k, v)| {
                    !v.is_null() && !k.starts_with("user.") && k.as_str() != "session.id"
                })
                .take(crate::map::PAYLOAD_BUDGET)
                .map(|(k, v)| (format!("detail.{k}"), v.clone()))
                .collect();
            e.attributes.extend(detail);
            e
        }
    };
    let mut e = e;
    put(&mut e, "prompt.id", rec.str("prompt.id"));
    out.push(index, e);
}

/// Maps the `execute_tool` spans of one export request (GenAI conventions); other spans
/// are skipped. A span's index is its position across the request.
pub fn map_traces(req: &ExportTraceServiceRequest, received: OffsetDateTime) -> Mapped {
    let mut out = Mapped::default();
    let mut index = 0;
    for rs in &req.resource_spans {
        let res = rs
            .resource
            .as_ref()
            .map(|r| attrs(&r.attributes))
            .unwrap_or_default();
        for ss in &rs.scope_spans {
            for sp in &ss.spans {
                map_span(sp, &res, index, received, &mut out);
                index += 1;
            }
        }
    }
    out
}

fn map_span(sp: &Span, res: &Attrs, index: usize, received: OffsetDateTime, out: &mut Mapped) {
    let rec = Rec {
        attrs: attrs(&sp.attributes),
        res,
    };
    if rec.str("gen_ai.operation.name").as_deref() != Some("execute_tool") {
        return;
    }
    let Some(name) = rec.str("gen_ai.tool.name") else {
        out.reject(
            index,
            "attributes.gen_ai.tool.name",
            "an execute_tool span names its tool",
        );
        return;
    };
    let service = rec.str("service.name").unwrap_or_default();
    let (source, agent) = match agent_of(&service, "") {
        Some((s, a)) => (s, a.to_string()),
        None => (
            Source::Otel,
            rec.str("gen_ai.agent.name").unwrap_or_else(|| {
                if service.is_empty() {
                    "agent".into()
                } else {
                    service.clone()
                }
            }),
        ),
    };
    let session_id = rec
        .str("gen_ai.conversation.id")
        .or_else(|| rec.str("session.id"))
        .or_else(|| rec.str("conversation.id"))
        .or_else(|| (!sp.trace_id.is_empty()).then(|| hex::encode(&sp.trace_id)));
    let Some(session_id) = session_id else {
        out.reject(
            index,
            "attributes.gen_ai.conversation.id",
            "an execute_tool span names its conversation (or carries a trace id)",
        );
        return;
    };
    let session = Session {
        source: Some(source),
        agent,
        id: session_id,
        user: rec.str("user.email").or_else(|| rec.str("enduser.id")),
        cwd: rec.str("process.working_directory"),
        repository: repository(|k| rec.str(k)),
    };
    let time = nanos(sp.start_time_unix_nano)
        .or_else(|| nanos(sp.end_time_unix_nano))
        .unwrap_or(received);
    let duration = (sp.end_time_unix_nano > sp.start_time_unix_nano && sp.start_time_unix_nano > 0)
        .then(|| ((sp.end_time_unix_nano - sp.start_time_unix_nano) / 1_000_000) as i64);
    let success = sp.status.as_ref().and_then(|s| match s.code {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    });
    let call_id = rec.str("gen_ai.tool.call.id");
    let call = ToolCall {
        name,
        call_id: call_id.clone(),
        phase: Phase::Completed,
        input: json_text(rec.get("gen_ai.tool.call.arguments")),
        success,
        duration_ms: duration,
        output: rec.get("gen_ai.tool.call.result").map(|v| match v {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        }),
    };
    let id = match &call_id {
        Some(c) => session.id(&format!("{c}:completed")),
        None => session.id(&hash_id(&json!({
            "trace": hex::encode(&sp.trace_id), "span": hex::encode(&sp.span_id),
            "attrs": rec.attrs, "start": sp.start_time_unix_nano,
        }))),
    };
    let mut e = tool_event(&session, id, time, &call, "execute_tool");
    put(
        &mut e,
        "tool.error",
        sp.status
            .as_ref()
            .filter(|s| s.code == 2)
            .map(|s| truncate(&s.message)),
    );
    put(
        &mut e,
        "trace.id",
        (!sp.trace_id.is_empty()).then(|| hex::encode(&sp.trace_id)),
    );
    out.push(index, e);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::InMemory;
    use time::macros::datetime;

    const RECEIVED: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

    fn fixture(name: &str) -> Vec<u8> {
        let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("src/fixtures")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn mapped(signal: Signal, ct: &str, body: &[u8]) -> Result<Mapped, IngestError> {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", ct.parse().unwrap());
        let adapter = OtlpAdapter::new(
            signal,
            AgentsConfig {
                otlp_token: String::new(),
                hook_token: String::new(),
            },
        );
        adapter.map(
            &Delivery {
                headers: &headers,
                body,
                received: RECEIVED,
            },
            &InMemory::default(),
        )
    }

    /// Each OTLP/JSON fixture, re-encoded as protobuf (what `http/protobuf` exporters send),
    /// maps to the very same events and ids.
    #[test]
    fn protobuf_and_json_map_to_the_same_events() {
        for (signal, file) in [
            (Signal::Logs, "otlp-logs/claude_code_env_exfil.json"),
            (Signal::Logs, "otlp-logs/codex_env_exfil.json"),
            (Signal::Traces, "otlp-traces/genai_execute_tool.json"),
        ] {
            let json = fixture(file);
            let from_json = mapped(signal, "application/json", &json).unwrap();
            let proto = json_to_protobuf(signal, &json).unwrap();
            let from_proto = mapped(signal, "application/x-protobuf", &proto).unwrap();
            assert!(!from_json.events.is_empty(), "{file}");
            assert_eq!(from_json.events, from_proto.events, "{file}");
            assert_eq!(from_json.rejected, from_proto.rejected, "{file}");
        }
    }

    #[test]
    fn bad_bodies_are_refused_naming_what_is_wrong() {
        let e = mapped(Signal::Logs, "application/x-protobuf", b"\xff\xff\xff\xff").unwrap_err();
        assert_eq!(e.status_hint(), http::StatusCode::BAD_REQUEST);
        assert!(
            e.to_string()
                .contains("not an OTLP ExportLogsServiceRequest in protobuf"),
            "{e}"
        );
        let e = mapped(Signal::Logs, "text/plain", b"{}").unwrap_err();
        assert_eq!(e.status_hint(), http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(e.to_string().contains("text/plain"), "{e}");
        let e = mapped(Signal::Logs, "application/json", b"{\"resourceLogs\": [}").unwrap_err();
        assert!(matches!(e, IngestError::NotJson { line: 1, .. }), "{e:?}");
        let e = mapped(
            Signal::Logs,
            "application/json",
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"soon"}]}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.field(),
            Some("resourceLogs.0.scopeLogs.0.logRecords.0.timeUnixNano"),
            "{e}"
        );
    }

    #[test]
    fn answers_are_export_responses_in_the_request_encoding() {
        assert_eq!(response(Signal::Logs, Encoding::Json, 0, ""), b"{}");
        let v: Value =
            serde_json::from_slice(&response(Signal::Logs, Encoding::Json, 2, "why")).unwrap();
        assert_eq!(
            v,
            json!({"partialSuccess": {"rejectedLogRecords": 2, "errorMessage": "why"}})
        );
        let r = ExportTraceServiceResponse::decode(
            &response(Signal::Traces, Encoding::Protobuf, 1, "x")[..],
        )
        .unwrap();
        assert_eq!(r.partial_success.unwrap().rejected_spans, 1);
        assert!(response(Signal::Logs, Encoding::Protobuf, 0, "").is_empty());
    }
}
