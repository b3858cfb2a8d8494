//! A token or service account used outside the environment it was issued for: a test or
//! staging credential reading production secrets, or a test role calling the production
//! AWS account (the article's "reading a production database from a test environment").
//!
//! The credential's environment comes from `credential.environment` when a source states
//! it, else from the words of its policies, role and name (`test-readonly`,
//! `ci-staging-deployer`); a credential whose names point at several environments is
//! ambiguous and skipped. The event's environment is the adapter's (path, namespace,
//! account). Writes, or reads of several production resources, are urgent.
//! Read on actor trajectories.

use std::collections::BTreeSet;

use plumbline_sdk::kit::policy::environment_in;
use plumbline_sdk::*;

const SIGNAL: &str = "cred.environment_crossing";

/// Actions where a credential is used against a resource.
const USES: [&str; 8] = [
    "secret.read",
    "secret.list",
    "secret.written",
    "secret.deleted",
    "credential.issued",
    "secret.permission_denied",
    "data.export",
    "cloudtrail.*",
];

/// Attributes that name what the credential is for.
const NAME_KEYS: [&str; 7] = [
    "auth.policies",
    "auth.token_policies",
    "auth.metadata.role_name",
    "auth.metadata.role",
    "auth.metadata.service_account_name",
    "identity.role",
    "credential.name",
];

#[derive(Default)]
pub struct EnvCrossing;

impl Detector for EnvCrossing {
    fn info() -> Info {
        Info::new(
            "credential-abuse.env-crossing",
            "0.1.0",
            "Test or staging credentials used against production",
        )
        .actions(&USES)
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL])
        .config(
            "cross_environment_accounts",
            "",
            "Actors (comma-separated globs) allowed to work across environments, e.g. the promotion pipeline",
        )
        .config(
            "urgent_resources",
            "3",
            "Distinct production resources read with a non-production credential that make it urgent",
        )
        .config(
            "max_evidence",
            "25",
            "Most events cited per finding (the title gives the full count)",
        )
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let allowed = cx.config_list("cross_environment_accounts");
        let urgent_resources: usize = cx.config_parsed("urgent_resources")?;
        let max_evidence: usize = cx.config_parsed("max_evidence")?;

        let mut crossings: Vec<(&Event, Environment)> = Vec::new();
        for e in t.with_any_action(&USES) {
            if e.environment != Environment::Prod
                || allowed.iter().any(|p| glob::matches(p, &e.actor.id))
            {
                continue;
            }
            let Some(home) = credential_environment(e) else {
                continue;
            };
            if matches!(home, Environment::Test | Environment::Staging) {
                crossings.push((e, home));
            }
        }
        let Some((first, home)) = crossings.first().copied() else {
            return Ok(Vec::new());
        };
        let resources: BTreeSet<&str> =
            crossings.iter().map(|(e, _)| e.resource.as_str()).collect();
        let writes = crossings.iter().any(|(e, _)| is_write(e));
        let urgent = writes || resources.len() >= urgent_resources;
        let home = match home {
            Environment::Test => "test",
            _ => "staging",
        };
        let credential = credential_label(first);
        let line = title(format!(
            "{} used {home} credential {credential} against production: {} event(s) on {} resource(s){}, first {}",
            who(first),
            crossings.len(),
            resources.len(),
            if writes { " including writes" } else { "" },
            first.resource
        ));
        let next = format!(
            "Revoke {credential} (it should not reach production), find where it is stored and who runs {}, and rotate the production secrets it read",
            first.actor.id
        );
        Ok(vec![Finding::new(
            SIGNAL,
            if urgent {
                Severity::Urgent
            } else {
                Severity::NeedsReview
            },
            line,
        )
        .evidence(crossings.iter().map(|(e, _)| *e).take(max_evidence))
        .score(if urgent { 0.9 } else { 0.7 })
        .next_step(next)])
    }
}

register_detector!(EnvCrossing);

/// The environment the credential belongs to, when its names agree on one.
fn credential_environment(e: &Event) -> Option<Environment> {
    if let Some(stated) = attr_text(e, &["credential.environment", "token.environment"]) {
        return plumbline_sdk::kit::policy::environment(stated);
    }
    let mut found: BTreeSet<u8> = BTreeSet::new();
    let mut env = None;
    let mut names: Vec<String> = Vec::new();
    for k in NAME_KEYS {
        names.extend(attr_list(e, k));
    }
    // Vault and CloudTrail actors are named after the role or token (`approle-ci-test`).
    names.push(e.actor.display.clone());
    if !e.actor.id.contains('@') {
        names.push(e.actor.id.clone());
    }
    for n in names.iter().filter(|n| n.as_str() != "default") {
        if let Some(x) = environment_in(n) {
            found.insert(x as u8);
            env = Some(x);
        }
    }
    (found.len() == 1).then_some(env).flatten()
}

fn is_write(e: &Event) -> bool {
    e.is("secret.written")
        || e.is("secret.deleted")
        || e.attr_bool("read_only") == Some(false)
        || matches!(
            e.attr_str("operation"),
            Some("create" | "update" | "delete" | "patch")
        )
}

fn credential_label(e: &Event) -> String {
    for k in [
        "auth.metadata.role_name",
        "identity.role",
        "credential.name",
        "auth.token_policies",
        "auth.policies",
    ] {
        if let Some(v) = e.attr_str(k).filter(|v| !v.is_empty()) {
            return format!("\"{v}\"");
        }
    }
    format!("\"{}\"", who(e))
}

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::EnvCrossing>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::EnvCrossing>(FIXTURES);
    }
}
