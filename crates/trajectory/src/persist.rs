//! Trajectories on disk: one small header per trajectory (its window, hash, drop count and
//! evaluation state) and a checkpoint: the last event batch whose effects are all saved.
//!
//! Membership is not written: it is a function of the stored events (every event of the
//! key inside the window belongs to it, windows of one key never overlap), so a trajectory
//! is rebuilt from the event store's index. Writing membership lists instead cost megabytes
//! per checkpoint under load. After a restart, open headers are rebuilt and the batches
//! after the checkpoint re-applied (adding an event twice is a no-op): nothing is skipped
//! and nothing doubles.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::model::{event_digest, TrajectoryKind};
use super::window::{Entry, Session};
use plumbline_store::{EventQuery, Store, StoreError};

const CHECKPOINT_KEY: &[u8] = b"checkpoint_seq";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrajectoryRecord {
    pub id: String,
    pub kind: TrajectoryKind,
    pub key: String,
    pub first_time: i64,
    /// The earliest event's id (absent in headers saved before it was recorded).
    #[serde(default)]
    pub origin_id: Option<String>,
    pub start: i64,
    pub end: i64,
    pub closes_at: i64,
    pub dropped: u64,
    pub hash: String,
    pub closed: bool,
    pub last_evaluated_hash: Option<String>,
    /// Events kept (at most `trajectory.max_events`).
    pub event_count: usize,
    /// Who acted and what was touched in the kept events (distinct, sorted): what the
    /// listing filters on, so a system trajectory answers `?actor=` too.
    #[serde(default)]
    pub actors: Vec<String>,
    #[serde(default)]
    pub systems: Vec<String>,
}

impl TrajectoryRecord {
    pub fn of(s: &Session, closed: bool) -> Self {
        TrajectoryRecord {
            id: s.id.clone(),
            kind: s.kind,
            key: s.key.clone(),
            first_time: s.first_time,
            origin_id: Some(s.origin_id.clone()),
            start: s.entries.front().map_or(s.first_time, |e| e.time),
            end: s.entries.back().map_or(s.first_time, |e| e.time),
            closes_at: s.closes_at,
            dropped: s.dropped,
            hash: s.hash(),
            closed,
            last_evaluated_hash: s.last_evaluated_hash.clone(),
            event_count: s.entries.len(),
            actors: distinct(s.entries.iter().map(|e| e.event.actor.id.as_str())),
            systems: distinct(s.entries.iter().map(|e| e.event.system.as_str())),
        }
    }

    /// Whether the trajectory involves the actor / system (its key, or one of its events).
    pub fn involves_actor(&self, actor: &str) -> bool {
        self.actors.iter().any(|a| a == actor)
            || (self.kind == TrajectoryKind::Actor || self.kind == TrajectoryKind::ActorDrift)
                && self.key == actor
    }

    pub fn involves_system(&self, system: &str) -> bool {
        self.systems.iter().any(|x| x == system)
            || (self.kind == TrajectoryKind::System || self.kind == TrajectoryKind::SystemDrift)
                && self.key == system
    }
}

fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> Vec<String> {
    let set: std::collections::BTreeSet<&str> = items.collect();
    set.into_iter().map(str::to_string).collect()
}

#[derive(Clone)]
pub struct TrajectoryStore {
    store: Store,
    rules: super::window::WindowRules,
    records: sled::Tree,
    meta: sled::Tree,
    /// What the evaluator keeps for an open trajectory (incremental detectors' state),
    /// saved with the checkpoint and given back at start (`Evaluator::snapshot/restore`).
    evaluator_state: sled::Tree,
    pub aliases: super::aliases::Aliases,
}

impl TrajectoryStore {
    pub fn open(store: &Store, rules: super::window::WindowRules) -> Result<Self, StoreError> {
        Ok(TrajectoryStore {
            rules,
            records: store.db().open_tree("trajectories")?,
            meta: store.db().open_tree("trajectory_meta")?,
            evaluator_state: store.db().open_tree("trajectory_evaluator_state")?,
            aliases: super::aliases::Aliases::open(store)?,
            store: store.clone(),
        })
    }

