//! Enrichment against local stand-ins of the n8n and Make APIs (`plumbline_enrich::standin`,
//! answers in the vendors' documented shapes, `tests/fixtures/`), then the real adapters:
//! what detectors get from an enriched delivery, the cache, the concurrency bound, and every
//! way a look-up fails (the event still maps, the failure named and counted, no secret in
//! sight).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde_json::{json, Value};
use time::OffsetDateTime;

use plumbline_enrich::standin::{serve_make, serve_n8n, Fault, MakeData, StandIn};
use plumbline_enrich::Enrichment;
use plumbline_event::{format_time, Source};
use plumbline_ingest::adapter::{apply, Delivery, InMemory};
use plumbline_ingest::SourcesConfig;

const N8N_KEY: &str = "n8n_api_SECRET_6f1d2c3b4a5e";
const MAKE_TOKEN: &str = "make_api_SECRET_93c0d1e2f3a4";
const WF: &str = "Wf7pQ2rS9tU4vW1x";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The three versions of the canonical story's workflow: created (webhook, database read
/// with an admin credential), updated (file, zip, upload with a new key), updated again
/// (compression dropped, upload pointed elsewhere) and activated.
fn workflow_versions() -> HashMap<String, Vec<Value>> {
    serde_json::from_value(fixture("n8n_workflows.json")).unwrap()
}

fn make_data() -> MakeData {
    fn map<T: serde::de::DeserializeOwned>(f: &Value, k: &str) -> T {
        serde_json::from_value(f[k].clone()).unwrap()
    }
    let f = fixture("make_api.json");
    MakeData {
        scenarios: map(&f, "scenarios"),
        connections: map(&f, "connections"),
        hooks: map(&f, "hooks"),
        keys: map(&f, "keys"),
    }
}

fn config(n8n: &str, make: &str, adjust: impl FnOnce(&mut SourcesConfig)) -> SourcesConfig {
    let mut c = SourcesConfig::default();
    c.n8n.api_url = n8n.into();
    c.n8n.api_key = N8N_KEY.into();
    c.n8n.api_timeout_ms = 1000;
    c.make.api_url = make.into();
    c.make.api_token = MAKE_TOKEN.into();
    adjust(&mut c);
    c
}

/// Enriches `body`, maps it with the source's adapter (memory kept across calls) and
/// returns the enriched body and the events.
struct Pipeline {
    config: SourcesConfig,
    enrich: Enrichment,
    memory: InMemory,
}

impl Pipeline {
    fn new(config: SourcesConfig) -> Self {
        Pipeline {
            enrich: Enrichment::new(&config),
            config,
            memory: InMemory::default(),
        }
    }

    async fn deliver(&self, source: Source, body: &Value) -> (Vec<u8>, Vec<Value>) {
        let raw = serde_json::to_vec(body).unwrap();
        let enriched = self.enrich.enrich(source, &raw).await.unwrap_or(raw);
        let adapters = plumbline_ingest::adapters(&self.config);
        let adapter = adapters.iter().find(|a| a.source() == source).unwrap();
        let headers = HeaderMap::new();
        let delivery = Delivery {
            headers: &headers,
            body: &enriched,
            received: OffsetDateTime::now_utc(),
        };
        let mapped = adapter.map(&delivery, &self.memory).unwrap();
        apply(&self.memory, &mapped.remember).unwrap();
        let events = mapped
            .events
            .iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect();
        (enriched, events)
    }

    fn counts(&self, source: Source) -> HashMap<&'static str, u64> {
        self.enrich
            .counts()
            .into_iter()
            .filter(|(s, _, _)| *s == source)
            .map(|(_, o, n)| (o, n))
            .collect()
    }
}

/// An n8n log-streaming message as n8n's webhook destination sends it (no body attached).
fn n8n_message(id: &str, event: &str, workflow: &str, minutes_ago: i64, extra: Value) -> Value {
    let ts = format_time(OffsetDateTime::now_utc() - time::Duration::minutes(minutes_ago));
    let mut payload = json!({
        "userId": "7c1d2f4e-8a9b-4c3d-9e2f-1a2b3c4d5e6f", "_email": "mallory@acme.example",
        "_firstName": "Mallory", "_lastName": "M", "globalRole": "global:member",
        "workflowId": workflow, "workflowName": "Invoice sync (temp)",
    });
    payload
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    json!({"__type": "$$EventMessageAudit", "id": id, "ts": ts, "eventName": event,
           "message": event, "payload": payload})
}

