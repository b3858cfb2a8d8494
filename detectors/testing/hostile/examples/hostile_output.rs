//! Answers with far more findings and text than any real detector would.
// Natively (cargo test builds examples) nothing calls the detector; only the WASM export does.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
use plumbline_sdk::*;

#[derive(Default)]
struct HugeOutput;

impl Detector for HugeOutput {
    fn info() -> Info {
        hostile_detectors::info("hostile.output", "returns megabytes of findings")
    }

    fn analyze(&self, t: &Trajectory, _cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let first = t.events.first().ok_or_else(|| AnalyzeError::new("empty"))?;
        Ok((0..20_000)
            .map(|i| {
                Finding::new(
                    "hostile.signal",
                    Severity::Informational,
                    format!("{i:0>150}"),
                )
                .evidence([first])
                .next_step("x".repeat(100))
            })
            .collect())
    }
}

register_detector!(HugeOutput);
