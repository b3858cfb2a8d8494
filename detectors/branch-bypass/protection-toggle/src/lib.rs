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
//!
//! Incremental (`plumbline:detector@0.2.0`): the state is the protection changes seen
//! (scope, weakened or restored fields, how a title describes them) and, from the first
//! weakening on, the pushes and merges (branch, head event, who), judged together at each
//! call. `history` is read only when a weakening arrives after pushes it covers.

use plumbline_sdk::kept::{self, text, Record};
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

/// Most protection changes (about 400 bytes each) and most pushes and merges (about 200)
/// kept in the state, the oldest dropped first, within three eighths, three eighths and a
/// quarter of [`kept::BUDGET`]; the texts an event carries (a branch, a pattern, a field)
/// are cut by [`text`], and at most [`MAX_FIELDS`] fields kept of one change.
const MAX_CHANGES: usize = 50;
const MAX_LANDED: usize = 80;
const MAX_FIELDS: usize = 32;

/// What the detector remembers of a repository.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    /// Protection changes, in (time, id) order.
    changes: Vec<Change>,
    /// Pushes and merges from the first weakening on, in (time, id) order.
    pushes: Vec<Push>,
    merges: Vec<Merge>,
    /// The newest event time given so far (a weakening older than it arrived late).
    latest: i64,
}

/// One protection change: whether it weakens or restores, what it covers, and how a
/// finding describes it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Change {
    t: i64,
    id: String,
    who: String,
    system: String,
    weakening: bool,
    restore: bool,
    /// A `branch.protection.changed` (an edit of a rule).
    edit: bool,
    scope: Scope,
    /// The fields it weakened (`weakened.fields`) and the fields it changed
    /// (`changes.<field>.from`).
    fields: Vec<String>,
    changed: Vec<String>,
    what: String,
}

/// One push (its events folded): when, where, the event a reviewer opens first and who
/// pushed, and whether it went to a protected or default branch.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Push {
    t: i64,
    system: String,
    branch: String,
    after: String,
    head: (i64, String),
    /// The head is the push event itself.
    base: bool,
    who: String,
    covered: bool,
}

/// A `pr.merged`: into which branch, by whom.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Merge {
    t: i64,
    id: String,
    who: String,
    base: String,
    default: bool,
}

kept::record!(Change, Merge);

/// A push stands at its earliest event's time, under its head event's id (one push per
/// event, so once each).
impl Record for Push {
    fn at(&self) -> (i64, &str) {
        (self.t, &self.head.1)
    }
}

#[derive(Default)]
pub struct ProtectionToggle;

