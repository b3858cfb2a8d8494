//! `GET /v1/detectors`: every loaded detector with its state (active, shadow, quarantined
//! and why), limits, config and counters. `POST /v1/detectors/{name}/release` (admin)
//! lifts a quarantine once the cause is fixed elsewhere (e.g. its config).

use std::sync::Arc;

use axum::extract::{FromRef, Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::audit_log::record;
use super::auth::Auth;
use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::auth::{scope, Require};
use plumbline_runtime::Runtime;
use plumbline_store::audit::AuditLog;

#[derive(Clone)]
struct DetectorsState {
    runtime: Arc<Runtime>,
    auth: Auth,
    audit: AuditLog,
}

impl FromRef<DetectorsState> for Auth {
    fn from_ref(s: &DetectorsState) -> Auth {
        s.auth.clone()
    }
}

/// A router with its own state, merged into the service's router by `serve`.
pub fn routes<S: Clone + Send + Sync + 'static>(
    runtime: Arc<Runtime>,
    app: &AppState,
) -> Router<S> {
    Router::new()
        .route("/v1/detectors", get(list))
        .route("/v1/detectors/{name}/release", post(release))
        .with_state(DetectorsState {
            runtime,
            auth: app.auth.clone(),
            audit: app.audit.clone(),
        })
}

async fn list(_: Require<scope::Read>, State(s): State<DetectorsState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "detectors": s.runtime.status() })))
}

async fn release(
    Require { who, .. }: Require<scope::Admin>,
    State(s): State<DetectorsState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    if s.runtime.detectors().get(&name).is_none() {
        return Err(ApiError::not_found(format!("no detector named `{name}`")));
    }
    let released = s.runtime.release(&name);
    let done: Result<(), &str> = Ok(());
    let detail = json!({ "released": released });
    record(
        &s.audit,
        &who.name,
        "detector.release",
        &name,
        &done,
        detail,
    )
    .await?;
    Ok(Json(json!({ "name": name, "released": released })))
}
