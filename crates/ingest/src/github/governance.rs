//! GitHub governance deliveries: branch protection rules and rulesets, repository
//! settings, members, teams and their permissions, deploy keys.

use serde_json::{json, Value};

use super::{at, b, content_id, copy, s, segment, set, Ctx, Mapped, Memory, SRC};

/// Changes that make a branch protection rule weaker (from → now).
fn weakened(changes: &Value, rule: &Value) -> Vec<String> {
    let Some(changes) = changes.as_object() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (field, change) in changes {
        let from = at(change, "from").cloned().unwrap_or(Value::Null);
        let now = at(rule, field).cloned().unwrap_or(Value::Null);
        let weaker = match field.as_str() {
            "required_approving_review_count" => {
                now.as_u64().unwrap_or(0) < from.as_u64().unwrap_or(0)
            }
            // Allowances: "off" means not allowed; anything else loosens the rule.
            "allow_force_pushes_enforcement_level" | "allow_deletions_enforcement_level" => {
                from.as_str() == Some("off") && now.as_str() != Some("off")
            }
            f if f.ends_with("_enforcement_level") || f.ends_with("_level") => {
                from.as_str().is_some_and(|x| x != "off") && now.as_str() == Some("off")
            }
            "admin_enforced"
            | "dismiss_stale_reviews_on_push"
            | "require_code_owner_review"
            | "require_last_push_approval"
            | "strict_required_status_checks_policy"
            | "lock_branch_enforcement_level" => {
                from.as_bool() == Some(true) && now.as_bool() != Some(true)
            }
            "required_status_checks" => {
                let n = |v: &Value| v.as_array().map(Vec::len).unwrap_or(0);
                n(&now) < n(&from)
            }
            _ => false,
        };
        if weaker {
            out.push(field.clone());
        }
    }
    out
}

pub(super) fn protection_rule(ctx: &Ctx, memory: &dyn Memory, out: &mut Mapped) {
    let p = ctx.p;
    let rule = at(p, "rule").cloned().unwrap_or(Value::Null);
    let pattern = s(&rule, "name");
    let action = s(p, "action");
    let changes = at(p, "changes").cloned().unwrap_or(Value::Null);
    let weaker = weakened(&changes, &rule);
    let name = match action.as_str() {
        "created" => "branch.protection.enabled",
        "deleted" => "branch.protection.disabled",
        _ => "branch.protection.changed",
    };
    let mut e = ctx.base(name, "");
    e.time = ctx.time_at(&["rule.updated_at", "rule.created_at"]);
    e.resource = pattern.clone();
    set(&mut e, "rule.id", s(&rule, "id"));
    set(&mut e, "rule.pattern", pattern.clone());
    for k in [
        "required_approving_review_count",
        "pull_request_reviews_enforcement_level",
        "required_status_checks_enforcement_level",
        "allow_force_pushes_enforcement_level",
        "allow_deletions_enforcement_level",
        "admin_enforced",
        "require_code_owner_review",
        "dismiss_stale_reviews_on_push",
        "signature_requirement_enforcement_level",
        "linear_history_requirement_enforcement_level",
    ] {
        copy(&mut e, &format!("rule.{k}"), &rule, k);
    }
    if let Some(m) = changes.as_object() {
        for (field, change) in m {
            if let Some(from) = at(change, "from") {
                let v = if from.is_object() || from.is_array() {
                    Value::String(from.to_string())
                } else {
                    from.clone()
                };
                set(&mut e, &format!("changes.{field}.from"), v);
            }
        }
    }
    set(
        &mut e,
        "weakened",
        !weaker.is_empty() || action == "deleted",
    );
    set(&mut e, "weakened.fields", weaker.join(","));
    out.push(0, e);

    let rule_id = s(&rule, "id");
    let mut rules = out
        .recall(memory, SRC, "protected", &ctx.repo)
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    if action == "deleted" {
        rules.remove(&rule_id);
    } else if !pattern.is_empty() {
        rules.insert(rule_id, json!(pattern));
    }
    out.remember(SRC, "protected", &ctx.repo, Some(Value::Object(rules)));
}

