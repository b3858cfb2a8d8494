//! Tool calls remembered between an incremental detector's calls
//! (`plumbline:detector@0.2.0`).
//!
//! An incremental detector is given each event once, so the `requested` and `completed`
//! events of one call usually come in different calls. [`remember`] keeps one [`Memo`]
//! per call: the call's key, the events given so far (time, id, phase — not the events)
//! and what the detector made of the whole call. When a call's next event comes, its
//! earlier ones are read back through the lent history ([`History::find`]: where each
//! was last seen, a few reads), so the detector judges the whole call exactly
//! as [`calls`](super::calls) folds it in a trajectory. A late event (older than ones
//! already given) takes its place in (time, id) order.
//!
//! The inline verdict gate judges a pending call by observing a scratch copy of the state
//! with the call as a new event: the call is a new memo, pending, judged on its own.
//!
//! A call the detector makes nothing of is forgotten once it has run; while it is pending
//! it is kept (at most [`MAX_OPEN`]) so that its result joins it. [`forget_over`] bounds
//! the rest. What the trajectory's bound dropped is forgotten, and a call that lost an
//! event that way is judged again on what is left, as a 0.1.0 call would see it.

use std::collections::{BTreeMap, BTreeSet};

use plumbline_contract::{Event, Finding, TITLE_MAX};

use super::Call;

/// One event of a remembered call: its time, its id, whether it is a `requested` event
/// (a pre-tool hook's), and where it stood when last seen — its position counted from the
/// trajectory's first event ever (dropped ones included), where [`History::find`] looks
/// first.
pub type Step = (i64, String, bool, u64);

/// What an incremental detector keeps of one tool call, `(key, steps, facts)`: the call's
/// key (its `agent.session` and `tool.call_id`, or its lone event's id), its events given
/// so far in (time, id) order, and what the detector made of the whole call (`None`:
/// nothing). A plain tuple, so a detector's serde state holds it as it is; [`Remembered`]
/// names its parts.
pub type Memo<F> = (String, Vec<Step>, Option<F>);

/// Most calls kept only because they are pending, nothing made of them (a denied call
/// never completes): the oldest go first.
pub const MAX_OPEN: usize = 32;

/// The parts of a [`Memo`].
pub trait Remembered<F> {
    fn key(&self) -> &str;
    fn steps(&self) -> &[Step];
    fn facts(&self) -> Option<&F>;
    /// (time, id) of its first event: the call's place in the session.
    fn order(&self) -> (i64, &str);
    /// Only `requested` events given: the call has not run (yet).
    fn pending(&self) -> bool;
    /// Its event ids.
    fn ids(&self) -> impl Iterator<Item = &str>;
}

impl<F> Remembered<F> for Memo<F> {
    fn key(&self) -> &str {
        &self.0
    }

    fn steps(&self) -> &[Step] {
        &self.1
    }

    fn facts(&self) -> Option<&F> {
        self.2.as_ref()
    }

    fn order(&self) -> (i64, &str) {
        self.1
            .first()
            .map_or((i64::MIN, ""), |s| (s.0, s.1.as_str()))
    }

    fn pending(&self) -> bool {
        self.1.iter().all(|s| s.2)
    }

    fn ids(&self) -> impl Iterator<Item = &str> {
        self.1.iter().map(|s| s.1.as_str())
    }
}

/// An incremental call's trajectory by position (the SDK's `Context::history` and the
/// window's `len`, `dropped` and `start`), for reading back events given in earlier calls.
pub struct History<'a> {
    len: u32,
    dropped: u64,
    start: i64,
    read: &'a dyn Fn(u32, u32) -> Vec<Event>,
    /// The id of the first event it holds, read when first needed.
    first: std::cell::OnceCell<Option<String>>,
}

/// Once the search has narrowed to this many events, they are read in one go.
const PAGE: u32 = 4;

impl<'a> History<'a> {
    /// The trajectory of `len` events now, `dropped` dropped so far, the oldest it holds
    /// at `start` (unix nanoseconds), read by `read(start, count)`.
    pub fn new(
        len: u32,
        dropped: u64,
        start: i64,
        read: &'a dyn Fn(u32, u32) -> Vec<Event>,
    ) -> Self {
        History {
            len,
            dropped,
            start,
            read,
            first: std::cell::OnceCell::new(),
        }
    }

