//! What a detector's answers must look like: the rules are `plumbline-contract`'s (the
//! SDK's fixture harness runs the very same functions), applied here to the WIT bindings'
//! values. Anything else is a contract violation: the answer is discarded whole (a
//! detector that breaks the contract once is not trusted for the rest of that answer) and
//! counted toward quarantine.

use std::collections::HashSet;

use plumbline_contract as c;
use plumbline_trajectory::finding::Finding;

use super::bindings::wit;
use super::limits::Limits;

/// What a component declares, as the contract's plain type (converted once, at load).
pub fn declared(info: &wit::DetectorInfo) -> c::Info {
    c::Info {
        name: info.name.clone(),
        version: info.version.clone(),
        description: info.description.clone(),
        sources: info.sources.clone(),
        actions: info.actions.clone(),
        signals: info.signals.clone(),
        config: info
            .config
            .iter()
            .map(|k| c::ConfigKey {
                name: k.name.clone(),
                default_value: k.default_value.clone(),
                description: k.description.clone(),
            })
            .collect(),
        views: info.views.iter().map(|v| view(*v)).collect(),
    }
}

fn view(v: wit::TrajectoryKind) -> c::TrajectoryKind {
    match v {
        wit::TrajectoryKind::Actor => c::TrajectoryKind::Actor,
        wit::TrajectoryKind::System => c::TrajectoryKind::System,
        wit::TrajectoryKind::ActorDrift => c::TrajectoryKind::ActorDrift,
        wit::TrajectoryKind::SystemDrift => c::TrajectoryKind::SystemDrift,
    }
}

/// A 0.2.0 finding as 0.1.0's (the records are the same field for field).
pub fn finding_v1(f: super::bindings_v2::wit::Finding) -> wit::Finding {
    wit::Finding {
        signal: f.signal,
        severity: f.severity,
        score: f.score,
        title: f.title,
        evidence: f.evidence,
        next_step: f.next_step,
    }
}

impl c::FindingFields for wit::Finding {
    fn signal(&self) -> &str {
        &self.signal
    }
    fn severity(&self) -> u8 {
        self.severity
    }
    fn score(&self) -> f32 {
        self.score
    }
    fn title(&self) -> &str {
        &self.title
    }
    fn evidence(&self) -> &[String] {
        &self.evidence
    }
    fn next_step(&self) -> &str {
        &self.next_step
    }
}

/// Checks one answer against the contract and turns it into findings attributed to the
/// detector (repeated evidence ids dropped).
pub fn check_findings(
    info: &c::Info,
    trajectory: &wit::Trajectory,
    limits: &Limits,
    found: Vec<wit::Finding>,
) -> Result<Vec<Finding>, String> {
    check_findings_citing(
        info,
        trajectory.events.iter().map(|e| e.id.as_str()),
        limits,
        found,
    )
}

/// As [`check_findings`], with the ids evidence may cite given directly (0.2.0: the
/// events the detector was given or read on this trajectory).
pub fn check_findings_citing<'a>(
    info: &c::Info,
    citable: impl IntoIterator<Item = &'a str>,
    limits: &Limits,
    found: Vec<wit::Finding>,
) -> Result<Vec<Finding>, String> {
    let limits = c::Limits {
        max_findings: limits.max_findings,
        max_output_bytes: limits.max_output_bytes,
    };
    c::check_findings(info, citable, &limits, &found)?;
    Ok(found
        .into_iter()
        .map(|f| {
            let mut evidence = f.evidence;
            let mut seen = HashSet::new();
            evidence.retain(|id| seen.insert(id.clone()));
            Finding {
                detector: info.name.clone(),
                detector_version: info.version.clone(),
                signal: f.signal,
                severity: f.severity,
                score: f.score,
                title: f.title,
                evidence,
                next_step: f.next_step,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> wit::DetectorInfo {
        wit::DetectorInfo {
            name: "t.x".into(),
            version: "1".into(),
            description: String::new(),
            sources: vec![],
            actions: vec![],
            signals: vec!["s".into()],
            config: vec![],
            views: vec![],
        }
    }

    fn traj() -> wit::Trajectory {
        let e = |id: &str| wit::Event {
            id: id.into(),
            time: 0,
            source: "custom".into(),
            actor: wit::Actor {
                id: "a".into(),
                kind: wit::ActorKind::Human,
                display: String::new(),
            },
            system: "s".into(),
            action: "x".into(),
            resource: String::new(),
            environment: wit::Environment::Unknown,
            destination: None,
            volume: None,
            attributes: vec![],
        };
        wit::Trajectory {
            id: "t".into(),
            kind: wit::TrajectoryKind::Actor,
            key: "a".into(),
            start: 0,
            end: 0,
            dropped: 0,
            hash: String::new(),
            events: vec![e("e1"), e("e2")],
        }
    }

    fn finding(evidence: &[&str]) -> wit::Finding {
        wit::Finding {
            signal: "s".into(),
            severity: 2,
            score: 0.5,
            title: "t".into(),
            evidence: evidence.iter().map(|s| s.to_string()).collect(),
            next_step: String::new(),
        }
    }

    const LIMITS: Limits = Limits {
        deadline: std::time::Duration::from_millis(50),
        memory_bytes: 1 << 20,
        max_findings: 3,
        max_output_bytes: 100,
    };

    #[test]
    fn good_findings_are_attributed() {
        let out = check_findings(
            &declared(&info()),
            &traj(),
            &LIMITS,
            vec![finding(&["e1", "e2", "e1"])],
        )
        .unwrap();
        assert_eq!(out[0].detector, "t.x");
        assert_eq!(out[0].evidence, vec!["e1", "e2"]);
    }

    #[test]
    fn each_breach_is_named() {
        let check = |f: wit::Finding| {
            check_findings(&declared(&info()), &traj(), &LIMITS, vec![f]).unwrap_err()
        };
        assert!(check(finding(&["e9"])).contains("`e9` is not an event"));
        assert!(check(finding(&[])).contains("no evidence"));
        let mut f = finding(&["e1"]);
        f.severity = 4;
        assert!(check(f).contains("severity 4"));
        let mut f = finding(&["e1"]);
        f.signal = "other".into();
        assert!(check(f).contains("undeclared signal"));
        let mut f = finding(&["e1"]);
        f.score = f32::NAN;
        assert!(check(f).contains("score"));
        let mut f = finding(&["e1"]);
        f.title = "   ".into();
        assert!(check(f).contains("title"));
        let mut f = finding(&["e1"]);
        f.next_step = "x".repeat(200);
        assert!(check(f).contains("output too large"));
        let many = vec![finding(&["e1"]); 4];
        assert!(check_findings(&declared(&info()), &traj(), &LIMITS, many)
            .unwrap_err()
            .contains("4 findings"));
    }

    #[test]
    fn info_is_checked() {
        let mut i = info();
        assert!(c::check_info(&declared(&i)).is_ok());
        i.name = "Bad Name".into();
        assert!(c::check_info(&declared(&i)).is_err());
        let mut i = info();
        i.signals.clear();
        assert!(c::check_info(&declared(&i))
            .unwrap_err()
            .contains("no signals"));
    }
}
