//! `single-event.sigma`: the built-in Sigma pack — rules, written in Sigma in this folder's
//! `rules/`, for single events that speak for themselves (an MFA factor reset, a support
//! session impersonating a user, an API token or another user's access key created, a
//! snapshot or image made public, a `pull_request_target` run from a fork, command
//! substitution in a commit message or pull-request title, `[skip ci]` on a public
//! repository, …) on CloudTrail, Okta, GitHub webhooks and the GitHub audit log.
//! detectors/README.md lists the rules.
//!
//! Incremental (`plumbline:detector@0.2.0`): each call judges only the new events; the
//! state is the matches so far (rule, event, time — not the events), so the findings of
//! earlier calls are answered again without the trajectory being read.

use plumbline_sdk::*;
use plumbline_sigma::{detection_finding, matching, parse_strict, RuleSet, SIGNAL};

/// The rules, compiled in (build.rs joins rules/*.yml).
pub const RULES: &str = include_str!(concat!(env!("OUT_DIR"), "/rules.yml"));

/// Most matches remembered, the oldest dropped first: a match is about 80 bytes of state,
/// well under the host's 64 KiB bound.
const MAX_KEPT: usize = 200;

/// One rule matching one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Hit {
    /// The rule's place in [`RULES`] (the state is kept per detector version).
    r: u16,
    id: String,
    t: i64,
}

/// The matches so far, in (time, event) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Hits(Vec<Hit>);

/// The compiled-in rules, every one taken (a rule that does not parse fails the call
/// naming it, and the pack's fixtures with it).
pub fn rules() -> Result<RuleSet, AnalyzeError> {
    parse_strict(RULES)
}

#[derive(Default)]
pub struct SingleEvent;

impl IncrementalDetector for SingleEvent {
    type State = Hits;

    fn info() -> Info {
        Info::new(
            "single-event.sigma",
            env!("CARGO_PKG_VERSION"),
            "Sigma rules for single events that speak for themselves (rules/ in the pack)",
        )
        .sources(&["cloudtrail", "okta", "github"])
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL])
    }

    fn observe(
        &self,
        hits: &mut Hits,
        new_events: &[Event],
        _cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let set = rules()?;
        for e in new_events {
            for r in matching(&set, e) {
                let place = set.rules.iter().position(|x| std::ptr::eq(x, r));
                let hit = Hit {
                    r: place.unwrap_or_default() as u16,
                    id: e.id.clone(),
                    t: e.time,
                };
                let at = hits.0.partition_point(|h| (h.t, &h.id) < (hit.t, &hit.id));
                if !hits.0[at..]
                    .iter()
                    .take_while(|h| h.t == hit.t && h.id == hit.id)
                    .any(|h| h.r == hit.r)
                {
                    hits.0.insert(at, hit);
                }
            }
        }
        if hits.0.len() > MAX_KEPT {
            hits.0.drain(..hits.0.len() - MAX_KEPT);
        }
        Ok(hits
            .0
            .iter()
            .filter_map(|h| {
                let rule = set.rules.get(usize::from(h.r))?;
                Some(detection_finding(rule, &h.id))
            })
            .collect())
    }
}

register_incremental_detector!(SingleEvent);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_incremental_fixtures::<super::SingleEvent>(FIXTURES);
    }

    #[test]
    fn every_rule_is_taken() {
        let (set, errors) = plumbline_sigma::parse_all(super::RULES);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(set.correlations.is_empty(), "single events only");
        assert!(set.rules.len() >= 7);
    }
}
