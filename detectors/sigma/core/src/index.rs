//! Which rules can match an event, known before the rules are parsed again. Parsing a rule
//! costs tens of microseconds (its YAML), so a component that holds many rules learns, once
//! when it is built, what each rule requires of an event, and parses per call only the
//! rules an event can match. Over-approximates: a rule is skipped only when no event
//! without the required values can match it.
//!
//! The bound is on each source's discriminating field ([`key_field`]): a rule whose every
//! match needs `eventName` (CloudTrail), `eventType` (Okta) or `action` (the GitHub audit
//! log) to equal one of a few literals is a candidate only for events carrying one of them.

use std::collections::BTreeSet;

use rsigma_parser::{
    ConditionExpr, Detection, Detections, Quantifier, SelectorPattern, SigmaValue,
};

use crate::rules::{Rule, Target, WEBHOOK_FEED};
use crate::RAW_PREFIX;

/// The field that names what happened, for a rule's source: the one most rules select on.
pub fn key_field(t: &Target) -> Option<&'static str> {
    match (t.source, t.feed) {
        ("cloudtrail", _) => Some("eventName"),
        ("okta", _) => Some("eventType"),
        ("github", Some(WEBHOOK_FEED)) => None,
        ("github", Some(_)) => Some("action"),
        _ => None,
    }
}

/// The event's value of [`key_field`], lowercased (Sigma compares strings case-blind):
/// its raw record's when it has one, else its own attribute.
pub fn key_value(t: &Target, e: &plumbline_sdk::Event) -> Option<String> {
    let field = key_field(t)?;
    e.attr_str(&format!("{RAW_PREFIX}{field}"))
        .or_else(|| e.attr_str(field))
        .map(str::to_ascii_lowercase)
}

/// The values of its source's [`key_field`] (lowercased) one of which every event the rule
/// matches has; `None` when the rule is not bound so (it is a candidate for every event of
/// its source).
pub fn required_keys(rule: &Rule) -> Option<BTreeSet<String>> {
    let field = key_field(&rule.target)?;
    let d = &rule.parsed.detection;
    let mut all = BTreeSet::new();
    // Several conditions: a match of any is a match.
    for c in &d.conditions {
        all.extend(condition(d, c, field)?);
    }
    (!all.is_empty()).then_some(all)
}

fn condition(d: &Detections, c: &ConditionExpr, field: &str) -> Option<BTreeSet<String>> {
    match c {
        ConditionExpr::Identifier(name) => detection(d.named.get(name)?, field),
        // Every part holds: the bound of any bound part holds; take the narrowest.
        ConditionExpr::And(parts) => parts
            .iter()
            .filter_map(|p| condition(d, p, field))
            .min_by_key(BTreeSet::len),
        // One part holds: bound only if every part is.
        ConditionExpr::Or(parts) => union(parts.iter().map(|p| condition(d, p, field))),
        ConditionExpr::Not(_) => None,
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let named = d
                .named
                .iter()
                .filter(|(n, _)| match pattern {
                    SelectorPattern::Them => !n.starts_with('_'),
                    SelectorPattern::Pattern(p) => glob(p, n),
                })
                .map(|(_, x)| detection(x, field));
            match quantifier {
                Quantifier::All => named.flatten().min_by_key(BTreeSet::len),
                Quantifier::Any | Quantifier::Count(_) => union(named),
            }
        }
    }
}

fn detection(x: &Detection, field: &str) -> Option<BTreeSet<String>> {
    match x {
        Detection::AllOf(items) => items
            .iter()
            .filter(|i| i.field.name.as_deref() == Some(field) && i.field.modifiers.is_empty())
            .filter_map(|i| {
                i.values
                    .iter()
                    .map(|v| match v {
                        SigmaValue::String(s) => s.as_plain().map(|p| p.to_ascii_lowercase()),
                        _ => None,
                    })
                    .collect::<Option<BTreeSet<String>>>()
            })
            .min_by_key(BTreeSet::len),
        Detection::AnyOf(subs) => union(subs.iter().map(|s| detection(s, field))),
        _ => None,
    }
}

/// The union of bounds, or `None` if any part is unbound (or there are none).
fn union(parts: impl Iterator<Item = Option<BTreeSet<String>>>) -> Option<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let mut any = false;
    for p in parts {
        out.extend(p?);
        any = true;
    }
    any.then_some(out)
}

/// Sigma's selector patterns: `*` any run of characters.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

/// One event's [`key_value`]s, each worked out once: the many rules of one source share
/// its key field, and the value is a lower-cased copy.
pub struct Keys<'e> {
    event: &'e plumbline_sdk::Event,
    known: Vec<(&'static str, Option<String>)>,
}

impl<'e> Keys<'e> {
    pub fn of(event: &'e plumbline_sdk::Event) -> Keys<'e> {
        Keys {
            event,
            known: Vec::new(),
        }
    }

    fn value(&mut self, t: &Target) -> Option<&str> {
        let field = key_field(t)?;
        let at = match self.known.iter().position(|(f, _)| *f == field) {
            Some(at) => at,
            None => {
                self.known.push((field, key_value(t, self.event)));
                self.known.len() - 1
            }
        };
        self.known[at].1.as_deref()
    }
}

/// A rule as a component carries it, worked out when the component is built: its text,
/// where it reads, the key values it needs ([`required_keys`]; none: every event of its
/// source), and what its finding says — so a call parses only candidate rules, and answers
/// earlier matches without parsing at all.
pub struct Entry {
    pub doc: &'static str,
    pub source: &'static str,
    pub feed: Option<&'static str>,
    pub keys: &'static [&'static str],
    pub title: &'static str,
    pub id: Option<&'static str>,
    pub severity: u8,
    pub next_step: &'static str,
}

impl Entry {
    pub fn target(&self) -> Target {
        Target {
            source: self.source,
            feed: self.feed,
        }
    }

    /// Whether the rule can match the event `keys` looks at.
    pub fn candidate(&self, keys: &mut Keys<'_>) -> bool {
        let t = self.target();
        t.reads(keys.event)
            && (self.keys.is_empty() || keys.value(&t).is_some_and(|v| self.keys.contains(&v)))
    }

    /// The rule, parsed.
    pub fn rule(&self) -> Result<Rule, crate::RuleError> {
        match crate::rules::parse_rule(self.doc, self.title)? {
            crate::Parsed::Detection(r) => Ok(*r),
            crate::Parsed::Correlation(c) => Err(crate::RuleError {
                rule: c.label,
                why: crate::Why::NotDetection("a correlation, not a single-event rule".into()),
            }),
        }
    }

    /// The rule's finding on the event `event_id`.
    pub fn finding(&self, event_id: &str) -> plumbline_sdk::Finding {
        crate::rule_finding(
            self.title,
            &self.id.map(str::to_string),
            self.severity,
            self.next_step,
            event_id,
        )
    }
}

/// Rust source for the [`Entry`] of a detection rule whose YAML is `doc` (for build scripts:
/// `include!` the list they write).
pub fn entry_source(rule: &Rule, doc: &str) -> String {
    let keys: Vec<String> = required_keys(rule).into_iter().flatten().collect();
    format!(
        "plumbline_sigma::index::Entry {{ doc: {doc:?}, source: {:?}, feed: {:?}, keys: &{keys:?}, \
         title: {:?}, id: {:?}, severity: {}, next_step: {:?} }}",
        rule.target.source, rule.target.feed, rule.title, rule.id, rule.severity, rule.next_step
    )
}
