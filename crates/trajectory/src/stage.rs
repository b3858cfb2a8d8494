//! The running trajectory stage: applies each durable batch to the open windows,
//! checkpoints them, and evaluates changed trajectories (coalesced) on worker threads.
//!
//! ```text
//! CommittedBatch ─► builder thread ─► (id, due) ─► scheduler ─► workers ─► Evaluator ─► AlertBook
//!                    └ checkpoint every second (records, then the batch seq)
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::evaluate::{Evaluator, Outcomes};
use super::model::{Side, Trajectory, TrajectoryKind};
use super::persist::{TrajectoryRecord, TrajectoryStore};
use super::window::{Book, Changes, WindowRules};
use crate::TrajectoryConfig;
use plumbline_metrics::{Histogram, LATENCY_BOUNDS};
use plumbline_store::{CommitListener, CommittedBatch, Store, StoreError};

/// Counters of the stage (for `/metrics` and coverage).
#[derive(Debug)]
pub struct StageStats {
    /// Events stored but not yet applied to trajectories (the builder's queue).
    pub queued_events: AtomicU64,
    /// Trajectory changes handed to the evaluators and not yet picked up.
    pub queued_evaluations: AtomicU64,
    pub batches: AtomicU64,
    pub events: AtomicU64,
    pub evaluations: AtomicU64,
    pub skipped_unchanged: AtomicU64,
    /// From the first unevaluated change of a trajectory to its evaluation being recorded.
    pub event_to_alert: Histogram,
    /// When each batch still waiting for the builder was handed over, oldest first.
    waiting_since: Mutex<std::collections::VecDeque<Instant>>,
    /// The last evaluation lag computed, and when (see [`TrajectoryStage::lag`]).
    lag_cache: Mutex<Option<(Instant, Duration)>>,
}

impl Default for StageStats {
    fn default() -> Self {
        StageStats {
            queued_events: AtomicU64::new(0),
            queued_evaluations: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            events: AtomicU64::new(0),
            evaluations: AtomicU64::new(0),
            skipped_unchanged: AtomicU64::new(0),
            event_to_alert: Histogram::new(LATENCY_BOUNDS),
            waiting_since: Mutex::default(),
            lag_cache: Mutex::default(),
        }
    }
}

pub struct TrajectoryStage {
    book: Arc<Mutex<Book>>,
    persist: TrajectoryStore,
    tx: Mutex<Option<mpsc::Sender<Input>>>,
    builder: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Highest batch seq applied to the book.
    applied: Arc<AtomicU64>,
    /// The store whose batches feed the book (none on a cluster node: owners apply the
    /// cluster's log, and the local store's batch numbers say nothing of it).
    fed_by: Option<Store>,
    /// Where settle re-evaluations are scheduled (dropped on shutdown).
    settle: Mutex<Option<mpsc::Sender<Due>>>,
    settle_after: Vec<Duration>,
    /// Set by [`TrajectoryStage::shutdown`]: the builder and the evaluators stop at their
    /// next step instead of working through their queues.
    stopping: AtomicBool,
    /// Used by [`TrajectoryStage::evaluate_now`] (the workers hold their own).
    evaluator: Arc<dyn Evaluator>,
    outcomes: Arc<dyn Outcomes>,
    pub stats: Arc<StageStats>,
}

/// Which open trajectories (by kind and key) a node keeps.
type Keep = Box<dyn Fn(TrajectoryKind, &str) -> bool + Send>;

/// What the builder thread applies.
enum Input {
    /// A durable batch of the local store (one node).
    Batch(CommittedBatch),
    /// Events of partitions this node owns in a cluster, each to one side. The owner
    /// evaluates what changed itself (`judged` false) or, when rebuilding a partition from
    /// its log up to its checkpoint, takes the changes as already judged (`judged` true).
    Owned {
        events: Vec<(Arc<plumbline_event::Event>, Side)>,
        judged: bool,
        reply: mpsc::Sender<Vec<String>>,
    },
    /// Drop the open trajectories `keep` refuses (their partition moved to another node).
    Release {
        keep: Keep,
        reply: mpsc::Sender<usize>,
    },
}

