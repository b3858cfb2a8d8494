//! The fixture format: one JSON file per case under a detector's `fixtures/`, run natively
//! by the SDK's harness and through the real sandbox by `plumbline detector test`.
//!
//! ```json
//! {
//!   "description": "grant then export off-hours",
//!   "now": "2024-01-01T23:00:00Z",
//!   "config": {"min_rows": "1000"},
//!   "trajectory": {"kind": "actor", "key": "alice", "events": [ …normalised events… ]},
//!   "expected": [{"signal": "exfil.export_after_grant", "severity": 3, "evidence": ["e1", "e2"]}],
//!   "ignore_unexpected_below": 1
//! }
//! ```
//!
//! - `trajectory` may also give `id` (default `fixture:<file stem>`), `dropped`, `start`
//!   and `end` (unix nanoseconds; default the first and last event's time) and `hash`.
//!   Events are sorted by (time, id) when the fixture is parsed.
//! - **The "now" rule**: the clock the detector sees is `now` if given, else the
//!   trajectory's end (its `end` if given, else the last event's time) — [`Fixture::now`].
//! - **Matching** ([`compare`]): findings match expectations by signal, severity and the
//!   *set* of evidence ids, one to one. Unexpected findings fail the fixture unless their
//!   severity is below `ignore_unexpected_below` (default 1: none ignored), so a benign
//!   look-alike can say "nothing above informational" with `"expected": [],
//!   "ignore_unexpected_below": 2`.
//! - **Views**: a fixture whose trajectory kind the detector does not read
//!   ([`Fixture::check_view`]) tests nothing — the host never offers the detector such a
//!   trajectory — and is an error, not a pass.
//!
//! The events are generic: `Fixture<Event>` (the default) gives the contract's
//! [`Event`]s, `Fixture<serde_json::Value>` the raw JSON of each event for a host that
//! validates and converts them itself (or any type of the host's that implements
//! [`FixtureEvent`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::check::FindingFields;
use crate::interest::reads_view;
use crate::types::{Event, Trajectory, TrajectoryKind};

/// What the fixture rules need to know of an event: its id and time.
pub trait FixtureEvent {
    fn fixture_id(&self) -> &str;
    /// Unix nanoseconds (0 if the event has no readable time: it fails validation later).
    fn fixture_time(&self) -> i64;
}

impl FixtureEvent for Event {
    fn fixture_id(&self) -> &str {
        &self.id
    }
    fn fixture_time(&self) -> i64 {
        self.time
    }
}

impl FixtureEvent for serde_json::Value {
    fn fixture_id(&self) -> &str {
        self.get("id").and_then(|v| v.as_str()).unwrap_or("")
    }
    fn fixture_time(&self) -> i64 {
        self.get("time")
            .and_then(|v| v.as_str())
            .and_then(crate::time::parse_time)
            .unwrap_or(0)
    }
}

/// One fixture file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    bound(deserialize = "E: DeserializeOwned", serialize = "E: Serialize")
)]
pub struct Fixture<E = Event> {
    #[serde(default)]
    pub description: String,
    /// The clock the detector sees, unix nanoseconds (RFC 3339 in JSON); see [`Fixture::now`].
    #[serde(
        default,
        with = "crate::time::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub now: Option<i64>,
    /// Config values overriding the detector's declared defaults.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    pub trajectory: FixtureTrajectory<E>,
    pub expected: Vec<Expected>,
    #[serde(default = "one")]
    pub ignore_unexpected_below: u8,
    /// What the host's language model answers the detector (`model.judge`, 0.2.0): a
    /// judgement as a model writes it, `{"risk": …, "reasons": [{"text", "evidence"}]}`,
    /// checked against each question as a live answer is. None: no model, as in a service
    /// without `[llm]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<serde_json::Value>,
}

fn one() -> u8 {
    1
}

