//! GitHub webhooks: `POST /v1/ingest/github`.
//!
//! Verified with `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with `[github] secret`),
//! typed by `X-GitHub-Event`, made idempotent by `X-GitHub-Delivery`: every event of a
//! delivery has the id `github:<delivery>` plus a fixed suffix for derived events
//! (`:force`, `:default`, `:protected`, `:risk.<category>`, `:without_review`).
//! The mapping is documented in docs/sources.md; the actions in docs/actions.md.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::adapter::{
    self, actor, at, authorize, b, check_hmac_sha256, content_id, copy, event, glob_match, header,
    is_ai_agent_login, json_body, keep_payload, malformed, parse_time, risk_categories, s, set,
    strings, u, unknown_action, Mapped, Memory, PAYLOAD_BUDGET,
};
use crate::api::error::ApiResult;
use crate::api::AppState;
use crate::event::{Actor, ActorType, Event, Source, Volume};

const SRC: Source = Source::Github;

/// Header the CLI sets on back-filled deliveries (GitHub's `delivered_at`), used as the
/// event time when the payload carries none of its own.
pub const DELIVERED_AT: &str = "x-plumbline-delivered-at";

pub async fn post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let bytes = adapter::body(&state, &headers, body).await?;
    let auth = check_hmac_sha256(
        &state.config.github.secret,
        &bytes,
        header(&headers, "x-hub-signature-256"),
    );
    authorize(&state, &headers, auth)?;
    let kind = header(&headers, "x-github-event")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            malformed(
                "X-GitHub-Event",
                "header is missing: it names the event type",
            )
        })?;
    let delivery = match header(&headers, "x-github-delivery") {
        Some(d) if valid_id(d) => d.to_string(),
        Some(_) => return Err(malformed("X-GitHub-Delivery", "not a delivery id")),
        None => content_id(&bytes),
    };
    let payload = json_body(&bytes)?;
    if !payload.is_object() {
        return Err(malformed(
            "(body)",
            "a GitHub webhook payload is a JSON object",
        ));
    }
    let received = header(&headers, DELIVERED_AT)
        .and_then(adapter::parse_time_str)
        .unwrap_or_else(OffsetDateTime::now_utc);
    let memory = Memory::open(&state)?;
    let mapped = map(kind, &delivery, &payload, received, &memory)?;
    adapter::submit(&state, mapped, StatusCode::ACCEPTED).await
}

pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(&c))
}

/// Maps one delivery to events.
pub fn map(
    kind: &str,
    delivery: &str,
    p: &Value,
    received: OffsetDateTime,
    memory: &Memory,
) -> ApiResult<Mapped> {
    let ctx = Ctx {
        kind,
        delivery,
        p,
        received,
        repo: s(p, "repository.full_name"),
    };
    let mut out = Mapped::default();
    match kind {
        "push" => push(&ctx, memory, &mut out)?,
        "pull_request" => pull_request(&ctx, memory, &mut out)?,
        "pull_request_review" => review(&ctx, memory, &mut out)?,
        "branch_protection_rule" => protection_rule(&ctx, memory, &mut out),
        "branch_protection_configuration" => {
            let action = match s(p, "action").as_str() {
                "disabled" => "branch.protection.disabled",
                "enabled" => "branch.protection.enabled",
                _ => "branch.protection.changed",
            };
            let mut e = ctx.base(action, "");
            e.resource = "*".into();
            set(&mut e, "protection.scope", "repository");
            set(&mut e, "weakened", s(p, "action") == "disabled");
            out.push(0, e);
        }
        "repository_ruleset" => ruleset(&ctx, &mut out),
        "repository" => repository(&ctx, &mut out),
        "member" => member(&ctx, &mut out),
        "organization" => organization(&ctx, &mut out),
        "team" => team(&ctx, &mut out),
        "membership" => {
            let action = match s(p, "action").as_str() {
                "added" => "team.member.added",
                "removed" => "team.member.removed",
                _ => "team.member.changed",
            };
            let mut e = ctx.base(action, "");
            e.resource = s(p, "team.slug");
            set(&mut e, "member", s(p, "member.login"));
            set(&mut e, "team", s(p, "team.slug"));
            set(&mut e, "role", s(p, "team.permission"));
            out.push(0, e);
        }
        "deploy_key" => deploy_key(&ctx, &mut out),
        "workflow_run" => workflow_run(&ctx, &mut out),
        "deployment" | "deployment_status" => deployment(&ctx, &mut out),
        "secret_scanning_alert" => secret_scanning(&ctx, &mut out),
        "installation" | "installation_repositories" => installation(&ctx, &mut out),
        "github_app_authorization" => {
            let action = match s(p, "action").as_str() {
                "revoked" => "app.authorization.revoked".to_string(),
                other => unknown_action(SRC, &format!("github_app_authorization.{other}")),
            };
            let mut e = ctx.base(&action, "");
            e.resource = e.actor.id.clone();
            out.push(0, e);
        }
        "ping" => {
            let mut e = ctx.base("webhook.ping", "");
            e.resource = format!("hook/{}", s(p, "hook_id"));
            set(&mut e, "hook.id", s(p, "hook_id"));
            set(&mut e, "hook.type", s(p, "hook.type"));
            set(&mut e, "hook.events", strings(p, "hook.events").join(","));
            set(
                &mut e,
                "hook.active",
                at(p, "hook.active").cloned().unwrap_or(Value::Null),
            );
            set(&mut e, "zen", s(p, "zen"));
            out.push(0, e);
        }
        _ => {
            let action = match s(p, "action") {
                a if a.is_empty() => unknown_action(SRC, kind),
                a => unknown_action(SRC, &format!("{kind}.{a}")),
            };
            let mut e = ctx.base(&action, "");
            keep_payload(&mut e, "payload", p, PAYLOAD_BUDGET);
            out.push(0, e);
        }
    }
    Ok(out)
}

