//! A detector built in two versions (`examples/pack_probe_v1.rs`, `pack_probe_v2.rs`) so the
//! pack tests can swap one for the other mid-stream and tell, from each finding, which
//! version raised it. It reads only `probe.*` actions, so other traffic never reaches it.

use plumbline_sdk::*;

/// The info both versions share; `version` is "1.0.0" or "2.0.0".
pub fn info(version: &str) -> Info {
    Info::new(
        "probe.tick",
        version,
        "One finding per probe.tick event in an actor trajectory (pack swap tests)",
    )
    .actions(&["probe.*"])
    .signals(&["probe.v1", "probe.v2"])
    .config("severity", "2", "Severity of each finding")
}

/// One finding per `probe.tick` event, in actor trajectories only, under `signal`; so an
/// event appears in exactly one finding however its system trajectory is evaluated.
pub fn analyze(signal: &str, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
    let severity = match cx.config_parsed::<u8>("severity")? {
        1 => Severity::Informational,
        3 => Severity::Urgent,
        _ => Severity::NeedsReview,
    };
    if t.kind != TrajectoryKind::Actor {
        return Ok(vec![]);
    }
    Ok(t.events
        .iter()
        .filter(|e| e.action == "probe.tick")
        .map(|e| {
            Finding::new(signal, severity, format!("probe tick {}", e.id))
                .evidence([e])
                .next_step("nothing: a test probe")
        })
        .collect())
}
