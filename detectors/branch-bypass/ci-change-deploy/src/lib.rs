//! CI configuration changed together with a production deploy: the pipeline that decides
//! what reaches production was edited and the edited pipeline shipped, without the change
//! going through a reviewed merge. A changed pipeline deployed from a non-default branch
//! (bypassing the default branch's protections altogether) is urgent.
//!
//! A CI change that arrived as a reviewed merge is the normal path and is not raised.
//! Read on system trajectories (the repository).
//!
//! Incremental (`plumbline:detector@0.2.0`): the state is the CI-changing pushes (head
//! event, branch, commits, CI paths, the message's first line and incident), the merges
//! (commit, reviewed) and the deploys seen (environment, commit, ref), judged together at
//! each call. A push's own events come from `history`, read when its first CI change
//! arrives, and again only when another of its events arrives after that (late).

use plumbline_sdk::kept::{self, text, Record};
use plumbline_sdk::kit::git::{pushes, ticket_in};
use plumbline_sdk::*;

const SIGNAL: &str = "branch.ci_change_with_deploy";
const DEPLOYS: [&str; 2] = ["deploy.created", "deploy.status"];

/// Most CI-changing pushes (about 500 bytes each), merges (about 150) and deploys (about
/// 200) kept in the state, the oldest dropped first, within three eighths, a quarter and
/// three eighths of [`kept::BUDGET`]; the texts an event carries (a path, a branch, a
/// commit) are cut by [`text`].
const MAX_PUSHES: usize = 30;
const MAX_MERGES: usize = 80;
const MAX_DEPLOYS: usize = 80;

/// What the detector remembers of a repository, each list in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    pushes: Vec<Push>,
    merges: Vec<Merge>,
    deploys: Vec<Deploy>,
}

/// A push that changed CI configuration: what a finding needs of its events.
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
    /// The event a reviewer opens first (the push event itself, else the first derived
    /// one), and who pushed.
    head: String,
    who: String,
    default_branch: bool,
    /// Its CI path events, in (time, id) order.
    ci: Vec<Change>,
    /// The first line of its commit message, quoted for the title, and the incident the
    /// message names.
    line: String,
    ticket: Option<String>,
}

/// One `git.push.high_risk_path` event of category `ci`, and its first path.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Change {
    t: i64,
    id: String,
    path: Option<String>,
}

/// A `pr.merged` with its merge commit and whether it was reviewed (when known).
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Merge {
    t: i64,
    id: String,
    system: String,
    commit: String,
    reviewed: Option<bool>,
}

/// A deploy event: where to, which commit or ref, by whom.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Deploy {
    t: i64,
    id: String,
    environment: Environment,
    /// `deploy.environment`, as the title names it.
    name: Option<String>,
    sha: String,
    git_ref: Option<String>,
    by: String,
}

kept::record!(Change, Merge, Deploy);

/// A push stands at its earliest event's time, under its head event's id (one push per
/// event, so once each).
impl Record for Push {
    fn at(&self) -> (i64, &str) {
        (self.t, &self.head)
    }
}

#[derive(Default)]
pub struct CiChangeDeploy;

impl IncrementalDetector for CiChangeDeploy {
    type State = Seen;

    fn info() -> Info {
        Info::new(
            "branch-bypass.ci-change-deploy",
            "0.1.0",
            "CI configuration changed and deployed to production without a reviewed merge",
        )
        // `pr.merged` too: a CI change that arrived as a reviewed merge is the normal path
        // (merges are few on a repository). Every push event, so that one arriving after
        // its push's CI change (late) is not missed.
        .actions(&["git.push.*", "deploy.created", "deploy.status", "pr.merged"])
        .views(&[TrajectoryKind::System])
        .signals(&[SIGNAL])
        .config(
            "window_minutes",
            "180",
            "How long after the CI change a production deploy still counts",
        )
        .config(
            "production_environments",
            "prod",
            "Deployment environments that count as production",
        )
        .config(
            "break_glass_prefixes",
            "INC-,SEV-,INCIDENT-",
            "Incident reference prefixes that mark a documented break-glass change",
        )
    }

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let window = cx.config_parsed::<i64>("window_minutes")? * 60_000_000_000;
        let prod: Vec<Environment> = cx
            .config_list("production_environments")
            .iter()
            .filter_map(|n| plumbline_sdk::kit::policy::environment(n))
            .collect();

