//! Window assembly: which events belong together. Pure and in memory; the stage around it
//! handles persistence and evaluation.
//!
//! Each event spans `[time, time + w]`, where `w` is the rolling window (60 min) or, for a
//! credential/permission/role grant, the grant window (24 h). A trajectory is a connected
//! run of overlapping spans for one key, so the result does not depend on arrival order:
//! a late event lands in its place, and one that bridges two trajectories merges them.
//!
//! A trajectory's id is a function of its kind, key and earliest event (its *origin*), so
//! it too does not depend on arrival order. An event earlier than the origin, or a merge,
//! therefore renames the trajectory; [`Changes::renamed`] says so, and the stage moves the
//! alert and leaves an alias behind.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::model::{
    event_digest, trajectory_hash, ChunkMemo, Events, Side, Trajectory, TrajectoryKind,
};
use plumbline_contract::glob::matches;
use plumbline_event::Event;

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
    pub fn from_config(c: &crate::TrajectoryConfig) -> Self {
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
        self.drift_window > 0 && self.drift_actions.iter().any(|p| matches(p, action))
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
        self.grant_actions.iter().any(|p| matches(p, action))
    }

    fn span(&self, e: &Event) -> i64 {
        if self.is_grant(&e.action) {
            self.grant_window.max(self.window)
        } else {
            self.window
        }
    }
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
    /// Id of the event at `first_time` (the least id at that time): with it, the origin the
    /// trajectory id derives from.
    pub origin_id: String,
    pub closes_at: i64,
    /// Kept events ordered by (time, id). A deque: the common case appends at the back
    /// and, at the bound, drops at the front, both O(1).
    pub entries: VecDeque<Entry>,
    /// The same events as `entries`, as the list snapshots share (see [`Events`]): kept
    /// beside them so taking a snapshot copies nothing.
    view: Events,
    pub dropped: u64,
    pub last_evaluated_hash: Option<String>,
    /// When the oldest change not yet evaluated happened (for event-to-alert latency).
    pub dirty_since: Option<Instant>,
    /// The version an evaluation took a snapshot of, and when the first change after that
    /// snapshot happened: what is still unevaluated once that evaluation is recorded.
    judging: Option<(u64, Option<Instant>)>,
    /// Changed since the last checkpoint.
    pub unsaved: bool,
    /// Bumped on every change (cheaper to compare than the hash).
    pub version: u64,
    /// The content hash, computed once per change (it is asked for on every evaluation,
    /// checkpoint and listing; recomputing it over 1,000 events each time dominated CPU).
    hash_cache: std::sync::OnceLock<String>,
    /// The chunks' hashes from the last computation: a change rehashes only its chunk.
    chunks: Memo,
}

/// A [`ChunkMemo`] asked for through `&Session`. Sessions are read and changed under the
/// book's lock, so this lock is never contended.
#[derive(Debug, Default)]
struct Memo(std::sync::Mutex<ChunkMemo>);

impl Clone for Memo {
    fn clone(&self) -> Memo {
        Memo(std::sync::Mutex::new(self.0.lock().expect("memo").clone()))
    }
}

/// The id of the trajectory of `kind` and `key` whose earliest event is `origin_id` at
/// `time`. Two open windows of one key never share an origin, and a window opened by an
/// event too late for a closed one cannot either (the store keeps one event per id).
pub fn trajectory_id(kind: TrajectoryKind, key: &str, time: i64, origin_id: &str) -> String {
    let digest = Sha256::digest(format!("{}\0{key}\0{time}\0{origin_id}", kind.as_str()));
    format!("trj-{}", &hex::encode(digest)[..24])
}

impl Session {
    fn new(kind: TrajectoryKind, key: &str, t: i64, origin_id: &str) -> Session {
        Session {
            id: trajectory_id(kind, key, t, origin_id),
            kind,
            key: key.to_string(),
            first_time: t,
            origin_id: origin_id.to_string(),
            closes_at: t,
            entries: VecDeque::new(),
            view: Events::default(),
            dropped: 0,
            last_evaluated_hash: None,
            dirty_since: None,
            judging: None,
            unsaved: true,
            version: 0,
            hash_cache: std::sync::OnceLock::new(),
            chunks: Memo::default(),
        }
    }

