//! Packs over HTTP (docs/packs.md):
//! - `GET /v1/packs` (read): every pack version with its state (active, shadow, refused
//!   with the reason, retired), trust, quarantined detectors and per-detector counters.
//! - `POST /v1/packs[?shadow=true|false][&force=true]` (admin): upload a `.plpack` archive;
//!   it is verified, compiled and self-tested, then swapped in. 201 with its status, or 422
//!   with the reason it was refused (the active set unchanged). A name stays with the key
//!   that first signed it and versions only go up, unless `force` says otherwise.
//! - `GET /v1/packs/{name}/{version}` (read): the archive, so another host can install it.
//! - `DELETE /v1/packs/{name}`, `POST /v1/packs/{name}/promote`, `POST /v1/packs/{name}/shadow`
//!   (admin).
//!
//! Every admin change here, done or refused, is appended to the audit log (`GET /v1/audit`).
//! - `POST /v1/replay?pack=NAME&since=7d[&until=…]` (admin): a running pack over stored
//!   history; or with an archive as the body, that (verified) pack without installing it.
//! - `GET /v1/shadow-findings` (read): what shadow detectors found.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::audit_log::record;
use super::error::{ApiError, ApiResult};
use super::params::parse_time;
use super::AppState;
use crate::auth::{scope, Auth, Require};
use plumbline_runtime::pack::archive::{PackFiles, MAX_PACK_BYTES};
use plumbline_runtime::pack::load::{self, Provenance};
use plumbline_runtime::pack::manifest::{Manifest, MANIFEST};
use plumbline_runtime::pack::registry::Origin;
use plumbline_runtime::pack::{replay, PackError, PackStatus, Packs};
use plumbline_trajectory::TrajectoryConfig;

#[derive(Clone)]
struct PacksState {
    packs: Arc<Packs>,
    app: AppState,
    /// Replays cut history into windows as the live stage does.
    windows: Arc<TrajectoryConfig>,
}

impl FromRef<PacksState> for Auth {
    fn from_ref(s: &PacksState) -> Auth {
        s.app.auth.clone()
    }
}

pub fn routes<S: Clone + Send + Sync + 'static>(
    packs: Arc<Packs>,
    app: AppState,
    windows: TrajectoryConfig,
) -> Router<S> {
    Router::new()
        .route("/v1/packs", get(list).post(upload))
        .route("/v1/packs/{name}", delete(remove))
        .route("/v1/packs/{name}/{version}", get(download))
        .route("/v1/packs/{name}/promote", post(promote))
        .route("/v1/packs/{name}/shadow", post(demote))
        .route("/v1/replay", post(replay_pack))
        .route("/v1/shadow-findings", get(shadow_findings))
        .with_state(PacksState {
            packs,
            app,
            windows: Arc::new(windows),
        })
}

fn refused(e: PackError) -> ApiError {
    let status = match e {
        PackError::NotFound(_) => StatusCode::NOT_FOUND,
        PackError::Io(..) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, e.to_string())
}

async fn list(_: Require<scope::Read>, State(s): State<PacksState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "packs": s.packs.list() })))
}

async fn body_bytes(body: Body) -> ApiResult<Vec<u8>> {
    axum::body::to_bytes(body, MAX_PACK_BYTES + (1 << 20))
        .await
        .map(|b| b.to_vec())
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "a pack archive may hold at most {} MiB",
                    MAX_PACK_BYTES >> 20
                ),
            )
        })
}

#[derive(Deserialize)]
struct UploadParams {
    shadow: Option<bool>,
    /// Accept a downgrade, or hand the pack's name to the key that signed this archive.
    #[serde(default)]
    force: bool,
}

async fn upload(
    Require { who, .. }: Require<scope::Admin>,
    State(s): State<PacksState>,
    Query(q): Query<UploadParams>,
    body: Body,
) -> ApiResult<Response> {
    let bytes = body_bytes(body).await?;
    // The log names what was attempted even when the archive is refused.
    let named = PackFiles::from_archive(&bytes)
        .ok()
        .and_then(|f| Manifest::parse(f.get(MANIFEST)?).ok())
        .map(|m| (m.name, m.version));
    let packs = s.packs.clone();
    let result = tokio::task::spawn_blocking(move || match q.force {
        true => packs.install_archive_forced(bytes, q.shadow),
        false => packs.install_archive(bytes, q.shadow, Origin::Installed, true),
    })
    .await
    .map_err(ApiError::internal)?;
    let (target, detail) = match (&result, named) {
        (Ok(st), _) => (
            st.name.clone(),
            json!({"version": st.version, "state": st.state, "sha256": st.sha256, "force": q.force}),
        ),
        (Err(_), Some((name, version))) => (name, json!({"version": version, "force": q.force})),
        (Err(_), None) => ("(unreadable archive)".into(), json!({"force": q.force})),
    };
    let action = "pack.install";
    record(&s.app.audit, &who.name, action, &target, &result, detail).await?;
    let status = result.map_err(refused)?;
    tracing::info!(
        by = who.name,
        pack = status.name,
        version = status.version,
        "pack installed"
    );
    Ok((StatusCode::CREATED, Json(json!(status))).into_response())
}

