//! New long-lived credentials with write access: a repository deploy key that can push,
//! an API key or token whose scopes include write/admin, an IAM access key or a personal
//! token created for another user (a classic way to keep access). Needs review; created by an AI agent:
//! urgent.
//!
//! A key created shortly after the same-named key of the same kind on the same system was
//! deleted, revoked or rotated is a routine rotation and informational, unless the retired
//! key was known to be weaker (a read-only deploy key, an API key without write scopes).
//! Read on actor trajectories.

use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const SIGNAL: &str = "cred.write_key_created";

const CREATED: [&str; 2] = ["deploy_key.created", "api_key.created"];
const RETIRED: [&str; 5] = [
    "deploy_key.deleted",
    "api_key.deleted",
    "api_key.revoked",
    "api_key.rotated",
    "credential.deleted",
];

#[derive(Default)]
pub struct NewKey;

impl Detector for NewKey {
    fn info() -> Info {
        let info = Info::new(
            "credential-abuse.new-key",
            "0.1.0",
            "New deploy keys / API keys with write access (rotations informational)",
        )
        .actions(&[
            "deploy_key.created",
            "deploy_key.deleted",
            "api_key.created",
            "api_key.deleted",
            "api_key.revoked",
            "api_key.rotated",
        ])
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL])
        .config(
            "write_scopes",
            "*write*,*admin*,*owner*,*manage*,*delete*,api,repo,all,*:all,*.all,full*",
            "Key scopes (globs) that give write access; `*` alone as a scope always does",
        )
        .config(
            "rotation_minutes",
            "120",
            "A key created within this long of retiring a same-named key is a rotation",
        );
        keys::planned_work(info)
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let write_scopes = cx.config_list("write_scopes");
        let rotation = cx.config_parsed::<i64>("rotation_minutes")? * 60_000_000_000;
        let policy = cx.settings::<Policy>()?;

        let mut findings = Vec::new();
        for e in t.with_any_action(&CREATED) {
            let Some(why) = write_access(e, &write_scopes) else {
                continue;
            };
            let name = key_name(e);
            // Every retirement is judged, so a harmless one (a read-only key, or a key of
            // the same name elsewhere) cannot stand in for the key this one replaces.
            let retired = t.with_any_action(&RETIRED).find(|r| {
                !name.is_empty()
                    && key_name(r) == name
                    && (e.time - r.time).abs() <= rotation
                    && replaces(e, r, &write_scopes)
            });
            let agent = e.actor.kind == ActorKind::AiAgent;
            let severity = if retired.is_some() || policy.is_planned(e) {
                Severity::Informational
            } else if agent {
                Severity::Urgent
            } else {
                Severity::NeedsReview
            };
            let kind = if e.is("deploy_key.created") {
                "deploy key"
            } else {
                "API key"
            };
            let line = match retired {
                Some(_) => format!(
                    "{} rotated {kind} \"{name}\" on {} ({why})",
                    who(e),
                    e.system
                ),
                None => format!(
                    "{}{} created {kind} \"{name}\" on {} with {why}",
                    if agent { "AI agent " } else { "" },
                    who(e),
                    e.system
                ),
            };
            let next = match retired {
                Some(_) => "None: routine rotation (check the old key is gone)".to_string(),
                None => format!(
                    "Ask {} what \"{name}\" is for and where it is stored; make it read-only or delete it if write access is not needed",
                    who(e)
                ),
            };
            let mut evidence = vec![e];
            evidence.extend(retired);
            findings.push(
                Finding::new(SIGNAL, severity, title(line))
                    .evidence(evidence)
                    .score(if agent { 0.85 } else { 0.6 })
                    .next_step(next),
            );
        }
        Ok(findings)
    }
}

register_detector!(NewKey);

/// True if retiring `old` makes creating `new` a rotation: the same kind of key on the same
/// system, and not one known to be weaker (a read-only deploy key, an API key whose stated
/// scopes could not write). Swapping a read-only key for a push key of the same title, or
/// deleting a same-named key from another repository, gives access nobody had before.
fn replaces(new: &Event, old: &Event, write_scopes: &[String]) -> bool {
    if old.system != new.system || old.is("deploy_key.*") != new.is("deploy_key.*") {
        return false;
    }
    if old.is("deploy_key.*") {
        return old.attr_bool("read_only") != Some(true);
    }
    match attr_text(old, &SCOPE_KEYS) {
        Some(scope) => !wide_scopes(scope, write_scopes).is_empty(),
        None => true,
    }
}

/// Attributes that state a key's scopes.
const SCOPE_KEYS: [&str; 3] = ["credential.scope", "scopes", "key.scopes"];

/// The scopes in `scope` that give write access.
fn wide_scopes<'a>(scope: &'a str, write_scopes: &[String]) -> Vec<&'a str> {
    scope
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .filter(|s| {
            *s == "*"
                || write_scopes
                    .iter()
                    .any(|p| glob::matches_ignore_ascii_case(p, s))
        })
        .collect()
}

/// Why the new key can write, or `None` if it cannot (or nothing says it can).
fn write_access(e: &Event, write_scopes: &[String]) -> Option<String> {
    if e.is("deploy_key.created") {
        return (e.attr_bool("read_only") == Some(false))
            .then(|| "write (push) access".to_string());
    }
    // A credential that names its owner (`credential.owner`: a GitLab personal access
    // token an administrator created for somebody else) acts as that person, whatever its
    // scopes; one the actor created for themselves is judged by its scopes.
    if let Some(owner) = e.attr_str("credential.owner").filter(|o| !o.is_empty()) {
        if !is_actor(e, owner) {
            return Some(format!("a token for another user ({owner})"));
        }
    }
    // An IAM access key for someone else: full power of that user, kept outside SSO.
    if e.source == "cloudtrail" {
        let owner = e.resource.as_str();
        let own = e.actor.id.rsplit('/').next().unwrap_or("");
        return (!owner.is_empty() && owner != own && owner != e.actor.display)
            .then(|| format!("an access key for another user ({owner})"));
    }
    let scope = attr_text(e, &SCOPE_KEYS)?;
    let wide = wide_scopes(scope, write_scopes);
    (!wide.is_empty()).then(|| format!("scopes {}", wide.join(" ")))
}

/// Whether `who` names the actor: their id, display name, or the last segment of their id.
fn is_actor(e: &Event, who: &str) -> bool {
    let who = who.trim();
    let tail = e.actor.id.rsplit(['/', ':']).next().unwrap_or("");
    [e.actor.id.as_str(), e.actor.display.as_str(), tail]
        .iter()
        .any(|a| !a.is_empty() && a.eq_ignore_ascii_case(who))
}

fn key_name(e: &Event) -> &str {
    attr_text(e, &["key.title", "credential.name", "key.name"]).unwrap_or(&e.resource)
}

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::NewKey>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::NewKey>(FIXTURES);
    }
}
