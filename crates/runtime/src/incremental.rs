//! What the host keeps for incremental (0.2.0) detectors between calls: per (detector,
//! trajectory), the state bytes the detector returned and the ids of the events it was
//! given. Bounded in total bytes; the least recently used entries go first. An entry is
//! a cache, never the truth: a missing one makes the next call replay the trajectory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// One detector's memory of one trajectory.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// The detector version that wrote it: another version starts again.
    pub version: String,
    pub state: Option<Vec<u8>>,
    /// Ids of the events given (or read) so far: the next call gets the others, and
    /// evidence may cite only these.
    pub given: HashSet<String>,
    last_use: u64,
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
        const PER_ID: usize = 48;
        self.state.as_ref().map_or(0, Vec::len)
            + self.given.iter().map(|id| id.len() + PER_ID).sum::<usize>()
            + 128
    }
}

/// One entry as saved with the trajectory checkpoint.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    version: String,
    /// Hex of the state bytes.
    state: Option<String>,
    given: Vec<String>,
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

    /// A book of its own holding copies of what is kept for `trajectory`: a call judged
    /// on it (an agent's pending call) sees each detector's state without moving it.
    pub fn scratch_copy(&self, trajectory: &str) -> StateBook {
        let copy = StateBook::new(usize::MAX);
        let inner = self.inner.lock().expect("state book");
        if let Some(per) = inner.by_trajectory.get(trajectory) {
            for (detector, (entry, _)) in per {
                copy.put(trajectory, detector, entry.clone());
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
                let mut given: Vec<String> = e.given.iter().cloned().collect();
                given.sort_unstable();
                let saved = Saved {
                    version: e.version.clone(),
                    state: e.state.as_deref().map(hex::encode),
                    given,
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
            let entry = Entry {
                version: s.version,
                state,
                given: s.given.into_iter().collect(),
                last_use: 0,
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
        let mut e = entry(3);
        e.given.insert("e1".into());
        book.put("t", "d", e);
        book.put("t", "other", Entry::new("2"));
        assert!(book.snapshot("nothing").is_none());
        let saved = book.snapshot("t").unwrap();
        let after = StateBook::new(1 << 20);
        after.restore("t", &saved);
        let e = after.take("t", "d", "1").unwrap();
        assert_eq!(e.state, Some(vec![0; 3]));
        assert!(e.given.contains("e1"));
        let o = after.take("t", "other", "2").unwrap();
        assert_eq!((o.state, o.given.len()), (None, 0));
        after.restore("u", b"not json");
        assert!(after.take("u", "d", "1").is_none());
    }
}
