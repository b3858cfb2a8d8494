//! `plumbline bench`: the performance figures of issue 18 on a throwaway store, each next to
//! its target. Every server figure comes from a `plumbline serve` child of this same binary
//! (service.rs) on a fresh temporary directory, driven over HTTP by this process — which
//! shares the machine's cores with it, as a real load generator on the same host would.

pub mod burst;
pub mod cluster;
pub mod detector;
pub mod ingest;
pub mod load;
pub mod memory;
pub mod service;
pub mod steady;
pub mod swap;

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::{Map, Value};

use service::Service;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Small counts and short phases: a smoke test of every measurement, not figures.
    #[arg(long)]
    pub quick: bool,
    /// Print the figures as one JSON object (key → number, null when not measured, with
    /// the reasons under `not_measured`) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Events per batch size in the durable-ingest phase (default: 300,000 at 1,000 per
    /// request, 200,000 at 100, 60,000 at 1 — about 10 s each on 2 cores).
    #[arg(long, value_name = "N")]
    pub ingest_events: Option<u64>,
    /// Seconds of each steady-load phase.
    #[arg(long, value_name = "S")]
    pub steady_seconds: Option<f64>,
    /// Events in the burst.
    #[arg(long, value_name = "N")]
    pub burst_events: Option<u64>,
    /// Events before resident memory is read and the server is stopped.
    #[arg(long, value_name = "N")]
    pub rss_events: Option<u64>,
    /// Measure a cluster instead (issue 22): ingest and evaluation throughput of 1, 2 and 4
    /// nodes on loopback over a fresh nats-server each, and the scaling ratios.
    #[arg(long)]
    pub cluster: bool,
    /// Events per cluster size (default 40,000; 2,000 with --quick).
    #[arg(long, value_name = "N")]
    pub cluster_events: Option<u64>,
}

enum Target {
    AtMost(f64),
    AtLeast(f64),
}

/// One figure: a JSON key, what it is, its value (`Err`: why it was not measured) and the
/// issue's target for it, if it has one.
struct Figure {
    key: String,
    what: String,
    value: Result<f64, String>,
    unit: &'static str,
    target: Option<Target>,
}

impl Figure {
    fn new(
        key: impl Into<String>,
        what: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) -> Self {
        let value = if value.is_finite() {
            Ok(value)
        } else {
            Err("no observations".into())
        };
        Figure {
            key: key.into(),
            what: what.into(),
            value,
            unit,
            target: None,
        }
    }

    fn missing(key: impl Into<String>, what: impl Into<String>, why: String) -> Self {
        Figure {
            key: key.into(),
            what: what.into(),
            value: Err(why),
            unit: "",
            target: None,
        }
    }

    fn target(mut self, t: Target) -> Self {
        self.target = Some(t);
        self
    }

    fn status(&self) -> &'static str {
        match (&self.value, &self.target) {
            (Ok(v), Some(Target::AtMost(t))) if v <= t => "met",
            (Ok(v), Some(Target::AtLeast(t))) if v >= t => "met",
            (Err(_), _) => "n/a",
            (_, Some(_)) => "missed",
            (_, None) => "",
        }
    }
}

