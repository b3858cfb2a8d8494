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
//!
//! Incremental (`plumbline:detector@0.2.0`): the state is the session events that switch
//! safety off, the calls that switch it off or do something sensitive (how, what, whose
//! it was) and the pending calls — not the events (`kit::agent::memo`).

use plumbline_sdk::kit::agent::{self, Memo, Remembered, SecretPaths};
use plumbline_sdk::kit::text;
use plumbline_sdk::*;

const SIGNAL: &str = "agent.safety_off";

const FLAGS: &str = "--dangerously-skip-permissions,--dangerously-bypass-approvals-and-sandbox,--yolo,--permission-mode=bypassPermissions";
const SETTINGS: &str =
    ".claude/settings*.json,.codex/config.toml,.cursor/cli.json,.gemini/settings.json";
const MARKERS: &str = "\"Bash(*)\";\"Bash\";bypassPermissions;danger-full-access;approval_policy = \"never\";\"allow\": [\"*\"]";

/// Most session events that switched safety off kept (oldest dropped first).
const MAX_SESSION_OFFS: usize = 16;

#[derive(Default)]
pub struct SafetyOff;

/// What the detector remembers of a session.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    /// Session starts and permission changes that switched safety off, in (time, id) order.
    offs: Vec<SessionOff>,
    calls: Vec<Memo<Act>>,
}

/// A session event that switched safety off.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct SessionOff {
    time: i64,
    id: String,
    how: String,
    whose: Whose,
}

/// One call: how it switched safety off and whose it was, the sensitive thing it did
/// (described).
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Act {
    off: Option<(String, Whose)>,
    sensitive: Option<String>,
}

/// Whose agent switched safety off, from the event that did: who (for titles), the
/// person and the session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Whose {
    who: String,
    user: String,
    session: String,
}

impl Whose {
    fn of(e: &Event) -> Whose {
        let user = e.attr_str("agent.user").unwrap_or("");
        Whose {
            who: if user.is_empty() {
                e.actor.id.clone()
            } else {
                format!("{user}'s agent")
            },
            user: user.to_string(),
            session: e.attr_str("agent.session").unwrap_or("?").to_string(),
        }
    }
}

/// One way safety was switched off: the events that did, its place among the calls
/// (the calls after it are those at `after` and on), how, whose.
struct Off<'a> {
    ids: Vec<String>,
    after: usize,
    how: &'a str,
    whose: &'a Whose,
}

