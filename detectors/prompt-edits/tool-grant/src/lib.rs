//! An AI assistant gains a risky tool: code execution, reading CRM / tickets / databases
//! (an export path), or outbound HTTP. Each grant needs review; a production assistant
//! that can now both read customer data and send it anywhere (or run code) is urgent, as
//! is an AI agent granting tools to itself.
//!
//! Tools on `approved_tools`, and outbound tools whose host is allow-listed, do not count.
//! Read on system trajectories (one assistant's configuration history).
//!
//! Incremental (`plumbline:detector@0.2.0`): the state holds one summary per tool granted
//! (id, time, who, the tool's name, permissions and host — not the event), judged again on
//! every call.

use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

use plumbline_sdk::kept::{self, text};

const RISKY: &str = "prompt.risky_tool_granted";
const EXFIL_PATH: &str = "prompt.read_and_send_tools";
const GRANT: &str = "assistant.tool.granted";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    CodeExecution,
    DataAccess,
    Outbound,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::CodeExecution => "code execution",
            Kind::DataAccess => "customer-data access",
            Kind::Outbound => "outbound HTTP",
        }
    }
}

/// Most grants kept, the oldest dropped first: one finding each at most, and the host
/// takes at most 100 findings per answer by default.
const MAX_KEPT: usize = 100;

/// What the detector remembers of a trajectory: the tools granted, in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Grants {
    seen: Vec<Grant>,
}

/// A tool granted: what judging it and its finding need.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Grant {
    t: i64,
    id: String,
    env: Environment,
    actor: String,
    kind: ActorKind,
    system: String,
    assistant: Option<String>,
    /// The tool's name (`approved_tools`, titles).
    name: String,
    /// Its name, permissions and scope: what the tool lists are matched against.
    words: Vec<String>,
    /// Where it calls (`tool.host`, else the event's destination).
    host: Option<String>,
}

kept::record!(Grant);

impl Grant {
    fn of(e: &Event) -> Grant {
        let name = text(attr_text(e, &["tool", "tool.name"]).unwrap_or(&e.resource));
        let mut words: Vec<String> = vec![name.clone()];
        words.extend(attr_list(e, "tool.permissions").iter().map(|p| text(p)));
        words.extend(attr_text(e, &["tool.scope"]).map(text));
        Grant {
            t: e.time,
            id: e.id.clone(),
            env: e.environment,
            actor: text(&e.actor.id),
            kind: e.actor.kind,
            system: text(&e.system),
            assistant: attr_text(e, &["assistant.name", "assistant.id"]).map(text),
            name,
            words,
            host: attr_text(e, &["tool.host"])
                .or(e.destination.as_deref())
                .map(text),
        }
    }
}

#[derive(Default)]
pub struct ToolGrant;

