//! The canonical automation exfiltration story (n8n, make.com): someone creates a new
//! workflow, gives it a webhook trigger, attaches a wide-permission credential, adds a
//! step that sends data out, turns it on off-hours, and renames it to blend in
//! ("Invoice sync (temp)"). Each step alone is routine; together they are urgent.
//!
//! Read on actor trajectories: the story is one person's, and their trajectory also holds
//! the credential events (which live outside the workflow's own system) that show how wide
//! the attached credential is. Reading one kind only keeps it to one alert per story.
//!
//! Incremental (`plumbline:detector@0.2.0`): the state holds, per new workflow, the story
//! read so far as 0.1.0 read it event by event (webhook, credentials gained, export,
//! names, activations, environments; ids and names, not the events) and the credential
//! events that tell a credential's width. A workflow event arriving behind one already
//! read into its story, or a change of configuration, has the story read again from
//! `history`.

use std::collections::BTreeMap;

use plumbline_sdk::kept::{self, text};
use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const SIGNAL: &str = "exfil.workflow_story";

/// Attributes that name a workflow, by source (n8n, make.com).
const NAME_KEYS: [&str; 3] = ["workflow.name", "detail.scenarioName", "detail.name"];

/// Bounds, so the state stays under the host's 64 KiB: the stories (the newest created
/// kept) within three quarters of [`kept::BUDGET`] and at most 16; in each, the first 8
/// activations, 32 credentials gained and 16 attached; the credential events within a
/// quarter of the budget, the oldest dropped first.
const MAX_STORIES: usize = 16;
const MAX_ACTIVATIONS: usize = 8;
const MAX_CREDENTIALS: usize = 32;
const MAX_ATTACHED: usize = 16;

/// What the detector remembers of a trajectory.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    /// A hash of the configuration the stories were read under.
    kept_by: u64,
    /// The latest event given, (time, id).
    last: Option<At>,
    /// By workflow (`system`).
    stories: BTreeMap<String, Story>,
    /// The credential events that can tell a credential's width, in (time, id) order.
    credentials: Vec<Credential>,
    /// Workflows an event of this call came too late for (read again from history).
    #[serde(skip)]
    late: Option<Vec<String>>,
}

/// An event's (time, id): what orders them, and what cites one.
type At = (i64, String);

fn at(e: &Event) -> At {
    (e.time, e.id.clone())
}

/// One new workflow's story, read event by event as 0.1.0 read it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Story {
    created: At,
    actor: String,
    /// The newest event read into the story: one before it has the story read again.
    read: At,
    webhook: Option<At>,
    had_webhook: bool,
    /// Every credential the workflow's bodies listed, and the bodies that added some.
    credentials: Vec<String>,
    added: Vec<(At, Vec<String>)>,
    /// The first body that sends data somewhere not allow-listed, and where.
    export: Option<(At, Vec<String>)>,
    /// The name now, and the last rename after the export (the event, the name before).
    name: String,
    renamed: Option<(At, String)>,
    environments: Vec<Environment>,
    /// Every event of the story was planned work.
    planned: bool,
    /// Activations: whether off-hours, and the local clock.
    activations: Vec<(At, bool, String)>,
    /// Credentials attached to the workflow since its creation (`credential.attached`).
    attached: Vec<(At, String)>,
}

/// A credential event: the credential it names, and what it says of its width (a scope
/// increase, or whether its scope is wide).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Credential {
    t: i64,
    id: String,
    kind: String,
    name: String,
    cid: String,
    wide: bool,
}

kept::record!(Credential);

/// Base workflow events: not the adapter's per-node derivations, not executions.
fn is_workflow_change(e: &Event) -> bool {
    e.is("workflow.*") && !e.is("workflow.node.*") && !e.action.starts_with("workflow.execut")
}

/// The configuration, parsed once per loaded detector (asked for in `prepare`).
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

