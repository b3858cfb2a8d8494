//! `POST /v1/ingest/<source>` for every source adapter, and `GET` where the adapter has a
//! handshake (Okta's event-hook verification): one generic handler doing
//! credential → body limit → mapping → durable submit → answer, the sled-backed adapter
//! memory, and the translation of ingest errors into API errors.

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
use crate::config::{Config, Scope};
use crate::event::Source;
use crate::ingest::adapter::{Adapter, Delivery, IngestError, Memory, MemoryError, SourceAuth};
use crate::ingest::{
    cloudtrail, github, gitlab, make, n8n, okta, openai, vault, IngestReport, Mapped, SubmitError,
};
use crate::store::{Store, StoreError};

/// Every source adapter, configured.
pub fn adapters(config: &Config) -> Vec<Arc<dyn Adapter>> {
    vec![
        Arc::new(github::GithubAdapter::new(config.github.clone())),
        Arc::new(gitlab::GitlabAdapter::new(config.gitlab.clone())),
        Arc::new(n8n::N8nAdapter::new(config.n8n.clone())),
        Arc::new(make::MakeAdapter::new(config.make.clone())),
        Arc::new(vault::VaultAdapter),
        Arc::new(cloudtrail::CloudtrailAdapter::new(
            config.cloudtrail.clone(),
        )),
        Arc::new(okta::OktaAdapter::new(config.okta.clone())),
        Arc::new(openai::OpenaiAdapter::new(config.openai.clone())),
    ]
}

/// `/v1/ingest/<source>` for each adapter.
pub fn routes(config: &Config) -> Router<AppState> {
    let mut router = Router::new();
    for adapter in adapters(config) {
        let path = format!("/v1/ingest/{}", adapter.source());
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
    let bytes = if adapter.verifies_body() {
        let bytes = read_body(&state, &headers, body).await?;
        authorize(&state, &headers, adapter.verify(&headers, &bytes))?;
        bytes
    } else {
        authorize(&state, &headers, adapter.verify(&headers, &[]))?;
        read_body(&state, &headers, body).await?
    };
    let memory = SledMemory::open(&state.store)?;
    let delivery = Delivery {
        headers: &headers,
        body: &bytes,
        received: OffsetDateTime::now_utc(),
    };
    let mapped = adapter.map(&delivery, &memory).map_err(ApiError::from)?;
    let report = submit(&state, mapped, &memory).await?;
    Ok((adapter.success(), Json(report)).into_response())
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
        .map_err(|e| match e {
            SubmitError::Store(e) => ApiError::from(e),
            SubmitError::Memory(e) => ApiError::unavailable(e),
        })
}

/// Lets a request through when the source's secret verifies, or (secret not configured)
/// when the API-token rules allow it. A request signed wrongly may still carry an API
/// token with the `ingest` scope: such a token can post any event to `/v1/events`
/// anyway, and it is how `plumbline ingest --source` back-fills without the source secret.
pub fn authorize(state: &AppState, headers: &HeaderMap, source: SourceAuth) -> ApiResult<()> {
    match source {
        SourceAuth::Valid => Ok(()),
        SourceAuth::NotConfigured => state.auth.check(headers, Scope::Ingest).map(|_| ()),
        SourceAuth::Invalid(reason) => {
            if !state.auth.is_open() && state.auth.check(headers, Scope::Ingest).is_ok() {
                return Ok(());
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
            IngestError::NotFound(_) => ApiError::new(status, message),
        }
    }
}

/// Adapter memory in the store's `ingest.adapter_memory` tree, keyed
/// `<source>\0<kind>\0<key>`, values JSON.
pub struct SledMemory {
    tree: sled::Tree,
}

const MEMORY_TREE: &str = "ingest.adapter_memory";

impl SledMemory {
    pub fn open(store: &Store) -> ApiResult<SledMemory> {
        let tree = store
            .db()
            .open_tree(MEMORY_TREE)
            .map_err(|e| ApiError::from(StoreError::from(e)))?;
        Ok(SledMemory { tree })
    }

    fn key(source: Source, kind: &str, key: &str) -> Vec<u8> {
        format!("{source}\u{0}{kind}\u{0}{key}").into_bytes()
    }
}

impl Memory for SledMemory {
    fn get(&self, source: Source, kind: &str, key: &str) -> Option<Value> {
        let bytes = self.tree.get(Self::key(source, kind, key)).ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    fn remember(
        &self,
        source: Source,
        kind: &str,
        key: &str,
        value: Option<&Value>,
    ) -> Result<(), MemoryError> {
        let k = Self::key(source, kind, key);
        let res = match value {
            Some(v) => self
                .tree
                .insert(k, serde_json::to_vec(v).unwrap_or_default()),
            None => self.tree.remove(k),
        };
        res.map(|_| ())
            .map_err(|e| MemoryError(StoreError::from(e).to_string()))
    }
}