        if !new_events.is_empty() {
            let prefixes = cx.config_list("break_glass_prefixes");
            let (mut merges, mut deploys) = (Vec::new(), Vec::new());
            for e in new_events {
                if e.is("pr.merged") {
                    let commit = e.attr_str("pr.merge_commit").unwrap_or("");
                    if !commit.is_empty() {
                        merges.push(Merge {
                            t: e.time,
                            id: e.id.clone(),
                            system: e.system.clone(),
                            commit: text(commit),
                            reviewed: e.attr_bool("reviewed"),
                        });
                    }
                } else if DEPLOYS.contains(&e.action.as_str()) {
                    deploys.push(Deploy {
                        t: e.time,
                        id: e.id.clone(),
                        environment: e.environment,
                        name: e.attr_str("deploy.environment").map(text),
                        sha: text(e.attr_str("deploy.sha").unwrap_or("")),
                        git_ref: e.attr_str("deploy.ref").map(text),
                        by: e.actor.id.clone(),
                    });
                } else if e.is("git.push.*") {
                    seen.push_event(e, cx, &prefixes);
                }
            }
            // The pushes were noted in place (a late event can make one older).
            kept::fold(&mut seen.pushes, [], MAX_PUSHES, kept::BUDGET * 3 / 8);
            kept::fold(&mut seen.merges, merges, MAX_MERGES, kept::BUDGET / 4);
            kept::fold(
                &mut seen.deploys,
                deploys,
                MAX_DEPLOYS,
                kept::BUDGET * 3 / 8,
            );
        }
        // What left the trajectory goes with it.
        kept::prune(&mut seen.pushes, cx);
        kept::prune(&mut seen.merges, cx);
        kept::prune(&mut seen.deploys, cx);

        let mut findings = Vec::new();
        for push in &seen.pushes {
            let merge = seen
                .merges
                .iter()
                .find(|m| m.system == push.system && push.commits.contains(&m.commit));
            // A merge counts only when known to be unreviewed: where the adapter cannot
            // know (no review deliveries), the merge gets the benefit of the doubt.
            if merge.is_some_and(|m| m.reviewed != Some(false)) {
                continue;
            }
            let deploys: Vec<&Deploy> = seen
                .deploys
                .iter()
                .filter(|d| d.t >= push.t && d.t - push.t <= window)
                .filter(|d| prod.contains(&d.environment))
                .filter(|d| {
                    (!d.sha.is_empty() && push.after.starts_with(&d.sha))
                        || d.git_ref.as_deref() == Some(push.branch.as_str())
                })
                .collect();
            let Some(first) = deploys.first() else {
                continue;
            };
            let path = push
                .ci
                .iter()
                .find_map(|c| c.path.as_deref())
                .unwrap_or("CI config");
            let off_default = !push.default_branch;
            let ticket = push.ticket.as_deref();
            let severity = match (ticket, off_default) {
                (Some(_), _) => Severity::Informational,
                (None, true) => Severity::Urgent,
                (None, false) => Severity::NeedsReview,
            };
            let how = match (merge, off_default) {
                (Some(_), _) => "merged without review",
                (None, true) => "pushed to a non-default branch",
                (None, false) => "pushed directly",
            };
            let who = &push.who;
            let line = title(format!(
                "{who} changed {path} ({how}) on {} and it deployed to {} by {}: {}",
                push.branch,
                first.name.as_deref().unwrap_or("production"),
                first.by,
                push.line
            ));
            let mut evidence: Vec<String> = vec![push.head.clone()];
            evidence.extend(push.ci.iter().map(|c| c.id.clone()));
            evidence.extend(merge.map(|m| m.id.clone()));
            evidence.extend(deploys.iter().map(|d| d.id.clone()));
            let short = &push.after[..push.after.len().min(12)];
            findings.push(
                Finding::new(SIGNAL, severity, line)
                    .evidence_ids(evidence)
                    .score(if off_default { 0.9 } else { 0.7 })
                    .next_step(match ticket {
                        Some(tk) => format!("Check the follow-up review of {path} at {short} within 24 hours ({tk})"),
                        None => format!(
                            "Review the diff of {path} at {short} now (what does the pipeline run, with which secrets?) and ask {who} why it shipped without a reviewed merge; roll back the deploy if unjustified"
                        ),
                    }),
            );
        }
        Ok(findings)
    }
}

