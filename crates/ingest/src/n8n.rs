//! n8n log streaming: `POST /v1/ingest/n8n`.
//!
//! n8n's webhook destination posts one event-bus message per request:
//! `{"id", "ts", "eventName", "message", "payload": {...}}` (the `__type` n8n writes to its
//! own log file is accepted too, so `n8nEventLog.log` can be back-filled). Header Auth
//! carries `[n8n] token`. Ids are `n8n:<message id>` plus suffixes for derived events.
//!
//! Audit messages name the workflow but not its content. When a message carries the
//! workflow itself (`payload.workflow` with `nodes`: the enrichment stage attaches
//! `GET /api/v1/workflows/{id}` when `[n8n] api_url` is set, or a relay does), the adapter
//! derives what detectors need: trigger kinds, external HTTP destinations, attached
//! credentials, export-like nodes, and node-level changes against the last version it saw.
//! What the enrichment stage noted (`payload.enrichment`) becomes `enrichment.source` or
//! `enrichment.error`.

use std::collections::{BTreeMap, BTreeSet};

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::adapter::{
    check_shared_token, Adapter, Delivery, IngestError, Mapped, Memory, SourceAuth,
};
use super::map::{
    actor, at, content_id, enrichment, event, guess_environment, items, json_body, keep_payload,
    node_event, parse_time, s, set, strings, track_scope, unknown_action, url_host, PAYLOAD_BUDGET,
};
use plumbline_event::{ActorType, Event, Source};

const SRC: Source = Source::N8n;

/// `[n8n]`: the shared token n8n's log-streaming webhook sends (header auth), and the
/// public API that workflow audit events are enriched from (`plumbline-enrich`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct N8nConfig {
    pub token: String,
    /// The instance's base URL (`https://n8n.example.com`); empty = no enrichment.
    pub api_url: String,
    /// Sent as `X-N8N-API-KEY`.
    pub api_key: String,
    pub api_timeout_ms: u64,
    /// Look-ups per minute at most (a token bucket); 0 = no limit.
    pub api_requests_per_minute: u32,
}

impl N8nConfig {
    pub fn validate(&self) -> Result<(), String> {
        super::map::check_api("n8n", &self.api_url, "api_key", &self.api_key)
    }
}

/// n8n log streaming (and n8n's own event log, back-filled).
pub struct N8nAdapter {
    config: N8nConfig,
}

impl N8nAdapter {
    pub fn new(config: N8nConfig) -> Self {
        N8nAdapter { config }
    }
}

impl Adapter for N8nAdapter {
    fn source(&self) -> Source {
        SRC
    }

    fn verify(&self, headers: &HeaderMap, _body: &[u8]) -> SourceAuth {
        check_shared_token(&self.config.token, headers, "n8n")
    }

    fn map(&self, d: &Delivery<'_>, memory: &dyn Memory) -> Result<Mapped, IngestError> {
        let payload = json_body(d.body)?;
        let mut out = Mapped::default();
        let list = items(&payload, &[]);
        if !payload.is_array() && s(&payload, "eventName").is_empty() {
            return Err(IngestError::malformed(
                "eventName",
                "an n8n log-streaming message names its event (eventName)",
            ));
        }
        for (i, msg) in list.into_iter().enumerate() {
            map_message(msg, i, memory, &mut out);
        }
        Ok(out)
    }
}

/// Node types that send data out of n8n (matched on the part after the package prefix).
const EXPORT_NODES: &[&str] = &[
    "httpRequest",
    "emailSend",
    "sendEmail",
    "gmail",
    "microsoftOutlook",
    "awsS3",
    "s3",
    "googleDrive",
    "googleCloudStorage",
    "dropbox",
    "box",
    "microsoftOneDrive",
    "nextCloud",
    "ftp",
    "ssh",
    "slack",
    "discord",
    "telegram",
    "mattermost",
    "microsoftTeams",
    "respondToWebhook",
    "writeBinaryFile",
    "readWriteFile",
    "googleSheets",
    "airtable",
    "postgres",
    "mySql",
    "mongoDb",
    "redis",
    "kafka",
    "rabbitmq",
    "mqtt",
    "amqp",
];

