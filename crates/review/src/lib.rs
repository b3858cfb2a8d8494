//! Review: what reviewers see and say, and what the team learns from it.
//!
//! - [`labels`]: outcome labels (helpful, false positive, missed severity) kept in sled;
//! - [`precision`]: precision per detector and per signal over time, from those labels;
//! - [`coverage`]: per-source arrivals, silent sources (an informational alert through the
//!   normal alert path), evaluations within the deadline, and high-risk coverage;
//! - [`packet`]: the review packet of one alert (narrative, timeline with cited events,
//!   links back to the sources, data-classification hints, owner and approver,
//!   remediation, response actions, labels);
//!
//! This is the read model only: the page, its JSON endpoints and `/metrics` are served by
//! the api crate.

pub mod classify;
pub mod coverage;
pub mod labels;
pub mod links;
pub mod packet;
pub mod precision;
pub mod tokens;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use plumbline_alert::AlertBook;
use plumbline_store::{CommitListener, CommittedBatch, Store, StoreError};

pub use coverage::Coverage;
pub use labels::{Label, LabelBook, Outcome};

/// This crate's part of the embedded default configuration (`crates/review/config.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../config.toml");

/// `[review]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewConfig {
    pub deadline_ms: u64,
    pub coverage_target: f64,
    pub silence_factor: f64,
    pub silence_min_minutes: u64,
    pub silence_learn_hours: u64,
    pub silence_min_events: u64,
    pub silence_check_secs: u64,
    pub github_url: String,
    pub gitlab_url: String,
    pub n8n_url: String,
    pub make_url: String,
    pub vault_url: String,
    pub okta_admin_url: String,
    pub aws_console_url: String,
    pub openai_url: String,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        #[derive(Deserialize)]
        struct Defaults {
            review: ReviewConfig,
        }
        toml::from_str::<Defaults>(DEFAULT_CONFIG)
            .expect("embedded [review] defaults are valid")
            .review
    }
}

impl ReviewConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.deadline_ms == 0 {
            return Err("review.deadline_ms must be at least 1".into());
        }
        if !(self.coverage_target > 0.0 && self.coverage_target <= 1.0) {
            return Err("review.coverage_target must be in (0, 1], e.g. 0.999".into());
        }
        if self.silence_factor.is_nan() || self.silence_factor < 1.0 {
            return Err("review.silence_factor must be at least 1.0".into());
        }
        if self.silence_learn_hours == 0 || self.silence_check_secs == 0 {
            return Err(
                "review.silence_learn_hours and review.silence_check_secs must be at least 1"
                    .into(),
            );
        }
        for (key, url) in self.link_bases() {
            if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!(
                    "review.{key} must be an http(s) URL or empty, got `{url}`"
                ));
            }
        }
        Ok(())
    }

    fn link_bases(&self) -> [(&'static str, &str); 8] {
        [
            ("github_url", &self.github_url),
            ("gitlab_url", &self.gitlab_url),
            ("n8n_url", &self.n8n_url),
            ("make_url", &self.make_url),
            ("vault_url", &self.vault_url),
            ("okta_admin_url", &self.okta_admin_url),
            ("aws_console_url", &self.aws_console_url),
            ("openai_url", &self.openai_url),
        ]
    }

    pub fn deadline(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.deadline_ms)
    }
}

/// The review stage's own state: labels and coverage. Cheap to clone.
#[derive(Clone)]
pub struct Review {
    pub config: Arc<ReviewConfig>,
    pub labels: LabelBook,
    pub coverage: Arc<Coverage>,
    pub llm_usage: Arc<tokens::LlmUsage>,
}

impl Review {
    /// Opens the trees. Call [`Review::start`] from inside the async runtime.
    pub fn open(
        store: &Store,
        config: &ReviewConfig,
        alerts: AlertBook,
    ) -> Result<Review, StoreError> {
        let config = Arc::new(config.clone());
        let llm_usage = Arc::new(tokens::LlmUsage::default());
        llm_usage.spawn(store)?;
        Ok(Review {
            labels: LabelBook::open(store, alerts.clone())?,
            coverage: Arc::new(Coverage::open(store, config.clone(), alerts)?),
            llm_usage,
            config,
        })
    }

    /// Starts the coverage bookkeeping (persisting arrivals, checking for silence).
    pub fn start(&self) {
        self.coverage.clone().spawn();
    }

    /// Wraps the commit listener of the next stage so arrivals are counted per source
    /// before the batch moves on (cheap: a few map updates under one lock).
    pub fn listener(&self, next: Arc<dyn CommitListener>) -> Arc<dyn CommitListener> {
        let coverage = self.coverage.clone();
        Arc::new(move |batch: CommittedBatch| {
            coverage.record(&batch.events);
            next.committed(batch);
        })
    }

    /// A trajectory this stage made (a silent source's), for summaries resumed at start.
    pub fn trajectory(&self, id: &str) -> Option<plumbline_trajectory::Trajectory> {
        self.coverage.trajectory(id)
    }
}