fn number(v: f64) -> String {
    if v.abs() >= 1000.0 {
        let s = format!("{:.0}", v.abs());
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if v < 0.0 {
            out.insert(0, '-');
        }
        out
    } else if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Waits until the server has no work left: `plumbline_trajectory_backlog` (events not yet
/// in a trajectory plus evaluations queued) at 0 on three polls in a row with
/// `plumbline_trajectory_evaluations_total` unchanged between them, so an evaluation still
/// running or held by the coalescing delay is not taken for done. Returns the wait until
/// the first of those polls, or `None` after `limit`.
pub async fn drained(
    service: &Service,
    client: &reqwest::Client,
    limit: Duration,
) -> anyhow::Result<Option<Duration>> {
    let started = Instant::now();
    let mut quiet: Option<(Duration, f64, u32)> = None;
    loop {
        let page = service.metrics(client).await?;
        let at = started.elapsed();
        let backlog = service::metric(&page, "plumbline_trajectory_backlog");
        let evaluations = service::metric(&page, "plumbline_trajectory_evaluations_total");
        quiet = match quiet {
            _ if backlog != 0.0 => None,
            Some((since, e, polls)) if e == evaluations => Some((since, e, polls + 1)),
            _ => Some((at, evaluations, 1)),
        };
        if let Some((since, _, 3)) = quiet {
            return Ok(Some(since));
        }
        if at > limit {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

fn progress(json: bool, what: &str) {
    if !json {
        eprintln!("bench: {what}…");
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    // The run's shared compile cache goes with the run, however it ends.
    struct RunCache;
    impl Drop for RunCache {
        fn drop(&mut self) {
            service::remove_run_cache();
        }
    }
    let _cache = RunCache;
    let exe = std::env::current_exe().context("finding the plumbline binary")?;
    let quick = args.quick;
    let mut figures = Vec::new();
    if args.cluster {
        cluster_figures(&mut figures, &exe, &args).await?;
        print(&figures, args.json, quick);
        return Ok(());
    }

    // 4. One detector call, WASM against native (no server): a 0.1.0 call on the whole
    // trajectory, and one new event through a 0.2.0 detector.
    progress(args.json, "one detector call, WASM and native");
    let budget = Duration::from_millis(if quick { 100 } else { 1500 });
    let sizes = [10, 100, 1000];
    let rows = tokio::task::spawn_blocking(move || detector::measure(&sizes, budget)).await?;
    call_figures(
        &mut figures,
        "detector",
        "detector call",
        |n| format!("{n} events"),
        rows,
    );
    progress(
        args.json,
        "one new event through an incremental detector, WASM and native",
    );
    let calls = quick.then_some(100);
    let rows =
        tokio::task::spawn_blocking(move || detector::measure_incremental(&sizes, calls)).await?;
    call_figures(
        &mut figures,
        "incremental",
        "one new event, 0.2.0",
        |n| format!("{n}-event trajectory"),
        rows,
    );

    // 1. Durable ingest at three batch sizes, each on a fresh server.
    for batch in [1u64, 100, 1000] {
        let events = args.ingest_events.unwrap_or(match (quick, batch) {
            (true, 1) => 500,
            (true, _) => 2_000,
            (false, 1) => 60_000,
            (false, 100) => 200_000,
            (false, _) => 300_000,
        });
        let conns = ingest::connections(batch);
        progress(
            args.json,
            &format!("durable ingest, {events} events in batches of {batch} × {conns} connections"),
        );
        let r = ingest::measure(&exe, batch, events).await?;
        let f = Figure::new(
            format!("ingest_eps_batch{batch}"),
            format!("durable ingest, NDJSON {batch} × {conns} connections ({events} events)"),
            r.events_per_second,
            "events/s",
        );
        figures.push(if batch == 1000 {
            f.target(Target::AtLeast(100_000.0))
        } else {
            f
        });
        figures.push(Figure::new(
            format!("ingest_busy_batch{batch}"),
            format!("  503 answers waited out, batches of {batch}"),
            r.busy as f64,
            "",
        ));
    }

    // 2. and 3. Steady load, then the burst, on one server whose trajectories keep growing.
    let service = Service::start(&exe)?;
    let client = reqwest::Client::new();
    let seconds = args
        .steady_seconds
        .unwrap_or(if quick { 1.0 } else { 10.0 });
    for rate in [1000u64, 5000] {
        progress(
            args.json,
            &format!("steady load at {rate} events/s for {seconds} s"),
        );
        let s = steady::measure(&service, &client, rate, seconds).await?;
        let p = format!("steady{rate}");
        figures.push(Figure::new(
            format!("{p}_achieved_eps"),
            format!("steady {rate}/s: events/s sent and acknowledged"),
            s.achieved_per_second,
            "events/s",
        ));
        figures.push(Figure::new(
            format!("{p}_eval_p50_ms"),
            format!("steady {rate}/s: event → evaluation p50"),
            s.eval_p50_ms,
            "ms",
        ));
        let p99 = Figure::new(
            format!("{p}_eval_p99_ms"),
            format!("steady {rate}/s: event → evaluation p99"),
            s.eval_p99_ms,
            "ms",
        );
        figures.push(if rate == 5000 {
            p99.target(Target::AtMost(50.0))
        } else {
            p99
        });
        figures.push(Figure::new(
            format!("{p}_alert_p50_ms"),
            format!(
                "steady {rate}/s: event → alert p50 ({} force pushes)",
                s.force_pushes
            ),
            s.alert_p50_ms,
            "ms",
        ));
        figures.push(Figure::new(
            format!("{p}_alert_p99_ms"),
            format!("steady {rate}/s: event → alert p99"),
            s.alert_p99_ms,
            "ms",
        ));
        figures.push(Figure::new(
            format!("{p}_alerts_missing"),
            format!("steady {rate}/s: force pushes without an alert"),
            s.alerts_missing as f64,
            "",
        ));
        figures.push(Figure::new(
            format!("{p}_busy"),
            format!("steady {rate}/s: 503 answers waited out"),
            s.busy as f64,
            "",
        ));
    }
    let burst_events = args
        .burst_events
        .unwrap_or(if quick { 5_000 } else { 100_000 });
    progress(args.json, &format!("burst of {burst_events} events"));
    let limit = Duration::from_secs(if quick { 300 } else { 600 });
    let b = burst::measure(&service, &client, burst_events, limit).await?;
    figures.push(Figure::new(
        "burst_events",
        "burst: events",
        b.events as f64,
        "",
    ));
    figures.push(Figure::new(
        "burst_ingest_s",
        "burst: first request → last acknowledgement",
        b.ingest_seconds,
        "s",
    ));
    figures.push(
        match b.drain_seconds {
            Some(d) => Figure::new(
                "burst_drain_s",
                "burst: last acknowledgement → drained",
                d,
                "s",
            ),
            None => Figure::missing(
                "burst_drain_s",
                "burst: last acknowledgement → drained",
                format!("not drained within {} s", limit.as_secs()),
            ),
        }
        .target(Target::AtMost(10.0)),
    );
    figures.push(Figure::new(
        "burst_busy",
        "burst: 503 answers waited out",
        b.busy as f64,
        "",
    ));
    drop(service);

    // 5. Pack swap under load, on a server of its own.
    let (rate, every) = (1000, Duration::from_secs(1));
    progress(
        args.json,
        &format!(
            "pack swap every {} s under {rate} events/s for {seconds} s",
            every.as_secs()
        ),
    );
    let what = "pack swap under load: events skipped or evaluated twice";
    match swap::measure(&exe, rate, seconds.max(2.0), every).await {
        Ok(s) => {
            figures.push(
                Figure::new(
                    "pack_swap_events_lost",
                    what,
                    (s.skipped + s.twice) as f64,
                    "",
                )
                .target(Target::AtMost(0.0)),
            );
            figures.push(Figure::new(
                "pack_swap_skipped",
                format!("  probe events skipped (of {})", s.probes),
                s.skipped as f64,
                "",
            ));
            figures.push(Figure::new(
                "pack_swap_twice",
                "  probe events evaluated twice",
                s.twice as f64,
                "",
            ));
            figures.push(Figure::new(
                "pack_swaps",
                "pack swaps under load",
                s.swaps as f64,
                "",
            ));
            figures.push(Figure::new(
                "pack_swap_p50_ms",
                "pack swap under load: install → active, p50",
                s.swap_p50_ms,
                "ms",
            ));
            figures.push(Figure::new(
                "pack_swap_max_ms",
                "pack swap under load: install → active, max",
                s.swap_max_ms,
                "ms",
            ));
            figures.push(Figure::new(
                "pack_swap_busy",
                "pack swap: 503 answers waited out",
                s.busy as f64,
                "",
            ));
        }
        Err(e) => figures.push(
            Figure::missing("pack_swap_events_lost", what, format!("{e:#}"))
                .target(Target::AtMost(0.0)),
        ),
    }

    // 6. and 7. Resident memory after many events, then the graceful stop.
    let rss_events = args
        .rss_events
        .unwrap_or(if quick { 5_000 } else { 1_000_000 });
    progress(
        args.json,
        &format!("resident memory after {rss_events} events, then SIGTERM"),
    );
    let stop_limit = Duration::from_secs(60);
    let m = memory::measure(&exe, rss_events, stop_limit).await?;
    figures.push(Figure::new(
        "rss_events",
        "events before the memory reading",
        m.events as f64,
        "",
    ));
    figures.push(
        Figure::new(
            "rss_mib",
            format!("server RSS after {} events", number(m.events as f64)),
            m.rss_bytes as f64 / (1024.0 * 1024.0),
            "MiB",
        )
        .target(Target::AtMost(1024.0)),
    );
    figures.push(Figure::new(
        "rss_backlog",
        "  work queued at that reading (events and evaluations)",
        m.backlog,
        "",
    ));
    figures.push(Figure::new(
        "rss_lag_s",
        "  evaluation lag at that reading",
        m.lag_seconds,
        "s",
    ));
    progress(
        args.json,
        &format!("resident memory after {rss_events} events, once drained"),
    );
    figures.push(match memory::drained(&exe, rss_events).await? {
        Some(b) => Figure::new(
            "rss_drained_mib",
            "server RSS once that work has drained",
            b as f64 / (1024.0 * 1024.0),
            "MiB",
        ),
        None => Figure::missing(
            "rss_drained_mib",
            "server RSS once that work has drained",
            "the backlog did not drain within 300 s".into(),
        ),
    });
    figures.push(
        match m.stop_seconds {
            Some(s) => Figure::new(
                "stop_s",
                "graceful stop after that load (SIGTERM → exit)",
                s,
                "s",
            ),
            None => Figure::missing(
                "stop_s",
                "graceful stop after that load (SIGTERM → exit)",
                format!(
                    "still running {} s after SIGTERM; killed",
                    stop_limit.as_secs()
                ),
            ),
        }
        .target(Target::AtMost(5.0)),
    );

    print(&figures, args.json, quick);
    Ok(())
}

/// Throughput of clusters of 1, 2 and 4 nodes, and each against one node.
async fn cluster_figures(
    figures: &mut Vec<Figure>,
    exe: &std::path::Path,
    args: &BenchArgs,
) -> anyhow::Result<()> {
    let events = args
        .cluster_events
        .unwrap_or(if args.quick { 2_000 } else { 40_000 });
    progress(
        args.json,
        &format!("one node without a cluster: {events} events in batches of 500"),
    );
    let (ingest, evaluated) = cluster::single(exe, events).await?;
    figures.push(Figure::new(
        "single_ingest_eps",
        format!("one node, no cluster (sled): ingest ({events} events)"),
        ingest,
        "events/s",
    ));
    figures.push(Figure::new(
        "single_eval_eps",
        "one node, no cluster (sled): evaluated, from the first request",
        evaluated,
        "events/s",
    ));
    let mut one: Option<(f64, f64)> = None;
    for nodes in [1usize, 2, 4] {
        progress(
            args.json,
            &format!("cluster of {nodes}: {events} events in batches of 500"),
        );
        let r = cluster::measure(exe, nodes, events).await?;
        figures.push(Figure::new(
            format!("cluster{nodes}_ingest_eps"),
            format!("cluster of {nodes}: ingest, acknowledged in JetStream ({events} events)"),
            r.ingest_eps,
            "events/s",
        ));
        figures.push(Figure::new(
            format!("cluster{nodes}_eval_eps"),
            format!("cluster of {nodes}: evaluated and committed, from the first request"),
            r.eval_eps,
            "events/s",
        ));
        figures.push(Figure::new(
            format!("cluster{nodes}_max_share"),
            format!(
                "  the busiest node's share of the commits (even: {:.2})",
                1.0 / nodes as f64
            ),
            r.max_share,
            "",
        ));
        let (i1, e1) = *one.get_or_insert((r.ingest_eps, r.eval_eps));
        if r.nodes > 1 {
            figures.push(Figure::new(
                format!("cluster{nodes}_ingest_scaling"),
                format!("  ingest, {nodes} nodes / 1 node"),
                r.ingest_eps / i1,
                "×",
            ));
            figures.push(Figure::new(
                format!("cluster{nodes}_eval_scaling"),
                format!("  evaluation, {nodes} nodes / 1 node"),
                r.eval_eps / e1,
                "×",
            ));
        }
    }
    Ok(())
}

/// One call's figures per size (WASM, native, their ratio; the issue's ≤ 3× on 100
/// events), or why it was not measured.
fn call_figures(
    figures: &mut Vec<Figure>,
    key: &str,
    what: &str,
    size: impl Fn(usize) -> String,
    rows: anyhow::Result<Vec<detector::Row>>,
) {
    let ratio_what = |n| format!("WASM / native, {what}, {}", size(n));
    match rows {
        Ok(rows) => {
            for (n, wasm, native) in rows {
                let (w, nat) = (wasm.as_secs_f64() * 1e6, native.as_secs_f64() * 1e6);
                for (side, v) in [("wasm", w), ("native", nat)] {
                    figures.push(Figure::new(
                        format!("{key}_{side}_us_{n}"),
                        format!("{what}, {}, {}", side.replace("wasm", "WASM"), size(n)),
                        v,
                        "µs",
                    ));
                }
                let ratio = Figure::new(format!("{key}_ratio_{n}"), ratio_what(n), w / nat, "×");
                figures.push(if n == 100 {
                    ratio.target(Target::AtMost(3.0))
                } else {
                    ratio
                });
            }
        }
        Err(e) => {
            for n in [10, 100, 1000] {
                figures.push(Figure::missing(
                    format!("{key}_ratio_{n}"),
                    ratio_what(n),
                    format!("{e:#}"),
                ));
            }
        }
    }
}

fn print(figures: &[Figure], json: bool, quick: bool) {
    if json {
        let mut out = Map::new();
        let mut why = Map::new();
        for f in figures {
            out.insert(
                f.key.clone(),
                f.value.as_ref().map_or(Value::Null, |v| Value::from(*v)),
            );
            if let Err(e) = &f.value {
                why.insert(f.key.clone(), Value::from(e.clone()));
            }
        }
        out.insert("quick".into(), Value::from(quick));
        out.insert("not_measured".into(), Value::Object(why));
        println!("{}", Value::Object(out));
        return;
    }
    let rows: Vec<[String; 4]> = figures
        .iter()
        .map(|f| {
            let value = match &f.value {
                Ok(v) => format!("{} {}", number(*v), f.unit).trim_end().to_string(),
                Err(_) => "not measured".into(),
            };
            let target = match &f.target {
                Some(Target::AtMost(t)) => format!("≤ {} {}", number(*t), f.unit),
                Some(Target::AtLeast(t)) => format!("≥ {} {}", number(*t), f.unit),
                None => String::new(),
            };
            [
                f.what.clone(),
                value,
                target.trim_end().to_string(),
                f.status().to_string(),
            ]
        })
        .collect();
    let header = ["figure", "value", "target", ""];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2)];
    let line = |r: [&str; 4]| {
        let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w - s.chars().count()));
        println!(
            "{}  {}  {}  {}",
            pad(r[0], widths[0]),
            pad(r[1], widths[1]),
            pad(r[2], widths[2]),
            r[3]
        );
    };
    line(header);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3]]);
    }
    for f in figures {
        if let Err(e) = &f.value {
            println!("not measured — {}: {e}", f.what);
        }
    }
    if quick {
        println!("(--quick: small counts, a smoke test; not figures to compare)");
    }
    let pairs: Vec<String> = figures
        .iter()
        .map(|f| match &f.value {
            Ok(v) => format!("{}={}", f.key, (v * 1000.0).round() / 1000.0),
            Err(_) => format!("{}=not_measured", f.key),
        })
        .collect();
    println!("bench: {}", pairs.join(" "));
}