const CODE_NODES: &[&str] = &["code", "function", "functionItem", "executeCommand", "ssh"];

fn short_type(node_type: &str) -> &str {
    node_type.rsplit('.').next().unwrap_or(node_type)
}

pub fn is_export_node(node_type: &str) -> bool {
    let t = short_type(node_type);
    let t = t.strip_suffix("Tool").unwrap_or(t);
    EXPORT_NODES.iter().any(|n| n.eq_ignore_ascii_case(t))
}

fn trigger_kind(node_type: &str) -> Option<String> {
    let t = short_type(node_type);
    match t {
        "webhook" | "formTrigger" | "chatTrigger" | "mcpTrigger" => Some("webhook".into()),
        "scheduleTrigger" | "cron" | "interval" => Some("schedule".into()),
        "manualTrigger" | "start" => Some("manual".into()),
        "executeWorkflowTrigger" => Some("subworkflow".into()),
        "errorTrigger" => Some("error".into()),
        _ => t
            .strip_suffix("Trigger")
            .map(|app| app.to_ascii_lowercase()),
    }
}

/// What a workflow body says about its reach.
#[derive(Debug, Default)]
pub struct WorkflowShape {
    pub triggers: BTreeSet<String>,
    pub webhook_paths: Vec<String>,
    pub unauthenticated_webhook: bool,
    pub destinations: BTreeSet<String>,
    pub credentials: BTreeSet<String>,
    pub export_nodes: BTreeSet<String>,
    pub code_nodes: usize,
    pub nodes: BTreeMap<String, NodeInfo>,
}

/// One node as remembered between versions of a workflow.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeInfo {
    #[serde(rename = "type")]
    pub kind: String,
    /// Hash of the node's parameters and credentials: a change means the node changed.
    pub fingerprint: String,
    /// Host the node sends to, when its URL is literal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Whether the node can carry data out of n8n.
    #[serde(default)]
    pub export: bool,
    /// `credentialType:name` of each credential the node uses.
    #[serde(default)]
    pub credentials: Vec<String>,
}

pub fn shape(workflow: &Value) -> WorkflowShape {
    let mut w = WorkflowShape::default();
    for node in at(workflow, "nodes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ty = s(node, "type");
        let name = s(node, "name");
        let short = short_type(&ty).to_string();
        if let Some(kind) = trigger_kind(&ty) {
            if kind == "webhook" {
                let path = s(node, "parameters.path");
                if !path.is_empty() {
                    w.webhook_paths.push(path);
                }
                let auth = s(node, "parameters.authentication");
                if auth.is_empty() || auth == "none" {
                    w.unauthenticated_webhook = true;
                }
            }
            w.triggers.insert(kind);
        }
        let mut host = None;
        for key in [
            "parameters.url",
            "parameters.requestUrl",
            "parameters.endpoint",
            "parameters.host",
        ] {
            if let Some(h) = url_host(&s(node, key)) {
                w.destinations.insert(h.clone());
                host.get_or_insert(h);
            }
        }
        let mut credentials = Vec::new();
        if let Some(creds) = at(node, "credentials").and_then(Value::as_object) {
            for (kind, c) in creds {
                let name = match s(c, "name") {
                    n if n.is_empty() => s(c, "id"),
                    n => n,
                };
                w.credentials.insert(format!("{kind}:{name}"));
                credentials.push(format!("{kind}:{name}"));
            }
        }
        let method = s(node, "parameters.method").to_ascii_uppercase();
        // A plain GET pulls data in; anything else can carry data out.
        let export = is_export_node(&ty)
            && (short != "httpRequest" || method != "GET" && !method.is_empty());
        if export {
            w.export_nodes.insert(short.clone());
        }
        if CODE_NODES.iter().any(|c| *c == short) {
            w.code_nodes += 1;
        }
        let fingerprint = content_id(
            serde_json::to_string(&json!([at(node, "parameters"), at(node, "credentials")]))
                .unwrap_or_default()
                .as_bytes(),
        );
        w.nodes.insert(
            name,
            NodeInfo {
                kind: ty,
                fingerprint: fingerprint[..16].to_string(),
                host,
                export,
                credentials,
            },
        );
    }
    w
}

