//! The foundation end to end: the real binary, every body form, bad input, restarts.

#[path = "support/mod.rs"]
mod support;

// SIGKILL under load, many times (tests/crash.rs): here, not in a test binary of its own,
// so the suite links the service once less.
#[path = "crash.rs"]
mod crash;

// Rate limits, event limits, back-pressure and silent clients (tests/abuse.rs).
#[path = "abuse.rs"]
mod abuse;

use serde_json::{json, Value};
use support::{client, event, get, post_events, Server};

async fn post(s: &Server, ct: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let r = client()
        .post(s.at("/v1/events"))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_body_form_is_stored_and_survives_restart_and_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    let (st, body) = get(&s, "/healthz").await;
    assert_eq!((st, body["status"].as_str()), (200, Some("ok")));

    // One event.
    let (st, r) = post(
        &s,
        "application/json",
        event("one", "ada", "git.push").to_string(),
    )
    .await;
    assert_eq!(st, 202);
    assert_eq!(r, json!({"accepted": 1, "duplicates": 0, "rejected": []}));
    // An array.
    let arr = json!([
        event("arr-1", "ada", "git.push"),
        event("arr-2", "bob", "pr.merged")
    ]);
    let (st, r) = post(&s, "application/json", arr.to_string()).await;
    assert_eq!((st, r["accepted"].as_u64()), (202, Some(2)));
    // NDJSON, with a duplicate of an earlier event.
    let nd = [
        event("nd-1", "ada", "git.push"),
        event("nd-2", "cyd", "git.push.force"),
        event("one", "ada", "git.push"),
    ]
    .iter()
    .map(|e| e.to_string())
    .collect::<Vec<_>>()
    .join("\n");
    let (st, r) = post(&s, "application/x-ndjson", nd).await;
    assert_eq!(st, 202);
    assert_eq!(
        (r["accepted"].as_u64(), r["duplicates"].as_u64()),
        (Some(2), Some(1))
    );

    let all = ["one", "arr-1", "arr-2", "nd-1", "nd-2"];
    s.restart();
    for id in all {
        let (st, e) = get(&s, &format!("/v1/events/{id}")).await;
        assert_eq!(st, 200, "{id} after restart");
        assert_eq!(e["id"], id);
    }
    // A crash (SIGKILL) right after the answers loses nothing that was acknowledged.
    let (st, _) = post(
        &s,
        "application/json",
        event("before-crash", "ada", "git.push").to_string(),
    )
    .await;
    assert_eq!(st, 202);
    s.crash();
    s.restart();
    for id in all.iter().chain(&["before-crash"]) {
        assert_eq!(
            get(&s, &format!("/v1/events/{id}")).await.0,
            200,
            "{id} after crash"
        );
    }
    // Listing by actor, in time order, with pagination.
    let (_, page) = get(&s, "/v1/events?actor=ada&limit=2").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("more pages")
        .to_string();
    let (_, rest) = get(
        &s,
        &format!("/v1/events?actor=ada&limit=10&cursor={cursor}"),
    )
    .await;
    let mut ids: Vec<String> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["events"].as_array().unwrap())
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["arr-1", "before-crash", "nd-1", "one"]);
    let (_, by_source) = get(&s, "/v1/events?source=github&limit=100").await;
    assert_eq!(by_source["events"].as_array().unwrap().len(), 6);
    let (st, schema) = get(&s, "/v1/schema/event").await;
    assert_eq!(st, 200);
    assert_eq!(
        schema["properties"]["actor"]["properties"]["type"]["enum"],
        json!(["human", "service", "ai-agent"])
    );
}

