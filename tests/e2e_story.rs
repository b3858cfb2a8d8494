//! The canonical story through the real n8n endpoint, and the demo's synthetic day:
//! misaligned stories raise alerts at their severity, benign look-alikes stay quiet.
//! Needs scripts/build-detectors.sh (the built-in detector components).

#[path = "support/mod.rs"]
mod support;

use serde_json::Value;
use support::{client, eventually, Server};

use plumbline::demo::{post_all, stories};

/// The server with the built-in packs (loaded by default) and the demo company's
/// allow-list.
fn start(dir: &std::path::Path) -> Server {
    let config = dir.join("demo.toml");
    std::fs::write(&config, plumbline::demo::DEMO_CONFIG).unwrap();
    let data = dir.join("data");
    Server::start_with(&data, &["--config", config.to_str().unwrap()], &[])
}

async fn alerts(s: &Server) -> Vec<Value> {
    let v: Value = client()
        .get(s.at("/v1/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["alerts"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn the_canonical_story_through_n8n_raises_one_urgent_alert_citing_all_six_steps() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let story = stories::canonical_story(stories::yesterday(), "e2e");
    let accepted = post_all(&client(), &s.url, &story).await.unwrap();
    assert!(accepted >= 7, "accepted {accepted}");
    let urgent = eventually(30, || async {
        alerts(&s)
            .await
            .into_iter()
            .find(|a| a["severity"] == 3 && a["signals"].to_string().contains("exfil"))
    })
    .await;
    // Every step of the story is cited: the workflow's creation, the webhook trigger, the
    // wide credential, the export step, the 02:13 activation and the rename.
    let cited: Vec<String> = urgent["event_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for step in [
        "demo-e2e-1",
        "demo-e2e-2",
        "demo-e2e-3",
        "demo-e2e-4",
        "demo-e2e-5",
        "demo-e2e-6",
    ] {
        assert!(
            cited
                .iter()
                .any(|c| c.trim_start_matches("n8n:").starts_with(step)),
            "step {step} not cited in {cited:?}"
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
