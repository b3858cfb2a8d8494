//! Trajectories through the real binary: the listing and its filters, the timeline of one,
//! an earlier event arriving last (the trajectory is renamed, the old id still answers),
//! and a restart.

#[path = "support/mod.rs"]
mod support;

use serde_json::{json, Value};
use support::{event, event_time, eventually, get, post_events, Server};

/// A push by `actor` to `system` at 10:`minute` on the test day.
fn push(id: &str, actor: &str, system: &str, minute: u32) -> Value {
    let mut e = event(id, actor, "git.push");
    e["time"] = json!(event_time().replace("T10:00:00Z", &format!("T10:{minute:02}:00Z")));
    e["system"] = json!(system);
    e["resource"] = json!(format!("{system}@refs/heads/main"));
    e
}

async fn listing(s: &Server, query: &str) -> Vec<Value> {
    let (status, v) = get(s, &format!("/v1/trajectories?{query}")).await;
    assert_eq!(status, 200, "{v}");
    v["trajectories"].as_array().cloned().unwrap()
}

/// (kind, key) of each header, sorted.
fn views(list: &[Value]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .iter()
        .map(|t| {
            (
                t["kind"].as_str().unwrap().to_string(),
                t["key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn event_ids(t: &Value) -> Vec<&str> {
    t["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn listing_filters_timeline_renames_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    post_events(
        &s,
        &json!([
            push("api-2", "ada", "acme/api", 20),
            push("web-1", "ada", "acme/web", 25),
            push("bob-1", "bob", "acme/web", 30),
        ]),
    )
    .await;
    let old = eventually(20, || async {
        let l = listing(&s, "actor=ada&kind=actor").await;
        (l.len() == 1 && l[0]["event_count"] == 2).then(|| l[0]["id"].as_str().unwrap().to_string())
    })
    .await;

    // The push that happened first arrives last: it lands in its place, and the trajectory
    // takes the id its earliest event gives it (the id in-order arrival would have given).
    post_events(&s, &json!([push("api-1", "ada", "acme/api", 5)])).await;
    let current = eventually(20, || async {
        let l = listing(&s, "actor=ada&kind=actor").await;
        (l.len() == 1 && l[0]["event_count"] == 3).then(|| l[0].clone())
    })
    .await;
    let id = current["id"].as_str().unwrap().to_string();
    assert_ne!(id, old, "an earlier event renames the trajectory");
    assert_eq!(current["open"], true);
    assert_eq!(current["actors"], json!(["ada"]));
    assert_eq!(current["systems"], json!(["acme/api", "acme/web"]));

    let (status, t) = get(&s, &format!("/v1/trajectories/{id}")).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(event_ids(&t), vec!["api-1", "api-2", "web-1"]);
    assert_eq!(t["kind"], "actor");
    assert_eq!(t["hash"].as_str().unwrap().len(), 64);
    assert_eq!(t["dropped"], 0);
    // The old id is a link someone may hold: it answers with the trajectory that took over.
    let (status, via_old) = get(&s, &format!("/v1/trajectories/{old}")).await;
    assert_eq!(status, 200, "{via_old}");
    assert_eq!(
        (via_old["id"].as_str(), &via_old["hash"]),
        (Some(id.as_str()), &t["hash"])
    );

    // Filters select by involvement and combine: ada's own trajectory and those of the
    // systems she touched; with system= as well, only what involves both.
    assert_eq!(
        views(&listing(&s, "actor=ada").await),
        vec![
            ("actor".into(), "ada".into()),
            ("system".into(), "acme/api".into()),
            ("system".into(), "acme/web".into()),
        ]
    );
    assert_eq!(
        views(&listing(&s, "actor=ada&system=acme/api").await),
        vec![
            ("actor".into(), "ada".into()),
            ("system".into(), "acme/api".into()),
        ]
    );
    assert_eq!(
        views(&listing(&s, "system=acme/web&kind=actor").await),
        vec![
            ("actor".into(), "ada".into()),
            ("actor".into(), "bob".into())
        ]
    );
    assert!(listing(&s, "actor=nobody").await.is_empty());
    assert!(listing(&s, "since=2099-01-01T00:00:00Z").await.is_empty());
    assert_eq!(listing(&s, "since=30d").await.len(), 4);
    assert_eq!(listing(&s, "limit=2").await.len(), 2);

    // Bad input names what is wrong.
    let (status, e) = get(&s, "/v1/trajectories?kind=person").await;
    assert_eq!(status, 400);
    assert!(e["error"].as_str().unwrap().contains("`kind`"), "{e}");
    let (status, e) = get(&s, "/v1/trajectories?since=yesterday").await;
    assert_eq!(status, 400);
    assert!(e["error"].as_str().unwrap().contains("since"), "{e}");
    let (status, e) = get(&s, "/v1/trajectories/trj-000000000000000000000000").await;
    assert_eq!(status, 404);
    assert!(e["error"].as_str().unwrap().contains("trj-0000"), "{e}");

    // After a restart the open window resumes with the same id, hash and timeline, and the
    // old id still answers.
    s.restart();
    let (status, after) = get(&s, &format!("/v1/trajectories/{old}")).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["id"].as_str(), Some(id.as_str()));
    assert_eq!(after["hash"], t["hash"]);
    assert_eq!(event_ids(&after), vec!["api-1", "api-2", "web-1"]);
    post_events(&s, &json!([push("api-3", "ada", "acme/api", 40)])).await;
    let grown = eventually(20, || async {
        let (_, t) = get(&s, &format!("/v1/trajectories/{id}")).await;
        (t["events"].as_array().map(Vec::len) == Some(4)).then_some(t)
    })
    .await;
    assert_eq!(event_ids(&grown), vec!["api-1", "api-2", "web-1", "api-3"]);
    assert_eq!(listing(&s, "actor=ada&kind=actor").await.len(), 1);

    // A crash right after an event was accepted, likely before the trajectory checkpoint:
    // the batches after the checkpoint are re-applied on start, so nothing is skipped.
    post_events(&s, &json!([push("api-0", "ada", "acme/api", 1)])).await;
    s.crash();
    s.restart();
    let (_, l) = get(&s, "/v1/trajectories?actor=ada&kind=actor").await;
    let l = l["trajectories"].as_array().unwrap();
    assert_eq!(l.len(), 1, "{l:?}");
    let (_, t) = get(&s, &format!("/v1/trajectories/{old}")).await;
    assert_eq!(
        event_ids(&t),
        vec!["api-0", "api-1", "api-2", "web-1", "api-3"]
    );
    assert_eq!(t["id"], l[0]["id"]);
}
