//! Scale-out through the real binary: a real nats-server with JetStream and three nodes on
//! loopback, one of them killed (SIGKILL) mid-stream and restarted. Every acknowledged
//! event must be committed as evaluated exactly once, every node must serve the same
//! alerts, and they must be a single node's alerts for the same input.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

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
    // Settle re-evaluations run on the wall clock: off, so the two runs compare whole.
    let config = dir.path().join("plumbline.toml");
    let key = plumbline_runtime::pack::PackKey::generate().unwrap();
    std::fs::write(
        &config,
        format!(
            "[trajectory]\nsettle_secs = []\n[packs]\ntrusted_keys = [{{ name = \"e2e\", key = \"{}\" }}]\n",
            key.public_hex()
        ),
    )
    .unwrap();
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
            // Mid-stream: node2 has taken events and owns partitions with work under way.
            nodes[1].crash();
        }
        if i == batches.len() / 2 {
            nodes[1].restart();
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
        &["--config", config.to_str().unwrap()],
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
    let (status, view) = get(&nodes[1], "/v1/cluster").await;
    assert_eq!(status, 200);
    assert_eq!(view["node"], "node2");

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
