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
