//! Source adapters end to end: the real router on a real TCP port over a real sled store,
//! fed fixtures in each source's own wire format, with the stored normalised events read
//! back through `GET /v1/events/{id}` and checked field by field.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use plumbline::api::AppState;
use plumbline::config::{ApiToken, Config, Scope};
use plumbline::ingest::adapter::sign_sha256;
use reqwest::StatusCode;
use serde_json::{json, Value};

struct Harness {
    url: String,
    http: reqwest::Client,
    _state: AppState,
    _dir: tempfile::TempDir,
}

const API_TOKEN: &str = "ingest-token-0123456789";

fn base_config() -> Config {
    let mut c = Config::defaults();
    // Fixtures carry fixed dates; retention must not refuse them as the calendar moves.
    c.store.retention_days = 0;
    c
}

impl Harness {
    async fn start(configure: impl FnOnce(&mut Config)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = base_config();
        config.server.data_dir = dir.path().join("data");
        configure(&mut config);
        let service = plumbline::serve::start(
            config,
            Arc::new(plumbline::trajectory::evaluate::NoDetectors),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = plumbline::api::router(service.state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Harness {
            url,
            http: reqwest::Client::new(),
            _state: service.state,
            _dir: dir,
        }
    }

    async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.url))
            .body(body.into());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn event(&self, id: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}/v1/events/{id}", self.url))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "no stored event {id}");
        resp.json().await.unwrap()
    }

    async fn events(&self, source: &str) -> Vec<Value> {
        let resp = self
            .http
            .get(format!("{}/v1/events?source={source}&limit=1000", self.url))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        let v: Value = resp.json().await.unwrap();
        v["events"].as_array().cloned().unwrap_or_default()
    }
}

fn fixture(path: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn fixture_json(path: &str) -> Value {
    serde_json::from_slice(&fixture(path)).unwrap()
}

fn report(v: &Value) -> (u64, u64, usize) {
    (
        v["accepted"].as_u64().unwrap(),
        v["duplicates"].as_u64().unwrap(),
        v["rejected"].as_array().unwrap().len(),
    )
}

/// Asserts every `(key, value)` of `expected` in the event's attributes.
fn attrs(e: &Value, expected: &[(&str, Value)]) {
    for (k, v) in expected {
        assert_eq!(&e["attributes"][*k], v, "attribute `{k}` of {}", e["id"]);
    }
}

/// No trace of `secret` anywhere in what was stored.
fn never_stored(events: &[Value], secret: &str) {
    for e in events {
        assert!(
            !e.to_string().contains(secret),
            "`{secret}` stored in clear: {e}"
        );
    }
}

fn redacted(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.contains("[redacted:"))
}

// ---------------------------------------------------------------------------- GitHub

const GH_SECRET: &str = "It's a Secret to Everybody";

async fn github(h: &Harness, event: &str, delivery: &str, body: &[u8]) -> (StatusCode, Value) {
    let sig = sign_sha256(GH_SECRET, body);
    h.post(
        "/v1/ingest/github",
        &[
            ("content-type", "application/json"),
            ("x-github-event", event),
            ("x-github-delivery", delivery),
            ("x-hub-signature-256", &sig),
            ("user-agent", "GitHub-Hookshot/4a8d3e1"),
        ],
        body.to_vec(),
    )
    .await
}

