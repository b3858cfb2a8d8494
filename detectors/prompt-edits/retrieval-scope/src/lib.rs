//! Retrieval scope creep: an AI assistant gets a knowledge source that holds personal data
//! or contracts (a CRM export, an HR drive, a contracts folder). Needs review; urgent in
//! production when the same assistant can also send data out (an outbound tool granted in
//! the same trajectory), because then anyone who can talk to it can extract the data.
//!
//! Sources on `approved_sources` do not count. Read on system trajectories.

use plumbline_sdk::kit::text::has_word;
use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const SIGNAL: &str = "prompt.sensitive_retrieval_added";

#[derive(Default)]
pub struct RetrievalScope;

impl Detector for RetrievalScope {
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

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let markers = cx.config_list("sensitive_markers");
        let approved = cx.config_list("approved_sources");
        let outbound = cx.config_list("outbound_tools");
        let urgent_envs: Vec<Environment> = cx
            .config_list("urgent_environments")
            .iter()
            .filter_map(|n| plumbline_sdk::kit::policy::environment(n))
            .collect();
        let policy = cx.settings::<Policy>()?;
        let senders: Vec<&Event> = t
            .with_action("assistant.tool.granted")
            .filter(|e| {
                let mut names = vec![attr_text(e, &["tool", "tool.name"])
                    .unwrap_or(&e.resource)
                    .to_string()];
                names.extend(attr_list(e, "tool.permissions"));
                names.iter().any(|n| {
                    outbound
                        .iter()
                        .any(|p| glob::matches_ignore_ascii_case(p, n))
                })
            })
            .collect();

        let mut findings = Vec::new();
        for e in t.with_action("assistant.retrieval.added") {
            if policy.is_ignored_environment(e) || policy.is_planned(e) {
                continue;
            }
            let source = attr_text(e, &["retrieval.source"]).unwrap_or(&e.resource);
            if approved.iter().any(|p| glob::matches(p, source)) {
                continue;
            }
            let labels = [
                source,
                attr_text(e, &["retrieval.kind"]).unwrap_or(""),
                attr_text(e, &["retrieval.name", "classification"]).unwrap_or(""),
            ];
            if !labels
                .iter()
                .any(|l| !l.is_empty() && has_word(l, &markers))
            {
                continue;
            }
            let can_send = !senders.is_empty() && urgent_envs.contains(&e.environment);
            let assistant = attr_text(e, &["assistant.name", "assistant.id"]).unwrap_or(&e.system);
            let mut evidence = vec![e];
            let (severity, score, tail) = if can_send {
                evidence.extend(senders.iter().copied());
                (
                    Severity::Urgent,
                    0.9,
                    format!(
                        " and can send data out ({})",
                        senders
                            .iter()
                            .map(|s| attr_text(s, &["tool"]).unwrap_or(&s.resource).to_string())
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
                        quoted(assistant, 40),
                        quoted(source, 60),
                        e.actor.id
                    )),
                )
                .evidence(evidence)
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

register_detector!(RetrievalScope);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::RetrievalScope>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::RetrievalScope>(FIXTURES);
    }
}
