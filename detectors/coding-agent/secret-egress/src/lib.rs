//! A coding agent reads a secret or credential file (`.env`, `~/.ssh/id_*`, `*.pem`,
//! `~/.aws/credentials`, `.npmrc`, `.netrc`, `.git-credentials`, kubeconfig, gcloud
//! credentials) and then reaches a host that is not the company's: a web fetch, a shell
//! `curl`/`wget`/`nc`/`scp`/`rsync`/`ssh`/`gh gist create`, a remote MCP server. When the
//! egress carries a payload (`-d @.env`, `--data-binary`, `-F file=@`, `-T`, data piped
//! in, a long value in the URL) it is urgent; a bare request after the read needs review.
//! A read of `.env.example` is no secret read; a fetch that sends nothing to a
//! documentation or package host (`docs_hosts`) is no egress. The same command may do both
//! (`curl -F f=@.env https://…`): the call is its own read.
//! Read on actor trajectories (one agent session).

use std::collections::BTreeMap;

use plumbline_sdk::kit::agent::{self, Call, Egress, SecretPaths};
use plumbline_sdk::*;

const SIGNAL: &str = "agent.secret_egress";

/// Documentation and package hosts agents read routinely.
const DOCS_HOSTS: &str = "docs.rs,crates.io,rust-lang.org,pypi.org,python.org,readthedocs.io,npmjs.com,npmjs.org,nodejs.org,developer.mozilla.org,docs.github.com,stackoverflow.com,pkg.go.dev,go.dev,docs.aws.amazon.com,cloud.google.com,learn.microsoft.com,kubernetes.io,docs.docker.com,docs.anthropic.com,platform.openai.com";

#[derive(Default)]
pub struct SecretEgress;

impl Detector for SecretEgress {
    fn info() -> Info {
        let info = Info::new(
            "coding-agent.secret-egress",
            "0.1.0",
            "A coding agent reads a secret file, then sends data or requests to a host that is not the company's",
        )
        .actions(&["agent.tool.*"])
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL])
        .config(
            "docs_hosts",
            DOCS_HOSTS,
            "Documentation and package hosts (a domain covers its subdomains): a request there that carries nothing is not egress",
        );
        SecretPaths::declare(destination::declare(info))
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let lists = cx.settings::<Destinations>()?;
        let secrets = cx.settings::<SecretPaths>()?;
        let docs = cx.config_list("docs_hosts");
        let calls = agent::calls(t);
        // The latest call that read a secret, before the current one.
        let mut last_read: Option<usize> = None;
        // The most telling egress per host: (carries, read index, egress index, egress).
        let mut by_host: BTreeMap<String, (bool, usize, usize, Egress)> = BTreeMap::new();
        for (i, call) in calls.iter().enumerate() {
            let reads_itself = !secrets.read_by(call).is_empty();
            // The read that tells the story is an earlier call when there is one; a call
            // that reads and sends at once (`curl -F f=@.env …`) is its own read.
            let r = match (&last_read, reads_itself) {
                (Some(r), _) => Some(*r),
                (None, true) => Some(i),
                (None, false) => None,
            };
            if reads_itself {
                last_read = Some(i);
            }
            let Some(r) = r else {
                continue;
            };
            for e in agent::egress(call) {
                let class = lists.classify_from(&e.host, call.user()).map(|(_, c)| c);
                let docs_only =
                    !e.carries && docs.iter().any(|d| destination::domain_matches(d, &e.host));
                if class == Some(DestinationClass::Known) || docs_only {
                    continue;
                }
                // A payload beats a bare request; a pending call (the pre-tool hook's,
                // the last event) beats an earlier one as telling, so that the finding
                // cites the call the service is about to allow or deny.
                let better = by_host.get(&e.host).is_none_or(|(carries, ..)| {
                    (e.carries && !carries) || (call.pending() && e.carries >= *carries)
                });
                if better {
                    by_host.insert(e.host.clone(), (e.carries, r, i, e));
                }
            }
        }
        let mut findings = Vec::new();
        for (host, (carries, r, i, e)) in by_host {
            let (read, send) = (&calls[r], &calls[i]);
            let mut paths = secrets.read_by(read);
            for p in secrets.read_by(send) {
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
            let paths = paths.join(", ");
            findings.push(finding(read, send, &paths, &host, carries, &e, &lists));
        }
        Ok(findings)
    }
}

fn finding(
    read: &Call,
    send: &Call,
    paths: &str,
    host: &str,
    carries: bool,
    e: &Egress,
    lists: &Destinations,
) -> Finding {
    let session = read.session();
    let class = lists
        .classify(host)
        .map(|(_, c)| c.describe())
        .unwrap_or("an unknown host");
    let who = read.who();
    let same = std::ptr::eq(read, send);
    let (severity, verb, score) = if carries {
        (Severity::Urgent, "sent data to", 0.9)
    } else {
        (Severity::NeedsReview, "then reached", 0.65)
    };
    let headline = if same {
        format!(
            "{who} {verb} {host} ({class}) carrying {paths}: {}",
            agent::short(&e.what, 80)
        )
    } else {
        format!(
            "{who} read {paths}, {verb} {host} ({class}): {}",
            agent::short(&e.what, 80)
        )
    };
    let pending = if send.pending() {
        " The call is still pending: deny it."
    } else {
        ""
    };
    Finding::new(SIGNAL, severity, title(headline))
        .evidence(agent::evidence(&[read, send]))
        .score(score)
        .next_step(format!(
            "Treat the secrets in {paths} as exposed: rotate them, find out what {host} received and why the agent went there (session {session}); add the host to known_domains if it is yours.{pending}"
        ))
}

register_detector!(SecretEgress);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::SecretEgress>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::SecretEgress>(FIXTURES);
    }
}
