//! Pushes that skip review: a force push to the default or a protected branch (history
//! rewritten where everyone builds from), and a direct, non-merge push to a protected
//! branch. Either touching auth, permission or secrets code is urgent (policy pack:
//! "direct-to-prod change that disables auth checks").
//!
//! A push that lands a pull-request merge is not direct: it is matched to its `pr.merged`
//! by commit. Push and merge arrive as separate deliveries, and an alert keeps every
//! finding it ever had, so a non-forced push is judged only after `settle_seconds` (on the
//! host clock) — by then its merge event, if any, is in the trajectory. Break-glass pushes
//! that name an incident (`INC-1234`) are informational unless they touch auth code.
//!
//! Read on system trajectories (the repository's story, whoever pushed).
//!
//! Incremental (`plumbline:detector@0.2.0`): the state is the pushes to protected or
//! default branches (each folded from its events: ids, flags, risk paths, the message's
//! first line and incident) and the merges seen (commit), judged again at each call, so a
//! direct push is raised once `settle_seconds` pass without its merge.

use plumbline_sdk::kept::{self, text, Record};
use plumbline_sdk::kit::git::{claimed_merge, ticket_in};
use plumbline_sdk::*;

const FORCE: &str = "branch.force_push";
const DIRECT: &str = "branch.direct_push";

/// Most pushes (about 500 bytes each) and merges (about 200) kept in the state, the
/// oldest dropped first, within five eighths and three eighths of [`kept::BUDGET`]; the
/// texts an event carries (a category, a path, a commit) are cut by [`text`].
const MAX_PUSHES: usize = 60;
const MAX_MERGES: usize = 100;

/// What the detector remembers of a repository: its pushes to protected or default
/// branches and its merges, each list in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    pushes: Vec<Push>,
    merges: Vec<Merge>,
}

/// One push, folded from its events as `kit::git::Push` is: what a finding needs of them.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Push {
    /// Its earliest event's time.
    t: i64,
    system: String,
    branch: String,
    after: String,
    /// Commit ids that identify its result (`after`, `head_commit.id`).
    commits: Vec<String>,
    /// Its events' (time, id), in that order.
    events: Vec<(i64, String)>,
    /// The event a reviewer opens first, whether it is the push event itself, and who
    /// pushed.
    head: (i64, String),
    base: bool,
    who: String,
    forced: bool,
    protected: bool,
    default_branch: bool,
    /// Its high-risk path events, in (time, id) order.
    risk: Vec<Risk>,
    /// The first line of its commit message, quoted for the title.
    line: String,
    /// The incident its message names, and the pull request it claims to merge.
    ticket: Option<String>,
    claim: Option<u64>,
}

/// One `git.push.high_risk_path` event: its category and first path.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Risk {
    t: i64,
    id: String,
    category: String,
    path: Option<String>,
}

/// A `pr.merged` with its merge commit.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Merge {
    t: i64,
    id: String,
    system: String,
    commit: String,
}

kept::record!(Risk, Merge);

/// A push stands at its earliest event's time, under its head event's id (one push per
/// event, so once each).
impl Record for Push {
    fn at(&self) -> (i64, &str) {
        (self.t, &self.head.1)
    }
}

#[derive(Default)]
pub struct ProtectedPush;

impl IncrementalDetector for ProtectedPush {
    type State = Seen;

    fn info() -> Info {
        Info::new(
            "branch-bypass.protected-push",
            "0.1.0",
            "Force pushes to default/protected branches and direct (non-merge) pushes to protected branches",
        )
        // `pr.merged` too: a push that lands a merge is not direct (merges are few).
        .actions(&["git.push.*", "pr.merged"])
        .views(&[TrajectoryKind::System])
        .signals(&[FORCE, DIRECT])
        .config(
            "urgent_paths",
            "auth,permissions,secrets",
            "High-risk path categories that make a bypassing push urgent",
        )
        .config(
            "release_bots",
            "",
            "Accounts (comma-separated globs) whose direct, non-forced pushes are routine (version bumps)",
        )
        .config(
            "break_glass_prefixes",
            "INC-,SEV-,INCIDENT-",
            "Incident reference prefixes that mark a documented break-glass push",
        )
        .config(
            "settle_seconds",
            "180",
            "How long after a non-forced push its merge event may still arrive",
        )
    }

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let urgent_paths = cx.config_list("urgent_paths");
        let urgent_paths: Vec<&str> = urgent_paths.iter().map(String::as_str).collect();
        let bots = cx.config_list("release_bots");
        let settle = cx.config_parsed::<i64>("settle_seconds")? * 1_000_000_000;
        let now = cx.now();

