//! Deliberately broken detectors: each `examples/hostile_*.rs` is one component that
//! misbehaves in one way, so the host's sandbox is tested against real WASM. They declare
//! interest in everything, so the host always calls them.

use plumbline_sdk::Info;

/// The info every hostile detector shares, under its own name.
pub fn info(name: &str, what: &str) -> Info {
    Info::new(name, "0.0.1", what).signals(&["hostile.signal"])
}
