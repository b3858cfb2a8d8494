//! make.com audit logs: `POST /v1/ingest/make`.
//!
//! Accepts entries in the shape of Make's audit-log API
//! (`GET /api/v2/audit-logs/organization/{id}` → `{"auditLogs": [...]}`, or one entry as
//! `GET /api/v2/audit-logs/{organizationId}/{uuid}` returns it with its `detail`), a bare
//! array of entries, or a single entry. A shipper (a Make scenario on a schedule, or
//! `plumbline ingest --source make`) posts them with `[make] token`.
//! Ids are `make:<uuid>`, so overlapping polls store each entry once.
//!
//! Entries name what changed (`targetId`) but seldom carry it. When `[make] api_url` is
//! set, the enrichment stage attaches it to `detail` in the shape Make's own entries use:
//! a scenario's `blueprint` and `scheduling`; a connection's `connectionName`,
//! `accountName` (its type), `accountLabel`, `accountType` and `scopes`; a key's `keyName`
//! and `keyType`; a webhook's `webhookName`, `hookType`, `hookUrl`, `hookEnabled` and
//! `scenarioId` with that scenario's blueprint. Its note (`detail.enrichment`) becomes
//! `enrichment.source` or `enrichment.error`.

use std::collections::BTreeSet;

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::adapter::{
    check_shared_token, Adapter, Delivery, IngestError, Mapped, Memory, SourceAuth,
};
use super::map::{
    actor, at, b, enrichment, event, guess_environment, items, json_body, keep_payload, parse_time,
    s, segment, set, track_scope, unknown_action, url_host,
};
use plumbline_event::{ActorType, Event, Source};

const SRC: Source = Source::Make;

/// `[make]`: the shared token of whatever posts make.com audit-log entries, and the Make
/// API that scenario, connection, key and webhook entries are enriched from
/// (`plumbline-enrich`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MakeConfig {
    pub token: String,
    /// The zone's base URL (`https://eu1.make.com`); empty = no enrichment.
    pub api_url: String,
    /// Sent as `Authorization: Token <api_token>`.
    pub api_token: String,
    pub api_timeout_ms: u64,
    /// Look-ups per minute at most (a token bucket); 0 = no limit.
    pub api_requests_per_minute: u32,
}

impl MakeConfig {
    pub fn validate(&self) -> Result<(), String> {
        super::map::check_api("make", &self.api_url, "api_token", &self.api_token)
    }
}

/// make.com audit-log pages, posted by a shipper.
pub struct MakeAdapter {
    config: MakeConfig,
}

impl MakeAdapter {
    pub fn new(config: MakeConfig) -> Self {
        MakeAdapter { config }
    }
}

impl Adapter for MakeAdapter {
    fn source(&self) -> Source {
        SRC
    }

    fn verify(&self, headers: &HeaderMap, _body: &[u8]) -> SourceAuth {
        check_shared_token(&self.config.token, headers, "make")
    }

    fn map(&self, d: &Delivery<'_>, memory: &dyn Memory) -> Result<Mapped, IngestError> {
        let payload = json_body(d.body)?;
        if payload.is_object()
            && at(&payload, "auditLogs").is_none()
            && s(&payload, "eventName").is_empty()
        {
            return Err(IngestError::malformed(
                "auditLogs",
                "expected {\"auditLogs\": [...]}, an array of entries, or one entry with eventName",
            ));
        }
        if !payload.is_object() && !payload.is_array() {
            return Err(IngestError::malformed(
                "(body)",
                "a make.com audit log is a JSON object or array",
            ));
        }
        let mut out = Mapped::default();
        for (i, entry) in items(&payload, &["auditLogs"]).into_iter().enumerate() {
            map_entry(entry, i, memory, &mut out);
        }
        Ok(out)
    }
}

fn action_for(name: &str) -> String {
    let mapped = match name {
        "scenario_created" => "workflow.created",
        "scenario_updated" => "workflow.updated",
        "scenario_deleted" => "workflow.deleted",
        "scenario_activated" => "workflow.activated",
        "scenario_deactivated" => "workflow.deactivated",
        "scenario_cloned" => "workflow.created",
        "connection_created" | "key_created" => "credential.created",
        "connection_updated" | "connection_reauthorized" | "key_updated" => "credential.updated",
        "connection_deleted" | "key_deleted" => "credential.deleted",
        "webhook_created" => "webhook.created",
        "webhook_updated" => "webhook.updated",
        "webhook_deleted" => "webhook.deleted",
        "webhook_enabled" => "webhook.enabled",
        "webhook_disabled" => "webhook.disabled",
        other => return unknown_action(SRC, other),
    };
    mapped.to_string()
}

