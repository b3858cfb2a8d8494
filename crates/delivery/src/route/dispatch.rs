//! The dispatcher: sends what the outbox holds, one destination at a time and in order,
//! retrying with back-off (a receiver's Retry-After wins), giving up after the configured
//! time, and waking as soon as new work is written.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::outbox::*;
use super::relay::Relay;
use super::{DeliveryError, Destination, Message, MessageKind};
use plumbline_alert::{AlertBook, AlertStatus};
use plumbline_event::{format_time, time_from_nanos};
use plumbline_policy::schedule::{nanos, Clock};
use plumbline_store::StoreError;

/// Retry and timing knobs (`[delivery]` in the configuration).
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub give_up_after: Duration,
    /// Longest the dispatcher sleeps without being woken.
    pub poll: Duration,
    pub keep_finished: Duration,
    /// Most alerts in one digest email.
    pub digest_limit: usize,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(900),
            give_up_after: Duration::from_secs(72 * 3600),
            poll: Duration::from_secs(1),
            keep_finished: Duration::from_secs(30 * 86400),
            digest_limit: 500,
        }
    }
}

/// Runs approved response actions (the `action:<name>` pseudo-destinations).
pub trait ActionRunner: Send + Sync + 'static {
    fn run<'a>(
        &'a self,
        action_id: &'a str,
        by_delivery: u64,
    ) -> Pin<Box<dyn Future<Output = Result<String, DeliveryError>> + Send + 'a>>;
    /// Records the final outcome on the action (done / failed).
    fn finished(&self, action_id: &str, outcome: Result<&str, &str>);
    /// The stored record of an action, as it travels with its delivery to another
    /// cluster node.
    fn record(&self, _action_id: &str) -> Option<Vec<u8>> {
        None
    }
}

#[derive(Debug, Default, Clone)]
struct Backoff {
    failures: u32,
    until: i64,
}

/// What one pass did (for tests and logs).
#[derive(Debug, Default, Clone)]
pub struct PassReport {
    pub delivered: usize,
    pub failed: usize,
    pub retried: usize,
    pub cancelled: usize,
    /// The earliest time something pending becomes due (unix nanos).
    pub next_due: Option<i64>,
}

