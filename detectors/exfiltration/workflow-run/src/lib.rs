//! The canonical automation exfiltration story when only the log stream is connected:
//! n8n's log streaming carries no workflow body, so what a workflow *is* shows only in
//! what it *does*. A new workflow whose runs read a data store, convert or compress the
//! result and send it out, activated off-hours, webhook-triggered, or renamed once live,
//! needs review. Its destination is not in the stream, so this never says more than 2:
//! with the n8n API connected the body is fetched and `exfiltration.workflow-story`
//! judges the destination, the credential and the whole story (up to 3).
//!
//! Read on system trajectories (one workflow's history): executions are the workflow's
//! own, not the person's who built it. Silent when the trajectory holds a workflow body
//! (`nodes.count`), so one story raises one alert.
//!
//! Incremental (`plumbline:detector@0.2.0`): the state holds the workflow's creation, its
//! activations, renames and environments within the story window, and for its runs the
//! read, stage and webhook nodes and the export (ids, times, node types — not the events),
//! the runs that can no longer be the telling one dropped. `history` is read only when an
//! event arrives late (behind one already given) or the settings that decide what is kept
//! change: the summaries are then built again from the trajectory.

use std::collections::BTreeMap;

use plumbline_sdk::kept::text;
use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const SIGNAL: &str = "exfil.workflow_run_story";

/// Names a workflow has before anyone names it (n8n, make.com): renaming away from one
/// is routine, not blending in.
const DEFAULT_NAMES: [&str; 4] = ["my workflow", "new workflow", "new scenario", "untitled"];

/// The config keys that decide what the state keeps (the window, the node lists, working
/// hours): when they change, the state is built again from `history`.
const KEPT_BY: [&str; 6] = [
    "story_window_hours",
    "read_nodes",
    "stage_nodes",
    "work_start_hour",
    "work_end_hour",
    "utc_offset_hours",
];

/// Bounds on what is kept, so the state stays under the host's 64 KiB: runs within about
/// 32 KiB (past it the runs least recently active go first, never the two that can be the
/// telling one), the first 8 activations and the first 8 renames in the story.
const RUNS_BYTES: usize = 32 << 10;
const MAX_ACTIVATIONS: usize = 8;
const MAX_RENAMES: usize = 8;

/// What the detector remembers of a trajectory.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    /// A hash of the [`KEPT_BY`] settings the summaries were made under.
    kept_by: u64,
    /// The latest event given, (time, id): an event before it arrives late.
    last: Option<(i64, String)>,
    /// When a workflow body was last seen.
    body: Option<i64>,
    story: Option<Story>,
}

/// The story from the workflow's creation to the end of the story window.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Story {
    created: Mark,
    actor: String,
    system: String,
    /// The name it was created with ("" when none), and the name it has now.
    first_name: String,
    name: String,
    /// Name changes, in order (the first [`MAX_RENAMES`]): the event and the new name.
    renames: Vec<(Mark, String)>,
    environments: Vec<Environment>,
    /// Activations, in order (the first [`MAX_ACTIVATIONS`]): whether each was off-hours,
    /// and its local clock.
    activations: Vec<(Mark, bool, String)>,
    runs: BTreeMap<String, Run>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Mark {
    t: i64,
    id: String,
}

impl Mark {
    fn of(e: &Event) -> Mark {
        Mark {
            t: e.time,
            id: e.id.clone(),
        }
    }
}

/// One execution as the stream shows it: its read, stage and webhook node runs in order,
/// the export, and when it last did something.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Run {
    last: i64,
    nodes: Vec<Node>,
    export: Option<Node>,
}

/// A node run: its short type (and its name, for a webhook: the title shows it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Node {
    at: Mark,
    ty: String,
    name: Option<String>,
}

impl Node {
    fn of(e: &Event) -> Node {
        let ty = short_type(e);
        Node {
            at: Mark::of(e),
            name: ty
                .eq_ignore_ascii_case("webhook")
                .then(|| text(node_name(e))),
            ty: text(ty),
        }
    }

