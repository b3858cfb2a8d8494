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

use std::collections::btree_map::{BTreeMap, Entry};

use plumbline_sdk::*;
use plumbline_sigma::index;
use plumbline_sigma::{one_per_event, record, Rule, SIGNAL};

/// The rules, checked and indexed when the component was built (build.rs).
pub static RULES: &[index::Entry] = include!(concat!(env!("OUT_DIR"), "/rules.rs"));

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
        // Rules parsed in this call, each at most once.
        let mut parsed: BTreeMap<usize, Rule> = BTreeMap::new();
        let parse = |i: usize| {
            RULES[i]
                .rule()
                .map_err(|e| AnalyzeError::new(e.to_string()))
        };
        for e in new_events {
            let mut keys = index::Keys::of(e);
            let candidates: Vec<usize> = (0..RULES.len())
                .filter(|&i| RULES[i].candidate(&mut keys))
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let rec = record(e);
            for i in candidates {
                let rule = match parsed.entry(i) {
                    Entry::Occupied(o) => o.into_mut(),
                    Entry::Vacant(v) => v.insert(parse(i)?),
                };
                if rule.matches(&rec) {
                    remember(hits, i, e);
                }
            }
        }
        Ok(one_per_event(
            hits.0
                .iter()
                .filter_map(|h| Some(RULES.get(usize::from(h.r))?.finding(&h.id)))
                .collect(),
        ))
    }
}

/// Records that rule `r` matched `e`, once, in (time, event) order, keeping the newest
/// [`MAX_KEPT`].
fn remember(hits: &mut Hits, r: usize, e: &Event) {
    let hit = Hit {
        r: r as u16,
        id: e.id.clone(),
        t: e.time,
    };
    let at = hits.0.partition_point(|h| (h.t, &h.id) < (hit.t, &hit.id));
    let seen = hits.0[at..]
        .iter()
        .take_while(|h| h.t == hit.t && h.id == hit.id)
        .any(|h| h.r == hit.r);
    if !seen {
        hits.0.insert(at, hit);
    }
    if hits.0.len() > MAX_KEPT {
        hits.0.remove(0);
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
    fn detectors_readme_lists_every_rule() {
        let readme = include_str!("../../../README.md");
        for r in super::RULES {
            assert!(
                readme.contains(&format!("| {} |", r.title)),
                "detectors/README.md does not list `{}`",
                r.title
            );
        }
    }

    #[test]
    fn every_rule_parses_and_most_are_indexed() {
        for r in super::RULES {
            r.rule().unwrap_or_else(|e| panic!("{e}"));
        }
        // Rules on a source's key field (eventName, eventType, action) are parsed only for
        // events carrying one of their values; the webhook rules have no key field.
        let unindexed: Vec<&str> = super::RULES
            .iter()
            .filter(|r| r.keys.is_empty() && r.feed != Some("webhook"))
            .map(|r| r.title)
            .collect();
        assert!(unindexed.is_empty(), "{unindexed:?}");
    }
}
