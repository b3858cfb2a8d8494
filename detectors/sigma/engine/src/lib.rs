//! `sigma-engine`: runs Sigma rules, given as data, on every event of a trajectory
//! (docs/packs.md, "Sigma rules"). Not a built-in pack: `plumbline pack from-sigma` puts
//! this component in a pack with the rules as its `rules` config value.
//!
//! - A rule reads the events of the source its `logsource` names ([`rules::Target`]) and
//!   matches the source record's own field names: the attributes an adapter keeps under
//!   `raw.` (CloudTrail, Okta) by the name after the prefix, every other attribute by its
//!   own name (the GitHub audit log keeps its entry's fields so).
//! - One finding per matching (rule, event): signal `sigma.match` (one fixed signal: a
//!   component declares its signals before it sees any config), severity from `level`,
//!   the rule's title and id in the finding's title, the event as evidence.
//! - The detector's name is the pack's: `pack from-sigma` writes it into [`NAME_SLOT`]
//!   (the host calls `info()` before any config is given, so config cannot name it).
//! - A rule that does not parse fails every call with an error naming it; a pack's
//!   fixtures run at install, so such a pack is refused then.

pub mod rules;

use plumbline_sdk::*;
use serde_json::{Map, Value};

pub use rules::{parse_all, Rule, RuleError, Target, Why};

/// The one signal every Sigma finding carries.
pub const SIGNAL: &str = "sigma.match";
/// The detector's name when no pack has named it.
pub const DEFAULT_NAME: &str = "sigma.rules";
/// The prefix under which adapters keep the source record's own fields.
pub const RAW_PREFIX: &str = "raw.";

/// Marks [`NAME_SLOT`] in the component's bytes.
pub const NAME_MARKER: &[u8; 32] = b"plumbline:sigma-engine:name-slot";
/// Room for the name after the marker (zero-padded).
pub const NAME_ROOM: usize = 96;

const fn slot() -> [u8; 32 + NAME_ROOM] {
    let mut s = [0u8; 32 + NAME_ROOM];
    let mut i = 0;
    while i < 32 {
        s[i] = NAME_MARKER[i];
        i += 1;
    }
    let name = DEFAULT_NAME.as_bytes();
    let mut j = 0;
    while j < name.len() {
        s[32 + j] = name[j];
        j += 1;
    }
    s
}

/// The marker, then the detector's name (zero-padded). `from-sigma` rewrites the name in
/// the component's bytes ([`with_name`]); read volatile so the compiler keeps the bytes.
#[used]
pub static NAME_SLOT: [u8; 32 + NAME_ROOM] = slot();

/// The name in [`NAME_SLOT`].
pub fn detector_name() -> String {
    // SAFETY: a plain read of an initialised static.
    let s = unsafe { std::ptr::read_volatile(&NAME_SLOT) };
    let name = &s[32..];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(&name[..end]).into_owned()
}

/// The engine's component bytes with its detector name set to `name`.
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

/// The source record as the rules see it: `raw.<field>` attributes as `<field>`, then
/// every other attribute under its own name (a raw field wins a shared name).
pub fn record(e: &Event) -> Value {
    let json = |v: &AttributeValue| match v {
        AttributeValue::Text(s) => Value::from(s.as_str()),
        AttributeValue::Integer(i) => Value::from(*i),
        AttributeValue::Float(f) => Value::from(*f),
        AttributeValue::Boolean(b) => Value::from(*b),
        AttributeValue::Null => Value::Null,
    };
    let mut m = Map::new();
    for (k, v) in &e.attributes {
        if let Some(field) = k.strip_prefix(RAW_PREFIX) {
            m.insert(field.to_string(), json(v));
        }
    }
    for (k, v) in &e.attributes {
        if !k.starts_with(RAW_PREFIX) && !m.contains_key(k) {
            m.insert(k.clone(), json(v));
        }
    }
    Value::Object(m)
}

/// The configured rules, parsed once per call.
pub struct Rules(pub Vec<Rule>);

impl FromConfig for Rules {
    fn from_config(cfg: &dyn ConfigSource) -> Result<Self, AnalyzeError> {
        let text = cfg.get("rules").unwrap_or_default();
        let (rules, errors) = parse_all(&text);
        if let Some(e) = errors.first() {
            let more = match errors.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            return Err(AnalyzeError::new(format!("{e}{more}")));
        }
        if rules.is_empty() {
            return Err(AnalyzeError::new(
                "config `rules` holds no Sigma rule (give the rules' YAML)",
            ));
        }
        Ok(Rules(rules))
    }
}

#[derive(Default)]
pub struct SigmaEngine;

impl Detector for SigmaEngine {
    fn info() -> Info {
        Info::new(
            &detector_name(),
            env!("CARGO_PKG_VERSION"),
            "Sigma rules, run on each event of the source their logsource names",
        )
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL])
        .config(
            "rules",
            "",
            "The Sigma rules: their YAML, several as one multi-document text",
        )
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let rules = cx.settings::<Rules>()?;
        let mut out = Vec::new();
        for e in &t.events {
            let mut reading = rules.0.iter().filter(|r| r.target.reads(e)).peekable();
            if reading.peek().is_none() {
                continue;
            }
            let rec = record(e);
            for r in reading.filter(|r| r.matches(&rec)) {
                let sev = match r.severity {
                    1 => Severity::Informational,
                    2 => Severity::NeedsReview,
                    _ => Severity::Urgent,
                };
                let id =
                    r.id.as_deref()
                        .map(|i| format!(" [{i}]"))
                        .unwrap_or_default();
                out.push(
                    Finding::new(SIGNAL, sev, title(format!("Sigma: {}{id}", r.title)))
                        .evidence([e])
                        .score(0.8)
                        .next_step(r.next_step.clone()),
                );
                if out.len() >= 100 {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }
}

register_detector!(SigmaEngine);

#[cfg(test)]
mod tests;
