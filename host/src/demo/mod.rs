//! `plumbline demo`: the service on a throwaway data directory, fed a synthetic day of
//! traffic through the real source endpoints, so a new user sees real alerts in a minute:
//! n8n's log stream alone, then with n8n's API (a local stand-in) enriching it.

pub mod stories;

use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;

pub use stories::Delivery;

use crate::throwaway::{temp_dir, Service};
use plumbline_enrich::standin::serve_n8n;

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

/// The key the demo's stand-in of n8n's API checks (`X-N8N-API-KEY`).
const DEMO_N8N_KEY: &str = "demo-n8n-api-key";

/// Runs the demo: child `plumbline serve`s on temporary directories (never the real
/// store). First the canonical story from n8n's log stream alone, as a team that has not
/// given Plumbline an n8n API key sees it; then the whole synthetic day with a local
/// stand-in of n8n's public API connected, so the workflows' bodies are fetched.
pub async fn run(listen: &str, keep_running: bool) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let day = stories::yesterday();

    println!("1. n8n's log stream alone (no [n8n] api_key): the canonical story");
    let alone = Service::start(&temp_dir("demo-stream"), DEMO_CONFIG, "127.0.0.1:0", "warn")?;
    feed(&http, &alone.url, &stories::canonical_story(day, "stream")).await?;
    report(&http, &alone.url).await?;
    drop(alone);

    println!("\n2. The log stream with n8n's API connected (a local stand-in of GET /api/v1/workflows/{{id}})");
    let api = serve_n8n(DEMO_N8N_KEY, stories::synthetic_workflows("day1")).await;
    let config = format!(
        "{DEMO_CONFIG}\n[n8n]\napi_url = {:?}\napi_key = {DEMO_N8N_KEY:?}\n",
        api.url()
    );
    let service = Service::start(&temp_dir("demo"), &config, listen, "warn")?;
    let url = service.url.clone();
    feed(&http, &url, &stories::synthetic_day(day, "day1")).await?;
    report(&http, &url).await?;
    println!("\nWhere to look: {url}/review (review page), {url}/v1/alerts, {url}/v1/trajectories, {url}/v1/events");
    if keep_running {
        println!("\nThe demo server keeps running at {url} (data in {}); Ctrl-C stops it and deletes the data.", service.dir().display());
        let _ = tokio::signal::ctrl_c().await;
    }
    drop(service);
    drop(api);
    Ok(())
}

async fn feed(http: &reqwest::Client, url: &str, deliveries: &[Delivery]) -> anyhow::Result<()> {
    let accepted = post_all(http, url, deliveries).await?;
    println!("   Posted through the source endpoints: {accepted} events accepted.");
    let mut stories: Vec<&str> = deliveries.iter().map(|d| d.story).collect();
    stories.dedup();
    for s in stories {
        println!("     - {s}");
    }
    Ok(())
}

/// Prints the alerts once every event is in its trajectories and evaluated.
async fn report(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    crate::eval::settle(http, url).await?;
    let v: Value = http
        .get(format!("{url}/v1/alerts"))
        .send()
        .await?
        .json()
        .await?;
    let alerts = v["alerts"].as_array().cloned().unwrap_or_default();
    println!("   {} alert(s):", alerts.len());
    for a in &alerts {
        println!(
            "     [severity {}] {}\n         {}/v1/alerts/{}  ({} cited events; signals: {})",
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
    Ok(())
}
