//! Policy, outbox and response-action endpoints (the review page calls these).
//!
//! - `GET  /v1/policy` — the active policy; destinations show kind and whether enabled,
//!   never their URLs or secrets.
//! - `GET  /v1/policy/decisions/{alert_id}` — what policy decided about an alert, and why.
//! - `GET  /v1/incidents` — incident records opened by urgent routes.
//! - `GET  /v1/actions?state=pending` and `GET /v1/actions/{id}` — response actions.
//! - `POST /v1/actions/{id}/approve` / `deny`, body `{"by": "alice", "comment": "…"}`
//!   (`review` or `admin` scope) — who decided is recorded.
//! - `GET  /v1/outbox` — depth and per-destination status.
//! - `GET  /v1/outbox/deliveries?state=&destination=&limit=`, `GET …/{id}`,
//!   `POST …/{id}/retry` (`admin`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::audit_log::record;
use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::auth::{scope, Require};
use plumbline_delivery::respond::{ActionError, ActionState};
use plumbline_delivery::route::outbox::DeliveryState;
use plumbline_policy::model::{ActionDef, DestinationConfig};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/policy", get(policy))
        .route("/v1/policy/decisions/{alert_id}", get(decisions))
        .route("/v1/incidents", get(incidents))
        .route("/v1/actions", get(actions))
        .route("/v1/actions/{id}", get(action))
        .route("/v1/actions/{id}/approve", post(approve))
        .route("/v1/actions/{id}/deny", post(deny))
        .route("/v1/outbox", get(outbox))
        .route("/v1/outbox/deliveries", get(deliveries))
        .route("/v1/outbox/deliveries/{id}", get(delivery))
        .route("/v1/outbox/deliveries/{id}/retry", post(retry))
}

async fn policy(
    _: Require<scope::Read>,
    State(s): State<AppState>,
) -> ApiResult<impl IntoResponse> {
    let p = s.routing.stage.policy();
    let status = s.routing.dispatcher().status();
    let destinations: serde_json::Map<String, Value> = p
        .destinations
        .iter()
        .map(|(name, d): (&String, &DestinationConfig)| {
            let disabled = status
                .destinations
                .get(name)
                .and_then(|x| x.disabled.clone());
            (
                name.clone(),
                json!({"kind": d.kind(), "enabled": disabled.is_none(), "disabled": disabled}),
            )
        })
        .collect();
    let actions: serde_json::Map<String, Value> = p
        .actions
        .defs
        .iter()
        .map(|(name, a): (&String, &ActionDef)| {
            (
                name.clone(),
                json!({"kind": a.kind(), "automatic_signals": a.automatic_signals()}),
            )
        })
        .collect();
    Ok(Json(json!({
        "settings": p.settings,
        "quiet_hours": p.quiet_hours,
        "break_glass": p.break_glass,
        "routes": p.routes,
        "allow": p.allow,
        "suppressions": p.suppressions,
        "destinations": destinations,
        "actions": {"enabled": p.actions.enabled, "expire_hours": p.actions.expire_hours, "defs": actions},
    })))
}

async fn decisions(
    _: Require<scope::Read>,
    State(s): State<AppState>,
    Path(alert_id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    if s.alerts.get(&alert_id)?.is_none() {
        return Err(ApiError::not_found(format!("no alert `{alert_id}`")));
    }
    let d = s.routing.stage.decisions(&alert_id)?;
    Ok(Json(json!({ "alert_id": alert_id, "decisions": d })))
}

async fn incidents(
    _: Require<scope::Read>,
    State(s): State<AppState>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(json!({ "incidents": s.routing.stage.incidents() })))
}

#[derive(Debug, Deserialize)]
struct ActionQuery {
    state: Option<String>,
    alert_id: Option<String>,
}

fn parse_action_state(s: &str) -> ApiResult<ActionState> {
    serde_json::from_value(Value::String(s.to_string())).map_err(|_| {
        ApiError::bad_request(format!(
            "`state`: unknown state `{s}` (pending, approved, denied, expired, done, failed)"
        ))
        .with("field", "state")
    })
}

async fn actions(
    _: Require<scope::Read>,
    State(s): State<AppState>,
    Query(q): Query<ActionQuery>,
) -> ApiResult<impl IntoResponse> {
    let state = q
        .state
        .as_deref()
        .filter(|x| !x.is_empty())
        .map(parse_action_state)
        .transpose()?;
    let list: Vec<_> = s
        .routing
        .responder
        .list()?
        .into_iter()
        .filter(|a| state.is_none_or(|st| a.state == st))
        .filter(|a| q.alert_id.as_deref().is_none_or(|id| a.alert_id == id))
        .collect();
    Ok(Json(json!({
        "enabled": s.routing.responder.enabled(),
        "count": list.len(),
        "actions": list,
    })))
}