        if !new_events.is_empty() {
            let prefixes = cx.config_list("break_glass_prefixes");
            let mut merges = Vec::new();
            for e in new_events {
                if e.is("pr.merged") {
                    let commit = e.attr_str("pr.merge_commit").unwrap_or("");
                    if !commit.is_empty() {
                        merges.push(Merge {
                            t: e.time,
                            id: e.id.clone(),
                            system: e.system.clone(),
                            commit: text(commit),
                        });
                    }
                } else {
                    seen.fold(e, &prefixes);
                }
            }
            // The pushes were folded in place (a late event can make one older).
            kept::fold(&mut seen.pushes, [], MAX_PUSHES, kept::BUDGET * 5 / 8);
            kept::fold(&mut seen.merges, merges, MAX_MERGES, kept::BUDGET * 3 / 8);
        }
        // What left the trajectory goes with it.
        kept::prune(&mut seen.pushes, cx);
        kept::prune(&mut seen.merges, cx);

        let mut findings = Vec::new();
        for push in &seen.pushes {
            let (signal, why) = if push.forced && (push.protected || push.default_branch) {
                (FORCE, "Force push")
            } else if push.protected && !push.forced {
                // A push that lands a pull-request merge is not direct.
                let merged = seen
                    .merges
                    .iter()
                    .any(|m| m.system == push.system && push.commits.contains(&m.commit));
                if merged {
                    continue;
                }
                if bots.iter().any(|b| glob::matches(b, &push.who)) {
                    continue;
                }
                // Its merge event may still be on its way.
                if now - push.t < settle {
                    continue;
                }
                (DIRECT, "Direct push")
            } else {
                continue;
            };
            let touches = push
                .risk
                .iter()
                .any(|r| urgent_paths.contains(&r.category.as_str()));
            let ticket = push.ticket.as_deref();
            let severity = match (ticket, touches) {
                (Some(_), false) => Severity::Informational,
                (Some(_), true) => Severity::NeedsReview,
                (None, true) => Severity::Urgent,
                (None, false) => Severity::NeedsReview,
            };
            findings.push(finding(push, signal, why, severity, ticket, &urgent_paths));
        }
        Ok(findings)
    }
}

register_incremental_detector!(ProtectedPush);

impl Seen {
    /// Folds one push event into its push (`kit::git::pushes` groups them by system,
    /// branch and head commit), keeping the pushes to a protected or default branch.
    fn fold(&mut self, e: &Event, prefixes: &[String]) {
        let branch = text(e.attr_str("branch").unwrap_or(""));
        let after = text(e.attr_str("after").unwrap_or(""));
        if branch.is_empty() || e.attr_bool("deleted") == Some(true) {
            return;
        }
        let forced = e.is("git.push.force") || e.attr_bool("forced") == Some(true);
        let protected = e.is("git.push.protected_branch") || e.attr_bool("protected") == Some(true);
        let default_branch =
            e.is("git.push.default_branch") || e.attr_bool("to_default_branch") == Some(true);
        let at = self
            .pushes
            .iter()
            .position(|p| p.system == e.system && p.branch == branch && p.after == after);
        let push = match at {
            Some(i) => &mut self.pushes[i],
            // Every event of a push carries its flags (the adapters derive them from the
            // push event), so one to neither branch kind is a push this detector never
            // raises: it is not kept.
            None if !(protected || default_branch) => return,
            None => {
                let message = e.attr_str("head_commit.message").unwrap_or("");
                self.pushes.push(Push {
                    t: e.time,
                    system: e.system.clone(),
                    branch,
                    after: after.clone(),
                    commits: Vec::new(),
                    events: Vec::new(),
                    head: (e.time, e.id.clone()),
                    base: e.is("git.push"),
                    who: e.actor.id.clone(),
                    forced: false,
                    protected: false,
                    default_branch: false,
                    risk: Vec::new(),
                    line: quoted(message.lines().next().unwrap_or(""), 50),
                    // Judged with the break-glass prefixes configured when it arrived.
                    ticket: ticket_in(message, prefixes).map(text),
                    claim: claimed_merge(message),
                });
                self.pushes.last_mut().expect("just pushed")
            }
        };
        push.t = push.t.min(e.time);
        push.forced |= forced;
        push.protected |= protected;
        push.default_branch |= default_branch;
        for c in [after, text(e.attr_str("head_commit.id").unwrap_or(""))] {
            if !c.is_empty() && !push.commits.contains(&c) {
                push.commits.push(c);
            }
        }
        let at = push
            .events
            .partition_point(|(t, id)| (*t, id.as_str()) < (e.time, e.id.as_str()));
        if push.events.get(at).is_some_and(|(_, id)| *id == e.id) {
            return;
        }
        push.events.insert(at, (e.time, e.id.clone()));
        // The event a reviewer opens first: the first push event itself, else the first
        // derived one (a late event can be older than the head so far).
        let base = e.is("git.push");
        let earlier = (e.time, e.id.as_str()) < (push.head.0, push.head.1.as_str());
        let head = match (base, push.base) {
            (true, false) => true,
            (false, true) => false,
            _ => earlier,
        };
        if head {
            push.head = (e.time, e.id.clone());
            push.who = e.actor.id.clone();
            push.base = base;
        }
        if e.is("git.push.high_risk_path") {
            if let Some(category) = e.attr_str("risk.category") {
                let risk = Risk {
                    t: e.time,
                    id: e.id.clone(),
                    category: text(category),
                    path: e.attr_str("risk.paths.0").map(text),
                };
                kept::fold(&mut push.risk, [risk], usize::MAX, usize::MAX);
            }
        }
    }
}

