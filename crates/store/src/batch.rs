//! One stored record per ingest group: `[n: u32][n end offsets: u32][event JSON ...]`.
//! A slot of length zero is an event removed by retention (slots never move, so index
//! entries stay valid).

use plumbline_event::Event;

#[derive(Debug, thiserror::Error)]
#[error("batch record is corrupt: {0}")]
pub struct CorruptBatch(pub &'static str);

pub fn encode(events: &[Vec<u8>]) -> Vec<u8> {
    let body: usize = events.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(4 + 4 * events.len() + body);
    out.extend_from_slice(&(events.len() as u32).to_le_bytes());
    let mut end = 0u32;
    for e in events {
        end += e.len() as u32;
        out.extend_from_slice(&end.to_le_bytes());
    }
    for e in events {
        out.extend_from_slice(e);
    }
    out
}

/// A view over an encoded batch.
pub struct BatchView<'a> {
    ends: &'a [u8],
    body: &'a [u8],
}

impl<'a> BatchView<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Self, CorruptBatch> {
        let n = u32::from_le_bytes(
            bytes
                .get(..4)
                .ok_or(CorruptBatch("short header"))?
                .try_into()
                .unwrap(),
        ) as usize;
        let ends = bytes
            .get(4..4 + 4 * n)
            .ok_or(CorruptBatch("short offset table"))?;
        let body = &bytes[4 + 4 * n..];
        let view = BatchView { ends, body };
        if n > 0 && view.end(n - 1) as usize != body.len() {
            return Err(CorruptBatch("offsets do not match the body"));
        }
        Ok(view)
    }

    pub fn len(&self) -> usize {
        self.ends.len() / 4
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn end(&self, i: usize) -> u32 {
        u32::from_le_bytes(self.ends[4 * i..4 * i + 4].try_into().unwrap())
    }

    /// The raw JSON of one slot; `None` for a removed slot or one out of range.
    pub fn raw(&self, slot: usize) -> Option<&'a [u8]> {
        if slot >= self.len() {
            return None;
        }
        let start = if slot == 0 { 0 } else { self.end(slot - 1) } as usize;
        let end = self.end(slot) as usize;
        if end <= start || end > self.body.len() {
            return None;
        }
        Some(&self.body[start..end])
    }

    pub fn event(&self, slot: usize) -> Option<Event> {
        self.raw(slot).and_then(|b| serde_json::from_slice(b).ok())
    }

    /// Every live event with its slot.
    pub fn events(&self) -> impl Iterator<Item = (u32, Event)> + '_ {
        (0..self.len()).filter_map(|i| self.event(i).map(|e| (i as u32, e)))
    }

    /// The slots as owned byte vectors (for rewriting with some removed).
    pub fn slots(&self) -> Vec<Vec<u8>> {
        (0..self.len())
            .map(|i| self.raw(i).map(<[u8]>::to_vec).unwrap_or_default())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_removed_slots() {
        let enc = encode(&[b"{\"a\":1}".to_vec(), Vec::new(), b"[]".to_vec()]);
        let v = BatchView::new(&enc).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v.raw(0), Some(&b"{\"a\":1}"[..]));
        assert_eq!(v.raw(1), None);
        assert_eq!(v.raw(2), Some(&b"[]"[..]));
        assert!(BatchView::new(&enc[..enc.len() - 1]).is_err());
        assert!(BatchView::new(&[1, 0]).is_err());
    }
}