    /// Whether the event `(time, id)`, given earlier, is still held: not older than the
    /// first event the trajectory holds (its bound drops the oldest first). An event of
    /// the first event's time costs one read, once.
    pub fn holds(&self, time: i64, id: &str) -> bool {
        match time.cmp(&self.start) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => self
                .first
                .get_or_init(|| self.at(0).map(|e| e.id))
                .as_deref()
                .is_none_or(|first| id >= first),
        }
    }

    fn at(&self, position: u32) -> Option<Event> {
        (self.read)(position, 1).pop()
    }

    /// The event `(time, id)` and its position counted from the first event ever, if the
    /// trajectory still holds it. Looks where `hint` (such a position) says first, then
    /// gallops away from it and halves: history is in (time, id) order, so an event that
    /// stayed where it was costs one read, a call's request read back when its result
    /// comes (a few events back) a few.
    pub fn find(&self, time: i64, id: &str, hint: u64) -> Option<(Event, u64)> {
        if self.len == 0 {
            return None;
        }
        let target = (time, id);
        let found = |e: Event, p: u32| Some((e, u64::from(p) + self.dropped));
        let p = u32::try_from(hint.saturating_sub(self.dropped))
            .unwrap_or(u32::MAX)
            .min(self.len - 1);
        let e = self.at(p)?;
        // The target lies in [lo, hi).
        let (mut lo, mut hi);
        match (e.time, e.id.as_str()).cmp(&target) {
            std::cmp::Ordering::Equal => return found(e, p),
            std::cmp::Ordering::Less => {
                (lo, hi) = (p + 1, self.len);
                let mut step = 1u32;
                while let Some(q) = p.checked_add(step).filter(|q| *q < self.len) {
                    let e = self.at(q)?;
                    match (e.time, e.id.as_str()).cmp(&target) {
                        std::cmp::Ordering::Equal => return found(e, q),
                        std::cmp::Ordering::Less => lo = q + 1,
                        std::cmp::Ordering::Greater => {
                            hi = q;
                            break;
                        }
                    }
                    step = step.saturating_mul(2);
                }
            }
            std::cmp::Ordering::Greater => {
                (lo, hi) = (0, p);
                let mut step = 1u32;
                while let Some(q) = p.checked_sub(step) {
                    let e = self.at(q)?;
                    match (e.time, e.id.as_str()).cmp(&target) {
                        std::cmp::Ordering::Equal => return found(e, q),
                        std::cmp::Ordering::Greater => hi = q,
                        std::cmp::Ordering::Less => {
                            lo = q + 1;
                            break;
                        }
                    }
                    step = step.saturating_mul(2);
                }
            }
        }
        while hi - lo > PAGE {
            let mid = lo + (hi - lo) / 2;
            let e = self.at(mid)?;
            match (e.time, e.id.as_str()).cmp(&target) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Equal => return found(e, mid),
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        let page = (self.read)(lo, hi - lo);
        let i = page.iter().position(|e| e.id == id)?;
        let p = lo + i as u32;
        found(page.into_iter().nth(i)?, p)
    }

    /// The events of a remembered call the trajectory still holds, read back.
    pub fn recall(&self, steps: &[Step]) -> Vec<Event> {
        self.recall_at(steps).into_iter().map(|(e, _)| e).collect()
    }

    fn recall_at(&self, steps: &[Step]) -> Vec<(Event, u64)> {
        steps
            .iter()
            .filter_map(|s| self.find(s.0, &s.1, s.3))
            .collect()
    }
}

/// The key that folds a tool event into its call ([`Memo`]).
fn key_of(e: &Event) -> String {
    match e.attr_str("tool.call_id").filter(|id| !id.is_empty()) {
        Some(id) => format!("{}\n{id}", e.attr_str("agent.session").unwrap_or("")),
        None => format!("\n{}", e.id),
    }
}

