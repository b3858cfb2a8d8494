//! Sigma rules as data: split a multi-document YAML text into detection and correlation
//! rules, say why a rule cannot be taken, and map a rule's `logsource` onto the Plumbline
//! source its events come from. The components and `plumbline pack from-sigma` share this
//! code, so a rule the CLI takes is one the sandbox runs.

use std::fmt;

use rsigma_eval::correlation::compile_correlation;
use rsigma_eval::{compile_rule, evaluate_rule, CompiledRule, EvaluationResult};
use rsigma_parser::{parse_sigma_yaml, CorrelationRule, Level, SigmaRule};

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
    /// `okta`/`okta` → `okta`, `github`/`audit` → `github` (feed `audit-log`),
    /// `github`/`webhook` → `github` (feed [`WEBHOOK_FEED`]: the repository and organization
    /// webhooks, whose payload the adapter keeps under `raw.`).
    pub fn of(product: Option<&str>, service: Option<&str>) -> Option<Target> {
        let t = |source, feed| Some(Target { source, feed });
        match (product?, service) {
            ("aws", Some("cloudtrail")) => t("cloudtrail", None),
            ("okta", None | Some("okta")) => t("okta", None),
            ("github", Some("audit")) => t("github", Some("audit-log")),
            ("github", Some("webhook")) => t("github", Some(WEBHOOK_FEED)),
            _ => None,
        }
    }

    pub fn reads(&self, e: &plumbline_sdk::Event) -> bool {
        if e.source != self.source {
            return false;
        }
        let feed = e.attr_str("source_feed");
        match self.feed {
            None => true,
            // Webhook deliveries carry no feed name of their own, and a delivery's record
            // is on its first event only (the derived events repeat some of its fields).
            Some(WEBHOOK_FEED) => feed.is_none() && e.attributes.contains_key("raw.sha256"),
            Some(f) => feed == Some(f),
        }
    }
}

/// The name [`Target::of`] gives GitHub's webhooks (their events have no `source_feed`).
pub const WEBHOOK_FEED: &str = "webhook";

/// One detection rule, compiled.
pub struct Rule {
    /// `title (id)`, the title, the id, or its place in the text.
    pub label: String,
    pub title: String,
    pub id: Option<String>,
    /// The rule's `name`, by which a correlation may refer to it.
    pub name: Option<String>,
    /// 1 informational/low, 2 medium (and no level), 3 high/critical.
    pub severity: u8,
    pub next_step: String,
    pub target: Target,
    pub(crate) parsed: SigmaRule,
    compiled: CompiledRule,
}

impl Rule {
    pub fn matches(&self, record: &serde_json::Value) -> bool {
        self.evaluate(record).is_some()
    }

    pub(crate) fn evaluate(&self, record: &serde_json::Value) -> Option<EvaluationResult> {
        let event = rsigma_eval::event::JsonEvent::borrow(record);
        evaluate_rule(&self.compiled, &event)
    }

    /// Whether a correlation names this rule (by id or name).
    fn named_by(&self, reference: &str) -> bool {
        named(&self.id, &self.name, reference)
    }
}

/// Whether a rule or correlation of this id and name is the one `reference` names.
fn named(id: &Option<String>, name: &Option<String>, reference: &str) -> bool {
    id.as_deref() == Some(reference) || name.as_deref() == Some(reference)
}

/// One correlation rule (`event_count`, `value_count`, `temporal`, …), checked.
pub struct Correlation {
    pub label: String,
    pub title: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub severity: u8,
    pub next_step: String,
    /// The rules it aggregates, by id or name.
    pub rules: Vec<String>,
    /// Whether the rules it aggregates also raise findings of their own (`generate`).
    pub generate: bool,
    pub(crate) parsed: CorrelationRule,
}

/// A text's rules: the detection rules, then the correlations over them.
#[derive(Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub correlations: Vec<Correlation>,
}

