//! Packs against real components (detectors/testing/pack-probe, built by
//! scripts/build-detectors.sh), real ed25519 signatures and the real runtime: each refusal
//! names its reason and leaves the previously active set running.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::archive::PackFiles;
use super::registry::Origin;
use super::*;
use crate::tests::{component, components_dir};
use crate::{Runtime, RuntimeConfig};
use plumbline_trajectory::Trajectory;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn runtime() -> Arc<Runtime> {
    let c = RuntimeConfig {
        deadline_ms: 10_000,
        ..RuntimeConfig::default()
    };
    let cache = components_dir().join("../../plumbline-test-cache");
    Arc::new(Runtime::new(c, Some(cache)).expect("runtime"))
}

/// The probe pack at `version` (1 or 2), built and signed by `key`.
fn probe_files(version: u8, fixtures_of: u8) -> PackFiles {
    let mut files = PackFiles::default();
    files.files.insert(
        "pack.toml".into(),
        format!(
            r#"name = "probe"
version = "{version}.0.0"
wit = "0.1.0"
owners = ["pack-tests"]

[[detectors]]
name = "probe.tick"
component = "components/probe.wasm"
fixtures = "fixtures/probe"
config = {{ severity = "2" }}
"#
        )
        .into_bytes(),
    );
    files.files.insert(
        "components/probe.wasm".into(),
        std::fs::read(component(&format!("examples/pack_probe_v{version}.wasm"))).unwrap(),
    );
    let dir = repo(&format!(
        "detectors/testing/pack-probe/fixtures-v{fixtures_of}"
    ));
    for f in std::fs::read_dir(dir).unwrap() {
        let p = f.unwrap().path();
        files.files.insert(
            format!(
                "fixtures/probe/{}",
                p.file_name().unwrap().to_string_lossy()
            ),
            std::fs::read(&p).unwrap(),
        );
    }
    author::build(files).unwrap().1
}

fn signed(files: PackFiles, key: &PackKey) -> Vec<u8> {
    author::sign(files, key).unwrap().to_archive()
}

fn config(keys: &[&PackKey]) -> PacksConfig {
    let mut c = PacksConfig {
        builtin: false,
        ..PacksConfig::default()
    };
    c.trusted_keys = keys
        .iter()
        .enumerate()
        .map(|(i, k)| TrustedKey {
            name: format!("team{i}"),
            key: k.public_hex(),
        })
        .collect();
    c
}

fn tick(id: &str) -> Trajectory {
    let text = format!(
        r#"{{"trajectory": {{"kind": "actor", "key": "a", "events": [
            {{"id": "{id}", "time": "2024-06-12T10:00:00Z", "source": "custom",
              "actor": {{"id": "a", "type": "service"}}, "system": "s", "action": "probe.tick"}}]}},
            "expected": []}}"#
    );
    crate::fixture::parse(Path::new("t.json"), &text).unwrap().1
}

/// The signals the active set raises on one probe event.
fn signals(rt: &Runtime) -> Vec<String> {
    let e = plumbline_trajectory::Evaluator::evaluate(rt, &tick("e1"));
    e.findings.into_iter().map(|f| f.signal).collect()
}

fn start(rt: &Arc<Runtime>, c: PacksConfig) -> (tempfile::TempDir, Arc<Packs>) {
    let dir = tempfile::tempdir().unwrap();
    let packs = Packs::start(rt.clone(), c, dir.path()).unwrap();
    (dir, packs)
}

#[test]
fn a_signed_pack_activates_and_a_new_version_replaces_it() {
    let team = PackKey::generate().unwrap();
    let rt = runtime();
    let (_d, packs) = start(&rt, config(&[&team]));
    assert!(signals(&rt).is_empty());
    let s = packs
        .install_archive(
            signed(probe_files(1, 1), &team),
            None,
            Origin::Installed,
            true,
        )
        .unwrap();
    assert_eq!((s.state, s.fixtures_passed), ("active", 2));
    assert_eq!(signals(&rt), ["probe.v1"]);
    packs
        .install_archive(
            signed(probe_files(2, 2), &team),
            None,
            Origin::Installed,
            true,
        )
        .unwrap();
    assert_eq!(signals(&rt), ["probe.v2"]);
    let list = packs.list();
    assert_eq!(
        list.iter()
            .map(|p| (p.version.as_str(), p.state))
            .collect::<Vec<_>>(),
        [("2.0.0", "active"), ("1.0.0", "retired")]
    );
}

