//! Every API error is JSON: `{"error": "...", ...details}` with a 4xx/5xx status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
    /// Seconds for `Retry-After` (429 and 503 when waiting helps).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: json!({ "error": message.into() }),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.body[key] = value.into();
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {err}"),
        )
    }

    pub fn unavailable(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "storage unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("storage unavailable, nothing from this request was acknowledged: {err}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body)).into_response();
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        r
    }
}

impl From<plumbline_ingest::SubmitError> for ApiError {
    fn from(e: plumbline_ingest::SubmitError) -> Self {
        use plumbline_ingest::SubmitError;
        match e {
            SubmitError::Store(e) => ApiError::from(e),
            SubmitError::Memory(e) => ApiError::unavailable(e),
            SubmitError::TooMany { max, .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).with("limit", max)
            }
            SubmitError::Busy { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).retry_after(2)
            }
            SubmitError::Lagging { lag_ms, max_ms } => {
                // Ask back after about the time the stages need to get under the bound.
                let secs = (lag_ms.saturating_sub(max_ms) / 1000).clamp(1, 30);
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).retry_after(secs)
            }
        }
    }
}

impl From<plumbline_store::StoreError> for ApiError {
    fn from(e: plumbline_store::StoreError) -> Self {
        ApiError::unavailable(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
