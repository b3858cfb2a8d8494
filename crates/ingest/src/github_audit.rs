//! The GitHub audit log: `POST /v1/ingest/github-audit` (and, in the API crate, the
//! Splunk-HEC-compatible receiver that GitHub's enterprise audit-log streaming reaches).
//!
//! Entries as audit-log streaming writes them and as `GET /orgs/{org}/audit-log` (or the
//! enterprise's) returns them: `action`, `actor`, `@timestamp` / `created_at` (epoch
//! milliseconds), `_document_id`, `org`, `repo`, `user`, `actor_location`, … plus the
//! action's own fields. The body is one entry, a JSON array, or NDJSON (one entry a line);
//! a HEC envelope (`{"event": {…}}`) is unwrapped. Ids are `github-audit:<_document_id>`,
//! so a re-delivered entry, a stream and a back-fill of the same entry are stored once.
//!
//! Events carry `source: github` — the same repositories, people and vocabulary as the
//! webhooks (`system` is the repository's full name), so one trajectory holds both; the
//! feed is named by `source_feed: audit-log`. Every field of the entry is also kept under
//! its own name (`action`, `actor`, `org`, `repo`, `actor_location.country_code`, …;
//! bounded, secret-named fields redacted), for rules written against the raw record.
//! The mapping is documented in docs/sources.md.

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::adapter::{
    check_shared_token, Adapter, Delivery, IngestError, Mapped, Memory, SourceAuth,
};
use super::github::{installation_reach, permission_rank, valid_id};
use super::map::{
    actor, at, content_id, event, is_ai_agent_login, json_body, ndjson, parse_time, s, set,
    strings, unknown_action, url_host,
};
use plumbline_event::{ActorType, Event, Source};

const SRC: Source = Source::Github;

/// The endpoint's name: `/v1/ingest/github-audit`.
pub const ENDPOINT: &str = "github-audit";

/// Most of an entry's own fields kept as attributes (the rest are counted in
/// `entry.dropped`; the whole entry's hash is `entry.sha256`).
const FIELD_BUDGET: usize = 200;

/// `[github_audit]`: the shared token of audit-log shippers and of the HEC receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubAuditConfig {
    pub token: String,
}

/// GitHub audit-log entries, from a shipper or a back-fill.
pub struct GithubAuditAdapter {
    config: GithubAuditConfig,
}

impl GithubAuditAdapter {
    pub fn new(config: GithubAuditConfig) -> Self {
        GithubAuditAdapter { config }
    }

    /// The configured token (the HEC receiver checks `Authorization: Splunk <token>`).
    pub fn token(&self) -> &str {
        &self.config.token
    }
}

impl Adapter for GithubAuditAdapter {
    fn source(&self) -> Source {
        SRC
    }

    fn endpoint(&self) -> &'static str {
        ENDPOINT
    }

    fn verify(&self, headers: &HeaderMap, _body: &[u8]) -> SourceAuth {
        check_shared_token(&self.config.token, headers, "github-audit")
    }

    fn map(&self, d: &Delivery<'_>, memory: &dyn Memory) -> Result<Mapped, IngestError> {
        let mut out = Mapped::default();
        for (index, entry) in entries(d.body)?.into_iter().enumerate() {
            match entry {
                Ok(v) => map_entry(&v, index, memory, &mut out),
                Err(reason) => out.reject(index, "(line)", reason),
            }
        }
        Ok(out)
    }
}

/// The entries of a body: a JSON array, one entry (or HEC envelope), or NDJSON.
fn entries(body: &[u8]) -> Result<Vec<Result<Value, String>>, IngestError> {
    let unwrap = |v: Value| match v {
        Value::Object(ref m) if !m.contains_key("action") && m.contains_key("event") => {
            m["event"].clone()
        }
        other => other,
    };
    match json_body(body) {
        Ok(Value::Array(a)) => Ok(a.into_iter().map(|v| Ok(unwrap(v))).collect()),
        Ok(v @ Value::Object(_)) => Ok(vec![Ok(unwrap(v))]),
        Ok(_) => Err(IngestError::malformed(
            "(body)",
            "expected audit-log entries: one JSON object, an array of them, or one a line",
        )),
        Err(e) => {
            // NDJSON: several lines, the first a JSON value of its own. Anything else is
            // a broken JSON document, reported where it broke.
            let lines = ndjson(body);
            if lines.len() > 1 && lines[0].is_ok() {
                Ok(lines.into_iter().map(|l| l.map(unwrap)).collect())
            } else {
                Err(e)
            }
        }
    }
}

/// An audit-log boolean: `true`, `"true"`, `1`.
fn truthy(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(x) => match x.as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_f64().map(|x| x != 0.0),
        _ => None,
    }
}

