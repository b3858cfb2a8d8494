//! New external webhooks on repositories and workflows:
//! - an outgoing repository / organisation webhook to a host that is not allow-listed
//!   (every push, issue or release is then sent there): needs review; to a request
//!   catcher, tunnel or bare IP: urgent;
//! - a workflow that gains an unauthenticated webhook trigger outside the test
//!   environment (anyone who finds the URL can run it with its credentials): needs review.
//!
//! Repository hooks read on system trajectories (the repository), workflow triggers on
//! actor trajectories (as the other workflow detectors), so each raises one alert.

use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const REPO_HOOK: &str = "supply.external_repo_webhook";
const OPEN_TRIGGER: &str = "supply.unauthenticated_webhook_trigger";

const HOOKS: [&str; 2] = ["repo.webhook.created", "org.webhook.created"];
const WORKFLOW: [&str; 3] = ["workflow.created", "workflow.updated", "workflow.activated"];

#[derive(Default)]
pub struct ExternalWebhook;

impl Detector for ExternalWebhook {
    fn info() -> Info {
        let info = Info::new(
            "supply-chain.external-webhook",
            "0.1.0",
            "Outgoing repository webhooks to unlisted hosts; workflows gaining unauthenticated webhook triggers",
        )
        .actions(&[
            "repo.webhook.created",
            "org.webhook.created",
            "workflow.created",
            "workflow.updated",
            "workflow.activated",
        ])
        // Repository hooks on system trajectories, open workflow triggers on actor ones.
        .views(&[TrajectoryKind::System, TrajectoryKind::Actor])
        .signals(&[REPO_HOOK, OPEN_TRIGGER]);
        let info = destination::declare(info);
        let info = keys::planned_work(info);
        keys::environments(info, "test")
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let lists = cx.settings::<Destinations>()?;
        let policy = cx.settings::<Policy>()?;
        let mut findings = Vec::new();
        if t.kind == TrajectoryKind::System {
            for e in t.with_any_action(&HOOKS) {
                let Some(url) =
                    attr_text(e, &["hook.url", "hook.host"]).or(e.destination.as_deref())
                else {
                    continue;
                };
                let Some((place, class)) = lists.classify(url) else {
                    continue;
                };
                if class == DestinationClass::Known || policy.is_planned(e) {
                    continue;
                }
                let urgent = class.is_personal_or_anonymous();
                let events = attr_list(e, "hook.events");
                let what = if events.is_empty() || events.iter().any(|x| x == "*") {
                    "all events".to_string()
                } else {
                    events.join(",")
                };
                findings.push(
                    Finding::new(
                        REPO_HOOK,
                        if urgent { Severity::Urgent } else { Severity::NeedsReview },
                        title(format!(
                            "{} added a webhook on {} sending {what} to {} ({})",
                            who(e),
                            e.system,
                            place.name(),
                            class.describe()
                        )),
                    )
                    .evidence([e])
                    .score(if urgent { 0.9 } else { 0.65 })
                    .next_step(format!(
                        "Ask {} who owns {} and what it needs from {}; delete the hook if nobody does, or add the host to known_domains",
                        who(e),
                        place.name(),
                        e.system
                    )),
                );
            }
            return Ok(findings);
        }
        // Actor trajectories: workflows that become triggerable by anyone.
        let mut open_before: std::collections::BTreeMap<&str, bool> = Default::default();
        for e in t.with_any_action(&WORKFLOW) {
            if e.attr("nodes.count").is_none() {
                continue;
            }
            let open = e.attr_bool("trigger.webhook.unauthenticated") == Some(true);
            let was = open_before.insert(e.system.as_str(), open);
            // Newly open: created open, or a version that opened it. A workflow first seen
            // already open says nothing about when it opened.
            let newly = open && (e.is("workflow.created") || was == Some(false));
            if !newly || policy.is_ignored_environment(e) || policy.is_planned(e) {
                continue;
            }
            let name = attr_text(e, &["workflow.name", "detail.scenarioName"]).unwrap_or(&e.system);
            let paths = attr_text(e, &["trigger.webhook.paths"]).unwrap_or("");
            findings.push(
                Finding::new(
                    OPEN_TRIGGER,
                    Severity::NeedsReview,
                    title(format!(
                        "Workflow {} ({}) now has an unauthenticated webhook trigger{}, by {}",
                        quoted(name, 40),
                        e.system,
                        if paths.is_empty() { String::new() } else { format!(" at /{paths}") },
                        who(e)
                    )),
                )
                .evidence([e])
                .score(0.6)
                .next_step(format!(
                    "Ask {} to put authentication (header or basic auth) on the webhook of {}, or confirm it only receives public data",
                    who(e),
                    e.system
                )),
            );
        }
        Ok(findings)
    }
}

register_detector!(ExternalWebhook);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::ExternalWebhook>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::ExternalWebhook>(FIXTURES);
    }
}
