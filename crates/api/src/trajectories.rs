//! `GET /v1/trajectories` and `GET /v1/trajectories/{id}`.

use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::params::parse_time;
use super::AppState;
use crate::auth::{scope, Require};
use plumbline_event::{format_time, time_from_nanos};
use plumbline_trajectory::persist::TrajectoryRecord;
use plumbline_trajectory::{Trajectory, TrajectoryKind};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/trajectories", get(list))
        .route("/v1/trajectories/{id}", get(one))
}

#[derive(Debug, Deserialize)]
struct ListParams {
    /// Trajectories that involve this actor: theirs, and those of systems they acted in.
    actor: Option<String>,
    /// Trajectories that involve this system: its own, and those of actors who touched it.
    system: Option<String>,
    /// `actor`, `system`, `actor-drift` or `system-drift`.
    kind: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

fn header(r: &TrajectoryRecord) -> Value {
    json!({
        "id": r.id, "kind": r.kind, "key": r.key,
        "start": format_time(time_from_nanos(r.start)), "end": format_time(time_from_nanos(r.end)),
        "closes_at": format_time(time_from_nanos(r.closes_at)),
        "open": !r.closed, "event_count": r.event_count, "dropped": r.dropped, "hash": r.hash,
        "actors": r.actors, "systems": r.systems,
    })
}

pub fn full(t: &Trajectory) -> Value {
    json!({
        "id": t.id, "kind": t.kind, "key": t.key,
        "start": format_time(time_from_nanos(t.start)), "end": format_time(time_from_nanos(t.end)),
        "closes_at": format_time(time_from_nanos(t.closes_at)),
        "event_count": t.events.len(), "dropped": t.dropped, "hash": t.hash,
        "events": t.events,
    })
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
    let kind = p
        .kind
        .as_deref()
        .map(|k| {
            serde_json::from_value::<TrajectoryKind>(Value::String(k.to_string())).map_err(|_| {
                ApiError::bad_request(format!(
                    "`kind` must be actor, system, actor-drift or system-drift, not `{k}`"
                ))
            })
        })
        .transpose()?;
    let limit = p.limit.unwrap_or(100).clamp(1, 1000);
    let stage = state.trajectories.clone();
    let items: Vec<Value> = tokio::task::spawn_blocking(move || {
        stage
            .list()
            .into_iter()
            .filter(|r| kind.is_none_or(|k| r.kind == k))
            .filter(|r| p.actor.as_ref().is_none_or(|a| r.involves_actor(a)))
            .filter(|r| p.system.as_ref().is_none_or(|s| r.involves_system(s)))
            .filter(|r| since.is_none_or(|s| r.end >= s))
            .take(limit)
            .map(|r| header(&r))
            .collect()
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(Json(json!({ "trajectories": items })))
}

async fn one(
    _: Require<scope::Read>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    match state.trajectories.get(&id)? {
        Some(t) => Ok(Json(full(&t))),
        None => Err(ApiError::not_found(format!("no trajectory with id `{id}`"))),
    }
}
