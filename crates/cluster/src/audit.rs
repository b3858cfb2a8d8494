//! Reading the cluster's commit history: how many times each (event, side) was committed
//! as evaluated. The demo and the tests check every acknowledged event against it.

use std::collections::HashMap;

use futures::StreamExt;

use crate::worker::Commit;
use crate::{js_err, ClusterError, COMMITS_STREAM};
use plumbline_trajectory::Side;

/// What the commit stream says was evaluated.
#[derive(Debug, Default)]
pub struct Evaluated {
    /// (event id, side) → how many commits name it.
    pub times: HashMap<(String, Side), u32>,
}

impl Evaluated {
    /// The sides of `id` not evaluated exactly once, with how many times they were.
    pub fn off(&self, id: &str) -> Vec<(Side, u32)> {
        Side::BOTH
            .iter()
            .map(|s| (*s, *self.times.get(&(id.to_string(), *s)).unwrap_or(&0)))
            .filter(|(_, n)| *n != 1)
            .collect()
    }

    /// Of `ids`: (evaluated exactly once on both sides, never on some side, more than
    /// once on some side).
    pub fn check<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> (usize, usize, usize) {
        let (mut once, mut lost, mut twice) = (0, 0, 0);
        for id in ids {
            let n: Vec<u32> = Side::BOTH
                .iter()
                .map(|s| *self.times.get(&(id.to_string(), *s)).unwrap_or(&0))
                .collect();
            if n.iter().all(|n| *n == 1) {
                once += 1;
            } else if n.iter().any(|n| *n > 1) {
                twice += 1;
            } else {
                lost += 1;
            }
        }
        (once, lost, twice)
    }
}

/// Reads every commit in the stream now.
pub async fn evaluated(url: &str) -> Result<Evaluated, ClusterError> {
    let client = async_nats::connect(url)
        .await
        .map_err(|e| ClusterError::Connect {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    let js = async_nats::jetstream::new(client);
    let mut out = Evaluated::default();
    let stream = js
        .get_stream(COMMITS_STREAM)
        .await
        .map_err(|e| js_err("commit stream")(e.to_string()))?;
    let last = stream
        .get_info()
        .await
        .map_err(|e| js_err("commit stream")(e.to_string()))?
        .state
        .last_sequence;
    if last == 0 {
        return Ok(out);
    }
    let mut messages = crate::read_all(&js, COMMITS_STREAM, "plumbline.commits.>").await?;
    while let Some(m) = messages.next().await {
        let m = m.map_err(|e| js_err("commit reader")(e.to_string()))?;
        let seq = m
            .info()
            .map_err(|e| js_err("commit reader")(e.to_string()))?
            .stream_sequence;
        let c: Commit = serde_json::from_slice(&m.payload)
            .map_err(|e| js_err("commit reader")(format!("commit {seq}: {e}")))?;
        for key in c.events {
            *out.times.entry(key).or_default() += 1;
        }
        if seq >= last {
            break;
        }
    }
    Ok(out)
}
