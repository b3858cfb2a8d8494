//! OpenAI organisation audit logs and generic AI-assistant configuration changes:
//! `POST /v1/ingest/openai`.
//!
//! Audit logs come as the Admin API returns them (`GET /v1/organization/audit_logs` →
//! `{"object": "list", "data": [...]}`), as a bare array, or one entry; ids are
//! `openai:<audit log id>`. Any tool that changes an AI assistant (OpenAI Assistants, a
//! custom GPT, an internal agent platform) can post an `assistant.config` object in the
//! same body; see docs/sources.md for its fields. `[openai] token` authenticates both.

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::adapter::{
    check_shared_token, Adapter, Delivery, IngestError, Mapped, Memory, SourceAuth,
};
use super::map::{
    actor, at, content_id, event, items, json_body, keep_payload, parse_time, s, segment, set,
    strings, track_scope, unknown_action, url_host,
};
use plumbline_event::{Actor, ActorType, Event, Source};

const SRC: Source = Source::Openai;

/// Longest prompt text kept (after redaction); the hash covers the whole prompt.
const PROMPT_KEEP: usize = 4000;

/// `[openai]`: the shared token for audit-log shippers and `assistant.config` posters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenaiConfig {
    pub token: String,
}

/// OpenAI audit-log pages and `assistant.config` objects.
pub struct OpenaiAdapter {
    config: OpenaiConfig,
}

impl OpenaiAdapter {
    pub fn new(config: OpenaiConfig) -> Self {
        OpenaiAdapter { config }
    }
}

impl Adapter for OpenaiAdapter {
    fn source(&self) -> Source {
        SRC
    }

    fn verify(&self, headers: &HeaderMap, _body: &[u8]) -> SourceAuth {
        check_shared_token(&self.config.token, headers, "openai")
    }

    fn map(&self, d: &Delivery<'_>, memory: &dyn Memory) -> Result<Mapped, IngestError> {
        let payload = json_body(d.body)?;
        if payload.is_object() && at(&payload, "data").is_none() && s(&payload, "type").is_empty() {
            return Err(IngestError::malformed(
                "type",
                "expected an audit log list ({\"object\": \"list\", \"data\": [...]}), an array, or one entry with `type`",
            ));
        }
        if !payload.is_object() && !payload.is_array() {
            return Err(IngestError::malformed(
                "(body)",
                "expected a JSON object or array",
            ));
        }
        let mut out = Mapped::default();
        for (i, item) in items(&payload, &["data"]).into_iter().enumerate() {
            if s(item, "type") == "assistant.config" {
                assistant_config(item, i, d.received, &mut out);
            } else {
                audit_log(item, i, memory, &mut out);
            }
        }
        Ok(out)
    }
}

fn audit_actor(v: &Value) -> Actor {
    match s(v, "actor.type").as_str() {
        "api_key" => {
            if s(v, "actor.api_key.type") == "service_account" {
                let sa = s(v, "actor.api_key.service_account.id");
                actor(&format!("openai-sa:{sa}"), ActorType::Service, &sa)
            } else {
                let email = s(v, "actor.api_key.user.email");
                let id = if email.is_empty() {
                    s(v, "actor.api_key.user.id")
                } else {
                    email
                };
                actor(&id, ActorType::Human, &id)
            }
        }
        _ => {
            let email = s(v, "actor.session.user.email");
            let id = if email.is_empty() {
                s(v, "actor.session.user.id")
            } else {
                email
            };
            actor(&id, ActorType::Human, &id)
        }
    }
}

fn audit_action(kind: &str, detail: &Value) -> String {
    let a = match kind {
        "api_key.created" => "api_key.created",
        "api_key.updated" => "api_key.updated",
        "api_key.deleted" => "api_key.deleted",
        "user.added" => "member.added",
        "user.deleted" => "member.removed",
        "user.updated" if s(detail, "changes_requested.role") == "owner" => "admin.role.granted",
        "user.updated" => "member.permission.changed",
        "invite.sent" => "member.invited",
        "invite.accepted" => "invite.accepted",
        "invite.deleted" => "invite.deleted",
        "login.succeeded" => "auth.login",
        "login.failed" => "auth.login.failed",
        "logout.succeeded" | "logout.failed" => "auth.logout",
        "service_account.created" => "service_account.created",
        "service_account.updated" => "service_account.updated",
        "service_account.deleted" => "service_account.deleted",
        "project.created" => "project.created",
        "project.updated" => "project.updated",
        "project.archived" => "project.archived",
        "project.deleted" => "project.deleted",
        "organization.updated" => "org.updated",
        "rate_limit.updated" => "rate_limit.updated",
        "rate_limit.deleted" => "rate_limit.deleted",
        "role.assignment.created" => "role.assigned",
        "role.assignment.deleted" => "role.unassigned",
        "checkpoint.permission.created" => "model.checkpoint.shared",
        "checkpoint.permission.deleted" => "model.checkpoint.unshared",
        "ip_allowlist.config.deactivated" => "network.allowlist.disabled",
        "ip_allowlist.config.activated" => "network.allowlist.enabled",
        other => return unknown_action(SRC, other),
    };
    a.to_string()
}

