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
//!
//! Incremental (`plumbline:detector@0.2.0`): the state is the calls whose fetched content
//! holds an injection phrase (the phrase, where from, whose), the calls that download
//! files, the sensitive calls (what, and which of those contents each echoes) and the
//! pending calls — not the events (`kit::agent::memo`). A content is read back through
//! history only when a sensitive call may echo it.

use std::collections::BTreeSet;

use plumbline_sdk::kit::agent::{self, Call, Memo, Remembered, SecretPaths, Sensitive};
use plumbline_sdk::kit::text::{self, Phrase};
use plumbline_sdk::*;

const SIGNAL: &str = "agent.injected_instructions";

const PATTERNS: &str = "ignore (all|any)? (the)? (previous|prior|above|earlier|preceding) instruct*|rules|directions|prompts; disregard ~ (previous|prior|above|earlier) instruct*|rules; you are now; new instructions; (run|execute) the following command*; (run|execute) this command; (send|post|upload|forward) ~ (to|at) ~ http|https; do not|don't|never (tell|inform|mention|alert) ~ user*; without (telling|informing) ~ user*";
/// Words that make an HTML comment an instruction rather than markup notes.
const HIDDEN_WORDS: &str =
    "ignore,run,execute,curl,wget,send,assistant,agent,ai,llm,claude,codex,instruction*";

#[derive(Default)]
pub struct InjectedInstructions;

/// What the detector remembers of a session.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    calls: Vec<Memo<Tool>>,
}

/// One tool call: the injection in what it brought in, the files it downloaded (names),
/// the sensitive thing it did.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Tool {
    source: Option<Source>,
    downloads: Vec<String>,
    act: Option<Act>,
    /// This call's own: the content with the phrase, and what an echo of a content is
    /// judged on (filled when the call is judged, never kept).
    #[serde(skip)]
    content: Option<String>,
    #[serde(skip)]
    echo: Option<Echo>,
}

/// Content brought in with an injection phrase: the phrase, the file's name when it is a
/// read of a file (it counts only if the session downloaded that file), where it came
/// from (shortened), whose call it was.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Source {
    phrase: String,
    read: Option<String>,
    from: String,
    who: String,
    user: String,
    session: String,
}

/// A sensitive call: what it did (described), and the keys of the calls with injected
/// content it echoes (a host or its command line named there).
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Act {
    what: String,
    echoes: Vec<String>,
}

/// What an echo of a content is judged on: the hosts a sensitive call sent to or ran
/// code from, and its command line.
#[derive(Debug, Default)]
struct Echo {
    hosts: Vec<String>,
    command: String,
}

impl Echo {
    /// Whether `content` named what the call did: one of its hosts, or its command line.
    fn of(&self, content: &str) -> bool {
        self.hosts.iter().any(|h| content.contains(h.as_str()))
            || (self.command.len() >= 8 && content.contains(&self.command))
    }
}

