//! The policy file: routes, allow-lists, quiet hours, dedup, break-glass, destinations and
//! response actions. Format documented in docs/policy.md; the embedded default follows the
//! brief's escalation ladder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::matcher::{glob_valid, parse_clock_time, parse_instant};

/// The embedded default policy (used when `policy.file` is empty).
pub const DEFAULT_POLICY: &str = include_str!("default_policy.toml");

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("policy {0} is not valid: {1}")]
    Parse(String, String),
    #[error("policy: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub settings: Settings,
    #[serde(default)]
    pub quiet_hours: QuietHours,
    #[serde(default)]
    pub break_glass: BreakGlass,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub allow: AllowLists,
    #[serde(default)]
    pub suppressions: Vec<Suppression>,
    #[serde(default)]
    pub destinations: BTreeMap<String, DestinationConfig>,
    #[serde(default)]
    pub actions: ActionsConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// IANA zone for quiet hours and the digest's send time.
    pub timezone: String,
    /// The same story (signals + actors + systems) notifies once within this window,
    /// unless its severity rises.
    pub dedup_window_minutes: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            timezone: "UTC".into(),
            dedup_window_minutes: 240,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuietHours {
    pub enabled: bool,
    /// Local wall-clock times, "HH:MM"; start after end means overnight.
    pub start: String,
    pub end: String,
    /// Severities held until `end`. Severity 3 can never be held.
    pub severities: Vec<u8>,
}

