//! One detector call, WASM against native: the example detector
//! `detectors/example-export-after-grant` on a trajectory of 10, 100 and 1,000 events,
//! through the runtime (fresh pooled instance, epoch deadline, memory cap, contract checks)
//! and as the same crate called natively through the SDK — the code path of
//! host/benches/runtime.rs, which builds its trajectory here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use plumbline_event::Event;
use plumbline_trajectory::{Trajectory, TrajectoryKind};

/// `n` events of one actor from an evening on, a minute apart: logins, pushes and secret
/// reads, one grant a fifth of the way in and two large exports inside the detector's
/// hour after it, so the detector fires once (for 50 events: grant at 10, exports at 30, 45).
pub fn trajectory(n: usize) -> Trajectory {
    let base = 1_704_146_400i64; // 2024-01-01T22:00:00Z
    let grant = n / 5;
    let exports = [grant + (2 * n / 5).min(20), grant + (7 * n / 10).min(35)];
    let events: Vec<Event> = (0..n)
        .map(|i| {
            let (action, extra) = match i {
                i if i == grant => ("credential.scope.increased", ""),
                i if exports.contains(&i) => (
                    "data.export",
                    r#","destination":"s3://bucket-x","volume":{"rows":50000}"#,
                ),
                i if i % 3 == 0 => ("git.push", ""),
                i if i % 3 == 1 => ("secret.read", ""),
                _ => ("auth.login", ""),
            };
            let json = format!(
                r#"{{"id":"evt-{i:04}","time":"{}","source":"custom","actor":{{"id":"alice","type":"human"}},"system":"billing","action":"{action}","environment":"prod","attributes":{{"n":{i},"note":"event {i}"}}{extra}}}"#,
                time::OffsetDateTime::from_unix_timestamp(base + i as i64 * 60)
                    .expect("in range")
                    .format(&time::format_description::well_known::Rfc3339)
                    .expect("formats")
            );
            serde_json::from_str(&json).expect("a valid event")
        })
        .collect();
    Trajectory {
        id: "bench".into(),
        kind: TrajectoryKind::Actor,
        key: "alice".into(),
        start: events[0].time_nanos(),
        end: events[n - 1].time_nanos(),
        closes_at: events[n - 1].time_nanos(),
        dropped: 0,
        hash: "bench".into(),
        events: events.into_iter().map(Arc::new).collect(),
    }
}

/// Where scripts/build-detectors.sh leaves a component: `$CARGO_TARGET_DIR`, the target
/// directory this binary runs from (target/release/plumbline), or the workspace's target.
pub fn component(name: &str) -> Option<PathBuf> {
    let mut targets = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        targets.push(PathBuf::from(t));
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(t) = exe.parent().and_then(Path::parent) {
            targets.push(t.to_path_buf());
        }
    }
    targets.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    targets
        .into_iter()
        .map(|t| t.join("wasm32-wasip2/release").join(name))
        .find(|p| p.is_file())
}

/// Mean time of one call of `f`, after a warm-up, over calls for about `budget`.
fn per_call(budget: Duration, mut f: impl FnMut()) -> Duration {
    for _ in 0..5 {
        f();
    }
    let started = Instant::now();
    let mut calls = 0u32;
    while started.elapsed() < budget || calls < 10 {
        f();
        calls += 1;
    }
    started.elapsed() / calls
}

/// One size's figures: (events, WASM per call, native per call).
pub type Row = (usize, Duration, Duration);