impl Credential {
    /// A credential event that tells a width: a scope increase, or a scope.
    fn of(e: &Event, s: &Settings) -> Option<Credential> {
        let wide = if e.is("credential.scope.increased") {
            true
        } else {
            let scope = e.attr_str("credential.scope")?;
            let scopes: Vec<&str> = scope.split([' ', ',']).filter(|x| !x.is_empty()).collect();
            scopes.len() >= s.wide_count
                || scopes.iter().any(|sc| {
                    *sc == "*"
                        || sc.ends_with(":*")
                        || sc.ends_with(".*")
                        || s.wide_scopes
                            .iter()
                            .any(|p| glob::matches_ignore_ascii_case(p, sc))
                })
        };
        let attr = |k: &str| text(e.attr_str(k).unwrap_or(""));
        Some(Credential {
            t: e.time,
            id: e.id.clone(),
            kind: attr("credential.type"),
            name: attr("credential.name"),
            cid: attr("credential.id"),
            wide,
        })
    }
}

impl Story {
    fn new(created: &Event) -> Story {
        Story {
            created: at(created),
            actor: text(&created.actor.id),
            // Events of its own time before it (in id order) belong to the story too.
            read: (created.time, String::new()),
            webhook: None,
            had_webhook: false,
            credentials: Vec::new(),
            added: Vec::new(),
            export: None,
            name: attr_text(created, &NAME_KEYS).map(text).unwrap_or_default(),
            renamed: None,
            environments: Vec::new(),
            planned: true,
            activations: Vec::new(),
            attached: Vec::new(),
        }
    }

    /// Whether `e` falls in the story's window.
    fn holds(&self, e: &Event, s: &Settings) -> bool {
        e.time >= self.created.0 && e.time - self.created.0 <= s.window
    }

    /// Reads one event of the story, the next in (time, id) order.
    fn read(&mut self, e: &Event, s: &Settings) {
        self.read = at(e);
        if !self.environments.contains(&e.environment) {
            self.environments.push(e.environment);
        }
        self.planned &= s.policy.is_planned(e);
        if e.is("workflow.activated") && self.activations.len() < MAX_ACTIVATIONS {
            let clock = s.policy.hours.local_clock(e);
            self.activations
                .push((at(e), s.policy.is_off_hours(e), clock));
        }
        // Only events that carry the workflow body say what it contains.
        if e.attr("nodes.count").is_some() {
            let hook = e.attr_bool("trigger.webhook") == Some(true)
                || attr_list(e, "trigger.kinds").iter().any(|k| k == "webhook");
            if hook && !self.had_webhook && self.webhook.is_none() {
                self.webhook = Some(at(e));
            }
            self.had_webhook = hook;
            let creds: Vec<String> = attr_list(e, "credentials")
                .iter()
                .map(|c| text(c))
                .collect();
            let new: Vec<String> = creds
                .iter()
                .filter(|c| !self.credentials.contains(c))
                .cloned()
                .collect();
            if !new.is_empty() && self.added.len() < MAX_CREDENTIALS {
                self.added.push((at(e), new));
            }
            for c in creds {
                if !self.credentials.contains(&c) && self.credentials.len() < MAX_CREDENTIALS {
                    self.credentials.push(c);
                }
            }
            if self.export.is_none() && e.attr_bool("export") == Some(true) {
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
                    .map(|d| text(&d))
                    .collect();
                let dynamic = attr_list(e, "destinations").is_empty() && e.destination.is_none();
                if !unlisted.is_empty() || dynamic {
                    self.export = Some((at(e), unlisted));
                }
            }
        }
        if let Some(current) = attr_text(e, &NAME_KEYS).map(text) {
            let after_export = self
                .export
                .as_ref()
                .is_some_and(|(x, _)| x.0 <= e.time && x.1 != e.id);
            if !self.name.is_empty() && current != self.name && after_export {
                self.renamed = Some((at(e), self.name.clone()));
            }
            self.name = current;
        }
    }

    /// Reads a credential attached to the workflow (at or after its creation).
    fn attach(&mut self, a: &Event) {
        if a.time < self.created.0 {
            return;
        }
        let cred = attr_text(a, &["credential.name", "credential.id"]).unwrap_or(&a.resource);
        let i = self.attached.partition_point(|(x, _)| *x < at(a));
        if self.attached.get(i).is_none_or(|(x, _)| x.1 != a.id) {
            self.attached.insert(i, (at(a), text(cred)));
            self.attached.truncate(MAX_ATTACHED);
        }
    }