/// Folds an incremental call's `new_events` into `memos` (kept in (time, id) order of
/// their first event): each tool event (not `agent.tool.decision`) joins its call, the
/// call's events given earlier are read back through `history`, and `judge` says what
/// the detector keeps of the whole call. An event the trajectory no longer holds (its
/// bound dropped it, [`History::holds`]) is left out, and a call left with none is
/// forgotten, as a 0.1.0 call on the trajectory would not see them. Answers the keys of
/// the calls judged.
pub fn remember<F>(
    memos: &mut Vec<Memo<F>>,
    new_events: &[Event],
    history: &History,
    mut judge: impl FnMut(&Call) -> Option<F>,
) -> Vec<String> {
    // Calls that lost events to the trajectory's bound are judged again on what is left.
    let mut shrunk: BTreeMap<String, Vec<Step>> = BTreeMap::new();
    memos.retain_mut(|m| {
        let before = m.1.len();
        m.1.retain(|s| history.holds(s.0, &s.1));
        if !m.1.is_empty() && m.1.len() != before {
            shrunk.insert(m.0.clone(), std::mem::take(&mut m.1));
        }
        !m.1.is_empty()
    });
    let mut groups: Vec<(String, Vec<&Event>)> = Vec::new();
    let mut at: BTreeMap<String, usize> = BTreeMap::new();
    for e in new_events {
        if !e.is("agent.tool.*") || e.is("agent.tool.decision") {
            continue;
        }
        let key = key_of(e);
        match at.get(&key) {
            Some(&i) => groups[i].1.push(e),
            None => {
                at.insert(key.clone(), groups.len());
                groups.push((key, vec![e]));
            }
        }
    }
    groups.extend(
        shrunk
            .keys()
            .filter(|k| !at.contains_key(*k))
            .map(|k| (k.clone(), Vec::new())),
    );
    // Where each new event stands at the latest: the last at the trajectory's end, the
    // one before it one further back, and so on (events of no interest may lie between).
    let end = u64::from(history.len) + history.dropped;
    let hint = |k: usize| end.saturating_sub((new_events.len() - k) as u64);
    let hints: BTreeMap<&str, u64> = new_events
        .iter()
        .enumerate()
        .map(|(k, e)| (e.id.as_str(), hint(k)))
        .collect();
    let mut judged = Vec::with_capacity(groups.len());
    for (key, new) in groups {
        let given: Vec<Step> = match shrunk.remove(&key) {
            Some(steps) => steps,
            None => match memos.iter().position(|m| m.0 == key) {
                Some(i) => memos.remove(i).1,
                None => Vec::new(),
            },
        };
        let given: Vec<Step> = given
            .into_iter()
            .filter(|s| !new.iter().any(|e| e.id == s.1))
            .collect();
        let earlier = history.recall_at(&given);
        let mut events: Vec<(&Event, u64)> = earlier
            .iter()
            .map(|(e, at)| (e, *at))
            .chain(
                new.iter()
                    .map(|e| (*e, hints.get(e.id.as_str()).copied().unwrap_or(end))),
            )
            .collect();
        events.sort_by(|a, b| (a.0.time, &a.0.id).cmp(&(b.0.time, &b.0.id)));
        events.dedup_by(|a, b| a.0.id == b.0.id);
        if events.is_empty() {
            continue;
        }
        let call = Call {
            events: events.iter().map(|(e, _)| *e).collect(),
        };
        let facts = judge(&call);
        let steps: Vec<Step> = events
            .iter()
            .map(|(e, at)| {
                let requested = e.attr_str("tool.phase") == Some("requested");
                (e.time, e.id.clone(), requested, *at)
            })
            .collect();
        let memo: Memo<F> = (key.clone(), steps, facts);
        if memo.2.is_some() || memo.pending() {
            let place = memos.partition_point(|m| m.order() < memo.order());
            memos.insert(place, memo);
        }
        judged.push(key);
    }
    judged
}

/// What the memos of one state may take, measured by their `Debug` text (no shorter than
/// their JSON, which the host bounds at 64 KiB per state by default): [`forget_over`]
/// keeps them under it whatever the calls carry (paths and command lines are up to 4 KiB).
pub const BUDGET: usize = 40 << 10;

/// Bounds `memos`: at most [`MAX_OPEN`] pending calls with nothing made of them (the
/// oldest go), and all under [`BUDGET`]. When over, the oldest go first among those
/// neither pending, nor cited by `findings`, nor `needed` (what later findings rest on:
/// a secret read, a switch-off); then among those neither pending nor `needed` (a cited
/// call: its finding goes with it, or cites less); then, still over, the oldest of all.
pub fn forget_over<F: std::fmt::Debug>(
    memos: &mut Vec<Memo<F>>,
    findings: &[Finding],
    needed: impl Fn(&Memo<F>) -> bool,
) {
    let cited: BTreeSet<&str> = findings
        .iter()
        .flat_map(|f| f.evidence.iter().map(String::as_str))
        .collect();
    let sizes: Vec<usize> = memos.iter().map(|m| format!("{m:?}").len()).collect();
    let mut total: usize = sizes.iter().sum();
    let mut keep = vec![true; memos.len()];
    let open = memos.iter().filter(|m| m.2.is_none()).count();
    let mut extra = open.saturating_sub(MAX_OPEN);
    // How much each memo is worth keeping: 3 = open (counted apart), 2 = pending or
    // needed, 1 = cited, 0 = nothing.
    let worth: Vec<u8> = memos
        .iter()
        .map(|m| {
            if m.2.is_none() {
                3
            } else if m.pending() || needed(m) {
                2
            } else {
                u8::from(m.ids().any(|id| cited.contains(id)))
            }
        })
        .collect();
    for (i, w) in worth.iter().enumerate() {
        if extra > 0 && *w == 3 {
            keep[i] = false;
            total -= sizes[i];
            extra -= 1;
        }
    }
    for below in [1, 2, 4] {
        for (i, w) in worth.iter().enumerate() {
            if total > BUDGET && keep[i] && *w < below {
                keep[i] = false;
                total -= sizes[i];
            }
        }
    }
    let mut k = keep.into_iter();
    memos.retain(|_| k.next().unwrap_or(true));
}

/// The event ids of `memos`, in (time, id) order, each once: a finding's evidence.
pub fn cite<F>(memos: &[&Memo<F>]) -> Vec<String> {
    let mut steps: Vec<&Step> = memos.iter().flat_map(|m| m.1.iter()).collect();
    steps.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    steps.dedup_by(|a, b| a.1 == b.1);
    steps.into_iter().map(|s| s.1.clone()).collect()
}

/// What a title can show of `text`: its first [`TITLE_MAX`] characters (a title is cut
/// there), so a state keeps no more of a text that only goes into titles.
pub fn for_title(text: &str) -> String {
    text.chars().take(TITLE_MAX).collect()
}
