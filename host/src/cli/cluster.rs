//! `plumbline cluster`: a fixed workload for a cluster, a sender that fails over between
//! nodes and records what was acknowledged, and the check that every acknowledged event
//! was evaluated exactly once and that the cluster's alerts are a single node's.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::Value;

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Print a fixed workload as NDJSON: benign repository traffic with misaligned stories
    /// (the built-in detectors' own positive fixtures, renamed per copy) spliced in.
    Workload(WorkloadArgs),
    /// Post an NDJSON file to one or more nodes in batches, round-robin, moving a batch to
    /// the next node when one does not answer; write the ids acknowledged (202).
    Send(SendArgs),
    /// Wait until every acknowledged event is committed as evaluated in the cluster's
    /// JetStream, compare each node's alerts with a single node's, and print one line.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct WorkloadArgs {
    /// Benign events (stories come on top, one every 40).
    #[arg(long, default_value_t = 2000)]
    pub events: u64,
    /// Prefix of every id (keeps runs apart on one store).
    #[arg(long, default_value = "wl")]
    pub run: String,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Node base URLs, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub to: Vec<String>,
    /// Events per request.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Requests per second across all nodes (0: as fast as acknowledged).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Where the acknowledged ids go, one per line.
    #[arg(long)]
    pub acked: PathBuf,
    /// The NDJSON workload.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The cluster's NATS server.
    #[arg(long)]
    pub nats: String,
    /// The acknowledged ids (`plumbline cluster send --acked`).
    #[arg(long)]
    pub acked: PathBuf,
    /// The cluster's nodes, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub nodes: Vec<String>,
    /// A single node that was sent the same workload.
    #[arg(long)]
    pub single: String,
    /// Give up waiting after this long.
    #[arg(long, default_value_t = 240)]
    pub wait_secs: u64,
}

pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    match args.command {
        ClusterCommand::Workload(a) => {
            let mut out = std::io::stdout().lock();
            for e in workload(a.events, &a.run, time::OffsetDateTime::now_utc())? {
                writeln!(out, "{e}")?;
            }
            Ok(())
        }
        ClusterCommand::Send(a) => send(a).await,
        ClusterCommand::Check(a) => check(a).await,
    }
}

/// Stories spliced into the workload: built-in detectors' positive fixtures.
const STORIES: &[&str] = &[
    include_str!("../../../detectors/branch-bypass/protected-push/fixtures/positive-force-push-main.json"),
    include_str!("../../../detectors/branch-bypass/ci-change-deploy/fixtures/positive-direct-ci-change-deployed.json"),
    include_str!("../../../detectors/branch-bypass/protection-toggle/fixtures/positive-disable-push-reenable.json"),
    include_str!("../../../detectors/branch-bypass/unreviewed-merge/fixtures/positive-self-merge-unreviewed.json"),
    include_str!("../../../detectors/credential-abuse/secret-probe/fixtures/positive-probe-then-success.json"),
    include_str!("../../../detectors/coding-agent/download-exec/fixtures/positive-download-then-chmod-and-run.json"),
];

/// `events` benign events over 45 minutes from an hour before `now`, and after every 40 of
/// them one story, its ids, actors and systems renamed for that copy and its times moved
/// to where it is spliced in. Fixed by its arguments but `now`.
pub fn workload(events: u64, run: &str, now: time::OffsetDateTime) -> anyhow::Result<Vec<Value>> {
    // Stories last up to a quarter of an hour: the last one still ends before `now`.
    let start = now - time::Duration::minutes(60);
    let step = time::Duration::milliseconds((45 * 60 * 1000 / events.max(1)) as i64);
    let mut out = Vec::new();
    let mut story = 0usize;
    for n in 0..events {
        let at = start + step * n as i32;
        out.push(crate::bench::load::mixed_at(
            run,
            n,
            &plumbline_event::format_time(at),
        ));
        if n % 40 == 39 {
            out.extend(renamed_story(story, run, at)?);
            story += 1;
        }
    }
    Ok(out)
}

