//! make.com: audit-log entries name their target (`targetId`) but seldom carry it. From the
//! Make API (`Authorization: Token …`) this attaches to `detail`, in the shape Make's own
//! entries use and the make adapter reads:
//!
//! - scenario entries: `GET /api/v2/scenarios/{id}/blueprint` →
//!   `{"code": "OK", "response": {"blueprint": {...}, "scheduling": {...}}}` as `blueprint`,
//!   `scheduling` and `scenarioName`;
//! - connection entries: `GET /api/v2/connections/{id}` → `{"connection": {...}}` as
//!   `connectionName`, `accountName` (the connection type), `accountLabel`, `accountType`
//!   and `scopes` (their ids);
//! - key entries: `GET /api/v2/keys/{id}` → `{"key": {...}}` as `keyName`, `keyType`;
//! - webhook entries: `GET /api/v2/hooks/{id}` → `{"hook": {...}}` as `webhookName`,
//!   `hookType`, `hookUrl`, `hookEnabled`, `scenarioId`, and the blueprint of the
//!   scenario it feeds, so the entry says where that scenario sends data;
//! - with any blueprint (fetched or carried), the connections its modules use
//!   (`parameters.__IMTCONN__` …; at most [`MAX_CONNECTIONS`], each
//!   `GET /api/v2/connections/{id}`) as `connections`: their `id`, `name`, `accountName`,
//!   `accountLabel`, `accountType` and `metadata`, so the adapter can tell an upload to
//!   someone's personal Drive from one to the company's.
//!
//! What the entry already carries is kept; only what it lacks is added.

use serde_json::{json, Map, Value};

use super::api::{segment, Api, Lookup, Settings, Shape};
use super::{enrich_items, skipped};
use plumbline_event::Source;
use plumbline_ingest::make::{connection_ids, MakeConfig};
use plumbline_ingest::map::{at, s};

/// Connections looked up per blueprint at most (a scenario uses a handful; the rest of a
/// very large one goes without).
pub const MAX_CONNECTIONS: usize = 8;

/// The fields of a connection the adapter reads (never its scopes' names or anything else).
const CONNECTION_FIELDS: [&str; 6] = [
    "id",
    "name",
    "accountName",
    "accountLabel",
    "accountType",
    "metadata",
];

/// What an entry's `targetId` is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Scenario(String),
    Connection(String),
    Key(String),
    Hook(String),
    /// The connections a blueprint the entry already carries uses.
    Connections(Vec<String>),
}

/// The Make API: `Authorization: Token <token>`.
pub const API: Shape = Shape {
    source: Source::Make,
    api_prefix: "/api/v2",
    header: "authorization",
    scheme: "Token ",
};

pub fn api(c: &MakeConfig) -> Option<Api> {
    Api::new(
        &API,
        Settings {
            base_url: &c.api_url,
            credential: &c.api_token,
            timeout_ms: c.api_timeout_ms,
            per_minute: c.api_requests_per_minute,
        },
    )
}

