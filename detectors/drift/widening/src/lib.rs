//! Policy drift: many individually small widenings — a scope here, a new destination
//! there, one more admin — by the same actor or on the same system, spread over weeks.
//! No single change trips a threshold; the sum quietly moves the company away from least
//! privilege and its data commitments.
//!
//! Hour-long trajectories cannot show this. The detector reads the host's long, filtered
//! drift view (30 days of permission and destination changes per actor and per system;
//! see detectors/README.md, "The drift view"); on an ordinary trajectory the span
//! threshold is never reached, so it stays silent there.
//!
//! A widening that is reverted later in the view (member removed, tool revoked, protection
//! restored, host dropped from the workflow) does not count; nor do ignored environments
//! or planned work. Fires (needs review) when at least `min_widenings` remain, on at least
//! `min_days` different days, spanning at least `min_span_days`.
//!
//! Incremental (`plumbline:detector@0.2.0`): the state holds summaries, not events — the
//! widenings not reverted (id, time, key), the latest reversal of each key, and the
//! workflow versions and exports (id, time, system and hosts as positions in a table of
//! names) from which new and dropped destinations are worked out again on every call;
//! all pruned to the view's start and bounded. It never reads history.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use plumbline_sdk::kept::{self, text};
use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const PERMISSION: &str = "drift.permission_widening";
const DESTINATION: &str = "drift.destination_widening";
const MIXED: &str = "drift.mixed_widening";

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// What the drift view holds: every action here, and nothing else, is needed.
pub const VIEW_ACTIONS: [&str; 42] = [
    // permissions widened
    "credential.scope.increased",
    "credential.attached",
    "member.added",
    "member.permission.changed",
    "team.permission.changed",
    "team.repository.added",
    "admin.role.granted",
    "role.assigned",
    "iam.policy.attached",
    "api_key.created",
    "deploy_key.created",
    "token.created",
    "app.installed",
    "app.repositories.added",
    "app.authorized",
    "app.access.granted",
    "assistant.tool.granted",
    "assistant.retrieval.added",
    "branch.protection.disabled",
    "branch.protection.changed",
    "repo.ruleset.changed",
    "repo.visibility.changed",
    "s3.bucket.policy.shared",
    "s3.bucket.acl.shared",
    "snapshot.shared",
    "network.allowlist.disabled",
    // ... and narrowed again
    "member.removed",
    "admin.role.revoked",
    "role.unassigned",
    "api_key.deleted",
    "api_key.revoked",
    "deploy_key.deleted",
    "app.uninstalled",
    "app.repositories.removed",
    "assistant.tool.revoked",
    "assistant.retrieval.removed",
    "branch.protection.enabled",
    "s3.bucket.policy.changed",
    // destinations
    "workflow.created",
    "workflow.updated",
    "data.export",
    "repo.webhook.created",
];

// The state's bounds. Each list drops its oldest entries first when over its count or
// bytes (by `kept`'s measure), so the whole state stays under the host's 64 KiB per state
// (`runtime.state_max_bytes`): 28 + 6 + 12 + 10 KiB and the JSON around them (under
// 50 KiB measured at worst). A view with more than these (some 170 widenings standing with
// audit-log ids, 150 reversed keys, 100 to 400 workflow versions and exports) is judged on
// its newest ones: the count, first day and evidence then start at the oldest kept.

/// Widenings kept (not reverted), and their bytes.
const MAX_WIDENINGS: usize = 300;
const WIDENINGS_BUDGET: usize = 28 << 10;
/// Keys reverted (the latest reversal of each), and their bytes.
const MAX_REVERSALS: usize = 150;
const REVERSALS_BUDGET: usize = 6 << 10;
/// Workflow versions and exports kept, and their bytes (hosts as positions in `names`).
const MAX_VERSIONS: usize = 400;
const VERSIONS_BUDGET: usize = 12 << 10;
/// Bytes of the systems and hosts the versions and exports kept name.
const NAMES_BUDGET: usize = 10 << 10;
/// Hosts kept of one workflow version (its first ones; real workflows list a few).
const MAX_HOSTS: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Category {
    Permission,
    Destination,
}

/// What the detector remembers of a drift view, each list in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Drift {
    /// Widenings other than a workflow's or an export's new host, not reverted by a later
    /// reversal seen so far, nor planned work or in an ignored environment.
    widened: Vec<Widened>,
    /// The time of the latest reversal of each widening key: a widening before it is
    /// undone (and one arriving late before it too).
    reversed: BTreeMap<String, i64>,
    /// Workflow versions that carry their body, and exports with a destination.
    sent: Vec<Sent>,
    /// The systems and hosts `sent` names, by position (texts clipped).
    names: Vec<String>,
}

/// One widening: what the finding and its reversal need of the event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Widened {
    t: i64,
    id: String,
    /// What was widened, as its reversal names it (`member:acme/api:erin`).
    key: String,
    /// A new repository webhook (a destination; no reversal is tracked for it, as in
    /// 0.1.0, where no host dropped from a workflow ever named one).
    webhook: bool,
}