/// The trajectory of a fixture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    bound(deserialize = "E: DeserializeOwned", serialize = "E: Serialize")
)]
pub struct FixtureTrajectory<E = Event> {
    #[serde(default)]
    pub id: String,
    pub kind: TrajectoryKind,
    pub key: String,
    #[serde(default)]
    pub dropped: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    pub events: Vec<E>,
}

/// One finding a fixture expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub signal: String,
    pub severity: u8,
    pub evidence: Vec<String>,
}

/// A fixture that could not be read or parsed.
#[derive(Debug)]
pub enum FixtureError {
    Read(PathBuf, std::io::Error),
    Parse(PathBuf, serde_json::Error),
}

impl fmt::Display for FixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FixtureError::Read(p, e) => write!(f, "cannot read {}: {e}", p.display()),
            FixtureError::Parse(p, e) => write!(f, "{} is not a fixture: {e}", p.display()),
        }
    }
}

impl std::error::Error for FixtureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FixtureError::Read(_, e) => Some(e),
            FixtureError::Parse(_, e) => Some(e),
        }
    }
}

impl<E: FixtureEvent + DeserializeOwned> Fixture<E> {
    /// Reads and parses a fixture file (see [`Fixture::parse`]).
    pub fn load(path: &Path) -> Result<Fixture<E>, FixtureError> {
        let text = std::fs::read_to_string(path).map_err(|e| FixtureError::Read(path.into(), e))?;
        Self::parse(path, &text)
    }

    /// A fixture from its text; `path` names it (packs hold fixtures in memory). Events are
    /// sorted by (time, id), and an empty trajectory id becomes `fixture:<file stem>`.
    pub fn parse(path: &Path, text: &str) -> Result<Fixture<E>, FixtureError> {
        let mut f: Fixture<E> =
            serde_json::from_str(text).map_err(|e| FixtureError::Parse(path.into(), e))?;
        let t = &mut f.trajectory;
        t.events.sort_by(|a, b| {
            (a.fixture_time(), a.fixture_id()).cmp(&(b.fixture_time(), b.fixture_id()))
        });
        if t.id.is_empty() {
            t.id = format!(
                "fixture:{}",
                path.file_stem().unwrap_or_default().to_string_lossy()
            );
        }
        Ok(f)
    }
}

impl<E: FixtureEvent> Fixture<E> {
    /// The trajectory's start: `start` if given, else the first event's time (0 if none).
    pub fn start(&self) -> i64 {
        let t = &self.trajectory;
        t.start
            .unwrap_or_else(|| t.events.first().map_or(0, FixtureEvent::fixture_time))
    }

    /// The trajectory's end: `end` if given, else the last event's time (0 if none).
    pub fn end(&self) -> i64 {
        let t = &self.trajectory;
        t.end
            .unwrap_or_else(|| t.events.last().map_or(0, FixtureEvent::fixture_time))
    }

    /// The pinned clock, unix nanoseconds: `now` if given, else [`Fixture::end`].
    pub fn now(&self) -> i64 {
        self.now.unwrap_or_else(|| self.end())
    }

    /// The ids of the trajectory's events (what evidence may cite).
    pub fn event_ids(&self) -> impl Iterator<Item = &str> {
        self.trajectory.events.iter().map(FixtureEvent::fixture_id)
    }
}

/// A fixture's `model` answering `q` (see [`Fixture::model`]).
pub fn model_answer(model: Option<&serde_json::Value>, q: &crate::Question) -> crate::ModelAnswer {
    use crate::ModelAnswer;
    if let Err(e) = q.check() {
        return ModelAnswer::Unavailable(format!("question refused: {e}"));
    }
    match model {
        None => ModelAnswer::Unavailable("no language model in this fixture".into()),
        Some(answer) => match crate::parse_judgement(&answer.to_string(), &q.events, "fixture") {
            Ok(j) => ModelAnswer::Ready(j),
            Err(e) => ModelAnswer::Unavailable(format!("the model's answer was refused: {e}")),
        },
    }
}