impl RuleSet {
    pub fn len(&self) -> usize {
        self.rules.len() + self.correlations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `rule` only feeds correlations: Sigma's default (`generate: false`) keeps
    /// a rule a correlation names from raising findings of its own.
    pub fn correlation_only(&self, rule: &Rule) -> bool {
        let mut naming = self
            .correlations
            .iter()
            .filter(|c| c.rules.iter().any(|r| rule.named_by(r)))
            .peekable();
        naming.peek().is_some() && naming.all(|c| !c.generate)
    }
}

/// One document, taken.
pub enum Parsed {
    Detection(Box<Rule>),
    Correlation(Box<Correlation>),
}

/// Why a rule was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    NotYaml(String),
    /// A YAML document that is not a Sigma detection rule (no `detection`, a filter, …).
    NotDetection(String),
    /// A correlation names a rule the text does not hold.
    Reference(String),
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
            Why::Reference(r) => write!(
                f,
                "correlation names rule `{r}`, which is not among the rules taken"
            ),
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

/// One document as a rule. `place` names it when it has neither title nor id. A
/// correlation is checked on its own here; whether the rules it names are there is
/// [`parse_all`]'s to say.
pub fn parse_rule(doc: &str, place: &str) -> Result<Parsed, RuleError> {
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
    if yaml.get("filter").is_some() {
        return Err(fail(Why::NotDetection("a filter rule".into())));
    }
    let correlation = yaml.get("correlation").is_some();
    if !correlation && yaml.get("detection").is_none() {
        return Err(fail(Why::NotDetection("no `detection`".into())));
    }
    let collection = parse_sigma_yaml(doc).map_err(|e| fail(Why::Unsupported(e.to_string())))?;
    if let Some(e) = collection.errors.first() {
        return Err(fail(Why::Unsupported(e.clone())));
    }
    if correlation {
        let [c] = collection.correlations.as_slice() else {
            return Err(fail(Why::NotDetection("not one correlation rule".into())));
        };
        compile_correlation(c).map_err(|e| fail(Why::Unsupported(e.to_string())))?;
        return Ok(Parsed::Correlation(Box::new(Correlation {
            label: name.clone(),
            title: c.title.clone(),
            id: c.id.clone(),
            name: c.name.clone(),
            severity: severity(c.level),
            next_step: next_step(&c.falsepositives, &c.description),
            rules: c.rules.clone(),
            generate: c.generate,
            parsed: c.clone(),
        })));
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
    Ok(Parsed::Detection(Box::new(Rule {
        label: name,
        title: rule.title.clone(),
        id: rule.id.clone(),
        name: rule.name.clone(),
        severity: severity(rule.level),
        next_step: next_step(&rule.falsepositives, &rule.description),
        target,
        parsed: rule.clone(),
        compiled,
    })))
}

/// `level` as a severity: informational/low 1, medium (or none) 2, high/critical 3.
fn severity(level: Option<Level>) -> u8 {
    match level {
        Some(Level::Informational | Level::Low) => 1,
        Some(Level::High | Level::Critical) => 3,
        Some(Level::Medium) | None => 2,
    }
}

fn next_step(falsepositives: &[String], description: &Option<String>) -> String {
    if !falsepositives.is_empty() {
        format!(
            "Rule out the known false positives: {}",
            falsepositives.join("; ")
        )
    } else {
        description
            .clone()
            .unwrap_or_else(|| "Check whether this was expected".into())
    }
}

/// Every rule of a multi-document text: the rules taken and, apart, the ones that were
/// not. A correlation is taken only when every rule it names (by id or name) was taken,
/// detection rules or correlations before it.
pub fn parse_all(text: &str) -> (RuleSet, Vec<RuleError>) {
    let mut set = RuleSet::default();
    let mut errors = Vec::new();
    for (i, doc) in documents(text).iter().enumerate() {
        match parse_rule(doc, &format!("document {}", i + 1)) {
            Ok(Parsed::Detection(r)) => set.rules.push(*r),
            Ok(Parsed::Correlation(c)) => set.correlations.push(*c),
            Err(e) => errors.push(e),
        }
    }
    let dropped = unresolved(&set.rules, &set.correlations);
    let mut at = 0;
    set.correlations.retain(|c| {
        let i = at;
        at += 1;
        match dropped.iter().find(|(d, _)| *d == i) {
            Some((_, missing)) => {
                errors.push(RuleError {
                    rule: c.label.clone(),
                    why: Why::Reference(missing.clone()),
                });
                false
            }
            None => true,
        }
    });
    (set, errors)
}

/// The correlations (by place in `correlations`) that name a rule neither among `rules`
/// nor an earlier correlation kept, each with the first name missing. In order, so a
/// correlation over a dropped one is dropped too.
pub fn unresolved(rules: &[Rule], correlations: &[Correlation]) -> Vec<(usize, String)> {
    let mut dropped: Vec<(usize, String)> = Vec::new();
    for (i, c) in correlations.iter().enumerate() {
        let known = |r: &String| {
            rules.iter().any(|x| x.named_by(r))
                || correlations[..i]
                    .iter()
                    .enumerate()
                    .any(|(j, x)| !dropped.iter().any(|(d, _)| *d == j) && named(&x.id, &x.name, r))
        };
        if let Some(missing) = c.rules.iter().find(|r| !known(r)) {
            dropped.push((i, missing.clone()));
        }
    }
    dropped
}
