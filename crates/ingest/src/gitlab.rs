//! GitLab webhooks and audit-event streaming: `POST /v1/ingest/gitlab`.
//!
//! Authenticated by `X-Gitlab-Token` (webhooks) or `X-Gitlab-Event-Streaming-Token`
//! (audit-event streaming destinations) against `[gitlab] token`. Typed by
//! `X-Gitlab-Event` / `X-Gitlab-Audit-Event-Type`, falling back to the body's
//! `object_kind` / `event_name` / `event_type` (what a back-filled file carries).
//! Idempotent on `Idempotency-Key` (GitLab keeps it across retries), then
//! `X-Gitlab-Event-UUID`, then a content hash; audit events use their own `id`, so the
//! same audit event streamed and exported is stored once.

use std::collections::BTreeSet;

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::adapter::{
    check_token, header, Adapter, Delivery, IngestError, Mapped, Memory, SourceAuth,
};
use super::git::{self, Push};
use super::github::{valid_id, DELIVERED_AT};
use super::map::{
    actor, at, content_id, event, is_ai_agent_login, items, json_body, keep_payload, parse_time,
    parse_time_str, s, segment, set, strings, u, unknown_action, PAYLOAD_BUDGET,
};
use plumbline_event::{Actor, ActorType, Event, Source};

const SRC: Source = Source::Gitlab;
const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// `[gitlab]`: the webhook / audit-stream secret token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitlabConfig {
    pub token: String,
}

/// GitLab webhooks, system hooks and audit-event streams.
pub struct GitlabAdapter {
    config: GitlabConfig,
}

impl GitlabAdapter {
    pub fn new(config: GitlabConfig) -> Self {
        GitlabAdapter { config }
    }
}

impl Adapter for GitlabAdapter {
    fn source(&self) -> Source {
        SRC
    }

    fn verify(&self, headers: &HeaderMap, _body: &[u8]) -> SourceAuth {
        check_token(
            &self.config.token,
            [
                header(headers, "x-gitlab-token"),
                header(headers, "x-gitlab-event-streaming-token"),
            ],
            "X-Gitlab-Token",
        )
    }

    fn map(&self, d: &Delivery<'_>, memory: &dyn Memory) -> Result<Mapped, IngestError> {
        let payload = json_body(d.body)?;
        let delivery = ["idempotency-key", "x-gitlab-event-uuid"]
            .iter()
            .find_map(|h| d.header(h).filter(|v| valid_id(v)))
            .map(str::to_string)
            .unwrap_or_else(|| content_id(d.body));
        let received = d
            .header(DELIVERED_AT)
            .and_then(parse_time_str)
            .unwrap_or(d.received);
        let hook = d.header("x-gitlab-event").unwrap_or("");
        let audit_type = d.header("x-gitlab-audit-event-type").unwrap_or("");
        let mut out = Mapped::default();
        if payload.is_array() {
            // An export of audit events (`GET /audit_events`).
            for (i, item) in items(&payload, &[]).into_iter().enumerate() {
                if !item.is_object() {
                    out.reject(i, "(item)", "an audit event is a JSON object");
                    continue;
                }
                audit(item, i, "", received, &mut out);
            }
        } else if !payload.is_object() {
            return Err(IngestError::malformed(
                "(body)",
                "a GitLab hook payload is a JSON object",
            ));
        } else if !audit_type.is_empty() || is_audit_event(&payload) {
            audit(&payload, 0, audit_type, received, &mut out);
        } else {
            let ctx = Ctx {
                hook,
                delivery: &delivery,
                p: &payload,
                received,
            };
            map_hook(&ctx, memory, &mut out)?;
        }
        Ok(out)
    }
}

fn is_audit_event(p: &Value) -> bool {
    at(p, "author_id").is_some() && at(p, "entity_type").is_some() && at(p, "object_kind").is_none()
}

struct Ctx<'a> {
    hook: &'a str,
    delivery: &'a str,
    p: &'a Value,
    received: OffsetDateTime,
}

impl Ctx<'_> {
    fn id(&self, suffix: &str) -> String {
        if suffix.is_empty() {
            format!("gitlab:{}", self.delivery)
        } else {
            format!("gitlab:{}:{suffix}", self.delivery)
        }
    }

    fn project(&self) -> String {
        match s(self.p, "project.path_with_namespace") {
            p if p.is_empty() => s(self.p, "path_with_namespace"),
            p => p,
        }
    }

    fn kind(&self) -> String {
        for path in ["object_kind", "event_name", "event_type"] {
            let k = s(self.p, path);
            if !k.is_empty() {
                return k;
            }
        }
        segment(self.hook.trim_end_matches(" Hook"))
    }

    fn base(&self, action: &str, suffix: &str) -> Event {
        let mut e = event(
            SRC,
            self.id(suffix),
            self.received,
            user(self.p),
            &self.project(),
            action,
        );
        set(&mut e, "source_event", self.kind());
        set(
            &mut e,
            "source_action",
            s(self.p, "object_attributes.action"),
        );
        set(
            &mut e,
            "repo.visibility",
            visibility(u(self.p, "project.visibility_level")),
        );
        e
    }
}

