//! A private or internal repository made public: its whole history — code, configuration,
//! anything ever committed — becomes readable by anyone, and cannot be taken back (forks
//! and clones keep it). Needs review; right after a deploy key that can push was added to
//! the same repository (someone preparing outside access): urgent.
//!
//! A repository with nothing in it yet (size 0: created for an open-source project and
//! published before the first push) exposes nothing: informational, as is planned work.
//! Making a repository private again is not raised. Read on system trajectories (the
//! repository).

use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const SIGNAL: &str = "supply.repo_made_public";

#[derive(Default)]
pub struct RepoPublic;

impl Detector for RepoPublic {
    fn info() -> Info {
        let info = Info::new(
            "supply-chain.repo-public",
            "0.1.0",
            "Private or internal repositories made public (after a push-capable deploy key: urgent)",
        )
        .actions(&["repo.visibility.changed", "deploy_key.created"])
        .views(&[TrajectoryKind::System])
        .signals(&[SIGNAL])
        .config(
            "key_window_minutes",
            "1440",
            "How long after a push-capable deploy key was added a publication counts as prepared outside access",
        );
        keys::planned_work(info)
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let window = cx.config_parsed::<i64>("key_window_minutes")? * 60_000_000_000;
        let policy = cx.settings::<Policy>()?;
        let mut findings = Vec::new();
        for e in t.with_action("repo.visibility.changed") {
            if e.attr_str("visibility") != Some("public") {
                continue;
            }
            let repo = if e.resource.is_empty() {
                e.system.as_str()
            } else {
                e.resource.as_str()
            };
            let empty = e.attr_i64("repo.size_kb") == Some(0);
            // The latest push-capable key added before the publication, within the window.
            let key = t
                .with_action("deploy_key.created")
                .filter(|k| k.attr_bool("read_only") == Some(false))
                .filter(|k| k.time <= e.time && e.time - k.time <= window)
                .last();
            let severity = if empty || policy.is_planned(e) {
                Severity::Informational
            } else if key.is_some() {
                Severity::Urgent
            } else {
                Severity::NeedsReview
            };
            let from = e.attr_str("visibility.from").unwrap_or("private");
            let line = match (empty, key) {
                (true, _) => format!("{} made the empty repository {repo} public", who(e)),
                (false, Some(k)) => format!(
                    "{} made {from} repository {repo} public, after deploy key \"{}\" with push access was added by {}",
                    who(e),
                    attr_text(k, &["key.title"]).unwrap_or(&k.resource),
                    who(k)
                ),
                (false, None) => format!("{} made {from} repository {repo} public", who(e)),
            };
            let next = if empty {
                format!("None if {repo} is meant to be open source; check its first pushes hold nothing internal")
            } else {
                format!(
                    "Make {repo} private again now unless its publication was approved, then ask {} why; treat any secret in its history as leaked and rotate it",
                    who(e)
                )
            };
            let mut evidence: Vec<&Event> = key.into_iter().collect();
            evidence.push(e);
            findings.push(
                Finding::new(SIGNAL, severity, title(line))
                    .evidence(evidence)
                    .score(match severity {
                        Severity::Urgent => 0.9,
                        Severity::NeedsReview => 0.7,
                        Severity::Informational => 0.2,
                    })
                    .next_step(next),
            );
        }
        Ok(findings)
    }
}

register_detector!(RepoPublic);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::RepoPublic>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::RepoPublic>(FIXTURES);
    }
}