    /// The story of the workflow `system` in `events` (the trajectory, in order), if it was
    /// created there.
    fn from_history(system: &str, events: &[Event], s: &Settings) -> Option<Story> {
        let ours = |e: &&Event| e.system == system;
        let created = events
            .iter()
            .filter(ours)
            .find(|e| is_workflow_change(e) && e.is("workflow.created"))?;
        let mut story = Story::new(created);
        for e in events.iter().filter(ours) {
            if is_workflow_change(e) && story.holds(e, s) {
                story.read(e, s);
            } else if e.is("credential.attached") {
                story.attach(e);
            }
        }
        Some(story)
    }
}

/// How wide the attached credentials are, from the credential events of the same actor
/// (matched by `type:name` as the workflow lists them, by name or by id), and the events
/// that show it.
fn width_of<'a>(attached: &[String], credentials: &'a [Credential]) -> (Width, Vec<&'a str>) {
    let mut width = Width::Unknown;
    let mut grants = Vec::new();
    for c in credentials {
        let matches = attached.iter().any(|a| {
            let (a_kind, a_name) = a.split_once(':').unwrap_or(("", a));
            (!c.name.is_empty()
                && a_name == c.name
                && (a_kind.is_empty() || c.kind.is_empty() || a_kind == c.kind))
                || (!c.cid.is_empty() && a_name == c.cid)
        });
        if !matches {
            continue;
        }
        if c.wide {
            width = Width::Wide;
            grants.push(c.id.as_str());
        } else if width == Width::Unknown {
            width = Width::Narrow;
        }
    }
    (width, grants)
}

#[derive(Default)]
pub struct WorkflowStory;

impl IncrementalDetector for WorkflowStory {
    type State = Seen;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Settings>()?;
        Ok(())
    }

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

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let s = cx.settings::<Settings>()?;
        // Stories read under another configuration are read again from the trajectory
        // (which holds this call's events too).
        let config = kept_by(cx);
        let last = seen.last.clone();
        let again = seen.kept_by != config && seen.kept_by != 0;
        if seen.kept_by != config {
            *seen = Seen {
                kept_by: config,
                ..Seen::default()
            };
        }
        if again {
            seen.add(&cx.history_all(), None, &s);
        } else {
            seen.add(new_events, last.as_ref(), &s);
        }
        if let Some(late) = seen.late.take() {
            // Read again, in order, the stories an event arrived too late for.
            let history = cx.history_all();
            for system in late {
                match Story::from_history(&system, &history, &s) {
                    Some(story) => seen.stories.insert(system, story),
                    None => seen.stories.remove(&system),
                };
            }
        }
        seen.last = new_events.last().map(at).into_iter().chain(last).max();
        seen.bound(cx);

        let mut findings = Vec::new();
        for (system, story) in &seen.stories {
            findings.extend(finding(story, system, &seen.credentials, &s));
        }
        Ok(findings)
    }
}

register_incremental_detector!(WorkflowStory);

/// The fingerprint of the whole configuration.
fn kept_by(cx: &Context) -> u64 {
    let keys = WorkflowStory::info().config;
    cx.config_fingerprint(keys.iter().map(|k| k.name.as_str()))
}

impl Seen {
    /// Reads `events` (in order) into the stories and the credential events; `last` is the
    /// latest event read before them. Stories an event came too late for are left in
    /// `late`, to be read again from history.
    fn add(&mut self, events: &[Event], last: Option<&At>, s: &Settings) {
        // A creation starts a story, unless events of its time or later were given before
        // it: then it is read from history.
        for e in events.iter().filter(|e| e.is("workflow.created")) {
            if self.stories.contains_key(e.system.as_str()) || !is_workflow_change(e) {
                continue;
            }
            if last.is_some_and(|l| e.time <= l.0) {
                self.late(&e.system);
            } else {
                self.stories.insert(text(&e.system), Story::new(e));
            }
        }
        let mut credentials = Vec::new();
        for e in events {
            if e.is("credential.attached") {
                if let Some(story) = self.stories.get_mut(e.system.as_str()) {
                    story.attach(e);
                }
            } else if e.is("credential.*") {
                credentials.extend(Credential::of(e, s));
            } else if is_workflow_change(e) {
                let Some(story) = self.stories.get_mut(e.system.as_str()) else {
                    continue;
                };
                // An event behind one already read, or an earlier creation: read again.
                let late = (story.holds(e, s) && at(e) < story.read)
                    || (e.is("workflow.created") && at(e) < story.created);
                if late {
                    self.late(&e.system);
                } else if story.holds(e, s) {
                    story.read(e, s);
                }
            }
        }
        kept::fold(
            &mut self.credentials,
            credentials,
            usize::MAX,
            kept::BUDGET / 4,
        );
    }

