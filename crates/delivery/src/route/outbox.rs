//! The durable outbox: every delivery is a record in sled before anything is sent, and it
//! leaves the `outbox` tree (atomically, into `outbox_done`) only once the receiver
//! acknowledged it or refused it for good. A destination that is down is retried with
//! backoff, in order, and nothing pending is lost across a restart.
//!
//! Durability: records are written by the policy stage on an evaluation thread; before the
//! dispatcher attempts anything it waits on the store's barrier, so a delivery is on disk
//! before its first attempt (the same group commit the event store uses).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use sled::Transactional;
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::Message;
use plumbline_event::{format_time, time_from_nanos};
use plumbline_policy::schedule::nanos;
use plumbline_store::{StoreError, Writer};

/// Makes everything written to the database so far durable.
pub trait Durability: Send + Sync + 'static {
    fn barrier(&self) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + '_>>;
}

impl Durability for Writer {
    fn barrier(&self) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + '_>> {
        Box::pin(Writer::barrier(self))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    Message(Box<Message>),
    /// Run an approved response action (its record lives in the actions tree).
    Action {
        action_id: String,
    },
}

/// Checked just before sending; when it no longer holds, the delivery is cancelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Condition {
    /// Break-glass follow-ups only go out if nobody has reviewed the alert yet.
    AlertStillOpen { alert_id: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Refused for good or given up on; `POST /v1/outbox/{id}/retry` sends it again.
    Failed,
    /// No longer needed (its condition stopped holding).
    Cancelled,
    /// Handed to the cluster's one outbox consumer, which sends it (cluster nodes only).
    Forwarded,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: u64,
    pub destination: String,
    pub payload: Payload,
    pub created_at: i64,
    /// Not attempted before this (quiet hours, digest time, follow-up due time).
    pub not_before: i64,
    /// Why it waits, for people reading the outbox.
    pub held: Option<String>,
    pub condition: Option<Condition>,
    pub attempts: u32,
    pub last_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub state: DeliveryState,
    pub receipt: Option<String>,
    pub finished_at: Option<i64>,
    /// `<node>:<id>` of the node that decided it, when another node forwarded it here
    /// (cluster nodes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

impl Delivery {
    /// The id receivers see (`X-Plumbline-Delivery`, digest items, action runs): the same
    /// on every retry and on whichever cluster node sends it, so a receiver can drop
    /// repeats. Local ids are per node; a forwarded delivery's comes from its origin.
    pub fn key(&self) -> u64 {
        match &self.origin {
            None => self.id,
            Some(origin) => {
                let digest = sha2::Sha256::digest(origin.as_bytes());
                let mut b = [0u8; 8];
                b.copy_from_slice(&digest[..8]);
                // Kept below 2^53 so JSON readers that parse numbers as doubles keep it.
                u64::from_be_bytes(b) >> 11
            }
        }
    }
}

/// What [`Outbox::import`] did with a forwarded delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// Pending here under this local id (new, or imported before and not yet finished).
    Pending(u64),
    /// Imported before and finished since: nothing more to do.
    Finished(u64),
}

/// What the policy stage asks to deliver.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub destination: String,
    pub payload: Payload,
    pub not_before: Option<OffsetDateTime>,
    pub held: Option<String>,
    pub condition: Option<Condition>,
}

/// The outbox trees. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    pub(crate) db: sled::Db,
    pub(crate) pending: sled::Tree,
    pub(crate) done: sled::Tree,
    /// Alerts paged on PagerDuty: alert id → trigger message + destinations, until resolved.
    pub(crate) paged: sled::Tree,
    /// Forwarded deliveries taken here: origin → local id (a redelivery is not a second
    /// entry).
    pub(crate) origins: sled::Tree,
    pub(crate) wake: Arc<Notify>,
    /// Ids are taken and inserted under this lock, so every id up to the highest pending
    /// one is already written when the dispatcher reads its horizon.
    pub(crate) order: Arc<Mutex<()>>,
    /// Held (shared) by a decision from its first entry to its decision record; the
    /// dispatcher reads its horizon holding it exclusively, so every entry it will send
    /// has its decision record written too, and the same barrier makes both durable (a
    /// crash cannot keep a sent delivery and lose the decision that explains it).
    pub(crate) deciding: Arc<std::sync::RwLock<()>>,
}

pub(crate) fn key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// The id a [`key`] encodes (0 for anything else).
fn id_of(k: &[u8]) -> u64 {
    u64::from_be_bytes(k.try_into().unwrap_or([0; 8]))
}

