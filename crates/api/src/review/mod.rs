//! The review endpoints. Everything the page does goes through these (and the response
//! action endpoints of `api::routing`), so anything a reviewer can click a script can call.
//!
//! - `POST /v1/session` `{"token": "…"}` — checks the token and sets the `plumbline_token`
//!   cookie the page signs in with (HttpOnly, SameSite=Strict); `GET /v1/session` — who you
//!   are and your scopes; `DELETE /v1/session` — signs out.
//! - `GET /v1/review/queue?status=open|reviewed|resolved|suppressed|all&severity=&limit=` —
//!   alerts by severity (most urgent first), then age (oldest first), with their latest
//!   label and pending response actions.
//! - `GET /v1/alerts/{id}/packet` — the review packet ([`plumbline_review::packet`]).
//! - `GET /v1/alerts/{id}/labels`, `POST /v1/alerts/{id}/labels` (`review` scope) with
//!   `{"outcome": "helpful" | "false_positive" | "missed_severity", "severity": 3,
//!   "comment": "…", "by": "alice"}`.
//! - `GET /v1/labels` — every alert's latest label.
//! - `GET /v1/stats?days=30` — precision per detector and per signal over time, label and
//!   alert counts, and coverage.
//! - `GET /v1/coverage` — per-source arrivals and silence, evaluations within the deadline,
//!   high-risk coverage.
//! - `GET /metrics` — Prometheus text ([`metrics`]).

mod metrics;
mod page;
pub mod throttle;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Auth;
use crate::auth::Scope;
use crate::auth::{scope, Require};
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use plumbline_alert::{Alert, AlertStatus};
use plumbline_delivery::respond::ActionState;
use plumbline_review::coverage::Watch;
use plumbline_review::labels::{LabelError, LabelRequest};
use plumbline_review::{packet, precision, Review};
use plumbline_runtime::Runtime;
use plumbline_summary::audit::SummaryAudit;
use plumbline_summary::SummaryStage;

/// What the review endpoints reach: the service's state, the review stage, and the
/// detector runtime and summary stage when this process runs them.
#[derive(Clone)]
pub struct ReviewState {
    pub app: AppState,
    pub review: Review,
    pub runtime: Option<Arc<Runtime>>,
    pub summaries: Option<Arc<SummaryStage>>,
    /// The session cookie is `Secure` when the service is reached over https
    /// (`server.public_url`).
    pub secure_cookie: bool,
    /// Failed sign-ins per minute.
    pub signins: Arc<throttle::SignInThrottle>,
}

impl FromRef<ReviewState> for Auth {
    fn from_ref(s: &ReviewState) -> Auth {
        s.app.auth.clone()
    }
}

/// A router with its own state, merged into the service's router by `serve`.
pub fn routes<S: Clone + Send + Sync + 'static>(state: ReviewState) -> Router<S> {
    Router::new()
        .route("/v1/session", get(session).post(sign_in).delete(sign_out))
        .route("/v1/review/queue", get(queue))
        .route("/v1/alerts/{id}/packet", get(alert_packet))
        .route("/v1/alerts/{id}/labels", get(alert_labels).post(add_label))
        .route("/v1/labels", get(all_labels))
        .route("/v1/stats", get(stats))
        .route("/v1/coverage", get(coverage))
        .route("/metrics", get(metrics::metrics))
        .merge(page::routes())
        .with_state(state)
}

const SCOPES: [(Scope, &str); 4] = [
    (Scope::Ingest, "ingest"),
    (Scope::Read, "read"),
    (Scope::Review, "review"),
    (Scope::Admin, "admin"),
];

/// The scopes `headers` carries (every scope on an open API).
fn scopes(auth: &Auth, headers: &HeaderMap) -> Vec<&'static str> {
    SCOPES
        .iter()
        .filter(|(s, _)| auth.check(headers, *s).is_ok())
        .map(|(_, n)| *n)
        .collect()
}

async fn session(
    Require { who, .. }: Require<scope::Read>,
    State(s): State<ReviewState>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({
        "name": who.name,
        "open": s.app.auth.is_open(),
        "scopes": scopes(&s.app.auth, &headers),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    token: String,
}

/// Characters a cookie value may hold without quoting (RFC 6265 `cookie-octet`).
fn cookie_safe(v: &str) -> bool {
    !v.is_empty()
        && v.bytes().all(|b| {
            b == 0x21
                || (0x23..=0x2b).contains(&b)
                || (0x2d..=0x3a).contains(&b)
                || (0x3c..=0x5b).contains(&b)
                || (0x5d..=0x7e).contains(&b)
        })
}

async fn sign_in(State(s): State<ReviewState>, body: Bytes) -> ApiResult<Response> {
    let b: SignIn = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("body: expected {{\"token\": \"…\"}}: {e}"))
            .with("field", "token")
    })?;
    let token = b.token.trim().to_string();
    let now = std::time::Instant::now();
    if let Some(secs) = s.signins.retry_after(now) {
        let mut r = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed sign-ins; try again in {secs} s"),
        )
        .with("retry_after_secs", secs)
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Ok(r);
    }
    let mut probe = HeaderMap::new();
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        ApiError::bad_request("`token`: not a valid header value").with("field", "token")
    })?;
    probe.insert(header::AUTHORIZATION, bearer);
    let who = s.app.auth.check(&probe, Scope::Read).map_err(|e| {
        s.signins.failed(now);
        e.with("field", "token")
            .with("hint", "the review page needs a token with the `read` scope (and `review` to label and decide)")
    })?;
    if !cookie_safe(&token) {
        return Err(ApiError::bad_request(
            "`token`: contains characters a cookie cannot carry; use the Authorization header instead",
        )
        .with("field", "token"));
    }
    let secure = if s.secure_cookie { "; Secure" } else { "" };
    let cookie = format!(
        "plumbline_token={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200{secure}"
    );
    let mut r = Json(json!({
        "name": who.name,
        "open": s.app.auth.is_open(),
        "scopes": scopes(&s.app.auth, &probe),
    }))
    .into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    Ok(r)
}