fn finding(
    push: &Push,
    signal: &str,
    why: &str,
    severity: Severity,
    ticket: Option<&str>,
    urgent_paths: &[&str],
) -> Finding {
    let who = &push.who;
    let kind = if push.protected {
        "protected branch"
    } else {
        "default branch"
    };
    let mut risky: Vec<&str> = push
        .risk
        .iter()
        .map(|r| r.category.as_str())
        .filter(|r| urgent_paths.contains(r))
        .collect();
    risky.sort_unstable();
    risky.dedup();
    let paths = if risky.is_empty() {
        String::new()
    } else {
        let first = risky
            .iter()
            .flat_map(|r| push.risk.iter().filter(move |x| x.category == *r))
            .find_map(|x| x.path.as_deref())
            .unwrap_or("");
        format!(" touching {} code ({first})", risky.join("/"))
    };
    let claim = match push.claim {
        Some(n) if signal == DIRECT => {
            format!(" — message claims PR #{n}, but no such merge was seen")
        }
        _ => String::new(),
    };
    let glass = ticket
        .map(|tk| format!(" (break-glass {tk})"))
        .unwrap_or_default();
    let line = title(format!(
        "{why} to {kind} {} of {} by {who}{paths}{glass}{claim}: {}",
        push.branch, push.system, push.line
    ));
    let short = &push.after[..push.after.len().min(12)];
    let next = match (severity, ticket) {
        (Severity::Informational, Some(tk)) => format!(
            "Check the follow-up review of {short} on {} happens within 24 hours ({tk}) and rotate any credential used",
            push.branch
        ),
        _ if signal == FORCE => format!(
            "Compare {} before and after the force push ({short}) for dropped or rewritten commits; ask {who} why, and restore from the previous head if unjustified",
            push.branch
        ),
        _ => format!(
            "Review the diff of {short} on {} with a second reviewer and ask {who} why it skipped a pull request; revert if unjustified",
            push.branch
        ),
    };
    Finding::new(signal, severity, line)
        .evidence_ids(push.events.iter().map(|(_, id)| id.clone()))
        .score(match severity {
            Severity::Urgent => 0.9,
            Severity::NeedsReview => 0.7,
            Severity::Informational => 0.3,
        })
        .next_step(next)
}

#[cfg(test)]
mod tests {
    plumbline_sdk::testing::incremental_fixture_tests!(super::ProtectedPush);

    /// Many copies of one event with 500-byte ids and 8 KiB texts: the state stays under
    /// the host's bound (each call checks it), the answer under its 100 findings.
    #[test]
    fn state_stays_bounded() {
        use plumbline_sdk::testing::feed;
        let f = feed::load(FIXTURES, "positive-force-push-main.json");
        let found = feed::flood::<super::ProtectedPush>(&f, "github:d-force:force", 300);
        assert!(found.len() <= 100, "{} findings", found.len());
    }

    /// Replaces the fixture `negative-actor-trajectory.json` (the same events seen through
    /// the pusher's actor trajectory): the host never offers this detector that view.
    #[test]
    fn reads_only_its_views() {
        use plumbline_sdk::{IncrementalDetector, TrajectoryKind};
        let info = super::ProtectedPush::info();
        assert!(info.reads_view(TrajectoryKind::System));
        assert!(!info.reads_view(TrajectoryKind::Actor));
    }
}
