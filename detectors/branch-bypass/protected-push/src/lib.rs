//! Pushes that skip review: a force push to the default or a protected branch (history
//! rewritten where everyone builds from), and a direct, non-merge push to a protected
//! branch. Either touching auth, permission or secrets code is urgent (policy pack:
//! "direct-to-prod change that disables auth checks").
//!
//! A push that lands a pull-request merge is not direct: it is matched to its `pr.merged`
//! by commit. Push and merge arrive as separate deliveries, and an alert keeps every
//! finding it ever had, so a non-forced push is judged only after `settle_seconds` (on the
//! host clock) — by then its merge event, if any, is in the trajectory. Break-glass pushes
//! that name an incident (`INC-1234`) are informational unless they touch auth code.
//!
//! Read on system trajectories (the repository's story, whoever pushed).

use plumbline_sdk::kit::git::{claimed_merge, merge_of, pushes, ticket_in, Push};
use plumbline_sdk::*;

const FORCE: &str = "branch.force_push";
const DIRECT: &str = "branch.direct_push";

#[derive(Default)]
pub struct ProtectedPush;

impl Detector for ProtectedPush {
    fn info() -> Info {
        Info::new(
            "branch-bypass.protected-push",
            "0.1.0",
            "Force pushes to default/protected branches and direct (non-merge) pushes to protected branches",
        )
        .actions(&["git.push.*"])
        .views(&[TrajectoryKind::System])
        .signals(&[FORCE, DIRECT])
        .config(
            "urgent_paths",
            "auth,permissions,secrets",
            "High-risk path categories that make a bypassing push urgent",
        )
        .config(
            "release_bots",
            "",
            "Accounts (comma-separated globs) whose direct, non-forced pushes are routine (version bumps)",
        )
        .config(
            "break_glass_prefixes",
            "INC-,SEV-,INCIDENT-",
            "Incident reference prefixes that mark a documented break-glass push",
        )
        .config(
            "settle_seconds",
            "180",
            "How long after a non-forced push its merge event may still arrive",
        )
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let urgent_paths = cx.config_list("urgent_paths");
        let urgent_paths: Vec<&str> = urgent_paths.iter().map(String::as_str).collect();
        let bots = cx.config_list("release_bots");
        let prefixes = cx.config_list("break_glass_prefixes");
        let settle = cx.config_parsed::<i64>("settle_seconds")? * 1_000_000_000;
        let now = cx.now();

        let mut findings = Vec::new();
        for push in pushes(t) {
            let head = push.head();
            let (signal, why) = if push.forced && (push.protected || push.default_branch) {
                (FORCE, "Force push")
            } else if push.protected && !push.forced {
                if merge_of(t, &push).is_some() {
                    continue;
                }
                if bots.iter().any(|b| glob::matches(b, &head.actor.id)) {
                    continue;
                }
                // Its merge event may still be on its way.
                if now - push.time < settle {
                    continue;
                }
                (DIRECT, "Direct push")
            } else {
                continue;
            };
            let touches = push.touches(&urgent_paths);
            let ticket = ticket_in(push.message, &prefixes);
            let severity = match (ticket, touches) {
                (Some(_), false) => Severity::Informational,
                (Some(_), true) => Severity::NeedsReview,
                (None, true) => Severity::Urgent,
                (None, false) => Severity::NeedsReview,
            };
            findings.push(finding(&push, signal, why, severity, ticket, &urgent_paths));
        }
        Ok(findings)
    }
}

register_detector!(ProtectedPush);

fn finding(
    push: &Push,
    signal: &str,
    why: &str,
    severity: Severity,
    ticket: Option<&str>,
    urgent_paths: &[&str],
) -> Finding {
    let head = push.head();
    let who = &head.actor.id;
    let kind = if push.protected {
        "protected branch"
    } else {
        "default branch"
    };
    let risky: Vec<&str> = push
        .risk
        .iter()
        .copied()
        .filter(|r| urgent_paths.contains(r))
        .collect();
    let paths = if risky.is_empty() {
        String::new()
    } else {
        let first = risky
            .iter()
            .flat_map(|r| push.risk_events(r))
            .find_map(|e| e.attr_str("risk.paths.0"))
            .unwrap_or("");
        format!(" touching {} code ({first})", risky.join("/"))
    };
    let claim = match claimed_merge(push.message) {
        Some(n) if signal == DIRECT => {
            format!(" — message claims PR #{n}, but no such merge was seen")
        }
        _ => String::new(),
    };
    let glass = ticket
        .map(|tk| format!(" (break-glass {tk})"))
        .unwrap_or_default();
    let line = title(format!(
        "{why} to {kind} {} of {} by {who}{paths}{glass}{claim}: {}",
        push.branch,
        push.system,
        quoted(push.message.lines().next().unwrap_or(""), 50)
    ));
    let short = &push.after[..push.after.len().min(12)];
    let next = match (severity, ticket) {
        (Severity::Informational, Some(tk)) => format!(
            "Check the follow-up review of {short} on {} happens within 24 hours ({tk}) and rotate any credential used",
            push.branch
        ),
        _ if signal == FORCE => format!(
            "Compare {} before and after the force push ({short}) for dropped or rewritten commits; ask {who} why, and restore from the previous head if unjustified",
            push.branch
        ),
        _ => format!(
            "Review the diff of {short} on {} with a second reviewer and ask {who} why it skipped a pull request; revert if unjustified",
            push.branch
        ),
    };
    Finding::new(signal, severity, line)
        .evidence(push.events.iter().copied())
        .score(match severity {
            Severity::Urgent => 0.9,
            Severity::NeedsReview => 0.7,
            Severity::Informational => 0.3,
        })
        .next_step(next)
}

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::ProtectedPush>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::ProtectedPush>(FIXTURES);
    }

    /// Replaces the fixture `negative-actor-trajectory.json` (the same events seen through
    /// the pusher's actor trajectory): the host never offers this detector that view.
    #[test]
    fn reads_only_its_views() {
        use plumbline_sdk::{Detector, TrajectoryKind};
        let info = super::ProtectedPush::info();
        assert!(info.reads_view(TrajectoryKind::System));
        assert!(!info.reads_view(TrajectoryKind::Actor));
    }
}
