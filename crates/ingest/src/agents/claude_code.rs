//! Claude Code's `http` hooks: `POST /v1/ingest/claude-code` with the hook's JSON input
//! (`session_id`, `transcript_path`, `cwd`, `permission_mode`, `hook_event_name`, and per
//! event `tool_name` / `tool_input` / `tool_response` / `tool_use_id`, `prompt`, `source`,
//! `reason`, …). The answer is Claude Code's hook output: for `PreToolUse` a
//! `hookSpecificOutput` permission decision ([`render`]), for every other event `{}`.
//!
//! Hook inputs carry no time (the receive time is used, or `X-Plumbline-Delivered-At` when a
//! back-fill or replay says when the hook fired, as for GitHub's hooks) and no user; the
//! person's email may come in an `X-Plumbline-User` header the hook's `headers` set. The system is the
//! working directory. A permission mode that differs from the one this session last sent
//! is an `agent.permission.changed` (remembered per session).

use http::HeaderMap;
use serde_json::{json, Value};

use super::{
    hash_id, hook_input, hook_name, json_text, pending_call, prompt_event, put, response_text,
    tool_event, unknown_hook, AgentsConfig, HookInput, HookReply, Phase, Session, ToolCall,
    Verdict,
};
use crate::adapter::{
    check_shared_token, Adapter, Delivery, IngestError, Mapped, Memory, SourceAuth,
};
use crate::github::DELIVERED_AT;
use crate::map::{parse_time_str, s};
use plumbline_event::Source;

const SRC: Source = Source::ClaudeCode;

/// What every Claude Code hook input carries (not repeated under `detail.*`).
const COMMON: &[&str] = &[
    "session_id",
    "cwd",
    "permission_mode",
    "hook_event_name",
    "transcript_path",
];

/// Claude Code hooks posted by `"type": "http"` hook handlers.
pub struct ClaudeCodeAdapter {
    config: AgentsConfig,
}

impl ClaudeCodeAdapter {
    pub fn new(config: AgentsConfig) -> Self {
        ClaudeCodeAdapter { config }
    }
}

impl Adapter for ClaudeCodeAdapter {
    fn source(&self) -> Source {
        SRC
    }

    fn verify(&self, headers: &HeaderMap, _body: &[u8]) -> SourceAuth {
        check_shared_token(&self.config.hook_token, headers, "claude-code hook")
    }

