//! The write path: one writer thread turns every group of waiting requests into one batch
//! record, and one flusher thread makes each group durable before anyone is answered.
//!
//! Why two threads: sled 0.34.7 deadlocks when seven or more `flush_async()` run at once
//! (sled#1308), so exactly one flush is ever in flight; and while it runs, the writer
//! already stores the next group, so IO overlaps CPU work (group commit).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};

use tokio::sync::{mpsc, oneshot};

use super::keys::{self, EventRef};
use super::{batch, Store, StoreError};
use plumbline_event::Event;

/// At most this many events go into one batch record.
const MAX_GROUP_EVENTS: usize = 8192;

/// What happened to one request's events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    pub accepted: usize,
    pub duplicates: usize,
    /// Per event of the request, in order: `true` if newly stored, `false` if a duplicate.
    pub stored: Vec<bool>,
}

/// A batch that is durable on disk, handed to the next stage (trajectories).
#[derive(Debug, Clone)]
pub struct CommittedBatch {
    pub seq: u64,
    pub events: Arc<Vec<Arc<Event>>>,
    /// Each event's stored JSON, so the next stage can hash it without re-serialising.
    pub encoded: Arc<Vec<Vec<u8>>>,
}

/// Where durable batches go next: the trajectory stage, in-process. (A cluster does not
/// publish from here: its log must be durable before the 202, so ingest publishes to it
/// instead of this writer — `plumbline_ingest::EventLog`.)
pub trait CommitListener: Send + Sync + 'static {
    fn committed(&self, batch: CommittedBatch);
}

impl<F: Fn(CommittedBatch) + Send + Sync + 'static> CommitListener for F {
    fn committed(&self, batch: CommittedBatch) {
        self(batch)
    }
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Request {
    Write {
        /// Each event with its JSON, encoded on the caller's thread (the writer is the
        /// single-threaded bottleneck).
        events: Vec<(Event, Vec<u8>)>,
        reply: Reply<IngestOutcome>,
    },
    Barrier {
        reply: Reply<()>,
    },
}

enum Answer {
    Write(Reply<IngestOutcome>, IngestOutcome),
    Barrier(Reply<()>),
    Failed(Reply<IngestOutcome>, String),
}

struct FlushJob {
    answers: Vec<Answer>,
    batch: Option<CommittedBatch>,
}

/// Counters of the write path (exposed in metrics).
#[derive(Debug, Default)]
pub struct CommitStats {
    pub groups: AtomicU64,
    pub flushes: AtomicU64,
    pub events: AtomicU64,
    pub duplicates: AtomicU64,
}

/// The handle requests use to write; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Request>,
    pub stats: Arc<CommitStats>,
}

impl Writer {
    /// Starts the writer and flusher threads. With `fsync`, every group commit also
    /// fdatasyncs sled's log (power-loss durability; `flush` alone survives a process crash).
    pub fn start(
        store: Store,
        fsync: bool,
        listener: Arc<dyn CommitListener>,
    ) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel(256);
        let (ftx, frx) = std_mpsc::channel::<FlushJob>();
        let stats = Arc::new(CommitStats::default());
        let next_seq = store.last_seq()? + 1;
        let log = if fsync {
            Some(File::open(store.path().join("db"))?)
        } else {
            None
        };
        let s = stats.clone();
        let st = store.clone();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || write_loop(st, rx, ftx, next_seq, s))?;
        let s = stats.clone();
        std::thread::Builder::new()
            .name("store-flusher".into())
            .spawn(move || flush_loop(store, frx, log, listener, s))?;
        Ok(Writer { tx, stats })
    }

    /// Stores the events that are new, durably, and says which were duplicates.
    pub async fn write(&self, events: Vec<Event>) -> Result<IngestOutcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Write {
                events: events
                    .into_iter()
                    .map(|e| {
                        let json = serde_json::to_vec(&e).expect("events serialise");
                        (e, json)
                    })
                    .collect(),
                reply,
            })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Waits until everything written to the database before this call is durable
    /// (other stages write their own trees and then call this).
    pub async fn barrier(&self) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Barrier { reply })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }
}