/// A name stays with the key that first installed it, versions only go up, and built-in
/// names are reserved; an admin's force hands a name over or rolls back.
#[test]
fn a_pack_name_stays_with_its_key_and_versions_only_go_up() {
    let (team, other) = (PackKey::generate().unwrap(), PackKey::generate().unwrap());
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let keys = config(&[&team, &other]);
    let packs = Packs::start(rt.clone(), keys.clone(), dir.path()).unwrap();
    let install = |bytes| packs.install_archive(bytes, None, Origin::Installed, true);
    install(signed(probe_files(2, 2), &team)).unwrap();

    let e = install(signed(probe_files(2, 2), &other)).unwrap_err();
    assert!(e.to_string().contains("belongs to key `team0`"), "{e}");
    assert!(e.to_string().contains("signed by key `team1`"), "{e}");
    let e = install(signed(probe_files(1, 1), &team)).unwrap_err();
    assert!(e.to_string().contains("1.0.0 is older than 2.0.0"), "{e}");
    assert_eq!(signals(&rt), ["probe.v2"]);
    // Removing the pack does not free the name nor reset its version.
    packs.remove("probe").unwrap();
    assert!(install(signed(probe_files(1, 1), &team)).is_err());
    assert!(install(signed(probe_files(2, 2), &other)).is_err());

    let mut named = probe_files(2, 2);
    let m = String::from_utf8(named.files["pack.toml"].clone()).unwrap();
    named.files.insert(
        "pack.toml".into(),
        m.replace("name = \"probe\"", "name = \"exfiltration\"")
            .into_bytes(),
    );
    let e = packs
        .install_archive_forced(signed(named, &team), None)
        .unwrap_err();
    assert!(e.to_string().contains("belongs to a built-in pack"), "{e}");

    packs
        .install_archive_forced(signed(probe_files(1, 1), &other), None)
        .unwrap();
    assert_eq!(signals(&rt), ["probe.v1"]);
    // The forced rollback and the new owner survive a restart.
    drop(packs);
    let rt2 = runtime();
    let again = Packs::start(rt2.clone(), keys, dir.path()).unwrap();
    assert_eq!(signals(&rt2), ["probe.v1"]);
    let e = again
        .install_archive(
            signed(probe_files(2, 2), &team),
            None,
            Origin::Installed,
            true,
        )
        .unwrap_err();
    assert!(e.to_string().contains("belongs to key `team1`"), "{e}");
    again
        .install_archive(
            signed(probe_files(2, 2), &other),
            None,
            Origin::Installed,
            true,
        )
        .unwrap();
    again.set_shadow("probe", true).unwrap();
    let listed: Vec<_> = again
        .list()
        .into_iter()
        .map(|p| (p.version, p.state))
        .collect();
    assert_eq!(
        listed,
        [("2.0.0".into(), "shadow"), ("1.0.0".into(), "retired")],
        "a promotion or demotion retires nothing"
    );
}

/// An install is recorded in two files, `claims.json` first and `installed.json` last; a
/// kill between them left the claim ahead of the installed pack, and the next start refused
/// the acknowledged pack as a downgrade (or a foreign key's) and ran without it. Found by
/// the end-to-end crash test (tests/crash.rs).
#[test]
fn an_install_killed_between_its_claim_and_its_record_keeps_the_installed_pack() {
    let (team, other) = (PackKey::generate().unwrap(), PackKey::generate().unwrap());
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let keys = config(&[&team, &other]);
    let packs = Packs::start(rt.clone(), keys.clone(), dir.path()).unwrap();
    packs
        .install_archive(
            signed(probe_files(1, 1), &team),
            None,
            Origin::Installed,
            true,
        )
        .unwrap();
    drop(packs);
    // What the kill leaves: the claim of an install (here a forced hand-over to another key
    // at 2.0.0) that never reached installed.json.
    let claims = dir.path().join("packs/claims.json");
    assert!(std::fs::read_to_string(&claims).unwrap().contains("1.0.0"));
    std::fs::write(
        &claims,
        serde_json::to_vec(&serde_json::json!({"packs": {"probe": {
            "signer": other.public_hex(), "version": "2.0.0"}}}))
        .unwrap(),
    )
    .unwrap();

    let rt2 = runtime();
    let again = Packs::start(rt2.clone(), keys, dir.path()).unwrap();
    assert_eq!(signals(&rt2), ["probe.v1"], "{:?}", again.list());
    // The claim follows the installed pack again: its key, versions up from 1.0.0.
    let e = again
        .install_archive(
            signed(probe_files(2, 2), &other),
            None,
            Origin::Installed,
            true,
        )
        .unwrap_err();
    assert!(e.to_string().contains("belongs to key `team0`"), "{e}");
    again
        .install_archive(
            signed(probe_files(2, 2), &team),
            None,
            Origin::Installed,
            true,
        )
        .unwrap();
    assert_eq!(signals(&rt2), ["probe.v2"]);
}