/// Whether a protection setting's value means "off" (`off`, `0`, `false`, `disabled`).
fn is_off(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(x) => matches!(x.as_str(), "off" | "0" | "false" | "disabled" | "none"),
        _ => false,
    }
}

/// The branch protection settings an audit entry can carry, and whether turning each on
/// loosens the rule (the allowances) rather than tightens it.
const PROTECTION_FIELDS: &[(&str, bool)] = &[
    ("allow_force_pushes_enforcement_level", true),
    ("allow_deletions_enforcement_level", true),
    ("required_approving_review_count", false),
    ("pull_request_reviews_enforcement_level", false),
    ("required_status_checks_enforcement_level", false),
    ("signature_requirement_enforcement_level", false),
    ("linear_history_requirement_enforcement_level", false),
    ("merge_queue_enforcement_level", false),
    ("lock_branch_enforcement_level", false),
    ("admin_enforced", false),
    ("require_code_owner_review", false),
    ("dismiss_stale_reviews_on_push", false),
    ("require_last_push_approval", false),
    ("strict_required_status_checks_policy", false),
];

struct Entry<'a> {
    v: &'a Value,
    action: String,
    category: String,
    op: String,
    repo: String,
    id: String,
    time: OffsetDateTime,
}

impl Entry<'_> {
    fn s(&self, path: &str) -> String {
        s(self.v, path)
    }

    /// The first non-empty of `paths`.
    fn first(&self, paths: &[&str]) -> String {
        paths
            .iter()
            .map(|p| s(self.v, p))
            .find(|x| !x.is_empty())
            .unwrap_or_default()
    }

    fn base(&self, action: &str) -> Event {
        let login = self.s("actor");
        let bot = truthy(at(self.v, "actor_is_bot")) == Some(true) || login.ends_with("[bot]");
        let kind = match (bot, is_ai_agent_login(&login)) {
            (true, true) => ActorType::AiAgent,
            (true, false) => ActorType::Service,
            _ => ActorType::Human,
        };
        let system = [self.repo.as_str(), &self.s("org"), &self.s("business")]
            .into_iter()
            .find(|x| !x.is_empty())
            .unwrap_or("github")
            .to_string();
        let mut e = event(
            SRC,
            self.id.clone(),
            self.time,
            actor(&login, kind, &login),
            &system,
            action,
        );
        set(&mut e, "source_feed", "audit-log");
        set(&mut e, "source_event", self.action.clone());
        set(&mut e, "actor.github_id", self.s("actor_id"));
        set(&mut e, "ip", self.s("actor_ip"));
        set(
            &mut e,
            "geo.country",
            self.first(&["actor_location.country_code", "actor_location.country"]),
        );
        set(&mut e, "user_agent", self.s("user_agent"));
        let visibility = match (self.s("visibility"), truthy(at(self.v, "public_repo"))) {
            (v, _) if !v.is_empty() => v,
            (_, Some(true)) => "public".into(),
            (_, Some(false)) => "private".into(),
            _ => String::new(),
        };
        set(&mut e, "repo.visibility", visibility);
        e
    }
}

fn map_entry(v: &Value, index: usize, memory: &dyn Memory, out: &mut Mapped) {
    if !v.is_object() {
        out.reject(index, "(entry)", "an audit-log entry is a JSON object");
        return;
    }
    let action = s(v, "action");
    if action.is_empty() {
        out.reject(
            index,
            "action",
            "an audit-log entry names its action (e.g. `repo.create`)",
        );
        return;
    }
    let time = ["@timestamp", "created_at", "timestamp"]
        .iter()
        .find_map(|k| at(v, k).map(|t| (*k, t)));
    let Some((field, time)) = time else {
        out.reject(
            index,
            "@timestamp",
            "missing: an audit-log entry carries `@timestamp` or `created_at` (epoch milliseconds)",
        );
        return;
    };
    let Some(time) = parse_time(time) else {
        out.reject(
            index,
            field,
            "not a time: epoch milliseconds (or an ISO 8601 string) expected",
        );
        return;
    };
    let doc = s(v, "_document_id");
    let id = match doc.as_str() {
        "" => format!("github-audit:sha256-{}", &entry_hash(v)[..40]),
        d if valid_id(d) => format!("github-audit:{d}"),
        d => format!("github-audit:h{}", &content_id(d.as_bytes())[..40]),
    };
    let (category, op) = match action.split_once('.') {
        Some((c, o)) => (c.to_string(), o.to_string()),
        None => (action.clone(), String::new()),
    };
    let entry = Entry {
        v,
        repo: s(v, "repo"),
        action,
        category,
        op,
        id,
        time,
    };
    let mut e = map_action(&entry, memory, out);
    keep_fields(&mut e, v);
    out.push(index, e);
}

