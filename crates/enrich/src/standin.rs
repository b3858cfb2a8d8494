//! Stand-ins for the n8n and make.com APIs on a local port, for tests, the demo and
//! `plumbline eval`: they check the credential as the vendors do and answer in the shapes
//! the vendors document, from data the caller gives.
//!
//! - [`serve_n8n`]: `GET /api/v1/workflows/{id}` with `X-N8N-API-KEY` → the workflow
//!   object; 401 `{"message": "unauthorized"}` without the key, 404 for an unknown id.
//! - [`serve_make`]: with `Authorization: Token <token>`,
//!   `GET /api/v2/scenarios/{id}/blueprint` → `{"code": "OK", "response": <item>}`,
//!   `/api/v2/connections/{id}` → `{"connection": <item>}`, `/api/v2/hooks/{id}` →
//!   `{"hook": <item>}`, `/api/v2/keys/{id}` → `{"key": <item>}`.
//!
//! Each resource holds versions served in order, the last one repeating, so a story can
//! script "created, then updated" and the second look-up sees the second version;
//! [`StandIn::push`] adds one later. [`StandIn::fault`] plays an outage.
//!
//! ```no_run
//! # async fn demo() {
//! use std::collections::HashMap;
//! let n8n = plumbline_enrich::standin::serve_n8n(
//!     "n8n-api-key",
//!     HashMap::from([("Wf9".to_string(), vec![serde_json::json!({"id": "Wf9", "nodes": []})])]),
//! )
//! .await;
//! // [n8n] api_url = n8n.url(), api_key = "n8n-api-key"
//! # }
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use serde_json::{json, Value};

/// A fault the stand-in plays instead of answering.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answers every request with this HTTP status.
    Status(u16),
    /// Waits this long before answering (a client with a shorter timeout gives up).
    Delay(Duration),
    /// Answers 200 with an HTML page.
    NotJson,
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub path: String,
    /// Whether it carried the right credential.
    pub authorized: bool,
}

/// The make.com data a stand-in serves, by id: for `scenarios`, each version is the
/// `response` of the blueprint endpoint (`{"blueprint": {...}, "scheduling": {...}}`);
/// connections, hooks and keys are the objects under `connection`, `hook`, `key`.
#[derive(Debug, Clone, Default)]
pub struct MakeData {
    pub scenarios: HashMap<String, Vec<Value>>,
    pub connections: HashMap<String, Value>,
    pub hooks: HashMap<String, Value>,
    pub keys: HashMap<String, Value>,
}

