//! Resident memory after many events, and the graceful stop after that heavy load: a fresh
//! server takes `events` of the mix (NDJSON 1,000 × 4 connections); its VmRSS is read from
//! /proc right after the last acknowledgement, with the work still queued then (the
//! backlog and the evaluation lag: what the server holds beyond its trajectories); then
//! SIGTERM, timed until the process exits (killed after `stop_limit`). A second server takes
//! the same load and is read once that work has drained ([`drained`]): the memory the
//! service keeps, not what it queues.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::load::{self, Sent};
use super::service::{self, Service};

pub struct Memory {
    pub events: u64,
    pub rss_bytes: u64,
    /// `plumbline_trajectory_backlog` and `plumbline_evaluation_lag_seconds` at that moment.
    pub backlog: f64,
    pub lag_seconds: f64,
    /// `None`: still running at `stop_limit` and killed.
    pub stop_seconds: Option<f64>,
}

pub async fn measure(exe: &Path, events: u64, stop_limit: Duration) -> anyhow::Result<Memory> {
    let mut service = Service::start(exe)?;
    let client = reqwest::Client::new();
    let sent = Arc::new(Sent::default());
    load::blast(&client, &service.url, "rss", events, 1000, 4, &sent).await?;
    let rss_bytes = service.rss_bytes()?;
    let page = service.metrics(&client).await?;
    let backlog = service::metric(&page, "plumbline_trajectory_backlog");
    let lag_seconds = service::metric(&page, "plumbline_evaluation_lag_seconds");
    drop(client);
    let stop = tokio::task::spawn_blocking(move || service.terminate(stop_limit)).await??;
    Ok(Memory {
        events: sent.events.load(Ordering::Relaxed),
        rss_bytes,
        backlog,
        lag_seconds,
        stop_seconds: stop.map(|d| d.as_secs_f64()),
    })
}

/// VmRSS of a fresh server that took `events` of the mix, once its backlog has drained
/// (`None`: it did not within 300 s).
pub async fn drained(exe: &Path, events: u64) -> anyhow::Result<Option<u64>> {
    let service = Service::start(exe)?;
    let client = reqwest::Client::new();
    let sent = Arc::new(Sent::default());
    load::blast(&client, &service.url, "rss", events, 1000, 4, &sent).await?;
    match super::drained(&service, &client, Duration::from_secs(300)).await? {
        Some(_) => Ok(Some(service.rss_bytes()?)),
        None => Ok(None),
    }
}
