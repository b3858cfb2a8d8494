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

use std::collections::{BTreeMap, BTreeSet};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Category {
    Permission,
    Destination,
}

#[derive(Default)]
pub struct Widening;

impl Detector for Widening {
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

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let min_widenings: usize = cx.config_parsed("min_widenings")?;
        let min_days: usize = cx.config_parsed("min_days")?;
        let min_span = cx.config_parsed::<i64>("min_span_days")? * NANOS_PER_DAY;
        let max_evidence: usize = cx.config_parsed("max_evidence")?;
        let baseline = cx.config_parsed::<i64>("baseline_days")? * NANOS_PER_DAY;
        let view_start = t.events.first().map_or(0, |e| e.time);
        let lists = cx.settings::<Destinations>()?;
        let policy = cx.settings::<Policy>()?;
        // Cheap exit for ordinary trajectories.
        if t.events.len() < min_widenings
            || t.events.last().map_or(0, |l| l.time) - t.events.first().map_or(0, |f| f.time)
                < min_span
        {
            return Ok(Vec::new());
        }

        let mut widenings: Vec<(&Event, Category, String)> = Vec::new();
        // Hosts each system sent to, in view order, to find additions and removals.
        let mut hosts: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        let mut removed_hosts: Vec<(&str, String, i64)> = Vec::new();
        for e in &t.events {
            if policy.is_ignored_environment(e) || policy.is_planned(e) {
                // Still part of the workflow's history: keep its hosts as the baseline.
                if let Some(ds) = destinations(e) {
                    hosts.entry(e.system.as_str()).or_default().extend(ds);
                }
                continue;
            }
            if let Some(ds) = destinations(e) {
                let seen_before = hosts.contains_key(e.system.as_str());
                let known = hosts.entry(e.system.as_str()).or_default();
                let first_version = !seen_before && !e.is("workflow.created");
                for h in known.iter().filter(|h| !ds.contains(*h)) {
                    removed_hosts.push((e.system.as_str(), h.clone(), e.time));
                }
                let added: Vec<String> =
                    ds.iter().filter(|d| !known.contains(*d)).cloned().collect();
                *known = ds.iter().cloned().collect();
                // The first version seen is the baseline, not a widening (unless created here).
                if first_version {
                    continue;
                }
                for h in added {
                    if lists
                        .classify(&h)
                        .is_some_and(|(_, c)| c != DestinationClass::Known)
                    {
                        widenings.push((e, Category::Destination, h));
                    }
                }
                continue;
            }
            if e.is("data.export") {
                if let Some(d) = e.destination.as_deref() {
                    let known = hosts.entry(e.system.as_str()).or_default();
                    // Exports are observations, not changes: a destination already in use
                    // when the view begins is the baseline, not a widening.
                    let in_baseline = e.time - view_start < baseline;
                    if known.insert(d.to_string())
                        && !in_baseline
                        && lists
                            .classify(d)
                            .is_some_and(|(_, c)| c != DestinationClass::Known)
                    {
                        widenings.push((e, Category::Destination, d.to_string()));
                    }
                }
                continue;
            }
            if let Some(key) = widening_key(e) {
                let cat = if e.is("repo.webhook.created") {
                    Category::Destination
                } else {
                    Category::Permission
                };
                widenings.push((e, cat, key));
            }
        }
        // Drop widenings a later event undid.
        let narrowings: Vec<(String, i64)> = t
            .events
            .iter()
            .filter_map(|e| narrowing_key(e).map(|k| (k, e.time)))
            .collect();
        widenings.retain(|(e, cat, key)| match cat {
            Category::Permission => !narrowings.iter().any(|(k, at)| k == key && *at > e.time),
            Category::Destination => !removed_hosts
                .iter()
                .any(|(s, h, at)| *s == e.system && h == key && *at > e.time),
        });
        if widenings.len() < min_widenings {
            return Ok(Vec::new());
        }
        let days: BTreeSet<i64> = widenings
            .iter()
            .map(|(e, _, _)| e.time.div_euclid(NANOS_PER_DAY))
            .collect();
        let first = widenings[0].0;
        let last = widenings[widenings.len() - 1].0;
        if days.len() < min_days || last.time - first.time < min_span {
            return Ok(Vec::new());
        }
        let perms = widenings
            .iter()
            .filter(|w| w.1 == Category::Permission)
            .count();
        let dests = widenings.len() - perms;
        let signal = match (perms, dests) {
            (_, 0) => PERMISSION,
            (0, _) => DESTINATION,
            _ => MIXED,
        };
        let span_days = (last.time - first.time) / NANOS_PER_DAY;
        let sample: Vec<String> = widenings.iter().take(4).map(|(_, _, k)| short(k)).collect();
        let whose = match t.kind {
            TrajectoryKind::Actor | TrajectoryKind::ActorDrift => {
                format!("{} widened access", t.key)
            }
            TrajectoryKind::System | TrajectoryKind::SystemDrift => {
                format!("{} was widened", t.key)
            }
        };
        let line = title(format!(
            "{whose} {} times over {span_days} days ({perms} permission, {dests} destination): {}{}",
            widenings.len(),
            sample.join("; "),
            if widenings.len() > 4 { "; …" } else { "" }
        ));
        Ok(vec![Finding::new(signal, Severity::NeedsReview, line)
            .evidence(widenings.iter().map(|(e, _, _)| *e).take(max_evidence))
            .score((0.5 + 0.05 * widenings.len() as f32).min(0.9))
            .next_step(format!(
                "Review the net change {} {} since {}: ask the owners what each widening is for, and revert the ones nobody needs (least privilege, approved destinations only)",
                if matches!(t.kind, TrajectoryKind::Actor | TrajectoryKind::ActorDrift) {
                    "made by"
                } else {
                    "on"
                },
                t.key,
                date(first.time)
            ))])
    }
}

register_detector!(Widening);

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
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

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

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::Widening>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::Widening>(FIXTURES);
    }

    /// Replaces the fixture `negative-ordinary-trajectory.json` (the same events seen through
    /// an ordinary hour-long actor trajectory): the host never offers this detector that view.
    #[test]
    fn reads_only_its_views() {
        use plumbline_sdk::{Detector, TrajectoryKind};
        let info = super::Widening::info();
        assert!(info.reads_view(TrajectoryKind::ActorDrift));
        assert!(!info.reads_view(TrajectoryKind::Actor));
        assert!(info.reads_view(TrajectoryKind::SystemDrift));
        assert!(!info.reads_view(TrajectoryKind::System));
    }
}