register_incremental_detector!(CiChangeDeploy);

impl Seen {
    /// Notes the push event `e`. A push is kept from its first CI change (a
    /// `git.push.high_risk_path` of category `ci`) on; its other events — its push event,
    /// its default-branch flag — are read from the trajectory's history then, and again
    /// when one of them arrives after it (late).
    fn push_event(&mut self, e: &Event, cx: &Context, prefixes: &[String]) {
        let ci = e.is("git.push.high_risk_path") && e.attr_str("risk.category") == Some("ci");
        let (system, branch, after) = key(e);
        if branch.is_empty() || e.attr_bool("deleted") == Some(true) {
            return;
        }
        let at = self
            .pushes
            .iter()
            .position(|p| (&p.system, &p.branch, &p.after) == (&system, &branch, &after));
        match at {
            // A later CI change of a push already noted (its other events were read with
            // its first).
            Some(i) if ci => {
                kept::fold(
                    &mut self.pushes[i].ci,
                    [Change::of(e)],
                    usize::MAX,
                    usize::MAX,
                );
            }
            // One of its other events, arrived after its first CI change: read it again,
            // keeping the CI changes noted (they may stand at other times).
            Some(i) if self.pushes[i].head != e.id => {
                if let Some(push) = Push::read(e, cx, prefixes) {
                    let old = std::mem::replace(&mut self.pushes[i], push);
                    let push = &mut self.pushes[i];
                    push.t = push.t.min(old.t);
                    kept::fold(&mut push.ci, old.ci, usize::MAX, usize::MAX);
                }
            }
            Some(_) => {}
            None if ci => self.pushes.extend(Push::read(e, cx, prefixes)),
            // A push with no CI change (yet) is not kept: if one comes, it reads this.
            None => {}
        }
    }
}

impl Push {
    /// The push of the event `e`, read from the trajectory's history: its events share
    /// `e`'s time (the adapters derive them from one push delivery).
    fn read(e: &Event, cx: &Context, prefixes: &[String]) -> Option<Push> {
        let (system, branch, after) = key(e);
        let mut events: Vec<Event> = at_time(cx, e.time)
            .into_iter()
            .filter(|x| x.is("git.push.*") && key(x) == key(e))
            .collect();
        if !events.iter().any(|x| x.id == e.id) {
            events.push(e.clone());
        }
        let t = Trajectory {
            id: String::new(),
            kind: TrajectoryKind::System,
            key: String::new(),
            start: e.time,
            end: e.time,
            dropped: 0,
            hash: String::new(),
            events,
        };
        // The kit folds the push as 0.1.0 did from the whole trajectory.
        let push = pushes(&t).into_iter().next()?;
        let mut commits = vec![after.clone()];
        commits.extend(
            push.events
                .iter()
                .filter_map(|x| x.attr_str("head_commit.id"))
                .filter(|c| !c.is_empty())
                .map(text),
        );
        commits.retain(|c| !c.is_empty());
        commits.dedup();
        Some(Push {
            t: push.time,
            system,
            branch,
            after,
            commits,
            head: push.head().id.clone(),
            who: push.head().actor.id.clone(),
            default_branch: push.default_branch,
            ci: push.risk_events("ci").into_iter().map(Change::of).collect(),
            line: quoted(push.message.lines().next().unwrap_or(""), 40),
            // Judged with the break-glass prefixes configured when it was read.
            ticket: ticket_in(push.message, prefixes).map(text),
        })
    }
}

