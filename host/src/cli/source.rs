//! `plumbline ingest --source NAME FILE`: back-fills a source's own format from a file
//! through the same endpoint its live traffic uses (`/v1/ingest/<source>`; OTLP's
//! `/v1/logs` and `/v1/traces`), so a file and live traffic map identically and
//! overlapping deliveries are stored once.
//!
//! Accepted files (`-` reads standard input; decompress `.gz` files with `gunzip -c`):
//! - `github`: GitHub webhook deliveries as the REST API returns them
//!   (`GET /repos/{owner}/{repo}/hooks/{id}/deliveries/{delivery_id}`: `guid`, `event`,
//!   `delivered_at`, `request.payload`), one per line or as a JSON array; signed with
//!   `PLUMBLINE_GITHUB_SECRET` when it is set.
//! - `github-audit`: GitHub audit-log entries as `GET /orgs/{org}/audit-log` (or the
//!   enterprise's) returns them (a JSON array), or one per line as audit-log streaming
//!   writes them (HEC envelopes `{"event": {…}}` included); the token is
//!   `PLUMBLINE_GITHUB_AUDIT_TOKEN`.
//! - `gitlab`: hook payloads or audit events, one per line or a JSON array (an export of
//!   `GET /audit_events`); GitLab's hook-log entries (`request_headers`, `request_data`)
//!   are replayed with their headers.
//! - `n8n`: n8n's own event log (`n8nEventLog.log`, one message per line).
//! - `make`: `{"auditLogs": [...]}` pages of the audit-log API, or entries one per line.
//! - `vault`: a Vault file audit device's log (JSON lines).
//! - `cloudtrail`: a CloudTrail log file (`{"Records": [...]}`), or records one per line.
//! - `okta`: System Log events as `GET /api/v1/logs` returns them (a JSON array), or one
//!   per line.
//! - `openai`: `{"data": [...]}` pages of `GET /v1/organization/audit_logs`, or entries
//!   (and `assistant.config` objects) one per line.
//! - `claude-code`, `cursor`: hook inputs as the agent writes them (Claude Code's
//!   `PreToolUse`, `PostToolUse`, …; Cursor's `beforeShellExecution`, `afterFileEdit`, …),
//!   one per line or a JSON array, each posted on its own as the hook does; the token is
//!   `PLUMBLINE_AGENTS_HOOK_TOKEN`. Hook inputs carry no time: they are stored at receipt.
//! - `otlp-logs`, `otlp-traces`: OTLP/JSON export requests (`ExportLogsServiceRequest`,
//!   `ExportTraceServiceRequest`: Claude Code's and Codex's log events, GenAI
//!   `execute_tool` spans), one request in the file or one per line as the OpenTelemetry
//!   Collector's file exporter writes them, posted to `/v1/logs` / `/v1/traces`; the token
//!   is `PLUMBLINE_AGENTS_OTLP_TOKEN`. OTLP's answer names refused records, not duplicates.

use std::io::Read;

use anyhow::{bail, Context};
use serde_json::Value;

use super::IngestArgs;
use plumbline_ingest::adapter::sign_sha256;

pub const SOURCES: &[&str] = &[
    "github",
    "github-audit",
    "gitlab",
    "n8n",
    "make",
    "vault",
    "cloudtrail",
    "okta",
    "openai",
    "claude-code",
    "cursor",
    "otlp-logs",
    "otlp-traces",
];

struct Totals {
    accepted: u64,
    duplicates: u64,
    rejected: u64,
}

/// One request to send: body, content type, extra headers, and how many source items it
/// carries (for numbering rejections across batches).
struct Request {
    body: Vec<u8>,
    content_type: &'static str,
    headers: Vec<(String, String)>,
    items: usize,
}

/// How a source's endpoint answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Plumbline's ingest report: `accepted`, `duplicates`, `rejected`.
    Report,
    /// A coding agent's hook answer in the agent's own format: the input was taken.
    Hook,
    /// OTLP's export response: `{}`, or `partialSuccess` counting the refused records.
    Otlp,
}

/// The records an OTLP export response says were refused (`partialSuccess`'s
/// `rejectedLogRecords` / `rejectedSpans`, a number or OTLP/JSON's int64 string), and why.
pub(crate) fn otlp_refused(answer: &Value) -> (u64, &str) {
    let partial = &answer["partialSuccess"];
    let refused = ["rejectedLogRecords", "rejectedSpans"]
        .iter()
        .find_map(|k| match &partial[k] {
            Value::String(s) => s.parse::<u64>().ok(),
            n => n.as_u64(),
        })
        .unwrap_or(0);
    (refused, partial["errorMessage"].as_str().unwrap_or(""))
}

