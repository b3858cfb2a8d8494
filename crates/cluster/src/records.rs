//! Review records on a cluster: labels and response-action decisions taken on any node are
//! published to the record stream (last version per table, node and key) and every other
//! node keeps them, so the review page, precision and the actions list answer the same
//! everywhere. The alert changes they cause travel with the alert stream.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::{Cluster, ClusterError, RECORDS_STREAM};
use plumbline_store::{RecordReplica, StoreError};

/// Keeps a record another node wrote: (key, value, that node).
pub type Importer = Arc<dyn Fn(&[u8], &[u8], &str) -> Result<(), StoreError> + Send + Sync>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Publishes this node's records of each table and keeps everyone else's.
pub struct Records {
    tx: mpsc::UnboundedSender<(&'static str, Vec<u8>, Vec<u8>)>,
}

impl Records {
    /// Starts publishing (in write order, retrying until taken) and mirroring into
    /// `tables` (table name → how this node keeps another's record).
    pub async fn start(
        cluster: Cluster,
        tables: HashMap<&'static str, Importer>,
    ) -> Result<Records, ClusterError> {
        let (tx, mut rx) = mpsc::unbounded_channel::<(&'static str, Vec<u8>, Vec<u8>)>();
        let out = cluster.clone();
        tokio::spawn(async move {
            while let Some((table, key, value)) = rx.recv().await {
                let subject = format!("plumbline.records.{table}.{}.{}", out.node, hex(&key));
                out.publish_until_taken(subject, Bytes::from(value)).await;
            }
        });
        let mut messages =
            crate::read_all(&cluster.js, RECORDS_STREAM, "plumbline.records.>").await?;
        let me = cluster.node.clone();
        tokio::spawn(async move {
            while let Some(m) = messages.next().await {
                let Ok(m) = m else { continue };
                // plumbline.records.<table>.<node>.<hex key>
                let mut parts = m.subject.splitn(5, '.').skip(2);
                let (Some(table), Some(node), Some(key)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                if node == me {
                    continue;
                }
                let (Some(import), Some(key)) = (tables.get(table), unhex(key)) else {
                    continue;
                };
                let (import, node, value) = (import.clone(), node.to_string(), m.payload.clone());
                let kept = tokio::task::spawn_blocking(move || import(&key, &value, &node)).await;
                if let Ok(Err(e)) = kept {
                    tracing::error!(table, error = %e, "a record from another node could not be kept");
                }
            }
        });
        Ok(Records { tx })
    }

    /// The replica a table's writes go through.
    pub fn replica(&self, table: &'static str) -> RecordReplica {
        let tx = self.tx.clone();
        Arc::new(move |key: &[u8], value: &[u8]| {
            let _ = tx.send((table, key.to_vec(), value.to_vec()));
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_go_through_subjects_and_back() {
        let key = b"alr-1\x00\x00\x00\x00\x00\x00\x00\x00\x07";
        assert_eq!(super::unhex(&super::hex(key)).unwrap(), key);
        assert!(super::hex(key).bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(super::unhex("zz"), None);
    }
}