pub(super) fn ruleset(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let rs = at(p, "repository_ruleset").cloned().unwrap_or(Value::Null);
    let action = s(p, "action");
    let mut e = ctx.base("repo.ruleset.changed", "");
    e.time = ctx.time_at(&[
        "repository_ruleset.updated_at",
        "repository_ruleset.created_at",
    ]);
    e.resource = s(&rs, "name");
    set(&mut e, "ruleset.action", action.clone());
    set(&mut e, "ruleset.id", s(&rs, "id"));
    set(&mut e, "ruleset.name", s(&rs, "name"));
    set(&mut e, "ruleset.target", s(&rs, "target"));
    set(&mut e, "ruleset.source_type", s(&rs, "source_type"));
    set(&mut e, "ruleset.enforcement", s(&rs, "enforcement"));
    let rules: Vec<String> = at(&rs, "rules")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|r| s(r, "type"))
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    set(&mut e, "ruleset.rules", rules.join(","));
    let from = s(p, "changes.enforcement.from");
    set(&mut e, "changes.enforcement.from", from.clone());
    let now = s(&rs, "enforcement");
    let weakened = action == "deleted" || (from == "active" && now != "active");
    set(&mut e, "weakened", weakened);
    out.push(0, e);
}

pub(super) fn repository(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let action = s(p, "action");
    let name = match action.as_str() {
        "publicized" | "privatized" => "repo.visibility.changed".to_string(),
        other => format!("repo.{}", segment(other)),
    };
    let mut e = ctx.base(&name, "");
    e.time = ctx.time_at(&["repository.updated_at"]);
    e.resource = ctx.repo.clone();
    // How much a visibility change exposes: an empty repository (size 0 KB) exposes nothing.
    copy(&mut e, "repo.size_kb", p, "repository.size");
    match action.as_str() {
        "publicized" => {
            set(&mut e, "visibility", "public");
            set(&mut e, "visibility.from", "private");
        }
        "privatized" => {
            set(&mut e, "visibility", "private");
            set(&mut e, "visibility.from", "public");
        }
        _ => {}
    }
    if let Some(m) = at(p, "changes").and_then(Value::as_object) {
        for (field, change) in m {
            let from = at(change, "from.name").or_else(|| at(change, "from"));
            if let Some(v) = from.filter(|v| !v.is_object()) {
                set(&mut e, &format!("changes.{field}.from"), v.clone());
            }
        }
    }
    out.push(0, e);
}

const PERMISSION_ORDER: &[&str] = &[
    "none", "read", "pull", "triage", "write", "push", "maintain", "admin",
];

pub(crate) fn rank(p: &str) -> usize {
    match p {
        "pull" => 1,
        "push" => 4,
        other => PERMISSION_ORDER
            .iter()
            .position(|x| *x == other)
            .unwrap_or(0),
    }
}

pub(super) fn member(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let action = s(p, "action");
    let name = match action.as_str() {
        "added" => "member.added",
        "removed" => "member.removed",
        _ => "member.permission.changed",
    };
    let mut e = ctx.base(name, "");
    e.resource = s(p, "member.login");
    set(&mut e, "member", s(p, "member.login"));
    let to = match s(p, "changes.permission.to") {
        t if t.is_empty() => s(p, "changes.role_name.to"),
        t => t,
    };
    let from = match s(p, "changes.permission.from") {
        f if f.is_empty() => s(p, "changes.old_permission.from"),
        f => f,
    };
    set(&mut e, "permission", to.clone());
    set(&mut e, "permission.from", from.clone());
    if !to.is_empty() {
        set(&mut e, "escalated", rank(&to) > rank(&from));
    }
    out.push(0, e);
}