fn visibility(level: Option<u64>) -> &'static str {
    match level {
        Some(0) => "private",
        Some(10) => "internal",
        Some(20) => "public",
        _ => "",
    }
}

/// GitLab user → actor. Project and group access-token users are bots (`project_12_bot_…`).
fn account(username: &str, name: &str) -> Actor {
    let bot = username.contains("_bot") || username.ends_with("-bot") || username == "ghost";
    let kind = if bot && is_ai_agent_login(username) || username.starts_with("duo-") {
        ActorType::AiAgent
    } else if bot {
        ActorType::Service
    } else {
        ActorType::Human
    };
    actor(
        username,
        kind,
        if name.is_empty() { username } else { name },
    )
}

fn user(p: &Value) -> Actor {
    let username = match s(p, "user.username") {
        u if u.is_empty() => s(p, "user_username"),
        u => u,
    };
    let name = match s(p, "user.name") {
        n if n.is_empty() => s(p, "user_name"),
        n => n,
    };
    account(&username, &name)
}

fn map_hook(ctx: &Ctx, memory: &dyn Memory, out: &mut Mapped) -> Result<(), IngestError> {
    let kind = ctx.kind();
    match kind.as_str() {
        "push" | "tag_push" => push(ctx, &kind, out),
        "merge_request" => merge_request(ctx, memory, out),
        "pipeline" => {
            let p = ctx.p;
            let mut e = ctx.base("ci.workflow.run", "");
            e.time = at(p, "object_attributes.finished_at")
                .or_else(|| at(p, "object_attributes.created_at"))
                .and_then(parse_time)
                .unwrap_or(ctx.received);
            e.resource = format!("pipeline/{}", s(p, "object_attributes.id"));
            set(&mut e, "run.id", s(p, "object_attributes.id"));
            set(&mut e, "run.status", s(p, "object_attributes.status"));
            set(
                &mut e,
                "run.conclusion",
                s(p, "object_attributes.detailed_status"),
            );
            set(&mut e, "run.event", s(p, "object_attributes.source"));
            set(&mut e, "run.branch", s(p, "object_attributes.ref"));
            set(&mut e, "run.head_sha", s(p, "object_attributes.sha"));
            out.push(0, e);
            Ok(())
        }
        "deployment" => {
            let p = ctx.p;
            let mut e = ctx.base("deploy.status", "");
            let env = s(p, "environment");
            e.environment = super::map::environment_named(&env);
            e.resource = env.clone();
            set(&mut e, "deploy.environment", env);
            set(&mut e, "deploy.state", s(p, "status"));
            set(&mut e, "deploy.ref", s(p, "ref"));
            set(&mut e, "deploy.sha", s(p, "short_sha"));
            out.push(0, e);
            Ok(())
        }
        "user_add_to_team"
        | "user_add_to_group"
        | "user_update_for_team"
        | "user_update_for_group"
        | "user_remove_from_team"
        | "user_remove_from_group" => {
            let p = ctx.p;
            let action = if kind.starts_with("user_add") {
                "member.added"
            } else if kind.starts_with("user_update") {
                "member.permission.changed"
            } else {
                "member.removed"
            };
            let mut e = ctx.base(action, "");
            e.time = at(p, "updated_at")
                .or_else(|| at(p, "created_at"))
                .and_then(parse_time)
                .unwrap_or(ctx.received);
            e.system = match s(p, "project_path_with_namespace") {
                x if x.is_empty() => s(p, "group_path"),
                x => x,
            };
            if e.system.is_empty() {
                e.system = "gitlab".into();
            }
            e.resource = s(p, "user_username");
            // System hooks name the member, not who acted.
            e.actor = actor(
                "gitlab-system-hook",
                ActorType::Service,
                "GitLab system hook",
            );
            set(&mut e, "member", s(p, "user_username"));
            let perm = match s(p, "access_level") {
                x if x.is_empty() => s(p, "group_access"),
                x => x,
            };
            set(&mut e, "permission", perm.to_ascii_lowercase());
            out.push(0, e);
            Ok(())
        }
        _ => {
            let mut e = ctx.base(&unknown_action(SRC, &kind), "");
            keep_payload(&mut e, "payload", ctx.p, PAYLOAD_BUDGET);
            out.push(0, e);
            Ok(())
        }
    }
}