#[tokio::test]
async fn bad_input_gets_the_documented_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &[],
        &[("PLUMBLINE_SERVER_BODY_LIMIT_BYTES", "65536")],
    );
    let (st, _) = post(
        &s,
        "application/json",
        event("keep", "ada", "git.push").to_string(),
    )
    .await;
    assert_eq!(st, 202);
    let before = get(&s, "/v1/events/keep").await.1;

    // Not JSON at all: 400 naming line and column.
    let (st, r) = post(&s, "application/json", "{\n  \"id\": oops }").await;
    assert_eq!(st, 400);
    assert_eq!(r["line"], 2);
    assert!(r["error"].as_str().unwrap().contains("not JSON"), "{r}");
    let (st, r) = post(&s, "application/x-ndjson", "nope\nstill nope").await;
    assert_eq!((st, r["line"].as_u64()), (400, Some(1)));

    // Field-level refusals, each naming the field; the good event in the batch is kept.
    let mut wrong_type = event("t1", "ada", "git.push");
    wrong_type["volume"] = json!({"rows": "lots"});
    let mut missing = event("t2", "ada", "git.push");
    missing.as_object_mut().unwrap().remove("system");
    let mut bad_time = event("t3", "ada", "git.push");
    bad_time["time"] = json!("last tuesday");
    let mut bad_actor = event("t4", "ada", "git.push");
    bad_actor["actor"]["type"] = json!("robot");
    let mut changed_dup = event("keep", "mallory", "git.push.force");
    changed_dup["attributes"] = json!({"sneaky": true});
    let good = event("t5", "ada", "git.push");
    let batch = json!([wrong_type, missing, bad_time, bad_actor, changed_dup, good]);
    let (st, r) = post(&s, "application/json", batch.to_string()).await;
    assert_eq!(st, 202, "{r}");
    assert_eq!(r["accepted"], 1);
    assert_eq!(r["duplicates"], 1);
    let rejected: Vec<(u64, String)> = r["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["index"].as_u64().unwrap(),
                x["field"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        vec![
            (0, "volume.rows".into()),
            (1, "system".into()),
            (2, "time".into()),
            (3, "actor.type".into())
        ]
    );
    for x in r["rejected"].as_array().unwrap() {
        assert!(!x["reason"].as_str().unwrap().is_empty());
    }

    // Oversized: 413, declared or streamed.
    let big = format!(
        "[{}]",
        vec![event("big", "ada", "git.push").to_string(); 400].join(",")
    );
    assert!(big.len() > 65536);
    let (st, r) = post(&s, "application/json", big).await;
    assert_eq!(st, 413);
    assert_eq!(r["limit_bytes"], 65536);
    // Unsupported content type: 415.
    assert_eq!(post(&s, "text/plain", "x").await.0, 415);
    // Bad query values: 400 naming the field.
    let (st, r) = get(&s, "/v1/events?since=yesterday-ish").await;
    assert_eq!((st, r["field"].as_str()), (400, Some("since")));
    assert_eq!(get(&s, "/v1/events/nope").await.0, 404);

    // Nothing previously accepted was changed.
    assert_eq!(get(&s, "/v1/events/keep").await.1, before);
    assert_eq!(get(&s, "/v1/events/big").await.0, 404);
}

#[tokio::test]
async fn many_concurrent_single_event_clients_share_group_commits() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let url = s.at("/v1/events");
    let mut tasks = Vec::new();
    for c in 0..32 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let http = client();
            for i in 0..25 {
                let r = http
                    .post(&url)
                    .json(&event(&format!("c{c}-{i}"), &format!("u{c}"), "git.push"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 202);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (_, page) = get(&s, "/v1/events?source=github&limit=1000").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 800);
}

