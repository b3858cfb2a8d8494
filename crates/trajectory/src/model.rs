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
    pub events: Vec<Arc<Event>>,
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
    let mut h = Sha256::new();
    for (id, digest) in parts {
        h.update((id.len() as u32).to_le_bytes());
        h.update(id.as_bytes());
        h.update(digest);
    }
    hex::encode(h.finalize())
}
