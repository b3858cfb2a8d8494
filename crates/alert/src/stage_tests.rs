//! The trajectory stage over a real sled store, feeding the alert book: bursts, restarts,
//! settle delays, renames and merges as the alerts a reviewer sees.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use plumbline_store::{Store, Writer};
use plumbline_trajectory::testing::{ev, six_step_story, MIN};
use plumbline_trajectory::{
    Evaluation, Evaluator, Finding, Trajectory, TrajectoryConfig, TrajectoryKind, TrajectoryStage,
};

use crate::AlertBook;

/// Records what it was asked to evaluate, and raises one finding citing every event. It
/// keeps "state" per trajectory (the event count it last saw), saved with the checkpoint
/// and given back at start, as incremental detectors' state is.
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, usize)>>, Mutex<Vec<(String, Vec<u8>)>>);

impl Evaluator for Recorder {
    fn snapshot(&self, id: &str) -> Option<Vec<u8>> {
        let seen = self.0.lock().unwrap();
        let (_, n) = seen.iter().rev().find(|(t, _)| t == id)?;
        Some(format!("saw {n}").into_bytes())
    }

    fn restore(&self, id: &str, saved: &[u8]) {
        self.1
            .lock()
            .unwrap()
            .push((id.to_string(), saved.to_vec()));
    }

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
        &TrajectoryConfig::default(),
        recorder.clone(),
        Arc::new(alerts.clone()),
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
        // The worker marks the trajectory for the checkpoint just after recording the
        // alert; give it that moment, so the stop's checkpoint saves the evaluator's state.
        std::thread::sleep(Duration::from_millis(100));
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
    // What the evaluator kept for the open trajectory came back with it.
    let restored = r.recorder.1.lock().unwrap().clone();
    assert!(
        restored.contains(&(id.clone(), b"saw 4".to_vec())),
        "{restored:?}"
    );
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
        let ignore: Arc<dyn plumbline_store::CommitListener> =
            Arc::new(|_b: plumbline_store::CommittedBatch| {});
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

/// A stop does not work through the queue first: whatever was acknowledged and not yet in a
/// trajectory, or in one and not yet judged, is applied and judged at the next start, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_with_work_queued_loses_nothing_and_raises_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let actors: Vec<String> = (0..40).map(|i| format!("actor-{i}")).collect();
    {
        let r = start(dir.path());
        // One batch per event, so the builder has a queue of small batches when the stop
        // comes right after the last acknowledgement.
        for (i, actor) in actors.iter().enumerate() {
            for step in 0..5 {
                let id = format!("e-{i}-{step}");
                let system = format!("n8n/flow-{i}");
                let e = ev(&id, actor, &system, "workflow.updated", step * MIN);
                r.writer.write(vec![e]).await.unwrap();
            }
        }
        r.stage.shutdown();
    }
    let r = reopen(dir.path());
    wait_for(|| {
        let alerts: Vec<_> = r.alerts.all().collect();
        alerts.len() == actors.len() && alerts.iter().all(|a| a.event_ids.len() == 5)
    });
    assert_eq!(
        r.stage.applied_seq(),
        200,
        "every acknowledged batch is applied"
    );
    let per_actor = |a: &str| {
        let list = r.stage.list().into_iter();
        list.filter(|t| t.kind == TrajectoryKind::Actor && t.key == a)
            .count()
    };
    assert!(actors.iter().all(|a| per_actor(a) == 1));
    r.stage.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_trajectory_is_judged_again_after_its_settle_delay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let alerts = AlertBook::open(&store).unwrap();
    let recorder = Arc::new(Recorder::default());
    let config = TrajectoryConfig {
        settle_secs: vec![1],
        ..TrajectoryConfig::default()
    };
    let stage =
        TrajectoryStage::start(store.clone(), &config, recorder.clone(), Arc::new(alerts)).unwrap();
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
    let final_id = plumbline_trajectory::window::trajectory_id(
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
    assert_eq!(gone.status, crate::AlertStatus::Resolved);
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

/// Retention forgets an alert last updated before the cutoff, with its trajectory link;
/// the trajectory, if it comes back, raises a fresh alert instead of updating a ghost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_forgets_old_alerts_and_their_links() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path());
    let story = six_step_story();
    r.writer.write(story[..3].to_vec()).await.unwrap();
    wait_for(|| r.alerts.all().count() == 1);
    let alert = r.alerts.all().next().unwrap();
    let past = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    assert!(r.alerts.sweep_before(past).unwrap().is_empty(), "too young");
    let future = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    assert_eq!(
        r.alerts.sweep_before(future).unwrap(),
        std::slice::from_ref(&alert.id)
    );
    assert!(r.alerts.get(&alert.id).unwrap().is_none());
    assert!(r
        .alerts
        .alert_of_trajectory(&alert.trajectory_id)
        .unwrap()
        .is_none());
}

/// A listener hears of a change before it is stored (to write a mark a crash keeps
/// together with the alert) and again after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_hear_of_a_change_before_and_after_it_is_stored() {
    use crate::{AlertListener, AlertUpdate};

