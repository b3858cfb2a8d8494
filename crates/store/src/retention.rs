//! Retention: events older than the configured age are deleted together with every
//! index entry that points at them.

use std::collections::BTreeMap;

use super::batch::{self, BatchView};
use super::keys;
use super::{Store, StoreError};

impl Store {
    /// Deletes every event whose minute lies wholly before `cutoff_nanos`. Returns how many.
    pub fn sweep_before(&self, cutoff_nanos: i64) -> Result<usize, StoreError> {
        let t = &self.inner;
        let cutoff_minute = keys::minute_of(cutoff_nanos);
        let end = keys::ordered_i64(cutoff_minute);
        // seq → (minute, slots) of the old events in that batch.
        let mut old: BTreeMap<u64, Vec<(i64, Vec<u32>)>> = BTreeMap::new();
        for item in t.by_time.range(..end.to_vec()) {
            let (k, v) = item?;
            let Some((minute, seq)) = keys::split_index_key(&k) else {
                continue;
            };
            old.entry(seq)
                .or_default()
                .push((minute, keys::decode_slots(&v).collect()));
        }
        let mut removed = 0;
        // The newest batch record is kept (maybe empty) so sequence numbers are never reused.
        let last = self.last_seq()?;
        for (seq, groups) in old {
            let Some(bytes) = t.batches.get(seq.to_be_bytes())? else {
                continue;
            };
            let view = BatchView::new(&bytes)?;
            let mut slots = view.slots();
            for (minute, group) in groups {
                for slot in group {
                    let Some(ev) = view.event(slot as usize) else {
                        continue;
                    };
                    // Only the id's claim goes if it still points here (never a newer copy).
                    if self.is_claimed(&ev.id, keys::EventRef { seq, slot })? {
                        t.ids.remove(ev.id.as_bytes())?;
                    }
                    t.by_actor
                        .remove(keys::index_key(&ev.actor.id, minute, seq))?;
                    t.by_system
                        .remove(keys::index_key(&ev.system, minute, seq))?;
                    t.by_source
                        .remove(keys::index_key(ev.source.as_str(), minute, seq))?;
                    slots[slot as usize].clear();
                    removed += 1;
                }
                t.by_time.remove(keys::index_key("", minute, seq))?;
            }
            if slots.iter().all(Vec::is_empty) && seq != last {
                t.batches.remove(seq.to_be_bytes())?;
            } else {
                t.batches.insert(seq.to_be_bytes(), batch::encode(&slots))?;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use crate::{CommitListener, CommittedBatch, EventQuery, Store, Writer};
    use plumbline_event::{format_time, parse_event, Event};

    const DAY: i64 = 86_400;

    fn ev(id: &str, days_ago: i64) -> Event {
        let t = time::OffsetDateTime::now_utc() - time::Duration::seconds(days_ago * DAY);
        parse_event(json!({
            "id": id, "time": format_time(t), "source": "github",
            "actor": {"id": "ada", "type": "human"}, "system": "acme/api", "action": "git.push",
        }))
        .unwrap()
    }

    fn ids(store: &Store, q: EventQuery) -> Vec<String> {
        let q = EventQuery { limit: 100, ..q };
        store
            .query(&q)
            .unwrap()
            .events
            .into_iter()
            .map(|e| e.id)
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn old_events_go_with_every_index_entry_and_newer_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ignore: Arc<dyn CommitListener> = Arc::new(|_b: CommittedBatch| {});
        let writer = Writer::start(store.clone(), false, ignore).unwrap();
        // One batch of old events only, one that mixes old and new, and a newest batch of
        // old events (its record stays, emptied, so batch numbers are never reused).
        writer
            .write(vec![ev("old-1", 40), ev("old-2", 39)])
            .await
            .unwrap();
        writer
            .write(vec![ev("old-3", 35), ev("new-1", 1)])
            .await
            .unwrap();
        writer.write(vec![ev("old-4", 31)]).await.unwrap();
        assert_eq!(store.event_count(), 5);
        let cutoff = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
            - 30 * DAY * 1_000_000_000;

        assert_eq!(store.sweep_before(cutoff).unwrap(), 4);
        assert_eq!(store.event_count(), 1);
        for old in ["old-1", "old-2", "old-3", "old-4"] {
            assert!(store.get(old).unwrap().is_none(), "{old} swept");
        }
        assert_eq!(store.get("new-1").unwrap().unwrap().id, "new-1");
        // No index still points at a swept event.
        let by_actor = EventQuery {
            actor: Some("ada".into()),
            ..Default::default()
        };
        let by_system = EventQuery {
            system: Some("acme/api".into()),
            ..Default::default()
        };
        assert_eq!(ids(&store, by_actor), vec!["new-1"]);
        assert_eq!(ids(&store, by_system), vec!["new-1"]);
        assert_eq!(ids(&store, EventQuery::default()), vec!["new-1"]);
        assert_eq!(store.batch_seqs_after(0).collect::<Vec<_>>(), vec![2, 3]);
        assert!(store.batch_events(3).unwrap().is_empty());
        // A second sweep finds nothing; new writes continue after the kept sequence.
        assert_eq!(store.sweep_before(cutoff).unwrap(), 0);
        writer.write(vec![ev("new-2", 0)]).await.unwrap();
        assert_eq!(store.batch_seqs_after(3).collect::<Vec<_>>(), vec![4]);
        assert_eq!(store.event_count(), 2);
    }
}