fn write_loop(
    store: Store,
    mut rx: mpsc::Receiver<Request>,
    ftx: std_mpsc::Sender<FlushJob>,
    mut next_seq: u64,
    stats: Arc<CommitStats>,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        let mut n = 0;
        while n < MAX_GROUP_EVENTS {
            match rx.try_recv() {
                Ok(r) => {
                    if let Request::Write { events, .. } = &r {
                        n += events.len();
                    }
                    group.push(r)
                }
                Err(_) => break,
            }
        }
        stats.groups.fetch_add(1, Ordering::Relaxed);
        let job = match store_group(&store, group, next_seq, &stats) {
            Ok((job, used_seq)) => {
                if used_seq {
                    next_seq += 1;
                }
                job
            }
            Err(job) => job,
        };
        if ftx.send(job).is_err() {
            return;
        }
    }
}

/// Writes one group as one batch. Order matters for crash safety: the batch record and
/// index entries first, each event id last, so a stored id always has its event.
fn store_group(
    store: &Store,
    group: Vec<Request>,
    seq: u64,
    stats: &CommitStats,
) -> Result<(FlushJob, bool), FlushJob> {
    let t = &store.inner;
    let mut seen: HashSet<String> = HashSet::new();
    let mut kept: Vec<Event> = Vec::new();
    let mut encoded: Vec<Vec<u8>> = Vec::new();
    let mut pending: Vec<(Reply<IngestOutcome>, IngestOutcome)> = Vec::new();
    let mut barriers = Vec::new();
    let mut lookup_error = None;
    for req in group {
        match req {
            Request::Barrier { reply } => barriers.push(reply),
            Request::Write { events, reply } => {
                let mut outcome = IngestOutcome::default();
                for (ev, json) in events {
                    let dup = seen.contains(&ev.id)
                        || match t.ids.contains_key(ev.id.as_bytes()) {
                            Ok(x) => x,
                            Err(e) => {
                                lookup_error = Some(e.to_string());
                                true
                            }
                        };
                    outcome.stored.push(!dup);
                    if dup {
                        outcome.duplicates += 1;
                    } else {
                        outcome.accepted += 1;
                        seen.insert(ev.id.clone());
                        encoded.push(json);
                        kept.push(ev);
                    }
                }
                pending.push((reply, outcome));
            }
        }
    }
    let fail = |pending: Vec<(Reply<IngestOutcome>, IngestOutcome)>,
                barriers: Vec<Reply<()>>,
                msg: String| {
        let mut answers: Vec<Answer> = pending
            .into_iter()
            .map(|(r, _)| Answer::Failed(r, msg.clone()))
            .collect();
        answers.extend(barriers.into_iter().map(Answer::Barrier));
        FlushJob {
            answers,
            batch: None,
        }
    };
    if let Some(msg) = lookup_error {
        return Err(fail(pending, barriers, msg));
    }
    let used_seq = !kept.is_empty();
    if used_seq {
        if let Err(e) = write_batch(store, seq, &kept, &encoded) {
            return Err(fail(pending, barriers, e.to_string()));
        }
        stats.events.fetch_add(kept.len() as u64, Ordering::Relaxed);
    }
    let dups: usize = pending.iter().map(|(_, o)| o.duplicates).sum();
    stats.duplicates.fetch_add(dups as u64, Ordering::Relaxed);
    let mut answers: Vec<Answer> = pending
        .into_iter()
        .map(|(r, o)| Answer::Write(r, o))
        .collect();
    answers.extend(barriers.into_iter().map(Answer::Barrier));
    let batch = used_seq.then(|| CommittedBatch {
        seq,
        events: Arc::new(kept.into_iter().map(Arc::new).collect()),
        encoded: Arc::new(encoded),
    });
    Ok((FlushJob { answers, batch }, used_seq))
}

fn write_batch(
    store: &Store,
    seq: u64,
    kept: &[Event],
    encoded: &[Vec<u8>],
) -> Result<(), sled::Error> {
    let t = &store.inner;
    t.batches
        .insert(seq.to_be_bytes(), batch::encode(encoded))?;
    // One index entry per (field value, minute) in this batch, listing its slots.
    let mut entries: [HashMap<Vec<u8>, Vec<u32>>; 4] = Default::default();
    for (slot, ev) in kept.iter().enumerate() {
        let minute = keys::minute_of(ev.time_nanos());
        let slot = slot as u32;
        entries[0]
            .entry(keys::index_key("", minute, seq))
            .or_default()
            .push(slot);
        entries[1]
            .entry(keys::index_key(&ev.actor.id, minute, seq))
            .or_default()
            .push(slot);
        entries[2]
            .entry(keys::index_key(&ev.system, minute, seq))
            .or_default()
            .push(slot);
        entries[3]
            .entry(keys::index_key(ev.source.as_str(), minute, seq))
            .or_default()
            .push(slot);
    }
    for (tree, map) in [&t.by_time, &t.by_actor, &t.by_system, &t.by_source]
        .into_iter()
        .zip(entries)
    {
        for (k, slots) in map {
            tree.insert(k, keys::encode_slots(&slots))?;
        }
    }
    for (slot, ev) in kept.iter().enumerate() {
        t.ids.insert(
            ev.id.as_bytes(),
            &EventRef {
                seq,
                slot: slot as u32,
            }
            .encode(),
        )?;
    }
    Ok(())
}

