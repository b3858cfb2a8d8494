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
//!
//! Incremental (`plumbline:detector@0.2.0`): the state holds the workflow versions that
//! carry a body and still matter (what each lists, who changed it), the export nodes, the
//! credentials and the webhooks created — ids, times and names, not the events. The node,
//! credential and webhook events it reads beside the workflow's own are declared actions.

use std::collections::{BTreeMap, BTreeSet};

use plumbline_sdk::kept::{self, text, Record as _};
use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const SIGNAL: &str = "exfil.workflow_new_destination";
const NAME_KEYS: [&str; 3] = ["workflow.name", "detail.scenarioName", "detail.name"];
const VERSIONS: [&str; 3] = ["workflow.created", "workflow.updated", "workflow.activated"];
const NODES: [&str; 2] = ["workflow.node.added", "workflow.node.changed"];

/// Bounds on what is kept, so the state stays under the host's 64 KiB whatever the names'
/// lengths (in bytes as [`kept::fold`] weighs them): the newest versions that added a host
/// (a version that adds none is never reported and leaves the baseline as it was, so it is
/// not kept) within half of [`kept::BUDGET`], the older ones forgotten but for the hosts
/// they listed (within 6 KiB: the baseline of their workflows); the newest export nodes
/// within a sixth, the credentials and the webhooks created within a twelfth each.
const VERSIONS_BYTES: usize = kept::BUDGET / 2;
const FORGOTTEN_BYTES: usize = 6 << 10;
const NODES_BYTES: usize = kept::BUDGET / 6;
const CREATED_BYTES: usize = kept::BUDGET / 12;

/// What the detector remembers of a trajectory, each list in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    versions: Vec<Version>,
    /// The hosts listed by versions no longer kept, by workflow (`system`).
    forgotten: BTreeMap<String, Forgotten>,
    nodes: Vec<Node>,
    credentials: Vec<Created>,
    webhooks: Vec<Created>,
}

/// A workflow version that carries the body (`nodes.count`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Version {
    t: i64,
    id: String,
    created: bool,
    system: String,
    actor: String,
    environment: Environment,
    name: Option<String>,
    destinations: Vec<String>,
    /// `export.credentials`: the connections and keys its export steps use.
    credentials: Vec<String>,
}

/// An export node the adapter saw added or changed, in the version `base`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Node {
    t: i64,
    id: String,
    base: String,
    destination: Option<String>,
}

/// A credential (`key` is `kind:id`) or a webhook (`key` is its workflow) created, by `actor`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Created {
    t: i64,
    id: String,
    key: String,
    actor: String,
}

kept::record!(Version, Node, Created);

/// The hosts of a workflow's forgotten versions, and the newest one's time: when that has
/// left the trajectory (its bound dropped it), so have they all.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Forgotten {
    t: i64,
    hosts: BTreeSet<String>,
}

/// What one call's events add, before they are folded in.
#[derive(Default)]
struct New {
    versions: Vec<Version>,
    nodes: Vec<Node>,
    credentials: Vec<Created>,
    webhooks: Vec<Created>,
}

impl New {
    fn add(&mut self, e: &Event) {
        let created = |key: String| Created {
            t: e.time,
            id: e.id.clone(),
            key: text(&key),
            actor: text(&e.actor.id),
        };
        let list = |key: &str| attr_list(e, key).iter().map(|d| text(d)).collect();
        if VERSIONS.contains(&e.action.as_str()) {
            // Only versions that carry the workflow body list its destinations.
            if e.attr("nodes.count").is_some() {
                self.versions.push(Version {
                    t: e.time,
                    id: e.id.clone(),
                    created: e.is("workflow.created"),
                    system: text(&e.system),
                    actor: text(&e.actor.id),
                    environment: e.environment,
                    name: attr_text(e, &NAME_KEYS).map(text),
                    destinations: list("destinations"),
                    credentials: list("export.credentials"),
                });
            }
        } else if NODES.contains(&e.action.as_str()) {
            if let Some((base, _)) =
                e.id.split_once(":node.")
                    .filter(|_| e.attr_bool("node.export") == Some(true))
            {
                self.nodes.push(Node {
                    t: e.time,
                    id: e.id.clone(),
                    base: base.to_string(),
                    destination: e.attr_str("node.destination").map(text),
                });
            }
        } else if e.is("credential.created") {
            if let (Some(kind), Some(id)) =
                (e.attr_str("credential.kind"), e.attr_str("credential.id"))
            {
                self.credentials.push(created(format!("{kind}:{id}")));
            }
        } else if e.is("webhook.created") {
            self.webhooks.push(created(e.system.clone()));
        }
    }
}

