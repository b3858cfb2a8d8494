//! Owning a partition: rebuild its open windows from the log up to its last commit (no
//! evaluation: the previous owner judged them), then take the log step by step — store,
//! apply, evaluate what changed, publish the alerts, commit, acknowledge.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Semaphore};

use crate::alerts::{AlertPublisher, Mirror};
use crate::partition::{commits_subject, events_subject};
use crate::{js_err, Cluster, ClusterError, COMMITS_STREAM, EVENTS_STREAM, SIDE_HEADER};
use plumbline_alert::{Alert, AlertBook, AlertStatus};
use plumbline_event::Event;
use plumbline_store::Writer;
use plumbline_trajectory::{Side, TrajectoryStage};

/// One step of a partition, committed: every event in it was applied and every
/// trajectory it changed was evaluated, with the alerts published, before this was
/// written. The last commit of a partition is its checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Commit {
    pub node: String,
    pub partition: u32,
    /// The event stream's sequence this commit covers up to (inclusive).
    pub through: u64,
    /// The (event id, side) pairs evaluated in this step.
    pub events: Vec<(String, Side)>,
}

/// How long a step gathers messages after its first before it is evaluated and committed
/// (unless `batch` came first). Each step costs an evaluation of every trajectory it
/// changed, a store write and a commit: at a few milliseconds, a loaded partition took
/// steps of a handful of events and spent its time on those.
const STEP_WINDOW: Duration = Duration::from_millis(25);

/// Counters of this node's partition work (for `/metrics` and the bench).
#[derive(Debug, Default)]
pub struct OwnerStats {
    pub committed_events: AtomicU64,
    pub replayed_events: AtomicU64,
    pub commits: AtomicU64,
    pub takeovers: AtomicU64,
}

/// Whether an alert's findings as they stand await a routing decision: `None` when one
/// covers them, `Some(never decided)` otherwise.
pub type Undecided = Arc<dyn Fn(&Alert) -> Option<bool> + Send + Sync>;

/// What a node needs to own partitions: its local stages and the cluster's streams.
pub struct Owner {
    pub(crate) cluster: Cluster,
    stage: Arc<TrajectoryStage>,
    writer: Writer,
    alerts: Arc<AlertPublisher>,
    mirror: Arc<Mirror>,
    book: AlertBook,
    undecided: Undecided,
    /// Steps evaluating at once (`trajectory.eval_workers`): partitions share the CPU.
    permits: Arc<Semaphore>,
    pub stats: Arc<OwnerStats>,
}

