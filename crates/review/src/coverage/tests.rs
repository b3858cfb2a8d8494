//! Coverage over a real sled store: arrivals, silence, deadlines, high-risk coverage.
use super::*;

const T0: i64 = 1_795_000_000;

fn ev(id: &str, source: &str, action: &str) -> Arc<Event> {
    Arc::new(
        serde_json::from_value(serde_json::json!({
            "id": id, "time": "2026-11-25T10:00:00Z", "source": source,
            "actor": {"id": "a", "type": "human"}, "system": "acme/api", "action": action,
            "environment": "prod",
        }))
        .unwrap(),
    )
}

fn setup(c: impl FnOnce(&mut ReviewConfig)) -> (tempfile::TempDir, Store, AlertBook, Coverage) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let alerts = AlertBook::open(&store).unwrap();
    let mut config = ReviewConfig {
        silence_min_events: 5,
        silence_min_minutes: 30,
        ..ReviewConfig::default()
    };
    c(&mut config);
    let cov = Coverage::open(&store, Arc::new(config), alerts.clone()).unwrap();
    (dir, store, alerts, cov)
}

/// Stores an event so a silence alert can cite it.
fn stored(store: &Store, e: &Event) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let w = plumbline_store::Writer::start(
        store.clone(),
        false,
        Arc::new(|_b: plumbline_store::CommittedBatch| {}),
    )
    .unwrap();
    rt.block_on(w.write(vec![e.clone()])).unwrap();
    rt.block_on(w.barrier()).unwrap();
}

#[test]
fn a_source_quiet_beyond_its_usual_gap_raises_one_informational_alert_then_settles() {
    let (_d, store, alerts, cov) = setup(|_| {});
    // Every 10 minutes for 3 hours: the usual gap is 10 minutes.
    let mut t = T0;
    for i in 0..18 {
        cov.record_at(&[ev(&format!("g{i}"), "github", "git.push")], t);
        t += 600;
    }
    let last = ev("g-last", "github", "git.push");
    stored(&store, &last);
    cov.record_at(std::slice::from_ref(&last), t);
    // 20 minutes later: quiet, not silent (at least 30 minutes).
    let (silent, _) = cov.check_at(t + 1200);
    assert!(silent.is_empty());
    // 40 minutes later: silent (max(30 min, 2 × 10 min)).
    let (silent, _) = cov.check_at(t + 2400);
    assert_eq!(silent.len(), 1);
    assert_eq!(silent[0].usual_gap, 600);
    assert_eq!(
        silent[0].title(),
        "github has sent nothing for 40 min (usually quiet at most 10 min)"
    );
    let id = cov.raise(&silent[0]).unwrap().unwrap();
    let a = alerts.get(&id).unwrap().unwrap();
    assert_eq!(a.severity, INFORMATIONAL);
    assert_eq!(a.event_ids, vec!["g-last"]);
    assert_eq!(a.signals, vec![SIGNAL]);
    assert!(cov.trajectory(&a.trajectory_id).is_some());
    // One alert per spell.
    assert!(cov.check_at(t + 4000).0.is_empty());
    // It speaks again: the alert is settled and the spell does not become usual.
    let back = t + 5000;
    cov.record_at(&[ev("g-back", "github", "git.push")], back);
    let (silent, ended) = cov.check_at(back + 10);
    assert!(silent.is_empty());
    assert_eq!(ended.len(), 1);
    cov.settle(&ended[0].0, ended[0].1.clone()).unwrap();
    let a = alerts.get(&id).unwrap().unwrap();
    assert_eq!(a.status, AlertStatus::Resolved);
    assert!(
        a.notes
            .last()
            .unwrap()
            .contains("after 1 h 23 min of silence"),
        "{:?}",
        a.notes
    );
    let report = cov.report(back + 10, None, &Histogram::new(LATENCY_BOUNDS));
    let gh = report
        .sources
        .iter()
        .find(|s| s.source == "github")
        .unwrap();
    assert_eq!(gh.usual_gap_secs, 600);
    assert_eq!(gh.state, "ok");
}

#[test]
fn sources_still_learning_are_not_called_silent() {
    let (_d, _store, _alerts, cov) = setup(|_| {});
    cov.record_at(&[ev("v1", "vault", "secret.read")], T0);
    assert!(cov.check_at(T0 + 86_400).0.is_empty());
    let r = cov.report(T0 + 86_400, None, &Histogram::new(LATENCY_BOUNDS));
    assert_eq!(
        r.sources
            .iter()
            .find(|s| s.source == "vault")
            .unwrap()
            .state,
        "learning"
    );
    assert_eq!(
        r.sources.iter().find(|s| s.source == "okta").unwrap().state,
        "never"
    );
}

#[test]
fn records_survive_a_restart() {
    let (dir, store, alerts, cov) = setup(|_| {});
    cov.record_at(
        &[
            ev("a", "n8n", "workflow.updated"),
            ev("b", "n8n", "workflow.executed"),
        ],
        T0,
    );
    cov.persist_at(T0).unwrap();
    drop(cov);
    let again = Coverage::open(&store, Arc::new(ReviewConfig::default()), alerts).unwrap();
    let r = again.report(T0 + 60, None, &Histogram::new(LATENCY_BOUNDS));
    let n8n = r.sources.iter().find(|s| s.source == "n8n").unwrap();
    assert_eq!(n8n.events_total, 2);
    assert_eq!(n8n.last_event_id.as_deref(), Some("b"));
    assert_eq!(*n8n.hourly.last().unwrap(), 2);
    drop(dir);
}

fn detector(state: &'static str, sources: &[&str], actions: &[&str]) -> Watch {
    Watch {
        active: state == "active",
        sources: sources.iter().map(|s| s.to_string()).collect(),
        actions: actions.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn high_risk_coverage_is_watched_share_times_on_time_share() {
    let (_d, _store, _alerts, cov) = setup(|c| c.deadline_ms = 50);
    cov.record_at(
        &[
            ev("s1", "vault", "secret.read"),
            ev("s2", "vault", "secret.read"),
            ev("s3", "vault", "secret.read"),
            ev("w1", "n8n", "workflow.updated"),
            ev("p1", "github", "git.push"), // not a high-risk surface
        ],
        T0,
    );
    let h = Histogram::new(LATENCY_BOUNDS);
    for ms in [5.0, 10.0, 30.0, 200.0] {
        h.observe(ms / 1000.0);
    }
    let detectors = vec![
        detector("active", &["vault"], &["secret.*"]),
        detector("quarantined", &[], &["workflow.*"]),
    ];
    let r = cov.report(T0 + 60, Some(&detectors), &h);
    assert_eq!(r.high_risk.events, 4);
    assert_eq!(
        r.high_risk.watched, 3,
        "a quarantined detector watches nothing"
    );
    assert_eq!(r.evaluations.share, Some(0.75));
    assert_eq!(r.high_risk.coverage, Some(0.75 * 0.75));
    assert_eq!(r.high_risk.meets_target, Some(false));
    let wf = r
        .high_risk
        .surfaces
        .iter()
        .find(|s| s.surface == "workflow_edits")
        .unwrap();
    assert_eq!(wf.unwatched, vec!["n8n workflow.updated"]);
    let mut all = detectors;
    all[1].active = true;
    let h = Histogram::new(LATENCY_BOUNDS);
    h.observe(0.004);
    let r = cov.report(T0 + 60, Some(&all), &h);
    assert_eq!(r.high_risk.coverage, Some(1.0));
    assert_eq!(r.high_risk.meets_target, Some(true));
}
