//! A burst: `events` of the mix as fast as they are acknowledged (NDJSON 1,000 × 4
//! connections), then the drain time — from the last acknowledgement until
//! `plumbline_trajectory_backlog` on /metrics is 0 (every stored event in its trajectories
//! and no evaluation queued) and stays there with no further evaluation (`super::drained`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::load::{self, Sent};
use super::service::Service;

pub struct Burst {
    pub events: u64,
    pub ingest_seconds: f64,
    /// `None`: not drained within `limit`.
    pub drain_seconds: Option<f64>,
    pub busy: u64,
}

pub async fn measure(
    service: &Service,
    client: &reqwest::Client,
    events: u64,
    limit: Duration,
) -> anyhow::Result<Burst> {
    let sent = Arc::new(Sent::default());
    let took = load::blast(client, &service.url, "burst", events, 1000, 4, &sent).await?;
    let drained = super::drained(service, client, limit).await?;
    Ok(Burst {
        events: sent.events.load(Ordering::Relaxed),
        ingest_seconds: took.as_secs_f64(),
        // `drained` starts its clock at the last acknowledgement.
        drain_seconds: drained.map(|d| d.as_secs_f64()),
        busy: sent.busy.load(Ordering::Relaxed),
    })
}
