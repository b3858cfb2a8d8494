//! The normalised event: every source adapter maps its payload onto this one record
//! (README.md, "The event"). Field names are part of the public API.

pub mod redact;
pub mod risk;
pub mod schema;
mod validate;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use validate::{check_action, flatten, parse_event, parse_event_bytes, EventError};

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Github,
    Gitlab,
    N8n,
    Make,
    Vault,
    Cloudtrail,
    Okta,
    Openai,
    Ci,
    Custom,
    /// Claude Code: its OpenTelemetry logs and its `http` hooks.
    #[serde(rename = "claude-code")]
    ClaudeCode,
    /// Codex CLI: its OpenTelemetry logs.
    Codex,
    /// Cursor: its agent hooks.
    Cursor,
    /// Any other agent's OpenTelemetry GenAI-convention spans (`execute_tool`).
    Otel,
}

impl Source {
    pub const ALL: [Source; 14] = [
        Source::Github,
        Source::Gitlab,
        Source::N8n,
        Source::Make,
        Source::Vault,
        Source::Cloudtrail,
        Source::Okta,
        Source::Openai,
        Source::Ci,
        Source::Custom,
        Source::ClaudeCode,
        Source::Codex,
        Source::Cursor,
        Source::Otel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Github => "github",
            Source::Gitlab => "gitlab",
            Source::N8n => "n8n",
            Source::Make => "make",
            Source::Vault => "vault",
            Source::Cloudtrail => "cloudtrail",
            Source::Okta => "okta",
            Source::Openai => "openai",
            Source::Ci => "ci",
            Source::Custom => "custom",
            Source::ClaudeCode => "claude-code",
            Source::Codex => "codex",
            Source::Cursor => "cursor",
            Source::Otel => "otel",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who acted: a person, a service account, or an AI agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActorType {
    Human,
    Service,
    AiAgent,
}

impl ActorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::Human => "human",
            ActorType::Service => "service",
            ActorType::AiAgent => "ai-agent",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ActorType,
    #[serde(default)]
    pub display: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Prod,
    Staging,
    Test,
    #[default]
    Unknown,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Prod => "prod",
            Environment::Staging => "staging",
            Environment::Test => "test",
            Environment::Unknown => "unknown",
        }
    }
}

/// How much data moved, where known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
}

/// A flattened attribute value: scalars only (nested objects are flattened to dotted keys
/// by the adapters, so nothing is lost silently).
pub type Attributes = BTreeMap<String, serde_json::Value>;

/// One normalised event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Stable id: the source's delivery id or a content hash. Ingest is idempotent on it.
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub source: Source,
    pub actor: Actor,
    /// Repository, workflow or environment the event happened in.
    pub system: String,
    /// A dotted verb from the vocabulary in docs/actions.md, e.g. `git.push.force`.
    pub action: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub environment: Environment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<Volume>,
    #[serde(default)]
    pub attributes: Attributes,
}

impl Event {
    /// Event time as unix nanoseconds (what keys and windows are computed on).
    pub fn time_nanos(&self) -> i64 {
        self.time.unix_timestamp_nanos() as i64
    }

    /// A string attribute, if present.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(|v| v.as_str())
    }

    /// Whether this event came through its own source's endpoint with that source's
    /// credential verified (a signed webhook, the source's token): only such events may
    /// name what a response action acts on.
    pub fn verified_by_source(&self) -> bool {
        self.attr_str(VERIFIED_BY) == Some(self.source.as_str())
    }
}

/// Attributes under this prefix are Plumbline's own: set at ingest, refused from clients.
pub const RESERVED_PREFIX: &str = "plumbline.";

/// The source whose credential verified the event at ingest (see
/// [`Event::verified_by_source`]).
pub const VERIFIED_BY: &str = "plumbline.verified_by";

/// RFC 3339 (UTC) rendering used in API answers and logs.
pub fn format_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Unix nanoseconds → time (clamped to the representable range).
pub fn time_from_nanos(n: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(n as i128).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every source is in `Source::ALL`, and its name reads back, in `as_str`/`parse` and
    /// in serde (the schema and the stored events use the same names).
    #[test]
    fn every_source_name_round_trips() {
        for s in Source::ALL {
            assert_eq!(Source::parse(s.as_str()), Some(s));
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json, serde_json::Value::from(s.as_str()));
            assert_eq!(serde_json::from_value::<Source>(json).unwrap(), s);
        }
        assert_eq!(Source::ClaudeCode.as_str(), "claude-code");
        let names: std::collections::BTreeSet<_> = Source::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names.len(), Source::ALL.len());
    }
}
