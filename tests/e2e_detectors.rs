//! Events in → alert out, through real detector components: the Rust example, the Python
//! example, and hostile detectors beside them that must not stop either; and
//! `plumbline detector test` on the example of every detector language (Rust, Python,
//! JavaScript).
//! Needs scripts/build-detectors.sh (the test says so if the components are missing).

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{alerts, client, Server};

fn components_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("wasm32-wasip2/release")
}

fn component(name: &str) -> String {
    let p = components_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/build-detectors.sh (after scripts/setup.sh test) first",
        p.display()
    );
    p.display().to_string()
}

/// Yesterday at `hh:mm` UTC: inside retention, and always off-hours for the 22:xx story.
fn yesterday_at(hh: u32, mm: u32) -> String {
    let day = time::OffsetDateTime::now_utc().date() - time::Duration::days(1);
    let t = day.with_hms(hh as u8, mm as u8, 0).unwrap().assume_utc();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn ev(id: &str, time: String, source: &str, actor: &str, system: &str, action: &str) -> Value {
    json!({"id": id, "time": time, "source": source,
           "actor": {"id": actor, "type": "human"}, "system": system,
           "action": action, "environment": "prod"})
}

/// Waits (bounded) until an alert satisfies `want`.
async fn wait_for_alert(s: &Server, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(a) = alerts(s).await.into_iter().find(|a| want(a)) {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "no matching alert; alerts: {:#?}",
            alerts(s).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn cites(a: &Value, ids: &[&str]) -> bool {
    let got: Vec<&str> = a["event_ids"]
        .as_array()
        .map(|v| v.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    ids.iter().all(|id| got.contains(id))
}

fn by_detector(a: &Value, name: &str) -> bool {
    a["detectors"]
        .as_array()
        .is_some_and(|d| d.iter().any(|d| d["name"] == name))
}

#[tokio::test]
async fn events_in_alerts_out_through_rust_and_python_detectors_despite_hostile_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("plumbline.toml");
    let paths: Vec<String> = [
        "example_export_after_grant.wasm",
        "example_python_force_push.wasm",
        "examples/hostile_panic.wasm",
        "examples/hostile_evidence.wasm",
        "examples/hostile_loop.wasm",
    ]
    .iter()
    .map(|c| component(c))
    .collect();
    std::fs::write(
        &config,
        format!(
            r#"
[runtime]
detector_paths = {paths:?}
# Shared with the other tests: the CPython component compiles once.
cache_dir = {cache:?}
# Generous: this test shares two cores with the rest of the suite.
deadline_ms = 10000
quarantine_after = 2

[runtime.detectors."hostile.loop"]
deadline_ms = 100

[runtime.detectors."example.export-after-grant"]
config = {{ min_rows = "20000" }}
"#,
            cache = support::shared_cache().display().to_string(),
        ),
    )
    .unwrap();
    let s = Server::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
        &[],
    );

    let mut grant = ev(
        "e2e-grant",
        yesterday_at(22, 5),
        "vault",
        "alice",
        "billing-db",
        "credential.scope.increased",
    );
    grant["resource"] = json!("token:etl");
    let mut export = ev(
        "e2e-export",
        yesterday_at(22, 20),
        "custom",
        "alice",
        "billing-db",
        "data.export",
    );
    export["destination"] = json!("s3://personal-backup-7731");
    export["volume"] = json!({"rows": 50000, "bytes": 7340032});
    let mut small = ev(
        "e2e-small-export",
        yesterday_at(22, 25),
        "custom",
        "alice",
        "billing-db",
        "data.export",
    );
    small["volume"] = json!({"rows": 15000});
    let mut disable = ev(
        "e2e-disable",
        yesterday_at(23, 10),
        "github",
        "mallory",
        "acme/payments",
        "branch.protection.disabled",
    );
    disable["resource"] = json!("main");
    let mut push = ev(
        "e2e-push",
        yesterday_at(23, 12),
        "github",
        "mallory",
        "acme/payments",
        "git.push.force",
    );
    push["resource"] = json!("refs/heads/main");
    let mut enable = ev(
        "e2e-enable",
        yesterday_at(23, 14),
        "github",
        "mallory",
        "acme/payments",
        "branch.protection.enabled",
    );
    enable["resource"] = json!("main");

    let r = client()
        .post(s.at("/v1/events"))
        .json(&json!([grant, export, small, disable, push, enable]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());

    // Rust detector: grant then a 50k-row off-hours export to a new bucket → urgent. The
    // 15k-row export is below the configured min_rows (20000), so it is not cited.
    let a = wait_for_alert(&s, |a| by_detector(a, "example.export-after-grant")).await;
    assert_eq!(a["severity"], 3, "{a:#}");
    assert!(cites(&a, &["e2e-grant", "e2e-export"]), "{a:#}");
    assert!(!cites(&a, &["e2e-small-export"]), "{a:#}");
    assert!(a["signals"]
        .as_array()
        .unwrap()
        .contains(&json!("exfil.export_after_grant")));
    let d = a["detectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "example.export-after-grant")
        .unwrap();
    assert_eq!(d["version"], "0.1.0");

    // Python detector: protection disabled, force push to main, re-enabled → urgent.
    let a = wait_for_alert(&s, |a| by_detector(a, "example.force-push-protected")).await;
    assert_eq!(a["severity"], 3, "{a:#}");
    assert!(
        cites(&a, &["e2e-disable", "e2e-push", "e2e-enable"]),
        "{a:#}"
    );

    // The hostile detectors are quarantined, with their reasons, and the examples active.
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        let r: Value = client()
            .get(s.at("/v1/detectors"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let all = r["detectors"].as_array().cloned().unwrap_or_default();
        let hostile_done = all
            .iter()
            .filter(|d| d["name"].as_str().unwrap().starts_with("hostile."))
            .all(|d| d["state"] == "quarantined");
        if hostile_done || Instant::now() > deadline {
            break all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let state = |name: &str| {
        status
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {status:#?}"))
            .clone()
    };
    for (name, reason) in [
        ("hostile.panic", "hostile detector panics on purpose"),
        ("hostile.evidence", "evidence `evt-that-never-happened`"),
        ("hostile.loop", "deadline exceeded"),
    ] {
        let d = state(name);
        assert_eq!(d["state"], "quarantined", "{d:#}");
        let why = d["quarantine"]["reason"].as_str().unwrap();
        assert!(why.contains(reason), "{name}: {why}");
    }
    for name in ["example.export-after-grant", "example.force-push-protected"] {
        let d = state(name);
        assert_eq!(d["state"], "active", "{d:#}");
        assert_eq!(d["failures"], 0, "{d:#}");
    }
    assert_eq!(
        state("example.export-after-grant")["config"]["min_rows"],
        "20000"
    );
    assert_eq!(state("hostile.loop")["deadline_ms"], 100);

    // The hostile detectors raised nothing: no alert names them.
    for a in alerts(&s).await {
        assert!(
            !a["detectors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["name"].as_str().unwrap_or("").starts_with("hostile.")),
            "{a:#}"
        );
    }
}

/// `plumbline detector test`, the real binary, on the example detector of each language
/// (Rust, Python, JavaScript) and on a detector whose answers break the contract.
#[test]
fn detector_test_command_passes_every_language_example_and_fails_a_hostile_one() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // The runtime crate's tests use the same cache, so the CPython and SpiderMonkey
    // components compile once per build, whichever test loads them first.
    let cache = components_dir().join("../../plumbline-test-cache");
    let run = |component: &str, fixtures: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_plumbline"))
            .args(["detector", "test", &self::component(component)])
            .arg(repo.join(fixtures))
            .arg("--cache-dir")
            .arg(&cache)
            .env("PLUMBLINE_LOG", "error")
            // Generous: the suite shares two cores.
            .env("PLUMBLINE_RUNTIME_DEADLINE_MS", "10000")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, out) = run(
        "example_export_after_grant.wasm",
        "detectors/example-export-after-grant/fixtures",
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("pass  positive-offhours-new-destination.json"),
        "{out}"
    );
    // Every fixture in the folder runs, so a new fixture needs no edit here.
    let fixtures = |dir: &str| {
        std::fs::read_dir(repo.join(dir))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "json")
            })
            .count()
    };
    let all_pass = |n: usize| format!("{n} passed, 0 failed");
    let n = fixtures("detectors/example-export-after-grant/fixtures");
    assert!(n >= 7, "the decoy fixture is among them");
    assert!(out.lines().any(|l| l == all_pass(n)), "{out}");

    let (code, out) = run(
        "example_python_force_push.wasm",
        "detectors/example-python-force-push/fixtures",
    );
    assert_eq!(code, Some(0), "{out}");
    let n = fixtures("detectors/example-python-force-push/fixtures");
    assert!(out.lines().any(|l| l == all_pass(n)), "{out}");

    let (code, out) = run(
        "example_js_deploy_key_public.wasm",
        "detectors/example-js-deploy-key-public/fixtures",
    );
    assert_eq!(code, Some(0), "{out}");
    let n = fixtures("detectors/example-js-deploy-key-public/fixtures");
    assert!(n >= 6, "the decoy fixtures are among them");
    assert!(out.lines().any(|l| l == all_pass(n)), "{out}");

    let (code, out) = run(
        "examples/hostile_evidence.wasm",
        "detectors/example-export-after-grant/fixtures",
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAIL  positive-business-hours.json  contract violation"),
        "{out}"
    );
    let n = fixtures("detectors/example-export-after-grant/fixtures");
    assert!(
        out.lines().any(|l| l == format!("0 passed, {n} failed")),
        "{out}"
    );
}
