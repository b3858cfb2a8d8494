//! Every adapter's mapping, tested as a table of vendor payloads without a server:
//! `fixtures/<source>/cases.json` is a list of cases, each a sequence of deliveries
//! sharing one in-memory adapter memory (what earlier deliveries taught the adapter —
//! an approval, a protection rule, a workflow's nodes — is what later ones see):
//!
//! ```json
//! {"name": "...", "config": {...},            // the source's config section (optional)
//!  "never_stored": ["AKIA..."],               // text no mapped event may contain
//!  "deliveries": [{
//!    "headers": {"x-github-event": "push"},
//!    "body": "push.json" | {"json": ...} | {"text": "..."}
//!            | {"file": "a.json", "remove": "/json/pointer",
//!               "set": {"/json/pointer": value}, "append": "text"},
//!    "auth": "valid" | "invalid" | "not_configured",   // what verify() says (optional)
//!    "error": {"status": 400, "field": "ref", "contains": "..."},  // or, on success:
//!    "actions": ["git.push", ...],            // every mapped event's action, in order
//!    "rejected": [{"index": 1, "field": "ts"}],
//!    "events": [{"id": "github:d1", "action": "...", "attributes": {...},
//!                "absent": ["destination", "attributes.x"], "redacted": ["k"],
//!                "prefix": {"k": "..."}, "contains": {"k": "..."}, "sha256": ["k"]}]
//!  }]}
//! ```
//!
//! An event expectation picks its event by `id`, or by `select` (fields and
//! attributes that exactly one event of the delivery has); every other key is a field of
//! the stored event (a dotted path such as `actor.id`) compared exactly. Payload files
//! sit beside `cases.json`.

use std::path::PathBuf;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::adapter::{apply, Adapter, Delivery, InMemory, SourceAuth};
use super::agents::{claude_code, cursor, otlp, AgentsConfig};
use super::{
    cloudtrail, github, github_audit, gitlab, make, n8n, okta, openai, vault, SourcesConfig,
};

fn dir(source: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/fixtures")
        .join(source)
}

/// The source's adapter with its config: defaults overlaid with `config`.
fn adapter(source: &str, config: &Value) -> Box<dyn Adapter> {
    fn cfg<T: serde::de::DeserializeOwned>(mut defaults: Value, config: &Value) -> T {
        if let (Some(d), Some(c)) = (defaults.as_object_mut(), config.as_object()) {
            d.extend(c.clone());
        }
        serde_json::from_value(defaults).expect("a valid config section")
    }
    match source {
        "github" => Box::new(github::GithubAdapter::new(cfg(
            json!({"secret": ""}),
            config,
        ))),
        "github-audit" => Box::new(github_audit::GithubAuditAdapter::new(cfg(
            json!({"token": ""}),
            config,
        ))),
        "gitlab" => Box::new(gitlab::GitlabAdapter::new(cfg(
            json!({"token": ""}),
            config,
        ))),
        "n8n" => Box::new(n8n::N8nAdapter::new(cfg(
            serde_json::to_value(SourcesConfig::default().n8n).unwrap(),
            config,
        ))),
        "make" => Box::new(make::MakeAdapter::new(cfg(
            serde_json::to_value(SourcesConfig::default().make).unwrap(),
            config,
        ))),
        "vault" => Box::new(vault::VaultAdapter),
        "cloudtrail" => Box::new(cloudtrail::CloudtrailAdapter::new(cfg(
            json!({"org_accounts": [], "account_environments": {}}),
            config,
        ))),
        "okta" => Box::new(okta::OktaAdapter::new(cfg(
            json!({"authorization": "", "verification": true}),
            config,
        ))),
        "openai" => Box::new(openai::OpenaiAdapter::new(cfg(
            json!({"token": ""}),
            config,
        ))),
        "claude-code" => Box::new(claude_code::ClaudeCodeAdapter::new(cfg(
            agents_defaults(),
            config,
        ))),
        "cursor" => Box::new(cursor::CursorAdapter::new(cfg(agents_defaults(), config))),
        "otlp-logs" => Box::new(otlp::OtlpAdapter::new(
            otlp::Signal::Logs,
            cfg::<AgentsConfig>(agents_defaults(), config),
        )),
        "otlp-traces" => Box::new(otlp::OtlpAdapter::new(
            otlp::Signal::Traces,
            cfg::<AgentsConfig>(agents_defaults(), config),
        )),
        other => panic!("no adapter {other}"),
    }
}

