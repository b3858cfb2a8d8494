//! A coding agent downloads code and runs it: `curl … | sh`, `wget -qO- … | bash`,
//! `bash <(curl …)`, `sh -c "$(curl …)"`, `python -c "$(curl …)"`, `iwr … | iex`, or a
//! download saved to a file that the same or a later command runs (`curl -o x.sh … &&
//! chmod +x x.sh && ./x.sh`). From a host on no allow-list it is urgent: whoever controls
//! that host runs code with the developer's credentials. From a vetted installer
//! (`installer_hosts`: rustup, pnpm, NodeSource, …) or the company's own domains it is
//! informational. Listing files or saving a download without running it is silent.
//! Read on actor trajectories (one agent session).

use plumbline_sdk::kit::agent::{self, Call, DownloadExec};
use plumbline_sdk::*;

const SIGNAL: &str = "agent.download_exec";

/// Install scripts the vendors publish for piping into a shell. An entry with a `/` is a
/// URL prefix (scheme left out): the host alone serves anyone's files.
const INSTALLERS: &str = "sh.rustup.rs,static.rust-lang.org,get.pnpm.io,deb.nodesource.com,rpm.nodesource.com,bun.sh,deno.land,astral.sh,install.python-poetry.org,get.docker.com,sdk.cloud.google.com,cli.github.com,get.helm.sh,fnm.vercel.app,starship.rs,get.sdkman.io,raw.githubusercontent.com/Homebrew/install/,raw.githubusercontent.com/nvm-sh/nvm/";

#[derive(Default)]
pub struct DownloadExecDetector;

impl Detector for DownloadExecDetector {
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

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
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
        let calls = agent::calls(t);
        let mut findings = Vec::new();
        // Files saved by earlier calls: (file name, what was downloaded, call index).
        let mut saved: Vec<(String, DownloadExec, usize)> = Vec::new();
        for (i, call) in calls.iter().enumerate() {
            let Some(cmd) = call.command() else {
                continue;
            };
            let mut runs: Vec<(DownloadExec, Vec<&Call>)> = agent::download_exec(cmd)
                .into_iter()
                .map(|d| (d, vec![call]))
                .collect();
            for (file, d, at) in &saved {
                if agent::runs_download(cmd, file) && !runs.iter().any(|(r, _)| r.url == d.url) {
                    let mut d = d.clone();
                    d.how = format!("saved to {file}, then run");
                    runs.push((d, vec![&calls[*at], call]));
                }
            }
            for (d, cited) in runs {
                findings.push(finding(&d, &cited, vetted(&d, call.user()), cmd));
            }
            for (file, url, host) in agent::downloads(cmd) {
                let how = String::new();
                saved.retain(|(f, ..)| *f != file);
                saved.push((file, DownloadExec { url, host, how }, i));
            }
        }
        Ok(findings)
    }
}

fn finding(d: &DownloadExec, cited: &[&Call], vetted: bool, cmd: &str) -> Finding {
    let last = cited[cited.len() - 1];
    let who = last.who();
    let line = agent::short(cmd, 90);
    if vetted {
        return Finding::new(
            SIGNAL,
            Severity::Informational,
            title(format!(
                "{who} ran an installer from {} ({}): {line}",
                d.host, d.how
            )),
        )
        .evidence(agent::evidence(cited))
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
    .evidence(agent::evidence(cited))
    .score(0.9)
    .next_step(format!(
        "{pending}Fetch {} yourself and read what it ran; until then treat the machine and the credentials it holds as exposed. Add the host to installer_hosts if it is a vetted installer",
        d.url
    ))
}

register_detector!(DownloadExecDetector);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::DownloadExecDetector>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::DownloadExecDetector>(FIXTURES);
    }
}