/// Times one call both ways on each size; `Err` says why it could not be measured.
#[cfg(feature = "native-detector")]
pub fn measure(sizes: &[usize], budget: Duration) -> anyhow::Result<Vec<Row>> {
    use anyhow::Context;
    use plumbline_runtime::{DetectorSet, Runtime};
    use plumbline_sdk::Detector as _;

    let path = component("example_export_after_grant.wasm").context(
        "example_export_after_grant.wasm not built: run scripts/build-detectors.sh rust",
    )?;
    // Compiled components are kept in memory only: nothing is left on disk.
    let runtime = Runtime::new(crate::config::Config::defaults().runtime, None)?;
    let set = DetectorSet::new(vec![runtime.load_file(&path)?])?;
    let info = example_export_after_grant::ExportAfterGrant::info();
    let mut rows = Vec::new();
    for &n in sizes {
        let t = trajectory(n);
        let sdk_t: plumbline_sdk::Trajectory = serde_json::from_value(serde_json::to_value(&t)?)?;
        let cx = plumbline_sdk::Context::native(&info, &Default::default(), t.end);
        // Both ways must see the same thing before their times are compared.
        let wasm_findings = runtime.evaluate_on(&set, &t).findings.len();
        let native_findings = example_export_after_grant::ExportAfterGrant
            .analyze(&sdk_t, &cx)
            .map_err(|e| anyhow::anyhow!("native call failed: {e:?}"))?
            .len();
        anyhow::ensure!(
            wasm_findings == native_findings && wasm_findings > 0,
            "{n} events: {wasm_findings} findings in WASM, {native_findings} native"
        );
        let wasm = per_call(budget, || {
            std::hint::black_box(runtime.evaluate_on(&set, &t));
        });
        let native = per_call(budget, || {
            std::hint::black_box(example_export_after_grant::ExportAfterGrant.analyze(&sdk_t, &cx))
                .ok();
        });
        rows.push((n, wasm, native));
    }
    Ok(rows)
}

/// `n` events of one actor a minute apart, every one read by the secret-probe detector:
/// permission-denied reads on four paths in turn, each followed by a successful read, so
/// every window holds a probe and its success (a finding citing up to 25 events on every
/// call, the detector's heavier path).
fn secret_events(n: usize) -> Vec<Arc<Event>> {
    let base = 1_704_146_400i64; // 2024-01-01T22:00:00Z
    (0..n)
        .map(|i| {
            let action = if i % 2 == 0 {
                "secret.permission_denied"
            } else {
                "secret.read"
            };
            let time = time::OffsetDateTime::from_unix_timestamp(base + i as i64 * 60)
                .expect("in range")
                .format(&time::format_description::well_known::Rfc3339)
                .expect("formats");
            let json = serde_json::json!({
                "id": format!("evt-{i:06}"), "time": time, "source": "vault",
                "actor": {"id": "alice", "type": "human"}, "system": "vault",
                "action": action, "resource": format!("secret/data/team-{}", i / 2 % 4),
                "environment": "prod",
            });
            Arc::new(serde_json::from_value(json).expect("a valid event"))
        })
        .collect()
}

/// Calls timed per size in [`measure_incremental`] (each on a trajectory of its own).
const INCREMENTAL_CALLS: usize = 2000;

