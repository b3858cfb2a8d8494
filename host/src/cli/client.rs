//! `plumbline ingest` and `plumbline events`: thin HTTP clients of a running server.

use std::io::{BufRead, BufReader, Read};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use super::{EventsArgs, IngestArgs, Remote};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .expect("http client")
}

fn with_token(req: reqwest::RequestBuilder, remote: &Remote) -> reqwest::RequestBuilder {
    match &remote.token {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

/// Posts NDJSON in batches; prints a summary and every rejection.
/// Sends a request, waiting out refusals that say to come back (429 rate limit, 503 busy)
/// for as long as their `Retry-After` asks, up to ten times: a back-fill slows down to what
/// the server takes instead of failing half-way.
pub async fn send_patiently(
    req: reqwest::RequestBuilder,
    url: &str,
) -> anyhow::Result<reqwest::Response> {
    for _ in 0..10 {
        let attempt = req.try_clone().expect("bodies here are in memory");
        let resp = attempt
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status().as_u16();
        if status != 429 && status != 503 {
            return Ok(resp);
        }
        let wait = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(1)
            .clamp(1, 60);
        eprintln!("server answered {status}; retrying in {wait} s");
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    }
    req.send()
        .await
        .with_context(|| format!("cannot reach {url}"))
}

pub async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    if let Some(source) = &args.source {
        return super::source::ingest(&args, source).await;
    }
    let (reader, total): (Box<dyn Read>, Option<u64>) = if args.file.as_os_str() == "-" {
        (Box::new(std::io::stdin()), None)
    } else {
        let f = std::fs::File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(f), len)
    };
    let bar = match total {
        Some(n) if n > 1_000_000 => {
            let b = ProgressBar::new(n);
            b.set_style(ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta}",
            )?);
            b
        }
        _ => ProgressBar::hidden(),
    };
    let url = format!("{}/v1/events", args.remote.url.trim_end_matches('/'));
    let http = client();
    let (mut accepted, mut duplicates, mut rejected) = (0u64, 0u64, 0u64);
    let mut lines = BufReader::new(reader).lines();
    let mut base = 0usize;
    loop {
        let mut body = String::new();
        let mut n = 0;
        for line in lines.by_ref() {
            let line = line.context("reading input")?;
            bar.inc(line.len() as u64 + 1);
            if line.trim().is_empty() {
                continue;
            }
            body.push_str(&line);
            body.push('\n');
            n += 1;
            if n >= args.batch.max(1) {
                break;
            }
        }
        if n == 0 {
            break;
        }
        let req = with_token(http.post(&url), &args.remote)
            .header("content-type", "application/x-ndjson")
            .body(body);
        let resp = send_patiently(req, &url).await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bar.abandon();
            bail!(
                "server answered {status}: {}",
                v["error"].as_str().unwrap_or("(no error message)")
            );
        }
        accepted += v["accepted"].as_u64().unwrap_or(0);
        duplicates += v["duplicates"].as_u64().unwrap_or(0);
        for r in v["rejected"].as_array().into_iter().flatten() {
            rejected += 1;
            let index = r["index"].as_u64().unwrap_or(0) as usize + base;
            bar.suspend(|| {
                eprintln!(
                    "event {index}: `{}` {}",
                    r["field"].as_str().unwrap_or(""),
                    r["reason"].as_str().unwrap_or("")
                )
            });
        }
        base += n;
    }
    bar.finish_and_clear();
    println!("accepted {accepted}, duplicates {duplicates}, rejected {rejected}");
    if rejected > 0 {
        bail!("{rejected} events were rejected");
    }
    Ok(())
}

/// Prints events, following cursors up to `--limit`.
pub async fn events(args: EventsArgs) -> anyhow::Result<()> {
    let http = client();
    let mut printed = 0;
    let mut cursor: Option<String> = None;
    while printed < args.limit {
        let mut q: Vec<(&str, String)> =
            vec![("limit", (args.limit - printed).min(1000).to_string())];
        for (k, v) in [
            ("actor", &args.actor),
            ("system", &args.system),
            ("source", &args.source),
            ("since", &args.since),
            ("until", &args.until),
        ] {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        }
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let url = format!("{}/v1/events", args.remote.url.trim_end_matches('/'));
        let resp = with_token(http.get(&url).query(&q), &args.remote)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "server answered {status}: {}",
                v["error"].as_str().unwrap_or("(no error message)")
            );
        }
        for e in v["events"].as_array().into_iter().flatten() {
            if args.json {
                println!("{e}");
            } else {
                println!(
                    "{}  {:<10} {:<28} {:<32} {}",
                    e["time"].as_str().unwrap_or(""),
                    e["source"].as_str().unwrap_or(""),
                    e["actor"]["id"].as_str().unwrap_or(""),
                    e["action"].as_str().unwrap_or(""),
                    e["system"].as_str().unwrap_or("")
                );
            }
            printed += 1;
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    Ok(())
}
