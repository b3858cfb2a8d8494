//! Window assembly: which events belong together. Pure and in memory; the stage around it
//! handles persistence and evaluation.
//!
//! Each event spans `[time, time + w]`, where `w` is the rolling window (60 min) or, for a
//! credential/permission/role grant, the grant window (24 h). A trajectory is a connected
//! run of overlapping spans for one key, so the result does not depend on arrival order:
//! a late event lands in its place, and one that bridges two trajectories merges them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::model::{event_digest, trajectory_hash, Trajectory, TrajectoryKind};
use crate::event::Event;

const MINUTE: i64 = 60_000_000_000;

/// How windows are cut.
#[derive(Debug, Clone)]
pub struct WindowRules {
    pub window: i64,
    pub grant_window: i64,
    pub max_events: usize,
    /// Action patterns (`*` matches any text) that count as grants.
    pub grant_actions: Vec<String>,
    /// The drift views: each change spans this long, and only these actions enter.
    pub drift_window: i64,
    pub drift_max_events: usize,
    pub drift_actions: Vec<String>,
}

impl WindowRules {
    pub fn from_config(c: &crate::config::TrajectoryConfig) -> Self {
        WindowRules {
            window: c.window_minutes as i64 * MINUTE,
            grant_window: c.grant_window_hours as i64 * 60 * MINUTE,
            max_events: c.max_events,
            grant_actions: c.grant_actions.clone(),
            drift_window: c.drift_window_days as i64 * 24 * 60 * MINUTE,
            drift_max_events: c.drift_max_events,
            drift_actions: c.drift_actions.clone(),
        }
    }

    /// Whether an event belongs in the drift views.
    pub fn is_drift(&self, action: &str) -> bool {
        self.drift_window > 0 && self.drift_actions.iter().any(|p| glob(p, action))
    }

    fn span_in(&self, kind: TrajectoryKind, e: &Event) -> i64 {
        if kind.is_drift() {
            self.drift_window
        } else {
            self.span(e)
        }
    }

    pub fn max_in(&self, kind: TrajectoryKind) -> usize {
        if kind.is_drift() {
            self.drift_max_events
        } else {
            self.max_events
        }
    }

    pub fn is_grant(&self, action: &str) -> bool {
        self.grant_actions.iter().any(|p| glob(p, action))
    }

    fn span(&self, e: &Event) -> i64 {
        if self.is_grant(&e.action) {
            self.grant_window.max(self.window)
        } else {
            self.window
        }
    }
}

/// `*` matches any run of characters.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// One member event of a session.
#[derive(Debug, Clone)]
pub struct Entry {
    pub time: i64,
    pub event: Arc<Event>,
    pub digest: [u8; 32],
}

/// An open trajectory being assembled.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub kind: TrajectoryKind,
    pub key: String,
    /// Earliest event time ever seen (dropped events included): where the window begins.
    pub first_time: i64,
    pub closes_at: i64,
    /// Kept events ordered by (time, id). A deque: the common case appends at the back
    /// and, at the bound, drops at the front, both O(1).
    pub entries: VecDeque<Entry>,
    pub dropped: u64,
    pub last_evaluated_hash: Option<String>,
    /// When the oldest change not yet evaluated happened (for event-to-alert latency).
    pub dirty_since: Option<Instant>,
    /// Changed since the last checkpoint.
    pub unsaved: bool,
    /// Bumped on every change (cheaper to compare than the hash).
    pub version: u64,
    /// The content hash, computed once per change (it is asked for on every evaluation,
    /// checkpoint and listing; recomputing it over 1,000 events each time dominated CPU).
    hash_cache: std::sync::OnceLock<String>,
}

impl Session {
    fn new(kind: TrajectoryKind, key: &str, t: i64) -> Session {
        let digest = Sha256::digest(format!("{}\0{key}\0{t}", kind.as_str()));
        Session {
            id: format!("trj-{}", &hex::encode(digest)[..24]),
            kind,
            key: key.to_string(),
            first_time: t,
            closes_at: t,
            entries: VecDeque::new(),
            dropped: 0,
            last_evaluated_hash: None,
            dirty_since: None,
            unsaved: true,
            version: 0,
            hash_cache: std::sync::OnceLock::new(),
        }
    }

    /// Rebuilds a session from its saved header and its events as read back from the store.
    #[allow(clippy::too_many_arguments)]
    pub fn restored(
        id: String,
        kind: TrajectoryKind,
        key: String,
        first_time: i64,
        closes_at: i64,
        dropped: u64,
        last_evaluated_hash: Option<String>,
        mut entries: Vec<Entry>,
        max: usize,
    ) -> Session {
        entries.sort_by(|a, b| (a.time, a.event.id.as_str()).cmp(&(b.time, b.event.id.as_str())));
        entries.dedup_by(|a, b| a.event.id == b.event.id);
        let over = entries.len().saturating_sub(max);
        entries.drain(..over);
        let entries = VecDeque::from(entries);
        Session {
            id,
            kind,
            key,
            first_time,
            closes_at,
            entries,
            dropped: dropped.max(over as u64),
            last_evaluated_hash,
            dirty_since: None,
            unsaved: false,
            version: 0,
            hash_cache: std::sync::OnceLock::new(),
        }
    }