/// Where a source's files are posted, and how the endpoint answers.
fn endpoint(source: &str) -> (String, Answer) {
    match source {
        "otlp-logs" => ("/v1/logs".into(), Answer::Otlp),
        "otlp-traces" => ("/v1/traces".into(), Answer::Otlp),
        "claude-code" | "cursor" => (format!("/v1/ingest/{source}"), Answer::Hook),
        _ => (format!("/v1/ingest/{source}"), Answer::Report),
    }
}

pub async fn ingest(args: &IngestArgs, source: &str) -> anyhow::Result<()> {
    if !SOURCES.contains(&source) {
        bail!("unknown source `{source}`: one of {}", SOURCES.join(", "));
    }
    let mut raw = Vec::new();
    if args.file.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut raw)
            .context("reading standard input")?;
    } else {
        raw = std::fs::read(&args.file)
            .with_context(|| format!("cannot read {}", args.file.display()))?;
    }
    let requests = plan(source, &raw, args.batch.max(1))?;
    let (path, answer) = endpoint(source);
    let url = format!("{}{path}", args.remote.url.trim_end_matches('/'));
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .expect("http client");
    let mut totals = Totals {
        accepted: 0,
        duplicates: 0,
        rejected: 0,
    };
    let mut base = 0usize;
    for req in requests {
        let mut rb = http
            .post(&url)
            .header("content-type", req.content_type)
            .body(req.body);
        match &args.remote.token {
            Some(t) => rb = rb.bearer_auth(t),
            None => {
                if let Some((h, v)) = source_secret_header(source) {
                    rb = rb.header(h, v);
                }
            }
        }
        for (h, v) in &req.headers {
            rb = rb.header(h.as_str(), v.as_str());
        }
        let resp = super::client::send_patiently(rb, &url).await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "server answered {status} for items {base}..{}: {}",
                base + req.items,
                v["error"].as_str().unwrap_or("(no error message)")
            );
        }
        match answer {
            Answer::Report => {}
            Answer::Hook => totals.accepted += req.items as u64,
            Answer::Otlp => {
                let (refused, why) = otlp_refused(&v);
                totals.accepted += (req.items as u64).saturating_sub(refused);
                totals.rejected += refused;
                if refused > 0 {
                    eprintln!("request of items {base}..{}: {why}", base + req.items);
                }
            }
        }
        totals.accepted += v["accepted"].as_u64().unwrap_or(0);
        totals.duplicates += v["duplicates"].as_u64().unwrap_or(0);
        for r in v["rejected"].as_array().into_iter().flatten() {
            totals.rejected += 1;
            eprintln!(
                "item {}: `{}` {}",
                r["index"].as_u64().unwrap_or(0) as usize + base,
                r["field"].as_str().unwrap_or(""),
                r["reason"].as_str().unwrap_or("")
            );
        }
        base += req.items;
    }
    println!(
        "accepted {}, duplicates {}, rejected {}",
        totals.accepted, totals.duplicates, totals.rejected
    );
    if totals.rejected > 0 {
        bail!("{} items were rejected", totals.rejected);
    }
    Ok(())
}

/// The source's own secret from the same environment variable the server reads, sent the
/// way the source sends it (used only when no API token is given).
fn source_secret_header(source: &str) -> Option<(&'static str, String)> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match source {
        "github-audit" => env("PLUMBLINE_GITHUB_AUDIT_TOKEN").map(|t| ("x-plumbline-token", t)),
        "gitlab" => env("PLUMBLINE_GITLAB_TOKEN").map(|t| ("x-gitlab-token", t)),
        "n8n" => env("PLUMBLINE_N8N_TOKEN").map(|t| ("x-plumbline-token", t)),
        "make" => env("PLUMBLINE_MAKE_TOKEN").map(|t| ("x-plumbline-token", t)),
        "openai" => env("PLUMBLINE_OPENAI_TOKEN").map(|t| ("x-plumbline-token", t)),
        "okta" => env("PLUMBLINE_OKTA_AUTHORIZATION").map(|t| ("authorization", t)),
        "claude-code" | "cursor" => {
            env("PLUMBLINE_AGENTS_HOOK_TOKEN").map(|t| ("x-plumbline-token", t))
        }
        "otlp-logs" | "otlp-traces" => {
            env("PLUMBLINE_AGENTS_OTLP_TOKEN").map(|t| ("x-plumbline-token", t))
        }
        _ => None,
    }
}