    fn late(&mut self, system: &str) {
        let late = self.late.get_or_insert_with(Vec::new);
        if !late.iter().any(|s| s == system) {
            late.push(text(system));
        }
    }

    /// Forgets what has left the trajectory (its bound dropped it), as a 0.1.0 call would
    /// not see it either, and keeps the state within its bounds.
    fn bound(&mut self, cx: &Context) {
        kept::prune(&mut self.credentials, cx);
        if let Some(w) = cx.window() {
            self.stories.retain(|_, story| story.created.0 >= w.start);
            for story in self.stories.values_mut() {
                story.attached.retain(|(a, _)| a.0 >= w.start);
            }
        }
        let weigh = |k: &String, v: &Story| k.len() + format!("{v:?}").len();
        let mut total: usize = self.stories.iter().map(|(k, v)| weigh(k, v)).sum();
        while total > kept::BUDGET * 3 / 4 || self.stories.len() > MAX_STORIES {
            let oldest = self
                .stories
                .iter()
                .min_by(|a, b| a.1.created.cmp(&b.1.created));
            let Some(key) = oldest.map(|(k, _)| k.clone()) else {
                break;
            };
            if let Some(v) = self.stories.remove(&key) {
                total -= weigh(&key, &v);
            }
        }
    }
}

fn finding(
    story: &Story,
    system: &str,
    credentials: &[Credential],
    s: &Settings,
) -> Option<Finding> {
    let (export, dests) = story.export.as_ref()?;
    // The first activation off-hours, else the first.
    let (activated, off_hours, clock) = story
        .activations
        .iter()
        .find(|a| a.1)
        .or(story.activations.first())?;
    // Every credential the workflow gained, then those attached; the widest is the
    // story's, not the first: a narrow one attached first must not hide the wide one
    // attached after it. Earliest among equals.
    let rank = |w: Width| match w {
        Width::Wide => 2,
        Width::Unknown => 1,
        Width::Narrow => 0,
    };
    let attached: Vec<(At, Vec<String>)> = (story.attached.iter())
        .map(|(a, c)| (a.clone(), vec![c.clone()]))
        .collect();
    let mut credential: Option<(&At, &[String])> = None;
    let (mut width, mut grants) = (Width::Unknown, Vec::new());
    for (e, creds) in story.added.iter().chain(&attached) {
        let (w, g) = width_of(creds, credentials);
        if credential.is_none() || rank(w) > rank(width) {
            credential = Some((e, creds));
            (width, grants) = (w, g);
        }
    }
    let credential = credential.filter(|_| width != Width::Narrow);
    let extras = [
        story.webhook.is_some(),
        credential.is_some(),
        *off_hours,
        story.renamed.is_some(),
    ];
    let count = extras.iter().filter(|x| **x).count();
    let actor = &story.actor;
    let routine = (story.environments.iter()).any(|e| s.policy.ignore_environments.contains(e))
        || story.planned;
    let (severity, score) = match (count, routine) {
        (4, false) => (Severity::Urgent, 0.95),
        // The full shape in a test environment, or planned work: recorded, not raised.
        (4, true) => (Severity::Informational, 0.3),
        (2 | 3, false) => (Severity::NeedsReview, 0.5 + 0.1 * count as f32),
        _ => return None,
    };

    let mut parts = Vec::new();
    if story.webhook.is_some() {
        parts.push("webhook trigger".to_string());
    }
    if credential.is_some() {
        parts.push(match width {
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
    let activation = if *off_hours {
        format!("activated {clock} off-hours")
    } else {
        "activated".to_string()
    };
    let renamed = (story.renamed.as_ref())
        .map(|(_, from)| format!(" (renamed from {})", quoted(from, 30)))
        .unwrap_or_default();
    let head = match severity {
        Severity::Informational => "Test-env/planned workflow",
        _ => "New workflow",
    };
    let t = title(format!(
        "{head} {}{renamed} by {actor}: {}, {activation}",
        quoted(&story.name, 40),
        parts.join(" + "),
    ));

    let mut evidence: Vec<&str> = vec![&story.created.1];
    evidence.extend(story.webhook.as_ref().map(|w| w.1.as_str()));
    evidence.extend(credential.map(|(e, _)| e.1.as_str()));
    evidence.push(&export.1);
    evidence.push(&activated.1);
    evidence.extend(story.renamed.as_ref().map(|(e, _)| e.1.as_str()));
    if credential.is_some() {
        evidence.extend(grants);
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
            .evidence_ids(evidence.into_iter().map(str::to_string))
            .score(score)
            .next_step(next),
    )
}

#[cfg(test)]
mod tests {
    plumbline_sdk::testing::incremental_fixture_tests!(super::WorkflowStory);

    /// The canonical story with its export step and its activation arriving last, behind
    /// the rename: the story is read again from history and comes out as in order.
    #[test]
    fn late_events_are_read_again_from_history() {
        use plumbline_sdk::testing::feed;
        let f = feed::load(FIXTURES, "positive-canonical-story.json");
        let late = ["n8n:m5", "n8n:m6"];
        let order: Vec<&str> = (f.trajectory.events.iter())
            .map(|e| e.id.as_str())
            .filter(|id| !late.contains(id))
            .chain(late)
            .collect();
        let last = feed::arrive::<super::WorkflowStory>(&f, &order)
            .pop()
            .unwrap();
        f.compare(&last).unwrap();
    }

    /// Many copies of the workflow's creation with 500-byte ids and 8 KiB texts: the state
    /// stays under the host's bound (each call checks it).
    #[test]
    fn flooded_state_stays_bounded() {
        use plumbline_sdk::testing::feed;
        let f = feed::load(FIXTURES, "positive-canonical-story.json");
        let found = feed::flood::<super::WorkflowStory>(&f, "n8n:m1", 300);
        assert!(found.is_empty());
    }

    /// The canonical story told by 40 workflows at once: the newest stories are kept, within
    /// the state's bound (each call checks it), each reported.
    #[test]
    fn stories_stay_bounded() {
        use plumbline_sdk::testing::feed;
        let f = feed::load(FIXTURES, "positive-canonical-story.json");
        let mut many = f.clone();
        many.trajectory.events = (0..40)
            .flat_map(|w| {
                f.trajectory.events.iter().map(move |e| {
                    let mut e = e.clone();
                    e.id = format!("{}:{w:02}", e.id);
                    if e.system != "n8n" {
                        e.system = format!("{}-{w:02}", e.system);
                    }
                    e
                })
            })
            .collect();
        many.trajectory
            .events
            .sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
        let order: Vec<&str> = many
            .trajectory
            .events
            .iter()
            .map(|e| e.id.as_str())
            .collect();
        let last = feed::arrive::<super::WorkflowStory>(&many, &order)
            .pop()
            .unwrap();
        assert_eq!(last.len(), super::MAX_STORIES);
        assert!(last
            .iter()
            .all(|f| f.severity == 3 && f.evidence[0].as_str() >= "n8n:m1:24"));
    }

    /// Replaces the fixture `negative-canonical-story-system-trajectory.json` (the same events seen through
    /// the workflow's system trajectory): the host never offers this detector that view.
    #[test]
    fn reads_only_its_views() {
        use plumbline_sdk::{IncrementalDetector, TrajectoryKind};
        let info = super::WorkflowStory::info();
        assert!(info.reads_view(TrajectoryKind::Actor));
        assert!(!info.reads_view(TrajectoryKind::System));
    }
}
