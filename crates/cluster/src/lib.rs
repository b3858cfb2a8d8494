//! Scale-out: the same binary on several nodes over NATS JetStream.
//!
//! ```text
//! ingest (any node) ─► PLUMBLINE_EVENTS  plumbline.events.<partition>   (Nats-Msg-Id: id@side)
//!                          │ durable consumer part-<p>, read by the partition's owner only
//!                          ▼
//!        owner: local store ─► trajectory stage (its sides) ─► evaluate ─► alert book
//!                          │                                                 │ publish
//!                          ▼                                                 ▼
//!        PLUMBLINE_COMMITS plumbline.commits.<p>        PLUMBLINE_ALERTS plumbline.alerts.<id>
//!        (the partition's checkpoint; each commit        (last value per alert; every node
//!         fenced on the one before it)                    mirrors it into its alert book)
//!
//! membership: KV plumbline_nodes (expires)   ownership: KV plumbline_leases (expires)
//!
//! deliveries (any node's outbox) ─► PLUMBLINE_OUTBOX plumbline.outbox.deliveries
//!        (a work queue; one durable consumer, read by partition 0's owner, which sends)
//! ```
//!
//! One event is published once per side (its actor's and its system's trajectories),
//! each to the partition of that side's key, so every trajectory is built by one node
//! and built whole. Invariants:
//! - a 202 only after JetStream acknowledged every side of every event;
//! - a partition's step is committed only after its changed trajectories were evaluated
//!   and their alerts published; a commit names the one before it (expected last subject
//!   sequence), so an owner that lost its lease cannot commit over its successor;
//! - a new owner rebuilds the partition's windows from the log up to the last commit
//!   without evaluating (they were judged), then evaluates what follows: every
//!   acknowledged event is in exactly one commit.

mod alerts;
pub mod audit;
mod config;
mod lease;
pub mod outbox;
pub mod packs;
pub mod partition;
mod publish;
pub mod records;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

pub use alerts::{AlertPublisher, Mirror};
pub use config::{ClusterConfig, DEFAULT_CONFIG};
pub use lease::Membership;
pub use publish::Publisher;
pub use worker::{Owner, Undecided};

pub const EVENTS_STREAM: &str = "PLUMBLINE_EVENTS";
pub const COMMITS_STREAM: &str = "PLUMBLINE_COMMITS";
pub const ALERTS_STREAM: &str = "PLUMBLINE_ALERTS";
pub const RECORDS_STREAM: &str = "PLUMBLINE_RECORDS";
pub const OUTBOX_STREAM: &str = "PLUMBLINE_OUTBOX";
const NODES_BUCKET: &str = "plumbline_nodes";
const LEASES_BUCKET: &str = "plumbline_leases";
/// Which side of its event a message carries.
pub const SIDE_HEADER: &str = "Plumbline-Side";
/// The node that published a message.
pub const NODE_HEADER: &str = "Plumbline-Node";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot reach NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("JetStream {what}: {reason}")]
    JetStream { what: String, reason: String },
    #[error(
        "partition {0}: another node committed since this one's last commit; it is theirs now"
    )]
    Fenced(u32),
    #[error("{0}")]
    Store(#[from] plumbline_store::StoreError),
}

pub(crate) fn js_err(what: impl Into<String>) -> impl FnOnce(String) -> ClusterError {
    let what = what.into();
    move |reason| ClusterError::JetStream { what, reason }
}

impl Cluster {
    /// Publishes `payload` on `subject` as this node (with `id` as its `Nats-Msg-Id`, so
    /// the stream drops a repeat) and waits for JetStream's acknowledgement.
    pub(crate) async fn publish(
        &self,
        subject: String,
        payload: bytes::Bytes,
        id: Option<&str>,
    ) -> Result<(), String> {
        let mut msg = jetstream::message::PublishMessage::build()
            .payload(payload)
            .header(NODE_HEADER, self.node.as_str());
        if let Some(id) = id {
            msg = msg.message_id(id);
        }
        let ack = self
            .js
            .send_publish(subject, msg)
            .await
            .map_err(|e| e.to_string())?;
        ack.await.map(|_| ()).map_err(|e| e.to_string())
    }

