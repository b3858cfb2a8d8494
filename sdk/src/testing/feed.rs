//! Feeding an incremental detector events as the host does, in orders the fixture
//! harness does not: late arrivals, floods of oversized events.

use std::path::Path;

use super::{check_findings, fixture_files, Fixture, Limits, STATE_MAX_BYTES};
use crate::{AttributeValue, Context, Event, Finding, IncrementalDetector, Window};

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
    let (bytes, found) =
        crate::guest_v2::observe_bytes::<D>(state.as_deref(), std::slice::from_ref(new), &cx)
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
