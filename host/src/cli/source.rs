//! `plumbline ingest --source NAME FILE`: back-fills a source's own format from a file
//! through the same endpoint its live traffic uses (`/v1/ingest/<source>`), so a file and
//! a webhook map identically and overlapping deliveries are stored once.
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
    let url = format!(
        "{}/v1/ingest/{source}",
        args.remote.url.trim_end_matches('/')
    );
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
        other => bail!("unknown source `{other}`"),
    })
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
    fn batches_keep_the_container() {
        let items: Vec<Value> = (0..5).map(|i| serde_json::json!({ "i": i })).collect();
        let reqs = json_batches(items, 2, Some("Records"));
        assert_eq!(reqs.len(), 3);
        let first: Value = serde_json::from_slice(&reqs[0].body).unwrap();
        assert_eq!(first["Records"].as_array().unwrap().len(), 2);
        assert_eq!(reqs[2].items, 1);
    }
}