/// A workflow version with its hosts, or an export with its destination.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Sent {
    t: i64,
    id: String,
    /// Position of the event's system in `names`.
    system: u32,
    kind: Kind,
    /// Positions of the hosts in `names`, as the event lists them (at most [`MAX_HOSTS`]).
    hosts: Vec<u32>,
}

kept::record!(Widened, Sent);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
enum Kind {
    /// `workflow.created`: its hosts are new.
    Created,
    /// `workflow.updated`: the hosts not in the version before are new.
    Updated,
    /// A version that is planned work or in an ignored environment: its hosts join the
    /// workflow's baseline, none is a widening.
    Routine,
    /// `data.export` to a destination (one host).
    Export,
}

/// One widening the finding counts, cites and names.
struct Counted<'a> {
    t: i64,
    id: &'a str,
    category: Category,
    /// The key or host, as the title shows it after [`short`].
    what: &'a str,
}

#[derive(Default)]
pub struct Widening;

impl IncrementalDetector for Widening {
    type State = Drift;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Destinations>()?;
        cx.settings::<Policy>()?;
        Ok(())
    }

    fn info() -> Info {
        let info = Info::new(
            "drift.widening",
            "0.1.0",
            "Many small permission or destination widenings by one actor or on one system over weeks (reads the 30-day drift view)",
        )
        .actions(&VIEW_ACTIONS)
        .views(&[TrajectoryKind::ActorDrift, TrajectoryKind::SystemDrift])
        .signals(&[PERMISSION, DESTINATION, MIXED])
        .config("min_widenings", "5", "Widenings (not reverted) that make drift")
        .config("min_days", "3", "Different days the widenings must fall on")
        .config(
            "min_span_days",
            "7",
            "Days between the first and last widening (hour-long trajectories never reach it)",
        )
        .config(
            "baseline_days",
            "2",
            "Export destinations first seen in the view's first days are the baseline, not widenings",
        )
        .config("max_evidence", "50", "Most events cited per finding");
        let info = destination::declare(info);
        let info = keys::planned_work(info);
        keys::environments(info, "test")
    }

    fn observe(
        &self,
        state: &mut Drift,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let min_widenings: usize = cx.config_parsed("min_widenings")?;
        let min_days: usize = cx.config_parsed("min_days")?;
        let min_span = cx.config_parsed::<i64>("min_span_days")? * NANOS_PER_DAY;
        let max_evidence: usize = cx.config_parsed("max_evidence")?;
        let baseline = cx.config_parsed::<i64>("baseline_days")? * NANOS_PER_DAY;
        let lists = cx.settings::<Destinations>()?;
        let policy = cx.settings::<Policy>()?;

        state.fold(new_events, &policy);
        // What has left the view is no longer judged, as a 0.1.0 call would not see it.
        let start = cx.window().map(|w| w.start);
        if start.is_some() {
            kept::prune(&mut state.widened, cx);
            kept::prune(&mut state.sent, cx);
            // A widening kept is not older than the view, so an older reversal undoes none.
            state.reversed.retain(|_, t| Some(*t) >= start);
        }
        state.tidy_names();

        // 0.1.0's view started at its first event: the window's start (always known in
        // an incremental call), else the oldest kept.
        let view_start = start
            .or_else(|| {
                let firsts = [
                    state.widened.first().map(|w| w.t),
                    state.sent.first().map(|s| s.t),
                ];
                firsts.into_iter().flatten().min()
            })
            .unwrap_or(0);
        let mut widenings: Vec<Counted> = state
            .widened
            .iter()
            .map(|w| Counted {
                t: w.t,
                id: &w.id,
                category: if w.webhook {
                    Category::Destination
                } else {
                    Category::Permission
                },
                what: &w.key,
            })
            .collect();
        widenings.extend(state.new_hosts(view_start, baseline, &lists));
        // Stable: the hosts one version adds stay in the order it lists them.
        widenings.sort_by(|a, b| (a.t, a.id).cmp(&(b.t, b.id)));

        let (kind, key) = cx.window().map_or((TrajectoryKind::ActorDrift, ""), |w| {
            (w.kind, w.key.as_str())
        });
        Ok(judge(
            &widenings,
            kind,
            key,
            min_widenings,
            min_days,
            min_span,
            max_evidence,
        )
        .into_iter()
        .collect())
    }
}

register_incremental_detector!(Widening);

