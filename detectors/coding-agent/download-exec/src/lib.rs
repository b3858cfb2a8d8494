//! A coding agent downloads code and runs it: `curl … | sh`, `wget -qO- … | bash`,
//! `bash <(curl …)`, `sh -c "$(curl …)"`, `python -c "$(curl …)"`, `iwr … | iex`, or a
//! download saved to a file that the same or a later command runs (`curl -o x.sh … &&
//! chmod +x x.sh && ./x.sh`). From a host on no allow-list it is urgent: whoever controls
//! that host runs code with the developer's credentials. From a vetted installer
//! (`installer_hosts`: rustup, pnpm, NodeSource, …) or the company's own domains it is
//! informational. Listing files or saving a download without running it is silent.
//! Read on actor trajectories (one agent session).
//!
//! Incremental (`plumbline:detector@0.2.0`): the state is the shell calls that download
//! and run code, save a download, or run a file saved by one of those (what each fetched,
//! saved and ran, its line shortened, whose it was), and the pending calls — not the
//! events (`kit::agent::memo`).

use std::collections::BTreeSet;

use plumbline_sdk::kit::agent::{self, DownloadExec, Memo, Remembered};
use plumbline_sdk::*;

const SIGNAL: &str = "agent.download_exec";

/// Install scripts the vendors publish for piping into a shell. An entry with a `/` is a
/// URL prefix (scheme left out): the host alone serves anyone's files.
const INSTALLERS: &str = "sh.rustup.rs,static.rust-lang.org,get.pnpm.io,deb.nodesource.com,rpm.nodesource.com,bun.sh,deno.land,astral.sh,install.python-poetry.org,get.docker.com,sdk.cloud.google.com,cli.github.com,get.helm.sh,fnm.vercel.app,starship.rs,get.sdkman.io,raw.githubusercontent.com/Homebrew/install/,raw.githubusercontent.com/nvm-sh/nvm/";

#[derive(Default)]
pub struct DownloadExecDetector;

/// What the detector remembers of a session: the shell calls that fetch or run code.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    calls: Vec<Memo<Line>>,
}

/// One shell call: what it downloaded and ran (url, host, how), what it saved (file
/// name, url, host), the files it ran by name, its line (shortened) and whose it was.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Line {
    execs: Vec<(String, String, String)>,
    saves: Vec<(String, String, String)>,
    runs: Vec<String>,
    line: String,
    who: String,
    user: String,
}

