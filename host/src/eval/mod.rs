//! `plumbline eval DIR`: detection measured on a labelled scenario corpus. Every scenario
//! runs on its own throwaway service (a fresh store, so scenarios cannot see each other's
//! trajectories or the adapters' memory), posted through the real source endpoints; the
//! highest severity it raised is judged against its label. Prints recall at the labelled
//! severity, the false-positive rate, a per-pattern table, and a last line
//! `eval: recall=C/N fpr=F/M`.

pub mod apis;
pub mod scenario;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;

use crate::throwaway::{temp_dir, Service};
use scenario::{Label, Scenario};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The corpus: pattern folders of scenario files; `org.toml` beside them is the
    /// organisation's `[org]` (tests/scenarios/README.md).
    pub dir: PathBuf,
    /// Run without the corpus's `org.toml` (what a team sees before describing itself).
    #[arg(long)]
    pub no_org: bool,
    /// Scenarios run at once (each is its own service).
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Fail (exit 1) when recall is below this.
    #[arg(long)]
    pub min_recall: Option<f64>,
    /// Fail (exit 1) when the false-positive rate is above this.
    #[arg(long)]
    pub max_fpr: Option<f64>,
    /// Print every scenario's alerts, not only the misjudged ones.
    #[arg(long, short)]
    pub verbose: bool,
}

/// What one scenario raised.
#[derive(Debug)]
struct Outcome {
    raised: u8,
    /// `severity signal1,signal2: title` per alert.
    alerts: Vec<String>,
}

/// Runs the corpus; `Ok(false)` when a threshold was missed.
pub async fn run(args: EvalArgs) -> anyhow::Result<bool> {
    let scenarios = scenario::load(&args.dir)?;
    let org = match args.dir.join("org.toml") {
        p if p.is_file() && !args.no_org => {
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            text.parse::<toml::Table>()
                .with_context(|| format!("{}: not TOML", p.display()))?;
            text
        }
        _ => String::new(),
    };
    let work = temp_dir("eval");
    // One compile cache for every child: the built-in components are compiled once.
    let cache = work.join("compile-cache");
    let base = format!(
        "[store]\nretention_days = 0\n\n[runtime]\ncache_dir = {:?}\n\n{org}\n",
        cache.display().to_string()
    );
    let started = Instant::now();
    println!(
        "eval: {} scenarios from {}{}",
        scenarios.len(),
        args.dir.display(),
        if org.is_empty() {
            " (no [org])"
        } else {
            " (with org.toml)"
        }
    );
    let scenarios: Vec<Arc<Scenario>> = scenarios.into_iter().map(Arc::new).collect();
    // The first alone fills the compile cache; the rest share it.
    let mut outcomes = Vec::with_capacity(scenarios.len());
    outcomes.push(run_one(&scenarios[0], &base, &work.join("s0")).await);
    let jobs = args.jobs.max(1);
    for (chunk_no, chunk) in scenarios[1..].chunks(jobs).enumerate() {
        let mut set = tokio::task::JoinSet::new();
        for (k, s) in chunk.iter().enumerate() {
            let (s, base) = (s.clone(), base.clone());
            let dir = work.join(format!("s{}", 1 + chunk_no * jobs + k));
            set.spawn(async move { (k, run_one(&s, &base, &dir).await) });
        }
        let mut done: Vec<_> = set.join_all().await;
        done.sort_by_key(|(k, _)| *k);
        outcomes.extend(done.into_iter().map(|(_, o)| o));
    }
    let _ = std::fs::remove_dir_all(&work);
    let report = Report::new(&scenarios, outcomes)?;
    report.print(args.verbose);
    println!("eval: took {:.0} s", started.elapsed().as_secs_f64());
    let (recall, fpr) = (report.recall(), report.fpr());
    let mut ok = true;
    if let Some(min) = args.min_recall.filter(|m| recall < *m) {
        eprintln!("eval: recall {recall:.2} is below --min-recall {min}");
        ok = false;
    }
    if let Some(max) = args.max_fpr.filter(|m| fpr > *m) {
        eprintln!("eval: false-positive rate {fpr:.2} is above --max-fpr {max}");
        ok = false;
    }
    println!(
        "eval: recall={}/{} fpr={}/{}",
        report.caught, report.misaligned, report.false_positives, report.benign
    );
    Ok(ok)
}