    /// Rebuilds a session from its saved header and its events as read back from the store.
    /// A header saved before origins were recorded has none: the earliest kept event stands
    /// in (the saved id is kept either way).
    #[allow(clippy::too_many_arguments)]
    pub fn restored(
        id: String,
        kind: TrajectoryKind,
        key: String,
        first_time: i64,
        origin_id: Option<String>,
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
        let origin_id = origin_id.unwrap_or_else(|| {
            entries
                .first()
                .filter(|e| e.time == first_time)
                .map(|e| e.event.id.clone())
                .unwrap_or_default()
        });
        let view = entries.iter().map(|e| e.event.clone()).collect();
        let entries = VecDeque::from(entries);
        Session {
            id,
            kind,
            key,
            first_time,
            origin_id,
            closes_at,
            entries,
            view,
            dropped: dropped.max(over as u64),
            last_evaluated_hash,
            dirty_since: None,
            judging: None,
            unsaved: false,
            version: 0,
            hash_cache: std::sync::OnceLock::new(),
            chunks: Memo::default(),
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
        self.take_origin(entry.time, &entry.event.id);
        self.closes_at = self.closes_at.max(entry.time + span);
        let view = self.view.make_mut();
        view.insert(pos, entry.event.clone());
        self.entries.insert(pos, entry);
        let over = self.entries.len().saturating_sub(max);
        if over > 0 {
            self.entries.drain(..over);
            view.drain(..over);
            self.dropped += over as u64;
        }
        self.touch();
        true
    }

    /// Makes (`time`, `id`) the origin if it comes first.
    fn take_origin(&mut self, time: i64, id: &str) {
        if (time, id) < (self.first_time, self.origin_id.as_str()) {
            self.first_time = time;
            self.origin_id = id.to_string();
        }
    }

    /// Re-derives the id from the origin; returns the old id if it changed.
    fn refresh_id(&mut self) -> Option<String> {
        let id = trajectory_id(self.kind, &self.key, self.first_time, &self.origin_id);
        (id != self.id).then(|| std::mem::replace(&mut self.id, id))
    }

    fn touch(&mut self) {
        self.unsaved = true;
        self.version += 1;
        self.hash_cache = std::sync::OnceLock::new();
        let now = Instant::now();
        self.dirty_since.get_or_insert(now);
        if let Some((_, after)) = &mut self.judging {
            after.get_or_insert(now);
        }
    }

    /// An evaluation takes a snapshot of this version.
    pub fn judging(&mut self) -> u64 {
        self.judging = Some((self.version, None));
        self.version
    }

    /// The evaluation of `version` is recorded: returns when the change it judged first
    /// waited from (none if nothing was waiting). Changes that arrived after its snapshot
    /// are what is waiting now, since the first of them: a trajectory that changes during
    /// every evaluation does not count its wait from a change already judged.
    pub fn judged(&mut self, version: u64) -> Option<Instant> {
        if self.version == version {
            self.judging = None;
            return self.dirty_since.take();
        }
        match self.judging {
            Some((v, after)) if v == version => {
                self.judging = None;
                let since = self.dirty_since.take();
                self.dirty_since = after.or(since);
                since
            }
            // Another evaluation took a later snapshot meanwhile: it will say.
            _ => None,
        }
    }

    /// The content hash ([`trajectory_hash`]), once per change, rehashing only the chunks
    /// that changed.
    pub fn hash(&self) -> String {
        self.hash_cache
            .get_or_init(|| {
                let parts = self
                    .entries
                    .iter()
                    .map(|e| (e.event.id.as_str(), &e.digest));
                self.chunks.0.lock().expect("memo").hash(parts)
            })
            .clone()
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
            events: self.view.clone(),
        }
    }
}

/// What applying events changed.
#[derive(Debug, Default)]
pub struct Changes {
    /// Sessions that gained events (by their current ids).
    pub changed: Vec<String>,
    /// Ids that no longer exist, each with the id that took its place, in the order it
    /// happened: an earlier event moved a session's origin, or a bridging late event merged
    /// sessions into the one that began first.
    pub renamed: Vec<(String, String)>,
    seen: std::collections::HashSet<String>,
}

impl Changes {
    fn mark_changed(&mut self, id: &str) {
        if self.seen.insert(id.to_string()) {
            self.changed.push(id.to_string());
        }
    }

    fn rename(&mut self, old: &str, new: &str) {
        self.renamed.push((old.to_string(), new.to_string()));
        if self.seen.remove(old) {
            self.changed.retain(|c| c != old);
            self.mark_changed(new);
        }
    }

    /// Where `id` ended up after every rename so far.
    pub fn current_id<'a>(&'a self, mut id: &'a str) -> &'a str {
        for (old, new) in &self.renamed {
            if old == id {
                id = new;
            }
        }
        id
    }
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

