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

    /// "A then B within T": for each event matching `first`, the earliest later event
    /// matching `then` at most `within` after it.
    pub fn followed_by<'a>(
        &'a self,
        first: &str,
        then: &str,
        within: Duration,
    ) -> Vec<(&'a Event, &'a Event)> {
        let limit = nanos(within);
        let mut out = Vec::new();
        for (i, a) in self.events.iter().enumerate() {
            if !a.is(first) {
                continue;
            }
            if let Some(b) = self.events[i + 1..]
                .iter()
                .take_while(|b| b.time - a.time <= limit)
                .find(|b| b.is(then))
            {
                out.push((a, b));
            }
        }
        out
    }

    /// A chain of steps in order, all within `within` of the first: the earliest match for
    /// each possible first step. Each step is an action pattern.
    pub fn sequences<'a>(&'a self, steps: &[&str], within: Duration) -> Vec<Vec<&'a Event>> {
        let limit = nanos(within);
        let Some((head, rest)) = steps.split_first() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, a) in self.events.iter().enumerate() {
            if !a.is(head) {
                continue;
            }
            let mut chain = vec![a];
            let mut pos = i + 1;
            for step in rest {
                let found = self.events[pos..]
                    .iter()
                    .enumerate()
                    .take_while(|(_, e)| e.time - a.time <= limit)
                    .find(|(_, e)| e.is(step));
                match found {
                    Some((j, e)) => {
                        chain.push(e);
                        pos += j + 1;
                    }
                    None => break,
                }
            }
            if chain.len() == steps.len() {
                out.push(chain);
            }
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
