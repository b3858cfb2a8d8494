//! A coding agent changes what guards the repository: CI configuration
//! (`.github/workflows/*`, `.gitlab-ci.yml`, `Jenkinsfile`, `.circleci/*`, …), git hooks
//! (`.git/hooks/*`, `.husky/*`, `.pre-commit-config.yaml`), CODEOWNERS, or branch
//! protection through the API (`gh api … /protection`, `gh api -X DELETE …`). Any such
//! write needs review; one that removes checks is urgent: a deleted workflow or hook, lines
//! running tests or linters dropped, `continue-on-error: true`, `if: false`,
//! `allow_failure: true` or `|| true` added, protection deleted or loosened.
//! Reading those files, or the protection (a `gh api` GET), is silent.
//! Read on actor trajectories (one agent session).
//!
//! Incremental (`plumbline:detector@0.2.0`): the state is the tool calls that wrote those
//! files or that protection (the targets, why each removes checks, who) and the pending
//! calls, not the events (`kit::agent::memo`).

use std::collections::BTreeMap;

use plumbline_sdk::kit::agent::{self, Call, FileChange, Memo, Remembered};
use plumbline_sdk::kit::text;
use plumbline_sdk::*;

const SIGNAL: &str = "agent.ci_tamper";

/// Added text that switches a check off (`weakening_markers`, `;`-separated).
const MARKERS: &str = "continue-on-error: true;if: false;if: ${{ false }};allow_failure: true;|| true;|| exit 0;exit 0;--no-verify;when: manual;SKIP=";
/// Words of a line that runs a check (`check_words`).
const CHECK_WORDS: &str = "test*,pytest,jest,vitest,lint*,clippy,check*,verify,audit,scan*,codeql,coverage,tsc,mypy,ruff,eslint,semgrep,trivy,gitleaks";

#[derive(Default)]
pub struct CiTamper;

/// What the detector remembers of a session: the calls that changed a guard rail.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    calls: Vec<Memo<Changes>>,
}

/// What one call changed: (target, why the change removes checks), and whose it was.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Changes {
    targets: Vec<(String, Option<String>)>,
    who: String,
    user: String,
    session: String,
}

impl IncrementalDetector for CiTamper {
    type State = Seen;

    fn info() -> Info {
        let info = Info::new(
            "coding-agent.ci-tamper",
            "0.1.0",
            "A coding agent writes CI configuration, git hooks, CODEOWNERS or branch protection",
        )
        .actions(&[agent::SHELL, agent::FILE_WRITE])
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL])
        .config(
            "weakening_markers",
            MARKERS,
            "Added text that switches a check off (`;`-separated, matched case-insensitively)",
        )
        .config(
            "check_words",
            CHECK_WORDS,
            "Words of a CI line that runs a check (comma-separated, `*` = prefix): fewer such lines after a write means checks were removed",
        );
        agent::declare_ci_paths(info)
    }

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let ci_paths = cx.config_list("ci_paths");
        let markers: Vec<String> = text::items(&cx.config("weakening_markers").unwrap_or_default())
            .iter()
            .map(|m| m.to_ascii_lowercase())
            .collect();
        let check_words = cx.config_list("check_words");
        let w = cx
            .window()
            .map_or((0, 0, i64::MIN), |w| (w.len, w.dropped, w.start));
        let read = |start, count| cx.history(start, count);
        let history = agent::History::new(w.0, w.1, w.2, &read);
        agent::remember(&mut seen.calls, new_events, &history, |call| {
            let mut targets = Vec::new();
            for change in agent::file_changes(call) {
                if agent::path_matches_any(&change.path, &ci_paths) {
                    let why = weakening(&change, &markers, &check_words);
                    targets.push((change.path, why));
                }
            }
            targets.extend(protection_writes(call));
            (!targets.is_empty()).then(|| Changes {
                targets,
                who: call.who(),
                user: call.user().to_string(),
                session: call.session().to_string(),
            })
        });
        // Per path (or protected branch): the calls that changed it, and why it is urgent.
        let mut by_target: BTreeMap<&str, Vec<Change>> = BTreeMap::new();
        for m in &seen.calls {
            let Some(c) = m.facts() else {
                continue;
            };
            for (target, why) in &c.targets {
                by_target
                    .entry(target)
                    .or_default()
                    .push((m, c, why.as_deref()));
            }
        }
        let findings: Vec<Finding> = by_target
            .into_iter()
            .map(|(target, changes)| finding(target, &changes))
            .collect();
        agent::forget_over(&mut seen.calls, &findings, |_| false);
        Ok(findings)
    }
}

