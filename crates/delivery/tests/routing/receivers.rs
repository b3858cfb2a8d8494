//! Local receivers speaking each destination's API: Slack and Teams incoming webhooks, a
//! generic webhook that checks the HMAC signature, Jira REST (create + search), Linear
//! GraphQL (issueCreate + issues filter), PagerDuty Events v2, n8n's public API, and a
//! minimal SMTP server for the digest.
#![allow(dead_code)] // shared with host/tests/service.rs, which uses only some of it

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub const WEBHOOK_SECRET: &str = "whsec-test-secret";
pub const JIRA_BASIC: &str = "Basic Ym90QGV4YW1wbGUuY29tOmppcmEtdG9rZW4="; // bot@example.com:jira-token
pub const LINEAR_KEY: &str = "lin_api_test";
pub const PD_KEY: &str = "R0UT1NGKEY0000000000000000000000";
pub const N8N_KEY: &str = "n8n-key";
pub const GITHUB_TOKEN: &str = "ghp_admin_test";
pub const VAULT_TOKEN: &str = "hvs.admin-test";

#[derive(Debug, Clone)]
pub struct Req {
    pub kind: &'static str,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Default)]
pub struct Rx {
    /// Requests each receiver accepted.
    pub accepted: Mutex<Vec<Req>>,
    /// Every request that arrived, accepted or not.
    pub attempts: AtomicUsize,
    /// While set, every endpoint answers 503 (the service is down).
    pub down: AtomicBool,
    jira_issues: Mutex<Vec<Value>>,
    linear_issues: Mutex<Vec<Value>>,
}

impl Rx {
    pub fn of(&self, kind: &str) -> Vec<Req> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.kind == kind)
            .cloned()
            .collect()
    }

    fn gate(&self) -> Option<Response> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        self.down
            .load(Ordering::SeqCst)
            .then(|| (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response())
    }

    fn keep(&self, kind: &'static str, headers: &HeaderMap, body: Value) {
        self.accepted.lock().unwrap().push(Req {
            kind,
            headers: headers.clone(),
            body,
        });
    }
}

type S = State<Arc<Rx>>;

fn json_of(b: &Bytes) -> Option<Value> {
    serde_json::from_slice(b).ok()
}

async fn slack(State(rx): S, h: HeaderMap, b: Bytes) -> Response {
    if let Some(r) = rx.gate() {
        return r;
    }
    match json_of(&b) {
        Some(v) if v["text"].is_string() && v["blocks"].is_array() => {
            rx.keep("slack", &h, v);
            (StatusCode::OK, "ok").into_response()
        }
        _ => (StatusCode::BAD_REQUEST, "invalid_payload").into_response(),
    }
}

async fn teams(State(rx): S, h: HeaderMap, b: Bytes) -> Response {
    if let Some(r) = rx.gate() {
        return r;
    }
    match json_of(&b) {
        Some(v)
            if v["type"] == "message"
                && v["attachments"][0]["contentType"]
                    == "application/vnd.microsoft.card.adaptive"
                && v["attachments"][0]["content"]["type"] == "AdaptiveCard" =>
        {
            rx.keep("teams", &h, v);
            StatusCode::ACCEPTED.into_response()
        }
        _ => (StatusCode::BAD_REQUEST, "Bad payload").into_response(),
    }
}

async fn webhook(State(rx): S, h: HeaderMap, b: Bytes) -> Response {
    if let Some(r) = rx.gate() {
        return r;
    }
    let header = |k: &str| {
        h.get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let ts: i64 = header("x-plumbline-timestamp").parse().unwrap_or(0);
    let want = plumbline_delivery::route::webhook::sign(WEBHOOK_SECRET, ts, &b);
    if header("x-plumbline-signature") != want || header("x-plumbline-delivery").is_empty() {
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    rx.keep("webhook", &h, json_of(&b).unwrap_or(Value::Null));
    StatusCode::NO_CONTENT.into_response()
}

async fn jira_create(State(rx): S, h: HeaderMap, b: Bytes) -> Response {
    if let Some(r) = rx.gate() {
        return r;
    }
    if h.get("authorization").and_then(|v| v.to_str().ok()) != Some(JIRA_BASIC) {
        return (StatusCode::UNAUTHORIZED, "").into_response();
    }
    let Some(v) = json_of(&b) else {
        return (StatusCode::BAD_REQUEST, "").into_response();
    };
    let f = &v["fields"];
    if f["project"]["key"] != "SEC"
        || !f["summary"].is_string()
        || !f["issuetype"]["name"].is_string()
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"errorMessages": [], "errors": {"project": "project is required"}})),
        )
            .into_response();
    }
    let mut issues = rx.jira_issues.lock().unwrap();
    let n = issues.len() + 1;
    let key = format!("SEC-{n}");
    issues.push(json!({"key": key, "labels": f["labels"].clone()}));
    drop(issues);
    rx.keep("jira", &h, v);
    (
        StatusCode::CREATED,
        Json(json!({"id": format!("{}", 10000 + n), "key": key, "self": "http://jira/issue"})),
    )
        .into_response()
}

