//! The contract checks: what a detector's `info()` and each of its answers must satisfy.
//! The host runs them on every load and every call (a breach is a contract violation: the
//! answer is discarded whole and counted toward quarantine); the SDK's fixture harness runs
//! the same functions with the same default limits, so a detector that passes its fixtures
//! natively passes them in the host.

use std::collections::HashSet;

use crate::types::{Finding, Info};

/// Most characters (bytes: the name is ASCII) in a detector name, and most bytes in its
/// version.
pub const NAME_MAX: usize = 64;
/// Most characters in a finding title.
pub const TITLE_MAX: usize = 200;
/// Default most findings per answer (`runtime.max_findings`).
pub const DEFAULT_MAX_FINDINGS: usize = 100;
/// Default most bytes of text per answer (`runtime.max_output_bytes`): signals, titles,
/// next steps and evidence ids together.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 256 * 1024;

/// The size limits on one answer. The host configures them (`[runtime] max_findings`,
/// `max_output_bytes`); [`Limits::default`] is the host's default configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_findings: usize,
    pub max_output_bytes: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_findings: DEFAULT_MAX_FINDINGS,
        max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Read access to a finding's fields, so the checks and the fixture comparison run on the
/// contract's [`Finding`] and, without copying, on a host's own finding types (its WIT
/// bindings' `Finding`, its attributed alert finding).
pub trait FindingFields {
    fn signal(&self) -> &str;
    fn severity(&self) -> u8;
    fn score(&self) -> f32;
    fn title(&self) -> &str;
    fn evidence(&self) -> &[String];
    fn next_step(&self) -> &str;
}