pub(crate) fn decode(v: &[u8]) -> Option<Delivery> {
    serde_json::from_slice(v).ok()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Paged {
    pub(crate) message: Message,
    pub(crate) destinations: Vec<String>,
}

impl Outbox {
    pub fn open(db: &sled::Db) -> Result<Outbox, StoreError> {
        Ok(Outbox {
            db: db.clone(),
            pending: db.open_tree("outbox")?,
            done: db.open_tree("outbox_done")?,
            paged: db.open_tree("outbox_paged")?,
            origins: db.open_tree("outbox_origins")?,
            wake: Arc::new(Notify::new()),
            order: Arc::default(),
            deciding: Arc::default(),
        })
    }

    /// Held while a decision writes its entries and its record (see `deciding`).
    pub fn deciding(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.deciding.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a delivery (not yet durable: the dispatcher's barrier makes it so before
    /// the first attempt). Returns its id, increasing across restarts.
    pub fn enqueue(&self, n: NewDelivery, now: OffsetDateTime) -> Result<u64, StoreError> {
        let _order = self.order.lock().expect("outbox order");
        let (id, bytes) = self.prepare(n, now)?;
        self.pending.insert(key(id), bytes)?;
        Ok(id)
    }

    /// A delivery's id and stored form, for a caller that writes it together with other
    /// records in one transaction (a policy decision and its deliveries: sled's background
    /// flush may make any prefix of separate writes durable, so only a transaction keeps a
    /// sent delivery from outliving the decision that explains it). Call it while holding
    /// [`Outbox::deciding`], which keeps the dispatcher's horizon from passing the id
    /// before the entry is written.
    pub fn prepare(
        &self,
        n: NewDelivery,
        now: OffsetDateTime,
    ) -> Result<(u64, Vec<u8>), StoreError> {
        let id = self.db.generate_id()?;
        let d = Delivery {
            id,
            destination: n.destination,
            payload: n.payload,
            created_at: nanos(now),
            not_before: n.not_before.map(nanos).unwrap_or(0),
            held: n.held,
            condition: n.condition,
            attempts: 0,
            last_attempt_at: None,
            last_error: None,
            state: DeliveryState::Pending,
            receipt: None,
            finished_at: None,
            origin: None,
        };
        Ok((id, serde_json::to_vec(&d).expect("deliveries serialise")))
    }

    /// Takes a delivery another cluster node decided and forwarded (`origin` names it
    /// there), as a pending entry with a local id. A delivery taken before is not taken
    /// twice: still pending, it is the same entry; finished, there is nothing to do.
    pub fn import(&self, mut d: Delivery, origin: &str) -> Result<Imported, StoreError> {
        let _order = self.order.lock().expect("outbox order");
        if let Some(id) = self.origins.get(origin)? {
            let id = id_of(&id);
            return Ok(match self.pending.get(key(id))? {
                Some(_) => Imported::Pending(id),
                None => Imported::Finished(id),
            });
        }
        d.id = self.db.generate_id()?;
        d.origin = Some(origin.to_string());
        d.state = DeliveryState::Pending;
        d.finished_at = None;
        self.origins.insert(origin, &key(d.id))?;
        self.pending.insert(
            key(d.id),
            serde_json::to_vec(&d).expect("deliveries serialise"),
        )?;
        self.wake();
        Ok(Imported::Pending(d.id))
    }

    /// Forgets the forwarded deliveries still pending here: this node no longer consumes
    /// the cluster's outbox, and the cluster hands them to the node that does. Returns
    /// how many.
    pub fn drop_imported(&self) -> Result<usize, StoreError> {
        let _order = self.order.lock().expect("outbox order");
        let mut n = 0;
        for (id, origin) in self.pending().filter_map(|d| Some((d.id, d.origin?))) {
            self.pending.remove(key(id))?;
            self.origins.remove(origin.as_bytes())?;
            n += 1;
        }
        Ok(n)
    }

    /// Tells the dispatcher there is work (callable from any thread).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn get(&self, id: u64) -> Result<Option<Delivery>, StoreError> {
        if let Some(v) = self.pending.get(key(id))? {
            return Ok(decode(&v));
        }
        Ok(self.done.get(key(id))?.and_then(|v| decode(&v)))
    }

    /// Pending deliveries in order.
    pub fn pending(&self) -> impl Iterator<Item = Delivery> + '_ {
        self.pending
            .iter()
            .values()
            .filter_map(|v| v.ok().and_then(|v| decode(&v)))
    }

    /// Finished deliveries, newest first.
    pub fn finished(&self) -> impl Iterator<Item = Delivery> + '_ {
        self.done
            .iter()
            .rev()
            .filter_map(|kv| kv.ok().and_then(|(_, v)| decode(&v)))
    }

    pub(crate) fn save(&self, d: &Delivery) -> Result<(), StoreError> {
        self.pending.insert(
            key(d.id),
            serde_json::to_vec(d).expect("deliveries serialise"),
        )?;
        Ok(())
    }

    /// Moves a delivery out of the pending tree in one transaction.
    pub(crate) fn finish(
        &self,
        mut d: Delivery,
        state: DeliveryState,
        now: i64,
    ) -> Result<(), StoreError> {
        d.state = state;
        d.finished_at = Some(now);
        let bytes = serde_json::to_vec(&d).expect("deliveries serialise");
        (&self.pending, &self.done)
            .transaction(|(p, f)| {
                p.remove(&key(d.id))?;
                f.insert(&key(d.id), bytes.as_slice())?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
                sled::transaction::TransactionError::Abort(()) => {
                    StoreError::Sled(sled::Error::ReportableBug("outbox move aborted".into()))
                }
            })
    }

    /// Puts a failed or cancelled delivery back in line.
    pub fn retry(&self, id: u64) -> Result<Option<Delivery>, StoreError> {
        let Some(mut d) = self.done.get(key(id))?.and_then(|v| decode(&v)) else {
            return Ok(None);
        };
        if matches!(d.state, DeliveryState::Delivered | DeliveryState::Forwarded) {
            return Ok(Some(d));
        }
        // Retried on a cluster node, a forwarded delivery is this node's own again: it is
        // forwarded anew, to whichever node consumes the outbox now.
        d.origin = None;
        d.state = DeliveryState::Pending;
        d.finished_at = None;
        d.not_before = 0;
        d.held = None;
        let bytes = serde_json::to_vec(&d).expect("deliveries serialise");
        (&self.pending, &self.done)
            .transaction(|(p, f)| {
                f.remove(&key(id))?;
                p.insert(&key(id), bytes.as_slice())?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
                sled::transaction::TransactionError::Abort(()) => {
                    StoreError::Sled(sled::Error::ReportableBug("outbox retry aborted".into()))
                }
            })?;
        self.wake();
        Ok(Some(d))
    }

    /// Remembers that `alert_id` paged, so resolving the alert resolves the page.
    pub fn watch_resolve(
        &self,
        alert_id: &str,
        message: &Message,
        destination: &str,
    ) -> Result<(), StoreError> {
        let mut p: Paged = self
            .paged
            .get(alert_id)?
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or(Paged {
                message: message.clone(),
                destinations: vec![],
            });
        p.message = message.clone();
        if !p.destinations.iter().any(|d| d == destination) {
            p.destinations.push(destination.to_string());
        }
        self.paged
            .insert(alert_id, serde_json::to_vec(&p).expect("json"))?;
        Ok(())
    }

    /// Removes finished deliveries older than `before` (unix nanos).
    pub fn prune(&self, before: i64) -> Result<usize, StoreError> {
        let mut n = 0;
        for d in self.finished() {
            if d.finished_at.unwrap_or(0) < before {
                self.done.remove(key(d.id))?;
                if let Some(origin) = &d.origin {
                    self.origins.remove(origin.as_bytes())?;
                }
                n += 1;
            }
        }
        Ok(n)
    }

    /// The highest id recorded so far (0 when none).
    pub(crate) fn horizon(&self) -> Result<u64, StoreError> {
        let _order = self.order.lock().expect("outbox order");
        let p = self.pending.last()?.map(|(k, _)| k);
        Ok(p.map(|k| id_of(&k)).unwrap_or(0))
    }

    pub fn status(&self, now: OffsetDateTime) -> OutboxStatus {
        let now = nanos(now);
        let mut s = OutboxStatus::default();
        for d in self.pending() {
            s.pending += 1;
            let e = s.destinations.entry(d.destination.clone()).or_default();
            e.pending += 1;
            if d.not_before > now {
                s.held += 1;
                e.held += 1;
            }
            if d.attempts > 0 {
                s.retrying += 1;
                e.retrying += 1;
                if d.last_error.is_some() {
                    e.last_error = d.last_error.clone();
                }
            }
            if s.oldest_pending_at.is_none() {
                s.oldest_pending_at = Some(format_time(time_from_nanos(d.created_at)));
            }
        }
        for d in self.finished() {
            let e = s.destinations.entry(d.destination.clone()).or_default();
            match d.state {
                DeliveryState::Delivered => {
                    s.delivered += 1;
                    e.delivered += 1;
                }
                DeliveryState::Failed => {
                    s.failed += 1;
                    e.failed += 1;
                }
                DeliveryState::Forwarded => {
                    s.forwarded += 1;
                    e.forwarded += 1;
                }
                _ => s.cancelled += 1,
            }
        }
        s
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DestinationStatus {
    pub pending: usize,
    pub held: usize,
    pub retrying: usize,
    pub delivered: usize,
    pub failed: usize,
    /// Handed to the cluster's outbox consumer (cluster nodes).
    pub forwarded: usize,
    pub last_error: Option<String>,
    pub backing_off_until: Option<String>,
    /// Why the destination is not sending, when it is disabled.
    pub disabled: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct OutboxStatus {
    /// Deliveries not yet acknowledged (the outbox depth).
    pub pending: usize,
    /// Of those, waiting for their time (quiet hours, digest, follow-up).
    pub held: usize,
    /// Of those, attempted at least once and not yet through.
    pub retrying: usize,
    pub delivered: usize,
    pub failed: usize,
    pub cancelled: usize,
    /// Handed to the cluster's outbox consumer, which sends them (cluster nodes).
    pub forwarded: usize,
    pub oldest_pending_at: Option<String>,
    pub destinations: BTreeMap<String, DestinationStatus>,
}

pub use super::dispatch::{ActionRunner, DeliverySettings, Dispatcher, PassReport};