fn one(events: &[Value], pred: impl Fn(&Value) -> bool) -> &Value {
    let found: Vec<&Value> = events.iter().filter(|e| pred(e)).collect();
    assert_eq!(found.len(), 1, "one event expected among {events:#?}");
    found[0]
}

fn with_action<'a>(events: &'a [Value], action: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["action"] == action).collect()
}

fn node_names(events: &[Value], action: &str) -> Vec<String> {
    let mut names: Vec<String> = with_action(events, action)
        .iter()
        .map(|e| e["attributes"]["node.name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn assert_no_secret(bytes: &[u8], events: &[Value]) {
    for secret in [N8N_KEY, MAKE_TOKEN] {
        assert!(!String::from_utf8_lossy(bytes).contains(secret));
        assert!(events.iter().all(|e| !e.to_string().contains(secret)));
    }
}

#[tokio::test]
async fn n8n_audit_events_get_their_workflow_node_changes_and_a_cached_activation() {
    let api = serve_n8n(N8N_KEY, workflow_versions()).await;
    let p = Pipeline::new(config(&api.url(), "", |_| {}));

    let (body, events) = p
        .deliver(
            Source::N8n,
            &n8n_message("m1", "n8n.audit.workflow.created", WF, 12, json!({})),
        )
        .await;
    assert_no_secret(&body, &events);
    let created = one(&events, |e| e["action"] == "workflow.created");
    let a = &created["attributes"];
    assert_eq!(a["enrichment.source"], "n8n-api");
    assert_eq!(a["trigger.kinds"], "webhook");
    assert_eq!(a["trigger.webhook.unauthenticated"], true);
    assert_eq!(a["trigger.webhook.paths"], "invoice-sync");
    assert_eq!(a["credentials"], "postgres:Finance DB (admin)");
    assert_eq!(
        node_names(&events, "workflow.node.added"),
        ["Read invoices", "Webhook"]
    );
    assert_eq!(
        with_action(&events, "credential.attached")[0]["attributes"]["credential.name"],
        "Finance DB (admin)"
    );

    // First update: file, zip and an upload with a new key.
    let (_, events) = p
        .deliver(
            Source::N8n,
            &n8n_message("m2", "n8n.audit.workflow.updated", WF, 10, json!({})),
        )
        .await;
    let updated = one(&events, |e| e["action"] == "workflow.updated");
    assert_eq!(updated["destination"], "files.example-drop.net");
    assert_eq!(updated["attributes"]["export"], true);
    assert_eq!(
        node_names(&events, "workflow.node.added"),
        ["Compression", "Convert to File", "HTTP Request"]
    );
    let attached = one(&events, |e| e["action"] == "credential.attached");
    assert_eq!(attached["attributes"]["credential.type"], "httpHeaderAuth");
    assert_eq!(attached["attributes"]["node.name"], "HTTP Request");

    // Second update: compression dropped, the upload pointed elsewhere.
    let (_, events) = p
        .deliver(
            Source::N8n,
            &n8n_message("m3", "n8n.audit.workflow.updated", WF, 8, json!({})),
        )
        .await;
    assert_eq!(
        node_names(&events, "workflow.node.removed"),
        ["Compression"]
    );
    let changed = one(&events, |e| e["action"] == "workflow.node.changed");
    assert_eq!(
        changed["attributes"]["node.destination"],
        "paste.example.org"
    );
    assert!(with_action(&events, "workflow.node.added").is_empty());

    // The activation names the version just fetched: answered from the cache.
    let version = "3b9c2e10-58f1-4d6a-9a1e-0c4b7d2f1a03";
    let (_, events) = p
        .deliver(
            Source::N8n,
            &n8n_message(
                "m4",
                "n8n.audit.workflow.activated",
                WF,
                7,
                json!({ "activeVersionId": version }),
            ),
        )
        .await;
    let activated = one(&events, |e| e["action"] == "workflow.activated");
    assert_eq!(activated["attributes"]["enrichment.source"], "n8n-api");
    assert_eq!(activated["destination"], "paste.example.org");
    assert_eq!(events.len(), 1, "no node changed since the update");
    assert_eq!(api.seen().len(), 3);
    assert!(api.seen().iter().all(|s| s.authorized));
    assert_eq!(p.counts(Source::N8n)["ok"], 3);
    assert_eq!(p.counts(Source::N8n)["cached"], 1);
}

#[tokio::test]
async fn n8n_look_up_failures_are_noted_counted_and_the_event_still_maps() {
    let api = serve_n8n(N8N_KEY, workflow_versions()).await;
    let down = {
        let gone = serve_n8n(N8N_KEY, HashMap::new()).await;
        gone.url()
    }; // dropped: nothing listens there now
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fast = |c: &mut SourcesConfig| c.n8n.api_timeout_ms = 300;
    let cases: Vec<(&str, SourcesConfig, Option<Fault>, &str, &str)> = vec![
        (
            "500",
            config(&api.url(), "", fast),
            Some(Fault::Status(500)),
            WF,
            "HTTP 500",
        ),
        (
            "not JSON",
            config(&api.url(), "", fast),
            Some(Fault::NotJson),
            WF,
            "not JSON",
        ),
        (
            "timeout",
            config(&api.url(), "", fast),
            Some(Fault::Delay(Duration::from_millis(1500))),
            WF,
            "timed out after 300 ms",
        ),
        (
            "wrong key",
            config(&api.url(), "", |c| c.n8n.api_key = "not-the-key".into()),
            None,
            WF,
            "HTTP 401 (the API credential was refused)",
        ),
        (
            "unknown workflow",
            config(&api.url(), "", fast),
            None,
            "nope",
            "HTTP 404",
        ),
        (
            "API down",
            config(&down, "", fast),
            None,
            WF,
            "cannot connect",
        ),
    ];
    for (what, config, fault, workflow, says) in cases {
        api.fault(fault);
        let p = Pipeline::new(config);
        let msg = n8n_message("f1", "n8n.audit.workflow.updated", workflow, 5, json!({}));
        let (body, events) = p.deliver(Source::N8n, &msg).await;
        assert_no_secret(&body, &events);
        let e = one(&events, |e| e["action"] == "workflow.updated");
        let error = e["attributes"]["enrichment.error"].as_str().unwrap_or("");
        assert!(
            error.starts_with(&format!("n8n API: GET /api/v1/workflows/{workflow}:"))
                && error.contains(says),
            "{what}: {error}"
        );
        assert!(!error.contains("127.0.0.1"), "{what}: the URL is not named");
        assert!(e["attributes"].get("enrichment.source").is_none(), "{what}");
        assert!(e["attributes"].get("trigger.kinds").is_none(), "{what}");
        assert_eq!(p.counts(Source::N8n)["failed"], 1, "{what}");
    }
    api.fault(None);
    // Sent as n8n documents it, and only there.
    assert!(api.seen().iter().any(|s| !s.authorized));
}

#[tokio::test]
async fn the_local_rate_limit_fails_look_ups_at_once_and_a_carried_body_is_not_looked_up() {
    let mut versions = workflow_versions();
    versions.insert("Other".into(), versions[WF].clone());
    let api = serve_n8n(N8N_KEY, versions).await;
    let p = Pipeline::new(config(&api.url(), "", |c| {
        c.n8n.api_requests_per_minute = 1
    }));
    let first = n8n_message("r1", "n8n.audit.workflow.updated", WF, 3, json!({}));
    let (_, events) = p.deliver(Source::N8n, &first).await;
    assert_eq!(events[0]["attributes"]["enrichment.source"], "n8n-api");
    let second = n8n_message("r2", "n8n.audit.workflow.updated", "Other", 2, json!({}));
    let (_, events) = p.deliver(Source::N8n, &second).await;
    let error = events[0]["attributes"]["enrichment.error"]
        .as_str()
        .unwrap();
    assert!(error.contains("over the local rate limit"), "{error}");
    assert_eq!(api.seen().len(), 1);

    // A relay already attached the workflow: nothing is looked up, nothing is noted.
    let carried = n8n_message(
        "r3",
        "n8n.audit.workflow.updated",
        "Other",
        1,
        json!({ "workflow": workflow_versions()[WF][1] }),
    );
    let (_, events) = p.deliver(Source::N8n, &carried).await;
    let e = one(&events, |e| e["action"] == "workflow.updated");
    assert!(e["attributes"].get("enrichment.error").is_none());
    assert_eq!(e["destination"], "files.example-drop.net");
    assert_eq!(api.seen().len(), 1);
    let counts = p.counts(Source::N8n);
    assert_eq!(
        (counts["ok"], counts["failed"], counts["skipped"]),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn look_ups_of_one_delivery_run_together_once_per_workflow() {
    let mut versions = HashMap::new();
    for id in ["A", "B", "C", "D"] {
        let mut w = workflow_versions()[WF][0].clone();
        w["id"] = json!(id);
        versions.insert(id.to_string(), vec![w]);
    }
    let api = serve_n8n(N8N_KEY, versions).await;
    api.fault(Some(Fault::Delay(Duration::from_millis(400))));
    let p = Pipeline::new(config(&api.url(), "", |c| c.n8n.api_timeout_ms = 5000));
    // Four workflows, one of them named twice, and an execution event (not looked up).
    let batch = json!([
        n8n_message("c1", "n8n.audit.workflow.created", "A", 5, json!({})),
        n8n_message("c2", "n8n.audit.workflow.created", "B", 5, json!({})),
        n8n_message("c3", "n8n.audit.workflow.created", "C", 5, json!({})),
        n8n_message("c4", "n8n.audit.workflow.created", "D", 5, json!({})),
        n8n_message("c5", "n8n.audit.workflow.activated", "D", 4, json!({})),
        n8n_message("c6", "n8n.workflow.success", "D", 3, json!({})),
    ]);
    let started = Instant::now();
    let (_, events) = p.deliver(Source::N8n, &batch).await;
    let took = started.elapsed();
    assert_eq!(api.seen().len(), 4, "one look-up per workflow");
    assert!(
        took < Duration::from_millis(1500),
        "four look-ups of 400 ms each, four at a time: {took:?}"
    );
    let enriched = events
        .iter()
        .filter(|e| e["attributes"]["enrichment.source"] == "n8n-api")
        .filter(|e| !e["action"].as_str().unwrap().starts_with("workflow.node"))
        .filter(|e| e["action"] != "credential.attached")
        .count();
    assert_eq!(enriched, 5);
}

#[tokio::test]
async fn make_entries_get_blueprints_connection_and_key_types_and_a_hooks_scenario() {
    let api = serve_make(MAKE_TOKEN, make_data()).await;
    let p = Pipeline::new(config("", &format!("{}/api/v2", api.url()), |_| {}));
    let at = format_time(OffsetDateTime::now_utc() - time::Duration::minutes(5));
    let entry = |uuid: &str, name: &str, target: &str| {
        json!({"uuid": uuid, "imtId": format!("1795600000000_{uuid}"), "createdAt": at, "triggeredAt": at,
               "organizationId": 3, "organization": {"id": 3, "name": "Acme"}, "eventName": name,
               "team": {"id": 212, "name": "Finance Ops"},
               "actor": {"id": 212, "name": "Ivan Builder", "email": "ivan@acme.example"},
               "targetId": target})
    };
    let page = json!({"auditLogs": [
        entry("a0000000000000000000000000000001", "scenario_updated", "8801"),
        entry("a0000000000000000000000000000002", "connection_created", "5601"),
        entry("a0000000000000000000000000000003", "key_created", "77"),
        entry("a0000000000000000000000000000004", "webhook_created", "4402"),
        entry("a0000000000000000000000000000005", "scenario_activated", "9999"),
    ], "pg": {"sortDir": "asc", "limit": 1000, "offset": 0}});
    let (body, events) = p.deliver(Source::Make, &page).await;
    assert_no_secret(&body, &events);
    let by = |uuid: &str| one(&events, |e| e["id"] == format!("make:{uuid}")).clone();

    let scenario = by("a0000000000000000000000000000001");
    assert_eq!(scenario["environment"], "prod", "from the scenario's name");
    let a = &scenario["attributes"];
    assert_eq!(a["enrichment.source"], "make-api");
    assert_eq!(a["trigger.schedule"], true);
    assert_eq!(a["export"], true);
    assert_eq!(a["export.nodes"], "google-drive");
    // The upload's connection is Ivan's own Google account: that is where the data goes.
    assert_eq!(a["export.accounts"], "ivan.private@gmail.example");
    assert_eq!(scenario["destination"], "ivan.private@gmail.example");
    assert!(a.get("detail.connections").is_none());

    let connection = by("a0000000000000000000000000000002");
    let a = &connection["attributes"];
    assert_eq!(a["credential.type"], "google");
    assert_eq!(a["credential.name"], "My Google (personal)");
    assert_eq!(a["credential.auth_type"], "oauth");
    assert_eq!(
        a["credential.scope"],
        "https://www.googleapis.com/auth/drive https://www.googleapis.com/auth/userinfo.email"
    );

    let key = by("a0000000000000000000000000000003");
    assert_eq!(key["attributes"]["credential.type"], "apikeyauth");
    assert_eq!(key["attributes"]["credential.name"], "Partner API key");

    let hook = by("a0000000000000000000000000000004");
    assert_eq!(hook["system"], "make/scenario/8802");
    assert_eq!(hook["environment"], "prod");
    assert_eq!(hook["destination"], "collect.unknown-host.example");
    let a = &hook["attributes"];
    assert_eq!(a["webhook.scenario_id"], "8802");
    assert_eq!(a["webhook.host"], "hook.eu1.make.com");
    assert!(a["webhook.url"]
        .as_str()
        .unwrap()
        .starts_with("https://hook.eu1.make.com/[redacted:"));
    assert!(!hook
        .to_string()
        .contains("x7k2m9q4w1e8r5t3y6u0i2o4p7a9s1d3"));

    let missing = by("a0000000000000000000000000000005");
    assert_eq!(
        missing["attributes"]["enrichment.error"],
        "make API: GET /api/v2/scenarios/9999/blueprint: HTTP 404 (not found)"
    );
    let seen: Vec<String> = api.seen().into_iter().map(|s| s.path).collect();
    assert!(seen.contains(&"/scenarios/8802".to_string()), "{seen:?}");
    assert!(seen.contains(&"/connections/5501".to_string()), "{seen:?}");
    assert_eq!(p.counts(Source::Make)["failed"], 1);

    // The wrong token: Make says 401, the entry says so.
    let p = Pipeline::new(config("", &api.url(), |c| {
        c.make.api_token = "wrong".into()
    }));
    let (_, events) = p
        .deliver(
            Source::Make,
            &entry(
                "a0000000000000000000000000000006",
                "connection_updated",
                "5601",
            ),
        )
        .await;
    let error = events[0]["attributes"]["enrichment.error"]
        .as_str()
        .unwrap();
    assert!(error.contains("HTTP 401"), "{error}");
}

/// A blueprint's connections are looked up (at most `MAX_CONNECTIONS`, each once, cached
/// like any answer) so uploads name the account they land in; one that cannot be read is
/// named on the entry, whose blueprint and other accounts stay; a relay's carried blueprint
/// gets its connections without its blueprint being fetched again.
#[tokio::test]
async fn make_blueprints_bring_the_accounts_of_their_connections() {
    let upload = |i: u64, conn: u64| {
        json!({"id": i, "module": "google-drive:uploadAFile", "version": 4,
               "parameters": {"__IMTCONN__": conn}, "mapper": {"folderId": "/x", "data": "{{1.data}}"}})
    };
    let conn = |id: u64, email: &str| {
        json!({"id": id, "name": format!("My Google connection ({email})"),
               "accountName": "google-restricted", "accountLabel": "Google", "accountType": "oauth",
               "metadata": {"type": "email", "value": email}, "teamId": 212,
               "scopes": [{"id": "https://www.googleapis.com/auth/drive", "name": "Drive", "account": "google-restricted"}]})
    };
    // Ten uploads through ten connections; 6002 is gone (404).
    let flow: Vec<Value> = (1..=10).map(|i| upload(i, 6000 + i)).collect();
    let mut connections = HashMap::new();
    for i in (1..=10).filter(|i| *i != 2) {
        let email = if i == 1 {
            "mallory.reyes@gmail.com".to_string()
        } else {
            format!("team{i}@acme.example")
        };
        connections.insert((6000 + i).to_string(), conn(6000 + i, &email));
    }
    let blueprint = json!({"name": "Fan-out (prod)", "flow": flow});
    let data = MakeData {
        scenarios: HashMap::from([(
            "8901".to_string(),
            vec![json!({"blueprint": blueprint, "scheduling": {"type": "on-demand"}})],
        )]),
        connections,
        ..MakeData::default()
    };
    let api = serve_make(MAKE_TOKEN, data).await;
    let p = Pipeline::new(config("", &api.url(), |_| {}));
    let at = format_time(OffsetDateTime::now_utc() - time::Duration::minutes(5));
    let entry = |uuid: &str, target: &str, detail: Value| {
        json!({"uuid": uuid, "triggeredAt": at, "eventName": "scenario_updated",
               "team": {"id": 212, "name": "Finance Ops"},
               "actor": {"id": 4102, "name": "Mallory Reyes", "email": "mallory@acme.example"},
               "targetId": target, "detail": detail})
    };
    let (_, events) = p
        .deliver(
            Source::Make,
            &json!({"auditLogs": [entry("b0000000000000000000000000000001", "8901", json!(null))]}),
        )
        .await;
    let a = &events[0]["attributes"];
    let mut expected: Vec<String> = (3..=8).map(|i| format!("team{i}@acme.example")).collect();
    expected.push("mallory.reyes@gmail.com".into());
    expected.sort();
    assert_eq!(a["export.accounts"], expected.join(","));
    assert_eq!(a["enrichment.source"], "make-api");
    assert_eq!(
        a["enrichment.error"],
        "make API: GET /api/v2/connections/6002: HTTP 404 (not found)"
    );
    let asked = |api: &StandIn| -> Vec<String> {
        api.seen()
            .into_iter()
            .map(|s| s.path)
            .filter(|p| p.starts_with("/connections/"))
            .collect()
    };
    assert_eq!(
        asked(&api).len(),
        plumbline_enrich::MAKE_MAX_CONNECTIONS,
        "bounded"
    );
    assert!(!asked(&api).contains(&"/connections/6009".to_string()));

    // A relay attached the blueprint: only its connection is looked up, from the cache.
    let carried = json!({"scenarioName": "Copy (prod)",
                         "blueprint": {"name": "Copy (prod)", "flow": [upload(1, 6001)]}});
    let before = api.seen().len();
    let (_, events) = p
        .deliver(
            Source::Make,
            &json!({"auditLogs": [entry("b0000000000000000000000000000002", "8902", carried)]}),
        )
        .await;
    assert_eq!(events[0]["destination"], "mallory.reyes@gmail.com");
    assert_eq!(api.seen().len(), before, "nothing new asked of Make");
    assert_eq!(p.counts(Source::Make)["cached"], 1);
}

/// The stand-in is what the demo and `plumbline eval` start: it must serve versions in
/// order and keep serving the last, and take new ones.
#[tokio::test]
async fn the_stand_in_serves_versions_in_order_then_the_last() {
    let api: StandIn = serve_n8n(N8N_KEY, workflow_versions()).await;
    let http = reqwest::Client::new();
    let get = || async {
        let r = http
            .get(format!("{}/api/v1/workflows/{WF}", api.url()))
            .header("X-N8N-API-KEY", N8N_KEY)
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["versionId"].clone()
    };
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(get().await);
    }
    assert_eq!(ids[2], ids[3]);
    assert_ne!(ids[0], ids[1]);
    api.push(
        "workflows",
        WF,
        json!({"id": WF, "versionId": "v4", "nodes": []}),
    );
    assert_eq!(get().await, "v4");
    let r = http
        .get(format!("{}/api/v1/workflows/{WF}", api.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
