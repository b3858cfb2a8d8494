//! AI coding agents: Claude Code, Codex CLI, Cursor and any agent speaking the
//! OpenTelemetry GenAI conventions. Three wire formats share one vocabulary
//! (docs/actions.md, "Coding agents"):
//!
//! - [`otlp`]: OTLP/HTTP logs and traces (`/v1/logs`, `/v1/traces`, served by the API),
//!   JSON or protobuf — Claude Code's and Codex's log events, `execute_tool` spans;
//! - [`claude_code`]: Claude Code's `http` hooks (`/v1/ingest/claude-code`);
//! - [`cursor`]: Cursor's hooks (`/v1/ingest/cursor`, posted by a relay command).
//!
//! Whatever the format, the session is the actor (`<source>:<session id>`, type
//! `ai-agent`), so an actor trajectory is one session; every tool call becomes an
//! `agent.tool.*` event built by [`tool_event`] from a [`ToolCall`].
//!
//! Pre-tool hooks wait for an answer. [`Verdict`] is what the answer decides and
//! [`HookReply`] renders it in the agent's own format; which mapped event is the pending
//! call is part of the reply, so an evaluator can judge it against the session before the
//! API answers. Until one is wired in, the API answers [`Verdict::Allow`].

pub mod claude_code;
pub mod cursor;
pub mod otlp;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::adapter::IngestError;
use super::map::{event, json_body, keep_payload, s, segment, url_host};
use plumbline_event::{Actor, ActorType, Attributes, Event, Source};

/// `[agents]`: the credentials of the coding-agent endpoints. Empty = the API-token rules
/// apply (an `ingest`-scoped token as `Authorization: Bearer …`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsConfig {
    /// Token of the OTLP receiver (`/v1/logs`, `/v1/traces`), as the exporter's
    /// `Authorization: Bearer <token>` header.
    pub otlp_token: String,
    /// Token of the hook endpoints (`/v1/ingest/claude-code`, `/v1/ingest/cursor`).
    pub hook_token: String,
}

/// What a pre-tool hook's answer decides about the pending call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let the call run.
    Allow,
    /// Ask the person at the keyboard; the text says why.
    Ask(String),
    /// Refuse the call; the text says why (the agent and the person see it).
    Deny(String),
}

/// How a hook endpoint answers one delivery: the hook event as the agent named it, the
/// mapped event that is the call awaiting a verdict (index into [`crate::Mapped::events`];
/// `None` for hooks that decide nothing), and the agent's answer format.
#[derive(Debug, Clone)]
pub struct HookReply {
    pub hook_event: String,
    pub pending: Option<usize>,
    render: fn(&str, &Verdict) -> Value,
}

impl HookReply {
    pub fn new(
        hook_event: &str,
        pending: Option<usize>,
        render: fn(&str, &Verdict) -> Value,
    ) -> Self {
        HookReply {
            hook_event: hook_event.to_string(),
            pending,
            render,
        }
    }

    /// The answer body: `verdict` in the agent's format for a pre-tool hook, `{}` for a
    /// hook that decides nothing.
    pub fn answer(&self, verdict: &Verdict) -> Value {
        if self.pending.is_none() {
            return json!({});
        }
        (self.render)(&self.hook_event, verdict)
    }
}

/// The index of the mapped event awaiting a verdict: the one tool call in `requested` phase.
pub fn pending_call(events: &[Event]) -> Option<usize> {
    events
        .iter()
        .position(|e| e.attr_str("tool.phase") == Some("requested"))
}

/// Text attributes (commands, file content, tool output) are cut to this many bytes.
pub const TEXT_LIMIT: usize = 4096;

/// `s` cut to [`TEXT_LIMIT`] bytes at a character boundary.
pub fn truncate(s: &str) -> String {
    if s.len() <= TEXT_LIMIT {
        return s.to_string();
    }
    let mut end = TEXT_LIMIT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Hex sha256 of a JSON value (keys in order), cut to 32 characters: the id part of
/// records and hook bodies that carry no id of their own.
pub fn hash_id(v: &Value) -> String {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..16])
}

