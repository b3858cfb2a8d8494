//! Policy: decisions only. Given an alert and its events, the policy file says what it
//! becomes: allow-lists and break-glass adjust severity (reasons recorded on the alert),
//! routes pick destinations by severity, signals, source, system, environment and
//! detector, suppressions and quiet hours say when. Nothing here sends or stores: the
//! delivery crate turns a decision into outbox entries.
//!
//! - `model`: the policy file (format in docs/policy.md), validated naming the field; it
//!   also declares the `[destinations]` and `[actions]` that delivery builds senders from.
//! - `matcher`: the facts a rule matches on, clock times and instants.
//! - `decide`: one alert in, one [`decide::Verdict`] out.
//! - `schedule`: wall-clock zones, quiet hours, and a clock tests can move.

pub mod decide;
pub mod matcher;
pub mod model;
pub mod schedule;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

/// This crate's part of the embedded default configuration (`crates/policy/config.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../config.toml");

/// `[policy]`: which policy file governs routing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Path of the policy TOML (docs/policy.md); empty = the embedded default policy.
    pub file: std::path::PathBuf,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        #[derive(Deserialize)]
        struct Defaults {
            policy: PolicyConfig,
        }
        toml::from_str::<Defaults>(DEFAULT_CONFIG)
            .expect("embedded [policy] defaults are valid")
            .policy
    }
}