async fn download(
    _: Require<scope::Read>,
    State(s): State<PacksState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    let Some(bytes) = s.packs.archive(&name, &version) else {
        return Err(ApiError::not_found(format!(
            "no archive of pack `{name}` version `{version}` on this host"
        )));
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}-{version}.plpack\""),
            ),
        ],
        (*bytes).clone(),
    )
        .into_response())
}

async fn remove(
    Require { who, .. }: Require<scope::Admin>,
    State(s): State<PacksState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let packs = s.packs.clone();
    let target = name.clone();
    let result = tokio::task::spawn_blocking(move || packs.remove(&name))
        .await
        .map_err(ApiError::internal)?;
    audited(&s, &who.name, "pack.remove", &target, result).await
}

/// Records a pack change in the audit log, then answers with the pack's status.
async fn audited(
    s: &PacksState,
    who: &str,
    action: &str,
    name: &str,
    result: Result<PackStatus, PackError>,
) -> ApiResult<Json<Value>> {
    let detail = match &result {
        Ok(st) => json!({"version": st.version, "state": st.state}),
        Err(_) => Value::Null,
    };
    record(&s.app.audit, who, action, name, &result, detail).await?;
    Ok(Json(json!(result.map_err(refused)?)))
}

async fn set_shadow(
    s: PacksState,
    who: String,
    name: String,
    shadow: bool,
) -> ApiResult<Json<Value>> {
    let packs = s.packs.clone();
    let target = name.clone();
    let result = tokio::task::spawn_blocking(move || packs.set_shadow(&name, shadow))
        .await
        .map_err(ApiError::internal)?;
    let action = if shadow {
        "pack.shadow"
    } else {
        "pack.promote"
    };
    audited(&s, &who, action, &target, result).await
}

async fn promote(
    Require { who, .. }: Require<scope::Admin>,
    State(s): State<PacksState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    set_shadow(s, who.name, name, false).await
}

async fn demote(
    Require { who, .. }: Require<scope::Admin>,
    State(s): State<PacksState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    set_shadow(s, who.name, name, true).await
}

#[derive(Deserialize)]
struct ReplayParams {
    pack: Option<String>,
    since: String,
    until: Option<String>,
}

async fn replay_pack(
    _: Require<scope::Admin>,
    State(s): State<PacksState>,
    Query(q): Query<ReplayParams>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let since = parse_time("since", &q.since)?;
    let until = q
        .until
        .as_deref()
        .map(|u| parse_time("until", u))
        .transpose()?;
    let bytes = body_bytes(body).await?;
    if bytes.is_empty() && q.pack.is_none() {
        return Err(ApiError::bad_request(
            "name a running pack (`?pack=NAME`) or send a pack archive as the body",
        )
        .with("field", "pack"));
    }
    let packs = s.packs.clone();
    let app = s.app.clone();
    let windows = s.windows.clone();
    let report = tokio::task::spawn_blocking(move || {
        let loaded = if bytes.is_empty() {
            packs.fresh_detectors(q.pack.as_deref().expect("checked"))?
        } else {
            let files = PackFiles::from_archive(&bytes)?;
            load::load(
                packs.runtime(),
                &files,
                Provenance::External,
                packs.config(),
                Some(false),
            )?
        };
        replay::replay(
            packs.runtime(),
            &app.store,
            &windows,
            (&loaded.manifest.name, &loaded.manifest.version),
            loaded.detectors,
            since,
            until,
        )
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(refused)?;
    Ok(Json(json!(report)))
}

async fn shadow_findings(
    _: Require<scope::Read>,
    State(s): State<PacksState>,
) -> ApiResult<Json<Value>> {
    let records: Vec<Value> = s.app.alerts.shadow_findings().collect();
    Ok(Json(json!({ "shadow": records })))
}