    fn map(&self, d: &Delivery<'_>, memory: &dyn Memory) -> Result<Mapped, IngestError> {
        let HookInput {
            body,
            hook,
            session: session_id,
        } = hook_input(d.body, "Claude Code", "session_id")?;
        let session = Session {
            source: Some(SRC),
            agent: "Claude Code".into(),
            id: session_id,
            user: d
                .header("x-plumbline-user")
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(String::from),
            cwd: Some(s(&body, "cwd")).filter(|c| !c.is_empty()),
            repository: None,
        };
        let mode = s(&body, "permission_mode");
        let mut out = Mapped::default();
        let time = d
            .header(DELIVERED_AT)
            .and_then(parse_time_str)
            .unwrap_or(d.received);
        let tool_use_id = Some(s(&body, "tool_use_id")).filter(|t| !t.is_empty());
        // Events without a call id of their own: a hash of the hook input.
        let base = hash_id(&body);
        let call = |phase: Phase, success: Option<bool>, output: Option<String>| ToolCall {
            name: s(&body, "tool_name"),
            call_id: tool_use_id.clone(),
            phase,
            input: json_text(body.get("tool_input")),
            success,
            duration_ms: None,
            output,
        };
        let id = |phase: &str| match &tool_use_id {
            Some(t) => session.id(&format!("{t}:{phase}")),
            None => session.id(&format!("{base}:{phase}")),
        };
        let mut e = match hook.as_str() {
            "PreToolUse" => tool_event(
                &session,
                id("requested"),
                time,
                &call(Phase::Requested, None, None),
                &hook,
            ),
            "PostToolUse" => {
                let output = body.get("tool_response").and_then(response_text);
                tool_event(
                    &session,
                    id("completed"),
                    time,
                    &call(Phase::Completed, Some(true), output),
                    &hook,
                )
            }
            "PostToolUseFailure" => {
                let output = Some(s(&body, "error")).filter(|x| !x.is_empty());
                tool_event(
                    &session,
                    id("completed"),
                    time,
                    &call(Phase::Completed, Some(false), output),
                    &hook,
                )
            }
            "UserPromptSubmit" => prompt_event(
                &session,
                session.id(&base),
                time,
                &hook,
                &s(&body, "prompt"),
            ),
            "SessionStart" => {
                let mut e = session.event(session.id(&base), time, "agent.session.started", &hook);
                put(&mut e, "agent.model", s(&body, "model"));
                put(&mut e, "session.start_source", s(&body, "source"));
                e
            }
            "SessionEnd" => {
                let mut e = session.event(session.id(&base), time, "agent.session.ended", &hook);
                put(&mut e, "session.end_reason", s(&body, "reason"));
                e
            }
            other => {
                let mut e = unknown_hook(&session, session.id(&base), time, other, &body, COMMON);
                put(&mut e, "tool.name", s(&body, "tool_name"));
                e
            }
        };
        put(&mut e, "agent.permission_mode", mode.as_str());
        put(&mut e, "agent.transcript_path", s(&body, "transcript_path"));
        let event_id = e.id.clone();
        out.push(0, e);
        if !mode.is_empty() {
            let before = out.recall(memory, SRC, "permission_mode", &session.id);
            let before = before.as_ref().and_then(Value::as_str).map(str::to_string);
            if before.as_deref().is_some_and(|b| b != mode) {
                let mut c = session.event(
                    format!("{event_id}:permission"),
                    time,
                    "agent.permission.changed",
                    &hook,
                );
                put(&mut c, "agent.permission_mode", mode.as_str());
                put(&mut c, "previous", before.clone());
                out.push(0, c);
            }
            if before.as_deref() != Some(mode.as_str()) {
                out.remember(
                    SRC,
                    "permission_mode",
                    &session.id,
                    Some(Value::from(mode.as_str())),
                );
            }
        }
        Ok(out)
    }

    /// Claude Code reads a hook's answer on any 2xx.
    fn success(&self) -> http::StatusCode {
        http::StatusCode::OK
    }

    fn hook_reply(&self, d: &Delivery<'_>, mapped: &Mapped) -> Option<HookReply> {
        let hook = hook_name(d.body)?;
        let pending = (hook == "PreToolUse")
            .then(|| pending_call(&mapped.events))
            .flatten();
        Some(HookReply::new(&hook, pending, render))
    }
}

/// A verdict as Claude Code's `PreToolUse` hook output (`permissionDecision` allow / ask /
/// deny with its reason, shown to the person for allow and ask, to Claude for deny).
pub fn render(hook_event: &str, verdict: &Verdict) -> Value {
    let (decision, reason) = match verdict {
        Verdict::Allow => ("allow", None),
        Verdict::Ask(r) => ("ask", Some(r)),
        Verdict::Deny(r) => ("deny", Some(r)),
    };
    let mut out = json!({"hookEventName": hook_event, "permissionDecision": decision});
    if let Some(r) = reason {
        out["permissionDecisionReason"] = Value::from(r.as_str());
    }
    json!({ "hookSpecificOutput": out })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_render_as_claude_code_hook_output() {
        assert_eq!(
            render("PreToolUse", &Verdict::Allow),
            json!({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow"}})
        );
        assert_eq!(
            render(
                "PreToolUse",
                &Verdict::Deny("reads .env then posts it".into())
            )["hookSpecificOutput"],
            json!({"hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": "reads .env then posts it"})
        );
        assert_eq!(
            render("PreToolUse", &Verdict::Ask("new host".into()))["hookSpecificOutput"]
                ["permissionDecision"],
            "ask"
        );
    }
}