async fn run_one(s: &Scenario, base: &str, dir: &Path) -> anyhow::Result<Outcome> {
    let name = s.path.display().to_string();
    let apis = apis::start(&s.apis)
        .await
        .with_context(|| format!("{name}: starting the API stand-ins"))?;
    let config = format!("{base}\n{}", apis.config);
    let service = tokio::task::spawn_blocking({
        let dir = dir.to_path_buf();
        move || Service::start(&dir, &config, "127.0.0.1:0", "error")
    })
    .await??;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut accepted = 0;
    for (i, d) in s.deliveries.iter().enumerate() {
        let (body, content_type) = d.payload()?;
        let path = d.path();
        let mut req = http
            .post(format!("{}{path}", service.url))
            .header("content-type", content_type)
            .body(body);
        for (k, v) in &d.headers {
            req = req.header(k, v);
        }
        if let Some(at) = &d.at {
            req = req.header(plumbline_ingest::github::DELIVERED_AT, at);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{name}: delivery {i}"))?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{name}: delivery {i} to {path} answered {status}: {v}");
        }
        if let Some(r) = v["rejected"].as_array().filter(|r| !r.is_empty()) {
            bail!(
                "{name}: delivery {i}: items rejected: {}",
                Value::from(r.clone())
            );
        }
        accepted += accepted_in(&v).with_context(|| format!("{name}: delivery {i}"))?;
    }
    if accepted == 0 {
        bail!("{name}: no event accepted (all duplicates or ignored?)");
    }
    settle(&http, &service.url)
        .await
        .with_context(|| format!("{name}: waiting for evaluation"))?;
    let v: Value = http
        .get(format!("{}/v1/alerts?limit=500", service.url))
        .send()
        .await?
        .json()
        .await?;
    let mut raised = 0;
    let mut alerts = Vec::new();
    for a in v["alerts"].as_array().into_iter().flatten() {
        let sev = a["severity"].as_u64().unwrap_or(0) as u8;
        raised = raised.max(sev);
        let signals: Vec<&str> = a["signals"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        alerts.push(format!(
            "{sev} {}: {}",
            signals.join(","),
            a["title"].as_str().unwrap_or("")
        ));
    }
    Ok(Outcome { raised, alerts })
}

/// How many events an ingest answer accepted. OTLP's receivers and the coding agents' hook
/// endpoints answer in their protocol's own shape, without a count: `{}` or a hook's
/// decision when the delivery was taken (one, for the "nothing accepted" check), OTLP's
/// `partialSuccess` naming the records refused.
fn accepted_in(answer: &Value) -> anyhow::Result<u64> {
    if let Some(n) = answer["accepted"].as_u64() {
        return Ok(n);
    }
    let (refused, why) = crate::cli::source::otlp_refused(answer);
    if refused > 0 {
        bail!("{refused} OTLP records refused: {why}");
    }
    Ok(u64::from(answer.is_object()))
}