/// One coding-agent session: who (the agent on behalf of a person) and where.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub source: Option<Source>,
    /// How the agent is shown: `Claude Code`, `Codex`, `Cursor`, or a GenAI agent's name.
    pub agent: String,
    pub id: String,
    /// The person's email, when the agent says it.
    pub user: Option<String>,
    pub cwd: Option<String>,
    /// The repository, when the telemetry names it.
    pub repository: Option<String>,
}

impl Session {
    /// An event of this session: the session as actor, the repository (else the working
    /// directory, else `<source>:<user>`) as system, and the `agent.*` attributes.
    pub fn event(
        &self,
        id: String,
        time: OffsetDateTime,
        action: &str,
        source_event: &str,
    ) -> Event {
        let source = self.source.unwrap_or(Source::Otel);
        let display = match &self.user {
            Some(u) => format!("{} for {u}", self.agent),
            None => self.agent.clone(),
        };
        let system = self
            .repository
            .clone()
            .or_else(|| self.cwd.clone())
            .unwrap_or_else(|| format!("{source}:{}", self.user.as_deref().unwrap_or("unknown")));
        let actor = Actor {
            id: format!("{source}:{}", self.id),
            kind: ActorType::AiAgent,
            display,
        };
        let mut e = event(source, id, time, actor, &system, action);
        put(&mut e, "agent.name", source.as_str());
        put(&mut e, "agent.session", self.id.as_str());
        put(&mut e, "agent.user", self.user.clone());
        put(&mut e, "agent.cwd", self.cwd.clone());
        put(&mut e, "source_event", source_event);
        e
    }

    /// `<source>:<session>:<rest>`: an event id scoped to this session.
    pub fn id(&self, rest: &str) -> String {
        format!("{}:{}:{rest}", self.source.unwrap_or(Source::Otel), self.id)
    }
}

/// The repository named by telemetry attributes: `vcs.repository.name`, else the path of
/// `vcs.repository.url.full` (`https://github.com/acme/app.git` → `acme/app`), else
/// `repository`.
pub fn repository(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(name) = get("vcs.repository.name") {
        return Some(name);
    }
    if let Some(url) = get("vcs.repository.url.full") {
        let path = url
            .split_once("://")
            .map(|(_, r)| r.split_once('/').map(|(_, p)| p).unwrap_or(""))
            .unwrap_or(url.as_str());
        let path = path.trim_matches('/').trim_end_matches(".git");
        return Some(if path.is_empty() {
            url.clone()
        } else {
            path.to_string()
        });
    }
    get("repository")
}

/// Sets an attribute unless the value is absent, null or an empty string.
pub fn put(e: &mut Event, key: &str, value: impl AttrValue) {
    put_value(&mut e.attributes, key, value.attr());
}

/// What [`put`] takes: JSON values, text, and either as an option.
pub trait AttrValue {
    fn attr(self) -> Option<Value>;
}

impl AttrValue for Value {
    fn attr(self) -> Option<Value> {
        Some(self)
    }
}

impl AttrValue for Option<Value> {
    fn attr(self) -> Option<Value> {
        self
    }
}

impl AttrValue for &str {
    fn attr(self) -> Option<Value> {
        Some(Value::from(self))
    }
}

impl AttrValue for String {
    fn attr(self) -> Option<Value> {
        Some(Value::from(self))
    }
}

impl AttrValue for Option<String> {
    fn attr(self) -> Option<Value> {
        self.map(Value::from)
    }
}

impl AttrValue for Option<&str> {
    fn attr(self) -> Option<Value> {
        self.map(Value::from)
    }
}

fn put_value(attrs: &mut Attributes, key: &str, value: Option<Value>) {
    match value {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(v) => {
            attrs.insert(key.to_string(), v);
        }
    }
}

/// Whether a tool call is about to run (a pre-tool hook) or has run (a result).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Requested,
    Completed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Requested => "requested",
            Phase::Completed => "completed",
        }
    }
}

