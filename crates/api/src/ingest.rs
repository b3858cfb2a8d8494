//! `POST /v1/ingest/<endpoint>` for every source adapter, and `GET` where the adapter has a
//! handshake (Okta's event-hook verification): one generic handler doing
//! credential → body limit → enrichment → mapping → durable submit → answer, and the
//! translation of ingest errors into API errors.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde_json::Value;
use time::OffsetDateTime;

use super::error::{ApiError, ApiResult};
use super::events::read_body;
use super::AppState;
use crate::auth::Scope;
use plumbline_ingest::adapter::{Adapter, Delivery, IngestError, Memory, SourceAuth};
use plumbline_ingest::agents::Verdict;
use plumbline_ingest::memory::SledMemory;
use plumbline_ingest::{IngestReport, Mapped};

/// `/v1/ingest/<endpoint>` for each adapter (the source's name, or `github-audit`); the
/// OTLP receivers are served by [`crate::otlp`].
pub fn routes(adapters: &[Arc<dyn Adapter>]) -> Router<AppState> {
    let mut router = Router::new();
    for adapter in adapters.iter().filter(|a| a.otlp().is_none()) {
        let path = format!("/v1/ingest/{}", adapter.endpoint());
        let a = adapter.clone();
        let mut route: MethodRouter<AppState> = post(
            move |State(state): State<AppState>, headers: HeaderMap, body: Body| {
                receive(a, state, headers, body)
            },
        );
        if adapter.has_handshake() {
            let a = adapter.clone();
            route = route.merge(get(
                move |State(state): State<AppState>, headers: HeaderMap| {
                    handshake(a, state, headers)
                },
            ));
        }
        router = router.route(&path, route);
    }
    router
}

/// One delivery to a source endpoint.
async fn receive(
    adapter: Arc<dyn Adapter>,
    state: AppState,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let (bytes, verified) = if adapter.verifies_body() {
        let bytes = read_body(&state, &headers, body).await?;
        let verified = authorize(&state, &headers, adapter.verify(&headers, &bytes))?;
        (bytes, verified)
    } else {
        let verified = authorize(&state, &headers, adapter.verify(&headers, &[]))?;
        (read_body(&state, &headers, body).await?, verified)
    };
    // What the events name but do not carry, from the source's own API when configured;
    // a failed look-up is noted on the event, never a refusal.
    let bytes = match state.enrich.enrich(adapter.source(), &bytes).await {
        Some(enriched) => enriched.into(),
        None => bytes,
    };
    let memory = SledMemory::open(&state.store)?;
    let delivery = Delivery {
        headers: &headers,
        body: &bytes,
        received: OffsetDateTime::now_utc(),
    };
    let mut mapped = adapter.map(&delivery, &memory).map_err(ApiError::from)?;
    mapped.stamp(verified);
    // A coding agent's hook: the answer is in the agent's format, deciding the pending call.
    let hook = adapter.hook_reply(&delivery, &mapped);
    let pending = hook
        .as_ref()
        .and_then(|h| h.pending)
        .and_then(|i| mapped.events.get(i).cloned());
    let report = submit(&state, mapped, &memory).await?;
    match hook {
        Some(reply) => {
            let verdict = match &pending {
                Some(call) => verdict(&state, call).await,
                None => Verdict::Allow,
            };
            Ok((adapter.success(), Json(reply.answer(&verdict))).into_response())
        }
        None => Ok((adapter.success(), Json(report)).into_response()),
    }
}

/// The verdict on a coding agent's pending call (stored by now, so it is part of its
/// session): judged by the gate against the session, within its deadline.
async fn verdict(state: &AppState, call: &plumbline_event::Event) -> Verdict {
    use plumbline_verdict::Permission;
    let Some(gate) = &state.verdicts else {
        return Verdict::Allow;
    };
    let d = gate.decide(call).await;
    match d.permission {
        Permission::Allow => Verdict::Allow,
        Permission::Ask => Verdict::Ask(d.reason),
        Permission::Deny => Verdict::Deny(d.reason),
    }
}

/// A `GET` handshake on a source endpoint.
async fn handshake(
    adapter: Arc<dyn Adapter>,
    state: AppState,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&state, &headers, adapter.verify(&headers, &[]))?;
    Ok(Json(adapter.handshake(&headers)?))
}

/// Stores mapped events durably, then the memory updates that go with them.
pub async fn submit(
    state: &AppState,
    mapped: Mapped,
    memory: &dyn Memory,
) -> ApiResult<IngestReport> {
    state
        .ingest
        .submit_mapped(mapped, memory)
        .await
        .map_err(ApiError::from)
}

/// Lets a request through when the source's secret verifies, or (secret not configured)
/// when the API-token rules allow it. A request signed wrongly may still carry an API
/// token with the `ingest` scope: such a token can post any event to `/v1/events`
/// anyway, and it is how `plumbline ingest --source` back-fills without the source secret.
/// `Ok(true)` when the source's own credential verified: only then do the events count as
/// the source's word (`Event::verified_by_source`).
pub fn authorize(state: &AppState, headers: &HeaderMap, source: SourceAuth) -> ApiResult<bool> {
    match source {
        SourceAuth::Valid => Ok(true),
        SourceAuth::NotConfigured => state.auth.check(headers, Scope::Ingest).map(|_| false),
        SourceAuth::Invalid(reason) => {
            if !state.auth.is_open() && state.auth.check(headers, Scope::Ingest).is_ok() {
                return Ok(false);
            }
            Err(ApiError::unauthorized(reason))
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        let status = e.status_hint();
        let message = e.to_string();
        match e {
            IngestError::NotJson { line, column, .. } => ApiError::new(status, message)
                .with("line", line)
                .with("column", column),
            IngestError::Malformed { field, reason } => ApiError::new(status, message)
                .with("field", field)
                .with("reason", reason),
            IngestError::NotFound(_) | IngestError::UnsupportedMediaType(_) => {
                ApiError::new(status, message)
            }
        }
    }
}
