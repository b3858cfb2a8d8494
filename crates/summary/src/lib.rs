//! Summaries: the story a reviewer reads, written by an LLM only when detectors fire.
//!
//! The stage ([`stage::SummaryStage`]) hears about every alert with findings, and per alert,
//! in order, off the evaluation threads:
//!
//! 1. looks the trajectory hash (and findings) up in the cache ([`audit`]) — a hit costs no call;
//! 2. builds the request ([`request`]): a strict JSON schema, the trajectory redacted and
//!    fenced as untrusted data;
//! 3. calls the model ([`client`]): concurrency and rate limits, 429 Retry-After, back-off
//!    on 5xx and timeouts, refusals recorded, all within one time budget;
//! 4. validates the answer ([`validate`]): schema, and every cited event id must be in the
//!    trajectory; an invalid answer gets one retry that states the error;
//! 5. otherwise falls back to the deterministic summary ([`fallback`]);
//! 6. records the exact request and response with their hashes ([`audit`]), writes the
//!    summary into the alert, and hands the alert on to the next stage (policy).
//!
//! Detectors that ask the model themselves (`plumbline:detector@0.2.0`'s `model.judge`)
//! are served by [`judge::LlmJudge`]: the same client, redaction and fencing, with a
//! budget per detector, a cache by trajectory hash and an audit trail of its own.
//!
//! The model is a triage layer, never the judge: its risk can raise an alert's severity
//! only up to `llm.max_raised_severity`, and never lowers what a detector found.

pub mod audit;
pub mod client;
pub mod judge;
pub mod request;
pub mod settings;
pub mod stage;
pub mod summarize;
pub mod validate;

mod config;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use plumbline_alert::finding::Severity;

pub use config::DEFAULT_CONFIG;
pub use plumbline_alert::fallback;
pub use plumbline_alert::summary::{Reason, Summary};
pub use settings::LlmConfig;
pub use stage::SummaryStage;

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("summary audit store: {0}")]
    Store(#[from] plumbline_store::StoreError),
    #[error(transparent)]
    Client(#[from] client::ClientError),
}

/// How a summary was produced (recorded on the alert as a note and in the audit trail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Provenance {
    /// Written by the model for this update.
    Llm { model: String },
    /// Written by the model earlier for the same trajectory hash and findings.
    Cached { model: String, produced_at: String },
    /// Built from the findings, with the reason no model summary was used.
    Fallback { reason: String },
}

impl Provenance {
    pub fn label(&self) -> &'static str {
        match self {
            Provenance::Llm { .. } => "llm",
            Provenance::Cached { .. } => "cached",
            Provenance::Fallback { .. } => "fallback",
        }
    }

    /// The note written on the alert (one per alert; replaced on each summary).
    pub fn note(&self) -> String {
        match self {
            Provenance::Llm { model } => format!("{NOTE_PREFIX} llm (model {model})"),
            Provenance::Cached { model, produced_at } => {
                format!("{NOTE_PREFIX} cached (model {model}, written {produced_at})")
            }
            Provenance::Fallback { reason } => {
                format!("{NOTE_PREFIX} fallback ({reason})")
            }
        }
    }
}

/// Prefix of the note the summary stage keeps on an alert.
pub const NOTE_PREFIX: &str = "summary:";

pub use plumbline_alert::finding::findings_fingerprint;

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The severity an alert gets from its detectors and, when a model summary is used, the
/// model's risk: raised at most to `cap`, never below what the detectors found.
pub fn combined_severity(
    detector: Severity,
    model_risk: Option<Severity>,
    cap: Severity,
) -> Severity {
    match model_risk {
        Some(r) => detector.max(r.min(cap)),
        None => detector,
    }
}
