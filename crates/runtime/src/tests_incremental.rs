//! Incremental (`plumbline:detector@0.2.0`) components in the real host: version
//! detection, only new events per call, state per (detector, trajectory), the `history`
//! resource, contract checks on evidence and state, quarantine, and 0.1.0 beside them.
//! The probe (`detectors/testing/hostile/examples/incremental_probe.rs`) titles each
//! finding with what its call was given.

use std::path::Path;
use std::sync::Arc;

use super::tests::{component, repo};
use super::*;
use plumbline_trajectory::{Evaluation, Evaluator, Trajectory};

const PROBE: &str = "examples/incremental_probe.wasm";
const RUST_V1: &str = "example_export_after_grant.wasm";
const SECRET_PROBE: &str = "credential_abuse_secret_probe.wasm";

fn runtime_with(f: impl FnOnce(&mut RuntimeConfig)) -> Runtime {
    let mut c = RuntimeConfig {
        deadline_ms: 10_000,
        ..RuntimeConfig::default()
    };
    f(&mut c);
    Runtime::new(c, Some(super::tests::cache_dir())).expect("runtime")
}

/// A trajectory `id` of events `(event id, minute, action)`, ordered by time.
fn trajectory(id: &str, events: &[(&str, u32, &str)]) -> Trajectory {
    let events: Vec<serde_json::Value> = events
        .iter()
        .map(|(eid, minute, action)| {
            serde_json::json!({
                "id": eid,
                "time": format!("2025-11-24T10:{minute:02}:00Z"),
                "source": "custom",
                "actor": {"id": "ada", "type": "human"},
                "system": "acme/api",
                "action": action,
            })
        })
        .collect();
    let text = serde_json::json!({
        "trajectory": {"id": id, "kind": "actor", "key": "ada", "events": events},
        "expected": [],
    })
    .to_string();
    fixture::parse(Path::new("t.json"), &text)
        .expect("trajectory")
        .1
}

/// The probe's titles in one evaluation (empty: it was not called).
fn titles(e: &Evaluation) -> Vec<String> {
    e.findings
        .iter()
        .filter(|f| f.detector == "testing.incremental-probe")
        .map(|f| f.title.clone())
        .collect()
}

fn probe_set(rt: &Runtime, also_v1: bool) -> Arc<Detector> {
    let d = rt.load_file(&component(PROBE)).unwrap();
    let mut set = vec![d.clone()];
    if also_v1 {
        set.push(rt.load_file(&component(RUST_V1)).unwrap());
    }
    rt.swap(DetectorSet::new(set).unwrap());
    d
}

#[test]
fn a_0_2_component_loads_beside_a_0_1_one_and_gets_only_new_events() {
    let rt = runtime_with(|_| {});
    let d = probe_set(&rt, true);
    assert_eq!(d.wit_version(), "0.2.0");
    assert_eq!(d.status().wit_version, "0.2.0");
    let v1 = rt
        .detectors()
        .get("example.export-after-grant")
        .cloned()
        .unwrap();
    assert_eq!(v1.wit_version(), "0.1.0");

    // First look: a replay of the matching events only (`other.x` is not its interest).
    let t = trajectory("t1", &[("a", 0, "probe.x"), ("b", 1, "other.x")]);
    assert_eq!(
        titles(&rt.evaluate(&t)),
        ["call 1 new [a] replay true kept 0"]
    );
    // The trajectory grows: only the new event, the state carried over.
    let t = trajectory(
        "t1",
        &[
            ("a", 0, "probe.x"),
            ("b", 1, "other.x"),
            ("c", 2, "probe.y"),
        ],
    );
    assert_eq!(
        titles(&rt.evaluate(&t)),
        ["call 2 new [c] replay false kept 1"]
    );
    // Nothing new for it (a non-matching event arrived): not called.
    let t = trajectory(
        "t1",
        &[
            ("a", 0, "probe.x"),
            ("b", 1, "other.x"),
            ("c", 2, "probe.y"),
            ("d", 3, "other.y"),
        ],
    );
    assert!(titles(&rt.evaluate(&t)).is_empty());
    // A late event (earlier than one already given) is new too.
    let t = trajectory(
        "t1",
        &[
            ("a", 0, "probe.x"),
            ("late", 1, "probe.z"),
            ("c", 2, "probe.y"),
        ],
    );
    assert_eq!(
        titles(&rt.evaluate(&t)),
        ["call 3 new [late] replay false kept 2"]
    );
    // A settle re-evaluation with nothing new still reaches a detector with state.
    assert_eq!(
        titles(&rt.evaluate_settled(&t)),
        ["call 4 new [] replay false kept 3"]
    );
    let h = d.health.report();
    assert_eq!((h.calls, h.failures), (4, 0));

    // The 0.1.0 detector beside it runs as before, on the whole trajectory.
    let export = super::tests::fixture_trajectory(super::tests::EXPORT_POSITIVE);
    let e = rt.evaluate(&export);
    assert!(e
        .findings
        .iter()
        .any(|f| f.detector == "example.export-after-grant" && f.severity == 3));
}