/// One tool call as any agent reports it; `input` holds the tool's arguments under the
/// agent's own names (`command`, `cmd`, `file_path`, `url`, `old_string`, …).
#[derive(Debug, Clone)]
pub struct ToolCall {
    pub name: String,
    pub call_id: Option<String>,
    pub phase: Phase,
    pub input: Value,
    pub success: Option<bool>,
    pub duration_ms: Option<i64>,
    pub output: Option<String>,
}

/// What kind of tool a call is, read from its name and arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolKind {
    Shell,
    FileRead,
    FileWrite,
    WebFetch,
    WebSearch,
    Mcp { server: String, tool: String },
    Other,
}

impl ToolKind {
    pub fn action(&self) -> &'static str {
        match self {
            ToolKind::Shell => "agent.tool.shell",
            ToolKind::FileRead => "agent.tool.file.read",
            ToolKind::FileWrite => "agent.tool.file.write",
            ToolKind::WebFetch => "agent.tool.web.fetch",
            ToolKind::WebSearch => "agent.tool.web.search",
            ToolKind::Mcp { .. } => "agent.tool.mcp",
            ToolKind::Other => "agent.tool.other",
        }
    }
}

/// Claude Code (`Bash`, `Read`, `mcp__server__tool`), Codex (`shell`, `shell_command` —
/// the string-command tool of models whose shell type it is —, `exec_command`,
/// `apply_patch`, `server__tool` for MCP), Cursor's generic tool hooks (`Shell`, `Read`,
/// `Write`, `StrReplace`, `Delete`, `MCP:<tool>`) and Gemini / generic names.
pub fn classify(name: &str, input: &Value) -> ToolKind {
    if let Some(rest) = name.strip_prefix("mcp__") {
        let (server, tool) = rest.split_once("__").unwrap_or((rest, ""));
        return ToolKind::Mcp {
            server: server.to_string(),
            tool: tool.to_string(),
        };
    }
    // Claude Code's tool_parameters name an MCP call's server and tool.
    if let Some(server) = input.get("mcp_server_name").and_then(Value::as_str) {
        let tool = input
            .get("mcp_tool_name")
            .and_then(Value::as_str)
            .unwrap_or(name);
        return ToolKind::Mcp {
            server: server.to_string(),
            tool: tool.to_string(),
        };
    }
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "bash" | "shell" | "shell_command" | "local_shell" | "exec_command" | "container.exec"
        | "unified_exec" | "run_shell_command" | "run_terminal_cmd" | "terminal" | "powershell" => {
            ToolKind::Shell
        }
        "read" | "notebookread" | "read_file" | "view_image" | "grep" | "glob" | "ls"
        | "list_dir" | "list_directory" | "read_many_files" | "view" => ToolKind::FileRead,
        "write" | "edit" | "multiedit" | "notebookedit" | "apply_patch" | "write_file"
        | "edit_file" | "replace" | "str_replace" | "strreplace" | "delete_file" | "delete"
        | "search_replace" => ToolKind::FileWrite,
        "webfetch" | "web_fetch" | "fetch" => ToolKind::WebFetch,
        "websearch" | "web_search" | "google_web_search" => ToolKind::WebSearch,
        _ => match lower.strip_prefix("mcp:") {
            Some(tool) => ToolKind::Mcp {
                server: String::new(),
                tool: tool.to_string(),
            },
            None => ToolKind::Other,
        },
    }
}