struct Ctx<'a> {
    kind: &'a str,
    delivery: &'a str,
    p: &'a Value,
    received: OffsetDateTime,
    repo: String,
}

impl Ctx<'_> {
    fn id(&self, suffix: &str) -> String {
        if suffix.is_empty() {
            format!("github:{}", self.delivery)
        } else {
            format!("github:{}:{suffix}", self.delivery)
        }
    }

    fn system(&self) -> String {
        for path in [
            "repository.full_name",
            "organization.login",
            "installation.account.login",
            "enterprise.slug",
        ] {
            let v = s(self.p, path);
            if !v.is_empty() {
                return v;
            }
        }
        "github".into()
    }

    /// An event with the common fields: sender as actor, repository as system, and the
    /// raw type kept as `source_event` / `source_action`.
    fn base(&self, action: &str, suffix: &str) -> Event {
        let mut e = event(
            SRC,
            self.id(suffix),
            self.received,
            sender(self.p),
            &self.system(),
            action,
        );
        set(&mut e, "source_event", self.kind);
        set(&mut e, "source_action", s(self.p, "action"));
        let visibility = match (
            s(self.p, "repository.visibility"),
            b(self.p, "repository.private"),
        ) {
            (v, _) if !v.is_empty() => v,
            (_, Some(true)) => "private".into(),
            (_, Some(false)) => "public".into(),
            _ => String::new(),
        };
        set(&mut e, "repo.visibility", visibility);
        set(&mut e, "org", s(self.p, "organization.login"));
        e
    }

    fn time_at(&self, paths: &[&str]) -> OffsetDateTime {
        paths
            .iter()
            .find_map(|p| at(self.p, p).and_then(parse_time))
            .unwrap_or(self.received)
    }
}

/// GitHub account → actor: `Bot` accounts are services, or AI agents when the login
/// names one (Copilot, Devin, Claude, ...).
pub fn account_actor(v: &Value) -> Actor {
    let login = s(v, "login");
    let kind = match s(v, "type").as_str() {
        "Bot" if is_ai_agent_login(&login) => ActorType::AiAgent,
        "Bot" | "Organization" => ActorType::Service,
        _ if login.ends_with("[bot]") => ActorType::Service,
        _ => ActorType::Human,
    };
    actor(&login, kind, &login)
}