    fn bytes(&self) -> usize {
        64 + self.at.id.len() + self.ty.len() + self.name.as_ref().map_or(0, String::len)
    }
}

impl Run {
    fn bytes(&self) -> usize {
        32 + self
            .nodes
            .iter()
            .chain(&self.export)
            .map(Node::bytes)
            .sum::<usize>()
    }

    /// The export and what came before it in the run: the read → stage chain and the
    /// webhook it started from.
    fn reading(&self, s: &Settings) -> Option<(&Node, Vec<&Node>, Option<&Node>)> {
        let x = self.export.as_ref()?;
        let before: Vec<&Node> = self.nodes.iter().filter(|n| n.at.t <= x.at.t).collect();
        let chain = staged_chain(&before, s);
        let hook = before
            .iter()
            .copied()
            .find(|n| n.ty.eq_ignore_ascii_case("webhook"));
        Some((x, chain, hook))
    }
}

/// The fingerprint of the [`KEPT_BY`] settings.
fn kept_by(cx: &Context) -> u64 {
    cx.config_fingerprint(KEPT_BY)
}

impl Seen {
    /// Folds events in (time, id) order into the summaries.
    fn add(&mut self, events: &[&Event], s: &Settings) {
        if self.story.is_none() {
            if let Some(created) = events.iter().find(|e| e.is("workflow.created")) {
                let name = text(created.attr_str("workflow.name").unwrap_or(""));
                self.story = Some(Story {
                    created: Mark::of(created),
                    actor: text(&created.actor.id),
                    system: text(&created.system),
                    first_name: name.clone(),
                    name,
                    renames: Vec::new(),
                    environments: Vec::new(),
                    activations: Vec::new(),
                    runs: BTreeMap::new(),
                });
            }
        }
        for e in events {
            if e.attr("nodes.count").is_some() {
                self.body = self.body.max(Some(e.time));
            }
            let Some(story) = self.story.as_mut() else {
                continue;
            };
            let start = story.created.t;
            if e.time < start || e.time - start > s.window {
                continue;
            }
            if !story.environments.contains(&e.environment) {
                story.environments.push(e.environment);
            }
            if e.is("workflow.activated") && story.activations.len() < MAX_ACTIVATIONS {
                let off = s.policy.is_off_hours(e);
                let clock = s.policy.hours.local_clock(e);
                story.activations.push((Mark::of(e), off, clock));
            }
            if let Some(current) = e.attr_str("workflow.name").filter(|n| !n.is_empty()) {
                let current = text(current);
                if current != story.name {
                    if story.renames.len() < MAX_RENAMES {
                        story.renames.push((Mark::of(e), current.clone()));
                    }
                    story.name = current;
                }
            }
            let Some(exec) = e.attr_str("execution.id").filter(|x| !x.is_empty()) else {
                continue;
            };
            let run = story.runs.entry(text(exec)).or_default();
            run.last = run.last.max(e.time);
            let ty = short_type(e);
            if e.is("data.export") {
                // A data store node can write out too, but in a run it is most often the
                // read: the step that sends is the last export-like node that is not one.
                let sends = !listed(&s.read, ty);
                if run
                    .export
                    .as_ref()
                    .is_none_or(|x| sends || listed(&s.read, &x.ty))
                {
                    run.export = Some(Node::of(e));
                }
            } else if e.is("workflow.node.executed")
                && (listed(&s.read, ty)
                    || listed(&s.stage, ty)
                    || ty.eq_ignore_ascii_case("webhook"))
            {
                // Only these node runs tell the story (a read → stage chain, a webhook).
                run.nodes.push(Node::of(e));
            }
        }
        if let Some(story) = self.story.as_mut() {
            story.bound(s);
        }
    }
}

