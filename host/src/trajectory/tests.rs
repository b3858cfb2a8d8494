//! Trajectory assembly and the stage over a real sled store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::window::{Book, Changes, WindowRules};
use super::*;
use crate::alert::finding::Finding;
use crate::alert::AlertBook;
use crate::config::Config;
use crate::event::{parse_event, Event};
use crate::store::{Store, Writer};

const MIN: i64 = 60;

fn ev(id: &str, actor: &str, system: &str, action: &str, secs: i64) -> Event {
    let t = time::OffsetDateTime::from_unix_timestamp(1_764_000_000 + secs).unwrap();
    parse_event(json!({
        "id": id, "time": crate::event::format_time(t), "source": "n8n",
        "actor": {"id": actor, "type": "human"}, "system": system, "action": action,
    }))
    .unwrap()
}

fn rules(max: usize) -> WindowRules {
    let mut c = Config::defaults().trajectory;
    c.max_events = max;
    WindowRules::from_config(&c)
}

fn book_of(events: &[Event], max: usize) -> Book {
    let mut b = Book::new(rules(max));
    let mut ch = Changes::default();
    for e in events {
        b.apply(Arc::new(e.clone()), &mut ch);
    }
    b
}

fn actor_sessions(b: &Book, actor: &str) -> Vec<Vec<String>> {
    let mut v: Vec<(i64, Vec<String>)> = b
        .sessions()
        .filter(|s| s.kind == TrajectoryKind::Actor && s.key == actor)
        .map(|s| {
            (
                s.first_time,
                s.entries.iter().map(|e| e.event.id.clone()).collect(),
            )
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, ids)| ids).collect()
}

