//! Cursor's agent hooks: `POST /v1/ingest/cursor` with a hook's JSON input as Cursor writes
//! it to the hook command's stdin (a relay such as `curl --data-binary @-` posts it, and
//! prints the answer for Cursor to read). Common fields: `conversation_id` (the session),
//! `generation_id`, `hook_event_name`, `workspace_roots`, `model`, `user_email`.
//!
//! `beforeShellExecution` (`command`, `cwd`), `beforeMCPExecution` (`tool_name`,
//! `tool_input`, server `url` or `command`) and `beforeReadFile` (`file_path`) are pending
//! calls, answered with Cursor's `{"permission", "user_message", "agent_message"}`
//! ([`render`]); their `after…` counterparts, `afterFileEdit` (`file_path`, `edits`),
//! `beforeSubmitPrompt` (`prompt`), the generic `preToolUse` / `postToolUse` and the session
//! events are stored and answered `{}`.
//!
//! Hook inputs carry no time: the receive time is used, or `X-Plumbline-Delivered-At` when
//! a back-fill or replay says when the hook fired.

use http::HeaderMap;
use serde_json::{json, Value};

use super::{
    hash_id, hook_input, hook_name, json_text, pending_call, prompt_event, put, tool_event,
    unknown_hook, AgentsConfig, HookInput, HookReply, Phase, Session, ToolCall, Verdict,
};
use crate::adapter::{
    check_shared_token, Adapter, Delivery, IngestError, Mapped, Memory, SourceAuth,
};
use crate::github::DELIVERED_AT;
use crate::map::{parse_time_str, s, strings, url_host};
use plumbline_event::Source;

const SRC: Source = Source::Cursor;

/// What every Cursor hook input carries (not repeated under `detail.*`).
const COMMON: &[&str] = &[
    "conversation_id",
    "generation_id",
    "hook_event_name",
    "workspace_roots",
    "user_email",
    "model",
    "cursor_version",
];

/// The hook events whose answer decides whether the call runs.
const PENDING: &[&str] = &[
    "beforeShellExecution",
    "beforeMCPExecution",
    "beforeReadFile",
    "preToolUse",
];

pub struct CursorAdapter {
    config: AgentsConfig,
}

impl CursorAdapter {
    pub fn new(config: AgentsConfig) -> Self {
        CursorAdapter { config }
    }
}

impl Adapter for CursorAdapter {
    fn source(&self) -> Source {
        SRC
    }

    fn verify(&self, headers: &HeaderMap, _body: &[u8]) -> SourceAuth {
        check_shared_token(&self.config.hook_token, headers, "cursor hook")
    }