fn agents_defaults() -> Value {
    serde_json::to_value(SourcesConfig::default().agents).unwrap()
}

fn body(source: &str, spec: &Value) -> Vec<u8> {
    match spec {
        Value::String(file) => {
            let p = dir(source).join(file);
            std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        }
        v if v.get("file").is_some() => {
            let mut bytes = body(source, &v["file"]);
            if v.get("remove").is_some() || v.get("set").is_some() {
                let mut json: Value = serde_json::from_slice(&bytes).unwrap();
                if let Some(pointer) = v["remove"].as_str() {
                    let (parent, key) = pointer.rsplit_once('/').unwrap();
                    json.pointer_mut(parent)
                        .and_then(Value::as_object_mut)
                        .and_then(|o| o.remove(key))
                        .unwrap_or_else(|| panic!("nothing at {pointer}"));
                }
                for (pointer, value) in v["set"].as_object().into_iter().flatten() {
                    *json
                        .pointer_mut(pointer)
                        .unwrap_or_else(|| panic!("nothing at {pointer}")) = value.clone();
                }
                bytes = serde_json::to_vec(&json).unwrap();
            }
            bytes.extend_from_slice(v["append"].as_str().unwrap_or("").as_bytes());
            bytes
        }
        v if v.get("json").is_some() => serde_json::to_vec(&v["json"]).unwrap(),
        v if v.get("text").is_some() => v["text"].as_str().unwrap().as_bytes().to_vec(),
        other => panic!("body: a file name, {{\"json\"}} or {{\"text\"}}, not {other}"),
    }
}

fn headers(spec: &Value) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in spec.as_object().into_iter().flatten() {
        h.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v.as_str().unwrap()).unwrap(),
        );
    }
    h
}

/// Runs every case of `fixtures/<source>/cases.json`; returns how many deliveries ran.
fn run(source: &str) -> usize {
    let path = dir(source).join("cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let cases: Vec<Value> = serde_json::from_str(&text).expect("cases.json is JSON");
    let mut ran = 0;
    for case in &cases {
        let name = case["name"].as_str().expect("a case has a name");
        let adapter = adapter(source, &case["config"]);
        assert_eq!(adapter.endpoint(), source);
        let memory = InMemory::default();
        let mut all = Vec::new();
        for (step, d) in case["deliveries"].as_array().unwrap().iter().enumerate() {
            let at = format!("{source} / {name} / delivery {step}");
            let headers = headers(&d["headers"]);
            let bytes = body(source, &d["body"]);
            if let Some(want) = d["auth"].as_str() {
                let got = match adapter.verify(&headers, &bytes) {
                    SourceAuth::Valid => "valid",
                    SourceAuth::Invalid(_) => "invalid",
                    SourceAuth::NotConfigured => "not_configured",
                };
                assert_eq!(got, want, "{at}: verify");
            }
            let received = d["received"].as_str().unwrap_or("2026-11-25T12:00:00Z");
            let delivery = Delivery {
                headers: &headers,
                body: &bytes,
                received: OffsetDateTime::parse(received, &Rfc3339).unwrap(),
            };
            let result = adapter.map(&delivery, &memory);
            ran += 1;
            if let Some(want) = d.get("error") {
                let err = match result {
                    Err(e) => e,
                    Ok(m) => panic!("{at}: expected an error, mapped {:?}", m.events),
                };
                if let Some(status) = want["status"].as_u64() {
                    assert_eq!(err.status_hint().as_u16() as u64, status, "{at}: {err}");
                }
                if let Some(field) = want["field"].as_str() {
                    assert_eq!(err.field(), Some(field), "{at}: {err}");
                }
                if let Some(text) = want["contains"].as_str() {
                    assert!(err.to_string().contains(text), "{at}: {err}");
                }
                continue;
            }
            let mapped = result.unwrap_or_else(|e| panic!("{at}: {e}"));
            let events: Vec<Value> = mapped
                .events
                .iter()
                .map(|e| serde_json::to_value(e).unwrap())
                .collect();
            if let Some(actions) = d.get("actions") {
                let got: Vec<&Value> = events.iter().map(|e| &e["action"]).collect();
                let want: Vec<&Value> = actions.as_array().unwrap().iter().collect();
                assert_eq!(got, want, "{at}: actions");
            }
            let want_rejected = d["rejected"].as_array().cloned().unwrap_or_default();
            assert_eq!(
                mapped.rejected.len(),
                want_rejected.len(),
                "{at}: rejected {:?}",
                mapped.rejected
            );
            for (got, want) in mapped.rejected.iter().zip(&want_rejected) {
                let got = serde_json::to_value(got).unwrap();
                for (k, v) in want.as_object().unwrap() {
                    assert_eq!(&got[k], v, "{at}: rejection {got}");
                }
            }
            for want in d["events"].as_array().into_iter().flatten() {
                check_event(&at, &events, want);
            }
            apply(&memory, &mapped.remember).unwrap();
            all.extend(events);
        }
        for secret in case["never_stored"].as_array().into_iter().flatten() {
            let secret = secret.as_str().unwrap();
            for e in &all {
                assert!(
                    !e.to_string().contains(secret),
                    "{source} / {name}: `{secret}` mapped in clear: {e}"
                );
            }
        }
    }
    ran
}

/// Whether `e` has every field (and attribute, under `attributes`) of `select`.
fn selects(e: &Value, select: &Value) -> bool {
    select
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| match k.as_str() {
            "attributes" => v
                .as_object()
                .unwrap()
                .iter()
                .all(|(a, x)| &e["attributes"][a] == x),
            _ => field(e, k) == v,
        })
}