    struct Order(AlertBook, Mutex<Vec<(&'static str, bool)>>);
    impl AlertListener for Order {
        fn alert_changing(&self, u: &AlertUpdate) {
            let stored = self.0.get(&u.alert.id).unwrap().is_some();
            self.1.lock().unwrap().push(("changing", stored));
        }
        fn alert_changed(&self, u: AlertUpdate) {
            let stored = self.0.get(&u.alert.id).unwrap().is_some();
            self.1.lock().unwrap().push(("changed", stored));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path());
    let order = Arc::new(Order(r.alerts.clone(), Mutex::default()));
    r.alerts.subscribe(order.clone());
    r.writer
        .write(six_step_story()[..3].to_vec())
        .await
        .unwrap();
    wait_for(|| order.1.lock().unwrap().len() >= 2);
    let seen = order.1.lock().unwrap().clone();
    assert_eq!(seen[..2], [("changing", false), ("changed", true)]);
}

/// Holds every evaluation until released: the stage falls behind on purpose.
struct Held(std::sync::atomic::AtomicBool);

impl Evaluator for Held {
    fn evaluate(&self, _: &Trajectory) -> Evaluation {
        while !self.0.load(std::sync::atomic::Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Evaluation::default()
    }
}

/// The evaluation lag is how long the oldest change has waited: it grows while the
/// evaluators are stuck and is back to zero once they have caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluation_lag_grows_while_evaluation_is_stuck_and_clears_when_it_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let alerts = AlertBook::open(&store).unwrap();
    let held = Arc::new(Held(std::sync::atomic::AtomicBool::new(false)));
    let stage = TrajectoryStage::start(
        store.clone(),
        &TrajectoryConfig::default(),
        held.clone(),
        Arc::new(alerts),
    )
    .unwrap();
    let writer = Writer::start(store, false, stage.listener()).unwrap();
    assert_eq!(stage.lag(), Duration::ZERO);
    writer.write(six_step_story()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let behind = stage.lag();
    assert!(behind >= Duration::from_millis(300), "lag {behind:?}");
    held.0.store(true, std::sync::atomic::Ordering::Release);
    wait_for(|| stage.lag() == Duration::ZERO);
    stage.shutdown();
}

/// A stage as a cluster node runs it (fed by its partitions' owner, not by a writer).
fn partitioned(
    dir: &std::path::Path,
    config: TrajectoryConfig,
) -> (Arc<TrajectoryStage>, AlertBook, Arc<Recorder>) {
    let store = Store::open(dir).unwrap();
    let alerts = AlertBook::open(&store).unwrap();
    let recorder = Arc::new(Recorder::default());
    let stage = TrajectoryStage::start_partitioned(
        store,
        &config,
        recorder.clone(),
        Arc::new(alerts.clone()),
    )
    .unwrap();
    (stage, alerts, recorder)
}

/// A cluster partition's owner: events applied to one side only, judged by the caller
/// (`evaluate_now`), or taken as judged when rebuilt from the log up to the checkpoint;
/// released trajectories leave the book.
#[test]
fn an_owner_builds_only_its_side_and_a_rebuild_evaluates_nothing() {
    use plumbline_trajectory::Side;
    let dir = tempfile::tempdir().unwrap();
    let (stage, alerts, recorder) = partitioned(dir.path(), TrajectoryConfig::default());
    let story: Vec<Arc<plumbline_event::Event>> =
        six_step_story().into_iter().map(Arc::new).collect();
    // Rebuilt: the first three steps were judged by the last owner.
    let rebuilt: Vec<_> = story[..3]
        .iter()
        .map(|e| (e.clone(), Side::Actor))
        .collect();
    let changed = stage.apply_owned(rebuilt, true).unwrap();
    assert_eq!(
        changed.len(),
        2,
        "the actor trajectory and its drift view, no system one"
    );
    for id in &changed {
        stage.evaluate_now(id);
    }
    assert!(
        recorder.0.lock().unwrap().is_empty(),
        "judged already: not evaluated again"
    );
    assert!(alerts.all().next().is_none());
    // Live: the next step is evaluated once, on the whole trajectory.
    let live = vec![(story[3].clone(), Side::Actor)];
    let changed = stage.apply_owned(live, false).unwrap();
    for id in &changed {
        stage.evaluate_now(id);
    }
    let evaluated = recorder.0.lock().unwrap().clone();
    assert_eq!(evaluated.len(), 1, "{evaluated:?}");
    assert_eq!(evaluated[0].1, 4);
    assert_eq!(alerts.all().count(), 1);
    let listed = stage.list();
    assert!(
        listed.iter().all(|t| t.kind.side() == Side::Actor),
        "{listed:?}"
    );
    // The partition moves away: its trajectories leave this node's book.
    assert_eq!(
        stage.release(|kind, _| kind.side() != Side::Actor).unwrap(),
        2
    );
    assert!(stage.get(&evaluated[0].0).unwrap().is_none());
}

/// Every stored version of an alert reaches the replica in order — a move to a renamed
/// trajectory included — and an imported version is stored without being replicated back
/// or overwriting a newer one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_versions_replicate_in_order_and_imports_keep_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path());
    let copies: Arc<Mutex<Vec<crate::Alert>>> = Arc::default();
    let c = copies.clone();
    r.alerts.replicate(Arc::new(move |a: &crate::Alert| {
        c.lock().unwrap().push(a.clone())
    }));
    let story = six_step_story();
    r.writer.write(story[1..3].to_vec()).await.unwrap();
    wait_for(|| r.alerts.all().count() == 1);
    // An earlier event renames the trajectory: the alert moves, and that is a version too.
    r.writer.write(story[..1].to_vec()).await.unwrap();
    wait_for(|| {
        let a = r.alerts.all().next().unwrap();
        a.event_ids.len() == 3
            && copies
                .lock()
                .unwrap()
                .last()
                .is_some_and(|c| c.trajectory_id == a.trajectory_id && c.updated_at == a.updated_at)
    });
    let seen = copies.lock().unwrap().clone();
    assert!(seen.len() >= 2, "{seen:?}");
    let last = r.alerts.all().next().unwrap();
    assert_eq!(seen.last().unwrap().updated_at, last.updated_at);
    // An older version from another node does not replace this one; a newer one does.
    let mut older = last.clone();
    older.updated_at = "2000-01-01T00:00:00Z".into();
    older.title = "stale".into();
    assert!(!r.alerts.import(&older).unwrap());
    let mut newer = last.clone();
    newer.updated_at = "2999-01-01T00:00:00Z".into();
    newer.title = "from the owner".into();
    assert!(r.alerts.import(&newer).unwrap());
    assert_eq!(
        r.alerts.get(&last.id).unwrap().unwrap().title,
        "from the owner"
    );
    assert_eq!(
        copies.lock().unwrap().len(),
        seen.len(),
        "imports are not replicated"
    );
}

/// A partition rebuilt from the log is not evaluated, but its settle re-evaluations (in
/// the last owner's memory) are scheduled again.
#[test]
fn a_rebuilt_trajectory_is_judged_again_when_it_settles() {
    use plumbline_trajectory::Side;
    let dir = tempfile::tempdir().unwrap();
    let config = TrajectoryConfig {
        settle_secs: vec![1],
        ..TrajectoryConfig::default()
    };
    let (stage, _alerts, recorder) = partitioned(dir.path(), config);
    let story: Vec<_> = six_step_story()[..2]
        .iter()
        .map(|e| (Arc::new(e.clone()), Side::Actor))
        .collect();
    stage.apply_owned(story, true).unwrap();
    assert!(
        recorder.0.lock().unwrap().is_empty(),
        "not evaluated when rebuilt"
    );
    wait_for(|| recorder.0.lock().unwrap().len() == 1);
}
