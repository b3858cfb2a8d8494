//! The event store on sled: one record per ingest group, pointing index entries, a schema
//! version, group-committed durability and a retention sweeper.

pub mod audit;
pub mod batch;
mod commit;
pub mod keys;
mod query;
mod retention;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use commit::{CommitListener, CommittedBatch, IngestOutcome, Writer};
pub use keys::EventRef;
pub use query::{EventPage, EventQuery};

use batch::BatchView;
use plumbline_event::Event;

/// Version of the on-disk layout this build reads and writes.
pub const SCHEMA_VERSION: &str = "plumbline-store/1";

/// Where a table's local writes are copied, as (key, value): a cluster shares labels and
/// response-action decisions through it. Called after the write, in write order.
pub type RecordReplica = std::sync::Arc<dyn Fn(&[u8], &[u8]) + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error(
        "the store at {path} was written with schema `{found}`, but this build of plumbline \
         reads `{expected}`; refusing to open it (use a matching plumbline release or a new --data directory)"
    )]
    IncompatibleSchema {
        path: PathBuf,
        found: String,
        expected: &'static str,
    },
    #[error("the store at {0} has data but no schema version; refusing to guess what wrote it")]
    UnknownSchema(PathBuf),
    #[error("{0}")]
    Corrupt(#[from] batch::CorruptBatch),
    #[error("the store's writer has stopped")]
    WriterGone,
    /// A cluster's log (JetStream) did not take the events; nothing was acknowledged.
    #[error("cluster log: {0}")]
    Log(String),
    #[error("fsync of the store log failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Handles to the event store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Trees>,
}

struct Trees {
    path: PathBuf,
    db: sled::Db,
    batches: sled::Tree,
    ids: sled::Tree,
    by_time: sled::Tree,
    by_actor: sled::Tree,
    by_system: sled::Tree,
    by_source: sled::Tree,
}

/// sled's page cache unless configured (`[store] cache_mib`, host/config/default.toml).
pub const DEFAULT_CACHE_BYTES: u64 = 128 << 20;

impl Store {
    /// Opens (or creates) the store in `dir` with the default page cache
    /// ([`DEFAULT_CACHE_BYTES`]), refusing a store of another schema version.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// As [`Store::open`], with sled's page cache bounded to `cache_bytes` (`[store]
    /// cache_mib`): the largest memory the store holds however many events it keeps.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        let path = dir.join("store");
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(cache_bytes.max(1 << 20))
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(Some(500))
            .open()?;
        let meta = db.open_tree("meta")?;
        match meta.get("schema_version")? {
            Some(v) if v.as_ref() == SCHEMA_VERSION.as_bytes() => {}
            Some(v) => {
                return Err(StoreError::IncompatibleSchema {
                    path,
                    found: String::from_utf8_lossy(&v).into_owned(),
                    expected: SCHEMA_VERSION,
                })
            }
            None => {
                let has_data = db.tree_names().iter().any(|name| {
                    name.as_ref() != b"__sled__default"
                        && db.open_tree(name).map(|t| !t.is_empty()).unwrap_or(true)
                });
                if has_data {
                    return Err(StoreError::UnknownSchema(path));
                }
                meta.insert("schema_version", SCHEMA_VERSION)?;
                db.flush()?;
            }
        }
        let tree = |n: &str| db.open_tree(n);
        let inner = Trees {
            batches: tree("batches")?,
            ids: tree("ids")?,
            by_time: tree("by_time")?,
            by_actor: tree("by_actor")?,
            by_system: tree("by_system")?,
            by_source: tree("by_source")?,
            path,
            db,
        };
        Ok(Store {
            inner: Arc::new(inner),
        })
    }

    /// The sled database, for the other stages' own trees (trajectories, alerts, outbox).
    pub fn db(&self) -> &sled::Db {
        &self.inner.db
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn locate(&self, id: &str) -> Result<Option<EventRef>, StoreError> {
        Ok(self.inner.ids.get(id)?.and_then(|v| EventRef::decode(&v)))
    }

    pub fn contains(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.inner.ids.contains_key(id)?)
    }

    /// One event by id.
    pub fn get(&self, id: &str) -> Result<Option<Event>, StoreError> {
        let Some(r) = self.locate(id)? else {
            return Ok(None);
        };
        self.load(r)
    }

    /// One event by location.
    pub fn load(&self, r: EventRef) -> Result<Option<Event>, StoreError> {
        let Some(bytes) = self.inner.batches.get(r.seq.to_be_bytes())? else {
            return Ok(None);
        };
        Ok(BatchView::new(&bytes)?.event(r.slot as usize))
    }

    /// Many events by id, in the order given; ids no longer stored are skipped.
    pub fn get_many<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<Event>, StoreError> {
        let mut cache: Option<(u64, sled::IVec)> = None;
        let mut out = Vec::new();
        for id in ids {
            let Some(r) = self.locate(id)? else { continue };
            if cache.as_ref().map(|(s, _)| *s) != Some(r.seq) {
                match self.inner.batches.get(r.seq.to_be_bytes())? {
                    Some(b) => cache = Some((r.seq, b)),
                    None => continue,
                }
            }
            let (_, bytes) = cache.as_ref().expect("cached above");
            if let Some(e) = BatchView::new(bytes)?.event(r.slot as usize) {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Every live event of one batch (used to resume downstream stages after a restart):
    /// those whose id is claimed by this batch and slot. A group written just before a
    /// crash can leave its batch record on disk without its id claims (sled's background
    /// flush keeps a prefix of the writes); its events were never acknowledged, no query
    /// shows them, and evaluating them would raise alerts about events that do not exist.
    pub fn batch_events(&self, seq: u64) -> Result<Vec<Event>, StoreError> {
        let Some(bytes) = self.inner.batches.get(seq.to_be_bytes())? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (slot, e) in BatchView::new(&bytes)?.events() {
            if self
                .locate(&e.id)?
                .is_some_and(|r| r.seq == seq && r.slot == slot)
            {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Sequence numbers of stored batches after `seq`, in order.
    pub fn batch_seqs_after(&self, seq: u64) -> impl Iterator<Item = u64> + '_ {
        self.inner
            .batches
            .range((seq + 1).to_be_bytes()..)
            .keys()
            .filter_map(|k| {
                k.ok()
                    .map(|k| u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0; 8])))
            })
    }

    /// The highest batch sequence stored (0 when empty).
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        Ok(self
            .inner
            .batches
            .last()?
            .map(|(k, _)| u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0; 8])))
            .unwrap_or(0))
    }

    /// Number of stored events (walks the id tree: for stats, not hot paths).
    pub fn event_count(&self) -> usize {
        self.inner.ids.len()
    }
}
