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
//!
//! Incremental (`plumbline:detector@0.2.0`): the state is the calls that read secrets or
//! reach hosts that are neither the company's nor documentation (the paths, the hosts,
//! whether each carried data, whose it was) and the pending calls — not the events
//! (`kit::agent::memo`).

use std::collections::BTreeMap;

use plumbline_sdk::kit::agent::{self, Memo, Remembered, SecretPaths};
use plumbline_sdk::*;

const SIGNAL: &str = "agent.secret_egress";

/// Documentation and package hosts agents read routinely.
const DOCS_HOSTS: &str = "docs.rs,crates.io,rust-lang.org,pypi.org,python.org,readthedocs.io,npmjs.com,npmjs.org,nodejs.org,developer.mozilla.org,docs.github.com,stackoverflow.com,pkg.go.dev,go.dev,docs.aws.amazon.com,cloud.google.com,learn.microsoft.com,kubernetes.io,docs.docker.com,docs.anthropic.com,platform.openai.com";

#[derive(Default)]
pub struct SecretEgress;

/// What the detector remembers of a session: secret reads and egress.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    calls: Vec<Memo<Flow>>,
}

/// One call: the secret files it read, its egress to hosts that count, whose it was.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Flow {
    reads: Vec<String>,
    egress: Vec<Out>,
    who: String,
    session: String,
}

/// One egress: the host, whether it carried a payload, what reached it (shortened).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Out {
    host: String,
    carries: bool,
    what: String,
}

impl IncrementalDetector for SecretEgress {
    type State = Seen;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Destinations>()?;
        cx.settings::<SecretPaths>()?;
        Ok(())
    }

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

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let lists = cx.settings::<Destinations>()?;
        let secrets = cx.settings::<SecretPaths>()?;
        let docs = cx.config_list("docs_hosts");
        let w = cx
            .window()
            .map_or((0, 0, i64::MIN), |w| (w.len, w.dropped, w.start));
        let read = |start, count| cx.history(start, count);
        let history = agent::History::new(w.0, w.1, w.2, &read);
        agent::remember(&mut seen.calls, new_events, &history, |call| {
            let egress: Vec<Out> = agent::egress(call)
                .into_iter()
                .filter(|e| {
                    let class = lists.classify_from(&e.host, call.user()).map(|(_, c)| c);
                    let docs_only =
                        !e.carries && docs.iter().any(|d| destination::domain_matches(d, &e.host));
                    class != Some(DestinationClass::Known) && !docs_only
                })
                .map(|e| Out {
                    what: agent::short(&e.what, 80),
                    host: e.host,
                    carries: e.carries,
                })
                .collect();
            let reads = secrets.read_by(call);
            (!reads.is_empty() || !egress.is_empty()).then(|| Flow {
                reads,
                egress,
                who: call.who(),
                session: call.session().to_string(),
            })
        });
        let calls: Vec<(&Memo<Flow>, &Flow)> = seen
            .calls
            .iter()
            .filter_map(|m| m.facts().map(|f| (m, f)))
            .collect();
        // The latest call that read a secret, before the current one.
        let mut last_read: Option<usize> = None;
        // The most telling egress per host: (carries, read index, egress index, egress).
        let mut by_host: BTreeMap<&str, (bool, usize, usize, &Out)> = BTreeMap::new();
        for (i, (m, call)) in calls.iter().enumerate() {
            let reads_itself = !call.reads.is_empty();
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
            for e in &call.egress {
                // A payload beats a bare request; a pending call (the pre-tool hook's,
                // the last event) beats an earlier one as telling, so that the finding
                // cites the call the service is about to allow or deny.
                let better = by_host.get(e.host.as_str()).is_none_or(|(carries, ..)| {
                    (e.carries && !carries) || (m.pending() && e.carries >= *carries)
                });
                if better {
                    by_host.insert(&e.host, (e.carries, r, i, e));
                }
            }
        }
        let mut findings = Vec::new();
        for (host, (carries, r, i, e)) in by_host {
            let (read, send) = (calls[r], calls[i]);
            let mut paths = read.1.reads.clone();
            for p in &send.1.reads {
                if !paths.contains(p) {
                    paths.push(p.clone());
                }
            }
            let paths = paths.join(", ");
            findings.push(finding(read, send, &paths, host, carries, e, &lists));
        }
        // Reads stay: the findings rest on them, and an egress that comes next cites one.
        agent::forget_over(&mut seen.calls, &findings, |m| {
            m.facts().is_some_and(|f| !f.reads.is_empty())
        });
        Ok(findings)
    }
}

fn finding(
    read: (&Memo<Flow>, &Flow),
    send: (&Memo<Flow>, &Flow),
    paths: &str,
    host: &str,
    carries: bool,
    e: &Out,
    lists: &Destinations,
) -> Finding {
    let Flow { who, session, .. } = read.1;
    let class = lists
        .classify(host)
        .map(|(_, c)| c.describe())
        .unwrap_or("an unknown host");
    let same = std::ptr::eq(read.0, send.0);
    let (severity, verb, score) = if carries {
        (Severity::Urgent, "sent data to", 0.9)
    } else {
        (Severity::NeedsReview, "then reached", 0.65)
    };
    let headline = if same {
        format!("{who} {verb} {host} ({class}) carrying {paths}: {}", e.what)
    } else {
        format!("{who} read {paths}, {verb} {host} ({class}): {}", e.what)
    };
    let pending = if send.0.pending() {
        " The call is still pending: deny it."
    } else {
        ""
    };
    Finding::new(SIGNAL, severity, title(headline))
        .evidence_ids(agent::cite(&[read.0, send.0]))
        .score(score)
        .next_step(format!(
            "Treat the secrets in {paths} as exposed: rotate them, find out what {host} received and why the agent went there (session {session}); add the host to known_domains if it is yours.{pending}"
        ))
}

register_incremental_detector!(SecretEgress);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_incremental_fixtures::<super::SecretEgress>(FIXTURES);
    }
}