    pub fn checkpoint(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta
            .get(CHECKPOINT_KEY)?
            .map(|v| u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])))
            .unwrap_or(0))
    }

    /// Saves records first and the checkpoint last, so a crash in between only means
    /// some batches are re-applied (which renames the same way again).
    pub fn save(
        &self,
        records: &[TrajectoryRecord],
        removed: &[String],
        seq: u64,
    ) -> Result<(), StoreError> {
        for id in removed {
            self.records.remove(id.as_bytes())?;
        }
        self.put_records(records)?;
        self.meta.insert(CHECKPOINT_KEY, &seq.to_be_bytes())?;
        Ok(())
    }

    /// Saves (or, with none, removes) what the evaluator keeps for trajectory `id`.
    pub fn put_evaluator_state(&self, id: &str, state: Option<&[u8]>) -> Result<(), StoreError> {
        match state {
            Some(bytes) => self.evaluator_state.insert(id.as_bytes(), bytes)?,
            None => self.evaluator_state.remove(id.as_bytes())?,
        };
        Ok(())
    }

    /// What the evaluator kept for trajectory `id` at the last checkpoint.
    pub fn evaluator_state(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.evaluator_state.get(id.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Writes headers without moving the checkpoint.
    pub fn put_records(&self, records: &[TrajectoryRecord]) -> Result<(), StoreError> {
        for r in records {
            self.records.insert(
                r.id.as_bytes(),
                serde_json::to_vec(r).expect("records serialise"),
            )?;
        }
        Ok(())
    }

    pub fn record(&self, id: &str) -> Result<Option<TrajectoryRecord>, StoreError> {
        Ok(self
            .records
            .get(id.as_bytes())?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Retention: forgets closed trajectories whose last event is before `cutoff` (unix
    /// nanos; their events go with the same cutoff) and the renames that lead to them.
    /// Open ones stay whatever their age. Returns how many entries went.
    pub fn sweep_before(&self, cutoff: i64) -> Result<usize, StoreError> {
        let mut gone = std::collections::HashSet::new();
        for item in self.records.iter() {
            let (k, v) = item?;
            let Ok(r) = serde_json::from_slice::<TrajectoryRecord>(&v) else {
                continue;
            };
            if r.closed && r.end < cutoff {
                self.records.remove(k)?;
                gone.insert(r.id);
            }
        }
        let headers = gone.len();
        Ok(headers + self.aliases.forget_leading_to(gone)?)
    }

    /// All records (for listing). Trajectory counts are modest next to events.
    pub fn records(&self) -> impl Iterator<Item = TrajectoryRecord> + '_ {
        self.records
            .iter()
            .values()
            .filter_map(|v| v.ok().and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Rebuilds a session from its header and the events of its key inside its window.
    pub fn load_session(&self, r: &TrajectoryRecord) -> Result<Session, StoreError> {
        let mut q = EventQuery {
            since: Some(r.first_time),
            until: Some(r.closes_at.saturating_add(1)),
            limit: usize::MAX,
            ..EventQuery::default()
        };
        match r.kind {
            TrajectoryKind::Actor | TrajectoryKind::ActorDrift => q.actor = Some(r.key.clone()),
            TrajectoryKind::System | TrajectoryKind::SystemDrift => q.system = Some(r.key.clone()),
        }
        let entries = self
            .store
            .query(&q)?
            .events
            .into_iter()
            .filter(|e| !r.kind.is_drift() || self.rules.is_drift(&e.action))
            .map(|e| Entry {
                time: e.time_nanos(),
                digest: event_digest(&e),
                event: Arc::new(e),
            })
            .collect();
        Ok(Session::restored(
            r.id.clone(),
            r.kind,
            r.key.clone(),
            r.first_time,
            r.origin_id.clone(),
            r.closes_at,
            r.dropped,
            r.last_evaluated_hash.clone(),
            entries,
            self.rules.max_in(r.kind),
        ))
    }

    /// Open sessions, for the stage to resume.
    pub fn open_sessions(&self) -> Result<Vec<Session>, StoreError> {
        let mut out = Vec::new();
        for r in self.records() {
            if !r.closed {
                out.push(self.load_session(&r)?);
            }
        }
        Ok(out)
    }
}
