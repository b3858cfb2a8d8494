//! The contract's data in plain Rust. The types mirror the WIT records of
//! `plumbline:detector@0.1.0` field for field, and their JSON form is the host's (RFC 3339
//! times, `type` for the actor kind), so one detector runs unchanged on fixtures natively
//! and in WASM, and the host can convert its bindings' values into them one to one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActorKind {
    Human,
    Service,
    AiAgent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ActorKind,
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

/// How much data moved, where the source says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Volume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
}

/// A flattened attribute value (scalars only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    Boolean(bool),
    Integer(i64),
    Float(f64),
    Text(String),
    Null,
}

/// One normalised event. `time` is unix nanoseconds (UTC); in JSON it is RFC 3339.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(with = "crate::time::rfc3339")]
    pub time: i64,
    pub source: String,
    pub actor: Actor,
    pub system: String,
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
    pub attributes: BTreeMap<String, AttributeValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrajectoryKind {
    Actor,
    System,
    /// Weeks of permission and destination changes of one actor (see [`Info::views`]).
    ActorDrift,
    SystemDrift,
}

/// The ordered story of related events in one window; events are ordered by (time, id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    #[serde(default)]
    pub id: String,
    pub kind: TrajectoryKind,
    pub key: String,
    #[serde(default)]
    pub start: i64,
    #[serde(default)]
    pub end: i64,
    #[serde(default)]
    pub dropped: u64,
    #[serde(default)]
    pub hash: String,
    pub events: Vec<Event>,
}

/// 1 informational, 2 needs review, 3 urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Informational = 1,
    NeedsReview = 2,
    Urgent = 3,
}

impl Severity {
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// What a detector reports. The host adds the detector's name and version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub signal: String,
    pub severity: u8,
    pub score: f32,
    pub title: String,
    pub evidence: Vec<String>,
    pub next_step: String,
}

impl Finding {
    /// A finding with score 1.0, no evidence yet and no next step; add them with the
    /// builder methods (evidence is mandatory: the host rejects a finding without it).
    pub fn new(signal: impl Into<String>, severity: Severity, title: impl Into<String>) -> Self {
        Finding {
            signal: signal.into(),
            severity: severity.as_u8(),
            score: 1.0,
            title: title.into(),
            evidence: Vec::new(),
            next_step: String::new(),
        }
    }

    /// Cites events, in the order given, skipping ids already cited.
    pub fn evidence<'a>(mut self, events: impl IntoIterator<Item = &'a Event>) -> Self {
        for e in events {
            if !self.evidence.contains(&e.id) {
                self.evidence.push(e.id.clone());
            }
        }
        self
    }

    /// Cites events by id (ids the detector holds without the events, e.g. a model's
    /// judgement), in the order given, skipping ids already cited.
    pub fn evidence_ids(mut self, ids: impl IntoIterator<Item = String>) -> Self {
        for id in ids {
            if !self.evidence.contains(&id) {
                self.evidence.push(id);
            }
        }
        self
    }

    pub fn score(mut self, score: f32) -> Self {
        self.score = score;
        self
    }

    pub fn next_step(mut self, step: impl Into<String>) -> Self {
        self.next_step = step.into();
        self
    }
}

/// A configuration key the detector reads, with its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigKey {
    pub name: String,
    pub default_value: String,
    pub description: String,
}

/// What a detector declares about itself (`info()` in the WIT).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Info {
    pub name: String,
    pub version: String,
    pub description: String,
    /// Sources read; empty means all.
    pub sources: Vec<String>,
    /// Actions read: exact or `prefix.*`; empty means all.
    pub actions: Vec<String>,
    pub signals: Vec<String>,
    pub config: Vec<ConfigKey>,
    /// Trajectory views analysed; empty means the rolling actor and system windows.
    #[serde(default)]
    pub views: Vec<TrajectoryKind>,
}

impl Info {
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        Info {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            ..Info::default()
        }
    }

    pub fn sources(mut self, sources: &[&str]) -> Self {
        self.sources = sources.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn actions(mut self, actions: &[&str]) -> Self {
        self.actions = actions.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn signals(mut self, signals: &[&str]) -> Self {
        self.signals = signals.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Asks for other trajectory views than the rolling windows (e.g. the drift views).
    pub fn views(mut self, views: &[TrajectoryKind]) -> Self {
        self.views = views.to_vec();
        self
    }

    pub fn config(mut self, name: &str, default_value: &str, description: &str) -> Self {
        self.config.push(ConfigKey {
            name: name.into(),
            default_value: default_value.into(),
            description: description.into(),
        });
        self
    }
}

/// The detector could not analyse a trajectory (the host counts it as a failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyzeError {
    pub message: String,
}

impl AnalyzeError {
    pub fn new(message: impl Into<String>) -> Self {
        AnalyzeError {
            message: message.into(),
        }
    }
}

impl std::fmt::Display for AnalyzeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AnalyzeError {}
