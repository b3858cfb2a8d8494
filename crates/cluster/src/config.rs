//! `[cluster]`: the defaults and their documentation are `crates/cluster/config.toml`,
//! part of the embedded configuration.

use serde::{Deserialize, Serialize};

/// This crate's part of the embedded default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("../config.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub enabled: bool,
    pub url: String,
    pub node: String,
    pub partitions: u32,
    pub lease_secs: u64,
    pub duplicate_window_secs: u64,
    pub stream_max_age_hours: u64,
    pub batch: usize,
    pub replicas: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        #[derive(Deserialize)]
        struct Defaults {
            cluster: ClusterConfig,
        }
        toml::from_str::<Defaults>(DEFAULT_CONFIG)
            .expect("embedded [cluster] defaults are valid")
            .cluster
    }
}

impl ClusterConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if self.partitions == 0 || self.partitions > 4096 {
            return Err(format!(
                "cluster.partitions is {}: between 1 and 4096",
                self.partitions
            ));
        }
        if self.lease_secs < 2 {
            return Err("cluster.lease_secs must be at least 2".into());
        }
        if self.batch == 0 {
            return Err("cluster.batch must be at least 1".into());
        }
        if self.url.trim().is_empty() {
            return Err("cluster.url is empty: name the NATS server(s)".into());
        }
        if !self.node.is_empty() && !crate::partition::is_valid_name(&self.node) {
            return Err(format!(
                "cluster.node `{}`: letters, digits, `-` and `_` only (it is a key in JetStream)",
                self.node
            ));
        }
        Ok(())
    }
}
