//! `[verdict]`: thresholds, deadline and the fail mode of inline verdicts. The defaults and
//! their documentation are `crates/verdict/config.toml`, part of the embedded configuration.

use serde::{Deserialize, Serialize};

/// This crate's part of the embedded default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("../config.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictConfig {
    /// A finding of at least this severity denies the call (0: never deny).
    pub deny_at: u8,
    /// …of at least this severity asks the person (0: never ask).
    pub ask_at: u8,
    pub deadline_ms: u64,
    /// The answer when the deadline passes or too many verdicts are in flight.
    pub on_timeout: Permission,
    pub max_in_flight: usize,
}

/// What a pending call is answered, in every agent's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    Allow,
    Ask,
    Deny,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Allow => "allow",
            Permission::Ask => "ask",
            Permission::Deny => "deny",
        }
    }
}

impl Default for VerdictConfig {
    fn default() -> Self {
        #[derive(Deserialize)]
        struct Defaults {
            verdict: VerdictConfig,
        }
        toml::from_str::<Defaults>(DEFAULT_CONFIG)
            .expect("embedded [verdict] defaults are valid")
            .verdict
    }
}

impl VerdictConfig {
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [("deny_at", self.deny_at), ("ask_at", self.ask_at)] {
            if v > 3 {
                return Err(format!(
                    "verdict.{key} is {v}: a severity is 1–3 (0 turns it off)"
                ));
            }
        }
        if self.deny_at > 0 && self.ask_at > self.deny_at {
            return Err(format!(
                "verdict.ask_at ({}) is above verdict.deny_at ({}): asking would never happen",
                self.ask_at, self.deny_at
            ));
        }
        if self.deadline_ms == 0 || self.max_in_flight == 0 {
            return Err("verdict.deadline_ms and verdict.max_in_flight must be at least 1".into());
        }
        Ok(())
    }

    /// The answer findings of `severity` (the highest citing the call) call for.
    pub fn permission_for(&self, severity: u8) -> Permission {
        if self.deny_at > 0 && severity >= self.deny_at {
            Permission::Deny
        } else if self.ask_at > 0 && severity >= self.ask_at {
            Permission::Ask
        } else {
            Permission::Allow
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_deny_urgent_ask_on_review_and_fail_open() {
        let c = VerdictConfig::default();
        c.validate().unwrap();
        let answers: Vec<Permission> = (0..=3).map(|s| c.permission_for(s)).collect();
        use Permission::*;
        assert_eq!(answers, [Allow, Allow, Ask, Deny]);
        assert_eq!(c.on_timeout, Allow);
        let monitor_only = VerdictConfig {
            deny_at: 0,
            ask_at: 0,
            ..c.clone()
        };
        assert_eq!(monitor_only.permission_for(3), Allow);
    }

    #[test]
    fn contradictory_thresholds_are_refused_by_name() {
        let c = VerdictConfig {
            ask_at: 3,
            deny_at: 2,
            ..VerdictConfig::default()
        };
        assert!(c.validate().unwrap_err().contains("verdict.ask_at (3)"));
        let c = VerdictConfig {
            deny_at: 4,
            ..VerdictConfig::default()
        };
        assert!(c.validate().unwrap_err().contains("verdict.deny_at is 4"));
    }
}
