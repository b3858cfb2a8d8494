//! The runtime against real components built from source in this repository
//! (`scripts/build-detectors.sh` puts them under `target/wasm32-wasip2/release/`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use plumbline_trajectory::Trajectory;

/// Where `scripts/build-detectors.sh` leaves components.
pub fn components_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("wasm32-wasip2/release")
}

/// A built component, or a failure that says how to build it.
pub fn component(name: &str) -> PathBuf {
    let p = components_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/build-detectors.sh (after scripts/setup.sh test) first",
        p.display()
    );
    p
}

pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

/// Compiled components persist here between test runs (the CPython and SpiderMonkey
/// components take seconds to compile). tests/e2e_detectors.rs points
/// `plumbline detector test` at the same directory, so each compiles once per build.
pub fn cache_dir() -> PathBuf {
    components_dir().join("../../plumbline-test-cache")
}

/// Functional tests get a generous deadline: they run beside other tests and builds on a
/// small machine, and only the hostile tests are about deadlines.
fn runtime_with(f: impl FnOnce(&mut RuntimeConfig)) -> Runtime {
    let mut c = RuntimeConfig {
        deadline_ms: 10_000,
        ..RuntimeConfig::default()
    };
    f(&mut c);
    Runtime::new(c, Some(cache_dir())).expect("runtime")
}

fn runtime() -> Runtime {
    runtime_with(|_| {})
}

pub fn fixture_trajectory(rel: &str) -> Trajectory {
    fixture::load(&repo(rel)).expect("fixture").1
}

const RUST_EXAMPLE: &str = "example_export_after_grant.wasm";
const PYTHON_EXAMPLE: &str = "example_python_force_push.wasm";
const JS_EXAMPLE: &str = "example_js_deploy_key_public.wasm";
pub const EXPORT_POSITIVE: &str =
    "detectors/example-export-after-grant/fixtures/positive-offhours-new-destination.json";

fn assert_fixtures_pass(rt: &Runtime, d: &Detector, dir: &str) {
    let files = fixture::fixture_files(&repo(dir)).unwrap();
    assert!(files.len() >= 2, "fixtures in {dir}");
    for f in files {
        let o = rt.run_fixture(d, &f);
        assert!(o.passed, "{}: {:?}", o.file, o.message);
    }
}

#[test]
fn rust_example_passes_its_fixtures_in_wasm() {
    let rt = runtime();
    let d = rt.load_file(&component(RUST_EXAMPLE)).unwrap();
    assert_eq!(d.name(), "example.export-after-grant");
    assert_eq!(d.config["min_rows"], "10000");
    assert_fixtures_pass(&rt, &d, "detectors/example-export-after-grant/fixtures");
}

#[test]
fn python_example_passes_its_fixtures_in_wasm() {
    let rt = runtime();
    let d = rt.load_file(&component(PYTHON_EXAMPLE)).unwrap();
    assert_eq!(d.name(), "example.force-push-protected");
    assert_fixtures_pass(&rt, &d, "detectors/example-python-force-push/fixtures");
}

/// The SpiderMonkey component: its first compile takes seconds (cached on disk with the
/// Python one, and shared with the `detector test` e2e test); the config default it reads
/// is the one it declares, supplied by the host.
#[test]
fn js_example_passes_its_fixtures_in_wasm() {
    let rt = runtime();
    let d = rt.load_file(&component(JS_EXAMPLE)).unwrap();
    assert_eq!(d.name(), "example.js-deploy-key-then-public");
    assert_eq!(d.config["window_minutes"], "60");
    assert_fixtures_pass(&rt, &d, "detectors/example-js-deploy-key-public/fixtures");
}

