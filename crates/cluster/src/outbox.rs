//! The cluster's one outbox consumer. Every node decides about the alerts it raised and
//! records the deliveries in its own outbox, with the decision; its dispatcher then
//! forwards them here ([`Relay::forward`]) and marks them forwarded. `PLUMBLINE_OUTBOX`
//! is a work queue with one durable consumer, read by the node that owns partition 0:
//! it imports each delivery into its own outbox, its dispatcher sends it, and the
//! message is acknowledged once the delivery is finished (sent, refused, given up,
//! cancelled). So a notification or a response action is sent by one node, and a node
//! that dies with deliveries queued hands them on: what it had not forwarded waits in its
//! own outbox until it restarts; what the consumer had not finished goes to the next
//! consumer, with the same `X-Plumbline-Delivery` id, so a receiver drops a repeat.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, AckKind};
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{js_err, Cluster, ClusterError, OUTBOX_STREAM};
use plumbline_delivery::route::outbox::Dispatcher;
use plumbline_delivery::route::outbox::{Delivery, Imported, Outbox};
use plumbline_delivery::route::relay::{Forwarding, Relay};
use plumbline_store::StoreError;

pub const OUTBOX_SUBJECT: &str = "plumbline.outbox.deliveries";
const CONSUMER: &str = "outbox";
/// Failover does not wait for this (the next consumer recreates the durable consumer, so
/// a dead one's messages come back at once); it only bounds how long a consumer that hangs
/// keeps them. A held delivery (quiet hours, a digest, a destination backing off)
/// outlives it: its message is then redelivered to the consumer, which finds it already
/// imported and keeps the new handle.
const ACK_WAIT: Duration = Duration::from_secs(600);

/// Keeps a stored response action another node sent with its delivery.
pub type RecordKeeper = Arc<dyn Fn(&[u8]) -> Result<(), StoreError> + Send + Sync>;

/// What travels on the outbox stream.
#[derive(Serialize, Deserialize)]
struct Forwarded {
    /// `<node>:<local id>` where it was decided.
    origin: String,
    delivery: Delivery,
    /// The response action an action delivery runs, as stored where it was approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record: Option<serde_json::Value>,
}

/// This node's side of the cluster's outbox: it forwards what the node decides, and
/// consumes the stream while the node leads.
pub struct ClusterOutbox {
    cluster: Cluster,
    outbox: Outbox,
    dispatcher: Dispatcher,
    keep_record: RecordKeeper,
    /// Imported deliveries by local id, with the message to acknowledge when finished.
    held: Mutex<HashMap<u64, jetstream::Message>>,
    /// Whether the dispatcher may send what is held (off while handing it back).
    leading: AtomicBool,
    consumer: tokio::sync::Mutex<Option<(watch::Sender<bool>, JoinHandle<()>)>>,
}

impl ClusterOutbox {
    /// Deliveries a previous run of this node imported and did not finish are the
    /// cluster's again (its stream still holds them): they are dropped here first.
    pub async fn start(
        cluster: Cluster,
        outbox: Outbox,
        dispatcher: Dispatcher,
        keep_record: RecordKeeper,
    ) -> Result<Arc<ClusterOutbox>, ClusterError> {
        let o = outbox.clone();
        let dropped = tokio::task::spawn_blocking(move || o.drop_imported())
            .await
            .map_err(|e| js_err("outbox")(e.to_string()))??;
        if dropped > 0 {
            tracing::info!(
                dropped,
                "deliveries this node held for the cluster go back to its outbox consumer"
            );
        }
        Ok(Arc::new(ClusterOutbox {
            cluster,
            outbox,
            dispatcher,
            keep_record,
            held: Mutex::default(),
            leading: AtomicBool::new(false),
            consumer: tokio::sync::Mutex::new(None),
        }))
    }