impl Default for QuietHours {
    fn default() -> Self {
        QuietHours {
            enabled: false,
            start: "22:00".into(),
            end: "08:00".into(),
            severities: vec![2],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakGlass {
    pub enabled: bool,
    /// Signals (globs) that mean "a change went straight to production".
    pub signals: Vec<String>,
    /// At least one evidence event must be in one of these environments.
    pub environments: Vec<String>,
    /// Event attributes that may carry the incident ticket id.
    pub ticket_attributes: Vec<String>,
    /// A ticket id must match this regular expression.
    pub ticket_pattern: String,
    /// The severity a covered finding is lowered to.
    pub severity: u8,
    pub review_within_hours: u64,
    /// What the scheduled follow-up asks for.
    pub follow_up: String,
}

impl Default for BreakGlass {
    fn default() -> Self {
        BreakGlass {
            enabled: false,
            signals: vec![],
            environments: vec!["prod".into()],
            ticket_attributes: vec!["incident_id".into(), "incident".into()],
            ticket_pattern: r"^[A-Za-z][A-Za-z0-9]*-[0-9]+$".into(),
            severity: 2,
            review_within_hours: 24,
            follow_up: String::new(),
        }
    }
}

/// What a route, a suppression window or nothing at all matches. Every field given must
/// match (AND); within a field any entry may match (OR); an empty field matches anything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Match {
    pub severity: Vec<u8>,
    /// Globs over the alert's signals (`exfil.*`).
    pub signals: Vec<String>,
    /// Event sources of the evidence (`n8n`, `github`).
    pub sources: Vec<String>,
    /// Globs over the evidence events' systems.
    pub systems: Vec<String>,
    pub environments: Vec<String>,
    /// Globs over detector names.
    pub detectors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    #[serde(rename = "match", default)]
    pub matches: Match,
    pub destinations: Vec<String>,
    /// Ask the owner for a one-sentence justification.
    #[serde(default)]
    pub justification: bool,
    /// Open an incident record.
    #[serde(default)]
    pub incident: bool,
    /// Response actions offered (names under `[actions]`).
    #[serde(default)]
    pub actions: Vec<String>,
    /// Keep matching later routes (first match wins otherwise).
    #[serde(rename = "continue", default)]
    pub continue_matching: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AllowLists {
    pub domains: Vec<AllowRule>,
    pub service_accounts: Vec<AllowRule>,
    pub change_windows: Vec<AllowRule>,
    pub migrations: Vec<AllowRule>,
}

impl AllowLists {
    /// Every rule with the list it came from.
    pub fn rules(&self) -> impl Iterator<Item = (&'static str, &AllowRule)> {
        self.domains
            .iter()
            .map(|r| ("domain allow-list", r))
            .chain(self.service_accounts.iter().map(|r| ("service account", r)))
            .chain(self.change_windows.iter().map(|r| ("change window", r)))
            .chain(self.migrations.iter().map(|r| ("known migration", r)))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowAction {
    #[default]
    Suppress,
    Downgrade,
}

/// One allow-list entry. A rule covers a finding when the finding's signal matches
/// `signals` and every evidence event satisfies every constraint given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AllowRule {
    pub name: String,
    pub reason: String,
    pub action: AllowAction,
    pub signals: Vec<String>,
    /// Destination domains; `example.com` covers its subdomains too.
    pub domains: Vec<String>,
    /// Actor ids (globs), for service accounts.
    pub actors: Vec<String>,
    pub systems: Vec<String>,
    pub environments: Vec<String>,
    /// Event-time window (RFC 3339), for change windows and time-boxed migrations.
    pub start: Option<String>,
    pub end: Option<String>,
    /// The change ticket, shown with the reason.
    pub ticket: String,
}

/// A wall-clock mute: alerts matching `match` between `start` and `end` are suppressed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suppression {
    pub name: String,
    #[serde(default)]
    pub reason: String,
    pub start: String,
    pub end: String,
    #[serde(rename = "match", default)]
    pub matches: Match,
}

/// Where notifications go. String values may name environment variables as `${VAR}`;
/// a destination whose endpoint is empty is disabled (the decision says so).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DestinationConfig {
    Slack {
        url: String,
    },
    Teams {
        url: String,
    },
    Webhook {
        url: String,
        secret: String,
    },
    Jira {
        base_url: String,
        project: String,
        #[serde(default = "default_issue_type")]
        issue_type: String,
        /// Issue type for routes that open an incident ("" = `issue_type`).
        #[serde(default)]
        incident_issue_type: String,
        /// Atlassian account email (Cloud, basic auth); empty = bearer token (Server/DC).
        #[serde(default)]
        email: String,
        token: String,
        #[serde(default)]
        labels: Vec<String>,
        /// Severity ("1".."3") → Jira priority name.
        #[serde(default)]
        priorities: BTreeMap<String, String>,
    },
    Linear {
        #[serde(default = "default_linear_url")]
        url: String,
        api_key: String,
        team_id: String,
        #[serde(default)]
        label_ids: Vec<String>,
    },
    Pagerduty {
        #[serde(default = "default_pagerduty_url")]
        url: String,
        routing_key: String,
    },
    EmailDigest {
        /// `smtp://host:25`, `smtp://user:pass@host:587?tls=required`, `smtps://host:465`.
        smtp_url: String,
        from: String,
        to: Vec<String>,
        /// Local time the digest goes out each day.
        #[serde(default = "default_send_at")]
        send_at: String,
        #[serde(default = "default_subject")]
        subject: String,
    },
}

fn default_issue_type() -> String {
    "Task".into()
}
fn default_linear_url() -> String {
    "https://api.linear.app/graphql".into()
}
fn default_pagerduty_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".into()
}
fn default_send_at() -> String {
    "08:00".into()
}
fn default_subject() -> String {
    "Plumbline daily digest".into()
}

impl DestinationConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            DestinationConfig::Slack { .. } => "slack",
            DestinationConfig::Teams { .. } => "teams",
            DestinationConfig::Webhook { .. } => "webhook",
            DestinationConfig::Jira { .. } => "jira",
            DestinationConfig::Linear { .. } => "linear",
            DestinationConfig::Pagerduty { .. } => "pagerduty",
            DestinationConfig::EmailDigest { .. } => "email_digest",
        }
    }

    /// The fields without which the destination cannot send (empty → disabled).
    pub fn required(&self) -> Vec<(&'static str, &str)> {
        match self {
            DestinationConfig::Slack { url } | DestinationConfig::Teams { url } => {
                vec![("url", url)]
            }
            DestinationConfig::Webhook { url, secret } => vec![("url", url), ("secret", secret)],
            DestinationConfig::Jira {
                base_url,
                project,
                token,
                ..
            } => vec![
                ("base_url", base_url),
                ("project", project),
                ("token", token),
            ],
            DestinationConfig::Linear {
                api_key, team_id, ..
            } => vec![("api_key", api_key), ("team_id", team_id)],
            DestinationConfig::Pagerduty { routing_key, .. } => {
                vec![("routing_key", routing_key)]
            }
            DestinationConfig::EmailDigest { smtp_url, from, .. } => {
                vec![("smtp_url", smtp_url), ("from", from)]
            }
        }
    }

    /// The same destination with every `${VAR}` expanded. Unset variables expand to ""
    /// and are returned so the disabled destination can say which one to set.
    pub fn expanded(&self, env: &dyn Fn(&str) -> Option<String>) -> (Self, Vec<String>) {
        let mut missing = Vec::new();
        let value = serde_json::to_value(self).expect("destinations serialise");
        let value = expand_value(value, env, &mut missing);
        let out = serde_json::from_value(value).expect("expansion keeps the shape");
        (out, missing)
    }
}

