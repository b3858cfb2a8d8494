//! A coding agent rewrites shared history: `git push --force` / `-f` /
//! `--force-with-lease` / `+refspec`, `git push --no-verify` (hooks skipped),
//! `git filter-branch` / `git filter-repo` / BFG, `git reset --hard` then a push, or
//! `git commit --amend` on a branch the session already pushed. Needs review; urgent when
//! the branch is `main`, `master`, `release/*` (`protected_branches`). The branch is the
//! push's refspec, else the one the session last switched to (`git checkout -b …`).
//! Read on actor trajectories (one agent session).
//!
//! Incremental (`plumbline:detector@0.2.0`): the state is the shell calls that switch
//! branches, push or change history (the branch, the verbs, the pushes, the line
//! shortened, whose it was) and the pending calls — not the events (`kit::agent::memo`).

use plumbline_sdk::kit::agent::{self, shell, Memo, Remembered};
use plumbline_sdk::*;

const SIGNAL: &str = "agent.history_rewrite";

#[derive(Default)]
pub struct HistoryRewrite;

/// What the detector remembers of a session: its git calls.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    calls: Vec<Memo<Git>>,
}

/// One shell call's git: the branch it switched to, its history-changing verbs
/// ([`git_verbs`]), its pushes, its line (shortened) and whose it was.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Git {
    switched: Option<String>,
    verbs: Vec<String>,
    pushes: Vec<Push>,
    line: String,
    who: String,
    user: String,
    session: String,
}

/// A push: its refspecs' branches, how it rewrote, its text (shortened).
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Push {
    force: bool,
    no_verify: bool,
    branches: Vec<String>,
    text: String,
}

impl IncrementalDetector for HistoryRewrite {
    type State = Seen;

    fn info() -> Info {
        Info::new(
            "coding-agent.history-rewrite",
            "0.1.0",
            "A coding agent force-pushes, skips push hooks or rewrites history",
        )
        .actions(&[agent::SHELL])
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL])
        .config(
            "protected_branches",
            "main,master,release/*,production",
            "Branches whose rewrite is urgent (comma-separated, `*` within a segment)",
        )
    }

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let protected = cx.config_list("protected_branches");
        let is_protected = |b: &str| protected.iter().any(|p| glob::path_matches(p, b));
        let w = cx
            .window()
            .map_or((0, 0, i64::MIN), |w| (w.len, w.dropped, w.start));
        let read = |start, count| cx.history(start, count);
        let history = agent::History::new(w.0, w.1, w.2, &read);
        agent::remember(&mut seen.calls, new_events, &history, |call| {
            let cmd = call.command()?;
            let git = Git {
                switched: agent::switched_branch(cmd),
                verbs: git_verbs(cmd),
                pushes: agent::git_pushes(cmd)
                    .into_iter()
                    .map(|p| Push {
                        force: p.force,
                        no_verify: p.no_verify,
                        branches: p.branches,
                        text: agent::short(&p.text, 80),
                    })
                    .collect(),
                line: agent::short(cmd, 80),
                who: call.who(),
                user: call.user().to_string(),
                session: call.session().to_string(),
            };
            let some = git.switched.is_some() || !git.verbs.is_empty() || !git.pushes.is_empty();
            some.then_some(git)
        });
        let calls: Vec<(&Memo<Git>, &Git)> = seen
            .calls
            .iter()
            .filter_map(|m| m.facts().map(|g| (m, g)))
            .collect();
        // The branch switched to last, and the call that did.
        let mut branch: Option<(&str, &Memo<Git>)> = None;
        let mut last_push: Option<(&Memo<Git>, &Git)> = None;
        // A `reset --hard`, `--amend`, rebase or filter since the last push.
        let mut rewrite: Option<(&Memo<Git>, &Git)> = None;
        let mut findings = Vec::new();
        for &(m, g) in &calls {
            let call = (m, g);
            if let Some(b) = &g.switched {
                branch = Some((b, m));
            }
            let has = |v: &str| g.verbs.iter().any(|verb| verb == v);
            let current: Vec<String> = branch.iter().map(|(b, _)| b.to_string()).collect();
            if has("filter") {
                findings.push(finding(
                    &[call],
                    "rewrote history with",
                    &g.line,
                    &current,
                    &is_protected,
                ));
            }
            if has("amend") {
                if let Some(p) = last_push {
                    findings.push(finding(
                        &[p, call],
                        "amended a pushed commit with",
                        &g.line,
                        &current,
                        &is_protected,
                    ));
                }
            }
            for push in &g.pushes {
                let targets = if push.branches.is_empty() {
                    current.clone()
                } else {
                    push.branches.clone()
                };
                let what = if push.force {
                    Some("force-pushed with")
                } else if push.no_verify {
                    Some("pushed skipping hooks with")
                } else if rewrite.is_some_and(|(_, r)| r.verbs.iter().any(|v| v == "reset")) {
                    Some("reset --hard, then pushed with")
                } else {
                    None
                };
                if let Some(what) = what {
                    let mut cited: Vec<(&Memo<Git>, &Git)> = rewrite
                        .filter(|(r, _)| !std::ptr::eq(*r, m))
                        .into_iter()
                        .collect();
                    cited.push(call);
                    findings.push(finding(&cited, what, &push.text, &targets, &is_protected));
                }
            }
            if !g.pushes.is_empty() {
                last_push = Some(call);
                rewrite = None;
            }
            if has("reset") || has("amend") || has("filter") || has("rebase") {
                rewrite = Some(call);
            }
        }
        // What the next calls are judged against stays: the branch switched to, the last
        // push, a rewrite since.
        let needed: Vec<String> = [
            branch.map(|(_, m)| m),
            last_push.map(|c| c.0),
            rewrite.map(|c| c.0),
        ]
        .into_iter()
        .flatten()
        .map(|m| m.key().to_string())
        .collect();
        agent::forget_over(&mut seen.calls, &findings, |m| {
            needed.iter().any(|k| k == m.key())
        });
        Ok(findings)
    }
}