pub async fn enrich(api: &Api, body: &[u8]) -> Option<Vec<u8>> {
    let label = api.label();
    enrich_items(
        body,
        &["auditLogs"],
        |m| {
            let id = s(m, "targetId");
            let d = m.get("detail").unwrap_or(&Value::Null);
            let carried = |k: &str| at(d, k).is_some();
            let name = s(m, "eventName");
            // A carried blueprint still needs its connections.
            let uses = || {
                let ids = at(d, "blueprint").map(connection_ids).unwrap_or_default();
                (!carried("connections") && !ids.is_empty()).then_some(Target::Connections(ids))
            };
            let target = match name.as_str() {
                "scenario_created" | "scenario_updated" | "scenario_activated"
                | "scenario_cloned" => match carried("blueprint") {
                    false => Some(Target::Scenario(id.clone())),
                    true => uses(),
                },
                "connection_created" | "connection_updated" | "connection_reauthorized" => {
                    (!(carried("accountName") && carried("scopes")))
                        .then(|| Target::Connection(id.clone()))
                }
                "key_created" | "key_updated" => {
                    (!carried("keyType")).then(|| Target::Key(id.clone()))
                }
                "webhook_created" | "webhook_updated" | "webhook_enabled" => {
                    match carried("scenarioId") {
                        false => Some(Target::Hook(id.clone())),
                        true => uses(),
                    }
                }
                _ => return None,
            };
            if id.is_empty() || !(d.is_null() || d.is_object()) {
                return None;
            }
            // Enabling or activating changes nothing in the target itself.
            let changed = !name.ends_with("_activated") && !name.ends_with("_enabled");
            match target {
                Some(t) => Some((t, changed)),
                None => skipped(api),
            }
        },
        |target, changed| resolve(api, target, changed),
        |m, answer| {
            let Some(entry) = m.as_object_mut() else {
                return;
            };
            let detail = entry.entry("detail").or_insert_with(|| json!({}));
            if detail.is_null() {
                *detail = json!({});
            }
            let Some(detail) = detail.as_object_mut() else {
                return;
            };
            match answer {
                Ok(Value::Object(add)) => {
                    for (k, v) in add.iter().filter(|(k, _)| *k != "enrichment") {
                        detail.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                    // A hook whose scenario could not be read carries that failure.
                    let note = add.get("enrichment").cloned();
                    let note = note.unwrap_or_else(|| json!({ "source": label }));
                    detail.insert("enrichment".into(), note);
                }
                Ok(_) => {}
                Err(e) => {
                    detail.insert("enrichment".into(), json!({ "error": e }));
                }
            }
        },
    )
    .await
}

/// What to add to an entry's `detail` for its target.
async fn resolve(api: &Api, target: Target, changed: bool) -> Result<Value, String> {
    // `changed` is about the target; a hook's scenario is read as it stands.
    let get = |path: String, expect: &'static str, changed: bool| {
        let lookup = Lookup {
            changed,
            ..Lookup::new(path, expect)
        };
        async move { api.get(&lookup).await }
    };
    let mut add = Map::new();
    let mut put = |k: &str, v: Option<&Value>| {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            add.insert(k.into(), v.clone());
        }
    };
    match target {
        Target::Scenario(id) => {
            let r = get(blueprint_path(&id), "response.blueprint", changed).await?;
            put("blueprint", at(&r, "response.blueprint"));
            put("scheduling", at(&r, "response.scheduling"));
            put("scenarioName", at(&r, "response.blueprint.name"));
            let ids = at(&r, "response.blueprint").map(connection_ids);
            used_connections(api, ids.unwrap_or_default(), &mut put).await;
        }
        Target::Connections(ids) => used_connections(api, ids, &mut put).await,
        Target::Connection(id) => {
            let r = get(
                format!("/api/v2/connections/{}", segment(&id)),
                "connection",
                changed,
            )
            .await?;
            let c = &r["connection"];
            put("connectionName", c.get("name"));
            for k in ["accountName", "accountLabel", "accountType"] {
                put(k, c.get(k));
            }
            // Documented as `[{"id", "name", "account"}]`; the adapter compares ids.
            let scopes: Option<Vec<Value>> = c
                .get("scopes")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|x| x.get("id").unwrap_or(x).clone()).collect());
            put("scopes", scopes.map(Value::Array).as_ref());
        }
        Target::Key(id) => {
            let r = get(format!("/api/v2/keys/{}", segment(&id)), "key", changed).await?;
            put("keyName", r["key"].get("name"));
            put("keyType", r["key"].get("typeName"));
        }
        Target::Hook(id) => {
            let r = get(format!("/api/v2/hooks/{}", segment(&id)), "hook", changed).await?;
            let h = &r["hook"];
            put("webhookName", h.get("name"));
            put("hookType", h.get("typeName"));
            put("hookUrl", h.get("url"));
            put("hookEnabled", h.get("enabled"));
            put("scenarioId", h.get("scenarioId"));
            let scenario = s(h, "scenarioId");
            if !scenario.is_empty() {
                // Where the hook's data goes: its scenario's modules. Failing this part
                // still leaves the hook's own details.
                match get(blueprint_path(&scenario), "response.blueprint", false).await {
                    Ok(b) => {
                        put("blueprint", at(&b, "response.blueprint"));
                        put("scheduling", at(&b, "response.scheduling"));
                        put("scenarioName", at(&b, "response.blueprint.name"));
                        let ids = at(&b, "response.blueprint").map(connection_ids);
                        used_connections(api, ids.unwrap_or_default(), &mut put).await;
                    }
                    Err(e) => put("enrichment", Some(&json!({ "error": e }))),
                }
            }
        }
    }
    Ok(Value::Object(add))
}

/// Puts `connections` (what the adapter reads of each connection a blueprint uses, one
/// look-up each, cached like any other) and, when one could not be read, the failure in the
/// entry's `enrichment` note: the blueprint stays, the unread connection says nothing.
async fn used_connections(api: &Api, ids: Vec<String>, put: &mut impl FnMut(&str, Option<&Value>)) {
    let mut found = Vec::new();
    let mut failed = None;
    for id in ids.into_iter().take(MAX_CONNECTIONS) {
        let lookup = Lookup::new(
            format!("/api/v2/connections/{}", segment(&id)),
            "connection",
        );
        match api.get(&lookup).await {
            Ok(r) => {
                let c = &r["connection"];
                let kept: Map<String, Value> = CONNECTION_FIELDS
                    .iter()
                    .filter_map(|k| Some((k.to_string(), c.get(*k)?.clone())))
                    .collect();
                found.push(Value::Object(kept));
            }
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    if !found.is_empty() {
        put("connections", Some(&Value::Array(found)));
    }
    // The blueprint did come from the API: the note says so and names what failed.
    if let Some(e) = failed {
        put(
            "enrichment",
            Some(&json!({ "source": api.label(), "error": e })),
        );
    }
}

fn blueprint_path(scenario: &str) -> String {
    format!("/api/v2/scenarios/{}/blueprint", segment(scenario))
}
