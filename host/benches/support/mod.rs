//! What the end-to-end benchmarks share with `plumbline bench` (host/src/bench): the binary
//! serving on a throwaway store, percentiles of a latency sample, and one sample of the
//! server's `/metrics`.

#![allow(dead_code)] // each benchmark uses its part

use std::path::Path;

pub use plumbline::bench::service::{metric, percentile_ms};

/// `plumbline serve` (the release build, built-in packs) on a port the OS picks.
pub struct Service {
    pub url: String,
    inner: plumbline::bench::service::Service,
}

impl Service {
    pub fn start() -> Service {
        let inner =
            plumbline::bench::service::Service::start(Path::new(env!("CARGO_BIN_EXE_plumbline")))
                .expect("start plumbline");
        Service {
            url: inner.url.clone(),
            inner,
        }
    }

    /// The `/metrics` page as it stands.
    pub async fn metrics(&self, client: &reqwest::Client) -> String {
        self.inner.metrics(client).await.expect("GET /metrics")
    }
}
