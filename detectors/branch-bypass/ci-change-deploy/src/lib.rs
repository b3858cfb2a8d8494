//! CI configuration changed together with a production deploy: the pipeline that decides
//! what reaches production was edited and the edited pipeline shipped, without the change
//! going through a reviewed merge. A changed pipeline deployed from a non-default branch
//! (bypassing the default branch's protections altogether) is urgent.
//!
//! A CI change that arrived as a reviewed merge is the normal path and is not raised.
//! Read on system trajectories (the repository).

use plumbline_sdk::kit::git::{merge_of, pushes, ticket_in};
use plumbline_sdk::*;

const SIGNAL: &str = "branch.ci_change_with_deploy";
const DEPLOYS: [&str; 2] = ["deploy.created", "deploy.status"];

#[derive(Default)]
pub struct CiChangeDeploy;

impl Detector for CiChangeDeploy {
    fn info() -> Info {
        Info::new(
            "branch-bypass.ci-change-deploy",
            "0.1.0",
            "CI configuration changed and deployed to production without a reviewed merge",
        )
        .actions(&["git.push.high_risk_path", "deploy.created", "deploy.status"])
        .views(&[TrajectoryKind::System])
        .signals(&[SIGNAL])
        .config(
            "window_minutes",
            "180",
            "How long after the CI change a production deploy still counts",
        )
        .config(
            "production_environments",
            "prod",
            "Deployment environments that count as production",
        )
        .config(
            "break_glass_prefixes",
            "INC-,SEV-,INCIDENT-",
            "Incident reference prefixes that mark a documented break-glass change",
        )
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let window = cx.config_parsed::<i64>("window_minutes")? * 60_000_000_000;
        let prod: Vec<Environment> = cx
            .config_list("production_environments")
            .iter()
            .filter_map(|n| plumbline_sdk::kit::policy::environment(n))
            .collect();
        let prefixes = cx.config_list("break_glass_prefixes");

        let mut findings = Vec::new();
        for push in pushes(t).into_iter().filter(|p| p.risk.contains(&"ci")) {
            let merge = merge_of(t, &push);
            // A merge counts only when known to be unreviewed: where the adapter cannot
            // know (no review deliveries), the merge gets the benefit of the doubt.
            if merge.is_some_and(|m| m.attr_bool("reviewed") != Some(false)) {
                continue;
            }
            let deploys: Vec<&Event> = t
                .with_any_action(&DEPLOYS)
                .filter(|d| d.time >= push.time && d.time - push.time <= window)
                .filter(|d| prod.contains(&d.environment))
                .filter(|d| {
                    d.attr_str("deploy.sha")
                        .is_some_and(|s| !s.is_empty() && push.after.starts_with(s))
                        || d.attr_str("deploy.ref") == Some(push.branch)
                })
                .collect();
            let Some(first) = deploys.first() else {
                continue;
            };
            let ci = push.risk_events("ci");
            let path = ci
                .iter()
                .find_map(|e| e.attr_str("risk.paths.0"))
                .unwrap_or("CI config");
            let off_default = !push.default_branch;
            let ticket = ticket_in(push.message, &prefixes);
            let severity = match (ticket, off_default) {
                (Some(_), _) => Severity::Informational,
                (None, true) => Severity::Urgent,
                (None, false) => Severity::NeedsReview,
            };
            let how = match (merge, off_default) {
                (Some(_), _) => "merged without review",
                (None, true) => "pushed to a non-default branch",
                (None, false) => "pushed directly",
            };
            let who = &push.head().actor.id;
            let line = title(format!(
                "{who} changed {path} ({how}) on {} and it deployed to {} by {}: {}",
                push.branch,
                first.attr_str("deploy.environment").unwrap_or("production"),
                first.actor.id,
                quoted(push.message.lines().next().unwrap_or(""), 40)
            ));
            let mut evidence: Vec<&Event> = vec![push.head()];
            evidence.extend(ci.iter().copied());
            evidence.extend(merge);
            evidence.extend(deploys.iter().copied());
            let short = &push.after[..push.after.len().min(12)];
            findings.push(
                Finding::new(SIGNAL, severity, line)
                    .evidence(evidence)
                    .score(if off_default { 0.9 } else { 0.7 })
                    .next_step(match ticket {
                        Some(tk) => format!("Check the follow-up review of {path} at {short} within 24 hours ({tk})"),
                        None => format!(
                            "Review the diff of {path} at {short} now (what does the pipeline run, with which secrets?) and ask {who} why it shipped without a reviewed merge; roll back the deploy if unjustified"
                        ),
                    }),
            );
        }
        Ok(findings)
    }
}

register_detector!(CiChangeDeploy);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::CiChangeDeploy>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::CiChangeDeploy>(FIXTURES);
    }
}
