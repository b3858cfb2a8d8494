//! The `plumbline` binary's library half: configuration assembly, start-up wiring, the
//! CLI and the demo. Every stage is its own crate (docs/architecture.md); this crate only
//! joins them.

pub mod bench;
pub mod cli;
pub mod config;
pub mod demo;
pub mod eval;
pub mod retention;
pub mod serve;
pub mod throwaway;
