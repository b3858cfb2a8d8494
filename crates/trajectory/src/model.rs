//! The trajectory: the ordered story of related events in one window.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use plumbline_event::Event;

/// What a trajectory is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrajectoryKind {
    /// Everything one actor did in the window.
    Actor,
    /// Everything that happened to one system (repository, workflow, environment).
    System,
    /// The drift view of one actor: weeks of permission and destination changes only.
    ActorDrift,
    /// The drift view of one system.
    SystemDrift,
}

impl TrajectoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TrajectoryKind::Actor => "actor",
            TrajectoryKind::System => "system",
            TrajectoryKind::ActorDrift => "actor-drift",
            TrajectoryKind::SystemDrift => "system-drift",
        }
    }

    pub fn is_drift(self) -> bool {
        matches!(
            self,
            TrajectoryKind::ActorDrift | TrajectoryKind::SystemDrift
        )
    }

    /// The key of `e` in this kind of trajectory.
    pub fn key_of(self, e: &Event) -> &str {
        match self {
            TrajectoryKind::Actor | TrajectoryKind::ActorDrift => &e.actor.id,
            TrajectoryKind::System | TrajectoryKind::SystemDrift => &e.system,
        }
    }
}

/// The two halves of an event's trajectories: its actor's (the actor and actor-drift
/// views) and its system's. A cluster partitions work by side and key, so each trajectory
/// is built by exactly one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Actor,
    System,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Actor, Side::System];

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Actor => "actor",
            Side::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Side> {
        match s {
            "actor" => Some(Side::Actor),
            "system" => Some(Side::System),
            _ => None,
        }
    }

    /// The key of `e`'s trajectories on this side.
    pub fn key_of(self, e: &Event) -> &str {
        match self {
            Side::Actor => &e.actor.id,
            Side::System => &e.system,
        }
    }
}

impl TrajectoryKind {
    pub fn side(self) -> Side {
        match self {
            TrajectoryKind::Actor | TrajectoryKind::ActorDrift => Side::Actor,
            TrajectoryKind::System | TrajectoryKind::SystemDrift => Side::System,
        }
    }
}

/// A trajectory with its events inline, ordered by (time, id). This is what detectors see.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trajectory {
    pub id: String,
    pub kind: TrajectoryKind,
    pub key: String,
    /// Event time of the first and last event kept (unix nanoseconds).
    pub start: i64,
    pub end: i64,
    /// The window stays open for events up to this time (extended after grants).
    pub closes_at: i64,
    /// Events dropped (oldest first) because the trajectory reached its bound.
    pub dropped: u64,
    /// sha256 over the ordered event ids and contents.
    pub hash: String,
    pub events: Events,
}

/// A trajectory's events, shared rather than copied: the snapshot an evaluation takes of an
/// open window is a reference to the list the window keeps (copying a 1,000-event list for
/// every evaluation, and again for the detectors' `history`, was the largest share of the
/// evaluator's host work). Changing it copies the list only while a snapshot of it is
/// still alive (copy-on-write); reading it is reading a slice.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Events(Arc<Vec<Arc<Event>>>);

impl Events {
    /// The list to change in place, copied first if a snapshot still shares it.
    pub fn make_mut(&mut self) -> &mut Vec<Arc<Event>> {
        Arc::make_mut(&mut self.0)
    }

