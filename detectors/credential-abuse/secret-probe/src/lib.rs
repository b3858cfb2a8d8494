//! Probing for secrets: a burst of permission-denied reads across several secret paths,
//! then a success — someone (or something) searched until a path opened. Burst then
//! success: urgent (policy pack: "repeated attempts to access restricted secrets"). A
//! probing burst without a success: needs review. The same path refused again and again
//! (a service with a stale policy retrying) is informational.
//! Read on actor trajectories.
//!
//! The reference incremental detector (`plumbline:detector@0.2.0`): its state is the
//! denials and successful reads seen so far on the trajectory (time, id, path, who — not
//! the events), each call folds the new ones in and judges every burst window again.

use std::collections::{BTreeMap, BTreeSet};

use plumbline_sdk::kept::{self, text};
use plumbline_sdk::*;

const PROBE: &str = "cred.secret_probe";
const PROBE_SUCCESS: &str = "cred.secret_probe_then_success";
const SUCCESSES: [&str; 3] = ["secret.read", "secret.list", "credential.issued"];

/// How telling a burst window is: (a probe across paths, with a success, denials).
type Rank = (bool, bool, usize);

/// Most denials (and most successes) kept in the state, the oldest dropped first (and
/// fewer if a list weighs more than half of [`kept::BUDGET`]): 400 steps of about 100
/// bytes. (A trajectory with more denials than this is judged on its newest 200.)
const MAX_KEPT: usize = 200;

/// What the detector remembers of a trajectory: the steps it judges, in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    denials: Vec<Step>,
    successes: Vec<Step>,
}

/// One denial or successful read: what a finding needs of its event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Step {
    t: i64,
    id: String,
    #[serde(rename = "p")]
    resource: String,
    #[serde(rename = "w")]
    who: String,
}

kept::record!(Step);

impl Step {
    fn of(e: &Event) -> Step {
        Step {
            t: e.time,
            id: e.id.clone(),
            resource: text(&e.resource),
            who: text(who(e)),
        }
    }
}

fn cite<'a>(steps: impl IntoIterator<Item = &'a Step>) -> Vec<String> {
    steps.into_iter().map(|s| s.id.clone()).collect()
}

#[derive(Default)]
pub struct SecretProbe;

impl IncrementalDetector for SecretProbe {
    type State = Seen;

    fn info() -> Info {
        Info::new(
            "credential-abuse.secret-probe",
            "0.1.0",
            "Bursts of permission-denied on secrets, especially followed by a successful read",
        )
        .actions(&[
            "secret.permission_denied",
            "secret.read",
            "secret.list",
            "credential.issued",
        ])
        .views(&[TrajectoryKind::Actor])
        .signals(&[PROBE, PROBE_SUCCESS])
        .config(
            "min_denials",
            "5",
            "Denials within the burst window that make a burst",
        )
        .config(
            "min_paths",
            "3",
            "Distinct paths denied that make a burst a probe",
        )
        .config("burst_minutes", "10", "Burst window")
        .config(
            "success_minutes",
            "30",
            "How long after the burst a successful read still belongs to it",
        )
        .config("max_evidence", "25", "Most events cited per finding")
    }

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let (mut denials, mut successes) = (Vec::new(), Vec::new());
        for e in new_events {
            if e.action == "secret.permission_denied" {
                denials.push(Step::of(e));
            } else if SUCCESSES.contains(&e.action.as_str())
                && e.attr_str("outcome") != Some("failure")
            {
                successes.push(Step::of(e));
            }
        }
        // Each list in (time, id) order (a late event can be older than ones already seen),
        // each event once; a list given nothing new is as it was (and weighing it again
        // would cost as much as a call's judging).
        for (list, new) in [
            (&mut seen.denials, denials),
            (&mut seen.successes, successes),
        ] {
            if !new.is_empty() {
                kept::fold(list, new, MAX_KEPT, kept::BUDGET / 2);
            }
        }
        // What has left the trajectory (its bound dropped it) is no longer judged, as a
        // 0.1.0 call would not see it either.
        kept::prune(&mut seen.denials, cx);
        kept::prune(&mut seen.successes, cx);
        let min_denials: usize = cx.config_parsed("min_denials")?;
        let min_paths: usize = cx.config_parsed("min_paths")?;
        let burst = cx.config_parsed::<i64>("burst_minutes")? * 60_000_000_000;
        let after = cx.config_parsed::<i64>("success_minutes")? * 60_000_000_000;
        let max_evidence: usize = cx.config_parsed("max_evidence")?;