    /// As [`Cluster::publish`], retrying with back-off until JetStream acknowledges it: a
    /// replica (alerts, records) must not skip a version.
    pub(crate) async fn publish_until_taken(&self, subject: String, payload: bytes::Bytes) {
        let mut wait = Duration::from_millis(50);
        loop {
            match self.publish(subject.clone(), payload.clone(), None).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(subject, error = %e, "not published yet; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

/// Every message of `stream` on `filter`, from the first, in order, then new ones.
pub(crate) async fn read_all(
    js: &jetstream::Context,
    stream: &str,
    filter: &str,
) -> Result<jetstream::consumer::pull::Ordered, ClusterError> {
    let what = format!("stream {stream}");
    js.get_stream(stream)
        .await
        .map_err(|e| js_err(what.clone())(e.to_string()))?
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: filter.into(),
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| js_err(what.clone())(e.to_string()))?
        .messages()
        .await
        .map_err(|e| js_err(what)(e.to_string()))
}

/// A key-value bucket. With a `lease`, entries expire unless renewed within it: a stopped
/// node's membership and partitions free themselves.
///
/// The bucket's stream is made here in the layout JetStream's key-value buckets use
/// (`KV_<bucket>` on `$KV.<bucket>.>`, last value per key, rollups, direct gets), because
/// the client's own `create_key_value` first reads the account's limits in a shape
/// nats-server 2.9 does not answer with.
async fn bucket(
    js: &jetstream::Context,
    name: &str,
    lease: Option<Duration>,
    replicas: usize,
) -> Result<kv::Store, ClusterError> {
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age: lease.unwrap_or_default(),
        duplicate_window: lease.unwrap_or(Duration::from_secs(120)),
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| js_err(format!("bucket {name}"))(e.to_string()))?;
    js.get_key_value(name)
        .await
        .map_err(|e| js_err(format!("bucket {name}"))(e.to_string()))
}

/// A connection to the cluster's JetStream, with its streams and buckets in place.
#[derive(Clone)]
pub struct Cluster {
    pub config: Arc<ClusterConfig>,
    pub node: String,
    pub js: jetstream::Context,
    pub(crate) nodes: kv::Store,
    pub(crate) leases: kv::Store,
}

impl Cluster {
    /// Connects and creates what is missing (streams, buckets); existing ones are used as
    /// they are, so nodes may start in any order.
    pub async fn connect(config: &ClusterConfig, node: &str) -> Result<Cluster, ClusterError> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("plumbline {node}"))
            .connect(config.url.as_str())
            .await
            .map_err(|e| ClusterError::Connect {
                url: config.url.clone(),
                reason: e.to_string(),
            })?;
        let js = jetstream::new(client);
        let max_age = Duration::from_secs(config.stream_max_age_hours.max(1) * 3600);
        let replicas = config.replicas.max(1);
        use stream::RetentionPolicy::{Limits, WorkQueue};
        let streams = [
            (EVENTS_STREAM, "plumbline.events.>", -1, Limits),
            (COMMITS_STREAM, "plumbline.commits.>", -1, Limits),
            // The last version of each alert: the stream is the cluster's alert table.
            (ALERTS_STREAM, "plumbline.alerts.>", 1, Limits),
            // Labels and decisions, the last version per table, node and key.
            (RECORDS_STREAM, "plumbline.records.>", 1, Limits),
            // Deliveries not yet finished by the one consumer (it removes what it acks).
            (OUTBOX_STREAM, "plumbline.outbox.>", -1, WorkQueue),
        ];
        for (name, subject, per_subject, retention) in streams {
            js.get_or_create_stream(stream::Config {
                name: name.to_string(),
                subjects: vec![subject.to_string()],
                retention,
                max_age,
                max_messages_per_subject: per_subject,
                duplicate_window: Duration::from_secs(config.duplicate_window_secs.max(1))
                    .min(max_age),
                num_replicas: replicas,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| js_err(format!("stream {name}"))(e.to_string()))?;
        }
        let lease = Duration::from_secs(config.lease_secs);
        let nodes = bucket(&js, NODES_BUCKET, Some(lease), replicas).await?;
        let leases = bucket(&js, LEASES_BUCKET, Some(lease), replicas).await?;
        Ok(Cluster {
            config: Arc::new(config.clone()),
            node: node.to_string(),
            js,
            nodes,
            leases,
        })
    }
}
