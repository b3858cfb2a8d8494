//! `POST /v1/events`, `GET /v1/events`, `GET /v1/events/{id}`, `GET /v1/schema/event`.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::params::{decode_cursor, encode_cursor, parse_time};
use super::AppState;
use crate::auth::{scope, Require};
use plumbline_event::{schema::event_schema, Source};
use plumbline_ingest::body::{self, BodyForm};
use plumbline_store::EventQuery;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/events", get(list).post(post))
        .route("/v1/events/{id}", get(one))
        .route("/v1/schema/event", get(|| async { Json(event_schema()) }))
}

/// Reads a whole body up to the configured limit; beyond it, 413 naming the limit. A
/// `Content-Encoding: gzip` body is decoded, and its decoded size is held to the same
/// limit (a small bomb that inflates past it is a 413 too); other encodings are a 415.
pub async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<axum::body::Bytes> {
    let limit = state.body_limit;
    let too_large = |what: &str| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{what} is larger than the limit of {limit} bytes"),
        )
        .with("limit_bytes", limit)
    };
    let encoding = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let gzip = match encoding.as_str() {
        "" | "identity" => false,
        "gzip" | "x-gzip" => true,
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content encoding `{other}` is not accepted: send gzip or no encoding"),
            ))
        }
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large("body"));
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large("body"))?;
    if !gzip {
        return Ok(bytes);
    }
    gunzip(&bytes, limit).map_err(|e| match e {
        Gunzip::TooLarge => too_large("gzip-decoded body"),
        Gunzip::Invalid(e) => ApiError::bad_request(format!(
            "body is not valid gzip (Content-Encoding: gzip): {e}"
        )),
    })
}

enum Gunzip {
    TooLarge,
    Invalid(std::io::Error),
}

/// Decodes gzip, reading at most `limit + 1` decoded bytes.
fn gunzip(bytes: &[u8], limit: usize) -> Result<axum::body::Bytes, Gunzip> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(Gunzip::Invalid)?;
    if out.len() > limit {
        return Err(Gunzip::TooLarge);
    }
    Ok(out.into())
}

async fn post(
    _: Require<scope::Ingest>,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<impl IntoResponse> {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let form = BodyForm::from_content_type(ct).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content type `{}` is not accepted: use application/json (one event or an array) or application/x-ndjson",
                ct.unwrap_or("")
            ),
        )
    })?;
    let bytes = read_body(&state, &headers, body).await?;
    let parsed = body::parse(form, &bytes).map_err(|e| {
        ApiError::bad_request(e.to_string())
            .with("line", e.line)
            .with("column", e.column)
    })?;
    let report = state
        .ingest
        .submit(parsed.events, parsed.indexes, parsed.rejected)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(report)))
}

#[derive(Debug, Deserialize)]
struct ListParams {
    actor: Option<String>,
    system: Option<String>,
    source: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn list(
    _: Require<scope::Read>,
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> ApiResult<impl IntoResponse> {
    let source = match p.source.as_deref() {
        None | Some("") => None,
        Some(s) => Some(Source::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!("`source`: unknown source `{s}`")).with("field", "source")
        })?),
    };
    let q = EventQuery {
        actor: p.actor.filter(|s| !s.is_empty()),
        system: p.system.filter(|s| !s.is_empty()),
        source,
        since: p
            .since
            .as_deref()
            .map(|s| parse_time("since", s))
            .transpose()?,
        until: p
            .until
            .as_deref()
            .map(|s| parse_time("until", s))
            .transpose()?,
        limit: p.limit.unwrap_or(100).clamp(1, 1000),
        after: p.cursor.as_deref().map(decode_cursor).transpose()?,
    };
    let store = state.store.clone();
    let page = tokio::task::spawn_blocking(move || store.query(&q))
        .await
        .map_err(ApiError::internal)??;
    let cursor = page.next_cursor.map(|(n, id)| encode_cursor(n, &id));
    Ok(Json(
        json!({ "events": page.events, "next_cursor": cursor }),
    ))
}

async fn one(
    _: Require<scope::Read>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    match state.store.get(&id)? {
        Some(e) => Ok(Json(e)),
        None => Err(ApiError::not_found(format!("no event with id `{id}`"))),
    }
}
