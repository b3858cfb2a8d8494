//! Unbounded recursion on the wasm call stack: the host's stack limit must trap it.
// Natively (cargo test builds examples) nothing calls the detector; only the WASM export does.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
use plumbline_sdk::*;

#[derive(Default)]
struct StackOverflow;

/// Mixing `*` and `^` keeps LLVM from turning the recursion into a loop; no locals live
/// in linear memory, so the frames are on the wasm stack (not Rust's shadow stack).
#[inline(never)]
fn descend(depth: u64) -> u64 {
    if depth % 1_000_000_007 == 7 {
        return depth;
    }
    descend(depth + 1).wrapping_mul(3) ^ depth
}

impl Detector for StackOverflow {
    fn info() -> Info {
        hostile_detectors::info("hostile.stack", "recurses without bound")
    }

    fn analyze(&self, t: &Trajectory, _cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let n = descend(t.events.len() as u64 + 8);
        Err(AnalyzeError::new(format!("unreachable: {n}")))
    }
}

register_detector!(StackOverflow);
