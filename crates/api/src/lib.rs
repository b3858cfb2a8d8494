//! The HTTP API: every endpoint of the service, ingest included, assembled into one router.
//! Handlers are thin: they state their scope (`Require<scope::Read>`, …), parse parameters, call a
//! stage and shape its answer. Stages know nothing of HTTP.

pub mod alerts;
pub mod audit_log;
pub mod auth;
pub mod cluster;
pub mod detectors;
pub mod error;
pub mod events;
pub mod guard;
pub mod hec;
pub mod ingest;
pub mod limits;
pub mod otlp;
pub mod packs;
pub mod params;
pub mod review;
pub mod routing;
pub mod summary_audit;
pub mod trajectories;
pub mod vault_socket;

use std::sync::Arc;

use axum::extract::FromRef;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use plumbline_alert::AlertBook;
use plumbline_ingest::{Adapter, Ingest};
use plumbline_store::Store;
use plumbline_trajectory::TrajectoryStage;

pub use auth::{Auth, AuthConfig, Require, Scope};

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Largest accepted request body (`server.body_limit_bytes`).
    pub body_limit: usize,
    pub store: Store,
    pub ingest: Ingest,
    pub auth: Auth,
    /// Every source adapter, configured; each is served at `/v1/ingest/<source>`.
    pub adapters: Arc<[Arc<dyn Adapter>]>,
    /// What audit events name, fetched from the sources' own APIs before mapping
    /// (`[n8n] api_url`, `[make] api_url`; the default enriches nothing).
    pub enrich: plumbline_enrich::Enrichment,
    pub trajectories: Arc<TrajectoryStage>,
    /// Judges coding agents' pending calls for their hooks' answers (`None`: allow all).
    pub verdicts: Option<Arc<plumbline_verdict::Gate>>,
    /// Answers detectors' questions to the language model (`None`: no model).
    pub judge: Option<plumbline_summary::judge::LlmJudge>,
    pub alerts: AlertBook,
    pub routing: Arc<plumbline_delivery::Routing>,
    /// Admin actions, append-only (`GET /v1/audit`).
    pub audit: plumbline_store::audit::AuditLog,
}

impl FromRef<AppState> for Auth {
    fn from_ref(state: &AppState) -> Auth {
        state.auth.clone()
    }
}

/// The service's own endpoints. The detector, pack and review routers carry their own
/// state (the runtime, the packs, the review read model) and are merged beside this one.
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
        .merge(audit_log::routes())
        .merge(ingest::routes(&state.adapters))
        .merge(otlp::routes(&state.adapters))
        .merge(hec::routes(&state.adapters))
        .fallback(|| async { error::ApiError::not_found("no such endpoint") })
        .with_state(state)
}
