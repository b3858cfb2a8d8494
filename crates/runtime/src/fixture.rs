//! Detector fixtures run through the real runtime (`plumbline detector test`, pack
//! self-tests). Same file format and matching rules as the SDK's native harness
//! (`plumbline_sdk::testing`): findings match expectations by signal, severity and the
//! set of evidence ids; unexpected findings fail unless below `ignore_unexpected_below`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use plumbline_event::Event;
use plumbline_trajectory::finding::Finding;
use plumbline_trajectory::model::{event_digest, trajectory_hash};
use plumbline_trajectory::{Trajectory, TrajectoryKind};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    #[serde(default)]
    pub description: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub now: Option<time::OffsetDateTime>,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    pub trajectory: FixtureTrajectory,
    pub expected: Vec<Expected>,
    #[serde(default = "one")]
    pub ignore_unexpected_below: u8,
}

fn one() -> u8 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureTrajectory {
    #[serde(default)]
    pub id: String,
    pub kind: TrajectoryKind,
    pub key: String,
    #[serde(default)]
    pub dropped: u64,
    #[serde(default)]
    pub start: Option<i64>,
    #[serde(default)]
    pub end: Option<i64>,
    #[serde(default)]
    pub hash: Option<String>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub signal: String,
    pub severity: u8,
    pub evidence: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0} is not a fixture: {1}")]
    Parse(PathBuf, serde_json::Error),
}

impl Fixture {
    pub fn load(path: &Path) -> Result<(Fixture, Trajectory), FixtureError> {
        let text = std::fs::read_to_string(path).map_err(|e| FixtureError::Read(path.into(), e))?;
        Self::parse(path, &text)
    }

    /// A fixture from its text; `path` names it (packs hold fixtures in memory).
    pub fn parse(path: &Path, text: &str) -> Result<(Fixture, Trajectory), FixtureError> {
        let f: Fixture =
            serde_json::from_str(text).map_err(|e| FixtureError::Parse(path.into(), e))?;
        let t = f.build_trajectory(path);
        Ok((f, t))
    }

    /// The host trajectory: events ordered by (time, id), hashed like live trajectories.
    fn build_trajectory(&self, path: &Path) -> Trajectory {
        let ft = &self.trajectory;
        let mut events = ft.events.clone();
        events.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
        let digests: Vec<[u8; 32]> = events.iter().map(event_digest).collect();
        let hash = trajectory_hash(events.iter().zip(&digests).map(|(e, d)| (e.id.as_str(), d)));
        let start = events.first().map_or(0, |e| e.time_nanos());
        let end = events.last().map_or(0, |e| e.time_nanos());
        Trajectory {
            id: if ft.id.is_empty() {
                format!(
                    "fixture:{}",
                    path.file_stem().unwrap_or_default().to_string_lossy()
                )
            } else {
                ft.id.clone()
            },
            kind: ft.kind,
            key: ft.key.clone(),
            start: ft.start.unwrap_or(start),
            end: ft.end.unwrap_or(end),
            closes_at: ft.end.unwrap_or(end),
            dropped: ft.dropped,
            hash: ft.hash.clone().unwrap_or(hash),
            events: events.into_iter().map(Arc::new).collect(),
        }
    }

    /// The pinned clock (default: the last event's time), unix nanoseconds.
    pub fn now_nanos(&self, t: &Trajectory) -> i64 {
        self.now
            .map(|n| n.unix_timestamp_nanos() as i64)
            .unwrap_or(t.end)
    }

    /// Compares findings with expectations; `Err` lists every difference.
    pub fn compare(&self, findings: &[Finding]) -> Result<(), String> {
        let mut missing: Vec<&Expected> = self.expected.iter().collect();
        let mut unexpected = Vec::new();
        for f in findings {
            let ev: BTreeSet<&str> = f.evidence.iter().map(String::as_str).collect();
            let hit = missing.iter().position(|x| {
                x.signal == f.signal
                    && x.severity == f.severity
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
                None if f.severity < self.ignore_unexpected_below => {}
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
                u.signal, u.severity, u.evidence, u.title
            ));
        }
        Err(msg.join("; "))
    }
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
mod tests {
    use super::*;

    fn finding(signal: &str, severity: u8, evidence: &[&str]) -> Finding {
        Finding {
            detector: "d".into(),
            detector_version: "1".into(),
            signal: signal.into(),
            severity,
            score: 1.0,
            title: "t".into(),
            evidence: evidence.iter().map(|s| s.to_string()).collect(),
            next_step: String::new(),
        }
    }

    fn fixture(expected: Vec<Expected>, below: u8) -> Fixture {
        Fixture {
            description: String::new(),
            now: None,
            config: BTreeMap::new(),
            trajectory: FixtureTrajectory {
                id: String::new(),
                kind: TrajectoryKind::Actor,
                key: "a".into(),
                dropped: 0,
                start: None,
                end: None,
                hash: None,
                events: vec![],
            },
            expected,
            ignore_unexpected_below: below,
        }
    }

    #[test]
    fn matching_is_by_signal_severity_and_evidence_set() {
        let f = fixture(
            vec![Expected {
                signal: "s".into(),
                severity: 3,
                evidence: vec!["b".into(), "a".into()],
            }],
            1,
        );
        assert!(f.compare(&[finding("s", 3, &["a", "b"])]).is_ok());
        let err = f.compare(&[finding("s", 2, &["a", "b"])]).unwrap_err();
        assert!(err.contains("missing s severity 3") && err.contains("unexpected s severity 2"));
        assert!(f.compare(&[]).unwrap_err().contains("missing"));
    }

    #[test]
    fn benign_look_alikes_may_allow_informational_noise() {
        let f = fixture(vec![], 2);
        assert!(f.compare(&[finding("s", 1, &["a"])]).is_ok());
        assert!(f.compare(&[finding("s", 2, &["a"])]).is_err());
        assert!(fixture(vec![], 1)
            .compare(&[finding("s", 1, &["a"])])
            .is_err());
    }
}
