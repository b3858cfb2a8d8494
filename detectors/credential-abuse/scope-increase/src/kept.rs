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

/// [`Record`] for structs whose event's time and id are the fields `t` and `id`.
macro_rules! record {
    ($($t:ty),*) => {$(
        impl $crate::kept::Record for $t {
            fn at(&self) -> (i64, &str) {
                (self.t, &self.id)
            }
        }
    )*};
}
pub(crate) use record;

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
pub fn prune<T: Record>(kept: &mut Vec<T>, cx: &plumbline_sdk::Context) -> usize {
    let Some(start) = cx.window().map(|w| w.start) else {
        return 0;
    };
    let before = kept.len();
    kept.retain(|r| r.at().0 >= start);
    before - kept.len()
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

/// The tests of every ported detector `$d`: its fixtures fed one event at a time and all
/// at once (the SDK's harness), and fed newest first (every event but the first late).
#[cfg(test)]
macro_rules! fixture_tests {
    ($d:ty) => {
        const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

        #[test]
        fn fixtures() {
            plumbline_sdk::testing::run_incremental_fixtures::<$d>(FIXTURES);
        }

        #[test]
        fn fixtures_arriving_newest_first() {
            $crate::kept::feed::every_fixture_backwards::<$d>(FIXTURES);
        }
    };
}
#[cfg(test)]
pub(crate) use fixture_tests;

/// Feeding a detector events as the host does, in orders the fixture harness does not.
#[cfg(test)]
pub mod feed {
    use std::path::Path;

    use plumbline_sdk::testing::{check_findings, fixture_files, Fixture, Limits, STATE_MAX_BYTES};
    use plumbline_sdk::{AttributeValue, Context, Event, Finding, IncrementalDetector, Window};

    /// One call with one new event and the state left by the previous one, `history` being
    /// the trajectory so far and `start` its first event's time; the state must stay under
    /// the host's bound. The findings and the ids read through history.
    fn call<D: IncrementalDetector>(
        f: &Fixture,
        state: &mut Option<Vec<u8>>,
        new: &Event,
        history: Vec<Event>,
        start: i64,
    ) -> (Vec<Finding>, Vec<String>) {
        let window = Window {
            id: f.trajectory.id.clone(),
            kind: f.trajectory.kind,
            key: f.trajectory.key.clone(),
            start,
            end: history.last().map_or(new.time, |e| e.time),
            dropped: 0,
            len: history.len() as u32,
            replay: state.is_none(),
        };
        let cx = Context::native_incremental(&D::info(), &f.config, f.now(), window, history);
        let (bytes, found) = plumbline_sdk::guest_v2::observe_bytes::<D>(
            state.as_deref(),
            std::slice::from_ref(new),
            &cx,
        )
        .unwrap();
        assert!(
            bytes.len() <= STATE_MAX_BYTES,
            "state of {} bytes",
            bytes.len()
        );
        *state = Some(bytes);
        (found, cx.history_read())
    }

    /// Feeds `f`'s events (ids) in the order they arrive — late ones too — one call each,
    /// the history being the events arrived so far in (time, id) order, and checks every
    /// answer against the contract: evidence only of events given or read. Each call's
    /// findings (events the detector does not read make no call).
    pub fn arrive<D: IncrementalDetector>(f: &Fixture, order: &[&str]) -> Vec<Vec<Finding>> {
        let info = D::info();
        let (mut state, mut given, mut answers) = (None, Vec::new(), Vec::new());
        let mut arrived: Vec<Event> = Vec::new();
        for id in order {
            let e = f.trajectory.events.iter().find(|e| e.id == *id).unwrap();
            arrived.push(e.clone());
            arrived.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
            if !info.reads_event(&e.source, &e.action) {
                continue;
            }
            let (found, read) = call::<D>(f, &mut state, e, arrived.clone(), arrived[0].time);
            given.push(e.id.clone());
            given.extend(read);
            let ids = given.iter().map(String::as_str);
            check_findings(&info, ids, &Limits::default(), &found).unwrap();
            answers.push(found);
        }
        answers
    }

    /// Every fixture in `dir` with the events it reads arriving newest first (each one late
    /// but the first): the last answer must meet the fixture's expectations.
    pub fn every_fixture_backwards<D: IncrementalDetector>(dir: &str) {
        let info = D::info();
        let mut failed = Vec::new();
        for path in fixture_files(Path::new(dir)).unwrap() {
            let f: Fixture = Fixture::load(&path).unwrap();
            let order: Vec<&str> = f
                .trajectory
                .events
                .iter()
                .rev()
                .filter(|e| info.reads_event(&e.source, &e.action))
                .map(|e| e.id.as_str())
                .collect();
            let last = arrive::<D>(&f, &order).pop().unwrap_or_default();
            if let Err(e) = f.compare(&last) {
                failed.push(format!("{}: {e}", path.display()));
            }
        }
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }

    /// Feeds `n` copies of `f`'s event `id`, one call each (every state under the host's
    /// bound): each with a 500-byte id, a second later than the one before, and every text
    /// 8 KiB long. The last findings.
    pub fn flood<D: IncrementalDetector>(f: &Fixture, id: &str, n: i64) -> Vec<Finding> {
        let first = f.trajectory.events.iter().find(|e| e.id == id).unwrap();
        let long = |s: &str| s.repeat(8192 / s.len().max(1) + 1);
        let (mut state, mut last) = (None, Vec::new());
        for i in 0..n {
            let mut e = first.clone();
            e.id = format!("{i:0>500}");
            e.time += i * 1_000_000_000;
            e.system = long(&e.system);
            e.actor.display = long(&e.actor.display);
            for v in e.attributes.values_mut() {
                if let AttributeValue::Text(s) = v {
                    *s = long(s);
                }
            }
            last = call::<D>(f, &mut state, &e, Vec::new(), first.time).0;
        }
        last
    }

    /// After a [`flood`]: findings, at most the host's default 100, one of them citing the
    /// newest copy first (not every detector's: env-crossing cites the oldest it keeps).
    #[allow(dead_code)]
    pub fn newest_kept(found: &[Finding]) {
        assert!(
            !found.is_empty() && found.len() <= 100,
            "{} findings",
            found.len()
        );
        assert!(
            found.iter().any(|f| f.evidence[0].ends_with("299")),
            "the newest kept"
        );
    }

    /// The fixture `name` of `dir`.
    pub fn load(dir: &str, name: &str) -> Fixture {
        Fixture::load(&Path::new(dir).join(name)).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use plumbline_sdk::{Context, Info, TrajectoryKind, Window};

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
