//! An incremental (`plumbline:detector@0.2.0`) component for the runtime's tests: each
//! call answers one finding whose title says what the call was given (the new events,
//! whether it was a replay, how many events its state already held), so tests see what
//! the host handed over. New events with these actions make it misbehave on purpose:
//! `probe.history` reads the trajectory through `history` and cites its first event;
//! `probe.unseen` cites an event it was never given; `probe.ask` asks the host's model
//! (which a test makes slow); `probe.panic` panics; `probe.spin`
//! never returns; `probe.bloat` grows its state past any bound.
// Natively (cargo test builds examples) nothing calls the detector; only the WASM export does.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
use plumbline_sdk::*;

#[derive(Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Memory {
    /// The trajectory this state belongs to: a call on another one is an error.
    trajectory: String,
    given: Vec<String>,
    calls: u32,
    bloat: String,
}

#[derive(Default)]
struct Probe;

impl IncrementalDetector for Probe {
    type State = Memory;

    fn info() -> Info {
        Info::new(
            "testing.incremental-probe",
            "0.0.1",
            "Reports what each incremental call was given",
        )
        .actions(&["probe.*"])
        .signals(&["probe.call"])
    }

    fn observe(
        &self,
        m: &mut Memory,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let window = cx.window().expect("an incremental call has a window");
        if m.calls > 0 && m.trajectory != window.id {
            return Err(AnalyzeError::new(format!(
                "state of trajectory {} handed to a call on {}",
                m.trajectory, window.id
            )));
        }
        m.trajectory = window.id.clone();
        let kept = m.given.len();
        let mut evidence: Vec<String> = new_events.iter().map(|e| e.id.clone()).collect();
        for e in new_events {
            match e.action.as_str() {
                "probe.panic" => panic!("incremental probe panics on purpose"),
                "probe.spin" => {
                    let mut n = kept as u64;
                    loop {
                        n = std::hint::black_box(
                            n.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                }
                "probe.history" => {
                    let all = cx.history_all();
                    evidence.push(all[0].id.clone());
                }
                "probe.unseen" => evidence.push("never-given".into()),
                // Blocks in the host (the test's judge sleeps): wall time, no CPU.
                "probe.ask" => {
                    let _ = cx.judge(&Question {
                        instructions: "anything?".into(),
                        events: vec![e.id.clone()],
                    });
                }
                "probe.bloat" => m.bloat = "x".repeat(100_000),
                _ => {}
            }
        }
        if evidence.is_empty() {
            evidence.extend(m.given.last().cloned());
        }
        m.calls += 1;
        m.given.extend(new_events.iter().map(|e| e.id.clone()));
        let new: Vec<&str> = new_events.iter().map(|e| e.id.as_str()).collect();
        let title = format!(
            "call {} new [{}] replay {} kept {kept}",
            m.calls,
            new.join(","),
            window.replay
        );
        Ok(vec![Finding {
            evidence,
            ..Finding::new("probe.call", Severity::Informational, title)
        }])
    }
}

register_incremental_detector!(Probe);