fn expand_value(
    v: serde_json::Value,
    env: &dyn Fn(&str) -> Option<String>,
    missing: &mut Vec<String>,
) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(expand(&s, env, missing)),
        Value::Array(a) => {
            let items: Vec<Value> = a
                .into_iter()
                .map(|x| expand_value(x, env, missing))
                .collect();
            // A list entry that expanded to nothing is dropped (an unset recipient).
            Value::Array(
                items
                    .into_iter()
                    .filter(|x| x.as_str() != Some(""))
                    .collect(),
            )
        }
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, x)| (k, expand_value(x, env, missing)))
                .collect(),
        ),
        other => other,
    }
}

/// Expands `${VAR}` references in `s`.
pub fn expand(s: &str, env: &dyn Fn(&str) -> Option<String>, missing: &mut Vec<String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) => {
                let name = &after[..j];
                match env(name) {
                    Some(v) => out.push_str(&v),
                    None => missing.push(name.to_string()),
                }
                rest = &after[j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionsConfig {
    /// Response actions are off unless this is true.
    #[serde(default)]
    pub enabled: bool,
    /// A proposal nobody approved within this many hours expires.
    #[serde(default = "default_expire_hours")]
    pub expire_hours: u64,
    /// Named actions, e.g. `[actions.pause_workflow]`.
    #[serde(flatten)]
    pub defs: BTreeMap<String, ActionDef>,
}

fn default_expire_hours() -> u64 {
    24
}

impl Default for ActionsConfig {
    fn default() -> Self {
        ActionsConfig {
            enabled: false,
            expire_hours: default_expire_hours(),
            defs: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionDef {
    /// Deactivate the n8n workflow(s) in the evidence through n8n's public API.
    N8nPauseWorkflow {
        base_url: String,
        api_key: String,
        /// Signals (globs) for which this runs without waiting for a human.
        #[serde(default)]
        automatic_signals: Vec<String>,
    },
    /// Revoke the credential in the evidence where its source supports it: a GitHub
    /// deploy key (deleted), a Vault token (revoked by accessor).
    RevokeCredential {
        #[serde(default = "default_github_api")]
        github_api_url: String,
        #[serde(default)]
        github_token: String,
        #[serde(default)]
        vault_addr: String,
        #[serde(default)]
        vault_token: String,
        #[serde(default)]
        automatic_signals: Vec<String>,
    },
}

fn default_github_api() -> String {
    "https://api.github.com".into()
}

impl ActionDef {
    pub fn kind(&self) -> &'static str {
        match self {
            ActionDef::N8nPauseWorkflow { .. } => "n8n_pause_workflow",
            ActionDef::RevokeCredential { .. } => "revoke_credential",
        }
    }

    pub fn automatic_signals(&self) -> &[String] {
        match self {
            ActionDef::N8nPauseWorkflow {
                automatic_signals, ..
            }
            | ActionDef::RevokeCredential {
                automatic_signals, ..
            } => automatic_signals,
        }
    }

    pub fn expanded(&self, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut missing = Vec::new();
        let v = expand_value(
            serde_json::to_value(self).expect("actions serialise"),
            env,
            &mut missing,
        );
        serde_json::from_value(v).expect("expansion keeps the shape")
    }
}

impl Policy {
    /// The embedded default.
    pub fn default_policy() -> Policy {
        Policy::parse(DEFAULT_POLICY, "(embedded default policy)").expect("default policy is valid")
    }

    /// Reads `path` over the embedded default, or the default alone when `path` is empty.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        if path.as_os_str().is_empty() {
            return Ok(Policy::default_policy());
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| PolicyError::Read(path.to_path_buf(), e))?;
        Policy::parse_over_default(&text, &path.display().to_string())
    }

    /// A policy file layered over the embedded default: tables merge key by key, anything
    /// else the file gives (a list of routes, a value) replaces the default's. So a file
    /// that only adds allow-lists keeps the default routes and destinations — it used to
    /// leave no route at all, and every alert was "recorded only".
    pub fn parse_over_default(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let parse_err = |e: String| PolicyError::Parse(origin.to_string(), e);
        let mut base: toml::Table = toml::from_str(DEFAULT_POLICY).expect("default policy is TOML");
        let file: toml::Table = toml::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        layer(&mut base, file);
        let p: Policy = toml::Value::Table(base)
            .try_into()
            .map_err(|e: toml::de::Error| parse_err(e.to_string()))?;
        p.validate().map_err(parse_err)?;
        Ok(p)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let p: Policy = toml::from_str(text)
            .map_err(|e| PolicyError::Parse(origin.to_string(), e.to_string()))?;
        p.validate()
            .map_err(|e| PolicyError::Parse(origin.to_string(), e))?;
        Ok(p)
    }

    /// Checks everything that can be checked before an alert arrives, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        jiff::tz::TimeZone::get(&self.settings.timezone).map_err(|e| {
            format!(
                "settings.timezone: `{}` is not a time zone ({e})",
                self.settings.timezone
            )
        })?;
        let q = &self.quiet_hours;
        parse_clock_time(&q.start).map_err(|e| format!("quiet_hours.start: {e}"))?;
        parse_clock_time(&q.end).map_err(|e| format!("quiet_hours.end: {e}"))?;
        if q.severities.contains(&3) {
            return Err(
                "quiet_hours.severities: severity 3 (urgent) always goes out and cannot be held"
                    .into(),
            );
        }
        check_severities("quiet_hours.severities", &q.severities)?;
        let b = &self.break_glass;
        if b.enabled {
            if b.signals.is_empty() {
                return Err(
                    "break_glass.signals: name the signals of a direct-to-prod change".into(),
                );
            }
            if b.ticket_attributes.is_empty() {
                return Err(
                    "break_glass.ticket_attributes: name where the incident ticket id is".into(),
                );
            }
            regex::Regex::new(&b.ticket_pattern)
                .map_err(|e| format!("break_glass.ticket_pattern: {e}"))?;
            check_severities("break_glass.severity", &[b.severity])?;
            globs("break_glass.signals", &b.signals)?;
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, r) in self.routes.iter().enumerate() {
            let at = format!("routes[{i}] (`{}`)", r.name);
            if r.name.is_empty() {
                return Err(format!("routes[{i}].name: every route needs a name"));
            }
            if !names.insert(r.name.as_str()) {
                return Err(format!("{at}.name: two routes are called `{}`", r.name));
            }
            check_match(&format!("{at}.match"), &r.matches)?;
            for d in &r.destinations {
                if !self.destinations.contains_key(d) {
                    return Err(format!(
                        "{at}.destinations: `{d}` is not defined under [destinations]"
                    ));
                }
            }
            for a in &r.actions {
                if !self.actions.defs.contains_key(a) {
                    return Err(format!(
                        "{at}.actions: `{a}` is not defined under [actions]"
                    ));
                }
            }
        }
        for (list, r) in self.allow.rules() {
            let at = format!("allow ({list} `{}`)", r.name);
            globs(&format!("{at}.signals"), &r.signals)?;
            globs(&format!("{at}.actors"), &r.actors)?;
            globs(&format!("{at}.systems"), &r.systems)?;
            check_envs(&format!("{at}.environments"), &r.environments)?;
            for (k, v) in [("start", &r.start), ("end", &r.end)] {
                if let Some(v) = v {
                    parse_instant(v).map_err(|e| format!("{at}.{k}: {e}"))?;
                }
            }
            if let (Some(s), Some(e)) = (&r.start, &r.end) {
                if parse_instant(s)? >= parse_instant(e)? {
                    return Err(format!("{at}: start must be before end"));
                }
            }
        }
        for r in &self.allow.domains {
            if r.domains.is_empty() {
                return Err(format!(
                    "allow.domains (`{}`).domains: list at least one domain",
                    r.name
                ));
            }
        }
        for r in &self.allow.service_accounts {
            if r.actors.is_empty() {
                return Err(format!(
                    "allow.service_accounts (`{}`).actors: list the service account ids",
                    r.name
                ));
            }
        }
        for r in &self.allow.change_windows {
            if r.start.is_none() || r.end.is_none() {
                return Err(format!(
                    "allow.change_windows (`{}`): a change window needs start and end",
                    r.name
                ));
            }
            if r.systems.is_empty() {
                return Err(format!(
                    "allow.change_windows (`{}`).systems: name the systems being changed",
                    r.name
                ));
            }
        }
        for r in &self.allow.migrations {
            if r.name.is_empty() {
                return Err("allow.migrations: every migration needs a name".into());
            }
            if r.systems.is_empty() && r.domains.is_empty() && r.actors.is_empty() {
                return Err(format!(
                    "allow.migrations (`{}`): name its systems, domains or actors",
                    r.name
                ));
            }
        }
        for (i, s) in self.suppressions.iter().enumerate() {
            let at = format!("suppressions[{i}] (`{}`)", s.name);
            let start = parse_instant(&s.start).map_err(|e| format!("{at}.start: {e}"))?;
            let end = parse_instant(&s.end).map_err(|e| format!("{at}.end: {e}"))?;
            if start >= end {
                return Err(format!("{at}: start must be before end"));
            }
            check_match(&format!("{at}.match"), &s.matches)?;
        }
        for (name, d) in &self.destinations {
            if let DestinationConfig::EmailDigest { send_at, .. } = d {
                parse_clock_time(send_at)
                    .map_err(|e| format!("destinations.{name}.send_at: {e}"))?;
            }
            if name.starts_with("action:") {
                return Err(format!(
                    "destinations.{name}: names starting with `action:` are reserved"
                ));
            }
        }
        for (name, a) in &self.actions.defs {
            globs(
                &format!("actions.{name}.automatic_signals"),
                a.automatic_signals(),
            )?;
        }
        Ok(())
    }
}

