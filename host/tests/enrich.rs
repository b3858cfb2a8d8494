//! The assembled service (`serve::start`) with `[n8n] api_url` pointing at a stand-in of
//! n8n's public API: n8n's log stream, posted as n8n sends it, is stored with what the
//! workflow is; when the API fails the events are stored all the same, and `/metrics`
//! counts the look-ups by outcome.

use std::sync::Arc;

use serde_json::{json, Value};
use time::OffsetDateTime;

use plumbline::config::Config;
use plumbline_enrich::standin::{serve_n8n, Fault};

const N8N_TOKEN: &str = "n8n-log-stream-token";
const API_KEY: &str = "n8n-public-api-key-0a1b2c3d";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_enriches_n8n_audit_events_and_counts_look_ups_in_metrics() {
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/enrich/tests/fixtures/n8n_workflows.json"
    );
    let workflows = serde_json::from_slice(&std::fs::read(fixtures).unwrap()).unwrap();
    let n8n_api = serve_n8n(API_KEY, workflows).await;

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    config.server.data_dir = dir.path().join("data");
    config.n8n.token = N8N_TOKEN.into();
    config.n8n.api_url = n8n_api.url();
    config.n8n.api_key = API_KEY.into();
    config.n8n.api_timeout_ms = 500;
    let service = plumbline::serve::start(
        config,
        Arc::new(plumbline_trajectory::evaluate::NoDetectors),
    )
    .unwrap();
    let review = plumbline_api::review::routes(plumbline_api::review::ReviewState {
        app: service.state.clone(),
        review: service.review.clone(),
        runtime: None,
        summaries: Some(service.summaries.clone()),
        secure_cookie: false,
        signins: Default::default(),
    });
    let app = plumbline_api::router(service.state.clone()).merge(review);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let http = reqwest::Client::new();
    let post = |id: &str, event: &str, minutes_ago: i64| {
        let ts = plumbline_event::format_time(
            OffsetDateTime::now_utc() - time::Duration::minutes(minutes_ago),
        );
        let body = json!({
            "id": id, "ts": ts, "eventName": event, "message": event,
            "payload": {"userId": "u-7", "_email": "mallory@acme.example",
                        "workflowId": "Wf7pQ2rS9tU4vW1x", "workflowName": "Invoice sync (temp)"}
        });
        http.post(format!("{base}/v1/ingest/n8n"))
            .bearer_auth(N8N_TOKEN)
            .json(&body)
            .send()
    };
    let event = |id: &str| {
        let url = format!("{base}/v1/events/n8n:{id}");
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().json::<Value>().await }
    };

    let r = post("s-1", "n8n.audit.workflow.created", 3).await.unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let created = event("s-1").await.unwrap();
    assert_eq!(created["attributes"]["enrichment.source"], "n8n-api");
    assert_eq!(created["attributes"]["trigger.kinds"], "webhook");

    n8n_api.fault(Some(Fault::Delay(std::time::Duration::from_secs(5))));
    let r = post("s-2", "n8n.audit.workflow.updated", 2).await.unwrap();
    assert_eq!(r.status(), 202, "stored without it");
    let updated = event("s-2").await.unwrap();
    assert_eq!(
        updated["attributes"]["enrichment.error"],
        "n8n API: GET /api/v1/workflows/Wf7pQ2rS9tU4vW1x: timed out after 500 ms"
    );

    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"plumbline_enrich_requests_total{source="n8n",outcome="ok"} 1"#,
        r#"plumbline_enrich_requests_total{source="n8n",outcome="failed"} 1"#,
        r#"plumbline_enrich_requests_total{source="n8n",outcome="cached"} 0"#,
    ] {
        assert!(metrics.contains(line), "/metrics lacks {line}:\n{metrics}");
    }
    assert!(!metrics.contains(API_KEY));
}