    fn map(&self, d: &Delivery<'_>, _memory: &dyn Memory) -> Result<Mapped, IngestError> {
        let HookInput {
            body,
            hook,
            session: conversation,
        } = hook_input(d.body, "Cursor", "conversation_id")?;
        let cwd = Some(s(&body, "cwd"))
            .filter(|c| !c.is_empty())
            .or_else(|| strings(&body, "workspace_roots").into_iter().next());
        let session = Session {
            source: Some(SRC),
            agent: "Cursor".into(),
            id: conversation,
            user: Some(s(&body, "user_email")).filter(|u| !u.is_empty()),
            cwd,
            repository: None,
        };
        let time = d
            .header(DELIVERED_AT)
            .and_then(parse_time_str)
            .unwrap_or(d.received);
        let call_id = Some(s(&body, "tool_use_id")).filter(|t| !t.is_empty());
        let base = hash_id(&body);
        let id = |phase: &str| match &call_id {
            Some(c) => session.id(&format!("{c}:{phase}")),
            None => session.id(&format!("{base}:{phase}")),
        };
        let duration = body
            .get("duration")
            .and_then(Value::as_f64)
            .map(|d| d as i64);
        let text = |k: &str| Some(s(&body, k)).filter(|x| !x.is_empty());
        let tool = |name: &str, phase: Phase, input: Value, output: Option<String>| ToolCall {
            name: name.to_string(),
            call_id: call_id.clone(),
            phase,
            input,
            success: None,
            duration_ms: if phase == Phase::Completed {
                duration
            } else {
                None
            },
            output,
        };
        let shell_input = json!({"command": s(&body, "command"), "cwd": s(&body, "cwd")});
        let mcp = |phase: Phase, output: Option<String>| {
            let name = s(&body, "tool_name");
            let mut input = json_text(body.get("tool_input"));
            if input.is_null() {
                input = json!({});
            }
            // Cursor names the server by its URL or its launch command, not by a name.
            let server = text("url").or_else(|| text("command")).unwrap_or_default();
            let server_name = text("url")
                .as_deref()
                .and_then(url_host)
                .unwrap_or(server.clone());
            input["mcp_server_name"] = Value::from(server_name);
            input["mcp_tool_name"] = Value::from(name.as_str());
            if let Some(url) = text("url") {
                input["mcp_server_url"] = Value::from(url);
            }
            let mut e = tool_event(
                &session,
                id(phase.as_str()),
                time,
                &tool(&name, phase, input, output),
                &hook,
            );
            put(&mut e, "mcp.command", text("command"));
            e
        };
        let mut e = match hook.as_str() {
            "beforeShellExecution" => tool_event(
                &session,
                id("requested"),
                time,
                &tool("Shell", Phase::Requested, shell_input, None),
                &hook,
            ),
            "afterShellExecution" => tool_event(
                &session,
                id("completed"),
                time,
                &tool("Shell", Phase::Completed, shell_input, text("output")),
                &hook,
            ),
            "beforeMCPExecution" => mcp(Phase::Requested, None),
            "afterMCPExecution" => mcp(Phase::Completed, text("result_json")),
            "beforeReadFile" => {
                let input = json!({"file_path": s(&body, "file_path")});
                tool_event(
                    &session,
                    id("requested"),
                    time,
                    &tool("Read", Phase::Requested, input, None),
                    &hook,
                )
            }
            "afterFileEdit" => {
                let input = json!({"file_path": s(&body, "file_path"), "edits": body.get("edits").cloned().unwrap_or(Value::Null)});
                tool_event(
                    &session,
                    id("completed"),
                    time,
                    &tool("Write", Phase::Completed, input, None),
                    &hook,
                )
            }
            "preToolUse" | "postToolUse" | "postToolUseFailure" => {
                let phase = if hook == "preToolUse" {
                    Phase::Requested
                } else {
                    Phase::Completed
                };
                let output = text("tool_output").or_else(|| {
                    body.get("tool_output")
                        .filter(|v| !v.is_null())
                        .map(Value::to_string)
                });
                let mut c = tool(
                    &s(&body, "tool_name"),
                    phase,
                    json_text(body.get("tool_input")),
                    output,
                );
                if phase == Phase::Completed {
                    c.success = Some(hook == "postToolUse");
                }
                tool_event(&session, id(phase.as_str()), time, &c, &hook)
            }
            "beforeSubmitPrompt" => prompt_event(
                &session,
                session.id(&base),
                time,
                &hook,
                &s(&body, "prompt"),
            ),
            "sessionStart" => {
                session.event(session.id(&base), time, "agent.session.started", &hook)
            }
            "sessionEnd" => {
                let mut e = session.event(session.id(&base), time, "agent.session.ended", &hook);
                put(&mut e, "session.end_reason", text("reason"));
                e
            }
            other => unknown_hook(&session, session.id(&base), time, other, &body, COMMON),
        };
        if e.action == "agent.session.started" {
            put(&mut e, "agent.model", text("model"));
        }
        put(&mut e, "generation_id", text("generation_id"));
        let mut out = Mapped::default();
        out.push(0, e);
        Ok(out)
    }

    fn success(&self) -> http::StatusCode {
        http::StatusCode::OK
    }

    fn hook_reply(&self, d: &Delivery<'_>, mapped: &Mapped) -> Option<HookReply> {
        let hook = hook_name(d.body)?;
        let pending = PENDING
            .contains(&hook.as_str())
            .then(|| pending_call(&mapped.events))
            .flatten();
        Some(HookReply::new(&hook, pending, render))
    }
}

/// A verdict as Cursor's permission output. `beforeReadFile` knows only allow and deny,
/// so asking there denies (nobody can be asked before a read).
pub fn render(hook_event: &str, verdict: &Verdict) -> Value {
    match verdict {
        Verdict::Allow => json!({"permission": "allow"}),
        Verdict::Ask(r) if hook_event == "beforeReadFile" => {
            json!({"permission": "deny", "user_message": r, "agent_message": r})
        }
        Verdict::Ask(r) => json!({"permission": "ask", "user_message": r, "agent_message": r}),
        Verdict::Deny(r) => json!({"permission": "deny", "user_message": r, "agent_message": r}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_render_as_cursor_permissions() {
        assert_eq!(
            render("beforeShellExecution", &Verdict::Allow),
            json!({"permission": "allow"})
        );
        let deny = render("beforeMCPExecution", &Verdict::Deny("unknown host".into()));
        assert_eq!(
            deny,
            json!({"permission": "deny", "user_message": "unknown host", "agent_message": "unknown host"})
        );
        assert_eq!(
            render("beforeShellExecution", &Verdict::Ask("new".into()))["permission"],
            "ask"
        );
        assert_eq!(
            render("beforeReadFile", &Verdict::Ask("secret file".into()))["permission"],
            "deny"
        );
    }
}