impl Owner {
    /// `book` is this node's alert book (the alert stream's mirror); `undecided` says
    /// which alerts await a routing decision.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cluster: Cluster,
        stage: Arc<TrajectoryStage>,
        writer: Writer,
        alerts: Arc<AlertPublisher>,
        mirror: Arc<Mirror>,
        book: AlertBook,
        undecided: Undecided,
        eval_workers: usize,
    ) -> Arc<Owner> {
        Arc::new(Owner {
            cluster,
            stage,
            writer,
            alerts,
            mirror,
            book,
            undecided,
            permits: Arc::new(Semaphore::new(eval_workers.max(1))),
            stats: Arc::default(),
        })
    }

    /// Works partition `p` until `stop` says so (it was given up; the step under way is
    /// committed first) or a commit is fenced (another node owns it now).
    pub async fn run(
        self: Arc<Self>,
        p: u32,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), ClusterError> {
        let js = &self.cluster.js;
        let events = js
            .get_stream(EVENTS_STREAM)
            .await
            .map_err(|e| js_err("event stream")(e.to_string()))?;
        let commits = js
            .get_stream(COMMITS_STREAM)
            .await
            .map_err(|e| js_err("commit stream")(e.to_string()))?;
        let (mut through, mut last_commit) = match commits
            .get_last_raw_message_by_subject(&commits_subject(p))
            .await
        {
            Ok(m) => {
                let c: Commit = serde_json::from_slice(&m.payload).map_err(|e| {
                    js_err(format!("partition {p} checkpoint"))(format!(
                        "commit {} is not a commit: {e}",
                        m.sequence
                    ))
                })?;
                (c.through, m.sequence)
            }
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => (0, 0),
            Err(e) => return Err(js_err(format!("partition {p} checkpoint"))(e.to_string())),
        };
        self.mirror.caught_up().await?;
        self.stats.takeovers.fetch_add(1, Ordering::Relaxed);
        // The consumer is made anew at each takeover, from the start of the partition's
        // log: what the last owner had been delivered but not committed is redelivered
        // here at once, in order, instead of after its acknowledgement timeout.
        let name = format!("part-{p}");
        let _ = events.delete_consumer(&name).await;
        let batch = self.cluster.config.batch;
        let consumer = events
            .create_consumer(pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: events_subject(p),
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::All,
                ack_wait: Duration::from_secs(60),
                max_ack_pending: (batch * 4) as i64,
                ..Default::default()
            })
            .await
            .map_err(|e| js_err(format!("consumer {name}"))(e.to_string()))?;
        tracing::info!(partition = p, through, "partition taken over");
        tokio::spawn(self.clone().route_unrouted(p, stop.clone()));
        // A continuous pull: the server pushes what the partition has as it arrives. A
        // step is the first message and whatever follows it within `STEP_WINDOW`, up to
        // `batch`: large steps under load, and no polling while the partition is quiet.
        let mut incoming = consumer
            .stream()
            .max_messages_per_batch(batch)
            .messages()
            .await
            .map_err(|e| js_err(format!("consumer {name}"))(e.to_string()))?;
        let failed = |e: &dyn std::fmt::Display| js_err(format!("consumer {name}"))(e.to_string());
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let first = tokio::select! {
                m = incoming.next() => m,
                _ = stop.changed() => return Ok(()),
            };
            let Some(first) = first else {
                return Err(failed(&"the consumer's stream ended"));
            };
            let mut msgs_ok = vec![first.map_err(|e| failed(&e))?];
            let until = tokio::time::Instant::now() + STEP_WINDOW;
            while msgs_ok.len() < batch {
                match tokio::time::timeout_at(until, incoming.next()).await {
                    Ok(Some(m)) => msgs_ok.push(m.map_err(|e| failed(&e))?),
                    Ok(None) | Err(_) => break,
                }
            }
            let Some(last) = msgs_ok.last() else { continue };
            let mut replay = Vec::new();
            let mut live = Vec::new();
            let mut local = Vec::with_capacity(msgs_ok.len());
            let mut upto = through;
            for m in &msgs_ok {
                let seq = m.info().map_err(|e| failed(&e))?.stream_sequence;
                upto = upto.max(seq);
                let side = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(SIDE_HEADER))
                    .and_then(|v| Side::parse(v.as_str()));
                let (Some(side), Ok(event)) = (side, serde_json::from_slice::<Event>(&m.payload))
                else {
                    // Only this binary publishes here, from validated events.
                    tracing::error!(partition = p, seq, "not an event of this cluster; skipped");
                    continue;
                };
                local.push(event.clone());
                if seq <= through {
                    replay.push((Arc::new(event), side));
                } else {
                    live.push((Arc::new(event), side));
                }
            }
            // This node's own store keeps what it owns, for reads (the events API, the
            // review packet); an id it already holds is dropped there.
            self.writer.write(local).await?;
            if !replay.is_empty() {
                let n = replay.len() as u64;
                let stage = self.stage.clone();
                blocking(move || stage.apply_owned(replay, true)).await?;
                self.stats.replayed_events.fetch_add(n, Ordering::Relaxed);
            }
            if !live.is_empty() {
                let ids: Vec<(String, Side)> =
                    live.iter().map(|(e, s)| (e.id.clone(), *s)).collect();
                {
                    let _turn = self.permits.acquire().await.expect("never closed");
                    let stage = self.stage.clone();
                    blocking(move || {
                        let changed = stage.apply_owned(live, false)?;
                        for id in &changed {
                            stage.evaluate_now(id);
                        }
                        Ok(())
                    })
                    .await?;
                }
                self.alerts.flushed().await;
                let n = ids.len() as u64;
                let commit = Commit {
                    node: self.cluster.node.clone(),
                    partition: p,
                    through: upto,
                    events: ids,
                };
                let msg = Publish::build()
                    .payload(Bytes::from(
                        serde_json::to_vec(&commit).expect("commits serialise"),
                    ))
                    .expected_last_subject_sequence(last_commit);
                let acked = match js.send_publish(commits_subject(p), msg).await {
                    Ok(ack) => ack.await,
                    Err(e) => Err(e),
                };
                match acked {
                    Ok(ack) => last_commit = ack.sequence,
                    Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                        return Err(ClusterError::Fenced(p))
                    }
                    Err(e) => return Err(js_err(format!("partition {p} commit"))(e.to_string())),
                }
                self.stats.committed_events.fetch_add(n, Ordering::Relaxed);
                self.stats.commits.fetch_add(1, Ordering::Relaxed);
            }
            through = upto;
            last.ack().await.map_err(|e| failed(&e))?;
        }
    }

    /// Routes the alerts of partition `p` that the node which stored them did not get to
    /// route: it stopped between storing an alert (in the alert stream, so re-evaluating
    /// its events here changes nothing and tells nobody) and handing the decision on.
    /// Run once the last owner had its chance (two leases: its decisions travel with the
    /// record stream), for the open trajectories rebuilt here.
    async fn route_unrouted(self: Arc<Self>, p: u32, mut stop: watch::Receiver<bool>) {
        let grace = Duration::from_secs(self.cluster.config.lease_secs.max(1) * 2);
        tokio::select! {
            _ = tokio::time::sleep(grace) => {}
            _ = stop.changed() => return,
        }
        let partitions = self.cluster.config.partitions;
        let me = self.clone();
        let routed = blocking(move || {
            let mut n = 0;
            for r in me.stage.list() {
                let side = r.kind.side();
                if r.closed || crate::partition::partition_of(side, &r.key, partitions) != p {
                    continue;
                }
                let Some(alert) = me.book.of_trajectory(&r.id)? else {
                    continue;
                };
                if alert.status != AlertStatus::Open {
                    continue;
                }
                let Some(never) = (me.undecided)(&alert) else {
                    continue;
                };
                let Some(t) = me.stage.get(&r.id)? else {
                    continue;
                };
                me.book.renotify(alert, Arc::new(t), never);
                n += 1;
            }
            Ok(n)
        })
        .await;
        match routed {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                partition = p,
                alerts = n,
                "routing alerts the last owner stored but did not route"
            ),
            Err(e) => {
                tracing::warn!(partition = p, error = %e, "could not look for unrouted alerts")
            }
        }
    }

    /// Drops the open trajectories of partitions this node no longer owns.
    pub async fn release(&self, owned: Vec<u32>) -> Result<usize, ClusterError> {
        let stage = self.stage.clone();
        let partitions = self.cluster.config.partitions;
        blocking(move || {
            stage.release(move |kind, key| {
                owned.contains(&crate::partition::partition_of(
                    kind.side(),
                    key,
                    partitions,
                ))
            })
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, plumbline_store::StoreError> + Send + 'static,
) -> Result<T, ClusterError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ClusterError::JetStream {
            what: "evaluation task".into(),
            reason: e.to_string(),
        })?
        .map_err(ClusterError::from)
}
