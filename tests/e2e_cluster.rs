//! Scale-out through the real binary: a real nats-server with JetStream and three nodes on
//! loopback, one of them killed (SIGKILL) mid-stream and restarted. Every acknowledged
//! event must be committed as evaluated exactly once, every node must serve the same
//! alerts, and they must be a single node's alerts for the same input; a signed webhook
//! receiver must get the cluster's notifications once each, as a single node sends them.

#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};

use plumbline::throwaway::NatsServer;
use serde_json::Value;
use support::{client, get, Server};

fn node(dir: &Path, config: &Path, nats: &NatsServer, name: &str) -> Server {
    Server::start_with(
        &dir.join(name),
        &["--config", config.to_str().unwrap()],
        &[
            ("PLUMBLINE_CLUSTER_ENABLED", "true"),
            ("PLUMBLINE_CLUSTER_NODE", name),
            ("PLUMBLINE_CLUSTER_URL", &nats.url),
            ("PLUMBLINE_CLUSTER_LEASE_SECS", "3"),
        ],
    )
}

/// Until each node sees all three and owns its share of the partitions.
async fn dealt(nodes: &[Server]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut owned = 0;
        let mut all_live = true;
        for n in nodes {
            let (status, v) = get(n, "/v1/cluster").await;
            assert_eq!(status, 200, "{v}");
            all_live &= v["live"].as_array().map_or(0, Vec::len) == nodes.len();
            owned += v["owned"].as_array().map_or(0, Vec::len);
        }
        if all_live && owned == 16 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the partitions were not dealt out"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const HOOK_SECRET: &str = "cluster-test-webhook-secret";

/// What the webhook receiver accepted: (run, delivery id, alert id) per request.
type Hooks = Arc<Mutex<Vec<(String, String, String)>>>;

async fn hook(
    State(hooks): State<Hooks>,
    UrlPath(run): UrlPath<String>,
    h: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let header = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
    let ts: i64 = header("x-plumbline-timestamp").parse().unwrap_or(0);
    if header("x-plumbline-signature")
        != plumbline_delivery::route::webhook::sign(HOOK_SECRET, ts, &body)
    {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    hooks.lock().unwrap().push((
        run,
        header("x-plumbline-delivery").to_string(),
        v["message"]["alert_id"].as_str().unwrap_or("").to_string(),
    ));
    StatusCode::NO_CONTENT
}

/// A configuration whose policy sends every alert to the receiver's `run` path.
fn write_config(
    dir: &Path,
    run: &str,
    hook: &str,
    key: &plumbline_runtime::pack::PackKey,
) -> std::path::PathBuf {
    let policy = dir.join(format!("policy-{run}.toml"));
    std::fs::write(
        &policy,
        format!(
            "[quiet_hours]\nenabled = false\n\n[[routes]]\nname = \"all\"\n\
             match = {{ severity = [1, 2, 3] }}\ndestinations = [\"hook\"]\n\n\
             [destinations.hook]\nkind = \"webhook\"\nurl = \"{hook}/{run}\"\n\
             secret = \"{HOOK_SECRET}\"\n"
        ),
    )
    .unwrap();
    let config = dir.join(format!("plumbline-{run}.toml"));
    // Settle re-evaluations run on the wall clock: off, so the two runs compare whole.
    std::fs::write(
        &config,
        format!(
            "[trajectory]\nsettle_secs = []\n[packs]\ntrusted_keys = [{{ name = \"e2e\", key = \"{}\" }}]\n\
             [policy]\nfile = {:?}\n[delivery]\nretry_base_ms = 200\nretry_max_ms = 2000\npoll_ms = 100\n",
            key.public_hex(),
            policy.display().to_string(),
        ),
    )
    .unwrap();
    config
}

/// The alerts each run notified, once the receiver has been quiet for a while: alert id →
/// the distinct delivery ids it came under (a repeat of one id is the same delivery).
async fn notified(hooks: &Hooks, run: &str) -> BTreeMap<String, BTreeSet<String>> {
    let count = || hooks.lock().unwrap().iter().filter(|h| h.0 == run).count();
    let mut last = (count(), Instant::now());
    let deadline = Instant::now() + Duration::from_secs(90);
    while last.1.elapsed() < Duration::from_secs(5) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if count() != last.0 {
            last = (count(), Instant::now());
        }
    }
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, delivery, alert) in hooks.lock().unwrap().iter().filter(|h| h.0 == run) {
        out.entry(alert.clone())
            .or_default()
            .insert(delivery.clone());
    }
    out
}