/// A running stand-in; it stops when dropped.
pub struct StandIn {
    pub addr: SocketAddr,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

type Shared = Arc<Mutex<Served>>;

struct Served {
    /// The credential header and the value it must have.
    credential: (&'static str, String),
    /// The versions of each resource (`workflows`, `scenarios`, …, and id), and how many
    /// have been served.
    resources: HashMap<(&'static str, String), (Vec<Value>, usize)>,
    fault: Option<Fault>,
    seen: Vec<Seen>,
    /// The vendor's error bodies: (unauthorized, not found).
    errors: (Value, Value),
}

impl StandIn {
    /// `http://127.0.0.1:<port>`: the `api_url` to configure.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a version of a resource (`"workflows"`; `"scenarios"`, `"connections"`,
    /// `"hooks"`, `"keys"`), served once the earlier ones have been.
    pub fn push(&self, kind: &str, id: &str, version: Value) {
        let mut s = self.lock();
        let Some(kind) = KINDS.iter().find(|k| **k == kind) else {
            panic!("no resource kind {kind}");
        };
        let entry = s.resources.entry((kind, id.to_string())).or_default();
        entry.0.push(version);
    }

    /// Plays `fault` from now on (`None`: answers again).
    pub fn fault(&self, fault: Option<Fault>) {
        self.lock().fault = fault;
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Served> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const KINDS: [&str; 5] = ["workflows", "scenarios", "connections", "hooks", "keys"];

/// n8n's public API for `workflows` (id → versions in order) behind `api_key`.
pub async fn serve_n8n(api_key: &str, workflows: HashMap<String, Vec<Value>>) -> StandIn {
    let resources = workflows
        .into_iter()
        .map(|(id, versions)| (("workflows", id), (versions, 0)))
        .collect();
    let served = Served {
        credential: ("x-n8n-api-key", api_key.to_string()),
        resources,
        fault: None,
        seen: Vec::new(),
        errors: (
            json!({"message": "unauthorized"}),
            json!({"message": "Not Found"}),
        ),
    };
    let router = Router::new().route("/api/v1/workflows/{id}", route("workflows", |v| v));
    start(served, router).await
}

/// The Make API's scenario blueprints, connections, hooks and keys behind `api_token`.
pub async fn serve_make(api_token: &str, data: MakeData) -> StandIn {
    let one = |kind: &'static str, m: HashMap<String, Value>| {
        m.into_iter().map(move |(id, v)| ((kind, id), (vec![v], 0)))
    };
    let resources = data
        .scenarios
        .into_iter()
        .map(|(id, versions)| (("scenarios", id), (versions, 0)))
        .chain(one("connections", data.connections))
        .chain(one("hooks", data.hooks))
        .chain(one("keys", data.keys))
        .collect();
    let served = Served {
        credential: ("authorization", format!("Token {api_token}")),
        resources,
        fault: None,
        seen: Vec::new(),
        errors: (
            json!({"message": "Access denied.", "detail": "Invalid access token.", "code": "SC401"}),
            json!({"message": "Not found", "code": "SC404"}),
        ),
    };
    let router = Router::new()
        .route(
            "/api/v2/scenarios/{id}/blueprint",
            route("scenarios", |v| json!({"code": "OK", "response": v})),
        )
        .route(
            "/api/v2/connections/{id}",
            route("connections", |v| json!({ "connection": v })),
        )
        .route(
            "/api/v2/hooks/{id}",
            route("hooks", |v| json!({ "hook": v })),
        )
        .route("/api/v2/keys/{id}", route("keys", |v| json!({ "key": v })));
    start(served, router).await
}

async fn start(served: Served, router: Router<Shared>) -> StandIn {
    let state: Shared = Arc::new(Mutex::new(served));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port for the stand-in API");
    let addr = listener.local_addr().expect("a bound address");
    let app = router.with_state(state.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    StandIn { addr, state, task }
}

fn route(kind: &'static str, wrap: fn(Value) -> Value) -> MethodRouter<Shared> {
    get(
        move |State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>| async move {
            answer(&s, &headers, kind, id, wrap).await
        },
    )
}

async fn answer(
    s: &Shared,
    headers: &HeaderMap,
    kind: &'static str,
    id: String,
    wrap: fn(Value) -> Value,
) -> Response {
    let (fault, reply) = {
        let mut guard = s.lock().unwrap_or_else(|p| p.into_inner());
        let s = &mut *guard;
        let (name, want) = &s.credential;
        let authorized = headers.get(*name).and_then(|v| v.to_str().ok()) == Some(want.as_str());
        s.seen.push(Seen {
            path: format!("/{kind}/{id}"),
            authorized,
        });
        let fault = s.fault.clone();
        let reply = if !authorized {
            (StatusCode::UNAUTHORIZED, s.errors.0.clone())
        } else if let Some((versions, served)) = s.resources.get_mut(&(kind, id)) {
            // A fault answers nothing, so it serves no version.
            let i = (*served).min(versions.len().saturating_sub(1));
            if fault.is_none() {
                *served += 1;
            }
            match versions.get(i) {
                Some(v) => (StatusCode::OK, wrap(v.clone())),
                None => (StatusCode::NOT_FOUND, s.errors.1.clone()),
            }
        } else {
            (StatusCode::NOT_FOUND, s.errors.1.clone())
        };
        (fault, reply)
    };
    match fault {
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, Json(json!({"message": "stand-in fault"}))).into_response()
        }
        Some(Fault::NotJson) => (StatusCode::OK, "<html>maintenance</html>").into_response(),
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            (reply.0, Json(reply.1)).into_response()
        }
        None => (reply.0, Json(reply.1)).into_response(),
    }
}
