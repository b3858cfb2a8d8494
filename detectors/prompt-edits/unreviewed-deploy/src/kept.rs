//! The state's records: kept in (time, id) order, each event once, and bounded.

use std::fmt::Debug;

/// Most bytes of records one list of a state keeps, by their `Debug` form — at least as
/// long as their JSON, since [`text`] drops control characters — so the state stays under
/// the host's 64 KiB per state (`runtime.state_max_bytes`) whatever the events carry.
pub const BUDGET: usize = 48 << 10;

/// Most bytes kept of one text (a name, a scope list).
const MAX_TEXT: usize = 400;

/// A record of one event.
pub trait Record: Debug {
    /// Its event's (time, id).
    fn at(&self) -> (i64, &str);
}

/// Inserts `new` into `kept` in (time, id) order, once each (a late event can be older than
/// ones already kept), then drops the oldest while more than `max` are kept or they weigh
/// more than `budget` bytes.
pub fn fold<T: Record>(
    kept: &mut Vec<T>,
    new: impl IntoIterator<Item = T>,
    max: usize,
    budget: usize,
) {
    kept.extend(new);
    kept.sort_by(|a, b| a.at().cmp(&b.at()));
    kept.dedup_by(|a, b| a.at().1 == b.at().1);
    let mut weight: usize = kept.iter().map(weigh).sum();
    let mut over = kept.len().saturating_sub(max);
    for r in &kept[..over] {
        weight -= weigh(r);
    }
    while weight > budget && over < kept.len() {
        weight -= weigh(&kept[over]);
        over += 1;
    }
    kept.drain(..over);
}

fn weigh<T: Debug>(r: &T) -> usize {
    format!("{r:?}").len()
}

/// `s` without control characters, cut to [`MAX_TEXT`] bytes on a character boundary.
pub fn text(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_TEXT {
            break;
        }
        out.push(c);
    }
    out
}

/// Feeds a detector `n` copies of an event, one call at a time with the state carried as
/// bytes: each copy with a 500-byte id and every text 8 KiB long.
#[cfg(test)]
pub fn flood<D: plumbline_sdk::IncrementalDetector>(
    e: &plumbline_sdk::Event,
    n: i64,
) -> (usize, Vec<plumbline_sdk::Finding>) {
    use plumbline_sdk::{AttributeValue, Context, TrajectoryKind, Window};
    let long = |s: &str| s.repeat(8192 / s.len().max(1) + 1);
    let (mut state, mut largest, mut last) = (None::<Vec<u8>>, 0, Vec::new());
    for i in 0..n {
        let mut e = e.clone();
        e.id = format!("{i:0>500}");
        e.time += i * 1_000_000_000;
        e.system = long(&e.system);
        e.actor.display = long(&e.actor.display);
        for v in e.attributes.values_mut() {
            if let AttributeValue::Text(s) = v {
                *s = long(s);
            }
        }
        let window = Window {
            id: "flood".into(),
            kind: TrajectoryKind::Actor,
            key: "flood".into(),
            start: e.time,
            end: e.time,
            dropped: 0,
            len: 1,
            replay: state.is_none(),
        };
        let cx =
            Context::native_incremental(&D::info(), &Default::default(), e.time, window, vec![]);
        let events = [e];
        let (bytes, findings) =
            plumbline_sdk::guest_v2::observe_bytes::<D>(state.as_deref(), &events, &cx).unwrap();
        largest = largest.max(bytes.len());
        state = Some(bytes);
        last = findings;
    }
    (largest, last)
}