async fn jira_search(
    State(rx): S,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(r) = rx.gate() {
        return r;
    }
    let jql = q.get("jql").cloned().unwrap_or_default();
    let label = jql.split('"').nth(1).unwrap_or("").to_string();
    let found: Vec<Value> = rx
        .jira_issues
        .lock()
        .unwrap()
        .iter()
        .filter(|i| {
            i["labels"]
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x == label.as_str()))
        })
        .map(|i| json!({"key": i["key"]}))
        .collect();
    Json(json!({"issues": found, "total": found.len()})).into_response()
}

async fn linear(State(rx): S, h: HeaderMap, b: Bytes) -> Response {
    if let Some(r) = rx.gate() {
        return r;
    }
    if h.get("authorization").and_then(|v| v.to_str().ok()) != Some(LINEAR_KEY) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"errors": [{"message": "Authentication required, not authenticated"}]})),
        )
            .into_response();
    }
    let Some(v) = json_of(&b) else {
        return (StatusCode::BAD_REQUEST, "").into_response();
    };
    let query = v["query"].as_str().unwrap_or("");
    if query.contains("issueCreate") {
        let input = &v["variables"]["input"];
        if input["teamId"] != "team-1" || !input["title"].is_string() {
            return Json(json!({"errors": [{"message": "Argument Validation Error", "extensions": {"code": "INVALID_INPUT"}}]})).into_response();
        }
        let mut issues = rx.linear_issues.lock().unwrap();
        let ident = format!("SEC-L{}", issues.len() + 1);
        issues.push(json!({"identifier": ident, "description": input["description"]}));
        drop(issues);
        rx.keep("linear", &h, v);
        return Json(json!({"data": {"issueCreate": {"success": true, "issue": {"id": "uuid", "identifier": ident, "url": "https://linear.app/x"}}}})).into_response();
    }
    if query.contains("issues(") {
        let needle = v["variables"]["filter"]["description"]["contains"]
            .as_str()
            .unwrap_or("\u{0}")
            .to_string();
        let nodes: Vec<Value> = rx
            .linear_issues
            .lock()
            .unwrap()
            .iter()
            .filter(|i| i["description"].as_str().unwrap_or("").contains(&needle))
            .map(|i| json!({"id": "uuid", "identifier": i["identifier"], "url": "u"}))
            .collect();
        return Json(json!({"data": {"issues": {"nodes": nodes}}})).into_response();
    }
    Json(json!({"errors": [{"message": "unknown query"}]})).into_response()
}

async fn pagerduty(State(rx): S, h: HeaderMap, b: Bytes) -> Response {
    if let Some(r) = rx.gate() {
        return r;
    }
    let invalid = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"status": "invalid event", "message": "Event object is invalid", "errors": [why]})),
        )
            .into_response()
    };
    let Some(v) = json_of(&b) else {
        return invalid("not JSON");
    };
    if v["routing_key"] != PD_KEY {
        return invalid("'routing_key' is invalid");
    }
    if !v["dedup_key"].is_string() {
        return invalid("'dedup_key' missing");
    }
    match v["event_action"].as_str() {
        Some("trigger") => {
            let p = &v["payload"];
            let sev_ok = ["critical", "error", "warning", "info"]
                .contains(&p["severity"].as_str().unwrap_or(""));
            if !p["summary"].is_string() || !p["source"].is_string() || !sev_ok {
                return invalid("'payload' needs summary, source and severity");
            }
        }
        Some("resolve") | Some("acknowledge") => {}
        _ => return invalid("'event_action' is invalid"),
    }
    let key = v["dedup_key"].clone();
    rx.keep("pagerduty", &h, v);
    (
        StatusCode::ACCEPTED,
        Json(json!({"status": "success", "message": "Event processed", "dedup_key": key})),
    )
        .into_response()
}

async fn n8n_deactivate(State(rx): S, h: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = rx.gate() {
        return r;
    }
    if h.get("x-n8n-api-key").and_then(|v| v.to_str().ok()) != Some(N8N_KEY) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "unauthorized"})),
        )
            .into_response();
    }
    rx.keep("n8n", &h, json!({"workflow_id": id}));
    Json(json!({"id": id, "active": false})).into_response()
}

async fn github_delete_key(
    State(rx): S,
    h: HeaderMap,
    Path((owner, repo, id)): Path<(String, String, String)>,
) -> Response {
    if let Some(r) = rx.gate() {
        return r;
    }
    let auth = h.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {GITHUB_TOKEN}")) || h.get("user-agent").is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        )
            .into_response();
    }
    rx.keep(
        "github",
        &h,
        json!({"repository": format!("{owner}/{repo}"), "key_id": id}),
    );
    StatusCode::NO_CONTENT.into_response()
}