/// A detector that wants nothing of a trajectory yet is not called, and the host remembers
/// how far it looked (the next change is not a rescan); its first call is still a replay
/// with every matching event, a late one below that mark included.
#[test]
fn before_its_first_call_only_new_events_are_looked_at_and_the_first_call_is_a_replay() {
    let rt = runtime_with(|_| {});
    probe_set(&rt, false);
    let t = trajectory("t2", &[("x1", 0, "other.x"), ("x2", 2, "other.y")]);
    assert_eq!(rt.state_usage().0, 0);
    assert!(titles(&rt.evaluate(&t)).is_empty());
    assert!(rt.state_usage().0 > 0, "the mark is kept, with no state");
    let t = trajectory(
        "t2",
        &[
            ("x1", 0, "other.x"),
            ("x2", 2, "other.y"),
            ("x3", 4, "other.z"),
        ],
    );
    assert!(titles(&rt.evaluate(&t)).is_empty());
    let t = trajectory(
        "t2",
        &[
            ("x1", 0, "other.x"),
            ("m1", 1, "probe.x"),
            ("x2", 2, "other.y"),
            ("x3", 4, "other.z"),
            ("m2", 5, "probe.y"),
        ],
    );
    assert_eq!(
        titles(&rt.evaluate(&t)),
        ["call 1 new [m1,m2] replay true kept 0"]
    );
}

#[test]
fn state_is_per_trajectory_and_never_crosses() {
    let rt = runtime_with(|_| {});
    probe_set(&rt, false);
    let t1 = trajectory("t1", &[("a", 0, "probe.x")]);
    let t2 = trajectory("t2", &[("a", 0, "probe.x"), ("b", 1, "probe.x")]);
    assert_eq!(
        titles(&rt.evaluate(&t1)),
        ["call 1 new [a] replay true kept 0"]
    );
    // Another trajectory starts from nothing (the probe refuses another trajectory's
    // state: a failure would show as no finding), even with an event id in common.
    assert_eq!(
        titles(&rt.evaluate(&t2)),
        ["call 1 new [a,b] replay true kept 0"]
    );
    let t1 = trajectory("t1", &[("a", 0, "probe.x"), ("c", 2, "probe.x")]);
    assert_eq!(
        titles(&rt.evaluate(&t1)),
        ["call 2 new [c] replay false kept 1"]
    );
    // A closed (or renamed) trajectory's state goes: the next look is a replay.
    rt.forget("t1");
    assert_eq!(
        titles(&rt.evaluate(&t1)),
        ["call 1 new [a,c] replay true kept 0"]
    );
}

