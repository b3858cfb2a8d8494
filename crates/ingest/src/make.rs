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
//! `scenarioId` with that scenario's blueprint; with a blueprint, the connections its
//! modules use (`detail.connections`, as `GET /api/v2/connections/{id}` returns them). Its
//! note (`detail.enrichment`) becomes `enrichment.source` or `enrichment.error`.
//!
//! A blueprint's export-like modules name where data goes: the literal hosts of their URLs,
//! and, for apps whose data lands in the connected account itself (Google Drive, Dropbox,
//! OneDrive, Gmail …), that account's address (`mallory.reyes@gmail.com`, read from the
//! connection's `metadata`, `accountLabel` or name), so a personal account is told from the
//! company's by the destination lists detectors already keep. Between versions of a
//! scenario the modules are remembered, so a later version says which were added or
//! changed (`workflow.node.*`, as for n8n).

use std::collections::{BTreeMap, BTreeSet};

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::adapter::{
    check_shared_token, Adapter, Delivery, IngestError, Mapped, Memory, SourceAuth,
};
use super::map::{
    actor, at, b, content_id, enrichment, event, guess_environment, items, json_body, keep_payload,
    node_event, parse_time, s, segment, set, track_scope, unknown_action, url_host,
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
        // Make's audit-log pages list the newest entry first; what the adapter remembers
        // between entries (scopes, modules) must see them in the order they happened.
        // Positions stay those of the page, so a rejection names the entry as sent.
        let mut entries: Vec<(usize, &Value)> = items(&payload, &["auditLogs"])
            .into_iter()
            .enumerate()
            .collect();
        entries.sort_by_key(|(_, e)| at(e, "triggeredAt").and_then(parse_time));
        for (i, entry) in entries {
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
        set(&mut e, "credential.account", account_address(&detail));
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
        let accounts = connection_accounts(at(&detail, "connections"));
        let modules = read_modules(blueprint, &accounts);
        apply_blueprint(&mut e, blueprint, &modules);
        // Only the scenario's own entries are its versions; a webhook's copy is context.
        if subject == "scenario" && !target.is_empty() {
            derived.extend(module_changes(&e, &modules, &target, memory, out));
        }
    } else if name == "scenario_deleted" && !target.is_empty() {
        out.remember(SRC, MODULES, &target, None);
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
            // Connections are read into destinations; their details stay with Make.
            for k in ["blueprint", "connections", "enrichment", "hookUrl"] {
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

/// Apps whose export-like modules put data into the connected account itself (a file in
/// its Drive, a message from its mailbox, a row in its sheet): the account is where the
/// data goes.
const ACCOUNT_APPS: &[&str] = &[
    "google-drive",
    "google-sheets",
    "dropbox",
    "box",
    "onedrive",
    "gmail",
    "google-email",
    "microsoft-email",
    "airtable",
];

/// Mail apps: literal recipients are destinations too.
const MAIL_APPS: &[&str] = &["email", "gmail", "google-email", "microsoft-email"];

/// Module parameters that hold the id of the connection a module uses (Make names the
/// field per app: `__IMTCONN__` mostly, `account` for Gmail, `makeConnectionId` for AI).
const CONNECTION_PARAMS: &[&str] = &["__IMTCONN__", "account", "makeConnectionId"];

/// Memory kind: a scenario's modules as last seen.
const MODULES: &str = "scenario_modules";

/// One module of a blueprint as far as its configuration says where data goes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct ModuleInfo {
    /// `app:Module`.
    #[serde(rename = "type")]
    kind: String,
    /// The designer's name, or the module id and type.
    #[serde(skip)]
    name: String,
    /// Hash of the module's parameters and mapper: a change means the module changed.
    fingerprint: String,
    /// Whether the module can carry data out of Make.
    #[serde(default)]
    export: bool,
    /// Where it sends data: literal hosts, and the connected account or recipients of an
    /// app whose data lands in an account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    destinations: Vec<String>,
    /// The connections and keys it uses: `connection:<id>`, `key:<id>`.
    #[serde(skip)]
    credentials: Vec<String>,
    #[serde(skip)]
    webhook: bool,
    #[serde(skip)]
    schedule: bool,
}

/// The connection ids a blueprint's modules use, in order of appearance, each once (what
/// the enrichment stage fetches to tell whose accounts they are).
pub fn connection_ids(blueprint: &Value) -> Vec<String> {
    let mut modules = Vec::new();
    collect_modules(at(blueprint, "flow").unwrap_or(&Value::Null), &mut modules);
    let mut ids: Vec<String> = Vec::new();
    for m in modules {
        for id in param_ids(m, CONNECTION_PARAMS) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

/// The ids in a module's parameters under `keys` (numbers, or strings of digits).
fn param_ids(m: &Value, keys: &[&str]) -> Vec<String> {
    let Some(params) = at(m, "parameters").and_then(Value::as_object) else {
        return Vec::new();
    };
    params
        .iter()
        .filter(|(k, _)| keys.contains(&k.as_str()))
        .filter_map(|(_, v)| match v {
            Value::Number(n) => Some(n.to_string()),
            Value::String(x) if !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()) => {
                Some(x.clone())
            }
            _ => None,
        })
        .collect()
}

/// The keys (keychains) a module uses: `__IMTKEY__`, or a field named `…Keychain`
/// (`apiKeyKeychain`, `basicAuthKeychain` of the HTTP app).
fn key_ids(m: &Value) -> Vec<String> {
    let names: Vec<&str> = at(m, "parameters")
        .and_then(Value::as_object)
        .map(|p| {
            p.keys()
                .map(String::as_str)
                .filter(|k| *k == "__IMTKEY__" || k.ends_with("Keychain"))
                .collect()
        })
        .unwrap_or_default();
    param_ids(m, &names)
}

/// The mail address in `text`: the whole of it, or a word of it
/// (`My Google connection (mallory.reyes@gmail.com)`), lower-cased.
fn mail_address(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || "()<>[],;\"'".contains(c))
        .find_map(|w| {
            let w = w.trim_matches('.');
            let (local, domain) = w.split_once('@')?;
            let ok = !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !w.contains("{{")
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@.-_+".contains(c));
            ok.then(|| w.to_ascii_lowercase())
        })
}

/// Whose account a connection is: the address Make keeps in its `metadata`, else one in its
/// `accountLabel` or its name.
fn account_address(c: &Value) -> Option<String> {
    ["metadata.value", "accountLabel", "name", "connectionName"]
        .iter()
        .find_map(|k| mail_address(&s(c, k)))
}

/// Connection id → account address, from what the enrichment stage attached.
fn connection_accounts(connections: Option<&Value>) -> BTreeMap<String, String> {
    let list = match connections {
        Some(Value::Array(a)) => a.iter().collect::<Vec<_>>(),
        Some(Value::Object(o)) => o.values().collect(),
        _ => Vec::new(),
    };
    list.into_iter()
        .filter_map(|c| {
            let id = match c.get("id") {
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::String(x)) => x.clone(),
                _ => return None,
            };
            Some((id, account_address(c)?))
        })
        .collect()
}

/// Literal addresses among a mail module's recipients (`to`, `cc`, `bcc`: a string, or a
/// list of strings or `{address|email}` objects); mapped values (`{{1.email}}`) say nothing.
fn recipients(m: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for k in ["mapper.to", "mapper.cc", "mapper.bcc"] {
        let items = match at(m, k) {
            Some(Value::Array(a)) => a.iter().collect::<Vec<_>>(),
            Some(v) => vec![v],
            None => Vec::new(),
        };
        for v in items {
            let text = match v {
                Value::String(x) => x.clone(),
                v => ["address", "email"]
                    .iter()
                    .map(|f| s(v, f))
                    .find(|x| !x.is_empty())
                    .unwrap_or_default(),
            };
            out.extend(mail_address(&text));
        }
    }
    out
}

/// Every module of a blueprint (routes included), keyed by its id in the blueprint.
fn read_modules(
    blueprint: &Value,
    accounts: &BTreeMap<String, String>,
) -> BTreeMap<String, ModuleInfo> {
    let mut modules = Vec::new();
    collect_modules(at(blueprint, "flow").unwrap_or(&Value::Null), &mut modules);
    let mut out = BTreeMap::new();
    for (i, m) in modules.iter().enumerate() {
        let module = s(m, "module");
        let app = module.split(':').next().unwrap_or("").to_string();
        let verb = module.split(':').nth(1).unwrap_or("").to_ascii_lowercase();
        let reads = ["get", "watch", "search", "list", "download"]
            .iter()
            .any(|r| verb.starts_with(r));
        let export = EXPORT_APPS.contains(&app.as_str()) && !reads;
        let mut destinations = Vec::new();
        for key in ["mapper.url", "mapper.serviceUrl", "mapper.host"] {
            destinations.extend(url_host(&s(m, key)));
        }
        let connections = param_ids(m, CONNECTION_PARAMS);
        if export && ACCOUNT_APPS.contains(&app.as_str()) {
            destinations.extend(connections.iter().filter_map(|c| accounts.get(c).cloned()));
        }
        if export && MAIL_APPS.contains(&app.as_str()) {
            destinations.extend(recipients(m));
        }
        destinations.sort();
        destinations.dedup();
        let credentials = connections
            .iter()
            .map(|c| format!("connection:{c}"))
            .chain(key_ids(m).iter().map(|k| format!("key:{k}")))
            .collect();
        let id = match m.get("id") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(x)) if !x.is_empty() => x.clone(),
            _ => format!("#{i}"),
        };
        let name = match s(m, "metadata.designer.name") {
            n if n.is_empty() => format!("{id} {module}"),
            n => n,
        };
        let fingerprint = content_id(
            serde_json::to_string(&json!([at(m, "parameters"), at(m, "mapper")]))
                .unwrap_or_default()
                .as_bytes(),
        );
        out.insert(
            id,
            ModuleInfo {
                webhook: app == "gateway",
                schedule: module.starts_with("builtin:BasicScheduler"),
                kind: module,
                name,
                fingerprint: fingerprint[..16].to_string(),
                export,
                destinations,
                credentials,
            },
        );
    }
    out
}

