//! An AI assistant gains a risky tool: code execution, reading CRM / tickets / databases
//! (an export path), or outbound HTTP. Each grant needs review; a production assistant
//! that can now both read customer data and send it anywhere (or run code) is urgent, as
//! is an AI agent granting tools to itself.
//!
//! Tools on `approved_tools`, and outbound tools whose host is allow-listed, do not count.
//! Read on system trajectories (one assistant's configuration history).

use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

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

#[derive(Default)]
pub struct ToolGrant;

impl Detector for ToolGrant {
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

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
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

        let mut grants: Vec<(&Event, Vec<Kind>)> = Vec::new();
        for e in t.with_action(GRANT) {
            if policy.is_ignored_environment(e) || policy.is_planned(e) {
                continue;
            }
            let name = attr_text(e, &["tool", "tool.name"]).unwrap_or(&e.resource);
            if approved.iter().any(|p| glob::matches(p, name)) {
                continue;
            }
            let mut words: Vec<String> = vec![name.to_string()];
            words.extend(attr_list(e, "tool.permissions"));
            words.extend(attr_text(e, &["tool.scope"]).map(String::from));
            let any = |list: &[String]| {
                words
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
            let host_known = attr_text(e, &["tool.host"])
                .or(e.destination.as_deref())
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
        let combo: Vec<&Event> =
            if !readers.is_empty() && (!senders.is_empty() || !runners.is_empty()) {
                let mut v: Vec<&Event> = readers
                    .iter()
                    .chain(&senders)
                    .chain(&runners)
                    .copied()
                    .collect();
                v.sort_by_key(|e| (e.time, e.id.as_str()));
                v.dedup_by_key(|e| e.id.as_str());
                v
            } else {
                Vec::new()
            };
        if let Some(last) = combo.last() {
            let urgent = combo.iter().any(|e| urgent_envs.contains(&e.environment));
            let assistant = attr_text(last, &["assistant.name", "assistant.id"]).unwrap_or(&t.key);
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
                        t.key,
                        combo.iter().map(|e| tool_name(e)).collect::<Vec<_>>().join(", ")
                    )),
                )
                .evidence(combo.iter().copied())
                .score(0.9)
                .next_step(format!(
                    "Revoke {} from {} until its owner shows the data flow was approved; check recent tool calls for customer data sent out",
                    tool_name(senders.first().or(runners.first()).unwrap_or(last)),
                    t.key
                )),
            );
        }
        for (e, kinds) in &grants {
            if combo.iter().any(|c| c.id == e.id) {
                continue;
            }
            let self_granted = e.actor.kind == ActorKind::AiAgent;
            let labels: Vec<&str> = kinds.iter().map(|k| k.label()).collect();
            let severity = if self_granted && urgent_envs.contains(&e.environment) {
                Severity::Urgent
            } else {
                Severity::NeedsReview
            };
            let by = if self_granted {
                format!("AI agent {}", e.actor.id)
            } else {
                e.actor.id.clone()
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
                .evidence([*e])
                .score(if self_granted { 0.85 } else { 0.6 })
                .next_step(format!(
                    "Ask {} what {} needs {} for and who approved it; revoke it if nobody owns the request",
                    if e.actor.kind == ActorKind::Human {
                        e.actor.id.clone()
                    } else {
                        format!("the owner of {}", e.actor.id)
                    },
                    e.system,
                    tool_name(e)
                )),
            );
        }
        Ok(findings)
    }
}

register_detector!(ToolGrant);

fn tool_name(e: &Event) -> String {
    quoted(
        attr_text(e, &["tool", "tool.name"]).unwrap_or(&e.resource),
        30,
    )
}

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::ToolGrant>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::ToolGrant>(FIXTURES);
    }
}