    /// Consumes the cluster's outbox while `leading` is true (this node owns partition 0).
    pub fn follow(self: &Arc<Self>, mut leading: watch::Receiver<bool>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let lead = *leading.borrow_and_update();
                if lead {
                    me.lead().await;
                } else {
                    me.step_down().await;
                }
                if leading.changed().await.is_err() {
                    me.step_down().await;
                    return;
                }
            }
        });
    }

    /// Whether this node consumes the cluster's outbox now.
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    async fn lead(self: &Arc<Self>) {
        let mut consumer = self.consumer.lock().await;
        if consumer
            .as_ref()
            .is_some_and(|(_, task)| !task.is_finished())
        {
            return;
        }
        let (stop, stopped) = watch::channel(false);
        let me = self.clone();
        let task = tokio::spawn(async move {
            let mut wait = Duration::from_millis(100);
            loop {
                match me.consume(stopped.clone()).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "outbox consumer stopped; starting again")
                    }
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
                if *stopped.borrow() {
                    return;
                }
            }
        });
        *consumer = Some((stop, task));
    }

    /// Stops consuming and hands back what is held: a send under way finishes first, the
    /// rest is released to the next consumer at once.
    pub async fn step_down(&self) {
        if let Some((stop, task)) = self.consumer.lock().await.take() {
            let _ = stop.send(true);
            let _ = task.await;
        }
        self.leading.store(false, Ordering::Release);
        self.dispatcher.idle().await;
        let held: Vec<jetstream::Message> = std::mem::take(&mut *self.held.lock().expect("held"))
            .into_values()
            .collect();
        for m in &held {
            let _ = m.ack_with(AckKind::Nak(None)).await;
        }
        let o = self.outbox.clone();
        match tokio::task::spawn_blocking(move || o.drop_imported()).await {
            Ok(Ok(n)) if n > 0 => {
                tracing::info!(handed_back = n, "stopped consuming the cluster's outbox")
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "outbox: could not drop handed-back deliveries")
            }
            _ => {}
        }
    }

    /// The durable consumer is made anew each time a node starts consuming, from the
    /// stream's start: a work queue keeps only what nobody acknowledged, so whatever a
    /// dead consumer held comes here at once instead of after its acknowledgement wait.
    async fn consume(&self, mut stop: watch::Receiver<bool>) -> Result<(), ClusterError> {
        let failed = |e: &dyn std::fmt::Display| js_err("outbox consumer")(e.to_string());
        let stream = self
            .cluster
            .js
            .get_stream(OUTBOX_STREAM)
            .await
            .map_err(|e| failed(&e))?;
        let _ = stream.delete_consumer(CONSUMER).await;
        let consumer = stream
            .create_consumer(pull::Config {
                durable_name: Some(CONSUMER.into()),
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                // Held deliveries stay unacknowledged for hours; they must not stop new ones.
                max_ack_pending: 100_000,
                ..Default::default()
            })
            .await
            .map_err(|e| failed(&e))?;
        let mut incoming = consumer.messages().await.map_err(|e| failed(&e))?;
        self.leading.store(true, Ordering::Release);
        tracing::info!("consuming the cluster's outbox");
        loop {
            let next = tokio::select! {
                m = incoming.next() => m,
                _ = stop.changed() => return Ok(()),
            };
            let m = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => return Err(failed(&e)),
                None => return Err(failed(&"the consumer's stream ended")),
            };
            let f = match serde_json::from_slice::<Forwarded>(&m.payload) {
                Ok(f) => f,
                Err(e) => {
                    // Only this binary publishes here; a message it cannot read never will be.
                    tracing::error!(error = %e, "outbox: not a forwarded delivery; dropped");
                    let _ = m.ack_with(AckKind::Term).await;
                    continue;
                }
            };
            let keep = self.keep_record.clone();
            let outbox = self.outbox.clone();
            let taken = tokio::task::spawn_blocking(move || {
                if let Some(record) = &f.record {
                    keep(&serde_json::to_vec(record).expect("json"))?;
                }
                outbox.import(f.delivery, &f.origin)
            })
            .await
            .map_err(|e| failed(&e))??;
            match taken {
                Imported::Pending(id) => {
                    // A redelivery of one held here replaces its handle (the newest acks).
                    self.held.lock().expect("held").insert(id, m);
                    self.outbox.wake();
                }
                Imported::Finished(_) => {
                    let _ = m.ack().await;
                }
            }
        }
    }
}

impl Relay for ClusterOutbox {
    fn forward<'a>(&'a self, d: &'a Delivery, record: Option<Vec<u8>>) -> Forwarding<'a> {
        Box::pin(async move {
            let origin = format!("{}:{}", self.cluster.node, d.id);
            let body = Forwarded {
                origin: origin.clone(),
                delivery: d.clone(),
                record: record.and_then(|r| serde_json::from_slice(&r).ok()),
            };
            // A forward repeated after a crash is dropped by the stream.
            let payload = Bytes::from(serde_json::to_vec(&body).expect("json"));
            self.cluster
                .publish(OUTBOX_SUBJECT.into(), payload, Some(&origin))
                .await
        })
    }

    fn holds(&self, id: u64) -> bool {
        self.is_leading() && self.held.lock().expect("held").contains_key(&id)
    }

    fn finished(&self, id: u64) {
        let Some(m) = self.held.lock().expect("held").remove(&id) else {
            return;
        };
        tokio::spawn(async move {
            if let Err(e) = m.ack().await {
                tracing::warn!(error = %e, "outbox: a finished delivery's acknowledgement failed; it may be sent again, with the same delivery id");
            }
        });
    }
}
