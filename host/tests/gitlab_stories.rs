//! GitLab's two misaligned stories, posted to `POST /v1/ingest/gitlab` exactly as GitLab
//! sends them (hooks with `X-Gitlab-Event` and `X-Gitlab-Token`; audit events streamed
//! as JSON under a form content type with `X-Gitlab-Event-Streaming-Token` and
//! `X-Gitlab-Audit-Event-Type`), raise alerts with the built-in packs; their benign
//! look-alikes do not. Starts the real binary, like the end-to-end tests in tests/; needs
//! scripts/build-detectors.sh (the built-in detector components).
//!
//! 1. Force pushes allowed on protected `main`, then a direct push to `main` that drops
//!    SAST and dependency scanning from `.gitlab-ci.yml` and deletes CODEOWNERS.
//! 2. Three weeks of small project-setting widenings, ending in a merge request its author
//!    approved and merged.
//!
//! The payloads are the adapter's fixtures (crates/ingest/src/fixtures/gitlab), moved to
//! other projects and to recent times.

#[path = "../../tests/support/mod.rs"]
mod support;

use serde_json::{json, Value};
use support::{client, eventually, loud, Server};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

const TOKEN: &str = "gitlab-e2e-token";

macro_rules! fixture {
    ($file:literal) => {
        include_str!(concat!("../../crates/ingest/src/fixtures/gitlab/", $file))
    };
}

/// A fixture payload moved to `project`, with `sets` applied (JSON pointer → value).
fn payload(text: &str, project: &str, sets: &[(&str, Value)]) -> Value {
    let mut v: Value = serde_json::from_str(&text.replace("finance/ledger", project)).unwrap();
    for (pointer, value) in sets {
        *v.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("nothing at {pointer}")) = value.clone();
    }
    v
}

fn ts(t: OffsetDateTime) -> Value {
    Value::String(t.format(&Rfc3339).unwrap())
}

/// A webhook delivery as GitLab sends it.
async fn hook(s: &Server, event: &str, id: &str, body: &Value) {
    let r = client()
        .post(s.at("/v1/ingest/gitlab"))
        .header("content-type", "application/json")
        .header("x-gitlab-event", event)
        .header("x-gitlab-token", TOKEN)
        .header("idempotency-key", id)
        .header("x-gitlab-event-uuid", id)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{event}: {:?}", r.text().await);
}

