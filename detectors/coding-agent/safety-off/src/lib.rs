//! A coding agent's safety settings are switched off: permission mode `bypassPermissions`
//! (or `--dangerously-skip-permissions`), Codex's sandbox `danger-full-access` with
//! approvals `never` (or `--dangerously-bypass-approvals-and-sandbox`, `--yolo`), or the
//! agent writing its own settings to allow everything (`"Bash(*)"`,
//! `defaultMode: bypassPermissions` in `.claude/settings*.json`, `sandbox_mode =
//! "danger-full-access"` in `~/.codex/config.toml`). Needs review; urgent when a sensitive
//! action follows in the session — a secret read, egress to a host that is not the
//! company's, code from such a host run, a push, a CI change — since nothing stood between
//! the agent and it.
//! Read on actor trajectories (one agent session).

use plumbline_sdk::kit::agent::{self, Call, SecretPaths};
use plumbline_sdk::kit::text;
use plumbline_sdk::*;

const SIGNAL: &str = "agent.safety_off";

const FLAGS: &str = "--dangerously-skip-permissions,--dangerously-bypass-approvals-and-sandbox,--yolo,--permission-mode=bypassPermissions";
const SETTINGS: &str =
    ".claude/settings*.json,.codex/config.toml,.cursor/cli.json,.gemini/settings.json";
const MARKERS: &str = "\"Bash(*)\";\"Bash\";bypassPermissions;danger-full-access;approval_policy = \"never\";\"allow\": [\"*\"]";

/// One way safety was switched off.
struct Off<'a> {
    events: Vec<&'a Event>,
    /// The index of the first tool call after it.
    next_call: usize,
    how: String,
}

#[derive(Default)]
pub struct SafetyOff;

impl Detector for SafetyOff {
    fn info() -> Info {
        let info = Info::new(
            "coding-agent.safety-off",
            "0.1.0",
            "A coding agent runs with its permission checks or sandbox switched off",
        )
        .actions(&["agent.*"])
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL])
        .config(
            "unsafe_flags",
            FLAGS,
            "Command-line flags that switch an agent's checks off (comma-separated)",
        )
        .config(
            "settings_paths",
            SETTINGS,
            "Agents' settings files (comma-separated; trailing path segments, `*` wildcards)",
        )
        .config(
            "permissive_markers",
            MARKERS,
            "Text added to a settings file that allows everything (`;`-separated)",
        );
        let info = agent::declare_sensitive(info);
        destination::declare(info)
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let lists = cx.settings::<Destinations>()?;
        let secrets = cx.settings::<SecretPaths>()?;
        let ci_paths = cx.config_list("ci_paths");
        let flags = cx.config_list("unsafe_flags");
        let settings = cx.config_list("settings_paths");
        let markers = text::items(&cx.config("permissive_markers").unwrap_or_default());
        let calls = agent::calls(t);
        let mut offs: Vec<Off> = Vec::new();
        // Session settings: the start and permission changes, placed among the calls.
        for e in t.with_any_action(&["agent.session.started", "agent.permission.changed"]) {
            let mode = e.attr_str("agent.permission_mode").unwrap_or("");
            let sandbox = e.attr_str("agent.sandbox").unwrap_or("");
            let approval = e.attr_str("agent.approval_policy").unwrap_or("");
            let how = if mode == "bypassPermissions" {
                Some("permission mode bypassPermissions".to_string())
            } else if sandbox == "danger-full-access" && approval == "never" {
                Some("sandbox danger-full-access with approvals never".to_string())
            } else {
                None
            };
            if let Some(how) = how {
                let next_call = calls.iter().take_while(|c| c.time() <= e.time).count();
                offs.push(Off {
                    events: vec![e],
                    next_call,
                    how,
                });
            }
        }
        for (i, call) in calls.iter().enumerate() {
            let words: Vec<String> = call.simples().into_iter().flat_map(|s| s.words).collect();
            let mut how = flags
                .iter()
                .find(|f| words.iter().any(|w| w == *f))
                .map(|f| format!("`{f}`"));
            for c in agent::file_changes(call) {
                if how.is_some() || !agent::path_matches_any(&c.path, &settings) {
                    continue;
                }
                let added = agent::added_lines(
                    c.old.as_deref().unwrap_or(""),
                    c.content.as_deref().unwrap_or(""),
                );
                how = added
                    .iter()
                    .find_map(|l| markers.iter().find(|m| l.contains(m.as_str())))
                    .map(|m| format!("{m} written to {}", c.path));
            }
            if let Some(how) = how {
                offs.push(Off {
                    events: call.events.clone(),
                    next_call: i + 1,
                    how,
                });
            }
        }
        let mut findings = Vec::new();
        for off in offs {
            let user = off.events[0].attr_str("agent.user").unwrap_or("");
            let outside = |h: &str| {
                lists.classify_from(h, user).map(|(_, c)| c) != Some(DestinationClass::Known)
            };
            // The first sensitive call after it; a pending one (the pre-tool hook's, the
            // last event) instead, so that the finding cites the call about to run.
            let mut after: Option<(&Call, String)> = None;
            for c in calls.get(off.next_call..).unwrap_or(&[]) {
                let s = agent::sensitive(c, &secrets, &ci_paths, &outside);
                if let Some(s) = s.first() {
                    if after.is_none() || c.pending() {
                        after = Some((c, s.describe()));
                    }
                }
            }
            findings.push(finding(&off, after));
        }
        Ok(findings)
    }
}

fn finding(off: &Off, after: Option<(&Call, String)>) -> Finding {
    let e = off.events[0];
    let user = e.attr_str("agent.user").unwrap_or("");
    let who = if user.is_empty() {
        e.actor.id.clone()
    } else {
        format!("{user}'s agent")
    };
    let session = e.attr_str("agent.session").unwrap_or("?");
    let mut evidence: Vec<&Event> = off.events.clone();
    let (severity, score, then) = match &after {
        Some((c, what)) => {
            evidence.extend(c.events.iter().copied());
            (Severity::Urgent, 0.85, format!(", then {what}"))
        }
        None => (Severity::NeedsReview, 0.5, String::new()),
    };
    Finding::new(SIGNAL, severity, title(format!("{who} ran with {}{then}", off.how)))
        .evidence(evidence)
        .score(score)
        .next_step(format!(
            "Ask {user} why session {session} ran without permission checks; review what it did after that point, and keep bypass modes to throwaway sandboxes (managed settings can forbid them)"
        ))
}

register_detector!(SafetyOff);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::SafetyOff>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::SafetyOff>(FIXTURES);
    }
}
