//! GitLab audit events, streamed (`X-Gitlab-Event-Streaming-Token`) or exported
//! (`GET /audit_events`), onto the vocabulary the GitHub adapter speaks:
//!
//! - protected branches (`protected_branch_*`) → `branch.protection.enabled / changed /
//!   disabled` on the branch, `weakened` when force pushes are allowed, code-owner
//!   approval is dropped or more roles may push or merge; the branch is remembered as
//!   protected, so pushes to it count as protected where the push hook does not say;
//! - the project's merge gates (approval settings, approval rules, merge checks, merge
//!   method, push rules) → `branch.protection.changed` with `protection.scope` =
//!   `repository` (they hold for every protected branch), one `resource` per setting;
//! - visibility, members, group links, access and deploy tokens, admin status → the
//!   `repo.visibility.changed`, `member.*`, `team.*`, `api_key.*` and `admin.role.*`
//!   actions the credential and drift detectors read.
//!
//! GitLab audits a setting only when it changes, so a boolean's new value alone says
//! which way it moved. What a type says is read from `details` (`change`, `from`, `to`),
//! falling back to its `custom_message` ("Changed allow force push from false to true").

use std::collections::BTreeSet;

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{account, first, Mapped, Memory, SRC};
use crate::map::{at, content_id, event, parse_time, s, set, strings, unknown_action};

/// Adapter memory kind: project path → `{"<branch pattern>": true}` for its protected
/// branches, as audit events showed them.
pub(super) const PROTECTED: &str = "protected";

/// Adapter memory kind: project path → its merge method as last audited.
const MERGE_METHOD: &str = "merge_method";

/// The protected-branch pattern covering `branch` of `project`, if audit events showed
/// one. GitLab's wildcard `*` matches any run of characters, `/` included: the contract's
/// name glob.
pub(super) fn protected_by(memory: &dyn Memory, project: &str, branch: &str) -> Option<String> {
    let rules = memory.get(SRC, PROTECTED, project)?;
    rules
        .as_object()?
        .keys()
        .find(|pattern| plumbline_contract::glob::matches(pattern, branch))
        .cloned()
}

