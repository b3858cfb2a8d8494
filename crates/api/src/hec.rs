//! A Splunk-HEC-compatible receiver for the GitHub audit log: GitHub streams an
//! enterprise's audit log only to a fixed list of destinations, Splunk among them, so a
//! self-hosted collector is reached the way Splunk's HTTP Event Collector is.
//!
//! `POST /services/collector/event` (also `/services/collector` and `…/event/1.0`) with
//! `Authorization: Splunk <token>` (`[github_audit] token`; when it is empty, the API-token
//! rules apply to the same value). The body is one or more HEC envelopes back to back
//! (`{"time", "host", "source", "sourcetype", "event": {<audit entry>}}{…}`), whitespace
//! between them optional; each `event` goes through the `github-audit` adapter like a
//! `POST /v1/ingest/github-audit`, and is stored durably before the answer. Answers are
//! HEC's: `200 {"text":"Success","code":0}`; `401` code 2 (no token) or 3 (not
//! `Splunk <token>`); `403` code 4 (wrong token); `400` code 5 (no data), 6 (invalid data
//! format, with `invalid-event-number`), 12 (an envelope without `event`), 13 (an empty
//! event); `503` code 9 (busy); and `GET /services/collector/health` `{"text":"HEC is
//! healthy","code":17}`. Entries the adapter refuses (no `action`, no time) are logged and
//! skipped, as HEC has no partial answer; the rest are kept.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::events::read_body;
use super::ingest::{authorize, submit};
use super::AppState;
use plumbline_ingest::adapter::{Adapter, Delivery};
use plumbline_ingest::github_audit::ENDPOINT;
use plumbline_ingest::memory::SledMemory;

/// HEC's answer: `{"text", "code"}` (plus `invalid-event-number` for a bad envelope).
fn answer(status: StatusCode, text: &str, code: u8) -> Response {
    (status, Json(json!({ "text": text, "code": code }))).into_response()
}

fn invalid_event(status: StatusCode, text: &str, code: u8, number: usize) -> Response {
    (
        status,
        Json(json!({ "text": text, "code": code, "invalid-event-number": number })),
    )
        .into_response()
}

/// The HEC routes, when the GitHub audit-log adapter is configured.
pub fn routes(adapters: &[Arc<dyn Adapter>]) -> Router<AppState> {
    let Some(adapter) = adapters.iter().find(|a| a.endpoint() == ENDPOINT).cloned() else {
        return Router::new();
    };
    let mut router = Router::new();
    for path in [
        "/services/collector",
        "/services/collector/event",
        "/services/collector/event/1.0",
    ] {
        let a = adapter.clone();
        router = router.route(
            path,
            post(
                move |State(state): State<AppState>, headers: HeaderMap, body: Body| {
                    receive(a, state, headers, body)
                },
            ),
        );
    }
    let health = get(|| async { answer(StatusCode::OK, "HEC is healthy", 17) });
    router
        .route("/services/collector/health", health.clone())
        .route("/services/collector/health/1.0", health)
}