fn text_at(input: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match input.get(*k)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// The command line of a shell call: `command` (a string, or an argv such as Codex's
/// `["bash", "-lc", "…"]`), `cmd`, or Claude Code's `full_command` / `bash_command`.
pub fn command_of(input: &Value) -> Option<String> {
    if let Some(Value::Array(argv)) = input.get("command") {
        let words: Vec<&str> = argv.iter().filter_map(Value::as_str).collect();
        if let [shell, flag, script] = words.as_slice() {
            let is_shell =
                ["bash", "sh", "zsh", "/bin/bash", "/bin/sh", "/bin/zsh"].contains(shell);
            if is_shell && flag.starts_with('-') && flag.ends_with('c') {
                return Some(script.to_string());
            }
        }
        let quoted: Vec<String> = words
            .iter()
            .map(|w| {
                if w.contains(char::is_whitespace) || w.is_empty() {
                    format!("'{}'", w.replace('\'', r"'\''"))
                } else {
                    w.to_string()
                }
            })
            .collect();
        return (!quoted.is_empty()).then(|| quoted.join(" "));
    }
    text_at(input, &["command", "cmd", "full_command", "bash_command"])
}

/// Paths a Codex patch touches (`*** Add File: …`, `*** Update File: …`, `*** Delete File: …`).
fn patch_paths(patch: &str) -> Vec<String> {
    patch
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            ["*** Add File: ", "*** Update File: ", "*** Delete File: "]
                .iter()
                .find_map(|p| l.strip_prefix(p))
                .map(|p| p.trim().to_string())
        })
        .collect()
}

/// The `agent.tool.*` event of one call (docs/actions.md, "Coding agents").
pub fn tool_event(
    session: &Session,
    id: String,
    time: OffsetDateTime,
    call: &ToolCall,
    source_event: &str,
) -> Event {
    let kind = classify(&call.name, &call.input);
    let mut e = session.event(id, time, kind.action(), source_event);
    let input = &call.input;
    put(&mut e, "tool.name", call.name.as_str());
    put(&mut e, "tool.call_id", call.call_id.clone());
    put(&mut e, "tool.phase", call.phase.as_str());
    put(&mut e, "tool.success", call.success.map(Value::from));
    put(
        &mut e,
        "tool.duration_ms",
        call.duration_ms.map(Value::from),
    );
    put(&mut e, "tool.output", call.output.as_deref().map(truncate));
    match &kind {
        ToolKind::Shell => {
            put(
                &mut e,
                "tool.command",
                command_of(input).as_deref().map(truncate),
            );
            put(&mut e, "tool.workdir", text_at(input, &["workdir", "cwd"]));
        }
        ToolKind::FileRead => {
            let path = text_at(
                input,
                &[
                    "file_path",
                    "path",
                    "notebook_path",
                    "target_file",
                    "filePath",
                    "absolute_path",
                ],
            );
            put(&mut e, "file.path", path.clone());
            put(&mut e, "file.pattern", text_at(input, &["pattern", "glob"]));
            e.resource = path.unwrap_or_default();
        }
        ToolKind::FileWrite => {
            let patch = text_at(input, &["input", "patch"]).filter(|p| p.contains("*** "));
            let path = text_at(
                input,
                &[
                    "file_path",
                    "path",
                    "notebook_path",
                    "target_file",
                    "filePath",
                ],
            )
            .or_else(|| {
                patch
                    .as_deref()
                    .and_then(|p| patch_paths(p).into_iter().next())
            });
            let (new, old) = match input.get("edits").and_then(Value::as_array) {
                Some(edits) => {
                    let join = |k: &str| {
                        let parts: Vec<&str> =
                            edits.iter().filter_map(|x| x.get(k)?.as_str()).collect();
                        (!parts.is_empty()).then(|| parts.join("\n"))
                    };
                    (join("new_string"), join("old_string"))
                }
                None => (
                    text_at(
                        input,
                        &[
                            "content",
                            "new_string",
                            "new_source",
                            "contents",
                            "code_edit",
                        ],
                    )
                    .or(patch),
                    text_at(input, &["old_string"]),
                ),
            };
            put(&mut e, "file.path", path.clone());
            put(&mut e, "file.content", new.as_deref().map(truncate));
            put(&mut e, "file.old", old.as_deref().map(truncate));
            e.resource = path.unwrap_or_default();
        }
        ToolKind::WebFetch => {
            let url = text_at(input, &["url", "uri"]);
            e.destination = url.as_deref().and_then(url_host);
            put(&mut e, "url", url.clone());
            e.resource = url.unwrap_or_default();
        }
        ToolKind::WebSearch => {
            put(
                &mut e,
                "query",
                text_at(input, &["query", "q", "search_term"]),
            );
        }
        ToolKind::Mcp { server, tool } => {
            put(&mut e, "mcp.server", server.as_str());
            put(&mut e, "mcp.tool", tool.as_str());
            put(&mut e, "tool.input", input_text(input));
            if let Some(url) = text_at(input, &["mcp_server_url", "server_url"]) {
                e.destination = url_host(&url);
            }
            e.resource = format!("{server}/{tool}");
        }
        ToolKind::Other => {
            put(&mut e, "tool.input", input_text(input));
        }
    }
    e
}