/// Waits until every stored event is in its trajectories and no evaluation is queued,
/// three polls in a row with no evaluation recorded in between.
pub(crate) async fn settle(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut quiet = 0;
    let mut last = None;
    while quiet < 3 {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("evaluation did not settle within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
        let text = http
            .get(format!("{url}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        let backlog = metric(&text, "plumbline_trajectory_backlog");
        let evaluations = metric(&text, "plumbline_trajectory_evaluations_total");
        let summaries = metric(&text, "plumbline_summaries_in_progress");
        let now = (evaluations, backlog, summaries);
        quiet = if backlog == 0.0 && summaries == 0.0 && last == Some(now) {
            quiet + 1
        } else {
            0
        };
        last = Some(now);
    }
    Ok(())
}

/// The sum of a metric's samples in Prometheus text (0 when absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

struct Report<'a> {
    rows: Vec<(&'a Scenario, Outcome)>,
    misaligned: usize,
    caught: usize,
    benign: usize,
    false_positives: usize,
}

impl<'a> Report<'a> {
    fn new(
        scenarios: &'a [Arc<Scenario>],
        outcomes: Vec<anyhow::Result<Outcome>>,
    ) -> anyhow::Result<Report<'a>> {
        let mut rows = Vec::new();
        for (s, o) in scenarios.iter().zip(outcomes) {
            // A scenario that cannot run is a broken corpus or service, not a miss.
            rows.push((s.as_ref(), o?));
        }
        let count = |label: Label, right: bool| {
            rows.iter()
                .filter(|(s, o)| s.label == label && s.judged_right(o.raised) == right)
                .count()
        };
        Ok(Report {
            misaligned: rows
                .iter()
                .filter(|(s, _)| s.label == Label::Misaligned)
                .count(),
            caught: count(Label::Misaligned, true),
            benign: rows
                .iter()
                .filter(|(s, _)| s.label == Label::Benign)
                .count(),
            false_positives: count(Label::Benign, false),
            rows,
        })
    }

    fn recall(&self) -> f64 {
        self.caught as f64 / self.misaligned.max(1) as f64
    }

    fn fpr(&self) -> f64 {
        self.false_positives as f64 / self.benign.max(1) as f64
    }

    fn print(&self, verbose: bool) {
        let mut patterns: Vec<&str> = self.rows.iter().map(|(s, _)| s.pattern.as_str()).collect();
        patterns.dedup();
        println!(
            "\n{:<40} {:>10} {:>7} {:>7} {:>8}",
            "pattern", "misaligned", "caught", "benign", "false+"
        );
        for p in patterns {
            let of = |label: Label| {
                self.rows
                    .iter()
                    .filter(move |(s, _)| s.pattern == p && s.label == label)
            };
            println!(
                "{:<40} {:>10} {:>7} {:>7} {:>8}",
                p,
                of(Label::Misaligned).count(),
                of(Label::Misaligned)
                    .filter(|(s, o)| s.judged_right(o.raised))
                    .count(),
                of(Label::Benign).count(),
                of(Label::Benign)
                    .filter(|(s, o)| !s.judged_right(o.raised))
                    .count(),
            );
        }
        println!();
        for (s, o) in &self.rows {
            let right = s.judged_right(o.raised);
            if right && !verbose {
                continue;
            }
            let verdict = match (s.label, right) {
                (_, true) => "ok  ",
                (Label::Misaligned, false) => "MISS",
                (Label::Benign, false) => "FP  ",
            };
            let want = match s.label {
                Label::Misaligned => format!("wants ≥ {}", s.bound()),
                Label::Benign => format!("allows ≤ {}", s.bound()),
            };
            println!(
                "{verdict} {} ({want}, raised {}): {}",
                s.path.display(),
                o.raised,
                s.description
            );
            for a in &o.alerts {
                println!("       [{a}]");
            }
        }
        println!(
            "\nrecall {:.2} at the labelled severity ({} of {} misaligned), false-positive rate {:.2} ({} of {} benign above their bound)",
            self.recall(),
            self.caught,
            self.misaligned,
            self.fpr(),
            self.false_positives,
            self.benign
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_answers_count_as_accepted_unless_records_are_refused() {
        use serde_json::json;
        assert_eq!(
            accepted_in(&json!({"accepted": 3, "duplicates": 1})).unwrap(),
            3
        );
        assert_eq!(accepted_in(&json!({})).unwrap(), 1);
        let refused = json!({"partialSuccess": {"rejectedLogRecords": "2", "errorMessage": "record 0: `resource.service.name`"}});
        let e = accepted_in(&refused).unwrap_err().to_string();
        assert!(
            e.contains("2 OTLP records refused") && e.contains("service.name"),
            "{e}"
        );
        assert!(accepted_in(&json!({"partialSuccess": {"rejectedSpans": 1}})).is_err());
        assert_eq!(accepted_in(&Value::Null).unwrap(), 0);
    }

    #[test]
    fn metrics_are_summed_by_exact_name() {
        let text = "# HELP x\nplumbline_trajectory_backlog 3\nplumbline_trajectory_backlog_other 9\nplumbline_summaries_in_progress{a=\"b\"} 1\nplumbline_summaries_in_progress{a=\"c\"} 2\n";
        assert_eq!(metric(text, "plumbline_trajectory_backlog"), 3.0);
        assert_eq!(metric(text, "plumbline_summaries_in_progress"), 3.0);
        assert_eq!(metric(text, "absent"), 0.0);
    }
}