/// One audit event (streamed or exported) → one normalised event.
pub(super) fn audit(
    p: &Value,
    index: usize,
    header_type: &str,
    received: OffsetDateTime,
    memory: &dyn Memory,
    out: &mut Mapped,
) {
    let kind = [
        header_type.to_string(),
        s(p, "event_type"),
        s(p, "event_name"),
        s(p, "details.event_name"),
    ]
    .into_iter()
    .find(|k| !k.is_empty())
    .unwrap_or_else(|| "audit_operation".into());
    let id = match s(p, "id") {
        x if x.is_empty() => content_id(&serde_json::to_vec(p).unwrap_or_default()),
        x => x,
    };
    let author = first(p, &["author_name", "details.author_name"]);
    let author_id = s(p, "author_id");
    let who = if author.is_empty() {
        format!("gitlab-user-{author_id}")
    } else {
        author.clone()
    };
    let mut e = event(
        SRC,
        format!("gitlab:audit:{id}"),
        at(p, "created_at").and_then(parse_time).unwrap_or(received),
        account(&who, &author),
        &first(p, &["entity_path", "details.entity_path"]),
        &unknown_action(SRC, &kind),
    );
    let target = first(p, &["target_details", "details.target_details"]);
    e.resource = target.clone();
    let message = s(p, "details.custom_message");
    let change = Change::of(p, &message);
    set(&mut e, "source_event", kind.clone());
    set(&mut e, "author_id", author_id);
    set(&mut e, "author_class", s(p, "details.author_class"));
    set(&mut e, "entity_type", s(p, "entity_type"));
    set(
        &mut e,
        "target_type",
        first(p, &["target_type", "details.target_type"]),
    );
    set(
        &mut e,
        "target_id",
        first(p, &["target_id", "details.target_id"]),
    );
    set(
        &mut e,
        "ip",
        first(p, &["ip_address", "details.ip_address"]),
    );
    set(&mut e, "message", message.clone());
    set(&mut e, "change", change.what.clone());
    set(&mut e, "change.from", change.from.clone());
    set(&mut e, "change.to", change.to.clone());
    for k in [
        "allow_force_push",
        "code_owner_approval_required",
        "push_access_levels",
        "merge_access_levels",
    ] {
        if let Some(v) = at(p, &format!("details.{k}")).or_else(|| at(p, k)) {
            let v = if v.is_array() {
                Value::String(list(v).join(","))
            } else {
                v.clone()
            };
            set(&mut e, &format!("protection.{k}"), v);
        }
    }
    let project = e.system.clone();
    let action = match kind.as_str() {
        "protected_branch_created" | "protected_branch_removed" => {
            let created = kind == "protected_branch_created";
            set(&mut e, "rule.pattern", target.clone());
            set(&mut e, "weakened", !created);
            remember_protected(out, memory, &project, &target, created);
            if created {
                "branch.protection.enabled"
            } else {
                "branch.protection.disabled"
            }
        }
        k if k.starts_with("protected_branch_") => {
            set(&mut e, "rule.pattern", target.clone());
            remember_protected(out, memory, &project, &target, true);
            let field = field_of(k, &change.what);
            gate(&mut e, &field, weakening(&field, &change));
            "branch.protection.changed"
        }
        "project_visibility_level_updated" | "group_visibility_level_updated" => {
            visibility(&mut e, &change);
            "repo.visibility.changed"
        }
        _ if matches!(change.what.as_str(), "visibility" | "visibility_level") => {
            visibility(&mut e, &change);
            "repo.visibility.changed"
        }
        "member_created" | "member_updated" | "member_destroyed" => {
            member(&mut e, p, &kind, &change)
        }
        "project_group_link_created"
        | "project_group_link_updated"
        | "project_group_link_deleted"
        | "group_share_with_group_link_created"
        | "group_share_with_group_link_updated"
        | "group_share_with_group_link_removed" => group_link(&mut e, p, &kind, &change),
        "user_admin_status_updated"
        | "custom_admin_role_assigned_to_user"
        | "custom_admin_role_unassigned_from_user" => {
            let granted = if kind == "user_admin_status_updated" {
                truth(&change.to) == Some(true)
            } else {
                kind.ends_with("_assigned_to_user")
            };
            set(&mut e, "member", target.clone());
            set(&mut e, "role", "admin");
            if granted {
                "admin.role.granted"
            } else {
                "admin.role.revoked"
            }
        }
        "deploy_key_added" | "deploy_key_created" => {
            // GitLab's audit event does not say whether the key can push.
            set(&mut e, "key.title", target.clone());
            "deploy_key.created"
        }
        "deploy_key_removed" | "deploy_key_deleted" => {
            set(&mut e, "key.title", target.clone());
            "deploy_key.deleted"
        }
        "project_export_file_download_started" | "group_export_file_download_started" => {
            "data.export"
        }
        "repository_download_operation" | "public_repository_download_operation" => "data.download",
        "secure_ci_job_token_inbound_disabled" | "secure_ci_job_token_inbound_enabled" => {
            // Any project's CI job token may (again, no longer) reach this one.
            e.resource = "ci_job_token.inbound".into();
            if kind.ends_with("_disabled") {
                "network.allowlist.disabled"
            } else {
                "network.allowlist.enabled"
            }
        }
        _ => {
            if let Some(action) = token(&mut e, p, &kind, &message) {
                action
            } else if let Some(field) = repository_gate(&kind, &change) {
                if kind.starts_with("approval_rule") {
                    set(&mut e, "approval_rule", target.clone());
                }
                let weakened = match field.as_str() {
                    "merge_method" => merge_method(out, memory, &project, &change),
                    "approval_rules" => approval_rules(&kind, &change),
                    f => weakening(f, &change),
                };
                e.resource = field.clone();
                set(&mut e, "protection.scope", "repository");
                gate(&mut e, &field, weakened);
                "branch.protection.changed"
            } else {
                ""
            }
        }
    };
    if !action.is_empty() {
        e.action = action.to_string();
    }
    out.push(index, e);
}

/// What changed, from what to what: `details.change/from/to`, else the custom message
/// `Changed <what> from <a> to <b>` (or `… to <b>`).
#[derive(Debug, Default)]
struct Change {
    what: String,
    from: Value,
    to: Value,
}

impl Change {
    fn of(p: &Value, message: &str) -> Change {
        let what = s(p, "details.change");
        if !what.is_empty() {
            return Change {
                what,
                from: at(p, "details.from").cloned().unwrap_or(Value::Null),
                to: at(p, "details.to").cloned().unwrap_or(Value::Null),
            };
        }
        let Some(rest) = message.strip_prefix("Changed ") else {
            return Change::default();
        };
        let text = |v: &str| Value::String(v.trim().trim_end_matches('.').to_string());
        match (rest.find(" from "), rest.rfind(" to ")) {
            (Some(f), Some(t)) if f < t => Change {
                what: rest[..f].to_string(),
                from: text(&rest[f + 6..t]),
                to: text(&rest[t + 4..]),
            },
            (None, Some(t)) => Change {
                what: rest[..t].to_string(),
                from: Value::Null,
                to: text(&rest[t + 4..]),
            },
            _ => Change::default(),
        }
    }
}