#[test]
fn arrival_order_does_not_change_the_trajectory_or_its_hash() {
    let events: Vec<Event> = (0..12)
        .map(|i| ev(&format!("e{i}"), "ada", "repo", "git.push", i * 7 * MIN))
        .collect();
    let in_order = book_of(&events, 1000);
    let mut shuffled = events.clone();
    shuffled.reverse();
    shuffled.swap(2, 9);
    let out_of_order = book_of(&shuffled, 1000);
    assert_eq!(
        actor_sessions(&in_order, "ada"),
        actor_sessions(&out_of_order, "ada")
    );
    // Same id and hash for every view, whatever the arrival order.
    let views = |b: &Book| {
        let mut v: Vec<(TrajectoryKind, String, String)> = b
            .sessions()
            .map(|s| (s.kind, s.id.clone(), s.hash()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(views(&in_order).len(), 2);
    assert_eq!(views(&in_order), views(&out_of_order));
    let actor = in_order
        .sessions()
        .find(|s| s.kind == TrajectoryKind::Actor)
        .unwrap();
    assert_eq!(
        actor.id,
        window::trajectory_id(TrajectoryKind::Actor, "ada", events[0].time_nanos(), "e0")
    );
}

#[test]
fn an_event_earlier_than_the_first_renames_the_trajectory_and_says_so() {
    let mut b = Book::new(rules(1000));
    let mut ch = Changes::default();
    b.apply(Arc::new(ev("b", "ada", "r", "git.push", 10 * MIN)), &mut ch);
    let first = ch.changed.clone();
    assert!(ch.renamed.is_empty());
    let mut ch = Changes::default();
    b.apply(Arc::new(ev("a", "ada", "r", "git.push", 0)), &mut ch);
    // Both views (actor and system) moved their origin: each old id names its successor,
    // which is what changed, and the book answers only to the new ids.
    assert_eq!(ch.renamed.len(), 2);
    for old in &first {
        let new = ch.current_id(old);
        assert_ne!(new, old);
        assert!(ch.changed.iter().any(|c| c == new));
        assert!(b.get(old).is_none());
        assert_eq!(b.get(new).unwrap().entries.len(), 2);
    }
    assert!(!ch.changed.iter().any(|c| first.contains(c)));
}

#[test]
fn a_bridging_event_renames_the_later_trajectory_into_the_earlier() {
    let mut b = book_of(
        &[
            ev("a", "ada", "r", "git.push", 0),
            ev("c", "ada", "r", "git.push", 100 * MIN),
        ],
        1000,
    );
    let ids = |b: &Book| {
        let mut v: Vec<String> = b
            .sessions()
            .filter(|s| s.kind == TrajectoryKind::Actor)
            .map(|s| s.id.clone())
            .collect();
        v.sort();
        v
    };
    let before = ids(&b);
    assert_eq!(before.len(), 2);
    let mut ch = Changes::default();
    b.apply(
        Arc::new(ev("late", "ada", "r", "git.push", 50 * MIN)),
        &mut ch,
    );
    let after = ids(&b);
    assert_eq!(after.len(), 1);
    let survivor = &after[0];
    assert!(before.contains(survivor), "the earlier one survives");
    let gone = before.iter().find(|i| *i != survivor).unwrap();
    assert_eq!(ch.current_id(gone), survivor.as_str());
}

#[test]
fn a_gap_longer_than_the_window_opens_a_new_trajectory_and_a_late_event_bridges() {
    let a = ev("a", "ada", "r", "git.push", 0);
    let b = ev("b", "ada", "r", "git.push", 60 * MIN); // exactly at the boundary: same window
    let c = ev("c", "ada", "r", "git.push", 121 * MIN); // 61 minutes after b: new window
    let book = book_of(&[a.clone(), b.clone(), c.clone()], 1000);
    assert_eq!(
        actor_sessions(&book, "ada"),
        vec![vec!["a", "b"], vec!["c"]]
    );
    // A late event between b and c joins both windows into one.
    let late = ev("late", "ada", "r", "git.push", 90 * MIN);
    let book = book_of(&[a, b, c, late], 1000);
    assert_eq!(
        actor_sessions(&book, "ada"),
        vec![vec!["a", "b", "late", "c"]]
    );
}

#[test]
fn a_grant_extends_the_window_to_24_hours() {
    let grant = ev("g", "ada", "vault", "credential.scope.increased", 0);
    let later = ev("x", "ada", "vault", "secret.read", 23 * 60 * MIN);
    let book = book_of(&[grant.clone(), later.clone()], 1000);
    assert_eq!(actor_sessions(&book, "ada"), vec![vec!["g", "x"]]);
    let plain = ev("p", "ada", "vault", "secret.read", 0);
    let book = book_of(&[plain, later], 1000);
    assert_eq!(actor_sessions(&book, "ada").len(), 2);
    let too_late = ev("y", "ada", "vault", "secret.read", 24 * 60 * MIN + 1);
    assert_eq!(
        actor_sessions(&book_of(&[grant, too_late], 1000), "ada").len(),
        2
    );
}

#[test]
fn the_bound_drops_the_oldest_and_counts_them() {
    let events: Vec<Event> = (0..10)
        .map(|i| ev(&format!("e{i:02}"), "bot", "r", "git.push", i))
        .collect();
    let mut shuffled = events.clone();
    shuffled.reverse();
    for order in [events, shuffled] {
        let book = book_of(&order, 4);
        let s = book
            .sessions()
            .find(|s| s.kind == TrajectoryKind::Actor)
            .unwrap();
        let ids: Vec<&str> = s.entries.iter().map(|e| e.event.id.as_str()).collect();
        assert_eq!(ids, vec!["e06", "e07", "e08", "e09"]);
        assert_eq!(s.dropped, 6);
        assert_eq!(s.snapshot().dropped, 6);
    }
}

/// DESIGN.md's six-step story, one actor, in order.
pub fn six_step_story() -> Vec<Event> {
    let steps = [
        ("s1", "workflow.created", 0),
        ("s2", "workflow.trigger.added", 4 * MIN),
        ("s3", "credential.attached", 9 * MIN),
        ("s4", "workflow.node.added", 15 * MIN),
        ("s5", "workflow.activated", 73 * MIN),
        ("s6", "workflow.renamed", 80 * MIN),
    ];
    steps
        .iter()
        .map(|(id, action, t)| ev(id, "mallory", "n8n/invoice-sync", action, *t))
        .collect()
}

#[test]
fn six_step_story_is_one_actor_trajectory_in_order() {
    let mut story = six_step_story();
    story.swap(0, 4); // arrival order does not matter
    let book = book_of(&story, 1000);
    assert_eq!(
        actor_sessions(&book, "mallory"),
        vec![vec!["s1", "s2", "s3", "s4", "s5", "s6"]]
    );
}

/// Records what it was asked to evaluate, and raises one finding citing every event.
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, usize)>>);

impl Evaluator for Recorder {
    fn evaluate(&self, t: &Trajectory) -> Evaluation {
        if !t.kind.is_drift() {
            self.0.lock().unwrap().push((t.id.clone(), t.events.len()));
        }
        if t.kind != TrajectoryKind::Actor {
            return Evaluation::default();
        }
        Evaluation {
            findings: vec![Finding {
                detector: "recorder".into(),
                detector_version: "1".into(),
                signal: "test.signal".into(),
                severity: t.events.len().min(3) as u8,
                score: 1.0,
                title: format!("{} events", t.events.len()),
                evidence: t.events.iter().map(|e| e.id.clone()).collect(),
                next_step: "look".into(),
            }],
            shadow: vec![],
        }
    }
}

struct Running {
    writer: Writer,
    stage: Arc<TrajectoryStage>,
    alerts: AlertBook,
    recorder: Arc<Recorder>,
}

fn start(dir: &std::path::Path) -> Running {
    let store = Store::open(dir).unwrap();
    let alerts = AlertBook::open(&store).unwrap();
    let recorder = Arc::new(Recorder::default());
    let stage = TrajectoryStage::start(
        store.clone(),
        &Config::defaults().trajectory,
        recorder.clone(),
        alerts.clone(),
    )
    .unwrap();
    let writer = Writer::start(store, false, stage.listener()).unwrap();
    Running {
        writer,
        stage,
        alerts,
        recorder,
    }
}

fn wait_for(mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("condition not reached in 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_evaluated_once_and_raises_one_alert_that_grows() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path());
    let story = six_step_story();
    r.writer.write(story[..3].to_vec()).await.unwrap();
    wait_for(|| r.alerts.all().count() == 1);
    let first = r.alerts.all().next().unwrap();
    assert_eq!(first.severity, 3);
    assert_eq!(first.event_ids, vec!["s1", "s2", "s3"]);
    r.writer.write(story[3..].to_vec()).await.unwrap();
    wait_for(|| r.alerts.all().next().unwrap().event_ids.len() == 6);
    assert_eq!(r.alerts.all().count(), 1, "one alert per trajectory");
    // The burst of 3 was evaluated once per trajectory (actor + system), not per event.
    let calls = r.recorder.0.lock().unwrap().clone();
    assert!(
        calls.iter().filter(|(_, n)| *n == 1 || *n == 2).count() == 0,
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_window_resumes_the_trajectory_without_a_second_alert() {
    let dir = tempfile::tempdir().unwrap();
    let story = six_step_story();
    let (id, hash) = {
        let r = start(dir.path());
        r.writer.write(story[..4].to_vec()).await.unwrap();
        wait_for(|| r.alerts.all().count() == 1);
        let t = r
            .stage
            .list()
            .into_iter()
            .find(|t| t.kind == TrajectoryKind::Actor)
            .unwrap();
        r.stage.shutdown();
        (t.id, t.hash)
    };
    // Reopen: sled allows one opener per process, so wait for the old threads to let go.
    let r = reopen(dir.path());
    let t = r.stage.get(&id).unwrap().expect("resumed");
    assert_eq!(t.hash, hash);
    assert_eq!(t.events.len(), 4);
    r.writer.write(story[4..].to_vec()).await.unwrap();
    wait_for(|| r.stage.get(&id).unwrap().unwrap().events.len() == 6);
    wait_for(|| {
        r.alerts
            .all()
            .next()
            .is_some_and(|a| a.event_ids.len() == 6)
    });
    assert_eq!(r.alerts.all().count(), 1);
    let _ = r;
}

fn reopen(dir: &std::path::Path) -> Running {
    for _ in 0..100 {
        match Store::open(dir) {
            Ok(s) => {
                drop(s);
                return start(dir);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    panic!("store still locked after 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_stored_after_the_checkpoint_are_applied_on_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Events become durable while no trajectory stage listens (as after a crash
        // between the store's flush and the stage's checkpoint).
        let store = Store::open(dir.path()).unwrap();
        let ignore: Arc<dyn crate::store::CommitListener> =
            Arc::new(|_b: crate::store::CommittedBatch| {});
        let writer = Writer::start(store, false, ignore).unwrap();
        writer.write(six_step_story()).await.unwrap();
    }
    let r = reopen(dir.path());
    wait_for(|| {
        r.alerts
            .all()
            .next()
            .is_some_and(|a| a.event_ids.len() == 6)
    });
    assert_eq!(r.stage.applied_seq(), 1);
}

#[test]
fn the_drift_view_keeps_weeks_of_widenings_and_nothing_else() {
    let day = 24 * 60 * MIN;
    let events = vec![
        ev("w1", "erin", "acme/api", "member.added", 0),
        ev("x1", "erin", "acme/api", "git.push", 60),
        ev("w2", "erin", "acme/api", "team.permission.changed", 9 * day),
        ev("w3", "erin", "acme/web", "deploy_key.created", 18 * day),
        ev("w4", "erin", "acme/api", "app.installed", 27 * day),
    ];
    let book = book_of(&events, 1000);
    let drift: Vec<Vec<String>> = book
        .sessions()
        .filter(|s| s.kind == TrajectoryKind::ActorDrift && s.key == "erin")
        .map(|s| s.entries.iter().map(|e| e.event.id.clone()).collect())
        .collect();
    assert_eq!(drift, vec![vec!["w1", "w2", "w3", "w4"]]);
    // The rolling windows are cut as usual: weeks apart, these are separate stories.
    assert_eq!(actor_sessions(&book, "erin").len(), 4);
    // A change more than 30 days after the last one starts a new drift view.
    let mut later = events.clone();
    later.push(ev("w5", "erin", "acme/api", "member.added", 58 * day));
    let book = book_of(&later, 1000);
    assert_eq!(
        book.sessions()
            .filter(|s| s.kind == TrajectoryKind::ActorDrift)
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_trajectory_is_judged_again_after_its_settle_delay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let alerts = AlertBook::open(&store).unwrap();
    let recorder = Arc::new(Recorder::default());
    let mut config = Config::defaults().trajectory;
    config.settle_secs = vec![1];
    let stage = TrajectoryStage::start(store.clone(), &config, recorder.clone(), alerts).unwrap();
    let writer = Writer::start(store, false, stage.listener()).unwrap();
    writer.write(six_step_story()[..2].to_vec()).await.unwrap();
    // Evaluated once for the change, then once more a second later with nothing new.
    wait_for(|| {
        recorder
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, n)| *n == 2)
            .count()
            >= 4
    });
    let calls = recorder.0.lock().unwrap().clone();
    assert_eq!(
        calls.len(),
        4,
        "change + settle for the actor and the system trajectory: {calls:?}"
    );
    stage.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_event_arriving_last_moves_the_alert_and_the_old_id_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let story = six_step_story();
    let final_id = window::trajectory_id(
        TrajectoryKind::Actor,
        "mallory",
        story[0].time_nanos(),
        "s1",
    );
    let (old_id, alert_id) = {
        let r = start(dir.path());
        r.writer.write(story[1..].to_vec()).await.unwrap();
        wait_for(|| r.alerts.all().count() == 1);
        let first = r.alerts.all().next().unwrap();
        assert_ne!(first.trajectory_id, final_id);
        // The step that happened first arrives last.
        r.writer.write(story[..1].to_vec()).await.unwrap();
        wait_for(|| r.alerts.all().next().unwrap().event_ids.len() == 6);
        let a = r.alerts.all().next().unwrap();
        assert_eq!(r.alerts.all().count(), 1, "one alert for the story");
        assert_eq!(a.id, first.id, "the alert keeps its id");
        assert_eq!(a.trajectory_id, final_id, "and follows the trajectory");
        let t = r.stage.get(&first.trajectory_id).unwrap().expect("old id");
        assert_eq!((t.id.as_str(), t.events.len()), (final_id.as_str(), 6));
        assert!(r.stage.list().iter().all(|h| h.id != first.trajectory_id));
        r.stage.shutdown();
        (first.trajectory_id, a.id)
    };
    // After a restart the renamed trajectory resumes under its new id, the old one still
    // answers, and nothing is raised twice.
    let r = reopen(dir.path());
    let t = r.stage.get(&old_id).unwrap().expect("old id after restart");
    assert_eq!((t.id.as_str(), t.events.len()), (final_id.as_str(), 6));
    let extra = ev(
        "s7",
        "mallory",
        "n8n/invoice-sync",
        "workflow.executed",
        81 * MIN,
    );
    r.writer.write(vec![extra]).await.unwrap();
    wait_for(|| r.alerts.all().next().unwrap().event_ids.len() == 7);
    assert_eq!(r.alerts.all().count(), 1);
    assert_eq!(r.alerts.all().next().unwrap().id, alert_id);
    assert_eq!(
        r.alerts.alert_of_trajectory(&old_id).unwrap().unwrap().id,
        alert_id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_event_joining_two_alerted_trajectories_leaves_one_open_alert() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path());
    let early = vec![
        ev("a", "ada", "r", "git.push", 0),
        ev("b", "ada", "r", "git.push", MIN),
    ];
    let later = vec![ev("c", "ada", "r", "git.push", 100 * MIN)];
    r.writer.write(early).await.unwrap();
    wait_for(|| r.alerts.all().count() == 1);
    r.writer.write(later).await.unwrap();
    wait_for(|| r.alerts.all().count() == 2);
    let first = r
        .alerts
        .all()
        .find(|a| a.event_ids.contains(&"a".to_string()))
        .unwrap();
    // Inside b's window, and its own hour reaches c: it joins the two.
    let bridge = ev("m", "ada", "r", "git.push", 50 * MIN);
    r.writer.write(vec![bridge]).await.unwrap();
    wait_for(|| {
        r.alerts
            .get(&first.id)
            .unwrap()
            .is_some_and(|a| a.event_ids.len() == 4)
    });
    let all: Vec<_> = r.alerts.all().collect();
    let open: Vec<_> = all.iter().filter(|a| a.merged_into.is_none()).collect();
    assert_eq!(open.len(), 1, "{all:?}");
    assert_eq!(open[0].id, first.id, "the alert raised first survives");
    assert_eq!(open[0].event_ids, vec!["a", "b", "m", "c"]);
    let gone = all.iter().find(|a| a.merged_into.is_some()).unwrap();
    assert_eq!(gone.merged_into.as_deref(), Some(first.id.as_str()));
    assert_eq!(gone.status, crate::alert::AlertStatus::Resolved);
    assert_eq!(
        r.alerts
            .alert_of_trajectory(&gone.trajectory_id)
            .unwrap()
            .unwrap()
            .id,
        first.id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_closes_once_event_time_passes_it_and_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path());
    r.writer
        .write(vec![ev("a1", "ada", "r", "git.push", 0)])
        .await
        .unwrap();
    wait_for(|| r.alerts.all().count() == 1);
    let id = r.alerts.all().next().unwrap().trajectory_id;
    // An hour later by event time the window is still open (it spans an hour after its last
    // event, and events up to another hour late are still taken).
    r.writer
        .write(vec![ev("b1", "bob", "s", "git.push", 119 * MIN)])
        .await
        .unwrap();
    wait_for(|| r.stage.applied_seq() == 2);
    let header = |id: &str| r.stage.list().into_iter().find(|h| h.id == id).unwrap();
    assert!(!header(&id).closed);
    // Past that, it closes: still listed and readable (from disk), no longer open.
    r.writer
        .write(vec![ev("b2", "bob", "s", "git.push", 121 * MIN)])
        .await
        .unwrap();
    wait_for(|| r.stage.applied_seq() == 3);
    assert!(header(&id).closed);
    let t = r
        .stage
        .get(&id)
        .unwrap()
        .expect("closed trajectory readable");
    assert_eq!(t.events.len(), 1);
    // An event for the closed window that arrives this late starts a new trajectory.
    r.writer
        .write(vec![ev("a2", "ada", "r", "git.push", 30 * MIN)])
        .await
        .unwrap();
    wait_for(|| r.stage.applied_seq() == 4);
    let ada: Vec<_> = r
        .stage
        .list()
        .into_iter()
        .filter(|h| h.kind == TrajectoryKind::Actor && h.key == "ada")
        .collect();
    assert_eq!(ada.len(), 2, "{ada:?}");
    assert!(ada
        .iter()
        .any(|h| h.id == id && h.closed && h.event_count == 1));
    assert!(ada
        .iter()
        .any(|h| h.id != id && !h.closed && h.event_count == 1));
}