/// One *new* event on a trajectory of each size through the reference incremental
/// detector `credential-abuse.secret-probe` (0.2.0), as the live host calls it: the
/// sandboxed call through the runtime's own state book (new events found above the
/// watermark, state bytes in and out, contract checks) against the same crate native
/// (state decoded, observe, state encoded). The trajectory slides: each call's trajectory
/// is the previous one with its oldest event dropped and one `secret.read` added, so its
/// length stays `n` and the detector's state keeps growing as in a long session.
#[cfg(feature = "native-detector")]
pub fn measure_incremental(sizes: &[usize], calls: Option<usize>) -> anyhow::Result<Vec<Row>> {
    use anyhow::Context;
    use credential_abuse_secret_probe::SecretProbe;
    use plumbline_runtime::{DetectorSet, Runtime};
    use plumbline_sdk::IncrementalDetector as _;
    use plumbline_trajectory::Evaluator as _;

    let calls = calls.unwrap_or(INCREMENTAL_CALLS);
    let path = component("credential_abuse_secret_probe.wasm").context(
        "credential_abuse_secret_probe.wasm not built: run scripts/build-detectors.sh rust",
    )?;
    let info = SecretProbe::info();
    let mut rows = Vec::new();
    for &n in sizes {
        // A runtime per size, so each size's state book starts empty.
        let runtime = Runtime::new(crate::config::Config::defaults().runtime, None)?;
        runtime.swap(DetectorSet::new(vec![runtime.load_file(&path)?])?);
        let all = secret_events(n + calls);
        let slide = |i: usize| Trajectory {
            id: "bench".into(),
            kind: TrajectoryKind::Actor,
            key: "alice".into(),
            start: all[i].time_nanos(),
            end: all[i + n - 1].time_nanos(),
            closes_at: all[i + n - 1].time_nanos(),
            dropped: i as u64,
            hash: "bench".into(),
            events: all[i..i + n].to_vec().into(),
        };
        let views: Vec<Trajectory> = (0..=calls).map(slide).collect();
        let sdk_events: Vec<plumbline_sdk::Event> =
            serde_json::from_value(serde_json::to_value(&all)?)?;
        let native_call = |state: Option<&[u8]>, new: &[plumbline_sdk::Event], i: usize| {
            let window = plumbline_sdk::Window {
                id: "bench".into(),
                kind: plumbline_sdk::TrajectoryKind::Actor,
                key: "alice".into(),
                start: sdk_events[i].time,
                end: sdk_events[i + n - 1].time,
                dropped: i as u64,
                len: n as u32,
                replay: state.is_none(),
            };
            let cx = plumbline_sdk::Context::native_incremental(
                &info,
                &Default::default(),
                sdk_events[i + n - 1].time,
                window,
                Vec::new(),
            );
            plumbline_sdk::guest_v2::observe_bytes::<SecretProbe>(state, new, &cx)
                .map_err(|e| anyhow::anyhow!("native call failed: {e:?}"))
        };

        // The first call on each side is a replay of the whole first view; untimed.
        let (mut state, _) = native_call(None, &sdk_events[..n], 0)?;
        runtime.evaluate(&views[0]);
        let started = std::time::Instant::now();
        let mut wasm_findings = 0;
        for v in &views[1..] {
            wasm_findings = std::hint::black_box(runtime.evaluate(v)).findings.len();
        }
        let wasm = started.elapsed() / calls as u32;
        let started = std::time::Instant::now();
        let mut native_findings = 0;
        for i in 1..=calls {
            let new = &sdk_events[i + n - 1..i + n];
            let (next, found) = native_call(Some(&state), new, i)?;
            state = next;
            native_findings = std::hint::black_box(found).len();
        }
        let native = started.elapsed() / calls as u32;
        anyhow::ensure!(
            wasm_findings == native_findings,
            "{n} events: {wasm_findings} findings in WASM, {native_findings} native ({:?})",
            runtime
                .status()
                .first()
                .and_then(|s| s.health.last_failure.clone())
        );
        rows.push((n, wasm, native));
    }
    Ok(rows)
}

#[cfg(not(feature = "native-detector"))]
pub fn measure_incremental(_: &[usize], _: Option<usize>) -> anyhow::Result<Vec<Row>> {
    anyhow::bail!("built without the `native-detector` feature (the native side of the comparison)")
}

#[cfg(not(feature = "native-detector"))]
pub fn measure(_: &[usize], _: Duration) -> anyhow::Result<Vec<Row>> {
    anyhow::bail!("built without the `native-detector` feature (the native side of the comparison)")
}

#[cfg(all(test, feature = "native-detector"))]
mod tests {
    /// The sandboxed and the native incremental calls answer the same on every size (the
    /// measurement refuses to compare them otherwise).
    #[test]
    fn incremental_calls_agree_in_wasm_and_natively() {
        let rows = super::measure_incremental(&[10, 100], Some(100)).unwrap();
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [10, 100]);
    }
}
