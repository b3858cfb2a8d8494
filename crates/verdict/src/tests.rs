//! The gate over a real store, trajectory stage and WASM runtime, with components built
//! from this repository (`scripts/build-detectors.sh rust`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use plumbline_runtime::{DetectorSet, Runtime, RuntimeConfig};
use plumbline_store::Store;
use plumbline_trajectory::{Discard, NoDetectors, TrajectoryConfig};

fn component(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let p = target.join("wasm32-wasip2/release").join(name);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/build-detectors.sh rust",
        p.display()
    );
    p
}

struct Running {
    store: Store,
    writer: Writer,
    gate: Gate,
    stage: Arc<TrajectoryStage>,
}

impl Running {
    /// Until the stage has applied everything stored so far (a test that evaluates the
    /// stage's trajectory itself, outside the gate).
    async fn applied(&self) {
        let stored = self.store.last_seq().unwrap();
        for _ in 0..400 {
            if self.stage.applied_seq() >= stored {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the stage did not apply batch {stored} within 10 s");
    }
}

/// A service's worth of stages: the gate sees what the stage has applied.
fn start(dir: &Path, detector: &str, runtime_deadline_ms: u64, config: VerdictConfig) -> Running {
    let store = Store::open(dir).unwrap();
    let stage = TrajectoryStage::start(
        store.clone(),
        &TrajectoryConfig::default(),
        Arc::new(NoDetectors),
        Arc::new(Discard),
    )
    .unwrap();
    let writer = Writer::start(store.clone(), false, stage.listener()).unwrap();
    let runtime = Runtime::new(
        RuntimeConfig {
            deadline_ms: runtime_deadline_ms,
            ..RuntimeConfig::default()
        },
        None,
    )
    .unwrap();
    let d = runtime.load_file(&component(detector)).unwrap();
    runtime.swap(DetectorSet::new(vec![d]).unwrap());
    let gate = Gate::new(stage.clone(), Arc::new(runtime), writer.clone(), config);
    Running {
        stage,
        store,
        writer,
        gate,
    }
}

/// The Rust example's positive story: a login, a scope increase, then an off-hours export
/// to a new destination (the pending call).
fn story() -> Vec<Event> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../detectors/example-export-after-grant/fixtures/positive-offhours-new-destination.json");
    let (_, t) = plumbline_runtime::fixture::load(&path).unwrap();
    t.events.iter().map(|e| (**e).clone()).collect()
}

async fn wait_stored(store: &Store, id: &str) -> Event {
    for _ in 0..200 {
        if let Some(e) = store.get(id).unwrap() {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{id} not stored within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_detectors_flag_is_denied_and_the_decision_recorded_on_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(
        dir.path(),
        "example_export_after_grant.wasm",
        10_000,
        VerdictConfig {
            deadline_ms: 10_000,
            ..VerdictConfig::default()
        },
    );
    let story = story();
    let (before, call) = story.split_at(2);
    // The gate waits for the stage to apply the earlier calls (a loaded machine's builder
    // may be behind the test).
    r.writer.write(before.to_vec()).await.unwrap();
    // As the hook endpoint does: the call is stored, then judged at once (the stage may
    // not have applied it yet; the preview adds it either way).
    r.writer.write(vec![call[0].clone()]).await.unwrap();
    let d = r.gate.decide(&call[0]).await;
    assert_eq!(
        (d.permission, d.basis),
        (Permission::Deny, Basis::Judged),
        "{d:?}"
    );
    assert_eq!(d.findings[0].signal, "exfil.export_after_grant");
    assert!(
        d.reason.starts_with("Plumbline: ") && d.reason.contains("severity 3"),
        "{}",
        d.reason
    );
    let record = wait_stored(&r.store, &format!("{}:verdict", call[0].id)).await;
    assert_eq!(record.action, VERDICT_ACTION);
    assert_eq!(record.actor, call[0].actor);
    assert_eq!(record.attr_str("verdict.decision"), Some("deny"));
    assert_eq!(record.attr_str("verdict.call"), Some(call[0].id.as_str()));
    assert_eq!(
        record.attr_str("verdict.signals"),
        Some("exfil.export_after_grant")
    );
    // With deny turned off the same call is asked about; with nothing citing it, allowed.
    let ask = Gate::new(
        r.gate.stage.clone(),
        r.gate.evaluator.clone(),
        r.writer.clone(),
        VerdictConfig {
            deny_at: 0,
            deadline_ms: 10_000,
            ..VerdictConfig::default()
        },
    );
    assert_eq!(ask.decide(&call[0]).await.permission, Permission::Ask);
    let d = r.gate.decide(&before[0]).await;
    assert_eq!((d.permission, d.reason.as_str()), (Permission::Allow, ""));
    assert_eq!(r.gate.stats.deny.load(Ordering::Relaxed), 1);
    assert_eq!(r.gate.stats.answer_time.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_deadline_or_over_the_bound_the_configured_fail_mode_answers() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(
        dir.path(),
        "examples/hostile_loop.wasm",
        2_000,
        VerdictConfig {
            deadline_ms: 30,
            on_timeout: Permission::Deny,
            max_in_flight: 1,
            ..VerdictConfig::default()
        },
    );
    let call = story().pop().unwrap();
    r.writer.write(vec![call.clone()]).await.unwrap();
    let (first, second) = tokio::join!(r.gate.decide(&call), async {
        // Starts while the first holds the only slot (the detector spins for 2 s).
        tokio::time::sleep(Duration::from_millis(5)).await;
        r.gate.decide(&call).await
    });
    assert_eq!(
        (first.permission, first.basis),
        (Permission::Deny, Basis::Deadline)
    );
    assert!(first.took < Duration::from_secs(1), "{:?}", first.took);
    assert!(
        first.reason.contains("could not be judged in time"),
        "{}",
        first.reason
    );
    assert_eq!(
        (second.permission, second.basis),
        (Permission::Deny, Basis::Overload)
    );
    let mut m = Exposition::new();
    r.gate.stats.render(&mut m);
    let text = m.finish();
    assert!(
        text.contains("plumbline_verdicts_total{answer=\"deny\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("plumbline_verdict_fallbacks_total 2"),
        "{text}"
    );
}

/// The hook stores the call before judging it, so the live pipeline may evaluate the
/// stored call first: its detectors' state then holds the call as given. The verdict must
/// still judge it (it once answered `allow`: nothing new for the detectors to look at).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_live_pipeline_judged_first_is_still_judged() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(
        dir.path(),
        "coding_agent_download_exec.wasm",
        10_000,
        VerdictConfig {
            deadline_ms: 10_000,
            ..VerdictConfig::default()
        },
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../detectors/coding-agent/download-exec/fixtures/positive-curl-pipe-sh-pending.json",
    );
    let (_, t) = plumbline_runtime::fixture::load(&path).unwrap();
    let events: Vec<Event> = t.events.iter().map(|e| (**e).clone()).collect();
    let call = events.last().unwrap().clone();
    r.writer.write(events).await.unwrap();
    r.applied().await;
    let t = r
        .stage
        .preview(TrajectoryKind::Actor, &Arc::new(call.clone()));
    let live = r.gate.evaluator.evaluate(&t);
    assert!(
        live.findings.iter().any(|f| f.evidence.contains(&call.id)),
        "the live pipeline flags it: {live:?}"
    );
    let d = r.gate.decide(&call).await;
    assert_eq!(
        (d.permission, d.basis),
        (Permission::Deny, Basis::Judged),
        "{d:?}"
    );
}
