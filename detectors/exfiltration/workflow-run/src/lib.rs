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

use std::collections::BTreeMap;

use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const SIGNAL: &str = "exfil.workflow_run_story";

/// Names a workflow has before anyone names it (n8n, make.com): renaming away from one
/// is routine, not blending in.
const DEFAULT_NAMES: [&str; 4] = ["my workflow", "new workflow", "new scenario", "untitled"];

#[derive(Default)]
pub struct WorkflowRun;

impl Detector for WorkflowRun {
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

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let s = cx.settings::<Settings>()?;
        // A body was seen (enrichment or a relay): the actor-view story detector decides.
        if t.events.iter().any(|e| e.attr("nodes.count").is_some()) {
            return Ok(Vec::new());
        }
        let Some(created) = t.events.iter().find(|e| e.is("workflow.created")) else {
            return Ok(Vec::new());
        };
        let story: Vec<&Event> = t
            .events
            .iter()
            .filter(|e| e.time >= created.time && e.time - created.time <= s.window)
            .collect();
        Ok(read(created, &story, &s)
            .and_then(|r| r.finding(&s))
            .into_iter()
            .collect())
    }
}

register_detector!(WorkflowRun);

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

/// One execution as the stream shows it: its node runs in order, and the export.
#[derive(Default)]
struct Run<'a> {
    nodes: Vec<&'a Event>,
    export: Option<&'a Event>,
}

struct Reading<'a> {
    created: &'a Event,
    name: String,
    export: &'a Event,
    /// read → stage → send, in one execution.
    staged: Vec<&'a Event>,
    webhook: Option<&'a Event>,
    activated: &'a Event,
    off_hours: bool,
    renamed: Option<(&'a Event, String, String)>,
    all: Vec<&'a Event>,
}

fn read<'a>(created: &'a Event, story: &[&'a Event], s: &Settings) -> Option<Reading<'a>> {
    let mut runs: BTreeMap<&str, Run<'a>> = BTreeMap::new();
    for e in story {
        let Some(exec) = e.attr_str("execution.id").filter(|x| !x.is_empty()) else {
            continue;
        };
        let run = runs.entry(exec).or_default();
        if e.is("data.export") {
            // A data store node can write out too, but in a run it is most often the
            // read: the step that sends is the last export-like node that is not one.
            let sends = !listed(&s.read, short_type(e));
            if run
                .export
                .is_none_or(|x| sends || listed(&s.read, short_type(x)))
            {
                run.export = Some(e);
            }
        } else if e.is("workflow.node.executed") {
            run.nodes.push(e);
        }
    }
    // The telling run: a staged one if any, else the first that sent data out.
    let mut export = None;
    let mut staged = Vec::new();
    let mut webhook = None;
    for run in runs.values() {
        let Some(x) = run.export else { continue };
        let before: Vec<&'a Event> = run
            .nodes
            .iter()
            .copied()
            .filter(|n| n.time <= x.time)
            .collect();
        let chain = staged_chain(&before, s);
        let hook = before
            .iter()
            .copied()
            .find(|n| short_type(n).eq_ignore_ascii_case("webhook"));
        if export.is_none() || (staged.is_empty() && !chain.is_empty()) {
            export = Some(x);
            staged = chain.into_iter().chain([x]).collect();
            if staged.len() == 1 {
                staged.clear();
            }
            webhook = hook.or(webhook);
        }
    }
    let export = export?;
    let (activated, off_hours) = s
        .policy
        .first_off_hours(story.iter().copied().filter(|e| e.is("workflow.activated")))?;
    // Renamed once live: a name change after activation, away from a name somebody chose.
    let first_name = created.attr_str("workflow.name").unwrap_or("").to_string();
    let mut name = first_name.clone();
    let mut renamed = None;
    for e in story {
        let Some(current) = e.attr_str("workflow.name").filter(|n| !n.is_empty()) else {
            continue;
        };
        if current != name {
            let chosen = !DEFAULT_NAMES
                .iter()
                .any(|d| name.to_ascii_lowercase().starts_with(d));
            if e.time > activated.time && chosen && renamed.is_none() {
                renamed = Some((*e, name.clone(), current.to_string()));
            }
            name = current.to_string();
        }
    }
    Some(Reading {
        created,
        name,
        export,
        staged,
        webhook,
        activated,
        off_hours,
        renamed,
        all: story.to_vec(),
    })
}

/// The nodes of a read → stage chain before the export: the last read that precedes the
/// first stage step after it (so an early unrelated read does not stand in for it).
fn staged_chain<'a>(nodes: &[&'a Event], s: &Settings) -> Vec<&'a Event> {
    let mut last_read: Option<&'a Event> = None;
    for n in nodes {
        let ty = short_type(n);
        if listed(&s.read, ty) {
            last_read = Some(*n);
        } else if listed(&s.stage, ty) {
            if let Some(r) = last_read {
                let stages: Vec<&'a Event> = nodes
                    .iter()
                    .copied()
                    .filter(|m| m.time >= n.time && listed(&s.stage, short_type(m)))
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
        let routine = self.all.iter().any(|e| s.policy.is_ignored_environment(e))
            || s.policy.is_planned(self.created);
        let severity = if routine {
            Severity::Informational
        } else {
            Severity::NeedsReview
        };
        let who = &self.created.actor.id;
        let system = &self.created.system;
        let mut parts = Vec::new();
        if let Some(w) = self.webhook {
            parts.push(format!("webhook-triggered ({})", quoted(node_name(w), 30)));
        }
        if self.staged.is_empty() {
            parts.push(format!(
                "run sends data out via {}",
                short_type(self.export)
            ));
        } else {
            let chain: Vec<&str> = self.staged.iter().map(|e| short_type(e)).collect();
            parts.push(format!("run {}", chain.join(" → ")));
        }
        parts.push(if self.off_hours {
            format!(
                "activated {} off-hours",
                s.policy.hours.local_clock(self.activated)
            )
        } else {
            "activated".to_string()
        });
        if let Some((_, from, _)) = &self.renamed {
            parts.push(format!("renamed from {} once live", quoted(from, 30)));
        }
        let t = title(format!(
            "New workflow {} by {who}: {}; destination not in the log stream",
            quoted(&self.name, 40),
            parts.join(", ")
        ));
        let mut evidence: Vec<&Event> = vec![self.created, self.activated];
        evidence.extend(self.webhook);
        evidence.extend(self.staged.iter().copied());
        evidence.push(self.export);
        evidence.extend(self.renamed.as_ref().map(|(e, _, _)| *e));
        let next = match severity {
            Severity::NeedsReview => format!(
                "Open {system}'s last execution to see where the {} step sent data, and ask {who} who approved it; connect the n8n API ([n8n] api_url, api_key) so the destination and credentials are read from the workflow itself",
                short_type(self.export)
            ),
            _ => format!("No action unless {system} is promoted outside the test environment / change window"),
        };
        Some(
            Finding::new(SIGNAL, severity, t)
                .evidence(evidence)
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
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::WorkflowRun>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::WorkflowRun>(FIXTURES);
    }
}
