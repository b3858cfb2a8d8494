//! `[runtime]` and `[packs]`: the defaults and their documentation are
//! `crates/runtime/config.toml`, part of the embedded configuration.

use serde::Deserialize;

use crate::pack::PacksConfig;
use crate::RuntimeConfig;

/// This crate's part of the embedded default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("../config.toml");

#[derive(Deserialize)]
struct Defaults {
    runtime: RuntimeConfig,
    packs: PacksConfig,
}

fn defaults() -> Defaults {
    toml::from_str(DEFAULT_CONFIG).expect("embedded [runtime] and [packs] defaults are valid")
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        defaults().runtime
    }
}

impl Default for PacksConfig {
    fn default() -> Self {
        defaults().packs
    }
}
