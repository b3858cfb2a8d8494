//! `GET /v1/detectors`: every loaded detector with its state (active, shadow, quarantined
//! and why), limits, config and counters. `POST /v1/detectors/{name}/release` (admin)
//! lifts a quarantine once the cause is fixed elsewhere (e.g. its config).

use std::sync::Arc;

use axum::extract::{FromRef, Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::auth::Auth;
use super::error::{ApiError, ApiResult};
use crate::auth::{scope, Require};
use plumbline_runtime::Runtime;

#[derive(Clone)]
struct DetectorsState {
    runtime: Arc<Runtime>,
    auth: Auth,
}

impl FromRef<DetectorsState> for Auth {
    fn from_ref(s: &DetectorsState) -> Auth {
        s.auth.clone()
    }
}

/// A router with its own state, merged into the service's router by `serve`.
pub fn routes<S: Clone + Send + Sync + 'static>(runtime: Arc<Runtime>, auth: Auth) -> Router<S> {
    Router::new()
        .route("/v1/detectors", get(list))
        .route("/v1/detectors/{name}/release", post(release))
        .with_state(DetectorsState { runtime, auth })
}

async fn list(_: Require<scope::Read>, State(s): State<DetectorsState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "detectors": s.runtime.status() })))
}

async fn release(
    _: Require<scope::Admin>,
    State(s): State<DetectorsState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    if s.runtime.detectors().get(&name).is_none() {
        return Err(ApiError::not_found(format!("no detector named `{name}`")));
    }
    let released = s.runtime.release(&name);
    Ok(Json(json!({ "name": name, "released": released })))
}
