//! New long-lived credentials with write access: a repository deploy key that can push,
//! an API key or token whose scopes include write/admin, an IAM access key or a personal
//! token created for another user (a classic way to keep access). Needs review; created by an AI agent:
//! urgent.
//!
//! A key created shortly after the same-named key of the same kind on the same system was
//! deleted, revoked or rotated is a routine rotation and informational, unless the retired
//! key was known to be weaker (a read-only deploy key, an API key without write scopes).
//! Read on actor trajectories.
//!
//! Incremental (`plumbline:detector@0.2.0`): the state holds one summary per key created
//! that could write and per key retired (id, time, name, system, what it could do — not
//! the events); each call matches rotations among them again.

use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

use plumbline_sdk::kept::{self, text};

const SIGNAL: &str = "cred.write_key_created";

const CREATED: [&str; 2] = ["deploy_key.created", "api_key.created"];
const RETIRED: [&str; 5] = [
    "deploy_key.deleted",
    "api_key.deleted",
    "api_key.revoked",
    "api_key.rotated",
    "credential.deleted",
];

/// Most created keys kept (the oldest dropped first): one finding each, and the host takes
/// at most 100 findings per answer by default; and most retired keys kept.
const MAX_CREATED: usize = 100;
const MAX_RETIRED: usize = 200;

/// What the detector remembers of a trajectory, each list in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Keys {
    created: Vec<Created>,
    retired: Vec<Retired>,
}

/// A key created that can write, or may by its scopes: what its finding needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Created {
    t: i64,
    id: String,
    /// The actor's id (planned work) and how a reviewer reads them.
    actor: String,
    who: String,
    agent: bool,
    system: String,
    deploy: bool,
    name: String,
    /// Why it can write, when the event alone says (push access, another user's key).
    why: Option<String>,
    /// Otherwise its stated scopes, judged against `write_scopes`.
    scope: Option<String>,
}

/// A key deleted, revoked or rotated: what a rotation needs of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Retired {
    t: i64,
    id: String,
    system: String,
    deploy: bool,
    name: String,
    read_only: Option<bool>,
    scope: Option<String>,
}

kept::record!(Created, Retired);

impl Created {
    /// The key `e` creates, unless it cannot write whatever the config says.
    fn of(e: &Event) -> Option<Created> {
        let (why, scope) = match fixed_access(e) {
            Access::Fixed(why) => (Some(why?), None),
            Access::Scopes => (None, Some(text(attr_text(e, &SCOPE_KEYS)?))),
        };
        Some(Created {
            t: e.time,
            id: e.id.clone(),
            actor: text(&e.actor.id),
            who: text(who(e)),
            agent: e.actor.kind == ActorKind::AiAgent,
            system: text(&e.system),
            deploy: e.is("deploy_key.created"),
            name: text(key_name(e)),
            why,
            scope,
        })
    }

    /// Why the key can write, or `None` if it cannot (or nothing says it can).
    fn write_access(&self, write_scopes: &[String]) -> Option<String> {
        if let Some(why) = &self.why {
            return Some(why.clone());
        }
        let wide = wide_scopes(self.scope.as_deref()?, write_scopes);
        (!wide.is_empty()).then(|| format!("scopes {}", wide.join(" ")))
    }
}

impl Retired {
    fn of(e: &Event) -> Retired {
        Retired {
            t: e.time,
            id: e.id.clone(),
            system: text(&e.system),
            deploy: e.is("deploy_key.*"),
            name: text(key_name(e)),
            read_only: e.attr_bool("read_only"),
            scope: attr_text(e, &SCOPE_KEYS).map(text),
        }
    }
}

#[derive(Default)]
pub struct NewKey;