fn renamed_story(k: usize, run: &str, at: time::OffsetDateTime) -> anyhow::Result<Vec<Value>> {
    let fixture: Value = serde_json::from_str(STORIES[k % STORIES.len()])?;
    let events = fixture["trajectory"]["events"]
        .as_array()
        .context("a fixture without trajectory.events")?;
    let first = events
        .iter()
        .filter_map(|e| e["time"].as_str())
        .filter_map(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .min()
        .context("a fixture without times")?;
    let mut out = Vec::new();
    for e in events {
        let mut e = e.clone();
        let t = time::OffsetDateTime::parse(
            e["time"].as_str().context("an event without time")?,
            &time::format_description::well_known::Rfc3339,
        )?;
        e["time"] = Value::String(plumbline_event::format_time(at + (t - first)));
        e["id"] = Value::String(format!("{run}-s{k}-{}", e["id"].as_str().unwrap_or("")));
        if let Some(actor) = e["actor"]["id"].as_str().map(str::to_string) {
            e["actor"]["id"] = Value::String(format!("{actor}-s{k}"));
        }
        if let Some(system) = e["system"].as_str().map(str::to_string) {
            e["system"] = Value::String(format!("{system}-s{k}"));
        }
        out.push(e);
    }
    Ok(out)
}

async fn send(a: SendArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("cannot read {}", a.file.display()))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let batches: Vec<(String, Vec<String>)> = lines
        .chunks(a.batch.max(1))
        .map(|chunk| {
            let ids = chunk
                .iter()
                .map(|l| {
                    serde_json::from_str::<Value>(l)
                        .ok()
                        .and_then(|v| v["id"].as_str().map(str::to_string))
                        .unwrap_or_default()
                })
                .collect();
            (chunk.join("\n"), ids)
        })
        .collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let acked = Arc::new(Mutex::new(std::fs::File::create(&a.acked)?));
    let interval = (a.rate > 0.0).then(|| Duration::from_secs_f64(a.to.len() as f64 / a.rate));
    let mut tasks = Vec::new();
    for first in 0..a.to.len() {
        let mine: Vec<(String, Vec<String>)> = batches
            .iter()
            .skip(first)
            .step_by(a.to.len())
            .cloned()
            .collect();
        let (client, urls, acked) = (client.clone(), a.to.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for (body, ids) in mine {
                let began = Instant::now();
                let refused = post_with_failover(&client, &urls, first, &body).await?;
                {
                    let mut f = acked.lock().expect("acked file");
                    for (i, id) in ids.iter().enumerate() {
                        if !refused.contains(&i) {
                            writeln!(f, "{id}")?;
                        }
                    }
                }
                if let Some(every) = interval {
                    tokio::time::sleep(every.saturating_sub(began.elapsed())).await;
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    acked.lock().expect("acked file").sync_all()?;
    Ok(())
}

/// Posts `body` to `urls[first]`, then the next node, and so on, until one acknowledges
/// it; waits out back-pressure. A node that is down (killed mid-stream) is skipped.
/// Returns the positions of the events the node refused (e.g. dated in the future).
pub async fn post_with_failover(
    client: &reqwest::Client,
    urls: &[String],
    first: usize,
    body: &str,
) -> anyhow::Result<BTreeSet<usize>> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut i = first;
    loop {
        let url = &urls[i % urls.len()];
        let sent = client
            .post(format!("{url}/v1/events"))
            .header("content-type", "application/x-ndjson")
            .body(body.to_string())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().as_u16() == 202 => {
                let report: Value = r.json().await?;
                let refused: BTreeSet<usize> = report["rejected"]
                    .as_array()
                    .map(|r| {
                        r.iter()
                            .filter_map(|r| r["index"].as_u64())
                            .map(|i| i as usize)
                            .collect()
                    })
                    .unwrap_or_default();
                for r in report["rejected"].as_array().into_iter().flatten() {
                    eprintln!("{url} refused an event: {r}");
                }
                return Ok(refused);
            }
            Ok(r) if matches!(r.status().as_u16(), 429 | 503) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Ok(r) if r.status().is_client_error() => {
                let status = r.status();
                bail!("{url} refused a batch ({status}): {}", r.text().await?)
            }
            // Down, or failed before acknowledging: the next node takes it (a side already
            // in the log is a duplicate there, dropped by the server).
            _ => {
                i += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        if Instant::now() > deadline {
            bail!("no node acknowledged a batch within 120 s");
        }
    }
}

/// An alert as compared: trajectory, severity, and the detectors that fired.
async fn alert_set(client: &reqwest::Client, url: &str) -> anyhow::Result<BTreeSet<String>> {
    let v: Value = client
        .get(format!("{url}/v1/alerts?limit=1000"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut out = BTreeSet::new();
    for a in v["alerts"]
        .as_array()
        .context("alerts answer without alerts")?
    {
        let mut detectors: Vec<&str> = a["detectors"]
            .as_array()
            .map(|d| d.iter().filter_map(|d| d["name"].as_str()).collect())
            .unwrap_or_default();
        detectors.sort_unstable();
        out.insert(format!(
            "{} severity={} detectors={}",
            a["trajectory_id"].as_str().unwrap_or(""),
            a["severity"],
            detectors.join(",")
        ));
    }
    Ok(out)
}

/// Polls `url`'s alerts until they stay the same for `quiet`.
async fn settled_alerts(
    client: &reqwest::Client,
    url: &str,
    quiet: Duration,
    deadline: Instant,
) -> anyhow::Result<BTreeSet<String>> {
    let mut last = alert_set(client, url).await?;
    let mut since = Instant::now();
    while since.elapsed() < quiet && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = alert_set(client, url).await?;
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
    Ok(last)
}

async fn check(a: CheckArgs) -> anyhow::Result<()> {
    let acked: BTreeSet<String> = std::fs::read_to_string(&a.acked)
        .with_context(|| format!("cannot read {}", a.acked.display()))?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let v = verdict(
        &a.nats,
        &acked,
        &a.nodes,
        &a.single,
        Duration::from_secs(a.wait_secs),
    )
    .await?;
    println!("{}", v.line);
    if !v.ok {
        bail!("the cluster run differs from what was acknowledged or from the single node");
    }
    Ok(())
}

/// The comparison of a cluster run with a single node's.
pub struct Verdict {
    /// `cluster: nodes=… acked=… evaluated_once=… lost=… duplicates=… alerts_cluster=…
    /// alerts_single=… match=…`
    pub line: String,
    /// Every acknowledged event evaluated exactly once, and the same alerts.
    pub ok: bool,
}

/// Waits (up to `wait`) until every id in `acked` is committed as evaluated, then until
/// the nodes serve the same alerts, and compares them with `single`'s.
pub async fn verdict(
    nats: &str,
    acked: &BTreeSet<String>,
    nodes: &[String],
    single: &str,
    wait: Duration,
) -> anyhow::Result<Verdict> {
    let deadline = Instant::now() + wait;
    let (once, lost, twice) = loop {
        let evaluated = plumbline_cluster::audit::evaluated(nats).await?;
        let (once, lost, twice) = evaluated.check(acked.iter().map(String::as_str));
        if once == acked.len() || twice > 0 || Instant::now() > deadline {
            for id in acked
                .iter()
                .filter(|id| !evaluated.off(id).is_empty())
                .take(10)
            {
                eprintln!("not evaluated exactly once: {id} {:?}", evaluated.off(id));
            }
            break (once, lost, twice);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    // Every node serves the whole cluster's alerts: wait until they agree.
    let quiet = Duration::from_secs(3);
    let mut cluster = settled_alerts(&client, &nodes[0], quiet, deadline).await?;
    let mut agree = false;
    loop {
        let mut same = true;
        for url in &nodes[1..] {
            if alert_set(&client, url).await? != cluster {
                same = false;
            }
        }
        if same {
            agree = true;
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        cluster = settled_alerts(&client, &nodes[0], quiet, deadline).await?;
    }
    let single = settled_alerts(&client, single, quiet, deadline).await?;
    let matched = agree && cluster == single;
    if !matched {
        for x in cluster.symmetric_difference(&single) {
            let side = if cluster.contains(x) {
                "cluster only"
            } else {
                "single only"
            };
            eprintln!("{side}: {x}");
        }
        if !agree {
            eprintln!("the nodes do not serve the same alerts");
        }
    }
    let line = format!(
        "cluster: nodes={} acked={} evaluated_once={once} lost={lost} duplicates={twice} \
         alerts_cluster={} alerts_single={} match={matched}",
        nodes.len(),
        acked.len(),
        cluster.len(),
        single.len()
    );
    Ok(Verdict {
        line,
        ok: once == acked.len() && lost == 0 && twice == 0 && matched,
    })
}
