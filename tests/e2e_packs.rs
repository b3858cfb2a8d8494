//! Packs end to end against the real binary: built-in packs load by default; a signed pack
//! is swapped for its next version while thousands of events per second stream in, every
//! event is evaluated exactly once and findings switch to the new version; the archive is
//! pulled from one host and installed on another; shadow, promote and replay over stored
//! history.
//!
//! Components: detectors/testing/pack-probe (scripts/build-detectors.sh builds them).

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use plumbline::bench::swap::probe_pack;
use plumbline_runtime::pack::archive::PackFiles;
use plumbline_runtime::pack::PackKey;
use serde_json::{json, Value};
use support::{client, eventually, post_events, Server};

fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn write_config(dir: &Path, key: &PackKey) -> PathBuf {
    let path = dir.join("plumbline.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[runtime]
# Shared with the other tests: built-in components compile once.
cache_dir = {cache:?}
deadline_ms = 10000

# Settle re-judgements (rules about what did not happen) are deliberate extra
# evaluations; off here so the count is exactly one per change.
[trajectory]
settle_secs = []

[packs]
trusted_keys = [{{ name = "e2e", key = "{key}" }}]
"#,
            cache = target().join("plumbline-test-cache").display().to_string(),
            key = key.public_hex(),
        ),
    )
    .unwrap();
    path
}

fn start(key: &PackKey) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), key);
    let data = dir.path().join("data");
    let s = Server::start_with(&data, &["--config", config.to_str().unwrap()], &[]);
    (dir, s)
}

fn tick(i: usize, base: i64, prefix: &str) -> Value {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos((base + i as i64 * 1_000_000) as i128)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    // Its own actor and system: each event is one actor and one system trajectory.
    json!({
        "id": format!("{prefix}:{i}"),
        "time": t,
        "source": "custom",
        "actor": {"id": format!("{prefix}-actor-{i}"), "type": "service"},
        "system": format!("{prefix}/system-{i}"),
        "action": "probe.tick",
    })
}

