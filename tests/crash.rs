//! Crash safety under load: the real binary is killed with SIGKILL again and again while
//! events stream in, a signed pack is swapped, alerts are labelled and deliveries go out to
//! a local webhook receiver, and restarted on the same data directory each time. Afterwards
//! every acknowledged event (202), label (201) and pack install (201) is there, every stored
//! probe event has exactly one alert, every alert exactly one delivery per notification,
//! every delivery the receiver saw is still in the outbox, and nothing is doubled.
//!
//! Each cycle ends with a kill chosen by what was just acknowledged, not by a clock: after
//! a number of acknowledged events (varied per cycle), right after a label's 201, or right
//! after a pack install's 201 — the moments a missing flush would lose data.
//!
//! `PLUMBLINE_CRASH_CYCLES` sets the number of kill cycles (default [`CI_CYCLES`]):
//! `PLUMBLINE_CRASH_CYCLES=200 cargo test -p plumbline --test e2e_ingest crash::sigkill -- --nocapture`.
//! The last line on stderr is the figure: `crash: cycles=… acknowledged=… lost=0 …`.
//!
//! Components: detectors/testing/pack-probe (scripts/build-detectors.sh builds them).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use plumbline::bench::swap::probe_pack;
use plumbline_runtime::pack::PackKey;
use serde_json::{json, Value};

use crate::support::{client, get, Server};

/// Kill cycles in CI (about 11,000 acknowledged events, some 15 s on two cores; 20 was
/// where two crash bugs showed every run, see `Store::batch_events` and `PolicyStage::decide`).
const CI_CYCLES: usize = 20;
/// Events per request; one of them is a probe event (its own actor: one alert).
const BATCH: u64 = 50;
/// Concurrent event streams.
const STREAMS: usize = 3;
const SECRET: &str = "crash-test-webhook-secret";

/// What the webhook receiver got: (delivery id, alert id, sorted signals) per request.
#[derive(Default)]
struct Received {
    requests: Mutex<Vec<(String, String, Vec<String>)>>,
}

