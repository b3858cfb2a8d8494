//! The audit trail of what the model saw and said, and the summary cache.
//!
//! Three sled trees:
//! - `summary_audit`: per alert, one record per summary produced (newest last, the last
//!   [`KEEP_PER_ALERT`] kept): the exact request bodies sent (after redaction) and the
//!   responses, each with its sha256, and the trajectory hash they were about;
//! - `summary_cache`: the model's validated summary keyed by trajectory hash and findings
//!   fingerprint — the same story is never paid for twice;
//! - `summary_forwarded`: per alert, the last trajectory hash and findings whose summary was
//!   handed to the next stage;
//! - `summary_pending`: alerts heard about and not yet handed on, so a restart finishes
//!   exactly the work that was in flight (and nothing older).

use serde::{Deserialize, Serialize};

use super::client::Try;
use super::{Provenance, Summary};
use plumbline_alert::finding::Severity;
use plumbline_store::{Store, StoreError};

/// Audit records kept per alert (older ones are dropped as new ones arrive).
pub const KEEP_PER_ALERT: usize = 50;

/// One request as sent, and every HTTP try it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// `initial`, or `correction` (the retry that states why the first answer was rejected).
    pub purpose: String,
    /// The exact request body sent, after redaction.
    pub request: String,
    pub request_sha256: String,
    pub tries: Vec<Try>,
    /// `answered`, `refused: …`, `invalid: …` or the failure.
    pub outcome: String,
}

/// How an alert's severity came out of this summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityRecord {
    /// Highest severity among the detector findings.
    pub detectors: Severity,
    /// The model's risk, when its summary was used.
    pub model_risk: Option<Severity>,
    /// `llm.max_raised_severity` at the time.
    pub cap: Severity,
    /// What the alert was given.
    pub applied: Severity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub alert_id: String,
    pub trajectory_id: String,
    pub trajectory_hash: String,
    pub findings_fingerprint: String,
    pub at: String,
    pub provenance: Provenance,
    /// Model name and endpoint, when one is configured.
    pub model: Option<String>,
    pub endpoint: Option<String>,
    /// Calls made for this summary (none when cached or no LLM is configured).
    pub calls: Vec<CallRecord>,
    /// For a cached summary: the request and response hashes of the call that wrote it.
    pub cached_request_sha256: Option<String>,
    pub cached_response_sha256: Option<String>,
    pub summary: Summary,
    pub severity: SeverityRecord,
}

/// A validated model summary for one trajectory hash and set of findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    pub summary: Summary,
    pub model: String,
    pub produced_at: String,
    pub request_sha256: String,
    pub response_sha256: Option<String>,
}

/// An alert update heard about and not yet handed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub trajectory_hash: String,
    pub findings_fingerprint: String,
    pub is_new: bool,
    pub previous_severity: Option<Severity>,
}

/// What the next stage was last handed for an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forwarded {
    pub trajectory_hash: String,
    pub findings_fingerprint: String,
    pub severity: Severity,
    pub at: String,
}

#[derive(Clone)]
pub struct SummaryAudit {
    db: sled::Db,
    records: sled::Tree,
    cache: sled::Tree,
    forwarded: sled::Tree,
    pending: sled::Tree,
}

