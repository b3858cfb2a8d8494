//! The admin audit log over HTTP: `GET /v1/audit[?limit=100&before=SEQ]` (admin), newest
//! first; and [`record`], which every admin handler calls once its action has run (or been
//! refused), so the log holds attempts as well as changes.

use std::fmt::Display;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiResult;
use super::AppState;
use crate::auth::{scope, Require};
use plumbline_store::audit::{AuditLog, AuditRecord};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/audit", get(list))
}

#[derive(Deserialize)]
struct ListParams {
    limit: Option<usize>,
    before: Option<u64>,
}

async fn list(
    _: Require<scope::Admin>,
    State(s): State<AppState>,
    Query(q): Query<ListParams>,
) -> ApiResult<Json<Value>> {
    let entries = s
        .audit
        .list(q.before, q.limit.unwrap_or(100).clamp(1, 1000))?;
    Ok(Json(json!({ "count": entries.len(), "entries": entries })))
}

/// Appends `who` did `action` on `target` with `result`'s outcome, durably, before the
/// handler answers. An action that ran but could not be logged answers 500: the caller
/// must not take a change as recorded when it is not.
pub async fn record<T, E: Display>(
    log: &AuditLog,
    who: &str,
    action: &str,
    target: &str,
    result: &Result<T, E>,
    detail: Value,
) -> ApiResult<()> {
    log.append(AuditRecord {
        who,
        action,
        target,
        outcome: result.as_ref().map(|_| ()).map_err(|e| e.to_string()),
        detail,
    })
    .await?;
    Ok(())
}
