//! Branch protection or required checks switched off, and especially the bypass shape:
//! protection disabled (or weakened), a push or merge lands on the branch it covered,
//! protection is re-enabled. The toggle hides a change that never met the rules.
//!
//! - weakened → push/merge → restored: urgent (`branch.protection_bypass`);
//! - weakened → push/merge, not restored (yet): needs review, same signal (an alert keeps
//!   the finding and upgrades it when the restore arrives);
//! - weakened and left so for `settle_minutes`: needs review (`branch.protection_weakened`);
//!   weakened and restored in time with nothing pushed: informational.
//!
//! Planned work (a declared service account, e.g. the Terraform bot, inside a change
//! window) is informational. Read on system trajectories.

use plumbline_sdk::kit::git::pushes;
use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const BYPASS: &str = "branch.protection_bypass";
const WEAKENED: &str = "branch.protection_weakened";

const CHANGES: [&str; 4] = [
    "branch.protection.disabled",
    "branch.protection.changed",
    "branch.protection.enabled",
    "repo.ruleset.changed",
];

#[derive(Default)]
pub struct ProtectionToggle;

impl Detector for ProtectionToggle {
    fn info() -> Info {
        let info = Info::new(
            "branch-bypass.protection-toggle",
            "0.1.0",
            "Branch protection or required checks disabled, especially disabled → push → re-enabled",
        )
        .actions(&["branch.protection.*", "repo.ruleset.changed", "git.push.*", "pr.merged"])
        .views(&[TrajectoryKind::System])
        .signals(&[BYPASS, WEAKENED])
        .config(
            "settle_minutes",
            "30",
            "How long a weakening may stay before it is reported on its own (a quick restore with nothing pushed is informational)",
        );
        keys::planned_work(info)
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let settle = cx.config_parsed::<i64>("settle_minutes")? * 60_000_000_000;
        let policy = cx.settings::<Policy>()?;
        let now = cx.now();
        let all_pushes = pushes(t);

        let mut findings = Vec::new();
        for w in t.with_any_action(&CHANGES).filter(|e| is_weakening(e)) {
            let scope = scope_of(w);
            // The first change that undoes this weakening. A harmless edit of the rule (one
            // that weakens nothing but restores nothing either), or the restore of a
            // narrower rule, must not end the window: that would hide what landed after it.
            let restore = t
                .with_any_action(&CHANGES)
                .find(|r| r.time >= w.time && r.id != w.id && restores(r, w, &scope));
            let until = restore.map_or(i64::MAX, |r| r.time);
            // What landed on a covered branch while protection was down.
            let mut landed: Vec<&Event> = Vec::new();
            let mut branches: Vec<&str> = Vec::new();
            for p in &all_pushes {
                if p.time >= w.time
                    && p.time <= until
                    && covers(&scope, p.branch, p.protected || p.default_branch)
                {
                    landed.push(p.head());
                    branches.push(p.branch);
                }
            }
            for m in t.with_action("pr.merged") {
                let base = m.attr_str("pr.base").unwrap_or("");
                let default = m.attr_bool("pr.base_is_default") == Some(true);
                if m.time >= w.time && m.time <= until && covers(&scope, base, default) {
                    landed.push(m);
                    branches.push(base);
                }
            }
            landed.sort_by_key(|e| (e.time, e.id.as_str()));
            landed.dedup_by_key(|e| e.id.as_str());
            branches.sort_unstable();
            branches.dedup();
            let planned = policy.is_planned(w);
            let what = describe(w);
            let (signal, severity, line, next, score) = if !landed.is_empty() {
                let who: Vec<&str> = landed.iter().map(|e| e.actor.id.as_str()).collect();
                let (severity, tail, score) = match restore {
                    Some(r) => (
                        Severity::Urgent,
                        format!(", then {} restored it", r.actor.id),
                        0.93,
                    ),
                    None => (Severity::NeedsReview, ", still off".to_string(), 0.75),
                };
                (
                    BYPASS,
                    severity,
                    format!(
                        "{} {what} on {}; {} change(s) landed on {} by {}{tail}",
                        w.actor.id,
                        w.system,
                        landed.len(),
                        branches.join(", "),
                        dedup(who).join(", ")
                    ),
                    format!(
                        "Review every change that landed on {} while protection was off ({}) as if it were an unreviewed pull request; ask {} why protection was turned off",
                        branches.join(", "),
                        landed.iter().map(|e| e.id.as_str()).collect::<Vec<_>>().join(", "),
                        w.actor.id
                    ),
                    score,
                )
            } else if let Some(r) = restore {
                (
                    WEAKENED,
                    Severity::Informational,
                    format!(
                        "{} {what} on {} and {} restored it; nothing landed meanwhile",
                        w.actor.id, w.system, r.actor.id
                    ),
                    "None: recorded for the daily digest".to_string(),
                    0.2,
                )
            } else if now - w.time >= settle {
                (
                    WEAKENED,
                    Severity::NeedsReview,
                    format!("{} {what} on {} and left it so", w.actor.id, w.system),
                    format!(
                        "Ask {} for the reason and restore the protection on {} unless the change was approved",
                        w.actor.id, w.system
                    ),
                    0.6,
                )
            } else {
                continue;
            };
            let severity = if planned {
                Severity::Informational
            } else {
                severity
            };
            let mut evidence = vec![w];
            evidence.extend(landed.iter().copied());
            if signal == BYPASS || severity == Severity::Informational {
                evidence.extend(restore);
            }
            findings.push(
                Finding::new(signal, severity, title(line))
                    .evidence(evidence)
                    .score(score)
                    .next_step(next),
            );
        }
        Ok(findings)
    }
}