/// Each bad pack is refused with its reason; v1 keeps running.
#[test]
fn refusals_name_the_reason_and_keep_the_active_set() {
    let team = PackKey::generate().unwrap();
    let stranger = PackKey::generate().unwrap();
    let rt = runtime();
    let (_d, packs) = start(&rt, config(&[&team]));
    packs
        .install_archive(
            signed(probe_files(1, 1), &team),
            None,
            Origin::Installed,
            true,
        )
        .unwrap();

    let mut tampered = author::sign(probe_files(2, 2), &team).unwrap();
    tampered
        .files
        .get_mut("components/probe.wasm")
        .unwrap()
        .push(0);
    let mut future = probe_files(2, 2);
    let m = String::from_utf8(future.files["pack.toml"].clone()).unwrap();
    future.files.insert(
        "pack.toml".into(),
        m.replace("wit = \"0.1.0\"", "wit = \"9.0.0\"").into_bytes(),
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "tampered component",
            tampered.to_archive(),
            "tampered: `components/probe.wasm` has sha256",
        ),
        (
            "wrong key",
            signed(probe_files(2, 2), &stranger),
            "not in [packs] trusted_keys",
        ),
        ("unsigned", probe_files(2, 2).to_archive(), "unsigned"),
        (
            "WIT from the future",
            signed(future, &team),
            "targets WIT plumbline:detector@9.0.0",
        ),
        // v2's component against v1's fixtures: its own tests fail.
        (
            "failing fixtures",
            signed(probe_files(2, 1), &team),
            "fixtures fail for `probe.tick`",
        ),
        ("not an archive", b"PK\x03\x04zip".to_vec(), "bad archive"),
    ];
    for (what, archive, reason) in cases {
        let e = packs
            .install_archive(archive, None, Origin::Installed, true)
            .expect_err(what);
        assert!(e.to_string().contains(reason), "{what}: {e}");
        assert_eq!(signals(&rt), ["probe.v1"], "{what}: v1 still runs");
        let listed = packs.list();
        assert!(
            listed
                .iter()
                .any(|p| p.state == "refused" && p.reason.as_deref() == Some(&e.to_string())),
            "{what}: refusal listed"
        );
        assert_eq!(listed.iter().filter(|p| p.state == "active").count(), 1);
    }
}

#[test]
fn allow_unsigned_admits_unsigned_packs_but_never_tampered_ones() {
    let rt = runtime();
    let mut c = config(&[]);
    c.allow_unsigned = true;
    let (_d, packs) = start(&rt, c);
    let s = packs
        .install_archive(
            probe_files(1, 1).to_archive(),
            None,
            Origin::Installed,
            false,
        )
        .unwrap();
    assert!(matches!(s.trust, Some(Trust::Unverified { .. })));
    let mut extra = probe_files(2, 2);
    extra
        .files
        .insert("fixtures/probe/smuggled.wasm".into(), vec![1]);
    let e = packs
        .install_archive(extra.to_archive(), None, Origin::Installed, false)
        .unwrap_err();
    assert!(e.to_string().contains("not pinned by pack.toml"), "{e}");
}

#[test]
fn shadow_findings_are_kept_apart_until_promoted_and_installs_survive_a_restart() {
    let team = PackKey::generate().unwrap();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let packs = Packs::start(rt.clone(), config(&[&team]), dir.path()).unwrap();
    packs
        .install_archive(
            signed(probe_files(1, 1), &team),
            Some(true),
            Origin::Installed,
            true,
        )
        .unwrap();
    let e = plumbline_trajectory::Evaluator::evaluate(&*rt, &tick("e1"));
    assert!(e.findings.is_empty());
    assert_eq!(e.shadow.len(), 1);
    assert_eq!(packs.list()[0].state, "shadow");

    // A restart (a new runtime on the same data dir) brings the pack back as shadow.
    let rt2 = runtime();
    let again = Packs::start(rt2.clone(), config(&[&team]), dir.path()).unwrap();
    assert_eq!(again.list()[0].state, "shadow");
    again.set_shadow("probe", false).unwrap();
    assert_eq!(signals(&rt2), ["probe.v1"]);
    let rt3 = runtime();
    let third = Packs::start(rt3.clone(), config(&[&team]), dir.path()).unwrap();
    assert_eq!(third.list()[0].state, "active");
    third.remove("probe").unwrap();
    assert!(signals(&rt3).is_empty());
}