/// A tool's input as JSON text (bounded), for the tools without named attributes.
fn input_text(input: &Value) -> Option<String> {
    match input {
        Value::Null => None,
        Value::Object(m) if m.is_empty() => None,
        Value::String(s) => Some(truncate(s)),
        v => Some(truncate(&v.to_string())),
    }
}

/// A JSON object carried as text (Claude Code's `tool_parameters` / `tool_input`, Codex's
/// `arguments`, GenAI `gen_ai.tool.call.arguments`): the object, or the text under `input`
/// when it is not JSON (Codex's free-form `apply_patch`).
pub fn json_text(v: Option<&Value>) -> Value {
    match v {
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Value::Object(m),
            _ if s.is_empty() => Value::Null,
            _ => json!({ "input": s }),
        },
        Some(Value::Object(m)) => Value::Object(m.clone()),
        _ => Value::Null,
    }
}

/// Two inputs merged (keys of `b` win).
pub fn merge(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Object(mut a), Value::Object(b)) => {
            a.extend(b);
            Value::Object(a)
        }
        (a, Value::Null) => a,
        (_, b) => b,
    }
}

/// A tool's response as text: a string as it is, Claude Code's Bash `{stdout, stderr}`
/// joined, anything else as JSON.
pub fn response_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Object(m) if m.contains_key("stdout") || m.contains_key("stderr") => {
            let part = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let (out, err) = (part("stdout"), part("stderr"));
            Some(if err.is_empty() {
                out
            } else if out.is_empty() {
                err
            } else {
                format!("{out}\n{err}")
            })
        }
        v => Some(v.to_string()),
    }
}

/// `accept` or `reject` from the agents' decision words (Claude Code: accept / reject;
/// Codex: approved, approved_for_session, denied, abort).
pub fn decision(word: &str) -> Option<&'static str> {
    match word.to_ascii_lowercase().as_str() {
        "accept" | "approved" | "approved_for_session" | "allow" | "approve" | "yes" => {
            Some("accept")
        }
        "reject" | "denied" | "deny" | "abort" | "rejected" | "no" => Some("reject"),
        _ => None,
    }
}

/// `<source>.<event>` for an agent event not in the vocabulary (`claude-code.stop`).
pub fn unknown(source: Source, event: &str) -> String {
    let s = segment(event);
    if s.is_empty() {
        format!("{source}.unknown")
    } else {
        format!("{source}.{s}")
    }
}

/// A hook's JSON input with the two fields every hook names: its event and its session.
pub struct HookInput {
    pub body: Value,
    pub hook: String,
    pub session: String,
}

/// Reads a hook input of `agent` (`Claude Code`, `Cursor`), whose session id is in
/// `session_field`; a 400 names what is missing.
pub fn hook_input(
    bytes: &[u8],
    agent: &str,
    session_field: &str,
) -> Result<HookInput, IngestError> {
    let body = json_body(bytes)?;
    if !body.is_object() {
        return Err(IngestError::malformed(
            "(body)",
            format!("a {agent} hook input is a JSON object"),
        ));
    }
    let hook = s(&body, "hook_event_name");
    if hook.is_empty() {
        return Err(IngestError::malformed(
            "hook_event_name",
            format!("a {agent} hook input names its event"),
        ));
    }
    let session = s(&body, session_field);
    if session.is_empty() {
        return Err(IngestError::malformed(
            session_field,
            format!("a {agent} hook input names its session"),
        ));
    }
    Ok(HookInput {
        body,
        hook,
        session,
    })
}