fn sender(p: &Value) -> Actor {
    match at(p, "sender") {
        Some(v) if !s(v, "login").is_empty() => account_actor(v),
        _ => {
            let name = s(p, "pusher.name");
            actor(&name, ActorType::Human, &name)
        }
    }
}

fn push(ctx: &Ctx, memory: &Memory, out: &mut Mapped) -> ApiResult<()> {
    let p = ctx.p;
    let r#ref = s(p, "ref");
    if r#ref.is_empty() {
        return Err(malformed("ref", "a push payload names the ref it updated"));
    }
    let branch = r#ref.strip_prefix("refs/heads/").map(str::to_string);
    let tag = r#ref.strip_prefix("refs/tags/").map(str::to_string);
    let deleted = b(p, "deleted").unwrap_or(false);
    let forced = b(p, "forced").unwrap_or(false);
    let action = match (deleted, &tag) {
        (true, Some(_)) => "git.tag.deleted",
        (true, None) => "git.branch.deleted",
        (false, Some(_)) => "git.tag.pushed",
        (false, None) => "git.push",
    };
    let mut e = ctx.base(action, "");
    e.time = ctx.time_at(&["repository.pushed_at", "head_commit.timestamp"]);
    e.resource = r#ref.clone();
    let default_branch = s(p, "repository.default_branch");
    let commits = at(p, "commits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut paths: BTreeSet<String> = BTreeSet::new();
    for c in commits.iter().chain(at(p, "head_commit")) {
        for k in ["added", "modified", "removed"] {
            paths.extend(strings(c, k));
        }
    }
    set(&mut e, "ref", r#ref.clone());
    set(&mut e, "branch", branch.clone().unwrap_or_default());
    set(&mut e, "tag", tag.clone().unwrap_or_default());
    set(&mut e, "before", s(p, "before"));
    set(&mut e, "after", s(p, "after"));
    set(&mut e, "forced", forced);
    set(&mut e, "created", b(p, "created").unwrap_or(false));
    set(&mut e, "deleted", deleted);
    set(&mut e, "commits", commits.len() as u64);
    set(
        &mut e,
        "commits.distinct",
        commits
            .iter()
            .filter(|c| b(c, "distinct").unwrap_or(true))
            .count() as u64,
    );
    set(&mut e, "default_branch", default_branch.clone());
    set(&mut e, "pusher", s(p, "pusher.name"));
    set(&mut e, "head_commit.id", s(p, "head_commit.id"));
    set(&mut e, "head_commit.message", s(p, "head_commit.message"));
    let authors: BTreeSet<String> = commits
        .iter()
        .map(|c| match s(c, "author.username") {
            u if u.is_empty() => s(c, "author.name"),
            u => u,
        })
        .filter(|a| !a.is_empty())
        .collect();
    set(
        &mut e,
        "commit_authors",
        authors.into_iter().collect::<Vec<_>>().join(","),
    );
    if !paths.is_empty() {
        e.volume = Some(Volume {
            files: Some(paths.len() as u64),
            ..Volume::default()
        });
    }
    let protected = branch
        .as_deref()
        .and_then(|br| protected_by(memory, &ctx.repo, br));
    if let Some(rule) = &protected {
        set(&mut e, "protected", true);
        set(&mut e, "protection.rule", rule.clone());
    }
    let is_default = branch.is_some() && branch.as_deref() == Some(default_branch.as_str());
    set(&mut e, "to_default_branch", is_default);
    out.push(0, e.clone());
    if deleted {
        return Ok(());
    }
    let derived = |action: &str, suffix: &str| {
        let mut d = e.clone();
        d.id = ctx.id(suffix);
        d.action = action.to_string();
        d
    };
    if forced {
        out.push(0, derived("git.push.force", "force"));
    }
    if is_default {
        out.push(0, derived("git.push.default_branch", "default"));
    }
    if protected.is_some() {
        out.push(0, derived("git.push.protected_branch", "protected"));
    }
    let mut by_category: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    for path in &paths {
        for cat in risk_categories(path) {
            by_category.entry(cat).or_default().push(path);
        }
    }
    for (cat, hits) in by_category {
        let mut d = derived("git.push.high_risk_path", &format!("risk.{cat}"));
        d.attributes.insert("risk.category".into(), json!(cat));
        d.attributes
            .insert("risk.paths.count".into(), json!(hits.len()));
        for (i, path) in hits.iter().take(20).enumerate() {
            d.attributes.insert(format!("risk.paths.{i}"), json!(path));
        }
        out.push(0, d);
    }
    Ok(())
}

/// The protection rule (pattern) covering `branch`, from branch_protection_rule deliveries.
fn protected_by(memory: &Memory, repo: &str, branch: &str) -> Option<String> {
    let rules = memory.get(SRC, "protected", repo)?;
    rules
        .as_object()?
        .values()
        .filter_map(Value::as_str)
        .find(|pattern| glob_match(pattern, branch))
        .map(str::to_string)
}

fn pull_request(ctx: &Ctx, memory: &Memory, out: &mut Mapped) -> ApiResult<()> {
    let p = ctx.p;
    let Some(pr) = at(p, "pull_request") else {
        return Err(malformed(
            "pull_request",
            "a pull_request payload carries the pull request",
        ));
    };
    let number = u(p, "number").or_else(|| u(pr, "number")).unwrap_or(0);
    let action = s(p, "action");
    let merged = b(pr, "merged").unwrap_or(false);
    let name = match action.as_str() {
        "closed" if merged => "pr.merged".to_string(),
        "closed" => "pr.closed".to_string(),
        "opened" => "pr.opened".to_string(),
        other => format!("pr.{}", adapter::segment(other)),
    };
    let mut e = ctx.base(&name, "");
    e.time = if merged {
        ctx.time_at(&["pull_request.merged_at", "pull_request.updated_at"])
    } else {
        ctx.time_at(&["pull_request.updated_at", "pull_request.created_at"])
    };
    e.resource = format!("{}#{number}", ctx.repo);
    let author = s(pr, "user.login");
    let merged_by = s(pr, "merged_by.login");
    set(&mut e, "pr.number", number);
    set(&mut e, "pr.title", s(pr, "title"));
    set(&mut e, "pr.author", author.clone());
    set(
        &mut e,
        "pr.author_type",
        account_actor(at(pr, "user").unwrap_or(&Value::Null))
            .kind
            .as_str(),
    );
    set(&mut e, "pr.base", s(pr, "base.ref"));
    set(&mut e, "pr.head", s(pr, "head.ref"));
    set(&mut e, "pr.head_repo", s(pr, "head.repo.full_name"));
    set(
        &mut e,
        "pr.from_fork",
        s(pr, "head.repo.full_name") != s(pr, "base.repo.full_name")
            && !s(pr, "head.repo.full_name").is_empty(),
    );
    set(&mut e, "pr.draft", b(pr, "draft").unwrap_or(false));
    set(&mut e, "pr.merged", merged);
    set(&mut e, "pr.merged_by", merged_by.clone());
    set(&mut e, "pr.merge_commit", s(pr, "merge_commit_sha"));
    set(&mut e, "pr.auto_merge", at(pr, "auto_merge").is_some());
    for k in [
        "commits",
        "additions",
        "deletions",
        "changed_files",
        "review_comments",
        "comments",
    ] {
        copy(&mut e, &format!("pr.{k}"), pr, k);
    }
    let base_default = s(pr, "base.ref") == s(p, "repository.default_branch");
    set(&mut e, "pr.base_is_default", base_default);
    if let Some(files) = u(pr, "changed_files") {
        e.volume = Some(Volume {
            files: Some(files),
            ..Volume::default()
        });
    }
    let mut without_review = None;
    if merged {
        let key = format!("{}#{number}", ctx.repo);
        let reviews = memory.get(SRC, "reviews", &key);
        let approvers: Vec<String> = reviews
            .as_ref()
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter(|(_, st)| st.as_str() == Some("approved"))
                    .map(|(who, _)| who.clone())
                    .collect()
            })
            .unwrap_or_default();
        // Knowable only when review deliveries reach us for this repository.
        let known = reviews.is_some() || memory.get(SRC, "reviews_seen", &ctx.repo).is_some();
        set(
            &mut e,
            "self_merged",
            !merged_by.is_empty() && merged_by == author,
        );
        set(&mut e, "review.known", known);
        if known {
            set(&mut e, "review.approvals", approvers.len() as u64);
            set(&mut e, "review.approvers", approvers.join(","));
            set(&mut e, "reviewed", !approvers.is_empty());
        }
        if known && approvers.is_empty() {
            let mut d = e.clone();
            d.id = ctx.id("without_review");
            d.action = "pr.merged.without_review".into();
            without_review = Some(d);
        }
    }
    out.push(0, e);
    if let Some(d) = without_review {
        out.push(0, d);
    }
    Ok(())
}