fn apply_shape(e: &mut Event, w: &WorkflowShape) {
    set(
        e,
        "trigger.kinds",
        w.triggers.iter().cloned().collect::<Vec<_>>().join(","),
    );
    for t in &w.triggers {
        set(e, &format!("trigger.{t}"), true);
    }
    if w.triggers.contains("webhook") {
        set(e, "trigger.webhook.paths", w.webhook_paths.join(","));
        set(
            e,
            "trigger.webhook.unauthenticated",
            w.unauthenticated_webhook,
        );
    }
    set(
        e,
        "destinations",
        w.destinations.iter().cloned().collect::<Vec<_>>().join(","),
    );
    set(e, "destinations.count", w.destinations.len() as u64);
    if let Some(first) = w.destinations.iter().next() {
        e.destination = Some(first.clone());
    }
    set(
        e,
        "credentials",
        w.credentials.iter().cloned().collect::<Vec<_>>().join(","),
    );
    set(e, "credentials.count", w.credentials.len() as u64);
    set(e, "export", !w.export_nodes.is_empty());
    set(
        e,
        "export.nodes",
        w.export_nodes.iter().cloned().collect::<Vec<_>>().join(","),
    );
    set(e, "code.nodes", w.code_nodes as u64);
    set(e, "nodes.count", w.nodes.len() as u64);
}

fn action_for(name: &str) -> String {
    let n = name.strip_prefix("n8n.").unwrap_or(name);
    let mapped = match n {
        "audit.workflow.created" => "workflow.created",
        "audit.workflow.updated" => "workflow.updated",
        "audit.workflow.activated" => "workflow.activated",
        "audit.workflow.deactivated" => "workflow.deactivated",
        "audit.workflow.deleted" => "workflow.deleted",
        "audit.workflow.archived" => "workflow.archived",
        "audit.workflow.unarchived" => "workflow.unarchived",
        "audit.workflow.executed" => "workflow.execution.requested",
        "audit.workflow.version.updated" => "workflow.version.updated",
        "workflow.started" => "workflow.execution.started",
        "workflow.success" | "workflow.failed" => "workflow.executed",
        "workflow.cancelled" => "workflow.execution.cancelled",
        "node.started" => "workflow.node.started",
        "node.finished" => "workflow.node.executed",
        "audit.user.credentials.created" => "credential.created",
        "audit.user.credentials.updated" => "credential.updated",
        "audit.user.credentials.deleted" => "credential.deleted",
        "audit.user.credentials.shared" => "credential.shared",
        "audit.user.login.success" => "auth.login",
        "audit.user.login.failed" => "auth.login.failed",
        "audit.user.signedup" => "user.created",
        "audit.user.invited" | "audit.user.reinvited" => "member.invited",
        "audit.user.invitation.accepted" => "member.added",
        "audit.user.updated" => "user.updated",
        "audit.user.deleted" => "user.deleted",
        "audit.user.reset.requested" | "audit.user.reset" => "password.reset",
        "audit.user.api.created" => "api_key.created",
        "audit.user.api.deleted" => "api_key.deleted",
        "audit.user.api.rotated" => "api_key.rotated",
        "audit.user.mfa.enabled" => "mfa.enabled",
        "audit.user.mfa.disabled" => "mfa.disabled",
        "audit.package.installed" => "package.installed",
        "audit.package.updated" => "package.updated",
        "audit.package.deleted" => "package.deleted",
        "audit.variable.created" => "variable.created",
        "audit.variable.updated" => "variable.updated",
        "audit.variable.deleted" => "variable.deleted",
        "audit.execution.data.revealed" => "data.revealed",
        "audit.user.execution.deleted" => "execution.deleted",
        "destination.test" => "webhook.ping",
        other => return unknown_action(SRC, other),
    };
    mapped.to_string()
}

