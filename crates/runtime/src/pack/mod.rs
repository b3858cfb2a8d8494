//! Detector packs: signed, self-testing bundles of detector components that teams build,
//! share and roll out without redeploying the host (docs/packs.md).
//!
//! One job per file:
//! - `manifest`: `pack.toml` (name, version, WIT version, detectors pinned by sha256, files),
//!   and `archive`: a pack as one `.plpack` file, and as a directory — both from the
//!   `plumbline-pack` crate (`crates/pack`), the format without wasmtime, re-exported here.
//! - `sign`: ed25519 keys, `pack.sig`, the trust store.
//! - `builtin`: the packs embedded in this binary (trusted by release, hashes pinned).
//! - `load`: the activation rules (trust, WIT version, pinned files, compile, own fixtures).
//! - `registry`: the installed packs on disk, their states, and the active detector set.
//! - `watch`: a watched packs directory, hot-reloaded.
//! - `replay`: a pack over stored history, without touching live alerts.

pub mod author;
pub mod builtin;
pub mod load;
pub mod registry;
pub mod replay;
pub mod sign;
pub mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use archive::PackFiles;
pub use manifest::Manifest;
pub use plumbline_pack::{archive, manifest, PackError};
pub use registry::{Origin, PackChange, PackStatus, PackWatcher, Packs};
pub use sign::{PackKey, Trust, TrustedKey};

/// How a built-in pack runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BuiltinMode {
    #[default]
    Active,
    Shadow,
    Disabled,
}

/// `[packs]`: the trust store, built-in packs and the watched directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacksConfig {
    /// Accept unsigned packs and packs signed by keys outside the trust store (development).
    pub allow_unsigned: bool,
    /// Team public keys whose signatures are trusted.
    pub trusted_keys: Vec<TrustedKey>,
    /// Load the built-in packs embedded in the binary.
    pub builtin: bool,
    /// Per built-in pack: "active" (default), "shadow" or "disabled".
    pub builtin_packs: BTreeMap<String, BuiltinMode>,
    /// Directory watched for `*.plpack` archives; empty = `<data_dir>/packs/watch`.
    pub watch_dir: PathBuf,
    /// Watch `watch_dir` and hot-reload on changes (the directory is read at start anyway).
    pub watch: bool,
}

impl PacksConfig {
    pub fn validate(&self) -> Result<(), String> {
        for k in &self.trusted_keys {
            sign::parse_public(&k.key)
                .map_err(|e| format!("packs.trusted_keys `{}`: {e}", k.name))?;
        }
        for name in self.builtin_packs.keys() {
            if !builtin::names().any(|b| b == name) {
                return Err(format!(
                    "packs.builtin_packs: no built-in pack `{name}` (there are: {})",
                    builtin::names().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        Ok(())
    }

    pub fn watch_dir_in(&self, data_dir: &Path) -> PathBuf {
        if self.watch_dir.as_os_str().is_empty() {
            data_dir.join("packs").join("watch")
        } else {
            self.watch_dir.clone()
        }
    }
}

#[cfg(test)]
mod tests;