impl<E> Fixture<E> {
    /// The answer a question gets in this fixture (see [`Fixture::model`]): the native
    /// harness and the host's fixture runs both ask here.
    pub fn model_answer(&self, q: &crate::Question) -> crate::ModelAnswer {
        model_answer(self.model.as_ref(), q)
    }

    /// An error if a detector declaring `views` would never be offered this fixture's
    /// trajectory (see [`reads_view`]).
    pub fn check_view(&self, views: &[TrajectoryKind]) -> Result<(), String> {
        let kind = self.trajectory.kind;
        if reads_view(views, kind) {
            return Ok(());
        }
        let declared = if views.is_empty() {
            "none: the rolling actor and system windows".to_string()
        } else {
            views
                .iter()
                .map(|v| kind_name(*v))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(format!(
            "the trajectory is of kind `{}`, which the detector does not read (views: {declared}): the host never calls it with one, so this fixture tests nothing",
            kind_name(kind)
        ))
    }

    /// Compares findings with this fixture's expectations (see [`compare`]).
    pub fn compare<F: FindingFields>(&self, findings: &[F]) -> Result<(), String> {
        compare(&self.expected, self.ignore_unexpected_below, findings)
    }
}

impl Fixture<Event> {
    /// The trajectory a detector analyses: events in (time, id) order, start and end per
    /// [`Fixture::start`] / [`Fixture::end`], `hash` as given (empty otherwise: the host
    /// computes its own).
    pub fn to_trajectory(&self) -> Trajectory {
        let t = &self.trajectory;
        Trajectory {
            id: t.id.clone(),
            kind: t.kind,
            key: t.key.clone(),
            start: self.start(),
            end: self.end(),
            dropped: t.dropped,
            hash: t.hash.clone().unwrap_or_default(),
            events: t.events.clone(),
        }
    }
}

fn kind_name(k: TrajectoryKind) -> &'static str {
    match k {
        TrajectoryKind::Actor => "actor",
        TrajectoryKind::System => "system",
        TrajectoryKind::ActorDrift => "actor-drift",
        TrajectoryKind::SystemDrift => "system-drift",
    }
}

/// Compares findings with expectations; `Err` lists every difference (`missing …` and
/// `unexpected …`, separated by `; `).
pub fn compare<F: FindingFields>(
    expected: &[Expected],
    ignore_unexpected_below: u8,
    findings: &[F],
) -> Result<(), String> {
    let mut missing: Vec<&Expected> = expected.iter().collect();
    let mut unexpected = Vec::new();
    for f in findings {
        let ev: BTreeSet<&str> = f.evidence().iter().map(String::as_str).collect();
        let hit = missing.iter().position(|x| {
            x.signal == f.signal()
                && x.severity == f.severity()
                && x.evidence
                    .iter()
                    .map(String::as_str)
                    .collect::<BTreeSet<_>>()
                    == ev
        });
        match hit {
            Some(i) => {
                missing.remove(i);
            }
            None if f.severity() < ignore_unexpected_below => {}
            None => unexpected.push(f),
        }
    }
    if missing.is_empty() && unexpected.is_empty() {
        return Ok(());
    }
    let mut msg = Vec::new();
    for m in missing {
        msg.push(format!(
            "missing {} severity {} evidence {:?}",
            m.signal, m.severity, m.evidence
        ));
    }
    for u in unexpected {
        msg.push(format!(
            "unexpected {} severity {} evidence {:?} ({})",
            u.signal(),
            u.severity(),
            u.evidence(),
            u.title()
        ));
    }
    Err(msg.join("; "))
}

/// The `*.json` files of a directory, sorted.
pub fn fixture_files(dir: &Path) -> Result<Vec<PathBuf>, FixtureError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| FixtureError::Read(dir.into(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests;
