//! New external webhooks on repositories and workflows:
//! - an outgoing repository / organisation webhook to a host that is not allow-listed
//!   (every push, issue or release is then sent there): needs review; to a request
//!   catcher, tunnel or bare IP: urgent;
//! - a workflow that gains an unauthenticated webhook trigger outside the test
//!   environment (anyone who finds the URL can run it with its credentials): needs review.
//!
//! Repository hooks read on system trajectories (the repository), workflow triggers on
//! actor trajectories (as the other workflow detectors), so each raises one alert.
//!
//! Incremental (`plumbline:detector@0.2.0`): the state is the repository-hook findings
//! raised so far (each judged once, when its event arrives) and, on actor trajectories, the
//! workflow versions seen (open or not, and what a finding on an open one says).

use plumbline_sdk::kept::{self, text};
use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const REPO_HOOK: &str = "supply.external_repo_webhook";
const OPEN_TRIGGER: &str = "supply.unauthenticated_webhook_trigger";

const HOOKS: [&str; 2] = ["repo.webhook.created", "org.webhook.created"];
const WORKFLOW: [&str; 3] = ["workflow.created", "workflow.updated", "workflow.activated"];

/// Most hook findings (about 600 bytes each, system trajectories) and workflow versions
/// (at most about 250 bytes, actor trajectories) kept in the state, the oldest dropped
/// first, each list within [`kept::BUDGET`] (only one of them fills on a trajectory).
/// A workflow whose previous version was dropped counts as first seen.
const MAX_HOOKS: usize = 50;
const MAX_VERSIONS: usize = 120;

/// What the detector remembers of a trajectory, each list in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    hooks: Vec<Found>,
    versions: Vec<Version>,
}

/// A hook finding and the time and id of the one event it cites.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Found {
    t: i64,
    id: String,
    finding: Finding,
}

/// One workflow version (a created / updated / activated event with its nodes).
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Version {
    t: i64,
    id: String,
    system: String,
    created: bool,
    /// Set when the version has an unauthenticated webhook trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    open: Option<Open>,
}

/// What a finding on an open version says, and whether planned work or an ignored
/// environment excuses it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Open {
    name: String,
    paths: String,
    who: String,
    excused: bool,
}

kept::record!(Found, Version);

#[derive(Default)]
pub struct ExternalWebhook;

impl IncrementalDetector for ExternalWebhook {
    type State = Seen;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Destinations>()?;
        cx.settings::<Policy>()?;
        Ok(())
    }

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

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let system = cx.window().map(|w| w.kind) == Some(TrajectoryKind::System);
        if !new_events.is_empty() {
            let lists = cx.settings::<Destinations>()?;
            let policy = cx.settings::<Policy>()?;
            let (mut hooks, mut versions) = (Vec::new(), Vec::new());
            for e in new_events {
                if system && HOOKS.contains(&e.action.as_str()) {
                    hooks.extend(hook(e, &lists, &policy).map(|finding| Found {
                        t: e.time,
                        id: e.id.clone(),
                        finding,
                    }));
                } else if !system
                    && WORKFLOW.contains(&e.action.as_str())
                    && e.attr("nodes.count").is_some()
                {
                    versions.push(Version::of(e, &policy));
                }
            }
            kept::fold(&mut seen.hooks, hooks, MAX_HOOKS, kept::BUDGET);
            kept::fold(&mut seen.versions, versions, MAX_VERSIONS, kept::BUDGET);
        }
        // What left the trajectory goes with it.
        kept::prune(&mut seen.hooks, cx);
        kept::prune(&mut seen.versions, cx);
        if system {
            return Ok(seen.hooks.iter().map(|f| f.finding.clone()).collect());
        }
        // Actor trajectories: workflows that become triggerable by anyone.
        let mut open_before: std::collections::BTreeMap<&str, bool> = Default::default();
        let mut findings = Vec::new();
        for v in &seen.versions {
            let was = open_before.insert(v.system.as_str(), v.open.is_some());
            let Some(open) = &v.open else {
                continue;
            };
            // Newly open: created open, or a version that opened it. A workflow first seen
            // already open says nothing about when it opened.
            let newly = v.created || was == Some(false);
            if !newly || open.excused {
                continue;
            }
            findings.push(
                Finding::new(
                    OPEN_TRIGGER,
                    Severity::NeedsReview,
                    title(format!(
                        "Workflow {} ({}) now has an unauthenticated webhook trigger{}, by {}",
                        quoted(&open.name, 40),
                        v.system,
                        if open.paths.is_empty() { String::new() } else { format!(" at /{}", open.paths) },
                        open.who
                    )),
                )
                .evidence_ids([v.id.clone()])
                .score(0.6)
                .next_step(format!(
                    "Ask {} to put authentication (header or basic auth) on the webhook of {}, or confirm it only receives public data",
                    open.who,
                    v.system
                )),
            );
        }
        Ok(findings)
    }
}

/// The finding on one new repository / organisation webhook, if its host is not
/// allow-listed and it is not planned work.
fn hook(e: &Event, lists: &Destinations, policy: &Policy) -> Option<Finding> {
    let url = attr_text(e, &["hook.url", "hook.host"]).or(e.destination.as_deref())?;
    let (place, class) = lists.classify(url)?;
    if class == DestinationClass::Known || policy.is_planned(e) {
        return None;
    }
    let urgent = class.is_personal_or_anonymous();
    let events = attr_list(e, "hook.events");
    let what = if events.is_empty() || events.iter().any(|x| x == "*") {
        "all events".to_string()
    } else {
        events.join(",")
    };
    Some(
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
            text(place.name()),
            e.system
        )),
    )
}

impl Version {
    fn of(e: &Event, policy: &Policy) -> Version {
        let open = e.attr_bool("trigger.webhook.unauthenticated") == Some(true);
        Version {
            t: e.time,
            id: e.id.clone(),
            system: text(&e.system),
            created: e.is("workflow.created"),
            open: open.then(|| Open {
                name: text(
                    attr_text(e, &["workflow.name", "detail.scenarioName"]).unwrap_or(&e.system),
                ),
                paths: text(attr_text(e, &["trigger.webhook.paths"]).unwrap_or("")),
                who: text(who(e)),
                excused: policy.is_ignored_environment(e) || policy.is_planned(e),
            }),
        }
    }
}

register_incremental_detector!(ExternalWebhook);

#[cfg(test)]
mod tests {
    plumbline_sdk::testing::incremental_fixture_tests!(super::ExternalWebhook);

    /// Many copies of one event with 500-byte ids and 8 KiB texts: the state stays under
    /// the host's bound (each call checks it), the answer under its 100 findings.
    #[test]
    fn state_stays_bounded() {
        use plumbline_sdk::testing::feed;
        let f = feed::load(FIXTURES, "positive-decoy-own-ci-hook-first.json");
        let found = feed::flood::<super::ExternalWebhook>(&f, "gh-audit:h2", 300);
        feed::newest_kept(&found);
    }
}