#[tokio::test]
async fn tokens_and_scopes_guard_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = r#"[{name="shipper", token="ingest-token-0123456789", scopes=["ingest"]}, {name="analyst", token="read-token-0123456789", scopes=["read"]}]"#;
    let s = Server::start_with(dir.path(), &[], &[("PLUMBLINE_AUTH_TOKENS", tokens)]);
    let http = client();
    let post_with = |tok: Option<&'static str>| {
        let mut r = http
            .post(s.at("/v1/events"))
            .json(&event("x", "ada", "git.push"));
        if let Some(t) = tok {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let r = post_with(None).await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("missing"));
    assert_eq!(
        post_with(Some("wrong-token-0000000000"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    // A known token without the scope: 403, without the token's name.
    let r = post_with(Some("read-token-0123456789")).await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let e = r.json::<Value>().await.unwrap()["error"].to_string();
    assert!(e.contains("ingest") && !e.contains("analyst"), "{e}");
    assert_eq!(
        post_with(Some("ingest-token-0123456789"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        202
    );
    let r = http
        .get(s.at("/v1/events/x"))
        .bearer_auth("read-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .get(s.at("/v1/events/x"))
        .bearer_auth("ingest-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

#[test]
fn an_open_api_refuses_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plumbline"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without API tokens"), "{err}");
}

#[test]
fn a_store_of_another_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path().join("store")).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", "plumbline-store/99")
            .unwrap();
        db.flush().unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plumbline"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plumbline-store/99") && err.contains("refusing"),
        "{err}"
    );
}

#[tokio::test]
async fn the_cli_ingests_ndjson_and_prints_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let file = dir.path().join("events.ndjson");
    let lines: Vec<String> = (0..2500)
        .map(|i| {
            event(
                &format!("f{i}"),
                if i % 2 == 0 { "ada" } else { "bob" },
                "git.push",
            )
            .to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let bin = env!("CARGO_BIN_EXE_plumbline");
    let out = tokio::process::Command::new(bin)
        .args(["ingest", "--url", &s.url])
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("accepted 2500, duplicates 0, rejected 0")
    );
    let out = tokio::process::Command::new(bin)
        .args([
            "events", "--url", &s.url, "--actor", "bob", "--limit", "5000", "--json",
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1250);
}

#[tokio::test]
async fn the_alert_listing_filters_by_severity_status_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    // A force push to the default branch: the built-in branch-bypass pack raises 2.
    let mut force = event("force", "mallory", "git.push.force");
    force["resource"] = json!("refs/heads/main");
    force["attributes"] =
        json!({"branch": "main", "forced": true, "to_default_branch": true, "after": "f00d"});
    let (st, _) = post(&s, "application/json", force.to_string()).await;
    assert_eq!(st, 202);
    let alert = support::eventually(30, || async {
        let (_, v) = get(&s, "/v1/alerts").await;
        v["alerts"].as_array().and_then(|a| a.first().cloned())
    })
    .await;
    assert_eq!(alert["severity"], 2, "{alert:#}");
    assert_eq!(alert["status"], "open");
    let id = alert["id"].as_str().unwrap();
    let count = |v: &Value| v["alerts"].as_array().map(Vec::len).unwrap_or(usize::MAX);
    for (query, expected) in [
        ("severity=2", 1),
        ("severity=3", 0),
        ("status=open", 1),
        ("status=resolved", 0),
        ("severity=2&status=open&since=1h", 1),
        ("since=2099-01-01T00:00:00Z", 0),
        ("limit=1", 1),
    ] {
        let (st, v) = get(&s, &format!("/v1/alerts?{query}")).await;
        assert_eq!((st, count(&v)), (200, expected), "{query}: {v}");
    }
    let (st, one) = get(&s, &format!("/v1/alerts/{id}")).await;
    assert_eq!((st, &one["id"]), (200, &alert["id"]));
    assert!(
        one["findings"][0]["evidence"].to_string().contains("force"),
        "{one:#}"
    );
    // Bad filters name the field.
    let (st, e) = get(&s, "/v1/alerts?severity=7").await;
    assert_eq!((st, e["field"].as_str()), (400, Some("severity")), "{e}");
    let (st, e) = get(&s, "/v1/alerts?status=closed").await;
    assert_eq!((st, e["field"].as_str()), (400, Some("status")), "{e}");
    let (st, e) = get(&s, "/v1/alerts?since=tuesday").await;
    assert_eq!(st, 400, "{e}");
    let (st, _) = get(&s, "/v1/alerts/alr-nope").await;
    assert_eq!(st, 404);
}