async fn receive(
    adapter: Arc<dyn Adapter>,
    state: AppState,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // `Authorization: Splunk <token>`, checked as the adapter checks its shared token.
    let Some(presented) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return answer(StatusCode::UNAUTHORIZED, "Token is required", 2);
    };
    let token = match presented.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("splunk") => token.trim(),
        _ => return answer(StatusCode::UNAUTHORIZED, "Invalid authorization", 3),
    };
    let mut as_bearer = HeaderMap::new();
    match HeaderValue::from_str(&format!("Bearer {token}")) {
        Ok(v) => as_bearer.insert(axum::http::header::AUTHORIZATION, v),
        Err(_) => return answer(StatusCode::UNAUTHORIZED, "Invalid authorization", 3),
    };
    let verified = match authorize(&state, &as_bearer, adapter.verify(&as_bearer, &[])) {
        Ok(v) => v,
        Err(_) => return answer(StatusCode::FORBIDDEN, "Invalid token", 4),
    };
    let bytes = match read_body(&state, &headers, body).await {
        Ok(b) => b,
        Err(e) => {
            return (
                e.status,
                Json(json!({ "text": e.body["error"], "code": 6 })),
            )
                .into_response()
        }
    };
    let entries = match envelopes(&bytes) {
        Ok(entries) => entries,
        Err(refusal) => return refusal,
    };
    let body = serde_json::to_vec(&Value::Array(entries)).expect("JSON values serialise");
    let memory = match SledMemory::open(&state.store) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "HEC receiver: adapter memory unavailable");
            return answer(StatusCode::SERVICE_UNAVAILABLE, "Server is busy", 9);
        }
    };
    let delivery = Delivery {
        headers: &headers,
        body: &body,
        received: OffsetDateTime::now_utc(),
    };
    let mut mapped = match adapter.map(&delivery, &memory) {
        Ok(m) => m,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "text": format!("Invalid data format: {e}"), "code": 6 })),
            )
                .into_response()
        }
    };
    mapped.stamp(verified);
    match submit(&state, mapped, &memory).await {
        Ok(report) => {
            for r in &report.rejected {
                tracing::warn!(
                    event = r.index,
                    field = %r.field,
                    reason = %r.reason,
                    "HEC receiver: audit-log entry refused"
                );
            }
            answer(StatusCode::OK, "Success", 0)
        }
        Err(e) if e.status == StatusCode::PAYLOAD_TOO_LARGE => (
            e.status,
            Json(json!({ "text": e.body["error"], "code": 6 })),
        )
            .into_response(),
        Err(e) if e.status.is_server_error() => {
            let mut r = answer(StatusCode::SERVICE_UNAVAILABLE, "Server is busy", 9);
            if let Some(secs) = e.retry_after {
                r.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, secs.into());
            }
            r
        }
        Err(e) => answer(e.status, "Internal server error", 8),
    }
}

/// The `event` of each HEC envelope of a body (objects back to back). An envelope's
/// `event` may also be JSON text (`"event": "{\"action\": …}"`), as some forwarders send it.
/// An entry without a time of its own takes the envelope's `time` (epoch seconds).
#[allow(clippy::result_large_err)]
fn envelopes(bytes: &[u8]) -> Result<Vec<Value>, Response> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(answer(StatusCode::BAD_REQUEST, "No data", 5));
    }
    let mut out = Vec::new();
    for (i, item) in serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Value>()
        .enumerate()
    {
        let bad = |text: &str, code| Err(invalid_event(StatusCode::BAD_REQUEST, text, code, i));
        let Ok(Value::Object(envelope)) = item else {
            return bad("Invalid data format", 6);
        };
        let mut event = match envelope.get("event") {
            None | Some(Value::Null) => return bad("Event field is required", 12),
            Some(Value::String(s)) if s.trim().is_empty() => {
                return bad("Event field cannot be blank", 13)
            }
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(v @ Value::Object(_)) => v,
                _ => return bad("Invalid data format", 6),
            },
            Some(v @ Value::Object(m)) if !m.is_empty() => v.clone(),
            Some(Value::Object(_)) => return bad("Event field cannot be blank", 13),
            Some(_) => return bad("Invalid data format", 6),
        };
        let timed = ["@timestamp", "created_at"]
            .iter()
            .any(|k| event.get(*k).is_some_and(|v| !v.is_null()));
        if !timed {
            if let Some(t) = envelope.get("time").and_then(|t| match t {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }) {
                event["@timestamp"] = json!((t * 1000.0) as i64);
            }
        }
        out.push(event);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_back_to_back_with_or_without_whitespace() {
        let body = br#"{"time":1793610900,"event":{"action":"repo.create"}}{"event":"{\"action\":\"git.push\",\"created_at\":1}"}
            {"sourcetype":"github:enterprise:audit","event":{"action":"hook.create","@timestamp":2}}"#;
        let events = envelopes(body).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0]["@timestamp"], json!(1_793_610_900_000i64));
        assert_eq!(events[1]["action"], "git.push");
        assert!(events[1].get("@timestamp").is_none());
        assert_eq!(events[2]["@timestamp"], 2);
    }

    #[test]
    fn refusals_name_hec_codes_and_the_envelope() {
        let code = |body: &[u8]| {
            let r = envelopes(body).unwrap_err();
            r.status().as_u16()
        };
        assert_eq!(code(b"  \n"), 400);
        assert_eq!(code(br#"{"event":{"action":"a"}}{"host":"x"}"#), 400);
        assert_eq!(code(br#"{"event":""}"#), 400);
        assert_eq!(code(br#"{"event":{"action":"a"}} nope"#), 400);
    }
}