fn flush_loop(
    store: Store,
    frx: std_mpsc::Receiver<FlushJob>,
    log: Option<File>,
    listener: Arc<dyn CommitListener>,
    stats: Arc<CommitStats>,
) {
    while let Ok(first) = frx.recv() {
        let mut jobs = vec![first];
        jobs.extend(frx.try_iter());
        let result = store
            .inner
            .db
            .flush()
            .map_err(|e| e.to_string())
            .and_then(|_| {
                log.as_ref()
                    .map_or(Ok(()), |f| f.sync_data().map_err(|e| e.to_string()))
            });
        stats.flushes.fetch_add(1, Ordering::Relaxed);
        for job in jobs {
            if result.is_ok() {
                if let Some(b) = job.batch {
                    listener.committed(b);
                }
            }
            for a in job.answers {
                match (a, &result) {
                    (Answer::Write(r, o), Ok(())) => drop(r.send(Ok(o))),
                    (Answer::Barrier(r), Ok(())) => drop(r.send(Ok(()))),
                    (Answer::Write(r, _), Err(e)) | (Answer::Failed(r, _), Err(e)) => {
                        drop(r.send(Err(StoreError::Io(std::io::Error::other(e.clone())))))
                    }
                    (Answer::Failed(r, msg), Ok(())) => {
                        drop(r.send(Err(StoreError::Io(std::io::Error::other(msg)))))
                    }
                    (Answer::Barrier(r), Err(e)) => {
                        drop(r.send(Err(StoreError::Io(std::io::Error::other(e.clone())))))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use plumbline_event::parse_event;

    fn ev(id: &str) -> Event {
        parse_event(json!({
            "id": id, "time": "2026-01-05T10:00:00Z", "source": "github",
            "actor": {"id": "ada", "type": "human"}, "system": "acme/api", "action": "git.push",
        }))
        .unwrap()
    }

    /// What a kill can leave when sled's background flush kept only a prefix of a group's
    /// writes: the batch record without its id claims. Its events were never acknowledged,
    /// so resuming stages must not see them (they once raised alerts about events that no
    /// query could show); a later retry of the same event is stored and resumed once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_whose_ids_were_never_claimed_is_not_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ignore: Arc<dyn CommitListener> = Arc::new(|_b: CommittedBatch| {});
        let writer = Writer::start(store.clone(), false, ignore).unwrap();
        writer.write(vec![ev("kept")]).await.unwrap();
        // The orphan: batch 2 on disk, "lost" and "kept" in it, no claims written.
        let encoded: Vec<Vec<u8>> = [ev("lost"), ev("kept")]
            .iter()
            .map(|e| serde_json::to_vec(e).unwrap())
            .collect();
        let orphan = store.last_seq().unwrap() + 1;
        store
            .inner
            .batches
            .insert(orphan.to_be_bytes(), batch::encode(&encoded))
            .unwrap();

        let ids = |seq: u64| -> Vec<String> {
            store
                .batch_events(seq)
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect()
        };
        assert_eq!(ids(1), ["kept"]);
        assert!(ids(orphan).is_empty(), "{:?}", ids(orphan));
        assert!(store.get("lost").unwrap().is_none());

        // The client retries after the restart: stored now, resumed from its new batch.
        let writer =
            Writer::start(store.clone(), false, Arc::new(|_b: CommittedBatch| {})).unwrap();
        assert_eq!(writer.write(vec![ev("lost")]).await.unwrap().accepted, 1);
        assert_eq!(ids(orphan + 1), ["lost"]);
        assert!(ids(orphan).is_empty());
    }
}
