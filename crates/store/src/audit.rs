//! The admin audit log: who changed what the service does (packs, detectors, policy,
//! response actions), when, and whether it took. Append-only: nothing here updates or
//! deletes an entry, and retention does not sweep it. Each entry is durable (through the
//! writer's barrier, the one flusher) before the change is reported done.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Store, StoreError, Writer};

const AUDIT_TREE: &str = "audit";

/// One admin action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Increasing across restarts; the position in the log.
    pub seq: u64,
    /// RFC 3339, UTC.
    pub at: String,
    /// The token's name (`anonymous` on an open API; `plumbline` for the service itself).
    pub who: String,
    /// `pack.install`, `pack.remove`, `detector.release`, `policy.load`, `action.approve`, …
    pub action: String,
    /// What it acted on: a pack, a detector, a policy file, an action id.
    pub target: String,
    /// `ok`, or `refused: <reason>`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

/// What a caller records; the log adds `seq` and `at`.
pub struct AuditRecord<'a> {
    pub who: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub outcome: Result<(), String>,
    pub detail: Value,
}

#[derive(Clone)]
pub struct AuditLog {
    store: Store,
    tree: sled::Tree,
    writer: Writer,
}

impl AuditLog {
    pub fn open(store: &Store, writer: Writer) -> Result<AuditLog, StoreError> {
        Ok(AuditLog {
            tree: store.db().open_tree(AUDIT_TREE)?,
            store: store.clone(),
            writer,
        })
    }

    /// Appends an entry and waits until it is durable.
    pub async fn append(&self, r: AuditRecord<'_>) -> Result<AuditEntry, StoreError> {
        let entry = AuditEntry {
            seq: self.store.db().generate_id()?,
            at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            who: r.who.to_string(),
            action: r.action.to_string(),
            target: r.target.to_string(),
            outcome: match r.outcome {
                Ok(()) => "ok".into(),
                Err(why) => format!("refused: {why}"),
            },
            detail: r.detail,
        };
        let bytes = serde_json::to_vec(&entry).expect("audit entries serialise");
        self.tree.insert(entry.seq.to_be_bytes(), bytes)?;
        self.writer.barrier().await?;
        Ok(entry)
    }

    /// Newest first: up to `limit` entries before `before` (a `seq`; None = the newest).
    pub fn list(&self, before: Option<u64>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let end = before.unwrap_or(u64::MAX).to_be_bytes();
        let mut out = Vec::new();
        for item in self.tree.range(..end).rev().take(limit) {
            let (_, v) = item?;
            // An entry this build cannot read is shown as such, never skipped silently.
            out.push(serde_json::from_slice(&v).unwrap_or_else(|e| AuditEntry {
                seq: 0,
                at: String::new(),
                who: String::new(),
                action: "unreadable".into(),
                target: String::new(),
                outcome: format!("unreadable entry: {e}"),
                detail: Value::Null,
            }));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::CommittedBatch;

    #[tokio::test]
    async fn entries_survive_a_reopen_newest_first_with_their_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let record = |action: &'static str, outcome: Result<(), String>| AuditRecord {
            who: "secops-admin",
            action,
            target: "acme-exfil",
            outcome,
            detail: serde_json::json!({"version": "1.2.0"}),
        };
        {
            let store = Store::open(dir.path()).unwrap();
            let writer =
                Writer::start(store.clone(), false, Arc::new(|_: CommittedBatch| {})).unwrap();
            let log = AuditLog::open(&store, writer).unwrap();
            log.append(record("pack.install", Ok(()))).await.unwrap();
            log.append(record("pack.install", Err("older than 1.3.0".into())))
                .await
                .unwrap();
        }
        // The first writer's threads let go of the store once their channel closes.
        let store = (0..100)
            .find_map(|_| {
                Store::open(dir.path()).ok().or_else(|| {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    None
                })
            })
            .expect("the store reopens");
        let writer = Writer::start(store.clone(), false, Arc::new(|_: CommittedBatch| {})).unwrap();
        let log = AuditLog::open(&store, writer).unwrap();
        let third = log.append(record("pack.remove", Ok(()))).await.unwrap();
        let all = log.list(None, 10).unwrap();
        let got: Vec<(&str, &str)> = all
            .iter()
            .map(|e| (e.action.as_str(), e.outcome.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("pack.remove", "ok"),
                ("pack.install", "refused: older than 1.3.0"),
                ("pack.install", "ok")
            ]
        );
        assert!(all[0].seq > all[1].seq && all[1].seq > all[2].seq);
        assert_eq!(all[2].detail["version"], "1.2.0");
        let page = log.list(Some(third.seq), 1).unwrap();
        assert_eq!(page[0].outcome, "refused: older than 1.3.0");
    }
}