/// Sends the workload in batches of 20, round-robin over `urls`; returns the ids accepted.
async fn send(
    http: &reqwest::Client,
    urls: &[String],
    batch: &[Value],
    first: usize,
) -> Vec<String> {
    let body: Vec<String> = batch.iter().map(|e| e.to_string()).collect();
    let refused = plumbline::cli::cluster::post_with_failover(http, urls, first, &body.join("\n"))
        .await
        .expect("a node acknowledges the batch");
    batch
        .iter()
        .enumerate()
        .filter(|(i, _)| !refused.contains(i))
        .map(|(_, e)| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_loses_nothing_and_evaluates_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start().unwrap();
    let hooks = Hooks::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook/{run}", axum::routing::post(hook))
        .with_state(hooks.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let key = plumbline_runtime::pack::PackKey::generate().unwrap();
    let config = write_config(dir.path(), "cluster", &hook_url, &key);
    let single_config = write_config(dir.path(), "single", &hook_url, &key);
    let mut nodes: Vec<Server> = ["node1", "node2", "node3"]
        .iter()
        .map(|name| node(dir.path(), &config, &nats, name))
        .collect();
    dealt(&nodes).await;

    let events =
        plumbline::cli::cluster::workload(600, "e2e", time::OffsetDateTime::now_utc()).unwrap();
    let batches: Vec<&[Value]> = events.chunks(20).collect();
    let http = client();
    let mut acked = BTreeSet::new();
    for (i, batch) in batches.iter().enumerate() {
        if i == batches.len() / 3 {
            // Mid-stream: node1 has taken events, owns partitions with work under way and
            // consumes the cluster's outbox (it owns partition 0).
            nodes[0].crash();
        }
        if i == batches.len() / 2 {
            nodes[0].restart();
        }
        let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
        acked.extend(send(&http, &urls, batch, i % 3).await);
    }
    assert!(
        acked.len() > 600,
        "the workload was acknowledged: {}",
        acked.len()
    );

    let single = Server::start_with(
        &dir.path().join("single"),
        &["--config", single_config.to_str().unwrap()],
        &[],
    );
    for batch in &batches {
        send(&http, std::slice::from_ref(&single.url), batch, 0).await;
    }
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let v = plumbline::cli::cluster::verdict(
        &nats.url,
        &acked,
        &urls,
        &single.url,
        Duration::from_secs(180),
    )
    .await
    .unwrap();
    assert!(v.ok, "{}", v.line);
    assert!(
        v.line.contains(&format!(
            "acked={n} evaluated_once={n} lost=0 duplicates=0",
            n = acked.len()
        )),
        "{}",
        v.line
    );
    // The workload's stories raised alerts (the comparison is not of two empty sets).
    let alerts = support::alerts(&single).await;
    assert!(alerts.len() >= 10, "{} alerts", alerts.len());
    // The restarted node answers for the whole cluster.
    let (status, view) = get(&nodes[0], "/v1/cluster").await;
    assert_eq!(status, 200);
    assert_eq!(view["node"], "node1");

    // One node sends every notification (the cluster's outbox consumer): every delivery
    // a node decided and forwarded arrives, under its own id; and every alert a single
    // node notified about is notified about (how often may differ: an alert raised at
    // severity 2 and raised to 3 a step later notifies twice, and the cluster's steps
    // are not the single node's batches).
    let (cluster, single_hooks) = (
        notified(&hooks, "cluster").await,
        notified(&hooks, "single").await,
    );
    assert!(single_hooks.len() >= 10, "{single_hooks:?}");
    let mut forwarded = 0;
    for n in &nodes {
        let (_, v) = get(n, "/v1/outbox").await;
        forwarded += v["forwarded"].as_u64().unwrap();
    }
    let received: usize = cluster.values().map(BTreeSet::len).sum();
    assert_eq!(received as u64, forwarded, "{cluster:?}");
    let (c, s): (BTreeSet<&String>, BTreeSet<&String>) =
        (cluster.keys().collect(), single_hooks.keys().collect());
    assert_eq!(
        c,
        s,
        "cluster only: {:?}; single only: {:?}",
        c.difference(&s),
        s.difference(&c)
    );
    let mut consumers = 0;
    for n in &nodes {
        let (_, v) = get(n, "/v1/cluster").await;
        consumers += usize::from(v["outbox_consumer"] == true);
    }
    assert_eq!(consumers, 1, "one node consumes the outbox");

    // A label taken on one node is on every node, and so is the alert's new status.
    let alert = alerts[0]["id"].as_str().unwrap().to_string();
    let r = http
        .post(nodes[2].at(&format!("/v1/alerts/{alert}/labels")))
        .json(&serde_json::json!({"outcome": "helpful", "comment": "seen on node3", "by": "rev"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    for n in &nodes {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, labels) = get(n, &format!("/v1/alerts/{alert}/labels")).await;
            let (_, a) = get(n, &format!("/v1/alerts/{alert}")).await;
            if labels["labels"].as_array().map_or(0, Vec::len) == 1 && a["status"] == "reviewed" {
                assert_eq!(labels["labels"][0]["comment"], "seen on node3");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {labels} {}",
                n.url,
                a["status"]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // A pack installed on one node is installed on every node; removed on another, it
    // leaves every node.
    let archive = plumbline::bench::swap::probe_pack(1, &key).unwrap();
    let r = http
        .post(nodes[0].at("/v1/packs"))
        .body(archive)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    for n in &nodes {
        pack_state(n, "active").await;
    }
    let r = http
        .delete(nodes[2].at("/v1/packs/probe"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    for n in &nodes {
        pack_state(n, "retired").await;
    }
}

/// Waits until the probe pack's first listed version on `n` is in `state`.
async fn pack_state(n: &Server, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = get(n, "/v1/packs").await;
        let probe = v["packs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "probe")
            .cloned();
        if probe.as_ref().is_some_and(|p| p["state"] == state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}: the probe pack is not {state}: {probe:?}",
            n.url
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `plumbline bench --cluster --quick --json` through the real binary: every figure of
/// 1, 2 and 4 nodes is there as a number (never how fast: no timing assertions).
#[test]
fn the_cluster_bench_reports_every_figure() {
    let out = Command::new(env!("CARGO_BIN_EXE_plumbline"))
        .args([
            "bench",
            "--cluster",
            "--quick",
            "--json",
            "--cluster-events",
            "1000",
        ])
        .env("PLUMBLINE_RUNTIME_CACHE_DIR", support::shared_cache())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap();
    let v: Value = serde_json::from_str(line).unwrap();
    for nodes in [1, 2, 4] {
        for figure in ["ingest_eps", "eval_eps"] {
            let key = format!("cluster{nodes}_{figure}");
            assert!(v[&key].as_f64().is_some_and(|x| x > 0.0), "{key}: {v}");
        }
    }
    for key in [
        "cluster2_ingest_scaling",
        "cluster4_eval_scaling",
        "cluster4_max_share",
        "single_ingest_eps",
        "single_eval_eps",
    ] {
        assert!(v[key].as_f64().is_some(), "{key}: {v}");
    }
}
