//! What the end-to-end benchmarks share: the release binary serving on a throwaway store,
//! percentiles of a latency sample, and one sample of the server's `/metrics`.

#![allow(dead_code)] // each benchmark uses its part

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `plumbline serve` (the release build, built-in packs) on a port the OS picks.
pub struct Service {
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Service {
    pub fn start() -> Service {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_plumbline"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path())
            .env("PLUMBLINE_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start plumbline");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            let line = lines.next().expect("plumbline exited").unwrap();
            if let Some(u) = line.strip_prefix("plumbline listening on ") {
                break u.trim().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Service {
            url,
            child,
            _dir: dir,
        }
    }

    /// The `/metrics` page as it stands.
    pub async fn metrics(&self, client: &reqwest::Client) -> String {
        client
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `p`-quantile (0–1) of a sorted sample, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// The value of the sample written exactly `series` (name and labels) on a metrics page.
pub fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(f64::NAN)
}
