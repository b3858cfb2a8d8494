//! `[delivery]`: the defaults and their documentation are `crates/delivery/config.toml`,
//! part of the embedded configuration.

use serde::Deserialize;

use crate::DeliveryConfig;

/// This crate's part of the embedded default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("../config.toml");

impl Default for DeliveryConfig {
    fn default() -> Self {
        #[derive(Deserialize)]
        struct Defaults {
            delivery: DeliveryConfig,
        }
        toml::from_str::<Defaults>(DEFAULT_CONFIG)
            .expect("embedded [delivery] defaults are valid")
            .delivery
    }
}