#[test]
fn built_in_packs_load_with_their_fixtures_and_can_be_shadowed_or_disabled() {
    let rt = runtime();
    let mut c = PacksConfig::default();
    c.builtin_packs.insert("drift".into(), BuiltinMode::Shadow);
    c.builtin_packs
        .insert("supply-chain".into(), BuiltinMode::Disabled);
    let (_d, packs) = start(&rt, c);
    let list = packs.list();
    let state = |n: &str| list.iter().find(|p| p.name == n).map(|p| p.state);
    for name in [
        "exfiltration",
        "prompt-edits",
        "branch-bypass",
        "credential-abuse",
    ] {
        assert_eq!(state(name), Some("active"), "{name}: {list:#?}");
    }
    assert_eq!(state("drift"), Some("shadow"));
    assert_eq!(state("supply-chain"), None);
    let p = list.iter().find(|p| p.name == "exfiltration").unwrap();
    assert_eq!(p.trust, Some(Trust::Builtin));
    assert!(p.fixtures_passed > 10 && p.detectors.len() >= 5, "{p:#?}");
    assert_eq!(
        rt.detectors().detectors().len(),
        list.iter().map(|p| p.detectors.len()).sum::<usize>()
    );
}

#[test]
fn the_watched_directory_loads_replaces_and_removes_packs() {
    let team = PackKey::generate().unwrap();
    let rt = runtime();
    let (_d, packs) = start(&rt, config(&[&team]));
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Default::default();
    let file = dir.path().join("probe.plpack");
    std::fs::write(&file, signed(probe_files(1, 1), &team)).unwrap();
    watch::scan(&packs, dir.path(), &mut seen);
    assert_eq!(signals(&rt), ["probe.v1"]);
    std::fs::write(&file, signed(probe_files(2, 1), &team)).unwrap();
    watch::scan(&packs, dir.path(), &mut seen);
    assert_eq!(signals(&rt), ["probe.v1"], "a refused file changes nothing");
    std::fs::write(&file, signed(probe_files(2, 2), &team)).unwrap();
    watch::scan(&packs, dir.path(), &mut seen);
    assert_eq!(signals(&rt), ["probe.v2"]);
    std::fs::remove_file(&file).unwrap();
    watch::scan(&packs, dir.path(), &mut seen);
    assert!(signals(&rt).is_empty());
}

/// A pass is remembered beside the compiled components, so the next start does not run the
/// fixtures again; a failure never is, and a configuration the fixtures fail under is
/// refused even though the same component and fixtures passed before under another.
#[test]
fn a_passed_self_test_is_remembered_per_component_config_and_fixtures_and_a_failure_is_not() {
    let team = PackKey::generate().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let runtime_on = |dir: &Path| {
        let c = RuntimeConfig {
            deadline_ms: 10_000,
            ..RuntimeConfig::default()
        };
        Arc::new(Runtime::new(c, Some(dir.to_path_buf())).expect("runtime"))
    };
    let remembered = || match std::fs::read_dir(cache.path().join("self-tests")) {
        Ok(d) => d.count(),
        Err(_) => 0,
    };
    let with_severity = |severity: &str| {
        let mut files = probe_files(1, 1);
        let manifest = String::from_utf8(files.files["pack.toml"].clone()).unwrap();
        let manifest =
            manifest.replace(r#"severity = "2""#, &format!(r#"severity = "{severity}""#));
        files
            .files
            .insert("pack.toml".into(), manifest.into_bytes());
        signed(author::build(files).unwrap().1, &team)
    };
    assert_eq!(remembered(), 0);

    for start_no in 0..2 {
        let rt = runtime_on(cache.path());
        let (_d, packs) = start(&rt, config(&[&team]));
        let s = packs
            .install_archive(with_severity("2"), None, Origin::Installed, true)
            .unwrap();
        assert_eq!(
            (s.state, s.fixtures_passed),
            ("active", 2),
            "start {start_no}"
        );
        assert_eq!(signals(&rt), ["probe.v1"]);
        assert_eq!(
            remembered(),
            1,
            "one pass, remembered once (start {start_no})"
        );
    }

    // Same component, same fixtures, another severity: the fixtures run and fail.
    let rt = runtime_on(cache.path());
    let (_d, packs) = start(&rt, config(&[&team]));
    let e = packs
        .install_archive(with_severity("3"), None, Origin::Installed, true)
        .unwrap_err();
    assert!(
        matches!(&e, PackError::Fixtures { reason, .. } if reason.contains("positive-tick")),
        "{e}"
    );
    assert_eq!(remembered(), 1, "a failure is not remembered");
    assert!(signals(&rt).is_empty(), "nothing activated");
}