/// Items of a file: a JSON array, an object holding the array under one of `keys`, one
/// object, or JSON lines.
pub fn read_items(raw: &[u8], keys: &[&str]) -> anyhow::Result<Vec<Value>> {
    let text = std::str::from_utf8(raw).context("the file is not UTF-8")?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    if let Ok(v) = serde_json::from_str::<Value>(trimmed) {
        return Ok(match v {
            Value::Array(a) => a,
            Value::Object(ref m) => match keys.iter().find_map(|k| m.get(*k)) {
                Some(Value::Array(a)) => a.clone(),
                _ => vec![v],
            },
            other => bail!("expected JSON objects, found {other}"),
        });
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(line).with_context(|| format!("line {} is not JSON", i + 1))?;
        // A JSON-lines file of pages (`{"Records": [...]}` per line) is flattened too.
        match keys.iter().find_map(|k| v.get(*k)) {
            Some(Value::Array(a)) => out.extend(a.iter().cloned()),
            _ => out.push(v),
        }
    }
    Ok(out)
}

fn json_batches(items: Vec<Value>, batch: usize, wrap: Option<&str>) -> Vec<Request> {
    items
        .chunks(batch)
        .map(|chunk| {
            let arr = Value::Array(chunk.to_vec());
            let body = match wrap {
                Some(k) => serde_json::json!({ k: arr }),
                None => arr,
            };
            Request {
                body: serde_json::to_vec(&body).expect("JSON"),
                content_type: "application/json",
                headers: Vec::new(),
                items: chunk.len(),
            }
        })
        .collect()
}

fn plan(source: &str, raw: &[u8], batch: usize) -> anyhow::Result<Vec<Request>> {
    Ok(match source {
        "github" => read_items(raw, &[])?
            .into_iter()
            .map(github_delivery)
            .collect::<anyhow::Result<_>>()?,
        "gitlab" => {
            let items = read_items(raw, &[])?;
            let audit = |v: &Value| v.get("author_id").is_some() && v.get("entity_type").is_some();
            if !items.is_empty() && items.iter().all(audit) {
                json_batches(items, batch, None)
            } else {
                items.into_iter().map(gitlab_hook).collect()
            }
        }
        "n8n" => {
            // n8n's log also records delivery confirmations; they are not events.
            let items: Vec<Value> = read_items(raw, &[])?
                .into_iter()
                .filter(|v| {
                    v.get("__type").and_then(Value::as_str) != Some("$$EventMessageConfirm")
                })
                .collect();
            json_batches(items, batch, None)
        }
        "github-audit" => json_batches(read_items(raw, &[])?, batch, None),
        "make" => json_batches(read_items(raw, &["auditLogs"])?, batch, None),
        "cloudtrail" => json_batches(read_items(raw, &["Records"])?, batch, Some("Records")),
        "okta" => json_batches(read_items(raw, &[])?, batch, None),
        "openai" => json_batches(read_items(raw, &["data"])?, batch, None),
        "vault" => {
            let text = std::str::from_utf8(raw).context("the file is not UTF-8")?;
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            lines
                .chunks(batch)
                .map(|chunk| Request {
                    body: (chunk.join("\n") + "\n").into_bytes(),
                    content_type: "application/x-ndjson",
                    headers: Vec::new(),
                    items: chunk.len(),
                })
                .collect()
        }
        "claude-code" | "cursor" => read_items(raw, &[])?
            .into_iter()
            .map(|hook| one_json(&hook, 1))
            .collect(),
        "otlp-logs" | "otlp-traces" => {
            let (outer, inner, records) = if source == "otlp-logs" {
                ("resourceLogs", "scopeLogs", "logRecords")
            } else {
                ("resourceSpans", "scopeSpans", "spans")
            };
            read_items(raw, &[])?
                .iter()
                .map(|export| one_json(export, otlp_records(export, [outer, inner, records])))
                .collect()
        }
        other => bail!("unknown source `{other}`"),
    })
}

/// One JSON value as a request of its own, carrying `items` source items.
fn one_json(v: &Value, items: usize) -> Request {
    Request {
        body: serde_json::to_vec(v).expect("JSON"),
        content_type: "application/json",
        headers: Vec::new(),
        items,
    }
}

/// The records of an OTLP/JSON export request: `keys` names the resource, scope and
/// record arrays (`resourceLogs`, `scopeLogs`, `logRecords`), in OTLP/JSON's camelCase.
fn otlp_records(export: &Value, keys: [&str; 3]) -> usize {
    let list = |v: &Value, k: &str| v[k].as_array().cloned().unwrap_or_default();
    list(export, keys[0])
        .iter()
        .flat_map(|r| list(r, keys[1]))
        .map(|s| list(&s, keys[2]).len())
        .sum()
}

