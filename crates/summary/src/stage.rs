//! The summary stage: an [`AlertListener`] between the alert book and the policy stage.
//!
//! The alert book calls it on an evaluation thread, only for alerts with findings. Work is
//! handed to the tokio runtime at once. Updates of one alert are handled one at a time and
//! in order; updates that arrive while one is being summarised are coalesced into the
//! latest (keeping "new" and the earliest previous severity), so the next stage sees every
//! alert's latest state exactly once per change, after its summary is written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use super::audit::{Forwarded, Pending, SummaryAudit};
use super::summarize::{Produced, Summarizer, SummaryStats};
use super::{findings_fingerprint, LlmConfig, SummaryError, NOTE_PREFIX};
use plumbline_alert::finding::Severity;
use plumbline_alert::{now, AlertBook, AlertListener, AlertUpdate};
use plumbline_store::Store;
use plumbline_trajectory::Trajectory;

pub struct SummaryStage {
    inner: Arc<Inner>,
}

struct Inner {
    summarizer: Summarizer,
    alerts: AlertBook,
    next: Arc<dyn AlertListener>,
    handle: Handle,
    slots: Mutex<HashMap<String, Slot>>,
}

/// Per-alert queue of one.
#[derive(Default)]
struct Slot {
    pending: Option<AlertUpdate>,
    running: bool,
    /// What a superseded update would have told the next stage (new alert, earlier
    /// severity), folded into the next update of this alert.
    carry: Option<(bool, Option<Severity>)>,
}

impl SummaryStage {
    /// Builds the stage and subscribes it to `alerts`; summaries are handed to `next`.
    /// Start it before the trajectory stage, so no alert is missed. The subscription does
    /// not keep the stage alive (the stage holds the book: a strong one would be a cycle
    /// that keeps the database open): keep the returned stage for as long as it should run.
    pub fn start(
        config: &LlmConfig,
        retention_days: u64,
        store: &Store,
        alerts: AlertBook,
        next: Arc<dyn AlertListener>,
        handle: Handle,
    ) -> Result<Arc<SummaryStage>, SummaryError> {
        let env = |k: &str| std::env::var(k).ok();
        Self::start_with_env(config, retention_days, store, alerts, next, handle, &env)
    }