#[test]
fn a_wrong_expectation_fails_the_fixture() {
    let rt = runtime();
    let d = rt.load_file(&component(RUST_EXAMPLE)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo(EXPORT_POSITIVE)).unwrap()).unwrap();
    f["expected"][0]["severity"] = 2.into();
    let path = dir.path().join("wrong.json");
    std::fs::write(&path, f.to_string()).unwrap();
    let o = rt.run_fixture(&d, &path);
    assert!(!o.passed);
    let msg = o.message.unwrap();
    assert!(
        msg.contains("missing exfil.export_after_grant severity 2"),
        "{msg}"
    );
    assert!(
        msg.contains("unexpected exfil.export_after_grant severity 3"),
        "{msg}"
    );
}

/// Each hostile component, alone: the failure is contained and classified, the host
/// answers, and the third failure in a row quarantines it with a reason.
#[test]
fn hostile_detectors_are_contained_and_quarantined() {
    let cases = [
        ("hostile_loop.wasm", "deadline exceeded"),
        ("hostile_memory.wasm", "memory: "),
        ("hostile_stack.wasm", "stack overflow"),
        ("hostile_panic.wasm", "hostile detector panics on purpose"),
        ("hostile_output.wasm", "output too large"),
        (
            "hostile_evidence.wasm",
            "evidence `evt-that-never-happened` is not an event of the trajectory",
        ),
    ];
    let rt = runtime_with(|c| {
        c.quarantine_after = 3;
        c.deadline_ms = 1000;
    });
    let t = fixture_trajectory(EXPORT_POSITIVE);
    for (file, reason) in cases {
        let d = rt
            .load_file(&component(&format!("examples/{file}")))
            .unwrap();
        rt.swap(DetectorSet::new(vec![d.clone()]).unwrap());
        for i in 1..=3 {
            let e = rt.evaluate(&t);
            assert!(e.findings.is_empty() && e.shadow.is_empty(), "{file}");
            let h = d.health.report();
            assert_eq!(h.failures, i, "{file}");
            let last = h.last_failure.unwrap();
            assert!(last.contains(reason), "{file}: `{last}` lacks `{reason}`");
        }
        let q = d.health.report().quarantine.expect("quarantined");
        assert!(q.reason.contains("3 failures in a row") && q.reason.contains(reason));
        assert_eq!(d.status().state, "quarantined");
        // Quarantined: no longer called.
        rt.evaluate(&t);
        assert_eq!(d.health.report().calls, 3, "{file}");
    }
}

/// All hostile detectors beside the real one: its finding arrives on every evaluation.
#[test]
fn other_detectors_findings_still_arrive() {
    let rt = runtime_with(|c| {
        c.quarantine_after = 2;
        c.deadline_ms = 1000;
    });
    let mut loaded = vec![rt.load_file(&component(RUST_EXAMPLE)).unwrap()];
    for name in ["loop", "memory", "stack", "panic", "output", "evidence"] {
        loaded.push(
            rt.load_file(&component(&format!("examples/hostile_{name}.wasm")))
                .unwrap(),
        );
    }
    rt.swap(DetectorSet::new(loaded).unwrap());
    let t = fixture_trajectory(EXPORT_POSITIVE);
    for _ in 0..3 {
        let e = rt.evaluate(&t);
        assert_eq!(e.findings.len(), 1, "{:?}", e.findings);
        let f = &e.findings[0];
        assert_eq!(f.detector, "example.export-after-grant");
        assert_eq!(f.detector_version, "0.1.0");
        assert_eq!(f.severity, 3);
        assert_eq!(f.evidence, vec!["evt-grant", "evt-export"]);
    }
    let status = rt.status();
    for s in &status {
        let expect = if s.name.starts_with("hostile.") {
            "quarantined"
        } else {
            "active"
        };
        assert_eq!(s.state, expect, "{}: {:?}", s.name, s.health.quarantine);
    }
    assert!(rt.release("hostile.panic"));
    assert!(!rt.release("hostile.panic"));
}

#[test]
fn uninterested_detectors_are_not_called() {
    let rt = runtime();
    let d = rt.load_file(&component(RUST_EXAMPLE)).unwrap();
    rt.swap(DetectorSet::new(vec![d.clone()]).unwrap());
    // A force-push story: none of the export detector's actions.
    let t = fixture_trajectory(
        "detectors/example-python-force-push/fixtures/positive-disable-push-enable.json",
    );
    assert!(rt.evaluate(&t).findings.is_empty());
    let h = d.health.report();
    assert_eq!((h.calls, h.skipped), (0, 1));
}

