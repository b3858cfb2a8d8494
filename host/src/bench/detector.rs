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

#[cfg(not(feature = "native-detector"))]
pub fn measure(_: &[usize], _: Duration) -> anyhow::Result<Vec<Row>> {
    anyhow::bail!("built without the `native-detector` feature (the native side of the comparison)")
}
