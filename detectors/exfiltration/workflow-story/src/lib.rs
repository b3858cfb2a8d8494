//! The canonical automation exfiltration story (n8n, make.com): someone creates a new
//! workflow, gives it a webhook trigger, attaches a wide-permission credential, adds a
//! step that sends data out, turns it on off-hours, and renames it to blend in
//! ("Invoice sync (temp)"). Each step alone is routine; together they are urgent.
//!
//! Read on actor trajectories: the story is one person's, and their trajectory also holds
//! the credential events (which live outside the workflow's own system) that show how wide
//! the attached credential is. Reading one kind only keeps it to one alert per story.

use std::collections::{BTreeMap, BTreeSet};

use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const SIGNAL: &str = "exfil.workflow_story";

/// Attributes that name a workflow, by source (n8n, make.com).
const NAME_KEYS: [&str; 3] = ["workflow.name", "detail.scenarioName", "detail.name"];

#[derive(Default)]
pub struct WorkflowStory;

impl Detector for WorkflowStory {
    fn info() -> Info {
        let info = Info::new(
            "exfiltration.workflow-story",
            "0.1.0",
            "New automation workflow that gains a webhook trigger, a wide credential and an export step, is activated off-hours and renamed",
        )
        .actions(&["workflow.*", "credential.*"])
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL])
        .config(
            "story_window_hours",
            "24",
            "How long after the workflow's creation later steps still belong to the story",
        )
        .config(
            "wide_scopes",
            "*admin*,*owner*,*full*,*write*,*.all,*:all,*/all,all,repo,delete*,*manage*,root,sudo",
            "Credential scopes (globs) that make a credential wide; `*` alone as a scope is always wide",
        )
        .config(
            "wide_scope_count",
            "5",
            "A credential with at least this many scopes is wide",
        );
        let info = destination::declare(info);
        let info = keys::planned_work(info);
        let info = keys::working_hours(info);
        keys::environments(info, "test")
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let settings = cx.settings::<Settings>()?;
        let mut workflows: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
        for e in &t.events {
            if is_workflow_change(e) {
                workflows.entry(e.system.as_str()).or_default().push(e);
            }
        }
        let credentials: Vec<&Event> = t
            .events
            .iter()
            .filter(|e| e.is("credential.*") && !e.is("credential.attached"))
            .collect();
        let mut findings = Vec::new();
        for (system, events) in workflows {
            let attached: Vec<&Event> = t
                .with_action("credential.attached")
                .filter(|e| e.system == system)
                .collect();
            if let Some(story) = Story::read(&events, &attached, &credentials, &settings) {
                findings.extend(story.finding(system, &settings));
            }
        }
        Ok(findings)
    }
}

register_detector!(WorkflowStory);

/// Base workflow events: not the adapter's per-node derivations, not executions.
fn is_workflow_change(e: &Event) -> bool {
    e.is("workflow.*") && !e.is("workflow.node.*") && !e.action.starts_with("workflow.execut")
}

/// The configuration, parsed once per detector instance (`cx.settings::<Settings>()`).
struct Settings {
    window: i64,
    wide_scopes: Vec<String>,
    wide_count: usize,
    destinations: Destinations,
    policy: Policy,
}

impl FromConfig for Settings {
    fn from_config(cfg: &dyn ConfigSource) -> Result<Settings, AnalyzeError> {
        let hours: i64 = cfg.parsed("story_window_hours")?;
        Ok(Settings {
            window: hours.max(1) * 3_600_000_000_000,
            wide_scopes: cfg.list("wide_scopes"),
            wide_count: cfg.parsed("wide_scope_count")?,
            destinations: Destinations::from_config(cfg),
            policy: Policy::from_config(cfg)?,
        })
    }
}

/// What is known about how wide the attached credential is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Width {
    Wide,
    Narrow,
    Unknown,
}