struct Listener(Arc<TrajectoryStage>);

impl CommitListener for Listener {
    fn committed(&self, batch: CommittedBatch) {
        if let Some(tx) = self.0.tx.lock().expect("stage sender").as_ref() {
            let n = batch.events.len() as u64;
            self.0.stats.queued_events.fetch_add(n, Ordering::Relaxed);
            let mut waiting = self.0.stats.waiting_since.lock().expect("waiting");
            if tx.send(Input::Batch(batch)).is_err() {
                self.0.stats.queued_events.fetch_sub(n, Ordering::Relaxed);
            } else {
                waiting.push_back(Instant::now());
            }
        }
    }
}

impl TrajectoryStage {
    /// Loads open trajectories, re-applies batches stored after the checkpoint, and starts
    /// the threads. Call before the store's writer starts, then hand it [`Self::listener`].
    pub fn start(
        store: Store,
        config: &TrajectoryConfig,
        evaluator: Arc<dyn Evaluator>,
        alerts: Arc<dyn Outcomes>,
    ) -> Result<Arc<TrajectoryStage>, StoreError> {
        Self::start_with(store, config, evaluator, alerts, true)
    }

    /// On a cluster node, open trajectories are rebuilt from the cluster's log for the
    /// partitions the node owns now ([`Self::apply_owned`]), never resumed from the local
    /// store: what was open here before may belong to another node since.
    pub fn start_partitioned(
        store: Store,
        config: &TrajectoryConfig,
        evaluator: Arc<dyn Evaluator>,
        alerts: Arc<dyn Outcomes>,
    ) -> Result<Arc<TrajectoryStage>, StoreError> {
        Self::start_with(store, config, evaluator, alerts, false)
    }

