//! Test doubles for this crate and the service's tests (`features = ["testing"]`): a real
//! OpenAI-compatible chat-completions server on loopback that answers from a script, a
//! four-event exfiltration story, and a detector that fires on its export.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use plumbline_event::{parse_event, Event};
use plumbline_trajectory::model::{event_digest, trajectory_hash};
use plumbline_trajectory::{Evaluation, Evaluator, Finding, Trajectory, TrajectoryKind};

// ---------------------------------------------------------------------------------------
// The chat-completions server.

/// What the server does with the next request.
#[derive(Clone, Debug)]
pub enum Step {
    /// A valid summary with this risk, citing the first event id the request offers.
    Valid(u8),
    /// This exact message content.
    Content(String),
    Refuse(String),
    Status {
        code: u16,
        retry_after: Option<&'static str>,
    },
    /// Waits, then does the inner step.
    Sleep(Duration, Box<Step>),
    /// A valid judgement (a detector's `model.judge`) with this risk, citing every event
    /// the request's schema offers.
    Judge(u8),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: String,
    /// The body the server answered with (for hash checks).
    pub answered: Option<String>,
}

#[derive(Default)]
pub struct MockState {
    script: Mutex<VecDeque<Step>>,
    /// Used when the script is empty.
    otherwise: Mutex<Option<Step>>,
    received: Mutex<Vec<Received>>,
    in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
}

pub struct MockLlm {
    pub base_url: String,
    pub state: Arc<MockState>,
}