fn map_message(m: &Value, index: usize, memory: &dyn Memory, out: &mut Mapped) {
    let name = s(m, "eventName");
    if name.is_empty() {
        out.reject(index, "eventName", "an n8n message names its event");
        return;
    }
    let Some(time) = at(m, "ts").and_then(parse_time) else {
        out.reject(index, "ts", "missing or not an ISO 8601 time");
        return;
    };
    let id = match s(m, "id") {
        x if x.is_empty() => content_id(&serde_json::to_vec(m).unwrap_or_default()),
        x => x,
    };
    let p = at(m, "payload").cloned().unwrap_or(Value::Null);
    let action = action_for(&name);
    let workflow_id = s(&p, "workflowId");
    let workflow_name = s(&p, "workflowName");
    let system = if workflow_id.is_empty() {
        "n8n".to_string()
    } else {
        format!("n8n/workflow/{workflow_id}")
    };
    let who = {
        let email = match s(&p, "_email") {
            e if e.is_empty() => s(&p, "userEmail"),
            e => e,
        };
        let uid = s(&p, "userId");
        let display = [s(&p, "_firstName"), s(&p, "_lastName")]
            .join(" ")
            .trim()
            .to_string();
        if !email.is_empty() {
            actor(&email, ActorType::Human, &display)
        } else if !uid.is_empty() {
            actor(&uid, ActorType::Human, &display)
        } else if !workflow_id.is_empty() {
            // Executions without a user were started by a trigger: the workflow acts.
            actor(
                &format!("n8n-workflow:{workflow_id}"),
                ActorType::Service,
                &workflow_name,
            )
        } else {
            actor("n8n", ActorType::Service, "n8n")
        }
    };
    let mut e = event(SRC, format!("n8n:{id}"), time, who, &system, &action);
    e.environment = guess_environment([workflow_name.as_str(), &s(&p, "projectName")]);
    set(&mut e, "source_event", name.clone());
    set(&mut e, "workflow.id", workflow_id.clone());
    set(&mut e, "workflow.name", workflow_name.clone());
    set(&mut e, "user.role", s(&p, "globalRole"));
    set(&mut e, "project.id", s(&p, "projectId"));
    set(&mut e, "project.name", s(&p, "projectName"));
    enrichment(&mut e, at(&p, "enrichment"));
    if !workflow_id.is_empty() {
        e.resource = format!("workflow/{workflow_id}");
    }
    let mut derived: Vec<Event> = Vec::new();
    match action.as_str() {
        a if a.starts_with("workflow.")
            && !a.starts_with("workflow.node.")
            && !a.starts_with("workflow.execut") =>
        {
            set(&mut e, "workflow.active_version", s(&p, "activeVersionId"));
            if let Some(settings) = at(&p, "settingsChanged") {
                set(&mut e, "settings_changed", settings.to_string());
            }
            if let Some(wf) = at(&p, "workflow").filter(|w| at(w, "nodes").is_some()) {
                let w = shape(wf);
                apply_shape(&mut e, &w);
                derived = node_changes(&e, &w, &workflow_id, memory, out);
            }
        }
        a if a.starts_with("workflow.execut") => {
            set(&mut e, "execution.id", s(&p, "executionId"));
            set(&mut e, "execution.mode", s(&p, "mode"));
            set(&mut e, "execution.source", s(&p, "source"));
            set(
                &mut e,
                "manual",
                at(&p, "isManual").cloned().unwrap_or(Value::Null),
            );
            if a == "workflow.executed" {
                let ok = name.ends_with(".success");
                set(&mut e, "outcome", if ok { "success" } else { "failure" });
                set(&mut e, "error.node_type", s(&p, "errorNodeType"));
                set(&mut e, "error.message", s(&p, "errorMessage"));
                set(&mut e, "last_node", s(&p, "lastNodeExecuted"));
            }
        }
        a if a.starts_with("workflow.node.") => {
            let ty = s(&p, "nodeType");
            set(&mut e, "execution.id", s(&p, "executionId"));
            set(&mut e, "node.name", s(&p, "nodeName"));
            set(&mut e, "node.type", ty.clone());
            let (export, host) = node_reach(&p, memory, out);
            set(&mut e, "node.export", export);
            if let Some(h) = &host {
                set(&mut e, "node.destination", h.clone());
            }
            // A finished export-like node moved data out of n8n.
            if export && a == "workflow.node.executed" {
                let mut d = e.clone();
                d.id = format!("{}:export", e.id);
                d.action = "data.export".into();
                d.destination = host;
                set(&mut d, "export.via", ty.clone());
                derived.push(d);
            }
        }
        a if a.starts_with("credential.") => {
            let cid = s(&p, "credentialId");
            e.resource = format!("credential/{cid}");
            set(&mut e, "credential.id", cid.clone());
            set(&mut e, "credential.type", s(&p, "credentialType"));
            set(&mut e, "credential.name", s(&p, "credentialName"));
            set(
                &mut e,
                "credential.public_api",
                at(&p, "publicApi").cloned().unwrap_or(Value::Null),
            );
            set(
                &mut e,
                "credential.shared_with",
                strings(&p, "userIdsShareesAdded").join(","),
            );
            let scopes = ["scope", "scopes", "credential.data.scope", "data.scope"]
                .iter()
                .find_map(|k| at(&p, k))
                .cloned();
            if let Some(scopes) = scopes {
                derived.extend(track_scope(&mut e, &scopes, &cid, memory, out));
            }
        }
        "auth.login" | "auth.login.failed" => {
            set(&mut e, "auth.method", s(&p, "authenticationMethod"));
            set(&mut e, "reason", s(&p, "reason"));
        }
        "package.installed" | "package.updated" | "package.deleted" => {
            e.resource = s(&p, "packageName");
            set(&mut e, "package.name", s(&p, "packageName"));
            set(&mut e, "package.version", s(&p, "packageVersion"));
            set(
                &mut e,
                "package.nodes",
                strings(&p, "packageNodeNames").join(","),
            );
        }
        "member.invited" | "user.deleted" | "user.updated" => {
            set(&mut e, "target_user", s(&p, "targetUserId"));
            set(
                &mut e,
                "fields_changed",
                strings(&p, "fieldsChanged").join(","),
            );
        }
        "webhook.ping" => {}
        _ => keep_payload(&mut e, "payload", &p, PAYLOAD_BUDGET),
    }
    out.push(index, e);
    for d in derived {
        out.push(index, d);
    }
}