    fn start_with(
        store: Store,
        config: &TrajectoryConfig,
        evaluator: Arc<dyn Evaluator>,
        alerts: Arc<dyn Outcomes>,
        resume_local: bool,
    ) -> Result<Arc<TrajectoryStage>, StoreError> {
        let rules = WindowRules::from_config(config);
        let lateness = rules.window;
        let persist = TrajectoryStore::open(&store, rules.clone())?;
        let mut book = Book::new(rules);
        let mut resume: Vec<String> = Vec::new();
        let mut stale: Vec<String> = Vec::new();
        for s in persist.open_sessions()? {
            if !resume_local {
                stale.push(s.id.clone());
                continue;
            }
            if s.last_evaluated_hash.as_deref() != Some(&s.hash()) {
                resume.push(s.id.clone());
            }
            // Incremental detectors resume from their saved state instead of replaying.
            if let Some(saved) = persist.evaluator_state(&s.id)? {
                evaluator.restore(&s.id, &saved);
            }
            book.restore(s);
        }
        let book = Arc::new(Mutex::new(book));
        let (tx, rx) = mpsc::channel();
        let (due_tx, due_rx) = mpsc::channel::<Due>();
        if !stale.is_empty() {
            for id in &stale {
                persist.put_evaluator_state(id, None)?;
            }
            persist.save(&[], &stale, persist.checkpoint()?)?;
        }
        let checkpoint = if resume_local {
            persist.checkpoint()?
        } else {
            store.last_seq()?
        };
        let stage = Arc::new(TrajectoryStage {
            book: book.clone(),
            persist: persist.clone(),
            tx: Mutex::new(Some(tx)),
            builder: Mutex::new(None),
            applied: Arc::new(AtomicU64::new(checkpoint)),
            fed_by: resume_local.then(|| store.clone()),
            stats: Arc::default(),
            settle: Mutex::new(Some(due_tx.clone())),
            settle_after: config
                .settle_secs
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            stopping: AtomicBool::new(false),
            evaluator: evaluator.clone(),
            outcomes: alerts.clone(),
        });
        // Catch up on batches stored after the last checkpoint (crash or restart).
        let mut builder = Builder {
            stage: stage.clone(),
            store: store.clone(),
            alerts: alerts.clone(),
            evaluator: evaluator.clone(),
            due: due_tx,
            pending_closed: Vec::new(),
            removed: Vec::new(),
            lateness,
            last_checkpoint: Instant::now(),
        };
        let seqs: Vec<u64> = store.batch_seqs_after(checkpoint).collect();
        for seq in seqs {
            let events = store.batch_events(seq)?;
            builder.apply(seq, events.into_iter().map(Arc::new).collect());
        }
        builder.checkpoint()?;
        for id in resume {
            let _ = builder.due.send(Due::Changed(id));
        }
        let delay = Duration::from_millis(config.eval_delay_ms);
        let waiting = Waiting::default();
        let (work_tx, work_rx) = mpsc::channel::<Work>();
        let work_rx = Arc::new(Mutex::new(work_rx));
        let handle = std::thread::Builder::new()
            .name("trajectory-builder".into())
            .spawn(move || builder.run(rx))
            .map_err(StoreError::Io)?;
        *stage.builder.lock().expect("builder handle") = Some(handle);
        let (queued, scheduled) = (stage.clone(), waiting.clone());
        std::thread::Builder::new()
            .name("evaluation-scheduler".into())
            .spawn(move || {
                schedule(
                    due_rx,
                    work_tx,
                    delay,
                    &scheduled,
                    &queued.stats.queued_evaluations,
                )
            })
            .map_err(StoreError::Io)?;
        for i in 0..config.eval_workers.max(1) {
            let (stage, evaluator, alerts, work_rx, waiting) = (
                stage.clone(),
                evaluator.clone(),
                alerts.clone(),
                work_rx.clone(),
                waiting.clone(),
            );
            std::thread::Builder::new()
                .name(format!("evaluator-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let next = work_rx.lock().expect("work queue").recv();
                        let Ok(w) = next else { return };
                        if stage.stopping.load(Ordering::Relaxed) {
                            return;
                        }
                        stage
                            .stats
                            .queued_evaluations
                            .fetch_sub(1, Ordering::Relaxed);
                        if !w.settle {
                            // From here a change is a new one, queued again.
                            waiting.lock().expect("waiting set").remove(&w.id);
                        }
                        stage.evaluate(&w.id, w.settle, evaluator.as_ref(), alerts.as_ref());
                    }
                })
                .map_err(StoreError::Io)?;
        }
        Ok(stage)
    }

    /// Stops taking batches, writes a final checkpoint and lets the threads end.
    ///
    /// Work still queued is left, not done: its batches are durable and come after the
    /// checkpoint, so the next start re-applies them, and a trajectory changed but not yet
    /// judged is judged then (its hash is not the last evaluated one). Working through a
    /// queue of 150,000 events first made a stop after heavy load take 7.6 s.
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.tx.lock().expect("stage sender").take();
        self.settle.lock().expect("settle sender").take();
        if let Some(h) = self.builder.lock().expect("builder handle").take() {
            let _ = h.join();
        }
    }

    pub fn listener(self: &Arc<Self>) -> Arc<dyn CommitListener> {
        Arc::new(Listener(self.clone()))
    }

    /// Applies events of partitions this node owns, each to its side only, and returns the
    /// trajectories that changed (current ids). With `judged`, the changes count as
    /// evaluated already (a partition rebuilt from its log up to its checkpoint: the
    /// previous owner judged them); otherwise the caller evaluates them
    /// ([`Self::evaluate_now`]) — nothing here queues them. Blocks until applied.
    pub fn apply_owned(
        &self,
        events: Vec<(Arc<plumbline_event::Event>, Side)>,
        judged: bool,
    ) -> Result<Vec<String>, StoreError> {
        let (reply, rx) = mpsc::channel();
        self.send(Input::Owned {
            events,
            judged,
            reply,
        })?;
        rx.recv().map_err(|_| StoreError::WriterGone)
    }

    /// Drops the open trajectories `keep` refuses (their partition went to another node);
    /// returns how many. Blocks until done.
    pub fn release(
        &self,
        keep: impl Fn(TrajectoryKind, &str) -> bool + Send + 'static,
    ) -> Result<usize, StoreError> {
        let (reply, rx) = mpsc::channel();
        self.send(Input::Release {
            keep: Box::new(keep),
            reply,
        })?;
        rx.recv().map_err(|_| StoreError::WriterGone)
    }

    fn send(&self, input: Input) -> Result<(), StoreError> {
        self.tx
            .lock()
            .expect("stage sender")
            .as_ref()
            .ok_or(StoreError::WriterGone)?
            .send(input)
            .map_err(|_| StoreError::WriterGone)
    }

    /// Judges the trajectory `id` now, on the caller's thread, if it changed since it was
    /// last judged (a cluster partition's owner, before it commits the batch).
    pub fn evaluate_now(&self, id: &str) {
        self.evaluate(id, false, self.evaluator.as_ref(), self.outcomes.as_ref());
    }

    /// Work waiting inside the stage: events stored but not yet in a trajectory, plus
    /// evaluations queued. Ingest refuses new events while this is over its bound, so a
    /// burst the stage cannot keep up with is refused, not held in memory.
    pub fn backlog(&self) -> u64 {
        self.stats.queued_events.load(Ordering::Relaxed)
            + self.stats.queued_evaluations.load(Ordering::Relaxed)
    }

    /// Evaluation lag: how long the oldest change not yet evaluated has waited — a batch
    /// stored but not yet in a trajectory, or a trajectory changed and not yet judged. Zero
    /// when evaluation keeps up. Computed at most every 200 ms (it reads every open
    /// trajectory under the book's lock), so ingest may ask on every request.
    pub fn lag(&self) -> Duration {
        const FRESH: Duration = Duration::from_millis(200);
        let mut cache = self.stats.lag_cache.lock().expect("lag cache");
        if let Some((at, lag)) = *cache {
            if at.elapsed() < FRESH {
                return lag;
            }
        }
        let now = Instant::now();
        let waiting = self
            .stats
            .waiting_since
            .lock()
            .expect("waiting")
            .front()
            .map_or(Duration::ZERO, |t| now.duration_since(*t));
        let dirty = self
            .book
            .lock()
            .expect("book")
            .sessions()
            .filter_map(|s| s.dirty_since)
            .map(|t| now.duration_since(t))
            .max()
            .unwrap_or(Duration::ZERO);
        let lag = waiting.max(dirty);
        *cache = Some((now, lag));
        lag
    }

    /// Judges the open trajectory `id` once more now, as a settle re-evaluation (nothing
    /// new arrived): what a detector waiting on something outside the trajectory — a
    /// model's answer — gets called back with. A renamed id is followed; a closed one is
    /// not reopened.
    pub fn reevaluate(&self, id: &str) {
        let id = match self.persist.aliases.resolve(id) {
            Ok(Some(current)) => current,
            _ => id.to_string(),
        };
        if let Some(tx) = self.settle.lock().expect("settle sender").as_ref() {
            let _ = tx.send(Due::Settle(id, Instant::now()));
        }
    }

    /// Highest batch sequence applied to the trajectories.
    pub fn applied_seq(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// The newest durable batch of the store that feeds the stage, for a reader that
    /// needs what was stored before it applied (the verdict gate); none on a cluster node.
    pub fn stored_seq(&self) -> Option<u64> {
        self.fed_by.as_ref().and_then(|s| s.last_seq().ok())
    }

    fn evaluate(&self, id: &str, settle: bool, evaluator: &dyn Evaluator, alerts: &dyn Outcomes) {
        // A snapshot shares the window's event list and its hash rehashes one chunk: cheap
        // enough under the lock the builder also takes.
        let (t, version, last) = {
            let mut book = self.book.lock().expect("book");
            let Some(s) = book.get_mut(id) else { return };
            let version = s.judging();
            (s.snapshot(), version, s.last_evaluated_hash.clone())
        };
        if !settle && last.as_deref() == Some(t.hash.as_str()) {
            self.stats.skipped_unchanged.fetch_add(1, Ordering::Relaxed);
            // Nothing to judge: the change is not waiting any more (evaluation lag).
            if let Some(s) = self.book.lock().expect("book").get_mut(id) {
                s.judged(version);
            }
            return;
        }
        let t = Arc::new(t);
        let evaluation = if settle {
            evaluator.evaluate_settled(&t)
        } else {
            evaluator.evaluate(&t)
        };
        if let Err(e) = alerts.record(&t, &evaluation) {
            tracing::error!(trajectory = %t.id, error = %e, "could not record alert; will retry on the next change");
            return;
        }
        self.stats.evaluations.fetch_add(1, Ordering::Relaxed);
        if !settle {
            if let Some(tx) = self.settle.lock().expect("settle sender").as_ref() {
                for after in &self.settle_after {
                    let _ = tx.send(Due::Settle(id.to_string(), Instant::now() + *after));
                }
            }
        }
        let mut book = self.book.lock().expect("book");
        if let Some(s) = book.get_mut(id) {
            s.last_evaluated_hash = Some(t.hash.clone());
            s.unsaved = true;
            if let Some(since) = s.judged(version) {
                self.stats
                    .event_to_alert
                    .observe(since.elapsed().as_secs_f64());
            }
        }
    }

    /// A trajectory with its events: open ones from memory, closed ones from disk.
    /// An id that was renamed (an earlier event arrived, or a merge) answers with the
    /// trajectory that took its place.
    pub fn get(&self, id: &str) -> Result<Option<Trajectory>, StoreError> {
        if let Some(t) = self.get_current(id)? {
            return Ok(Some(t));
        }
        match self.persist.aliases.resolve(id)? {
            Some(current) => self.get_current(&current),
            None => Ok(None),
        }
    }

    fn get_current(&self, id: &str) -> Result<Option<Trajectory>, StoreError> {
        if let Some(s) = self.book.lock().expect("book").get(id) {
            return Ok(Some(s.snapshot()));
        }
        match self.persist.record(id)? {
            Some(r) => Ok(Some(self.persist.load_session(&r)?.snapshot())),
            None => Ok(None),
        }
    }

    /// The trajectory of `kind` that `event` would join, with it (see [`Book::preview`]):
    /// what an inline verdict judges a pending call on, without waiting for the builder.
    pub fn preview(&self, kind: TrajectoryKind, event: &Arc<plumbline_event::Event>) -> Trajectory {
        self.book.lock().expect("book").preview(kind, event)
    }

    /// Retention: closed trajectories that ended before `cutoff` (unix nanos) and the
    /// renames leading to them (see `TrajectoryStore::sweep_before`).
    pub fn sweep_before(&self, cutoff: i64) -> Result<usize, StoreError> {
        self.persist.sweep_before(cutoff)
    }

    /// Trajectory headers (no events), open ones first-hand, newest first.
    pub fn list(&self) -> Vec<TrajectoryRecord> {
        let mut out: HashMap<String, TrajectoryRecord> = HashMap::new();
        for r in self.persist.records() {
            out.insert(r.id.clone(), r);
        }
        for s in self.book.lock().expect("book").sessions() {
            out.insert(s.id.clone(), TrajectoryRecord::of(s, false));
        }
        let mut v: Vec<TrajectoryRecord> = out.into_values().collect();
        v.sort_by(|a, b| b.end.cmp(&a.end).then(a.id.cmp(&b.id)));
        v
    }
}

