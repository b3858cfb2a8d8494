//! A `plumbline serve` child on a temporary data directory, never the real store: what
//! `plumbline demo` and `plumbline eval` run their traffic through, so they exercise the
//! same binary, endpoints and stages as production.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};

/// A running child service; killed and its directory deleted when dropped.
pub struct Service {
    child: Child,
    dir: PathBuf,
    pub url: String,
}

impl Service {
    /// Starts `plumbline serve` with `config` (TOML over the embedded defaults) on `listen`,
    /// its data under `dir` (created; deleted on drop), and waits until it listens.
    /// `log` is the child's log filter unless `PLUMBLINE_LOG` is set.
    pub fn start(dir: &Path, config: &str, listen: &str, log: &str) -> anyhow::Result<Service> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let file = dir.join("plumbline.toml");
        std::fs::write(&file, config).with_context(|| format!("writing {}", file.display()))?;
        let exe = std::env::current_exe().context("finding the plumbline binary")?;
        let mut cmd = Command::new(exe);
        cmd.args(["serve", "--listen", listen, "--config"])
            .arg(&file)
            .arg("--data")
            .arg(dir.join("data"));
        let (child, url) = spawn_serve(cmd, log)
            .with_context(|| format!("plumbline serve with config {}", file.display()))?;
        Ok(Service {
            child,
            dir: dir.to_path_buf(),
            url,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Starts `cmd` (a `plumbline serve` command line) with its log filter (`log` unless
/// `PLUMBLINE_LOG` is set) and waits for the line that says where it listens; returns the
/// child and its URL. Its further output is drained, so it never blocks on a full pipe.
pub fn spawn_serve(mut cmd: Command, log: &str) -> anyhow::Result<(Child, String)> {
    let mut child = cmd
        .env(
            "PLUMBLINE_LOG",
            std::env::var("PLUMBLINE_LOG").unwrap_or_else(|_| log.into()),
        )
        .stdout(Stdio::piped())
        .spawn()
        .context("starting plumbline serve")?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(u) = l.strip_prefix("plumbline listening on ") {
                    let url = u.trim().to_string();
                    std::thread::spawn(move || for _ in lines {});
                    return Ok((child, url));
                }
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("plumbline serve stopped before it was ready");
            }
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh directory under the system's temporary directory, unique to this process.
pub fn temp_dir(what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "plumbline-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A throwaway `nats-server -js` on a free loopback port, its store in a temporary
/// directory; stopped and deleted when dropped. For cluster runs (`plumbline bench
/// --cluster`, the cluster tests): Debian's nats-server, installed by `scripts/setup.sh`.
pub struct NatsServer {
    child: std::process::Child,
    dir: PathBuf,
    pub url: String,
}

impl NatsServer {
    pub fn start() -> anyhow::Result<NatsServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = temp_dir("jetstream");
        let child = std::process::Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting nats-server (scripts/setup.sh cluster installs it)")?;
        let mut server = NatsServer {
            child,
            dir,
            url: format!("nats://127.0.0.1:{port}"),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                bail!("nats-server exited at start: {status}");
            }
            if std::time::Instant::now() > deadline {
                bail!("nats-server did not listen on {port} within 20 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(server)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