/// `workflow.node.added` / `.removed` / `.changed` and `credential.attached` against the
/// last version seen.
fn node_changes(
    base: &Event,
    w: &WorkflowShape,
    workflow_id: &str,
    memory: &dyn Memory,
    out: &mut Mapped,
) -> Vec<Event> {
    let previous: BTreeMap<String, NodeInfo> = out
        .recall(memory, SRC, "workflow_nodes", workflow_id)
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let first_sight = previous.is_empty();
    let mut events = Vec::new();
    let derive = |what: &str, name: &str, node: &NodeInfo| {
        let host = node.host.as_deref();
        node_event(base, what, name, name, &node.kind, node.export, host)
    };
    // On first sight of a workflow every node is "added" only if the workflow is new;
    // an update we have no baseline for says nothing about which nodes changed.
    if !first_sight || base.action == "workflow.created" {
        for (name, node) in &w.nodes {
            match previous.get(name) {
                None => events.push(derive("added", name, node)),
                Some(old) if old.fingerprint != node.fingerprint => {
                    events.push(derive("changed", name, node))
                }
                _ => {}
            }
        }
        for (name, node) in &previous {
            if !w.nodes.contains_key(name) {
                events.push(derive("removed", name, node));
            }
        }
        let before: BTreeSet<&String> = previous.values().flat_map(|n| &n.credentials).collect();
        for (name, node) in &w.nodes {
            for cred in node.credentials.iter().filter(|c| !before.contains(c)) {
                let (kind, cred_name) = cred.split_once(':').unwrap_or(("", cred));
                let mut d = base.clone();
                d.action = "credential.attached".into();
                d.id = format!(
                    "{}:credential.{}",
                    base.id,
                    &content_id(cred.as_bytes())[..12]
                );
                d.attributes.insert("credential.type".into(), json!(kind));
                d.attributes
                    .insert("credential.name".into(), json!(cred_name));
                d.attributes.insert("node.name".into(), json!(name));
                d.attributes.insert("node.type".into(), json!(node.kind));
                events.push(d);
            }
        }
    }
    if base.action == "workflow.deleted" {
        out.remember(SRC, "workflow_nodes", workflow_id, None);
    } else {
        out.remember(
            SRC,
            "workflow_nodes",
            workflow_id,
            Some(serde_json::to_value(&w.nodes).unwrap_or(Value::Null)),
        );
    }
    events
}