/// A field of an event by dotted path (`actor.id`).
fn field<'a>(e: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(e, |v, k| &v[k])
}

fn check_event(at: &str, events: &[Value], want: &Value) {
    let found: Vec<&Value> = match (want.get("id"), want.get("select")) {
        (Some(id), _) => events.iter().filter(|e| &e["id"] == id).collect(),
        (None, Some(select)) => events.iter().filter(|e| selects(e, select)).collect(),
        _ => panic!("{at}: an event expectation has `id` or `select`"),
    };
    assert_eq!(found.len(), 1, "{at}: one event for {want}");
    let e = found[0];
    let at = format!("{at} / {}", e["id"]);
    let attr = |k: &str| e["attributes"][k].as_str().unwrap_or("").to_string();
    for (k, v) in want.as_object().unwrap() {
        match k.as_str() {
            "id" | "select" => {}
            "attributes" => {
                for (a, x) in v.as_object().unwrap() {
                    assert_eq!(&e["attributes"][a], x, "{at}: attribute `{a}`");
                }
            }
            "absent" => {
                for f in v.as_array().unwrap() {
                    let f = f.as_str().unwrap();
                    let present = match f.strip_prefix("attributes.") {
                        Some(a) => e["attributes"].get(a).is_some(),
                        None => e.get(f).is_some(),
                    };
                    assert!(!present, "{at}: `{f}` should be absent: {e}");
                }
            }
            "redacted" => {
                for a in v.as_array().unwrap() {
                    let a = a.as_str().unwrap();
                    assert!(attr(a).contains("[redacted:"), "{at}: `{a}` not redacted");
                }
            }
            "prefix" => {
                for (a, x) in v.as_object().unwrap() {
                    assert!(attr(a).starts_with(x.as_str().unwrap()), "{at}: `{a}`");
                }
            }
            "contains" => {
                for (a, x) in v.as_object().unwrap() {
                    assert!(attr(a).contains(x.as_str().unwrap()), "{at}: `{a}`");
                }
            }
            "sha256" => {
                for a in v.as_array().unwrap() {
                    let a = a.as_str().unwrap();
                    let h = attr(a);
                    assert!(
                        h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()),
                        "{at}: `{a}` is not a sha256: {h}"
                    );
                }
            }
            path => assert_eq!(field(e, path), v, "{at}: `{path}`"),
        }
    }
}

macro_rules! tables {
    ($($source:ident),*) => {$(
        #[test]
        fn $source() {
            assert!(run(stringify!($source)) > 0);
        }
    )*};
}

tables!(github, gitlab, n8n, make, vault, cloudtrail, okta, openai);

#[test]
fn github_audit() {
    assert!(run("github-audit") > 0);
}

#[test]
fn claude_code() {
    assert!(run("claude-code") > 0);
}

#[test]
fn cursor() {
    assert!(run("cursor") > 0);
}

#[test]
fn otlp_logs() {
    assert!(run("otlp-logs") > 0);
}

#[test]
fn otlp_traces() {
    assert!(run("otlp-traces") > 0);
}
