//! Config once per loaded detector (prepare.rs) in the real host, with a real component
//! (`detectors/testing/hostile/examples/prepared_probe.rs`): each call's title says how
//! often its settings had been parsed before it asked for them.

use std::path::Path;

use super::tests::{cache_dir, component};
use super::*;

const PROBE: &str = "examples/prepared_probe.wasm";

fn runtime_on(cache: &Path, f: impl FnOnce(&mut RuntimeConfig)) -> Runtime {
    let mut c = RuntimeConfig {
        deadline_ms: 10_000,
        ..RuntimeConfig::default()
    };
    f(&mut c);
    Runtime::new(c, Some(cache.to_path_buf())).expect("runtime")
}

fn greeting(value: &str) -> impl FnOnce(&mut RuntimeConfig) + '_ {
    move |c: &mut RuntimeConfig| {
        c.detectors.insert(
            "testing.prepared-probe".into(),
            DetectorOverride {
                config: [("greeting".to_string(), value.to_string())].into(),
                ..Default::default()
            },
        );
    }
}

/// A one-event fixture for the probe on actor `key`'s trajectory, with `config`.
fn fixture_of(dir: &Path, key: &str, config: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{key}.json"));
    let text = format!(
        r#"{{"config": {config}, "trajectory": {{"kind": "actor", "key": "{key}", "events": [
            {{"id": "e1", "time": "2025-11-24T10:00:00Z", "source": "custom",
              "actor": {{"id": "{key}", "type": "human"}}, "system": "acme/api",
              "action": "probe.x"}}]}}, "expected": [], "ignore_unexpected_below": 2}}"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn fixture(dir: &Path, config: &str) -> std::path::PathBuf {
    fixture_of(dir, "ada", config)
}

fn titles(findings: &[plumbline_trajectory::finding::Finding]) -> Vec<String> {
    findings.iter().map(|f| f.title.clone()).collect()
}

#[test]
fn live_calls_start_with_the_settings_prepare_parsed_and_other_configs_parse_per_call() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime_on(cache.path(), greeting("ahoy"));
    let d = rt.load_file(&component(PROBE)).unwrap();
    assert!(d.is_prepared());
    rt.swap(DetectorSet::new(vec![d.clone()]).unwrap());
    let dir = tempfile::tempdir().unwrap();
    // A live call: from the snapshot, parsed once before any call, under the live config.
    let live = rt.evaluate(&fixture::load(&fixture(dir.path(), "{}")).unwrap().1);
    assert_eq!(
        titles(&live.findings),
        ["parses before 1 after 1 greeting ahoy"]
    );
    // Another trajectory: still the snapshot's one parse (each call is a fresh instance).
    let again = rt.evaluate(
        &fixture::load(&fixture_of(dir.path(), "bob", "{}"))
            .unwrap()
            .1,
    );
    assert_eq!(titles(&again.findings), titles(&live.findings));
    // A fixture's own config is another configuration: the component as loaded, which
    // parses in the call, with the same answer shape.
    let other = rt.run_fixture(&d, &fixture(dir.path(), r#"{"greeting": "hi"}"#));
    assert!(other.passed, "{:?}", other.message);
    assert_eq!(
        titles(&other.findings),
        ["parses before 0 after 1 greeting hi"]
    );
    // The snapshot is on disk: another runtime on this cache takes it from there.
    let kept: Vec<_> = std::fs::read_dir(cache.path().join("prepared"))
        .unwrap()
        .collect();
    assert_eq!(kept.len(), 1);
    let rt2 = runtime_on(cache.path(), greeting("ahoy"));
    let d2 = rt2.load_file(&component(PROBE)).unwrap();
    assert!(d2.is_prepared());
    rt2.swap(DetectorSet::new(vec![d2]).unwrap());
    let from_disk = rt2.evaluate(&fixture::load(&fixture(dir.path(), "{}")).unwrap().1);
    assert_eq!(titles(&from_disk.findings), titles(&live.findings));
    // Another configuration is another snapshot.
    let rt3 = runtime_on(cache.path(), greeting("hey"));
    let d3 = rt3.load_file(&component(PROBE)).unwrap();
    rt3.swap(DetectorSet::new(vec![d3]).unwrap());
    let hey = rt3.evaluate(&fixture::load(&fixture(dir.path(), "{}")).unwrap().1);
    assert_eq!(
        titles(&hey.findings),
        ["parses before 1 after 1 greeting hey"]
    );
    assert_eq!(
        std::fs::read_dir(cache.path().join("prepared"))
            .unwrap()
            .count(),
        2
    );
}

#[test]
fn a_prepare_that_traps_refuses_the_load_naming_why() {
    let rt = runtime_on(&cache_dir(), |c| {
        c.detectors.insert(
            "testing.prepared-probe".into(),
            DetectorOverride {
                config: [("trap_in_prepare".to_string(), "yes".to_string())].into(),
                ..Default::default()
            },
        );
    });
    let err = rt.load_file(&component(PROBE)).unwrap_err().to_string();
    assert!(err.contains("prepare() failed"), "{err}");
    assert!(err.contains("panics in prepare on purpose"), "{err}");
}

#[test]
fn a_detector_without_config_keys_is_not_snapshotted() {
    let rt = runtime_on(&cache_dir(), |_| {});
    let d = rt
        .load_file(&component("examples/incremental_probe.wasm"))
        .unwrap();
    assert!(d.info.config.is_empty());
    assert!(!d.is_prepared());
}