fn audit_log(v: &Value, index: usize, memory: &dyn Memory, out: &mut Mapped) {
    let id = s(v, "id");
    if id.is_empty() {
        out.reject(index, "id", "an audit log entry carries its id");
        return;
    }
    let kind = s(v, "type");
    if kind.is_empty() {
        out.reject(index, "type", "an audit log entry names its type");
        return;
    }
    let Some(time) = at(v, "effective_at").and_then(parse_time) else {
        out.reject(index, "effective_at", "missing or not a unix time");
        return;
    };
    // The type-specific detail lives under a key named like the type itself.
    let detail = v.get(kind.as_str()).cloned().unwrap_or(Value::Null);
    let action = audit_action(&kind, &detail);
    let project = s(v, "project.id");
    let system = if project.is_empty() {
        "openai".to_string()
    } else {
        format!("openai/{project}")
    };
    let mut e = event(
        SRC,
        format!("openai:{id}"),
        time,
        audit_actor(v),
        &system,
        &action,
    );
    e.resource = [
        s(&detail, "id"),
        s(&detail, "data.email"),
        s(&detail, "principal_id"),
    ]
    .into_iter()
    .find(|x| !x.is_empty())
    .unwrap_or_else(|| kind.clone());
    set(&mut e, "source_event", kind.clone());
    set(&mut e, "project.id", project);
    set(&mut e, "project.name", s(v, "project.name"));
    set(&mut e, "ip", s(v, "actor.session.ip_address"));
    set(&mut e, "auth.api_key_id", s(v, "actor.api_key.id"));
    set(&mut e, "auth.kind", s(v, "actor.type"));
    let role = [
        s(&detail, "data.role"),
        s(&detail, "changes_requested.role"),
    ]
    .into_iter()
    .find(|x| !x.is_empty())
    .unwrap_or_default();
    set(&mut e, "role", role);
    set(&mut e, "error.code", s(&detail, "error_code"));
    set(&mut e, "error.message", s(&detail, "error_message"));
    let mut derived = None;
    if kind.starts_with("api_key.") {
        let key = s(&detail, "id");
        let scopes = at(&detail, "data.scopes")
            .or_else(|| at(&detail, "changes_requested.scopes"))
            .cloned();
        if let Some(scopes) = scopes {
            derived = track_scope(&mut e, &scopes, &key, memory, out);
        }
    }
    if kind == "checkpoint.permission.created" {
        let to = s(&detail, "data.project_id");
        set(
            &mut e,
            "checkpoint",
            s(&detail, "data.fine_tuned_model_checkpoint"),
        );
        if !to.is_empty() {
            e.destination = Some(format!("openai/{to}"));
        }
    }
    if !detail.is_null() && e.action.starts_with("openai.") {
        keep_payload(&mut e, "detail", &detail, 64);
    }
    out.push(index, e);
    if let Some(d) = derived {
        out.push(index, d);
    }
}

fn actor_type(name: &str) -> Option<ActorType> {
    match name {
        "human" => Some(ActorType::Human),
        "service" => Some(ActorType::Service),
        "ai-agent" | "ai_agent" | "agent" => Some(ActorType::AiAgent),
        _ => None,
    }
}