fn push(ctx: &Ctx, kind: &str, out: &mut Mapped) -> Result<(), IngestError> {
    let p = ctx.p;
    let r#ref = s(p, "ref");
    if r#ref.is_empty() {
        return Err(IngestError::malformed(
            "ref",
            "a push payload names the ref it updated",
        ));
    }
    let tag = kind == "tag_push" || r#ref.starts_with("refs/tags/");
    let branch = r#ref.strip_prefix("refs/heads/").unwrap_or("").to_string();
    let default_branch = s(p, "project.default_branch");
    let commits = at(p, "commits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let last = commits.last();
    let push = Push {
        r#ref: r#ref.clone(),
        to_default_branch: !branch.is_empty() && branch == default_branch,
        branch,
        // GitLab's tag pushes carry no separate tag name attribute.
        tag: tag.then(String::new),
        before: s(p, "before"),
        after: s(p, "after"),
        created: s(p, "before") == ZERO_SHA,
        deleted: s(p, "after") == ZERO_SHA,
        forced: None,
        commits: u(p, "total_commits_count").unwrap_or(commits.len() as u64),
        default_branch,
        paths: git::commit_paths(&commits),
        authors: commits
            .iter()
            .map(|c| s(c, "author.name"))
            .filter(|a| !a.is_empty())
            .collect::<BTreeSet<String>>(),
        head_commit_id: last.map(|c| s(c, "id")).unwrap_or_default(),
        head_commit_message: last.map(|c| s(c, "message")).unwrap_or_default(),
        protected: at(p, "ref_protected").and_then(Value::as_bool),
    };
    let mut e = ctx.base(push.action(), "");
    push.describe(&mut e);
    out.push(0, e.clone());
    if !tag {
        for d in push.derived(&e, |suffix| ctx.id(suffix)) {
            out.push(0, d);
        }
    }
    Ok(())
}

fn merge_request(ctx: &Ctx, memory: &dyn Memory, out: &mut Mapped) -> Result<(), IngestError> {
    let p = ctx.p;
    let Some(mr) = at(p, "object_attributes") else {
        return Err(IngestError::malformed(
            "object_attributes",
            "a merge request payload carries object_attributes",
        ));
    };
    let iid = u(mr, "iid").unwrap_or(0);
    let action = s(mr, "action");
    let name = match action.as_str() {
        "open" => "pr.opened".to_string(),
        "close" => "pr.closed".to_string(),
        "reopen" => "pr.reopened".to_string(),
        "update" => "pr.updated".to_string(),
        "merge" => "pr.merged".to_string(),
        // `approval`: one approver approved; `approved`: the MR has all it needs.
        "approval" => "pr.review.approved".to_string(),
        "approved" => "pr.approved".to_string(),
        "unapproval" => "pr.review.dismissed".to_string(),
        "unapproved" => "pr.unapproved".to_string(),
        other => format!("pr.{}", segment(other)),
    };
    let mut e = ctx.base(&name, "");
    e.time = at(mr, "updated_at")
        .or_else(|| at(mr, "created_at"))
        .and_then(parse_time)
        .unwrap_or(ctx.received);
    let project = ctx.project();
    let key = format!("{project}!{iid}");
    e.resource = key.clone();
    set(&mut e, "pr.number", iid);
    set(&mut e, "pr.title", s(mr, "title"));
    set(&mut e, "pr.author_id", s(mr, "author_id"));
    set(&mut e, "pr.base", s(mr, "target_branch"));
    set(&mut e, "pr.head", s(mr, "source_branch"));
    set(&mut e, "pr.state", s(mr, "state"));
    set(
        &mut e,
        "pr.draft",
        at(mr, "draft").and_then(Value::as_bool).unwrap_or(false),
    );
    set(&mut e, "pr.merge_commit", s(mr, "merge_commit_sha"));
    set(
        &mut e,
        "pr.from_fork",
        u(mr, "source_project_id").is_some()
            && u(mr, "source_project_id") != u(mr, "target_project_id"),
    );
    let reviewers: Vec<String> = at(p, "reviewers")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|r| s(r, "username")).collect())
        .unwrap_or_default();
    set(&mut e, "pr.reviewers", reviewers.join(","));
    set(
        &mut e,
        "pr.base_is_default",
        s(mr, "target_branch") == s(p, "project.default_branch"),
    );
    let who = e.actor.id.clone();
    let mut verdicts = out
        .recall(memory, SRC, "reviews", &key)
        .and_then(|v| v.as_object().cloned());
    let mut without_review = None;
    match action.as_str() {
        "approval" | "approved" => {
            let mut v = verdicts.clone().unwrap_or_default();
            v.insert(who, json!("approved"));
            verdicts = Some(v);
        }
        "unapproval" | "unapproved" => {
            let mut v = verdicts.clone().unwrap_or_default();
            v.remove(&who);
            verdicts = Some(v);
        }
        "merge" => {
            let approvers: Vec<String> = verdicts
                .as_ref()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let known = verdicts.is_some() || memory.get(SRC, "reviews_seen", &project).is_some();
            let self_merged =
                !s(mr, "author_id").is_empty() && s(mr, "author_id") == s(p, "user.id");
            without_review = git::merge_review(
                &mut e,
                self_merged,
                known.then_some(approvers),
                ctx.id("without_review"),
            );
        }
        _ => {}
    }
    out.push(0, e);
    if let Some(d) = without_review {
        out.push(0, d);
    }
    if matches!(
        action.as_str(),
        "approval" | "approved" | "unapproval" | "unapproved"
    ) {
        out.remember(SRC, "reviews", &key, verdicts.map(Value::Object));
        out.remember(SRC, "reviews_seen", &project, Some(json!(true)));
    }
    Ok(())
}

