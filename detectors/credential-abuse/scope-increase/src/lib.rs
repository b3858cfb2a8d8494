//! A credential's scope increased (the adapters derive `credential.scope.increased` when a
//! stored credential, API key, connection or GitHub App installation can do more than the
//! last time it was seen). Needs review (policy pack: "any credential scope increase is a
//! high-risk change"); admin-level or write scopes score higher.
//!
//! Routine rotation does not appear here (same scopes, no increase). Planned work by a
//! declared service account in a change window is informational; ignored environments
//! are skipped. Read on actor trajectories.

use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const SIGNAL: &str = "cred.scope_increased";

#[derive(Default)]
pub struct ScopeIncrease;

impl Detector for ScopeIncrease {
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

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let wide = cx.config_list("wide_scopes");
        let policy = cx.settings::<Policy>()?;
        let mut findings = Vec::new();
        for e in t.with_action("credential.scope.increased") {
            if policy.is_ignored_environment(e) {
                continue;
            }
            let added = attr_text(e, &["credential.scope.added", "credential.scope"]).unwrap_or("");
            let added_list: Vec<&str> = added.split([' ', ',']).filter(|s| !s.is_empty()).collect();
            let wide_added: Vec<&str> = added_list
                .iter()
                .copied()
                .filter(|s| *s == "*" || wide.iter().any(|p| glob::matches_ignore_ascii_case(p, s)))
                .collect();
            let credential =
                attr_text(e, &["credential.name", "app", "credential.id"]).unwrap_or(&e.resource);
            let kind =
                attr_text(e, &["credential.kind", "credential.type"]).unwrap_or("credential");
            let severity = if policy.is_planned(e) {
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
                "{} {kind} \"{credential}\" gained {}{more}{}, changed by {}",
                e.system,
                if shown.is_empty() {
                    "scopes".to_string()
                } else {
                    shown
                },
                if wide_added.is_empty() { "" } else { " (wide)" },
                who(e)
            ));
            findings.push(
                Finding::new(SIGNAL, severity, line)
                    .evidence([e])
                    .score(if wide_added.is_empty() { 0.55 } else { 0.8 })
                    .next_step(format!(
                        "Ask {} for the one-sentence purpose of the new scope on \"{credential}\" and who approved it; reduce it to least privilege if nobody did",
                        who(e)
                    )),
            );
        }
        Ok(findings)
    }
}

register_detector!(ScopeIncrease);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::ScopeIncrease>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::ScopeIncrease>(FIXTURES);
    }
}