pub(super) fn organization(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let action = s(p, "action");
    let name = match action.as_str() {
        "member_added" => "member.added".to_string(),
        "member_removed" => "member.removed".to_string(),
        "member_invited" => "member.invited".to_string(),
        other => format!("org.{}", segment(other)),
    };
    let mut e = ctx.base(&name, "");
    let login = match s(p, "membership.user.login") {
        l if l.is_empty() => s(p, "user.login"),
        l => l,
    };
    e.resource = login.clone();
    set(&mut e, "member", login);
    set(&mut e, "role", s(p, "membership.role"));
    set(&mut e, "invitation.role", s(p, "invitation.role"));
    out.push(0, e);
}

/// The highest permission in a GitHub `permissions` object (`{admin, maintain, push, ...}`).
fn highest(perms: &Value) -> String {
    let Some(m) = perms.as_object() else {
        return String::new();
    };
    m.iter()
        .filter(|(_, v)| v.as_bool() == Some(true))
        .map(|(k, _)| k.as_str())
        .max_by_key(|k| rank(k))
        .unwrap_or("")
        .to_string()
}

pub(super) fn team(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let action = s(p, "action");
    let perm_change = at(p, "changes.repository.permissions.from");
    let name = match action.as_str() {
        "edited" if perm_change.is_some() => "team.permission.changed".to_string(),
        "added_to_repository" => "team.repository.added".to_string(),
        "removed_from_repository" => "team.repository.removed".to_string(),
        "created" => "team.created".to_string(),
        "deleted" => "team.deleted".to_string(),
        other => format!("team.{}", segment(other)),
    };
    let mut e = ctx.base(&name, "");
    e.resource = s(p, "team.slug");
    set(&mut e, "team", s(p, "team.slug"));
    set(&mut e, "team.privacy", s(p, "team.privacy"));
    set(&mut e, "repository", ctx.repo.clone());
    let to = highest(at(p, "repository.permissions").unwrap_or(&Value::Null));
    set(&mut e, "permission", to.clone());
    if let Some(from) = perm_change {
        let from = highest(from);
        set(&mut e, "permission.from", from.clone());
        set(&mut e, "escalated", rank(&to) > rank(&from));
    }
    out.push(0, e);
}

pub(super) fn deploy_key(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let action = s(p, "action");
    let name = match action.as_str() {
        "created" => "deploy_key.created".to_string(),
        "deleted" => "deploy_key.deleted".to_string(),
        other => format!("deploy_key.{}", segment(other)),
    };
    let mut e = ctx.base(&name, "");
    e.time = ctx.time_at(&["key.created_at"]);
    e.resource = s(p, "key.title");
    set(&mut e, "key.id", s(p, "key.id"));
    set(&mut e, "key.title", s(p, "key.title"));
    set(&mut e, "read_only", b(p, "key.read_only").unwrap_or(false));
    set(
        &mut e,
        "key.verified",
        at(p, "key.verified").cloned().unwrap_or(Value::Null),
    );
    // The public key itself is not kept, only a fingerprint to compare keys by.
    let key = s(p, "key.key");
    if !key.is_empty() {
        set(&mut e, "key.sha256", content_id(key.as_bytes()));
    }
    out.push(0, e);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weakened_protection_is_named_by_field() {
        let rule = json!({"required_approving_review_count": 0, "allow_force_pushes_enforcement_level": "everyone", "admin_enforced": false, "pull_request_reviews_enforcement_level": "off"});
        let changes = json!({
            "required_approving_review_count": {"from": 2},
            "allow_force_pushes_enforcement_level": {"from": "off"},
            "admin_enforced": {"from": true},
            "pull_request_reviews_enforcement_level": {"from": "everyone"}
        });
        let mut w = weakened(&changes, &rule);
        w.sort();
        assert_eq!(
            w,
            vec![
                "admin_enforced",
                "allow_force_pushes_enforcement_level",
                "pull_request_reviews_enforcement_level",
                "required_approving_review_count"
            ]
        );
        let stronger = json!({"required_approving_review_count": {"from": 1}});
        assert!(weakened(&stronger, &json!({"required_approving_review_count": 2})).is_empty());
    }
}
