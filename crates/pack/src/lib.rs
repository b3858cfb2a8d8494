//! The detector pack format, apart from the runtime that runs packs (docs/packs.md):
//!
//! - `manifest`: `pack.toml` (name, version, WIT version, detectors pinned by sha256, files).
//! - `archive`: a pack as one `.plpack` file, and as a directory.
//!
//! Both read bytes from outside (an upload, a watched directory), so they are fuzzed
//! (`fuzz/fuzz_targets/pack.rs`); this crate has no wasmtime, which keeps that build small.
//! `plumbline_runtime::pack` re-exports it: the runtime adds signing, trust, loading and
//! the registry on top.

pub mod archive;
pub mod manifest;

use std::path::PathBuf;

pub use archive::PackFiles;
pub use manifest::Manifest;

/// Why a pack was refused (or a pack command failed). The message is the reason shown in
/// `GET /v1/packs` and by the CLI.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("bad archive: {0}")]
    Archive(String),
    #[error("bad manifest: {0}")]
    Manifest(String),
    #[error("bad signature: {0}")]
    Signature(String),
    #[error("untrusted: {0}")]
    Untrusted(String),
    #[error("key: {0}")]
    Key(String),
    #[error("targets WIT plumbline:detector@{found}, this host supports {supported}")]
    Wit { found: String, supported: String },
    #[error("tampered: {0}")]
    Tampered(String),
    #[error("detector `{detector}` does not load: {reason}")]
    Load { detector: String, reason: String },
    #[error("fixtures fail for `{detector}`: {reason}")]
    Fixtures { detector: String, reason: String },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
}
