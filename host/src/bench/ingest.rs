//! Durable ingest: events/s through `POST /v1/events` NDJSON (a 202 means stored durably),
//! at 1, 100 and 1,000 events per request over a few concurrent connections, each batch
//! size on its own fresh server so one's evaluation backlog does not slow the next.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::load::{self, Sent};
use super::service::Service;

/// (events, connections) per batch size.
pub fn connections(batch: u64) -> u64 {
    match batch {
        1 => 16,
        100 => 8,
        _ => 4,
    }
}

pub struct Ingest {
    pub events_per_second: f64,
    /// 503s (back-pressure) waited out and resent.
    pub busy: u64,
}

pub async fn measure(exe: &Path, batch: u64, events: u64) -> anyhow::Result<Ingest> {
    let service = Service::start(exe)?;
    let client = reqwest::Client::new();
    let sent = Arc::new(Sent::default());
    let took = load::blast(
        &client,
        &service.url,
        &format!("ingest{batch}"),
        events,
        batch,
        connections(batch),
        &sent,
    )
    .await?;
    Ok(Ingest {
        events_per_second: sent.events.load(Ordering::Relaxed) as f64 / took.as_secs_f64(),
        busy: sent.busy.load(Ordering::Relaxed),
    })
}