impl Story {
    /// The telling run's key (a staged one if any, else the first that sent data out) and
    /// the first that sent data out: in the order of their execution ids.
    fn telling(&self, s: &Settings) -> (Option<&str>, Option<&str>) {
        let mut first = None;
        for (key, run) in &self.runs {
            let Some((_, chain, _)) = run.reading(s) else {
                continue;
            };
            first.get_or_insert(key.as_str());
            if !chain.is_empty() {
                return (Some(key), first);
            }
        }
        (None, first)
    }

    /// Drops the runs after the first staged one (they can never tell the story), then, past
    /// [`RUNS_BYTES`], the runs least recently active but the two that may tell it.
    fn bound(&mut self, s: &Settings) {
        let (staged, first) = self.telling(s);
        let (staged, first) = (staged.map(str::to_string), first.map(str::to_string));
        if let Some(k) = &staged {
            self.runs.retain(|key, _| key <= k);
        }
        let weigh = |(key, run): (&String, &Run)| key.len() + run.bytes();
        let mut total: usize = self.runs.iter().map(weigh).sum();
        while total > RUNS_BYTES {
            let Some(key) = self
                .runs
                .iter()
                .filter(|(k, _)| Some(*k) != staged.as_ref() && Some(*k) != first.as_ref())
                .min_by_key(|(_, r)| r.last)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(run) = self.runs.remove(&key) {
                total -= weigh((&key, &run));
            }
        }
    }
}

#[derive(Default)]
pub struct WorkflowRun;

impl IncrementalDetector for WorkflowRun {
    type State = Seen;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Settings>()?;
        Ok(())
    }

    fn info() -> Info {
        let info = Info::new(
            "exfiltration.workflow-run",
            "0.1.0",
            "New workflow whose runs read, stage and send data out, activated off-hours, webhook-triggered or renamed once live (log stream only)",
        )
        .actions(&["workflow.*", "data.export"])
        .views(&[TrajectoryKind::System])
        .signals(&[SIGNAL])
        .config(
            "story_window_hours",
            "24",
            "How long after the workflow's creation its runs still belong to the story",
        )
        .config(
            "read_nodes",
            "postgres,mySql,microsoftSql,oracleDatabase,mongoDb,redis,snowflake,googleBigQuery,awsDynamoDb,elasticsearch,supabase,questDb,timescaleDb,crateDb,cockroachDb,mariaDb,clickhouse,hubspot,salesforce,pipedrive,zendesk,freshdesk,intercom,stripe,quickbooks,xero,shopify,airtable,notion,googleSheets,microsoftExcel,baserow,nocoDb,jira,github,gitlab,s3,awsS3,googleDrive,dropbox,microsoftOneDrive,ldap",
            "Node types (after the package prefix) that read a data store, CRM or file store",
        )
        .config(
            "stage_nodes",
            "convertToFile,spreadsheetFile,compression,moveBinaryData,crypto,writeBinaryFile,readWriteFile,aggregate,itemLists",
            "Node types that turn records into a file, archive or encrypted blob",
        )
        .config(
            "min_signs",
            "2",
            "Signs (staged run, off-hours activation, webhook trigger, renamed once live) that make a new exporting workflow worth review",
        );
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
        let settings = kept_by(cx);
        let last = seen.last.as_ref().map(|(t, id)| (*t, id.as_str()));
        // Built again from the trajectory when the summaries were made under other settings,
        // when an event arrives behind one already given, or when the workflow's creation
        // arrives after events of its own time (they belong to the story).
        let rebuild = (seen.kept_by != settings && seen.last.is_some())
            || new_events
                .first()
                .is_some_and(|e| last.is_some_and(|l| (e.time, e.id.as_str()) < l))
            || (seen.story.is_none()
                && new_events
                    .iter()
                    .any(|e| e.is("workflow.created") && last.is_some_and(|l| e.time <= l.0)));
        let latest = new_events
            .last()
            .map(|e| (e.time, e.id.clone()))
            .into_iter()
            .chain(seen.last.take())
            .max();
        if rebuild {
            let info = Self::info();
            let history = cx.history_all();
            let events: Vec<&Event> = history
                .iter()
                .filter(|e| {
                    contract::reads_event(&info.sources, &info.actions, &e.source, &e.action)
                })
                .collect();
            *seen = Seen::default();
            seen.add(&events, &s);
        } else {
            seen.add(&new_events.iter().collect::<Vec<_>>(), &s);
        }
        (seen.kept_by, seen.last) = (settings, latest);
        // What has left the trajectory (its bound dropped it) no longer counts, as a 0.1.0
        // call would not see it either: a body, or the creation and the story with it.
        if let Some(w) = cx.window() {
            seen.body = seen.body.filter(|t| *t >= w.start);
            if seen.story.as_ref().is_some_and(|s| s.created.t < w.start) {
                seen.story = None;
            }
        }
        // A body was seen (enrichment or a relay): the actor-view story detector decides.
        if seen.body.is_some() {
            return Ok(Vec::new());
        }
        Ok(seen
            .story
            .as_ref()
            .and_then(|story| read(story, &s))
            .and_then(|r| r.finding(&s))
            .into_iter()
            .collect())
    }
}