    fn overlaps(&self, t: i64, end: i64) -> bool {
        t <= self.closes_at && end >= self.first_time
    }

    fn position(&self, time: i64, id: &str) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|e| (e.time, e.event.id.as_str()).cmp(&(time, id)))
    }

    pub fn contains(&self, time: i64, id: &str) -> bool {
        self.position(time, id).is_ok()
    }

    /// Adds an event in its place; beyond the bound the oldest is dropped. Returns false if
    /// the event was already there.
    fn insert(&mut self, entry: Entry, span: i64, max: usize) -> bool {
        let Err(pos) = self.position(entry.time, &entry.event.id) else {
            return false;
        };
        self.first_time = self.first_time.min(entry.time);
        self.closes_at = self.closes_at.max(entry.time + span);
        self.entries.insert(pos, entry);
        while self.entries.len() > max {
            self.entries.pop_front();
            self.dropped += 1;
        }
        self.touch();
        true
    }

    fn touch(&mut self) {
        self.unsaved = true;
        self.version += 1;
        self.hash_cache = std::sync::OnceLock::new();
        self.dirty_since.get_or_insert_with(Instant::now);
    }

    pub fn hash(&self) -> String {
        trajectory_hash(
            self.entries
                .iter()
                .map(|e| (e.event.id.as_str(), &e.digest)),
        )
    }

    /// The hash if it is already known (no work under a lock).
    pub fn cached_hash(&self) -> Option<&String> {
        self.hash_cache.get()
    }

    /// Stores a hash computed outside the lock, if nothing changed meanwhile.
    pub fn offer_hash(&self, version: u64, hash: &str) {
        if self.version == version {
            let _ = self.hash_cache.set(hash.to_string());
        }
    }

    /// The view without its hash, cheap enough to take under the book's lock; see
    /// [`finish_snapshot`].
    pub fn unhashed_snapshot(&self) -> (Trajectory, Vec<[u8; 32]>) {
        let mut t = Trajectory {
            id: self.id.clone(),
            kind: self.kind,
            key: self.key.clone(),
            start: self.entries.front().map_or(self.first_time, |e| e.time),
            end: self.entries.back().map_or(self.first_time, |e| e.time),
            closes_at: self.closes_at,
            dropped: self.dropped,
            hash: String::new(),
            events: self.entries.iter().map(|e| e.event.clone()).collect(),
        };
        let digests = match self.cached_hash() {
            Some(h) => {
                t.hash = h.clone();
                Vec::new()
            }
            None => self.entries.iter().map(|e| e.digest).collect(),
        };
        (t, digests)
    }

    /// The view detectors and the API see.
    pub fn snapshot(&self) -> Trajectory {
        Trajectory {
            id: self.id.clone(),
            kind: self.kind,
            key: self.key.clone(),
            start: self.entries.front().map_or(self.first_time, |e| e.time),
            end: self.entries.back().map_or(self.first_time, |e| e.time),
            closes_at: self.closes_at,
            dropped: self.dropped,
            hash: self.hash(),
            events: self.entries.iter().map(|e| e.event.clone()).collect(),
        }
    }
}

/// Completes a snapshot taken by [`Session::unhashed_snapshot`].
pub fn finish_snapshot(t: &mut Trajectory, digests: &[[u8; 32]]) {
    if t.hash.is_empty() {
        t.hash = trajectory_hash(
            t.events
                .iter()
                .zip(digests)
                .map(|(e, d)| (e.id.as_str(), d)),
        );
    }
}

/// What applying events changed.
#[derive(Debug, Default)]
pub struct Changes {
    /// Sessions that gained events.
    pub changed: Vec<String>,
    /// Sessions absorbed into another by a bridging late event.
    pub merged_away: Vec<String>,
    seen: std::collections::HashSet<String>,
}

/// All open sessions, by kind and key.
#[derive(Debug, Default)]
pub struct Book {
    pub rules: Option<WindowRules>,
    sessions: HashMap<(TrajectoryKind, String), Vec<Session>>,
    /// Session id → where it lives in `sessions`.
    index: HashMap<String, (TrajectoryKind, String)>,
    /// Highest event time seen: drives closing.
    pub watermark: i64,
}

impl Book {
    pub fn new(rules: WindowRules) -> Book {
        Book {
            rules: Some(rules),
            sessions: HashMap::new(),
            index: HashMap::new(),
            watermark: i64::MIN,
        }
    }

    fn rules(&self) -> &WindowRules {
        self.rules.as_ref().expect("book has rules")
    }

    /// Puts back a session loaded from disk.
    pub fn restore(&mut self, s: Session) {
        if let Some(last) = s.entries.back() {
            self.watermark = self.watermark.max(last.time);
        }
        self.index.insert(s.id.clone(), (s.kind, s.key.clone()));
        self.sessions
            .entry((s.kind, s.key.clone()))
            .or_default()
            .push(s);
    }