impl Drift {
    /// Folds the new events in: reversals first (a widening in the same call may be
    /// undone by one), then widenings, workflow versions and exports.
    fn fold(&mut self, new_events: &[Event], policy: &Policy) {
        for e in new_events {
            if let Some(k) = narrowing_key(e) {
                let at = self.reversed.entry(text(&k)).or_insert(e.time);
                *at = (*at).max(e.time);
            }
        }
        if self.reversed.len() > MAX_REVERSALS
            || self.reversed.iter().map(weigh_reversal).sum::<usize>() > REVERSALS_BUDGET
        {
            let mut by_time: Vec<(i64, String)> = std::mem::take(&mut self.reversed)
                .into_iter()
                .map(|(k, t)| (t, k))
                .collect();
            by_time.sort();
            let mut weight = 0;
            for (t, k) in by_time.into_iter().rev() {
                weight += weigh_reversal((&k, &t));
                if self.reversed.len() == MAX_REVERSALS || weight > REVERSALS_BUDGET {
                    break;
                }
                self.reversed.insert(k, t);
            }
        }

        let mut widened = Vec::new();
        let mut sent = Vec::new();
        for e in new_events {
            let routine = policy.is_ignored_environment(e) || policy.is_planned(e);
            if let Some(ds) = destinations(e) {
                let kind = match (routine, e.is("workflow.created")) {
                    (true, _) => Kind::Routine,
                    (false, true) => Kind::Created,
                    (false, false) => Kind::Updated,
                };
                sent.push((e, kind, ds));
            } else if routine {
                // Planned work and ignored environments widen nothing.
            } else if e.is("data.export") {
                if let Some(d) = e.destination.as_deref() {
                    sent.push((e, Kind::Export, vec![d.to_string()]));
                }
            } else if let Some(key) = widening_key(e) {
                widened.push(Widened {
                    t: e.time,
                    id: e.id.clone(),
                    key: text(&key),
                    webhook: e.is("repo.webhook.created"),
                });
            }
        }
        let reversed = &self.reversed;
        let standing = |w: &Widened| w.webhook || reversed.get(&w.key).is_none_or(|at| *at <= w.t);
        self.widened.retain(standing);
        widened.retain(standing);
        kept::fold(&mut self.widened, widened, MAX_WIDENINGS, WIDENINGS_BUDGET);

        let mut index: HashMap<String, u32> = self
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        let names = &mut self.names;
        let mut intern = |s: &str| -> u32 {
            *index.entry(text(s)).or_insert_with_key(|n| {
                names.push(n.clone());
                (names.len() - 1) as u32
            })
        };
        let sent: Vec<Sent> = sent
            .into_iter()
            .map(|(e, kind, hosts)| Sent {
                t: e.time,
                id: e.id.clone(),
                system: intern(&e.system),
                kind,
                hosts: hosts.iter().take(MAX_HOSTS).map(|h| intern(h)).collect(),
            })
            .collect();
        kept::fold(&mut self.sent, sent, MAX_VERSIONS, VERSIONS_BUDGET);
    }

    /// Drops the oldest versions and exports while the names they use weigh more than
    /// [`NAMES_BUDGET`], then renumbers the names the rest use (the others are forgotten).
    fn tidy_names(&mut self) {
        let mut used = HashSet::new();
        let mut weight = 0;
        let mut keep_from = 0;
        for (i, s) in self.sent.iter().enumerate().rev() {
            for &n in std::iter::once(&s.system).chain(&s.hosts) {
                if used.insert(n) {
                    weight += kept_weight(&self.names[n as usize]);
                }
            }
            if weight > NAMES_BUDGET {
                keep_from = i + 1;
                break;
            }
        }
        self.sent.drain(..keep_from);
        let old = std::mem::take(&mut self.names);
        let mut renumbered: HashMap<u32, u32> = HashMap::new();
        for s in &mut self.sent {
            for n in std::iter::once(&mut s.system).chain(s.hosts.iter_mut()) {
                *n = *renumbered.entry(*n).or_insert_with(|| {
                    self.names.push(old[*n as usize].clone());
                    (self.names.len() - 1) as u32
                });
            }
        }
    }

    /// The hosts workflow versions and exports added that are not allow-listed and that no
    /// later version of the same workflow dropped, worked out from the versions kept as
    /// 0.1.0 did from the view: each workflow's hosts followed version by version, the
    /// first version of a workflow (unless created in the view) and exports in the view's
    /// first `baseline` nanoseconds being the baseline.
    fn new_hosts(&self, view_start: i64, baseline: i64, lists: &Destinations) -> Vec<Counted<'_>> {
        let mut unlisted: Vec<Option<bool>> = vec![None; self.names.len()];
        let mut is_unlisted = |h: u32| {
            *unlisted[h as usize].get_or_insert_with(|| {
                lists
                    .classify(&self.names[h as usize])
                    .is_some_and(|(_, c)| c != DestinationClass::Known)
            })
        };
        // The hosts each workflow sent to so far, and when each (workflow, host) was last dropped.
        let mut known: HashMap<u32, BTreeSet<u32>> = HashMap::new();
        let mut dropped: HashMap<(u32, u32), i64> = HashMap::new();
        let mut added: Vec<(&Sent, u32)> = Vec::new();
        for s in &self.sent {
            match s.kind {
                Kind::Routine => known.entry(s.system).or_default().extend(&s.hosts),
                Kind::Created | Kind::Updated => {
                    let first_version = !known.contains_key(&s.system) && s.kind == Kind::Updated;
                    let hosts = known.entry(s.system).or_default();
                    for h in hosts.iter().filter(|h| !s.hosts.contains(h)) {
                        dropped.insert((s.system, *h), s.t);
                    }
                    let new: Vec<u32> = s
                        .hosts
                        .iter()
                        .filter(|h| !hosts.contains(h))
                        .copied()
                        .collect();
                    *hosts = s.hosts.iter().copied().collect();
                    if !first_version {
                        added.extend(new.into_iter().filter(|h| is_unlisted(*h)).map(|h| (s, h)));
                    }
                }
                Kind::Export => {
                    let hosts = known.entry(s.system).or_default();
                    let in_baseline = s.t - view_start < baseline;
                    if let Some(&d) = s.hosts.first() {
                        if hosts.insert(d) && !in_baseline && is_unlisted(d) {
                            added.push((s, d));
                        }
                    }
                }
            }
        }
        added
            .into_iter()
            .filter(|(s, h)| dropped.get(&(s.system, *h)).is_none_or(|at| *at <= s.t))
            .map(|(s, h)| Counted {
                t: s.t,
                id: &s.id,
                category: Category::Destination,
                what: &self.names[h as usize],
            })
            .collect()
    }
}