/// Module apps in a blueprint that send data out of Make.
const EXPORT_APPS: &[&str] = &[
    "http",
    "email",
    "gmail",
    "google-email",
    "microsoft-email",
    "google-drive",
    "dropbox",
    "box",
    "onedrive",
    "aws-s3",
    "amazon-s3",
    "ftp",
    "sftp",
    "slack",
    "discord",
    "telegram",
    "google-sheets",
    "airtable",
    "webhook-respond",
];

fn map_entry(m: &Value, index: usize, memory: &dyn Memory, out: &mut Mapped) {
    let name = s(m, "eventName");
    if name.is_empty() {
        out.reject(index, "eventName", "an audit log entry names its event");
        return;
    }
    let uuid = s(m, "uuid").replace('-', "");
    if uuid.is_empty() {
        out.reject(index, "uuid", "an audit log entry carries its uuid");
        return;
    }
    let Some(time) = at(m, "triggeredAt").and_then(parse_time) else {
        out.reject(index, "triggeredAt", "missing or not an ISO 8601 time");
        return;
    };
    let action = action_for(&name);
    let target = s(m, "targetId");
    let subject = name.split('_').next().unwrap_or("").to_string();
    let anonymized = at(m, "actor.anonymized").and_then(Value::as_bool) == Some(true);
    let who = match (s(m, "actor.email"), s(m, "actor.id")) {
        (email, _) if !email.is_empty() => actor(&email, ActorType::Human, &s(m, "actor.name")),
        (_, id) if !id.is_empty() => actor(
            &format!("make-user:{id}"),
            ActorType::Human,
            &s(m, "actor.name"),
        ),
        _ => actor("make", ActorType::Service, "make.com"),
    };
    let detail = at(m, "detail").cloned().unwrap_or(Value::Null);
    // A webhook wired into a scenario belongs to that scenario's story.
    let scenario = match subject.as_str() {
        "scenario" => target.clone(),
        "webhook" => s(&detail, "scenarioId"),
        _ => String::new(),
    };
    let system = if scenario.is_empty() {
        "make".to_string()
    } else {
        format!("make/scenario/{scenario}")
    };
    let mut e = event(SRC, format!("make:{uuid}"), time, who, &system, &action);
    e.resource = if target.is_empty() {
        subject.clone()
    } else {
        format!("{subject}/{target}")
    };
    let team = s(m, "team.name");
    let detail_names: Vec<String> = ["scenarioName", "connectionName", "webhookName", "name"]
        .iter()
        .map(|k| s(&detail, k))
        .filter(|x| !x.is_empty())
        .collect();
    e.environment = guess_environment(
        std::iter::once(team.as_str()).chain(detail_names.iter().map(String::as_str)),
    );
    set(&mut e, "source_event", name.clone());
    set(&mut e, "target.id", target.clone());
    set(&mut e, "team.id", s(m, "team.id"));
    set(&mut e, "team.name", team);
    set(
        &mut e,
        "organization.id",
        match s(m, "organizationId") {
            x if x.is_empty() => s(m, "organization.id"),
            x => x,
        },
    );
    set(&mut e, "organization.name", s(m, "organization.name"));
    set(&mut e, "actor.anonymized", anonymized);
    set(&mut e, "version.from", s(m, "version.from"));
    set(&mut e, "version.to", s(m, "version.to"));
    enrichment(&mut e, at(&detail, "enrichment"));
    if subject == "webhook" {
        set(&mut e, "trigger.webhook", true);
        set(&mut e, "webhook.type", s(&detail, "hookType"));
        set(&mut e, "webhook.enabled", b(&detail, "hookEnabled"));
        set(&mut e, "webhook.scenario_id", scenario.clone());
        let url = s(&detail, "hookUrl");
        set(&mut e, "webhook.host", url_host(&url));
        set(&mut e, "webhook.url", capability_url(&url));
    }
    if subject == "connection" || subject == "key" {
        set(&mut e, "credential.kind", subject.clone());
        set(&mut e, "credential.id", target.clone());
        let first = |keys: [&str; 2]| keys.iter().map(|k| s(&detail, k)).find(|x| !x.is_empty());
        set(&mut e, "credential.type", first(["accountName", "keyType"]));
        set(
            &mut e,
            "credential.name",
            first(["connectionName", "keyName"]),
        );
        set(&mut e, "credential.label", s(&detail, "accountLabel"));
        set(&mut e, "credential.auth_type", s(&detail, "accountType"));
    }
    let mut derived: Vec<Event> = Vec::new();
    if let Some(blueprint) = at(&detail, "blueprint") {
        apply_blueprint(&mut e, blueprint);
    }
    // The scenario's schedule: anything but on demand or instantly (by its webhook) runs
    // on a clock.
    if let Some(kind) = at(&detail, "scheduling.type").and_then(Value::as_str) {
        if !matches!(kind, "on-demand" | "immediately") {
            set(&mut e, "trigger.schedule", true);
        }
    }
    let scopes = ["scopes", "scope"]
        .iter()
        .find_map(|k| at(&detail, k))
        .cloned();
    if let (Some(scopes), true) = (scopes, subject == "connection") {
        derived.extend(track_scope(&mut e, &scopes, &target, memory, out));
    }
    if !detail.is_null() {
        let mut d = detail.clone();
        if let Some(o) = d.as_object_mut() {
            // Read above; a hook's URL is its credential and is kept only redacted.
            for k in ["blueprint", "enrichment", "hookUrl"] {
                o.remove(k);
            }
        }
        keep_payload(&mut e, "detail", &d, 96);
    }
    out.push(index, e);
    for d in derived {
        out.push(index, d);
    }
}