async fn vault_revoke_accessor(State(rx): S, h: HeaderMap, b: Bytes) -> Response {
    if let Some(r) = rx.gate() {
        return r;
    }
    if h.get("x-vault-token").and_then(|v| v.to_str().ok()) != Some(VAULT_TOKEN) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"errors": ["permission denied"]})),
        )
            .into_response();
    }
    match json_of(&b) {
        Some(v) if v["accessor"].is_string() => {
            rx.keep("vault", &h, v);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => (
            StatusCode::BAD_REQUEST,
            Json(json!({"errors": ["missing accessor"]})),
        )
            .into_response(),
    }
}

pub fn app(rx: Arc<Rx>) -> Router {
    Router::new()
        .route("/slack", post(slack))
        .route("/teams", post(teams))
        .route("/webhook", post(webhook))
        .route("/jira/rest/api/2/issue", post(jira_create))
        .route("/jira/rest/api/2/search", get(jira_search))
        .route("/linear", post(linear))
        .route("/pagerduty/v2/enqueue", post(pagerduty))
        .route(
            "/n8n/api/v1/workflows/{id}/deactivate",
            post(n8n_deactivate),
        )
        .route(
            "/github/repos/{owner}/{repo}/keys/{id}",
            axum::routing::delete(github_delete_key),
        )
        .route(
            "/vault/v1/auth/token/revoke-accessor",
            post(vault_revoke_accessor),
        )
        .with_state(rx)
}

/// Serves the receivers on `listener`.
pub fn serve_on(listener: tokio::net::TcpListener, rx: Arc<Rx>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = axum::serve(listener, app(rx)).await;
    })
}

pub async fn start() -> (SocketAddr, Arc<Rx>) {
    let rx = Arc::new(Rx::default());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    serve_on(l, rx.clone());
    (addr, rx)
}

/// A minimal SMTP server: enough of RFC 5321 for a client to hand over mail. Keeps the
/// DATA of every message accepted.
pub async fn start_smtp() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let mails = Arc::new(Mutex::new(Vec::new()));
    let kept = mails.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 receiver.test ESMTP\r\n").await;
                let mut rcpt = 0;
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.split_whitespace().next().unwrap_or("").to_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-receiver.test\r\n250 8BITMIME\r\n",
                        "HELO" | "MAIL" | "RSET" | "NOOP" => b"250 OK\r\n",
                        "RCPT" => {
                            rcpt += 1;
                            b"250 OK\r\n"
                        }
                        "DATA" if rcpt > 0 => {
                            let _ = w
                                .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                                .await;
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                                data.push('\n');
                            }
                            kept.lock().unwrap().push(data);
                            b"250 OK queued\r\n"
                        }
                        "DATA" => b"503 need RCPT first\r\n",
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"502 command not implemented\r\n",
                    };
                    if w.write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, mails)
}

/// A policy whose destinations all point at the local receivers.
pub fn policy_toml(rx: SocketAddr, smtp: SocketAddr, extra: &str) -> String {
    format!(
        r#"
[settings]
timezone = "UTC"
dedup_window_minutes = 240

[quiet_hours]
enabled = true
start = "22:00"
end = "08:00"
severities = [2]

[break_glass]
enabled = true
signals = ["*direct_to_prod*"]
environments = ["prod"]
ticket_attributes = ["incident_id"]
severity = 2
review_within_hours = 24
follow_up = "Rotate the credentials used for emergency access."

[[routes]]
name = "urgent"
match = {{ severity = [3] }}
destinations = ["pagerduty", "slack", "teams", "jira", "linear", "webhook"]
incident = true
actions = ["pause_workflow"]

[[routes]]
name = "needs-review"
match = {{ severity = [2] }}
destinations = ["slack", "teams", "jira", "linear", "webhook"]
justification = true

[[routes]]
name = "informational"
match = {{ severity = [1] }}
destinations = ["digest", "webhook"]

[destinations.slack]
kind = "slack"
url = "http://{rx}/slack"

[destinations.teams]
kind = "teams"
url = "http://{rx}/teams"

[destinations.webhook]
kind = "webhook"
url = "${{TEST_WEBHOOK_URL}}"
secret = "{secret}"

[destinations.jira]
kind = "jira"
base_url = "http://{rx}/jira"
project = "SEC"
email = "bot@example.com"
token = "${{TEST_JIRA_TOKEN}}"
incident_issue_type = "Incident"

[destinations.linear]
kind = "linear"
url = "http://{rx}/linear"
api_key = "{linear}"
team_id = "team-1"

[destinations.pagerduty]
kind = "pagerduty"
url = "http://{rx}/pagerduty/v2/enqueue"
routing_key = "{pd}"

[destinations.digest]
kind = "email_digest"
smtp_url = "smtp://{smtp}"
from = "Plumbline <plumbline@example.com>"
to = ["security@example.com"]
send_at = "08:00"

[actions]
enabled = false

[actions.pause_workflow]
kind = "n8n_pause_workflow"
base_url = "http://{rx}/n8n"
api_key = "{n8n}"

{extra}
"#,
        secret = WEBHOOK_SECRET,
        linear = LINEAR_KEY,
        pd = PD_KEY,
        n8n = N8N_KEY,
    )
}