/// The finding on the widenings standing (in (time, id) order), if they make drift.
fn judge(
    widenings: &[Counted],
    kind: TrajectoryKind,
    key: &str,
    min_widenings: usize,
    min_days: usize,
    min_span: i64,
    max_evidence: usize,
) -> Option<Finding> {
    if widenings.len() < min_widenings {
        return None;
    }
    let days: BTreeSet<i64> = widenings
        .iter()
        .map(|w| w.t.div_euclid(NANOS_PER_DAY))
        .collect();
    let first = &widenings[0];
    let last = &widenings[widenings.len() - 1];
    if days.len() < min_days || last.t - first.t < min_span {
        return None;
    }
    let perms = widenings
        .iter()
        .filter(|w| w.category == Category::Permission)
        .count();
    let dests = widenings.len() - perms;
    let signal = match (perms, dests) {
        (_, 0) => PERMISSION,
        (0, _) => DESTINATION,
        _ => MIXED,
    };
    let span_days = (last.t - first.t) / NANOS_PER_DAY;
    let sample: Vec<String> = widenings.iter().take(4).map(|w| short(w.what)).collect();
    let actor = matches!(kind, TrajectoryKind::Actor | TrajectoryKind::ActorDrift);
    let whose = if actor {
        format!("{key} widened access")
    } else {
        format!("{key} was widened")
    };
    let line = title(format!(
        "{whose} {} times over {span_days} days ({perms} permission, {dests} destination): {}{}",
        widenings.len(),
        sample.join("; "),
        if widenings.len() > 4 { "; …" } else { "" }
    ));
    Some(
        Finding::new(signal, Severity::NeedsReview, line)
            .evidence_ids(widenings.iter().map(|w| w.id.to_string()).take(max_evidence))
            .score((0.5 + 0.05 * widenings.len() as f32).min(0.9))
            .next_step(format!(
                "Review the net change {} {key} since {}: ask the owners what each widening is for, and revert the ones nobody needs (least privilege, approved destinations only)",
                if actor { "made by" } else { "on" },
                date(first.t)
            )),
    )
}

/// A reversal's bytes, as `kept` weighs a record (at least its JSON's).
fn weigh_reversal((key, t): (&String, &i64)) -> usize {
    kept_weight(&(key, t))
}

fn kept_weight<T: std::fmt::Debug>(x: &T) -> usize {
    format!("{x:?}").len()
}

/// The outbound hosts a workflow version lists (only versions that carry the body do).
fn destinations(e: &Event) -> Option<Vec<String>> {
    if !(e.is("workflow.created") || e.is("workflow.updated")) || e.attr("nodes.count").is_none() {
        return None;
    }
    Some(attr_list(e, "destinations"))
}

