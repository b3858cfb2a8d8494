//! Membership and ownership. Each node keeps its name in the `plumbline_nodes` bucket and
//! one lease per partition it owns in `plumbline_leases`; both buckets expire entries
//! after `lease_secs`, so a node that stops renewing (killed, cut off) drops out and its
//! partitions are free. Every node deals the partitions out over the live nodes the same
//! way (`partition::owner_of`), gives up what is no longer its share, and takes what is.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::partition::owner_of;
use crate::worker::Owner;
use crate::{Cluster, ClusterError};

struct Held {
    revision: u64,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), ClusterError>>,
}

/// This node's place in the cluster: its membership and the partitions it owns.
pub struct Membership {
    cluster: Cluster,
    owner: Arc<Owner>,
    held: tokio::sync::Mutex<BTreeMap<u32, Held>>,
    live: Mutex<Vec<String>>,
    leaving: watch::Sender<bool>,
    /// Whether this node owns partition 0, and with it the cluster's one outbox consumer.
    leads: watch::Sender<bool>,
}

fn lease_key(p: u32) -> String {
    format!("p{p}")
}

impl Membership {
    /// Joins and keeps renewing every third of a lease until [`Membership::leave`].
    pub fn start(cluster: Cluster, owner: Arc<Owner>) -> Arc<Membership> {
        let (leaving, mut left) = watch::channel(false);
        let m = Arc::new(Membership {
            cluster,
            owner,
            held: Default::default(),
            live: Default::default(),
            leaving,
            leads: watch::channel(false).0,
        });
        let every = Duration::from_millis(m.cluster.config.lease_secs * 1000 / 3);
        let me = m.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = me.tick().await {
                    tracing::warn!(error = %e, "cluster membership: this round failed; retrying");
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = left.changed() => return,
                }
            }
        });
        m
    }

    /// The partitions this node owns now.
    pub async fn owned(&self) -> Vec<u32> {
        self.held.lock().await.keys().copied().collect()
    }

    /// This node's view, for `GET /v1/cluster`.
    pub async fn status(&self) -> serde_json::Value {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = &self.owner.stats;
        serde_json::json!({
            "node": self.cluster.node,
            "live": self.live(),
            "partitions": self.cluster.config.partitions,
            "owned": self.owned().await,
            // Partition 0's owner consumes the cluster's outbox (sends every delivery).
            "outbox_consumer": *self.leads.borrow(),
            "committed_events": stats.committed_events.load(Relaxed),
            "replayed_events": stats.replayed_events.load(Relaxed),
            "commits": stats.commits.load(Relaxed),
            "takeovers": stats.takeovers.load(Relaxed),
        })
    }

    /// Whether this node owns partition 0 (and so consumes the cluster's outbox), as it
    /// changes.
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leads.subscribe()
    }

    /// The live nodes as last seen, in name order.
    pub fn live(&self) -> Vec<String> {
        self.live.lock().expect("live").clone()
    }

    async fn tick(&self) -> Result<(), ClusterError> {
        let node = &self.cluster.node;
        let js_err = |what: &str| crate::js_err(what.to_string());
        self.cluster
            .nodes
            .put(node, Bytes::from(node.clone()))
            .await
            .map_err(|e| js_err("membership")(e.to_string()))?;
        let mut live: Vec<String> = self
            .cluster
            .nodes
            .keys()
            .await
            .map_err(|e| js_err("membership")(e.to_string()))?
            .try_collect()
            .await
            .map_err(|e| js_err("membership")(e.to_string()))?;
        live.sort();
        live.dedup();
        *self.live.lock().expect("live") = live.clone();
        let mut held = self.held.lock().await;
        let mut gave_up = false;
        // Renew, give up what is another node's share now, restart a worker that failed.
        for p in held.keys().copied().collect::<Vec<_>>() {
            let h = held.get_mut(&p).expect("listed");
            let renewed = self
                .cluster
                .leases
                .update(lease_key(p), Bytes::from(node.clone()), h.revision)
                .await;
            let wanted = owner_of(p, &live) == Some(node.as_str());
            match renewed {
                Ok(rev) if wanted => {
                    h.revision = rev;
                    if h.task.is_finished() {
                        let h = held.remove(&p).expect("listed");
                        if let Ok(Err(e)) = h.task.await {
                            tracing::warn!(partition = p, error = %e, "partition worker stopped; starting again from the checkpoint");
                        }
                        let h2 = self.spawn(p, rev);
                        held.insert(p, h2);
                    }
                }
                Ok(rev) => {
                    // Another node's share now: finish the step under way, then free it.
                    let h = held.remove(&p).expect("listed");
                    let _ = h.stop.send(true);
                    let _ = h.task.await;
                    let _ = self
                        .cluster
                        .leases
                        .delete_expect_revision(lease_key(p), Some(rev))
                        .await;
                    tracing::info!(partition = p, "partition given up");
                    gave_up = true;
                }
                Err(e) => {
                    // Lost (expired and taken, or unreachable): stop at once; any commit
                    // it still tries is fenced.
                    let h = held.remove(&p).expect("listed");
                    let _ = h.stop.send(true);
                    h.task.abort();
                    tracing::warn!(partition = p, error = %e, "partition lease lost");
                    gave_up = true;
                }
            }
        }
        if gave_up {
            let owned: Vec<u32> = held.keys().copied().collect();
            self.owner.release(owned).await?;
        }
        if *self.leaving.borrow() {
            return Ok(());
        }
        for p in 0..self.cluster.config.partitions {
            if held.contains_key(&p) || owner_of(p, &live) != Some(node.as_str()) {
                continue;
            }
            // Free once its last owner let it go or stopped renewing.
            if let Ok(rev) = self
                .cluster
                .leases
                .create(lease_key(p), Bytes::from(node.clone()))
                .await
            {
                held.insert(p, self.spawn(p, rev));
            }
        }
        let leads = held.contains_key(&0);
        self.leads
            .send_if_modified(|l| std::mem::replace(l, leads) != leads);
        Ok(())
    }

    fn spawn(&self, p: u32, revision: u64) -> Held {
        let (stop, stopped) = watch::channel(false);
        let owner = self.owner.clone();
        let task = tokio::spawn(async move { owner.run(p, stopped).await });
        Held {
            revision,
            stop,
            task,
        }
    }

    /// Leaves the cluster: each partition's step under way is committed, then its lease
    /// and this node's membership are deleted, so the others take over at once instead of
    /// after a lease.
    pub async fn leave(&self) {
        let _ = self.leaving.send(true);
        let mut held = self.held.lock().await;
        // After any round under way (it could still say this node leads); the rounds
        // after it see `leaving` and change nothing.
        self.leads.send_replace(false);
        for (p, h) in std::mem::take(&mut *held) {
            let _ = h.stop.send(true);
            let _ = h.task.await;
            let _ = self
                .cluster
                .leases
                .delete_expect_revision(lease_key(p), Some(h.revision))
                .await;
        }
        let _ = self.cluster.nodes.delete(&self.cluster.node).await;
    }
}