#[test]
fn evidence_may_cite_what_was_given_or_read_through_history() {
    let rt = runtime_with(|c| c.quarantine_after = 3);
    let d = probe_set(&rt, false);
    // `b` was never given (not its interest) but is read through history: citable.
    let t = trajectory("h", &[("b", 0, "other.x"), ("r", 1, "probe.history")]);
    let e = rt.evaluate(&t);
    assert_eq!(e.findings.len(), 1, "{:?}", d.health.report());
    assert_eq!(e.findings[0].evidence, ["r", "b"]);

    // An id never given nor read breaks the contract; the state stays as it was, so the
    // event is offered again, and three in a row quarantine the detector.
    let t = trajectory(
        "h",
        &[
            ("b", 0, "other.x"),
            ("r", 1, "probe.history"),
            ("u", 2, "probe.unseen"),
        ],
    );
    for i in 1..=3 {
        assert!(titles(&rt.evaluate(&t)).is_empty());
        let h = d.health.report();
        assert_eq!(h.failures, i);
        let last = h.last_failure.unwrap();
        assert!(last.contains("`never-given`"), "{last}");
    }
    assert_eq!(d.status().state, "quarantined");
}

#[test]
fn a_state_over_its_bound_breaks_the_contract() {
    let rt = runtime_with(|c| c.state_max_bytes = 1000);
    let d = probe_set(&rt, false);
    assert_eq!(
        titles(&rt.evaluate(&trajectory("s", &[("a", 0, "probe.x")]))).len(),
        1
    );
    let t = trajectory("s", &[("a", 0, "probe.x"), ("big", 1, "probe.bloat")]);
    assert!(titles(&rt.evaluate(&t)).is_empty());
    let last = d.health.report().last_failure.unwrap();
    assert!(
        last.contains("over runtime.state_max_bytes (1000)"),
        "{last}"
    );
    // The state before the failed call is kept: the next call continues from it.
    let t = trajectory("s", &[("a", 0, "probe.x"), ("c", 2, "probe.x")]);
    assert_eq!(
        titles(&rt.evaluate(&t)),
        ["call 2 new [c] replay false kept 1"]
    );
}

/// Traps and deadlines in an incremental call are contained, counted and quarantine the
/// detector like 0.1.0's.
#[test]
fn traps_and_deadlines_quarantine_a_0_2_detector() {
    for (action, reason) in [
        ("probe.panic", "incremental probe panics on purpose"),
        ("probe.spin", "deadline exceeded"),
    ] {
        let rt = runtime_with(|c| {
            c.quarantine_after = 3;
            c.deadline_ms = 300;
        });
        let d = probe_set(&rt, false);
        let t = trajectory("q", &[("a", 0, "probe.x"), ("bad", 1, action)]);
        for i in 1..=3 {
            assert!(titles(&rt.evaluate(&t)).is_empty());
            let h = d.health.report();
            assert_eq!(h.failures, i, "{action}");
            let last = h.last_failure.unwrap();
            assert!(last.contains(reason), "{action}: `{last}` lacks `{reason}`");
        }
        let q = d.health.report().quarantine.expect("quarantined");
        assert!(q.reason.contains(reason));
        rt.evaluate(&t);
        assert_eq!(d.health.report().calls, 3, "quarantined: not called");
    }
}

/// A judge that answers after blocking its caller for a while: wall time, no CPU.
struct SlowJudge(std::time::Duration);

impl plumbline_trajectory::ModelJudge for SlowJudge {
    fn judge(&self, _: plumbline_trajectory::JudgeRequest) -> plumbline_contract::ModelAnswer {
        std::thread::sleep(self.0);
        plumbline_contract::ModelAnswer::Unavailable("slow".into())
    }
}

