//! Merges that skip review: a pull / merge request merged into a protected or default
//! branch with no standing approval (`pr.merged.without_review`, emitted by the adapters
//! only where review deliveries reach Plumbline), and merges that an administrator forced
//! past the branch rules (`pr.merged.admin_override`, `branch.protection.overridden`).
//!
//! An AI agent merging unreviewed work into the default branch is urgent. Dependency bots
//! on `auto_merge_bots` are routine. Read on system trajectories.
//!
//! Incremental (`plumbline:detector@0.2.0`): the state is the findings raised so far (each
//! judged once, when its event arrives) and the merges seen (time, id, pull request), so
//! an unreviewed merge cites its `pr.merged` whichever of the two arrived first.

use plumbline_sdk::kept::{self, text};
use plumbline_sdk::*;

const UNREVIEWED: &str = "branch.merge_without_review";
const OVERRIDE: &str = "branch.admin_override_merge";

const OVERRIDES: [&str; 2] = ["pr.merged.admin_override", "branch.protection.overridden"];

/// Most findings (about 600 bytes each: a title is at most 200 characters, a next step
/// quotes one text of the event, cut by [`text`]) and most merges (about 100 bytes) kept
/// in the state, the oldest dropped first, within three quarters and a quarter of
/// [`kept::BUDGET`].
const MAX_FOUND: usize = 50;
const MAX_MERGES: usize = 100;

/// What the detector remembers of a trajectory, each list in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    found: Vec<Found>,
    merges: Vec<Merge>,
}

/// A finding, the time and id of the event it stands on, and that event's pull request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Found {
    t: i64,
    id: String,
    resource: String,
    finding: Finding,
}

/// A `pr.merged` event.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Merge {
    t: i64,
    id: String,
    resource: String,
}

kept::record!(Found, Merge);

#[derive(Default)]
pub struct UnreviewedMerge;

impl IncrementalDetector for UnreviewedMerge {
    type State = Seen;

    fn info() -> Info {
        Info::new(
            "branch-bypass.unreviewed-merge",
            "0.1.0",
            "Merges into protected/default branches without an approving review, and admin-override merges",
        )
        // `pr.merged` too: an unreviewed merge cites it (merges are few on a repository).
        .actions(&[
            "pr.merged",
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

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        if !new_events.is_empty() {
            let protected = cx.config_list("protected_branches");
            let bots = cx.config_list("auto_merge_bots");
            let (mut found, mut merges) = (Vec::new(), Vec::new());
            for e in new_events {
                let finding = match e.action.as_str() {
                    "pr.merged" => {
                        merges.push(Merge {
                            t: e.time,
                            id: e.id.clone(),
                            resource: text(&e.resource),
                        });
                        None
                    }
                    "pr.merged.without_review" => unreviewed(e, &protected, &bots),
                    a if OVERRIDES.contains(&a) => Some(overridden(e)),
                    _ => None,
                };
                found.extend(finding.map(|finding| Found {
                    t: e.time,
                    id: e.id.clone(),
                    resource: text(&e.resource),
                    finding,
                }));
            }
            kept::fold(&mut seen.found, found, MAX_FOUND, kept::BUDGET * 3 / 4);
            kept::fold(&mut seen.merges, merges, MAX_MERGES, kept::BUDGET / 4);
        }
        // What left the trajectory goes with it.
        kept::prune(&mut seen.found, cx);
        kept::prune(&mut seen.merges, cx);
        Ok(seen
            .found
            .iter()
            .map(|f| {
                // An unreviewed merge cites its `pr.merged` first, whichever came first.
                let merged = seen.merges.iter().find(|m| {
                    f.finding.signal == UNREVIEWED && m.resource == f.resource && m.t == f.t
                });
                let mut finding = f.finding.clone();
                if let Some(m) = merged {
                    finding.evidence.insert(0, m.id.clone());
                }
                finding
            })
            .collect())
    }
}

/// The finding on a merge without review into a protected or default branch, unless a
/// dependency bot's.
fn unreviewed(e: &Event, protected: &[String], bots: &[String]) -> Option<Finding> {
    let base = e.attr_str("pr.base").unwrap_or("");
    let default = e.attr_bool("pr.base_is_default") == Some(true);
    if !default
        && !protected
            .iter()
            .any(|p| glob::matches_ignore_ascii_case(p, base))
    {
        return None;
    }
    let author = attr_text(e, &["pr.author", "pr.author_id"]).unwrap_or("");
    if bots.iter().any(|b| glob::matches(b, author)) {
        return None;
    }
    let agent =
        e.actor.kind == ActorKind::AiAgent || e.attr_str("pr.author_type") == Some("ai-agent");
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
    Some(
        Finding::new(UNREVIEWED, severity, line)
            .evidence([e])
            .score(match (agent, self_merged) {
                (true, _) => 0.9,
                (false, true) => 0.75,
                _ => 0.6,
            })
            .next_step(format!(
                "Get a post-merge review of {} from a code owner; revert it if the reviewer does not sign off",
                text(&e.resource)
            )),
    )
}

/// The finding on a merge an administrator forced past the branch rules.
fn overridden(e: &Event) -> Finding {
    let base = attr_text(e, &["pr.base", "branch", "rule.pattern"]).unwrap_or(&e.resource);
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
    ))
}

register_incremental_detector!(UnreviewedMerge);

#[cfg(test)]
mod tests {
    plumbline_sdk::testing::incremental_fixture_tests!(super::UnreviewedMerge);

    /// Many copies of one event with 500-byte ids and 8 KiB texts: the state stays under
    /// the host's bound (each call checks it), the answer under its 100 findings.
    #[test]
    fn state_stays_bounded() {
        use plumbline_sdk::testing::feed;
        let f = feed::load(FIXTURES, "positive-admin-override.json");
        let found = feed::flood::<super::UnreviewedMerge>(&f, "gitlab:audit:9001", 300);
        feed::newest_kept(&found);
    }
}
