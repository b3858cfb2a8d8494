//! `plumbline bench --cluster`: ingest and evaluation throughput of a cluster of 1, 2 and 4
//! nodes on loopback, each run on a fresh nats-server. Ingest is events acknowledged (in
//! JetStream) per second; evaluation is events committed as evaluated, on both sides, per
//! second from the first request — what the partition owners keep up with.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::Value;

use super::load::{self, Sent};
use super::service::Service;
use crate::throwaway::NatsServer;

pub struct Row {
    pub nodes: usize,
    pub ingest_eps: f64,
    pub eval_eps: f64,
    /// The largest share of the commits one node made (1/nodes when evenly dealt).
    pub max_share: f64,
}

/// The same workload through one node without a cluster (its sled store), for reference:
/// (ingest, evaluated) events per second.
pub async fn single(exe: &std::path::Path, events: u64) -> anyhow::Result<(f64, f64)> {
    let service = Service::start_with_env(exe, &[("PLUMBLINE_LIMITS_REQUESTS_PER_SEC", "0")])?;
    let client = reqwest::Client::new();
    let sent = Arc::new(Sent::default());
    let started = Instant::now();
    let ingest = blast_over(&client, std::slice::from_ref(&service.url), events, &sent).await?;
    let Some(_) = super::drained(&service, &client, Duration::from_secs(600)).await? else {
        bail!("one node: evaluation did not finish within 600 s");
    };
    // `drained` answers after three quiet polls: the end is the first of them.
    let evaluated = started.elapsed().saturating_sub(Duration::from_millis(60));
    Ok((
        events as f64 / ingest.as_secs_f64(),
        events as f64 / evaluated.as_secs_f64(),
    ))
}

/// Runs `events` of the benign mix through a fresh cluster of `nodes`.
pub async fn measure(exe: &std::path::Path, nodes: usize, events: u64) -> anyhow::Result<Row> {
    let nats = NatsServer::start()?;
    let mut services = Vec::new();
    for i in 0..nodes {
        let name = format!("bench{i}");
        services.push(Service::start_with_env(
            exe,
            &[
                ("PLUMBLINE_CLUSTER_ENABLED", "true"),
                ("PLUMBLINE_CLUSTER_URL", &nats.url),
                ("PLUMBLINE_CLUSTER_NODE", &name),
                ("PLUMBLINE_CLUSTER_LEASE_SECS", "3"),
                // Only the throughput of the log and the owners: no rate limit or lag bound.
                ("PLUMBLINE_LIMITS_REQUESTS_PER_SEC", "0"),
            ],
        )?);
    }
    let client = reqwest::Client::new();
    dealt(&client, &services).await?;
    let urls: Vec<String> = services.iter().map(|s| s.url.clone()).collect();
    let sent = Arc::new(Sent::default());
    let started = Instant::now();
    let ingest = blast_over(&client, &urls, events, &sent).await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if committed(&client, &urls).await? >= 2 * events {
            break;
        }
        if Instant::now() > deadline {
            bail!("{nodes} nodes: evaluation did not finish within 600 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let evaluated = started.elapsed();
    let mut most = 0u64;
    for u in &urls {
        most = most.max(
            status(&client, u).await?["committed_events"]
                .as_u64()
                .unwrap_or(0),
        );
    }
    Ok(Row {
        nodes,
        ingest_eps: events as f64 / ingest.as_secs_f64(),
        eval_eps: events as f64 / evaluated.as_secs_f64(),
        max_share: most as f64 / (2 * events) as f64,
    })
}

/// Bodies of 500 events over two connections per node, round-robin.
async fn blast_over(
    client: &reqwest::Client,
    urls: &[String],
    total: u64,
    sent: &Arc<Sent>,
) -> anyhow::Result<Duration> {
    const BATCH: u64 = 500;
    let bodies: Vec<(String, u64)> = (0..total)
        .step_by(BATCH as usize)
        .map(|from| {
            let to = (from + BATCH).min(total);
            (load::ndjson("cluster", from, to), to - from)
        })
        .collect();
    let queue = Arc::new(std::sync::Mutex::new(bodies.into_iter()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..urls.len() * 2 {
        let (client, url, queue, sent) = (
            client.clone(),
            urls[i % urls.len()].clone(),
            queue.clone(),
            sent.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().expect("queue").next();
                let Some((body, n)) = next else { break };
                load::post_ndjson(&client, &url, body, n, &sent).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(started.elapsed())
}

async fn status(client: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    Ok(client
        .get(format!("{url}/v1/cluster"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// Until every node sees all the others and the partitions are dealt out.
async fn dealt(client: &reqwest::Client, services: &[Service]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut owned = 0;
        let mut partitions = 0;
        let mut all_live = true;
        for s in services {
            let v = status(client, &s.url).await?;
            all_live &= v["live"].as_array().map_or(0, Vec::len) == services.len();
            owned += v["owned"].as_array().map_or(0, Vec::len);
            partitions = v["partitions"].as_u64().unwrap_or(0) as usize;
        }
        if all_live && owned == partitions && partitions > 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the partitions were not dealt out to {} nodes",
                services.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// (event, side) pairs committed as evaluated, over all nodes.
async fn committed(client: &reqwest::Client, urls: &[String]) -> anyhow::Result<u64> {
    let mut n = 0;
    for u in urls {
        n += status(client, u).await?["committed_events"]
            .as_u64()
            .unwrap_or(0);
    }
    Ok(n)
}
