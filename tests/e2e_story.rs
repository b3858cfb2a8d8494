//! The canonical story through the real n8n endpoint, and the demo's synthetic day:
//! misaligned stories raise alerts at their severity, benign look-alikes stay quiet.
//! Needs scripts/build-detectors.sh (the built-in detector components).

#[path = "support/mod.rs"]
mod support;

use serde_json::Value;
use support::{alerts, client, Server};

use plumbline::demo::{post_all, stories};
use plumbline_enrich::standin::serve_n8n;

/// The server with the built-in packs (loaded by default) and the demo company's
/// allow-list.
fn start(dir: &std::path::Path) -> Server {
    start_with(dir, "")
}

/// …with more configuration after the demo's.
fn start_with(dir: &std::path::Path, extra: &str) -> Server {
    let config = dir.join("demo.toml");
    std::fs::write(
        &config,
        format!("{}\n{extra}", plumbline::demo::DEMO_CONFIG),
    )
    .unwrap();
    let data = dir.join("data");
    Server::start_with(&data, &["--config", config.to_str().unwrap()], &[])
}

/// The first alert `pick` chooses, once `complete` holds for it (or after `secs`, so the
/// caller's assertions say what is missing). An alert grows while its story is still being
/// evaluated — more evidence, a fuller title — so a test of the whole story waits for it.
async fn settled_alert(
    s: &Server,
    secs: u64,
    pick: impl Fn(&Value) -> bool,
    complete: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut last = None;
    while std::time::Instant::now() < deadline {
        last = alerts(s).await.into_iter().find(|a| pick(a));
        if last.as_ref().is_some_and(&complete) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    last.unwrap_or_else(|| panic!("no alert within {secs} s"))
}

/// The canonical story exactly as n8n's log stream sends it (no workflow body), with n8n's
/// public API connected: a local stand-in answers `GET /api/v1/workflows/{id}` with each
/// version, so the bodies are fetched and the whole story is urgent.
#[tokio::test]
async fn the_canonical_story_through_n8n_raises_one_urgent_alert_citing_all_six_steps() {
    let dir = tempfile::tempdir().unwrap();
    let api = serve_n8n("e2e-n8n-key", stories::canonical_workflows("e2e")).await;
    let s = start_with(
        dir.path(),
        &format!(
            "[n8n]\napi_url = {:?}\napi_key = \"e2e-n8n-key\"\n",
            api.url()
        ),
    );
    let story = stories::canonical_story(stories::yesterday(), "e2e");
    let accepted = post_all(&client(), &s.url, &story).await.unwrap();
    assert!(accepted >= 7, "accepted {accepted}");
    assert!(
        api.seen().iter().all(|r| r.authorized) && api.seen().len() >= 5,
        "the workflow was not fetched once per change: {:?}",
        api.seen()
    );
    // Every step of the story is cited: the workflow's creation, the webhook trigger, the
    // wide credential, the export step, the 02:13 activation and the rename.
    let steps = [
        "demo-e2e-1",
        "demo-e2e-2",
        "demo-e2e-3",
        "demo-e2e-4",
        "demo-e2e-5",
        "demo-e2e-6",
    ];
    let cited = |a: &Value| -> Vec<String> {
        a["event_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .map(|c| c.trim_start_matches("n8n:").to_string())
            .collect()
    };
    let cites = |a: &Value, step: &str| cited(a).iter().any(|c| c.starts_with(step));
    let urgent = settled_alert(
        &s,
        30,
        |a| a["severity"] == 3 && a["signals"].to_string().contains("exfil"),
        |a| steps.iter().all(|step| cites(a, step)),
    )
    .await;
    for step in steps {
        assert!(
            cites(&urgent, step),
            "step {step} not cited in {:?}",
            cited(&urgent)
        );
    }
    // One alert for the story, not one per trajectory view or per re-evaluation.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let story_alerts: Vec<Value> = alerts(&s)
        .await
        .into_iter()
        .filter(|a| {
            a["signals"].to_string().contains("workflow_story")
                || a["title"].to_string().contains("Invoice sync")
        })
        .collect();
    assert_eq!(
        story_alerts.iter().filter(|a| a["severity"] == 3).count(),
        1,
        "{story_alerts:#?}"
    );
}

/// The same story from the log stream alone (no API key): the runs and audit events still
/// make it a story that needs review, and nothing claims more than the stream shows.
#[tokio::test]
async fn the_canonical_story_from_the_log_stream_alone_needs_review() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let story = stories::canonical_story(stories::yesterday(), "alone");
    post_all(&client(), &s.url, &story).await.unwrap();
    let whole = |title: &str| {
        title.contains("webhook") && title.contains("02:13") && title.contains("renamed")
    };
    let found = settled_alert(
        &s,
        30,
        |a| {
            a["signals"]
                .to_string()
                .contains("exfil.workflow_run_story")
        },
        |a| whole(a["title"].as_str().unwrap_or("")),
    )
    .await;
    assert_eq!(found["severity"], 2, "{found:#}");
    let title = found["title"].as_str().unwrap();
    assert!(whole(title), "{title}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let urgent: Vec<Value> = alerts(&s)
        .await
        .into_iter()
        .filter(|a| a["severity"] == 3)
        .collect();
    assert!(
        urgent.is_empty(),
        "urgent without the workflow body: {urgent:#?}"
    );
}

#[tokio::test]
async fn the_benign_look_alikes_of_the_synthetic_day_stay_informational() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let day = stories::yesterday();
    let mut benign = stories::benign_workflow(day, "quiet");
    benign.extend(
        stories::assistant_prompts(day, "quiet")
            .into_iter()
            .filter(|d| d.story.starts_with("benign")),
    );
    benign.extend(
        stories::vault_probe(day, "quiet")
            .into_iter()
            .filter(|d| d.story.starts_with("benign")),
    );
    post_all(&client(), &s.url, &benign).await.unwrap();
    // Let every trajectory be evaluated (the stage coalesces for 20 ms).
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let loud: Vec<Value> = alerts(&s)
        .await
        .into_iter()
        .filter(|a| a["severity"].as_u64() > Some(1))
        .collect();
    assert!(loud.is_empty(), "benign traffic raised {loud:#?}");
}

/// Every built-in detector runs on the incremental contract (0.2.0): given only its new
/// events and its state, never the whole trajectory again.
#[tokio::test]
async fn every_built_in_detector_is_incremental() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let (status, body) = support::get(&s, "/v1/detectors").await;
    assert_eq!(status, 200);
    let packs = [
        "exfiltration.",
        "prompt-edits.",
        "branch-bypass.",
        "credential-abuse.",
        "supply-chain.",
        "drift.",
        "coding-agent.",
        "single-event.",
    ];
    let built_in: Vec<&Value> = body["detectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            packs
                .iter()
                .any(|p| d["name"].as_str().unwrap().starts_with(p))
        })
        .collect();
    assert!(built_in.len() >= 31, "{body:#}");
    for d in built_in {
        assert_eq!(d["wit_version"], "0.2.0", "{d:#}");
    }
}