/// What a widening widened, as a key its reversal shares; `None` if it is not one.
fn widening_key(e: &Event) -> Option<String> {
    let who = || {
        attr_text(e, &["member", "subject"])
            .unwrap_or(&e.resource)
            .to_string()
    };
    let key = match e.action.as_str() {
        "member.permission.changed" | "team.permission.changed" => {
            if e.attr_bool("escalated") != Some(true) {
                return None;
            }
            format!("member:{}:{}", e.system, who())
        }
        "member.added" | "team.repository.added" => format!("member:{}:{}", e.system, who()),
        "admin.role.granted" | "role.assigned" | "iam.policy.attached" => {
            format!("role:{}:{}", e.system, e.resource)
        }
        "api_key.created" | "token.created" => format!("key:{}:{}", e.system, e.resource),
        "deploy_key.created" => format!(
            "key:{}:{}",
            e.system,
            attr_text(e, &["key.title"]).unwrap_or(&e.resource)
        ),
        "app.installed" | "app.repositories.added" | "app.authorized" | "app.access.granted" => {
            format!(
                "app:{}:{}",
                e.system,
                attr_text(e, &["app"]).unwrap_or(&e.resource)
            )
        }
        "assistant.tool.granted" => format!(
            "tool:{}:{}",
            e.system,
            attr_text(e, &["tool"]).unwrap_or(&e.resource)
        ),
        "assistant.retrieval.added" => format!(
            "retrieval:{}:{}",
            e.system,
            attr_text(e, &["retrieval.source"]).unwrap_or(&e.resource)
        ),
        "branch.protection.disabled" | "branch.protection.changed" | "repo.ruleset.changed" => {
            if !(e.is("branch.protection.disabled") || e.attr_bool("weakened") == Some(true)) {
                return None;
            }
            format!("protection:{}:{}", e.system, e.resource)
        }
        "repo.visibility.changed" => {
            // Public, or internal (every signed-in user of the instance) from private.
            let widened = match e.attr_str("visibility") {
                Some("public") => true,
                Some("internal") => e.attr_str("visibility.from") == Some("private"),
                _ => false,
            };
            if !widened {
                return None;
            }
            format!("visibility:{}", e.system)
        }
        "s3.bucket.policy.shared" | "s3.bucket.acl.shared" | "snapshot.shared" => {
            format!("share:{}:{}", e.system, e.resource)
        }
        "credential.scope.increased" => format!(
            "scope:{}:{}:{}",
            e.system,
            attr_text(e, &["credential.name", "credential.id", "app"]).unwrap_or(&e.resource),
            attr_text(e, &["credential.scope.added"]).unwrap_or("")
        ),
        "credential.attached" => format!(
            "credential:{}:{}",
            e.system,
            attr_text(e, &["credential.name"]).unwrap_or(&e.resource)
        ),
        "network.allowlist.disabled" | "repo.webhook.created" => {
            format!("{}:{}:{}", e.action, e.system, e.resource)
        }
        _ => return None,
    };
    Some(key)
}

/// The key of the widening an event undoes, if it undoes one.
fn narrowing_key(e: &Event) -> Option<String> {
    let who = || {
        attr_text(e, &["member", "subject"])
            .unwrap_or(&e.resource)
            .to_string()
    };
    let key = match e.action.as_str() {
        "member.removed" => format!("member:{}:{}", e.system, who()),
        "member.permission.changed" | "team.permission.changed"
            if e.attr_bool("escalated") == Some(false) =>
        {
            format!("member:{}:{}", e.system, who())
        }
        "admin.role.revoked" | "role.unassigned" => format!("role:{}:{}", e.system, e.resource),
        "api_key.deleted" | "api_key.revoked" => format!("key:{}:{}", e.system, e.resource),
        "deploy_key.deleted" => format!(
            "key:{}:{}",
            e.system,
            attr_text(e, &["key.title"]).unwrap_or(&e.resource)
        ),
        "app.uninstalled" | "app.repositories.removed" => {
            format!(
                "app:{}:{}",
                e.system,
                attr_text(e, &["app"]).unwrap_or(&e.resource)
            )
        }
        "assistant.tool.revoked" => format!(
            "tool:{}:{}",
            e.system,
            attr_text(e, &["tool"]).unwrap_or(&e.resource)
        ),
        "assistant.retrieval.removed" => format!(
            "retrieval:{}:{}",
            e.system,
            attr_text(e, &["retrieval.source"]).unwrap_or(&e.resource)
        ),
        "branch.protection.enabled" => format!("protection:{}:{}", e.system, e.resource),
        "repo.visibility.changed" if e.attr_str("visibility") == Some("private") => {
            format!("visibility:{}", e.system)
        }
        "branch.protection.changed" | "repo.ruleset.changed"
            if e.attr_bool("weakened") == Some(false) =>
        {
            format!("protection:{}:{}", e.system, e.resource)
        }
        "s3.bucket.policy.changed" => format!("share:{}:{}", e.system, e.resource),
        _ => return None,
    };
    Some(key)
}

/// A key as a reviewer reads it: `member:acme/api:erin` → `member erin`.
fn short(key: &str) -> String {
    let mut parts = key.splitn(3, ':');
    let kind = parts.next().unwrap_or("");
    let _system = parts.next();
    match parts.next() {
        Some(rest) if !rest.is_empty() => format!("{kind} {}", rest.trim_end_matches(':')),
        _ => key.to_string(),
    }
}