/// A setting's name: the audit type without its scope and `_updated`
/// (`protected_branch_allow_force_push_updated` → `allow_force_push`), or the change
/// itself for types that cover several (`protected_branch_updated`: `allowed_to_push`).
fn field_of(kind: &str, change: &str) -> String {
    let mut stem = kind.strip_suffix("_updated").unwrap_or(kind);
    for prefix in [
        "protected_branch_",
        "protected_branch",
        "project_",
        "group_",
    ] {
        stem = stem.strip_prefix(prefix).unwrap_or(stem);
    }
    if stem.is_empty() {
        normalise(change)
    } else {
        stem.to_string()
    }
}

/// `allow force push` → `allow_force_push`.
fn normalise(text: &str) -> String {
    text.to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// The project-wide merge gates: settings and rules that hold for every protected branch.
fn repository_gate(kind: &str, change: &Change) -> Option<String> {
    if matches!(
        kind,
        "approval_rule_created" | "approval_rule_deleted" | "update_approval_rules"
    ) {
        return Some("approval_rules".into());
    }
    let field = field_of(kind, &change.what);
    let known = field == "merge_method"
        || field.starts_with("push_rules_")
        || PROTECTIVE.contains(&field.as_str())
        || PERMISSIVE.contains(&field.as_str())
        || FEWER_IS_WEAKER.iter().any(|f| field.contains(f));
    known.then_some(field)
}

/// Settings that protect when on (turning them off weakens the merge gate).
const PROTECTIVE: &[&str] = &[
    "code_owner_approval_required",
    "merge_requests_disable_committers_approval",
    "reset_approvals_on_push",
    "disable_overriding_approvers_per_merge_request",
    "require_password_to_approve",
    "require_reauthentication_to_approve",
    "only_allow_merge_if_pipeline_succeeds",
    "only_allow_merge_if_all_discussions_are_resolved",
    "selective_code_owner_removals",
    "push_rules_prevent_secrets",
    "push_rules_reject_unsigned_commits",
    "push_rules_commit_committer_check",
    "push_rules_reject_member_check",
    "push_rules_reject_non_dco_commits",
    "push_rules_reject_deny_delete_tag",
];

/// Settings that loosen when on.
const PERMISSIVE: &[&str] = &[
    "allow_force_push",
    "merge_requests_author_approval",
    "allow_merge_on_skipped_pipeline",
    "allow_author_approval",
    "allow_committer_approval",
    "allow_overrides_to_approver_list_per_merge_request",
    "retain_approvals_on_push",
];

/// Counts where fewer is weaker.
const FEWER_IS_WEAKER: &[&str] = &["approvals_before_merge", "approvals_required"];

/// Whether a change to `field` weakened the gate; `None` when the direction is unknown.
fn weakening(field: &str, c: &Change) -> Option<bool> {
    let what = c.what.to_ascii_lowercase();
    // GitLab words some settings the other way round ("prevent merge request approval
    // from authors") and audits them with that wording's values.
    if what.contains("prevent") || PROTECTIVE.contains(&field) {
        return truth(&c.to).map(|on| !on);
    }
    if PERMISSIVE.contains(&field) {
        return truth(&c.to);
    }
    if FEWER_IS_WEAKER.iter().any(|f| field.contains(f)) {
        return Some(number(&c.to)? < number(&c.from)?);
    }
    if field.starts_with("allowed_to_") {
        return Some(access_widened(&list(&c.from), &list(&c.to)));
    }
    if field.ends_with("_regex") {
        let empty = |v: &Value| v.as_str().is_none_or(|x| x.trim().is_empty());
        return Some(empty(&c.to) && !empty(&c.from));
    }
    if field == "push_rules_max_file_size" {
        let (from, to) = (number(&c.from)?, number(&c.to)?);
        return Some(from > 0 && (to == 0 || to > from));
    }
    None
}

fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_u64().map(|n| n != 0),
        Value::String(x) => match x.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" | "enabled" => Some(true),
            "false" | "0" | "no" | "off" | "disabled" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(x) => x.trim().parse().ok(),
        _ => None,
    }
}