#[test]
fn operator_overrides_apply_and_undeclared_keys_are_refused() {
    let rt = runtime_with(|c| {
        c.detectors.insert(
            "example.export-after-grant".into(),
            DetectorOverride {
                shadow: true,
                deadline_ms: Some(200),
                config: [("min_rows".to_string(), "60000".to_string())].into(),
                ..Default::default()
            },
        );
    });
    let d = rt.load_file(&component(RUST_EXAMPLE)).unwrap();
    assert_eq!(d.config["min_rows"], "60000");
    assert_eq!(d.limits.deadline.as_millis(), 200);
    assert_eq!(d.status().state, "shadow");
    rt.swap(DetectorSet::new(vec![d]).unwrap());
    // 50k rows is now below the threshold.
    let e = rt.evaluate(&fixture_trajectory(EXPORT_POSITIVE));
    assert!(e.findings.is_empty() && e.shadow.is_empty());

    let rt = runtime_with(|c| {
        c.detectors.insert(
            "example.export-after-grant".into(),
            DetectorOverride {
                config: [("min_rowz".to_string(), "1".to_string())].into(),
                ..Default::default()
            },
        );
    });
    let err = rt.load_file(&component(RUST_EXAMPLE)).unwrap_err();
    assert!(
        err.to_string().contains("key `min_rowz` is not declared"),
        "{err}"
    );
}

/// `[org]` reaches every detector that declares the key, live; the detector's own
/// fixtures are still judged without it, so a company's allow-list cannot get a pack
/// refused for a positive fixture that now (rightly) stays quiet.
#[test]
fn the_org_context_reaches_live_calls_but_not_fixtures() {
    const APP: &str = "supply_chain_app_install.wasm";
    const POSITIVE: &str =
        "detectors/supply-chain/app-install/fixtures/positive-wide-write-app.json";
    let rt = runtime_with(|c| {
        c.org.apps = vec!["renovate".into(), "ci-turbo".into()];
        c.org.domains = vec!["acme.com".into()];
    });
    let d = rt.load_file(&component(APP)).unwrap();
    let defaults = "renovate,dependabot,pre-commit-ci";
    assert_eq!(
        d.config["known_apps"],
        format!("{defaults},renovate,ci-turbo")
    );
    assert_eq!(d.fixture_config["known_apps"], defaults);
    // app-install does not declare known_domains: nothing is added to it.
    assert!(!d.config.contains_key("known_domains"));
    let outcome = rt.run_fixture(&d, &repo(POSITIVE));
    assert!(outcome.passed, "{:?}", outcome.message);
    rt.swap(DetectorSet::new(vec![d]).unwrap());
    let e = rt.evaluate(&fixture_trajectory(POSITIVE));
    assert!(
        !e.findings.is_empty() && e.findings.iter().all(|f| f.severity == 1),
        "a vetted app is informational: {:?}",
        e.findings
    );

    let rt = runtime_with(|_| {});
    let d = rt.load_file(&component(APP)).unwrap();
    rt.swap(DetectorSet::new(vec![d]).unwrap());
    assert!(!rt
        .evaluate(&fixture_trajectory(POSITIVE))
        .findings
        .is_empty());
}

#[test]
fn shadow_findings_are_kept_apart() {
    let rt = runtime_with(|c| {
        c.detectors.insert(
            "example.export-after-grant".into(),
            DetectorOverride {
                shadow: true,
                ..Default::default()
            },
        );
    });
    let d = rt.load_file(&component(RUST_EXAMPLE)).unwrap();
    rt.swap(DetectorSet::new(vec![d]).unwrap());
    let e = rt.evaluate(&fixture_trajectory(EXPORT_POSITIVE));
    assert!(e.findings.is_empty());
    assert_eq!(e.shadow.len(), 1);
}