/// Triggers, destinations and export-like modules of a scenario blueprint
/// (`{"flow": [{"module": "http:ActionSendData", "mapper": {"url": ...}}, ...]}`).
fn apply_blueprint(e: &mut Event, blueprint: &Value) {
    let mut modules = Vec::new();
    collect_modules(at(blueprint, "flow").unwrap_or(&Value::Null), &mut modules);
    let mut destinations = BTreeSet::new();
    let mut exports = BTreeSet::new();
    let mut webhook = false;
    let mut schedule = false;
    for m in &modules {
        let module = s(m, "module");
        let app = module.split(':').next().unwrap_or("").to_string();
        if app == "gateway" {
            webhook = true;
        }
        if module.starts_with("builtin:BasicScheduler") {
            schedule = true;
        }
        for key in ["mapper.url", "mapper.serviceUrl", "mapper.host"] {
            if let Some(h) = url_host(&s(m, key)) {
                destinations.insert(h);
            }
        }
        let verb = module.split(':').nth(1).unwrap_or("").to_ascii_lowercase();
        let reads = verb.starts_with("get")
            || verb.starts_with("watch")
            || verb.starts_with("search")
            || verb.starts_with("list");
        if EXPORT_APPS.contains(&app.as_str()) && !reads {
            exports.insert(segment(&app));
        }
    }
    if webhook {
        set(e, "trigger.webhook", true);
    }
    if schedule || at(blueprint, "scheduling").is_some() {
        set(e, "trigger.schedule", true);
    }
    set(
        e,
        "destinations",
        destinations.iter().cloned().collect::<Vec<_>>().join(","),
    );
    set(e, "destinations.count", destinations.len() as u64);
    if let Some(first) = destinations.iter().next() {
        e.destination = Some(first.clone());
    }
    set(e, "export", !exports.is_empty());
    set(
        e,
        "export.nodes",
        exports.iter().cloned().collect::<Vec<_>>().join(","),
    );
    set(e, "nodes.count", modules.len() as u64);
}

/// A webhook's address with its path (the part that lets anyone post to it) redacted:
/// `https://hook.eu1.make.com/[redacted:1a2b3c4d]`.
fn capability_url(url: &str) -> Option<String> {
    let host = url_host(url)?;
    let (scheme, rest) = url.trim().split_once("://")?;
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    Some(match path {
        "" => format!("{scheme}://{host}/"),
        p => format!("{scheme}://{host}/{}", plumbline_event::redact::marker(p)),
    })
}

fn collect_modules<'a>(flow: &'a Value, out: &mut Vec<&'a Value>) {
    for m in flow.as_array().into_iter().flatten() {
        out.push(m);
        // Routers nest flows under `routes[].flow`.
        for r in at(m, "routes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            collect_modules(at(r, "flow").unwrap_or(&Value::Null), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blueprints_reveal_webhooks_destinations_and_exports() {
        let mut e = event(
            SRC,
            "x".into(),
            time::OffsetDateTime::UNIX_EPOCH,
            actor("a", ActorType::Human, ""),
            "make",
            "workflow.updated",
        );
        let bp = json!({"flow": [
            {"id": 1, "module": "gateway:CustomWebHook"},
            {"id": 2, "module": "builtin:BasicRouter", "routes": [
                {"flow": [{"id": 3, "module": "http:ActionSendData", "mapper": {"url": "https://drop.example.org/in", "method": "post"}}]}
            ]},
            {"id": 4, "module": "google-sheets:getSheetContent"}
        ]});
        apply_blueprint(&mut e, &bp);
        assert_eq!(e.attributes["trigger.webhook"], json!(true));
        assert_eq!(e.destination.as_deref(), Some("drop.example.org"));
        assert_eq!(e.attributes["export.nodes"], json!("http"));
        assert_eq!(e.attributes["nodes.count"], json!(4));
    }
}
