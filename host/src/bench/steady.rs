//! Steady load: the benign mix at a fixed rate (one NDJSON request every 20 ms, up to 8 in
//! flight) with a force push to `main` planted every 500 ms. Event → evaluation comes from
//! the server's own histogram (`plumbline_evaluation_latency_seconds`, bucket deltas over
//! the phase, read once the backlog has drained); event → alert is each force push's alert
//! `created_at` minus the wall-clock time its POST was sent (same clock).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::load::{self, Sent};
use super::service::{self, Service};

const HISTOGRAM: &str = "plumbline_evaluation_latency_seconds";
const TICK: Duration = Duration::from_millis(20);

pub struct Steady {
    pub achieved_per_second: f64,
    pub eval_p50_ms: f64,
    pub eval_p99_ms: f64,
    pub alert_p50_ms: f64,
    pub alert_p99_ms: f64,
    pub force_pushes: usize,
    pub alerts_missing: usize,
    pub busy: u64,
}

pub async fn measure(
    service: &Service,
    client: &reqwest::Client,
    rate: u64,
    seconds: f64,
) -> anyhow::Result<Steady> {
    let url = service.url.clone();
    let run = format!("steady{rate}");
    let before = service::buckets(&service.metrics(client).await?, HISTOGRAM);
    let sent = Arc::new(Sent::default());
    let in_flight = Arc::new(tokio::sync::Semaphore::new(8));
    let per_tick = (rate as f64 * TICK.as_secs_f64()).round().max(1.0) as u64;
    let ticks = (seconds / TICK.as_secs_f64()).round().max(1.0) as u64;
    let force_every = (Duration::from_millis(500).as_secs_f64() / TICK.as_secs_f64()) as u64;
    let mut tick = tokio::time::interval(TICK);
    let mut tasks = Vec::new();
    let mut planted = Vec::new();
    let started = Instant::now();
    for k in 0..ticks {
        tick.tick().await;
        let body = load::ndjson(&run, k * per_tick, (k + 1) * per_tick);
        let permit = in_flight.clone().acquire_owned().await?;
        let (client2, url2, sent2) = (client.clone(), url.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let r = load::post_ndjson(&client2, &url2, body, per_tick, &sent2).await;
            drop(permit);
            r
        }));
        if k % force_every == 0 {
            let (event, candidates) = load::force_push(&run, planted.len());
            let at = time::OffsetDateTime::now_utc();
            let (client2, url2, sent2) = (client.clone(), url.clone(), sent.clone());
            tasks.push(tokio::spawn(async move {
                load::post_ndjson(&client2, &url2, format!("{event}\n"), 1, &sent2).await
            }));
            planted.push((candidates, at));
        }
    }
    for t in tasks {
        t.await??;
    }
    let took = started.elapsed();
    super::drained(service, client, Duration::from_secs(300))
        .await?
        .context("the backlog did not drain within 300 s of the steady load")?;
    let after = service::buckets(&service.metrics(client).await?, HISTOGRAM);
    let mut latencies = Vec::new();
    for (candidates, at) in &planted {
        if let Some(c) = load::alert_created(client, &url, candidates).await? {
            latencies.push(Duration::from_secs_f64((c - *at).as_seconds_f64().max(0.0)));
        }
    }
    latencies.sort();
    Ok(Steady {
        achieved_per_second: sent.events.load(Ordering::Relaxed) as f64 / took.as_secs_f64(),
        eval_p50_ms: service::quantile_between(&before, &after, 0.50),
        eval_p99_ms: service::quantile_between(&before, &after, 0.99),
        alert_p50_ms: service::percentile_ms(&latencies, 0.50),
        alert_p99_ms: service::percentile_ms(&latencies, 0.99),
        force_pushes: planted.len(),
        alerts_missing: planted.len() - latencies.len(),
        busy: sent.busy.load(Ordering::Relaxed),
    })
}