/// The hook event a delivery names (for its answer), if its body reads.
pub fn hook_name(bytes: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .map(|b| s(&b, "hook_event_name"))
}

/// `agent.prompt` from a prompt hook's text.
pub fn prompt_event(
    session: &Session,
    id: String,
    time: OffsetDateTime,
    hook: &str,
    prompt: &str,
) -> Event {
    let mut e = session.event(id, time, "agent.prompt", hook);
    put(
        &mut e,
        "prompt.length",
        (!prompt.is_empty()).then(|| Value::from(prompt.chars().count())),
    );
    put(&mut e, "prompt.text", truncate(prompt));
    e
}

/// `<source>.<hook>` for a hook event not in the vocabulary, its input (without the
/// fields every hook sends, `common`) kept under `detail.*`.
pub fn unknown_hook(
    session: &Session,
    id: String,
    time: OffsetDateTime,
    hook: &str,
    body: &Value,
    common: &[&str],
) -> Event {
    let source = session.source.unwrap_or(Source::Otel);
    let mut e = session.event(id, time, &unknown(source, hook), hook);
    let mut detail = body.clone();
    if let Some(o) = detail.as_object_mut() {
        for k in common {
            o.remove(*k);
        }
    }
    keep_payload(&mut e, "detail", &detail, 40);
    e
}

/// Flat string-keyed attributes of an agent's record.
pub type Attrs = BTreeMap<String, Value>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_classified_across_agents() {
        let none = Value::Null;
        for (name, kind) in [
            ("Bash", ToolKind::Shell),
            ("shell", ToolKind::Shell),
            ("exec_command", ToolKind::Shell),
            ("shell_command", ToolKind::Shell),
            ("StrReplace", ToolKind::FileWrite),
            ("Read", ToolKind::FileRead),
            ("Edit", ToolKind::FileWrite),
            ("apply_patch", ToolKind::FileWrite),
            ("WebFetch", ToolKind::WebFetch),
            ("web_search", ToolKind::WebSearch),
            ("TodoWrite", ToolKind::Other),
        ] {
            assert_eq!(classify(name, &none), kind, "{name}");
        }
        assert_eq!(
            classify("mcp__github__create_issue", &none),
            ToolKind::Mcp {
                server: "github".into(),
                tool: "create_issue".into()
            }
        );
        assert_eq!(
            command_of(&json!({"command": ["bash", "-lc", "cat .env | head"]})).as_deref(),
            Some("cat .env | head")
        );
        assert_eq!(
            command_of(&json!({"command": "git push --force origin main", "workdir": "/w"}))
                .as_deref(),
            Some("git push --force origin main")
        );
        assert_eq!(
            command_of(&json!({"command": ["git", "commit", "-m", "a b"]})).as_deref(),
            Some("git commit -m 'a b'")
        );
        assert_eq!(
            patch_paths("*** Begin Patch\n*** Update File: src/a.rs\n@@\n*** Add File: b.txt\n+x\n*** End Patch"),
            vec!["src/a.rs", "b.txt"]
        );
    }

    #[test]
    fn text_is_cut_at_a_character_boundary() {
        let long = "é".repeat(TEXT_LIMIT);
        let cut = truncate(&long);
        assert!(cut.len() <= TEXT_LIMIT && cut.len() > TEXT_LIMIT - 2);
        assert_eq!(truncate("short"), "short");
    }

    #[test]
    fn verdicts_answer_only_pending_calls() {
        fn render(hook: &str, v: &Verdict) -> Value {
            json!({"hook": hook, "v": format!("{v:?}")})
        }
        assert_eq!(
            HookReply::new("Stop", None, render).answer(&Verdict::Deny("x".into())),
            json!({})
        );
        assert_eq!(
            HookReply::new("PreToolUse", Some(0), render).answer(&Verdict::Allow)["hook"],
            "PreToolUse"
        );
    }
}