/// The deadline is the call's CPU time: a call that waited past its wall-clock deadline
/// without running (here blocked in the host, as a starved thread waits for a core) goes
/// on, up to ten deadlines of wall clock; past that it is interrupted. (A spinning call
/// uses its CPU and is interrupted at the deadline: the test above.)
#[test]
fn a_deadline_counts_the_call_s_cpu_time_up_to_ten_deadlines_of_wall_clock() {
    for (wait_ms, fails) in [(120, false), (600, true)] {
        let rt = runtime_with(|c| c.deadline_ms = 40);
        rt.set_judge(Arc::new(SlowJudge(std::time::Duration::from_millis(
            wait_ms,
        ))));
        let d = probe_set(&rt, false);
        let t = trajectory("slow", &[("a", 0, "probe.x"), ("ask", 1, "probe.ask")]);
        let found = titles(&rt.evaluate(&t));
        let h = d.health.report();
        assert_eq!(h.failures, u64::from(fails), "waited {wait_ms} ms: {h:?}");
        if fails {
            assert!(found.is_empty());
            assert!(h.last_failure.unwrap().contains("deadline exceeded"));
        } else {
            assert_eq!(
                found.len(),
                1,
                "waited {wait_ms} ms (3 deadlines): answered"
            );
        }
    }
}

/// The reference port: its fixtures pass through the real host, fed one event at a time.
#[test]
fn the_ported_secret_probe_passes_its_fixtures_in_wasm() {
    let rt = runtime_with(|_| {});
    let d = rt.load_file(&component(SECRET_PROBE)).unwrap();
    assert_eq!(d.name(), "credential-abuse.secret-probe");
    assert_eq!(d.wit_version(), "0.2.0");
    let dir = repo("detectors/credential-abuse/secret-probe/fixtures");
    let files = fixture::fixture_files(&dir).unwrap();
    assert!(files.len() >= 5);
    for f in files {
        let o = rt.run_fixture(&d, &f);
        assert!(o.passed, "{}: {:?}", o.file, o.message);
    }
}

/// Over `runtime.state_total_mib` the least recently used states go; the trajectory whose
/// state went is replayed on its next call (every matching event, no state), never lost.
#[test]
fn an_evicted_state_makes_the_next_call_a_replay() {
    let rt = runtime_with(|c| {
        c.state_max_bytes = 200_000;
        c.state_total_mib = 1;
    });
    probe_set(&rt, false);
    // Each state holds 100 KB: the twelfth passes the 1 MiB bound.
    for i in 0..12 {
        let t = trajectory(&format!("t{i}"), &[("a", 0, "probe.bloat")]);
        assert_eq!(titles(&rt.evaluate(&t)).len(), 1);
    }
    let (bytes, evicted) = rt.state_usage();
    assert!(
        evicted >= 1 && bytes <= 1 << 20,
        "{bytes} bytes, {evicted} evicted"
    );
    // The oldest went: a replay. The newest stayed: only its new event.
    let first = trajectory("t0", &[("a", 0, "probe.bloat"), ("b", 1, "probe.x")]);
    assert_eq!(
        titles(&rt.evaluate(&first)),
        ["call 1 new [a,b] replay true kept 0"]
    );
    let last = trajectory("t11", &[("a", 0, "probe.bloat"), ("b", 1, "probe.x")]);
    assert_eq!(
        titles(&rt.evaluate(&last)),
        ["call 2 new [b] replay false kept 1"]
    );
}

/// A restart resumes from the state saved with the trajectory checkpoint: no replay.
#[test]
fn saved_state_resumes_after_a_restart() {
    let rt = runtime_with(|_| {});
    probe_set(&rt, false);
    let t = trajectory("r", &[("a", 0, "probe.x")]);
    assert_eq!(
        titles(&rt.evaluate(&t)),
        ["call 1 new [a] replay true kept 0"]
    );
    let saved = rt.snapshot("r").expect("state kept");
    assert!(rt.snapshot("never-seen").is_none());

    let restarted = runtime_with(|_| {});
    probe_set(&restarted, false);
    restarted.restore("r", &saved);
    let t = trajectory("r", &[("a", 0, "probe.x"), ("b", 1, "probe.x")]);
    assert_eq!(
        titles(&restarted.evaluate(&t)),
        ["call 2 new [b] replay false kept 1"]
    );
}
