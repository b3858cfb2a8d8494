//! Never returns: the host's epoch deadline must stop it.
// Natively (cargo test builds examples) nothing calls the detector; only the WASM export does.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
use plumbline_sdk::*;

#[derive(Default)]
struct Loop;

impl Detector for Loop {
    fn info() -> Info {
        hostile_detectors::info("hostile.loop", "spins forever")
    }

    fn analyze(&self, t: &Trajectory, _cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let mut n = t.events.len() as u64;
        loop {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

register_detector!(Loop);
