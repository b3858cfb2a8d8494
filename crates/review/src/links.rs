//! Links back to the sources, built from what the adapters keep in each event (repository,
//! commit ids, pull-request numbers, CI run ids, workflow and credential ids, regions):
//! the diff, the pull request, the CI run, the deployment, the workflow and its edit
//! history, the credential record. Base URLs come from `[review]`; a source without one
//! gets no links. Values go into URLs only when they look like what they claim to be, so
//! an attacker-chosen attribute cannot turn a link into something else.

use serde::Serialize;

use super::ReviewConfig;
use plumbline_event::{Event, Source};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// What it opens: `diff`, `commit`, `pull_request`, `ci_run`, `deployment`,
    /// `workflow`, `workflow_history`, `execution`, `credential`, `repository`,
    /// `settings`, `secret`, `audit_log`, `assistant`, `bucket`.
    pub kind: &'static str,
    /// For people: "diff a1b2c3d…e4f5a6b".
    pub label: String,
    pub url: String,
}

/// An attribute as text (the adapters keep numbers as numbers).
fn attr(e: &Event, key: &str) -> Option<String> {
    match e.attributes.get(key)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Safe in a URL path: ids, shas, names of repositories (`owner/repo`, GitLab groups).
fn path_safe(s: &str) -> bool {
    !s.is_empty()
        && !s.contains("..")
        && !s.starts_with('/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '~'))
}

fn id_safe(s: &str) -> bool {
    path_safe(s) && !s.contains('/')
}

fn sha(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit()) && !zero(s)
}

fn zero(s: &str) -> bool {
    s.chars().all(|c| c == '0')
}

fn short(s: &str) -> &str {
    &s[..s.len().min(7)]
}

struct Out(Vec<Link>);

impl Out {
    fn push(&mut self, kind: &'static str, label: String, url: String) {
        if !self.0.iter().any(|l| l.url == url) {
            self.0.push(Link { kind, label, url });
        }
    }
}

/// The links for one event.
pub fn for_event(e: &Event, c: &ReviewConfig) -> Vec<Link> {
    let mut out = Out(Vec::new());
    let base = |u: &str| u.trim_end_matches('/').to_string();
    match e.source {
        Source::Github if !c.github_url.is_empty() => git(e, &base(&c.github_url), false, &mut out),
        Source::Gitlab if !c.gitlab_url.is_empty() => git(e, &base(&c.gitlab_url), true, &mut out),
        Source::N8n if !c.n8n_url.is_empty() => n8n(e, &base(&c.n8n_url), &mut out),
        Source::Make if !c.make_url.is_empty() => make(e, &base(&c.make_url), &mut out),
        Source::Vault if !c.vault_url.is_empty() => vault(e, &base(&c.vault_url), &mut out),
        Source::Cloudtrail if !c.aws_console_url.is_empty() => {
            cloudtrail(e, &base(&c.aws_console_url), &mut out)
        }
        Source::Okta if !c.okta_admin_url.is_empty() => {
            out.push(
                "audit_log",
                "Okta system log".into(),
                format!("{}/report/system_log_2", base(&c.okta_admin_url)),
            );
        }
        Source::Openai if !c.openai_url.is_empty() => {
            if let Some(id) = attr(e, "assistant.id").filter(|s| id_safe(s)) {
                out.push(
                    "assistant",
                    format!("assistant {id}"),
                    format!("{}/assistants/{id}", base(&c.openai_url)),
                );
            }
        }
        _ => {}
    }
    out.0
}

/// GitHub and GitLab: same facts, slightly different paths (`/-/` on GitLab).
fn git(e: &Event, host: &str, gitlab: bool, out: &mut Out) {
    if !path_safe(&e.system) || !e.system.contains('/') {
        return;
    }
    let repo = format!("{host}/{}", e.system);
    let dash = if gitlab { "/-" } else { "" };
    let a = e.action.as_str();
    let before = attr(e, "before").filter(|s| sha(s));
    let after = attr(e, "after").filter(|s| sha(s));
    if a.starts_with("git.push") {
        if let (Some(b), Some(x)) = (&before, &after) {
            out.push(
                "diff",
                format!("diff {}…{}", short(b), short(x)),
                format!("{repo}{dash}/compare/{b}...{x}"),
            );
        }
        if let Some(head) = attr(e, "head_commit.id").filter(|s| sha(s)).or(after) {
            out.push(
                "commit",
                format!("commit {}", short(&head)),
                format!("{repo}{dash}/commit/{head}"),
            );
        }
    }
    if a.starts_with("pr.") {
        if let Some(n) = attr(e, "pr.number").filter(|s| s.chars().all(|c| c.is_ascii_digit())) {
            let (path, label) = if gitlab {
                ("merge_requests", format!("merge request !{n}"))
            } else {
                ("pull", format!("pull request #{n}"))
            };
            out.push("pull_request", label, format!("{repo}{dash}/{path}/{n}"));
            let files = if gitlab { "diffs" } else { "files" };
            out.push(
                "diff",
                format!("diff of #{n}"),
                format!("{repo}{dash}/{path}/{n}/{files}"),
            );
        }
        if let Some(m) = attr(e, "pr.merge_commit").filter(|s| sha(s)) {
            out.push(
                "commit",
                format!("merge commit {}", short(&m)),
                format!("{repo}{dash}/commit/{m}"),
            );
        }
    }
    if a == "ci.workflow.run" {
        if let Some(id) = attr(e, "run.id").filter(|s| id_safe(s)) {
            let path = if gitlab { "pipelines" } else { "actions/runs" };
            out.push(
                "ci_run",
                format!("CI run {id}"),
                format!("{repo}{dash}/{path}/{id}"),
            );
        }
    }
    if a.starts_with("deploy.") {
        let path = if gitlab {
            "environments"
        } else {
            "deployments"
        };
        out.push(
            "deployment",
            "deployments".into(),
            format!("{repo}{dash}/{path}"),
        );
        if let Some(s) = attr(e, "deploy.sha").filter(|s| sha(s)) {
            out.push(
                "commit",
                format!("deployed commit {}", short(&s)),
                format!("{repo}{dash}/commit/{s}"),
            );
        }
    }
    let settings = |path: &str| {
        if gitlab {
            format!("{repo}/-/settings/{path}")
        } else {
            format!("{repo}/settings/{path}")
        }
    };
    if a.starts_with("branch.protection.") || a.starts_with("repo.ruleset.") {
        let path = if gitlab { "repository" } else { "branches" };
        out.push("settings", "branch protection".into(), settings(path));
    }
    if a.starts_with("deploy_key.") {
        let path = if gitlab { "repository" } else { "keys" };
        out.push("credential", "deploy keys".into(), settings(path));
    }
    if a == "secret_scanning.alert" {
        if let Some(n) = attr(e, "alert.number").filter(|s| id_safe(s)) {
            out.push(
                "secret",
                format!("secret-scanning alert {n}"),
                format!("{repo}/security/secret-scanning/{n}"),
            );
        }
    }
    if gitlab && e.id.starts_with("gitlab:audit:") {
        out.push(
            "audit_log",
            "audit events".into(),
            format!("{repo}/-/audit_events"),
        );
    }
    out.push("repository", e.system.clone(), repo);
}

fn n8n(e: &Event, host: &str, out: &mut Out) {
    let workflow = attr(e, "workflow.id")
        .or_else(|| e.system.strip_prefix("n8n/workflow/").map(str::to_string))
        .filter(|s| id_safe(s));
    if let Some(w) = &workflow {
        out.push(
            "workflow",
            format!("workflow {w}"),
            format!("{host}/workflow/{w}"),
        );
        out.push(
            "workflow_history",
            "edit history".into(),
            format!("{host}/workflow/{w}/history"),
        );
        if let Some(x) = attr(e, "execution.id").filter(|s| id_safe(s)) {
            out.push(
                "execution",
                format!("execution {x}"),
                format!("{host}/workflow/{w}/executions/{x}"),
            );
        }
    }
    if let Some(c) = attr(e, "credential.id").filter(|s| id_safe(s)) {
        out.push(
            "credential",
            format!("credential {c}"),
            format!("{host}/home/credentials/{c}"),
        );
    }
}

fn make(e: &Event, host: &str, out: &mut Out) {
    let scenario = e
        .system
        .strip_prefix("make/scenario/")
        .map(str::to_string)
        .filter(|s| id_safe(s));
    let team = attr(e, "team.id").filter(|s| id_safe(s));
    if let (Some(s), Some(t)) = (scenario, team) {
        out.push(
            "workflow",
            format!("scenario {s}"),
            format!("{host}/{t}/scenarios/{s}/edit"),
        );
        out.push(
            "workflow_history",
            "scenario history".into(),
            format!("{host}/{t}/scenarios/{s}/logs"),
        );
    }
}

fn vault(e: &Event, host: &str, out: &mut Out) {
    let mount = attr(e, "mount.point").map(|m| m.trim_matches('/').to_string());
    if let Some(m) = mount.filter(|s| path_safe(s)) {
        if e.action.starts_with("secret.") {
            out.push(
                "secret",
                format!("secrets engine {m}"),
                format!("{host}/ui/vault/secrets/{m}"),
            );
        }
    }
}

fn cloudtrail(e: &Event, host: &str, out: &mut Out) {
    let region = attr(e, "region").filter(|s| id_safe(s));
    if let (Some(r), Some(id)) = (&region, e.id.strip_prefix("cloudtrail:")) {
        if id_safe(id) {
            out.push(
                "audit_log",
                "CloudTrail event".into(),
                format!("{host}/cloudtrailv2/home?region={r}#/events/{id}"),
            );
        }
    }
    if let Some(b) = attr(e, "bucket").filter(|s| id_safe(s)) {
        out.push(
            "bucket",
            format!("bucket {b}"),
            format!("{host}/s3/buckets/{b}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ReviewConfig {
        ReviewConfig {
            n8n_url: "https://n8n.acme.example/".into(),
            ..ReviewConfig::default()
        }
    }

    fn ev(source: &str, system: &str, action: &str, attrs: serde_json::Value) -> Event {
        serde_json::from_value(serde_json::json!({
            "id": "x", "time": "2026-11-25T10:00:00Z", "source": source,
            "actor": {"id": "a", "type": "human"}, "system": system, "action": action,
            "attributes": attrs,
        }))
        .unwrap()
    }

    fn urls(l: &[Link]) -> Vec<&str> {
        l.iter().map(|l| l.url.as_str()).collect()
    }

    #[test]
    fn github_push_pull_request_and_run() {
        let push = ev(
            "github",
            "acme/api",
            "git.push.force",
            serde_json::json!({"before": "a".repeat(40), "after": "b".repeat(40)}),
        );
        let l = for_event(&push, &config());
        assert_eq!(
            urls(&l),
            vec![
                format!(
                    "https://github.com/acme/api/compare/{}...{}",
                    "a".repeat(40),
                    "b".repeat(40)
                )
                .as_str(),
                format!("https://github.com/acme/api/commit/{}", "b".repeat(40)).as_str(),
                "https://github.com/acme/api",
            ]
        );
        let pr = ev(
            "github",
            "acme/api",
            "pr.merged",
            serde_json::json!({"pr.number": 42}),
        );
        assert!(urls(&for_event(&pr, &config())).contains(&"https://github.com/acme/api/pull/42"));
        let run = ev(
            "gitlab",
            "grp/svc",
            "ci.workflow.run",
            serde_json::json!({"run.id": "77"}),
        );
        assert!(urls(&for_event(&run, &config()))
            .contains(&"https://gitlab.com/grp/svc/-/pipelines/77"));
    }

    #[test]
    fn n8n_workflow_history_and_credential_record() {
        let wf = ev(
            "n8n",
            "n8n/workflow/wf42",
            "workflow.updated",
            serde_json::json!({"workflow.id": "wf42"}),
        );
        assert_eq!(
            urls(&for_event(&wf, &config())),
            vec![
                "https://n8n.acme.example/workflow/wf42",
                "https://n8n.acme.example/workflow/wf42/history"
            ]
        );
        let cred = ev(
            "n8n",
            "n8n",
            "credential.created",
            serde_json::json!({"credential.id": "17"}),
        );
        assert_eq!(
            urls(&for_event(&cred, &config())),
            vec!["https://n8n.acme.example/home/credentials/17"]
        );
        let mut off = config();
        off.n8n_url.clear();
        assert!(for_event(&wf, &off).is_empty(), "no base URL, no links");
    }

    #[test]
    fn hostile_values_make_no_links() {
        let pr = ev(
            "github",
            "acme/api",
            "pr.opened",
            serde_json::json!({"pr.number": "1?x=javascript:alert(1)"}),
        );
        assert_eq!(
            urls(&for_event(&pr, &config())),
            vec!["https://github.com/acme/api"]
        );
        let wf = ev(
            "n8n",
            "n8n/workflow/../../admin",
            "workflow.updated",
            serde_json::json!({}),
        );
        assert!(for_event(&wf, &config()).is_empty());
        let repo = ev(
            "github",
            "javascript:alert(1)//x",
            "git.push",
            serde_json::json!({}),
        );
        assert!(for_event(&repo, &config()).is_empty());
    }
}
