//! What is kept, and for how long: the one place that sweeps every stage's records on the
//! `[store]` horizons (docs/privacy.md).
//!
//! - `retention_days` (events): events and their indexes, the trajectories made of them
//!   (closed headers and the renames leading to them), GitHub's replay memory, and the
//!   summary audit (swept by the summary stage on the same horizon).
//! - `record_retention_days` (what was decided about them): alerts and their trajectory
//!   links, shadow findings, labels, policy decisions, incident records, paging state,
//!   decided response actions and dedup fingerprints.
//! - Finished outbox deliveries: `delivery.keep_delivered_days` (the dispatcher prunes).
//! - The admin audit log is never swept.

use std::sync::Arc;

use plumbline_alert::AlertBook;
use plumbline_delivery::Routing;
use plumbline_review::labels::LabelBook;
use plumbline_store::{Store, StoreError};
use plumbline_trajectory::TrajectoryStage;

use crate::config::StoreConfig;

const DAY_NANOS: i64 = 86_400_000_000_000;

/// The stages whose records retention removes.
pub struct Kept {
    pub store: Store,
    pub trajectories: Arc<TrajectoryStage>,
    pub alerts: AlertBook,
    pub labels: LabelBook,
    pub routing: Arc<Routing>,
}

/// How many of each went in one sweep.
#[derive(Debug, Default, PartialEq)]
pub struct Swept {
    pub events: usize,
    pub trajectories: usize,
    pub replay_memory: usize,
    pub alerts: usize,
    pub alert_records: usize,
}

impl Kept {
    /// One sweep at `now` (unix nanos).
    pub fn sweep(&self, config: &StoreConfig, now: i64) -> Result<Swept, StoreError> {
        let mut out = Swept::default();
        if config.retention_days > 0 {
            let cutoff = now - config.retention_days as i64 * DAY_NANOS;
            out.events = self.store.sweep_before(cutoff)?;
            out.trajectories = self.trajectories.sweep_before(cutoff)?;
            use plumbline_ingest::{github::BODY_SEEN, memory::SledMemory};
            out.replay_memory = SledMemory::open(&self.store)?.forget_before(
                plumbline_event::Source::Github,
                BODY_SEEN,
                cutoff / 1_000_000_000,
            )?;
        }
        if config.record_retention_days > 0 {
            let cutoff = now - config.record_retention_days as i64 * DAY_NANOS;
            let gone = self
                .alerts
                .sweep_before(plumbline_event::time_from_nanos(cutoff))?;
            out.alerts = gone.len();
            out.alert_records = self.labels.forget(&gone)? + self.routing.forget(&gone, cutoff)?;
        }
        Ok(out)
    }

    /// Sweeps every `sweep_interval_secs` in the background.
    pub fn spawn(self, config: StoreConfig) {
        if config.retention_days == 0 && config.record_retention_days == 0 {
            return;
        }
        let every = std::time::Duration::from_secs(config.sweep_interval_secs.max(1));
        let kept = Arc::new(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
                let (k, c) = (kept.clone(), config.clone());
                match tokio::task::spawn_blocking(move || k.sweep(&c, now)).await {
                    Ok(Ok(s)) if s == Swept::default() => {}
                    Ok(Ok(s)) => tracing::info!(
                        events = s.events,
                        trajectories = s.trajectories,
                        replay_memory = s.replay_memory,
                        alerts = s.alerts,
                        alert_records = s.alert_records,
                        "retention sweep"
                    ),
                    Ok(Err(e)) => tracing::error!(error = %e, "retention sweep failed"),
                    Err(e) => tracing::error!(error = %e, "retention sweep panicked"),
                }
            }
        });
    }
}
