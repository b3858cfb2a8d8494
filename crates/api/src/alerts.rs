//! `GET /v1/alerts?since=&severity=&status=` and `GET /v1/alerts/{id}`.

use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::params::parse_time;
use super::AppState;
use crate::auth::{scope, Require};
use plumbline_alert::{Alert, AlertStatus};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/alerts", get(list))
        .route("/v1/alerts/{id}", get(one))
}

#[derive(Debug, Deserialize)]
struct ListParams {
    since: Option<String>,
    severity: Option<u8>,
    status: Option<String>,
    limit: Option<usize>,
}

async fn list(
    _: Require<scope::Read>,
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> ApiResult<impl IntoResponse> {
    let since = p
        .since
        .as_deref()
        .map(|s| parse_time("since", s))
        .transpose()?;
    if let Some(s) = p.severity {
        if !(1..=3).contains(&s) {
            return Err(
                ApiError::bad_request("`severity`: must be 1, 2 or 3").with("field", "severity")
            );
        }
    }
    let status = match p.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(AlertStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "`status`: unknown status `{s}` (open, reviewed, resolved, suppressed)"
            ))
            .with("field", "status")
        })?),
    };
    let limit = p.limit.unwrap_or(100).clamp(1, 1000);
    let mut alerts: Vec<Alert> = state
        .alerts
        .all()
        .filter(|a| p.severity.is_none_or(|s| a.severity == s))
        .filter(|a| status.is_none_or(|s| a.status == s))
        .filter(|a| {
            since.is_none_or(|s| {
                time::OffsetDateTime::parse(
                    &a.updated_at,
                    &time::format_description::well_known::Rfc3339,
                )
                .map(|t| t.unix_timestamp_nanos() as i64 >= s)
                .unwrap_or(true)
            })
        })
        .collect();
    // Most urgent first, then newest.
    alerts.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.updated_at.cmp(&a.updated_at))
    });
    alerts.truncate(limit);
    Ok(Json(json!({ "alerts": alerts })))
}

async fn one(
    _: Require<scope::Read>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    match state.alerts.get(&id)? {
        Some(a) => Ok(Json(a)),
        None => Err(ApiError::not_found(format!("no alert with id `{id}`"))),
    }
}