/// An audit event as a streaming destination receives it: JSON, labelled as a form.
async fn stream(s: &Server, body: &Value) {
    let r = client()
        .post(s.at("/v1/ingest/gitlab"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-gitlab-event-streaming-token", TOKEN)
        .header(
            "x-gitlab-audit-event-type",
            body["event_type"].as_str().unwrap(),
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let report: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 202, "{report}");
    assert_eq!(report["accepted"], 1, "{report}");
    assert_eq!(report["rejected"], json!([]), "{report}");
}

/// An audit event of the stream, on `project`, at `at`.
fn audit(text: &str, project: &str, id: u64, at: OffsetDateTime) -> Value {
    payload(
        text,
        project,
        &[("/id", json!(id)), ("/created_at", ts(at))],
    )
}

/// Waits for alerts about `project` that together raise every one of `signals`.
async fn raised(s: &Server, project: &str, signals: &[&str]) -> Vec<Value> {
    eventually(60, || async {
        let found = loud(s, project).await;
        let raised: String = found.iter().map(|a| a["signals"].to_string()).collect();
        signals
            .iter()
            .all(|signal| raised.contains(signal))
            .then_some(found)
    })
    .await
}

/// The merge request of the fixtures, one action of it.
fn merge_request(project: &str, action: &str, user: &Value, at: OffsetDateTime) -> Value {
    let mut sets = vec![
        ("/object_attributes/action", json!(action)),
        ("/object_attributes/updated_at", ts(at)),
        ("/object_attributes/created_at", ts(at - Duration::hours(1))),
        ("/user", user.clone()),
    ];
    if action == "merge" {
        sets.push(("/object_attributes/state", json!("merged")));
        sets.push((
            "/object_attributes/merge_commit_sha",
            json!("82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"),
        ));
    }
    payload(fixture!("merge_request_hook.json"), project, &sets)
}

/// The push GitLab sends for the merge request's merge commit.
fn merge_push(project: &str, at: OffsetDateTime) -> Value {
    payload(
        fixture!("push_protected_drops_checks.json"),
        project,
        &[
            ("/before", json!("4e1b7c9a0d3f52e8b6a1c0f9e7d2b3a4c5d6e7f8")),
            ("/after", json!("82b3d5ae55f7080f1e6022629cdb57bfae7cccc7")),
            (
                "/checkout_sha",
                json!("82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"),
            ),
            (
                "/commits/0",
                json!({
                    "id": "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
                    "message": format!("Merge branch 'feat/partner-refunds' into 'main'\n\nRaise the refund limit for partner accounts\n\nSee merge request {project}!31"),
                    "title": "Merge branch 'feat/partner-refunds' into 'main'",
                    "timestamp": ts(at),
                    "url": format!("https://gitlab.acme.example/{project}/-/commit/82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"),
                    "author": {"name": "Trent Ops", "email": "trent@acme.example"},
                    "added": [],
                    "modified": ["app/models/partner_account.rb", "config/refund_limits.yml"],
                    "removed": []
                }),
            ),
        ],
    )
}

fn trent() -> Value {
    json!({"id": 4, "name": "Trent Ops", "username": "trent", "avatar_url": "https://gitlab.acme.example/uploads/avatar.png", "email": "[REDACTED]"})
}

fn peggy() -> Value {
    json!({"id": 9, "name": "Peggy Review", "username": "peggy", "avatar_url": "https://gitlab.acme.example/uploads/avatar9.png", "email": "[REDACTED]"})
}

/// A reviewed merge: a maintainer approves, the author merges, GitLab pushes the merge.
async fn reviewed_merge(s: &Server, project: &str, at: OffsetDateTime, tag: &str) {
    let mr = |action: &str, user: Value, at| merge_request(project, action, &user, at);
    hook(
        s,
        "Merge Request Hook",
        &format!("{tag}-open"),
        &mr("open", trent(), at),
    )
    .await;
    let approved = mr("approved", peggy(), at + Duration::minutes(20));
    hook(
        s,
        "Merge Request Hook",
        &format!("{tag}-approved"),
        &approved,
    )
    .await;
    let merged = mr("merge", trent(), at + Duration::minutes(25));
    hook(s, "Merge Request Hook", &format!("{tag}-merge"), &merged).await;
    let push = merge_push(project, at + Duration::minutes(25));
    hook(s, "Push Hook", &format!("{tag}-push"), &push).await;
}

#[tokio::test]
async fn gitlab_stories_as_gitlab_sends_them_raise_alerts_and_their_look_alikes_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        &dir.path().join("data"),
        &[],
        &[("PLUMBLINE_GITLAB_TOKEN", TOKEN)],
    );
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let base = now - Duration::hours(3);

    // Story 1: force pushes allowed on main, then a direct push dropping the security
    // scans and CODEOWNERS, built and deployed by the pipeline it changed.
    let ledger = "finance/ledger";
    let allow = audit(
        fixture!("audit_protected_branch_updated.json"),
        ledger,
        7001,
        base,
    );
    stream(&s, &allow).await;
    let push = payload(
        fixture!("push_protected_drops_checks.json"),
        ledger,
        &[("/commits/0/timestamp", ts(base + Duration::minutes(9)))],
    );
    hook(&s, "Push Hook", "s1-push", &push).await;
    let pipeline = payload(
        fixture!("pipeline_hook.json"),
        ledger,
        &[
            (
                "/object_attributes/created_at",
                ts(base + Duration::minutes(10)),
            ),
            (
                "/object_attributes/finished_at",
                ts(base + Duration::minutes(16)),
            ),
        ],
    );
    hook(&s, "Pipeline Hook", "s1-pipeline", &pipeline).await;
    let deploy = payload(
        fixture!("deployment_hook.json"),
        ledger,
        &[("/status_changed_at", ts(base + Duration::minutes(16)))],
    );
    hook(&s, "Deployment Hook", "s1-deploy", &deploy).await;

    // Story 2: three weeks of project-setting widenings on another project, then a merge
    // request its author approved and merged.
    let treasury = "finance/treasury";
    let drift: Vec<Value> = serde_json::from_str(
        &fixture!("audit_project_settings_drift.json").replace("finance/ledger", treasury),
    )
    .unwrap();
    for (i, (mut e, days)) in drift.into_iter().zip([23, 20, 15, 12, 7, 4]).enumerate() {
        e["id"] = json!(7101 + i as u64);
        e["created_at"] = ts(now - Duration::days(days));
        stream(&s, &e).await;
    }
    let mr = |action: &str, at| merge_request(treasury, action, &trent(), at);
    hook(&s, "Merge Request Hook", "s2-open", &mr("open", base)).await;
    let approved = mr("approved", base + Duration::minutes(30));
    hook(&s, "Merge Request Hook", "s2-approved", &approved).await;
    let merged = mr("merge", base + Duration::minutes(35));
    hook(&s, "Merge Request Hook", "s2-merge", &merged).await;
    let push = merge_push(treasury, base + Duration::minutes(35));
    hook(&s, "Push Hook", "s2-push", &push).await;

    // Look-alike 1: code-owner approval tightened on main, then a reviewed merge.
    let billing = "finance/billing";
    let tightened = audit(
        fixture!("audit_code_owner_approval_tightened.json"),
        billing,
        7201,
        base,
    );
    stream(&s, &tightened).await;
    reviewed_merge(&s, billing, base + Duration::minutes(10), "b1").await;

    // Look-alike 2: a merge request approved by a maintainer and merged, checks intact.
    reviewed_merge(&s, "finance/payroll", base, "b2").await;

    raised(
        &s,
        ledger,
        &["branch.protection_bypass", "branch.direct_push"],
    )
    .await;
    raised(
        &s,
        treasury,
        &["drift.permission_widening", "branch.merge_without_review"],
    )
    .await;

    // Every trajectory of the look-alikes has been evaluated by now (the stage coalesces
    // for 20 ms; the stories above were judged after them).
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    for project in [billing, "finance/payroll"] {
        let found = loud(&s, project).await;
        assert!(found.is_empty(), "{project} raised {found:#?}");
    }
}