impl IncrementalDetector for InjectedInstructions {
    type State = Seen;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Destinations>()?;
        cx.settings::<SecretPaths>()?;
        Ok(())
    }

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

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let lists = cx.settings::<Destinations>()?;
        let secrets = cx.settings::<SecretPaths>()?;
        let ci_paths = cx.config_list("ci_paths");
        let patterns = text::phrases(&cx.config("injection_patterns").unwrap_or_default());
        let hidden = cx.config_list("hidden_comment_words");
        // What a call did that is sensitive, judged for the call's own person (the
        // session's, as the content's reader).
        let sensitive = |call: &Call| -> Option<(Act, Echo)> {
            let user = call.user();
            let outside = |h: &str| {
                lists.classify_from(h, user).map(|(_, c)| c) != Some(DestinationClass::Known)
            };
            let found = agent::sensitive(call, &secrets, &ci_paths, &outside);
            // What the call sent or ran tells more than the read it also did.
            let top = found
                .iter()
                .find(|s| matches!(s, Sensitive::Egress(_) | Sensitive::DownloadExec(_)))
                .or(found.first())?;
            let hosts = found
                .iter()
                .filter_map(|s| match s {
                    Sensitive::Egress(e) => Some(e.host.clone()),
                    Sensitive::DownloadExec(d) => Some(d.host.clone()),
                    _ => None,
                })
                .collect();
            let act = Act {
                what: top.describe(),
                echoes: Vec::new(),
            };
            let command = call.command().unwrap_or("").trim().to_string();
            Some((act, Echo { hosts, command }))
        };
        let w = cx
            .window()
            .map_or((0, 0, i64::MIN), |w| (w.len, w.dropped, w.start));
        let read = |start, count| cx.history(start, count);
        let history = agent::History::new(w.0, w.1, w.2, &read);
        let judged: BTreeSet<String> =
            agent::remember(&mut seen.calls, new_events, &history, |call| {
                let (content, read) = brought_in(call);
                let source = content
                    .and_then(|c| injection(c, &patterns, &hidden))
                    .map(|phrase| Source {
                        phrase,
                        read,
                        from: agent::short(origin(call), 60),
                        who: call.who(),
                        user: call.user().to_string(),
                        session: call.session().to_string(),
                    });
                let downloads: Vec<String> = call
                    .command()
                    .map(|c| agent::downloads(c).into_iter().map(|(f, ..)| f).collect())
                    .unwrap_or_default();
                let (act, echo) = sensitive(call).unzip();
                let some = source.is_some() || !downloads.is_empty() || act.is_some();
                some.then(|| Tool {
                    content: source.as_ref().and(content).map(String::from),
                    source,
                    downloads,
                    act,
                    echo,
                })
            })
            .into_iter()
            .collect();
        let sources = sources(&seen.calls);
        echo_judged(&mut seen.calls, &judged, &sources, &history, &sensitive);
        let calls: Vec<(&Memo<Tool>, &Tool)> = seen
            .calls
            .iter()
            .filter_map(|m| m.facts().map(|t| (m, t)))
            .collect();
        let mut findings = Vec::new();
        for (i, &(m, t)) in calls.iter().enumerate() {
            let Some(source) = t.source.as_ref().filter(|_| sources.contains(m.key())) else {
                continue;
            };
            // Every later sensitive call is judged; one that echoes the text wins, and a
            // pending one (the last event) stands for its kind, so that the finding cites
            // the call about to run.
            let mut first: Option<(&Memo<Tool>, &str)> = None;
            let mut echoed: Option<(&Memo<Tool>, &str)> = None;
            for &(later, lt) in &calls[i + 1..] {
                let Some(act) = &lt.act else {
                    continue;
                };
                let echo = act.echoes.iter().any(|k| k == m.key());
                if echo && (echoed.is_none() || later.pending()) {
                    echoed = Some((later, &act.what));
                }
                if first.is_none() || later.pending() {
                    first = Some((later, &act.what));
                }
            }
            let (urgent, (action, what)) = match (echoed, first) {
                (Some(e), _) => (true, e),
                (None, Some(f)) => (false, f),
                (None, None) => continue,
            };
            findings.push(finding((m, source), action, what, urgent));
        }
        agent::forget_over(&mut seen.calls, &findings, |m| {
            sources.contains(m.key()) || m.facts().is_some_and(|t| !t.downloads.is_empty())
        });
        Ok(findings)
    }
}

/// The keys of the calls whose content counts as brought in from outside and holds an
/// injection phrase: a read of a file counts only once an earlier call downloaded it.
fn sources(calls: &[Memo<Tool>]) -> BTreeSet<String> {
    let mut downloaded: Vec<&str> = Vec::new();
    let mut out = BTreeSet::new();
    for m in calls {
        let Some(t) = m.facts() else {
            continue;
        };
        if let Some(s) = &t.source {
            if s.read.as_deref().is_none_or(|f| downloaded.contains(&f)) {
                out.insert(m.key().to_string());
            }
        }
        downloaded.extend(t.downloads.iter().map(String::as_str));
    }
    out
}

