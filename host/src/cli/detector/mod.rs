//! `plumbline detector new NAME --lang rust|python|js`: a detector project (`new.rs`).
//! `plumbline detector test COMPONENT.wasm FIXTURES_DIR`: a detector's fixtures through the
//! real sandboxed runtime (same limits, contract checks and clock pinning as the service).

mod new;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::config::Config;
use plumbline_runtime::{fixture::fixture_files, Runtime};

#[derive(Debug, Args)]
pub struct DetectorArgs {
    #[command(subcommand)]
    pub command: DetectorCommand,
}

#[derive(Debug, Subcommand)]
pub enum DetectorCommand {
    /// Create a detector project in Rust, Python or JavaScript: the rule, fixtures (one
    /// positive, one decoy, two negatives), a pack directory and a README of the commands.
    New(new::NewArgs),
    /// Run fixture files (trajectory + expected findings) through the WASM runtime.
    Test(TestArgs),
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The detector component (.wasm).
    pub component: PathBuf,
    /// Directory of fixture files (*.json).
    pub fixtures: PathBuf,
    /// Configuration file: its [runtime] limits and per-detector overrides apply.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where compiled components are cached (default: runtime.cache_dir, else
    /// ~/.cache/plumbline/compiled).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Print one JSON object per fixture instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Blocking: WASM runs on this thread. Returns whether every fixture passed.
pub fn run(args: DetectorArgs) -> anyhow::Result<bool> {
    match args.command {
        DetectorCommand::New(n) => new::run(n).map(|()| true),
        DetectorCommand::Test(t) => test(t),
    }
}

fn test(args: TestArgs) -> anyhow::Result<bool> {
    let config = Config::load(args.config.as_deref())?;
    let cache = args.cache_dir.clone().or_else(|| {
        if !config.runtime.cache_dir.as_os_str().is_empty() {
            Some(config.runtime.cache_dir.clone())
        } else {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/plumbline/compiled"))
        }
    });
    let runtime = Runtime::new(config.runtime.clone(), cache)?;
    let started = Instant::now();
    let detector = runtime
        .load_file(&args.component)
        .with_context(|| format!("loading {}", args.component.display()))?;
    let files = fixture_files(&args.fixtures)?;
    if files.is_empty() {
        anyhow::bail!("no *.json fixtures in {}", args.fixtures.display());
    }
    if !args.json {
        println!(
            "{} {} ({}, sha256 {}…), loaded in {} ms",
            detector.info.name,
            detector.info.version,
            args.component.display(),
            &detector.sha256[..12],
            started.elapsed().as_millis()
        );
    }
    let (mut passed, mut failed) = (0, 0);
    let mut calls: Vec<u64> = Vec::new();
    for f in &files {
        let o = runtime.run_fixture(&detector, f);
        calls.extend(o.call_micros);
        if o.passed {
            passed += 1;
        } else {
            failed += 1;
        }
        if args.json {
            println!("{}", serde_json::to_string(&o)?);
            continue;
        }
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        if o.passed {
            let found: Vec<String> = o
                .findings
                .iter()
                .map(|x| format!("{} sev {} {:?}", x.signal, x.severity, x.evidence))
                .collect();
            let found = if found.is_empty() {
                "no findings".to_string()
            } else {
                found.join(", ")
            };
            println!("pass  {name}  ({found})");
        } else {
            println!("FAIL  {name}  {}", o.message.unwrap_or_default());
        }
    }
    calls.sort_unstable();
    let ms = |us: u64| us as f64 / 1000.0;
    let (p50, max) = (
        calls.get(calls.len().saturating_sub(1) / 2).copied(),
        calls.last().copied(),
    );
    if args.json {
        let summary = serde_json::json!({
            "detector": detector.info.name, "passed": passed, "failed": failed,
            "calls": calls.len(), "call_ms_p50": p50.map(ms), "call_ms_max": max.map(ms),
        });
        println!("{summary}");
    } else {
        println!("{passed} passed, {failed} failed");
        if let (Some(p50), Some(max)) = (p50, max) {
            println!(
                "call time over {} fixtures: p50 {:.2} ms, max {:.2} ms (a fresh sandbox per call, as live)",
                calls.len(),
                ms(p50),
                ms(max)
            );
        }
    }
    Ok(failed == 0)
}