register_incremental_detector!(WorkflowRun);

struct Settings {
    window: i64,
    read: Vec<String>,
    stage: Vec<String>,
    min_signs: usize,
    policy: Policy,
}

impl FromConfig for Settings {
    fn from_config(cfg: &dyn ConfigSource) -> Result<Settings, AnalyzeError> {
        let hours: i64 = cfg.parsed("story_window_hours")?;
        Ok(Settings {
            window: hours.max(1) * 3_600_000_000_000,
            read: cfg.list("read_nodes"),
            stage: cfg.list("stage_nodes"),
            min_signs: cfg.parsed::<usize>("min_signs")?.max(1),
            policy: Policy::from_config(cfg)?,
        })
    }
}

/// `n8n-nodes-base.postgres` → `postgres`; `…Tool` variants count as the node.
fn short_type(e: &Event) -> &str {
    let ty = e.attr_str("node.type").unwrap_or("");
    let t = ty.rsplit('.').next().unwrap_or(ty);
    t.strip_suffix("Tool").unwrap_or(t)
}

fn listed(list: &[String], node: &str) -> bool {
    list.iter().any(|n| n.eq_ignore_ascii_case(node))
}

struct Reading<'a> {
    story: &'a Story,
    export: &'a Node,
    /// read → stage → send, in one execution.
    staged: Vec<&'a Node>,
    webhook: Option<&'a Node>,
    activated: &'a Mark,
    off_hours: bool,
    clock: &'a str,
    /// The rename once live: the event and the name it had before.
    renamed: Option<(&'a Mark, &'a str)>,
}

fn read<'a>(story: &'a Story, s: &Settings) -> Option<Reading<'a>> {
    // The telling run: a staged one if any, else the first that sent data out; a webhook
    // is the telling run's, else the first run's.
    let (staged_key, first_key) = story.telling(s);
    let first = story.runs.get(first_key?)?.reading(s)?;
    let (export, chain, hook) = match staged_key {
        Some(k) => story.runs.get(k)?.reading(s)?,
        None => first.clone(),
    };
    let staged = if chain.is_empty() {
        Vec::new()
    } else {
        chain.into_iter().chain([export]).collect()
    };
    let webhook = hook.or(first.2);
    // The first activation off-hours, else the first.
    let (activated, off_hours, clock) = story
        .activations
        .iter()
        .find(|a| a.1)
        .or(story.activations.first())?;
    // Renamed once live: a name change after activation, away from a name somebody chose.
    let mut name = story.first_name.as_str();
    let mut renamed = None;
    for (e, current) in &story.renames {
        let chosen = !DEFAULT_NAMES
            .iter()
            .any(|d| name.to_ascii_lowercase().starts_with(d));
        if e.t > activated.t && chosen && renamed.is_none() {
            renamed = Some((e, name));
        }
        name = current;
    }
    Some(Reading {
        story,
        export,
        staged,
        webhook,
        activated,
        off_hours: *off_hours,
        clock,
        renamed,
    })
}