impl IncrementalDetector for DownloadExecDetector {
    type State = Seen;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Destinations>()?;
        Ok(())
    }

    fn info() -> Info {
        let info = Info::new(
            "coding-agent.download-exec",
            "0.1.0",
            "A coding agent downloads code and runs it, from a host that is not a vetted installer",
        )
        .actions(&[agent::SHELL])
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL])
        .config(
            "installer_hosts",
            INSTALLERS,
            "Vetted installers (comma-separated): a domain (covers subdomains) or a URL prefix without the scheme (`raw.githubusercontent.com/Homebrew/install/`)",
        );
        destination::declare(info)
    }

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let lists = cx.settings::<Destinations>()?;
        let installers = cx.config_list("installer_hosts");
        let vetted = |d: &DownloadExec, user: &str| {
            let url = d.url.split_once("://").map_or(d.url.as_str(), |(_, r)| r);
            let listed = installers.iter().any(|i| match i.contains('/') {
                true => url.starts_with(i.as_str()),
                false => destination::domain_matches(i, &d.host),
            });
            let own =
                lists.classify_from(&d.host, user).map(|(_, c)| c) == Some(DestinationClass::Known);
            listed || own
        };
        let w = cx
            .window()
            .map_or((0, 0, i64::MIN), |w| (w.len, w.dropped, w.start));
        let read = |start, count| cx.history(start, count);
        let history = agent::History::new(w.0, w.1, w.2, &read);
        agent::remember(&mut seen.calls, new_events, &history, |call| {
            let cmd = call.command()?;
            let line = Line {
                execs: agent::download_exec(cmd)
                    .into_iter()
                    .map(|d| (d.url, d.host, d.how))
                    .collect(),
                saves: agent::downloads(cmd),
                runs: agent::files_run_by(cmd),
                line: agent::short(cmd, 90),
                who: call.who(),
                user: call.user().to_string(),
            };
            let some = !(line.execs.is_empty() && line.saves.is_empty() && line.runs.is_empty());
            some.then_some(line)
        });
        // A call that only runs files is kept while it runs one a kept call saved (most
        // runs are the project's own scripts). A download that arrives late, older than a
        // run already dropped, is not matched to it.
        let saved: BTreeSet<String> = seen
            .calls
            .iter()
            .filter_map(|m| m.facts())
            .flat_map(|l| l.saves.iter().map(|(file, ..)| file.clone()))
            .collect();
        seen.calls.retain(|m| {
            m.pending()
                || m.facts().is_none_or(|l| {
                    !l.execs.is_empty()
                        || !l.saves.is_empty()
                        || l.runs.iter().any(|f| saved.contains(f))
                })
        });
        let mut findings = Vec::new();
        // Files saved by earlier calls: (file name, what was downloaded, the call).
        let mut saved: Vec<(&str, DownloadExec, &Memo<Line>)> = Vec::new();
        for m in &seen.calls {
            let Some(l) = m.facts() else {
                continue;
            };
            let mut runs: Vec<(DownloadExec, Vec<&Memo<Line>>)> = l
                .execs
                .iter()
                .map(|(url, host, how)| (exec(url, host, how), vec![m]))
                .collect();
            for (file, d, at) in &saved {
                if l.runs.iter().any(|f| f == file) && !runs.iter().any(|(r, _)| r.url == d.url) {
                    let mut d = d.clone();
                    d.how = format!("saved to {file}, then run");
                    runs.push((d, vec![*at, m]));
                }
            }
            for (d, cited) in runs {
                findings.push(finding(&d, &cited, l, vetted(&d, &l.user)));
            }
            for (file, url, host) in &l.saves {
                saved.retain(|(f, ..)| f != file);
                saved.push((file, exec(url, host, ""), m));
            }
        }
        // A saved download stays: a run that comes next cites it.
        agent::forget_over(&mut seen.calls, &findings, |m| {
            m.facts().is_some_and(|l| !l.saves.is_empty())
        });
        Ok(findings)
    }
}

fn exec(url: &str, host: &str, how: &str) -> DownloadExec {
    DownloadExec {
        url: url.to_string(),
        host: host.to_string(),
        how: how.to_string(),
    }
}

/// The finding on `d`, run by the last of `cited`, whose line is `l`.
fn finding(d: &DownloadExec, cited: &[&Memo<Line>], l: &Line, vetted: bool) -> Finding {
    let last = cited[cited.len() - 1];
    let Line { line, who, .. } = l;
    if vetted {
        return Finding::new(
            SIGNAL,
            Severity::Informational,
            title(format!(
                "{who} ran an installer from {} ({}): {line}",
                d.host, d.how
            )),
        )
        .evidence_ids(agent::cite(cited))
        .score(0.2)
        .next_step(format!(
            "Nothing to do if installing from {} was part of the task; note what it installed",
            d.host
        ));
    }
    let pending = if last.pending() {
        "Deny the pending call. "
    } else {
        ""
    };
    Finding::new(
        SIGNAL,
        Severity::Urgent,
        title(format!("{who} downloaded and ran code from {} ({}): {line}", d.host, d.how)),
    )
    .evidence_ids(agent::cite(cited))
    .score(0.9)
    .next_step(format!(
        "{pending}Fetch {} yourself and read what it ran; until then treat the machine and the credentials it holds as exposed. Add the host to installer_hosts if it is a vetted installer",
        d.url
    ))
}

register_incremental_detector!(DownloadExecDetector);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_incremental_fixtures::<super::DownloadExecDetector>(FIXTURES);
    }
}