impl FindingFields for Finding {
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

/// Checks `info()` (the host does at load time): the name is 1–[`NAME_MAX`] characters of
/// `a-z 0-9 - _ .`, the version 1–64 characters, at least one signal, config keys named and
/// unique, no empty action pattern.
pub fn check_info(info: &Info) -> Result<(), String> {
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

/// Checks one answer: at most `limits.max_findings` findings and `limits.max_output_bytes`
/// of text; each finding with a signal declared in `info`, severity 1–3, score 0–1, a title
/// of 1–[`TITLE_MAX`] characters (not blank), and at least one evidence id, every one of
/// them an event of the trajectory (`event_ids`: the ids of its events).
///
/// The first breach is the error, with the host's wording.
pub fn check_findings<'a, F: FindingFields>(
    info: &Info,
    event_ids: impl IntoIterator<Item = &'a str>,
    limits: &Limits,
    found: &[F],
) -> Result<(), String> {
    if found.len() > limits.max_findings {
        return Err(format!(
            "output too large: {} findings (at most {})",
            found.len(),
            limits.max_findings
        ));
    }
    let bytes: usize = found.iter().map(output_bytes).sum();
    if bytes > limits.max_output_bytes {
        return Err(format!(
            "output too large: {bytes} bytes of text (at most {})",
            limits.max_output_bytes
        ));
    }
    let ids: HashSet<&str> = event_ids.into_iter().collect();
    for f in found {
        let signal = f.signal();
        if !info.signals.iter().any(|s| s == signal) {
            return Err(format!("undeclared signal `{}`", signal.escape_debug()));
        }
        if !(1..=3).contains(&f.severity()) {
            return Err(format!("`{signal}`: severity {} is not 1–3", f.severity()));
        }
        if !(0.0..=1.0).contains(&f.score()) {
            return Err(format!("`{signal}`: score {} is not in 0–1", f.score()));
        }
        if f.title().trim().is_empty() || f.title().chars().count() > TITLE_MAX {
            return Err(format!(
                "`{signal}`: title must be 1–{TITLE_MAX} characters"
            ));
        }
        if f.evidence().is_empty() {
            return Err(format!("`{signal}`: no evidence (it is mandatory)"));
        }
        if let Some(bad) = f.evidence().iter().find(|id| !ids.contains(id.as_str())) {
            return Err(format!(
                "`{signal}`: evidence `{}` is not an event of the trajectory",
                bad.escape_debug()
            ));
        }
    }
    Ok(())
}

/// The bytes of text one finding adds to an answer (what `max_output_bytes` counts).
pub fn output_bytes<F: FindingFields>(f: &F) -> usize {
    f.signal().len()
        + f.title().len()
        + f.next_step().len()
        + f.evidence().iter().map(String::len).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Ported from the runtime's contract module, over the contract's own types.
    fn info() -> Info {
        Info::new("t.x", "1", "").signals(&["s"])
    }

    const IDS: [&str; 2] = ["e1", "e2"];

    fn finding(evidence: &[&str]) -> Finding {
        Finding {
            signal: "s".into(),
            severity: 2,
            score: 0.5,
            title: "t".into(),
            evidence: evidence.iter().map(|s| s.to_string()).collect(),
            next_step: String::new(),
        }
    }

    const LIMITS: Limits = Limits {
        max_findings: 3,
        max_output_bytes: 100,
    };

    #[test]
    fn good_findings_pass() {
        let f = [finding(&["e1", "e2", "e1"])];
        assert_eq!(check_findings(&info(), IDS, &LIMITS, &f), Ok(()));
    }

    #[test]
    fn each_breach_is_named() {
        let check = |f: Finding| check_findings(&info(), IDS, &LIMITS, &[f]).unwrap_err();
        assert!(check(finding(&["e9"])).contains("`e9` is not an event"));
        assert!(check(finding(&[])).contains("no evidence"));
        let mut f = finding(&["e1"]);
        f.severity = 4;
        assert!(check(f).contains("severity 4"));
        let mut f = finding(&["e1"]);
        f.severity = 0;
        assert!(check(f).contains("severity 0"));
        let mut f = finding(&["e1"]);
        f.signal = "other".into();
        assert!(check(f).contains("undeclared signal"));
        let mut f = finding(&["e1"]);
        f.score = f32::NAN;
        assert!(check(f).contains("score"));
        let mut f = finding(&["e1"]);
        f.score = 1.5;
        assert!(check(f).contains("score 1.5"));
        let mut f = finding(&["e1"]);
        f.title = "   ".into();
        assert!(check(f).contains("title"));
        let mut f = finding(&["e1"]);
        f.next_step = "x".repeat(200);
        assert!(check(f).contains("output too large"));
        let many = vec![finding(&["e1"]); 4];
        assert!(check_findings(&info(), IDS, &LIMITS, &many)
            .unwrap_err()
            .contains("4 findings"));
    }

    #[test]
    fn titles_are_counted_in_characters() {
        let wide = Limits::DEFAULT;
        let mut f = finding(&["e1"]);
        f.title = "é".repeat(TITLE_MAX);
        assert_eq!(check_findings(&info(), IDS, &wide, &[f.clone()]), Ok(()));
        f.title.push('é');
        assert!(check_findings(&info(), IDS, &wide, &[f])
            .unwrap_err()
            .contains("title must be 1–200 characters"));
    }

    #[test]
    fn default_limits_are_the_hosts() {
        assert_eq!(Limits::default().max_findings, 100);
        assert_eq!(Limits::default().max_output_bytes, 262_144);
        let many = vec![finding(&["e1"]); 101];
        assert!(check_findings(&info(), IDS, &Limits::default(), &many)
            .unwrap_err()
            .contains("101 findings (at most 100)"));
    }

    #[test]
    fn info_is_checked() {
        let i = info();
        assert!(check_info(&i).is_ok());
        let mut i = info();
        i.name = "Bad Name".into();
        assert!(check_info(&i).is_err());
        let mut i = info();
        i.name = "x".repeat(NAME_MAX + 1);
        assert!(check_info(&i).is_err());
        let mut i = info();
        i.signals.clear();
        assert!(check_info(&i).unwrap_err().contains("no signals"));
        let mut i = info();
        i.version = " ".into();
        assert!(check_info(&i).unwrap_err().contains("version"));
        let i = info().config("k", "1", "").config("k", "2", "");
        assert!(check_info(&i).unwrap_err().contains("declared twice"));
        let i = info().actions(&["git.*", ""]);
        assert!(check_info(&i).unwrap_err().contains("empty action pattern"));
    }
}
