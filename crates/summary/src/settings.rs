//! `[llm]`: the OpenAI-compatible model that writes alert summaries (docs/llm.md).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// Base URL of an OpenAI-compatible API, up to and including `/v1`
    /// (`https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`). Empty: no LLM, every
    /// summary is the deterministic one built from the findings.
    pub base_url: String,
    /// Model name as the server knows it.
    pub model: String,
    /// Name of the environment variable holding the API key (sent as a bearer token).
    /// Unset or empty: no `Authorization` header (local servers).
    pub api_key_env: String,
    /// Bound on one HTTP call, milliseconds.
    pub timeout_ms: u64,
    /// Bound on one whole summary (rate-limit waits, retries, the corrective retry),
    /// milliseconds. When it runs out the deterministic summary is used.
    pub budget_ms: u64,
    /// HTTP attempts per request when the server answers 429/5xx or times out.
    pub max_attempts: u32,
    /// Calls in flight at once.
    pub max_concurrent: usize,
    /// Calls started per minute (0: no limit).
    pub calls_per_minute: u32,
    /// Highest severity the model's risk may raise an alert to (1 = never raise). The
    /// model never lowers a severity set by a detector.
    pub max_raised_severity: u8,
    /// Most events of a trajectory sent to the model: all cited evidence first, then the
    /// most recent others.
    pub max_events: usize,
    /// Sampling temperature; negative: not sent (for models that reject the parameter).
    pub temperature: f64,
    /// Model calls per hour each detector may make through `model.judge` (0: none).
    pub judge_calls_per_hour: u32,
    /// Answers to detectors' questions kept (by trajectory hash and question).
    pub judge_cache_entries: usize,
}

impl LlmConfig {
    pub fn enabled(&self) -> bool {
        !self.base_url.trim().is_empty()
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.enabled() {
            let url = reqwest::Url::parse(self.base_url.trim())
                .map_err(|e| format!("llm.base_url `{}` is not a URL: {e}", self.base_url))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!(
                    "llm.base_url `{}` must be an http or https URL",
                    self.base_url
                ));
            }
            if self.model.trim().is_empty() {
                return Err("llm.model must be set when llm.base_url is set".into());
            }
        }
        if self.timeout_ms == 0 {
            return Err("llm.timeout_ms must be at least 1".into());
        }
        if self.budget_ms < self.timeout_ms {
            return Err(format!(
                "llm.budget_ms ({}) must be at least llm.timeout_ms ({})",
                self.budget_ms, self.timeout_ms
            ));
        }
        if self.max_attempts == 0 {
            return Err("llm.max_attempts must be at least 1".into());
        }
        if self.max_concurrent == 0 {
            return Err("llm.max_concurrent must be at least 1".into());
        }
        if !(1..=3).contains(&self.max_raised_severity) {
            return Err("llm.max_raised_severity must be 1, 2 or 3".into());
        }
        if self.max_events == 0 {
            return Err("llm.max_events must be at least 1".into());
        }
        Ok(())
    }

    /// `…/v1` + `/chat/completions`.
    pub fn completions_url(&self) -> String {
        format!(
            "{}/chat/completions",
            self.base_url.trim().trim_end_matches('/')
        )
    }
}