struct Story<'a> {
    created: &'a Event,
    webhook: Option<&'a Event>,
    credential: Option<(&'a Event, Vec<String>)>,
    width: Width,
    /// Credential events that show the width (cited with the story).
    grants: Vec<&'a Event>,
    export: Option<(&'a Event, Vec<String>)>,
    activated: Option<&'a Event>,
    off_hours: bool,
    renamed: Option<(&'a Event, String, String)>,
    name: String,
    all: Vec<&'a Event>,
}

impl<'a> Story<'a> {
    fn read(
        events: &[&'a Event],
        attached: &[&'a Event],
        credentials: &[&'a Event],
        s: &Settings,
    ) -> Option<Story<'a>> {
        let created = *events.iter().find(|e| e.is("workflow.created"))?;
        let mut story = Story {
            created,
            webhook: None,
            credential: None,
            width: Width::Unknown,
            grants: Vec::new(),
            export: None,
            activated: None,
            off_hours: false,
            renamed: None,
            name: attr_text(created, &NAME_KEYS).unwrap_or("").to_string(),
            all: Vec::new(),
        };
        // Every credential the workflow gained; the widest is the story's (below).
        let mut added: Vec<(&'a Event, Vec<String>)> = Vec::new();
        let mut had_webhook = false;
        let mut seen_credentials: BTreeSet<String> = BTreeSet::new();
        let mut name = story.name.clone();
        let later = events
            .iter()
            .copied()
            .filter(|e| e.time >= created.time && e.time - created.time <= s.window);
        for e in later {
            story.all.push(e);
            // Only events that carry the workflow body say what it contains.
            if e.attr("nodes.count").is_some() {
                let hook = e.attr_bool("trigger.webhook") == Some(true)
                    || attr_list(e, "trigger.kinds").iter().any(|k| k == "webhook");
                if hook && !had_webhook && story.webhook.is_none() {
                    story.webhook = Some(e);
                }
                had_webhook = hook;
                let creds = attr_list(e, "credentials");
                let new: Vec<String> = creds
                    .iter()
                    .filter(|c| !seen_credentials.contains(*c))
                    .cloned()
                    .collect();
                if !new.is_empty() {
                    added.push((e, new));
                }
                seen_credentials.extend(creds);
                if story.export.is_none() && e.attr_bool("export") == Some(true) {
                    let mut dests = attr_list(e, "destinations");
                    if dests.is_empty() {
                        dests.extend(e.destination.clone());
                    }
                    // An export only to allow-listed places is not this story; a later
                    // version that sends elsewhere may be.
                    let unlisted: Vec<String> = dests
                        .into_iter()
                        .filter(|d| {
                            s.destinations
                                .classify_from(d, &e.actor.id)
                                .is_none_or(|(_, c)| c != DestinationClass::Known)
                        })
                        .collect();
                    let dynamic =
                        attr_list(e, "destinations").is_empty() && e.destination.is_none();
                    if !unlisted.is_empty() || dynamic {
                        story.export = Some((e, unlisted));
                    }
                }
            }
            if let Some(current) = attr_text(e, &NAME_KEYS) {
                if !name.is_empty()
                    && current != name
                    && story
                        .export
                        .as_ref()
                        .is_some_and(|(x, _)| x.time <= e.time && x.id != e.id)
                {
                    story.renamed = Some((e, name.clone(), current.to_string()));
                }
                name = current.to_string();
            }
        }
        story.name = name;
        if let Some((e, off)) = s.policy.first_off_hours(
            story
                .all
                .iter()
                .copied()
                .filter(|e| e.is("workflow.activated")),
        ) {
            story.activated = Some(e);
            story.off_hours = off;
        }
        for a in attached.iter().filter(|a| a.time >= created.time) {
            let cred = attr_text(a, &["credential.name", "credential.id"])
                .unwrap_or(&a.resource)
                .to_string();
            added.push((a, vec![cred]));
        }
        // The widest credential attached, not the first: a narrow one attached first
        // must not hide the wide one attached after it. Earliest among equals.
        let rank = |w: Width| match w {
            Width::Wide => 2,
            Width::Unknown => 1,
            Width::Narrow => 0,
        };
        for (e, creds) in added {
            let (width, grants) = width_of(&creds, credentials, s);
            if story.credential.is_none() || rank(width) > rank(story.width) {
                story.credential = Some((e, creds));
                story.width = width;
                story.grants = grants;
            }
        }
        Some(story)
    }

    fn finding(&self, system: &str, s: &Settings) -> Option<Finding> {
        let (export, dests) = self.export.as_ref()?;
        let export = *export;
        let activated = self.activated?;
        let credential = self
            .credential
            .as_ref()
            .filter(|_| self.width != Width::Narrow);
        let extras = [
            self.webhook.is_some(),
            credential.is_some(),
            self.off_hours,
            self.renamed.is_some(),
        ];
        let count = extras.iter().filter(|x| **x).count();
        let actor = &self.created.actor.id;
        let routine = self.all.iter().any(|e| s.policy.is_ignored_environment(e))
            || self.all.iter().all(|e| s.policy.is_planned(e));
        let (severity, score) = match (count, routine) {
            (4, false) => (Severity::Urgent, 0.95),
            // The full shape in a test environment, or planned work: recorded, not raised.
            (4, true) => (Severity::Informational, 0.3),
            (2 | 3, false) => (Severity::NeedsReview, 0.5 + 0.1 * count as f32),
            _ => return None,
        };

        let mut parts = Vec::new();
        if self.webhook.is_some() {
            parts.push("webhook trigger".to_string());
        }
        if credential.is_some() {
            parts.push(match self.width {
                Width::Wide => "wide credential".to_string(),
                _ => "credential".to_string(),
            });
        }
        let to = if dests.is_empty() {
            "a dynamic destination".to_string()
        } else {
            dests.join(",")
        };
        parts.push(format!("export to {to}"));
        let activation = if self.off_hours {
            format!(
                "activated {} off-hours",
                s.policy.hours.local_clock(activated)
            )
        } else {
            "activated".to_string()
        };
        let renamed = self
            .renamed
            .as_ref()
            .map(|(_, from, _)| format!(" (renamed from {})", quoted(from, 30)))
            .unwrap_or_default();
        let head = match severity {
            Severity::Informational => "Test-env/planned workflow",
            _ => "New workflow",
        };
        let t = title(format!(
            "{head} {}{renamed} by {actor}: {}, {activation}",
            quoted(&self.name, 40),
            parts.join(" + "),
        ));

        let mut evidence: Vec<&Event> = vec![self.created];
        evidence.extend(self.webhook);
        evidence.extend(credential.map(|(e, _)| *e));
        evidence.push(export);
        evidence.push(activated);
        evidence.extend(self.renamed.as_ref().map(|(e, _, _)| *e));
        if credential.is_some() {
            evidence.extend(self.grants.iter().copied());
        }
        let rotate = credential
            .map(|(_, c)| format!(", rotate credential {}", c.join(",")))
            .unwrap_or_default();
        let next = match severity {
            Severity::Urgent => format!(
                "Pause workflow {system} now{rotate}, check its executions for data sent to {to}, and ask {actor} to justify the workflow"
            ),
            Severity::NeedsReview => format!(
                "Ask {actor} for the purpose of workflow {system} and who approved sending data to {to}; pause it if nobody owns it"
            ),
            _ => format!("No action unless workflow {system} is promoted outside the test environment / change window"),
        };
        Some(
            Finding::new(SIGNAL, severity, t)
                .evidence(evidence)
                .score(score)
                .next_step(next),
        )
    }
}

/// How wide the attached credentials are, from the credential events of the same actor
/// (matched by `type:name` as the workflow lists them, by name or by id).
fn width_of<'a>(
    attached: &[String],
    credentials: &[&'a Event],
    s: &Settings,
) -> (Width, Vec<&'a Event>) {
    let mut width = Width::Unknown;
    let mut grants = Vec::new();
    for c in credentials {
        let kind = c.attr_str("credential.type").unwrap_or("");
        let name = c.attr_str("credential.name").unwrap_or("");
        let id = c.attr_str("credential.id").unwrap_or("");
        let matches = attached.iter().any(|a| {
            let (a_kind, a_name) = a.split_once(':').unwrap_or(("", a));
            (!name.is_empty()
                && a_name == name
                && (a_kind.is_empty() || kind.is_empty() || a_kind == kind))
                || (!id.is_empty() && a_name == id)
        });
        if !matches {
            continue;
        }
        if c.is("credential.scope.increased") {
            width = Width::Wide;
            grants.push(*c);
            continue;
        }
        let Some(scope) = c.attr_str("credential.scope") else {
            continue;
        };
        let scopes: Vec<&str> = scope.split([' ', ',']).filter(|x| !x.is_empty()).collect();
        let wide = scopes.len() >= s.wide_count
            || scopes.iter().any(|sc| {
                *sc == "*"
                    || sc.ends_with(":*")
                    || sc.ends_with(".*")
                    || s.wide_scopes
                        .iter()
                        .any(|p| glob::matches_ignore_ascii_case(p, sc))
            });
        if wide {
            width = Width::Wide;
            grants.push(*c);
        } else if width == Width::Unknown {
            width = Width::Narrow;
        }
    }
    (width, grants)
}

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::WorkflowStory>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::WorkflowStory>(FIXTURES);
    }

    /// Replaces the fixture `negative-canonical-story-system-trajectory.json` (the same events seen through
    /// the workflow's system trajectory): the host never offers this detector that view.
    #[test]
    fn reads_only_its_views() {
        use plumbline_sdk::{Detector, TrajectoryKind};
        let info = super::WorkflowStory::info();
        assert!(info.reads_view(TrajectoryKind::Actor));
        assert!(!info.reads_view(TrajectoryKind::System));
    }
}
