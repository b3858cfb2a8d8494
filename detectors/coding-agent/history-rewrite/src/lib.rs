//! A coding agent rewrites shared history: `git push --force` / `-f` /
//! `--force-with-lease` / `+refspec`, `git push --no-verify` (hooks skipped),
//! `git filter-branch` / `git filter-repo` / BFG, `git reset --hard` then a push, or
//! `git commit --amend` on a branch the session already pushed. Needs review; urgent when
//! the branch is `main`, `master`, `release/*` (`protected_branches`). The branch is the
//! push's refspec, else the one the session last switched to (`git checkout -b …`).
//! Read on actor trajectories (one agent session).

use plumbline_sdk::kit::agent::{self, shell, Call};
use plumbline_sdk::*;

const SIGNAL: &str = "agent.history_rewrite";

#[derive(Default)]
pub struct HistoryRewrite;

impl Detector for HistoryRewrite {
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

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let protected = cx.config_list("protected_branches");
        let is_protected = |b: &str| protected.iter().any(|p| glob::path_matches(p, b));
        let calls = agent::calls(t);
        let mut branch: Option<String> = None;
        let mut last_push: Option<&Call> = None;
        // A `reset --hard`, `--amend`, rebase or filter since the last push.
        let mut rewrite: Option<&Call> = None;
        let mut findings = Vec::new();
        for call in &calls {
            let Some(cmd) = call.command() else {
                continue;
            };
            if let Some(b) = agent::switched_branch(cmd) {
                branch = Some(b);
            }
            let verbs = git_verbs(cmd);
            let has = |v: &str| verbs.iter().any(|(verb, _)| verb == v);
            let current: Vec<String> = branch.iter().cloned().collect();
            if has("filter") {
                findings.push(finding(
                    &[call],
                    "rewrote history with",
                    cmd,
                    &current,
                    &is_protected,
                ));
            }
            if has("amend") {
                if let Some(p) = last_push {
                    findings.push(finding(
                        &[p, call],
                        "amended a pushed commit with",
                        cmd,
                        &current,
                        &is_protected,
                    ));
                }
            }
            for push in agent::git_pushes(cmd) {
                let targets = if push.branches.is_empty() {
                    current.clone()
                } else {
                    push.branches.clone()
                };
                let what = if push.force {
                    Some("force-pushed with")
                } else if push.no_verify {
                    Some("pushed skipping hooks with")
                } else if rewrite.is_some_and(|r| verbs_of(r).iter().any(|(v, _)| v == "reset")) {
                    Some("reset --hard, then pushed with")
                } else {
                    None
                };
                if let Some(what) = what {
                    let mut cited: Vec<&Call> = rewrite
                        .filter(|r| !std::ptr::eq(*r, call))
                        .into_iter()
                        .collect();
                    cited.push(call);
                    findings.push(finding(&cited, what, &push.text, &targets, &is_protected));
                }
            }
            if !agent::git_pushes(cmd).is_empty() {
                last_push = Some(call);
                rewrite = None;
            }
            if has("reset") || has("amend") || has("filter") || has("rebase") {
                rewrite = Some(call);
            }
        }
        Ok(findings)
    }
}

/// The history-changing git verbs of a command line: `reset` (--hard), `amend`,
/// `rebase`, `filter` (filter-branch, filter-repo, BFG).
fn git_verbs(cmd: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in shell::simples(cmd) {
        let prog = s.program();
        if prog == "bfg" || prog == "git-filter-repo" {
            out.push(("filter".into(), s.text()));
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
        out.push((verb.into(), s.text()));
    }
    out
}

fn verbs_of(call: &Call) -> Vec<(String, String)> {
    call.command().map(git_verbs).unwrap_or_default()
}

fn finding(
    cited: &[&Call],
    what: &str,
    line: &str,
    branches: &[String],
    is_protected: &dyn Fn(&str) -> bool,
) -> Finding {
    let last = cited[cited.len() - 1];
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
    Finding::new(
        SIGNAL,
        severity,
        title(format!(
            "{} {what} `{}`{on}",
            last.who(),
            agent::short(line, 80)
        )),
    )
    .evidence(agent::evidence(cited))
    .score(score)
    .next_step(format!(
        "Compare the remote branch{on} with its previous head (the reflog or the hosting provider's push log) and restore lost commits; ask {} why the agent rewrote history (session {})",
        last.user(),
        last.session()
    ))
}

register_detector!(HistoryRewrite);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::HistoryRewrite>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::HistoryRewrite>(FIXTURES);
    }
}