impl Seen {
    /// Folds a call's events in, each list in (time, id) order and within its bound, and
    /// forgets what has left the trajectory (its bound dropped it), as a 0.1.0 call would
    /// not see it either.
    fn fold(&mut self, new: New, cx: &Context) {
        let all = usize::MAX;
        // The versions are bounded by `settle`, once those that add nothing are gone.
        kept::fold(&mut self.versions, new.versions, all, all);
        kept::fold(&mut self.nodes, new.nodes, all, NODES_BYTES);
        kept::fold(&mut self.credentials, new.credentials, all, CREATED_BYTES);
        kept::fold(&mut self.webhooks, new.webhooks, all, CREATED_BYTES);
        kept::prune(&mut self.versions, cx);
        kept::prune(&mut self.nodes, cx);
        kept::prune(&mut self.credentials, cx);
        kept::prune(&mut self.webhooks, cx);
        if let Some(w) = cx.window() {
            self.forgotten.retain(|_, f| f.t >= w.start);
        }
        self.settle();
    }

    /// Drops the versions that add no host to a workflow that already has a baseline (they
    /// are never reported and leave the baseline as it was, whatever comes later: a late
    /// version only adds to what was known before them), then the oldest past
    /// [`VERSIONS_BYTES`], keeping the hosts they listed as their workflow's baseline.
    fn settle(&mut self) {
        let mut known = self.baselines();
        let mut idle: BTreeSet<&str> = BTreeSet::new();
        for v in &self.versions {
            let baseline = known.entry(v.system.as_str());
            if let std::collections::btree_map::Entry::Occupied(b) = &baseline {
                if v.destinations.iter().all(|d| b.get().contains(d.as_str())) {
                    idle.insert(&v.id);
                }
            }
            baseline
                .or_default()
                .extend(v.destinations.iter().map(String::as_str));
        }
        let idle: BTreeSet<String> = idle.into_iter().map(str::to_string).collect();
        self.versions.retain(|v| !idle.contains(&v.id));
        self.nodes.retain(|n| !idle.contains(&n.base));
        let mut room = FORGOTTEN_BYTES.saturating_sub(
            self.forgotten
                .iter()
                .flat_map(|(system, f)| std::iter::once(system).chain(&f.hosts))
                .map(|s| s.len() + 3)
                .sum(),
        );
        for old in kept::fold(&mut self.versions, [], usize::MAX, VERSIONS_BYTES) {
            self.nodes.retain(|n| n.base != old.id);
            room = room.saturating_sub(old.system.len() + 3);
            let known = self.forgotten.entry(old.system).or_default();
            known.t = known.t.max(old.t);
            for host in old.destinations {
                if room > host.len() + 3 && !known.hosts.contains(&host) {
                    room -= host.len() + 3;
                    known.hosts.insert(host);
                }
            }
        }
    }

    /// The hosts of the versions no longer kept, by workflow: where the baselines start.
    fn baselines(&self) -> BTreeMap<&str, BTreeSet<&str>> {
        self.forgotten
            .iter()
            .map(|(system, f)| {
                (
                    system.as_str(),
                    f.hosts.iter().map(String::as_str).collect(),
                )
            })
            .collect()
    }
}

#[derive(Default)]
pub struct NewDestination;

