//! Instructions arrive in fetched content and the agent follows them: the response of a
//! web fetch, an MCP call, a shell download (`curl …`) or a read of a file the session
//! downloaded holds prompt-injection phrases ("ignore previous instructions", "you are
//! now", "run the following command", "send … to https://…", "do not tell the user", or
//! instructions hidden in an HTML comment), and a sensitive action follows in the session:
//! a secret read, egress to a host that is not the company's, code from such a host run, a
//! push, a CI change. Urgent when the action echoes the fetched text (a host or a command
//! line it names), else needs review. Injection phrases with no sensitive action after
//! them are silent: reading a page is not following it.
//! Read on actor trajectories (one agent session).

use plumbline_sdk::kit::agent::{self, Call, SecretPaths, Sensitive};
use plumbline_sdk::kit::text::{self, Phrase};
use plumbline_sdk::*;

const SIGNAL: &str = "agent.injected_instructions";

const PATTERNS: &str = "ignore (all|any)? (the)? (previous|prior|above|earlier|preceding) instruct*|rules|directions|prompts; disregard ~ (previous|prior|above|earlier) instruct*|rules; you are now; new instructions; (run|execute) the following command*; (run|execute) this command; (send|post|upload|forward) ~ (to|at) ~ http|https; do not|don't|never (tell|inform|mention|alert) ~ user*; without (telling|informing) ~ user*";
/// Words that make an HTML comment an instruction rather than markup notes.
const HIDDEN_WORDS: &str =
    "ignore,run,execute,curl,wget,send,assistant,agent,ai,llm,claude,codex,instruction*";

#[derive(Default)]
pub struct InjectedInstructions;

impl Detector for InjectedInstructions {
    fn info() -> Info {
        let info = Info::new(
            "coding-agent.injected-instructions",
            "0.1.0",
            "Fetched content carries prompt-injection phrases and the agent then does something sensitive",
        )
        .actions(&["agent.tool.*"])
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL])
        .config("injection_patterns", PATTERNS, "Prompt-injection phrases (`;`-separated; syntax in kit/src/text.rs)")
        .config("hidden_comment_words", HIDDEN_WORDS, "Words that make an HTML comment in fetched content an instruction (comma-separated, `*` = prefix)");
        let info = agent::declare_sensitive(info);
        destination::declare(info)
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let lists = cx.settings::<Destinations>()?;
        let secrets = cx.settings::<SecretPaths>()?;
        let ci_paths = cx.config_list("ci_paths");
        let patterns = text::phrases(&cx.config("injection_patterns").unwrap_or_default());
        let hidden = cx.config_list("hidden_comment_words");
        let calls = agent::calls(t);
        let mut downloaded: Vec<String> = Vec::new();
        let mut findings = Vec::new();
        for (i, call) in calls.iter().enumerate() {
            let fetched = fetched_content(call, &downloaded);
            if let Some(cmd) = call.command() {
                downloaded.extend(agent::downloads(cmd).into_iter().map(|(f, ..)| f));
            }
            let Some(content) = fetched else {
                continue;
            };
            let Some(phrase) = injection(content, &patterns, &hidden) else {
                continue;
            };
            let user = call.user();
            let outside = |h: &str| {
                lists.classify_from(h, user).map(|(_, c)| c) != Some(DestinationClass::Known)
            };
            // Every later sensitive call is judged; one that echoes the text wins, and a
            // pending one (the last event) stands for its kind, so that the finding cites
            // the call about to run.
            let mut first: Option<(&Call, Sensitive)> = None;
            let mut echoed: Option<(&Call, Sensitive)> = None;
            for later in &calls[i + 1..] {
                let found = agent::sensitive(later, &secrets, &ci_paths, &outside);
                // What the call sent or ran tells more than the read it also did.
                let Some(top) = found
                    .iter()
                    .find(|s| matches!(s, Sensitive::Egress(_) | Sensitive::DownloadExec(_)))
                    .or(found.first())
                else {
                    continue;
                };
                let echo = found.iter().any(|s| echoes(content, later, s));
                if echo && (echoed.is_none() || later.pending()) {
                    echoed = Some((later, top.clone()));
                }
                if first.is_none() || later.pending() {
                    first = Some((later, top.clone()));
                }
            }
            let (urgent, (action, what)) = match (echoed, first) {
                (Some(e), _) => (true, e),
                (None, Some(f)) => (false, f),
                (None, None) => continue,
            };
            findings.push(finding(call, &phrase, action, &what, urgent));
        }
        Ok(findings)
    }
}

/// What a call brought in from outside: a fetch's or MCP call's response, a shell
/// download's output, or the text of a file the session downloaded.
fn fetched_content<'a>(call: &Call<'a>, downloaded: &[String]) -> Option<&'a str> {
    let outside = call.is(agent::WEB_FETCH)
        || call.is(agent::MCP)
        || (call.is(agent::SHELL) && !agent::egress(call).is_empty())
        || (call.is(agent::FILE_READ)
            && call
                .path()
                .is_some_and(|p| downloaded.contains(&agent::shell::basename(p))));
    outside.then(|| call.output()).flatten()
}

/// The injection phrase in `content`, if any (a hidden comment counts when it instructs).
fn injection(content: &str, patterns: &[Phrase], hidden: &[String]) -> Option<String> {
    for sentence in text::sentences(content) {
        let words = text::words(sentence);
        if patterns.iter().any(|p| p.find(&words).is_some()) {
            return Some(agent::short(sentence, 70));
        }
    }
    text::html_comments(content)
        .into_iter()
        .find(|c| text::has_word(c, hidden))
        .map(|c| format!("hidden comment: {}", agent::short(c, 60)))
}

/// Whether the action repeats what the fetched text named: its host, or its command line.
fn echoes(content: &str, call: &Call, s: &Sensitive) -> bool {
    let host = match s {
        Sensitive::Egress(e) => Some(e.host.as_str()),
        Sensitive::DownloadExec(d) => Some(d.host.as_str()),
        _ => None,
    };
    if host.is_some_and(|h| content.contains(h)) {
        return true;
    }
    let cmd = call.command().unwrap_or("").trim();
    cmd.len() >= 8 && content.contains(cmd)
}

fn finding(source: &Call, phrase: &str, action: &Call, what: &Sensitive, urgent: bool) -> Finding {
    let from = source
        .attr_str("url")
        .or_else(|| source.attr_str("mcp.server"))
        .or_else(|| source.path())
        .or_else(|| source.command())
        .unwrap_or("a tool");
    let (severity, score, how) = if urgent {
        (Severity::Urgent, 0.9, "as it said: ")
    } else {
        (Severity::NeedsReview, 0.6, "then ")
    };
    let pending = if action.pending() {
        "Deny the pending call. "
    } else {
        ""
    };
    Finding::new(
        SIGNAL,
        severity,
        title(format!(
            "{} read instructions in {} ({}), {how}{}",
            source.who(),
            agent::short(from, 60),
            quoted(phrase, 60),
            what.describe()
        )),
    )
    .evidence(agent::evidence(&[source, action]))
    .score(score)
    .next_step(format!(
        "{pending}Treat session {} as steered by {}: undo what it did after reading it (rotate anything it read, revert pushes and CI changes) and tell {} not to let the agent act on fetched content unattended",
        source.session(),
        agent::short(from, 60),
        source.user()
    ))
}

register_detector!(InjectedInstructions);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::InjectedInstructions>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::InjectedInstructions>(FIXTURES);
    }
}