        let denials: Vec<&Step> = seen.denials.iter().collect();
        let successes: Vec<&Step> = seen.successes.iter().collect();
        // A success belongs to a burst from its first denial to `after` past its last.
        let success_of = |w: &[&Step]| -> Option<&Step> {
            let (first, last) = (w[0], w[w.len() - 1]);
            let within = || {
                successes
                    .iter()
                    .filter(|s| s.t >= first.t && s.t - last.t <= after)
            };
            // The read that came once the search stopped tells the story; one during it
            // (the actor's own routine secret) only if there is nothing after.
            within()
                .find(|s| s.t >= last.t)
                .or_else(|| within().next())
                .copied()
        };
        // Every burst window is judged, not only the densest: a probe across paths beats a
        // one-path retry storm (a stale policy retrying cannot drown out a search), a probe
        // with a success beats one without, then the most denials.
        let mut best: Option<(&[&Step], Rank)> = None;
        let mut start = 0;
        let mut paths_in: BTreeMap<&str, usize> = BTreeMap::new();
        for end in 0..denials.len() {
            *paths_in.entry(denials[end].resource.as_str()).or_default() += 1;
            while denials[end].t - denials[start].t > burst {
                let p = denials[start].resource.as_str();
                if let Some(n) = paths_in.get_mut(p) {
                    *n -= 1;
                    if *n == 0 {
                        paths_in.remove(p);
                    }
                }
                start += 1;
            }
            let window = &denials[start..=end];
            if window.len() < min_denials {
                continue;
            }
            let probe = paths_in.len() >= min_paths;
            let rank = (probe, probe && success_of(window).is_some(), window.len());
            if best.is_none_or(|(_, r)| rank > r) {
                best = Some((window, rank));
            }
        }
        let Some((window, _)) = best else {
            return Ok(Vec::new());
        };
        let paths: BTreeSet<&str> = window.iter().map(|e| e.resource.as_str()).collect();
        let last = window[window.len() - 1];
        let first = window[0];
        let success = success_of(window);
        let actor = first.who.as_str();
        let minutes = (last.t - first.t) / 60_000_000_000;
        let mut evidence = cite(window.iter().copied().take(max_evidence));
        let finding = if paths.len() < min_paths {
            // One path over and over: a stale policy, not a search.
            Finding::new(
                PROBE,
                Severity::Informational,
                title(format!(
                    "{actor} was refused {} {} time(s) in {minutes} min (likely a stale policy)",
                    first.resource,
                    window.len()
                )),
            )
            .score(0.2)
            .next_step(format!(
                "Tell the owner of {actor} that its policy no longer allows {}",
                first.resource
            ))
        } else if let Some(s) = success {
            evidence.truncate(max_evidence.saturating_sub(1));
            evidence.push(s.id.clone());
            Finding::new(
                PROBE_SUCCESS,
                Severity::Urgent,
                title(format!(
                    "{actor} was refused {} secret reads on {} paths in {minutes} min, then read {}",
                    window.len(),
                    paths.len(),
                    s.resource
                )),
            )
            .score(0.92)
            .next_step(format!(
                "Revoke {actor}'s token now, rotate {} and check what else that token can read; find out why it searched secret paths",
                s.resource
            ))
        } else {
            Finding::new(
                PROBE,
                Severity::NeedsReview,
                title(format!(
                    "{actor} was refused {} secret reads on {} paths in {minutes} min",
                    window.len(),
                    paths.len()
                )),
            )
            .score(0.7)
            .next_step(format!(
                "Ask the owner of {actor} what it was looking for; if nobody knows, revoke its token"
            ))
        };
        Ok(vec![Finding {
            evidence,
            ..finding
        }])
    }
}

register_incremental_detector!(SecretProbe);

#[cfg(test)]
mod tests {
    plumbline_sdk::testing::incremental_fixture_tests!(super::SecretProbe);

    /// Many copies of one event with 500-byte ids and 8 KiB texts: the state stays under
    /// the host's bound (each call checks it), the answer under its 100 findings.
    #[test]
    fn state_stays_bounded() {
        use plumbline_sdk::testing::feed;
        let f = feed::load(FIXTURES, "positive-probe-without-success.json");
        let found = feed::flood::<super::SecretProbe>(&f, "vault:d0:response", 300);
        assert!(found.len() <= 100, "{} findings", found.len());
    }
}