impl IncrementalDetector for ToolGrant {
    type State = Grants;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Destinations>()?;
        cx.settings::<Policy>()?;
        Ok(())
    }

    fn info() -> Info {
        let info = Info::new(
            "prompt-edits.tool-grant",
            "0.1.0",
            "AI assistants gaining code execution, CRM/ticket/database access or outbound HTTP tools",
        )
        .actions(&[GRANT])
        .views(&[TrajectoryKind::System])
        .signals(&[RISKY, EXFIL_PATH])
        .config(
            "code_tools",
            "code_interpreter,code-interpreter,python*,shell*,bash*,terminal*,exec*,run_code*,run-code*,execute*,sandbox*,jupyter*,notebook*",
            "Tool names/permissions (globs) that run code",
        )
        .config(
            "data_tools",
            "*crm*,salesforce*,hubspot*,pipedrive*,zendesk*,freshdesk*,intercom*,jira*,*ticket*,servicenow*,*export*,database*,*sql*,warehouse*,snowflake*,bigquery*,redshift*,gmail*,*mailbox*,drive*,sharepoint*,*customer*",
            "Tool names/permissions (globs) that read customer, ticket or business data",
        )
        .config(
            "outbound_tools",
            "http*,fetch*,web_request*,web-request*,webhook*,requests*,curl*,browser*,web_browse*,url*,api_call*,*send_email*,*email_send*,smtp*",
            "Tool names/permissions (globs) that send requests or data out",
        )
        .config(
            "approved_tools",
            "",
            "Tools approved for every assistant (comma-separated globs): never raised",
        )
        .config(
            "urgent_environments",
            "prod",
            "Environments where a read-and-send combination is urgent",
        );
        let info = destination::declare(info);
        let info = keys::planned_work(info);
        keys::environments(info, "test")
    }

    fn observe(
        &self,
        state: &mut Grants,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let new = new_events.iter().filter(|e| e.is(GRANT)).map(Grant::of);
        kept::fold(&mut state.seen, new, MAX_KEPT, kept::BUDGET);
        kept::prune(&mut state.seen, cx);
        let key = cx.window().map_or("", |w| w.key.as_str());

        let code = cx.config_list("code_tools");
        let data = cx.config_list("data_tools");
        let outbound = cx.config_list("outbound_tools");
        let approved = cx.config_list("approved_tools");
        let urgent_envs: Vec<Environment> = cx
            .config_list("urgent_environments")
            .iter()
            .filter_map(|n| plumbline_sdk::kit::policy::environment(n))
            .collect();
        let lists = cx.settings::<Destinations>()?;
        let policy = cx.settings::<Policy>()?;

        let mut grants: Vec<(&Grant, Vec<Kind>)> = Vec::new();
        for e in &state.seen {
            let planned = policy.is_service_account(&e.actor) && policy.windows.contains(e.t);
            if policy.ignore_environments.contains(&e.env) || planned {
                continue;
            }
            if approved.iter().any(|p| glob::matches(p, &e.name)) {
                continue;
            }
            let any = |list: &[String]| {
                e.words
                    .iter()
                    .any(|w| list.iter().any(|p| glob::matches_ignore_ascii_case(p, w)))
            };
            let mut kinds = Vec::new();
            if any(&code) {
                kinds.push(Kind::CodeExecution);
            }
            if any(&data) {
                kinds.push(Kind::DataAccess);
            }
            // Calls to an allow-listed host are the integration working as designed.
            let host_known = e
                .host
                .as_deref()
                .and_then(|h| lists.classify(h))
                .is_some_and(|(_, c)| c == DestinationClass::Known);
            if any(&outbound) && !host_known {
                kinds.push(Kind::Outbound);
            }
            if !kinds.is_empty() {
                grants.push((e, kinds));
            }
        }

        let mut findings = Vec::new();
        let has = |k: Kind| {
            grants
                .iter()
                .filter(|(_, ks)| ks.contains(&k))
                .map(|(e, _)| *e)
                .collect::<Vec<_>>()
        };
        let (readers, senders, runners) = (
            has(Kind::DataAccess),
            has(Kind::Outbound),
            has(Kind::CodeExecution),
        );
        let combo: Vec<&Grant> =
            if !readers.is_empty() && (!senders.is_empty() || !runners.is_empty()) {
                let mut v: Vec<&Grant> = readers
                    .iter()
                    .chain(&senders)
                    .chain(&runners)
                    .copied()
                    .collect();
                v.sort_by_key(|e| (e.t, e.id.as_str()));
                v.dedup_by_key(|e| e.id.as_str());
                v
            } else {
                Vec::new()
            };
        if let Some(last) = combo.last() {
            let urgent = combo.iter().any(|e| urgent_envs.contains(&e.env));
            let assistant = last.assistant.as_deref().unwrap_or(key);
            let send = if senders.is_empty() {
                "run code"
            } else {
                "send data out"
            };
            findings.push(
                Finding::new(
                    EXFIL_PATH,
                    if urgent { Severity::Urgent } else { Severity::NeedsReview },
                    title(format!(
                        "Assistant {} ({}) can now read customer data and {send}: {}",
                        quoted(assistant, 40),
                        key,
                        combo.iter().map(|e| tool_name(e)).collect::<Vec<_>>().join(", ")
                    )),
                )
                .evidence_ids(combo.iter().map(|e| e.id.clone()))
                .score(0.9)
                .next_step(format!(
                    "Revoke {} from {} until its owner shows the data flow was approved; check recent tool calls for customer data sent out",
                    tool_name(senders.first().or(runners.first()).unwrap_or(last)),
                    key
                )),
            );
        }
        for (e, kinds) in &grants {
            if combo.iter().any(|c| c.id == e.id) {
                continue;
            }
            let self_granted = e.kind == ActorKind::AiAgent;
            let labels: Vec<&str> = kinds.iter().map(|k| k.label()).collect();
            let severity = if self_granted && urgent_envs.contains(&e.env) {
                Severity::Urgent
            } else {
                Severity::NeedsReview
            };
            let by = if self_granted {
                format!("AI agent {}", e.actor)
            } else {
                e.actor.clone()
            };
            findings.push(
                Finding::new(
                    RISKY,
                    severity,
                    title(format!(
                        "Assistant {} got tool {} ({}), granted by {by}",
                        e.system,
                        tool_name(e),
                        labels.join(", ")
                    )),
                )
                .evidence_ids([e.id.clone()])
                .score(if self_granted { 0.85 } else { 0.6 })
                .next_step(format!(
                    "Ask {} what {} needs {} for and who approved it; revoke it if nobody owns the request",
                    if e.kind == ActorKind::Human {
                        e.actor.clone()
                    } else {
                        format!("the owner of {}", e.actor)
                    },
                    e.system,
                    tool_name(e)
                )),
            );
        }
        Ok(findings)
    }
}

register_incremental_detector!(ToolGrant);

fn tool_name(e: &Grant) -> String {
    quoted(&e.name, 30)
}

#[cfg(test)]
mod tests {
    use super::ToolGrant;
    use plumbline_sdk::testing::feed;

    plumbline_sdk::testing::incremental_fixture_tests!(ToolGrant);

    /// Many risky tools under huge names: the answer stays under the host's 100 findings,
    /// the newest kept.
    #[test]
    fn state_stays_bounded() {
        let f = feed::load(FIXTURES, "positive-agent-grants-itself-shell.json");
        let found = feed::flood::<ToolGrant>(&f, "assistant:g4", 300);
        feed::newest_kept(&found);
    }
}