/// Triggers, destinations and export-like modules of a scenario blueprint
/// (`{"flow": [{"module": "http:ActionSendData", "mapper": {"url": ...}}, ...]}`).
fn apply_blueprint(e: &mut Event, blueprint: &Value, modules: &BTreeMap<String, ModuleInfo>) {
    let mut destinations = BTreeSet::new();
    let mut exports = BTreeSet::new();
    let mut accounts = BTreeSet::new();
    let mut export_credentials = BTreeSet::new();
    for m in modules.values() {
        destinations.extend(m.destinations.iter().cloned());
        if m.export {
            let app = m.kind.split(':').next().unwrap_or("");
            exports.insert(segment(app));
            accounts.extend(m.destinations.iter().filter(|d| d.contains('@')).cloned());
            export_credentials.extend(m.credentials.iter().cloned());
        }
    }
    if modules.values().any(|m| m.webhook) {
        set(e, "trigger.webhook", true);
    }
    if modules.values().any(|m| m.schedule) || at(blueprint, "scheduling").is_some() {
        set(e, "trigger.schedule", true);
    }
    let join = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(",");
    set(e, "destinations", join(&destinations));
    set(e, "destinations.count", destinations.len() as u64);
    if let Some(first) = destinations.iter().next() {
        e.destination = Some(first.clone());
    }
    set(e, "export", !exports.is_empty());
    set(e, "export.nodes", join(&exports));
    set(e, "export.accounts", join(&accounts));
    set(e, "export.credentials", join(&export_credentials));
    set(e, "nodes.count", modules.len() as u64);
}