    /// [`Self::start`], reading the API key variable through `env`.
    pub fn start_with_env(
        config: &LlmConfig,
        retention_days: u64,
        store: &Store,
        alerts: AlertBook,
        next: Arc<dyn AlertListener>,
        handle: Handle,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Arc<SummaryStage>, SummaryError> {
        let audit = SummaryAudit::open(store)?;
        let summarizer = Summarizer::new(config, audit, env)?;
        let inner = Arc::new(Inner {
            summarizer,
            alerts: alerts.clone(),
            next,
            handle,
            slots: Mutex::default(),
        });
        if retention_days > 0 {
            inner.spawn_retention(retention_days);
        }
        alerts.subscribe(Arc::new(Subscription(Arc::downgrade(&inner))));
        let stage = Arc::new(SummaryStage { inner });
        match config.enabled() {
            true => {
                tracing::info!(endpoint = %config.completions_url(), model = %config.model, "LLM summaries on")
            }
            false => tracing::info!("no LLM configured: alerts carry the deterministic summary"),
        }
        Ok(stage)
    }

    pub fn stats(&self) -> &SummaryStats {
        &self.inner.summarizer.stats
    }

    pub fn audit(&self) -> &SummaryAudit {
        self.inner.summarizer.audit()
    }

    /// Alerts with a summary being produced or queued.
    pub fn in_progress(&self) -> usize {
        self.inner
            .slots
            .lock()
            .expect("slots")
            .values()
            .filter(|s| s.running || s.pending.is_some())
            .count()
    }

    /// Waits (up to `limit`) for queued summaries to be written and handed on.
    pub async fn drain(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while self.in_progress() > 0 {
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Re-queues the alerts whose update was heard about but never handed on (the process
    /// stopped mid-call). `trajectory` looks a trajectory up by id. Returns how many.
    pub fn resume(&self, trajectory: impl Fn(&str) -> Option<Trajectory>) -> usize {
        let mut queued = 0;
        for (id, p) in self.audit().all_pending() {
            let alert = match self.inner.alerts.get(&id) {
                Ok(Some(a)) => a,
                Ok(None) => {
                    let _ = self.audit().clear_pending(
                        &id,
                        &p.trajectory_hash,
                        &p.findings_fingerprint,
                    );
                    continue;
                }
                Err(e) => {
                    tracing::error!(alert = %id, error = %e, "cannot read an alert to resume");
                    continue;
                }
            };
            let t = trajectory(&alert.trajectory_id).filter(|t| t.hash == alert.trajectory_hash);
            let Some(t) = t else {
                // The trajectory moved on: the trajectory stage re-evaluates it and a new
                // update follows if its findings changed.
                tracing::warn!(alert = %id, "trajectory changed since; not resuming its summary");
                let _ =
                    self.audit()
                        .clear_pending(&id, &p.trajectory_hash, &p.findings_fingerprint);
                continue;
            };
            self.inner.clone().enqueue(AlertUpdate {
                is_new: p.is_new,
                previous_severity: p.previous_severity,
                alert,
                trajectory: Arc::new(t),
            });
            queued += 1;
        }
        if queued > 0 {
            tracing::info!(
                queued,
                "resuming summaries that were in flight at the last stop"
            );
        }
        queued
    }
}

impl AlertListener for SummaryStage {
    fn alert_changing(&self, update: &AlertUpdate) {
        self.inner.mark_pending(update);
    }

    fn alert_changed(&self, update: AlertUpdate) {
        self.inner.clone().enqueue(update);
    }
}

struct Subscription(Weak<Inner>);

impl AlertListener for Subscription {
    fn alert_changing(&self, update: &AlertUpdate) {
        if let Some(inner) = self.0.upgrade() {
            inner.mark_pending(update);
        }
    }

    fn alert_changed(&self, update: AlertUpdate) {
        if let Some(inner) = self.0.upgrade() {
            inner.enqueue(update);
        }
    }
}

impl Inner {
    /// The durable "summarise and route this" mark, written before the alert is stored
    /// (see `AlertListener::alert_changing`): an alert a crash kept is never left unrouted.
    /// `resume` drops a mark whose alert or trajectory moved on.
    fn mark_pending(&self, update: &AlertUpdate) {
        let id = &update.alert.id;
        let mark = Pending {
            trajectory_hash: update.trajectory.hash.clone(),
            findings_fingerprint: findings_fingerprint(&update.alert.findings),
            is_new: update.is_new,
            previous_severity: update.previous_severity,
        };
        if let Err(e) = self.summarizer.audit().set_pending(id, &mark) {
            tracing::warn!(alert = %id, error = %e, "could not note a pending summary");
        }
    }

    fn enqueue(self: Arc<Self>, mut update: AlertUpdate) {
        let id = update.alert.id.clone();
        // Already marked when the change was stored; marking again is harmless and covers
        // updates that come from `resume`.
        self.mark_pending(&update);
        let mut slots = self.slots.lock().expect("slots");
        let slot = slots.entry(id.clone()).or_default();
        if let Some((is_new, previous)) = slot.carry.take() {
            update.is_new |= is_new;
            update.previous_severity = previous;
        }
        slot.pending = Some(match slot.pending.take() {
            Some(older) => coalesce(older, update),
            None => update,
        });
        if !slot.running {
            slot.running = true;
            let me = self.clone();
            self.handle.spawn(async move { me.work(id).await });
        }
    }

    async fn work(self: Arc<Self>, id: String) {
        loop {
            let update = {
                let mut slots = self.slots.lock().expect("slots");
                let Some(slot) = slots.get_mut(&id) else {
                    return;
                };
                match slot.pending.take() {
                    Some(u) => u,
                    None => {
                        slot.running = false;
                        if slot.carry.is_none() {
                            slots.remove(&id);
                        }
                        return;
                    }
                }
            };
            let produced = self
                .summarizer
                .summarize(&update.alert, &update.trajectory)
                .await;
            let me = self.clone();
            // sled writes and the next stage's work stay off the async workers.
            if let Err(e) = tokio::task::spawn_blocking(move || me.commit(update, produced)).await {
                tracing::error!(alert = %id, error = %e, "summary commit panicked");
            }
        }
    }

    /// Records the audit trail, writes the summary into the alert and hands it on.
    fn commit(&self, update: AlertUpdate, produced: Produced) {
        let id = update.alert.id.clone();
        if let Err(e) = self.summarizer.audit().record(&produced.record) {
            tracing::error!(alert = %id, error = %e, "could not record the summary audit");
        }
        let hash = update.trajectory.hash.clone();
        let fingerprint = produced.record.findings_fingerprint.clone();
        let severity = produced.record.severity.applied;
        let note = produced.provenance.note();
        let note = match produced.record.severity {
            s if s.applied > s.detectors => format!(
                "{note}; the model's risk {} raised severity {} → {} (llm.max_raised_severity = {})",
                s.model_risk.unwrap_or(0),
                s.detectors,
                s.applied,
                s.cap
            ),
            _ => note,
        };
        let mut stale = false;
        let written = self.alerts.update(&id, |a| {
            // A newer evaluation got there first: its own update follows.
            if a.trajectory_hash != hash || findings_fingerprint(&a.findings) != fingerprint {
                stale = true;
                return;
            }
            a.summary = produced.summary.render();
            a.severity = severity;
            a.notes.retain(|n| !n.starts_with(NOTE_PREFIX));
            a.notes.push(note);
        });
        let alert = match written {
            Ok(Some(a)) => a,
            Ok(None) => {
                tracing::warn!(alert = %id, "alert disappeared before its summary was written");
                return;
            }
            Err(e) => {
                // The alert keeps the deterministic summary it was stored with; still hand
                // it on so nothing waits on the summary stage.
                tracing::error!(alert = %id, error = %e, "could not write the summary");
                update.alert.clone()
            }
        };
        if stale {
            let mut slots = self.slots.lock().expect("slots");
            let slot = slots.entry(id).or_default();
            match slot.pending.as_mut() {
                Some(p) => {
                    p.is_new |= update.is_new;
                    p.previous_severity = update.previous_severity;
                }
                None => slot.carry = Some((update.is_new, update.previous_severity)),
            }
            return;
        }
        self.next.alert_changed(AlertUpdate {
            alert,
            trajectory: update.trajectory,
            is_new: update.is_new,
            previous_severity: update.previous_severity,
        });
        let mark = Forwarded {
            trajectory_hash: hash,
            findings_fingerprint: fingerprint,
            severity,
            at: now(),
        };
        if let Err(e) = self.summarizer.audit().set_forwarded(&id, &mark) {
            tracing::warn!(alert = %id, error = %e, "could not mark the summary as handed on");
        }
        let cleared = self.summarizer.audit().clear_pending(
            &id,
            &mark.trajectory_hash,
            &mark.findings_fingerprint,
        );
        if let Err(e) = cleared {
            tracing::warn!(alert = %id, error = %e, "could not clear a pending summary");
        }
    }

    /// Hourly, while the stage lives: audit records and cached summaries older than the
    /// store's retention go, as the events they describe do.
    fn spawn_retention(self: &Arc<Self>, days: u64) {
        let me = Arc::downgrade(self);
        self.handle.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                let Some(m) = me.upgrade() else { return };
                let cutoff =
                    time::OffsetDateTime::now_utc() - time::Duration::days(days.min(36_500) as i64);
                match tokio::task::spawn_blocking(move || m.summarizer.audit().sweep_before(cutoff))
                    .await
                {
                    Ok(Ok(0)) => {}
                    Ok(Ok(n)) => tracing::info!(removed = n, "summary audit retention sweep"),
                    Ok(Err(e)) => tracing::error!(error = %e, "summary audit sweep failed"),
                    Err(e) => tracing::error!(error = %e, "summary audit sweep panicked"),
                }
            }
        });
    }
}

/// Two updates not yet handed on become one: the newer state, "new" if either was, and
/// the severity before the older.
fn coalesce(older: AlertUpdate, newer: AlertUpdate) -> AlertUpdate {
    AlertUpdate {
        is_new: older.is_new || newer.is_new,
        previous_severity: older.previous_severity,
        ..newer
    }
}
