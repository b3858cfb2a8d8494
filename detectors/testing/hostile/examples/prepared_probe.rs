//! A `prepare`d component for the runtime's tests (`plumbline:detector@0.2.0`'s
//! `prepared-detector` world). Its settings count how often they were parsed in this
//! instance's memory; each call's one finding says the count before and after it asked for
//! them. From the host's snapshot the count is already 1 before (parsed once, in
//! `prepare`); from the component as loaded it is 0 before and 1 after (parsed per call).
//! With `trap_in_prepare = "yes"` its `prepare` panics.
// Natively (cargo test builds examples) nothing calls the detector; only the WASM export does.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
use std::sync::atomic::{AtomicU32, Ordering};

use plumbline_sdk::*;

static PARSES: AtomicU32 = AtomicU32::new(0);

struct Greeting(String);

impl FromConfig for Greeting {
    fn from_config(cfg: &dyn ConfigSource) -> Result<Self, AnalyzeError> {
        PARSES.fetch_add(1, Ordering::Relaxed);
        Ok(Greeting(cfg.get("greeting").unwrap_or_default()))
    }
}

#[derive(Default)]
struct Probe;

impl IncrementalDetector for Probe {
    type State = ();

    fn info() -> Info {
        Info::new(
            "testing.prepared-probe",
            "0.0.1",
            "Reports whether its settings were parsed before the call",
        )
        .actions(&["probe.*"])
        .signals(&["probe.call"])
        .config("greeting", "hello", "Echoed in each finding's title")
        .config("trap_in_prepare", "no", "`yes`: prepare panics")
    }

    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        if cx.config("trap_in_prepare").as_deref() == Some("yes") {
            panic!("prepared probe panics in prepare on purpose");
        }
        cx.settings::<Greeting>()?;
        Ok(())
    }

    fn observe(
        &self,
        _: &mut (),
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let Some(first) = new_events.first() else {
            return Ok(Vec::new());
        };
        let before = PARSES.load(Ordering::Relaxed);
        let greeting = cx.settings::<Greeting>()?;
        let after = PARSES.load(Ordering::Relaxed);
        let title = format!(
            "parses before {before} after {after} greeting {}",
            greeting.0
        );
        Ok(vec![Finding {
            evidence: vec![first.id.clone()],
            ..Finding::new("probe.call", Severity::Informational, title)
        }])
    }
}

register_incremental_detector!(Probe);