/// Which contents each sensitive call echoes, for the calls judged in this call: a
/// judged sensitive call against every content before it, a judged content against every
/// sensitive call after it. The side not judged now is read back through history (a
/// content only when a sensitive call after it was judged now).
fn echo_judged(
    calls: &mut [Memo<Tool>],
    judged: &BTreeSet<String>,
    sources: &BTreeSet<String>,
    history: &agent::History,
    sensitive: &dyn Fn(&Call) -> Option<(Act, Echo)>,
) {
    let judged_act =
        |m: &Memo<Tool>| judged.contains(m.key()) && m.facts().is_some_and(|t| t.act.is_some());
    let last_judged_act = calls.iter().rposition(judged_act);
    // Every content that counts: its place, its call's key, the text, judged now.
    let mut contents: Vec<Content> = Vec::new();
    for (i, m) in calls.iter().enumerate() {
        if !sources.contains(m.key()) {
            continue;
        }
        let now = judged.contains(m.key());
        let text = if now {
            m.facts().and_then(|t| t.content.clone())
        } else if last_judged_act.is_some_and(|j| j > i) {
            // Its content is what it returned (it counts: [`sources`]).
            let events = history.recall(m.steps());
            let call = Call {
                events: events.iter().collect(),
            };
            call.output().map(String::from)
        } else {
            None
        };
        contents.push((i, m.key(), text, now));
    }
    let mut updates: Vec<(usize, Vec<String>)> = Vec::new();
    for (j, m) in calls.iter().enumerate() {
        let Some(Tool {
            act: Some(act),
            echo,
            ..
        }) = m.facts()
        else {
            continue;
        };
        let before: Vec<&Content> = contents.iter().filter(|c| c.0 < j).collect();
        let echoes = if judged.contains(m.key()) {
            echoed(echo.as_ref().unwrap_or(&Echo::default()), &before)
        } else {
            let fresh: Vec<&Content> = before.into_iter().filter(|c| c.3).collect();
            if fresh.is_empty() {
                continue;
            }
            let mut kept: Vec<String> = act
                .echoes
                .iter()
                .filter(|k| sources.contains(*k) && !fresh.iter().any(|c| c.1 == *k))
                .cloned()
                .collect();
            let events = history.recall(m.steps());
            let call = Call {
                events: events.iter().collect(),
            };
            if let Some((_, echo)) = sensitive(&call) {
                kept.extend(echoed(&echo, &fresh));
            }
            kept
        };
        updates.push((j, echoes));
    }
    for (j, echoes) in updates {
        if let Some(Tool { act: Some(act), .. }) = calls[j].2.as_mut() {
            act.echoes = echoes;
        }
    }
}

/// A content that counts: its call's place among the calls, its key, the text (when
/// read), whether its call was judged in this call.
type Content<'a> = (usize, &'a str, Option<String>, bool);

/// The keys of the `contents` that `echo` repeats.
fn echoed(echo: &Echo, contents: &[&Content]) -> Vec<String> {
    contents
        .iter()
        .filter(|c| c.2.as_deref().is_some_and(|text| echo.of(text)))
        .map(|c| c.1.to_string())
        .collect()
}

/// What a call brought in that may come from outside — a fetch's or MCP call's response,
/// a shell download's output, or the text of a file read — and, for a file read, the
/// file's name (it counts only if the session downloaded that file).
fn brought_in<'a>(call: &Call<'a>) -> (Option<&'a str>, Option<String>) {
    let read = call
        .is(agent::FILE_READ)
        .then(|| call.path().map(agent::shell::basename))
        .flatten();
    let outside = call.is(agent::WEB_FETCH)
        || call.is(agent::MCP)
        || (call.is(agent::SHELL) && !agent::egress(call).is_empty());
    let content = (outside || read.is_some()).then(|| call.output()).flatten();
    (content, read)
}

/// Where a call's content came from, for titles: its URL, MCP server, file or command.
fn origin<'a>(call: &Call<'a>) -> &'a str {
    call.attr_str("url")
        .or_else(|| call.attr_str("mcp.server"))
        .or_else(|| call.path())
        .or_else(|| call.command())
        .unwrap_or("a tool")
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

fn finding(
    (m, source): (&Memo<Tool>, &Source),
    action: &Memo<Tool>,
    what: &str,
    urgent: bool,
) -> Finding {
    let Source {
        phrase,
        from,
        who,
        user,
        session,
        ..
    } = source;
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
            "{who} read instructions in {from} ({}), {how}{what}",
            quoted(phrase, 60),
        )),
    )
    .evidence_ids(agent::cite(&[m, action]))
    .score(score)
    .next_step(format!(
        "{pending}Treat session {session} as steered by {from}: undo what it did after reading it (rotate anything it read, revert pushes and CI changes) and tell {user} not to let the agent act on fetched content unattended"
    ))
}

register_incremental_detector!(InjectedInstructions);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_incremental_fixtures::<super::InjectedInstructions>(FIXTURES);
    }
}