async fn github_harness() -> Harness {
    Harness::start(|c| c.github.secret = GH_SECRET.into()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_push_maps_force_default_protected_and_high_risk_paths() {
    let h = github_harness().await;
    let (st, v) = github(
        &h,
        "branch_protection_rule",
        "bpr-1",
        &fixture("github/branch_protection_rule_created.json"),
    )
    .await;
    assert_eq!((st, report(&v)), (StatusCode::ACCEPTED, (1, 0, 0)), "{v}");
    let bpr = h.event("github:bpr-1").await;
    assert_eq!(bpr["action"], "branch.protection.enabled");
    assert_eq!(bpr["resource"], "main");
    assert_eq!(bpr["actor"]["id"], "octo-admin");

    let delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let (st, v) = github(
        &h,
        "push",
        delivery,
        &fixture("github/push_forced_main.json"),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(report(&v), (7, 0, 0), "{v}");

    let e = h.event(&format!("github:{delivery}")).await;
    assert_eq!(e["action"], "git.push");
    assert_eq!(e["time"], "2026-11-25T08:00:00Z");
    assert_eq!(e["source"], "github");
    assert_eq!(
        e["actor"],
        json!({"id": "mallory-dev", "type": "human", "display": "mallory-dev"})
    );
    assert_eq!(e["system"], "acme/payments-api");
    assert_eq!(e["resource"], "refs/heads/main");
    assert_eq!(e["environment"], "unknown");
    assert_eq!(e["volume"], json!({"files": 4}));
    assert!(e.get("destination").is_none());
    attrs(
        &e,
        &[
            ("source_event", json!("push")),
            ("ref", json!("refs/heads/main")),
            ("branch", json!("main")),
            ("forced", json!(true)),
            ("commits", json!(2)),
            ("default_branch", json!("main")),
            ("to_default_branch", json!(true)),
            ("protected", json!(true)),
            ("protection.rule", json!("main")),
            ("repo.visibility", json!("private")),
            ("org", json!("acme")),
            ("pusher", json!("mallory-dev")),
            ("after", json!("59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5")),
            ("commit_authors", json!("mallory-dev")),
        ],
    );
    // The AWS key in the commit message is redacted, the rest of the message kept.
    let msg = e["attributes"]["head_commit.message"].as_str().unwrap();
    assert!(msg.starts_with("Hotfix invoices"), "{msg}");
    assert!(redacted(&e["attributes"]["head_commit.message"]), "{msg}");

    for (suffix, action) in [
        ("force", "git.push.force"),
        ("default", "git.push.default_branch"),
        ("protected", "git.push.protected_branch"),
    ] {
        let d = h.event(&format!("github:{delivery}:{suffix}")).await;
        assert_eq!(d["action"], action);
        assert_eq!(d["actor"]["id"], "mallory-dev");
        assert_eq!(d["resource"], "refs/heads/main");
    }
    let ci = h.event(&format!("github:{delivery}:risk.ci")).await;
    assert_eq!(ci["action"], "git.push.high_risk_path");
    attrs(
        &ci,
        &[
            ("risk.category", json!("ci")),
            ("risk.paths.count", json!(1)),
            ("risk.paths.0", json!(".github/workflows/deploy.yml")),
        ],
    );
    let auth = h.event(&format!("github:{delivery}:risk.auth")).await;
    attrs(&auth, &[("risk.paths.0", json!("src/auth/session.rs"))]);
    let pay = h.event(&format!("github:{delivery}:risk.payments")).await;
    attrs(
        &pay,
        &[("risk.paths.0", json!("services/billing/invoice.go"))],
    );
    never_stored(&h.events("github").await, "AKIAIOSFODNN7EXAMPLE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_bad_signature_is_401_and_nothing_is_stored() {
    let h = github_harness().await;
    let body = fixture("github/push_forced_main.json");
    let wrong = sign_sha256("not the secret", &body);
    for sig in [Some(wrong.as_str()), Some("sha256=zz"), None] {
        let mut headers = vec![
            ("content-type", "application/json"),
            ("x-github-event", "push"),
            ("x-github-delivery", "bad-1"),
        ];
        if let Some(s) = sig {
            headers.push(("x-hub-signature-256", s));
        }
        let (st, v) = h.post("/v1/ingest/github", &headers, body.clone()).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
        assert!(v["error"].as_str().unwrap().contains("signature"), "{v}");
    }
    // A body altered after signing fails too.
    let sig = sign_sha256(GH_SECRET, &body);
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let (st, _) = h
        .post(
            "/v1/ingest/github",
            &[
                ("x-github-event", "push"),
                ("x-github-delivery", "bad-2"),
                ("x-hub-signature-256", &sig),
            ],
            tampered,
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(h.events("github").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_replayed_delivery_is_stored_once() {
    let h = github_harness().await;
    let body = fixture("github/push_forced_main.json");
    let (_, first) = github(&h, "push", "dup-1", &body).await;
    assert_eq!(report(&first), (6, 0, 0), "{first}");
    let (st, again) = github(&h, "push", "dup-1", &body).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(report(&again), (0, 6, 0), "{again}");
    assert_eq!(h.events("github").await.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_malformed_bodies_are_400_naming_the_problem() {
    let h = github_harness().await;
    let (st, v) = github(&h, "push", "m-1", b"{\"ref\": ").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("not JSON"), "{v}");
    let (st, v) = github(&h, "push", "m-2", br#"{"before": "x"}"#).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(v["field"], "ref", "{v}");
    let (st, v) = github(&h, "push", "m-3", b"[1, 2]").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let body = fixture("github/ping.json");
    let sig = sign_sha256(GH_SECRET, &body);
    let (st, v) = h
        .post(
            "/v1/ingest/github",
            &[("x-github-delivery", "m-4"), ("x-hub-signature-256", &sig)],
            body,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(v["field"], "X-GitHub-Event", "{v}");
    assert!(h.events("github").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_unknown_event_type_is_kept_as_github_type() {
    let h = github_harness().await;
    let (st, v) = github(&h, "star", "star-1", &fixture("github/star_created.json")).await;
    assert_eq!((st, report(&v)), (StatusCode::ACCEPTED, (1, 0, 0)), "{v}");
    let e = h.event("github:star-1").await;
    assert_eq!(e["action"], "github.star.created");
    assert_eq!(e["actor"]["id"], "stranger");
    assert_eq!(e["system"], "acme/payments-api");
    attrs(
        &e,
        &[
            ("source_event", json!("star")),
            ("payload.starred_at", json!("2026-11-25T11:00:00Z")),
            ("payload.repository.default_branch", json!("main")),
        ],
    );
    assert!(e["attributes"]["payload.sha256"].is_string());
    // API link fields are not kept.
    assert!(e["attributes"]
        .get("payload.repository.hooks_url")
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_merge_without_an_approving_review_is_flagged() {
    let h = github_harness().await;
    let (_, v) = github(
        &h,
        "pull_request_review",
        "rev-42",
        &fixture("github/pull_request_review_approved.json"),
    )
    .await;
    assert_eq!(report(&v), (1, 0, 0), "{v}");
    let r = h.event("github:rev-42").await;
    assert_eq!(r["action"], "pr.review.approved");
    assert_eq!(r["actor"]["id"], "alice");
    assert_eq!(r["resource"], "acme/payments-api#42");
    assert_eq!(r["time"], "2026-11-25T09:05:12Z");
    attrs(
        &r,
        &[
            ("pr.number", json!(42)),
            ("review.state", json!("approved")),
            ("pr.author", json!("mallory-dev")),
        ],
    );

    let (_, v) = github(
        &h,
        "pull_request",
        "merge-42",
        &fixture("github/pull_request_closed_merged.json"),
    )
    .await;
    assert_eq!(report(&v), (1, 0, 0), "{v}");
    let m = h.event("github:merge-42").await;
    assert_eq!(m["action"], "pr.merged");
    assert_eq!(m["time"], "2026-11-25T09:10:00Z");
    assert_eq!(m["volume"], json!({"files": 7}));
    attrs(
        &m,
        &[
            ("pr.number", json!(42)),
            ("pr.base", json!("main")),
            ("pr.head", json!("fix/session")),
            ("pr.merged_by", json!("mallory-dev")),
            ("pr.base_is_default", json!(true)),
            ("review.known", json!(true)),
            ("review.approvals", json!(1)),
            ("review.approvers", json!("alice")),
            ("reviewed", json!(true)),
            ("self_merged", json!(true)),
        ],
    );

    let (_, v) = github(
        &h,
        "pull_request",
        "merge-43",
        &fixture("github/pull_request_closed_merged_unreviewed.json"),
    )
    .await;
    assert_eq!(report(&v), (2, 0, 0), "{v}");
    let w = h.event("github:merge-43:without_review").await;
    assert_eq!(w["action"], "pr.merged.without_review");
    assert_eq!(w["resource"], "acme/payments-api#43");
    attrs(
        &w,
        &[
            ("review.approvals", json!(0)),
            ("reviewed", json!(false)),
            ("pr.title", json!("Skip invoice validation")),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_governance_events_map_to_the_vocabulary() {
    let h = github_harness().await;
    let cases = [
        (
            "branch_protection_rule",
            "branch_protection_rule_edited.json",
            "branch.protection.changed",
        ),
        (
            "repository_ruleset",
            "repository_ruleset_edited.json",
            "repo.ruleset.changed",
        ),
        (
            "repository",
            "repository_publicized.json",
            "repo.visibility.changed",
        ),
        ("member", "member_added.json", "member.added"),
        ("team", "team_edited.json", "team.permission.changed"),
        (
            "deploy_key",
            "deploy_key_created.json",
            "deploy_key.created",
        ),
        (
            "workflow_run",
            "workflow_run_completed.json",
            "ci.workflow.run",
        ),
        (
            "secret_scanning_alert",
            "secret_scanning_alert_created.json",
            "secret_scanning.alert",
        ),
        ("installation", "installation_created.json", "app.installed"),
        (
            "installation",
            "installation_new_permissions_accepted.json",
            "credential.scope.increased",
        ),
        (
            "github_app_authorization",
            "github_app_authorization_revoked.json",
            "app.authorization.revoked",
        ),
        ("ping", "ping.json", "webhook.ping"),
    ];
    for (i, (kind, file, action)) in cases.iter().enumerate() {
        let delivery = format!("gov-{i}");
        let (st, v) = github(&h, kind, &delivery, &fixture(&format!("github/{file}"))).await;
        assert_eq!(
            (st, report(&v)),
            (StatusCode::ACCEPTED, (1, 0, 0)),
            "{file}: {v}"
        );
        let e = h.event(&format!("github:{delivery}")).await;
        assert_eq!(e["action"], *action, "{file}");
    }
    let bp = h.event("github:gov-0").await;
    assert_eq!(bp["actor"]["id"], "mallory-dev");
    assert_eq!(bp["time"], "2026-11-25T08:45:00Z");
    attrs(&bp, &[
        ("weakened", json!(true)),
        ("weakened.fields", json!("admin_enforced,allow_force_pushes_enforcement_level,required_approving_review_count")),
        ("changes.required_approving_review_count.from", json!(2)),
        ("rule.required_approving_review_count", json!(0)),
    ]);
    attrs(
        &h.event("github:gov-1").await,
        &[
            ("ruleset.enforcement", json!("evaluate")),
            ("changes.enforcement.from", json!("active")),
            ("weakened", json!(true)),
            (
                "ruleset.rules",
                json!("deletion,non_fast_forward,pull_request"),
            ),
        ],
    );
    let vis = h.event("github:gov-2").await;
    assert_eq!(vis["resource"], "acme/payments-api");
    attrs(
        &vis,
        &[
            ("visibility", json!("public")),
            ("visibility.from", json!("private")),
            ("repo.visibility", json!("public")),
        ],
    );
    let m = h.event("github:gov-3").await;
    assert_eq!(m["resource"], "eve-contractor");
    attrs(
        &m,
        &[("permission", json!("admin")), ("escalated", json!(true))],
    );
    let t = h.event("github:gov-4").await;
    assert_eq!(t["resource"], "contractors");
    attrs(
        &t,
        &[
            ("permission", json!("push")),
            ("permission.from", json!("pull")),
            ("escalated", json!(true)),
        ],
    );
    let dk = h.event("github:gov-5").await;
    assert_eq!(dk["resource"], "ci-runner-temp");
    attrs(
        &dk,
        &[("read_only", json!(false)), ("key.id", json!("98765432"))],
    );
    assert!(dk["attributes"]["key.sha256"].as_str().unwrap().len() == 64);
    never_stored(std::slice::from_ref(&dk), "AAAAC3NzaC1lZDI1NTE5");
    let run = h.event("github:gov-6").await;
    assert_eq!(run["resource"], ".github/workflows/deploy.yml");
    assert_eq!(run["time"], "2026-11-25T08:06:40Z");
    attrs(
        &run,
        &[
            ("run.conclusion", json!("success")),
            ("run.event", json!("push")),
            ("run.branch", json!("main")),
            ("workflow.name", json!("Deploy")),
        ],
    );
    let ss = h.event("github:gov-7").await;
    assert_eq!(ss["actor"]["type"], "service");
    attrs(
        &ss,
        &[
            ("secret_type", json!("aws_access_key_id")),
            ("push_protection_bypassed", json!(true)),
            ("push_protection_bypassed_by", json!("mallory-dev")),
            ("validity", json!("active")),
        ],
    );
    let app = h.event("github:gov-8").await;
    assert_eq!(app["system"], "acme");
    assert_eq!(app["resource"], "quick-export");
    attrs(
        &app,
        &[
            ("permissions.contents", json!("read")),
            ("repository_selection", json!("all")),
            ("repositories", json!("acme/payments-api")),
        ],
    );
    let up = h.event("github:gov-9").await;
    attrs(
        &up,
        &[
            ("permissions.secrets", json!("write")),
            ("permissions.write_count", json!(2)),
            ("credential.kind", json!("github_app_installation")),
        ],
    );
    let revoked = h.event("github:gov-10").await;
    assert_eq!(revoked["system"], "github");
    attrs(
        &h.event("github:gov-11").await,
        &[(
            "hook.events",
            json!("push,pull_request,pull_request_review,branch_protection_rule,member"),
        )],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_endpoints_follow_api_token_rules_without_a_source_secret() {
    // No secret, no API tokens (loopback only): open.
    let h = Harness::start(|_| {}).await;
    let (st, v) = h
        .post(
            "/v1/ingest/github",
            &[("x-github-event", "ping"), ("x-github-delivery", "open-1")],
            fixture("github/ping.json"),
        )
        .await;
    assert_eq!((st, report(&v)), (StatusCode::ACCEPTED, (1, 0, 0)), "{v}");

    // No secret, API tokens configured: the ingest scope is required.
    let h = Harness::start(|c| {
        c.auth.tokens = vec![ApiToken {
            name: "ci".into(),
            token: API_TOKEN.into(),
            scopes: vec![Scope::Ingest, Scope::Read],
        }];
    })
    .await;
    let ping = [("x-github-event", "ping"), ("x-github-delivery", "tok-1")];
    let (st, _) = h
        .post("/v1/ingest/github", &ping, fixture("github/ping.json"))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let bearer = format!("Bearer {API_TOKEN}");
    let with = [ping[0], ping[1], ("authorization", bearer.as_str())];
    let (st, _) = h
        .post("/v1/ingest/github", &with, fixture("github/ping.json"))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, _) = h
        .post("/v1/ingest/vault", &[], fixture("vault/audit.log"))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = h
        .post(
            "/v1/ingest/cloudtrail",
            &[],
            fixture("cloudtrail/log_file.json"),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // Secret configured and tokens too: an unsigned back-fill with an ingest token passes,
    // an unsigned request without one does not.
    let h = Harness::start(|c| {
        c.github.secret = GH_SECRET.into();
        c.auth.tokens = vec![ApiToken {
            name: "ci".into(),
            token: API_TOKEN.into(),
            scopes: vec![Scope::Ingest, Scope::Read],
        }];
    })
    .await;
    let (st, _) = h
        .post(
            "/v1/ingest/github",
            &[ping[0], ("x-github-delivery", "bf-1")],
            fixture("github/ping.json"),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = h
        .post(
            "/v1/ingest/github",
            &[
                ping[0],
                ("x-github-delivery", "bf-2"),
                ("authorization", bearer.as_str()),
            ],
            fixture("github/ping.json"),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
}

#[test]
fn source_secrets_come_from_the_documented_environment_variables() {
    let env: Vec<(String, String)> = [
        ("PLUMBLINE_GITHUB_SECRET", "gh"),
        ("PLUMBLINE_GITLAB_TOKEN", "gl"),
        ("PLUMBLINE_N8N_TOKEN", "n8"),
        ("PLUMBLINE_MAKE_TOKEN", "mk"),
        ("PLUMBLINE_OKTA_AUTHORIZATION", "ok"),
        ("PLUMBLINE_OPENAI_TOKEN", "oa"),
        ("PLUMBLINE_VAULT_SOCKET_LISTEN", "127.0.0.1:9090"),
        (
            "PLUMBLINE_CLOUDTRAIL_ACCOUNT_ENVIRONMENTS",
            r#"{ "111122223333" = "prod" }"#,
        ),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let c = Config::load_with_env(None, env).unwrap();
    assert_eq!(c.github.secret, "gh");
    assert_eq!(c.gitlab.token, "gl");
    assert_eq!(c.n8n.token, "n8");
    assert_eq!(c.make.token, "mk");
    assert_eq!(c.okta.authorization, "ok");
    assert!(c.okta.verification);
    assert_eq!(c.openai.token, "oa");
    assert_eq!(c.vault.socket_listen, "127.0.0.1:9090");
    assert_eq!(c.cloudtrail.account_environments["111122223333"], "prod");
    let d = Config::defaults();
    assert!(d.github.secret.is_empty() && d.vault.socket_listen.is_empty());
}

// ---------------------------------------------------------------------------- GitLab

const GL_TOKEN: &str = "gitlab-hook-secret";

async fn gitlab_harness() -> Harness {
    Harness::start(|c| c.gitlab.token = GL_TOKEN.into()).await
}

async fn gitlab(h: &Harness, event: &str, key: &str, body: Vec<u8>) -> (StatusCode, Value) {
    h.post(
        "/v1/ingest/gitlab",
        &[
            ("content-type", "application/json"),
            ("x-gitlab-event", event),
            ("x-gitlab-token", GL_TOKEN),
            ("x-gitlab-instance", "https://gitlab.acme.example"),
            (
                "x-gitlab-webhook-uuid",
                "1f2e3d4c-0000-4000-8000-abcdefabcdef",
            ),
            ("idempotency-key", key),
            ("user-agent", "GitLab/17.6.0"),
        ],
        body,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_push_hook_maps_protected_default_and_risky_paths() {
    let h = gitlab_harness().await;
    let key = "8e4f8c7a-6b1d-4c0e-9a3f-2d1e0c9b8a7f";
    let (st, v) = gitlab(&h, "Push Hook", key, fixture("gitlab/push_hook.json")).await;
    assert_eq!((st, report(&v)), (StatusCode::ACCEPTED, (5, 0, 0)), "{v}");
    let e = h.event(&format!("gitlab:{key}")).await;
    assert_eq!(e["action"], "git.push");
    assert_eq!(e["source"], "gitlab");
    assert_eq!(
        e["actor"],
        json!({"id": "trent", "type": "human", "display": "Trent Ops"})
    );
    assert_eq!(e["system"], "finance/ledger");
    assert_eq!(e["resource"], "refs/heads/main");
    assert_eq!(e["volume"], json!({"files": 2}));
    attrs(
        &e,
        &[
            ("source_event", json!("push")),
            ("branch", json!("main")),
            ("protected", json!(true)),
            ("to_default_branch", json!(true)),
            ("commits", json!(2)),
            ("repo.visibility", json!("private")),
        ],
    );
    assert!(redacted(&e["attributes"]["head_commit.message"]), "{e}");
    for (suffix, action) in [
        ("default", "git.push.default_branch"),
        ("protected", "git.push.protected_branch"),
    ] {
        assert_eq!(
            h.event(&format!("gitlab:{key}:{suffix}")).await["action"],
            action
        );
    }
    attrs(
        &h.event(&format!("gitlab:{key}:risk.ci")).await,
        &[("risk.paths.0", json!(".gitlab-ci.yml"))],
    );
    attrs(
        &h.event(&format!("gitlab:{key}:risk.secrets")).await,
        &[("risk.paths.0", json!("config/secrets/registry.yml"))],
    );
    never_stored(&h.events("gitlab").await, "glpat-AbCdEfGhIjKlMnOpQrSt12");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_bad_token_replay_malformed_and_unknown() {
    let h = gitlab_harness().await;
    let (st, v) = h
        .post(
            "/v1/ingest/gitlab",
            &[("x-gitlab-event", "Push Hook"), ("x-gitlab-token", "wrong")],
            fixture("gitlab/push_hook.json"),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    let (st, _) = h
        .post(
            "/v1/ingest/gitlab",
            &[("x-gitlab-event", "Push Hook")],
            fixture("gitlab/push_hook.json"),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(h.events("gitlab").await.is_empty());

    let (_, v) = gitlab(&h, "Push Hook", "k-1", fixture("gitlab/push_hook.json")).await;
    assert_eq!(report(&v), (5, 0, 0));
    let (_, v) = gitlab(&h, "Push Hook", "k-1", fixture("gitlab/push_hook.json")).await;
    assert_eq!(
        report(&v),
        (0, 5, 0),
        "a retried delivery keeps its Idempotency-Key"
    );

    let (st, v) = gitlab(&h, "Push Hook", "k-2", b"{not json".to_vec()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("not JSON"), "{v}");
    let (st, v) = gitlab(
        &h,
        "Push Hook",
        "k-3",
        br#"{"object_kind": "push"}"#.to_vec(),
    )
    .await;
    assert_eq!(
        (st, v["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("ref")),
        "{v}"
    );

    let (_, v) = gitlab(&h, "Issue Hook", "k-4", fixture("gitlab/issue_hook.json")).await;
    assert_eq!(report(&v), (1, 0, 0), "{v}");
    let e = h.event("gitlab:k-4").await;
    assert_eq!(e["action"], "gitlab.issue");
    attrs(
        &e,
        &[
            (
                "payload.object_attributes.title",
                json!("Ledger totals drift"),
            ),
            ("source_action", json!("open")),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_merge_requests_and_audit_events() {
    let h = gitlab_harness().await;
    let (_, v) = gitlab(
        &h,
        "Merge Request Hook",
        "mr-a",
        fixture("gitlab/merge_request_approval.json"),
    )
    .await;
    assert_eq!(report(&v), (1, 0, 0), "{v}");
    let a = h.event("gitlab:mr-a").await;
    assert_eq!(a["action"], "pr.review.approved");
    assert_eq!(a["actor"]["id"], "peggy");
    assert_eq!(a["resource"], "finance/ledger!7");
    assert_eq!(a["time"], "2026-11-25T10:30:00Z");
    let (_, v) = gitlab(
        &h,
        "Merge Request Hook",
        "mr-m",
        fixture("gitlab/merge_request_merge.json"),
    )
    .await;
    assert_eq!(report(&v), (1, 0, 0), "{v}");
    attrs(
        &h.event("gitlab:mr-m").await,
        &[
            ("review.approvals", json!(1)),
            ("review.approvers", json!("peggy")),
            ("self_merged", json!(true)),
        ],
    );
    let (_, v) = gitlab(
        &h,
        "Merge Request Hook",
        "mr-u",
        fixture("gitlab/merge_request_merge_unreviewed.json"),
    )
    .await;
    assert_eq!(report(&v), (2, 0, 0), "{v}");
    assert_eq!(
        h.event("gitlab:mr-u:without_review").await["action"],
        "pr.merged.without_review"
    );

    // Audit-event streaming destination.
    let (st, v) = h
        .post(
            "/v1/ingest/gitlab",
            &[
                ("x-gitlab-event-streaming-token", GL_TOKEN),
                (
                    "x-gitlab-audit-event-type",
                    "protected_branch_allow_force_push_updated",
                ),
            ],
            fixture("gitlab/audit_protected_branch_updated.json"),
        )
        .await;
    assert_eq!((st, report(&v)), (StatusCode::ACCEPTED, (1, 0, 0)), "{v}");
    let e = h.event("gitlab:audit:5093").await;
    assert_eq!(e["action"], "branch.protection.changed");
    assert_eq!(e["actor"]["id"], "trent");
    assert_eq!(e["system"], "finance/ledger");
    assert_eq!(e["resource"], "main");
    assert_eq!(e["time"], "2026-11-25T10:40:00Z");
    attrs(
        &e,
        &[
            ("weakened", json!(true)),
            ("change", json!("allow_force_push")),
            ("change.to", json!(true)),
            ("ip", json!("10.20.0.14")),
        ],
    );

    // An export of audit events (array) maps each; unknown types keep their name.
    let (_, v) = gitlab(&h, "", "exp-1", fixture("gitlab/audit_events_export.json")).await;
    assert_eq!(report(&v), (3, 0, 0), "{v}");
    assert_eq!(
        h.event("gitlab:audit:5101").await["action"],
        "api_key.created"
    );
    let export = h.event("gitlab:audit:5102").await;
    assert_eq!(export["action"], "data.export");
    assert_eq!(export["resource"], "finance/ledger");
    let unknown = h.event("gitlab:audit:5103").await;
    assert_eq!(unknown["action"], "gitlab.project_path_updated");
    attrs(
        &unknown,
        &[
            ("change", json!("path")),
            ("change.to", json!("finance/ledger-archive")),
        ],
    );
}

// ---------------------------------------------------------------------------- n8n

const N8N_TOKEN: &str = "n8n-log-stream-token";

async fn n8n(h: &Harness, body: Vec<u8>) -> (StatusCode, Value) {
    let bearer = format!("Bearer {N8N_TOKEN}");
    h.post(
        "/v1/ingest/n8n",
        &[
            ("content-type", "application/json"),
            ("authorization", &bearer),
        ],
        body,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n8n_workflow_story_derives_triggers_destinations_nodes_and_scope_growth() {
    let h = Harness::start(|c| c.n8n.token = N8N_TOKEN.into()).await;
    let (_, v) = n8n(&h, fixture("n8n/credentials_created.json")).await;
    assert_eq!(report(&v), (1, 0, 0), "{v}");
    let c = h.event("n8n:6c3b2d5e-3f4a-4b82-9d2e-3f4a5b6c7d8e").await;
    assert_eq!(c["action"], "credential.created");
    assert_eq!(
        c["actor"],
        json!({"id": "dana@acme.example", "type": "human", "display": "Dana Ops"})
    );
    assert_eq!(c["system"], "n8n");
    assert_eq!(c["resource"], "credential/31");
    assert_eq!(c["time"], "2026-11-25T08:50:00Z");
    attrs(
        &c,
        &[
            ("credential.type", json!("googleDriveOAuth2Api")),
            ("credential.name", json!("Drive (finance)")),
            (
                "credential.scope",
                json!("https://www.googleapis.com/auth/drive.file"),
            ),
            ("user.role", json!("global:member")),
        ],
    );

    let (_, v) = n8n(&h, fixture("n8n/workflow_created.json")).await;
    assert_eq!(
        report(&v),
        (4, 0, 0),
        "created + two nodes added + a credential attached: {v}"
    );
    let created = h.event("n8n:3f0e9a2b-0c1d-4e5f-8a9b-0c1d2e3f4a5b").await;
    assert_eq!(created["action"], "workflow.created");
    assert_eq!(created["system"], "n8n/workflow/Wf3kQ9zLx2");
    assert_eq!(created["resource"], "workflow/Wf3kQ9zLx2");
    assert_eq!(created["environment"], "prod");
    assert_eq!(created["destination"], "erp.internal.acme.example");
    attrs(
        &created,
        &[
            ("trigger.schedule", json!(true)),
            ("trigger.kinds", json!("schedule")),
            ("export", json!(false)),
            ("credentials", json!("httpHeaderAuth:ERP read")),
        ],
    );
    let attached: Vec<Value> = h
        .events("n8n")
        .await
        .into_iter()
        .filter(|e| e["action"] == "credential.attached")
        .collect();
    assert_eq!(attached.len(), 1);
    assert_eq!(attached[0]["system"], "n8n/workflow/Wf3kQ9zLx2");
    attrs(
        &attached[0],
        &[
            ("credential.type", json!("httpHeaderAuth")),
            ("credential.name", json!("ERP read")),
            ("node.name", json!("Fetch invoices")),
        ],
    );

    let (_, v) = n8n(&h, fixture("n8n/workflow_updated.json")).await;
    assert_eq!(
        report(&v),
        (3, 0, 0),
        "updated + Webhook and Upload copy added: {v}"
    );
    let id = "n8n:4a1f0b3c-1d2e-4f60-9b0c-1d2e3f4a5b6c";
    let u = h.event(id).await;
    assert_eq!(u["action"], "workflow.updated");
    attrs(
        &u,
        &[
            ("trigger.webhook", json!(true)),
            ("trigger.webhook.unauthenticated", json!(true)),
            ("trigger.webhook.paths", json!("invoice-sync")),
            ("trigger.kinds", json!("schedule,webhook")),
            (
                "destinations",
                json!("erp.internal.acme.example,paste.example.net"),
            ),
            ("destinations.count", json!(2)),
            ("export", json!(true)),
            ("export.nodes", json!("httpRequest")),
            ("nodes.count", json!(4)),
        ],
    );
    let added: Vec<Value> = h
        .events("n8n")
        .await
        .into_iter()
        .filter(|e| {
            e["action"] == "workflow.node.added" && e["id"].as_str().unwrap().starts_with(id)
        })
        .collect();
    let mut names: Vec<&str> = added
        .iter()
        .map(|e| e["attributes"]["node.name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["Upload copy", "Webhook"]);
    let upload = added
        .iter()
        .find(|e| e["attributes"]["node.name"] == "Upload copy")
        .unwrap();
    attrs(
        upload,
        &[
            ("node.type", json!("n8n-nodes-base.httpRequest")),
            ("node.export", json!(true)),
            ("node.destination", json!("paste.example.net")),
        ],
    );
    assert_eq!(upload["destination"], "paste.example.net");

    let (_, v) = n8n(&h, fixture("n8n/credentials_updated.json")).await;
    assert_eq!(report(&v), (2, 0, 0), "{v}");
    let grew = h
        .event("n8n:7d4c3e6f-4a5b-4c93-8e3f-4a5b6c7d8e9f:scope")
        .await;
    assert_eq!(grew["action"], "credential.scope.increased");
    attrs(
        &grew,
        &[
            (
                "credential.scope.added",
                json!("https://www.googleapis.com/auth/drive"),
            ),
            (
                "credential.scope.before",
                json!("https://www.googleapis.com/auth/drive.file"),
            ),
        ],
    );

    for f in [
        ("workflow_activated.json", 1u64),
        ("node_finished.json", 2),
        ("workflow_success.json", 1),
    ] {
        let (_, v) = n8n(&h, fixture(&format!("n8n/{}", f.0))).await;
        assert_eq!(report(&v), (f.1, 0, 0), "{}: {v}", f.0);
    }
    assert_eq!(
        h.event("n8n:5b2a1c4d-2e3f-4a71-8c1d-2e3f4a5b6c7d").await["action"],
        "workflow.activated"
    );
    let node = h.event("n8n:8e5d4f70-5b6c-4da4-9f4a-5b6c7d8e9fa0").await;
    assert_eq!(node["action"], "workflow.node.executed");
    assert_eq!(
        node["actor"],
        json!({"id": "n8n-workflow:Wf3kQ9zLx2", "type": "service", "display": "Invoice sync (prod)"})
    );
    attrs(
        &node,
        &[
            ("node.name", json!("Upload copy")),
            ("node.export", json!(true)),
            ("node.destination", json!("paste.example.net")),
            ("execution.id", json!("1042")),
        ],
    );
    // The export node ran: data left n8n for the node's host.
    let export = h
        .event("n8n:8e5d4f70-5b6c-4da4-9f4a-5b6c7d8e9fa0:export")
        .await;
    assert_eq!(export["action"], "data.export");
    assert_eq!(export["destination"], "paste.example.net");
    assert_eq!(export["actor"]["id"], "n8n-workflow:Wf3kQ9zLx2");
    assert_eq!(export["environment"], "prod");
    attrs(
        &export,
        &[("export.via", json!("n8n-nodes-base.httpRequest"))],
    );
    let run = h.event("n8n:9f6e5081-6c7d-4eb5-8a5b-6c7d8e9fa0b1").await;
    assert_eq!(run["action"], "workflow.executed");
    attrs(
        &run,
        &[
            ("outcome", json!("success")),
            ("execution.mode", json!("webhook")),
            ("manual", json!(false)),
        ],
    );
    // The bearer token inside the workflow's HTTP node is never stored.
    never_stored(
        &h.events("n8n").await,
        "sk-proj-abcdefghijklmnopqrstuvwxyz123456",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n8n_token_replay_malformed_and_unknown() {
    let h = Harness::start(|c| c.n8n.token = N8N_TOKEN.into()).await;
    let (st, _) = h
        .post(
            "/v1/ingest/n8n",
            &[("authorization", "Bearer nope")],
            fixture("n8n/login_failed.json"),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(h.events("n8n").await.is_empty());
    // n8n's Header Auth with a custom header name works too.
    let (st, v) = h
        .post(
            "/v1/ingest/n8n",
            &[("x-plumbline-token", N8N_TOKEN)],
            fixture("n8n/login_failed.json"),
        )
        .await;
    assert_eq!((st, report(&v)), (StatusCode::ACCEPTED, (1, 0, 0)), "{v}");
    let e = h.event("n8n:a07f6192-7d8e-4fc6-9b6c-7d8e9fa0b1c2").await;
    assert_eq!(e["action"], "auth.login.failed");
    assert_eq!(e["actor"]["id"], "dana@acme.example");
    attrs(&e, &[("reason", json!("wrong credentials"))]);
    let (_, v) = n8n(&h, fixture("n8n/login_failed.json")).await;
    assert_eq!(report(&v), (0, 1, 0));

    let (st, v) = n8n(&h, br#"{"id": "x", "payload": {}}"#.to_vec()).await;
    assert_eq!(
        (st, v["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("eventName")),
        "{v}"
    );
    let (st, _) = n8n(&h, b"eventName=n8n.audit".to_vec()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (_, v) = n8n(
        &h,
        br#"[{"id": "y", "eventName": "n8n.audit.workflow.created", "ts": "yesterday"}]"#.to_vec(),
    )
    .await;
    assert_eq!(report(&v), (0, 0, 1));
    assert_eq!(v["rejected"][0]["field"], "ts");

    let (_, v) = n8n(&h, fixture("n8n/ai_tool_called.json")).await;
    assert_eq!(report(&v), (1, 0, 0));
    let u = h.event("n8n:b1807203-8e9f-40d7-8c7d-8e9fa0b1c2d3").await;
    assert_eq!(u["action"], "n8n.ai.tool.called");
    attrs(
        &u,
        &[(
            "payload.nodeType",
            json!("@n8n/n8n-nodes-langchain.toolHttpRequest"),
        )],
    );
}

// ---------------------------------------------------------------------------- make.com

const MAKE_TOKEN: &str = "make-audit-shipper";

async fn make(h: &Harness, body: Vec<u8>) -> (StatusCode, Value) {
    let auth = format!("Token {MAKE_TOKEN}");
    h.post("/v1/ingest/make", &[("authorization", &auth)], body)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_audit_logs_map_scenarios_connections_and_blueprints() {
    let h = Harness::start(|c| c.make.token = MAKE_TOKEN.into()).await;
    let (st, v) = make(&h, fixture("make/audit_logs.json")).await;
    assert_eq!((st, report(&v)), (StatusCode::ACCEPTED, (4, 0, 0)), "{v}");
    let c = h.event("make:c37c729235cd4dc4911321b23beaea7d").await;
    assert_eq!(c["action"], "credential.created");
    assert_eq!(
        c["actor"],
        json!({"id": "ivan@acme.example", "type": "human", "display": "Ivan Builder"})
    );
    assert_eq!(c["system"], "make");
    assert_eq!(c["resource"], "connection/5501");
    assert_eq!(c["time"], "2026-11-25T09:00:00Z");
    attrs(
        &c,
        &[
            ("team.name", json!("Finance Ops")),
            ("credential.kind", json!("connection")),
            ("source_event", json!("connection_created")),
        ],
    );
    let s = h.event("make:5a1f0c2e8d3b4e6f9a7c1b2d3e4f5a6b").await;
    assert_eq!(s["action"], "workflow.activated");
    assert_eq!(s["system"], "make/scenario/8801");
    attrs(
        &s,
        &[("version.from", json!("3")), ("version.to", json!("4"))],
    );
    attrs(
        &h.event("make:6b2e1d3f9e4c4f7a8b8d2c3e4f5a6b7c").await,
        &[("trigger.webhook", json!(true))],
    );
    let u = h.event("make:7c3f2e4a0f5d4a8b9c9e3d4f5a6b7c8d").await;
    assert_eq!(u["action"], "make.datastore_record_exported");
    assert_eq!(u["actor"]["id"], "make-user:213");
    attrs(&u, &[("actor.anonymized", json!(true))]);

    let (_, v) = make(&h, fixture("make/connection_reauthorized_first.json")).await;
    assert_eq!(report(&v), (1, 0, 0), "{v}");
    let (_, v) = make(&h, fixture("make/connection_updated_detail.json")).await;
    assert_eq!(report(&v), (2, 0, 0), "{v}");
    let grew = h.event("make:8d4a3f5b1a6e4b9c8dae4e5a6b7c8d9e:scope").await;
    assert_eq!(grew["action"], "credential.scope.increased");
    attrs(
        &grew,
        &[(
            "credential.scope.added",
            json!("https://www.googleapis.com/auth/drive"),
        )],
    );
    // The OAuth token in the entry's detail is kept only as a marker.
    let updated = h.event("make:8d4a3f5b1a6e4b9c8dae4e5a6b7c8d9e").await;
    assert!(
        redacted(&updated["attributes"]["detail.accessToken"]),
        "{updated}"
    );
    never_stored(
        &h.events("make").await,
        "ya29.a0AfB_byC9xKq3Lm8Zt7Wv2Rr5Ns1Pq4Jk6Hg0Fd",
    );

    let (_, v) = make(&h, fixture("make/scenario_updated_detail.json")).await;
    assert_eq!(report(&v), (1, 0, 0), "{v}");
    let w = h.event("make:af6c5b7d3c804dbe8fc06a7c8d9eafb0").await;
    assert_eq!(w["action"], "workflow.updated");
    assert_eq!(w["environment"], "prod");
    assert_eq!(w["destination"], "transfer.example.io");
    attrs(
        &w,
        &[
            ("trigger.webhook", json!(true)),
            ("export", json!(true)),
            ("export.nodes", json!("http")),
            ("detail.scenarioName", json!("Nightly ledger export (prod)")),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_token_replay_malformed() {
    let h = Harness::start(|c| c.make.token = MAKE_TOKEN.into()).await;
    let (st, _) = h
        .post(
            "/v1/ingest/make",
            &[("authorization", "Token wrong")],
            fixture("make/audit_logs.json"),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(h.events("make").await.is_empty());
    let (_, v) = make(&h, fixture("make/audit_logs.json")).await;
    assert_eq!(report(&v), (4, 0, 0));
    // An overlapping poll of the same page.
    let (_, v) = make(&h, fixture("make/audit_logs.json")).await;
    assert_eq!(report(&v), (0, 4, 0));
    let (st, v) = make(&h, br#"{"pg": {}}"#.to_vec()).await;
    assert_eq!(
        (st, v["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("auditLogs")),
        "{v}"
    );
    let (_, v) = make(
        &h,
        br#"{"auditLogs": [{"uuid": "u1", "eventName": "scenario_created"}]}"#.to_vec(),
    )
    .await;
    assert_eq!(v["rejected"][0]["field"], "triggeredAt", "{v}");
}

// ---------------------------------------------------------------------------- Vault

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_audit_lines_map_reads_denials_logins_and_tokens() {
    let h = Harness::start(|_| {}).await;
    let (st, v) = h
        .post(
            "/v1/ingest/vault",
            &[("content-type", "application/x-ndjson")],
            fixture("vault/audit.log"),
        )
        .await;
    assert_eq!((st, report(&v)), (StatusCode::ACCEPTED, (7, 0, 0)), "{v}");
    let req = "b1c4a7d2-3e5f-4a6b-8c7d-9e0f1a2b3c4d";
    assert_eq!(
        h.event(&format!("vault:{req}:request")).await["action"],
        "vault.request"
    );
    let r = h.event(&format!("vault:{req}:response")).await;
    assert_eq!(r["action"], "secret.read");
    assert_eq!(r["source"], "vault");
    assert_eq!(
        r["actor"],
        json!({"id": "approle", "type": "service", "display": "approle"})
    );
    assert_eq!(r["system"], "vault");
    assert_eq!(r["resource"], "secret/data/prod/payments/stripe");
    assert_eq!(r["environment"], "prod");
    assert_eq!(r["time"], "2026-11-25T09:10:00.125001Z");
    attrs(
        &r,
        &[
            ("operation", json!("read")),
            ("mount.type", json!("kv")),
            ("mount.point", json!("secret/")),
            ("ip", json!("10.4.0.17")),
            ("outcome", json!("success")),
            ("auth.policies", json!("default,ci-deploy")),
            ("auth.metadata.role_name", json!("ci-deploy")),
            (
                "auth.entity_id",
                json!("7d2e3179-f69f-4d61-8f9a-0c7b1d2e3f40"),
            ),
            // Vault's own HMACs are kept as they come.
            (
                "auth.client_token",
                json!(
                    "hmac-sha256:6f0e6a1cb1a7e6a7d3b8c5f9e1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5e"
                ),
            ),
        ],
    );
    let d = h
        .event("vault:c2d5b8e3-4f60-4b7c-9d8e-0f1a2b3c4d5e:response")
        .await;
    assert_eq!(d["action"], "secret.permission_denied");
    attrs(
        &d,
        &[
            ("outcome", json!("failure")),
            ("error", json!("1 error occurred: permission denied")),
        ],
    );
    let l = h
        .event("vault:d3e6c9f4-5071-4c8d-8e9f-1a2b3c4d5e6f:response")
        .await;
    assert_eq!(l["action"], "secret.list");
    assert_eq!(l["volume"], json!({"rows": 4}));
    let login = h
        .event("vault:e4f7da05-6182-4d9e-9fa0-2b3c4d5e6f70:response")
        .await;
    assert_eq!(login["action"], "auth.login");
    assert_eq!(login["actor"]["type"], "human");
    assert_eq!(login["actor"]["id"], "userpass-dana");
    attrs(&login, &[("ip", json!("192.0.2.44"))]);
    let tok = h
        .event("vault:f5a8eb16-7293-4eaf-80b1-3c4d5e6f7081:response")
        .await;
    assert_eq!(tok["action"], "token.created");
    attrs(&tok, &[("granted.policies", json!("default,batch,admin"))]);
    assert!(redacted(&tok["attributes"]["auth.client_token"]), "{tok}");
    let unknown = h
        .event("vault:0a1b2c3d-4e5f-4061-8273-9a0b1c2d3e4f:audit-hmac-check")
        .await;
    assert_eq!(unknown["action"], "vault.audit-hmac-check");
    never_stored(&h.events("vault").await, "hvs.CAES");

    // The same log again (a re-read file): stored once.
    let (_, v) = h
        .post("/v1/ingest/vault", &[], fixture("vault/audit.log"))
        .await;
    assert_eq!(report(&v), (0, 7, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_malformed_lines_are_refused_by_position() {
    let h = Harness::start(|_| {}).await;
    let mut body = fixture("vault/audit.log");
    body.extend_from_slice(b"{\"time\": \"2026-11-25T09:20:00Z\", \"type\": \"response\"\n");
    body.extend_from_slice(b"{\"type\": \"response\"}\n");
    let (st, v) = h.post("/v1/ingest/vault", &[], body).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(report(&v), (7, 0, 2), "{v}");
    assert_eq!(v["rejected"][0]["index"], 7);
    assert_eq!(v["rejected"][0]["field"], "(line)");
    assert_eq!(v["rejected"][1]["field"], "time");
    let (st, v) = h
        .post("/v1/ingest/vault", &[], b"type=response".to_vec())
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = h.post("/v1/ingest/vault", &[], b"{ nope".to_vec()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"].as_str().unwrap().contains("not JSON"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_socket_device_streams_json_lines() {
    use tokio::io::AsyncWriteExt;
    // A free port for the listener (the harness binds it through `serve::start`).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let a = addr.clone();
    let h = Harness::start(move |c| c.vault.socket_listen = a).await;
    let log = fixture("vault/audit.log");
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // Vault writes whenever it has an entry; split the stream mid-line to prove framing.
    let (first, rest) = log.split_at(log.len() / 3);
    conn.write_all(first).await.unwrap();
    conn.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    conn.write_all(rest).await.unwrap();
    conn.write_all(b"this line is not JSON\n").await.unwrap();
    conn.flush().await.unwrap();
    let mut stored = Vec::new();
    for _ in 0..100 {
        stored = h.events("vault").await;
        if stored.len() >= 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored.len(), 7, "{stored:?}");
    let r = h
        .event("vault:b1c4a7d2-3e5f-4a6b-8c7d-9e0f1a2b3c4d:response")
        .await;
    assert_eq!(r["action"], "secret.read");
    assert_eq!(r["resource"], "secret/data/prod/payments/stripe");
    // A second connection replaying the same lines stores nothing new.
    let mut again = tokio::net::TcpStream::connect(&addr).await.unwrap();
    again.write_all(&log).await.unwrap();
    again.shutdown().await.unwrap();
    drop(conn);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.events("vault").await.len(), 7);
}

// ---------------------------------------------------------------------------- CloudTrail

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudtrail_log_file_maps_data_events_sharing_and_iam() {
    let h = Harness::start(|c| {
        c.cloudtrail.org_accounts = vec!["444455556666".into()];
        c.cloudtrail
            .account_environments
            .insert("111122223333".into(), "prod".into());
    })
    .await;
    let (st, v) = h
        .post(
            "/v1/ingest/cloudtrail",
            &[],
            fixture("cloudtrail/log_file.json"),
        )
        .await;
    assert_eq!((st, report(&v)), (StatusCode::ACCEPTED, (11, 0, 0)), "{v}");
    let get = h
        .event("cloudtrail:3e4b7c1a-2f5d-4e6a-9b8c-0d1e2f3a4b5c")
        .await;
    assert_eq!(get["action"], "s3.object.get");
    assert_eq!(get["source"], "cloudtrail");
    assert_eq!(get["time"], "2026-11-25T09:30:01Z");
    assert_eq!(get["actor"]["type"], "human");
    assert_eq!(get["actor"]["display"], "dana@acme.example");
    assert_eq!(
        get["actor"]["id"],
        "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_DataEngineer_0a1b2c3d4e5f6a7b/dana@acme.example"
    );
    assert_eq!(get["system"], "aws/111122223333");
    assert_eq!(
        get["resource"],
        "s3://acme-customer-exports/exports/2026-11/customers.csv"
    );
    assert_eq!(get["environment"], "prod");
    assert_eq!(get["destination"], "203.0.113.50");
    assert_eq!(get["volume"], json!({"bytes": 52428800, "files": 1}));
    attrs(
        &get,
        &[
            ("bucket", json!("acme-customer-exports")),
            ("event_source", json!("s3.amazonaws.com")),
            ("event_category", json!("Data")),
            ("region", json!("eu-west-1")),
            ("outcome", json!("success")),
            (
                "identity.role",
                json!("AWSReservedSSO_DataEngineer_0a1b2c3d4e5f6a7b"),
            ),
        ],
    );
    let put = h
        .event("cloudtrail:4f5c8d2b-3a6e-4f7b-8c9d-1e2f3a4b5c6d")
        .await;
    assert_eq!(put["action"], "s3.object.put");
    assert_eq!(put["actor"]["type"], "service");
    assert_eq!(put["volume"]["bytes"], 10485760);
    let pol = h
        .event("cloudtrail:5a6d9e3c-4b7f-4a8c-9d0e-2f3a4b5c6d7e")
        .await;
    assert_eq!(pol["action"], "s3.bucket.policy.shared");
    // 444455556666 is an org account; the Deny statement to "*" is not a grant.
    assert_eq!(pol["destination"], "999988887777");
    attrs(
        &pol,
        &[("public", json!(false)), ("shared_with.count", json!(1))],
    );
    let snap = h
        .event("cloudtrail:6b7e0f4d-5c80-4b9d-8e1f-3a4b5c6d7e8f")
        .await;
    assert_eq!(snap["action"], "snapshot.shared");
    assert_eq!(snap["resource"], "snap-0b1c2d3e4f5a6b7c8");
    assert_eq!(snap["destination"], "999988887777");
    let rds = h
        .event("cloudtrail:7c8f1a5e-6d91-4cae-9f20-4b5c6d7e8f90")
        .await;
    assert_eq!(rds["action"], "snapshot.shared");
    assert_eq!(rds["destination"], "public");
    attrs(&rds, &[("public", json!(true))]);
    let key = h
        .event("cloudtrail:8d902b6f-7ea2-4dbf-8031-5c6d7e8f90a1")
        .await;
    assert_eq!(key["action"], "api_key.created");
    assert_eq!(key["resource"], "legacy-admin");
    assert!(redacted(&key["attributes"]["access_key_id"]));
    let admin = h
        .event("cloudtrail:9ea13c70-8fb3-4ec0-9142-6d7e8f90a1b2")
        .await;
    assert_eq!(admin["action"], "admin.role.granted");
    assert_eq!(admin["resource"], "dana");
    assert_eq!(
        h.event("cloudtrail:afb24d81-90c4-4fd1-8253-7e8f90a1b2c3")
            .await["action"],
        "auth.login.failed"
    );
    let denied = h
        .event("cloudtrail:b0c35e92-a1d5-4ae2-9364-8f90a1b2c3d4")
        .await;
    assert_eq!(denied["action"], "secret.permission_denied");
    attrs(
        &denied,
        &[
            ("error.code", json!("AccessDenied")),
            ("outcome", json!("failure")),
        ],
    );
    let unknown = h
        .event("cloudtrail:c1d46fa3-b2e6-4bf3-8475-90a1b2c3d4e5")
        .await;
    assert_eq!(unknown["action"], "cloudtrail.ec2.describe_instances");
    attrs(
        &unknown,
        &[("request.filterSet.items.0.name", json!("tag:env"))],
    );
    let export = h
        .event("cloudtrail:d2e57ab4-c3f7-4c04-9586-a1b2c3d4e5f6")
        .await;
    assert_eq!(export["action"], "data.export");
    assert_eq!(export["destination"], "s3://tmp-transfer-ab12");
    assert_eq!(
        export["resource"],
        "arn:aws:rds:eu-west-1:111122223333:snapshot:ledger-prod-2026-11-24"
    );
    never_stored(&h.events("cloudtrail").await, "AKIAI44QH8DHBEXAMPLE");

    // The EventBridge copy of the GetObject call is the same event.
    let (_, v) = h
        .post(
            "/v1/ingest/cloudtrail",
            &[],
            fixture("cloudtrail/eventbridge_get_object.json"),
        )
        .await;
    assert_eq!(report(&v), (0, 1, 0), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudtrail_malformed_and_partial_files() {
    let h = Harness::start(|_| {}).await;
    let (st, v) = h
        .post("/v1/ingest/cloudtrail", &[], br#"{"records": []}"#.to_vec())
        .await;
    assert_eq!(
        (st, v["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("Records")),
        "{v}"
    );
    let (st, _) = h
        .post("/v1/ingest/cloudtrail", &[], b"Records:".to_vec())
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let mut file = fixture_json("cloudtrail/log_file.json");
    file["Records"][1]
        .as_object_mut()
        .unwrap()
        .remove("eventTime");
    let (_, v) = h
        .post(
            "/v1/ingest/cloudtrail",
            &[],
            serde_json::to_vec(&file).unwrap(),
        )
        .await;
    assert_eq!(report(&v), (10, 0, 1), "{v}");
    assert_eq!(
        v["rejected"][0],
        json!({"index": 1, "field": "eventTime", "reason": "missing or not an ISO 8601 time"})
    );
}

// ---------------------------------------------------------------------------- Okta

const OKTA_AUTH: &str = "okta-hook-3f9a1c0e";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_verification_handshake() {
    let h = Harness::start(|c| c.okta.authorization = OKTA_AUTH.into()).await;
    let get = |auth: &'static str| {
        h.http
            .get(format!("{}/v1/ingest/okta", h.url))
            .header("x-okta-verification-challenge", "Uc-0KRpa5ye1EPhm3ri4")
            .header("authorization", auth)
            .send()
    };
    let resp = get(OKTA_AUTH).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"verification": "Uc-0KRpa5ye1EPhm3ri4"})
    );
    assert_eq!(
        get("wrong").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let h2 = Harness::start(|c| {
        c.okta.authorization = OKTA_AUTH.into();
        c.okta.verification = false;
    })
    .await;
    let resp = h2
        .http
        .get(format!("{}/v1/ingest/okta", h2.url))
        .header("x-okta-verification-challenge", "x")
        .header("authorization", OKTA_AUTH)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_event_hook_and_system_log_backfill() {
    let h = Harness::start(|c| c.okta.authorization = OKTA_AUTH.into()).await;
    let (st, _) = h
        .post(
            "/v1/ingest/okta",
            &[("authorization", "nope")],
            fixture("okta/event_hook.json"),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(h.events("okta").await.is_empty());
    let (st, v) = h
        .post(
            "/v1/ingest/okta",
            &[("authorization", OKTA_AUTH)],
            fixture("okta/event_hook.json"),
        )
        .await;
    // Okta counts only 200/204 as delivered.
    assert_eq!((st, report(&v)), (StatusCode::OK, (5, 0, 0)), "{v}");
    let login = h.event("okta:1b2c3d4e-5f60-11ef-8a7b-9c0d1e2f3a4b").await;
    assert_eq!(login["action"], "auth.login");
    assert_eq!(login["source"], "okta");
    assert_eq!(
        login["actor"],
        json!({"id": "dana@acme.example", "type": "human", "display": "Dana Ops"})
    );
    assert_eq!(login["system"], "okta");
    assert_eq!(login["time"], "2026-11-25T07:55:01.123Z");
    attrs(
        &login,
        &[
            ("outcome", json!("success")),
            ("ip", json!("198.51.100.23")),
            ("geo.country", json!("Portugal")),
            ("source_event", json!("user.session.start")),
            ("actor.okta_id", json!("00u1a2b3c4d5e6f7g8h9")),
        ],
    );
    let grant = h.event("okta:2c3d4e5f-6071-11ef-9b8c-0d1e2f3a4b5c").await;
    assert_eq!(grant["action"], "admin.role.granted");
    assert_eq!(grant["actor"]["id"], "mallory@acme.example");
    assert_eq!(grant["resource"], "dana@acme.example");
    attrs(
        &grant,
        &[
            ("privilege", json!("Super administrator")),
            ("target.0.type", json!("User")),
        ],
    );
    let consent = h.event("okta:3d4e5f60-7182-11ef-8c9d-1e2f3a4b5c6d").await;
    assert_eq!(consent["action"], "app.authorized");
    attrs(
        &consent,
        &[
            ("app", json!("Quick Export")),
            (
                "debug.grantedScopes",
                json!("okta.users.read,okta.groups.read"),
            ),
        ],
    );
    let failed = h.event("okta:4e5f6071-8293-11ef-9dae-2f3a4b5c6d7e").await;
    assert_eq!(failed["action"], "auth.login.failed");
    assert_eq!(failed["actor"]["id"], "ceo@acme.example");
    attrs(
        &failed,
        &[
            ("outcome.reason", json!("VERIFICATION_ERROR")),
            ("severity", json!("WARN")),
        ],
    );
    let unknown = h.event("okta:5f607182-93a4-11ef-8ebf-3a4b5c6d7e8f").await;
    assert_eq!(unknown["action"], "okta.zone.make_blacklist");
    attrs(
        &unknown,
        &[("debug.zoneChanges", json!("removed 198.51.100.0/24"))],
    );
    assert!(redacted(&unknown["attributes"]["debug.token"]), "{unknown}");
    never_stored(
        &h.events("okta").await,
        "00Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8Ii9Jj0KkLlMmNn",
    );

    // A System Log back-fill overlapping the hook: the shared event is stored once.
    let (st, v) = h
        .post(
            "/v1/ingest/okta",
            &[("authorization", OKTA_AUTH)],
            fixture("okta/system_log.json"),
        )
        .await;
    assert_eq!((st, report(&v)), (StatusCode::OK, (1, 1, 0)), "{v}");
    assert_eq!(
        h.event("okta:60718293-a4b5-11ef-9fc0-4b5c6d7e8f90").await["action"],
        "api_key.created"
    );

    let (st, v) = h
        .post(
            "/v1/ingest/okta",
            &[("authorization", OKTA_AUTH)],
            br#"{"data": {}}"#.to_vec(),
        )
        .await;
    assert_eq!(
        (st, v["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("data.events")),
        "{v}"
    );
}

// ---------------------------------------------------------------------------- OpenAI + assistant.config

const OPENAI_TOKEN: &str = "openai-audit-shipper";

async fn openai(h: &Harness, body: Vec<u8>) -> (StatusCode, Value) {
    let bearer = format!("Bearer {OPENAI_TOKEN}");
    h.post("/v1/ingest/openai", &[("authorization", &bearer)], body)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_audit_logs_map_keys_roles_invites_and_sharing() {
    let h = Harness::start(|c| c.openai.token = OPENAI_TOKEN.into()).await;
    let (st, v) = openai(&h, fixture("openai/audit_logs.json")).await;
    assert_eq!((st, report(&v)), (StatusCode::ACCEPTED, (8, 0, 0)), "{v}");
    let k = h.event("openai:audit_log-7f9a1b2c3d").await;
    assert_eq!(k["action"], "api_key.created");
    assert_eq!(k["source"], "openai");
    assert_eq!(
        k["actor"],
        json!({"id": "dana@acme.example", "type": "human", "display": "dana@acme.example"})
    );
    assert_eq!(k["system"], "openai/proj_Ab12Cd34");
    assert_eq!(k["resource"], "key_Xy98Zw76");
    assert_eq!(k["time"], "2026-11-25T09:46:40Z");
    attrs(
        &k,
        &[
            ("credential.scope", json!("api.model.request")),
            ("ip", json!("198.51.100.23")),
            ("project.name", json!("Support assistant")),
        ],
    );
    let grew = h.event("openai:audit_log-8a0b2c3d4e:scope").await;
    assert_eq!(grew["action"], "credential.scope.increased");
    attrs(
        &grew,
        &[(
            "credential.scope.added",
            json!("api.files.write api.fine_tuning.jobs.write"),
        )],
    );
    let owner = h.event("openai:audit_log-9b1c3d4e5f").await;
    assert_eq!(owner["action"], "admin.role.granted");
    assert_eq!(owner["resource"], "user-mal999");
    attrs(&owner, &[("role", json!("owner"))]);
    let inv = h.event("openai:audit_log-0c2d4e5f60").await;
    assert_eq!(inv["action"], "member.invited");
    assert_eq!(
        inv["actor"],
        json!({"id": "openai-sa:svc_acct_ci", "type": "service", "display": "svc_acct_ci"})
    );
    assert_eq!(inv["resource"], "invite-q1w2e3");
    let failed = h.event("openai:audit_log-1d3e5f6071").await;
    assert_eq!(failed["action"], "auth.login.failed");
    attrs(
        &failed,
        &[
            ("error.code", json!("invalid_mfa")),
            ("ip", json!("203.0.113.9")),
        ],
    );
    let shared = h.event("openai:audit_log-2e4f607182").await;
    assert_eq!(shared["action"], "model.checkpoint.shared");
    assert_eq!(shared["destination"], "openai/proj_External99");
    let unknown = h.event("openai:audit_log-3f50718293").await;
    assert_eq!(unknown["action"], "openai.tenant.scim.disabled");
    attrs(&unknown, &[("detail.reason", json!("migration"))]);

    let (_, v) = openai(&h, fixture("openai/audit_logs.json")).await;
    assert_eq!(report(&v), (0, 8, 0), "a re-polled page is stored once");
    let (st, _) = h
        .post(
            "/v1/ingest/openai",
            &[("authorization", "Bearer wrong")],
            fixture("openai/audit_logs.json"),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, v) = openai(&h, br#"{"object": "list"}"#.to_vec()).await;
    assert_eq!(
        (st, v["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("type")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assistant_config_events_record_prompt_tool_retrieval_and_deploy() {
    let h = Harness::start(|c| c.openai.token = OPENAI_TOKEN.into()).await;
    let (st, v) = openai(&h, fixture("openai/assistant_config.json")).await;
    assert_eq!((st, report(&v)), (StatusCode::ACCEPTED, (4, 0, 0)), "{v}");
    let p = h.event("assistant:cfg-20261125-001").await;
    assert_eq!(p["action"], "assistant.prompt.updated");
    assert_eq!(p["source"], "openai");
    assert_eq!(
        p["actor"],
        json!({"id": "dana@acme.example", "type": "human", "display": "Dana Ops"})
    );
    assert_eq!(p["system"], "assistant/asst_SupportBot01");
    assert_eq!(p["environment"], "prod");
    assert_eq!(p["time"], "2026-11-25T10:00:00Z");
    attrs(
        &p,
        &[
            ("reviewed", json!(false)),
            ("assistant.name", json!("Support bot")),
            ("assistant.platform", json!("openai")),
        ],
    );
    let text = p["attributes"]["prompt.text"].as_str().unwrap();
    assert!(text.contains("Ignore previous safety rules"), "{text}");
    assert!(redacted(&p["attributes"]["prompt.text"]), "{text}");
    assert_eq!(p["attributes"]["prompt.sha256"].as_str().unwrap().len(), 64);
    assert!(p["attributes"]["prompt.previous_sha256"].is_string());
    never_stored(
        &h.events("openai").await,
        "sk-proj-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1",
    );

    let t = h.event("assistant:cfg-20261125-002").await;
    assert_eq!(t["action"], "assistant.tool.granted");
    assert_eq!(t["actor"]["type"], "ai-agent");
    assert_eq!(t["resource"], "tool/billing_refund");
    assert_eq!(t["destination"], "billing.internal.acme.example");
    attrs(
        &t,
        &[
            ("tool", json!("billing_refund")),
            ("tool.permissions", json!("refunds:write,customers:read")),
            ("tool.scope", json!("all-customers")),
        ],
    );
    let r = h.event("assistant:cfg-20261125-003").await;
    assert_eq!(r["action"], "assistant.retrieval.added");
    assert_eq!(
        r["resource"],
        "https://drive.acme.example/finance/payroll-2026/"
    );
    attrs(
        &r,
        &[
            ("reviewed", json!(true)),
            ("reviewer", json!("sam@acme.example")),
            ("retrieval.host", json!("drive.acme.example")),
        ],
    );
    let d = h.event("assistant:cfg-20261125-004").await;
    assert_eq!(d["action"], "assistant.deployed");
    assert_eq!(d["actor"]["type"], "service");
    attrs(&d, &[("model", json!("gpt-4o"))]);

    let (_, v) = openai(&h, br#"[{"type": "assistant.config", "assistant": {"id": "a"}, "actor": {"id": "x"}}, {"type": "assistant.config", "change": "deployed", "assistant": {"id": "a"}, "actor": {"id": "x", "type": "robot"}}]"#.to_vec()).await;
    assert_eq!(report(&v), (0, 0, 2), "{v}");
    assert_eq!(v["rejected"][0]["field"], "change");
    assert_eq!(v["rejected"][1]["field"], "actor.type");
}

// ---------------------------------------------------------------------------- CLI back-fills

async fn cli(h: &Harness, args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_plumbline"));
    cmd.arg("ingest").arg("--url").arg(&h.url).args(args);
    cmd.env_remove("PLUMBLINE_TOKEN")
        .env_remove("PLUMBLINE_GITHUB_SECRET");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_backfills_each_source_format_through_its_endpoint() {
    let h = Harness::start(|c| {
        c.github.secret = GH_SECRET.into();
        c.n8n.token = N8N_TOKEN.into();
    })
    .await;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let path = |p: &str| dir.join(p).display().to_string();

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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "accepted 7, duplicates 0, rejected 0"
    );

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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "accepted 11, duplicates 0, rejected 0"
    );

    // n8n's own event log: confirmation lines are skipped; the token comes from the env.
    let out = cli(
        &h,
        &["--source", "n8n", &path("n8n/n8nEventLog.log")],
        &[("PLUMBLINE_N8N_TOKEN", N8N_TOKEN)],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "accepted 3, duplicates 0, rejected 0"
    );
    assert_eq!(
        h.event("n8n:c2928314-9fa0-41e8-9d8e-9fa0b1c2d3e2").await["action"],
        "workflow.deleted"
    );

    // GitHub deliveries as the REST API lists them, signed with the webhook secret.
    let ping = fixture_json("github/ping.json");
    let member = fixture_json("github/member_added.json");
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
    let file = h._dir.path().join("deliveries.json");
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "accepted 2, duplicates 0, rejected 0"
    );
    let m = h.event("github:1c0a9cb5-242f-11e5-81e1-c7b6966d2516").await;
    assert_eq!(m["action"], "member.added");
    // The payload has no time of its own: the delivery time is used.
    assert_eq!(m["time"], "2026-11-25T09:15:00Z");
}
