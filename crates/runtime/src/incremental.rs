//! What the host keeps for incremental (0.2.0) detectors between calls: per (detector,
//! trajectory), the state bytes the detector returned and which events it was given.
//! Bounded in total bytes; the least recently used entries go first. An entry is a cache,
//! never the truth: a missing one makes the next call replay the trajectory.
//!
//! Which events were given is a watermark — the newest (time, id) of the trajectory at the
//! last call, and how many of its events were at or below it — plus digests of the ids
//! given (or read). A call's new events are the ones above the watermark, found by binary
//! search (the trajectory is in (time, id) order); only when the count below the
//! watermark says an event arrived late (or the bound dropped more than the old ones) are
//! the events below it checked against the digests. The digests (16 bytes an id, not the
//! id, with the event's time) also say what evidence may cite and whether a cited event
//! has left the trajectory (a binary search at its time). They are not pruned when events
//! leave (a state may still cite them, and citing an id never given must stay a contract
//! violation); an entry's weight counts them, so the book's total bound evicts a
//! trajectory that has streamed past its bound for long (it replays once).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use plumbline_event::Event;
use plumbline_trajectory::Trajectory;
use sha2::{Digest, Sha256};

/// An event id's digest: sha256 cut to 128 bits, so two ids a client chose cannot be
/// made to collide (a collision would hide a late event from a detector).
fn digest(id: &str) -> u128 {
    let d = Sha256::digest(id.as_bytes());
    u128::from_le_bytes(d[..16].try_into().expect("32 bytes"))
}

fn key(e: &Event) -> (i64, &str) {
    (e.time_nanos(), e.id.as_str())
}

/// One detector's memory of one trajectory.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// The detector version that wrote it: another version starts again.
    pub version: String,
    pub state: Option<Vec<u8>>,
    /// Digests of the ids of the events given or read so far, with the events' times:
    /// evidence may cite only these (and, below the watermark, they tell a late event from
    /// a given one).
    given: HashMap<u128, i64>,
    /// The newest (time, id) of the trajectory at the last call: every event the detector
    /// is interested in at or below it was given.
    mark: Option<(i64, String)>,
    /// Events of the trajectory at or below `mark`, and its drop count, at the last call.
    below: usize,
    dropped: u64,
    last_use: u64,
    /// Whether the detector was ever called on the trajectory (answered without failing).
    /// Before that the entry only says how far the host looked and found nothing the
    /// detector wants, and the first call is still a replay.
    pub called: bool,
}

impl Entry {
    pub fn new(version: &str) -> Entry {
        Entry {
            version: version.to_string(),
            ..Entry::default()
        }
    }

    /// About what the entry weighs in memory.
    pub fn bytes(&self) -> usize {
        const PER_DIGEST: usize = 32;
        self.state.as_ref().map_or(0, Vec::len) + self.given.len() * PER_DIGEST + 192
    }

    /// Whether the event `id` was given (or read) to the detector.
    pub fn was_given(&self, id: &str) -> bool {
        self.given.contains_key(&digest(id))
    }

    /// Whether `id` was given earlier and has since left `t` (its bound dropped it).
    pub fn left(&self, t: &Trajectory, id: &str) -> bool {
        self.given.get(&digest(id)).is_some_and(|&time| {
            t.events
                .binary_search_by(|e| key(e).cmp(&(time, id)))
                .is_err()
        })
    }

    /// The events of `t` the detector was not given yet, in (time, id) order, among those
    /// `wanted` picks: the ones above the watermark, and below it only those that arrived
    /// late (checked against the digests only when the count below it grew).
    pub fn new_events<'t>(
        &self,
        t: &'t Trajectory,
        wanted: impl Fn(&Event) -> bool,
    ) -> Vec<&'t Arc<Event>> {
        let Some((time, id)) = &self.mark else {
            return t.events.iter().filter(|e| wanted(e)).collect();
        };
        let at = t.events.partition_point(|e| key(e) <= (*time, id.as_str()));
        let dropped = usize::try_from(t.dropped.saturating_sub(self.dropped)).unwrap_or(usize::MAX);
        let late = at != self.below.saturating_sub(dropped);
        let below = t.events[..at]
            .iter()
            .filter(|e| late && !self.was_given(&e.id));
        below.chain(&t.events[at..]).filter(|e| wanted(e)).collect()
    }

    /// Records a call on `t` in which the detector was given `events` and read `read`
    /// (ids of `t`'s events): the watermark moves to `t`'s newest event.
    pub fn record<'a>(
        &mut self,
        t: &Trajectory,
        events: impl IntoIterator<Item = &'a Event>,
        read: &HashSet<String>,
    ) {
        for e in events {
            self.given.insert(digest(&e.id), e.time_nanos());
        }
        if !read.is_empty() {
            for e in t.events.iter().filter(|e| read.contains(&e.id)) {
                self.given.insert(digest(&e.id), e.time_nanos());
            }
        }
        self.mark = t.events.last().map(|e| (e.time_nanos(), e.id.clone()));
        self.below = t.events.len();
        self.dropped = t.dropped;
    }
}