/// sha256 of an entry's JSON (its id when it has no `_document_id`).
fn entry_hash(v: &Value) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_vec(v).unwrap_or_default().as_slice(),
    ))
}

/// Every field of the entry under its own name (nested objects as dotted keys), after the
/// mapped attributes, which win where a name is shared (`org`, `visibility`, …, meaning the
/// same). Bounded by `FIELD_BUDGET`; the public key of a key entry is kept as a hash.
fn keep_fields(e: &mut Event, v: &Value) {
    let mut flat = Vec::new();
    flatten(&mut flat, String::new(), v, 0);
    let mut dropped = 0u64;
    let mut kept = 0usize;
    for (k, x) in flat {
        if k == "key" {
            continue;
        }
        if kept >= FIELD_BUDGET || e.attributes.len() >= 480 {
            dropped += 1;
            continue;
        }
        kept += 1;
        e.attributes.entry(k).or_insert(x);
    }
    if dropped > 0 {
        e.attributes
            .insert("entry.dropped".into(), Value::from(dropped));
    }
    e.attributes
        .insert("entry.sha256".into(), Value::String(entry_hash(v)));
}

fn flatten(out: &mut Vec<(String, Value)>, key: String, v: &Value, depth: usize) {
    let join = |k: &str| {
        if key.is_empty() {
            k.to_string()
        } else {
            format!("{key}.{k}")
        }
    };
    match v {
        Value::Object(m) if depth < 6 => {
            for (k, x) in m {
                flatten(out, join(k), x, depth + 1);
            }
        }
        Value::Array(a) if depth < 6 => {
            for (i, x) in a.iter().enumerate().take(32) {
                flatten(out, join(&i.to_string()), x, depth + 1);
            }
        }
        Value::Object(_) | Value::Array(_) => out.push((key, Value::String(v.to_string()))),
        Value::Null => {}
        scalar => out.push((key, scalar.clone())),
    }
}

