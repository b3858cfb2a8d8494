//! The seam to a cluster's one outbox consumer. On a cluster, every node decides about
//! the alerts it raised and records the deliveries in its own outbox (with the decision,
//! durable before anything happens), but only one node sends: each node's dispatcher
//! forwards its own entries through the [`Relay`] and marks them forwarded, and the node
//! that consumes the cluster's outbox imports them ([`Outbox::import`]) and sends them
//! like its own. A single node has no relay and sends what it decided.
//!
//! [`Outbox::import`]: super::outbox::Outbox::import

use std::future::Future;
use std::pin::Pin;

use super::outbox::Delivery;

pub type Forwarding<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

pub trait Relay: Send + Sync + 'static {
    /// Hands a delivery decided here to the cluster's consumer, with `record` (the stored
    /// response action an action delivery runs, which the consumer may not have yet).
    /// `Ok` once the cluster holds it durably.
    fn forward<'a>(&'a self, d: &'a Delivery, record: Option<Vec<u8>>) -> Forwarding<'a>;
    /// Whether this node consumes the cluster's outbox and still holds the imported
    /// delivery `id` (one that is no longer held is another node's to send).
    fn holds(&self, id: u64) -> bool;
    /// The imported delivery `id` is finished here (delivered, refused, given up,
    /// cancelled).
    fn finished(&self, id: u64);
}
