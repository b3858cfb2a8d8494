//! Panics: in WASM a panic aborts, which the host sees as a trap.
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
