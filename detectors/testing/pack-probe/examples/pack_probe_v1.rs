//! Version 1.0.0 of the probe: findings under the signal `probe.v1`.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
use plumbline_sdk::*;

#[derive(Default)]
struct Probe;

impl Detector for Probe {
    fn info() -> Info {
        pack_probe::info("1.0.0")
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        pack_probe::analyze("probe.v1", t, cx)
    }
}

register_detector!(Probe);