async fn sign_out() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("plumbline_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

#[derive(Debug, Deserialize)]
struct QueueParams {
    status: Option<String>,
    severity: Option<u8>,
    limit: Option<usize>,
}

fn age_secs(a: &Alert, now: time::OffsetDateTime) -> i64 {
    time::OffsetDateTime::parse(
        &a.created_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map(|t| (now - t).whole_seconds())
    .unwrap_or(0)
}

async fn queue(
    _: Require<scope::Read>,
    State(s): State<ReviewState>,
    Query(p): Query<QueueParams>,
) -> ApiResult<Json<Value>> {
    let status = match p.status.as_deref().unwrap_or("open") {
        "all" => None,
        x => Some(AlertStatus::parse(x).ok_or_else(|| {
            ApiError::bad_request(format!(
                "`status`: unknown status `{x}` (open, reviewed, resolved, suppressed, all)"
            ))
            .with("field", "status")
        })?),
    };
    if let Some(sev) = p.severity {
        if !(1..=3).contains(&sev) {
            return Err(
                ApiError::bad_request("`severity`: must be 1, 2 or 3").with("field", "severity")
            );
        }
    }
    let limit = p.limit.unwrap_or(200).clamp(1, 1000);
    let actions = s.app.routing.responder.list()?;
    let labels = s.review.labels.latest()?;
    let mut counts = json!({"1": 0, "2": 0, "3": 0});
    let mut alerts: Vec<Alert> = Vec::new();
    for a in s.app.alerts.all() {
        if status.is_some_and(|st| a.status != st) {
            continue;
        }
        counts[a.severity.to_string()] =
            json!(counts[a.severity.to_string()].as_u64().unwrap_or(0) + 1);
        if p.severity.is_none_or(|sev| a.severity == sev) {
            alerts.push(a);
        }
    }
    // Most urgent first; within a severity the one waiting longest first.
    alerts.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.created_at.cmp(&b.created_at))
    });
    let total = alerts.len();
    alerts.truncate(limit);
    let now = time::OffsetDateTime::now_utc();
    let rows: Vec<Value> = alerts
        .iter()
        .map(|a| {
            let label = labels.iter().find(|l| l.alert_id == a.id);
            json!({
                "id": a.id, "title": a.title, "severity": a.severity, "status": a.status,
                "created_at": a.created_at, "updated_at": a.updated_at, "age_secs": age_secs(a, now),
                "actors": a.actors, "systems": a.systems, "signals": a.signals,
                "detectors": a.detectors.iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
                "label": label.map(|l| json!({"outcome": l.outcome, "severity": l.severity, "by": l.by, "at": l.at})),
                "pending_actions": actions.iter().filter(|x| x.alert_id == a.id && x.state == ActionState::Pending).count(),
            })
        })
        .collect();
    Ok(Json(
        json!({ "total": total, "by_severity": counts, "alerts": rows }),
    ))
}

async fn alert_packet(
    _: Require<scope::Read>,
    State(s): State<ReviewState>,
    Path(id): Path<String>,
) -> ApiResult<Json<packet::Packet>> {
    let Some(alert) = s.app.alerts.get(&id)? else {
        return Err(ApiError::not_found(format!("no alert with id `{id}`")));
    };
    let trajectory = match s.app.trajectories.get(&alert.trajectory_id)? {
        Some(t) => Some(t),
        None => s.review.trajectory(&alert.trajectory_id),
    };
    let mut missing = Vec::new();
    for eid in &alert.event_ids {
        if trajectory.as_ref().is_some_and(|t| t.contains(eid)) {
            continue;
        }
        if let Some(e) = s.app.store.get(eid)? {
            missing.push(e);
        }
    }
    let actions = s
        .app
        .routing
        .responder
        .list()?
        .into_iter()
        .filter(|a| a.alert_id == id)
        .collect();
    let decisions = s.app.routing.stage.decisions(&id)?;
    let audit = SummaryAudit::open(&s.app.store)?.for_alert(&id)?;
    let labels = s.review.labels.for_alert(&id)?;
    Ok(Json(packet::build(packet::Inputs {
        alert,
        trajectory,
        missing,
        config: &s.review.config,
        actions,
        decisions,
        audit,
        labels,
    })))
}

