//! GitHub webhooks: `POST /v1/ingest/github`.
//!
//! Verified with `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with `[github] secret`),
//! typed by `X-GitHub-Event`, made idempotent by `X-GitHub-Delivery`: every event of a
//! delivery has the id `github:<delivery>` plus a fixed suffix for derived events
//! (`:force`, `:default`, `:protected`, `:risk.<category>`, `:without_review`).
//! The delivery id is not covered by the signature, so a body seen before under another
//! id maps to the ids it had the first time: a captured delivery replayed with a fresh id
//! is a duplicate. That memory (`BODY_SEEN`) lasts as long as events are kept.
//! The mapping is documented in docs/sources.md; the actions in docs/actions.md.

mod governance;

/// How much a GitHub permission allows (`read` < `triage` < `write` < `maintain` < `admin`).
pub(crate) use governance::rank as permission_rank;

use std::collections::BTreeSet;

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::adapter::{
    check_hmac_sha256, header, Adapter, Delivery, IngestError, Mapped, Memory, SourceAuth,
};
use super::git::{self, glob_match, Push};
use super::map::{
    actor, at, b, content_id, copy, event, is_ai_agent_login, json_body, keep_payload, parse_time,
    parse_time_str, s, segment, set, strings, u, unknown_action,
};
use plumbline_event::{Actor, ActorType, Event, Source, Volume};

const SRC: Source = Source::Github;

/// Adapter memory kind: sha256 of a delivered body → `{"delivery", "at"}` (unix seconds),
/// swept with the events by retention.
pub const BODY_SEEN: &str = "body";

/// Header the CLI sets on back-filled deliveries (GitHub's `delivered_at`), used as the
/// event time when the payload carries none of its own.
pub const DELIVERED_AT: &str = "x-plumbline-delivered-at";

/// `[github]`: webhook secret for `POST /v1/ingest/github` (empty: API-token rules).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    pub secret: String,
}

/// GitHub webhooks, signed with the configured secret.
pub struct GithubAdapter {
    config: GithubConfig,
}

impl GithubAdapter {
    pub fn new(config: GithubConfig) -> Self {
        GithubAdapter { config }
    }
}

impl Adapter for GithubAdapter {
    fn source(&self) -> Source {
        SRC
    }

    fn verifies_body(&self) -> bool {
        true
    }

    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> SourceAuth {
        check_hmac_sha256(
            &self.config.secret,
            body,
            header(headers, "x-hub-signature-256"),
        )
    }

    fn map(&self, d: &Delivery<'_>, memory: &dyn Memory) -> Result<Mapped, IngestError> {
        let kind = d
            .header("x-github-event")
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                IngestError::malformed(
                    "X-GitHub-Event",
                    "header is missing: it names the event type",
                )
            })?;
        let delivery = match d.header("x-github-delivery") {
            Some(id) if valid_id(id) => id.to_string(),
            Some(_) => {
                return Err(IngestError::malformed(
                    "X-GitHub-Delivery",
                    "not a delivery id",
                ))
            }
            None => content_id(d.body),
        };
        let payload = json_body(d.body)?;
        if !payload.is_object() {
            return Err(IngestError::malformed(
                "(body)",
                "a GitHub webhook payload is a JSON object",
            ));
        }
        let received = d
            .header(DELIVERED_AT)
            .and_then(parse_time_str)
            .unwrap_or(d.received);
        let body = content_id(d.body);
        let first = memory
            .get(SRC, BODY_SEEN, &body)
            .and_then(|v| v["delivery"].as_str().map(str::to_string))
            .filter(|first| valid_id(first));
        let delivery = first.clone().unwrap_or(delivery);
        let mut out = map(kind, &delivery, &payload, received, memory)?;
        if first.is_none() {
            let seen = json!({"delivery": delivery, "at": d.received.unix_timestamp()});
            out.remember(SRC, BODY_SEEN, &body, Some(seen));
        }
        Ok(out)
    }
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
    memory: &dyn Memory,
) -> Result<Mapped, IngestError> {
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
        "branch_protection_rule" => governance::protection_rule(&ctx, memory, &mut out),
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
        "repository_ruleset" => governance::ruleset(&ctx, &mut out),
        "repository" => governance::repository(&ctx, &mut out),
        "member" => governance::member(&ctx, &mut out),
        "organization" => governance::organization(&ctx, &mut out),
        "team" => governance::team(&ctx, &mut out),
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
        "deploy_key" => governance::deploy_key(&ctx, &mut out),
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
            // Its record is the delivery's `raw.` (below).
            out.push(0, ctx.base(&action, ""));
        }
    }
    // The delivery's own record, for rules written against GitHub's payload (Sigma's
    // `github`/`webhook` logsource): on the delivery's first event only, so one delivery
    // is matched once.
    out.amend_first(|first| keep_payload(first, RAW, &raw_record(p), RAW_BUDGET));
    Ok(out)
}

