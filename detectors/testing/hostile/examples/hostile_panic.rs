//! Panics: in WASM a panic aborts, which the host sees as a trap.
// Natively (cargo test builds examples) nothing calls the detector; only the WASM export does.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
use plumbline_sdk::*;

#[derive(Default)]
struct Panics;

impl Detector for Panics {
    fn info() -> Info {
        hostile_detectors::info("hostile.panic", "panics on every call")
    }

    fn analyze(&self, t: &Trajectory, _cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        panic!(
            "hostile detector panics on purpose ({} events)",
            t.events.len()
        )
    }
}

register_detector!(Panics);
