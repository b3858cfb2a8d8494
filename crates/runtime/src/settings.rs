//! The `[runtime]` configuration section: sandbox limits, quarantine, the compiled-component
//! cache, where detectors are loaded from, and per-detector overrides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Budget of one detector call (instantiate + analyze), milliseconds of its thread's CPU
    /// time, at most ten times that of wall clock (`call::CpuBudget`).
    pub deadline_ms: u64,
    /// Linear-memory cap of one detector instance, MiB.
    pub memory_mib: u64,
    /// Consecutive failures after which a detector is quarantined (skipped until reloaded).
    pub quarantine_after: u32,
    /// Compiled components, keyed by content hash and engine; empty = `<data_dir>/compiled`.
    pub cache_dir: PathBuf,
    /// Directories whose `*.wasm` files are loaded as detectors at start.
    pub detector_dirs: Vec<PathBuf>,
    /// Individual component files loaded as detectors at start.
    pub detector_paths: Vec<PathBuf>,
    /// Most findings one call may return; more is a contract violation.
    pub max_findings: usize,
    /// Most bytes of text (titles, evidence ids, next steps) one call may return.
    pub max_output_bytes: usize,
    /// Most bytes of events one call is handed: beyond it the oldest events are left out
    /// (and counted in the trajectory's `dropped`), newest first kept.
    pub max_input_bytes: usize,
    /// Detector instances alive at once across all detectors (pooling allocator slots).
    pub pool_instances: u32,
    /// Most bytes of state an incremental (0.2.0) detector may keep for one trajectory.
    pub state_max_bytes: usize,
    /// Most state kept for all incremental detectors together, MiB (least recently used
    /// dropped first; a dropped state makes the next call replay the trajectory).
    pub state_total_mib: u64,
    /// Per-detector overrides, keyed by the name the detector declares in `info()`.
    pub detectors: BTreeMap<String, DetectorOverride>,
    /// The organisation context every detector sees (`[org]`, set by the host's
    /// configuration; not part of `[runtime]`).
    #[serde(skip)]
    pub org: crate::Org,
}

/// What an operator (or a pack manifest) may change about one detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// `false` leaves the detector unloaded.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Findings are recorded but raise no alert.
    #[serde(default)]
    pub shadow: bool,
    /// Values for the config keys the detector declares (undeclared keys are refused).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

impl Default for DetectorOverride {
    fn default() -> Self {
        DetectorOverride {
            deadline_ms: None,
            memory_mib: None,
            enabled: true,
            shadow: false,
            config: BTreeMap::new(),
        }
    }
}

fn yes() -> bool {
    true
}

impl RuntimeConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.deadline_ms == 0 {
            return Err("runtime.deadline_ms must be at least 1".into());
        }
        if self.memory_mib == 0 || self.memory_mib > 4096 {
            return Err("runtime.memory_mib must be between 1 and 4096".into());
        }
        if self.quarantine_after == 0 {
            return Err("runtime.quarantine_after must be at least 1".into());
        }
        if self.pool_instances == 0 {
            return Err("runtime.pool_instances must be at least 1".into());
        }
        if self.state_max_bytes == 0 || self.state_total_mib == 0 {
            return Err(
                "runtime.state_max_bytes and runtime.state_total_mib must be at least 1".into(),
            );
        }
        for (name, o) in &self.detectors {
            if o.deadline_ms == Some(0) {
                return Err(format!(
                    "runtime.detectors.{name}.deadline_ms must be at least 1"
                ));
            }
            if o.memory_mib.is_some_and(|m| m == 0 || m > 4096) {
                return Err(format!(
                    "runtime.detectors.{name}.memory_mib must be between 1 and 4096"
                ));
            }
        }
        Ok(())
    }

    /// The cache directory, defaulting under the data directory.
    pub fn cache_dir_in(&self, data_dir: &Path) -> PathBuf {
        if self.cache_dir.as_os_str().is_empty() {
            data_dir.join("compiled")
        } else {
            self.cache_dir.clone()
        }
    }
}
