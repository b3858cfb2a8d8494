//! The adapters' memory kept in the store: sled tree `ingest.adapter_memory`, keyed
//! `<source>\0<kind>\0<key>`, values JSON. Survives restarts, so a workflow's last-seen
//! state or a replayed delivery id is remembered across them.

use serde_json::Value;

use plumbline_event::Source;
use plumbline_store::{Store, StoreError};

use crate::adapter::{Memory, MemoryError};

pub struct SledMemory {
    tree: sled::Tree,
}

const MEMORY_TREE: &str = "ingest.adapter_memory";

impl SledMemory {
    pub fn open(store: &Store) -> Result<SledMemory, StoreError> {
        let tree = store.db().open_tree(MEMORY_TREE)?;
        Ok(SledMemory { tree })
    }

    /// Forgets the `kind` entries of `source` whose `at` (unix seconds) is before
    /// `cutoff`, or that have none; returns how many. For memories that only need to last
    /// as long as the events they protect.
    pub fn forget_before(
        &self,
        source: Source,
        kind: &str,
        cutoff: i64,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        for item in self.tree.scan_prefix(Self::key(source, kind, "")) {
            let (k, v) = item?;
            let at = serde_json::from_slice::<Value>(&v)
                .ok()
                .and_then(|v| v["at"].as_i64());
            if at.is_none_or(|at| at < cutoff) {
                self.tree.remove(k)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn key(source: Source, kind: &str, key: &str) -> Vec<u8> {
        format!("{source}\u{0}{kind}\u{0}{key}").into_bytes()
    }
}

impl Memory for SledMemory {
    fn get(&self, source: Source, kind: &str, key: &str) -> Option<Value> {
        let bytes = self.tree.get(Self::key(source, kind, key)).ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    fn remember(
        &self,
        source: Source,
        kind: &str,
        key: &str,
        value: Option<&Value>,
    ) -> Result<(), MemoryError> {
        let k = Self::key(source, kind, key);
        let res = match value {
            Some(v) => self
                .tree
                .insert(k, serde_json::to_vec(v).unwrap_or_default()),
            None => self.tree.remove(k),
        };
        res.map(|_| ())
            .map_err(|e| MemoryError(StoreError::from(e).to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_across_a_reopen_and_forgets_on_none() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let m = SledMemory::open(&store).unwrap();
            m.remember(
                Source::N8n,
                "workflow",
                "7",
                Some(&serde_json::json!({"v": 1})),
            )
            .unwrap();
            m.remember(Source::N8n, "workflow", "8", Some(&serde_json::json!(2)))
                .unwrap();
            m.remember(Source::N8n, "workflow", "8", None).unwrap();
            store.db().flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let m = SledMemory::open(&store).unwrap();
        assert_eq!(m.get(Source::N8n, "workflow", "7").unwrap()["v"], 1);
        assert!(m.get(Source::N8n, "workflow", "8").is_none());
        assert!(m.get(Source::Make, "workflow", "7").is_none());
        for (key, at) in [("old", 100), ("new", 200)] {
            m.remember(
                Source::Github,
                "body",
                key,
                Some(&serde_json::json!({"at": at})),
            )
            .unwrap();
        }
        assert_eq!(m.forget_before(Source::Github, "body", 150).unwrap(), 1);
        assert!(m.get(Source::Github, "body", "old").is_none());
        assert!(m.get(Source::Github, "body", "new").is_some());
        assert!(
            m.get(Source::N8n, "workflow", "7").is_some(),
            "other kinds kept"
        );
    }
}
