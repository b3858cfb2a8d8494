//! `plumbline-sigma`: Sigma rules run on Plumbline events (docs/packs.md, "Sigma rules").
//! Shared by the Sigma engine component (rules as config, packs made by
//! `plumbline pack from-sigma`), the built-in `single-event` pack (rules compiled in) and
//! the CLI, which checks rules with the same code the sandbox runs.
//!
//! - A rule reads the events of the source its `logsource` names ([`rules::Target`]) and
//!   matches the source record's own field names ([`record`]).
//! - A detection rule gives one finding per matching event: signal [`SIGNAL`], severity
//!   from `level`, the rule's title and id in the title, the event as evidence.
//! - A correlation rule (`event_count`, `value_count`, `temporal`, `temporal_ordered`, …)
//!   runs over the trajectory's events in time order, with its `timespan` and `group-by`;
//!   it gives one finding per (correlation, group) that fired, signal [`CORRELATION_SIGNAL`],
//!   citing the events that made it fire. Rules a correlation names raise nothing of their
//!   own unless it says `generate: true`.

pub mod correlate;
pub mod index;
pub mod rules;

use plumbline_sdk::*;
use serde_json::{Map, Value};

pub use rules::{parse_all, Correlation, Parsed, Rule, RuleError, RuleSet, Target, Why};

/// The signal of a detection rule's finding.
pub const SIGNAL: &str = "sigma.match";
/// The signal of a correlation rule's finding.
pub const CORRELATION_SIGNAL: &str = "sigma.correlation";
/// The prefix under which adapters keep the source record's own fields.
pub const RAW_PREFIX: &str = "raw.";
/// Most findings one call answers.
pub const MAX_FINDINGS: usize = 100;

/// Marks the detector-name slot in the Sigma engine component's bytes.
pub const NAME_MARKER: &[u8; 32] = b"plumbline:sigma-engine:name-slot";
/// Room for the name after the marker (zero-padded).
pub const NAME_ROOM: usize = 96;

/// The engine's component bytes with its detector name set to `name` (`pack from-sigma`:
/// the host calls `info()` before any config is given, so config cannot name it).
pub fn with_name(component: &[u8], name: &str) -> Result<Vec<u8>, String> {
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
    if name.is_empty() || name.len() > NAME_ROOM || !name.chars().all(valid) {
        return Err(format!(
            "detector name `{name}`: use 1-{NAME_ROOM} of a-z 0-9 - _ ."
        ));
    }
    let at: Vec<usize> = component
        .windows(NAME_MARKER.len())
        .enumerate()
        .filter(|(_, w)| *w == NAME_MARKER)
        .map(|(i, _)| i)
        .collect();
    let [at] = at.as_slice() else {
        return Err(format!(
            "not the Sigma engine component: its name slot is found {} times",
            at.len()
        ));
    };
    let mut out = component.to_vec();
    let room = &mut out[at + NAME_MARKER.len()..at + NAME_MARKER.len() + NAME_ROOM];
    room.fill(0);
    room[..name.len()].copy_from_slice(name.as_bytes());
    Ok(out)
}

/// The source record as the rules see it: `raw.<path>` attributes as `<path>`, then
/// every other attribute under its own name (a raw field wins a shared name). Adapters
/// flatten records (`a.b`, arrays as `a.0.b`); they are nested again here, so a rule's
/// `a.b` reaches every element of an array on the way (Sigma's any-member reading:
/// `commits.message` is any commit's message, `items.group` any item's group).
pub fn record(e: &Event) -> Value {
    let json = |v: &AttributeValue| match v {
        AttributeValue::Text(s) => Value::from(s.as_str()),
        AttributeValue::Integer(i) => Value::from(*i),
        AttributeValue::Float(f) => Value::from(*f),
        AttributeValue::Boolean(b) => Value::from(*b),
        AttributeValue::Null => Value::Null,
    };
    let mut root = Value::Object(Map::new());
    for (k, v) in &e.attributes {
        if let Some(path) = k.strip_prefix(RAW_PREFIX) {
            insert(&mut root, path, json(v));
        }
    }
    for (k, v) in &e.attributes {
        if !k.starts_with(RAW_PREFIX) {
            let Value::Object(m) = &mut root else {
                unreachable!("the root is an object")
            };
            let top = k.split('.').next().unwrap_or(k);
            if !m.contains_key(top) && !m.contains_key(k) {
                insert(&mut root, k, json(v));
            }
        }
    }
    finish_arrays(&mut root);
    root
}

