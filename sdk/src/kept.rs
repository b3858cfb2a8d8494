//! An incremental detector's state records (`IncrementalDetector::State`): kept in
//! (time, id) order, each event once, bounded in count and bytes, and forgotten once the
//! trajectory has dropped their events — what every port to 0.2.0 needs of its lists.

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

/// [`Record`] for structs whose event's time and id are the fields `t` and `id`.
#[doc(hidden)]
#[macro_export]
macro_rules! __kept_record {
    ($($t:ty),*) => {$(
        impl $crate::kept::Record for $t {
            fn at(&self) -> (i64, &str) {
                (self.t, &self.id)
            }
        }
    )*};
}
pub use crate::__kept_record as record;

/// Inserts `new` into `kept` in (time, id) order, once each (a late event can be older than
/// ones already kept), then drops the oldest while more than `max` are kept or they weigh
/// more than `budget` bytes. The records dropped, oldest first.
pub fn fold<T: Record>(
    kept: &mut Vec<T>,
    new: impl IntoIterator<Item = T>,
    max: usize,
    budget: usize,
) -> Vec<T> {
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
    kept.drain(..over).collect()
}

/// Drops the records of events older than the trajectory's first (its bound dropped them,
/// oldest first): a 0.1.0 call would not see them either. How many were dropped.
pub fn prune<T: Record>(kept: &mut Vec<T>, cx: &crate::Context) -> usize {
    let Some(start) = cx.window().map(|w| w.start) else {
        return 0;
    };
    let before = kept.len();
    kept.retain(|r| r.at().0 >= start);
    before - kept.len()
}

/// The length of `r`'s `Debug` form, counted as it is written (no string is built: every
/// call weighs every kept record).
fn weigh<T: Debug>(r: &T) -> usize {
    struct Count(usize);
    impl std::fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut n = Count(0);
    let _ = std::fmt::Write::write_fmt(&mut n, format_args!("{r:?}"));
    n.0
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

#[cfg(test)]
mod tests {
    use crate::{Context, Info, TrajectoryKind, Window};

    use super::{fold, prune, text, Record};

    #[derive(Debug)]
    struct R(i64, &'static str);

    impl Record for R {
        fn at(&self) -> (i64, &str) {
            (self.0, self.1)
        }
    }

    fn ids(rs: &[R]) -> Vec<&str> {
        rs.iter().map(|r| r.1).collect()
    }

    #[test]
    fn records_are_kept_in_order_once_bounded_and_pruned() {
        let mut kept = vec![R(2, "b")];
        let dropped = fold(&mut kept, [R(3, "c"), R(1, "a"), R(2, "b")], 2, usize::MAX);
        assert_eq!((ids(&dropped), ids(&kept)), (vec!["a"], vec!["b", "c"]));
        let one = format!("{:?}", R(4, "d")).len();
        let dropped = fold(&mut kept, [R(4, "d")], 10, 2 * one);
        assert_eq!((ids(&dropped), ids(&kept)), (vec!["b"], vec!["c", "d"]));
        let window = |start| Window {
            id: "t".into(),
            kind: TrajectoryKind::Actor,
            key: "k".into(),
            start,
            end: 4,
            dropped: 1,
            len: 1,
            replay: false,
        };
        let info = Info::new("t.x", "1", "");
        let cx = Context::native_incremental(&info, &Default::default(), 0, window(4), vec![]);
        assert_eq!(prune(&mut kept, &cx), 1);
        assert_eq!(ids(&kept), ["d"]);
        assert_eq!(text("a\u{7}b").len(), 2);
        assert_eq!(text(&"é".repeat(300)).len(), 400);
    }
}