    /// Moves the watermark to `time`, but never further than one window past the wall
    /// clock: ingest refuses events from the future, and one in a store written before it
    /// did must not close every real trajectory after its first evaluation.
    fn advance(&mut self, t: i64) {
        let ceiling = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64)
            .saturating_add(self.rules.as_ref().map_or(0, |r| r.window));
        self.watermark = self.watermark.max(t.min(ceiling));
    }

    /// Puts back a session loaded from disk.
    pub fn restore(&mut self, s: Session) {
        if let Some(last) = s.entries.back() {
            self.advance(last.time);
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
        self.apply_side(event, digest, None, changes)
    }

    /// As [`Book::apply_digested`], to one side's trajectories only (none: both sides).
    pub fn apply_side(
        &mut self,
        event: Arc<Event>,
        digest: [u8; 32],
        side: Option<Side>,
        changes: &mut Changes,
    ) {
        let time = event.time_nanos();
        self.advance(time);
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
            if side.is_some_and(|side| kind.side() != side) {
                continue;
            }
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
        let renamed_before = changes.renamed.len();
        let target = match hits.as_slice() {
            [] => {
                let s = Session::new(kind, &key, entry.time, &entry.event.id);
                self.index.insert(s.id.clone(), (kind, key.clone()));
                list.push(s);
                list.len() - 1
            }
            [one] => *one,
            many => merge(list, many, max, changes),
        };
        let s = &mut list[target];
        if s.insert(entry, span, max) {
            if let Some(old) = s.refresh_id() {
                changes.rename(&old, &s.id);
            }
            changes.mark_changed(&s.id);
        }
        for (old, new) in &changes.renamed[renamed_before..] {
            self.index.remove(old);
            self.index.insert(new.clone(), (kind, key.clone()));
        }
    }

    /// The trajectory of `kind` that `event` would join, with it in its place — the book
    /// unchanged. A pending call (an agent's pre-tool hook) is judged on this before it
    /// happens; the event may already be there (it was stored first), then it is not
    /// added twice. Where the event would bridge several windows, the earliest stands in.
    pub fn preview(&self, kind: TrajectoryKind, event: &Arc<Event>) -> Trajectory {
        let time = event.time_nanos();
        let span = self.rules().span_in(kind, event);
        let max = self.rules().max_in(kind);
        let key = kind.key_of(event);
        let open = self
            .sessions
            .get(&(kind, key.to_string()))
            .and_then(|list| {
                list.iter()
                    .filter(|s| s.overlaps(time, time + span))
                    .min_by(|a, b| (a.first_time, &a.origin_id).cmp(&(b.first_time, &b.origin_id)))
            });
        let mut entries: Vec<(Arc<Event>, [u8; 32])> = Vec::new();
        let (mut first_time, mut origin, mut closes_at, mut dropped) =
            (time, event.id.clone(), time + span, 0);
        if let Some(s) = open {
            entries.extend(s.entries.iter().map(|e| (e.event.clone(), e.digest)));
            (first_time, origin) = (s.first_time, s.origin_id.clone());
            closes_at = s.closes_at.max(time + span);
            dropped = s.dropped;
        }
        if let Err(pos) = entries.binary_search_by(|(e, _)| {
            (e.time_nanos(), e.id.as_str()).cmp(&(time, event.id.as_str()))
        }) {
            entries.insert(pos, (event.clone(), event_digest(event)));
            if (time, event.id.as_str()) < (first_time, origin.as_str()) {
                (first_time, origin) = (time, event.id.clone());
            }
        }
        let over = entries.len().saturating_sub(max);
        entries.drain(..over);
        Trajectory {
            id: trajectory_id(kind, key, first_time, &origin),
            kind,
            key: key.to_string(),
            start: entries.first().map_or(time, |(e, _)| e.time_nanos()),
            end: entries.last().map_or(time, |(e, _)| e.time_nanos()),
            closes_at,
            dropped: dropped + over as u64,
            hash: trajectory_hash(entries.iter().map(|(e, d)| (e.id.as_str(), d))),
            events: entries.into_iter().map(|(e, _)| e).collect(),
        }
    }

    /// Removes and returns sessions whose window closed before the watermark by more than
    /// `lateness` (events that late start a new trajectory).
    /// Takes out the sessions `keep` refuses (a cluster node gave up their partition):
    /// not closed, only no longer this book's.
    pub fn release(&mut self, keep: impl Fn(TrajectoryKind, &str) -> bool) -> Vec<Session> {
        let mut out = Vec::new();
        self.sessions.retain(|(kind, key), list| {
            if keep(*kind, key) {
                return true;
            }
            out.append(list);
            false
        });
        for s in &out {
            self.index.remove(&s.id);
        }
        out
    }

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
        .min_by(|&&a, &&b| {
            (list[a].first_time, &list[a].origin_id).cmp(&(list[b].first_time, &list[b].origin_id))
        })
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
        changes.rename(&o.id, &s.id);
        s.take_origin(o.first_time, &o.origin_id);
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
    s.view = all.iter().map(|e| e.event.clone()).collect();
    s.entries = all.into();
    s.touch();
    keep_idx
}
