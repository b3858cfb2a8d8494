//! The HTTP API: one router assembled from each stage's routes.

pub mod alerts;
pub mod auth;
pub mod detectors;
pub mod error;
pub mod events;
pub mod ingest;
pub mod packs;
pub mod params;
pub mod routing;
pub mod summary_audit;
pub mod trajectories;
pub mod vault_socket;

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::alert::AlertBook;
use crate::config::Config;
use crate::ingest::Ingest;
use crate::store::Store;
use crate::trajectory::TrajectoryStage;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub ingest: Ingest,
    pub auth: auth::Auth,
    pub trajectories: Arc<TrajectoryStage>,
    pub alerts: AlertBook,
    pub routing: Arc<plumbline_delivery::Routing>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") })) }),
        )
        .merge(events::routes())
        .merge(trajectories::routes())
        .merge(alerts::routes())
        .merge(routing::routes())
        .merge(summary_audit::routes())
        .merge(ingest::routes(&state.config))
        .fallback(|| async { error::ApiError::not_found("no such endpoint") })
        .with_state(state)
}
