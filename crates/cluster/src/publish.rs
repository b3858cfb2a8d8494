//! Ingest on a cluster node: each accepted event goes to the event stream once per side,
//! on its partition's subject, and the request is answered once JetStream has
//! acknowledged every message (durable before the 202, as on one node).

use std::future::Future;
use std::pin::Pin;

use async_nats::jetstream::message::PublishMessage as Publish;
use bytes::Bytes;

use crate::partition::{events_subject, partition_of};
use crate::{Cluster, NODE_HEADER, SIDE_HEADER};
use plumbline_event::Event;
use plumbline_ingest::EventLog;
use plumbline_store::{IngestOutcome, StoreError};
use plumbline_trajectory::Side;

/// Acknowledgements awaited at a time: below the client's in-flight bound, so a large
/// request never waits on permits its own unawaited messages hold.
const ACK_WINDOW: usize = 256;

pub struct Publisher {
    cluster: Cluster,
}

impl Publisher {
    pub fn new(cluster: Cluster) -> Publisher {
        Publisher { cluster }
    }

    async fn publish(&self, events: Vec<Event>) -> Result<IngestOutcome, StoreError> {
        let fail = |what: &str, e: String| StoreError::Log(format!("{what}: {e}"));
        let partitions = self.cluster.config.partitions;
        // Per event: whether any side was new to the stream. An id seen before (within
        // the duplicate window) is a duplicate, as the store's writer would say.
        let mut fresh = vec![false; events.len()];
        let mut pending = Vec::with_capacity(ACK_WINDOW);
        for (i, e) in events.iter().enumerate() {
            let payload = Bytes::from(serde_json::to_vec(e).expect("events serialise"));
            for side in Side::BOTH {
                let p = partition_of(side, side.key_of(e), partitions);
                let msg = Publish::build()
                    .payload(payload.clone())
                    .message_id(format!("{}@{}", e.id, side.as_str()))
                    .header(SIDE_HEADER, side.as_str())
                    .header(NODE_HEADER, self.cluster.node.as_str());
                let ack = self
                    .cluster
                    .js
                    .send_publish(events_subject(p), msg)
                    .await
                    .map_err(|e| fail("publish", e.to_string()))?;
                pending.push((i, ack));
                if pending.len() >= ACK_WINDOW {
                    settle(&mut pending, &mut fresh)
                        .await
                        .map_err(|e| fail("acknowledgement", e))?;
                }
            }
        }
        settle(&mut pending, &mut fresh)
            .await
            .map_err(|e| fail("acknowledgement", e))?;
        let accepted = fresh.iter().filter(|f| **f).count();
        Ok(IngestOutcome {
            accepted,
            duplicates: events.len() - accepted,
            stored: fresh,
        })
    }
}

async fn settle(
    pending: &mut Vec<(usize, async_nats::jetstream::context::PublishAckFuture)>,
    fresh: &mut [bool],
) -> Result<(), String> {
    for (i, ack) in pending.drain(..) {
        let ack = ack.await.map_err(|e| e.to_string())?;
        if !ack.duplicate {
            fresh[i] = true;
        }
    }
    Ok(())
}

impl EventLog for Publisher {
    fn append(
        &self,
        events: Vec<Event>,
    ) -> Pin<Box<dyn Future<Output = Result<IngestOutcome, StoreError>> + Send + '_>> {
        Box::pin(self.publish(events))
    }
}
