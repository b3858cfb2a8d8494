//! A private or internal repository made public: its whole history — code, configuration,
//! anything ever committed — becomes readable by anyone, and cannot be taken back (forks
//! and clones keep it). Needs review; right after a deploy key that can push was added to
//! the same repository (someone preparing outside access): urgent.
//!
//! A repository with nothing in it yet (size 0: created for an open-source project and
//! published before the first push) exposes nothing: informational, as is planned work.
//! Making a repository private again is not raised. Read on system trajectories (the
//! repository).
//!
//! Incremental (`plumbline:detector@0.2.0`): the state is the publications and the
//! push-capable deploy keys seen (time, id and the words a finding quotes), judged
//! together again at each call.

use plumbline_sdk::kept::{self, text};
use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const SIGNAL: &str = "supply.repo_made_public";

/// Most publications (and most keys) kept in the state, the oldest dropped first (and
/// fewer if a list weighs more than half of [`kept::BUDGET`]): about 200 bytes each, each
/// text cut by [`text`].
const MAX_KEPT: usize = 50;

/// What the detector remembers of a trajectory, each list in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    published: Vec<Published>,
    keys: Vec<Key>,
}

/// A repository made public.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Published {
    t: i64,
    id: String,
    repo: String,
    /// The visibility it had.
    from: String,
    /// Nothing in it yet (size 0).
    empty: bool,
    who: String,
    /// Planned work (judged when the event arrived).
    planned: bool,
}

/// A deploy key with push access added.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Key {
    t: i64,
    id: String,
    title: String,
    who: String,
}

kept::record!(Published, Key);

#[derive(Default)]
pub struct RepoPublic;

impl IncrementalDetector for RepoPublic {
    type State = Seen;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Policy>()?;
        Ok(())
    }

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

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let window = cx.config_parsed::<i64>("key_window_minutes")? * 60_000_000_000;
        if !new_events.is_empty() {
            let policy = cx.settings::<Policy>()?;
            let (mut published, mut keys) = (Vec::new(), Vec::new());
            for e in new_events {
                if e.is("repo.visibility.changed") && e.attr_str("visibility") == Some("public") {
                    published.push(Published::of(e, &policy));
                } else if e.is("deploy_key.created") && e.attr_bool("read_only") == Some(false) {
                    keys.push(Key {
                        t: e.time,
                        id: e.id.clone(),
                        title: text(attr_text(e, &["key.title"]).unwrap_or(&e.resource)),
                        who: text(who(e)),
                    });
                }
            }
            kept::fold(&mut seen.published, published, MAX_KEPT, kept::BUDGET / 2);
            kept::fold(&mut seen.keys, keys, MAX_KEPT, kept::BUDGET / 2);
        }
        // What left the trajectory goes with it.
        kept::prune(&mut seen.published, cx);
        kept::prune(&mut seen.keys, cx);

        let mut findings = Vec::new();
        for e in &seen.published {
            let repo = &e.repo;
            // The latest push-capable key added before the publication, within the window.
            let key = seen
                .keys
                .iter()
                .rev()
                .find(|k| k.t <= e.t && e.t - k.t <= window);
            let severity = if e.empty || e.planned {
                Severity::Informational
            } else if key.is_some() {
                Severity::Urgent
            } else {
                Severity::NeedsReview
            };
            let from = &e.from;
            let line = match (e.empty, key) {
                (true, _) => format!("{} made the empty repository {repo} public", e.who),
                (false, Some(k)) => format!(
                    "{} made {from} repository {repo} public, after deploy key \"{}\" with push access was added by {}",
                    e.who, k.title, k.who
                ),
                (false, None) => format!("{} made {from} repository {repo} public", e.who),
            };
            let next = if e.empty {
                format!("None if {repo} is meant to be open source; check its first pushes hold nothing internal")
            } else {
                format!(
                    "Make {repo} private again now unless its publication was approved, then ask {} why; treat any secret in its history as leaked and rotate it",
                    e.who
                )
            };
            let mut evidence: Vec<String> = key.map(|k| k.id.clone()).into_iter().collect();
            evidence.push(e.id.clone());
            findings.push(
                Finding::new(SIGNAL, severity, title(line))
                    .evidence_ids(evidence)
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

impl Published {
    fn of(e: &Event, policy: &Policy) -> Published {
        let repo = if e.resource.is_empty() {
            e.system.as_str()
        } else {
            e.resource.as_str()
        };
        Published {
            t: e.time,
            id: e.id.clone(),
            repo: text(repo),
            from: text(e.attr_str("visibility.from").unwrap_or("private")),
            empty: e.attr_i64("repo.size_kb") == Some(0),
            who: text(who(e)),
            planned: policy.is_planned(e),
        }
    }
}

register_incremental_detector!(RepoPublic);

#[cfg(test)]
mod tests {
    plumbline_sdk::testing::incremental_fixture_tests!(super::RepoPublic);

    /// Many push-capable deploy keys with 500-byte ids and 8 KiB titles: the state stays
    /// under the host's bound (each call checks it).
    #[test]
    fn state_stays_bounded() {
        use plumbline_sdk::testing::feed;
        let f = feed::load(FIXTURES, "positive-public-after-write-deploy-key.json");
        let found = feed::flood::<super::RepoPublic>(&f, "github:k1", 300);
        assert!(found.is_empty());
    }
}