/// Why a change removes checks, if it does.
fn weakening(c: &FileChange, markers: &[String], check_words: &[String]) -> Option<String> {
    if c.deleted {
        return Some(format!("deleted by `{}`", c.how));
    }
    let content = c.content.as_deref()?;
    let old = c.old.as_deref().unwrap_or("");
    let added = agent::added_lines(old, content);
    if let Some(m) = added.iter().find_map(|l| {
        let l = l.to_ascii_lowercase();
        markers.iter().find(|m| l.contains(m.as_str()))
    }) {
        return Some(format!("adds `{m}`"));
    }
    let checks = |text: &str| {
        text.lines()
            .filter(|l| text::has_word(l, check_words))
            .count()
    };
    if c.old.is_some() && checks(content) < checks(old) {
        let dropped = agent::added_lines(content, old)
            .into_iter()
            .find(|l| text::has_word(l, check_words))
            .unwrap_or("");
        return Some(format!("drops `{}`", agent::short(dropped, 60)));
    }
    // `sed -i '/npm test/d' ci.yml`: the script deletes a check line.
    if c.how.starts_with("sed") && content.trim_end_matches(['\'', '"']).ends_with('d') {
        return (checks(content) > 0)
            .then(|| format!("deletes lines with `{}`", agent::short(content, 40)));
    }
    None
}

/// Branch protection or rulesets written through `gh api` (a method other than GET, or
/// fields sent), and any `gh api -X DELETE`: (target, why it is urgent).
fn protection_writes(call: &Call) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for s in call.simples() {
        let args = s.args();
        if s.program() != "gh" || args.first().map(String::as_str) != Some("api") {
            continue;
        }
        let method = s
            .option(&["-X", "--method"])
            .map(str::to_ascii_uppercase)
            .unwrap_or_else(|| {
                let fields = s.has_flag(&["-f", "-F", "--field", "--raw-field", "--input"]);
                if fields { "POST" } else { "GET" }.to_string()
            });
        // The endpoint: the first operand that is a path (`-X DELETE` puts a value first).
        let Some(endpoint) = s
            .operands()
            .skip(1)
            .find(|a| a.contains('/') && !a.contains('='))
        else {
            continue;
        };
        let protection = endpoint.contains("/protection") || endpoint.contains("/rulesets");
        if method == "GET" || !(protection || method == "DELETE") {
            continue;
        }
        let text = s.text().to_ascii_lowercase();
        let loosened = [
            "enforce_admins=false",
            "required_status_checks=null",
            "required_pull_request_reviews=null",
            "required_approving_review_count=0",
            "enforcement=disabled",
        ]
        .into_iter()
        .find(|m| text.replace(['"', ' '], "").contains(m));
        let why = match (method.as_str(), protection, loosened) {
            ("DELETE", true, _) => Some("deletes the protection".to_string()),
            (_, _, Some(m)) => Some(format!("sets {m}")),
            _ => None,
        };
        out.push((format!("{method} {endpoint}"), why));
    }
    out
}

/// A call that changed a target: its memo, what it changed, why that removes checks.
type Change<'a> = (&'a Memo<Changes>, &'a Changes, Option<&'a str>);

fn finding(target: &str, changes: &[Change]) -> Finding {
    let urgent: Vec<&Change> = changes.iter().filter(|(.., why)| why.is_some()).collect();
    let Changes {
        who, user, session, ..
    } = changes[0].1;
    if let Some((.., Some(why))) = urgent.first() {
        let cited: Vec<&Memo<Changes>> = urgent.iter().map(|(m, ..)| *m).collect();
        return Finding::new(
            SIGNAL,
            Severity::Urgent,
            title(format!("{who} weakened {target}: {why}")),
        )
        .evidence_ids(agent::cite(&cited))
        .score(0.85)
        .next_step(format!(
            "Restore {target} from the default branch and re-run the removed checks before anything from session {session} merges; ask {user} why the agent switched them off"
        ));
    }
    let cited: Vec<&Memo<Changes>> = changes.iter().map(|(m, ..)| *m).collect();
    Finding::new(
        SIGNAL,
        Severity::NeedsReview,
        title(format!("{who} changed {target}")),
    )
    .evidence_ids(agent::cite(&cited))
    .score(0.55)
    .next_step(format!(
        "Review the change to {target} before it merges: CI, hooks and code owners are guard rails and need a human's approval (session {session})"
    ))
}

register_incremental_detector!(CiTamper);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_incremental_fixtures::<super::CiTamper>(FIXTURES);
    }
}
