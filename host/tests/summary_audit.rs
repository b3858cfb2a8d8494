//! The summary audit endpoint on the assembled service: an alert summarised by a real
//! (scripted) chat-completions server shows the exact request the model saw.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plumbline::config::Config;
use plumbline::summary::sha256_hex;
use plumbline::summary::testing::{story, ExportDetector, MockLlm, Step};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_audit_endpoint_shows_what_the_model_saw() {
    let llm = MockLlm::start(vec![], Some(Step::Valid(2))).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::load_with_env(
        None,
        [
            ("PLUMBLINE_LLM_BASE_URL".to_string(), llm.base_url.clone()),
            ("PLUMBLINE_LLM_MODEL".to_string(), "test-model".to_string()),
            // The story is dated 2025: keep it whatever today's date.
            (
                "PLUMBLINE_STORE_RETENTION_DAYS".to_string(),
                "0".to_string(),
            ),
        ],
    )
    .unwrap();
    config.server.data_dir = dir.path().to_path_buf();
    let service =
        plumbline::serve::start(config, Arc::new(ExportDetector(AtomicUsize::new(0)))).unwrap();
    let alerts = service.state.alerts.clone();
    let app = plumbline::api::router(service.state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();

    let events: Vec<Value> = story()
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    let r = http
        .post(format!("{base}/v1/events"))
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["accepted"], 4, "{report}");
    let until = Instant::now() + Duration::from_secs(30);
    let alert = loop {
        let done = alerts
            .all()
            .find(|a| a.notes.iter().any(|n| n.starts_with("summary: llm")));
        if let Some(a) = done {
            break a;
        }
        assert!(
            Instant::now() < until,
            "no summarised alert: {:?}, {} calls",
            alerts.all().map(|a| a.notes).collect::<Vec<_>>(),
            llm.calls()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let audit: Value = http
        .get(format!("{base}/v1/alerts/{}/summary-audit", alert.id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["trajectory_hash"], alert.trajectory_hash);
    let rec = &audit["records"][0];
    assert_eq!(rec["provenance"]["source"], "llm");
    assert_eq!(rec["provenance"]["model"], "test-model");
    assert_eq!(rec["trajectory_hash"], alert.trajectory_hash);
    let request = rec["calls"][0]["request"].as_str().unwrap();
    assert_eq!(
        rec["calls"][0]["request_sha256"],
        sha256_hex(request.as_bytes())
    );
    assert!(llm.received().iter().any(|r| r.body == request));
    assert_eq!(audit["cached"]["model"], "test-model");
    let missing = http
        .get(format!("{base}/v1/alerts/alr-nope/summary-audit"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    service.summaries.drain(Duration::from_secs(10)).await;
}