impl IncrementalDetector for ProtectionToggle {
    type State = Seen;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Policy>()?;
        Ok(())
    }

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

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let settle = cx.config_parsed::<i64>("settle_minutes")? * 60_000_000_000;
        let policy = cx.settings::<Policy>()?;
        let now = cx.now();

        // Protection changes first: a push or merge lands in a weakening's window whatever
        // the order of the calls that gave them.
        let mut late = None;
        let mut changes = Vec::new();
        for e in new_events
            .iter()
            .filter(|e| CHANGES.contains(&e.action.as_str()))
        {
            let change = Change::of(e);
            if change.weakening && change.t <= seen.latest {
                // Events this weakening covers were given before it and not kept.
                late = Some(late.map_or(change.t, |l: i64| l.min(change.t)));
            }
            // A change that neither weakens nor restores (a tightening) plays no part.
            if change.weakening || change.restore {
                changes.push(change);
            }
        }
        kept::fold(
            &mut seen.changes,
            changes,
            MAX_CHANGES,
            kept::BUDGET * 3 / 8,
        );
        // What left the trajectory goes with it.
        kept::prune(&mut seen.changes, cx);
        // Pushes and merges are kept from the first weakening on: nothing earlier lands.
        let from = seen
            .changes
            .iter()
            .filter(|c| c.weakening)
            .map(|c| c.t)
            .min()
            .unwrap_or(i64::MAX);
        seen.pushes.retain(|p| p.t >= from);
        seen.merges.retain(|m| m.t >= from);
        if let Some(late) = late {
            // Read only when a weakening arrives after events it covers (a delayed audit
            // log delivery): the pushes and merges since it, from the trajectory itself.
            for e in cx.history_all().iter().filter(|e| e.time >= late) {
                seen.land(e, from);
            }
        }
        for e in new_events {
            seen.land(e, from);
            seen.latest = seen.latest.max(e.time);
        }
        // The pushes were folded in place (a late event can make one older).
        kept::fold(&mut seen.pushes, [], MAX_LANDED, kept::BUDGET * 3 / 8);
        kept::fold(&mut seen.merges, [], MAX_LANDED, kept::BUDGET / 4);

        let mut findings = Vec::new();
        for w in seen.changes.iter().filter(|c| c.weakening) {
            // The first change that undoes this weakening. A harmless edit of the rule (one
            // that weakens nothing but restores nothing either), or the restore of a
            // narrower rule, must not end the window: that would hide what landed after it.
            let restore = seen
                .changes
                .iter()
                .find(|r| r.t >= w.t && r.id != w.id && restores(r, w));
            let until = restore.map_or(i64::MAX, |r| r.t);
            // What landed on a covered branch while protection was down: (time, id, who,
            // branch).
            let mut landed: Vec<(i64, &str, &str, &str)> = Vec::new();
            for p in &seen.pushes {
                if p.t >= w.t && p.t <= until && covers(&w.scope, &p.branch, p.covered) {
                    landed.push((p.head.0, &p.head.1, &p.who, &p.branch));
                }
            }
            for m in &seen.merges {
                if m.t >= w.t && m.t <= until && covers(&w.scope, &m.base, m.default) {
                    landed.push((m.t, &m.id, &m.who, &m.base));
                }
            }
            landed.sort_by_key(|l| (l.0, l.1));
            landed.dedup_by_key(|l| l.1);
            let branches = dedup(landed.iter().map(|l| l.3).collect());
            let planned = policy.is_service_account(&w.who) && policy.windows.contains(w.t);
            let what = &w.what;
            let (signal, severity, line, next, score) = if !landed.is_empty() {
                let who: Vec<&str> = landed.iter().map(|l| l.2).collect();
                let (severity, tail, score) = match restore {
                    Some(r) => (
                        Severity::Urgent,
                        format!(", then {} restored it", r.who),
                        0.93,
                    ),
                    None => (Severity::NeedsReview, ", still off".to_string(), 0.75),
                };
                (
                    BYPASS,
                    severity,
                    format!(
                        "{} {what} on {}; {} change(s) landed on {} by {}{tail}",
                        w.who,
                        w.system,
                        landed.len(),
                        branches.join(", "),
                        dedup(who).join(", ")
                    ),
                    format!(
                        "Review every change that landed on {} while protection was off ({}) as if it were an unreviewed pull request; ask {} why protection was turned off",
                        branches.join(", "),
                        landed.iter().map(|l| l.1).collect::<Vec<_>>().join(", "),
                        w.who
                    ),
                    score,
                )
            } else if let Some(r) = restore {
                (
                    WEAKENED,
                    Severity::Informational,
                    format!(
                        "{} {what} on {} and {} restored it; nothing landed meanwhile",
                        w.who, w.system, r.who
                    ),
                    "None: recorded for the daily digest".to_string(),
                    0.2,
                )
            } else if now - w.t >= settle {
                (
                    WEAKENED,
                    Severity::NeedsReview,
                    format!("{} {what} on {} and left it so", w.who, w.system),
                    format!(
                        "Ask {} for the reason and restore the protection on {} unless the change was approved",
                        w.who, w.system
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
            let mut evidence = vec![w.id.clone()];
            evidence.extend(landed.iter().map(|l| l.1.to_string()));
            if signal == BYPASS || severity == Severity::Informational {
                evidence.extend(restore.map(|r| r.id.clone()));
            }
            findings.push(
                Finding::new(signal, severity, title(line))
                    .evidence_ids(evidence)
                    .score(score)
                    .next_step(next),
            );
        }
        Ok(findings)
    }
}

register_incremental_detector!(ProtectionToggle);

impl Seen {
    /// Keeps `e` if it is a push or merge from `from` on (the first weakening's time). A
    /// push's events are folded into one push as `kit::git::pushes` does: by system,
    /// branch and head commit.
    fn land(&mut self, e: &Event, from: i64) {
        if e.time < from {
            return;
        }
        if e.is("pr.merged") {
            self.merges.push(Merge {
                t: e.time,
                id: e.id.clone(),
                who: e.actor.id.clone(),
                base: text(e.attr_str("pr.base").unwrap_or("")),
                default: e.attr_bool("pr.base_is_default") == Some(true),
            });
            return;
        }
        let branch = text(e.attr_str("branch").unwrap_or(""));
        let after = text(e.attr_str("after").unwrap_or(""));
        if !e.is("git.push.*") || branch.is_empty() || e.attr_bool("deleted") == Some(true) {
            return;
        }
        let covered = e.is("git.push.protected_branch")
            || e.attr_bool("protected") == Some(true)
            || e.is("git.push.default_branch")
            || e.attr_bool("to_default_branch") == Some(true);
        let base = e.is("git.push");
        let same = |p: &&mut Push| p.system == e.system && p.branch == branch && p.after == after;
        let Some(push) = self.pushes.iter_mut().find(same) else {
            self.pushes.push(Push {
                t: e.time,
                system: e.system.clone(),
                branch,
                after,
                head: (e.time, e.id.clone()),
                base,
                who: e.actor.id.clone(),
                covered,
            });
            return;
        };
        push.t = push.t.min(e.time);
        push.covered |= covered;
        // The event a reviewer opens first: the push event itself, else the first derived
        // one (a late event can be older than the head so far).
        let earlier = (e.time, e.id.as_str()) < (push.head.0, push.head.1.as_str());
        if (base && !push.base) || (base == push.base && earlier) {
            push.head = (e.time, e.id.clone());
            push.who = e.actor.id.clone();
            push.base = base;
        }
    }
}

impl Change {
    fn of(e: &Event) -> Change {
        let (weakening, restore) = (is_weakening(e), is_restore(e));
        let edit = e.is("branch.protection.changed");
        // The fields a weakening weakened, and those a restoring edit changed
        // (`changes.<field>.from`): an edit undoes a weakening of one of its fields.
        let fields = e
            .attr_str("weakened.fields")
            .filter(|_| weakening)
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .take(MAX_FIELDS)
            .map(text)
            .collect();
        let changed = e
            .attributes
            .keys()
            .filter(|_| edit && restore)
            .filter_map(|k| k.strip_prefix("changes.")?.strip_suffix(".from"))
            .filter(|f| !f.is_empty())
            .take(MAX_FIELDS)
            .map(text)
            .collect();
        Change {
            t: e.time,
            id: e.id.clone(),
            who: e.actor.id.clone(),
            system: e.system.clone(),
            weakening,
            restore,
            edit,
            scope: scope_of(e),
            fields,
            changed,
            what: text(&describe(e)),
        }
    }
}

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
enum Scope {
    All,
    Pattern(String),
    /// Rulesets name their target but not (in the event) their branch conditions:
    /// they count for the default and protected branches.
    Ruleset(String),
}

fn scope_of(e: &Event) -> Scope {
    if e.is("repo.ruleset.changed") {
        return Scope::Ruleset(text(e.attr_str("ruleset.id").unwrap_or(&e.resource)));
    }
    let pattern = e.attr_str("rule.pattern").unwrap_or(&e.resource);
    if pattern.is_empty() || pattern == "*" || e.attr_str("protection.scope") == Some("repository")
    {
        Scope::All
    } else {
        Scope::Pattern(text(pattern))
    }
}

/// Whether `r` undoes the weakening `w`: it is a restore, covers at least what `w`
/// weakened (the same rule, or all of them), and — for an edit — changes one of the
/// fields `w` weakened again.
fn restores(r: &Change, w: &Change) -> bool {
    if !r.restore {
        return false;
    }
    if r.scope != w.scope && r.scope != Scope::All {
        return false;
    }
    if !r.edit {
        return true;
    }
    // A weakening that names no field (a deleted rule) is undone by any non-weakening edit.
    w.fields.is_empty() || w.fields.iter().any(|f| r.changed.contains(f))
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
    plumbline_sdk::testing::incremental_fixture_tests!(super::ProtectionToggle);

    /// Many copies of one event with 500-byte ids and 8 KiB texts: the state stays under
    /// the host's bound (each call checks it), the answer under its 100 findings.
    #[test]
    fn state_stays_bounded() {
        use plumbline_sdk::testing::feed;
        let f = feed::load(FIXTURES, "positive-disable-push-reenable.json");
        let found = feed::flood::<super::ProtectionToggle>(&f, "github:w1", 300);
        assert!(found.len() <= 100, "{} findings", found.len());
    }

    /// A weakening delivered after the push it covers (audit logs arrive late) still
    /// finds it: the push, given before any weakening and not kept, is read from history.
    /// The verdict is the fixture's, as if the events had come in time order.
    #[test]
    fn a_late_weakening_finds_the_push_it_covers() {
        use plumbline_sdk::testing::Fixture;
        use plumbline_sdk::*;
        let path = std::path::Path::new(FIXTURES).join("positive-disable-push-reenable.json");
        let fixture: Fixture = Fixture::load(&path).unwrap();
        let t = fixture.to_trajectory();
        let info = <super::ProtectionToggle as IncrementalDetector>::info();
        let mut seen = super::Seen::default();
        let mut so_far: Vec<Event> = Vec::new();
        let mut found = Vec::new();
        for id in [
            "github:p1",
            "github:p1:default",
            "github:p1:risk.ci",
            "github:w1",
            "github:e1",
        ] {
            let e = t.events.iter().find(|e| e.id == id).unwrap().clone();
            so_far.push(e.clone());
            so_far.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
            let window = Window {
                id: t.id.clone(),
                kind: t.kind,
                key: t.key.clone(),
                start: so_far[0].time,
                end: so_far[so_far.len() - 1].time,
                dropped: 0,
                len: so_far.len() as u32,
                replay: false,
            };
            let cx = Context::native_incremental(
                &info,
                &fixture.config,
                fixture.now(),
                window,
                so_far.clone(),
            );
            found = super::ProtectionToggle
                .observe(&mut seen, &[e], &cx)
                .unwrap();
        }
        fixture.compare(&found).unwrap();
    }
}
