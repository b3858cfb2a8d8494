//! Event-to-alert latency under load, end to end through the real binary: the `plumbline`
//! release build serving with its built-in packs, a steady background of benign pushes
//! (every one re-evaluates its actor and system trajectories through every detector), and
//! now and then a force push to `main` that must raise an alert. For each force push it
//! times POST (durable 202) → alert readable at `GET /v1/alerts/{id}`, polling every
//! millisecond; it also reads the server's own evaluation-latency histogram at the end.
//! Percentiles, not a criterion loop: latency under load is a distribution.
//!
//! cargo bench -p plumbline --features bench --bench event_to_alert   (needs scripts/build-detectors.sh)
//! E2A_BACKGROUND=<events/s> sets the background load (default 400; 0 for none);
//! E2A_TRACE=1 prints each force push's latency.

use std::time::{Duration, Instant};

mod support;

use plumbline::bench::load::{alert_created, force_push, push};
use serde_json::Value;

const SECONDS: u64 = 30;
const TRIGGERS_PER_SECOND: usize = 4;

#[tokio::main]
async fn main() {
    let service = support::Service::start();
    let url = service.url.clone();
    let client = reqwest::Client::new();
    let background_per_second: usize = std::env::var("E2A_BACKGROUND")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);

    // Background: benign pushes to feature branches, 200 actors over 60 repositories.
    let bg_client = client.clone();
    let bg_url = url.clone();
    let background = tokio::spawn(async move {
        let batch = background_per_second / 20;
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut n = 0usize;
        let end = Instant::now() + Duration::from_secs(SECONDS);
        while Instant::now() < end {
            tick.tick().await;
            let events: Vec<Value> = (0..batch)
                .map(|_| {
                    n += 1;
                    let actor = format!("dev-{}", n % 200);
                    let repo = format!("acme/repo-{}", n % 60);
                    push(&format!("bg-{n}"), &actor, &repo, "git.push", "feature-x").0
                })
                .collect();
            let _ = bg_client
                .post(format!("{bg_url}/v1/events"))
                .json(&events)
                .send()
                .await;
        }
        n
    });

    // Triggers: a force push to main by a fresh actor in a fresh repository. Their alerts are
    // read afterwards (polling during the run would add load of its own): the latency is the
    // alert's `created_at` minus the wall-clock time the POST was sent, same machine clock.
    let mut sent = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / TRIGGERS_PER_SECOND as u64));
    for i in 0..(SECONDS as usize * TRIGGERS_PER_SECOND) {
        tick.tick().await;
        let (event, candidates) = force_push("e2a", i);
        let at = time::OffsetDateTime::now_utc();
        let r = client
            .post(format!("{url}/v1/events"))
            .json(&event)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        sent.push((candidates, at));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut latencies = Vec::new();
    let mut missed = 0;
    for (candidates, at) in &sent {
        let created = alert_created(&client, &url, candidates).await.unwrap();
        if std::env::var_os("E2A_TRACE").is_some() {
            eprintln!(
                "trigger at {at}: {:?}",
                created.map(|c| (c - *at).as_seconds_f64() * 1000.0)
            );
        }
        match created {
            Some(c) => latencies.push(Duration::from_secs_f64((c - *at).as_seconds_f64().max(0.0))),
            None => missed += 1,
        }
    }
    let background_events = background.await.unwrap();
    let metrics = service.metrics(&client).await;
    drop(service);

    latencies.sort();
    let pct = |p: f64| support::percentile_ms(&latencies, p);
    println!(
        "event_to_alert: {} force pushes over {SECONDS} s beside {background_events} background events",
        latencies.len() + missed
    );
    println!(
        "  POST sent → alert created: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; no alert: {missed}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
    // The server's histogram covers every evaluation (background ones too): from the first
    // unevaluated change of a trajectory to its evaluation being recorded.
    let bucket = |le: &str| {
        support::metric(
            &metrics,
            &format!("plumbline_evaluation_latency_seconds_bucket{{le=\"{le}\"}}"),
        )
    };
    let count = bucket("+Inf");
    println!(
        "  server evaluations: {count}; within 20 ms {:.2}%, within 35 ms {:.2}%, within 50 ms {:.2}%",
        100.0 * bucket("0.02") / count,
        100.0 * bucket("0.035") / count,
        100.0 * bucket("0.05") / count
    );
}
