//! Prompt changes shipped to production without review: a production assistant's prompt
//! changes (or a prompt change is deployed to production) and nothing says anyone reviewed
//! it — no `reviewed: true`, no reviewer, no approval event for the assistant in between.
//!
//! The break-glass path (policy pack: "direct-to-prod only with an incident ticket,
//! follow-up review within 24 hours") is recorded as informational when the change names
//! a ticket. Changes by `reviewed_pipelines` (deploy accounts that only ship reviewed
//! changes) are not raised. Read on system trajectories.

use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const SIGNAL: &str = "prompt.unreviewed_prod_change";

const CHANGES: [&str; 2] = ["assistant.prompt.updated", "assistant.deployed"];
/// Events that record a review or approval of the assistant's change.
const APPROVALS: [&str; 3] = [
    "assistant.change.approved",
    "assistant.prompt.approved",
    "assistant.review.approved",
];

#[derive(Default)]
pub struct UnreviewedDeploy;

impl Detector for UnreviewedDeploy {
    fn info() -> Info {
        let info = Info::new(
            "prompt-edits.unreviewed-deploy",
            "0.1.0",
            "Assistant prompt changes that reach production without a review",
        )
        .actions(&["assistant.*"])
        .views(&[TrajectoryKind::System])
        .signals(&[SIGNAL])
        .config(
            "reviewed_pipelines",
            "",
            "Actors (comma-separated globs) that only deploy reviewed changes, e.g. the prompt CI account",
        )
        .config(
            "production_environments",
            "prod",
            "Environments that count as production",
        );
        keys::planned_work(info)
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let pipelines = cx.config_list("reviewed_pipelines");
        let prod: Vec<Environment> = cx
            .config_list("production_environments")
            .iter()
            .filter_map(|n| plumbline_sdk::kit::policy::environment(n))
            .collect();
        let policy = cx.settings::<Policy>()?;

        let mut findings = Vec::new();
        // The last prompt change not yet covered by a review, per assistant.
        let mut pending: Option<&Event> = None;
        for e in &t.events {
            if APPROVALS.iter().any(|a| e.is(a)) {
                pending = None;
                continue;
            }
            if !CHANGES.iter().any(|c| e.is(c)) {
                continue;
            }
            if is_reviewed(e) {
                pending = None;
                continue;
            }
            let prompt_change = e.is("assistant.prompt.updated");
            if !prod.contains(&e.environment) {
                // A prompt edited outside production waits for its deploy.
                if prompt_change {
                    pending = Some(e);
                }
                continue;
            }
            // A production deploy ships the prompt change waiting before it, if any.
            let shipped: Vec<&Event> = match (prompt_change, pending) {
                (true, _) => vec![e],
                (false, Some(p)) => vec![p, e],
                (false, None) => continue,
            };
            pending = None;
            if pipelines.iter().any(|p| glob::matches(p, &e.actor.id)) || policy.is_planned(e) {
                continue;
            }
            let ticket = shipped.iter().find_map(|x| attr_text(x, &["ticket"]));
            let assistant = attr_text(e, &["assistant.name", "assistant.id"]).unwrap_or(&e.system);
            let (severity, t_line, next) = match ticket {
                Some(tk) => (
                    Severity::Informational,
                    format!(
                        "Break-glass prompt change to production {} by {} under {}",
                        quoted(assistant, 40),
                        e.actor.id,
                        quoted(tk, 30)
                    ),
                    format!(
                        "Make sure the change to {} gets its follow-up review within 24 hours ({})",
                        e.system, tk
                    ),
                ),
                None => (
                    Severity::NeedsReview,
                    format!(
                        "Unreviewed prompt change shipped to production {} by {}",
                        quoted(assistant, 40),
                        e.actor.id
                    ),
                    format!(
                        "Ask {} for the reason and a reviewer for the prompt change to {}; roll back if nobody signs off",
                        e.actor.id, e.system
                    ),
                ),
            };
            findings.push(
                Finding::new(SIGNAL, severity, title(t_line))
                    .evidence(shipped)
                    .score(if severity == Severity::NeedsReview {
                        0.7
                    } else {
                        0.3
                    })
                    .next_step(next),
            );
        }
        Ok(findings)
    }
}

register_detector!(UnreviewedDeploy);

fn is_reviewed(e: &Event) -> bool {
    e.attr_bool("reviewed") == Some(true) || attr_text(e, &["reviewer"]).is_some()
}

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::UnreviewedDeploy>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::UnreviewedDeploy>(FIXTURES);
    }
}