impl Change {
    fn of(e: &Event) -> Change {
        Change {
            t: e.time,
            id: e.id.clone(),
            path: e.attr_str("risk.paths.0").map(text),
        }
    }
}

/// The push an event belongs to: `kit::git::pushes` groups a push's events by system,
/// branch and head commit.
fn key(x: &Event) -> (String, String, String) {
    (
        x.system.clone(),
        text(x.attr_str("branch").unwrap_or("")),
        text(x.attr_str("after").unwrap_or("")),
    )
}

/// The trajectory's events at time `t`, read through `history`: a binary search over
/// positions (one event per read), then pages from the first.
fn at_time(cx: &Context, t: i64) -> Vec<Event> {
    let (mut lo, mut hi) = (0, cx.window().map_or(0, |w| w.len));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match cx.history(mid, 1).first() {
            Some(e) if e.time < t => lo = mid + 1,
            Some(_) => hi = mid,
            None => hi = mid,
        }
    }
    let mut out = Vec::new();
    loop {
        let page = cx.history(lo, 64);
        let read = page.len();
        lo += read as u32;
        let before = out.len();
        out.extend(page.into_iter().take_while(|e| e.time == t));
        // Done at the first later event, or at the trajectory's end (a short page).
        if out.len() - before < read || read < 64 {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    plumbline_sdk::testing::incremental_fixture_tests!(super::CiChangeDeploy);

    /// Many copies of one event with 500-byte ids and 8 KiB texts: the state stays under
    /// the host's bound (each call checks it), the answer under its 100 findings.
    #[test]
    fn state_stays_bounded() {
        use plumbline_sdk::testing::feed;
        let f = feed::load(FIXTURES, "positive-direct-ci-change-deployed.json");
        let found = feed::flood::<super::CiChangeDeploy>(&f, "github:dep1", 300);
        assert!(found.len() <= 100, "{} findings", found.len());
    }

    /// `at_time` finds every event at a time, across history's pages, in a trajectory
    /// longer than the fixtures'.
    #[test]
    fn events_at_a_time_across_pages() {
        use plumbline_sdk::*;
        let event = |n: usize, time: i64| Event {
            id: format!("e{n:04}"),
            time,
            source: "github".into(),
            actor: Actor {
                id: "a".into(),
                kind: ActorKind::Human,
                display: String::new(),
            },
            system: "acme/api".into(),
            action: "git.push".into(),
            resource: String::new(),
            environment: Environment::Unknown,
            destination: None,
            volume: None,
            attributes: Default::default(),
        };
        // 100 events one per time, 70 at time 100 (over a page boundary), 10 at 101.
        let mut events: Vec<Event> = (0..100).map(|n| event(n, n as i64)).collect();
        events.extend((100..170).map(|n| event(n, 100)));
        events.extend((170..180).map(|n| event(n, 101)));
        let window = Window {
            id: "t".into(),
            kind: TrajectoryKind::System,
            key: "acme/api".into(),
            start: 0,
            end: 101,
            dropped: 0,
            len: events.len() as u32,
            replay: false,
        };
        let info = <super::CiChangeDeploy as IncrementalDetector>::info();
        let cx = Context::native_incremental(&info, &Default::default(), 0, window, events);
        let ids =
            |t: i64| -> Vec<String> { super::at_time(&cx, t).into_iter().map(|e| e.id).collect() };
        assert_eq!(ids(0), ["e0000"]);
        assert_eq!(ids(57), ["e0057"]);
        let at_100 = ids(100);
        assert_eq!(at_100.len(), 70);
        assert_eq!(
            (at_100[0].as_str(), at_100[69].as_str()),
            ("e0100", "e0169")
        );
        assert_eq!(ids(101).len(), 10);
        assert!(ids(-1).is_empty() && ids(102).is_empty());
    }
}
