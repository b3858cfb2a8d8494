//! Unbounded recursion: the wasm stack limit must trap it.
use plumbline_sdk::*;

#[derive(Default)]
struct StackOverflow;

#[inline(never)]
#[allow(unconditional_recursion)] // the point of this detector
fn descend(depth: u64, pad: [u64; 32]) -> u64 {
    let pad = std::hint::black_box(pad);
    descend(depth + 1, pad) + pad[(depth % 32) as usize]
}

impl Detector for StackOverflow {
    fn info() -> Info {
        hostile_detectors::info("hostile.stack", "recurses without bound")
    }

    fn analyze(&self, t: &Trajectory, _cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let n = descend(t.events.len() as u64, [1; 32]);
        Err(AnalyzeError::new(format!("unreachable: {n}")))
    }
}

register_detector!(StackOverflow);
