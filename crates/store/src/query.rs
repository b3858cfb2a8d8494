//! Time-ordered event scans through the pointing indexes, with cursor pagination.

use std::collections::HashMap;

use super::batch::BatchView;
use super::keys::{self, EventRef};
use super::{Store, StoreError};
use plumbline_event::{Event, Source};

/// Filters of `GET /v1/events`. All present filters must match.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub actor: Option<String>,
    pub system: Option<String>,
    pub source: Option<Source>,
    /// Inclusive lower bound, unix nanoseconds.
    pub since: Option<i64>,
    /// Exclusive upper bound, unix nanoseconds.
    pub until: Option<i64>,
    pub limit: usize,
    /// Resume after this (time, id), from a previous page's `next_cursor`.
    pub after: Option<(i64, String)>,
}

#[derive(Debug, Clone)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// Present when more events may follow.
    pub next_cursor: Option<(i64, String)>,
}

impl Store {
    /// Events matching the query, ordered by (time, id).
    pub fn query(&self, q: &EventQuery) -> Result<EventPage, StoreError> {
        let t = &self.inner;
        let (tree, prefix) = if let Some(a) = &q.actor {
            (&t.by_actor, keys::field_prefix(a))
        } else if let Some(s) = &q.system {
            (&t.by_system, keys::field_prefix(s))
        } else if let Some(s) = q.source {
            (&t.by_source, keys::field_prefix(s.as_str()))
        } else {
            (&t.by_time, Vec::new())
        };
        let since = q
            .after
            .as_ref()
            .map(|(n, _)| *n)
            .max(q.since)
            .unwrap_or(i64::MIN);
        let mut start = prefix.clone();
        start.extend_from_slice(&keys::ordered_i64(keys::minute_of(since)));
        let mut end = prefix.clone();
        match q.until {
            Some(u) => {
                end.extend_from_slice(&keys::ordered_i64(keys::minute_of(u.saturating_sub(1)) + 1))
            }
            None => end.extend_from_slice(&[0xff; 9]),
        }
        let limit = q.limit.max(1);
        let mut batches: HashMap<u64, Option<sled::IVec>> = HashMap::new();
        let mut out: Vec<Event> = Vec::new();
        let mut minute_group: Vec<Event> = Vec::new();
        let mut current_minute = None;
        let mut more = false;
        for item in tree.range(start..end) {
            let (k, v) = item?;
            let Some((minute, seq)) = keys::split_index_key(&k) else {
                continue;
            };
            if current_minute != Some(minute) {
                flush_group(&mut minute_group, &mut out, q);
                if out.len() >= limit {
                    more = true;
                    break;
                }
                current_minute = Some(minute);
            }
            let bytes = match batches.get(&seq) {
                Some(b) => b.clone(),
                None => {
                    let b = t.batches.get(seq.to_be_bytes())?;
                    batches.insert(seq, b.clone());
                    b
                }
            };
            let Some(bytes) = bytes else { continue };
            let view = BatchView::new(&bytes)?;
            for slot in keys::decode_slots(&v) {
                let Some(ev) = view.event(slot as usize) else {
                    continue;
                };
                if matches(&ev, q) && self.is_claimed(&ev.id, EventRef { seq, slot })? {
                    minute_group.push(ev);
                }
            }
        }
        flush_group(&mut minute_group, &mut out, q);
        if out.len() > limit {
            out.truncate(limit);
            more = true;
        }
        let next_cursor = if more {
            out.last().map(|e| (e.time_nanos(), e.id.clone()))
        } else {
            None
        };
        Ok(EventPage {
            events: out,
            next_cursor,
        })
    }

    /// An event counts only where its id points: a batch written just before a crash,
    /// whose ids were never claimed, stays invisible.
    pub(super) fn is_claimed(&self, id: &str, at: EventRef) -> Result<bool, StoreError> {
        Ok(self.locate(id)? == Some(at))
    }
}

fn matches(e: &Event, q: &EventQuery) -> bool {
    let n = e.time_nanos();
    q.actor.as_ref().is_none_or(|a| &e.actor.id == a)
        && q.system.as_ref().is_none_or(|s| &e.system == s)
        && q.source.is_none_or(|s| e.source == s)
        && q.since.is_none_or(|s| n >= s)
        && q.until.is_none_or(|u| n < u)
        && q.after
            .as_ref()
            .is_none_or(|(an, aid)| (n, e.id.as_str()) > (*an, aid.as_str()))
}

fn flush_group(group: &mut Vec<Event>, out: &mut Vec<Event>, _q: &EventQuery) {
    group.sort_by(|a, b| (a.time_nanos(), &a.id).cmp(&(b.time_nanos(), &b.id)));
    out.append(group);
}