#[test]
fn a_swap_leaves_a_pinned_set_intact() {
    let rt = runtime();
    let d = rt.load_file(&component(RUST_EXAMPLE)).unwrap();
    let t = fixture_trajectory(EXPORT_POSITIVE);
    rt.swap(DetectorSet::new(vec![d.clone()]).unwrap());
    let pinned = rt.detectors();
    let old = rt.swap(DetectorSet::default());
    assert!(Arc::ptr_eq(&old, &pinned));
    assert!(
        rt.evaluate(&t).findings.is_empty(),
        "the new, empty set is active"
    );
    assert_eq!(rt.evaluate_on(&pinned, &t).findings.len(), 1);
    let err = DetectorSet::new(vec![d.clone(), d]).err().unwrap();
    assert!(err.to_string().contains("two detectors are named"));
}

#[test]
fn a_module_that_is_not_a_component_is_refused_by_name() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("junk.wasm");
    std::fs::write(&p, b"\0asm\x01\0\0\0").unwrap();
    let err = rt.load_file(&p).unwrap_err().to_string();
    assert!(
        err.contains("junk.wasm") && err.contains("not a valid component"),
        "{err}"
    );
}

#[test]
fn the_service_loads_what_runtime_config_names() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RuntimeConfig::default();
    let components = tempfile::tempdir().unwrap();
    std::fs::copy(component(RUST_EXAMPLE), components.path().join("a.wasm")).unwrap();
    std::fs::write(components.path().join("notes.txt"), "not a component").unwrap();
    config.detector_dirs = vec![components.path().to_path_buf()];
    let rt = Runtime::load(&config, dir.path()).unwrap();
    let names: Vec<String> = rt.status().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["example.export-after-grant"]);
    // The compiled artefact landed in the default cache under the data directory.
    let cached = std::fs::read_dir(dir.path().join("compiled"))
        .unwrap()
        .count();
    assert_eq!(cached, 1);
    // A second start takes them from disk.
    let again = cache::ComponentCache::new(&rt.engine.engine, Some(dir.path().join("compiled")));
    let bytes = std::fs::read(component(RUST_EXAMPLE)).unwrap();
    assert_eq!(
        again.get(&rt.engine.engine, &bytes).unwrap().1,
        Origin::Disk
    );
    assert_eq!(
        again.get(&rt.engine.engine, &bytes).unwrap().1,
        Origin::Memory
    );
}

#[test]
fn every_supported_wit_version_has_its_frozen_folder() {
    for v in SUPPORTED_WIT_VERSIONS {
        let wit = std::fs::read_to_string(repo(&format!("wit/since_v{v}/detector.wit")))
            .unwrap_or_else(|e| panic!("wit/since_v{v}/detector.wit: {e}"));
        assert!(
            wit.contains(&format!("package plumbline:detector@{v};")),
            "wit/since_v{v} declares another version"
        );
    }
}

/// A trajectory heavier than `max_input_bytes` is handed over newest first, the older
/// events counted as dropped, so a burst of huge events cannot stall every detector.
#[test]
fn a_call_gets_at_most_max_input_bytes_of_events() {
    let mut t = fixture_trajectory(EXPORT_POSITIVE);
    let all = t.events.len();
    assert!(all >= 2, "the fixture has a story");
    let (whole, bytes) = bindings::trajectory(&t, usize::MAX);
    assert_eq!((whole.events.len(), whole.dropped), (all, t.dropped));
    let newest = bindings::event_bytes(t.events.last().unwrap());
    let (cut, cut_bytes) = bindings::trajectory(&t, newest);
    assert_eq!(cut.events.len(), 1);
    assert_eq!(cut.events[0].id, t.events.last().unwrap().id);
    assert_eq!(cut.dropped, t.dropped + all as u64 - 1);
    assert!(cut_bytes <= newest && bytes > cut_bytes);
    t.events.make_mut().clear();
    assert!(bindings::trajectory(&t, 0).0.events.is_empty());
}