/// The entry's action onto the webhook adapter's vocabulary (docs/sources.md).
fn map_action(x: &Entry, memory: &dyn Memory, out: &mut Mapped) -> Event {
    let (c, o) = (x.category.as_str(), x.op.as_str());
    match (c, o) {
        ("protected_branch", _) => protected_branch(x, memory, out),
        ("repository_branch_protection_evaluation", _) => {
            let name = match o {
                "disable" => "branch.protection.disabled",
                "enable" => "branch.protection.enabled",
                _ => "branch.protection.changed",
            };
            let mut e = x.base(name);
            e.resource = "*".into();
            set(&mut e, "protection.scope", "repository");
            set(&mut e, "weakened", o == "disable");
            e
        }
        ("repository_ruleset", _) => ruleset(x),
        ("public_key" | "deploy_key", _) => key(x),
        ("personal_access_token" | "oauth_access", _) => token(x),
        ("oauth_application" | "integration", "create" | "destroy") => {
            let mut e = x.base(if o == "create" {
                "app.created"
            } else {
                "app.deleted"
            });
            e.resource = x.first(&[
                "oauth_application_name",
                "name",
                "integration",
                "application_name",
            ]);
            let r = e.resource.clone();
            set(&mut e, "app", r);
            e
        }
        ("oauth_authorization", "create" | "destroy") => {
            let mut e = x.base(if o == "create" {
                "app.authorized"
            } else {
                "app.authorization.revoked"
            });
            e.resource = x.first(&["oauth_application_name", "application_name", "name"]);
            let r = e.resource.clone();
            set(&mut e, "app", r);
            let scopes = scope_text(x.v, &["scopes", "token_scopes"]);
            set(&mut e, "scopes", scopes.clone());
            // The consent's scopes where app-install reads them for OAuth consents.
            set(
                &mut e,
                "debug.grantedScopes",
                scopes
                    .split([' ', ','])
                    .filter(|w| !w.is_empty())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            e
        }
        ("integration_installation", _) => installation(x),
        ("org" | "repo", "add_member" | "remove_member" | "invite_member" | "update_member") => {
            member(x)
        }
        ("business", "add_admin" | "remove_admin") => {
            let mut e = x.base(if o == "add_admin" {
                "admin.role.granted"
            } else {
                "admin.role.revoked"
            });
            e.resource = x.s("user");
            set(&mut e, "member", x.s("user"));
            set(&mut e, "role", "enterprise_owner");
            e
        }
        ("team", _) => team(x),
        ("repo", "access") => {
            let mut e = x.base("repo.visibility.changed");
            e.resource = x.repo.clone();
            set(&mut e, "visibility", x.s("visibility"));
            set(
                &mut e,
                "visibility.from",
                x.first(&["previous_visibility", "old_visibility"]),
            );
            e
        }
        ("repo", "transfer" | "transfer_outgoing" | "transfer_start") => {
            let mut e = x.base(if o == "transfer_start" {
                "repo.transfer.started"
            } else {
                "repo.transferred"
            });
            e.resource = x.repo.clone();
            set(
                &mut e,
                "changes.owner.from",
                x.first(&["old_user", "old_org", "previous_owner"]),
            );
            set(
                &mut e,
                "changes.repository.from",
                x.first(&["old_name", "previous_repo"]),
            );
            e
        }
        ("repo", "create" | "destroy" | "archived" | "unarchived" | "rename") => {
            let name = match o {
                "create" => "repo.created",
                "destroy" => "repo.deleted",
                "rename" => "repo.renamed",
                other => return named(x, &format!("repo.{other}"), x.repo.clone()),
            };
            named(x, name, x.repo.clone())
        }
        ("secret_scanning_alert", _) => {
            let mut e = x.base("secret_scanning.alert");
            e.resource = alert_resource(x, "secret-scanning");
            set(&mut e, "alert.action", o);
            set(&mut e, "alert.number", x.first(&["alert_number", "number"]));
            set(
                &mut e,
                "alert.resolution",
                x.first(&["resolution", "reason"]),
            );
            set(&mut e, "secret_type", x.s("secret_type"));
            set(
                &mut e,
                "alert.dismissed",
                matches!(o, "resolve" | "dismiss" | "close"),
            );
            e
        }
        ("secret_scanning_push_protection", "bypass") => {
            let mut e = x.base("secret_scanning.alert");
            e.resource = alert_resource(x, "secret-scanning");
            set(&mut e, "alert.action", "push_protection_bypass");
            set(&mut e, "push_protection_bypassed", true);
            set(&mut e, "push_protection_bypassed_by", x.s("actor"));
            set(&mut e, "secret_type", x.s("secret_type"));
            e
        }
        ("repository_vulnerability_alert" | "dependabot_alert" | "dependabot_alerts", op)
            if !op.starts_with("enable") && !op.starts_with("disable") =>
        {
            let mut e = x.base("dependabot.alert");
            e.resource = alert_resource(x, "dependabot");
            set(&mut e, "alert.action", op);
            set(&mut e, "alert.number", x.first(&["alert_number", "number"]));
            set(
                &mut e,
                "alert.resolution",
                x.first(&["dismiss_reason", "reason"]),
            );
            set(
                &mut e,
                "alert.dismissed",
                matches!(op, "dismiss" | "auto_dismiss" | "resolve"),
            );
            set(
                &mut e,
                "package.name",
                x.first(&["package_name", "affected_package_name"]),
            );
            e
        }
        (
            "secret_scanning"
            | "secret_scanning_push_protection"
            | "dependabot_alerts"
            | "dependabot_alerts_new_repos"
            | "dependabot_security_updates"
            | "dependabot_security_updates_new_repos"
            | "repository_secret_scanning"
            | "repository_secret_scanning_push_protection"
            | "repository_vulnerability_alerts",
            op,
        ) if op.starts_with("enable") || op.starts_with("disable") => {
            let name = if op.starts_with("disable") {
                "security.feature.disabled"
            } else {
                "security.feature.enabled"
            };
            named(x, name, c.to_string())
        }
        ("org" | "repo" | "business" | "enterprise", "set_default_workflow_permissions") => {
            let to = x
                .first(&[
                    "default_workflow_permissions",
                    "workflow_permissions",
                    "permission",
                ])
                .to_ascii_lowercase();
            workflow_permission(
                x,
                to.contains("write"),
                "contents:write packages:write",
                &to,
            )
        }
        ("org" | "repo" | "business" | "enterprise", "set_workflow_permission_can_approve_pr") => {
            let on = [
                "can_approve_pull_request_reviews",
                "can_approve_pr",
                "enabled",
                "value",
            ]
            .iter()
            .find_map(|k| truthy(at(x.v, k)))
            .unwrap_or(false);
            workflow_permission(x, on, "pull_requests:approve", &on.to_string())
        }
        ("org" | "repo" | "business" | "enterprise", op)
            if op.contains("actions") || op.contains("workflow") || op.contains("fork_pr") =>
        {
            named(x, "ci.settings.changed", x.repo.clone())
        }
        ("hook", _) => hook(x),
        ("git", "push" | "clone" | "fetch") => {
            let mut e = named(x, &format!("git.{o}"), x.repo.clone());
            set(
                &mut e,
                "transport",
                x.first(&["transport_protocol_name", "transport_protocol"]),
            );
            e
        }
        ("org", "disable_two_factor_requirement" | "enable_two_factor_requirement")
        | ("business", "disable_two_factor_requirement" | "enable_two_factor_requirement") => {
            let name = if o.starts_with("disable") {
                "policy.disabled"
            } else {
                "policy.enabled"
            };
            let mut e = named(x, name, "two_factor_requirement".into());
            set(&mut e, "policy", "two_factor_requirement");
            e
        }
        ("ip_allow_list", "disable" | "enable") => {
            let name = if o == "disable" {
                "network.allowlist.disabled"
            } else {
                "network.allowlist.enabled"
            };
            named(x, name, x.first(&["org", "business"]))
        }
        _ => {
            let action = unknown_action(SRC, &format!("audit.{}", x.action));
            let resource = x.first(&["repo", "user", "team", "org", "business"]);
            named(x, &action, resource)
        }
    }
}

fn named(x: &Entry, action: &str, resource: String) -> Event {
    let mut e = x.base(action);
    e.resource = resource;
    e
}

fn alert_resource(x: &Entry, kind: &str) -> String {
    let number = x.first(&["alert_number", "number", "alert_id"]);
    if number.is_empty() {
        x.repo.clone()
    } else {
        format!("{}/{kind}/{number}", x.repo)
    }
}

/// Scopes as text, from a string (`repo, admin:org`) or a list.
fn scope_text(v: &Value, paths: &[&str]) -> String {
    for p in paths {
        match at(v, p) {
            Some(Value::String(x)) if !x.is_empty() => return x.clone(),
            Some(Value::Array(_)) => return strings(v, p).join(" "),
            _ => {}
        }
    }
    String::new()
}

/// `{"contents": "write", …}` → `contents:write …` (sorted).
fn permissions_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, x)| format!("{k}:{}", x.as_str().unwrap_or(&x.to_string())))
            .collect::<Vec<_>>()
            .join(" "),
        Some(Value::String(x)) => x.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn protected_branch(x: &Entry, memory: &dyn Memory, out: &mut Mapped) -> Event {
    let o = x.op.as_str();
    let pattern = x.first(&["name", "branch", "protected_branch_name"]);
    let name = match o {
        "create" => "branch.protection.enabled",
        "destroy" => "branch.protection.disabled",
        "policy_override" => "branch.protection.overridden",
        "rejected_ref_update" => "branch.protection.rejected_push",
        _ => "branch.protection.changed",
    };
    let mut e = x.base(name);
    e.resource = pattern.clone();
    set(&mut e, "rule.pattern", pattern.clone());
    set(&mut e, "rule.id", x.first(&["protected_branch_id", "id"]));
    let mut weakened = Vec::new();
    let mut changed = Vec::new();
    // An update names the setting it changed (`update_admin_enforced`,
    // `dismiss_stale_reviews`); the entry's other settings are the rule as it stands. A
    // plain `update` changed whichever it carries; a create or destroy changes none.
    let updating = o.starts_with("update") || o.starts_with("dismiss") || o.starts_with("require");
    let named = o.strip_prefix("update_").unwrap_or(o);
    let names = |f: &str| !named.is_empty() && (f.starts_with(named) || named.starts_with(f));
    let any_named = PROTECTION_FIELDS
        .iter()
        .any(|(f, _)| names(f) && at(x.v, f).is_some());
    for (field, allowance) in PROTECTION_FIELDS {
        let Some(now) = at(x.v, field) else { continue };
        set(&mut e, &format!("rule.{field}"), now.clone());
        if updating && (names(field) || !any_named) {
            changed.push(*field);
            let off = is_off(now);
            if *allowance != off {
                weakened.push(*field);
            }
            // The value before, where the entry says; else only that it changed (what a
            // restore of this field is recognised by).
            let from = x.first(&[&format!("old_{field}"), &format!("previous_{field}")]);
            set(
                &mut e,
                &format!("changes.{field}.from"),
                if from.is_empty() {
                    "unknown".to_string()
                } else {
                    from
                },
            );
        }
    }
    match o {
        "create" => set(&mut e, "weakened", false),
        "destroy" => set(&mut e, "weakened", true),
        _ if !changed.is_empty() => {
            set(&mut e, "weakened", !weakened.is_empty());
            set(&mut e, "weakened.fields", weakened.join(","));
        }
        _ => {}
    }
    if o == "policy_override" {
        set(
            &mut e,
            "override.reason",
            x.first(&["reason", "overridden_codes"]),
        );
    }
    // Which branches are protected, for the webhook adapter's pushes (`git.push.protected_branch`).
    if matches!(o, "create" | "destroy") && !pattern.is_empty() && !x.repo.is_empty() {
        let mut rules = out
            .recall(memory, SRC, "protected", &x.repo)
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        let key = format!("audit:{pattern}");
        if o == "destroy" {
            rules.remove(&key);
            // The webhook's record of the same rule, by its pattern.
            rules.retain(|_, p| p.as_str() != Some(pattern.as_str()));
        } else {
            rules.insert(key, json!(pattern));
        }
        out.remember(SRC, "protected", &x.repo, Some(Value::Object(rules)));
    }
    e
}

