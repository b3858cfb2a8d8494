//! A coding agent connects to an MCP server on a host nobody vetted: `claude mcp add …
//! https://…` (or `codex`/`gemini mcp add`), a server URL written into `.mcp.json`,
//! `mcp.json`, `.cursor/mcp.json`, `.vscode/mcp.json` or `~/.codex/config.toml`, or an
//! `agent.tool.mcp` call to a remote server first seen in the session. A remote MCP server
//! gets the agent's tool calls and can answer with instructions; one on a host that is
//! neither the company's (`known_domains`) nor a vetted vendor's (`mcp_hosts`) needs
//! review. Local (stdio, localhost) servers are silent.
//! Read on actor trajectories (one agent session).
//!
//! Incremental (`plumbline:detector@0.2.0`): the state is the calls that add or reach a
//! remote MCP server on a host nobody vetted (the hosts, how, whose it was) and the
//! pending calls — not the events (`kit::agent::memo`).

use std::collections::BTreeMap;

use plumbline_sdk::kit::agent::{self, Call, Memo, Remembered};
use plumbline_sdk::*;

const SIGNAL: &str = "agent.mcp_unknown_server";

const MCP_HOSTS: &str = "mcp.atlassian.com,api.githubcopilot.com,mcp.linear.app,mcp.sentry.dev,mcp.notion.com,mcp.stripe.com,mcp.supabase.com,mcp.asana.com,mcp.paypal.com,mcp.vercel.com,mcp.cloudflare.com,mcp.figma.com,mcp.neon.tech,mcp.context7.com";
const CONFIG_PATHS: &str = ".mcp.json,mcp.json,.cursor/mcp.json,.vscode/mcp.json,claude_desktop_config.json,.codex/config.toml,.gemini/settings.json,.claude.json";
const CLIS: [&str; 5] = ["claude", "codex", "gemini", "cursor-agent", "amp"];

#[derive(Default)]
pub struct McpUnknown;

/// What the detector remembers of a session: the calls that reach servers nobody vetted.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    calls: Vec<Memo<Servers>>,
}

/// One call's remote MCP servers on hosts nobody vetted, (host, how); whether the call is
/// an MCP call (a use, not an addition); whose it was.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Servers {
    hosts: Vec<(String, String)>,
    mcp: bool,
    who: String,
    session: String,
}

/// A call that shows a host: its memo and servers.
type Shown<'a> = (&'a Memo<Servers>, &'a Servers);

impl IncrementalDetector for McpUnknown {
    type State = Seen;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Destinations>()?;
        Ok(())
    }

    fn info() -> Info {
        let info = Info::new(
            "coding-agent.mcp-unknown",
            "0.1.0",
            "A coding agent adds or calls an MCP server on a host that is neither the company's nor a vetted vendor's",
        )
        .actions(&[agent::SHELL, agent::FILE_WRITE, agent::MCP])
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL])
        .config("mcp_hosts", MCP_HOSTS, "Vetted vendors' MCP hosts (comma-separated; a domain covers its subdomains)")
        .config("mcp_config_paths", CONFIG_PATHS, "Files that declare MCP servers (comma-separated; trailing path segments)");
        destination::declare(info)
    }

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let lists = cx.settings::<Destinations>()?;
        let vetted = cx.config_list("mcp_hosts");
        let config_paths = cx.config_list("mcp_config_paths");
        let w = cx
            .window()
            .map_or((0, 0, i64::MIN), |w| (w.len, w.dropped, w.start));
        let read = |start, count| cx.history(start, count);
        let history = agent::History::new(w.0, w.1, w.2, &read);
        agent::remember(&mut seen.calls, new_events, &history, |call| {
            let hosts: Vec<(String, String)> = servers(call, &config_paths)
                .into_iter()
                .filter(|(host, _)| {
                    let known = agent::is_local_host(host)
                        || vetted.iter().any(|v| destination::domain_matches(v, host))
                        || lists.classify_from(host, call.user()).map(|(_, c)| c)
                            == Some(DestinationClass::Known);
                    !known
                })
                .collect();
            (!hosts.is_empty()).then(|| Servers {
                hosts,
                mcp: call.is(agent::MCP),
                who: call.who(),
                session: call.session().to_string(),
            })
        });
        // Per unknown host: how it came in, and the calls that show it (added, first used).
        let mut hosts: BTreeMap<&str, (&str, Vec<Shown>)> = BTreeMap::new();
        for m in &seen.calls {
            let Some(s) = m.facts() else {
                continue;
            };
            for (host, how) in &s.hosts {
                let entry = hosts.entry(host).or_insert_with(|| (how, Vec::new()));
                // The call that added it and the first that used it; later calls add nothing.
                let used = entry.1.iter().any(|(_, c)| c.mcp);
                if entry.1.is_empty() || (s.mcp && !used) {
                    entry.1.push((m, s));
                }
            }
        }
        let findings: Vec<Finding> = hosts
            .into_iter()
            .map(|(host, (how, cited))| {
                let first = cited[0].1;
                let memos: Vec<&Memo<Servers>> = cited.iter().map(|(m, _)| *m).collect();
                Finding::new(
                    SIGNAL,
                    Severity::NeedsReview,
                    title(format!("{} {how} on {host}, a host nobody vetted", first.who)),
                )
                .evidence_ids(agent::cite(&memos))
                .score(0.6)
                .next_step(format!(
                    "Find out who runs {host} and what the server can do; remove it from the agent's MCP configuration unless it is approved (then add it to mcp_hosts), and review what session {} sent it",
                    first.session
                ))
            })
            .collect();
        agent::forget_over(&mut seen.calls, &findings, |_| false);
        Ok(findings)
    }
}

/// The remote MCP servers a call adds or reaches: (host, how).
fn servers(call: &Call, config_paths: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if call.is(agent::MCP) {
        let server = call.attr_str("mcp.server").unwrap_or("?");
        for e in agent::egress(call) {
            out.push((e.host, format!("called MCP server {server}")));
        }
        return out;
    }
    for s in call.simples() {
        let args = s.args();
        let adds = CLIS.contains(&s.program().as_str())
            && args.first().map(String::as_str) == Some("mcp")
            && args.get(1).is_some_and(|a| a.starts_with("add"));
        if adds {
            for h in args.iter().filter_map(|a| agent::url_host(a)) {
                out.push((
                    h,
                    format!("added an MCP server (`{}`)", agent::short(&s.text(), 60)),
                ));
            }
        }
    }
    for c in agent::file_changes(call) {
        if !agent::path_matches_any(&c.path, config_paths) {
            continue;
        }
        let added = agent::added_lines(
            c.old.as_deref().unwrap_or(""),
            c.content.as_deref().unwrap_or(""),
        );
        for line in added {
            for token in line.split(['"', '\'', ' ', ',']) {
                if token.contains("://") {
                    if let Some(h) = agent::url_host(token) {
                        out.push((h, format!("wrote an MCP server into {}", c.path)));
                    }
                }
            }
        }
    }
    out
}

register_incremental_detector!(McpUnknown);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_incremental_fixtures::<super::McpUnknown>(FIXTURES);
    }
}