impl PassReport {
    fn add(&mut self, o: PassReport) {
        self.delivered += o.delivered;
        self.failed += o.failed;
        self.retried += o.retried;
        self.cancelled += o.cancelled;
        self.next_due = match (self.next_due, o.next_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

struct Inner {
    outbox: Outbox,
    destinations: BTreeMap<String, Result<Destination, String>>,
    actions: Option<Arc<dyn ActionRunner>>,
    alerts: Option<AlertBook>,
    clock: Arc<dyn Clock>,
    /// Set when the store's writer exists (it starts after the stages that feed it).
    durability: std::sync::OnceLock<Arc<dyn Durability>>,
    /// Set on a cluster node before the loop starts: own entries are forwarded, imported
    /// ones sent while held.
    relay: std::sync::OnceLock<Arc<dyn Relay>>,
    settings: DeliverySettings,
    backoff: Mutex<HashMap<String, Backoff>>,
    stop: AtomicBool,
    /// One pass at a time (the loop and callers of `pass` share the outbox).
    pass_lock: tokio::sync::Mutex<()>,
}

/// Sends what the outbox holds. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher(Arc<Inner>);

impl Dispatcher {
    /// `alerts` lets follow-ups check their alert and resolves pages of resolved alerts;
    /// `actions` runs approved response actions.
    pub fn new(
        outbox: Outbox,
        destinations: BTreeMap<String, Result<Destination, String>>,
        clock: Arc<dyn Clock>,
        settings: DeliverySettings,
        alerts: Option<AlertBook>,
        actions: Option<Arc<dyn ActionRunner>>,
    ) -> Dispatcher {
        Dispatcher(Arc::new(Inner {
            outbox,
            destinations,
            actions,
            alerts,
            clock,
            durability: std::sync::OnceLock::new(),
            relay: std::sync::OnceLock::new(),
            settings,
            backoff: Mutex::default(),
            stop: AtomicBool::new(false),
            pass_lock: tokio::sync::Mutex::new(()),
        }))
    }

    pub fn outbox(&self) -> &Outbox {
        &self.0.outbox
    }

    /// Status with per-destination backoff and disabled reasons.
    pub fn status(&self) -> OutboxStatus {
        let now = self.0.clock.now();
        let mut s = self.0.outbox.status(now);
        for (name, d) in &self.0.destinations {
            let e = s.destinations.entry(name.clone()).or_default();
            if let Err(why) = d {
                e.disabled = Some(why.clone());
            }
        }
        for (name, b) in self.0.backoff.lock().expect("backoff").iter() {
            if b.until > nanos(now) {
                s.destinations
                    .entry(name.clone())
                    .or_default()
                    .backing_off_until = Some(format_time(time_from_nanos(b.until)));
            }
        }
        s
    }

    /// How the dispatcher makes records durable before attempting them (once).
    pub fn set_durability(&self, d: Arc<dyn Durability>) {
        let _ = self.0.durability.set(d);
    }

    /// Makes this a cluster node's dispatcher (once, before [`Dispatcher::spawn`]).
    pub fn set_relay(&self, relay: Arc<dyn Relay>) {
        let _ = self.0.relay.set(relay);
    }

    /// Waits for the pass under way, if any: a node that stops consuming the cluster's
    /// outbox lets a send in flight finish before it hands the rest back.
    pub async fn idle(&self) {
        drop(self.0.pass_lock.lock().await);
    }

    /// Records a delivery's end; an imported one is acknowledged to the cluster.
    fn finish(&self, d: Delivery, state: DeliveryState, now: i64) -> Result<(), StoreError> {
        let (id, imported) = (d.id, d.origin.is_some());
        self.0.outbox.finish(d, state, now)?;
        if let Some(relay) = self.0.relay.get().filter(|_| imported) {
            relay.finished(id);
        }
        Ok(())
    }

    /// Hands this node's own pending entries (`own`, in order) to the cluster; stops at
    /// the first the cluster does not take (the next pass tries again).
    async fn forward(&self, relay: &dyn Relay, own: Vec<Delivery>) -> Result<(), StoreError> {
        let now = nanos(self.0.clock.now());
        for d in own {
            let record = match (&d.payload, &self.0.actions) {
                (Payload::Action { action_id }, Some(runner)) => runner.record(action_id),
                _ => None,
            };
            if let Err(e) = relay.forward(&d, record).await {
                tracing::warn!(delivery = d.id, error = %e, "not forwarded to the cluster's outbox yet; retrying");
                break;
            }
            self.0.outbox.finish(d, DeliveryState::Forwarded, now)?;
        }
        Ok(())
    }

    /// Starts the delivery loop on the current tokio runtime.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move { me.run().await })
    }

    /// Stops the loop after its current pass.
    pub fn shutdown(&self) {
        self.0.stop.store(true, Ordering::SeqCst);
        self.0.outbox.wake.notify_one();
    }

    async fn run(&self) {
        let mut last_prune = 0i64;
        while !self.0.stop.load(Ordering::SeqCst) {
            let report = match self.pass().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "outbox pass failed; retrying");
                    PassReport::default()
                }
            };
            let now = nanos(self.0.clock.now());
            if now - last_prune > 3_600_000_000_000 {
                last_prune = now;
                let keep = self.0.settings.keep_finished.as_nanos() as i64;
                if let Err(e) = self.0.outbox.prune(now - keep) {
                    tracing::warn!(error = %e, "outbox prune failed");
                }
            }
            let mut wait = self.0.settings.poll;
            let soonest = self
                .0
                .backoff
                .lock()
                .expect("backoff")
                .values()
                .filter(|b| b.until > now)
                .map(|b| b.until)
                .chain(report.next_due.filter(|d| *d > now))
                .min();
            if let Some(t) = soonest {
                wait = wait.min(Duration::from_nanos((t - now).max(1_000_000) as u64));
            }
            tokio::select! {
                _ = self.0.outbox.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Attempts everything that is due, once. Safe to call while the loop runs.
    pub async fn pass(&self) -> Result<PassReport, StoreError> {
        let _one = self.0.pass_lock.lock().await;
        self.resolve_pages()?;
        let durability = self.0.durability.get().ok_or(StoreError::WriterGone)?;
        // Decisions in progress finish first, so their records go to disk with their entries.
        let horizon = {
            let _settled = self
                .0
                .outbox
                .deciding
                .write()
                .unwrap_or_else(|p| p.into_inner());
            self.0.outbox.horizon()?
        };
        // Everything up to the horizon is on disk before its first attempt.
        durability.barrier().await?;
        let mut groups: BTreeMap<String, Vec<Delivery>> = BTreeMap::new();
        let due = self.0.outbox.pending().filter(|d| d.id <= horizon);
        match self.0.relay.get() {
            None => {
                for d in due {
                    groups.entry(d.destination.clone()).or_default().push(d);
                }
            }
            // A cluster node forwards what it decided and sends what it imported and holds.
            Some(relay) => {
                let (own, imported): (Vec<Delivery>, Vec<Delivery>) =
                    due.partition(|d| d.origin.is_none());
                for d in imported.into_iter().filter(|d| relay.holds(d.id)) {
                    groups.entry(d.destination.clone()).or_default().push(d);
                }
                self.forward(relay.as_ref(), own).await?;
            }
        }
        let mut set = tokio::task::JoinSet::new();
        for (name, list) in groups {
            let me = self.clone();
            set.spawn(async move { me.destination_pass(&name, list).await });
        }
        let mut report = PassReport::default();
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(r)) => report.add(r),
                Ok(Err(e)) => return Err(e),
                Err(e) => tracing::error!(error = %e, "delivery task panicked"),
            }
        }
        if report.delivered + report.failed + report.cancelled > 0 {
            // Acknowledgements durable too, so a restart does not resend them.
            durability.barrier().await?;
        }
        Ok(report)
    }

    /// Enqueues a PagerDuty resolve for paged alerts that reviewers resolved (or that
    /// policy suppressed since).
    fn resolve_pages(&self) -> Result<(), StoreError> {
        let Some(alerts) = &self.0.alerts else {
            return Ok(());
        };
        let now = self.0.clock.now();
        for item in self.0.outbox.paged.iter() {
            let (k, v) = item?;
            let Ok(p) = serde_json::from_slice::<Paged>(&v) else {
                continue;
            };
            let id = String::from_utf8_lossy(&k).into_owned();
            let status = alerts.get(&id)?.map(|a| a.status);
            if matches!(
                status,
                Some(AlertStatus::Resolved) | Some(AlertStatus::Suppressed) | None
            ) {
                let mut m = p.message.clone();
                m.kind = MessageKind::Resolve;
                for d in &p.destinations {
                    self.0.outbox.enqueue(
                        NewDelivery {
                            destination: d.clone(),
                            payload: Payload::Message(Box::new(m.clone())),
                            not_before: None,
                            held: None,
                            condition: None,
                        },
                        now,
                    )?;
                }
                self.0.outbox.paged.remove(&k)?;
            }
        }
        Ok(())
    }

    fn backing_off(&self, name: &str, now: i64) -> bool {
        self.0
            .backoff
            .lock()
            .expect("backoff")
            .get(name)
            .is_some_and(|b| b.until > now)
    }

    fn failed_attempt(&self, name: &str, now: i64, hint: Option<Duration>) -> i64 {
        let mut map = self.0.backoff.lock().expect("backoff");
        let b = map.entry(name.to_string()).or_default();
        b.failures += 1;
        let s = &self.0.settings;
        let exp = s
            .retry_base
            .saturating_mul(1u32 << (b.failures - 1).min(16))
            .min(s.retry_max);
        // Up to 20% jitter so many instances do not retry in lockstep.
        let jitter = exp.mul_f64((now.rem_euclid(1000) as f64) / 5000.0);
        let delay = hint.unwrap_or(exp + jitter).min(s.retry_max.max(exp));
        b.until = now + delay.as_nanos() as i64;
        b.until
    }

    fn succeeded(&self, name: &str) {
        self.0.backoff.lock().expect("backoff").remove(name);
    }

    async fn destination_pass(
        &self,
        name: &str,
        list: Vec<Delivery>,
    ) -> Result<PassReport, StoreError> {
        let mut report = PassReport::default();
        let now = nanos(self.0.clock.now());
        let (due, later): (Vec<Delivery>, Vec<Delivery>) =
            list.into_iter().partition(|d| d.not_before <= now);
        report.next_due = later.iter().map(|d| d.not_before).min();
        if due.is_empty() || self.backing_off(name, now) {
            return Ok(report);
        }
        if let Some(action) = name.strip_prefix("action:") {
            return self.run_actions(name, action, due, report).await;
        }
        let dest = match self.0.destinations.get(name) {
            Some(Ok(d)) => d.clone(),
            other => {
                let why = match other {
                    Some(Err(why)) => why.clone(),
                    _ => format!("destination `{name}` is not in the policy"),
                };
                // Kept pending: fixing the policy and restarting delivers them.
                for mut d in due {
                    if d.last_error.as_deref() != Some(why.as_str()) {
                        d.last_error = Some(why.clone());
                        self.0.outbox.save(&d)?;
                    }
                }
                return Ok(report);
            }
        };
        let give_up = self.0.settings.give_up_after.as_nanos() as i64;
        let mut batch: Vec<Delivery> = Vec::new();
        for mut d in due {
            let Payload::Message(m) = &d.payload else {
                continue;
            };
            if !dest.accepts(m.kind) {
                d.last_error = Some(format!("{} has nothing to send for this", dest.kind()));
                self.finish(d, DeliveryState::Cancelled, now)?;
                report.cancelled += 1;
                continue;
            }
            if let Some(why) = self.condition_failed(&d)? {
                d.last_error = Some(why);
                self.finish(d, DeliveryState::Cancelled, now)?;
                report.cancelled += 1;
                continue;
            }
            if d.attempts > 0 && now - d.created_at.max(d.not_before) > give_up {
                d.last_error = Some(format!(
                    "gave up after {} attempts: {}",
                    d.attempts,
                    d.last_error.clone().unwrap_or_default()
                ));
                self.finish(d, DeliveryState::Failed, now)?;
                report.failed += 1;
                continue;
            }
            if dest.is_digest() {
                if batch.len() < self.0.settings.digest_limit {
                    batch.push(d);
                }
                continue;
            }
            d.attempts += 1;
            d.last_attempt_at = Some(now);
            // Recorded before sending, so a retry after a crash knows it may be a repeat.
            self.0.outbox.save(&d)?;
            let m = m.clone();
            match dest.send(d.key(), &m, d.attempts > 1).await {
                Ok(receipt) => {
                    self.succeeded(name);
                    d.receipt = Some(receipt);
                    d.last_error = None;
                    self.finish(d, DeliveryState::Delivered, now)?;
                    report.delivered += 1;
                }
                Err(DeliveryError::Rejected(why)) => {
                    tracing::warn!(destination = name, delivery = d.id, %why, "delivery refused");
                    d.last_error = Some(format!("rejected: {why}"));
                    self.finish(d, DeliveryState::Failed, now)?;
                    report.failed += 1;
                }
                Err(DeliveryError::Retry { reason, after }) => {
                    let until = self.failed_attempt(name, now, after);
                    tracing::info!(destination = name, delivery = d.id, %reason, "delivery will be retried");
                    d.last_error = Some(reason);
                    self.0.outbox.save(&d)?;
                    report.retried += 1;
                    report.next_due = Some(report.next_due.map_or(until, |x| x.min(until)));
                    // The destination is down: keep order, try the rest after the backoff.
                    break;
                }
            }
        }
        if !batch.is_empty() {
            self.send_digest(name, &dest, batch, now, &mut report)
                .await?;
        }
        Ok(report)
    }

    async fn send_digest(
        &self,
        name: &str,
        dest: &Destination,
        mut batch: Vec<Delivery>,
        now: i64,
        report: &mut PassReport,
    ) -> Result<(), StoreError> {
        let Destination::Digest(digest) = dest else {
            return Ok(());
        };
        for d in &mut batch {
            d.attempts += 1;
            d.last_attempt_at = Some(now);
            self.0.outbox.save(d)?;
        }
        let items: Vec<(u64, Message)> = batch
            .iter()
            .filter_map(|d| match &d.payload {
                Payload::Message(m) => Some((d.key(), (**m).clone())),
                _ => None,
            })
            .collect();
        match digest.send(&items).await {
            Ok(receipt) => {
                self.succeeded(name);
                for mut d in batch {
                    d.receipt = Some(receipt.clone());
                    d.last_error = None;
                    self.finish(d, DeliveryState::Delivered, now)?;
                    report.delivered += 1;
                }
            }
            Err(DeliveryError::Rejected(why)) => {
                for mut d in batch {
                    d.last_error = Some(format!("rejected: {why}"));
                    self.finish(d, DeliveryState::Failed, now)?;
                    report.failed += 1;
                }
            }
            Err(DeliveryError::Retry { reason, after }) => {
                self.failed_attempt(name, now, after);
                for mut d in batch {
                    d.last_error = Some(reason.clone());
                    self.0.outbox.save(&d)?;
                    report.retried += 1;
                }
            }
        }
        Ok(())
    }

    fn condition_failed(&self, d: &Delivery) -> Result<Option<String>, StoreError> {
        match (&d.condition, &self.0.alerts) {
            (Some(Condition::AlertStillOpen { alert_id }), Some(alerts)) => {
                match alerts.get(alert_id)? {
                    Some(a) if a.status == AlertStatus::Open => Ok(None),
                    Some(a) => Ok(Some(format!(
                        "alert {alert_id} is {:?} already: no follow-up needed",
                        a.status
                    ))),
                    None => Ok(Some(format!("alert {alert_id} no longer exists"))),
                }
            }
            _ => Ok(None),
        }
    }

    async fn run_actions(
        &self,
        name: &str,
        action: &str,
        due: Vec<Delivery>,
        mut report: PassReport,
    ) -> Result<PassReport, StoreError> {
        let now = nanos(self.0.clock.now());
        let Some(runner) = self.0.actions.clone() else {
            return Ok(report);
        };
        for mut d in due {
            let Payload::Action { action_id } = d.payload.clone() else {
                continue;
            };
            d.attempts += 1;
            d.last_attempt_at = Some(now);
            self.0.outbox.save(&d)?;
            match runner.run(&action_id, d.key()).await {
                Ok(receipt) => {
                    self.succeeded(name);
                    runner.finished(&action_id, Ok(&receipt));
                    d.receipt = Some(receipt);
                    d.last_error = None;
                    self.finish(d, DeliveryState::Delivered, now)?;
                    report.delivered += 1;
                }
                Err(DeliveryError::Rejected(why)) => {
                    tracing::warn!(action, %action_id, %why, "response action failed");
                    runner.finished(&action_id, Err(&why));
                    d.last_error = Some(format!("rejected: {why}"));
                    self.finish(d, DeliveryState::Failed, now)?;
                    report.failed += 1;
                }
                Err(DeliveryError::Retry { reason, after }) => {
                    let until = self.failed_attempt(name, now, after);
                    d.last_error = Some(reason);
                    self.0.outbox.save(&d)?;
                    report.retried += 1;
                    report.next_due = Some(report.next_due.map_or(until, |x| x.min(until)));
                    break;
                }
            }
        }
        Ok(report)
    }
}
