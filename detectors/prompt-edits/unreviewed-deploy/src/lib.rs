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
/// Most prompt changes one deploy finding cites (the latest).
const MAX_SHIPPED: usize = 50;
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
        // Every prompt change outside production not yet covered by a review. Only an
        // approval or a reviewed deploy covers them all: a reviewed edit covers itself,
        // so a harmless reviewed edit after an unreviewed one hides nothing.
        let mut pending: Vec<&Event> = Vec::new();
        for e in &t.events {
            if APPROVALS.iter().any(|a| e.is(a)) {
                pending.clear();
                continue;
            }
            if !CHANGES.iter().any(|c| e.is(c)) {
                continue;
            }
            let prompt_change = e.is("assistant.prompt.updated");
            if is_reviewed(e) {
                if !prompt_change {
                    pending.clear();
                }
                continue;
            }
            if !prod.contains(&e.environment) {
                // A prompt edited outside production waits for its deploy.
                if prompt_change {
                    pending.push(e);
                }
                continue;
            }
            // A production deploy ships every prompt change waiting before it.
            let shipped: Vec<&Event> = if prompt_change {
                vec![e]
            } else if pending.is_empty() {
                continue;
            } else {
                // The most recent ones if there are very many (the contract caps evidence).
                let from = pending.len().saturating_sub(MAX_SHIPPED);
                let mut v = pending.split_off(from);
                pending.clear();
                v.push(e);
                v
            };
            if pipelines.iter().any(|p| glob::matches(p, &e.actor.id)) || policy.is_planned(e) {
                continue;
            }
            // Break-glass covers what names a ticket: the deploy itself, or every change
            // it ships — one ticketed edit does not excuse an unticketed one beside it.
            let ticket = attr_text(e, &["ticket"]).or_else(|| {
                let tickets: Vec<Option<&str>> = shipped
                    .iter()
                    .filter(|x| x.id != e.id)
                    .map(|x| attr_text(x, &["ticket"]))
                    .collect();
                if tickets.is_empty() || tickets.iter().any(Option::is_none) {
                    None
                } else {
                    tickets[0]
                }
            });
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