fn ruleset(x: &Entry) -> Event {
    let o = x.op.as_str();
    let mut e = x.base("repo.ruleset.changed");
    let action = match o {
        "create" => "created",
        "update" => "edited",
        "destroy" => "deleted",
        other => other,
    };
    e.resource = x.first(&["ruleset_name", "name"]);
    set(&mut e, "ruleset.action", action);
    set(&mut e, "ruleset.id", x.first(&["ruleset_id", "id"]));
    let r = e.resource.clone();
    set(&mut e, "ruleset.name", r);
    set(
        &mut e,
        "ruleset.target",
        x.first(&["ruleset_target", "target"]),
    );
    set(
        &mut e,
        "ruleset.source_type",
        x.first(&["ruleset_source_type", "source_type"]),
    );
    let now = x.first(&["ruleset_enforcement", "enforcement"]);
    let from = x.first(&["ruleset_old_enforcement", "old_enforcement"]);
    set(&mut e, "ruleset.enforcement", now.clone());
    set(&mut e, "changes.enforcement.from", from.clone());
    let enforced = |v: &str| matches!(v, "active" | "enabled");
    let weakened = o == "destroy"
        || (o == "update"
            && !now.is_empty()
            && !enforced(&now)
            && (from.is_empty() || enforced(&from)));
    set(&mut e, "weakened", weakened);
    e
}

