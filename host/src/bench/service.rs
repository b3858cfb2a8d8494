//! The measured server: `plumbline serve` (this same binary, built-in packs, default
//! configuration) as a child process on a throwaway data directory, so every figure is the
//! real service's — its own process, HTTP, store and detectors — and its resident memory and
//! stop time can be read from outside. The end-to-end benchmarks (host/benches) use it too.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A running `plumbline serve`; killed and its directory deleted when dropped.
pub struct Service {
    pub url: String,
    child: Child,
    dir: PathBuf,
}

impl Service {
    /// Starts `exe serve` on a port the OS picks, its data in a fresh temporary directory,
    /// and waits until it listens.
    pub fn start(exe: &Path) -> anyhow::Result<Service> {
        Self::start_with_env(exe, &[])
    }

    /// As [`Service::start`], with configuration from `PLUMBLINE_*` variables.
    pub fn start_with_env(exe: &Path, env: &[(&str, &str)]) -> anyhow::Result<Service> {
        let dir = crate::throwaway::temp_dir("bench");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut cmd = Command::new(exe);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&dir)
            .envs(env.iter().copied());
        // The servers of one run share a compile cache (components and prepared snapshots,
        // keyed by content): the figures are the running service's, and compiling every
        // built-in again for each of a run's seven servers only made the run longer.
        let cache = "PLUMBLINE_RUNTIME_CACHE_DIR";
        if std::env::var_os(cache).is_none() && !env.iter().any(|(k, _)| *k == cache) {
            cmd.env(cache, run_cache());
        }
        match crate::throwaway::spawn_serve(cmd, "warn") {
            Ok((child, url)) => Ok(Service { url, child, dir }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e.context(format!("{} serve", exe.display())))
            }
        }
    }

    /// The `/metrics` page as it stands.
    pub async fn metrics(&self, client: &reqwest::Client) -> anyhow::Result<String> {
        Ok(client
            .get(format!("{}/metrics", self.url))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    /// Resident memory of the server process in bytes (`VmRSS` in /proc/<pid>/status).
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .context("reading the server's /proc status")?;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS line")?;
        Ok(kib * 1024)
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit; returns the time it
    /// took, or `None` when it had to be killed at `limit`.
    pub fn terminate(&mut self, limit: Duration) -> anyhow::Result<Option<Duration>> {
        let pid = self.child.id() as libc::pid_t;
        let started = Instant::now();
        // SAFETY: signalling our own child process by its id; it has not been reaped yet.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            bail!("SIGTERM: {}", std::io::Error::last_os_error());
        }
        while started.elapsed() < limit {
            if self.child.try_wait()?.is_some() {
                return Ok(Some(started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Ok(None)
    }
}

/// This run's compile cache (see [`Service::start_with_env`]); [`remove_run_cache`] deletes it.
fn run_cache() -> &'static Path {
    static CACHE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| crate::throwaway::temp_dir("bench-cache"))
}

/// Deletes this run's compile cache, at the end of the run.
pub fn remove_run_cache() {
    let _ = std::fs::remove_dir_all(run_cache());
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `p`-quantile (0–1) of a sorted sample, in milliseconds (NaN when empty).
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// The value of the sample written exactly `series` (name and labels) on a metrics page.
pub fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// A histogram's cumulative buckets on a metrics page: (upper bound in seconds, count),
/// `+Inf` last.
pub fn buckets(page: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    page.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// The `q`-quantile (0–1), in milliseconds, of the observations between two readings of a
/// cumulative histogram, interpolated linearly inside the bucket like Prometheus'
/// `histogram_quantile`; NaN when nothing was observed. A quantile in the `+Inf` bucket is
/// given as the largest finite bound (a lower bound of the truth).
pub fn quantile_between(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> f64 {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|&(le, n)| {
            let was = before.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
            (le, n - was)
        })
        .collect();
    let Some(&(_, total)) = delta.last() else {
        return f64::NAN;
    };
    if total <= 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(le, n) in &delta {
        if n >= rank {
            if le.is_infinite() {
                return lower * 1000.0;
            }
            let inside = n - below;
            let frac = if inside > 0.0 {
                (rank - below) / inside
            } else {
                1.0
            };
            return (lower + (le - lower) * frac) * 1000.0;
        }
        (lower, below) = (le, n);
    }
    lower * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_bucket_deltas() {
        let page = |a: u32, b: u32, c: u32| {
            format!(
                "x_bucket{{le=\"0.01\"}} {a}\nx_bucket{{le=\"0.05\"}} {b}\nx_bucket{{le=\"+Inf\"}} {c}\nx_count {c}\n"
            )
        };
        let before = buckets(&page(100, 100, 100), "x");
        assert_eq!(before.len(), 3);
        // 10 new observations: 5 under 10 ms, 4 in 10–50 ms, 1 above.
        let after = buckets(&page(105, 109, 110), "x");
        assert!((quantile_between(&before, &after, 0.5) - 10.0).abs() < 1e-9);
        assert!((quantile_between(&before, &after, 0.7) - 30.0).abs() < 1e-9);
        assert_eq!(quantile_between(&before, &after, 0.99), 50.0);
        assert!(quantile_between(&after, &after, 0.5).is_nan());
    }

    #[test]
    fn percentiles_of_an_empty_sample_are_nan() {
        assert!(percentile_ms(&[], 0.5).is_nan());
        let s = [Duration::from_millis(1), Duration::from_millis(3)];
        assert_eq!(percentile_ms(&s, 0.5), 1.0);
        assert_eq!(percentile_ms(&s, 0.99), 3.0);
    }
}
