//! What a detector's answers must look like. Anything else is a contract violation: the
//! answer is discarded whole (a detector that breaks the contract once is not trusted for
//! the rest of that answer) and counted toward quarantine.

use std::collections::HashSet;

use super::bindings::wit;
use super::limits::Limits;
use plumbline_trajectory::finding::Finding;

const NAME_MAX: usize = 64;
const TITLE_MAX: usize = 200;

/// Checks `info()` at load time.
pub fn check_info(info: &wit::DetectorInfo) -> Result<(), String> {
    let name_ok = !info.name.is_empty()
        && info.name.len() <= NAME_MAX
        && info.name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        });
    if !name_ok {
        return Err(format!(
            "name `{}` must be 1–{NAME_MAX} characters of a-z, 0-9, `-`, `_`, `.`",
            info.name.escape_debug()
        ));
    }
    if info.version.trim().is_empty() || info.version.len() > NAME_MAX {
        return Err("version must be 1–64 characters".into());
    }
    if info.signals.is_empty() {
        return Err("declares no signals".into());
    }
    let mut keys = HashSet::new();
    for k in &info.config {
        if k.name.is_empty() || !keys.insert(k.name.as_str()) {
            return Err(format!(
                "config key `{}` is empty or declared twice",
                k.name
            ));
        }
    }
    for a in &info.actions {
        if a.is_empty() {
            return Err("an empty action pattern (use no actions to mean all)".into());
        }
    }
    Ok(())
}

/// Checks one answer against the contract and turns it into findings attributed to the
/// detector.
pub fn check_findings(
    info: &wit::DetectorInfo,
    trajectory: &wit::Trajectory,
    limits: &Limits,
    found: Vec<wit::Finding>,
) -> Result<Vec<Finding>, String> {
    if found.len() > limits.max_findings {
        return Err(format!(
            "output too large: {} findings (at most {})",
            found.len(),
            limits.max_findings
        ));
    }
    let bytes: usize = found
        .iter()
        .map(|f| {
            f.signal.len()
                + f.title.len()
                + f.next_step.len()
                + f.evidence.iter().map(String::len).sum::<usize>()
        })
        .sum();
    if bytes > limits.max_output_bytes {
        return Err(format!(
            "output too large: {bytes} bytes of text (at most {})",
            limits.max_output_bytes
        ));
    }
    let ids: HashSet<&str> = trajectory.events.iter().map(|e| e.id.as_str()).collect();
    let mut out = Vec::with_capacity(found.len());
    for f in found {
        if !info.signals.contains(&f.signal) {
            return Err(format!("undeclared signal `{}`", f.signal.escape_debug()));
        }
        if !(1..=3).contains(&f.severity) {
            return Err(format!(
                "`{}`: severity {} is not 1–3",
                f.signal, f.severity
            ));
        }
        if !(0.0..=1.0).contains(&f.score) {
            return Err(format!("`{}`: score {} is not in 0–1", f.signal, f.score));
        }
        if f.title.trim().is_empty() || f.title.chars().count() > TITLE_MAX {
            return Err(format!(
                "`{}`: title must be 1–{TITLE_MAX} characters",
                f.signal
            ));
        }
        if f.evidence.is_empty() {
            return Err(format!("`{}`: no evidence (it is mandatory)", f.signal));
        }
        if let Some(bad) = f.evidence.iter().find(|id| !ids.contains(id.as_str())) {
            return Err(format!(
                "`{}`: evidence `{}` is not an event of the trajectory",
                f.signal,
                bad.escape_debug()
            ));
        }
        let mut evidence = f.evidence;
        let mut seen = HashSet::new();
        evidence.retain(|id| seen.insert(id.clone()));
        out.push(Finding {
            detector: info.name.clone(),
            detector_version: info.version.clone(),
            signal: f.signal,
            severity: f.severity,
            score: f.score,
            title: f.title,
            evidence,
            next_step: f.next_step,
        });
    }
    Ok(out)
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
            &info(),
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
        let check =
            |f: wit::Finding| check_findings(&info(), &traj(), &LIMITS, vec![f]).unwrap_err();
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
        assert!(check_findings(&info(), &traj(), &LIMITS, many)
            .unwrap_err()
            .contains("4 findings"));
    }

    #[test]
    fn info_is_checked() {
        let mut i = info();
        assert!(check_info(&i).is_ok());
        i.name = "Bad Name".into();
        assert!(check_info(&i).is_err());
        let mut i = info();
        i.signals.clear();
        assert!(check_info(&i).unwrap_err().contains("no signals"));
    }
}