/// `2024-06-01` from unix nanoseconds.
fn date(t: i64) -> String {
    // Civil-from-days (Howard Hinnant), enough for titles without a date library.
    let z = t.div_euclid(NANOS_PER_DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use plumbline_sdk::testing::STATE_MAX_BYTES;
    use plumbline_sdk::*;

    use super::{Category, Counted, Widening, NANOS_PER_DAY};

    plumbline_sdk::testing::incremental_fixture_tests!(Widening);

    #[test]
    fn dates() {
        assert_eq!(
            super::date(plumbline_sdk::parse_time("2024-06-01T12:00:00Z").unwrap()),
            "2024-06-01"
        );
        assert_eq!(
            super::date(plumbline_sdk::parse_time("2000-02-29T00:00:00Z").unwrap()),
            "2000-02-29"
        );
    }

    /// Replaces the fixture `negative-ordinary-trajectory.json` (the same events seen through
    /// an ordinary hour-long actor trajectory): the host never offers this detector that view.
    #[test]
    fn reads_only_its_views() {
        let info = <Widening as IncrementalDetector>::info();
        assert!(info.reads_view(TrajectoryKind::ActorDrift));
        assert!(!info.reads_view(TrajectoryKind::Actor));
        assert!(info.reads_view(TrajectoryKind::SystemDrift));
        assert!(!info.reads_view(TrajectoryKind::System));
    }

    /// 0.1.0's `analyze` on the events a view holds, kept as the reference the incremental
    /// answers are checked against: the widenings it counted, judged by the same `judge`.
    fn analyze_0_1_0(events: &[Event], kind: TrajectoryKind, cx: &Context) -> Vec<Finding> {
        let lists = cx.settings::<Destinations>().unwrap();
        let policy = cx.settings::<kit::Policy>().unwrap();
        let parsed = |k: &str| cx.config_parsed::<i64>(k).unwrap();
        let view_start = events.first().map_or(0, |e| e.time);
        let unlisted = |h: &str| {
            lists
                .classify(h)
                .is_some_and(|(_, c)| c != DestinationClass::Known)
        };
        let mut widenings: Vec<(&Event, Category, String)> = Vec::new();
        let mut hosts: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        let mut removed_hosts: Vec<(&str, String, i64)> = Vec::new();
        for e in events {
            if policy.is_ignored_environment(e) || policy.is_planned(e) {
                if let Some(ds) = super::destinations(e) {
                    hosts.entry(e.system.as_str()).or_default().extend(ds);
                }
                continue;
            }
            if let Some(ds) = super::destinations(e) {
                let seen_before = hosts.contains_key(e.system.as_str());
                let known = hosts.entry(e.system.as_str()).or_default();
                let first_version = !seen_before && !e.is("workflow.created");
                for h in known.iter().filter(|h| !ds.contains(*h)) {
                    removed_hosts.push((e.system.as_str(), h.clone(), e.time));
                }
                let added: Vec<String> =
                    ds.iter().filter(|d| !known.contains(*d)).cloned().collect();
                *known = ds.iter().cloned().collect();
                if !first_version {
                    for h in added.into_iter().filter(|h| unlisted(h)) {
                        widenings.push((e, Category::Destination, h));
                    }
                }
            } else if e.is("data.export") {
                if let Some(d) = e.destination.as_deref() {
                    let known = hosts.entry(e.system.as_str()).or_default();
                    let in_baseline = e.time - view_start < parsed("baseline_days") * NANOS_PER_DAY;
                    if known.insert(d.to_string()) && !in_baseline && unlisted(d) {
                        widenings.push((e, Category::Destination, d.to_string()));
                    }
                }
            } else if let Some(key) = super::widening_key(e) {
                let cat = if e.is("repo.webhook.created") {
                    Category::Destination
                } else {
                    Category::Permission
                };
                widenings.push((e, cat, key));
            }
        }
        let narrowings: Vec<(String, i64)> = events
            .iter()
            .filter_map(|e| super::narrowing_key(e).map(|k| (k, e.time)))
            .collect();
        widenings.retain(|(e, cat, key)| match cat {
            Category::Permission => !narrowings.iter().any(|(k, at)| k == key && *at > e.time),
            Category::Destination => !removed_hosts
                .iter()
                .any(|(s, h, at)| *s == e.system && h == key && *at > e.time),
        });
        let counted: Vec<Counted> = widenings
            .iter()
            .map(|(e, category, what)| Counted {
                t: e.time,
                id: &e.id,
                category: *category,
                what,
            })
            .collect();
        super::judge(
            &counted,
            kind,
            "dave",
            parsed("min_widenings") as usize,
            parsed("min_days") as usize,
            parsed("min_span_days") * NANOS_PER_DAY,
            parsed("max_evidence") as usize,
        )
        .into_iter()
        .collect()
    }

    /// One incremental call on the view `held` (in (time, id) order) with its new events;
    /// the state must stay under the host's bound.
    fn call(
        state: &mut Option<Vec<u8>>,
        new: &[Event],
        held: &[Event],
        config: &BTreeMap<String, String>,
    ) -> (Vec<Finding>, Context) {
        let window = Window {
            id: "drift:dave".into(),
            kind: TrajectoryKind::ActorDrift,
            key: "dave".into(),
            start: held[0].time,
            end: held[held.len() - 1].time,
            dropped: 0,
            len: held.len() as u32,
            replay: state.is_none(),
        };
        let info = <Widening as IncrementalDetector>::info();
        let cx = Context::native_incremental(&info, config, 0, window, held.to_vec());
        let (bytes, found) =
            plumbline_sdk::guest_v2::observe_bytes::<Widening>(state.as_deref(), new, &cx).unwrap();
        assert!(
            bytes.len() <= STATE_MAX_BYTES,
            "state of {} bytes",
            bytes.len()
        );
        assert!(cx.history_read().is_empty(), "history is never read");
        *state = Some(bytes);
        (found, cx)
    }

    fn event(n: usize, time: i64, action: &str, system: &str, resource: &str) -> Event {
        Event {
            id: format!("e{n:04}"),
            time,
            source: "github".into(),
            actor: Actor {
                id: "dave".into(),
                kind: ActorKind::Human,
                display: String::new(),
            },
            system: system.into(),
            action: action.into(),
            resource: resource.into(),
            environment: Environment::Prod,
            destination: None,
            volume: None,
            attributes: Default::default(),
        }
    }

    fn set(e: &mut Event, key: &str, value: AttributeValue) {
        e.attributes.insert(key.into(), value);
    }

    /// A drift view of 600 widenings, reversals, workflow versions (hosts added and
    /// dropped) and exports over six weeks, some planned work or in a test environment.
    fn drift_events() -> Vec<Event> {
        const HOSTS: [&str; 7] = [
            "api.hubapi.com",
            "a.example",
            "b.example",
            "c.example",
            "webhook.site",
            "d.example",
            "sheets.example.net",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rand = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let t0 = parse_time("2024-05-01T00:00:00Z").unwrap();
        let mut t = t0;
        let mut events = Vec::new();
        let mut lists: [BTreeSet<&str>; 2] = Default::default();
        for n in 0..600 {
            t += (rand(150) as i64 + 10) * 60_000_000_000;
            let workflow = ["n8n/workflow/wf1", "n8n/workflow/wf2"][rand(2) as usize];
            let member = format!("m{}", rand(5));
            let key = format!("k{}", rand(4));
            let e = match rand(12) {
                0..=2 => {
                    let action = if rand(20) == 0 {
                        "workflow.created"
                    } else {
                        "workflow.updated"
                    };
                    let mut e = event(n, t, action, workflow, workflow);
                    if rand(10) != 0 {
                        // The workflow's hosts change slowly: one added or dropped at times.
                        let hosts = &mut lists[usize::from(workflow.ends_with('2'))];
                        match rand(6) {
                            0 | 1 => hosts.insert(HOSTS[rand(7) as usize]),
                            2 => hosts.remove(HOSTS[rand(7) as usize]),
                            _ => false,
                        };
                        let hosts: Vec<&str> = hosts.iter().copied().collect();
                        set(&mut e, "nodes.count", AttributeValue::Integer(4));
                        set(
                            &mut e,
                            "destinations",
                            AttributeValue::Text(hosts.join(",")),
                        );
                    }
                    e
                }
                3 => {
                    let system = [workflow, "s3"][rand(2) as usize];
                    let mut e = event(n, t, "data.export", system, "export");
                    e.destination = Some(HOSTS[rand(7) as usize].to_string());
                    e
                }
                4 => event(n, t, "member.added", "acme/api", &member),
                5 => event(n, t, "member.removed", "acme/api", &member),
                6 => {
                    let mut e = event(n, t, "member.permission.changed", "acme/api", &member);
                    set(&mut e, "escalated", AttributeValue::Boolean(rand(2) == 0));
                    e
                }
                7 => event(n, t, "deploy_key.created", "acme/billing", &key),
                8 => event(n, t, "deploy_key.deleted", "acme/billing", &key),
                9 => {
                    let mut e = event(n, t, "branch.protection.changed", "acme/api", "main");
                    set(&mut e, "weakened", AttributeValue::Boolean(rand(2) == 0));
                    e
                }
                10 => event(
                    n,
                    t,
                    "repo.webhook.created",
                    "acme/api",
                    &format!("hook{n}"),
                ),
                _ => {
                    let mut e = event(n, t, "credential.scope.increased", workflow, "cred/1");
                    set(
                        &mut e,
                        "credential.scope.added",
                        AttributeValue::Text(format!("scope{}", rand(3))),
                    );
                    e
                }
            };
            let mut e = e;
            match rand(10) {
                0 => e.environment = Environment::Test,
                1 => e.actor.id = "svc-terraform".into(),
                _ => {}
            }
            events.push(e);
        }
        events
    }

    /// Against 0.1.0 on a long view: events arriving one at a time, some late, the view
    /// bounded to its newest 150 (so widenings, reversals and workflow versions leave it),
    /// the state carried as bytes. Every answer is the one 0.1.0 gave on the events the
    /// view held at the time.
    #[test]
    fn answers_as_0_1_0_did_on_a_sliding_view() {
        let events = drift_events();
        // The arrival order: one event in five comes one to a dozen places late.
        let mut order: Vec<usize> = (0..events.len()).collect();
        for i in (0..order.len().saturating_sub(13)).step_by(5) {
            order.swap(i, i + 1 + i % 12);
        }
        let config: BTreeMap<String, String> = [
            ("known_domains", "hubapi.com"),
            ("service_accounts", "svc-terraform"),
            ("change_windows", "* 00:00-12:00"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (mut state, mut held) = (None, Vec::<Event>::new());
        let (mut fired, mut silent) = (0, 0);
        for i in order {
            let e = &events[i];
            let at = held.partition_point(|h| (h.time, &h.id) < (e.time, &e.id));
            held.insert(at, e.clone());
            if held.len() > 150 {
                held.remove(0);
            }
            if !held.iter().any(|h| h.id == e.id) {
                continue;
            }
            let (found, cx) = call(&mut state, std::slice::from_ref(e), &held, &config);
            let expected = analyze_0_1_0(&held, TrajectoryKind::ActorDrift, &cx);
            assert_eq!(found, expected, "after {} ({})", e.id, e.action);
            if found.is_empty() {
                silent += 1;
            } else {
                fired += 1;
            }
        }
        // The view was judged both ways, with every kind of widening on the way.
        println!("{fired} fired, {silent} silent");
        assert!(fired > 50 && silent > 50, "{fired} fired, {silent} silent");
        // And a lost state replays the view in one call to the same answer.
        let (found, cx) = call(&mut None, &held, &held, &config);
        assert_eq!(found, analyze_0_1_0(&held, TrajectoryKind::ActorDrift, &cx));
    }

    /// Two reversals of one widening arrive newest first, then the widening between them
    /// arrives late: the newer reversal still undoes it.
    #[test]
    fn a_late_widening_is_undone_by_the_latest_reversal() {
        let day = |d: i64| parse_time("2024-05-01T10:00:00Z").unwrap() + d * NANOS_PER_DAY;
        let mut events: Vec<Event> = (0..5)
            .map(|n| {
                event(
                    n,
                    day(2 * n as i64),
                    "member.added",
                    "acme/api",
                    &format!("m{n}"),
                )
            })
            .collect();
        events.push(event(5, day(7), "member.removed", "acme/api", "erin"));
        events.push(event(6, day(3), "member.removed", "acme/api", "erin"));
        events.push(event(7, day(5), "member.added", "acme/api", "erin"));
        let (mut state, mut held, mut found) = (None, Vec::<Event>::new(), Vec::new());
        for e in &events {
            let at = held.partition_point(|h| (h.time, &h.id) < (e.time, &e.id));
            held.insert(at, e.clone());
            found = call(&mut state, std::slice::from_ref(e), &held, &BTreeMap::new()).0;
        }
        assert_eq!(found.len(), 1);
        assert!(found[0].title.contains(" 5 times "), "{}", found[0].title);
        assert!(!found[0].evidence.contains(&"e0007".to_string()));
    }

    /// A 1,000-event view, an hour apart: widenings and workflow versions each adding a
    /// host, ids as long as real audit ids. The state stays under the host's bound on every
    /// call and the widenings it keeps (the newest) still make the finding, citing the
    /// oldest of those first.
    #[test]
    fn state_stays_bounded_on_a_long_view() {
        let found = long_view(|n| format!("github:audit:{n:0>40}"), 30, 30);
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.evidence.len(), 50);
        let oldest: usize = f.evidence[0][13..].parse().unwrap();
        assert!((500..990).contains(&oldest), "{}", f.evidence[0]);
        assert!(f.title.contains("widened access"), "{}", f.title);
    }

    /// The same view with every text 300 bytes or more: the state still stays under the
    /// bound (kept texts are clipped, the oldest entries dropped first).
    #[test]
    fn state_stays_bounded_with_long_texts() {
        long_view(|n| format!("{n:0>300}"), 300, 300);
    }

    /// Feeds the long view one event at a time (`call` checks the state's size); the last
    /// findings.
    fn long_view(id: impl Fn(usize) -> String, member: usize, host: usize) -> Vec<Finding> {
        let t0 = parse_time("2024-05-01T00:00:00Z").unwrap();
        let (mut held, mut state, mut found) = (Vec::new(), None, Vec::new());
        let mut hosts: Vec<String> = Vec::new();
        for n in 0..1000 {
            let t = t0 + n as i64 * 3_600_000_000_000;
            let mut e = if n % 2 == 0 {
                event(n, t, "member.added", "acme/api", &format!("{n:0>member$}"))
            } else {
                let mut e = event(n, t, "workflow.updated", "n8n/workflow/wf1", "wf1");
                hosts.push(format!("{n:0>host$}.example"));
                let listed = &hosts[hosts.len().saturating_sub(3)..];
                set(&mut e, "nodes.count", AttributeValue::Integer(4));
                set(
                    &mut e,
                    "destinations",
                    AttributeValue::Text(listed.join(",")),
                );
                e
            };
            e.id = id(n);
            held.push(e.clone());
            found = call(&mut state, &[e], &held, &BTreeMap::new()).0;
        }
        found
    }
}