/// A list of access levels as GitLab audits them: a JSON array, or its text.
fn list(v: &Value) -> Vec<String> {
    let parsed;
    let v = match v {
        Value::String(x) if x.trim_start().starts_with('[') => {
            parsed = serde_json::from_str::<Value>(x).unwrap_or(Value::Null);
            &parsed
        }
        Value::String(x) => {
            return x
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        }
        other => other,
    };
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// The lowest role an access-level entry lets through (`No one`: nobody), `None` for an
/// entry naming one user, group or deploy key.
fn access_floor(entry: &str) -> Option<u8> {
    let e = entry.to_ascii_lowercase();
    if e.contains("no one") || e == "no access" {
        Some(u8::MAX)
    } else if e.contains("developer") {
        Some(30)
    } else if e.contains("maintainer") {
        Some(40)
    } else if e.contains("owner") {
        Some(50)
    } else if e.contains("admin") {
        Some(60)
    } else {
        None
    }
}

/// More may push or merge now: a lower role floor, or a user, group or key added.
fn access_widened(from: &[String], to: &[String]) -> bool {
    let floor = |l: &[String]| l.iter().filter_map(|x| access_floor(x)).min();
    let named = |l: &[String]| -> BTreeSet<String> {
        l.iter()
            .filter(|x| access_floor(x).is_none())
            .cloned()
            .collect()
    };
    let lower = match (floor(from), floor(to)) {
        (Some(f), Some(t)) => t < f,
        (None, Some(t)) => t < u8::MAX,
        _ => false,
    };
    lower || !named(to).is_subset(&named(from))
}

/// Records a setting change the way branch-protection edits are recorded:
/// `changes.<field>.from`, `weakened`, `weakened.fields`.
fn gate(e: &mut crate::Event, field: &str, weakened: Option<bool>) {
    let from = match e.attributes.get("change.from") {
        Some(v) if v.is_array() || v.is_object() => Value::String(v.to_string()),
        Some(v) => v.clone(),
        // The change is known even where its old value is not.
        None => Value::String("unknown".into()),
    };
    set(e, "setting", field);
    set(e, &format!("changes.{field}.from"), from);
    if let Some(w) = weakened {
        set(e, "weakened", w);
        if w {
            set(e, "weakened.fields", field);
        }
    }
}

/// Merge methods from loosest to strictest: only a merge commit drops the requirement
/// that what lands was tested as rebased on the target (GitHub's linear history).
fn method_rank(method: &str) -> Option<u8> {
    let m = method.to_ascii_lowercase();
    if m.contains("fast-forward") || m.contains("fast forward") || m == "ff" {
        Some(2)
    } else if m.contains("semi-linear") || m.contains("rebase") {
        Some(1)
    } else if m.contains("merge commit") || m == "merge" {
        Some(0)
    } else {
        None
    }
}

fn merge_method(out: &mut Mapped, memory: &dyn Memory, project: &str, c: &Change) -> Option<bool> {
    let to = c.to.as_str().unwrap_or("").to_string();
    let from = match c.from.as_str() {
        Some(f) => Some(f.to_string()),
        None => out
            .recall(memory, SRC, MERGE_METHOD, project)
            .and_then(|v| v.as_str().map(str::to_string)),
    };
    if !to.is_empty() {
        out.remember(SRC, MERGE_METHOD, project, Some(json!(to)));
    }
    let to = method_rank(&to)?;
    match from.as_deref().and_then(method_rank) {
        Some(from) => Some(to < from),
        // Audited only on a change: the loosest method is a loosening, the strictest not.
        None => match to {
            0 => Some(true),
            2 => Some(false),
            _ => None,
        },
    }
}

fn approval_rules(kind: &str, c: &Change) -> Option<bool> {
    match kind {
        "approval_rule_created" => Some(false),
        "approval_rule_deleted" => Some(true),
        _ => Some(number(&c.to)? < number(&c.from)?),
    }
}

fn remember_protected(
    out: &mut Mapped,
    memory: &dyn Memory,
    project: &str,
    pattern: &str,
    protected: bool,
) {
    if project.is_empty() || pattern.is_empty() {
        return;
    }
    let mut rules = out
        .recall(memory, SRC, PROTECTED, project)
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let known = rules.contains_key(pattern);
    if protected == known {
        return;
    }
    if protected {
        rules.insert(pattern.to_string(), json!(true));
    } else {
        rules.remove(pattern);
    }
    out.remember(SRC, PROTECTED, project, Some(Value::Object(rules)));
}

fn visibility(e: &mut crate::Event, c: &Change) {
    let level = |v: &Value| v.as_str().unwrap_or("").to_ascii_lowercase();
    let (from, to) = (level(&c.from), level(&c.to));
    let rank = |l: &str| match l {
        "private" => Some(0),
        "internal" => Some(10),
        "public" => Some(20),
        _ => None,
    };
    if let (Some(f), Some(t)) = (rank(&from), rank(&to)) {
        set(e, "widened", t > f);
    }
    set(e, "visibility", to);
    set(e, "visibility.from", from);
}

/// GitLab roles, lowest to highest (`Minimal Access` … `Owner`).
fn role_rank(role: &str) -> Option<u8> {
    match role.trim().to_ascii_lowercase().as_str() {
        "no access" => Some(0),
        "minimal access" => Some(5),
        "guest" => Some(10),
        "planner" => Some(15),
        "reporter" => Some(20),
        "developer" => Some(30),
        "maintainer" => Some(40),
        "owner" => Some(50),
        _ => None,
    }
}

fn member(e: &mut crate::Event, p: &Value, kind: &str, c: &Change) -> &'static str {
    let who = e.resource.clone();
    set(e, "member", who);
    match kind {
        "member_created" => {
            let role = s(p, "details.as").to_ascii_lowercase();
            set(e, "permission", role.clone());
            set(e, "role", role);
            "member.added"
        }
        "member_destroyed" => "member.removed",
        _ => {
            if normalise(&c.what) == "access_level" {
                let text = |v: &Value| v.as_str().unwrap_or("").to_ascii_lowercase();
                let (from, to) = (text(&c.from), text(&c.to));
                if let (Some(f), Some(t)) = (role_rank(&from), role_rank(&to)) {
                    set(e, "escalated", t > f);
                }
                set(e, "permission", to);
                set(e, "permission.from", from);
            }
            "member.permission.changed"
        }
    }
}