impl SummaryAudit {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        let db = store.db().clone();
        Ok(SummaryAudit {
            records: db.open_tree("summary_audit")?,
            cache: db.open_tree("summary_cache")?,
            forwarded: db.open_tree("summary_forwarded")?,
            pending: db.open_tree("summary_pending")?,
            db,
        })
    }

    /// Appends a record for its alert; returns its key.
    pub fn record(&self, r: &AuditRecord) -> Result<String, StoreError> {
        let seq = self.db.generate_id()?;
        let key = record_key(&r.alert_id, seq);
        self.records.insert(
            &key,
            serde_json::to_vec(r).expect("audit records serialise"),
        )?;
        let keys: Vec<sled::IVec> = self
            .records
            .scan_prefix(alert_prefix(&r.alert_id))
            .keys()
            .filter_map(Result::ok)
            .collect();
        if keys.len() > KEEP_PER_ALERT {
            for k in &keys[..keys.len() - KEEP_PER_ALERT] {
                self.records.remove(k)?;
            }
        }
        Ok(format!("{}/{seq}", r.alert_id))
    }

    /// An alert's records, oldest first.
    pub fn for_alert(&self, alert_id: &str) -> Result<Vec<AuditRecord>, StoreError> {
        let mut out = Vec::new();
        for kv in self.records.scan_prefix(alert_prefix(alert_id)) {
            let (k, v) = kv?;
            match serde_json::from_slice(&v) {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!(key = ?k, error = %e, "unreadable summary audit record"),
            }
        }
        Ok(out)
    }

    pub fn cached(&self, trajectory_hash: &str, fingerprint: &str) -> Option<CacheEntry> {
        self.cache
            .get(cache_key(trajectory_hash, fingerprint))
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_slice(&v).ok())
    }

    pub fn put_cache(
        &self,
        trajectory_hash: &str,
        fingerprint: &str,
        entry: &CacheEntry,
    ) -> Result<(), StoreError> {
        self.cache.insert(
            cache_key(trajectory_hash, fingerprint),
            serde_json::to_vec(entry).expect("cache entries serialise"),
        )?;
        Ok(())
    }

    pub fn forwarded(&self, alert_id: &str) -> Option<Forwarded> {
        self.forwarded
            .get(alert_id.as_bytes())
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_slice(&v).ok())
    }

    pub fn set_forwarded(&self, alert_id: &str, f: &Forwarded) -> Result<(), StoreError> {
        self.forwarded.insert(
            alert_id.as_bytes(),
            serde_json::to_vec(f).expect("forward marks serialise"),
        )?;
        Ok(())
    }

    /// Notes that an update of `alert_id` waits to be handed on. An earlier pending update
    /// that was new stays new, and keeps its earlier previous severity.
    pub fn set_pending(&self, alert_id: &str, p: &Pending) -> Result<(), StoreError> {
        let mut p = p.clone();
        if let Some(old) = self.pending(alert_id) {
            p.is_new |= old.is_new;
            p.previous_severity = old.previous_severity;
        }
        self.pending.insert(
            alert_id.as_bytes(),
            serde_json::to_vec(&p).expect("pending marks serialise"),
        )?;
        Ok(())
    }

    pub fn pending(&self, alert_id: &str) -> Option<Pending> {
        self.pending
            .get(alert_id.as_bytes())
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_slice(&v).ok())
    }

    /// Every alert with an update not yet handed on.
    pub fn all_pending(&self) -> Vec<(String, Pending)> {
        self.pending
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(k, v)| {
                Some((
                    String::from_utf8(k.to_vec()).ok()?,
                    serde_json::from_slice(&v).ok()?,
                ))
            })
            .collect()
    }

    /// Clears the pending mark once the update it names was handed on (a mark for a newer
    /// update stays: that one is still to come).
    pub fn clear_pending(
        &self,
        alert_id: &str,
        trajectory_hash: &str,
        findings_fingerprint: &str,
    ) -> Result<(), StoreError> {
        if self.pending(alert_id).is_none_or(|p| {
            p.trajectory_hash == trajectory_hash && p.findings_fingerprint == findings_fingerprint
        }) {
            self.pending.remove(alert_id.as_bytes())?;
        }
        Ok(())
    }

    /// Removes audit records and cache entries written before `cutoff` (retention).
    pub fn sweep_before(&self, cutoff: time::OffsetDateTime) -> Result<usize, StoreError> {
        let old = |at: Option<&str>| {
            at.and_then(|s| {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
            })
            .is_some_and(|t| t < cutoff)
        };
        let mut removed = 0;
        for tree in [&self.records, &self.cache] {
            for kv in tree.iter() {
                let (k, v) = kv?;
                let at = serde_json::from_slice::<serde_json::Value>(&v)
                    .ok()
                    .and_then(|v| {
                        v.get("at")
                            .or_else(|| v.get("produced_at"))
                            .and_then(|a| a.as_str().map(str::to_string))
                    });
                if old(at.as_deref()) {
                    tree.remove(k)?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

fn alert_prefix(alert_id: &str) -> Vec<u8> {
    let mut k = alert_id.as_bytes().to_vec();
    k.push(0);
    k
}

fn record_key(alert_id: &str, seq: u64) -> Vec<u8> {
    let mut k = alert_prefix(alert_id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn cache_key(trajectory_hash: &str, fingerprint: &str) -> Vec<u8> {
    format!("{trajectory_hash}/{fingerprint}").into_bytes()
}