/// The generic `assistant.config` event: who changed which assistant, and how.
fn assistant_config(v: &Value, index: usize, received: OffsetDateTime, out: &mut Mapped) {
    let change = s(v, "change");
    if change.is_empty() {
        out.reject(
            index,
            "change",
            "required: prompt.updated, tool.granted, retrieval.added, deployed, ...",
        );
        return;
    }
    let assistant_id = match s(v, "assistant.id") {
        x if x.is_empty() => s(v, "assistant.name"),
        x => x,
    };
    if assistant_id.is_empty() {
        out.reject(index, "assistant.id", "required: which assistant changed");
        return;
    }
    let actor_id = s(v, "actor.id");
    if actor_id.is_empty() {
        out.reject(index, "actor.id", "required: who made the change");
        return;
    }
    let kind = match s(v, "actor.type") {
        t if t.is_empty() => ActorType::Human,
        t => match actor_type(&t) {
            Some(k) => k,
            None => {
                out.reject(
                    index,
                    "actor.type",
                    format!("`{t}` is not human, service or ai-agent"),
                );
                return;
            }
        },
    };
    let time = match at(v, "time") {
        None => received,
        Some(t) => match parse_time(t) {
            Some(t) => t,
            None => {
                out.reject(index, "time", "not an RFC 3339 or unix time");
                return;
            }
        },
    };
    let id = match s(v, "id") {
        x if x.is_empty() => content_id(&serde_json::to_vec(v).unwrap_or_default()),
        x => x,
    };
    let action = format!(
        "assistant.{}",
        change
            .split('.')
            .map(segment)
            .filter(|x| !x.is_empty())
            .collect::<Vec<_>>()
            .join(".")
    );
    let mut e = event(
        SRC,
        format!("assistant:{id}"),
        time,
        actor(&actor_id, kind, &s(v, "actor.display")),
        &format!("assistant/{assistant_id}"),
        &action,
    );
    // No stated environment: the assistant's own name often says it ("support-bot-prod").
    e.environment = match s(v, "environment") {
        env if env.is_empty() => {
            super::map::guess_environment([s(v, "assistant.name").as_str(), assistant_id.as_str()])
        }
        env => super::map::environment_named(&env),
    };
    set(&mut e, "source_event", "assistant.config");
    set(&mut e, "assistant.id", assistant_id.clone());
    set(&mut e, "assistant.name", s(v, "assistant.name"));
    set(&mut e, "assistant.platform", s(v, "assistant.platform"));
    set(&mut e, "change", change.clone());
    set(
        &mut e,
        "reviewed",
        at(v, "reviewed").and_then(Value::as_bool).unwrap_or(false),
    );
    set(&mut e, "reviewer", s(v, "reviewer"));
    set(&mut e, "ticket", s(v, "ticket"));
    set(&mut e, "model", s(v, "model"));
    e.resource = assistant_id;
    prompt(&mut e, v);
    if let Some(tool) = at(v, "tool") {
        let name = if tool.is_string() {
            s(v, "tool")
        } else {
            s(tool, "name")
        };
        e.resource = format!("tool/{name}");
        set(&mut e, "tool", name);
        set(
            &mut e,
            "tool.permissions",
            strings(tool, "permissions").join(","),
        );
        set(&mut e, "tool.scope", s(tool, "scope"));
        if let Some(h) = url_host(&s(tool, "url")) {
            e.destination = Some(h.clone());
            set(&mut e, "tool.host", h);
        }
    }
    if let Some(r) = at(v, "retrieval") {
        let source = if r.is_string() {
            s(v, "retrieval")
        } else {
            s(r, "source")
        };
        e.resource = source.clone();
        set(&mut e, "retrieval.source", source.clone());
        set(&mut e, "retrieval.kind", s(r, "kind"));
        set(
            &mut e,
            "retrieval.host",
            url_host(&source).unwrap_or_default(),
        );
    }
    out.push(index, e);
}

/// The prompt is kept redacted and bounded, with a hash of the whole text so changes can
/// be compared without keeping every version.
fn prompt(e: &mut Event, v: &Value) {
    // `instructions` is what OpenAI's Assistants API and custom GPTs call the system prompt.
    let Some(text) = ["prompt.text", "prompt", "instructions", "system_prompt"]
        .iter()
        .map(|k| s(v, k))
        .find(|t| !t.is_empty())
    else {
        return;
    };
    set(e, "prompt.sha256", content_id(text.as_bytes()));
    set(e, "prompt.length", text.chars().count() as u64);
    let kept: String = text.chars().take(PROMPT_KEEP).collect();
    set(e, "prompt.truncated", kept.len() < text.len());
    set(e, "prompt.text", kept);
    let previous = match s(v, "prompt.previous_text") {
        p if p.is_empty() => s(v, "previous_instructions"),
        p => p,
    };
    if !previous.is_empty() {
        set(e, "prompt.previous_sha256", content_id(previous.as_bytes()));
        set(e, "prompt.previous_length", previous.chars().count() as u64);
        // Kept so a detector can tell what the edit newly says.
        let kept: String = previous.chars().take(PROMPT_KEEP).collect();
        set(e, "prompt.previous_text", kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn owner_role_is_an_admin_grant() {
        assert_eq!(
            audit_action(
                "user.updated",
                &json!({"changes_requested": {"role": "owner"}})
            ),
            "admin.role.granted"
        );
        assert_eq!(
            audit_action("user.updated", &json!({})),
            "member.permission.changed"
        );
        assert_eq!(
            audit_action("tenant.scim.disabled", &json!({})),
            "openai.tenant.scim.disabled"
        );
    }
}