/// The nodes of a read → stage chain before the export: the last read that precedes the
/// first stage step after it (so an early unrelated read does not stand in for it).
fn staged_chain<'a>(nodes: &[&'a Node], s: &Settings) -> Vec<&'a Node> {
    let mut last_read: Option<&'a Node> = None;
    for n in nodes {
        if listed(&s.read, &n.ty) {
            last_read = Some(*n);
        } else if listed(&s.stage, &n.ty) {
            if let Some(r) = last_read {
                let stages: Vec<&'a Node> = nodes
                    .iter()
                    .copied()
                    .filter(|m| m.at.t >= n.at.t && listed(&s.stage, &m.ty))
                    .collect();
                return std::iter::once(r).chain(stages).collect();
            }
        }
    }
    Vec::new()
}

impl Reading<'_> {
    fn finding(&self, s: &Settings) -> Option<Finding> {
        let signs = [
            !self.staged.is_empty(),
            self.off_hours,
            self.webhook.is_some(),
            self.renamed.is_some(),
        ];
        let count = signs.iter().filter(|x| **x).count();
        if count < s.min_signs {
            return None;
        }
        let story = self.story;
        let planned =
            s.policy.is_service_account(&story.actor) && s.policy.windows.contains(story.created.t);
        let routine = story
            .environments
            .iter()
            .any(|e| s.policy.ignore_environments.contains(e))
            || planned;
        let severity = if routine {
            Severity::Informational
        } else {
            Severity::NeedsReview
        };
        let who = &story.actor;
        let system = &story.system;
        let mut parts = Vec::new();
        if let Some(w) = self.webhook {
            let name = w.name.as_deref().unwrap_or("");
            parts.push(format!("webhook-triggered ({})", quoted(name, 30)));
        }
        if self.staged.is_empty() {
            parts.push(format!("run sends data out via {}", self.export.ty));
        } else {
            let chain: Vec<&str> = self.staged.iter().map(|e| e.ty.as_str()).collect();
            parts.push(format!("run {}", chain.join(" → ")));
        }
        parts.push(if self.off_hours {
            format!("activated {} off-hours", self.clock)
        } else {
            "activated".to_string()
        });
        if let Some((_, from)) = &self.renamed {
            parts.push(format!("renamed from {} once live", quoted(from, 30)));
        }
        let t = title(format!(
            "New workflow {} by {who}: {}; destination not in the log stream",
            quoted(&story.name, 40),
            parts.join(", ")
        ));
        let mut evidence: Vec<&Mark> = vec![&story.created, self.activated];
        evidence.extend(self.webhook.map(|w| &w.at));
        evidence.extend(self.staged.iter().map(|n| &n.at));
        evidence.push(&self.export.at);
        evidence.extend(self.renamed.map(|(e, _)| e));
        let next = match severity {
            Severity::NeedsReview => format!(
                "Open {system}'s last execution to see where the {} step sent data, and ask {who} who approved it; connect the n8n API ([n8n] api_url, api_key) so the destination and credentials are read from the workflow itself",
                self.export.ty
            ),
            _ => format!("No action unless {system} is promoted outside the test environment / change window"),
        };
        Some(
            Finding::new(SIGNAL, severity, t)
                .evidence_ids(evidence.into_iter().map(|m| m.id.clone()))
                .score(0.45 + 0.1 * count as f32)
                .next_step(next),
        )
    }
}

fn node_name(e: &Event) -> &str {
    e.attr_str("node.name").unwrap_or("")
}

#[cfg(test)]
mod tests {
    plumbline_sdk::testing::incremental_fixture_tests!(super::WorkflowRun);

