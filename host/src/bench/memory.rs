//! Resident memory after many events, and the graceful stop after that heavy load: a fresh
//! server takes `events` of the mix (NDJSON 1,000 × 4 connections); its VmRSS is read from
//! /proc right after the last acknowledgement; then SIGTERM, timed until the process exits
//! (killed after `stop_limit`).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::load::{self, Sent};
use super::service::Service;

pub struct Memory {
    pub events: u64,
    pub rss_bytes: u64,
    /// `None`: still running at `stop_limit` and killed.
    pub stop_seconds: Option<f64>,
}

pub async fn measure(exe: &Path, events: u64, stop_limit: Duration) -> anyhow::Result<Memory> {
    let mut service = Service::start(exe)?;
    let client = reqwest::Client::new();
    let sent = Arc::new(Sent::default());
    load::blast(&client, &service.url, "rss", events, 1000, 4, &sent).await?;
    let rss_bytes = service.rss_bytes()?;
    drop(client);
    let stop = tokio::task::spawn_blocking(move || service.terminate(stop_limit)).await??;
    Ok(Memory {
        events: sent.events.load(Ordering::Relaxed),
        rss_bytes,
        stop_seconds: stop.map(|d| d.as_secs_f64()),
    })
}
