//! A credential's scope increased (the adapters derive `credential.scope.increased` when a
//! stored credential, API key, connection or GitHub App installation can do more than the
//! last time it was seen). Needs review (policy pack: "any credential scope increase is a
//! high-risk change"); admin-level or write scopes score higher.
//!
//! Routine rotation does not appear here (same scopes, no increase). Planned work by a
//! declared service account in a change window is informational; ignored environments
//! are skipped. Read on actor trajectories.
//!
//! Incremental (`plumbline:detector@0.2.0`): the state holds one summary per increase seen
//! (id, time, who, where, the scopes added — not the event), judged again on every call.

use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

use plumbline_sdk::kept::{self, text};

const SIGNAL: &str = "cred.scope_increased";

/// Most increases kept (the oldest dropped first): one finding each, and the host takes at
/// most 100 findings per answer by default.
const MAX_KEPT: usize = 100;

/// What the detector remembers of a trajectory: the increases, in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Increases {
    seen: Vec<Increase>,
}

/// One `credential.scope.increased`: what its finding needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Increase {
    t: i64,
    id: String,
    /// The actor's id (planned work) and how a reviewer reads them.
    actor: String,
    who: String,
    env: Environment,
    system: String,
    /// The scopes added, as the event states them.
    added: String,
    credential: String,
    kind: String,
}

kept::record!(Increase);

impl Increase {
    fn of(e: &Event) -> Increase {
        Increase {
            t: e.time,
            id: e.id.clone(),
            actor: text(&e.actor.id),
            who: text(who(e)),
            env: e.environment,
            system: text(&e.system),
            added: text(
                attr_text(e, &["credential.scope.added", "credential.scope"]).unwrap_or(""),
            ),
            credential: text(
                attr_text(e, &["credential.name", "app", "credential.id"]).unwrap_or(&e.resource),
            ),
            kind: text(
                attr_text(e, &["credential.kind", "credential.type"]).unwrap_or("credential"),
            ),
        }
    }
}

#[derive(Default)]
pub struct ScopeIncrease;

impl IncrementalDetector for ScopeIncrease {
    type State = Increases;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Policy>()?;
        Ok(())
    }

    fn info() -> Info {
        let info = Info::new(
            "credential-abuse.scope-increase",
            "0.1.0",
            "Credentials, API keys, connections and app installations whose scope grew",
        )
        .actions(&["credential.scope.increased"])
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL])
        .config(
            "wide_scopes",
            "*admin*,*owner*,*full*,*write*,*:all,*.all,all,repo,delete*,*manage*,root,sudo,*:*",
            "Scopes (globs) that make an increase wide",
        );
        let info = keys::planned_work(info);
        keys::environments(info, "test")
    }

    fn observe(
        &self,
        state: &mut Increases,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let new = new_events
            .iter()
            .filter(|e| e.is("credential.scope.increased"))
            .map(Increase::of);
        kept::fold(&mut state.seen, new, MAX_KEPT, kept::BUDGET);
        kept::prune(&mut state.seen, cx);

        let wide = cx.config_list("wide_scopes");
        let policy = cx.settings::<Policy>()?;
        let mut findings = Vec::new();
        for e in &state.seen {
            if policy.ignore_environments.contains(&e.env) {
                continue;
            }
            let added_list: Vec<&str> = e
                .added
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .collect();
            let wide_added: Vec<&str> = added_list
                .iter()
                .copied()
                .filter(|s| *s == "*" || wide.iter().any(|p| glob::matches_ignore_ascii_case(p, s)))
                .collect();
            let (credential, kind, who) = (&e.credential, &e.kind, &e.who);
            let planned = policy.is_service_account(&e.actor) && policy.windows.contains(e.t);
            let severity = if planned {
                Severity::Informational
            } else {
                Severity::NeedsReview
            };
            let shown: String = added_list
                .iter()
                .take(6)
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            let more = if added_list.len() > 6 {
                format!(" (+{} more)", added_list.len() - 6)
            } else {
                String::new()
            };
            let line = title(format!(
                "{} {kind} \"{credential}\" gained {}{more}{}, changed by {who}",
                e.system,
                if shown.is_empty() {
                    "scopes".to_string()
                } else {
                    shown
                },
                if wide_added.is_empty() { "" } else { " (wide)" },
            ));
            findings.push(
                Finding::new(SIGNAL, severity, line)
                    .evidence_ids([e.id.clone()])
                    .score(if wide_added.is_empty() { 0.55 } else { 0.8 })
                    .next_step(format!(
                        "Ask {who} for the one-sentence purpose of the new scope on \"{credential}\" and who approved it; reduce it to least privilege if nobody did",
                    )),
            );
        }
        Ok(findings)
    }
}

register_incremental_detector!(ScopeIncrease);

#[cfg(test)]
mod tests {
    use super::ScopeIncrease;
    use plumbline_sdk::testing::feed;

    plumbline_sdk::testing::incremental_fixture_tests!(ScopeIncrease);

    /// Many wide increases with huge names: the answer stays under the host's 100 findings,
    /// the newest kept.
    #[test]
    fn state_stays_bounded() {
        let f = feed::load(FIXTURES, "positive-github-app-new-permissions.json");
        let found = feed::flood::<ScopeIncrease>(&f, "github:inst1:perm", 300);
        feed::newest_kept(&found);
    }
}
