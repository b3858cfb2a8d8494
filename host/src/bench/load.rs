//! The traffic: a realistic mix of mostly benign repository events from hundreds of actors
//! and repositories, planted force pushes to `main`, and an NDJSON sender that honours the
//! server's back-pressure (503 + `Retry-After`) by waiting and resending, counting the waits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

pub const ACTORS: u64 = 300;
pub const REPOSITORIES: u64 = 100;

/// The current time at millisecond precision, as RFC 3339 and as Unix nanoseconds.
pub fn now_rfc3339() -> (String, i64) {
    let t = time::OffsetDateTime::now_utc();
    let t = t
        .replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t);
    (
        plumbline_event::format_time(t),
        t.unix_timestamp_nanos() as i64,
    )
}

/// A push (`git.push`, or `git.push.force` to `main`, which the GitHub adapter would derive
/// from `forced` and the default branch), stamped now; with its time in Unix nanoseconds.
pub fn push(id: &str, actor: &str, system: &str, action: &str, branch: &str) -> (Value, i64) {
    let (time, nanos) = now_rfc3339();
    (push_at(id, actor, system, action, branch, &time), nanos)
}

fn push_at(id: &str, actor: &str, system: &str, action: &str, branch: &str, time: &str) -> Value {
    json!({
            "id": id, "time": time, "source": "github",
            "actor": {"id": actor, "type": "human"}, "system": system, "action": action,
            "resource": format!("refs/heads/{branch}"), "environment": "prod",
            "attributes": {"branch": branch, "commits": 2, "after": format!("{id}-head"),
                           "forced": branch == "main", "to_default_branch": branch == "main"},
    })
}

/// Event `n` of the benign mix (`run` keeps ids unique across phases on one store): 300
/// actors over 100 repositories, about 70% pushes to feature branches, the rest pull
/// requests opened, reviewed and merged after review, and CI runs.
pub fn mixed(run: &str, n: u64) -> Value {
    mixed_at(run, n, &now_rfc3339().0)
}

/// As [`mixed`], stamped `time` (a fixed workload, replayed identically).
pub fn mixed_at(run: &str, n: u64, time: &str) -> Value {
    // Spread actors and repositories without a fixed stride between them.
    let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let actor = format!("dev-{}", (h >> 20) % ACTORS);
    let repo = format!("acme/repo-{}", (h >> 40) % REPOSITORIES);
    let id = format!("{run}-{n}");
    match n % 20 {
        0..=13 => push_at(
            &id,
            &actor,
            &repo,
            "git.push",
            &format!("feature-{}", n % 7),
            time,
        ),
        14 | 15 => pr(&id, &actor, &repo, "pr.opened", n, time),
        16 | 17 => pr(&id, &actor, &repo, "pr.review.approved", n, time),
        18 => pr(&id, &actor, &repo, "pr.merged", n, time),
        _ => {
            json!({
                "id": id, "time": time, "source": "github",
                "actor": {"id": actor, "type": "human"}, "system": repo,
                "action": "ci.workflow.run", "resource": "workflows/ci.yml", "environment": "prod",
                "attributes": {"conclusion": "success", "branch": format!("feature-{}", n % 7)},
            })
        }
    }
}

fn pr(id: &str, actor: &str, repo: &str, action: &str, n: u64, time: &str) -> Value {
    let number = n % 500;
    json!({
        "id": id, "time": time, "source": "github",
        "actor": {"id": actor, "type": "human"}, "system": repo, "action": action,
        "resource": format!("pulls/{number}"), "environment": "prod",
        "attributes": {"pr.number": number, "pr.base": "main", "pr.base_is_default": true,
                       "pr.merged.without_review": false, "title": format!("Change {n}")},
    })
}

/// Events `from..to` of the mix as one NDJSON body.
pub fn ndjson(run: &str, from: u64, to: u64) -> String {
    let mut body = String::with_capacity((to - from) as usize * 420);
    for n in from..to {
        body.push_str(&mixed(run, n).to_string());
        body.push('\n');
    }
    body
}