/// The prefix under which a delivery's payload is kept (docs/sources.md).
pub const RAW: &str = "raw";
/// Most attributes the raw record adds to an event.
const RAW_BUDGET: usize = 200;

/// A webhook payload without what every delivery repeats: the repository, organization
/// and accounts it embeds keep only the fields a rule reads of them (name, visibility,
/// fork, forking allowed, login, type), commits lose their file lists (the push's own mapping has them),
/// key material is left out.
fn raw_record(p: &Value) -> Value {
    const REPOSITORY: &[&str] = &[
        "id",
        "name",
        "full_name",
        "private",
        "visibility",
        "fork",
        "archived",
        "allow_forking",
        "default_branch",
        "owner",
    ];
    const ACCOUNT: &[&str] = &["id", "login", "type", "name", "email", "username"];
    fn trim(v: &Value, key: &str) -> Value {
        match v {
            Value::Object(m) => {
                let keep: Option<&[&str]> =
                    if m.contains_key("full_name") && m.contains_key("private") {
                        Some(REPOSITORY)
                    } else if m.contains_key("login")
                        && (m.contains_key("avatar_url") || m.contains_key("site_admin"))
                    {
                        Some(ACCOUNT)
                    } else {
                        None
                    };
                let out = m
                    .iter()
                    .filter(|(k, _)| keep.is_none_or(|keep| keep.contains(&k.as_str())))
                    .filter(|(k, _)| {
                        key != "commit" || !matches!(k.as_str(), "added" | "removed" | "modified")
                    })
                    .filter(|(k, _)| !matches!(k.as_str(), "node_id" | "gravatar_id"))
                    // Key material (a deploy key's `key`): the mapping keeps its hash.
                    .filter(|(k, x)| !(k.as_str() == "key" && x.is_string()))
                    .map(|(k, x)| {
                        let child = if matches!(k.as_str(), "commits" | "head_commit") {
                            "commit"
                        } else {
                            k.as_str()
                        };
                        (k.clone(), trim(x, child))
                    })
                    .collect();
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| trim(x, key)).collect()),
            other => other.clone(),
        }
    }
    trim(p, "")
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

    /// The payload's own time at the first of `paths` that has one, else the delivery
    /// time. A deletion is dated by its delivery: a deleted object's timestamps
    /// (`created_at`, `updated_at`) say when it was made or last edited, not when it went
    /// away, and a year-old key's deletion must not land a year before the key that
    /// replaces it.
    fn time_at(&self, paths: &[&str]) -> OffsetDateTime {
        if s(self.p, "action") == "deleted" {
            return self.received;
        }
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

fn push(ctx: &Ctx, memory: &dyn Memory, out: &mut Mapped) -> Result<(), IngestError> {
    let p = ctx.p;
    let r#ref = s(p, "ref");
    if r#ref.is_empty() {
        return Err(IngestError::malformed(
            "ref",
            "a push payload names the ref it updated",
        ));
    }
    let branch = r#ref.strip_prefix("refs/heads/").map(str::to_string);
    let commits = at(p, "commits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let default_branch = s(p, "repository.default_branch");
    let rule = branch
        .as_deref()
        .and_then(|br| protected_by(memory, &ctx.repo, br));
    let head = at(p, "head_commit");
    let push = Push {
        r#ref: r#ref.clone(),
        branch: branch.clone().unwrap_or_default(),
        tag: r#ref.strip_prefix("refs/tags/").map(str::to_string),
        before: s(p, "before"),
        after: s(p, "after"),
        created: b(p, "created").unwrap_or(false),
        deleted: b(p, "deleted").unwrap_or(false),
        forced: Some(b(p, "forced").unwrap_or(false)),
        commits: commits.len() as u64,
        to_default_branch: branch.is_some() && branch.as_deref() == Some(default_branch.as_str()),
        default_branch,
        paths: git::commit_paths(commits.iter().chain(head)),
        authors: commits
            .iter()
            .map(|c| match s(c, "author.username") {
                u if u.is_empty() => s(c, "author.name"),
                u => u,
            })
            .filter(|a| !a.is_empty())
            .collect::<BTreeSet<String>>(),
        head_commit_id: s(p, "head_commit.id"),
        head_commit_message: s(p, "head_commit.message"),
        protected: rule.is_some().then_some(true),
    };
    let mut e = ctx.base(push.action(), "");
    e.time = ctx.time_at(&["repository.pushed_at", "head_commit.timestamp"]);
    push.describe(&mut e);
    set(
        &mut e,
        "commits.distinct",
        commits
            .iter()
            .filter(|c| b(c, "distinct").unwrap_or(true))
            .count() as u64,
    );
    set(&mut e, "pusher", s(p, "pusher.name"));
    if let Some(rule) = rule {
        set(&mut e, "protection.rule", rule);
    }
    out.push(0, e.clone());
    for d in push.derived(&e, |suffix| ctx.id(suffix)) {
        out.push(0, d);
    }
    Ok(())
}

/// The protection rule (pattern) covering `branch`, from branch_protection_rule deliveries.
fn protected_by(memory: &dyn Memory, repo: &str, branch: &str) -> Option<String> {
    let rules = memory.get(SRC, "protected", repo)?;
    rules
        .as_object()?
        .values()
        .filter_map(Value::as_str)
        .find(|pattern| glob_match(pattern, branch))
        .map(str::to_string)
}

fn pull_request(ctx: &Ctx, memory: &dyn Memory, out: &mut Mapped) -> Result<(), IngestError> {
    let p = ctx.p;
    let Some(pr) = at(p, "pull_request") else {
        return Err(IngestError::malformed(
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
        // A delivery without an action (a hand-made or trimmed payload) is still a change.
        "" => "pr.changed".to_string(),
        other => format!("pr.{}", segment(other)),
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
        without_review = git::merge_review(
            &mut e,
            !merged_by.is_empty() && merged_by == author,
            known.then_some(approvers),
            ctx.id("without_review"),
        );
    }
    out.push(0, e);
    if let Some(d) = without_review {
        out.push(0, d);
    }
    Ok(())
}

fn review(ctx: &Ctx, memory: &dyn Memory, out: &mut Mapped) -> Result<(), IngestError> {
    let p = ctx.p;
    let Some(r) = at(p, "review") else {
        return Err(IngestError::malformed(
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
        (other, _) => format!("pr.review.{}", segment(other)),
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

fn workflow_run(ctx: &Ctx, out: &mut Mapped) {
    let p = ctx.p;
    let Some(run) = at(p, "workflow_run") else {
        out.push(0, ctx.base(&unknown_action(SRC, ctx.kind), ""));
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
    e.environment = super::map::environment_named(&env);
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
    installation_reach(&mut e, at(p, "installation.permissions"), &repos);
    out.push(0, e);
}

/// What an installation can reach, as both GitHub feeds describe it: `permissions.*` and
/// how many of them write, the repositories (count and the first 20), and — for a grown
/// installation (`credential.scope.increased`) — the credential's kind and scope.
pub(crate) fn installation_reach(e: &mut Event, permissions: Option<&Value>, repos: &[String]) {
    let perms = permissions.and_then(Value::as_object);
    if let Some(perms) = perms {
        for (k, v) in perms {
            set(e, &format!("permissions.{k}"), v.clone());
        }
        let writes = perms
            .values()
            .filter(|v| matches!(v.as_str(), Some("write" | "admin")))
            .count();
        set(e, "permissions.write_count", writes as u64);
    }
    set(e, "repositories.count", repos.len() as u64);
    set(
        e,
        "repositories",
        repos.iter().take(20).cloned().collect::<Vec<_>>().join(","),
    );
    if e.action == "credential.scope.increased" {
        set(e, "credential.kind", "github_app_installation");
        let summary = perms
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}:{}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        set(e, "credential.scope", summary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_the_raw_body() {
        let adapter = GithubAdapter::new(GithubConfig {
            secret: "s3cret".into(),
        });
        let body = br#"{"zen": "Design for failure."}"#;
        let mut headers = HeaderMap::new();
        let sig = super::super::adapter::sign_sha256("s3cret", body);
        headers.insert("x-hub-signature-256", sig.parse().unwrap());
        assert!(adapter.verifies_body());
        assert_eq!(adapter.verify(&headers, body), SourceAuth::Valid);
        assert!(matches!(
            adapter.verify(&headers, br#"{"zen": "Design for failure." }"#),
            SourceAuth::Invalid(_)
        ));
        assert!(matches!(
            adapter.verify(&HeaderMap::new(), body),
            SourceAuth::Invalid(_)
        ));
        let open = GithubAdapter::new(GithubConfig {
            secret: String::new(),
        });
        assert_eq!(open.verify(&headers, body), SourceAuth::NotConfigured);
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
            &super::super::adapter::InMemory::default(),
        )
        .unwrap();
        assert_eq!(m.events[0].action, "github.star.created");
        assert_eq!(
            m.events[0].attributes["raw.starred_at"],
            json!("2024-01-01T00:00:00Z")
        );
    }
}
