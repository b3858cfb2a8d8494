//! `[trajectory]`: windows, grant and drift views, evaluation scheduling. The defaults and
//! their documentation are `crates/trajectory/config.toml`, part of the embedded
//! configuration.

use serde::{Deserialize, Serialize};

/// This crate's part of the embedded default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("../config.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrajectoryConfig {
    pub window_minutes: u64,
    pub grant_window_hours: u64,
    pub max_events: usize,
    pub eval_delay_ms: u64,
    pub eval_workers: usize,
    pub grant_actions: Vec<String>,
    pub settle_secs: Vec<u64>,
    pub drift_window_days: u64,
    pub drift_max_events: usize,
    pub drift_actions: Vec<String>,
}

impl Default for TrajectoryConfig {
    fn default() -> Self {
        #[derive(Deserialize)]
        struct Defaults {
            trajectory: TrajectoryConfig,
        }
        toml::from_str::<Defaults>(DEFAULT_CONFIG)
            .expect("embedded [trajectory] defaults are valid")
            .trajectory
    }
}

impl TrajectoryConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_events == 0 {
            return Err("trajectory.max_events must be at least 1".into());
        }
        if self.window_minutes == 0 {
            return Err("trajectory.window_minutes must be at least 1".into());
        }
        Ok(())
    }
}
