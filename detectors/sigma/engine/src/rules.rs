//! Sigma rules as data: split a multi-document YAML text into rules, say why a rule cannot
//! be taken, and map a rule's `logsource` onto the Plumbline source its events come from.
//! The component ([`crate::SigmaEngine`]) and `plumbline pack from-sigma` share this code,
//! so a rule the CLI takes is one the sandbox runs.

use std::fmt;

use rsigma_eval::{compile_rule, evaluate_rule, CompiledRule};
use rsigma_parser::{parse_sigma_yaml, Level};

/// Which events a rule reads, from its `logsource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The event's `source`.
    pub source: &'static str,
    /// The event's `source_feed` attribute, when one source has several feeds.
    pub feed: Option<&'static str>,
}

impl Target {
    /// `product`/`service` (lowercase) onto a source: `aws`/`cloudtrail` → `cloudtrail`,
    /// `okta`/`okta` → `okta`, `github`/`audit` → `github` (feed `audit-log`).
    pub fn of(product: Option<&str>, service: Option<&str>) -> Option<Target> {
        let t = |source, feed| Some(Target { source, feed });
        match (product?, service) {
            ("aws", Some("cloudtrail")) => t("cloudtrail", None),
            ("okta", None | Some("okta")) => t("okta", None),
            ("github", Some("audit")) => t("github", Some("audit-log")),
            _ => None,
        }
    }

    pub fn reads(&self, e: &plumbline_sdk::Event) -> bool {
        e.source == self.source
            && self
                .feed
                .is_none_or(|f| e.attr_str("source_feed") == Some(f))
    }
}

/// One rule, compiled.
pub struct Rule {
    /// `sigma.<id>` when the rule has one, else its title.
    pub label: String,
    pub title: String,
    pub id: Option<String>,
    /// 1 informational/low, 2 medium (and no level), 3 high/critical.
    pub severity: u8,
    pub next_step: String,
    pub target: Target,
    compiled: CompiledRule,
}

impl Rule {
    pub fn matches(&self, record: &serde_json::Value) -> bool {
        let event = rsigma_eval::event::JsonEvent::borrow(record);
        evaluate_rule(&self.compiled, &event).is_some()
    }
}

/// Why a rule was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    NotYaml(String),
    /// A YAML document that is not a Sigma detection rule (no `detection`, a filter, …).
    NotDetection(String),
    /// Correlation rules (`event_count`, `temporal`, …) are not run yet.
    Correlation,
    /// The parser or the compiler refused it (an unsupported modifier, a bad condition).
    Unsupported(String),
    /// Its `logsource` names no source Plumbline ingests.
    Logsource(String),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::NotYaml(e) => write!(f, "not YAML: {e}"),
            Why::NotDetection(e) => write!(f, "not a detection rule: {e}"),
            Why::Correlation => write!(f, "correlation rule (not supported yet)"),
            Why::Unsupported(e) => write!(f, "unsupported: {e}"),
            Why::Logsource(e) => write!(f, "logsource {e} maps to no Plumbline source"),
        }
    }
}

/// A rule that could not be taken: which (title, id, or its place) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub rule: String,
    pub why: Why,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sigma rule `{}`: {}", self.rule, self.why)
    }
}

/// The YAML documents of a text (split at `---` lines), without empty ones.
pub fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else {
            let d = docs.last_mut().expect("one");
            d.push_str(line);
            d.push('\n');
        }
    }
    docs.retain(|d| {
        d.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    docs
}

/// One document as a rule. `place` names it when it has neither title nor id.
pub fn parse_rule(doc: &str, place: &str) -> Result<Rule, RuleError> {
    let yaml: yaml_serde::Value = yaml_serde::from_str(doc).map_err(|e| RuleError {
        rule: place.to_string(),
        why: Why::NotYaml(e.to_string()),
    })?;
    let text = |k: &str| yaml.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let name = match (text("title"), text("id")) {
        (Some(t), Some(i)) => format!("{t} ({i})"),
        (Some(t), None) => t,
        (None, Some(i)) => i,
        (None, None) => place.to_string(),
    };
    let fail = |why| RuleError {
        rule: name.clone(),
        why,
    };
    if !yaml.is_mapping() {
        return Err(fail(Why::NotDetection("not a mapping".into())));
    }
    if yaml.get("correlation").is_some() {
        return Err(fail(Why::Correlation));
    }
    if yaml.get("filter").is_some() {
        return Err(fail(Why::NotDetection("a filter rule".into())));
    }
    if yaml.get("detection").is_none() {
        return Err(fail(Why::NotDetection("no `detection`".into())));
    }
    let collection = parse_sigma_yaml(doc).map_err(|e| fail(Why::Unsupported(e.to_string())))?;
    if let Some(e) = collection.errors.first() {
        return Err(fail(Why::Unsupported(e.clone())));
    }
    let [rule] = collection.rules.as_slice() else {
        return Err(fail(Why::NotDetection(format!(
            "{} detection rules in one document",
            collection.rules.len()
        ))));
    };
    let compiled = compile_rule(rule).map_err(|e| fail(Why::Unsupported(e.to_string())))?;
    let lower = |s: &Option<String>| s.as_deref().map(str::to_ascii_lowercase);
    let (product, service) = (
        lower(&rule.logsource.product),
        lower(&rule.logsource.service),
    );
    let target = Target::of(product.as_deref(), service.as_deref()).ok_or_else(|| {
        fail(Why::Logsource(format!(
            "product `{}` service `{}`",
            product.as_deref().unwrap_or("-"),
            service.as_deref().unwrap_or("-")
        )))
    })?;
    let severity = match rule.level {
        Some(Level::Informational | Level::Low) => 1,
        Some(Level::High | Level::Critical) => 3,
        Some(Level::Medium) | None => 2,
    };
    let next_step = if !rule.falsepositives.is_empty() {
        format!(
            "Rule out the known false positives: {}",
            rule.falsepositives.join("; ")
        )
    } else {
        rule.description
            .clone()
            .unwrap_or_else(|| "Check whether this was expected".into())
    };
    Ok(Rule {
        label: name,
        title: rule.title.clone(),
        id: rule.id.clone(),
        severity,
        next_step,
        target,
        compiled,
    })
}

/// Every rule of a multi-document text: the rules taken and, apart, the ones that were not.
pub fn parse_all(text: &str) -> (Vec<Rule>, Vec<RuleError>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for (i, doc) in documents(text).iter().enumerate() {
        match parse_rule(doc, &format!("document {}", i + 1)) {
            Ok(r) => rules.push(r),
            Err(e) => errors.push(e),
        }
    }
    (rules, errors)
}
