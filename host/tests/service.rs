//! The assembled service (`serve::start`): every stage wired as the binary wires it, ingest
//! over HTTP through to detectors, summaries, policy, the outbox and response actions; and
//! the summary audit endpoint showing what a real (scripted) chat-completions server saw.

#[path = "../../crates/delivery/tests/routing/receivers.rs"]
mod receivers;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use time::OffsetDateTime;

use plumbline::config::Config;
use plumbline_alert::finding::Finding;
use plumbline_event::{format_time, Event};
use plumbline_summary::sha256_hex;
use plumbline_summary::testing::{story, ExportDetector, MockLlm, Step};
use plumbline_trajectory::Trajectory;
use receivers::policy_toml;

const PUBLIC: &str = "http://plumbline.test";
const N8N_TOKEN: &str = "n8n-log-stream-token";

/// Bounded wait for the asynchronous end-to-end path (not a timing assertion).
async fn wait_until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..400 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("waited 20 s for {what}");
}

fn text_of(r: &receivers::Req) -> String {
    r.body.to_string()
}

/// End to end through the real service: ingest over HTTP, a detector finding, the summary
/// stage, policy, the outbox, and a response action that waits for a reviewer's approval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_action_waits_for_approval_through_the_api() {
    use plumbline_trajectory::{Evaluation, Evaluator};

    struct ExportAfterWorkflow;
    impl Evaluator for ExportAfterWorkflow {
        fn evaluate(&self, t: &Trajectory) -> Evaluation {
            // Like a detector that declares no views: the rolling windows only.
            if t.kind.is_drift() {
                return Evaluation::default();
            }
            let exports: Vec<&Arc<Event>> = t
                .events
                .iter()
                .filter(|e| e.action == "data.export")
                .collect();
            if exports.is_empty() || !t.events.iter().any(|e| e.action == "workflow.activated") {
                return Evaluation::default();
            }
            Evaluation {
                findings: vec![Finding {
                    detector: "test.workflow-export".into(),
                    detector_version: "1.0.0".into(),
                    signal: "exfil.workflow_export".into(),
                    severity: 3,
                    score: 0.95,
                    title: "Workflow activated and exported records".into(),
                    evidence: t.events.iter().map(|e| e.id.clone()).collect(),
                    next_step: "pause workflow".into(),
                }],
                shadow: vec![],
            }
        }
    }

    let (rx_addr, rx) = receivers::start().await;
    let (smtp_addr, _) = receivers::start_smtp().await;
    let dir = tempfile::tempdir().unwrap();
    let policy_path = dir.path().join("policy.toml");
    let policy = policy_toml(rx_addr, smtp_addr, "")
        .replace("[actions]\nenabled = false", "[actions]\nenabled = true")
        .replace(
            "[quiet_hours]\nenabled = true",
            "[quiet_hours]\nenabled = false",
        );
    std::fs::write(&policy_path, policy).unwrap();
    let mut config = plumbline::config::Config::defaults();
    config.server.data_dir = dir.path().join("data");
    config.server.public_url = PUBLIC.into();
    config.policy.file = policy_path;
    config.delivery.retry_base_ms = 50;
    config.delivery.poll_ms = 50;
    config.trajectory.eval_delay_ms = 5;
    config.n8n.token = N8N_TOKEN.into();
    config.auth.tokens = vec![
        plumbline::config::ApiToken {
            name: "shipper".into(),
            token: "shipper-token-0123456789".into(),
            scopes: vec![
                plumbline::config::Scope::Ingest,
                plumbline::config::Scope::Read,
            ],
        },
        plumbline::config::ApiToken {
            name: "review-page".into(),
            token: "review-token-0123456789".into(),
            scopes: vec![
                plumbline::config::Scope::Review,
                plumbline::config::Scope::Read,
            ],
        },
        plumbline::config::ApiToken {
            name: "secops-admin".into(),
            token: "admin-token-0123456789".into(),
            scopes: vec![plumbline::config::Scope::Admin],
        },
    ];
    // The destinations that read the environment are simply not configured here.
    std::env::set_var("TEST_WEBHOOK_URL", format!("http://{rx_addr}/webhook"));
    std::env::set_var("TEST_JIRA_TOKEN", "jira-token");
    let store_config = config.store.clone();
    let service = plumbline::serve::start(config, Arc::new(ExportAfterWorkflow)).unwrap();
    let kept = plumbline::retention::Kept {
        store: service.state.store.clone(),
        trajectories: service.state.trajectories.clone(),
        alerts: service.state.alerts.clone(),
        labels: service.review.labels.clone(),
        routing: service.state.routing.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, plumbline_api::router(service.state))
            .await
            .unwrap()
    });
    let http = reqwest::Client::new();
    let base = format!("http://{api}");
    let at = |m: i64| format_time(OffsetDateTime::now_utc() - time::Duration::minutes(m));
    // The activation comes through n8n's own log stream (its token verified): that is
    // what may name the workflow to pause. The export comes through the generic API, as
    // evidence only.
    let activated = json!({
        "id": "5b2a1c4d-2e3f-4a71-8c1d-000000000001", "ts": at(3),
        "eventName": "n8n.audit.workflow.activated", "message": "n8n.audit.workflow.activated",
        "payload": {"userId": "u-1", "_email": "mallory@example.com", "workflowId": "wf-42",
                    "workflowName": "Invoice sync (temp)"}
    });
    let r = http
        .post(format!("{base}/v1/ingest/n8n"))
        .bearer_auth(N8N_TOKEN)
        .json(&activated)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let export = json!(
        {"id": "n2", "time": at(2), "source": "n8n", "actor": {"id": "mallory@example.com", "type": "human"},
         "system": "n8n/workflow/wf-42", "action": "data.export", "environment": "prod",
         "destination": "https://paste.example.net/in", "volume": {"rows": 50000},
         "attributes": {"workflow.id": "wf-42"}}
    );
    let r = http
        .post(format!("{base}/v1/events"))
        .bearer_auth("shipper-token-0123456789")
        .json(&export)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());

    wait_until("the page", || !rx.of("pagerduty").is_empty()).await;
    wait_until("the chat message", || !rx.of("slack").is_empty()).await;

    let get = |path: String, token: &'static str| {
        let http = http.clone();
        async move {
            let r = http.get(path).bearer_auth(token).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, list) = get(
        format!("{base}/v1/actions?state=pending"),
        "review-token-0123456789",
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(list["count"], 1, "{list}");
    let action = &list["actions"][0];
    let id = action["id"].as_str().unwrap().to_string();
    assert_eq!(action["target"]["workflow_id"], "wf-42");
    assert_eq!(action["automatic"], false);
    // The page offered it; nothing ran.
    assert!(text_of(&rx.of("slack")[0]).contains("waiting for approval"));
    assert!(rx.of("n8n").is_empty());
    let (s, _) = get(format!("{base}/v1/outbox"), "review-token-0123456789").await;
    assert_eq!(s, 200);
    // Still nothing after the dispatcher has had passes to spare.
    let (_, ob) = get(format!("{base}/v1/outbox"), "review-token-0123456789").await;
    assert!(
        ob["destinations"].get("action:pause_workflow").is_none(),
        "{ob}"
    );
    assert!(rx.of("n8n").is_empty());

    // Tokens without the review scope cannot approve; bad ids are named.
    let post = |path: String, token: &'static str, body: Value| {
        let http = http.clone();
        async move {
            let r = http
                .post(path)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, e) = post(
        format!("{base}/v1/actions/{id}/approve"),
        "shipper-token-0123456789",
        json!({"by": "mallory"}),
    )
    .await;
    assert_eq!(s, 403);
    assert!(e["error"].as_str().unwrap().contains("review"));
    let (s, _) = post(
        format!("{base}/v1/actions/act-nope/approve"),
        "review-token-0123456789",
        json!({}),
    )
    .await;
    assert_eq!(s, 404);
    let (s, e) = post(
        format!("{base}/v1/actions/{id}/approve"),
        "review-token-0123456789",
        json!({"by": "alice", "comment": "confirmed with the data owner", "extra": 1}),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    // A decision is JSON: the bodies a cross-site form could send are refused.
    let r = http
        .post(format!("{base}/v1/actions/{id}/approve"))
        .bearer_auth("review-token-0123456789")
        .header("content-type", "text/plain")
        .body(r#"{"by": "alice"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);

    // A reviewer approves: it runs, once, and who approved is recorded.
    let (s, a) = post(
        format!("{base}/v1/actions/{id}/approve"),
        "review-token-0123456789",
        json!({"by": "alice", "comment": "confirmed with the data owner"}),
    )
    .await;
    assert_eq!(s, 202, "{a}");
    wait_until("the workflow to be paused", || !rx.of("n8n").is_empty()).await;
    let paused = rx.of("n8n");
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0].body["workflow_id"], "wf-42");
    let mut done = Value::Null;
    for _ in 0..200 {
        let (_, a) = get(format!("{base}/v1/actions/{id}"), "review-token-0123456789").await;
        if a["state"] == "done" {
            done = a;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["decision"]["by"], "alice");
    assert_eq!(done["decision"]["token"], "review-page");
    let (s, _) = post(
        format!("{base}/v1/actions/{id}/approve"),
        "review-token-0123456789",
        json!({"by": "alice"}),
    )
    .await;
    assert_eq!(s, 409, "an action runs once");
    let alert_id = done["alert_id"].as_str().unwrap().to_string();
    let (s, d) = get(
        format!("{base}/v1/policy/decisions/{alert_id}"),
        "review-token-0123456789",
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(d["decisions"][0]["routes"][0], "urgent");
    let (_, alert) = get(
        format!("{base}/v1/alerts/{alert_id}"),
        "review-token-0123456789",
    )
    .await;
    assert!(
        alert.to_string().contains("approved by alice"),
        "the approval is on the alert: {alert}"
    );
    // The policy endpoint shows destinations, never their secrets.
    let (s, pol) = get(format!("{base}/v1/policy"), "review-token-0123456789").await;
    assert_eq!(s, 200);
    assert_eq!(pol["destinations"]["pagerduty"]["enabled"], true);
    let shown = pol.to_string();
    for secret in [
        receivers::PD_KEY,
        receivers::WEBHOOK_SECRET,
        receivers::LINEAR_KEY,
        "jira-token",
    ] {
        assert!(!shown.contains(secret), "{secret} leaked");
    }
    let (s, _) = get(
        format!("{base}/v1/outbox/deliveries/abc"),
        "review-token-0123456789",
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(rx.of("n8n").len(), 1);

    // Every decision that reached the handler is in the admin audit log, with who made it;
    // only an admin token reads it.
    let (s, _) = get(format!("{base}/v1/audit"), "review-token-0123456789").await;
    assert_eq!(s, 403);
    let (s, log) = get(format!("{base}/v1/audit"), "admin-token-0123456789").await;
    assert_eq!(s, 200, "{log}");
    let decisions: Vec<(String, String, String)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "action.approve")
        .map(|e| {
            let outcome = e["outcome"].as_str().unwrap();
            let outcome = outcome.split(':').next().unwrap().to_string();
            let who = e["who"].as_str().unwrap().to_string();
            (e["target"].as_str().unwrap().to_string(), who, outcome)
        })
        .collect();
    let expected = [
        (id.as_str(), "review-page", "refused"),
        (id.as_str(), "review-page", "ok"),
        ("act-nope", "review-page", "refused"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(decisions, expected, "{log}");

    // Retention: a year and a day later, the events, the alerts and what routing kept
    // about them are gone; a sweep one day later leaves everything. (The trajectories are
    // still open here, as no later event moved time past their window; closed ones go
    // with their events: `retention_forgets_old_closed_trajectories_and_the_renames_to_them`.)
    let now = |days: i64| {
        (OffsetDateTime::now_utc() + time::Duration::days(days)).unix_timestamp_nanos() as i64
    };
    let swept = kept.sweep(&store_config, now(1)).unwrap();
    assert_eq!((swept.events, swept.alerts), (0, 0), "{swept:?}");
    let swept = kept.sweep(&store_config, now(366)).unwrap();
    assert_eq!(swept.events, 2, "{swept:?}");
    assert_eq!(swept.alerts, 2, "the actor's and the workflow's: {swept:?}");
    assert!(
        swept.alert_records >= 3,
        "decisions, paging, the action: {swept:?}"
    );
    let review = "review-token-0123456789";
    let (s, _) = get(format!("{base}/v1/alerts/{alert_id}"), review).await;
    assert_eq!(s, 404);
    let (s, _) = get(format!("{base}/v1/policy/decisions/{alert_id}"), review).await;
    assert_eq!(s, 404);
    let (s, _) = get(format!("{base}/v1/actions/{id}"), review).await;
    assert_eq!(s, 404);
    let (_, events) = get(format!("{base}/v1/events?limit=10"), review).await;
    assert_eq!(events["events"].as_array().unwrap().len(), 0, "{events}");
    let (_, log) = get(format!("{base}/v1/audit"), "admin-token-0123456789").await;
    assert!(
        log["count"].as_u64().unwrap() >= 4,
        "the audit log is never swept"
    );
}

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
    let app = plumbline_api::router(service.state);
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