/// One entry as saved with the trajectory checkpoint.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    version: String,
    /// Hex of the state bytes.
    state: Option<String>,
    /// The digests given (hex, 32 digits) with their events' times.
    given: Vec<(String, i64)>,
    mark: Option<(i64, String)>,
    below: usize,
    dropped: u64,
    /// Absent in states saved before uncalled entries were kept: those were all called.
    #[serde(default = "yes")]
    called: bool,
}

fn yes() -> bool {
    true
}

/// Every entry, keyed by trajectory id, then detector name.
pub struct StateBook {
    inner: Mutex<Inner>,
    max_bytes: usize,
    clock: AtomicU64,
    evicted: AtomicU64,
}

#[derive(Default)]
struct Inner {
    by_trajectory: HashMap<String, HashMap<String, (Entry, usize)>>,
    bytes: usize,
}

impl StateBook {
    pub fn new(max_bytes: usize) -> StateBook {
        StateBook {
            inner: Mutex::default(),
            max_bytes,
            clock: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    /// Takes the entry out for one call (put it back with [`StateBook::put`]); none if
    /// there is none for this detector version.
    pub fn take(&self, trajectory: &str, detector: &str, version: &str) -> Option<Entry> {
        let mut inner = self.inner.lock().expect("state book");
        let per = inner.by_trajectory.get_mut(trajectory)?;
        let (entry, bytes) = per.remove(detector)?;
        if per.is_empty() {
            inner.by_trajectory.remove(trajectory);
        }
        inner.bytes -= bytes;
        (entry.version == version).then_some(entry)
    }

    /// Keeps `entry` for the next call, evicting the least recently used entries while
    /// the book is over its bound.
    pub fn put(&self, trajectory: &str, detector: &str, mut entry: Entry) {
        entry.last_use = self.clock.fetch_add(1, Ordering::Relaxed);
        let bytes = entry.bytes();
        let mut inner = self.inner.lock().expect("state book");
        let old = inner
            .by_trajectory
            .entry(trajectory.to_string())
            .or_default()
            .insert(detector.to_string(), (entry, bytes));
        inner.bytes += bytes;
        if let Some((_, b)) = old {
            inner.bytes -= b;
        }
        if inner.bytes > self.max_bytes {
            self.evict(&mut inner);
        }
    }

    /// A book of its own holding copies of the entries kept for `trajectory` that `keep`
    /// accepts: a call judged on it (an agent's pending call) sees each detector's state
    /// without moving it; a detector without an entry there takes a first look.
    pub fn scratch_copy(&self, trajectory: &str, keep: impl Fn(&Entry) -> bool) -> StateBook {
        let copy = StateBook::new(usize::MAX);
        let inner = self.inner.lock().expect("state book");
        if let Some(per) = inner.by_trajectory.get(trajectory) {
            for (detector, (entry, _)) in per {
                if keep(entry) {
                    copy.put(trajectory, detector, entry.clone());
                }
            }
        }
        copy
    }

    /// Drops everything kept for `trajectory` (it closed, or was renamed).
    pub fn forget(&self, trajectory: &str) {
        let mut inner = self.inner.lock().expect("state book");
        if let Some(per) = inner.by_trajectory.remove(trajectory) {
            inner.bytes -= per.values().map(|(_, b)| b).sum::<usize>();
        }
    }

    /// Everything kept for `trajectory`, as bytes to save with its checkpoint (none when
    /// nothing is kept).
    pub fn snapshot(&self, trajectory: &str) -> Option<Vec<u8>> {
        let inner = self.inner.lock().expect("state book");
        let per = inner.by_trajectory.get(trajectory)?;
        let saved: BTreeMap<&str, Saved> = per
            .iter()
            .map(|(d, (e, _))| {
                let mut given: Vec<(u128, i64)> = e.given.iter().map(|(d, t)| (*d, *t)).collect();
                given.sort_unstable();
                let saved = Saved {
                    version: e.version.clone(),
                    state: e.state.as_deref().map(hex::encode),
                    given: given
                        .into_iter()
                        .map(|(d, t)| (format!("{d:032x}"), t))
                        .collect(),
                    mark: e.mark.clone(),
                    below: e.below,
                    dropped: e.dropped,
                    called: e.called,
                };
                (d.as_str(), saved)
            })
            .collect();
        serde_json::to_vec(&saved).ok()
    }

    /// Puts back what [`StateBook::snapshot`] saved for `trajectory` (after a restart).
    /// Bytes that do not parse are ignored: the next calls replay.
    pub fn restore(&self, trajectory: &str, bytes: &[u8]) {
        let Ok(saved) = serde_json::from_slice::<BTreeMap<String, Saved>>(bytes) else {
            tracing::warn!(trajectory, "saved detector state does not parse; replaying");
            return;
        };
        for (detector, s) in saved {
            let state = match s.state.map(hex::decode).transpose() {
                Ok(state) => state,
                Err(_) => continue,
            };
            let given: Result<HashMap<u128, i64>, _> = s
                .given
                .iter()
                .map(|(d, t)| u128::from_str_radix(d, 16).map(|d| (d, *t)))
                .collect();
            let Ok(given) = given else {
                continue;
            };
            let entry = Entry {
                version: s.version,
                state,
                given,
                mark: s.mark,
                below: s.below,
                dropped: s.dropped,
                last_use: 0,
                called: s.called,
            };
            self.put(trajectory, &detector, entry);
        }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.inner.lock().expect("state book").bytes
    }

    /// Entries evicted under the bound so far.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Evicts the oldest entries until the book is at 3/4 of its bound (so eviction is
    /// not paid on every put).
    fn evict(&self, inner: &mut Inner) {
        let target = self.max_bytes / 4 * 3;
        let mut all: Vec<(u64, String, String, usize)> = inner
            .by_trajectory
            .iter()
            .flat_map(|(t, per)| {
                per.iter()
                    .map(move |(d, (e, b))| (e.last_use, t.clone(), d.clone(), *b))
            })
            .collect();
        all.sort_unstable_by_key(|(used, ..)| *used);
        for (_, t, d, b) in all {
            if inner.bytes <= target {
                break;
            }
            if let Some(per) = inner.by_trajectory.get_mut(&t) {
                per.remove(&d);
                if per.is_empty() {
                    inner.by_trajectory.remove(&t);
                }
            }
            inner.bytes -= b;
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, minute: i64) -> Arc<Event> {
        let time = time::OffsetDateTime::from_unix_timestamp(1_700_000_000 + minute * 60)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "id": id, "time": time, "source": "custom",
                "actor": {"id": "a", "type": "human"}, "system": "s", "action": "x.y",
            }))
            .unwrap(),
        )
    }

    /// A trajectory of `events` (id, minute), sorted as the builder keeps them.
    fn trajectory(events: &[(&str, i64)], dropped: u64) -> Trajectory {
        let mut events: Vec<Arc<Event>> = events.iter().map(|(id, m)| event(id, *m)).collect();
        events.sort_by(|a, b| key(a).cmp(&key(b)));
        Trajectory {
            id: "t".into(),
            kind: plumbline_trajectory::TrajectoryKind::Actor,
            key: "a".into(),
            start: 0,
            end: 0,
            closes_at: 0,
            dropped,
            hash: String::new(),
            events: events.into(),
        }
    }

    fn ids(new: &[&Arc<Event>]) -> Vec<String> {
        new.iter().map(|e| e.id.clone()).collect()
    }

    /// One call: the new events (all of them given) recorded on `entry`.
    fn call(entry: &mut Entry, t: &Trajectory) -> Vec<String> {
        let new = entry.new_events(t, |e| !e.id.starts_with("other"));
        let got = ids(&new);
        entry.record(t, new.into_iter().map(|e| e.as_ref()), &HashSet::new());
        got
    }

    #[test]
    fn new_events_are_the_ones_above_the_watermark_and_late_ones_below_it() {
        let mut e = Entry::new("1");
        let t1 = trajectory(&[("a", 1), ("other", 2), ("b", 3)], 0);
        assert_eq!(call(&mut e, &t1), ["a", "b"]);
        assert!(call(&mut e, &t1).is_empty());
        // Two newer events, and a late one older than everything given.
        let t2 = trajectory(
            &[
                ("late", 0),
                ("a", 1),
                ("other", 2),
                ("b", 3),
                ("c", 4),
                ("d", 5),
            ],
            0,
        );
        assert_eq!(call(&mut e, &t2), ["late", "c", "d"]);
        assert!(call(&mut e, &t2).is_empty());
        // The bound dropped the two oldest and a new one came: no late scan needed, and
        // none is taken for new.
        let t3 = trajectory(&[("other", 2), ("b", 3), ("c", 4), ("d", 5), ("e", 6)], 2);
        assert_eq!(call(&mut e, &t3), ["e"]);
        // Dropped and late at once: the count below the watermark cannot tell, the digests do.
        let t4 = trajectory(&[("late2", 2), ("b", 3), ("c", 4), ("d", 5), ("e", 6)], 3);
        assert_eq!(call(&mut e, &t4), ["late2"]);
        assert!(e.was_given("late2") && !e.was_given("other"));
    }

    #[test]
    fn an_event_that_left_the_trajectory_is_told_from_one_never_given() {
        let mut e = Entry::new("1");
        let t1 = trajectory(&[("a", 1), ("b", 2)], 0);
        call(&mut e, &t1);
        let t2 = trajectory(&[("b", 2), ("c", 3)], 1);
        assert!(e.left(&t2, "a"));
        assert!(!e.left(&t2, "b"));
        assert!(!e.left(&t2, "never"), "never given is not 'left'");
        assert!(!e.was_given("never"));
    }

    fn entry(state: usize) -> Entry {
        Entry {
            state: Some(vec![0; state]),
            ..Entry::new("1")
        }
    }

    #[test]
    fn entries_are_per_detector_and_trajectory_and_version() {
        let book = StateBook::new(1 << 20);
        book.put("t1", "d", entry(10));
        book.put("t2", "d", entry(20));
        assert!(book.take("t1", "other", "1").is_none());
        assert!(book.take("t3", "d", "1").is_none());
        assert_eq!(book.take("t2", "d", "1").unwrap().state.unwrap().len(), 20);
        // Another version of the detector does not get the state (and it is dropped).
        assert!(book.take("t1", "d", "2").is_none());
        assert!(book.take("t1", "d", "1").is_none());
        assert_eq!(book.bytes(), 0);
    }

    #[test]
    fn the_least_recently_used_go_first_and_forget_drops_a_trajectory() {
        let one = entry(1000).bytes();
        let book = StateBook::new(one * 4);
        for t in ["a", "b", "c", "d"] {
            book.put(t, "x", entry(1000));
        }
        assert_eq!(book.evicted(), 0);
        book.put("e", "x", entry(1000));
        assert!(book.bytes() <= one * 3);
        assert!(book.take("a", "x", "1").is_none(), "oldest evicted");
        assert!(book.take("e", "x", "1").is_some(), "newest kept");
        assert!(book.evicted() >= 2);
        book.put("d", "y", entry(10));
        book.forget("d");
        assert!(book.take("d", "x", "1").is_none());
        assert!(book.take("d", "y", "1").is_none());
    }

    #[test]
    fn a_trajectory_s_entries_survive_a_snapshot_and_restore() {
        let book = StateBook::new(1 << 20);
        let t = trajectory(&[("e1", 1)], 0);
        let mut e = entry(3);
        e.record(&t, t.events.iter().map(|e| e.as_ref()), &HashSet::new());
        book.put("t", "d", e);
        book.put("t", "other", Entry::new("2"));
        assert!(book.snapshot("nothing").is_none());
        let saved = book.snapshot("t").unwrap();
        let after = StateBook::new(1 << 20);
        after.restore("t", &saved);
        let e = after.take("t", "d", "1").unwrap();
        assert_eq!(e.state, Some(vec![0; 3]));
        assert!(e.was_given("e1") && !e.was_given("e2"));
        assert!(
            e.new_events(&t, |_| true).is_empty(),
            "the watermark came back too"
        );
        let o = after.take("t", "other", "2").unwrap();
        assert_eq!((o.state, o.given.len()), (None, 0));
        after.restore("u", b"not json");
        assert!(after.take("u", "d", "1").is_none());
    }
}
