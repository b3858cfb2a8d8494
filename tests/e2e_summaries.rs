//! The real binary with a real detector component, pointed by environment variables at a
//! chat-completions server running in this test process: the model is called only for
//! trajectories a detector fired on, sees no secret, and what it saw is in the audit trail.
//! Needs scripts/build-detectors.sh (the test says so if the component is missing).

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use support::{alerts, client, Server};

fn component(name: &str) -> String {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("wasm32-wasip2/release");
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/build-detectors.sh (after scripts/setup.sh test) first",
        p.display()
    );
    p.display().to_string()
}

fn yesterday_at(hh: u8, mm: u8) -> String {
    let day = time::OffsetDateTime::now_utc().date() - time::Duration::days(1);
    day.with_hms(hh, mm, 0)
        .unwrap()
        .assume_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn ev(id: &str, time: String, actor: &str, system: &str, action: &str) -> Value {
    json!({"id": id, "time": time, "source": "custom",
           "actor": {"id": actor, "type": "human"}, "system": system,
           "action": action, "environment": "prod"})
}

/// Request bodies received; every answer is a valid summary citing the first id offered.
type Received = Arc<Mutex<Vec<String>>>;

async fn completions(State(seen): State<Received>, body: String) -> Json<Value> {
    seen.lock().unwrap().push(body.clone());
    let req: Value = serde_json::from_str(&body).unwrap();
    let ids = &req["response_format"]["json_schema"]["schema"]["properties"]["reasons"]["items"]
        ["properties"]["event_ids"]["items"]["enum"];
    let content = json!({
        "narrative": "alice widened a token's scope on billing-db, then exported 50000 rows to a personal bucket off-hours.",
        "risk": 2,
        "signals": ["privilege increase", "large export", "new destination"],
        "reasons": [{"reason": "export right after a scope increase", "event_ids": [ids[0]]}],
        "next_step": "Ask alice for a justification and review the bucket's access.",
    });
    Json(json!({
        "id": "chatcmpl-e2e", "object": "chat.completion", "created": 0, "model": "e2e-model",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content.to_string(), "refusal": null}}],
    }))
}

fn summary_note(a: &Value) -> String {
    a["notes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .find(|n| n.starts_with("summary:"))
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn the_model_sees_only_firing_trajectories_redacted_and_the_audit_shows_it() {
    let seen: Received = Arc::default();
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let llm = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("plumbline.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[runtime]
detector_paths = [{detector:?}]
deadline_ms = 10000

[runtime.detectors."example.export-after-grant"]
config = {{ min_rows = "20000" }}
"#,
            detector = component("example_export_after_grant.wasm"),
        ),
    )
    .unwrap();
    let s = Server::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
        &[
            ("PLUMBLINE_LLM_BASE_URL", llm.as_str()),
            ("PLUMBLINE_LLM_MODEL", "e2e-model"),
            ("PLUMBLINE_LLM_API_KEY", "e2e-key-not-a-secret"),
        ],
    );

    // A quiet trajectory: nothing fires on bob's pushes.
    let quiet: Vec<Value> = (0..3)
        .map(|i| {
            ev(
                &format!("e2e-quiet-{i}"),
                yesterday_at(10, i),
                "bob",
                "acme/web",
                "git.push",
            )
        })
        .collect();
    let r = client()
        .post(s.at("/v1/events"))
        .json(&quiet)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);

    // A firing one: a scope increase, then a large off-hours export to a new bucket, with a
    // credential in free text that ingest redacts.
    let secret = "token=abcd1234efgh5678ijkl";
    let mut grant = ev(
        "e2e-grant",
        yesterday_at(22, 5),
        "alice",
        "billing-db",
        "credential.scope.increased",
    );
    grant["resource"] = json!("token:etl");
    let mut export = ev(
        "e2e-export",
        yesterday_at(22, 20),
        "alice",
        "billing-db",
        "data.export",
    );
    export["destination"] = json!("s3://personal-backup-7731");
    export["volume"] = json!({"rows": 50000});
    export["attributes"] = json!({"note": format!("ran the dump with {secret}")});
    let r = client()
        .post(s.at("/v1/events"))
        .json(&json!([grant, export]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);

    // Every alert gets its summary from the model (or the cache, for the same story).
    let deadline = Instant::now() + Duration::from_secs(90);
    let all = loop {
        let all = alerts(&s).await;
        let done = !all.is_empty()
            && all.iter().all(|a| {
                let n = summary_note(a);
                n.starts_with("summary: llm") || n.starts_with("summary: cached")
            });
        if done {
            break all;
        }
        assert!(Instant::now() < deadline, "alerts not summarised: {all:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let bodies = seen.lock().unwrap().clone();
    assert!(!bodies.is_empty());
    assert!(bodies.len() <= all.len(), "one call per story at most");
    for b in &bodies {
        assert!(b.contains("e2e-export"), "a call about a firing trajectory");
        assert!(
            !b.contains("e2e-quiet"),
            "the quiet trajectory never reaches the model"
        );
        assert!(
            !b.contains("abcd1234efgh5678ijkl"),
            "a secret left the host"
        );
    }

    let a = &all[0];
    assert_eq!(
        a["severity"], 3,
        "the model's risk 2 never lowers an urgent finding"
    );
    assert!(a["summary"]
        .as_str()
        .unwrap()
        .starts_with("alice widened a token's scope"));
    let audit: Value = client()
        .get(s.at(&format!(
            "/v1/alerts/{}/summary-audit",
            a["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["trajectory_hash"], a["trajectory_hash"]);
    let rec = audit["records"].as_array().unwrap().last().unwrap().clone();
    let sha = match rec["provenance"]["source"].as_str().unwrap() {
        "llm" => rec["calls"][0]["request_sha256"].clone(),
        "cached" => rec["cached_request_sha256"].clone(),
        other => panic!("unexpected provenance {other}: {rec:#}"),
    };
    // The request the audit names is one the model actually received, byte for byte.
    let sent_hashes: Vec<String> = bodies
        .iter()
        .map(|b| {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(b.as_bytes()))
        })
        .collect();
    assert!(
        sent_hashes.contains(&sha.as_str().unwrap().to_string()),
        "{rec:#}"
    );
}