async fn action(
    _: Require<scope::Read>,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    // Listing first expires stale proposals, so the state shown is current.
    s.routing.responder.list()?;
    match s.routing.responder.get(&id)? {
        Some(a) => Ok(Json(json!(a))),
        None => Err(ApiError::not_found(format!("no response action `{id}`"))),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    #[serde(default)]
    by: String,
    #[serde(default, alias = "reason")]
    comment: String,
}

fn decision_body(
    s: &AppState,
    principal: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<(String, String)> {
    let b: DecisionBody = if body.iter().all(u8::is_ascii_whitespace) {
        DecisionBody::default()
    } else {
        // JSON only: a form or text/plain body is what a cross-site page can send without
        // asking the browser first.
        let json = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.trim()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a decision is JSON: send `Content-Type: application/json`",
            ));
        }
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "body: expected {{\"by\": \"who decides\", \"comment\": \"why\"}}: {e}"
            ))
        })?
    };
    let by = b.by.trim().to_string();
    let by = if !by.is_empty() {
        by
    } else if s.auth.is_open() {
        // An open API has no token name to fall back on.
        return Err(ApiError::bad_request(
            "`by`: name the person who decides (the API has no tokens to tell who you are)",
        )
        .with("field", "by"));
    } else {
        principal.to_string()
    };
    Ok((by, b.comment.trim().to_string()))
}

fn action_error(e: ActionError) -> ApiError {
    match e {
        ActionError::NotFound(_) => ApiError::not_found(e.to_string()),
        ActionError::NotPending { .. } => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        ActionError::Store(e) => e.into(),
    }
}

async fn approve(
    Require { who, .. }: Require<scope::Review>,
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    let (by, comment) = decision_body(&s, &who.name, &headers, &body)?;
    let result = s.routing.responder.approve(&id, &by, &who.name, &comment);
    let detail = json!({"by": by, "comment": comment});
    record(&s.audit, &who.name, "action.approve", &id, &result, detail).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!(result.map_err(action_error)?)),
    ))
}

async fn deny(
    Require { who, .. }: Require<scope::Review>,
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    let (by, comment) = decision_body(&s, &who.name, &headers, &body)?;
    let result = s.routing.responder.deny(&id, &by, &who.name, &comment);
    let detail = json!({"by": by, "comment": comment});
    record(&s.audit, &who.name, "action.deny", &id, &result, detail).await?;
    Ok(Json(json!(result.map_err(action_error)?)))
}

async fn outbox(
    _: Require<scope::Read>,
    State(s): State<AppState>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(json!(s.routing.dispatcher().status())))
}

#[derive(Debug, Deserialize)]
struct DeliveryQuery {
    state: Option<String>,
    destination: Option<String>,
    limit: Option<usize>,
}

fn parse_id(id: &str) -> ApiResult<u64> {
    id.parse().map_err(|_| {
        ApiError::bad_request(format!("`id`: `{id}` is not a delivery id (a number)"))
            .with("field", "id")
    })
}

async fn deliveries(
    _: Require<scope::Read>,
    State(s): State<AppState>,
    Query(q): Query<DeliveryQuery>,
) -> ApiResult<impl IntoResponse> {
    let state = match q.state.as_deref() {
        None | Some("") => None,
        Some(x) => Some(
            serde_json::from_value::<DeliveryState>(Value::String(x.to_string())).map_err(
                |_| {
                    ApiError::bad_request(format!(
                        "`state`: unknown state `{x}` (pending, delivered, failed, cancelled, forwarded)"
                    ))
                    .with("field", "state")
                },
            )?,
        ),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let ob = &s.routing.outbox;
    let wanted = |d: &plumbline_delivery::route::outbox::Delivery| {
        state.is_none_or(|st| d.state == st)
            && q.destination.as_deref().is_none_or(|x| d.destination == x)
    };
    let mut list: Vec<_> = Vec::new();
    if state.is_none_or(|st| st == DeliveryState::Pending) {
        list.extend(ob.pending().filter(|d| wanted(d)).take(limit));
    }
    if state != Some(DeliveryState::Pending) && list.len() < limit {
        let room = limit - list.len();
        list.extend(ob.finished().filter(|d| wanted(d)).take(room));
    }
    Ok(Json(json!({ "count": list.len(), "deliveries": list })))
}

async fn delivery(
    _: Require<scope::Read>,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id)?;
    match s.routing.outbox.get(id)? {
        Some(d) => Ok(Json(json!(d))),
        None => Err(ApiError::not_found(format!("no delivery {id}"))),
    }
}

async fn retry(
    Require { who, .. }: Require<scope::Admin>,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let id = parse_id(&id)?;
    match s.routing.outbox.get(id)? {
        None => Err(ApiError::not_found(format!("no delivery {id}"))),
        Some(d) if d.state == DeliveryState::Pending => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("delivery {id} is still pending: it is retried on its own"),
        )),
        Some(d) if d.state == DeliveryState::Delivered => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("delivery {id} was delivered: sending it again would duplicate it"),
        )),
        Some(d) if d.state == DeliveryState::Forwarded => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "delivery {id} was handed to the cluster's outbox: the node that consumes it \
                 sends it, and retries it there"
            ),
        )),
        Some(_) => {
            let result = s.routing.outbox.retry(id);
            let target = id.to_string();
            record(
                &s.audit,
                &who.name,
                "delivery.retry",
                &target,
                &result,
                Value::Null,
            )
            .await?;
            Ok((StatusCode::ACCEPTED, Json(json!(result?))))
        }
    }
}