fn review(ctx: &Ctx, memory: &Memory, out: &mut Mapped) -> ApiResult<()> {
    let p = ctx.p;
    let Some(r) = at(p, "review") else {
        return Err(malformed(
            "review",
            "a pull_request_review payload carries the review",
        ));
    };
    let number = u(p, "pull_request.number").unwrap_or(0);
    let state = s(r, "state").to_ascii_lowercase();
    let action = s(p, "action");
    let name = match (action.as_str(), state.as_str()) {
        ("submitted", "approved") => "pr.review.approved".to_string(),
        ("submitted", "changes_requested") => "pr.review.changes_requested".to_string(),
        ("submitted", _) => "pr.review.commented".to_string(),
        ("dismissed", _) => "pr.review.dismissed".to_string(),
        (other, _) => format!("pr.review.{}", adapter::segment(other)),
    };
    let mut e = ctx.base(&name, "");
    if let Some(user) = at(r, "user") {
        e.actor = account_actor(user);
    }
    e.time = ctx.time_at(&["review.submitted_at", "pull_request.updated_at"]);
    e.resource = format!("{}#{number}", ctx.repo);
    let reviewer = s(r, "user.login");
    set(&mut e, "pr.number", number);
    set(&mut e, "pr.author", s(p, "pull_request.user.login"));
    set(&mut e, "pr.base", s(p, "pull_request.base.ref"));
    set(&mut e, "review.id", s(r, "id"));
    set(&mut e, "review.state", state.clone());
    set(&mut e, "reviewer", reviewer.clone());
    set(&mut e, "review.commit", s(r, "commit_id"));
    out.push(0, e);

    // Remember each reviewer's latest verdict: an approval counts until dismissed or
    // superseded by a request for changes (GitHub's own rule).
    let key = format!("{}#{number}", ctx.repo);
    let mut verdicts = out
        .recall(memory, SRC, "reviews", &key)
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    match (action.as_str(), state.as_str()) {
        ("submitted", "approved" | "changes_requested") => {
            verdicts.insert(reviewer, json!(state));
        }
        ("dismissed", _) => {
            verdicts.remove(&reviewer);
        }
        _ => {}
    }
    out.remember(SRC, "reviews", &key, Some(Value::Object(verdicts)));
    out.remember(SRC, "reviews_seen", &ctx.repo, Some(json!(true)));
    Ok(())
}

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

