//! `plumbline demo`: the service on a throwaway data directory, fed a synthetic day of
//! traffic through the real source endpoints, so a new user sees real alerts in a minute.

pub mod stories;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

pub use stories::Delivery;

/// The demo company, as a team would describe it once in `[org]`: its domain is known, so
/// traffic to its own systems is not news to any detector.
pub const DEMO_CONFIG: &str = r#"
[org]
domains = ["acme.example"]
"#;

/// Posts deliveries to a running server; returns how many events were accepted.
pub async fn post_all(
    http: &reqwest::Client,
    base: &str,
    deliveries: &[Delivery],
) -> anyhow::Result<u64> {
    let mut accepted = 0;
    for d in deliveries {
        let mut req = http.post(format!("{base}{}", d.path));
        let mut has_ct = false;
        for (k, v) in &d.headers {
            has_ct |= k.eq_ignore_ascii_case("content-type");
            req = req.header(*k, v);
        }
        req = match &d.body {
            Value::String(raw) => req.body(raw.clone()),
            other if !has_ct => req
                .header("content-type", "application/json")
                .body(other.to_string()),
            other => req.body(other.to_string()),
        };
        let resp = req
            .send()
            .await
            .with_context(|| format!("posting to {}", d.path))?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{} answered {status}: {v}", d.path);
        }
        accepted += v["accepted"].as_u64().unwrap_or(0);
    }
    Ok(accepted)
}

/// Runs the demo: a child `plumbline serve` on a temporary directory (never the real
/// store), the synthetic day through its endpoints, then a summary of what it raised.
pub async fn run(listen: &str, keep_running: bool) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let config = dir.join("demo.toml");
    std::fs::write(&config, DEMO_CONFIG)
        .with_context(|| format!("writing {}", config.display()))?;
    let exe = std::env::current_exe().context("finding the plumbline binary")?;
    let mut child = Command::new(exe)
        .args(["serve", "--listen", listen, "--config"])
        .arg(&config)
        .arg("--data")
        .arg(dir.join("data"))
        .env(
            "PLUMBLINE_LOG",
            std::env::var("PLUMBLINE_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .spawn()
        .context("starting plumbline serve")?;
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(u) = l.strip_prefix("plumbline listening on ") {
                    break u.trim().to_string();
                }
            }
            _ => {
                let _ = child.kill();
                bail!("plumbline serve stopped before it was ready");
            }
        }
    };
    let result = feed_and_report(&url).await;
    if keep_running && result.is_ok() {
        println!("\nThe demo server keeps running at {url} (data in {}); Ctrl-C stops it and deletes the data.", dir.display());
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("plumbline-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

async fn feed_and_report(url: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let day = stories::yesterday();
    let deliveries = stories::synthetic_day(day, "day1");
    let accepted = post_all(&http, url, &deliveries).await?;
    println!(
        "Posted a synthetic day ({}) through the source endpoints: {accepted} events accepted.",
        &plumbline_event::format_time(day)[..10]
    );
    let mut stories: Vec<&str> = deliveries.iter().map(|d| d.story).collect();
    stories.dedup();
    for s in stories {
        println!("  - {s}");
    }
    // Alerts settle once detectors have run over the trajectories (a few seconds at most).
    let started = Instant::now();
    let mut last = usize::MAX;
    let mut stable_since = Instant::now();
    let alerts = loop {
        let v: Value = http
            .get(format!("{url}/v1/alerts"))
            .send()
            .await?
            .json()
            .await?;
        let alerts = v["alerts"].as_array().cloned().unwrap_or_default();
        if alerts.len() != last {
            last = alerts.len();
            stable_since = Instant::now();
        }
        if (last > 0 && stable_since.elapsed() > Duration::from_secs(3))
            || started.elapsed() > Duration::from_secs(60)
        {
            break alerts;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    println!("\n{} alert(s):", alerts.len());
    for a in &alerts {
        println!(
            "  [severity {}] {}\n      {}/v1/alerts/{}  ({} cited events; signals: {})",
            a["severity"],
            a["title"].as_str().unwrap_or(""),
            url,
            a["id"].as_str().unwrap_or(""),
            a["event_ids"].as_array().map_or(0, |x| x.len()),
            a["signals"]
                .as_array()
                .map(|s| s
                    .iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        );
    }
    println!("\nWhere to look: {url}/review (review page), {url}/v1/alerts, {url}/v1/trajectories, {url}/v1/events");
    Ok(())
}
