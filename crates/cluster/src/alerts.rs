//! Alerts on a cluster: each owner publishes every version of an alert it stores to the
//! alert stream (the last version per alert), and every node mirrors that stream into its
//! own alert book, so `GET /v1/alerts` and the review page answer the same everywhere.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};

use crate::{js_err, Cluster, ClusterError, ALERTS_STREAM};
use plumbline_alert::{Alert, AlertBook};

/// An alert's subject. Alert ids are `alr-` and hex; anything else is hex-encoded, so an
/// id can never reach another subject.
fn alert_subject(id: &str) -> String {
    if crate::partition::is_valid_name(id) {
        format!("plumbline.alerts.{id}")
    } else {
        let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
        format!("plumbline.alerts.x{hex}")
    }
}

/// Publishes alert changes in the order they happen (one task, so two versions of an
/// alert never overtake each other), retrying until JetStream takes each one.
pub struct AlertPublisher {
    tx: mpsc::UnboundedSender<Alert>,
    queued: AtomicU64,
    published: watch::Receiver<u64>,
}

impl AlertPublisher {
    pub fn start(cluster: Cluster) -> Arc<AlertPublisher> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Alert>();
        let (done, published) = watch::channel(0u64);
        tokio::spawn(async move {
            let mut n = 0u64;
            while let Some(alert) = rx.recv().await {
                let payload = Bytes::from(serde_json::to_vec(&alert).expect("alerts serialise"));
                cluster
                    .publish_until_taken(alert_subject(&alert.id), payload)
                    .await;
                n += 1;
                let _ = done.send(n);
            }
        });
        Arc::new(AlertPublisher {
            tx,
            queued: AtomicU64::new(0),
            published,
        })
    }

    /// Waits until every alert change queued before this call is in the stream (a
    /// partition owner, before it commits the step that raised them).
    pub async fn flushed(&self) {
        let target = self.queued.load(Ordering::Acquire);
        let mut rx = self.published.clone();
        let _ = rx.wait_for(|n| *n >= target).await;
    }
}

impl AlertPublisher {
    /// Queues a stored version of an alert (the alert book's replica).
    pub fn stored(&self, alert: &Alert) {
        self.queued.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(alert.clone()).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Every node's copy of the alert stream in its own alert book.
pub struct Mirror {
    applied: watch::Receiver<u64>,
    cluster: Cluster,
}

impl Mirror {
    pub async fn start(cluster: Cluster, book: AlertBook) -> Result<Arc<Mirror>, ClusterError> {
        let mut messages =
            crate::read_all(&cluster.js, ALERTS_STREAM, "plumbline.alerts.>").await?;
        let (tx, applied) = watch::channel(0u64);
        tokio::spawn(async move {
            while let Some(m) = messages.next().await {
                let m = match m {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "alert mirror: the stream failed; resuming");
                        continue;
                    }
                };
                let Ok(seq) = m.info().map(|i| i.stream_sequence) else {
                    continue;
                };
                match serde_json::from_slice::<Alert>(&m.payload) {
                    Ok(alert) => {
                        let book = book.clone();
                        let taken = tokio::task::spawn_blocking(move || book.import(&alert)).await;
                        if let Ok(Err(e)) = taken {
                            tracing::error!(error = %e, "alert mirror: could not store an alert");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(subject = %m.subject, error = %e, "alert mirror: not an alert; skipped")
                    }
                }
                let _ = tx.send(seq);
            }
        });
        Ok(Arc::new(Mirror { applied, cluster }))
    }

    /// Waits until every alert in the stream now is in this node's book: a partition's new
    /// owner does this before it evaluates, so it folds findings into the alerts the old
    /// owner raised instead of raising second ones.
    pub async fn caught_up(&self) -> Result<(), ClusterError> {
        let info = self
            .cluster
            .js
            .get_stream(ALERTS_STREAM)
            .await
            .map_err(|e| js_err("alert stream")(e.to_string()))?
            .get_info()
            .await
            .map_err(|e| js_err("alert stream info")(e.to_string()))?;
        let target = info.state.last_sequence;
        let mut rx = self.applied.clone();
        let _ = rx.wait_for(|n| *n >= target).await;
        Ok(())
    }
}