impl IncrementalDetector for NewKey {
    type State = Keys;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Policy>()?;
        Ok(())
    }

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
            // Rare, and a rotation may retire the old key this way: read since 0.2.0,
            // which gives only the declared actions (0.1.0 read the whole trajectory).
            "credential.deleted",
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

    fn observe(
        &self,
        state: &mut Keys,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let created = new_events
            .iter()
            .filter(|e| CREATED.iter().any(|a| e.is(a)))
            .filter_map(Created::of);
        let retired = new_events
            .iter()
            .filter(|e| RETIRED.iter().any(|a| e.is(a)))
            .map(Retired::of);
        kept::fold(&mut state.created, created, MAX_CREATED, kept::BUDGET / 2);
        kept::fold(&mut state.retired, retired, MAX_RETIRED, kept::BUDGET / 2);
        kept::prune(&mut state.created, cx);
        kept::prune(&mut state.retired, cx);

        let write_scopes = cx.config_list("write_scopes");
        let rotation = cx.config_parsed::<i64>("rotation_minutes")? * 60_000_000_000;
        let policy = cx.settings::<Policy>()?;

        let mut findings = Vec::new();
        for e in &state.created {
            let Some(why) = e.write_access(&write_scopes) else {
                continue;
            };
            let name = e.name.as_str();
            // Every retirement is judged, so a harmless one (a read-only key, or a key of
            // the same name elsewhere) cannot stand in for the key this one replaces.
            let retired = state.retired.iter().find(|r| {
                !name.is_empty()
                    && r.name == name
                    && (e.t - r.t).abs() <= rotation
                    && replaces(e, r, &write_scopes)
            });
            let (agent, who, system) = (e.agent, &e.who, &e.system);
            let planned = policy.is_service_account(&e.actor) && policy.windows.contains(e.t);
            let severity = if retired.is_some() || planned {
                Severity::Informational
            } else if agent {
                Severity::Urgent
            } else {
                Severity::NeedsReview
            };
            let kind = if e.deploy { "deploy key" } else { "API key" };
            let line = match retired {
                Some(_) => format!("{who} rotated {kind} \"{name}\" on {system} ({why})"),
                None => format!(
                    "{}{who} created {kind} \"{name}\" on {system} with {why}",
                    if agent { "AI agent " } else { "" },
                ),
            };
            let next = match retired {
                Some(_) => "None: routine rotation (check the old key is gone)".to_string(),
                None => format!(
                    "Ask {who} what \"{name}\" is for and where it is stored; make it read-only or delete it if write access is not needed"
                ),
            };
            let mut evidence = vec![e.id.clone()];
            evidence.extend(retired.map(|r| r.id.clone()));
            findings.push(
                Finding::new(SIGNAL, severity, title(line))
                    .evidence_ids(evidence)
                    .score(if agent { 0.85 } else { 0.6 })
                    .next_step(next),
            );
        }
        Ok(findings)
    }
}

register_incremental_detector!(NewKey);

/// True if retiring `old` makes creating `new` a rotation: the same kind of key on the same
/// system, and not one known to be weaker (a read-only deploy key, an API key whose stated
/// scopes could not write). Swapping a read-only key for a push key of the same title, or
/// deleting a same-named key from another repository, gives access nobody had before.
fn replaces(new: &Created, old: &Retired, write_scopes: &[String]) -> bool {
    if old.system != new.system || old.deploy != new.deploy {
        return false;
    }
    if old.deploy {
        return old.read_only != Some(true);
    }
    match &old.scope {
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

/// What the event alone says of a new key's write access.
enum Access {
    /// It can write (and why), or it cannot (`None`), whatever the config says.
    Fixed(Option<String>),
    /// Its stated scopes decide, against `write_scopes`.
    Scopes,
}

fn fixed_access(e: &Event) -> Access {
    if e.is("deploy_key.created") {
        return Access::Fixed(
            (e.attr_bool("read_only") == Some(false)).then(|| "write (push) access".to_string()),
        );
    }
    // A credential that names its owner (`credential.owner`: a GitLab personal access
    // token an administrator created for somebody else) acts as that person, whatever its
    // scopes; one the actor created for themselves is judged by its scopes.
    if let Some(owner) = e.attr_str("credential.owner").filter(|o| !o.is_empty()) {
        if !is_actor(e, owner) {
            return Access::Fixed(Some(format!("a token for another user ({})", text(owner))));
        }
    }
    // An IAM access key for someone else: full power of that user, kept outside SSO.
    if e.source == "cloudtrail" {
        let owner = e.resource.as_str();
        let own = e.actor.id.rsplit('/').next().unwrap_or("");
        return Access::Fixed(
            (!owner.is_empty() && owner != own && owner != e.actor.display)
                .then(|| format!("an access key for another user ({})", text(owner))),
        );
    }
    Access::Scopes
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
    use super::NewKey;
    use plumbline_sdk::testing::feed;

    plumbline_sdk::testing::incremental_fixture_tests!(NewKey);

    /// Many write keys with huge names: the answer stays under the host's 100 findings, the
    /// newest kept.
    #[test]
    fn state_stays_bounded() {
        let f = feed::load(FIXTURES, "positive-openai-key-with-write-scope.json");
        let found = feed::flood::<NewKey>(&f, "openai:k3", 300);
        feed::newest_kept(&found);
    }
}