impl IncrementalDetector for NewDestination {
    type State = Seen;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Destinations>()?;
        cx.settings::<Policy>()?;
        Ok(())
    }

    fn info() -> Info {
        let info = Info::new(
            "exfiltration.new-destination",
            "0.1.0",
            "An automation workflow gains an outbound destination that is on no allow-list",
        )
        .actions(&[
            "workflow.created",
            "workflow.updated",
            "workflow.activated",
            // What shows a change: rare beside the versions, so read as they come.
            "workflow.node.added",
            "workflow.node.changed",
            "credential.created",
            "webhook.created",
        ])
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL]);
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
        let lists = cx.settings::<Destinations>()?;
        let policy = cx.settings::<Policy>()?;
        let mut new = New::default();
        for e in new_events {
            new.add(e);
        }
        seen.fold(new, cx);
        let mut known = seen.baselines();
        let mut findings = Vec::new();
        for v in &seen.versions {
            let baseline = known.get(v.system.as_str());
            let nodes: Vec<&Node> = seen.nodes.iter().filter(|n| n.base == v.id).collect();
            // The credentials its export steps use that were created in this trajectory.
            let new_credentials: Vec<&Created> = v
                .credentials
                .iter()
                .filter_map(|c| seen.credentials.iter().find(|k| &k.key == c))
                .collect();
            let visible =
                v.created || baseline.is_some() || !nodes.is_empty() || !new_credentials.is_empty();
            let fresh: Vec<&String> = v
                .destinations
                .iter()
                .filter(|d| baseline.is_none_or(|b| !b.contains(d.as_str())))
                .collect();
            known
                .entry(v.system.as_str())
                .or_default()
                .extend(v.destinations.iter().map(String::as_str));
            let planned = policy.is_service_account(&v.actor) && policy.windows.contains(v.t);
            if policy.ignore_environments.contains(&v.environment) || planned {
                continue;
            }
            let mut flagged: Vec<(String, DestinationClass)> = fresh
                .iter()
                .filter_map(|d| {
                    let (place, class) = lists.classify_from(d, &v.actor)?;
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
            let name = v.name.as_deref().unwrap_or(&v.system);
            let headline = title(format!(
                "Workflow {} now sends data to {} ({}), changed by {}",
                quoted(name, 50),
                hosts.join(", "),
                worst.describe(),
                v.actor
            ));
            let score = if worst.is_personal_or_anonymous() {
                0.85
            } else {
                0.6
            };
            let next = format!(
                "Review the diff of {} with {}: who owns {} and is sending this workflow's data there approved? Pause the workflow if not; add approved vendors to known_domains",
                v.system,
                v.actor,
                hosts.join(", ")
            );
            let mut evidence: Vec<(i64, &str)> = vec![v.at()];
            // The node events that point at a flagged host (or whose host the adapter
            // could not read) show where in the workflow the change is.
            evidence.extend(
                nodes
                    .iter()
                    .filter(|n| {
                        n.destination
                            .as_deref()
                            .is_none_or(|h| hosts.iter().any(|x| x == h))
                    })
                    .map(|n| n.at()),
            );
            // So do the connection or key set up for the sending step, and a webhook
            // created to feed this workflow.
            evidence.extend(new_credentials.iter().map(|c| c.at()));
            evidence.extend(
                seen.webhooks
                    .iter()
                    .filter(|w| w.key == v.system && w.actor == v.actor)
                    .map(|w| w.at()),
            );
            evidence.sort();
            evidence.dedup_by_key(|x| x.1);
            findings.push(
                Finding::new(SIGNAL, Severity::NeedsReview, headline)
                    .evidence_ids(evidence.into_iter().map(|(_, id)| id.to_string()))
                    .score(score)
                    .next_step(next),
            );
        }
        Ok(findings)
    }
}

register_incremental_detector!(NewDestination);

#[cfg(test)]
mod tests {
    plumbline_sdk::testing::incremental_fixture_tests!(super::NewDestination);