/// `public_key.*` (a deploy key when the entry names a repository, else a user's SSH
/// key) and `deploy_key.*`.
fn key(x: &Entry) -> Event {
    let o = x.op.as_str();
    let deploy = x.category == "deploy_key" || !x.repo.is_empty();
    let verb = match o {
        "create" => "created",
        "delete" | "destroy" => "deleted",
        "update" => "updated",
        other => other,
    };
    let name = if deploy {
        format!("deploy_key.{verb}")
    } else {
        format!("api_key.{verb}")
    };
    let mut e = x.base(&name);
    e.resource = x.first(&["title", "key_title", "name"]);
    let r = e.resource.clone();
    set(&mut e, "key.title", r);
    set(
        &mut e,
        "key.id",
        x.first(&["public_key_id", "key_id", "deploy_key_id"]),
    );
    set(&mut e, "key.fingerprint", x.s("fingerprint"));
    let key = x.s("key");
    if !key.is_empty() {
        set(&mut e, "key.sha256", content_id(key.as_bytes()));
    }
    if deploy {
        // A deploy key without `read_only` can push: GitHub's audit log marks read-only ones.
        set(
            &mut e,
            "read_only",
            truthy(at(x.v, "read_only")).unwrap_or(false),
        );
    } else {
        set(&mut e, "credential.kind", "ssh_key");
        let r = e.resource.clone();
        set(&mut e, "credential.name", r);
        set(&mut e, "credential.owner", x.first(&["user", "actor"]));
    }
    e
}

/// Personal access tokens (fine-grained: requests and grants to the organisation; classic
/// and OAuth tokens: `oauth_access.*`).
fn token(x: &Entry) -> Event {
    let o = x.op.as_str();
    let name = match o {
        "access_granted" | "create" | "request_approved" => "api_key.created",
        "request_created" => "api_key.requested",
        "request_denied" => "api_key.request.denied",
        "request_cancelled" => "api_key.request.cancelled",
        "access_revoked" | "credential_revoked" | "revoke" => "api_key.revoked",
        "destroy" | "delete" => "api_key.deleted",
        "regenerate" | "update" => "api_key.rotated",
        other => {
            return named(
                x,
                &unknown_action(SRC, &format!("audit.{}.{other}", x.category)),
                x.first(&["user", "actor"]),
            )
        }
    };
    let mut e = x.base(name);
    let owner = x.first(&["user", "actor"]);
    let token_name = x.first(&["user_programmatic_access_name", "token_name", "name"]);
    e.resource = if token_name.is_empty() {
        owner.clone()
    } else {
        token_name.clone()
    };
    set(
        &mut e,
        "credential.kind",
        if x.category == "personal_access_token" {
            "fine_grained_personal_access_token"
        } else {
            "oauth_token"
        },
    );
    set(&mut e, "credential.name", token_name);
    set(
        &mut e,
        "credential.id",
        x.first(&["token_id", "user_programmatic_access_id", "oauth_access_id"]),
    );
    let mut scope = permissions_text(at(x.v, "permissions"));
    if scope.is_empty() {
        scope = scope_text(x.v, &["token_scopes", "scopes", "permission_added"]);
    }
    set(&mut e, "credential.scope", scope);
    // The token acts as its owner. An owner approving somebody's request grants it
    // (`approved_by`); it is the owner's token, not one the approver made for them.
    set(&mut e, "token.owner", owner.clone());
    if o == "access_granted" && !owner.is_empty() && owner != x.s("actor") {
        set(&mut e, "approved_by", x.s("actor"));
    } else if o != "access_granted" {
        set(&mut e, "credential.owner", owner);
    }
    e
}