const GH_SECRET: &str = "It's a Secret to Everybody";
const N8N_TOKEN: &str = "n8n-log-stream-token";

fn fixtures_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crates/ingest/src/fixtures")
}

fn fixture(path: &str) -> Vec<u8> {
    let p = fixtures_dir().join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `plumbline ingest --url <server> ARGS`, with only `envs` of the source secrets set.
async fn cli(h: &Server, args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_plumbline"));
    cmd.arg("ingest").arg("--url").arg(&h.url).args(args);
    cmd.env_remove("PLUMBLINE_TOKEN")
        .env_remove("PLUMBLINE_GITHUB_SECRET")
        .env_remove("PLUMBLINE_GITHUB_AUDIT_TOKEN");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn succeeded(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_backfills_each_source_format_through_its_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    // Fixtures carry fixed dates: no retention, so the calendar moving on refuses nothing.
    let h = Server::start_with(
        &dir.path().join("data"),
        &[],
        &[
            ("PLUMBLINE_GITHUB_SECRET", GH_SECRET),
            ("PLUMBLINE_N8N_TOKEN", N8N_TOKEN),
            ("PLUMBLINE_STORE_RETENTION_DAYS", "0"),
        ],
    );
    let path = |p: &str| fixtures_dir().join(p).display().to_string();

    let out = cli(
        &h,
        &[
            "--source",
            "vault",
            "--batch",
            "3",
            &path("vault/audit.log"),
        ],
        &[],
    )
    .await;
    assert_eq!(succeeded(&out), "accepted 7, duplicates 0, rejected 0");

    let out = cli(
        &h,
        &[
            "--source",
            "cloudtrail",
            "--batch",
            "4",
            &path("cloudtrail/log_file.json"),
        ],
        &[],
    )
    .await;
    assert_eq!(succeeded(&out), "accepted 11, duplicates 0, rejected 0");

    // n8n's own event log: confirmation lines are skipped; the token comes from the env.
    let out = cli(
        &h,
        &["--source", "n8n", &path("n8n/n8nEventLog.log")],
        &[("PLUMBLINE_N8N_TOKEN", N8N_TOKEN)],
    )
    .await;
    assert_eq!(succeeded(&out), "accepted 3, duplicates 0, rejected 0");
    assert_eq!(
        stored(&h, "n8n:c2928314-9fa0-41e8-9d8e-9fa0b1c2d3e2").await["action"],
        "workflow.deleted"
    );

    // GitHub deliveries as the REST API lists them, signed with the webhook secret.
    let ping: Value = serde_json::from_slice(&fixture("github/ping.json")).unwrap();
    let member: Value = serde_json::from_slice(&fixture("github/member_added.json")).unwrap();
    let deliveries = json!([
        {"id": 1, "guid": "0b989ba4-242f-11e5-81e1-c7b6966d2516", "delivered_at": "2026-11-25T07:00:01Z", "redelivery": false,
         "duration": 0.27, "status": "OK", "status_code": 202, "event": "ping", "action": null, "installation_id": null,
         "repository_id": null, "url": "https://plumbline.acme.example/v1/ingest/github",
         "request": {"headers": {"X-GitHub-Delivery": "0b989ba4-242f-11e5-81e1-c7b6966d2516", "X-GitHub-Event": "ping",
                                 "Content-Type": "application/json"}, "payload": ping},
         "response": {"headers": {}, "payload": "{}"}},
        {"id": 2, "guid": "1c0a9cb5-242f-11e5-81e1-c7b6966d2516", "delivered_at": "2026-11-25T09:15:00Z", "redelivery": false,
         "duration": 0.31, "status": "OK", "status_code": 202, "event": "member", "action": "added",
         "request": {"headers": {"X-GitHub-Event": "member"}, "payload": member}, "response": {"headers": {}, "payload": "{}"}}
    ]);
    let file = dir.path().join("deliveries.json");
    std::fs::write(&file, serde_json::to_vec(&deliveries).unwrap()).unwrap();
    let out = cli(&h, &["--source", "github", file.to_str().unwrap()], &[]).await;
    assert!(
        !out.status.success(),
        "unsigned back-fill must be refused by a server with a secret"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(
        &h,
        &["--source", "github", file.to_str().unwrap()],
        &[("PLUMBLINE_GITHUB_SECRET", GH_SECRET)],
    )
    .await;
    assert_eq!(succeeded(&out), "accepted 2, duplicates 0, rejected 0");
    let m = stored(&h, "github:1c0a9cb5-242f-11e5-81e1-c7b6966d2516").await;
    assert_eq!(m["action"], "member.added");
    // The payload has no time of its own: the delivery time is used.
    assert_eq!(m["time"], "2026-11-25T09:15:00Z");
}

/// `plumbline ingest --source github-audit`: an export of `GET /orgs/{org}/audit-log` (a
/// JSON array) and audit-log streaming's NDJSON, under `PLUMBLINE_GITHUB_AUDIT_TOKEN`; the
/// entries the stream already delivered are duplicates of the export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_backfills_the_github_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let token = "gh-audit-backfill-0c4e";
    let h = Server::start_with(
        &dir.path().join("data"),
        &[],
        &[
            ("PLUMBLINE_GITHUB_AUDIT_TOKEN", token),
            ("PLUMBLINE_STORE_RETENTION_DAYS", "0"),
        ],
    );
    let path = |p: &str| fixtures_dir().join(p).display().to_string();
    let page = path("github-audit/org_audit_log.json");
    let out = cli(&h, &["--source", "github-audit", &page], &[]).await;
    assert!(
        !out.status.success(),
        "a back-fill without the token is refused"
    );
    let out = cli(
        &h,
        &["--source", "github-audit", "--batch", "8", &page],
        &[("PLUMBLINE_GITHUB_AUDIT_TOKEN", token)],
    )
    .await;
    assert_eq!(succeeded(&out), "accepted 21, duplicates 0, rejected 0");
    let e = stored(&h, "github-audit:pb-destroy-0001").await;
    assert_eq!(e["action"], "branch.protection.disabled");
    assert_eq!(e["attributes"]["action"], "protected_branch.destroy");
    // The stream's lines, one of them an entry the export already held.
    let entries: Vec<Value> =
        serde_json::from_slice(&fixture("github-audit/org_audit_log.json")).unwrap();
    let mut lines = String::from_utf8(fixture("github-audit/stream.ndjson")).unwrap();
    lines.push_str(&entries[13].to_string());
    lines.push('\n');
    let file = dir.path().join("stream.ndjson");
    std::fs::write(&file, lines).unwrap();
    let out = cli(
        &h,
        &["--source", "github-audit", file.to_str().unwrap()],
        &[("PLUMBLINE_GITHUB_AUDIT_TOKEN", token)],
    )
    .await;
    assert_eq!(succeeded(&out), "accepted 3, duplicates 1, rejected 0");
}

/// `plumbline ingest --source claude-code | cursor | otlp-logs | otlp-traces`: coding
/// agents' hook inputs (JSON lines, a JSON array) each posted to their hook endpoint, and
/// OTLP/JSON export requests posted to `/v1/logs` and `/v1/traces`, under the `[agents]`
/// tokens; a refused span fails the back-fill naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_backfills_coding_agents_hooks_and_otlp_exports() {
    let dir = tempfile::tempdir().unwrap();
    let (hook_token, otlp_token) = ("hook-backfill-5d1a", "otlp-backfill-9e2c");
    let h = Server::start_with(
        &dir.path().join("data"),
        &[],
        &[
            ("PLUMBLINE_AGENTS_HOOK_TOKEN", hook_token),
            ("PLUMBLINE_AGENTS_OTLP_TOKEN", otlp_token),
            ("PLUMBLINE_STORE_RETENTION_DAYS", "0"),
        ],
    );
    let session = "6e0b1f3a-9c2d-4e5f-8a7b-1c2d3e4f5a6b";
    let common = json!({"session_id": session, "cwd": "/home/ines/src/ledger", "permission_mode": "default",
        "transcript_path": format!("/home/ines/.claude/projects/-home-ines-src-ledger/{session}.jsonl")});
    let hook = |extra: Value| {
        let mut v = common.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v.to_string()
    };
    let lines = [
        hook(
            json!({"hook_event_name": "UserPromptSubmit", "prompt": "why does the ledger test fail?"}),
        ),
        hook(
            json!({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_use_id": "toolu_01Ledger",
                    "tool_input": {"command": "cargo test -p ledger", "description": "Run the ledger tests"}}),
        ),
        hook(
            json!({"hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_use_id": "toolu_01Ledger",
                    "tool_input": {"command": "cargo test -p ledger"},
                    "tool_response": {"stdout": "test result: ok. 12 passed", "stderr": "", "interrupted": false, "isImage": false}}),
        ),
    ];
    let file = dir.path().join("claude-code-hooks.ndjson");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = cli(
        &h,
        &["--source", "claude-code", file.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(
        !out.status.success(),
        "a back-fill without the hook token is refused"
    );
    let out = cli(
        &h,
        &["--source", "claude-code", file.to_str().unwrap()],
        &[("PLUMBLINE_AGENTS_HOOK_TOKEN", hook_token)],
    )
    .await;
    assert_eq!(succeeded(&out), "accepted 3, duplicates 0, rejected 0");
    let call = stored(
        &h,
        &format!("claude-code:{session}:toolu_01Ledger:completed"),
    )
    .await;
    assert_eq!(call["action"], "agent.tool.shell");
    assert_eq!(call["attributes"]["tool.command"], "cargo test -p ledger");

    // Cursor's hook inputs as a JSON array.
    let cursor = json!([
        {"conversation_id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "generation_id": "f0e1d2c3-b4a5-4968-8776-655443322110",
         "hook_event_name": "beforeShellExecution", "workspace_roots": ["/Users/ines/src/ledger"], "user_email": "ines@acme.example",
         "command": "npm test", "cwd": "/Users/ines/src/ledger"},
        {"conversation_id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "generation_id": "f0e1d2c3-b4a5-4968-8776-655443322110",
         "hook_event_name": "afterFileEdit", "workspace_roots": ["/Users/ines/src/ledger"], "user_email": "ines@acme.example",
         "file_path": "/Users/ines/src/ledger/src/round.ts", "edits": [{"old_string": "Math.floor", "new_string": "Math.round"}]}
    ]);
    let file = dir.path().join("cursor-hooks.json");
    std::fs::write(&file, cursor.to_string()).unwrap();
    let out = cli(
        &h,
        &["--source", "cursor", file.to_str().unwrap()],
        &[("PLUMBLINE_AGENTS_HOOK_TOKEN", hook_token)],
    )
    .await;
    assert_eq!(succeeded(&out), "accepted 2, duplicates 0, rejected 0");
    let (status, events) = get(
        &h,
        "/v1/events?actor=cursor:a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
    )
    .await;
    assert_eq!(status, 200, "{events}");
    let mut actions: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    actions.sort();
    // The hook endpoint judged the pending shell call as it judges live ones, and recorded it.
    assert_eq!(
        actions,
        ["agent.tool.file.write", "agent.tool.shell", "agent.verdict"]
    );

    // Codex's log export (7 records: one streaming delta is skipped, none refused).
    let logs = fixtures_dir().join("otlp-logs/codex_env_exfil.json");
    let out = cli(
        &h,
        &["--source", "otlp-logs", logs.to_str().unwrap()],
        &[("PLUMBLINE_AGENTS_OTLP_TOKEN", otlp_token)],
    )
    .await;
    assert_eq!(succeeded(&out), "accepted 7, duplicates 0, rejected 0");
    let curl = stored(
        &h,
        "codex:019a7c3e-5b2d-7f10-9c44-8e2a1b3c4d5e:call_Kx2Curl:completed",
    )
    .await;
    assert_eq!(curl["action"], "agent.tool.shell");
    assert_eq!(curl["time"], "2026-11-25T10:02:15Z");

    // GenAI spans: the tool calls are stored; a span naming no tool is refused and named.
    let spans = fixtures_dir().join("otlp-traces/genai_execute_tool.json");
    let out = cli(
        &h,
        &["--source", "otlp-traces", spans.to_str().unwrap()],
        &[("PLUMBLINE_AGENTS_OTLP_TOKEN", otlp_token)],
    )
    .await;
    assert!(!out.status.success(), "a refused span fails the back-fill");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gen_ai.tool.name"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("accepted 3, duplicates 0, rejected 1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        stored(&h, "otel:conv_9f8e7d:call_r1:completed").await["action"],
        "agent.tool.file.read"
    );
}

/// A stored event by id (the server's API is open on loopback).
async fn stored(h: &Server, id: &str) -> Value {
    let (status, v) = get(h, &format!("/v1/events/{id}")).await;
    assert_eq!(status, 200, "no stored event {id}: {v}");
    v
}

/// The confirmed findings against the real binary: with no tokens, a DNS-rebinding `Host`
/// was served and a cross-site POST changed a pack's state. Both are refused now.
#[tokio::test]
async fn an_open_api_answers_only_loopback_names_and_same_site_writes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let http = client();
    let r = http
        .get(s.at("/healthz"))
        .header("host", "rebound.evil.example:7420")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("loopback"));
    let r = http
        .post(s.at("/v1/packs/exfiltration/shadow"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("cross-site"));
    let (status, packs) = get(&s, "/v1/packs").await;
    assert_eq!(status, 200);
    let exfiltration: Vec<&Value> = packs["packs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "exfiltration")
        .collect();
    assert!(!exfiltration.is_empty(), "{packs}");
    assert!(
        exfiltration.iter().all(|p| p["state"] == "active"),
        "the cross-site request changed a pack: {exfiltration:?}"
    );
    // The API's own page (same origin) and clients without an Origin still write.
    let own = s.url.trim_end_matches('/').to_string();
    let r = http
        .post(s.at("/v1/events"))
        .header("origin", own)
        .json(&event("same-site", "ada", "git.push"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
}

/// Secrets become an HMAC under this installation's key (created at first start, owner
/// only): equal secrets keep one marker across restarts, and the marker is not the plain
/// sha256 prefix anyone with read scope could test guesses against.
#[tokio::test]
async fn redaction_markers_are_keyed_per_installation_and_survive_restarts() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    let with_secret = |id: &str| {
        let mut e = event(id, "ada", "git.push");
        e["attributes"] = json!({"dbPassword": "hunter2hunter2"});
        e
    };
    post_events(&s, &with_secret("r1")).await;
    let (_, first) = get(&s, "/v1/events/r1").await;
    let marker = first["attributes"]["dbPassword"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(marker.starts_with("[redacted:"), "{first}");
    let plain = hex::encode(&sha2::Sha256::digest(b"hunter2hunter2")[..4]);
    assert!(
        !marker.contains(&plain),
        "the marker is the plain hash: {marker}"
    );
    let key = dir.path().join("redaction.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    s.restart();
    post_events(&s, &with_secret("r2")).await;
    let (_, second) = get(&s, "/v1/events/r2").await;
    assert_eq!(second["attributes"]["dbPassword"], marker.as_str());
}
