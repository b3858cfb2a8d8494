//! Merges that skip review: a pull / merge request merged into a protected or default
//! branch with no standing approval (`pr.merged.without_review`, emitted by the adapters
//! only where review deliveries reach Plumbline), and merges that an administrator forced
//! past the branch rules (`pr.merged.admin_override`, `branch.protection.overridden`).
//!
//! An AI agent merging unreviewed work into the default branch is urgent. Dependency bots
//! on `auto_merge_bots` are routine. Read on system trajectories.

use plumbline_sdk::*;

const UNREVIEWED: &str = "branch.merge_without_review";
const OVERRIDE: &str = "branch.admin_override_merge";

const OVERRIDES: [&str; 2] = ["pr.merged.admin_override", "branch.protection.overridden"];

#[derive(Default)]
pub struct UnreviewedMerge;

impl Detector for UnreviewedMerge {
    fn info() -> Info {
        Info::new(
            "branch-bypass.unreviewed-merge",
            "0.1.0",
            "Merges into protected/default branches without an approving review, and admin-override merges",
        )
        .actions(&[
            "pr.merged.without_review",
            "pr.merged.admin_override",
            "branch.protection.overridden",
        ])
        .views(&[TrajectoryKind::System])
        .signals(&[UNREVIEWED, OVERRIDE])
        .config(
            "protected_branches",
            "main,master,trunk,production,prod,release/*,releases/*",
            "Branch names (globs) whose merges need review, besides the default branch",
        )
        .config(
            "auto_merge_bots",
            "dependabot[bot],renovate[bot]",
            "PR authors (globs) whose unreviewed merges are routine dependency updates",
        )
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let protected = cx.config_list("protected_branches");
        let bots = cx.config_list("auto_merge_bots");

        let mut findings = Vec::new();
        for e in t.with_action("pr.merged.without_review") {
            let base = e.attr_str("pr.base").unwrap_or("");
            let default = e.attr_bool("pr.base_is_default") == Some(true);
            if !default
                && !protected
                    .iter()
                    .any(|p| glob::matches_ignore_ascii_case(p, base))
            {
                continue;
            }
            let author = attr_text(e, &["pr.author", "pr.author_id"]).unwrap_or("");
            if bots.iter().any(|b| glob::matches(b, author)) {
                continue;
            }
            let merged = t
                .with_action("pr.merged")
                .find(|m| m.resource == e.resource && m.time == e.time);
            let agent = e.actor.kind == ActorKind::AiAgent
                || e.attr_str("pr.author_type") == Some("ai-agent");
            let self_merged = e.attr_bool("self_merged") == Some(true);
            let severity = if agent && default {
                Severity::Urgent
            } else {
                Severity::NeedsReview
            };
            let by = if e.actor.kind == ActorKind::AiAgent {
                format!("AI agent {}", e.actor.id)
            } else {
                e.actor.id.clone()
            };
            let own = match (self_merged, e.actor.kind == ActorKind::AiAgent) {
                (true, true) => " its own",
                (true, false) => " their own",
                _ => "",
            };
            // GitLab lets authors approve their own merge requests: not a review.
            let review = if e.attr_bool("review.self_approved") == Some(true) {
                "approved only by its author"
            } else {
                "with no approving review"
            };
            let line = title(format!(
                "{by} merged{own} {} into {base} {review}: {}",
                e.resource,
                quoted(e.attr_str("pr.title").unwrap_or(""), 60)
            ));
            let mut evidence: Vec<&Event> = merged.into_iter().collect();
            evidence.push(e);
            findings.push(
                Finding::new(UNREVIEWED, severity, line)
                    .evidence(evidence)
                    .score(match (agent, self_merged) {
                        (true, _) => 0.9,
                        (false, true) => 0.75,
                        _ => 0.6,
                    })
                    .next_step(format!(
                        "Get a post-merge review of {} from a code owner; revert it if the reviewer does not sign off",
                        e.resource
                    )),
            );
        }
        for e in t.with_any_action(&OVERRIDES) {
            let base = attr_text(e, &["pr.base", "branch", "rule.pattern"]).unwrap_or(&e.resource);
            findings.push(
                Finding::new(
                    OVERRIDE,
                    Severity::NeedsReview,
                    title(format!(
                        "{} overrode branch protection on {} to merge {}",
                        e.actor.id, base, e.resource
                    )),
                )
                .evidence([e])
                .score(0.8)
                .next_step(format!(
                    "Ask {} which incident required the override and get the change reviewed within 24 hours",
                    e.actor.id
                )),
            );
        }
        Ok(findings)
    }
}

register_detector!(UnreviewedMerge);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::UnreviewedMerge>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::UnreviewedMerge>(FIXTURES);
    }
}