fn installation(x: &Entry) -> Event {
    let o = x.op.as_str();
    let name = match o {
        "create" => "app.installed",
        "destroy" => "app.uninstalled",
        "suspend" => "app.suspended",
        "unsuspend" => "app.unsuspended",
        "repositories_added" => "app.repositories.added",
        "repositories_removed" => "app.repositories.removed",
        // New permissions accepted: the installation token grew.
        "version_updated" | "permissions_updated" => "credential.scope.increased",
        other => {
            return named(
                x,
                &unknown_action(SRC, &format!("audit.integration_installation.{other}")),
                x.first(&["integration", "name"]),
            )
        }
    };
    let mut e = x.base(name);
    let app = x.first(&["integration", "name", "app_slug"]);
    e.resource = app.clone();
    set(&mut e, "app", app);
    set(
        &mut e,
        "installation.id",
        x.first(&["installation_id", "id"]),
    );
    set(&mut e, "account", x.first(&["org", "user", "business"]));
    set(
        &mut e,
        "repository_selection",
        x.first(&["repository_selection", "repositories_selection"]),
    );
    let repos = match at(x.v, "repositories") {
        Some(Value::Array(_)) => strings(x.v, "repositories"),
        _ if !x.repo.is_empty() => vec![x.repo.clone()],
        _ => Vec::new(),
    };
    installation_reach(&mut e, at(x.v, "permissions"), &repos);
    e
}

/// `permission` / `permission.from`, and `escalated` where the entry shows both ends: a
/// change with its old value, an addition (from nothing), or a grant of `admin`.
fn escalation(e: &mut Event, to: &str, from: &str, added: bool) {
    set(e, "permission", to);
    set(e, "permission.from", from);
    if !to.is_empty() && (added || !from.is_empty() || to == "admin") {
        set(e, "escalated", permission_rank(to) > permission_rank(from));
    }
}

fn member(x: &Entry) -> Event {
    let o = x.op.as_str();
    let name = match o {
        "add_member" => "member.added",
        "remove_member" => "member.removed",
        "invite_member" => "member.invited",
        _ => "member.permission.changed",
    };
    let mut e = x.base(name);
    let who = x.first(&["user", "invitee", "email"]);
    e.resource = who.clone();
    set(&mut e, "member", who);
    set(&mut e, "repository", x.repo.clone());
    let to = x.first(&["permission", "role", "new_role"]);
    let from = x.first(&[
        "old_permission",
        "previous_permission",
        "old_role",
        "old_base_role",
    ]);
    if o == "update_member" || o == "add_member" {
        escalation(&mut e, &to, &from, o == "add_member");
    } else {
        set(&mut e, "permission", to);
    }
    e
}

fn team(x: &Entry) -> Event {
    let o = x.op.as_str();
    let name = match o {
        "add_repository" => "team.repository.added",
        "remove_repository" => "team.repository.removed",
        "update_repository_permission" => "team.permission.changed",
        "add_member" => "team.member.added",
        "remove_member" => "team.member.removed",
        "promote_maintainer" | "demote_maintainer" => "team.member.changed",
        "create" => "team.created",
        "destroy" => "team.deleted",
        other => {
            return named(
                x,
                &unknown_action(SRC, &format!("audit.team.{other}")),
                x.s("team"),
            )
        }
    };
    let mut e = x.base(name);
    // `team` is `org/slug`; the webhook names teams by slug.
    let team = x.s("team");
    let slug = team.rsplit('/').next().unwrap_or("").to_string();
    e.resource = slug.clone();
    set(&mut e, "team", slug);
    set(&mut e, "repository", x.repo.clone());
    set(&mut e, "member", x.s("user"));
    let to = x.first(&["permission", "new_permission"]);
    let from = x.first(&["old_permission", "previous_permission"]);
    if o == "update_repository_permission" {
        escalation(&mut e, &to, &from, false);
    } else {
        set(&mut e, "permission", to);
    }
    e
}

