//! The OTLP/HTTP receiver: `POST /v1/logs` and `POST /v1/traces`, as OpenTelemetry
//! exporters send them (Claude Code's and Codex's log events, GenAI `execute_tool` spans),
//! protobuf or JSON, gzip or not (decoded within the body limit by `read_body`). The
//! credential is `[agents] otlp_token` or an `ingest` API token; the mapping is the ingest
//! crate's ([`plumbline_ingest::agents::otlp`]). Success is OTLP's: HTTP 200 with an export
//! response in the request's encoding, whose `partialSuccess` counts refused records and
//! says why; a body that cannot be read is a 400 naming what is wrong, an unknown content
//! type a 415.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use time::OffsetDateTime;

use super::error::{ApiError, ApiResult};
use super::events::read_body;
use super::ingest::{authorize, submit};
use super::AppState;
use plumbline_ingest::adapter::{Adapter, Delivery};
use plumbline_ingest::agents::otlp::{response, unsupported, Encoding};
use plumbline_ingest::memory::SledMemory;

/// How many refusals the `partialSuccess` message spells out.
const REASONS: usize = 5;

/// `/v1/logs` and `/v1/traces` for the OTLP receivers among the adapters.
pub fn routes(adapters: &[Arc<dyn Adapter>]) -> Router<AppState> {
    let mut router = Router::new();
    for adapter in adapters {
        let Some(signal) = adapter.otlp() else {
            continue;
        };
        let a = adapter.clone();
        router = router.route(
            signal.path(),
            post(
                move |State(state): State<AppState>, headers: HeaderMap, body: Body| {
                    receive(a, state, headers, body)
                },
            ),
        );
    }
    router
}

async fn receive(
    adapter: Arc<dyn Adapter>,
    state: AppState,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let signal = adapter.otlp().expect("routed only for OTLP receivers");
    let verified = authorize(&state, &headers, adapter.verify(&headers, &[]))?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let encoding =
        Encoding::from_content_type(ct).ok_or_else(|| ApiError::from(unsupported(ct)))?;
    let bytes = read_body(&state, &headers, body).await?;
    let memory = SledMemory::open(&state.store)?;
    let delivery = Delivery {
        headers: &headers,
        body: &bytes,
        received: OffsetDateTime::now_utc(),
    };
    let mut mapped = adapter.map(&delivery, &memory).map_err(ApiError::from)?;
    mapped.stamp(verified);
    let report = submit(&state, mapped, &memory).await?;
    let mut why: Vec<String> = report
        .rejected
        .iter()
        .take(REASONS)
        .map(|r| format!("record {}: `{}`: {}", r.index, r.field, r.reason))
        .collect();
    if report.rejected.len() > REASONS {
        why.push(format!("and {} more", report.rejected.len() - REASONS));
    }
    let answer = response(signal, encoding, report.rejected.len(), &why.join("; "));
    let mut resp = answer.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    Ok(resp)
}