/// Whether a node of a running workflow can carry data out, and where to: from the
/// workflow body when it was seen (method-aware), else from the node type alone.
fn node_reach(p: &Value, memory: &dyn Memory, out: &Mapped) -> (bool, Option<String>) {
    let known: Option<NodeInfo> = out
        .recall(memory, SRC, "workflow_nodes", &s(p, "workflowId"))
        .and_then(|v| serde_json::from_value::<BTreeMap<String, NodeInfo>>(v).ok())
        .and_then(|mut nodes| nodes.remove(&s(p, "nodeName")));
    match known {
        Some(n) => (n.export, n.host),
        None => (is_export_node(&s(p, "nodeType")), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_shape_finds_triggers_destinations_credentials_and_exports() {
        let wf = json!({"nodes": [
            {"name": "Webhook", "type": "n8n-nodes-base.webhook", "parameters": {"path": "invoice", "httpMethod": "POST"}},
            {"name": "Every hour", "type": "n8n-nodes-base.scheduleTrigger", "parameters": {}},
            {"name": "Fetch", "type": "n8n-nodes-base.httpRequest", "parameters": {"url": "https://api.internal.acme.com/v1/x", "method": "GET"}},
            {"name": "Send", "type": "n8n-nodes-base.httpRequest", "parameters": {"url": "https://paste.example.net/upload", "method": "POST"},
             "credentials": {"httpHeaderAuth": {"id": "7", "name": "Paste key"}}},
            {"name": "Dyn", "type": "n8n-nodes-base.httpRequest", "parameters": {"url": "={{ $json.target }}", "method": "POST"}},
            {"name": "Code", "type": "n8n-nodes-base.code", "parameters": {}}
        ]});
        let w = shape(&wf);
        assert_eq!(
            w.triggers.iter().cloned().collect::<Vec<_>>(),
            vec!["schedule", "webhook"]
        );
        assert!(w.unauthenticated_webhook);
        assert_eq!(
            w.destinations.iter().cloned().collect::<Vec<_>>(),
            vec!["api.internal.acme.com", "paste.example.net"]
        );
        assert_eq!(
            w.credentials.iter().cloned().collect::<Vec<_>>(),
            vec!["httpHeaderAuth:Paste key"]
        );
        assert_eq!(
            w.export_nodes.iter().cloned().collect::<Vec<_>>(),
            vec!["httpRequest"]
        );
        assert_eq!(w.code_nodes, 1);
    }

    #[test]
    fn event_names_map_to_the_vocabulary() {
        assert_eq!(
            action_for("n8n.audit.workflow.activated"),
            "workflow.activated"
        );
        assert_eq!(
            action_for("n8n.audit.user.credentials.created"),
            "credential.created"
        );
        assert_eq!(action_for("n8n.ai.tool.called"), "n8n.ai.tool.called");
        assert_eq!(
            action_for("n8n.audit.user.credentials.userDisconnected"),
            "n8n.audit.user.credentials.user_disconnected"
        );
    }
}