impl MockLlm {
    pub async fn start(script: Vec<Step>, otherwise: Option<Step>) -> MockLlm {
        let state = Arc::new(MockState {
            script: Mutex::new(script.into()),
            otherwise: Mutex::new(otherwise),
            ..Default::default()
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        MockLlm {
            base_url: format!("http://{addr}/v1"),
            state,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    pub fn calls(&self) -> usize {
        self.state.received.lock().unwrap().len()
    }
}

pub async fn completions(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let index = {
        let mut r = state.received.lock().unwrap();
        r.push(Received {
            at: Instant::now(),
            headers,
            body: body.clone(),
            answered: None,
        });
        r.len() - 1
    };
    let n = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(n, Ordering::SeqCst);
    let step = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| state.otherwise.lock().unwrap().clone())
        .expect("the test scripted no answer for this call");
    let resp = answer(step, &body).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    let (status, headers, text) = resp;
    state.received.lock().unwrap()[index].answered = Some(text.clone());
    let mut r = (status, text).into_response();
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    for (k, v) in headers {
        r.headers_mut().insert(k, v.parse().unwrap());
    }
    r
}

/// Status, extra headers, body.
pub type Answer = (StatusCode, Vec<(&'static str, String)>, String);

pub async fn answer(mut step: Step, request: &str) -> Answer {
    while let Step::Sleep(d, inner) = step {
        tokio::time::sleep(d).await;
        step = *inner;
    }
    match step {
        Step::Sleep(..) => unreachable!("slept above"),
        Step::Status { code, retry_after } => (
            StatusCode::from_u16(code).unwrap(),
            retry_after
                .map(|v| vec![("retry-after", v.to_string())])
                .unwrap_or_default(),
            json!({"error": {"message": "try later", "type": "server_error"}}).to_string(),
        ),
        Step::Refuse(why) => (
            StatusCode::OK,
            vec![],
            completion(Value::Null, Value::String(why)),
        ),
        Step::Content(c) => (
            StatusCode::OK,
            vec![],
            completion(Value::String(c), Value::Null),
        ),
        Step::Judge(risk) => {
            let v: Value = serde_json::from_str(request).unwrap();
            let ids = v["response_format"]["json_schema"]["schema"]["properties"]["reasons"]
                ["items"]["properties"]["evidence"]["items"]["enum"]
                .clone();
            let content = json!({
                "risk": risk,
                "reasons": [{"text": "read a credential file, then sent data to a host the session had not used", "evidence": ids}],
            });
            (
                StatusCode::OK,
                vec![],
                completion(Value::String(content.to_string()), Value::Null),
            )
        }
        Step::Valid(risk) => {
            let id = offered_ids(request)[0].clone();
            let content = json!({
                "narrative": "mallory created a workflow, attached a broad credential and exported rows to a new host.",
                "risk": risk,
                "signals": ["large export", "new external destination"],
                "reasons": [{"reason": "export to an unknown host", "event_ids": [id]}],
                "next_step": "Ask mallory for a business justification and pause the workflow.",
            });
            (
                StatusCode::OK,
                vec![],
                completion(Value::String(content.to_string()), Value::Null),
            )
        }
    }
}

pub fn completion(content: Value, refusal: Value) -> String {
    json!({
        "id": "chatcmpl-test", "object": "chat.completion", "created": 1_764_000_000,
        "model": "test-model",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content, "refusal": refusal}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    })
    .to_string()
}

/// The event ids the request's schema allows (the enum on cited ids).
pub fn offered_ids(request: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(request).unwrap();
    v["response_format"]["json_schema"]["schema"]["properties"]["reasons"]["items"]["properties"]
        ["event_ids"]["items"]["enum"]
        .as_array()
        .expect("cited ids are constrained by an enum")
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Trajectories and a detector.

pub const T0: i64 = 1_764_000_000;

pub fn ev(id: &str, action: &str, secs: i64, extra: Value) -> Event {
    let t = time::OffsetDateTime::from_unix_timestamp(T0 + secs).unwrap();
    let mut v = json!({
        "id": id, "time": plumbline_event::format_time(t), "source": "n8n",
        "actor": {"id": "mallory", "type": "human"}, "system": "n8n/invoice-sync",
        "action": action, "environment": "prod",
    });
    if let Value::Object(m) = extra {
        for (k, x) in m {
            v[k] = x;
        }
    }
    parse_event(v).unwrap()
}

pub fn story() -> Vec<Event> {
    vec![
        ev("s1", "workflow.created", 0, json!({})),
        ev(
            "s2",
            "workflow.trigger.added",
            240,
            json!({"resource": "webhook"}),
        ),
        ev(
            "s3",
            "credential.attached",
            540,
            json!({"resource": "crm-admin"}),
        ),
        ev(
            "s4",
            "data.export",
            900,
            json!({"destination": "files.unknown-host.example", "volume": {"rows": 48000}}),
        ),
    ]
}

pub fn trajectory(id: &str, kind: TrajectoryKind, events: Vec<Event>) -> Arc<Trajectory> {
    let digests: Vec<[u8; 32]> = events.iter().map(event_digest).collect();
    let hash = trajectory_hash(events.iter().map(|e| e.id.as_str()).zip(digests.iter()));
    Arc::new(Trajectory {
        id: id.into(),
        kind,
        key: kind.key_of(&events[0]).to_string(),
        start: events.first().unwrap().time_nanos(),
        end: events.last().unwrap().time_nanos(),
        closes_at: events.last().unwrap().time_nanos() + 3_600_000_000_000,
        dropped: 0,
        hash,
        events: events.into_iter().map(Arc::new).collect(),
    })
}

pub fn finding(severity: u8, evidence: &[&str]) -> Finding {
    Finding {
        detector: "exfil.export-after-grant".into(),
        detector_version: "1.0.0".into(),
        signal: "exfil.large_export_new_destination".into(),
        severity,
        score: 0.9,
        title: "48000 rows exported to a new destination after a credential grant".into(),
        evidence: evidence.iter().map(|s| s.to_string()).collect(),
        next_step: "Ask for a business justification".into(),
    }
}

/// Fires on exports only: everything else is a quiet trajectory.
pub struct ExportDetector(pub AtomicUsize);

impl Evaluator for ExportDetector {
    fn evaluate(&self, t: &Trajectory) -> Evaluation {
        // Like a detector that declares no views: the rolling windows only.
        if t.kind.is_drift() {
            return Evaluation::default();
        }
        self.0.fetch_add(1, Ordering::SeqCst);
        let exports: Vec<String> = t
            .events
            .iter()
            .filter(|e| e.action == "data.export")
            .map(|e| e.id.clone())
            .collect();
        Evaluation {
            findings: if exports.is_empty() {
                vec![]
            } else {
                let ev: Vec<&str> = exports.iter().map(String::as_str).collect();
                vec![finding(2, &ev)]
            },
            shadow: vec![],
        }
    }
}