    pub fn get(&self, id: &str) -> Option<&Session> {
        let at = self.index.get(id)?;
        self.sessions.get(at)?.iter().find(|s| s.id == id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Session> {
        let at = self.index.get(id)?;
        self.sessions.get_mut(at)?.iter_mut().find(|s| s.id == id)
    }

    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values().flatten()
    }

    pub fn sessions_mut(&mut self) -> impl Iterator<Item = &mut Session> {
        self.sessions.values_mut().flatten()
    }

    /// Adds one event to its actor and system trajectories.
    pub fn apply(&mut self, event: Arc<Event>, changes: &mut Changes) {
        let digest = event_digest(&event);
        self.apply_digested(event, digest, changes);
    }

    /// As [`Book::apply`], with the event's digest already known.
    pub fn apply_digested(&mut self, event: Arc<Event>, digest: [u8; 32], changes: &mut Changes) {
        let time = event.time_nanos();
        self.watermark = self.watermark.max(time);
        let drift = self.rules().is_drift(&event.action);
        let kinds: &[TrajectoryKind] = if drift {
            &[
                TrajectoryKind::Actor,
                TrajectoryKind::System,
                TrajectoryKind::ActorDrift,
                TrajectoryKind::SystemDrift,
            ]
        } else {
            &[TrajectoryKind::Actor, TrajectoryKind::System]
        };
        for &kind in kinds {
            let entry = Entry {
                time,
                event: event.clone(),
                digest,
            };
            self.apply_to(kind, entry, changes);
        }
    }

    fn apply_to(&mut self, kind: TrajectoryKind, entry: Entry, changes: &mut Changes) {
        let span = self.rules().span_in(kind, &entry.event);
        let max = self.rules().max_in(kind);
        let key = kind.key_of(&entry.event).to_string();
        let list = self.sessions.entry((kind, key.clone())).or_default();
        let end = entry.time + span;
        let hits: Vec<usize> = (0..list.len())
            .filter(|&i| list[i].overlaps(entry.time, end))
            .collect();
        let merged_before = changes.merged_away.len();
        let target = match hits.as_slice() {
            [] => {
                let s = Session::new(kind, &key, entry.time);
                self.index.insert(s.id.clone(), (kind, key.clone()));
                list.push(s);
                list.len() - 1
            }
            [one] => *one,
            many => merge(list, many, max, changes),
        };
        let s = &mut list[target];
        if s.insert(entry, span, max) && changes.seen.insert(s.id.clone()) {
            changes.changed.push(s.id.clone());
        }
        for gone in &changes.merged_away[merged_before..] {
            self.index.remove(gone);
        }
    }

    /// Removes and returns sessions whose window closed before the watermark by more than
    /// `lateness` (events that late start a new trajectory).
    pub fn close_expired(&mut self, lateness: i64) -> Vec<Session> {
        let cutoff = self.watermark.saturating_sub(lateness);
        let mut closed = Vec::new();
        for list in self.sessions.values_mut() {
            let mut i = 0;
            while i < list.len() {
                if list[i].closes_at < cutoff && list[i].dirty_since.is_none() {
                    closed.push(list.swap_remove(i));
                } else {
                    i += 1;
                }
            }
        }
        self.sessions.retain(|_, l| !l.is_empty());
        for s in &closed {
            self.index.remove(&s.id);
        }
        closed
    }
}

/// Merges the sessions at `idx` into the one that began first; returns its index.
fn merge(list: &mut Vec<Session>, idx: &[usize], max: usize, changes: &mut Changes) -> usize {
    let keep = *idx
        .iter()
        .min_by_key(|&&i| (list[i].first_time, list[i].id.clone()))
        .expect("non-empty");
    let mut others: Vec<Session> = Vec::new();
    let mut sorted: Vec<usize> = idx.iter().copied().filter(|&i| i != keep).collect();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let mut keep_idx = keep;
    for i in sorted {
        others.push(list.remove(i));
        if i < keep_idx {
            keep_idx -= 1;
        }
    }
    let s = &mut list[keep_idx];
    for o in others {
        changes.merged_away.push(o.id.clone());
        changes.changed.retain(|c| c != &o.id);
        changes.seen.remove(&o.id);
        s.first_time = s.first_time.min(o.first_time);
        s.closes_at = s.closes_at.max(o.closes_at);
        s.dropped += o.dropped;
        s.entries.extend(o.entries);
    }
    let mut all: Vec<Entry> = std::mem::take(&mut s.entries).into();
    all.sort_by(|a, b| (a.time, a.event.id.as_str()).cmp(&(b.time, b.event.id.as_str())));
    all.dedup_by(|a, b| a.event.id == b.event.id && a.time == b.time);
    let over = all.len().saturating_sub(max);
    all.drain(..over);
    s.dropped += over as u64;
    s.entries = all.into();
    s.touch();
    keep_idx
}