register_detector!(ProtectionToggle);

fn dedup(mut v: Vec<&str>) -> Vec<&str> {
    v.sort_unstable();
    v.dedup();
    v
}

fn is_weakening(e: &Event) -> bool {
    e.is("branch.protection.disabled") || e.attr_bool("weakened") == Some(true)
}

fn is_restore(e: &Event) -> bool {
    e.is("branch.protection.enabled")
        || ((e.is("branch.protection.changed") || e.is("repo.ruleset.changed"))
            && e.attr_bool("weakened") == Some(false)
            && e.attr_str("ruleset.action") != Some("deleted"))
}

/// Which branches a protection change covers: a rule pattern, a ruleset, or all.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    All,
    Pattern(String),
    /// Rulesets name their target but not (in the event) their branch conditions:
    /// they count for the default and protected branches.
    Ruleset(String),
}

fn scope_of(e: &Event) -> Scope {
    if e.is("repo.ruleset.changed") {
        return Scope::Ruleset(e.attr_str("ruleset.id").unwrap_or(&e.resource).to_string());
    }
    let pattern = e.attr_str("rule.pattern").unwrap_or(&e.resource);
    if pattern.is_empty() || pattern == "*" || e.attr_str("protection.scope") == Some("repository")
    {
        Scope::All
    } else {
        Scope::Pattern(pattern.to_string())
    }
}

/// Whether `r` undoes the weakening `w` (of scope `scope`): it is a restore, covers at
/// least what `w` weakened (the same rule, or all of them), and — for an edit — changes
/// one of the fields `w` weakened again.
fn restores(r: &Event, w: &Event, scope: &Scope) -> bool {
    if !is_restore(r) {
        return false;
    }
    let r_scope = scope_of(r);
    if r_scope != *scope && r_scope != Scope::All {
        return false;
    }
    if !r.is("branch.protection.changed") {
        return true;
    }
    let fields: Vec<&str> = w
        .attr_str("weakened.fields")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    // A weakening that names no field (a deleted rule) is undone by any non-weakening edit.
    fields.is_empty()
        || fields
            .iter()
            .any(|f| r.attr(&format!("changes.{f}.from")).is_some())
}

fn covers(scope: &Scope, branch: &str, protected_or_default: bool) -> bool {
    match scope {
        Scope::All | Scope::Ruleset(_) => protected_or_default,
        Scope::Pattern(p) => glob::matches_ignore_ascii_case(p, branch),
    }
}

fn describe(w: &Event) -> String {
    if w.is("branch.protection.disabled") {
        let on = match scope_of(w) {
            Scope::Pattern(p) => format!(" for {p}"),
            _ => String::new(),
        };
        return format!("disabled branch protection{on}");
    }
    if w.is("repo.ruleset.changed") {
        let name = w.attr_str("ruleset.name").unwrap_or("a ruleset");
        return match w.attr_str("ruleset.action") {
            Some("deleted") => format!("deleted ruleset {name}"),
            _ => format!(
                "set ruleset {name} to {}",
                w.attr_str("ruleset.enforcement").unwrap_or("not enforced")
            ),
        };
    }
    let fields = w.attr_str("weakened.fields").unwrap_or("protection");
    let on = match scope_of(w) {
        Scope::Pattern(p) => format!(" for {p}"),
        _ => String::new(),
    };
    format!("weakened {fields}{on}")
}

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::ProtectionToggle>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::ProtectionToggle>(FIXTURES);
    }
}