/// Sets `path` (dot-separated) in `root`, making objects on the way. A segment that meets
/// a value already there keeps the rest of the path as one flat key, so nothing is lost.
fn insert(at: &mut Value, path: &str, v: Value) {
    let Value::Object(m) = at else { return };
    if let Some((head, tail)) = path.split_once('.') {
        let slot = m
            .entry(head.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if slot.is_object() {
            return insert(slot, tail, v);
        }
    }
    m.entry(path.to_string()).or_insert(v);
}

/// Objects whose keys are exactly `0..n` become arrays (adapters flatten arrays so).
fn finish_arrays(v: &mut Value) {
    let Value::Object(m) = v else { return };
    for x in m.values_mut() {
        finish_arrays(x);
    }
    let n = m.len();
    if n > 0 && (0..n).all(|i| m.contains_key(&i.to_string())) {
        let items = (0..n)
            .map(|i| m.remove(&i.to_string()).expect("checked"))
            .collect();
        *v = Value::Array(items);
    }
}

/// A detection rule's finding on one event (by its id).
pub fn detection_finding(r: &Rule, event_id: &str) -> Finding {
    rule_finding(&r.title, &r.id, r.severity, &r.next_step, event_id)
}

/// A detection rule's finding on one event, from what is known of the rule.
pub fn rule_finding(
    rule_title: &str,
    rule_id: &Option<String>,
    level: u8,
    next_step: &str,
    event_id: &str,
) -> Finding {
    Finding::new(
        SIGNAL,
        severity(level),
        title(format!("Sigma: {rule_title}{}", id(rule_id))),
    )
    .evidence_ids([event_id.to_string()])
    .score(0.8)
    .next_step(next_step)
}

fn severity(s: u8) -> Severity {
    match s {
        1 => Severity::Informational,
        2 => Severity::NeedsReview,
        _ => Severity::Urgent,
    }
}

fn id(id: &Option<String>) -> String {
    id.as_deref().map(|i| format!(" [{i}]")).unwrap_or_default()
}

/// One finding per event: when several rules match one event, the most severe speaks
/// for them and names how many others matched. (The host keeps one finding per detector,
/// signal and evidence in an alert, so two findings on one event would be one anyway —
/// whichever came first, not the most severe.) Order kept by first appearance.
pub fn one_per_event(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<(Finding, usize)> = Vec::new();
    for f in findings {
        match out
            .iter_mut()
            .find(|(o, _)| o.signal == f.signal && o.evidence == f.evidence)
        {
            Some((o, others)) => {
                *others += 1;
                if f.severity > o.severity {
                    *o = f;
                }
            }
            None => out.push((f, 0)),
        }
    }
    out.into_iter()
        .map(|(mut f, others)| {
            if others > 0 {
                f.title = title(format!("{} (+{others} more rule(s))", f.title));
            }
            f
        })
        .collect()
}

/// Every finding of `set` on a trajectory's events, judged in (time, id) order: each
/// event's record is built and its rules evaluated once, for the detection findings (at
/// most [`MAX_FINDINGS`], one per event) and the correlations alike (at most
/// [`MAX_FINDINGS`] in all).
pub fn findings(set: &RuleSet, events: &[Event]) -> Result<Vec<Finding>, AnalyzeError> {
    let mut correlator = match set.correlations.is_empty() {
        true => None,
        false => Some(correlate::Correlator::new(set)?),
    };
    let mut order: Vec<&Event> = events.iter().collect();
    order.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    let mut out = Vec::new();
    for e in order {
        let reading: Vec<&Rule> = set.rules.iter().filter(|r| r.target.reads(e)).collect();
        if reading.is_empty() {
            continue;
        }
        let rec = record(e);
        let mut detections = Vec::new();
        for r in reading {
            let Some(d) = r.evaluate(&rec) else { continue };
            if out.len() < MAX_FINDINGS && !set.correlation_only(r) {
                out.push(detection_finding(r, &e.id));
            }
            detections.push(d);
        }
        if let Some(c) = correlator.as_mut() {
            c.feed(e, rec, detections);
        }
    }
    let mut out = one_per_event(out);
    if let Some(c) = correlator {
        out.extend(c.findings());
        out.truncate(MAX_FINDINGS);
    }
    Ok(out)
}

/// The configured rules (config key `rules`), every one of them taken.
pub struct Rules(pub RuleSet);

impl FromConfig for Rules {
    fn from_config(cfg: &dyn ConfigSource) -> Result<Self, AnalyzeError> {
        let text = cfg.get("rules").unwrap_or_default();
        parse_strict(&text).map(Rules)
    }
}

/// Every rule of `text`, or an error naming the first that could not be taken.
pub fn parse_strict(text: &str) -> Result<RuleSet, AnalyzeError> {
    let (set, errors) = parse_all(text);
    if let Some(e) = errors.first() {
        let more = match errors.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        return Err(AnalyzeError::new(format!("{e}{more}")));
    }
    if set.is_empty() {
        return Err(AnalyzeError::new(
            "config `rules` holds no Sigma rule (give the rules' YAML)",
        ));
    }
    Ok(set)
}

#[cfg(test)]
mod tests;