fn check_severities(at: &str, s: &[u8]) -> Result<(), String> {
    match s.iter().find(|x| !(1..=3).contains(*x)) {
        Some(x) => Err(format!("{at}: severity {x} is not 1, 2 or 3")),
        None => Ok(()),
    }
}

fn check_envs(at: &str, envs: &[String]) -> Result<(), String> {
    for e in envs {
        if !["prod", "staging", "test", "unknown"].contains(&e.as_str()) {
            return Err(format!(
                "{at}: `{e}` is not an environment (prod, staging, test, unknown)"
            ));
        }
    }
    Ok(())
}

fn globs(at: &str, g: &[String]) -> Result<(), String> {
    for x in g {
        if !glob_valid(x) {
            return Err(format!("{at}: `{x}` is empty"));
        }
    }
    Ok(())
}

fn check_match(at: &str, m: &Match) -> Result<(), String> {
    check_severities(&format!("{at}.severity"), &m.severity)?;
    globs(&format!("{at}.signals"), &m.signals)?;
    globs(&format!("{at}.systems"), &m.systems)?;
    globs(&format!("{at}.detectors"), &m.detectors)?;
    check_envs(&format!("{at}.environments"), &m.environments)?;
    for s in &m.sources {
        if plumbline_event::Source::parse(s).is_none() {
            return Err(format!("{at}.sources: `{s}` is not a source"));
        }
    }
    Ok(())
}

/// `over` onto `base`: tables merge recursively, every other value replaces. The host's
/// configuration layers its files the same way and calls this.
pub fn layer(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => layer(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}
