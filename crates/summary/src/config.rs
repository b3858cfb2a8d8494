//! `[llm]`: the defaults and their documentation are `crates/summary/config.toml`, part of
//! the embedded configuration.

use serde::Deserialize;

use crate::LlmConfig;

/// This crate's part of the embedded default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("../config.toml");

impl Default for LlmConfig {
    fn default() -> Self {
        #[derive(Deserialize)]
        struct Defaults {
            llm: LlmConfig,
        }
        toml::from_str::<Defaults>(DEFAULT_CONFIG)
            .expect("embedded [llm] defaults are valid")
            .llm
    }
}