/// A GitHub delivery (REST API shape, or `{event, delivery, payload}`) → one signed request.
fn github_delivery(d: Value) -> anyhow::Result<Request> {
    let str_at = |ptr: &str| d.pointer(ptr).and_then(Value::as_str).map(str::to_string);
    let event = str_at("/event")
        .or_else(|| str_at("/request/headers/X-GitHub-Event"))
        .context("a GitHub delivery needs `event`")?;
    let guid = str_at("/guid")
        .or_else(|| str_at("/delivery"))
        .or_else(|| str_at("/request/headers/X-GitHub-Delivery"))
        .context("a GitHub delivery needs `guid`")?;
    let payload = d
        .pointer("/request/payload")
        .or_else(|| d.get("payload"))
        .context("a GitHub delivery needs `request.payload`")?;
    let body = serde_json::to_vec(payload)?;
    let mut headers = vec![
        ("x-github-event".to_string(), event),
        ("x-github-delivery".to_string(), guid),
    ];
    if let Some(at) = str_at("/delivered_at") {
        headers.push((plumbline_ingest::github::DELIVERED_AT.to_string(), at));
    }
    if let Ok(secret) = std::env::var("PLUMBLINE_GITHUB_SECRET") {
        if !secret.is_empty() {
            headers.push((
                "x-hub-signature-256".to_string(),
                sign_sha256(&secret, &body),
            ));
        }
    }
    Ok(Request {
        body,
        content_type: "application/json",
        headers,
        items: 1,
    })
}

/// A GitLab hook payload, or a hook-log entry with its recorded headers.
fn gitlab_hook(v: Value) -> Request {
    let mut headers = Vec::new();
    let body = match (v.get("request_headers"), v.get("request_data")) {
        (Some(Value::Object(h)), Some(data)) => {
            for name in ["X-Gitlab-Event", "Idempotency-Key", "X-Gitlab-Event-UUID"] {
                if let Some(val) = h.get(name).and_then(Value::as_str) {
                    headers.push((name.to_ascii_lowercase(), val.to_string()));
                }
            }
            data.clone()
        }
        _ => v,
    };
    Request {
        body: serde_json::to_vec(&body).expect("JSON"),
        content_type: "application/json",
        headers,
        items: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_in_every_container_shape() {
        assert_eq!(
            read_items(br#"{"Records":[{"a":1},{"a":2}]}"#, &["Records"])
                .unwrap()
                .len(),
            2
        );
        assert_eq!(read_items(b"[{\"a\":1}]", &[]).unwrap().len(), 1);
        assert_eq!(
            read_items(b"{\"a\":1}\n\n{\"a\":2}\n", &[]).unwrap().len(),
            2
        );
        assert_eq!(read_items(b"{\"a\":1}", &[]).unwrap().len(), 1);
        assert!(read_items(b"{\"a\":1}\nnope\n", &[]).is_err());
    }

    #[test]
    fn agent_files_are_posted_one_hook_or_one_export_at_a_time() {
        let hooks =
            b"{\"hook_event_name\":\"PreToolUse\"}\n{\"hook_event_name\":\"PostToolUse\"}\n";
        let reqs = plan("claude-code", hooks, 1000).unwrap();
        assert_eq!(reqs.len(), 2);
        assert_eq!(
            endpoint("cursor"),
            ("/v1/ingest/cursor".into(), Answer::Hook)
        );
        let export = serde_json::json!({"resourceSpans": [
            {"scopeSpans": [{"spans": [{}, {}]}, {"spans": [{}]}]},
            {"scopeSpans": [{"spans": [{}]}]}
        ]});
        let lines = format!("{export}\n{export}\n");
        let reqs = plan("otlp-traces", lines.as_bytes(), 1).unwrap();
        assert_eq!(reqs.iter().map(|r| r.items).collect::<Vec<_>>(), [4, 4]);
        assert_eq!(endpoint("otlp-traces"), ("/v1/traces".into(), Answer::Otlp));
        assert_eq!(endpoint("otlp-logs").0, "/v1/logs");
    }

    #[test]
    fn batches_keep_the_container() {
        let items: Vec<Value> = (0..5).map(|i| serde_json::json!({ "i": i })).collect();
        let reqs = json_batches(items, 2, Some("Records"));
        assert_eq!(reqs.len(), 3);
        let first: Value = serde_json::from_slice(&reqs[0].body).unwrap();
        assert_eq!(first["Records"].as_array().unwrap().len(), 2);
        assert_eq!(reqs[2].items, 1);
    }
}