/// The history-changing git verbs of a command line: `reset` (--hard), `amend`,
/// `rebase`, `filter` (filter-branch, filter-repo, BFG).
fn git_verbs(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    for s in shell::simples(cmd) {
        let prog = s.program();
        if prog == "bfg" || prog == "git-filter-repo" {
            out.push("filter".into());
            continue;
        }
        if prog != "git" {
            continue;
        }
        let args = agent::git_args(&s);
        let verb = match args.first().map(String::as_str) {
            Some("reset") if args.iter().any(|a| a == "--hard") => "reset",
            Some("commit") if args.iter().any(|a| a == "--amend") => "amend",
            Some("rebase") => "rebase",
            Some("filter-branch" | "filter-repo") => "filter",
            _ => continue,
        };
        out.push(verb.into());
    }
    out
}

fn finding(
    cited: &[(&Memo<Git>, &Git)],
    what: &str,
    line: &str,
    branches: &[String],
    is_protected: &dyn Fn(&str) -> bool,
) -> Finding {
    let last = cited[cited.len() - 1].1;
    let urgent: Vec<&String> = branches.iter().filter(|b| is_protected(b)).collect();
    let on = match branches {
        [] => String::new(),
        bs => format!(" on {}", bs.join(", ")),
    };
    let (severity, score) = if urgent.is_empty() {
        (Severity::NeedsReview, 0.6)
    } else {
        (Severity::Urgent, 0.88)
    };
    let memos: Vec<&Memo<Git>> = cited.iter().map(|(m, _)| *m).collect();
    Finding::new(
        SIGNAL,
        severity,
        title(format!(
            "{} {what} `{}`{on}",
            last.who,
            agent::short(line, 80)
        )),
    )
    .evidence_ids(agent::cite(&memos))
    .score(score)
    .next_step(format!(
        "Compare the remote branch{on} with its previous head (the reflog or the hosting provider's push log) and restore lost commits; ask {} why the agent rewrote history (session {})",
        last.user,
        last.session
    ))
}

register_incremental_detector!(HistoryRewrite);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_incremental_fixtures::<super::HistoryRewrite>(FIXTURES);
    }
}