/// `workflow.node.added` / `.changed` / `.removed` against the scenario's last version
/// seen. On first sight only a new scenario's modules are "added": an update we have no
/// baseline for says nothing about which modules changed.
fn module_changes(
    base: &Event,
    modules: &BTreeMap<String, ModuleInfo>,
    scenario: &str,
    memory: &dyn Memory,
    out: &mut Mapped,
) -> Vec<Event> {
    let previous: Option<BTreeMap<String, ModuleInfo>> = out
        .recall(memory, SRC, MODULES, scenario)
        .and_then(|v| serde_json::from_value(v).ok());
    let mut events = Vec::new();
    let derive = |what: &str, key: &str, m: &ModuleInfo| {
        let name = match m.name.as_str() {
            "" => format!("{key} {}", m.kind),
            n => n.to_string(),
        };
        let to = m.destinations.first().map(String::as_str);
        node_event(base, what, key, &name, &m.kind, m.export, to)
    };
    let baseline = match &previous {
        Some(p) => Some(p),
        None if base.action == "workflow.created" => Some(&BTreeMap::new()),
        None => None,
    };
    if let Some(previous) = baseline {
        for (key, m) in modules {
            match previous.get(key) {
                None => events.push(derive("added", key, m)),
                Some(old) if old.fingerprint != m.fingerprint || old.kind != m.kind => {
                    events.push(derive("changed", key, m))
                }
                _ => {}
            }
        }
        for (key, m) in previous {
            if !modules.contains_key(key) {
                events.push(derive("removed", key, m));
            }
        }
    }
    out.remember(
        SRC,
        MODULES,
        scenario,
        Some(serde_json::to_value(modules).unwrap_or(Value::Null)),
    );
    events
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
        apply_blueprint(&mut e, &bp, &read_modules(&bp, &BTreeMap::new()));
        assert_eq!(e.attributes["trigger.webhook"], json!(true));
        assert_eq!(e.destination.as_deref(), Some("drop.example.org"));
        assert_eq!(e.attributes["export.nodes"], json!("http"));
        assert_eq!(e.attributes["nodes.count"], json!(4));
    }

    #[test]
    fn accounts_are_read_from_connections_and_ids_from_parameters() {
        assert_eq!(
            mail_address("My Google connection (Mallory.Reyes@gmail.com)").as_deref(),
            Some("mallory.reyes@gmail.com")
        );
        for none in ["Google", "{{1.email}}", "a@localhost", "@acme.example", ""] {
            assert_eq!(mail_address(none), None, "{none}");
        }
        let c = json!({"id": 7, "name": "Drive", "accountLabel": "Google",
                       "metadata": {"type": "email", "value": "lee@acme.example"}});
        assert_eq!(account_address(&c).as_deref(), Some("lee@acme.example"));
        let bp = json!({"flow": [
            {"id": 1, "module": "google-drive:uploadAFile", "parameters": {"__IMTCONN__": 7}},
            {"id": 2, "module": "builtin:BasicRouter", "routes": [{"flow": [
                {"id": 3, "module": "google-email:ActionSendEmail", "parameters": {"account": "9"}},
                {"id": 4, "module": "google-drive:uploadAFile", "parameters": {"__IMTCONN__": 7}},
                {"id": 5, "module": "http:MakeRequest", "parameters": {"apiKeyKeychain": 12, "__IMTCONN__": "x"}}
            ]}]}
        ]});
        assert_eq!(connection_ids(&bp), ["7", "9"]);
        let modules = read_modules(
            &bp,
            &BTreeMap::from([("7".to_string(), "lee@acme.example".to_string())]),
        );
        assert_eq!(modules["1"].destinations, ["lee@acme.example"]);
        assert_eq!(modules["5"].credentials, ["key:12"]);
        // An account app's read says nothing about where data goes.
        let read = json!({"flow": [{"id": 1, "module": "google-drive:downloadAFile", "parameters": {"__IMTCONN__": 7}}]});
        let m = read_modules(
            &read,
            &BTreeMap::from([("7".to_string(), "x@gmail.com".to_string())]),
        );
        assert!(!m["1"].export && m["1"].destinations.is_empty());
    }
}