async fn get(s: &Server, path: &str) -> Value {
    let r = client().get(s.at(path)).send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

/// (calls, findings) of probe.tick at `version` in `GET /v1/packs` (active or retired).
async fn counters(s: &Server, version: &str) -> (u64, u64) {
    let packs = get(s, "/v1/packs").await;
    let p = packs["packs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "probe" && p["version"] == version && p["state"] != "refused");
    match p {
        Some(p) => {
            let d = &p["detectors"][0];
            (
                d["calls"].as_u64().unwrap(),
                d["findings"].as_u64().unwrap(),
            )
        }
        None => (0, 0),
    }
}

async fn install(s: &Server, archive: Vec<u8>, query: &str) -> (u16, Value) {
    let r = client()
        .post(s.at(&format!("/v1/packs{query}")))
        .body(archive)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn now_nanos() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swap_while_streaming_share_shadow_and_replay() {
    let key = PackKey::generate().unwrap();
    let (_a_dir, a) = start(&key);

    // Built-in packs are loaded by default, trusted by release.
    let packs = get(&a, "/v1/packs").await;
    for name in [
        "exfiltration",
        "prompt-edits",
        "branch-bypass",
        "credential-abuse",
        "supply-chain",
        "drift",
    ] {
        let p = packs["packs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("built-in {name} not listed: {packs}"));
        assert_eq!(p["state"], "active", "{name}: {p}");
        assert_eq!(p["trust"]["kind"], "builtin");
    }

    let (status, body) = install(&a, probe_pack(1, &key).unwrap(), "").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["state"], "active");

    // Stream N events in batches as fast as the server takes them; swap to v2 mid-stream.
    const N: usize = 6000;
    const BATCH: usize = 250;
    let base = now_nanos() - 3_600_000_000_000;
    let posted = Arc::new(AtomicUsize::new(0));
    // The streamer posts half, tells the test, keeps posting up to three quarters while
    // the swap is under way, and posts the last quarter only once the swap has answered:
    // the swap happens mid-stream by construction, not by timing.
    let (half_tx, half_rx) = tokio::sync::oneshot::channel::<()>();
    let (swapped_tx, swapped_rx) = tokio::sync::oneshot::channel::<()>();
    let streamer = {
        let url = a.url.clone();
        let posted = posted.clone();
        tokio::spawn(async move {
            let c = client();
            let (mut half_tx, mut swapped_rx) = (Some(half_tx), Some(swapped_rx));
            for start in (0..N).step_by(BATCH) {
                if start == N / 2 {
                    half_tx.take().unwrap().send(()).unwrap();
                }
                if start == 3 * N / 4 {
                    swapped_rx.take().unwrap().await.unwrap();
                }
                let batch: Vec<Value> = (start..start + BATCH)
                    .map(|i| tick(i, base, "live"))
                    .collect();
                let r = c
                    .post(format!("{url}/v1/events"))
                    .json(&batch)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
                posted.fetch_add(BATCH, Ordering::SeqCst);
            }
        })
    };
    half_rx.await.unwrap();
    eventually(120, || async {
        (counters(&a, "1.0.0").await.1 >= 500).then_some(())
    })
    .await;
    let (status, body) = install(&a, probe_pack(2, &key).unwrap(), "").await;
    assert_eq!(status, 201, "{body}");
    let posted_at_swap = posted.load(Ordering::SeqCst);
    swapped_tx.send(()).unwrap();
    streamer.await.unwrap();

    // Every event: one actor and one system trajectory, each evaluated exactly once, by v1
    // or v2; the probe raises one finding per event (actor trajectories only).
    let (calls, findings) = eventually(300, || async {
        let (c1, f1) = counters(&a, "1.0.0").await;
        let (c2, f2) = counters(&a, "2.0.0").await;
        (c1 + c2 >= 2 * N as u64).then_some((c1 + c2, f1 + f2))
    })
    .await;
    assert_eq!(
        calls,
        2 * N as u64,
        "each trajectory evaluated exactly once"
    );
    assert_eq!(findings, N as u64, "each event in exactly one finding");
    let (_, v1) = counters(&a, "1.0.0").await;
    let (_, v2) = counters(&a, "2.0.0").await;
    // Events posted after the swap answered can only have met v2.
    assert!(
        v1 >= 500 && v1 <= posted_at_swap as u64,
        "v1 {v1}, posted at swap {posted_at_swap}"
    );
    assert!(v2 >= (N - posted_at_swap) as u64, "v2 {v2}");
    // The newest alerts are all v2's.
    let alerts = eventually(120, || async {
        let a = get(&a, "/v1/alerts?limit=500").await;
        (a["alerts"].as_array().unwrap().len() == 500).then_some(a)
    })
    .await;
    for al in alerts["alerts"].as_array().unwrap() {
        assert_eq!(al["findings"][0]["signal"], "probe.v2", "{al}");
        assert_eq!(al["findings"].as_array().unwrap().len(), 1);
    }

    // Replay v2 over the stored history: every stored probe event found once; live
    // counters untouched.
    let live_before = counters(&a, "2.0.0").await;
    let r = client()
        .post(a.at(&format!("/v1/replay?pack=probe&since={}", "2h")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["events"], N, "{report}");
    assert_eq!(report["detectors"][0]["findings"], N);
    assert_eq!(report["detectors"][0]["would_alert"], N);
    assert_eq!(
        counters(&a, "2.0.0").await,
        live_before,
        "replay leaves live counters alone"
    );

    // Sharing: host B pulls A's archive and installs it — as shadow first.
    let archive = client()
        .get(a.at("/v1/packs/probe/2.0.0"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let (_b_dir, b) = start(&key);
    let (status, body) = install(&b, archive.clone(), "?shadow=true").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["state"], "shadow");
    let shadow_base = now_nanos() - 60_000_000_000;
    let first: Vec<Value> = (0..40).map(|i| tick(i, shadow_base, "shadow")).collect();
    post_events(&b, &first).await;
    eventually(120, || async {
        let s = get(&b, "/v1/shadow-findings").await;
        let n = s["shadow"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["findings"][0]["signal"] == "probe.v2")
            .count();
        (n == 40).then_some(())
    })
    .await;
    let alerts = get(&b, "/v1/alerts").await;
    assert!(
        !alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["signals"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == "probe.v2")),
        "shadow findings raise no alert"
    );
    // Replay on B's stored history sees what shadow saw.
    let report: Value = client()
        .post(b.at("/v1/replay?pack=probe&since=1h"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["detectors"][0]["findings"], 40, "{report}");

    let r = client()
        .post(b.at("/v1/packs/probe/promote"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let more: Vec<Value> = (100..110).map(|i| tick(i, shadow_base, "shadow")).collect();
    post_events(&b, &more).await;
    eventually(120, || async {
        let a = get(&b, "/v1/alerts?limit=1000").await;
        let n = a["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| {
                a["signals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s == "probe.v2")
            })
            .count();
        (n == 10).then_some(())
    })
    .await;

    // A tampered upload is refused with its reason and B keeps running v2.
    let mut files = PackFiles::from_archive(&archive).unwrap();
    files
        .files
        .insert("fixtures/probe/extra.json".into(), b"{}".to_vec());
    let (status, body) = install(&b, files.to_archive(), "").await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.to_string().contains("not pinned by pack.toml"),
        "{body}"
    );
    let packs = get(&b, "/v1/packs").await;
    let probe: Vec<&Value> = packs["packs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "probe")
        .collect();
    assert!(probe
        .iter()
        .any(|p| p["state"] == "active" && p["version"] == "2.0.0"));
    assert!(probe.iter().any(|p| p["state"] == "refused"));

    // A downgrade needs an admin's force; every attempt is in the audit log.
    let (status, body) = install(&b, probe_pack(1, &key).unwrap(), "").await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("older than 2.0.0"), "{body}");
    let (status, body) = install(&b, probe_pack(1, &key).unwrap(), "?force=true").await;
    assert_eq!(status, 201, "{body}");
    let log = get(&b, "/v1/audit").await;
    let seen: Vec<(String, String, String)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let outcome = e["outcome"].as_str().unwrap();
            let outcome = outcome.split(':').next().unwrap().to_string();
            let action = e["action"].as_str().unwrap().to_string();
            (action, e["target"].as_str().unwrap().to_string(), outcome)
        })
        .collect();
    let expect = [
        ("pack.install", "probe", "ok"),
        ("pack.install", "probe", "refused"),
        ("pack.install", "probe", "refused"),
        ("pack.promote", "probe", "ok"),
        ("pack.install", "probe", "ok"),
        ("policy.load", "(embedded default policy)", "ok"),
    ];
    let expect: Vec<(String, String, String)> = expect
        .iter()
        .map(|(a, t, o)| (a.to_string(), t.to_string(), o.to_string()))
        .collect();
    assert_eq!(seen, expect, "{log}");
    assert_eq!(log["entries"][0]["detail"]["force"], true);
    assert_eq!(log["entries"][0]["who"], "anonymous");
}
