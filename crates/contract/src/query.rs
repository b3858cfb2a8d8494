//! Questions detectors ask of a trajectory, so detector code reads like the rule it encodes:
//! "an export to a new destination within an hour of a grant, off-hours". Inherent methods
//! of [`Event`] and [`Trajectory`], so they need no import.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::interest::action_matches;
use crate::types::{AttributeValue, Environment, Event, Trajectory};

const NANOS_PER_HOUR: i64 = 3_600_000_000_000;
const NANOS_PER_DAY: i64 = 24 * NANOS_PER_HOUR;

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Event {
    /// Hour of day (0–23) in UTC shifted by `utc_offset_hours` (e.g. -5 for New York winter).
    pub fn hour_of_day(&self, utc_offset_hours: i32) -> u32 {
        let local = self.time + i64::from(utc_offset_hours) * NANOS_PER_HOUR;
        (local.rem_euclid(NANOS_PER_DAY) / NANOS_PER_HOUR) as u32
    }

    /// Day of week, 0 = Monday … 6 = Sunday, at the same offset.
    pub fn weekday(&self, utc_offset_hours: i32) -> u32 {
        let local = self.time + i64::from(utc_offset_hours) * NANOS_PER_HOUR;
        // 1970-01-01 was a Thursday (3 when Monday is 0).
        ((local.div_euclid(NANOS_PER_DAY) + 3).rem_euclid(7)) as u32
    }

    /// True outside working hours `[start_hour, end_hour)` or on a weekend.
    pub fn is_off_hours(&self, start_hour: u32, end_hour: u32, utc_offset_hours: i32) -> bool {
        let h = self.hour_of_day(utc_offset_hours);
        self.weekday(utc_offset_hours) >= 5 || h < start_hour || h >= end_hour
    }

    pub fn is(&self, pattern: &str) -> bool {
        action_matches(pattern, &self.action)
    }

    pub fn attr(&self, key: &str) -> Option<&AttributeValue> {
        self.attributes.get(key)
    }

    pub fn attr_str(&self, key: &str) -> Option<&str> {
        match self.attributes.get(key)? {
            AttributeValue::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn attr_i64(&self, key: &str) -> Option<i64> {
        match self.attributes.get(key)? {
            AttributeValue::Integer(i) => Some(*i),
            AttributeValue::Text(s) => s.parse().ok(),
            _ => None,
        }
    }

    pub fn attr_bool(&self, key: &str) -> Option<bool> {
        match self.attributes.get(key)? {
            AttributeValue::Boolean(b) => Some(*b),
            AttributeValue::Text(s) => s.parse().ok(),
            _ => None,
        }
    }

    pub fn rows(&self) -> u64 {
        self.volume.and_then(|v| v.rows).unwrap_or(0)
    }

    pub fn bytes(&self) -> u64 {
        self.volume.and_then(|v| v.bytes).unwrap_or(0)
    }

    pub fn files(&self) -> u64 {
        self.volume.and_then(|v| v.files).unwrap_or(0)
    }

    pub fn in_prod(&self) -> bool {
        self.environment == Environment::Prod
    }
}

/// What a sequence helper matches an event against: an action pattern (`"git.push.*"`,
/// see [`action_matches`]), any of several patterns (`&["a", "b"]`), or a closure
/// (`|e: &Event| e.is("data.export") && e.rows() >= 10_000`) when the rule needs more than
/// the action.
pub trait EventMatch {
    fn matches(&self, e: &Event) -> bool;
}

impl EventMatch for &str {
    fn matches(&self, e: &Event) -> bool {
        e.is(self)
    }
}

impl EventMatch for String {
    fn matches(&self, e: &Event) -> bool {
        e.is(self)
    }
}

impl EventMatch for &String {
    fn matches(&self, e: &Event) -> bool {
        e.is(self)
    }
}

impl EventMatch for &[&str] {
    fn matches(&self, e: &Event) -> bool {
        self.iter().any(|p| e.is(p))
    }
}

impl<const N: usize> EventMatch for &[&str; N] {
    fn matches(&self, e: &Event) -> bool {
        self.iter().any(|p| e.is(p))
    }
}

/// Mixed steps for [`Trajectory::sequences`]: `&[&"a" as &dyn EventMatch, &closure]`.
impl EventMatch for &dyn EventMatch {
    fn matches(&self, e: &Event) -> bool {
        (**self).matches(e)
    }
}

impl<F: Fn(&Event) -> bool> EventMatch for F {
    fn matches(&self, e: &Event) -> bool {
        self(e)
    }
}

/// Total volume over a set of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub rows: u64,
    pub bytes: u64,
    pub files: u64,
}

impl Trajectory {
    /// Events whose action matches `pattern` (see [`action_matches`]).
    pub fn with_action<'a>(&'a self, pattern: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
        self.events.iter().filter(move |e| e.is(pattern))
    }

    /// Events whose action matches any of `patterns`.
    pub fn with_any_action<'a>(
        &'a self,
        patterns: &'a [&'a str],
    ) -> impl Iterator<Item = &'a Event> + 'a {
        self.events
            .iter()
            .filter(move |e| patterns.iter().any(|p| e.is(p)))
    }

    pub fn from_source<'a>(&'a self, source: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
        self.events.iter().filter(move |e| e.source == source)
    }

    /// Events outside working hours (see [`Event::is_off_hours`]).
    pub fn off_hours(
        &self,
        start_hour: u32,
        end_hour: u32,
        utc_offset_hours: i32,
    ) -> impl Iterator<Item = &Event> {
        self.events
            .iter()
            .filter(move |e| e.is_off_hours(start_hour, end_hour, utc_offset_hours))
    }

    /// Every destination data went to in this trajectory.
    pub fn destinations(&self) -> BTreeSet<&str> {
        self.events
            .iter()
            .filter_map(|e| e.destination.as_deref())
            .collect()
    }

    /// True if `event` sends data to a destination no earlier event in the trajectory used.
    pub fn is_new_destination(&self, event: &Event) -> bool {
        let Some(dest) = event.destination.as_deref() else {
            return false;
        };
        !self
            .events
            .iter()
            .take_while(|e| !std::ptr::eq(*e, event) && e.id != event.id)
            .any(|e| e.destination.as_deref() == Some(dest))
    }

    /// Summed volume of the events that match `pattern`.
    pub fn totals(&self, pattern: &str) -> Totals {
        self.with_action(pattern)
            .fold(Totals::default(), |t, e| Totals {
                rows: t.rows + e.rows(),
                bytes: t.bytes + e.bytes(),
                files: t.files + e.files(),
            })
    }

    /// "A then B within T", judged for **every B**: one `(a, b)` pair per event `b` matching
    /// `then` that has an event matching `first` before it (earlier in trajectory order, at
    /// most `within` before it), paired with the *latest* such `a`. In order of `b`.
    ///
    /// The same as [`Trajectory::preceded_by`] with the arguments in story order. It used
    /// to pair each A with only its *earliest* later B, so a harmless B placed between
    /// A and the real B (a 10-row export before the 20,000-row one) hid the real one; now
    /// every B is reported and the caller filters the Bs it cares about afterwards, or
    /// better, in `then` (a closure: `|e: &Event| e.rows() >= 10_000`).
    pub fn followed_by(
        &self,
        first: impl EventMatch,
        then: impl EventMatch,
        within: Duration,
    ) -> Vec<(&Event, &Event)> {
        self.preceded_by(then, first, within)
    }

    /// Every B with its latest A: for each event `b` matching `then`, the latest event `a`
    /// matching `first` that comes before `b` in trajectory order and at most `within`
    /// before it; `(a, b)` pairs in order of `b`, `b`s without such an `a` left out.
    ///
    /// Decoys cannot hide a pair: every B is judged on its own (a harmless B elsewhere
    /// changes nothing), and a later A only replaces the cited A with a closer one. Use it
    /// for "did B happen soon after an A" — one finding per B. When the A must also
    /// satisfy a condition, put the condition in `first` (a closure) rather than filtering
    /// the pairs: filtering afterwards would let a harmless A that is closer to B hide an
    /// earlier A that qualifies.
    pub fn preceded_by(
        &self,
        then: impl EventMatch,
        first: impl EventMatch,
        within: Duration,
    ) -> Vec<(&Event, &Event)> {
        let limit = nanos(within);
        let mut latest: Option<&Event> = None;
        let mut out = Vec::new();
        for b in &self.events {
            // Judge b before it can count as its own A (an event matching both patterns).
            if then.matches(b) {
                if let Some(a) = latest.filter(|a| b.time - a.time <= limit) {
                    out.push((a, b));
                }
            }
            if first.matches(b) {
                latest = Some(b);
            }
        }
        out
    }

    /// Every A with every later B within the window: `(a, b)` for each event `b` matching
    /// `then` and, for that `b`, each event `a` matching `first` before it and at most
    /// `within` before it, newest `a` first; in order of `b`. At most `max_pairs` pairs:
    /// once reached, the rest is left out (so a flood of matching events can push later
    /// pairs out — narrow `first` and `then` with closures rather than filtering after).
    ///
    /// Use it when the rule needs a property of the *pair* (same resource, same
    /// destination, A's scope covers B's path) that neither pattern alone can express.
    pub fn pairs(
        &self,
        first: impl EventMatch,
        then: impl EventMatch,
        within: Duration,
        max_pairs: usize,
    ) -> Vec<(&Event, &Event)> {
        let limit = nanos(within);
        let mut out = Vec::new();
        for (j, b) in self.events.iter().enumerate() {
            if !then.matches(b) {
                continue;
            }
            for a in self.events[..j].iter().rev() {
                if b.time - a.time > limit {
                    break;
                }
                if first.matches(a) {
                    if out.len() == max_pairs {
                        return out;
                    }
                    out.push((a, b));
                }
            }
        }
        out
    }

    /// A chain of steps in order (each step a pattern or a closure), judged for **every
    /// event that matches the last step**: one chain per such event for which some chain
    /// of earlier events matches the earlier steps in order (strictly increasing
    /// trajectory positions) with the first step at most `within` before the last. The
    /// chain reported is the one whose first step is latest (the tightest), found by
    /// dynamic programming over all candidates, so no harmless event matching a step —
    /// anywhere — can hide a chain. In order of the last step. No steps: nothing.
    pub fn sequences<'a, M: EventMatch>(
        &'a self,
        steps: &[M],
        within: Duration,
    ) -> Vec<Vec<&'a Event>> {
        let limit = nanos(within);
        let n = self.events.len();
        if steps.is_empty() {
            return Vec::new();
        }
        // best[k][i]: for a chain of steps 0..=k ending at event i, the latest start
        // time and the index of the step k-1 event it continues (usize::MAX for k = 0).
        let mut best: Vec<Vec<Option<(i64, usize)>>> = vec![vec![None; n]; steps.len()];
        for (i, e) in self.events.iter().enumerate() {
            if steps[0].matches(e) {
                best[0][i] = Some((e.time, usize::MAX));
            }
        }
        for k in 1..steps.len() {
            // The latest-starting chain of steps 0..k over the events before i.
            let mut running: Option<(i64, usize)> = None;
            for (i, e) in self.events.iter().enumerate() {
                if let Some((start, j)) = running {
                    if steps[k].matches(e) && e.time - start <= limit {
                        best[k][i] = Some((start, j));
                    }
                }
                if let Some((start, _)) = best[k - 1][i] {
                    if running.is_none_or(|(s, _)| start >= s) {
                        running = Some((start, i));
                    }
                }
            }
        }
        let last = steps.len() - 1;
        let mut out = Vec::new();
        for i in 0..n {
            if best[last][i].is_none() {
                continue;
            }
            let mut chain = Vec::with_capacity(steps.len());
            let (mut k, mut at) = (last, i);
            loop {
                chain.push(&self.events[at]);
                let (_, prev) = best[k][at].expect("a chain's steps are recorded");
                if k == 0 {
                    break;
                }
                k -= 1;
                at = prev;
            }
            chain.reverse();
            out.push(chain);
        }
        out
    }

    /// Looks an event up by id.
    pub fn event(&self, id: &str) -> Option<&Event> {
        self.events.iter().find(|e| e.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Actor, ActorKind, TrajectoryKind, Volume};

    fn ev(id: &str, minute: i64, action: &str) -> Event {
        Event {
            id: id.into(),
            // 2024-01-01 (a Monday) 00:00 UTC + minutes
            time: 1_704_067_200_000_000_000 + minute * 60_000_000_000,
            source: "custom".into(),
            actor: Actor {
                id: "a".into(),
                kind: ActorKind::Human,
                display: String::new(),
            },
            system: "s".into(),
            action: action.into(),
            resource: String::new(),
            environment: Environment::Prod,
            destination: None,
            volume: None,
            attributes: Default::default(),
        }
    }

    fn traj(events: Vec<Event>) -> Trajectory {
        Trajectory {
            id: "t".into(),
            kind: TrajectoryKind::Actor,
            key: "a".into(),
            start: 0,
            end: 0,
            dropped: 0,
            hash: String::new(),
            events,
        }
    }

    #[test]
    fn time_of_day_and_weekday() {
        let e = ev("1", 9 * 60 + 30, "x");
        assert_eq!(e.hour_of_day(0), 9);
        assert_eq!(e.hour_of_day(-10), 23);
        assert_eq!(e.weekday(0), 0);
        assert!(!e.is_off_hours(8, 19, 0));
        assert!(ev("2", 22 * 60, "x").is_off_hours(8, 19, 0));
        // Saturday, mid-morning
        assert!(ev("3", 5 * 24 * 60 + 10 * 60, "x").is_off_hours(8, 19, 0));
    }

    #[test]
    fn sequences_respect_order_and_window() {
        let t = traj(vec![
            ev("g", 0, "credential.scope.increased"),
            ev("x", 10, "data.export"),
            ev("g2", 100, "credential.scope.increased"),
            ev("y", 200, "data.export"),
        ]);
        let pairs = t.followed_by("credential.*", "data.export", Duration::from_secs(3600));
        let ids: Vec<_> = pairs
            .iter()
            .map(|(a, b)| (a.id.as_str(), b.id.as_str()))
            .collect();
        assert_eq!(ids, vec![("g", "x")]);
        let chains = t.sequences(
            &["credential.*", "data.export", "credential.*"],
            Duration::from_secs(2 * 3600),
        );
        assert_eq!(chains.len(), 1);
        assert_eq!(
            chains[0].iter().map(|e| &e.id[..]).collect::<Vec<_>>(),
            ["g", "x", "g2"]
        );
    }

    fn ids<'a>(pairs: &[(&'a Event, &'a Event)]) -> Vec<(&'a str, &'a str)> {
        pairs
            .iter()
            .map(|(a, b)| (a.id.as_str(), b.id.as_str()))
            .collect()
    }

    fn rows(mut e: Event, rows: u64) -> Event {
        e.volume = Some(Volume {
            rows: Some(rows),
            bytes: None,
            files: None,
        });
        e
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_decoy_b_between_a_and_the_real_b_hides_nothing() {
        let t = traj(vec![
            ev("grant", 0, "role.granted"),
            rows(ev("small", 10, "data.export"), 10),
            rows(ev("big", 11, "data.export"), 20_000),
        ]);
        let pairs = t.followed_by("role.granted", "data.export", HOUR);
        assert_eq!(ids(&pairs), [("grant", "small"), ("grant", "big")]);
        // The condition on B inside the helper: only the big export.
        let big = |e: &Event| e.is("data.export") && e.rows() >= 10_000;
        assert_eq!(
            ids(&t.preceded_by(big, "role.granted", HOUR)),
            [("grant", "big")]
        );
        let chains = t.sequences(&[&"role.granted" as &dyn EventMatch, &big], HOUR);
        assert_eq!(chains.len(), 1);
        assert_eq!(chains[0][1].id, "big");
    }

    #[test]
    fn a_decoy_a_after_the_real_a_only_moves_the_cited_a() {
        let t = traj(vec![
            ev("real", 0, "role.granted"),
            ev("decoy", 5, "permission.granted"),
            ev("x", 10, "data.export"),
        ]);
        let grants: &[&str] = &["role.granted", "permission.granted"];
        assert_eq!(
            ids(&t.preceded_by("data.export", grants, HOUR)),
            [("decoy", "x")]
        );
        // A condition on A goes into the pattern, so the decoy cannot stand in for it.
        let roles = |e: &Event| e.is("role.granted");
        assert_eq!(
            ids(&t.preceded_by("data.export", roles, HOUR)),
            [("real", "x")]
        );
        // Every pair, newest A first.
        assert_eq!(
            ids(&t.pairs(grants, "data.export", HOUR, 10)),
            [("decoy", "x"), ("real", "x")]
        );
    }

    #[test]
    fn many_as_and_bs() {
        let t = traj(vec![
            ev("a1", 0, "a"),
            ev("b1", 1, "b"),
            ev("a2", 2, "a"),
            ev("a3", 3, "a"),
            ev("b2", 4, "b"),
            ev("b3", 5, "b"),
        ]);
        assert_eq!(
            ids(&t.followed_by("a", "b", HOUR)),
            [("a1", "b1"), ("a3", "b2"), ("a3", "b3")]
        );
        assert_eq!(
            ids(&t.pairs("a", "b", HOUR, 100)),
            [
                ("a1", "b1"),
                ("a3", "b2"),
                ("a2", "b2"),
                ("a1", "b2"),
                ("a3", "b3"),
                ("a2", "b3"),
                ("a1", "b3")
            ]
        );
        // The bound is a count of pairs, stated and kept.
        assert_eq!(t.pairs("a", "b", HOUR, 3).len(), 3);
        assert!(t.pairs("a", "b", HOUR, 0).is_empty());
        // An event matching both patterns is not its own A.
        let t = traj(vec![ev("x", 0, "data.export"), ev("y", 1, "data.export")]);
        assert_eq!(
            ids(&t.followed_by("data.*", "data.export", HOUR)),
            [("x", "y")]
        );
    }

    #[test]
    fn window_edges() {
        let t = traj(vec![
            ev("a", 0, "a"),
            ev("on-edge", 60, "b"),
            ev("past", 61, "b"),
        ]);
        // Exactly `within` after counts; a nanosecond later does not.
        assert_eq!(ids(&t.followed_by("a", "b", HOUR)), [("a", "on-edge")]);
        assert_eq!(ids(&t.pairs("a", "b", HOUR, 10)), [("a", "on-edge")]);
        assert!(t
            .followed_by("a", "b", HOUR - Duration::from_nanos(1))
            .is_empty());
        // Same instant: order in the trajectory decides.
        let t = traj(vec![ev("b0", 0, "b"), ev("a0", 0, "a"), ev("b1", 0, "b")]);
        assert_eq!(
            ids(&t.followed_by("a", "b", Duration::ZERO)),
            [("a0", "b1")]
        );
    }

    #[test]
    fn sequences_find_every_chain_not_the_greedy_one() {
        // Greedy from the first "a" would take b@1 and then need c within 60 of a@0;
        // the chain a@50 → b@55 → c@100 exists and is found.
        let t = traj(vec![
            ev("a0", 0, "a"),
            ev("b1", 1, "b"),
            ev("a50", 50, "a"),
            ev("b55", 55, "b"),
            ev("c100", 100, "c"),
            ev("c101", 101, "c"),
        ]);
        let chains = t.sequences(&["a", "b", "c"], HOUR);
        let got: Vec<Vec<&str>> = chains
            .iter()
            .map(|c| c.iter().map(|e| e.id.as_str()).collect())
            .collect();
        assert_eq!(got, [["a50", "b55", "c100"], ["a50", "b55", "c101"]]);
        // Out of order is not a chain; one step is each match; no steps is nothing.
        assert!(t.sequences(&["c", "a"], HOUR).is_empty());
        assert_eq!(t.sequences(&["b"], HOUR).len(), 2);
        assert!(t.sequences::<&str>(&[], HOUR).is_empty());
        // The window runs from the first step to the last.
        assert!(t
            .sequences(&["a", "b", "c"], Duration::from_secs(49 * 60))
            .is_empty());
        assert_eq!(
            t.sequences(&["a", "b", "c"], Duration::from_secs(50 * 60))
                .len(),
            1
        );
    }

    #[test]
    fn destinations_and_volumes() {
        let mut a = ev("a", 0, "data.export");
        a.destination = Some("s3://corp".into());
        a.volume = Some(Volume {
            rows: Some(10),
            bytes: None,
            files: None,
        });
        let mut b = ev("b", 1, "data.export");
        b.destination = Some("s3://corp".into());
        b.volume = Some(Volume {
            rows: Some(5),
            bytes: Some(7),
            files: None,
        });
        let mut c = ev("c", 2, "data.export");
        c.destination = Some("mail://me@example.com".into());
        let t = traj(vec![a, b, c]);
        assert!(t.is_new_destination(&t.events[0]));
        assert!(!t.is_new_destination(&t.events[1]));
        assert!(t.is_new_destination(&t.events[2]));
        assert_eq!(t.destinations().len(), 2);
        assert_eq!(
            t.totals("data.*"),
            Totals {
                rows: 15,
                bytes: 7,
                files: 0
            }
        );
    }
}