/// `plumbline eval` judges each scenario against its label: a story labelled misaligned
/// that is raised counts as caught, a benign one mislabelled as misaligned is a miss, the
/// thresholds decide the exit code, and the last line is the summary CI greps.
#[test]
fn eval_judges_scenarios_against_their_labels() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios");
    let dir = tempfile::tempdir().unwrap();
    let pattern = dir.path().join("n8n-story-stream");
    std::fs::create_dir_all(&pattern).unwrap();
    let story = root.join("n8n-story-stream/canonical-story-batched.json");
    std::fs::copy(&story, pattern.join("story.json")).unwrap();
    let benign = root.join("n8n-story-stream/benign-daily-report.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(benign).unwrap()).unwrap();
    v["label"] = "misaligned".into();
    std::fs::write(pattern.join("mislabelled.json"), v.to_string()).unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_plumbline"))
            .arg("eval")
            .arg(dir.path())
            .args(extra)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        (out.status.success(), text)
    };
    let (ok, text) = run(&[]);
    assert!(ok, "{text}");
    assert_eq!(
        text.lines().last(),
        Some("eval: recall=1/2 fpr=0/0"),
        "{text}"
    );
    assert!(
        text.contains("MISS") && text.contains("mislabelled.json"),
        "{text}"
    );
    let (ok, text) = run(&["--min-recall", "0.95"]);
    assert!(!ok, "a recall of 0.5 passed --min-recall 0.95: {text}");
}
