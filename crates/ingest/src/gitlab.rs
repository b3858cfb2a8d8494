//! GitLab webhooks and audit-event streaming: `POST /v1/ingest/gitlab`.
//!
//! Authenticated by `X-Gitlab-Token` (webhooks) or `X-Gitlab-Event-Streaming-Token`
//! (audit-event streaming destinations) against `[gitlab] token`. Typed by
//! `X-Gitlab-Event` / `X-Gitlab-Audit-Event-Type`, falling back to the body's
//! `object_kind` / `event_name` / `event_type` (what a back-filled file carries).
//! Idempotent on `Idempotency-Key` (GitLab keeps it across retries), then
//! `X-Gitlab-Event-UUID`, then a content hash; audit events use their own `id`, so the
//! same audit event streamed and exported is stored once. Audit-event streaming sends its
//! JSON body as `application/x-www-form-urlencoded`: the body is read as JSON whatever
//! the content type says. Hooks are mapped here, audit events in [`audit`].

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
    parse_time_str, s, segment, set, u, unknown_action, PAYLOAD_BUDGET,
};
use plumbline_event::{Actor, ActorType, Event, Source};

mod audit;

const SRC: Source = Source::Gitlab;
const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// Adapter memory kind: `<project>!<iid>` → the merge request author's username (hooks
/// name the author by id only; the author's own events name them).
const MR_AUTHOR: &str = "mr_author";

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
                audit::audit(item, i, "", received, memory, &mut out);
            }
        } else if !payload.is_object() {
            return Err(IngestError::malformed(
                "(body)",
                "a GitLab hook payload is a JSON object",
            ));
        } else if !audit_type.is_empty() || is_audit_event(&payload) {
            audit::audit(&payload, 0, audit_type, received, memory, &mut out);
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
        first(
            self.p,
            &["project.path_with_namespace", "path_with_namespace"],
        )
    }

    fn kind(&self) -> String {
        match first(self.p, &["object_kind", "event_name", "event_type"]) {
            k if k.is_empty() => segment(self.hook.trim_end_matches(" Hook")),
            k => k,
        }
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
            first(self.p, &["object_attributes.action", "action"]),
        );
        set(
            &mut e,
            "repo.visibility",
            visibility(u(self.p, "project.visibility_level")),
        );
        e
    }

    /// The first time among `paths` the payload carries, else when it was received.
    fn time_at(&self, paths: &[&str]) -> OffsetDateTime {
        paths
            .iter()
            .find_map(|path| at(self.p, path).and_then(parse_time))
            .unwrap_or(self.received)
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

/// The first non-empty text among `paths` of `p`, else empty.
fn first(p: &Value, paths: &[&str]) -> String {
    paths
        .iter()
        .map(|path| s(p, path))
        .find(|v| !v.is_empty())
        .unwrap_or_default()
}

/// Who acted on a hook: `user` (most hooks) or `user_username` (push hooks). Job hooks
/// name the user without a username; hooks that name nobody (release) are GitLab's own.
fn user(p: &Value) -> Actor {
    let username = first(p, &["user.username", "user_username"]);
    let name = first(p, &["user.name", "user_name"]);
    match (username.is_empty(), name.is_empty()) {
        (false, _) => account(&username, &name),
        (true, false) => account(&name, &name),
        (true, true) => actor("gitlab", ActorType::Service, "GitLab"),
    }
}

fn map_hook(ctx: &Ctx, memory: &dyn Memory, out: &mut Mapped) -> Result<(), IngestError> {
    let kind = ctx.kind();
    match kind.as_str() {
        "push" | "tag_push" => push(ctx, &kind, memory, out),
        "merge_request" => merge_request(ctx, memory, out),
        "pipeline" => {
            pipeline(ctx, out);
            Ok(())
        }
        "build" | "job" => {
            job(ctx, out);
            Ok(())
        }
        "deployment" => {
            deployment(ctx, out);
            Ok(())
        }
        "release" => {
            release(ctx, out);
            Ok(())
        }
        "user_add_to_team"
        | "user_add_to_group"
        | "user_update_for_team"
        | "user_update_for_group"
        | "user_remove_from_team"
        | "user_remove_from_group" => {
            member(ctx, &kind, out);
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

fn push(ctx: &Ctx, kind: &str, memory: &dyn Memory, out: &mut Mapped) -> Result<(), IngestError> {
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
    // `ref_protected` where GitLab sends it, else a protected-branch rule its audit
    // events showed (the same rules GitLab would apply).
    let protected = at(p, "ref_protected").and_then(Value::as_bool).or_else(|| {
        (!tag && !branch.is_empty())
            .then(|| audit::protected_by(memory, &ctx.project(), &branch))
            .flatten()
            .map(|_| true)
    });
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
        // GitLab push hooks do not say whether history was rewritten.
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
        protected,
    };
    let mut e = ctx.base(push.action(), "");
    // GitLab push hooks carry no push time: the newest commit's, never after receipt.
    e.time = commits
        .iter()
        .filter_map(|c| at(c, "timestamp").and_then(parse_time))
        .max()
        .map_or(ctx.received, |t| t.min(ctx.received));
    push.describe(&mut e);
    set(&mut e, "pusher", s(p, "user_username"));
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
    let who = e.actor.id.clone();
    // Hooks name the author by id; the author's own events give the username.
    let by_author = !s(mr, "author_id").is_empty() && s(mr, "author_id") == s(p, "user.id");
    let author = if by_author {
        if memory
            .get(SRC, MR_AUTHOR, &key)
            .as_ref()
            .and_then(Value::as_str)
            != Some(&who)
        {
            out.remember(SRC, MR_AUTHOR, &key, Some(json!(who)));
        }
        who.clone()
    } else {
        out.recall(memory, SRC, MR_AUTHOR, &key)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    set(&mut e, "pr.number", iid);
    set(&mut e, "pr.title", s(mr, "title"));
    set(&mut e, "pr.author", author.clone());
    set(&mut e, "pr.author_id", s(mr, "author_id"));
    if !author.is_empty() {
        set(&mut e, "pr.author_type", account(&author, "").kind.as_str());
    }
    set(&mut e, "pr.base", s(mr, "target_branch"));
    set(&mut e, "pr.head", s(mr, "source_branch"));
    set(&mut e, "pr.state", s(mr, "state"));
    set(
        &mut e,
        "pr.draft",
        at(mr, "draft").and_then(Value::as_bool).unwrap_or(false),
    );
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
    let mut verdicts = out
        .recall(memory, SRC, "reviews", &key)
        .and_then(|v| v.as_object().cloned());
    let mut without_review = None;
    match action.as_str() {
        "approval" | "approved" => {
            // GitLab lets an author approve their own merge request (when the project
            // allows it); that approval is kept apart: it is not a review.
            let mut v = verdicts.clone().unwrap_or_default();
            v.insert(
                who.clone(),
                json!(if by_author { "self" } else { "approved" }),
            );
            verdicts = Some(v);
            set(&mut e, "reviewer", who.clone());
            set(&mut e, "review.state", "approved");
            set(&mut e, "review.self", by_author);
        }
        "unapproval" | "unapproved" => {
            let mut v = verdicts.clone().unwrap_or_default();
            v.remove(&who);
            verdicts = Some(v);
            set(&mut e, "reviewer", who.clone());
        }
        "merge" => {
            set(&mut e, "pr.merged", true);
            set(&mut e, "pr.merged_by", who.clone());
            // A fast-forward merge has no merge commit: the source branch's head lands.
            let landed = first(
                mr,
                &["merge_commit_sha", "squash_commit_sha", "last_commit.id"],
            );
            set(&mut e, "pr.merge_commit", landed);
            let by = |state: &str| -> Vec<String> {
                verdicts
                    .iter()
                    .flatten()
                    .filter(|(_, v)| v.as_str() == Some(state))
                    .map(|(who, _)| who.clone())
                    .collect()
            };
            let approvers = by("approved");
            if !by("self").is_empty() {
                set(&mut e, "review.self_approved", true);
            }
            let known = verdicts.is_some() || memory.get(SRC, "reviews_seen", &project).is_some();
            let self_merged = by_author;
            without_review = git::merge_review(
                &mut e,
                self_merged,
                known.then_some(approvers),
                ctx.id("without_review"),
            );
        }
        _ => {
            set(&mut e, "pr.merge_commit", s(mr, "merge_commit_sha"));
        }
    }
    out.push(0, e);
    if let Some(d) = without_review {
        out.push(0, d);
    }
    // A merge request's approvals arrive in the same Merge Request Hook as its opening:
    // one seen from its opening has its reviews known, approved or not.
    if action == "open" && verdicts.is_none() {
        out.remember(SRC, "reviews", &key, Some(json!({})));
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

fn pipeline(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let mut e = ctx.base("ci.workflow.run", "");
    e.time = ctx.time_at(&[
        "object_attributes.finished_at",
        "object_attributes.created_at",
    ]);
    e.resource = format!("pipeline/{}", s(p, "object_attributes.id"));
    set(&mut e, "run.id", s(p, "object_attributes.id"));
    set(&mut e, "run.number", s(p, "object_attributes.iid"));
    set(&mut e, "run.status", s(p, "object_attributes.status"));
    set(
        &mut e,
        "run.conclusion",
        s(p, "object_attributes.detailed_status"),
    );
    set(&mut e, "run.event", s(p, "object_attributes.source"));
    set(&mut e, "run.branch", s(p, "object_attributes.ref"));
    set(&mut e, "run.head_sha", s(p, "object_attributes.sha"));
    set(&mut e, "run.actor", s(p, "user.username"));
    set(&mut e, "workflow.name", s(p, "object_attributes.name"));
    set(&mut e, "workflow.path", s(p, "project.ci_config_path"));
    out.push(0, e);
}

/// A Job Hook (`object_kind: build`): one CI job changed state.
fn job(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let mut e = ctx.base("ci.job.run", "");
    e.time = ctx.time_at(&["build_finished_at", "build_started_at", "build_created_at"]);
    e.resource = format!("job/{}", s(p, "build_id"));
    let env = s(p, "environment.name");
    if !env.is_empty() {
        e.environment = super::map::environment_named(&env);
        set(&mut e, "deploy.environment", env);
    }
    set(&mut e, "run.id", s(p, "pipeline_id"));
    set(&mut e, "job.id", s(p, "build_id"));
    set(&mut e, "job.name", s(p, "build_name"));
    set(&mut e, "job.stage", s(p, "build_stage"));
    set(&mut e, "run.status", s(p, "build_status"));
    if s(p, "build_status") == "failed" {
        set(&mut e, "run.failure_reason", s(p, "build_failure_reason"));
    }
    set(&mut e, "run.branch", s(p, "ref"));
    set(&mut e, "run.head_sha", s(p, "sha"));
    set(
        &mut e,
        "run.attempt",
        u(p, "retries_count").unwrap_or(0) + 1,
    );
    set(&mut e, "runner.id", s(p, "runner.id"));
    set(
        &mut e,
        "runner.shared",
        at(p, "runner.is_shared").cloned().unwrap_or(Value::Null),
    );
    out.push(0, e);
}

fn deployment(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let mut e = ctx.base("deploy.status", "");
    e.time = ctx.time_at(&["status_changed_at"]);
    let env = s(p, "environment");
    // A deployment tier (`production`, `staging`, …) speaks where the name does not.
    e.environment = super::map::guess_environment([env.as_str(), &s(p, "environment_tier")]);
    e.resource = env.clone();
    set(&mut e, "deploy.environment", env);
    set(&mut e, "deploy.tier", s(p, "environment_tier"));
    set(&mut e, "deploy.id", s(p, "deployment_id"));
    set(&mut e, "deploy.state", s(p, "status"));
    set(&mut e, "deploy.ref", s(p, "ref"));
    // The full commit is only in `commit_url`; `short_sha` is a prefix of it.
    let full = s(p, "commit_url")
        .rsplit('/')
        .next()
        .filter(|c| c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string);
    set(
        &mut e,
        "deploy.sha",
        full.unwrap_or_else(|| s(p, "short_sha")),
    );
    set(&mut e, "deploy.creator", s(p, "user.username"));
    set(&mut e, "deploy.job", s(p, "deployable_id"));
    set(&mut e, "commit.title", s(p, "commit_title"));
    out.push(0, e);
}

fn release(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let action = match s(p, "action").as_str() {
        "create" => "release.created".to_string(),
        "update" => "release.updated".to_string(),
        "delete" => "release.deleted".to_string(),
        other => unknown_action(SRC, &format!("release.{other}")),
    };
    let mut e = ctx.base(&action, "");
    e.time = ctx.time_at(&["released_at", "created_at"]);
    e.resource = s(p, "tag");
    set(&mut e, "release.name", s(p, "name"));
    set(&mut e, "release.tag", s(p, "tag"));
    set(&mut e, "release.sha", s(p, "commit.id"));
    set(&mut e, "release.assets", u(p, "assets.count").unwrap_or(0));
    out.push(0, e);
}

/// System-hook and group Member Hook membership events.
fn member(ctx: &Ctx, kind: &str, out: &mut Mapped) {
    let p = ctx.p;
    let action = if kind.starts_with("user_add") {
        "member.added"
    } else if kind.starts_with("user_update") {
        "member.permission.changed"
    } else {
        "member.removed"
    };
    let mut e = ctx.base(action, "");
    e.time = ctx.time_at(&["updated_at", "created_at"]);
    e.system = first(p, &["project_path_with_namespace", "group_path"]);
    if e.system.is_empty() {
        e.system = "gitlab".into();
    }
    e.resource = s(p, "user_username");
    // Member hooks name the member, not who acted.
    e.actor = actor(
        "gitlab-system-hook",
        ActorType::Service,
        "GitLab system hook",
    );
    set(&mut e, "member", s(p, "user_username"));
    let perm = first(p, &["group_access", "project_access", "access_level"]);
    set(&mut e, "permission", perm.to_ascii_lowercase());
    set(&mut e, "expires_at", s(p, "expires_at"));
    out.push(0, e);
}
