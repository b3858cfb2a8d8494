//! The native fixture harness: runs a detector over fixture files without WASM, checking
//! the same contract the host enforces. `plumbline detector test` runs the same files
//! through the real host.
//!
//! A fixture is one JSON file:
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
//! Findings match expectations by signal, severity and the *set* of evidence ids, one to one.
//! Unexpected findings fail the fixture unless their severity is below
//! `ignore_unexpected_below` (default 1: none ignored), so a benign look-alike can say
//! "nothing above informational" with `"expected": [], "ignore_unexpected_below": 2`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::types::{Finding, Info, Trajectory};
use crate::{Context, Detector};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    #[serde(default)]
    pub description: String,
    /// The clock the detector sees; default: the last event's time.
    #[serde(default)]
    pub now: Option<String>,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    pub trajectory: Trajectory,
    pub expected: Vec<Expected>,
    #[serde(default = "one")]
    pub ignore_unexpected_below: u8,
}

fn one() -> u8 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub signal: String,
    pub severity: u8,
    pub evidence: Vec<String>,
}

impl Fixture {
    pub fn load(path: &Path) -> Result<Fixture, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut f: Fixture = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a fixture: {e}", path.display()))?;
        let t = &mut f.trajectory;
        t.events
            .sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
        if t.id.is_empty() {
            t.id = format!(
                "fixture:{}",
                path.file_stem().unwrap_or_default().to_string_lossy()
            );
        }
        t.start = t.events.first().map_or(0, |e| e.time);
        t.end = t.events.last().map_or(0, |e| e.time);
        Ok(f)
    }

    /// The clock for this fixture, in unix nanoseconds.
    pub fn now_nanos(&self) -> Result<i64, String> {
        match &self.now {
            Some(s) => crate::parse_time(s).ok_or_else(|| format!("`now`: `{s}` is not RFC 3339")),
            None => Ok(self.trajectory.end),
        }
    }
}

/// The contract every answer must meet (the host enforces the same rules).
pub fn check_contract(info: &Info, t: &Trajectory, findings: &[Finding]) -> Result<(), String> {
    let ids: BTreeSet<&str> = t.events.iter().map(|e| e.id.as_str()).collect();
    for f in findings {
        if !(1..=3).contains(&f.severity) {
            return Err(format!(
                "`{}`: severity {} is not 1–3",
                f.signal, f.severity
            ));
        }
        if !info.signals.contains(&f.signal) {
            return Err(format!(
                "signal `{}` is not declared in info().signals",
                f.signal
            ));
        }
        if f.evidence.is_empty() {
            return Err(format!("`{}`: evidence is empty", f.signal));
        }
        if let Some(bad) = f.evidence.iter().find(|id| !ids.contains(id.as_str())) {
            return Err(format!(
                "`{}`: evidence `{bad}` is not an event of the trajectory",
                f.signal
            ));
        }
        if !(0.0..=1.0).contains(&f.score) {
            return Err(format!("`{}`: score {} is not in 0–1", f.signal, f.score));
        }
        if f.title.trim().is_empty() {
            return Err(format!("`{}`: title is empty", f.signal));
        }
    }
    Ok(())
}

/// Compares findings with expectations; `Err` lists every difference.
pub fn compare(fixture: &Fixture, findings: &[Finding]) -> Result<(), String> {
    let mut missing: Vec<&Expected> = fixture.expected.iter().collect();
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
            None if f.severity < fixture.ignore_unexpected_below => {}
            None => unexpected.push(f),
        }
    }
    if missing.is_empty() && unexpected.is_empty() {
        return Ok(());
    }
    let mut msg = String::new();
    for m in missing {
        msg.push_str(&format!(
            "\n  missing:    {} severity {} evidence {:?}",
            m.signal, m.severity, m.evidence
        ));
    }
    for u in unexpected {
        msg.push_str(&format!(
            "\n  unexpected: {} severity {} evidence {:?} ({})",
            u.signal, u.severity, u.evidence, u.title
        ));
    }
    Err(msg)
}

/// Runs one fixture through `D` natively.
pub fn run_fixture<D: Detector>(path: &Path) -> Result<Vec<Finding>, String> {
    let fixture = Fixture::load(path)?;
    let info = D::info();
    let cx = Context::native(&info, &fixture.config, fixture.now_nanos()?);
    let findings = D::default()
        .analyze(&fixture.trajectory, &cx)
        .map_err(|e| format!("analyze failed: {e}"))?;
    check_contract(&info, &fixture.trajectory, &findings)?;
    compare(&fixture, &findings)?;
    Ok(findings)
}

/// The `*.json` files of a directory, sorted.
pub fn fixture_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read fixture directory {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// Runs every fixture in `dir`, printing pass/fail per file; panics (failing the test)
/// if any fails, or if the directory holds no fixture.
pub fn run_fixtures<D: Detector>(dir: impl AsRef<Path>) {
    let dir = dir.as_ref();
    let files = fixture_files(dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(!files.is_empty(), "no *.json fixtures in {}", dir.display());
    let mut failed = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        match run_fixture::<D>(f) {
            Ok(found) => println!("pass {name} ({} findings)", found.len()),
            Err(e) => {
                println!("FAIL {name}: {e}");
                failed.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}
