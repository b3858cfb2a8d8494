//! Allocates (and touches) memory until something stops it: the host's memory cap.
// Natively (cargo test builds examples) nothing calls the detector; only the WASM export does.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
use plumbline_sdk::*;

#[derive(Default)]
struct MemoryBomb;

impl Detector for MemoryBomb {
    fn info() -> Info {
        hostile_detectors::info("hostile.memory", "allocates without bound")
    }

    fn analyze(&self, _t: &Trajectory, _cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        // Zeroed blocks come straight from memory.grow, so the cap is reached at once.
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![0; 8 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

register_detector!(MemoryBomb);
