use clap::Parser;
use plumbline::cli::{client, Cli, Command};
use plumbline::config::Config;

fn init_tracing() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("PLUMBLINE_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,sled=warn,cranelift=warn,wasmtime=warn")
        });
    // Colour only for a person at a terminal: logs piped to files or CI stay plain text.
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Serve(args) => {
            let mut config = Config::load(args.config.as_deref())?;
            if let Some(l) = args.listen {
                config.server.listen = l;
            }
            if let Some(d) = args.data {
                config.server.data_dir = d;
            }
            plumbline::serve::run(config).await
        }
        Command::Ingest(args) => client::ingest(args).await,
        Command::Events(args) => client::events(args).await,
        Command::Demo(args) => plumbline::demo::run(&args.listen, !args.no_wait).await,
        Command::Eval(args) => {
            if !plumbline::eval::run(args).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Pack(args) => plumbline::cli::pack::run(args).await,
        Command::Keygen(args) => plumbline::cli::pack::keygen(args),
        Command::Replay(args) => plumbline::cli::pack::replay(args).await,
        Command::Bench(args) => plumbline::bench::run(args).await,
        Command::Cluster(args) => plumbline::cli::cluster::run(args).await,
        Command::Detector(args) => {
            // WASM runs on the calling thread: keep it off the async workers.
            let ok =
                tokio::task::spawn_blocking(move || plumbline::cli::detector::run(args)).await??;
            if !ok {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