    /// Whether two lists are one shared list (not merely equal).
    pub fn ptr_eq(a: &Events, b: &Events) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl std::ops::Deref for Events {
    type Target = [Arc<Event>];
    fn deref(&self) -> &[Arc<Event>] {
        &self.0
    }
}

impl From<Vec<Arc<Event>>> for Events {
    fn from(v: Vec<Arc<Event>>) -> Events {
        Events(Arc::new(v))
    }
}

impl FromIterator<Arc<Event>> for Events {
    fn from_iter<I: IntoIterator<Item = Arc<Event>>>(iter: I) -> Events {
        Events(Arc::new(iter.into_iter().collect()))
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Arc<Event>;
    type IntoIter = std::slice::Iter<'a, Arc<Event>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Trajectory {
    pub fn contains(&self, id: &str) -> bool {
        self.events.iter().any(|e| e.id == id)
    }
}

/// Content hash of one event (canonical JSON of the stored form).
pub fn event_digest(e: &Event) -> [u8; 32] {
    digest_of_stored(&serde_json::to_vec(e).expect("events serialise"))
}

/// The same digest from the JSON bytes the store wrote for the event.
pub fn digest_of_stored(json: &[u8]) -> [u8; 32] {
    Sha256::digest(json).into()
}

/// The trajectory hash: over each event's id and content digest, in order.
pub fn trajectory_hash<'a>(parts: impl Iterator<Item = (&'a str, &'a [u8; 32])>) -> String {
    ChunkMemo::default().hash(parts)
}

/// The trajectory hash, computed chunk by chunk so an open window can remember its chunks'
/// hashes between changes ([`ChunkMemo::hash`]): sha256 over the sha256 of each chunk, a
/// chunk being the events up to and including one whose content digest starts with a byte
/// below 4 (one in 64 on average). Boundaries follow content, not positions, so an event
/// added in the middle, or one dropped at the bound, changes one chunk and leaves the rest
/// remembered: a change costs a scan of the digests and a chunk's hashing, not the whole
/// trajectory's (hashing every event on every change was 6% of the evaluators' time at
/// 5,000 events/s). Content an attacker shapes to have no boundary costs what one hash
/// over everything did.
#[derive(Debug, Clone, Default)]
pub struct ChunkMemo(std::collections::HashMap<ChunkKey, [u8; 32]>);

/// A chunk by its first and last digest and its length: within one window this names its
/// content, because events are only ever added (anywhere) or dropped at the front, so a
/// chunk that changed has another first event or another length.
type ChunkKey = ([u8; 32], [u8; 32], u32);

impl ChunkMemo {
    /// The hash of `parts` (events in order: id and content digest), hashing only the
    /// chunks not remembered from the previous call; remembers this call's chunks.
    pub fn hash<'a>(&mut self, parts: impl Iterator<Item = (&'a str, &'a [u8; 32])>) -> String {
        self.hash_counting(parts).0
    }

    /// [`Self::hash`], and how many chunks it had to hash.
    pub fn hash_counting<'a>(
        &mut self,
        parts: impl Iterator<Item = (&'a str, &'a [u8; 32])>,
    ) -> (String, usize) {
        let mut hashed = 0;
        let mut used = std::collections::HashMap::with_capacity(self.0.len() + 2);
        let mut top = Sha256::new();
        top.update(b"plumbline trajectory chunks v1");
        let mut chunk: Vec<(&str, &[u8; 32])> = Vec::with_capacity(128);
        let mut flush = |chunk: &mut Vec<(&str, &[u8; 32])>| {
            let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
                return;
            };
            let key = (*first.1, *last.1, chunk.len() as u32);
            let h = match self.0.get(&key) {
                Some(h) => *h,
                None => {
                    hashed += 1;
                    chunk_hash(chunk)
                }
            };
            top.update(h);
            used.insert(key, h);
            chunk.clear();
        };
        for (id, digest) in parts {
            chunk.push((id, digest));
            if digest[0] < 4 {
                flush(&mut chunk);
            }
        }
        flush(&mut chunk);
        self.0 = used;
        (hex::encode(top.finalize()), hashed)
    }
}

fn chunk_hash(chunk: &[(&str, &[u8; 32])]) -> [u8; 32] {
    let mut h = Sha256::new();
    for (id, digest) in chunk {
        h.update((id.len() as u32).to_le_bytes());
        h.update(id.as_bytes());
        h.update(digest);
    }
    h.finalize().into()
}
