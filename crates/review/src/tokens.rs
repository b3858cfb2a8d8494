//! What the model cost: tokens counted from the summary audit trail as its records are
//! written. The audit keeps every response body, so reading `usage` from there costs the
//! summary stage nothing and cannot drift from what was actually paid for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use plumbline_store::{Store, StoreError};
use plumbline_summary::audit::AuditRecord;

/// Token counters since start (Prometheus counters).
#[derive(Debug, Default)]
pub struct LlmUsage {
    pub prompt_tokens: AtomicU64,
    pub completion_tokens: AtomicU64,
    /// HTTP tries that got a response body.
    pub responses: AtomicU64,
    /// Summaries recorded in the audit (model, cached or fallback).
    pub summaries: AtomicU64,
}

impl LlmUsage {
    /// Starts counting on a thread that holds only a weak handle, so it ends with the counters.
    pub fn spawn(self: &Arc<Self>, store: &Store) -> Result<(), StoreError> {
        let tree = store.db().open_tree("summary_audit")?;
        let mut subscriber = tree.watch_prefix(Vec::new());
        let usage: Weak<LlmUsage> = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("llm-usage".into())
            .spawn(move || loop {
                let next = subscriber.next_timeout(Duration::from_secs(1));
                let Some(usage) = usage.upgrade() else { return };
                match next {
                    Ok(sled::Event::Insert { value, .. }) => usage.count(&value),
                    Ok(sled::Event::Remove { .. }) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                }
            })
            .map_err(StoreError::Io)?;
        Ok(())
    }

    /// Adds one audit record's usage.
    pub fn count(&self, record: &[u8]) {
        let Ok(r) = serde_json::from_slice::<AuditRecord>(record) else {
            return;
        };
        self.summaries.fetch_add(1, Ordering::Relaxed);
        for call in &r.calls {
            for t in &call.tries {
                let Some(body) = &t.response else { continue };
                self.responses.fetch_add(1, Ordering::Relaxed);
                let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
                    continue;
                };
                let n = |k: &str| v["usage"][k].as_u64().unwrap_or(0);
                self.prompt_tokens
                    .fetch_add(n("prompt_tokens"), Ordering::Relaxed);
                self.completion_tokens
                    .fetch_add(n("completion_tokens"), Ordering::Relaxed);
            }
        }
    }
}