    /// Many copies of the workflow's creation with 500-byte ids and 8 KiB texts: the state
    /// stays under the host's bound (each call checks it).
    #[test]
    fn flooded_state_stays_bounded() {
        use plumbline_sdk::testing::feed;
        let f = feed::load(FIXTURES, "positive-stream-canonical-story.json");
        let found = feed::flood::<super::WorkflowRun>(&f, "n8n:s1", 300);
        assert!(found.is_empty());
    }

    /// The canonical story with its activation and its staging node arriving last, behind
    /// the runs: the story is read again from history and comes out as in order.
    #[test]
    fn late_events_are_read_again_from_history() {
        use plumbline_sdk::testing::feed;
        let f = feed::load(FIXTURES, "positive-stream-canonical-story.json");
        let late = ["n8n:s3", "n8n:r1-2"];
        let order: Vec<&str> = (f.trajectory.events.iter())
            .map(|e| e.id.as_str())
            .filter(|id| !late.contains(id))
            .chain(late)
            .collect();
        let last = feed::arrive::<super::WorkflowRun>(&f, &order)
            .pop()
            .unwrap();
        f.compare(&last).unwrap();
    }

    /// 250 runs that send data out unstaged (the first ones keep their place as the telling
    /// run's fallback), then one that reads, stages and sends: the state stays under the
    /// host's bound on every call (the harness checks it) and the staged run tells the story.
    #[test]
    fn state_stays_bounded() {
        let event = |id: String, second: usize, action: &str, attributes: String| {
            format!(
                r#"{{"id": "n8n:{id}", "time": "2024-06-12T{:02}:{:02}:{:02}Z", "source": "n8n", "actor": {{"id": "mallory@acme.com", "type": "human"}}, "system": "n8n/workflow/wf77", "action": "{action}", "attributes": {{"workflow.name": "Customer sync"{attributes}}}}}"#,
                1 + second / 3600,
                second / 60 % 60,
                second % 60
            )
        };
        let node = |run: &str, ty: &str| {
            format!(
                r#", "execution.id": "{run}", "node.type": "n8n-nodes-base.{ty}", "node.name": "{ty}""#
            )
        };
        let mut events = vec![
            event("s1".into(), 0, "workflow.created", String::new()),
            event("s3".into(), 60, "workflow.activated", String::new()),
        ];
        let mut second = 120;
        for (run, types) in (0..251).map(|r| {
            let types: &[&str] = if r < 250 {
                &["webhook", "set", "postgres", "httpRequest"]
            } else {
                &[
                    "webhook",
                    "postgres",
                    "convertToFile",
                    "compression",
                    "httpRequest",
                ]
            };
            (format!("exec-{r:05}"), types)
        }) {
            for (i, ty) in types.iter().enumerate() {
                second += 1;
                let id = format!("{run}-{i}");
                events.push(event(
                    id.clone(),
                    second,
                    "workflow.node.executed",
                    node(&run, ty),
                ));
                if *ty == "httpRequest" {
                    events.push(event(
                        format!("{id}:export"),
                        second,
                        "data.export",
                        node(&run, ty),
                    ));
                }
            }
        }
        let fixture = format!(
            r#"{{"trajectory": {{"kind": "system", "key": "n8n/workflow/wf77", "events": [{}]}}, "expected": [{{"signal": "exfil.workflow_run_story", "severity": 2, "evidence": ["n8n:s1", "n8n:s3", "n8n:exec-00250-0", "n8n:exec-00250-1", "n8n:exec-00250-2", "n8n:exec-00250-3", "n8n:exec-00250-4:export"]}}]}}"#,
            events.join(",\n")
        );
        let path = std::env::temp_dir().join("exfiltration-workflow-run-bounded.json");
        std::fs::write(&path, fixture).unwrap();
        plumbline_sdk::testing::run_incremental_fixture::<super::WorkflowRun>(&path).unwrap();
    }
}
