//! An automation workflow (n8n, make.com) starts sending data somewhere new: a host that is
//! not allow-listed appears among the workflow's outbound destinations. Quick fixes turn
//! "lead routing" into a customer-data replicator one HTTP node at a time; this catches
//! the node that does it.
//!
//! A host counts as new only when the change is visible: the workflow was created in this
//! trajectory, the adapter saw an export node added or changed in this version, an
//! earlier version in the trajectory lacked the host, or a credential the workflow's export
//! steps use (`export.credentials`: a make.com connection or key) was created in this
//! trajectory — the sending step was set up now. A routine edit of an old workflow that has
//! always posted somewhere is not a new destination; one that posts to a personal mailbox
//! or account, a consumer drive, a request catcher or a bare IP is reported whenever first
//! seen, since no baseline makes that routine.
//!
//! Destinations may be hosts or accounts: an upload to a Drive or a mail sent through a
//! connected account names that account's address (`mallory.reyes@gmail.com`), which the
//! destination lists class like any mail address (the actor's own work domain is the
//! company's).

use std::collections::{BTreeMap, BTreeSet};

use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const SIGNAL: &str = "exfil.workflow_new_destination";
const NAME_KEYS: [&str; 3] = ["workflow.name", "detail.scenarioName", "detail.name"];

#[derive(Default)]
pub struct NewDestination;

impl Detector for NewDestination {
    fn info() -> Info {
        let info = Info::new(
            "exfiltration.new-destination",
            "0.1.0",
            "An automation workflow gains an outbound destination that is on no allow-list",
        )
        .actions(&["workflow.created", "workflow.updated", "workflow.activated"])
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL]);
        let info = destination::declare(info);
        let info = keys::planned_work(info);
        keys::environments(info, "test")
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let lists = cx.settings::<Destinations>()?;
        let policy = cx.settings::<Policy>()?;
        // Export nodes the adapter saw added or changed, by the id of the version event.
        let mut export_changes: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
        for e in t.with_any_action(&["workflow.node.added", "workflow.node.changed"]) {
            if e.attr_bool("node.export") == Some(true) {
                if let Some((base, _)) = e.id.split_once(":node.") {
                    export_changes.entry(base).or_default().push(e);
                }
            }
        }
        // Credentials created in this trajectory, as `kind:id` (make.com connections and
        // keys), with the events that created them.
        let mut created: BTreeMap<String, &Event> = BTreeMap::new();
        for e in t.with_action("credential.created") {
            if let (Some(kind), Some(id)) =
                (e.attr_str("credential.kind"), e.attr_str("credential.id"))
            {
                created.entry(format!("{kind}:{id}")).or_insert(e);
            }
        }
        let mut known: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        let mut findings = Vec::new();
        for e in t.with_any_action(&["workflow.created", "workflow.updated", "workflow.activated"])
        {
            // Only versions that carry the workflow body list its destinations.
            if e.attr("nodes.count").is_none() {
                continue;
            }
            let dests = attr_list(e, "destinations");
            let baseline = known.get(e.system.as_str());
            let nodes = export_changes.get(e.id.as_str());
            // The credentials its export steps use that were created in this trajectory.
            let new_credentials: Vec<&Event> = attr_list(e, "export.credentials")
                .iter()
                .filter_map(|c| created.get(c.as_str()).copied())
                .collect();
            let visible = e.is("workflow.created")
                || baseline.is_some()
                || nodes.is_some()
                || !new_credentials.is_empty();
            let fresh: Vec<&String> = dests
                .iter()
                .filter(|d| baseline.is_none_or(|b| !b.contains(*d)))
                .collect();
            known
                .entry(e.system.as_str())
                .or_default()
                .extend(dests.iter().cloned());
            if policy.is_ignored_environment(e) || policy.is_planned(e) {
                continue;
            }
            let mut flagged: Vec<(String, DestinationClass)> = fresh
                .iter()
                .filter_map(|d| {
                    let (place, class) = lists.classify_from(d, &e.actor.id)?;
                    // An account is shown whole: whose mailbox or Drive it is.
                    let shown = match place {
                        Place::Mail(_) => d.trim().to_ascii_lowercase(),
                        p => p.name().to_string(),
                    };
                    Some((shown, class))
                })
                .filter(|(_, c)| *c != DestinationClass::Known)
                // Without a visible change only the places no baseline makes routine.
                .filter(|(_, c)| visible || c.is_personal_or_anonymous())
                .collect();
            if flagged.is_empty() {
                continue;
            }
            // The most telling class first.
            flagged.sort_by_key(|f| std::cmp::Reverse(f.1));
            let worst = flagged[0].1;
            let hosts: Vec<String> = flagged.iter().map(|(h, _)| h.clone()).collect();
            let name = attr_text(e, &NAME_KEYS).unwrap_or(&e.system);
            let headline = title(format!(
                "Workflow {} now sends data to {} ({}), changed by {}",
                quoted(name, 50),
                hosts.join(", "),
                worst.describe(),
                e.actor.id
            ));
            let score = if worst.is_personal_or_anonymous() {
                0.85
            } else {
                0.6
            };
            let next = format!(
                "Review the diff of {} with {}: who owns {} and is sending this workflow's data there approved? Pause the workflow if not; add approved vendors to known_domains",
                e.system,
                e.actor.id,
                hosts.join(", ")
            );
            let mut evidence = vec![e];
            // The node events that point at a flagged host (or whose host the adapter
            // could not read) show where in the workflow the change is.
            evidence.extend(nodes.into_iter().flatten().copied().filter(|n| {
                n.attr_str("node.destination")
                    .is_none_or(|h| hosts.iter().any(|x| x == h))
            }));
            // So do the connection or key set up for the sending step, and a webhook
            // created to feed this workflow.
            evidence.extend(new_credentials.iter().copied());
            evidence.extend(
                t.with_action("webhook.created")
                    .filter(|w| w.system == e.system && w.actor.id == e.actor.id),
            );
            evidence.sort_by_key(|x| (x.time, x.id.as_str()));
            evidence.dedup_by_key(|x| x.id.as_str());
            findings.push(
                Finding::new(SIGNAL, Severity::NeedsReview, headline)
                    .evidence(evidence)
                    .score(score)
                    .next_step(next),
            );
        }
        Ok(findings)
    }
}

register_detector!(NewDestination);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::NewDestination>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::NewDestination>(FIXTURES);
    }

    /// Replaces the fixture `negative-system-trajectory.json` (the same events seen through
    /// the workflow's system trajectory): the host never offers this detector that view.
    #[test]
    fn reads_only_its_views() {
        use plumbline_sdk::{Detector, TrajectoryKind};
        let info = super::NewDestination::info();
        assert!(info.reads_view(TrajectoryKind::Actor));
        assert!(!info.reads_view(TrajectoryKind::System));
    }
}
