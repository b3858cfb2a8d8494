//! Cites an event that is not in the trajectory (an invented id): a contract violation.
// Natively (cargo test builds examples) nothing calls the detector; only the WASM export does.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
use plumbline_sdk::*;

#[derive(Default)]
struct InventedEvidence;

impl Detector for InventedEvidence {
    fn info() -> Info {
        hostile_detectors::info("hostile.evidence", "cites events that do not exist")
    }

    fn analyze(&self, t: &Trajectory, _cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let mut f = Finding::new("hostile.signal", Severity::Urgent, "Invented evidence");
        f.evidence = vec![
            t.events.first().map(|e| e.id.clone()).unwrap_or_default(),
            "evt-that-never-happened".into(),
        ];
        Ok(vec![f])
    }
}

register_detector!(InventedEvidence);