struct Builder {
    stage: Arc<TrajectoryStage>,
    store: Store,
    /// Told when a trajectory is renamed, so its alert follows.
    alerts: Arc<dyn Outcomes>,
    /// Told when a trajectory closes or is renamed, so what it keeps for it can go.
    evaluator: Arc<dyn Evaluator>,
    due: mpsc::Sender<Due>,
    pending_closed: Vec<TrajectoryRecord>,
    removed: Vec<String>,
    lateness: i64,
    last_checkpoint: Instant,
}

const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

impl Builder {
    fn run(mut self, rx: mpsc::Receiver<Input>) {
        loop {
            if self.stage.stopping.load(Ordering::Relaxed) {
                if let Err(e) = self.checkpoint() {
                    tracing::error!(error = %e, "final trajectory checkpoint failed");
                }
                return;
            }
            match rx.recv_timeout(CHECKPOINT_EVERY) {
                Ok(Input::Owned {
                    events,
                    judged,
                    reply,
                }) => {
                    let _ = reply.send(self.apply_owned(events, judged));
                }
                Ok(Input::Release { keep, reply }) => {
                    let _ = reply.send(self.release(keep));
                }
                Ok(Input::Batch(batch)) => {
                    let n = batch.events.len() as u64;
                    self.receive(batch);
                    self.stage
                        .stats
                        .queued_events
                        .fetch_sub(n, Ordering::Relaxed);
                    self.stage
                        .stats
                        .waiting_since
                        .lock()
                        .expect("waiting")
                        .pop_front();
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = self.checkpoint();
                    return;
                }
            }
            if self.last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                if let Err(e) = self.checkpoint() {
                    tracing::error!(error = %e, "trajectory checkpoint failed; will retry");
                }
            }
        }
    }

    /// Applies a live batch, first reading any batches it skipped from the store.
    fn receive(&mut self, batch: CommittedBatch) {
        let applied = self.stage.applied_seq();
        if batch.seq <= applied {
            return;
        }
        for seq in applied + 1..batch.seq {
            match self.store.batch_events(seq) {
                Ok(events) => self.apply(seq, events.into_iter().map(Arc::new).collect()),
                Err(e) => tracing::error!(seq, error = %e, "could not read a skipped batch"),
            }
        }
        let digested: Vec<_> = batch
            .events
            .iter()
            .zip(batch.encoded.iter())
            .map(|(e, bytes)| (e.clone(), super::model::digest_of_stored(bytes)))
            .collect();
        self.apply_digested(batch.seq, digested.into_iter());
    }

    fn apply(&mut self, seq: u64, events: Vec<Arc<plumbline_event::Event>>) {
        let digested: Vec<_> = events
            .into_iter()
            .map(|e| {
                let d = super::model::event_digest(&e);
                (e, d)
            })
            .collect();
        self.apply_digested(seq, digested.into_iter());
    }

    fn apply_digested(
        &mut self,
        seq: u64,
        events: impl ExactSizeIterator<Item = (Arc<plumbline_event::Event>, [u8; 32])>,
    ) {
        let changed = self.apply_sides(events.map(|(e, d)| (e, d, None)), None);
        self.stage.applied.store(seq, Ordering::Release);
        for id in changed {
            let _ = self.due.send(Due::Changed(id));
        }
    }

    fn apply_owned(
        &mut self,
        events: Vec<(Arc<plumbline_event::Event>, Side)>,
        judged: bool,
    ) -> Vec<String> {
        let digested = events.into_iter().map(|(e, side)| {
            let d = super::model::event_digest(&e);
            (e, d, Some(side))
        });
        let changed = self.apply_sides(digested, Some(judged));
        if judged {
            // Rebuilt from the log: the last owner's settle re-evaluations were in its
            // memory. Scheduled again from now — later than they were due, never lost.
            let now = Instant::now();
            for id in &changed {
                for after in &self.stage.settle_after {
                    let _ = self.due.send(Due::Settle(id.clone(), now + *after));
                }
            }
        }
        changed
    }

    fn release(&mut self, keep: Keep) -> usize {
        let gone = self.stage.book.lock().expect("book").release(keep);
        for s in &gone {
            self.evaluator.forget(&s.id);
            self.removed.push(s.id.clone());
        }
        gone.len()
    }

    /// Applies events (each to one side, or both) under the book's lock, records renames
    /// and closes what expired; returns the trajectories that changed. `judged`: a
    /// cluster owner's input — `Some(true)` marks the changes as judged already.
    fn apply_sides(
        &mut self,
        events: impl ExactSizeIterator<Item = (Arc<plumbline_event::Event>, [u8; 32], Option<Side>)>,
        judged: Option<bool>,
    ) -> Vec<String> {
        let mut changes = Changes::default();
        let n = events.len();
        let mut renamed_to = Vec::new();
        {
            let mut book = self.stage.book.lock().expect("book");
            for (e, digest, side) in events {
                book.apply_side(e, digest, side, &mut changes);
            }
            if judged == Some(true) {
                for id in &changes.changed {
                    if let Some(s) = book.get_mut(id) {
                        let version = s.judging();
                        s.last_evaluated_hash = Some(s.hash());
                        s.judged(version);
                    }
                }
            }
            if !changes.renamed.is_empty() {
                // Under the lock, so no reader sees the new id without the alias.
                if let Err(e) = self.stage.persist.aliases.record(&changes.renamed) {
                    tracing::error!(error = %e, "could not record trajectory renames");
                }
                renamed_to = self.renamed_snapshots(&book, &changes);
            }
            for s in book.close_expired(self.lateness) {
                self.forget(&s.id);
                self.pending_closed.push(TrajectoryRecord::of(&s, true));
            }
            // Closed headers are written now (under the lock), not at the next checkpoint:
            // the trajectory left the book, and until its header is on disk no reader finds it.
            if !self.pending_closed.is_empty() {
                match self.stage.persist.put_records(&self.pending_closed) {
                    Ok(()) => self.pending_closed.clear(),
                    Err(e) => {
                        tracing::error!(error = %e, "could not save closed trajectories; will retry")
                    }
                }
            }
        }
        for (olds, t) in renamed_to {
            let t = Arc::new(t);
            for old in olds {
                self.forget(&old);
                if let Err(e) = self.alerts.renamed(&old, &t) {
                    tracing::error!(old = %old, trajectory = %t.id, error = %e, "could not move the alert of a renamed trajectory");
                }
            }
        }
        self.removed
            .extend(changes.renamed.iter().map(|(old, _)| old.clone()));
        self.stage.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stage
            .stats
            .events
            .fetch_add(n as u64, Ordering::Relaxed);
        changes.changed
    }

    /// For each trajectory that took over renamed ids: the ids it replaced and its view.
    fn renamed_snapshots(&self, book: &Book, changes: &Changes) -> Vec<(Vec<String>, Trajectory)> {
        let mut by_current: HashMap<&str, Vec<String>> = HashMap::new();
        for (old, _) in &changes.renamed {
            by_current
                .entry(changes.current_id(old))
                .or_default()
                .push(old.clone());
        }
        by_current
            .into_iter()
            .filter_map(|(current, olds)| Some((olds, book.get(current)?.snapshot())))
            .collect()
    }

    /// The trajectory `id` closed or was renamed: the evaluator's state for it goes, in
    /// memory and on disk.
    fn forget(&self, id: &str) {
        self.evaluator.forget(id);
        if let Err(e) = self.stage.persist.put_evaluator_state(id, None) {
            tracing::error!(trajectory = id, error = %e, "could not drop saved detector state");
        }
    }

    fn checkpoint(&mut self) -> Result<(), StoreError> {
        self.last_checkpoint = Instant::now();
        let seq = self.stage.applied_seq();
        let mut records = std::mem::take(&mut self.pending_closed);
        {
            let mut book = self.stage.book.lock().expect("book");
            for s in book.sessions_mut() {
                if s.unsaved {
                    s.unsaved = false;
                    records.push(TrajectoryRecord::of(s, false));
                }
            }
        }
        // The evaluator's state of the trajectories saved now (outside the book's lock).
        // State and the events it was given are one unit, so a state newer than its
        // header is still consistent after a restart.
        for r in records.iter().filter(|r| !r.closed) {
            let state = self.evaluator.snapshot(&r.id);
            self.stage
                .persist
                .put_evaluator_state(&r.id, state.as_deref())?;
        }
        let removed = std::mem::take(&mut self.removed);
        self.stage.persist.save(&records, &removed, seq)
    }
}