fn protection_rule(ctx: &Ctx, memory: &Memory, out: &mut Mapped) {
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

fn ruleset(ctx: &Ctx, out: &mut Mapped) {
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

fn repository(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let action = s(p, "action");
    let name = match action.as_str() {
        "publicized" | "privatized" => "repo.visibility.changed".to_string(),
        other => format!("repo.{}", adapter::segment(other)),
    };
    let mut e = ctx.base(&name, "");
    e.time = ctx.time_at(&["repository.updated_at"]);
    e.resource = ctx.repo.clone();
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

fn rank(p: &str) -> usize {
    match p {
        "pull" => 1,
        "push" => 4,
        other => PERMISSION_ORDER
            .iter()
            .position(|x| *x == other)
            .unwrap_or(0),
    }
}

fn member(ctx: &Ctx, out: &mut Mapped) {
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

fn organization(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let action = s(p, "action");
    let name = match action.as_str() {
        "member_added" => "member.added".to_string(),
        "member_removed" => "member.removed".to_string(),
        "member_invited" => "member.invited".to_string(),
        other => format!("org.{}", adapter::segment(other)),
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

fn team(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let action = s(p, "action");
    let perm_change = at(p, "changes.repository.permissions.from");
    let name = match action.as_str() {
        "edited" if perm_change.is_some() => "team.permission.changed".to_string(),
        "added_to_repository" => "team.repository.added".to_string(),
        "removed_from_repository" => "team.repository.removed".to_string(),
        "created" => "team.created".to_string(),
        "deleted" => "team.deleted".to_string(),
        other => format!("team.{}", adapter::segment(other)),
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

fn deploy_key(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let action = s(p, "action");
    let name = match action.as_str() {
        "created" => "deploy_key.created".to_string(),
        "deleted" => "deploy_key.deleted".to_string(),
        other => format!("deploy_key.{}", adapter::segment(other)),
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

fn workflow_run(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let Some(run) = at(p, "workflow_run") else {
        let mut e = ctx.base(&unknown_action(SRC, ctx.kind), "");
        keep_payload(&mut e, "payload", p, PAYLOAD_BUDGET);
        out.push(0, e);
        return;
    };
    let mut e = ctx.base("ci.workflow.run", "");
    if let Some(a) = at(run, "triggering_actor").or_else(|| at(run, "actor")) {
        e.actor = account_actor(a);
    }
    e.time = ctx.time_at(&["workflow_run.updated_at", "workflow_run.created_at"]);
    e.resource = match s(run, "path") {
        x if x.is_empty() => s(run, "name"),
        x => x,
    };
    set(&mut e, "run.id", s(run, "id"));
    set(&mut e, "run.number", s(run, "run_number"));
    set(&mut e, "run.attempt", u(run, "run_attempt").unwrap_or(1));
    set(&mut e, "run.status", s(run, "status"));
    set(&mut e, "run.conclusion", s(run, "conclusion"));
    set(&mut e, "run.event", s(run, "event"));
    set(&mut e, "run.branch", s(run, "head_branch"));
    set(&mut e, "run.head_sha", s(run, "head_sha"));
    set(&mut e, "run.actor", s(run, "actor.login"));
    set(
        &mut e,
        "run.triggering_actor",
        s(run, "triggering_actor.login"),
    );
    set(&mut e, "workflow.name", s(run, "name"));
    set(&mut e, "workflow.path", s(run, "path"));
    set(
        &mut e,
        "run.from_fork",
        !s(run, "head_repository.full_name").is_empty()
            && s(run, "head_repository.full_name") != ctx.repo,
    );
    out.push(0, e);
}

fn deployment(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let status = ctx.kind == "deployment_status";
    let mut e = ctx.base(
        if status {
            "deploy.status"
        } else {
            "deploy.created"
        },
        "",
    );
    e.time = ctx.time_at(&["deployment_status.created_at", "deployment.created_at"]);
    let env = s(p, "deployment.environment");
    e.environment = adapter::environment_named(&env);
    e.resource = env.clone();
    set(&mut e, "deploy.environment", env);
    set(&mut e, "deploy.ref", s(p, "deployment.ref"));
    set(&mut e, "deploy.sha", s(p, "deployment.sha"));
    set(&mut e, "deploy.task", s(p, "deployment.task"));
    set(&mut e, "deploy.creator", s(p, "deployment.creator.login"));
    set(&mut e, "deploy.state", s(p, "deployment_status.state"));
    out.push(0, e);
}

fn secret_scanning(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let mut e = ctx.base("secret_scanning.alert", "");
    e.time = ctx.time_at(&["alert.updated_at", "alert.created_at"]);
    let number = s(p, "alert.number");
    e.resource = format!("{}/secret-scanning/{number}", ctx.repo);
    set(&mut e, "alert.action", s(p, "action"));
    set(&mut e, "alert.number", number);
    set(&mut e, "alert.state", s(p, "alert.state"));
    set(&mut e, "alert.resolution", s(p, "alert.resolution"));
    set(&mut e, "secret_type", s(p, "alert.secret_type"));
    set(
        &mut e,
        "secret_type.display",
        s(p, "alert.secret_type_display_name"),
    );
    set(&mut e, "validity", s(p, "alert.validity"));
    set(
        &mut e,
        "publicly_leaked",
        b(p, "alert.publicly_leaked").unwrap_or(false),
    );
    set(
        &mut e,
        "push_protection_bypassed",
        b(p, "alert.push_protection_bypassed").unwrap_or(false),
    );
    set(
        &mut e,
        "push_protection_bypassed_by",
        s(p, "alert.push_protection_bypassed_by.login"),
    );
    // `alert.secret` (the leaked value) is deliberately never copied.
    out.push(0, e);
}

fn installation(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let action = s(p, "action");
    let name = match (ctx.kind, action.as_str()) {
        ("installation", "created") => "app.installed".to_string(),
        ("installation", "deleted") => "app.uninstalled".to_string(),
        ("installation", "suspend") => "app.suspended".to_string(),
        ("installation", "unsuspend") => "app.unsuspended".to_string(),
        // The app asked for more and an owner accepted: the installation token grew.
        ("installation", "new_permissions_accepted") => "credential.scope.increased".to_string(),
        ("installation_repositories", "added") => "app.repositories.added".to_string(),
        ("installation_repositories", "removed") => "app.repositories.removed".to_string(),
        (k, a) => unknown_action(SRC, &format!("{k}.{a}")),
    };
    let mut e = ctx.base(&name, "");
    e.time = ctx.time_at(&["installation.updated_at", "installation.created_at"]);
    let slug = s(p, "installation.app_slug");
    e.resource = slug.clone();
    set(&mut e, "app", slug);
    set(&mut e, "app.id", s(p, "installation.app_id"));
    set(&mut e, "installation.id", s(p, "installation.id"));
    set(&mut e, "account", s(p, "installation.account.login"));
    set(
        &mut e,
        "repository_selection",
        s(p, "installation.repository_selection"),
    );
    if let Some(perms) = at(p, "installation.permissions").and_then(Value::as_object) {
        for (k, v) in perms {
            set(&mut e, &format!("permissions.{k}"), v.clone());
        }
        let writes: Vec<&String> = perms
            .iter()
            .filter(|(_, v)| matches!(v.as_str(), Some("write" | "admin")))
            .map(|(k, _)| k)
            .collect();
        set(&mut e, "permissions.write_count", writes.len() as u64);
    }
    set(
        &mut e,
        "events",
        strings(p, "installation.events").join(","),
    );
    let repos: Vec<String> = ["repositories", "repositories_added", "repositories_removed"]
        .iter()
        .filter_map(|k| at(p, k).and_then(Value::as_array))
        .flatten()
        .map(|r| s(r, "full_name"))
        .filter(|n| !n.is_empty())
        .collect();
    set(&mut e, "repositories.count", repos.len() as u64);
    set(
        &mut e,
        "repositories",
        repos.iter().take(20).cloned().collect::<Vec<_>>().join(","),
    );
    if name == "credential.scope.increased" {
        set(&mut e, "credential.kind", "github_app_installation");
        set(&mut e, "credential.scope", perms_summary(p));
    }
    out.push(0, e);
}

fn perms_summary(p: &Value) -> String {
    at(p, "installation.permissions")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}:{}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
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

    #[test]
    fn bots_are_services_and_known_agents_are_ai_agents() {
        assert_eq!(
            account_actor(&json!({"login": "octocat", "type": "User"})).kind,
            ActorType::Human
        );
        assert_eq!(
            account_actor(&json!({"login": "dependabot[bot]", "type": "Bot"})).kind,
            ActorType::Service
        );
        assert_eq!(
            account_actor(&json!({"login": "Copilot", "type": "Bot"})).kind,
            ActorType::AiAgent
        );
        assert_eq!(
            account_actor(&json!({"login": "claude", "type": "User"})).kind,
            ActorType::Human
        );
    }

    #[test]
    fn unknown_events_keep_their_type_and_payload() {
        let p = json!({"action": "created", "starred_at": "2024-01-01T00:00:00Z", "repository": {"full_name": "acme/api"}, "sender": {"login": "octocat", "type": "User"}});
        let m = map(
            "star",
            "d1",
            &p,
            OffsetDateTime::UNIX_EPOCH,
            &Memory::none(),
        )
        .unwrap();
        assert_eq!(m.events[0].action, "github.star.created");
        assert_eq!(
            m.events[0].attributes["payload.starred_at"],
            json!("2024-01-01T00:00:00Z")
        );
    }
}
