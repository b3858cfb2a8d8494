//! Allocates (and touches) memory until something stops it: the host's memory cap.
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