fn group_link(e: &mut crate::Event, p: &Value, kind: &str, c: &Change) -> &'static str {
    let group = e.resource.clone();
    set(e, "team", group);
    let role = match s(p, "details.as") {
        r if r.is_empty() => c.to.as_str().unwrap_or("").to_string(),
        r => r,
    }
    .to_ascii_lowercase();
    if kind.ends_with("_updated") {
        let from = c.from.as_str().unwrap_or("").to_ascii_lowercase();
        if let (Some(f), Some(t)) = (role_rank(&from), role_rank(&role)) {
            set(e, "escalated", t > f);
        }
        set(e, "permission.from", from);
        set(e, "permission", role);
        return "team.permission.changed";
    }
    set(e, "permission", role);
    if kind.ends_with("_created") {
        "team.repository.added"
    } else {
        "team.repository.removed"
    }
}

/// Access, deploy and agent tokens: created, revoked, deleted. Their scopes are in the
/// details or the message (`… with scopes: [:api, :read_repository] and Maintainer access
/// level.`), their name in the message or the target; a personal access token's owner
/// (`credential.owner`) is its target user.
fn token(e: &mut crate::Event, p: &Value, kind: &str, message: &str) -> Option<&'static str> {
    const KINDS: [&str; 6] = [
        "personal_access_token",
        "project_access_token",
        "group_access_token",
        "group_deploy_token",
        "deploy_token",
        "cluster_agent_token",
    ];
    let credential = KINDS.iter().find(|k| kind.starts_with(*k))?;
    let action = match &kind[credential.len()..] {
        "_created" => "api_key.created",
        "_revoked" => "api_key.revoked",
        "_deleted" | "_destroyed" => "api_key.deleted",
        _ => return None,
    };
    let mut scopes = strings(p, "details.scopes");
    if scopes.is_empty() {
        if let Some(rest) = message.split("scopes: [").nth(1) {
            scopes = rest
                .split(']')
                .next()
                .unwrap_or("")
                .split(',')
                .map(|x| x.trim().trim_matches(|c| c == ':' || c == '"').to_string())
                .filter(|x| !x.is_empty())
                .collect();
        }
    }
    let name = message
        .split("with name: ")
        .nth(1)
        .and_then(|rest| rest.split(" with ").next())
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    // A personal access (or impersonation) token is audited with its owner as the target
    // user and no name: an administrator can create one for somebody else
    // (`POST /users/:id/personal_access_tokens`), a credential that acts as that person.
    let owner = (*credential == "personal_access_token"
        && first(p, &["target_type", "details.target_type"]) == "User")
        .then(|| e.resource.clone())
        .filter(|o| !o.is_empty());
    let id = ["with token_id: ", "with id "]
        .iter()
        .find_map(|k| message.split(k).nth(1))
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .filter(|id| !id.is_empty());
    match (name, &owner, &id) {
        (Some(name), _, _) => e.resource = name,
        (None, Some(_), Some(id)) => e.resource = format!("personal access token {id}"),
        _ => {}
    }
    if let Some(owner) = owner {
        set(e, "credential.owner", owner);
    }
    set(e, "credential.id", id.unwrap_or_default());
    let role = message
        .split(" and ")
        .last()
        .and_then(|rest| rest.strip_suffix(" access level."))
        .map(str::to_ascii_lowercase);
    let resource = e.resource.clone();
    set(e, "credential.kind", *credential);
    set(e, "credential.name", resource);
    set(e, "credential.scope", scopes.join(","));
    set(e, "credential.role", role.unwrap_or_default());
    set(e, "credential.expires_at", s(p, "details.expires_at"));
    Some(action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_patterns_match_as_gitlab_wildcards_do() {
        let memory = crate::adapter::InMemory::default();
        let rules = json!({"main": true, "release/*": true, "*-stable": true});
        memory
            .remember(SRC, PROTECTED, "finance/ledger", Some(&rules))
            .unwrap();
        let covered = |branch| protected_by(&memory, "finance/ledger", branch);
        assert_eq!(covered("main"), Some("main".into()));
        assert_eq!(covered("release/1/2"), Some("release/*".into()));
        assert_eq!(covered("16-4-stable"), Some("*-stable".into()));
        assert_eq!(covered("main2"), None);
        assert_eq!(covered("hotfix/1"), None);
    }

    #[test]
    fn changes_are_read_from_details_or_the_message() {
        let c = Change::of(
            &json!({"details": {}}),
            "Changed allow force push from false to true",
        );
        assert_eq!(c.what, "allow force push");
        assert_eq!((c.from, c.to), (json!("false"), json!("true")));
        let c = Change::of(&json!({}), "Changed merge method to Merge commit");
        assert_eq!(c.what, "merge method");
        assert_eq!(c.to, json!("Merge commit"));
        let c = Change::of(
            &json!({"details": {"change": "visibility", "from": "Private", "to": "Internal"}}),
            "ignored",
        );
        assert_eq!(c.what, "visibility");
    }

    #[test]
    fn weakenings_read_each_settings_polarity() {
        let change = |what: &str, from: Value, to: Value| Change {
            what: what.into(),
            from,
            to,
        };
        let w = |kind: &str, c: Change| weakening(&field_of(kind, &c.what), &c);
        assert_eq!(
            w(
                "protected_branch_allow_force_push_updated",
                change("allow force push", json!(false), json!(true))
            ),
            Some(true)
        );
        assert_eq!(
            w(
                "protected_branch_code_owner_approval_required_updated",
                change("code owner approval required", json!(true), json!(false))
            ),
            Some(true)
        );
        // "prevent …" wording: the values say whether authors are prevented.
        assert_eq!(
            w(
                "project_merge_requests_author_approval_updated",
                change(
                    "prevent merge request approval from authors",
                    json!(true),
                    json!(false)
                )
            ),
            Some(true)
        );
        assert_eq!(
            w(
                "project_merge_requests_author_approval_updated",
                change("merge_requests_author_approval", json!(true), json!(false))
            ),
            Some(false)
        );
        assert_eq!(
            w(
                "project_only_allow_merge_if_pipeline_succeeds_updated",
                change(
                    "only_allow_merge_if_pipeline_succeeds",
                    json!(false),
                    json!(true)
                )
            ),
            Some(false)
        );
        assert_eq!(
            w(
                "project_approvals_before_merge_updated",
                change("approvals_before_merge", json!(2), json!(0))
            ),
            Some(true)
        );
        assert_eq!(
            w(
                "protected_branch_updated",
                change(
                    "allowed to push and merge",
                    json!(["Maintainers"]),
                    json!(["Developers + Maintainers"])
                )
            ),
            Some(true)
        );
        assert_eq!(
            w(
                "protected_branch_updated",
                change(
                    "allowed to merge",
                    json!(["Developers + Maintainers"]),
                    json!(["Maintainers"])
                )
            ),
            Some(false)
        );
        assert_eq!(
            w(
                "protected_branch_updated",
                change(
                    "allowed to push",
                    json!(["No one"]),
                    json!(["No one", "erin"])
                )
            ),
            Some(true)
        );
    }
}
