//! Prompt changes shipped to production without review: a production assistant's prompt
//! changes (or a prompt change is deployed to production) and nothing says anyone reviewed
//! it — no `reviewed: true`, no reviewer, no approval event for the assistant in between.
//!
//! The break-glass path (policy pack: "direct-to-prod only with an incident ticket,
//! follow-up review within 24 hours") is recorded as informational when the change names
//! a ticket. Changes by `reviewed_pipelines` (deploy accounts that only ship reviewed
//! changes) are not raised. Read on system trajectories.
//!
//! Incremental (`plumbline:detector@0.2.0`): the state holds one summary per prompt
//! change, deploy and approval (id, time, kind, reviewed, ticket — not the events); each
//! call walks them again in (time, id) order, so a late approval or edit counts where it
//! belongs.

use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

use plumbline_sdk::kept::{self, text};

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

/// Most steps kept, the oldest dropped first (a trajectory with more is judged on its
/// newest 200), and most findings answered (the newest: the host takes at most 100 per
/// answer by default).
const MAX_KEPT: usize = 200;
const MAX_FINDINGS: usize = 100;

/// What the detector remembers of a trajectory: its steps, in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Steps {
    seen: Vec<Step>,
}

/// A prompt change, a deploy or an approval: what the walk and a finding need.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Step {
    t: i64,
    id: String,
    kind: Kind,
    reviewed: bool,
    env: Environment,
    actor: String,
    system: String,
    assistant: String,
    ticket: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
enum Kind {
    Approval,
    Prompt,
    Deploy,
}

kept::record!(Step);

impl Step {
    fn of(e: &Event) -> Option<Step> {
        let kind = if APPROVALS.iter().any(|a| e.is(a)) {
            Kind::Approval
        } else if !CHANGES.iter().any(|c| e.is(c)) {
            return None;
        } else if e.is("assistant.prompt.updated") {
            Kind::Prompt
        } else {
            Kind::Deploy
        };
        Some(Step {
            t: e.time,
            id: e.id.clone(),
            kind,
            reviewed: is_reviewed(e),
            env: e.environment,
            actor: text(&e.actor.id),
            system: text(&e.system),
            assistant: text(attr_text(e, &["assistant.name", "assistant.id"]).unwrap_or(&e.system)),
            ticket: attr_text(e, &["ticket"]).map(text),
        })
    }
}

#[derive(Default)]
pub struct UnreviewedDeploy;

impl IncrementalDetector for UnreviewedDeploy {
    type State = Steps;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Policy>()?;
        Ok(())
    }

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

    fn observe(
        &self,
        state: &mut Steps,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let new = new_events.iter().filter_map(Step::of);
        kept::fold(&mut state.seen, new, MAX_KEPT, kept::BUDGET);
        kept::prune(&mut state.seen, cx);

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
        let mut pending: Vec<&Step> = Vec::new();
        for e in &state.seen {
            if e.kind == Kind::Approval {
                pending.clear();
                continue;
            }
            let prompt_change = e.kind == Kind::Prompt;
            if e.reviewed {
                if !prompt_change {
                    pending.clear();
                }
                continue;
            }
            if !prod.contains(&e.env) {
                // A prompt edited outside production waits for its deploy.
                if prompt_change {
                    pending.push(e);
                }
                continue;
            }
            // A production deploy ships every prompt change waiting before it.
            let shipped: Vec<&Step> = if prompt_change {
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
            let planned = policy.is_service_account(&e.actor) && policy.windows.contains(e.t);
            if pipelines.iter().any(|p| glob::matches(p, &e.actor)) || planned {
                continue;
            }
            // Break-glass covers what names a ticket: the deploy itself, or every change
            // it ships — one ticketed edit does not excuse an unticketed one beside it.
            let ticket = e.ticket.as_deref().or_else(|| {
                let tickets: Vec<Option<&str>> = shipped
                    .iter()
                    .filter(|x| x.id != e.id)
                    .map(|x| x.ticket.as_deref())
                    .collect();
                if tickets.is_empty() || tickets.iter().any(Option::is_none) {
                    None
                } else {
                    tickets[0]
                }
            });
            let assistant = &e.assistant;
            let (severity, t_line, next) = match ticket {
                Some(tk) => (
                    Severity::Informational,
                    format!(
                        "Break-glass prompt change to production {} by {} under {}",
                        quoted(assistant, 40),
                        e.actor,
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
                        e.actor
                    ),
                    format!(
                        "Ask {} for the reason and a reviewer for the prompt change to {}; roll back if nobody signs off",
                        e.actor, e.system
                    ),
                ),
            };
            findings.push(
                Finding::new(SIGNAL, severity, title(t_line))
                    .evidence_ids(shipped.iter().map(|x| x.id.clone()))
                    .score(if severity == Severity::NeedsReview {
                        0.7
                    } else {
                        0.3
                    })
                    .next_step(next),
            );
        }
        findings.drain(..findings.len().saturating_sub(MAX_FINDINGS));
        Ok(findings)
    }
}

register_incremental_detector!(UnreviewedDeploy);

fn is_reviewed(e: &Event) -> bool {
    e.attr_bool("reviewed") == Some(true) || attr_text(e, &["reviewer"]).is_some()
}

#[cfg(test)]
mod tests {
    use super::UnreviewedDeploy;
    use plumbline_sdk::testing::feed;

    plumbline_sdk::testing::incremental_fixture_tests!(UnreviewedDeploy);

    /// Many unreviewed production edits under huge names: the answer stays under the host's
    /// 100 findings, the newest kept.
    #[test]
    fn state_stays_bounded() {
        let f = feed::load(FIXTURES, "positive-direct-prod-prompt-edit.json");
        let found = feed::flood::<UnreviewedDeploy>(&f, "assistant:u1", 300);
        feed::newest_kept(&found);
    }

    /// The approval between the edit and the deploy arrives after the deploy: until it does
    /// the deploy ships an unreviewed edit; once it does, nothing is raised.
    #[test]
    fn a_late_approval_counts_where_it_belongs() {
        let f = feed::load(FIXTURES, "negative-approved-between-edit-and-deploy.json");
        let order = ["assistant:u5", "assistant:u7", "assistant:u6"];
        let cited: Vec<Vec<String>> = feed::arrive::<UnreviewedDeploy>(&f, &order)
            .iter()
            .map(|found| found.iter().map(|f| f.evidence.join(" ")).collect())
            .collect();
        assert_eq!(
            cited,
            [
                vec![],
                vec!["assistant:u5 assistant:u7".to_string()],
                vec![]
            ]
        );
    }
}