    /// Many copies of a new scenario with 500-byte ids and 8 KiB texts: the state stays
    /// under the host's bound (each call checks it); the copies add no host to the first.
    #[test]
    fn state_stays_bounded() {
        use plumbline_sdk::testing::feed;
        let f = feed::load(FIXTURES, "positive-new-make-scenario.json");
        let found = feed::flood::<super::NewDestination>(&f, "make:7f3a", 300);
        assert_eq!(found.len(), 1);
    }

    /// 120 versions of one workflow, each adding a host (and an export node) and dropping its
    /// oldest of ten, after 60 keys created: only the newest versions (and keys) are judged, the state
    /// stays under the host's bound on every call (the harness checks it), and a forgotten
    /// version's hosts are still its workflow's baseline.
    #[test]
    fn forgotten_versions_stay_the_baseline() {
        let event = |id: String, minute: usize, action: &str, attributes: String| {
            format!(
                r#"{{"id": "{id}", "time": "2024-06-12T{:02}:{:02}:00Z", "source": "n8n", "actor": {{"id": "lee@acme.com", "type": "human"}}, "system": "n8n/workflow/wf7", "action": "{action}", "attributes": {{{attributes}}}}}"#,
                8 + minute / 60,
                minute % 60
            )
        };
        let mut events: Vec<String> = (0..60)
            .map(|i| {
                let attributes = format!(r#""credential.kind": "key", "credential.id": "{i}""#);
                event(
                    format!("make:key-{i:04}"),
                    0,
                    "credential.created",
                    attributes,
                )
            })
            .collect();
        let mut hosts = Vec::new();
        for i in 1..=120usize {
            hosts.push(format!("collector-{i:03}.example-intake-service.net"));
            let attributes = format!(
                r#""workflow.name": "Lead routing", "nodes.count": 4, "destinations": "{}", "export.credentials": "key:{}""#,
                hosts[i.saturating_sub(10)..].join(","),
                59 - i % 60
            );
            let id = format!("n8n:version-{i:04}");
            events.push(event(id.clone(), i, "workflow.updated", attributes));
            let node = format!(
                r#""node.export": true, "node.destination": "{}""#,
                hosts[i - 1]
            );
            events.push(event(
                format!("{id}:node.added.{i}"),
                i,
                "workflow.node.added",
                node,
            ));
        }
        // The oldest version's host again: known, though its version is forgotten.
        let attributes = format!(r#""nodes.count": 4, "destinations": "{}""#, hosts[0]);
        events.push(event(
            "n8n:version-0121".into(),
            121,
            "workflow.updated",
            attributes,
        ));
        let fixture = format!(
            r#"{{"trajectory": {{"kind": "actor", "key": "lee@acme.com", "events": [{}]}}, "expected": [], "ignore_unexpected_below": 3}}"#,
            events.join(",\n")
        );
        let path = std::env::temp_dir().join("exfiltration-new-destination-bounded.json");
        std::fs::write(&path, fixture).unwrap();
        let found = plumbline_sdk::testing::run_incremental_fixture::<super::NewDestination>(&path)
            .unwrap();
        assert!((20..120).contains(&found.len()), "{}", found.len());
        assert!(found
            .iter()
            .all(|f| !f.evidence.contains(&"n8n:version-0121".into())));
        let last = &found[found.len() - 1];
        assert_eq!(
            last.evidence,
            [
                "make:key-0059",
                "n8n:version-0120",
                "n8n:version-0120:node.added.120"
            ]
        );
        assert!(last.title.contains("collector-120."), "{}", last.title);
    }

    /// Replaces the fixture `negative-system-trajectory.json` (the same events seen through
    /// the workflow's system trajectory): the host never offers this detector that view.
    #[test]
    fn reads_only_its_views() {
        use plumbline_sdk::{IncrementalDetector, TrajectoryKind};
        let info = super::NewDestination::info();
        assert!(info.reads_view(TrajectoryKind::Actor));
        assert!(!info.reads_view(TrajectoryKind::System));
    }
}
