//! What the model was sent and answered: `GET /v1/alerts/{id}/summary-audit` for an
//! alert's summary (exact request bodies after redaction, responses, their sha256, the
//! trajectory hash, or why the deterministic summary was used), and
//! `GET /v1/trajectories/{id}/judgements` for detectors' questions about a trajectory
//! (`model.judge`: each request, its tries, and whether the answer was accepted).

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::auth::{scope, Require};
use plumbline_summary::audit::SummaryAudit;
use plumbline_summary::findings_fingerprint;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/alerts/{id}/summary-audit", get(audit))
        .route("/v1/trajectories/{id}/judgements", get(judgements))
}

async fn judgements(
    _: Require<scope::Read>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    // A renamed trajectory answers under its new id; its questions were asked under either.
    let current = state.trajectories.get(&id)?.map(|t| t.id);
    let audit = plumbline_summary::judge::JudgeAudit::open(&state.store)?;
    let mut records = audit.for_trajectory(&id)?;
    if let Some(c) = current.as_deref().filter(|c| *c != id) {
        records.extend(audit.for_trajectory(c)?);
    }
    if current.is_none() && records.is_empty() {
        return Err(ApiError::not_found(format!("no trajectory with id `{id}`")));
    }
    Ok(Json(json!({
        "trajectory_id": current.unwrap_or(id),
        "records": records,
    })))
}

async fn audit(
    _: Require<scope::Read>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let Some(alert) = state.alerts.get(&id)? else {
        return Err(ApiError::not_found(format!("no alert with id `{id}`")));
    };
    let audit = SummaryAudit::open(&state.store)?;
    let records = audit.for_alert(&id)?;
    let fingerprint = findings_fingerprint(&alert.findings);
    Ok(Json(json!({
        "alert_id": alert.id,
        "trajectory_id": alert.trajectory_id,
        "trajectory_hash": alert.trajectory_hash,
        "findings_fingerprint": fingerprint,
        "cached": audit.cached(&alert.trajectory_hash, &fingerprint),
        "forwarded": audit.forwarded(&id),
        "records": records,
    })))
}
