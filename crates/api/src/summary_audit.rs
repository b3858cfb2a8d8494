//! `GET /v1/alerts/{id}/summary-audit`: what the model was sent and answered for an alert
//! (exact request bodies after redaction, responses, their sha256, the trajectory hash),
//! or why the deterministic summary was used.

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
    Router::new().route("/v1/alerts/{id}/summary-audit", get(audit))
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