impl IncrementalDetector for SafetyOff {
    type State = Seen;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Destinations>()?;
        cx.settings::<SecretPaths>()?;
        Ok(())
    }

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

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let lists = cx.settings::<Destinations>()?;
        let secrets = cx.settings::<SecretPaths>()?;
        let ci_paths = cx.config_list("ci_paths");
        let flags = cx.config_list("unsafe_flags");
        let settings = cx.config_list("settings_paths");
        let markers = text::items(&cx.config("permissive_markers").unwrap_or_default());
        // Session settings: the start and permission changes.
        for e in new_events
            .iter()
            .filter(|e| e.is("agent.session.started") || e.is("agent.permission.changed"))
        {
            let mode = e.attr_str("agent.permission_mode").unwrap_or("");
            let sandbox = e.attr_str("agent.sandbox").unwrap_or("");
            let approval = e.attr_str("agent.approval_policy").unwrap_or("");
            let how = if mode == "bypassPermissions" {
                "permission mode bypassPermissions"
            } else if sandbox == "danger-full-access" && approval == "never" {
                "sandbox danger-full-access with approvals never"
            } else {
                continue;
            };
            let at = seen
                .offs
                .partition_point(|o| (o.time, o.id.as_str()) < (e.time, e.id.as_str()));
            if seen.offs.get(at).is_none_or(|o| o.id != e.id) {
                seen.offs.insert(
                    at,
                    SessionOff {
                        time: e.time,
                        id: e.id.clone(),
                        how: how.to_string(),
                        whose: Whose::of(e),
                    },
                );
            }
        }
        let w = cx
            .window()
            .map_or((0, 0, i64::MIN), |w| (w.len, w.dropped, w.start));
        let read = |start, count| cx.history(start, count);
        let history = agent::History::new(w.0, w.1, w.2, &read);
        // Those the trajectory dropped go, as a 0.1.0 call would not see them.
        seen.offs.retain(|o| history.holds(o.time, &o.id));
        let over = seen.offs.len().saturating_sub(MAX_SESSION_OFFS);
        seen.offs.drain(..over);
        agent::remember(&mut seen.calls, new_events, &history, |call| {
            let words: Vec<String> = call.simples().into_iter().flat_map(|s| s.words).collect();
            let mut off = flags
                .iter()
                .find(|f| words.iter().any(|w| w == *f))
                .map(|f| format!("`{f}`"));
            for c in agent::file_changes(call) {
                if off.is_some() || !agent::path_matches_any(&c.path, &settings) {
                    continue;
                }
                let added = agent::added_lines(
                    c.old.as_deref().unwrap_or(""),
                    c.content.as_deref().unwrap_or(""),
                );
                off = added
                    .iter()
                    .find_map(|l| markers.iter().find(|m| l.contains(m.as_str())))
                    .map(|m| format!("{m} written to {}", c.path));
            }
            // Judged for the call's own person: the session's, as the switch-off's.
            let user = call.user();
            let outside = |h: &str| {
                lists.classify_from(h, user).map(|(_, c)| c) != Some(DestinationClass::Known)
            };
            let sensitive = agent::sensitive(call, &secrets, &ci_paths, &outside)
                .first()
                .map(|s| s.describe());
            (off.is_some() || sensitive.is_some()).then(|| Act {
                off: off.map(|how| (how, Whose::of(call.first()))),
                sensitive,
            })
        });
        let calls: Vec<(&Memo<Act>, &Act)> = seen
            .calls
            .iter()
            .filter_map(|m| m.facts().map(|a| (m, a)))
            .collect();
        // The session's switch-offs placed among the calls, then the calls'.
        let mut offs: Vec<Off> = seen
            .offs
            .iter()
            .map(|o| Off {
                ids: vec![o.id.clone()],
                after: calls.partition_point(|(m, _)| m.order().0 <= o.time),
                how: &o.how,
                whose: &o.whose,
            })
            .collect();
        for (i, (m, a)) in calls.iter().enumerate() {
            if let Some((how, whose)) = &a.off {
                offs.push(Off {
                    ids: m.ids().map(String::from).collect(),
                    after: i + 1,
                    how,
                    whose,
                });
            }
        }
        let mut findings = Vec::new();
        for off in offs {
            // The first sensitive call after it; a pending one (the pre-tool hook's, the
            // last event) instead, so that the finding cites the call about to run.
            let mut after: Option<(&Memo<Act>, &str)> = None;
            for (m, a) in calls.get(off.after..).unwrap_or(&[]) {
                if let Some(s) = &a.sensitive {
                    if after.is_none() || m.pending() {
                        after = Some((m, s));
                    }
                }
            }
            findings.push(finding(&off, after));
        }
        // A switch-off stays: a sensitive call that comes next makes it urgent.
        agent::forget_over(&mut seen.calls, &findings, |m| {
            m.facts().is_some_and(|a| a.off.is_some())
        });
        Ok(findings)
    }
}

fn finding(off: &Off, after: Option<(&Memo<Act>, &str)>) -> Finding {
    let Whose { who, user, session } = off.whose;
    let mut evidence = off.ids.clone();
    let (severity, score, then) = match after {
        Some((m, what)) => {
            evidence.extend(m.ids().map(String::from));
            (Severity::Urgent, 0.85, format!(", then {what}"))
        }
        None => (Severity::NeedsReview, 0.5, String::new()),
    };
    Finding::new(SIGNAL, severity, title(format!("{who} ran with {}{then}", off.how)))
        .evidence_ids(evidence)
        .score(score)
        .next_step(format!(
            "Ask {user} why session {session} ran without permission checks; review what it did after that point, and keep bypass modes to throwaway sandboxes (managed settings can forbid them)"
        ))
}

register_incremental_detector!(SafetyOff);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_incremental_fixtures::<super::SafetyOff>(FIXTURES);
    }
}