/// Why a trajectory is due for evaluation.
enum Due {
    /// It gained events: evaluate after the coalescing delay.
    Changed(String),
    /// A while after its last change, judge it once more even if nothing arrived: some
    /// rules are about what did *not* happen (a push never merged, protection left off).
    Settle(String, Instant),
}

struct Work {
    id: String,
    settle: bool,
}

/// Trajectories changed and not yet picked up by an evaluation worker.
type Waiting = Arc<Mutex<std::collections::HashSet<String>>>;

/// Queues each changed trajectory for evaluation after `delay` (none by default) and
/// releases settle re-evaluations at their time. Changes coalesce while their trajectory
/// waits — held by the delay or queued behind busy workers — until a worker picks it up
/// (`waiting`), so a burst on one trajectory is evaluated about once per worker turn: at
/// light load each change is judged at once, at heavy load the queue itself batches.
/// Ordered by due time, so each step is O(log n).
fn schedule(
    due: mpsc::Receiver<Due>,
    work: mpsc::Sender<Work>,
    delay: Duration,
    waiting: &Waiting,
    queued: &AtomicU64,
) {
    let mut queue: std::collections::BTreeSet<(Instant, String, bool)> = Default::default();
    loop {
        let got = match queue.first() {
            Some((at, _, _)) => due.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => due.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match got {
            Ok(Due::Changed(id)) => {
                if waiting.lock().expect("waiting set").insert(id.clone()) {
                    queue.insert((Instant::now() + delay, id, false));
                }
            }
            Ok(Due::Settle(id, at)) => {
                queue.insert((at, id, true));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        while queue.first().is_some_and(|(at, _, _)| *at <= now) {
            let (_, id, settle) = queue.pop_first().expect("checked");
            queued.fetch_add(1, Ordering::Relaxed);
            if work.send(Work { id, settle }).is_err() {
                return;
            }
        }
    }
}

/// Evaluation threads yield to ingest when both want the CPU: acknowledged, durable events
/// come first; evaluation catches up (its lag shows in the event-to-alert histogram).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on this thread's own id has no memory effects.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 5);
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::*;

    /// Changes to a trajectory that waits coalesce into one evaluation; once a worker has
    /// picked it up, the next change queues it again.
    #[test]
    fn changes_coalesce_until_a_worker_picks_the_trajectory_up() {
        let (due_tx, due_rx) = mpsc::channel();
        let (work_tx, work_rx) = mpsc::channel();
        let waiting = Waiting::default();
        let queued = Arc::new(AtomicU64::new(0));
        let (w, q) = (waiting.clone(), queued.clone());
        let scheduler =
            std::thread::spawn(move || schedule(due_rx, work_tx, Duration::ZERO, &w, &q));
        for _ in 0..5 {
            due_tx.send(Due::Changed("a".into())).unwrap();
        }
        due_tx.send(Due::Changed("b".into())).unwrap();
        let first = work_rx.recv().unwrap();
        let second = work_rx.recv().unwrap();
        assert_eq!((first.id.as_str(), first.settle), ("a", false));
        assert_eq!(second.id, "b");
        // `a` still waits (no worker took it): more changes add nothing.
        due_tx.send(Due::Changed("a".into())).unwrap();
        // A worker picks `a` up; a change now is a new one.
        waiting.lock().unwrap().remove("a");
        due_tx.send(Due::Changed("a".into())).unwrap();
        due_tx
            .send(Due::Settle("c".into(), Instant::now()))
            .unwrap();
        drop(due_tx);
        scheduler.join().unwrap();
        let rest: Vec<(String, bool)> = work_rx.try_iter().map(|w| (w.id, w.settle)).collect();
        assert_eq!(rest, [("a".to_string(), false), ("c".to_string(), true)]);
        assert_eq!(queued.load(Ordering::Relaxed), 4);
    }
}
