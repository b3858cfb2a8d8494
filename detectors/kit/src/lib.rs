//! # plumbline-detector-kit
//!
//! The domain half of what the built-in detectors share, re-exported by the SDK as
//! `plumbline_sdk::kit` (detectors depend on `plumbline-sdk` only):
//!
//! - [`policy`]: planned work — the team's service accounts, declared change windows,
//!   working hours and ignored environments ([`Policy`], a typed config:
//!   `cx.settings::<Policy>()`);
//! - [`keys`]: those config keys, declared with their defaults, so every detector is tuned
//!   with the same names;
//! - [`git`]: a push and the events the adapters derive from it folded into one [`git::Push`],
//!   matched to its merge;
//! - [`text`]: phrase patterns over free text, without a regex engine;
//! - [`agent`]: AI coding agents' sessions — tool calls folded, secret paths, shell egress,
//!   download-and-execute, file changes, pushes (the `coding-agent` pack's shared rules).
//!
//! The general helpers (titles, attributes, destination classes, typed config, globs) are
//! the SDK's. The kit depends on the contract crate, not on the SDK, so the SDK can
//! re-export it. Everything here is pure and runs the same natively and inside WASM.

pub mod agent;
pub mod git;
pub mod keys;
pub mod policy;
pub mod text;

pub use policy::{ChangeWindows, Policy, WorkHours};
