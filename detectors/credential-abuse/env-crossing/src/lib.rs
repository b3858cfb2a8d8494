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
//!
//! Incremental (`plumbline:detector@0.2.0`): the state holds one summary per use of a test
//! or staging credential in production (id, time, who, resource, credential, write or
//! read — not the event), judged again on every call.

use std::collections::BTreeSet;

use plumbline_sdk::kit::policy::environment_in;
use plumbline_sdk::*;

use plumbline_sdk::kept::{self, text};

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

/// Most crossings kept, the oldest dropped first (a trajectory with more is judged on its
/// newest 200, as a trajectory past its own bound is).
const MAX_KEPT: usize = 200;

/// What the detector remembers of a trajectory: its crossings, in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Crossings {
    seen: Vec<Crossing>,
}

/// A non-production credential used against production: what the finding needs of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Crossing {
    t: i64,
    id: String,
    /// The actor's id (`cross_environment_accounts`) and how a reviewer reads them.
    actor: String,
    who: String,
    resource: String,
    /// The credential's environment: test or staging.
    home: Environment,
    credential: String,
    write: bool,
}

kept::record!(Crossing);

impl Crossing {
    /// The crossing `e` is: production reached with a test or staging credential.
    fn of(e: &Event) -> Option<Crossing> {
        if e.environment != Environment::Prod {
            return None;
        }
        let home = credential_environment(e)?;
        matches!(home, Environment::Test | Environment::Staging).then(|| Crossing {
            t: e.time,
            id: e.id.clone(),
            actor: text(&e.actor.id),
            who: text(who(e)),
            resource: text(&e.resource),
            home,
            credential: credential_label(e),
            write: is_write(e),
        })
    }
}

#[derive(Default)]
pub struct EnvCrossing;

impl IncrementalDetector for EnvCrossing {
    type State = Crossings;

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

    fn observe(
        &self,
        state: &mut Crossings,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let new = new_events
            .iter()
            .filter(|e| USES.iter().any(|a| e.is(a)))
            .filter_map(Crossing::of);
        kept::fold(&mut state.seen, new, MAX_KEPT, kept::BUDGET);
        kept::prune(&mut state.seen, cx);

        let allowed = cx.config_list("cross_environment_accounts");
        let urgent_resources: usize = cx.config_parsed("urgent_resources")?;
        let max_evidence: usize = cx.config_parsed("max_evidence")?;

        let crossings: Vec<&Crossing> = state
            .seen
            .iter()
            .filter(|c| !allowed.iter().any(|p| glob::matches(p, &c.actor)))
            .collect();
        let Some(first) = crossings.first().copied() else {
            return Ok(Vec::new());
        };
        let resources: BTreeSet<&str> = crossings.iter().map(|c| c.resource.as_str()).collect();
        let writes = crossings.iter().any(|c| c.write);
        let urgent = writes || resources.len() >= urgent_resources;
        let home = match first.home {
            Environment::Test => "test",
            _ => "staging",
        };
        let credential = &first.credential;
        let line = title(format!(
            "{} used {home} credential {credential} against production: {} event(s) on {} resource(s){}, first {}",
            first.who,
            crossings.len(),
            resources.len(),
            if writes { " including writes" } else { "" },
            first.resource
        ));
        let next = format!(
            "Revoke {credential} (it should not reach production), find where it is stored and who runs {}, and rotate the production secrets it read",
            first.actor
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
        .evidence_ids(crossings.iter().map(|c| c.id.clone()).take(max_evidence))
        .score(if urgent { 0.9 } else { 0.7 })
        .next_step(next)])
    }
}

register_incremental_detector!(EnvCrossing);

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
            return format!("\"{}\"", text(v));
        }
    }
    format!("\"{}\"", text(who(e)))
}

#[cfg(test)]
mod tests {
    use super::EnvCrossing;
    use plumbline_sdk::testing::feed;

    plumbline_sdk::testing::incremental_fixture_tests!(EnvCrossing);

    /// Many production reads with a test token under huge names: one finding citing
    /// `max_evidence` of them, the oldest dropped.
    #[test]
    fn state_stays_bounded() {
        let f = feed::load(FIXTURES, "positive-test-token-reads-prod-secrets.json");
        let found = feed::flood::<EnvCrossing>(&f, "vault:r1:response", 300);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].evidence.len(), 25, "max_evidence");
        assert!(!found[0].evidence[0].ends_with("000"), "the oldest dropped");
    }
}