async fn alert_labels(
    _: Require<scope::Read>,
    State(s): State<ReviewState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    if s.app.alerts.get(&id)?.is_none() {
        return Err(ApiError::not_found(format!("no alert with id `{id}`")));
    }
    Ok(Json(
        json!({ "alert_id": id, "labels": s.review.labels.for_alert(&id)? }),
    ))
}

async fn add_label(
    Require { who, .. }: Require<scope::Review>,
    State(s): State<ReviewState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    // A JSON body only: a cross-site form cannot send one without a preflight.
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !json_body {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the label as JSON (Content-Type: application/json)",
        ));
    }
    let req: LabelRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "body: expected {{\"outcome\": \"helpful|false_positive|missed_severity\", \"severity\": 1-3, \"comment\": \"…\", \"by\": \"…\"}}: {e}"
        ))
    })?;
    let by = req.by.trim().to_string();
    let by = if !by.is_empty() {
        by
    } else if s.app.auth.is_open() {
        return Err(ApiError::bad_request(
            "`by`: name the person who labels (the API has no tokens to tell who you are)",
        )
        .with("field", "by"));
    } else {
        who.name.clone()
    };
    match s.review.labels.add(&id, &req, &by, &who.name) {
        Ok(label) => {
            // The 201 only once the label is on disk, through the writer's barrier (the one
            // flusher), as an ingest answer: a crash right after it must not lose the label.
            s.app.ingest.writer().barrier().await?;
            Ok((StatusCode::CREATED, Json(label)))
        }
        Err(LabelError::Invalid { field, reason }) => {
            Err(ApiError::bad_request(format!("`{field}`: {reason}")).with("field", field))
        }
        Err(e @ LabelError::NoAlert(_)) => Err(ApiError::not_found(e.to_string())),
        Err(LabelError::Store(e)) => Err(e.into()),
    }
}

async fn all_labels(
    _: Require<scope::Read>,
    State(s): State<ReviewState>,
) -> ApiResult<Json<Value>> {
    let labels = s.review.labels.latest()?;
    Ok(Json(json!({ "count": labels.len(), "labels": labels })))
}

#[derive(Debug, Deserialize)]
struct StatsParams {
    days: Option<u32>,
}

/// What the loaded detectors watch, for coverage (None: no runtime in this process).
pub(crate) fn watches(s: &ReviewState) -> Option<Vec<Watch>> {
    let runtime = s.runtime.as_ref()?;
    Some(
        runtime
            .status()
            .into_iter()
            .map(|d| Watch {
                active: d.state == "active",
                sources: d.sources,
                actions: d.actions,
            })
            .collect(),
    )
}

fn coverage_report(s: &ReviewState) -> plumbline_review::coverage::CoverageReport {
    let detectors = watches(s);
    s.review.coverage.report(
        time::OffsetDateTime::now_utc().unix_timestamp(),
        detectors.as_deref(),
        &s.app.trajectories.stats.event_to_alert,
    )
}

async fn stats(
    _: Require<scope::Read>,
    State(s): State<ReviewState>,
    Query(p): Query<StatsParams>,
) -> ApiResult<Json<Value>> {
    let days = p.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(ApiError::bad_request("`days`: must be 1 to 366").with("field", "days"));
    }
    let latest = s.review.labels.latest()?;
    let today = time::OffsetDateTime::now_utc().date();
    let report = precision::report(&latest, today, days);
    let counts = s.review.labels.counts();
    let mut by_severity = json!({"1": 0, "2": 0, "3": 0});
    let mut by_status = json!({"open": 0, "reviewed": 0, "resolved": 0, "suppressed": 0});
    let mut total = 0u64;
    for a in s.app.alerts.all() {
        total += 1;
        let k = a.severity.to_string();
        by_severity[&k] = json!(by_severity[&k].as_u64().unwrap_or(0) + 1);
        let st = serde_json::to_value(a.status)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        by_status[&st] = json!(by_status[&st].as_u64().unwrap_or(0) + 1);
    }
    Ok(Json(json!({
        "precision": report,
        "labels": {
            "helpful": counts[0].1, "false_positive": counts[1].1, "missed_severity": counts[2].1,
            "alerts_labelled": latest.len(),
        },
        "alerts": {"total": total, "by_severity": by_severity, "by_status": by_status},
        "coverage": coverage_report(&s),
    })))
}

async fn coverage(_: Require<scope::Read>, State(s): State<ReviewState>) -> ApiResult<Json<Value>> {
    let mut v = json!(coverage_report(&s));
    let trajectories = s.app.trajectories.clone();
    let lag = tokio::task::spawn_blocking(move || trajectories.lag())
        .await
        .map_err(ApiError::internal)?;
    // How far behind evaluation is, and where ingest starts refusing (coverage is only
    // as good as an evaluation that keeps up).
    v["lag"] = json!({
        "ms": lag.as_millis() as u64,
        "max_ms": s.app.ingest.max_lag().map(|d| d.as_millis() as u64),
        "backlog": s.app.trajectories.backlog(),
    });
    Ok(Json(v))
}
