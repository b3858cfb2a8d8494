//! Retrieval scope creep: an AI assistant gets a knowledge source that holds personal data
//! or contracts (a CRM export, an HR drive, a contracts folder). Needs review; urgent in
//! production when the same assistant can also send data out (an outbound tool granted in
//! the same trajectory), because then anyone who can talk to it can extract the data.
//!
//! Sources on `approved_sources` do not count. Read on system trajectories.
//!
//! Incremental (`plumbline:detector@0.2.0`): the state holds one summary per retrieval
//! source added and per tool granted (id, time, names — not the events), judged again on
//! every call.

use plumbline_sdk::kit::text::has_word;
use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

use plumbline_sdk::kept::{self, text};

const SIGNAL: &str = "prompt.sensitive_retrieval_added";

/// Most sources and tools kept, the oldest dropped first: one finding per source at most,
/// and the host takes at most 100 findings per answer by default.
const MAX_KEPT: usize = 100;

/// What the detector remembers of a trajectory, each list in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    sources: Vec<Source>,
    tools: Vec<Tool>,
}

/// A retrieval source added: what its finding needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Source {
    t: i64,
    id: String,
    /// Who added it (planned work, the title).
    actor: String,
    env: Environment,
    system: String,
    assistant: String,
    source: String,
    /// Its kind, and its name or classification (what else may mark it sensitive).
    kind: String,
    label: String,
}

/// A tool granted: its name and permissions (what may make it outbound) and how it reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Tool {
    t: i64,
    id: String,
    names: Vec<String>,
    shown: String,
}

kept::record!(Source, Tool);

impl Source {
    fn of(e: &Event) -> Source {
        Source {
            t: e.time,
            id: e.id.clone(),
            actor: text(&e.actor.id),
            env: e.environment,
            system: text(&e.system),
            assistant: text(attr_text(e, &["assistant.name", "assistant.id"]).unwrap_or(&e.system)),
            source: text(attr_text(e, &["retrieval.source"]).unwrap_or(&e.resource)),
            kind: text(attr_text(e, &["retrieval.kind"]).unwrap_or("")),
            label: text(attr_text(e, &["retrieval.name", "classification"]).unwrap_or("")),
        }
    }
}

impl Tool {
    fn of(e: &Event) -> Tool {
        let mut names = vec![text(
            attr_text(e, &["tool", "tool.name"]).unwrap_or(&e.resource),
        )];
        names.extend(attr_list(e, "tool.permissions").iter().map(|p| text(p)));
        Tool {
            t: e.time,
            id: e.id.clone(),
            names,
            shown: text(attr_text(e, &["tool"]).unwrap_or(&e.resource)),
        }
    }
}

#[derive(Default)]
pub struct RetrievalScope;

impl IncrementalDetector for RetrievalScope {
    type State = Seen;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Policy>()?;
        Ok(())
    }

    fn info() -> Info {
        let info = Info::new(
            "prompt-edits.retrieval-scope",
            "0.1.0",
            "AI assistants gaining retrieval sources that hold personal data or contracts",
        )
        .actions(&["assistant.retrieval.added", "assistant.tool.granted"])
        .views(&[TrajectoryKind::System])
        .signals(&[SIGNAL])
        .config(
            "sensitive_markers",
            "pii,personal,customer*,client*,contact*,crm,contract*,legal,nda*,hr,people,personnel,employee*,payroll,salar*,compensation,medical,patient*,health*,ssn,passport*,finance*,invoice*,billing,tickets,support-tickets,gdpr,confidential,restricted",
            "Words in a source's name, path or kind that mark personal data or contracts",
        )
        .config(
            "approved_sources",
            "",
            "Retrieval sources approved for assistants (comma-separated globs)",
        )
        .config(
            "outbound_tools",
            "http*,fetch*,web_request*,web-request*,webhook*,requests*,curl*,browser*,url*,api_call*,*send_email*,*email_send*",
            "Tools (globs) that let the assistant send data out",
        )
        .config(
            "urgent_environments",
            "prod",
            "Environments where sensitive retrieval plus an outbound tool is urgent",
        );
        let info = keys::planned_work(info);
        keys::environments(info, "test")
    }

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let sources = new_events
            .iter()
            .filter(|e| e.is("assistant.retrieval.added"))
            .map(Source::of);
        let tools = new_events
            .iter()
            .filter(|e| e.is("assistant.tool.granted"))
            .map(Tool::of);
        kept::fold(&mut seen.sources, sources, MAX_KEPT, kept::BUDGET / 2);
        kept::fold(&mut seen.tools, tools, MAX_KEPT, kept::BUDGET / 2);
        kept::prune(&mut seen.sources, cx);
        kept::prune(&mut seen.tools, cx);

        let markers = cx.config_list("sensitive_markers");
        let approved = cx.config_list("approved_sources");
        let outbound = cx.config_list("outbound_tools");
        let urgent_envs: Vec<Environment> = cx
            .config_list("urgent_environments")
            .iter()
            .filter_map(|n| plumbline_sdk::kit::policy::environment(n))
            .collect();
        let policy = cx.settings::<Policy>()?;
        let senders: Vec<&Tool> = seen
            .tools
            .iter()
            .filter(|t| {
                t.names.iter().any(|n| {
                    outbound
                        .iter()
                        .any(|p| glob::matches_ignore_ascii_case(p, n))
                })
            })
            .collect();

        let mut findings = Vec::new();
        for e in &seen.sources {
            let planned = policy.is_service_account(&e.actor) && policy.windows.contains(e.t);
            if policy.ignore_environments.contains(&e.env) || planned {
                continue;
            }
            let source = e.source.as_str();
            if approved.iter().any(|p| glob::matches(p, source)) {
                continue;
            }
            let labels = [source, &e.kind, &e.label];
            if !labels
                .iter()
                .any(|l| !l.is_empty() && has_word(l, &markers))
            {
                continue;
            }
            let can_send = !senders.is_empty() && urgent_envs.contains(&e.env);
            let mut evidence = vec![e.id.clone()];
            let (severity, score, tail) = if can_send {
                evidence.extend(senders.iter().map(|s| s.id.clone()));
                (
                    Severity::Urgent,
                    0.9,
                    format!(
                        " and can send data out ({})",
                        senders
                            .iter()
                            .map(|s| s.shown.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            } else {
                (Severity::NeedsReview, 0.65, String::new())
            };
            findings.push(
                Finding::new(
                    SIGNAL,
                    severity,
                    title(format!(
                        "Assistant {} now retrieves from {}{tail}, added by {}",
                        quoted(&e.assistant, 40),
                        quoted(source, 60),
                        e.actor
                    )),
                )
                .evidence_ids(evidence)
                .score(score)
                .next_step(format!(
                    "Ask the data owner of {} to approve {} using it; remove the source (or restrict who can use the assistant) until they do",
                    quoted(source, 60),
                    e.system
                )),
            );
        }
        Ok(findings)
    }
}

register_incremental_detector!(RetrievalScope);

#[cfg(test)]
mod tests {
    use super::RetrievalScope;
    use plumbline_sdk::testing::feed;

    plumbline_sdk::testing::incremental_fixture_tests!(RetrievalScope);

    /// Many sensitive sources under huge names: the answer stays under the host's 100
    /// findings, the newest kept.
    #[test]
    fn state_stays_bounded() {
        let f = feed::load(FIXTURES, "positive-hr-contracts-source.json");
        let found = feed::flood::<RetrievalScope>(&f, "assistant:r1", 300);
        feed::newest_kept(&found);
    }
}
