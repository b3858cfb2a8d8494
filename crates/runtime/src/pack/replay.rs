//! Replay: a pack's detectors over stored history, to see what they would have raised.
//! Stored events are read in time order and cut into trajectories by a private window
//! book (the same rules as the live stage), so live trajectories, alerts, shadow records
//! and the live detectors' counters are never touched.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::PackError;
use crate::{Detector, DetectorSet, Runtime};
use plumbline_store::{EventQuery, Store};
use plumbline_trajectory::finding::Finding;
use plumbline_trajectory::window::{Book, Changes, WindowRules};
use plumbline_trajectory::TrajectoryConfig;

/// Findings kept per detector in the report (the counts cover all of them).
const SAMPLE: usize = 20;
const PAGE: usize = 2000;

#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    pub pack: String,
    pub version: String,
    /// Unix nanoseconds; `until` absent = up to now.
    pub since: i64,
    pub until: Option<i64>,
    pub events: usize,
    pub evaluations: usize,
    pub detectors: Vec<DetectorReplay>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DetectorReplay {
    pub name: String,
    pub version: String,
    /// Distinct findings (same signal and evidence counted once, at its highest severity).
    pub findings: usize,
    /// Findings by severity ("1", "2", "3").
    pub by_severity: BTreeMap<String, usize>,
    /// Findings at severity 2 or more: what would have raised alerts.
    pub would_alert: usize,
    pub failures: u64,
    pub sample: Vec<ReplayFinding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplayFinding {
    pub trajectory: String,
    #[serde(flatten)]
    pub finding: Finding,
}

/// Runs `detectors` (fresh instances: their counters are this replay's) over the events
/// stored in `[since, until)`.
pub fn replay(
    runtime: &Runtime,
    store: &Store,
    trajectory: &TrajectoryConfig,
    pack: (&str, &str),
    detectors: Vec<Arc<Detector>>,
    since: i64,
    until: Option<i64>,
) -> Result<ReplayReport, PackError> {
    let set =
        DetectorSet::new(detectors.clone()).map_err(|e| PackError::Conflict(e.to_string()))?;
    let rules = WindowRules::from_config(trajectory);
    let lateness = rules.window;
    let mut book = Book::new(rules);
    // (detector, signal, evidence) → (trajectory, finding), the highest severity kept.
    let mut found: BTreeMap<(String, String, Vec<String>), ReplayFinding> = BTreeMap::new();
    let (mut events, mut evaluations) = (0usize, 0usize);
    let mut after = None;
    loop {
        let page = store
            .query(&EventQuery {
                since: Some(since),
                until,
                limit: PAGE,
                after: after.take(),
                ..EventQuery::default()
            })
            .map_err(|e| PackError::Refused(format!("cannot read stored events: {e}")))?;
        let mut changes = Changes::default();
        events += page.events.len();
        for e in page.events {
            book.apply(Arc::new(e), &mut changes);
        }
        for id in &changes.changed {
            let Some(t) = book.get(id).map(|s| s.snapshot()) else {
                continue;
            };
            evaluations += 1;
            let eval = runtime.evaluate_on(&set, &t);
            for f in eval.findings.into_iter().chain(eval.shadow) {
                let mut evidence = f.evidence.clone();
                evidence.sort();
                let key = (f.detector.clone(), f.signal.clone(), evidence);
                let keep = found
                    .get(&key)
                    .is_none_or(|old| old.finding.severity < f.severity);
                if keep {
                    found.insert(
                        key,
                        ReplayFinding {
                            trajectory: t.id.clone(),
                            finding: f,
                        },
                    );
                }
            }
        }
        book.close_expired(lateness);
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    let mut report = ReplayReport {
        pack: pack.0.to_string(),
        version: pack.1.to_string(),
        since,
        until,
        events,
        evaluations,
        detectors: Vec::new(),
    };
    for d in &detectors {
        let mine: Vec<&ReplayFinding> = found
            .values()
            .filter(|f| f.finding.detector == d.name())
            .collect();
        let mut by_severity = BTreeMap::new();
        for f in &mine {
            *by_severity
                .entry(f.finding.severity.to_string())
                .or_default() += 1;
        }
        let mut sample: Vec<ReplayFinding> = mine.iter().map(|f| (*f).clone()).collect();
        sample.sort_by_key(|f| std::cmp::Reverse(f.finding.severity));
        sample.truncate(SAMPLE);
        report.detectors.push(DetectorReplay {
            name: d.name().to_string(),
            version: d.info.version.clone(),
            findings: mine.len(),
            would_alert: mine.iter().filter(|f| f.finding.severity >= 2).count(),
            by_severity,
            failures: d.status().health.failures,
            sample,
        });
    }
    Ok(report)
}