/// One audit event (streamed or exported) → one normalised event.
fn audit(p: &Value, index: usize, header_type: &str, received: OffsetDateTime, out: &mut Mapped) {
    let kind = [
        header_type.to_string(),
        s(p, "event_type"),
        s(p, "event_name"),
        s(p, "details.event_name"),
    ]
    .into_iter()
    .find(|k| !k.is_empty())
    .unwrap_or_else(|| "audit_operation".into());
    let change = s(p, "details.change");
    let to = at(p, "details.to").cloned().unwrap_or(Value::Null);
    let action = match kind.as_str() {
        "protected_branch_created" => "branch.protection.enabled".to_string(),
        "protected_branch_removed" => "branch.protection.disabled".to_string(),
        k if k.starts_with("protected_branch_") => "branch.protection.changed".to_string(),
        "project_visibility_level_updated" => "repo.visibility.changed".to_string(),
        _ if change.contains("visibility") => "repo.visibility.changed".to_string(),
        "member_created" => "member.added".to_string(),
        "member_updated" => "member.permission.changed".to_string(),
        "member_destroyed" => "member.removed".to_string(),
        "personal_access_token_created"
        | "project_access_token_created"
        | "group_access_token_created" => "api_key.created".to_string(),
        "personal_access_token_revoked"
        | "project_access_token_revoked"
        | "group_access_token_revoked" => "api_key.revoked".to_string(),
        "deploy_key_added" | "deploy_key_created" => "deploy_key.created".to_string(),
        "deploy_key_removed" | "deploy_key_deleted" => "deploy_key.deleted".to_string(),
        "project_export_file_download_started" | "group_export_file_download_started" => {
            "data.export".to_string()
        }
        "repository_download_operation" | "public_repository_download_operation" => {
            "data.download".to_string()
        }
        other => unknown_action(SRC, other),
    };
    let id = match s(p, "id") {
        x if x.is_empty() => content_id(&serde_json::to_vec(p).unwrap_or_default()),
        x => x,
    };
    let author = match s(p, "author_name") {
        a if a.is_empty() => s(p, "details.author_name"),
        a => a,
    };
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
        &match s(p, "entity_path") {
            x if x.is_empty() => s(p, "details.entity_path"),
            x => x,
        },
        &action,
    );
    e.resource = match s(p, "target_details") {
        x if x.is_empty() => s(p, "details.target_details"),
        x => x,
    };
    set(&mut e, "source_event", kind.clone());
    set(&mut e, "author_id", author_id);
    set(&mut e, "entity_type", s(p, "entity_type"));
    set(&mut e, "target_type", s(p, "target_type"));
    set(&mut e, "target_id", s(p, "target_id"));
    set(
        &mut e,
        "ip",
        match s(p, "ip_address") {
            x if x.is_empty() => s(p, "details.ip_address"),
            x => x,
        },
    );
    set(&mut e, "message", s(p, "details.custom_message"));
    set(&mut e, "change", change.clone());
    set(
        &mut e,
        "change.from",
        at(p, "details.from").cloned().unwrap_or(Value::Null),
    );
    set(&mut e, "change.to", to.clone());
    for k in [
        "allow_force_push",
        "code_owner_approval_required",
        "push_access_levels",
        "merge_access_levels",
    ] {
        if let Some(v) = at(p, &format!("details.{k}")).or_else(|| at(p, k)) {
            let v = if v.is_array() {
                Value::String(strings(v, "").join(","))
            } else {
                v.clone()
            };
            set(&mut e, &format!("protection.{k}"), v);
        }
    }
    if action.starts_with("branch.protection") {
        let weakened = action == "branch.protection.disabled"
            || (change.contains("force_push") && to.as_bool() == Some(true))
            || (change.contains("code_owner") && to.as_bool() == Some(false));
        set(&mut e, "weakened", weakened);
    }
    if action == "repo.visibility.changed" {
        set(
            &mut e,
            "visibility",
            to.as_str().unwrap_or("").to_ascii_lowercase(),
        );
    }
    out.push(index, e);
}