fn workflow_permission(x: &Entry, widened: bool, scope: &str, value: &str) -> Event {
    let resource = x.first(&["repo", "org", "business"]);
    if widened {
        let mut e = named(x, "credential.scope.increased", resource);
        set(&mut e, "credential.kind", "github_actions_token");
        set(&mut e, "credential.name", "GITHUB_TOKEN");
        set(&mut e, "credential.scope", scope);
        set(&mut e, "credential.scope.added", scope);
        set(&mut e, "setting", x.op.clone());
        set(&mut e, "setting.value", value);
        e
    } else {
        let mut e = named(x, "ci.settings.changed", resource);
        set(&mut e, "setting", x.op.clone());
        set(&mut e, "setting.value", value);
        set(&mut e, "widened", false);
        e
    }
}

fn hook(x: &Entry) -> Event {
    let o = x.op.as_str();
    let on = if x.repo.is_empty() { "org" } else { "repo" };
    let verb = match o {
        "create" => "created",
        "destroy" => "deleted",
        "config_changed" | "events_changed" | "active_changed" => "changed",
        other => other,
    };
    let mut e = x.base(&format!("{on}.webhook.{verb}"));
    let url = x.first(&["config.url", "hook_url", "url"]);
    e.resource = format!("hook/{}", x.first(&["hook_id", "id"]));
    set(&mut e, "hook.id", x.first(&["hook_id", "id"]));
    set(&mut e, "hook.url", url.clone());
    set(&mut e, "hook.events", strings(x.v, "events"));
    set(
        &mut e,
        "hook.active",
        at(x.v, "active").cloned().unwrap_or(Value::Null),
    );
    if let Some(host) = url_host(&url) {
        e.destination = Some(host);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::InMemory;

    fn map(body: &[u8], memory: &dyn Memory) -> Mapped {
        let adapter = GithubAuditAdapter::new(GithubAuditConfig {
            token: String::new(),
        });
        let headers = HeaderMap::new();
        let d = Delivery {
            headers: &headers,
            body,
            received: OffsetDateTime::UNIX_EPOCH,
        };
        adapter.map(&d, memory).unwrap()
    }

    #[test]
    fn an_entry_without_a_document_id_has_one_id_per_content() {
        let entry = json!({"action": "repo.create", "actor": "dana-ops", "org": "acme-example",
            "repo": "acme-example/ledger", "created_at": 1_793_610_900_000u64});
        let m = map(
            serde_json::to_vec(&json!([entry, entry]))
                .unwrap()
                .as_slice(),
            &InMemory::default(),
        );
        assert_eq!(m.events.len(), 2);
        assert_eq!(m.events[0].id, m.events[1].id);
        assert!(m.events[0].id.starts_with("github-audit:sha256-"));
        let other = json!({"action": "repo.create", "actor": "dana-ops", "org": "acme-example",
            "repo": "acme-example/ledger2", "created_at": 1_793_610_900_000u64});
        let n = map(
            serde_json::to_vec(&other).unwrap().as_slice(),
            &InMemory::default(),
        );
        assert_ne!(n.events[0].id, m.events[0].id);
    }

    /// A protected branch seen in the audit log is protected for the webhook's pushes too.
    #[test]
    fn protection_rules_are_remembered_for_the_webhooks_pushes() {
        let memory = InMemory::default();
        let create = json!({"action": "protected_branch.create", "actor": "dana-ops",
            "repo": "acme-example/ledger", "name": "release/*", "_document_id": "a1",
            "created_at": 1_793_610_900_000u64});
        let m = map(serde_json::to_vec(&create).unwrap().as_slice(), &memory);
        crate::adapter::apply(&memory, &m.remember).unwrap();
        let rules = memory.get(SRC, "protected", "acme-example/ledger").unwrap();
        assert_eq!(rules["audit:release/*"], json!("release/*"));
        let mut destroy = create.clone();
        destroy["action"] = json!("protected_branch.destroy");
        destroy["_document_id"] = json!("a2");
        let m = map(serde_json::to_vec(&destroy).unwrap().as_slice(), &memory);
        crate::adapter::apply(&memory, &m.remember).unwrap();
        let rules = memory.get(SRC, "protected", "acme-example/ledger").unwrap();
        assert!(rules.as_object().unwrap().is_empty(), "{rules}");
    }

    #[test]
    fn the_endpoint_is_github_audit_and_events_are_githubs() {
        let a = GithubAuditAdapter::new(GithubAuditConfig { token: "t".into() });
        assert_eq!(a.endpoint(), "github-audit");
        assert_eq!(a.source(), Source::Github);
        assert_eq!(a.token(), "t");
    }
}
