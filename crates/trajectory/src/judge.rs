//! The seam between detectors that ask the language model (`plumbline:detector@0.2.0`'s
//! `model` import, served by the runtime) and whoever asks it (the summary crate's LLM
//! client, under budgets, a cache and an audit trail). The runtime calls [`ModelJudge`];
//! it never talks to a model itself.

use std::sync::Arc;

use plumbline_contract::{ModelAnswer, Question};
use plumbline_event::Event;

/// One question, with what the host knows around it.
#[derive(Debug, Clone)]
pub struct JudgeRequest {
    /// The asking detector's name and version (budgets and the cache are per detector).
    pub detector: String,
    pub detector_version: String,
    /// The trajectory observed: its id (the answer re-evaluates it) and hash (the cache key).
    pub trajectory: String,
    pub trajectory_hash: String,
    pub question: Question,
    /// The question's events, in trajectory order (checked by the runtime: each one given
    /// to or read by the detector on this trajectory).
    pub events: Vec<Arc<Event>>,
}

/// Answers questions without blocking: a cached answer, or `Pending` while the model is
/// asked (the answer arriving re-evaluates the trajectory), or why there is none.
pub trait ModelJudge: Send + Sync + 'static {
    fn judge(&self, request: JudgeRequest) -> ModelAnswer;
}

/// No model configured: every question is answered the same, deterministically.
pub struct NoModel;

/// What [`NoModel`] answers.
pub const NO_MODEL: &str = "no language model is configured ([llm] endpoint)";

impl ModelJudge for NoModel {
    fn judge(&self, _: JudgeRequest) -> ModelAnswer {
        ModelAnswer::Unavailable(NO_MODEL.into())
    }
}