async fn hook(State(rx): State<Arc<Received>>, h: HeaderMap, body: Bytes) -> StatusCode {
    let header = |k: &str| {
        h.get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let ts: i64 = header("x-plumbline-timestamp").parse().unwrap_or(0);
    if header("x-plumbline-signature")
        != plumbline_delivery::route::webhook::sign(SECRET, ts, &body)
    {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut signals: Vec<String> = v["message"]["signals"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    signals.sort();
    rx.requests.lock().unwrap().push((
        header("x-plumbline-delivery"),
        v["message"]["alert_id"].as_str().unwrap_or("").to_string(),
        signals,
    ));
    StatusCode::NO_CONTENT
}

/// What the load acknowledged, and what it sent without an answer (in doubt: may or may not
/// be stored, but never twice).
#[derive(Default, Clone)]
struct Ledger {
    events: BTreeSet<String>,
    events_in_doubt: BTreeSet<String>,
    probes: BTreeSet<String>,
    /// alert id → comments of acknowledged labels (each comment is posted once).
    labels: BTreeMap<String, BTreeSet<String>>,
    labels_in_doubt: BTreeMap<String, BTreeSet<String>>,
    /// The newest acknowledged pack version, and the one in flight at the kill.
    pack: u32,
    pack_in_doubt: Option<u32>,
    /// Per stream, the ids of its last acknowledged batch (checked after each restart).
    last_batches: HashMap<usize, Vec<String>>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kill {
    /// After this many events were acknowledged in the cycle.
    Events(u64),
    /// Right after a label is acknowledged.
    Label,
    /// Right after a pack install is acknowledged.
    Pack,
}

/// One cycle's shared state: the load tasks acknowledge into the ledger; the first task to
/// meet the cycle's kill condition sends SIGKILL (once).
struct Cycle {
    url: String,
    pid: i32,
    kill: Kill,
    armed: AtomicBool,
    killed: tokio::sync::Notify,
    stop: AtomicBool,
    acked: AtomicU64,
    /// Acknowledged events before labels and the pack swap start (the load is flowing).
    warmup: u64,
    ledger: Arc<Mutex<Ledger>>,
    /// An unexpected answer: ends the cycle (with the kill) and fails the test.
    error: Mutex<Option<String>>,
    seq: Arc<AtomicU64>,
    base: i64,
    cycle: usize,
}

impl Cycle {
    fn kill_now(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            // SAFETY: kill(2) on the server we started; it is not reaped before `killed`
            // is notified, so the pid is still ours.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            self.stop.store(true, Ordering::SeqCst);
            self.killed.notify_one();
        }
    }

    fn fail(&self, why: String) {
        self.error.lock().unwrap().get_or_insert(why);
        self.kill_now();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn event(&self, n: u64) -> Value {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(
            (self.base + n as i64 * 1_000_000) as i128,
        )
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
        if n.is_multiple_of(BATCH) {
            // A probe event: its own actor and system, so one actor trajectory, one alert.
            json!({"id": format!("crash-{n}"), "time": t, "source": "custom",
                   "actor": {"id": format!("probe-actor-{n}"), "type": "service"},
                   "system": format!("probe/system-{n}"), "action": "probe.tick"})
        } else {
            json!({"id": format!("crash-{n}"), "time": t, "source": "custom",
                   "actor": {"id": format!("dev-{}", n % 41), "type": "human"},
                   "system": format!("acme/repo-{}", n % 13), "action": "git.push",
                   "environment": "prod", "attributes": {"branch": "main", "cycle": self.cycle}})
        }
    }
}

async fn stream(c: Arc<Cycle>, task: usize) {
    let http = client();
    while !c.stopped() {
        let first = c.seq.fetch_add(BATCH, Ordering::SeqCst);
        let batch: Vec<Value> = (first..first + BATCH).map(|n| c.event(n)).collect();
        let ids: Vec<String> = batch
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        let answer = http
            .post(format!("{}/v1/events", c.url))
            .json(&batch)
            .send()
            .await;
        let acked = match answer {
            Ok(r) if r.status().as_u16() == 202 => match r.json::<Value>().await {
                // Fresh ids: every event accepted, none a duplicate or refused.
                Ok(v) if v["accepted"].as_u64() == Some(BATCH) => true,
                Ok(v) => return c.fail(format!("POST /v1/events: {v}")),
                Err(_) => false,
            },
            // The connection broke (the kill): in doubt.
            Err(_) => false,
            Ok(r) => {
                let why = format!("POST /v1/events: {} {:?}", r.status(), r.text().await);
                return c.fail(why);
            }
        };
        {
            let mut l = c.ledger.lock().unwrap();
            if acked {
                l.probes.insert(ids[0].clone());
                l.last_batches.insert(task, ids.clone());
                l.events.extend(ids);
            } else {
                l.events_in_doubt.extend(ids);
            }
        }
        if acked {
            let n = c.acked.fetch_add(BATCH, Ordering::SeqCst) + BATCH;
            if matches!(c.kill, Kill::Events(k) if n >= k) {
                c.kill_now();
            }
        }
    }
}

async fn label(c: Arc<Cycle>) {
    let http = client();
    let mut n = 0u64;
    while !c.stopped() {
        if c.acked.load(Ordering::SeqCst) < c.warmup {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        // Alternate between an unlabelled alert and relabelling a labelled one.
        let status = if n.is_multiple_of(2) {
            "open"
        } else {
            "reviewed"
        };
        let list = http
            .get(format!("{}/v1/alerts?status={status}&limit=1", c.url))
            .send()
            .await;
        let Ok(list) = list else { break };
        let Ok(list) = list.json::<Value>().await else {
            break;
        };
        let Some(alert) = list["alerts"][0]["id"].as_str().map(String::from) else {
            n += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let comment = format!("cycle {} label {n}", c.cycle);
        n += 1;
        let r = http
            .post(format!("{}/v1/alerts/{alert}/labels", c.url))
            .json(&json!({"outcome": "helpful", "by": "crash-test", "comment": comment}))
            .send()
            .await;
        let acked = match r {
            Ok(r) if r.status().as_u16() == 201 => true,
            Err(_) => false,
            Ok(r) => {
                let why = format!("label on {alert}: {} {:?}", r.status(), r.text().await);
                return c.fail(why);
            }
        };
        {
            let mut l = c.ledger.lock().unwrap();
            let book = if acked {
                &mut l.labels
            } else {
                &mut l.labels_in_doubt
            };
            book.entry(alert).or_default().insert(comment);
        }
        if acked && c.kill == Kill::Label {
            c.kill_now();
        }
        // Pacing, so labels do not crowd out the event streams.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn swap_pack(c: Arc<Cycle>, archive: Vec<u8>, version: u32) {
    while c.acked.load(Ordering::SeqCst) < c.warmup {
        if c.stopped() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    c.ledger.lock().unwrap().pack_in_doubt = Some(version);
    let r = client()
        .post(format!("{}/v1/packs", c.url))
        .body(archive)
        .send()
        .await;
    match r {
        Ok(r) if r.status().as_u16() == 201 => {
            {
                let mut l = c.ledger.lock().unwrap();
                l.pack = version;
                l.pack_in_doubt = None;
            }
            if c.kill == Kill::Pack {
                c.kill_now();
            }
        }
        Err(_) => {}
        Ok(r) => {
            let why = format!("pack install: {} {:?}", r.status(), r.text().await);
            c.fail(why)
        }
    }
}

/// After a restart: the last acknowledged batches, labels and the pack are there.
async fn check_after_restart(s: &Server, ledger: &Ledger, cycle: usize) {
    let (st, h) = get(s, "/healthz").await;
    assert_eq!(
        (st, h["status"].as_str()),
        (200, Some("ok")),
        "cycle {cycle}"
    );
    for ids in ledger.last_batches.values() {
        for id in [&ids[0], &ids[ids.len() - 1]] {
            let (st, e) = get(s, &format!("/v1/events/{id}")).await;
            assert_eq!(st, 200, "cycle {cycle}: acknowledged event {id} lost: {e}");
        }
    }
    let (_, packs) = get(s, "/v1/packs").await;
    let active: Vec<u32> = packs["packs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "probe" && p["state"] == "active")
        .map(|p| {
            p["version"]
                .as_str()
                .unwrap()
                .split('.')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(active.len(), 1, "cycle {cycle}: one active probe: {packs}");
    assert!(
        active[0] == ledger.pack || Some(active[0]) == ledger.pack_in_doubt,
        "cycle {cycle}: probe {} active, acknowledged {} (in flight {:?})",
        active[0],
        ledger.pack,
        ledger.pack_in_doubt
    );
}

/// Polls `f` until it returns Some or `deadline` has passed (then None).
async fn until<T, F, Fut>(deadline: Instant, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every stored event of the run, by listing (paged), with how often each id appears.
async fn stored_events(s: &Server) -> (BTreeMap<String, usize>, BTreeSet<String>) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut probes = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/events?source=custom&limit=1000&cursor={c}"),
            None => "/v1/events?source=custom&limit=1000".to_string(),
        };
        let (st, page) = get(s, &path).await;
        assert_eq!(st, 200, "{page}");
        for e in page["events"].as_array().unwrap() {
            let id = e["id"].as_str().unwrap().to_string();
            if e["action"] == "probe.tick" {
                probes.insert(id.clone());
            }
            *seen.entry(id).or_default() += 1;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (seen, probes),
        }
    }
}

/// The server on `dir`/data: the probe pack 1.0.0 installed (no built-in packs), its
/// severity-2 alerts routed to the webhook at `hook_url`.
async fn start(dir: &Path, key: &PackKey, hook_url: &str) -> Server {
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            r#"
[quiet_hours]
enabled = false

[[routes]]
name = "probe"
match = {{ severity = [2] }}
destinations = ["hook"]

[destinations.hook]
kind = "webhook"
url = "{hook_url}"
secret = "{SECRET}"
"#
        ),
    )
    .unwrap();
    let config = dir.join("plumbline.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[runtime]
cache_dir = {cache:?}
deadline_ms = 10000

[trajectory]
settle_secs = []

[packs]
builtin = false
watch = false
trusted_keys = [{{ name = "e2e", key = "{key}" }}]

[policy]
file = {policy:?}

[delivery]
retry_base_ms = 200
retry_max_ms = 2000
poll_ms = 100
"#,
            cache = crate::support::shared_cache().display().to_string(),
            key = key.public_hex(),
            policy = policy.display().to_string(),
        ),
    )
    .unwrap();
    let s = Server::start_with(
        &dir.join("data"),
        &["--config", config.to_str().unwrap()],
        &[],
    );
    let r = client()
        .post(s.at("/v1/packs"))
        .body(probe_pack(1, key).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{:?}", r.text().await);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_and_doubles_nothing() {
    let cycles: usize = std::env::var("PLUMBLINE_CRASH_CYCLES")
        .ok()
        .map(|v| v.parse().expect("PLUMBLINE_CRASH_CYCLES: a number"))
        .unwrap_or(CI_CYCLES);
    let started = Instant::now();

    // The webhook receiver.
    let received = Arc::new(Received::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let key = PackKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path(), &key, &hook_url).await;

    let ledger = Arc::new(Mutex::new(Ledger {
        pack: 1,
        ..Ledger::default()
    }));
    let seq = Arc::new(AtomicU64::new(0));
    // Event times: from 20 minutes ago, a millisecond apart (inside retention and the
    // trajectory window, never in the future).
    let base = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 - 1_200_000_000_000;
    let mut kills = [0usize; 3];
    for cycle in 0..cycles {
        let kill = match cycle % 3 {
            0 => Kill::Events(300 + (cycle as u64 * 211) % 1200),
            1 => Kill::Label,
            _ => Kill::Pack,
        };
        kills[cycle % 3] += 1;
        let c = Arc::new(Cycle {
            url: s.url.clone(),
            pid: s.pid() as i32,
            kill,
            armed: AtomicBool::new(true),
            killed: tokio::sync::Notify::new(),
            stop: AtomicBool::new(false),
            acked: AtomicU64::new(0),
            warmup: 200,
            ledger: ledger.clone(),
            error: Mutex::new(None),
            seq: seq.clone(),
            base,
            cycle,
        });
        let version = 2 + cycle as u32;
        let archive = probe_pack(version, &key).unwrap();
        let mut tasks = Vec::new();
        for task in 0..STREAMS {
            tasks.push(tokio::spawn(stream(c.clone(), task)));
        }
        tasks.push(tokio::spawn(label(c.clone())));
        tasks.push(tokio::spawn(swap_pack(c.clone(), archive, version)));
        c.killed.notified().await;
        s.crash();
        for t in tasks {
            t.await.unwrap();
        }
        if let Some(why) = c.error.lock().unwrap().take() {
            panic!("cycle {cycle}: {why}");
        }
        s.restart();
        let snapshot = ledger.lock().unwrap().clone();
        check_after_restart(&s, &snapshot, cycle).await;
        ledger.lock().unwrap().pack_in_doubt = None;
    }
    let load_done = started.elapsed();

    // Settle: every stored probe event gets its alert and every alert its delivery.
    let (events, probes) = stored_events(&s).await;
    let l = std::mem::take(&mut *ledger.lock().unwrap());
    let lost: Vec<&String> = l
        .events
        .iter()
        .filter(|id| !events.contains_key(*id))
        .collect();
    let doubled: Vec<(&String, &usize)> = events.iter().filter(|(_, n)| **n > 1).collect();
    let strangers: Vec<&String> = events
        .keys()
        .filter(|id| !l.events.contains(*id) && !l.events_in_doubt.contains(*id))
        .collect();
    assert!(l.probes.is_subset(&probes) || !lost.is_empty());

    // One alert per probe event: its actor trajectory's, holding it; none on its system's.
    // Evaluation of what was stored before the last kill may still be under way: bounded
    // waits, sharing one deadline, so a missing alert is reported rather than waited on
    // for each probe in turn.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut alerts: BTreeMap<String, String> = BTreeMap::new(); // alert id → probe event
    let mut lost_alerts = Vec::new();
    let mut doubled_alerts = Vec::new();
    for probe in &probes {
        let n = probe.trim_start_matches("crash-");
        let found = until(deadline, || async {
            let (_, t) = get(&s, &format!("/v1/trajectories?actor=probe-actor-{n}")).await;
            let list = t["trajectories"].as_array().cloned().unwrap_or_default();
            let mut mine = Vec::new();
            for tr in &list {
                let id = tr["id"].as_str().unwrap();
                let alert = format!("alr-{}", id.trim_start_matches("trj-"));
                let (st, a) = get(&s, &format!("/v1/alerts/{alert}")).await;
                if st == 200 {
                    mine.push((tr["kind"].as_str().unwrap().to_string(), a));
                }
            }
            (!mine.is_empty()).then_some(mine)
        })
        .await
        .unwrap_or_default();
        if found.is_empty() {
            lost_alerts.push(format!("{probe}: no alert"));
        } else if found.len() != 1 || found[0].0 != "actor" {
            doubled_alerts.push(format!("{probe}: {} alerts", found.len()));
        }
        for (_, a) in &found {
            let ids: Vec<&str> = a["event_ids"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            if !ids.contains(&probe.as_str()) {
                lost_alerts.push(format!("{probe}: not in {}", a["id"]));
            }
            let id = a["id"].as_str().unwrap().to_string();
            if let Some(prev) = alerts.insert(id.clone(), probe.clone()) {
                doubled_alerts.push(format!("{id}: for {prev} and {probe}"));
            }
        }
    }

    // Deliveries: every alert reaches the receiver; each delivery the receiver saw is in
    // the outbox as delivered (it was on disk before it was sent); one alert's deliveries
    // each carry a different notification (a later one adds a finding: after a restart,
    // the next pack version may re-judge a trajectory) — the same one twice is a double.
    // Every delivery a decision queued arrives.
    let mut delivery_ids: BTreeSet<String> = BTreeSet::new();
    let mut doubled_deliveries = Vec::new();
    let mut undelivered = Vec::new();
    // Sent deliveries that no decision record of their alert names (see the report).
    let mut undocumented = Vec::new();
    let received_for = |alert: &str| -> BTreeMap<String, Vec<String>> {
        let got = received.requests.lock().unwrap();
        got.iter()
            .filter(|(_, a, _)| a == alert)
            .map(|(d, _, signals)| (d.clone(), signals.clone()))
            .collect()
    };
    for alert in alerts.keys() {
        let (_, d) = get(&s, &format!("/v1/policy/decisions/{alert}")).await;
        let queued: BTreeSet<String> = d["decisions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .flat_map(|rec| rec["deliveries"].as_array().cloned().unwrap_or_default())
            .filter(|o| o["destination"] == "hook")
            .filter_map(|o| o["delivery_id"].as_u64().map(|i| i.to_string()))
            .collect();
        let by_id = until(deadline, || async {
            let got = received_for(alert);
            (!got.is_empty() && queued.iter().all(|q| got.contains_key(q))).then_some(got)
        })
        .await
        .unwrap_or_else(|| received_for(alert));
        if by_id.is_empty() {
            undelivered.push(format!("{alert}: nothing received; decisions: {d}"));
        }
        for q in queued.iter().filter(|q| !by_id.contains_key(*q)) {
            undelivered.push(format!("{alert}: delivery {q} queued, never received"));
        }
        for id in by_id.keys() {
            let state = until(deadline, || async {
                let (st, d) = get(&s, &format!("/v1/outbox/deliveries/{id}")).await;
                match st {
                    200 if d["state"] == "pending" => None,
                    200 => Some(d["state"].as_str().unwrap_or("").to_string()),
                    _ => Some(format!("missing from the outbox ({st})")),
                }
            })
            .await
            .unwrap_or_else(|| "still pending".into());
            if state != "delivered" {
                undelivered.push(format!("{alert}: delivery {id} {state}"));
            }
            if !queued.contains(id) {
                let records = d["decisions"].as_array().map_or(0, |v| v.len());
                undocumented.push(format!("{alert}: {id} ({records} decision records)"));
                if std::env::var_os("PLUMBLINE_CRASH_DEBUG").is_some() {
                    let (_, x) = get(&s, &format!("/v1/outbox/deliveries/{id}")).await;
                    eprintln!("undocumented {id}: outbox {x}\ndecisions {d}");
                }
            }
            delivery_ids.insert(id.clone());
        }
        let distinct: BTreeSet<&Vec<String>> = by_id.values().collect();
        if distinct.len() != by_id.len() {
            doubled_deliveries.push(format!("{alert}: {by_id:?}"));
        }
    }
    let (unknown, resent) = {
        let got = received.requests.lock().unwrap();
        let unknown: Vec<String> = got
            .iter()
            .filter(|(d, _, _)| !delivery_ids.contains(d))
            .map(|(d, a, _)| format!("{d} ({a})"))
            .collect();
        let distinct = got.iter().map(|(d, _, _)| d).collect::<BTreeSet<_>>().len();
        (unknown, got.len() - distinct)
    };

    // Labels: every acknowledged one exactly once, those in doubt at most once.
    let mut lost_labels = Vec::new();
    let mut doubled_labels = Vec::new();
    let mut label_count = 0usize;
    let labelled: BTreeSet<&String> = l.labels.keys().chain(l.labels_in_doubt.keys()).collect();
    for alert in labelled {
        let (st, v) = get(&s, &format!("/v1/alerts/{alert}/labels")).await;
        assert_eq!(st, 200, "{v}");
        let mut comments: BTreeMap<String, usize> = BTreeMap::new();
        let mut ids = BTreeSet::new();
        for x in v["labels"].as_array().unwrap() {
            *comments
                .entry(x["comment"].as_str().unwrap().to_string())
                .or_default() += 1;
            if !ids.insert(x["id"].as_str().unwrap().to_string()) {
                doubled_labels.push(format!("{alert}: id {}", x["id"]));
            }
        }
        label_count += comments.len();
        for c in l.labels.get(alert).into_iter().flatten() {
            if !comments.contains_key(c) {
                lost_labels.push(format!("{alert}: {c}"));
            }
        }
        for (c, n) in &comments {
            if *n > 1 {
                doubled_labels.push(format!("{alert}: {c} ×{n}"));
            }
        }
    }

    let acked_labels: usize = l.labels.values().map(BTreeSet::len).sum();
    let duplicated =
        doubled.len() + doubled_alerts.len() + doubled_deliveries.len() + doubled_labels.len();
    eprintln!(
        "crash: cycles={cycles} acknowledged={} lost={} duplicated={duplicated} alerts={} \
         labels={acked_labels} deliveries={} packs={} undocumented={} (kills after events/label/pack: {}/{}/{}; \
         stored={} in-doubt-stored={}; labels stored={label_count}; webhook resends={resent}; \
         load {:.0} s, total {:.0} s)",
        l.events.len(),
        lost.len() + lost_alerts.len() + lost_labels.len() + undelivered.len() + unknown.len(),
        alerts.len(),
        delivery_ids.len(),
        l.pack,
        undocumented.len(),
        kills[0],
        kills[1],
        kills[2],
        events.len(),
        events.len() - l.events.len().min(events.len()),
        load_done.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    let problems: Vec<(&str, Vec<String>)> = vec![
        (
            "acknowledged events lost",
            lost.iter().map(|x| x.to_string()).collect(),
        ),
        (
            "events listed twice",
            doubled.iter().map(|x| x.0.to_string()).collect(),
        ),
        (
            "events nobody sent",
            strangers.iter().map(|x| x.to_string()).collect(),
        ),
        ("probe events without their alert", lost_alerts),
        ("more than one alert", doubled_alerts),
        ("deliveries doubled", doubled_deliveries),
        ("deliveries missing or not delivered", undelivered),
        ("received deliveries the outbox lost", unknown),
        ("acknowledged labels lost", lost_labels),
        ("labels doubled", doubled_labels),
    ];
    if std::env::var_os("PLUMBLINE_CRASH_DEBUG").is_some() {
        let got = received.requests.lock().unwrap().clone();
        for (d, a, _) in got {
            if !delivery_ids.contains(&d) {
                let (st, x) = get(&s, &format!("/v1/outbox/deliveries/{d}")).await;
                let (ast, al) = get(&s, &format!("/v1/alerts/{a}")).await;
                let probe = al["event_ids"][0].as_str().unwrap_or("").to_string();
                let (est, _) = get(&s, &format!("/v1/events/{probe}")).await;
                eprintln!(
                    "unknown {d}: outbox {st} state {}; alert {ast} for {probe}: listed probe {}, GET event {est}, known alert {}, acknowledged {}, in doubt {}",
                    x["state"],
                    probes.contains(&probe),
                    alerts.contains_key(&a),
                    l.events.contains(&probe),
                    l.events_in_doubt.contains(&probe),
                );
            }
        }
    }
    let failed: Vec<String> = problems
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(what, v)| format!("{what} ({}): {:?}", v.len(), &v[..v.len().min(5)]))
        .collect();
    let mut failed = failed;
    if !undocumented.is_empty() {
        failed.push(format!(
            "sent deliveries named by no decision record of their alert ({}): {:?}",
            undocumented.len(),
            &undocumented[..undocumented.len().min(5)]
        ));
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    assert!(l.events.len() as u64 >= cycles as u64 * 300, "the load ran");
}

/// A label's 201 means it is on disk. Killed right after the answer, with no ingest load
/// whose group commits would flush it by chance, the label is there after the restart
/// (it was answered before any flush, and such a kill lost it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_acknowledged_just_before_a_kill_is_kept() {
    let key = PackKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Deliveries go nowhere (port 9): they stay pending, which is not what is tested here.
    let mut s = start(dir.path(), &key, "http://127.0.0.1:9/hook").await;
    let base = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 - 600_000_000_000;
    let c = Cycle {
        url: s.url.clone(),
        pid: s.pid() as i32,
        kill: Kill::Label,
        armed: AtomicBool::new(true),
        killed: tokio::sync::Notify::new(),
        stop: AtomicBool::new(false),
        acked: AtomicU64::new(0),
        warmup: 0,
        ledger: Arc::default(),
        error: Mutex::new(None),
        seq: Arc::default(),
        base,
        cycle: 0,
    };
    crate::support::post_events(&s, &c.event(0)).await;
    let alert = crate::support::eventually(60, || async {
        let (_, v) = get(&s, "/v1/alerts").await;
        v["alerts"][0]["id"].as_str().map(String::from)
    })
    .await;
    let r = client()
        .post(s.at(&format!("/v1/alerts/{alert}/labels")))
        .json(&json!({"outcome": "false_positive", "by": "crash-test", "comment": "kept"}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    c.kill_now();
    assert_eq!(status, 201);
    s.crash();
    s.restart();
    let (_, labels) = get(&s, &format!("/v1/alerts/{alert}/labels")).await;
    assert_eq!(labels["labels"][0]["comment"], "kept", "{labels}");
}
