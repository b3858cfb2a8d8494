//! Detector fixtures run through the real runtime (`plumbline detector test`, pack
//! self-tests). The file format, the "now" rule and the matching rules are
//! `plumbline-contract`'s, shared with the SDK's native harness: findings match
//! expectations by signal, severity and the set of evidence ids; unexpected findings fail
//! unless below `ignore_unexpected_below`. Here the events become host events (validated
//! like any other) and the trajectory is hashed like a live one.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

pub use plumbline_contract::fixture::{fixture_files, Expected, FixtureError};
use plumbline_event::Event;
use plumbline_trajectory::finding::Finding;
use plumbline_trajectory::model::{event_digest, trajectory_hash};
use plumbline_trajectory::{Trajectory, TrajectoryKind};

/// A fixture with its events as JSON (they become host events in [`load`] / [`parse`]).
pub type Fixture = plumbline_contract::Fixture<serde_json::Value>;

/// Reads a fixture file and builds its host trajectory.
pub fn load(path: &Path) -> Result<(Fixture, Trajectory), FixtureError> {
    let f = Fixture::load(path)?;
    let t = trajectory(path, &f)?;
    Ok((f, t))
}

/// A fixture from its text; `path` names it (packs hold fixtures in memory).
pub fn parse(path: &Path, text: &str) -> Result<(Fixture, Trajectory), FixtureError> {
    let f = Fixture::parse(path, text)?;
    let t = trajectory(path, &f)?;
    Ok((f, t))
}

/// The host trajectory: events ordered by (time, id), hashed like live trajectories.
fn trajectory(path: &Path, f: &Fixture) -> Result<Trajectory, FixtureError> {
    let ft = &f.trajectory;
    let events = ft
        .events
        .iter()
        .map(|v| serde_json::from_value::<Event>(v.clone()))
        .collect::<Result<Vec<Event>, _>>()
        .map_err(|e| FixtureError::Parse(path.into(), e))?;
    let digests: Vec<[u8; 32]> = events.iter().map(event_digest).collect();
    let hash = trajectory_hash(events.iter().zip(&digests).map(|(e, d)| (e.id.as_str(), d)));
    Ok(Trajectory {
        id: ft.id.clone(),
        kind: match ft.kind {
            plumbline_contract::TrajectoryKind::Actor => TrajectoryKind::Actor,
            plumbline_contract::TrajectoryKind::System => TrajectoryKind::System,
            plumbline_contract::TrajectoryKind::ActorDrift => TrajectoryKind::ActorDrift,
            plumbline_contract::TrajectoryKind::SystemDrift => TrajectoryKind::SystemDrift,
        },
        key: ft.key.clone(),
        start: f.start(),
        end: f.end(),
        closes_at: f.end(),
        dropped: ft.dropped,
        hash: ft.hash.clone().unwrap_or(hash),
        events: events.into_iter().map(Arc::new).collect(),
    })
}

/// The result of one fixture.
#[derive(Debug, Clone, Serialize)]
pub struct FixtureOutcome {
    pub file: String,
    pub description: String,
    pub passed: bool,
    /// Why it failed (a load error, a detector failure, or the differences).
    pub message: Option<String>,
    pub findings: Vec<Finding>,
    /// How long the detector call took (absent when the fixture failed before the call).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_micros: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host trajectory of a fixture: events validated into host events, in (time, id)
    /// order, hashed like a live trajectory, the file stem as id; compared with the
    /// contract's rules on the host's attributed findings.
    #[test]
    fn a_fixture_becomes_a_host_trajectory() {
        let text = r#"{
          "trajectory": {"kind": "system", "key": "acme/api", "events": [
            {"id": "b", "time": "2025-11-24T10:01:00Z", "source": "github",
             "actor": {"id": "ada", "type": "human"}, "system": "acme/api", "action": "git.push"},
            {"id": "a", "time": "2025-11-24T10:00:00Z", "source": "github",
             "actor": {"id": "ada", "type": "human"}, "system": "acme/api", "action": "git.push"}
          ]},
          "expected": [{"signal": "s", "severity": 2, "evidence": ["b", "a"]}]
        }"#;
        let (f, t) = parse(Path::new("dir/push.json"), text).unwrap();
        assert_eq!(t.id, "fixture:push");
        assert_eq!(t.kind, TrajectoryKind::System);
        let ids: Vec<&str> = t.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(
            (t.start, t.end),
            (t.events[0].time_nanos(), t.events[1].time_nanos())
        );
        assert_eq!(f.now(), t.end);
        assert_eq!(t.hash.len(), 64);
        let found = Finding {
            detector: "d".into(),
            detector_version: "1".into(),
            signal: "s".into(),
            severity: 2,
            score: 1.0,
            title: "t".into(),
            evidence: vec!["a".into(), "b".into()],
            next_step: String::new(),
        };
        assert!(f.compare(&[found]).is_ok());
        let bad = text.replace(
            r#""action": "git.push"}
          ]"#,
            r#""action": 7}
          ]"#,
        );
        let err = parse(Path::new("bad.json"), &bad).unwrap_err().to_string();
        assert!(err.contains("bad.json is not a fixture"), "{err}");
    }
}