/// Counts shared by the senders of one phase.
#[derive(Default)]
pub struct Sent {
    pub events: AtomicU64,
    /// 503 answers (back-pressure) that were waited out and resent.
    pub busy: AtomicU64,
}

/// POSTs one NDJSON body until it is accepted (202), waiting out 503s as `Retry-After`
/// says (at most 1 s at a time).
pub async fn post_ndjson(
    client: &reqwest::Client,
    url: &str,
    body: String,
    events: u64,
    sent: &Arc<Sent>,
) -> anyhow::Result<()> {
    loop {
        let r = client
            .post(format!("{url}/v1/events"))
            .header("content-type", "application/x-ndjson")
            .body(body.clone())
            .send()
            .await?;
        match r.status().as_u16() {
            202 => {
                sent.events.fetch_add(events, Ordering::Relaxed);
                return Ok(());
            }
            503 | 429 => {
                sent.busy.fetch_add(1, Ordering::Relaxed);
                let wait = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()?.parse::<f64>().ok())
                    .unwrap_or(0.05)
                    .clamp(0.01, 1.0);
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            }
            s => bail!("POST /v1/events answered {s}: {}", r.text().await?),
        }
    }
}

/// Sends events `0..total` of the mix in bodies of `batch` over `connections` concurrent
/// senders as fast as they are acknowledged; bodies are built before the clock starts.
/// Returns the wall time from the first request to the last acknowledgement.
pub async fn blast(
    client: &reqwest::Client,
    url: &str,
    run: &str,
    total: u64,
    batch: u64,
    connections: u64,
    sent: &Arc<Sent>,
) -> anyhow::Result<Duration> {
    let bodies: Vec<(String, u64)> = (0..total)
        .step_by(batch as usize)
        .map(|from| {
            let to = (from + batch).min(total);
            (ndjson(run, from, to), to - from)
        })
        .collect();
    let queue = Arc::new(std::sync::Mutex::new(bodies.into_iter()));
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url, queue, sent) =
            (client.clone(), url.to_string(), queue.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().expect("queue").next();
                let Some((body, n)) = next else { break };
                post_ndjson(&client, &url, body, n, &sent).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(started.elapsed())
}

/// When the first of a force push's candidate alerts (its system's and its actor's
/// trajectory) was created, if any was.
pub async fn alert_created(
    client: &reqwest::Client,
    url: &str,
    candidates: &[String],
) -> anyhow::Result<Option<time::OffsetDateTime>> {
    let mut created: Option<time::OffsetDateTime> = None;
    for a in candidates {
        let r = client.get(format!("{url}/v1/alerts/{a}")).send().await?;
        if r.status().is_success() {
            let v: Value = r.json().await?;
            let Some(c) = v["created_at"].as_str() else {
                bail!("alert {a} without created_at")
            };
            let t = time::OffsetDateTime::parse(c, &Rfc3339)?;
            created = Some(created.map_or(t, |earlier| earlier.min(t)));
        }
    }
    Ok(created)
}

/// A planted force push to `main` by a fresh actor in a fresh repository, and the ids its
/// alert may have (system or actor trajectory).
pub fn force_push(run: &str, i: usize) -> (Value, Vec<String>) {
    use plumbline_alert::alert_id_for;
    use plumbline_trajectory::window::trajectory_id;
    use plumbline_trajectory::TrajectoryKind;
    let (id, actor, repo) = (
        format!("{run}-force-{i}"),
        format!("{run}-intruder-{i}"),
        format!("acme/{run}-vault-{i}"),
    );
    let (event, nanos) = push(&id, &actor, &repo, "git.push.force", "main");
    let candidates = vec![
        alert_id_for(&trajectory_id(TrajectoryKind::System, &repo, nanos, &id)),
        alert_id_for(&trajectory_id(TrajectoryKind::Actor, &actor, nanos, &id)),
    ];
    (event, candidates)
}
