//! The `plumbline` command line. Client commands talk to a running server over HTTP.

pub mod client;
pub mod cluster;
pub mod detector;
pub mod pack;
pub mod source;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "plumbline",
    version,
    about = "Watches coding traffic for misalignment with WebAssembly detectors"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service.
    Serve(ServeArgs),
    /// Post events (NDJSON, one per line, or a source's own format with --source) from a
    /// file or stdin to a running server.
    Ingest(IngestArgs),
    /// Print stored events from a running server.
    Events(EventsArgs),
    /// Start the service on a throwaway data directory, feed it a synthetic day of traffic
    /// through the real source endpoints, and show the alerts it raises.
    Demo(DemoArgs),
    /// Measure detection on a labelled scenario corpus (e.g. tests/scenarios): each
    /// scenario through the real endpoints of a throwaway service; prints recall,
    /// false-positive rate and a per-pattern table.
    Eval(crate::eval::EvalArgs),
    /// Detector projects and components: new (a project in Rust, Python or JS), test (their
    /// fixtures in the real runtime).
    Detector(detector::DetectorArgs),
    /// Detector packs: new, build, test, sign, verify, install, list, remove, promote, pull.
    Pack(pack::PackArgs),
    /// Make an ed25519 key pair for signing a team's packs.
    Keygen(pack::KeygenArgs),
    /// Run a pack over stored history on a running server; nothing live is touched.
    Replay(pack::ReplayArgs),
    /// Measure performance on a throwaway store (durable ingest, steady load, a burst, one
    /// detector call WASM vs native, memory, graceful stop) and print each figure next to
    /// its target.
    Bench(crate::bench::BenchArgs),
    /// Scale-out checks: a fixed workload, a failing-over sender, and the exactly-once and
    /// same-alerts check of a cluster run against a single node.
    Cluster(cluster::ClusterArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides server.listen).
    #[arg(long)]
    pub listen: Option<String>,
    /// Data directory (overrides server.data_dir).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Configuration file (TOML); the embedded defaults apply underneath.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct Remote {
    /// Base URL of the server.
    #[arg(long, env = "PLUMBLINE_URL", default_value = "http://127.0.0.1:7420")]
    pub url: String,
    /// API token (scope ingest for `ingest`, read for `events`).
    #[arg(long, env = "PLUMBLINE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub remote: Remote,
    /// Events per request.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Read the file in this source's own format and post it to /v1/ingest/<source>
    /// (github, gitlab, n8n, make, vault, cloudtrail, okta, openai; the coding agents'
    /// hook inputs: claude-code, cursor) or to OTLP's /v1/logs, /v1/traces (otlp-logs,
    /// otlp-traces: OTLP/JSON export requests); without it the file is native NDJSON events.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(source::SOURCES))]
    pub source: Option<String>,
    /// NDJSON file (or the source's format with --source), or `-` for standard input.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub remote: Remote,
    #[arg(long)]
    pub actor: Option<String>,
    #[arg(long)]
    pub system: Option<String>,
    #[arg(long)]
    pub source: Option<String>,
    /// RFC 3339 time or a duration ago (15m, 24h, 7d).
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
    /// Most events to print (all pages are followed up to this).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Print raw JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address for the demo server (a free loopback port by default).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Print the alerts and stop instead of keeping the server running.
    #[arg(long)]
    pub no_wait: bool,
}
