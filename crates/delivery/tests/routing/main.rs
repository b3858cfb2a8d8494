//! Policy and routing against real local receivers: every destination's API shape over
//! HTTP, a real SMTP conversation for the digest, sled reopened for restarts, an injected
//! clock for quiet hours and schedules. Nothing here waits on wall-clock time except
//! bounded waits for the end-to-end path.

mod receivers;

use receivers::policy_toml;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use time::macros::datetime;

use plumbline_alert::finding::Finding;
use plumbline_alert::{AlertBook, AlertStatus};
use plumbline_delivery::route::outbox::{DeliverySettings, DeliveryState};
use plumbline_delivery::{Routing, RoutingSettings};
use plumbline_event::{parse_event, Event};
use plumbline_policy::model::Policy;
use plumbline_policy::schedule::ManualClock;
use plumbline_store::{CommittedBatch, Store, Writer};
use plumbline_trajectory::{Trajectory, TrajectoryKind};

const PUBLIC: &str = "http://plumbline.test";

struct Instance {
    alerts: AlertBook,
    routing: Routing,
    _writer: Writer,
    _store: Store,
}

fn settings() -> RoutingSettings {
    RoutingSettings {
        public_url: PUBLIC.into(),
        delivery: DeliverySettings {
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(4),
            give_up_after: Duration::from_secs(72 * 3600),
            poll: Duration::from_millis(50),
            keep_finished: Duration::from_secs(86400),
            digest_limit: 500,
        },
        http_timeout: Duration::from_secs(10),
    }
}

/// Opens store, alert book and routing in `dir` (retrying while a previous instance's
/// threads still hold the database).
async fn open(
    dir: &std::path::Path,
    policy: &str,
    clock: Arc<ManualClock>,
    webhook: &str,
) -> Instance {
    let mut store = None;
    for _ in 0..200 {
        match Store::open(dir) {
            Ok(s) => {
                store = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    let store = store.expect("store reopens");
    let alerts = AlertBook::open(&store).unwrap();
    let policy = Policy::parse(policy, "test policy").unwrap();
    let env: HashMap<&str, String> = [
        ("TEST_WEBHOOK_URL", webhook.to_string()),
        ("TEST_JIRA_TOKEN", "jira-token".to_string()),
    ]
    .into();
    let routing = Routing::open(&store, alerts.clone(), policy, settings(), clock, &|k| {
        env.get(k).cloned()
    })
    .unwrap();
    alerts.subscribe(routing.stage.subscriber());
    let writer = Writer::start(store.clone(), false, Arc::new(|_: CommittedBatch| {})).unwrap();
    routing
        .dispatcher()
        .set_durability(Arc::new(writer.clone()));
    Instance {
        alerts,
        routing,
        _writer: writer,
        _store: store,
    }
}

impl Instance {
    async fn pass(&self) -> plumbline_delivery::route::outbox::PassReport {
        self.routing.dispatcher().pass().await.unwrap()
    }
}

fn ev(id: &str, actor: &str, system: &str, action: &str, extra: Value) -> Arc<Event> {
    let mut v = json!({
        "id": id, "time": "2025-03-04T11:00:00Z", "source": "n8n",
        "actor": {"id": actor, "type": "human"}, "system": system, "action": action,
        "environment": "prod",
    });
    for (k, x) in extra.as_object().cloned().unwrap_or_default() {
        v[k] = x;
    }
    // As ingest marks events whose source's credential verified (a response action acts
    // only on those).
    let source = v["source"].clone();
    if !v["attributes"].is_object() {
        v["attributes"] = json!({});
    }
    v["attributes"]["plumbline.verified_by"] = source;
    Arc::new(parse_event(v).unwrap())
}

/// Raises an alert through the alert book (listeners, i.e. the policy stage, are told).
fn raise(
    alerts: &AlertBook,
    key: &str,
    events: Vec<Arc<Event>>,
    signal: &str,
    severity: u8,
) -> String {
    let t = Arc::new(Trajectory {
        id: format!("trj-{key}"),
        kind: TrajectoryKind::Actor,
        key: key.into(),
        start: 0,
        end: 0,
        closes_at: 0,
        dropped: 0,
        hash: format!("hash-{key}"),
        events: events.clone().into(),
    });
    let f = Finding {
        detector: "test.detector".into(),
        detector_version: "1.0.0".into(),
        signal: signal.into(),
        severity,
        score: 0.9,
        title: format!("{signal} by {key}"),
        evidence: events.iter().map(|e| e.id.clone()).collect(),
        next_step: "ask for business justification".into(),
    };
    alerts.apply(&t, &[f]).unwrap().unwrap().alert.id
}

fn text_of(r: &receivers::Req) -> String {
    r.body.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_severity_takes_its_route_with_each_destinations_api() {
    let (rx_addr, rx) = receivers::start().await;
    let (smtp_addr, mails) = receivers::start_smtp().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(datetime!(2025-03-04 12:00 UTC)));
    let webhook = format!("http://{rx_addr}/webhook");
    let i = open(
        dir.path(),
        &policy_toml(rx_addr, smtp_addr, ""),
        clock.clone(),
        &webhook,
    )
    .await;

    let urgent = raise(
        &i.alerts,
        "ada",
        vec![
            ev(
                "u1",
                "ada@example.com",
                "n8n/workflow/wf-1",
                "workflow.created",
                json!({}),
            ),
            ev(
                "u2",
                "ada@example.com",
                "n8n/workflow/wf-1",
                "data.export",
                json!({"destination": "https://paste.example.net/x"}),
            ),
        ],
        "exfil.large_export_new_destination",
        3,
    );
    let review = raise(
        &i.alerts,
        "bob",
        vec![ev(
            "r1",
            "bob@example.com",
            "vault/prod",
            "credential.scope.increased",
            json!({}),
        )],
        "credential.scope_increase",
        2,
    );
    let info = raise(
        &i.alerts,
        "cy",
        vec![ev(
            "i1",
            "cy@example.com",
            "n8n/workflow/wf-9",
            "workflow.updated",
            json!({"environment": "test"}),
        )],
        "workflow.edit",
        1,
    );
    let r = i.pass().await;
    assert_eq!(r.failed, 0, "{r:?}");

    // Severity 3: paged, chat, ticket (Jira as an incident), Linear, webhook.
    let pd = rx.of("pagerduty");
    assert_eq!(pd.len(), 1);
    assert_eq!(pd[0].body["event_action"], "trigger");
    assert_eq!(pd[0].body["dedup_key"], format!("plumbline-{urgent}"));
    assert_eq!(pd[0].body["payload"]["severity"], "critical");
    assert_eq!(
        pd[0].body["links"][0]["href"],
        format!("{PUBLIC}/review/#/alert/{urgent}")
    );
    let slack = rx.of("slack");
    assert_eq!(slack.len(), 2, "severity 3 and 2 go to chat, 1 does not");
    let s3 = slack.iter().find(|r| text_of(r).contains(&urgent)).unwrap();
    assert!(text_of(s3).contains("Severity 3"));
    assert!(text_of(s3).contains("exfil.large_export_new_destination"));
    let s2 = slack.iter().find(|r| text_of(r).contains(&review)).unwrap();
    assert!(
        text_of(s2).contains("one-sentence justification"),
        "{}",
        text_of(s2)
    );
    assert!(!slack.iter().any(|r| text_of(r).contains(&info)));
    assert_eq!(rx.of("teams").len(), 2);
    let jira = rx.of("jira");
    assert_eq!(jira.len(), 2);
    let j3 = jira.iter().find(|r| text_of(r).contains(&urgent)).unwrap();
    assert_eq!(j3.body["fields"]["issuetype"]["name"], "Incident");
    assert!(j3.body["fields"]["description"]
        .as_str()
        .unwrap()
        .contains(&format!("{PUBLIC}/review/#/alert/{urgent}")));
    let j2 = jira.iter().find(|r| text_of(r).contains(&review)).unwrap();
    assert_eq!(j2.body["fields"]["issuetype"]["name"], "Task");
    let linear = rx.of("linear");
    assert_eq!(linear.len(), 2);
    assert!(linear
        .iter()
        .any(|r| r.body["variables"]["input"]["priority"] == 1));
    // The webhook takes every severity, signed (the receiver checked the HMAC).
    let hooks = rx.of("webhook");
    assert_eq!(hooks.len(), 3);
    assert!(hooks.iter().all(|h| h.body["type"] == "alert.notify"));
    // Severity 1 waits for the digest.
    assert!(mails.lock().unwrap().is_empty());
    let status = i.routing.dispatcher().status();
    assert_eq!(status.pending, 1);
    assert_eq!(status.held, 1);
    assert_eq!(i.routing.stage.incidents().len(), 1);
    assert_eq!(i.routing.stage.incidents()[0].alert_id, urgent);

    // The next morning the digest goes out by SMTP, once.
    clock.set(datetime!(2025-03-05 08:00:01 UTC));
    i.pass().await;
    i.pass().await;
    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("Plumbline daily digest (1 alerts)"),
        "{}",
        mails[0]
    );
    assert!(mails[0].contains("workflow.edit by cy"));
    assert!(mails[0].contains(&format!("{PUBLIC}/review/#/alert/{info}")));

    // A reviewer resolves the urgent alert: the page is resolved with the same key.
    i.alerts
        .update(&urgent, |a| a.status = AlertStatus::Resolved)
        .unwrap();
    i.pass().await;
    let pd = rx.of("pagerduty");
    assert_eq!(pd.len(), 2);
    assert_eq!(pd[1].body["event_action"], "resolve");
    assert_eq!(pd[1].body["dedup_key"], format!("plumbline-{urgent}"));
    // Nothing else was sent.
    assert_eq!(rx.of("slack").len(), 2);
    assert_eq!(i.routing.dispatcher().status().pending, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_hold_severity_two_until_morning_and_severity_three_always_goes() {
    let (rx_addr, rx) = receivers::start().await;
    let (smtp_addr, _) = receivers::start_smtp().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(datetime!(2025-03-04 23:30 UTC)));
    let i = open(
        dir.path(),
        &policy_toml(rx_addr, smtp_addr, ""),
        clock.clone(),
        &format!("http://{rx_addr}/webhook"),
    )
    .await;
    let night2 = raise(
        &i.alerts,
        "bob",
        vec![ev(
            "q1",
            "bob@example.com",
            "vault/prod",
            "credential.scope.increased",
            json!({}),
        )],
        "credential.scope_increase",
        2,
    );
    let night3 = raise(
        &i.alerts,
        "ada",
        vec![ev(
            "q2",
            "ada@example.com",
            "n8n/workflow/wf-1",
            "data.export",
            json!({}),
        )],
        "exfil.large_export",
        3,
    );
    i.pass().await;
    let slack = rx.of("slack");
    assert_eq!(slack.len(), 1, "only the urgent alert goes out at night");
    assert!(text_of(&slack[0]).contains(&night3));
    assert_eq!(rx.of("pagerduty").len(), 1);
    let d = i.routing.stage.decisions(&night2).unwrap();
    let held: Vec<_> = d[0]
        .deliveries
        .iter()
        .filter(|o| o.outcome == "held")
        .collect();
    assert_eq!(held.len(), 5, "{:?}", d[0].deliveries);
    assert!(held
        .iter()
        .all(|o| o.not_before.as_deref() == Some("2025-03-05T08:00:00Z")));
    assert!(i
        .alerts
        .get(&night2)
        .unwrap()
        .unwrap()
        .notes
        .iter()
        .any(|n| n.contains("held for quiet hours until 2025-03-05T08:00:00Z")));

    clock.set(datetime!(2025-03-05 07:59 UTC));
    i.pass().await;
    assert_eq!(rx.of("slack").len(), 1, "still night");

    clock.set(datetime!(2025-03-05 08:00 UTC));
    i.pass().await;
    i.pass().await;
    let slack = rx.of("slack");
    assert_eq!(slack.len(), 2, "released in the morning, once");
    assert!(text_of(&slack[1]).contains(&night2));
    assert_eq!(rx.of("jira").len(), 2);
    assert_eq!(i.routing.dispatcher().status().pending, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_lists_suppress_or_downgrade_with_the_reason_on_the_alert() {
    let (rx_addr, rx) = receivers::start().await;
    let (smtp_addr, _) = receivers::start_smtp().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(datetime!(2025-03-04 12:00 UTC)));
    let extra = r#"
[[allow.domains]]
name = "company storage"
domains = ["company.com"]
reason = "our own backup bucket"

[[allow.service_accounts]]
name = "nightly sync"
actors = ["svc-sync*"]
action = "downgrade"
reason = "the CRM sync exports every night"
"#;
    let i = open(
        dir.path(),
        &policy_toml(rx_addr, smtp_addr, extra),
        clock,
        &format!("http://{rx_addr}/webhook"),
    )
    .await;
    let allowed = raise(
        &i.alerts,
        "ada",
        vec![ev(
            "a1",
            "ada@example.com",
            "n8n/workflow/wf-1",
            "data.export",
            json!({"destination": "https://backups.company.com/upload"}),
        )],
        "exfil.large_export_new_destination",
        3,
    );
    let outside = raise(
        &i.alerts,
        "eve",
        vec![ev(
            "a2",
            "eve@example.com",
            "n8n/workflow/wf-2",
            "data.export",
            json!({"destination": "https://company.com.evil.net/upload"}),
        )],
        "exfil.large_export_new_destination",
        3,
    );
    let sync = raise(
        &i.alerts,
        "svc-sync-crm",
        vec![ev(
            "a3",
            "svc-sync-crm",
            "crm",
            "data.export",
            json!({"actor": {"id": "svc-sync-crm", "type": "service"}}),
        )],
        "exfil.large_export",
        3,
    );
    i.pass().await;

    let a = i.alerts.get(&allowed).unwrap().unwrap();
    assert_eq!(a.status, AlertStatus::Suppressed);
    let note = a.notes.iter().find(|n| n.contains("suppressed")).unwrap();
    assert!(note.contains("company.com"), "{note}");
    assert!(note.contains("our own backup bucket"), "{note}");
    let d = i.routing.stage.decisions(&allowed).unwrap();
    assert!(d[0].suppressed.is_some());
    assert!(d[0].deliveries.is_empty());

    // A look-alike domain is not covered: it pages.
    assert_eq!(
        i.alerts.get(&outside).unwrap().unwrap().status,
        AlertStatus::Open
    );
    let pd = rx.of("pagerduty");
    assert_eq!(pd.len(), 1);
    assert_eq!(pd[0].body["dedup_key"], format!("plumbline-{outside}"));

    // The service account's export is downgraded to "needs review": chat, not a page.
    let s = i.alerts.get(&sync).unwrap().unwrap();
    assert!(s
        .notes
        .iter()
        .any(|n| n.contains("downgraded from severity 3 to 2")
            && n.contains("the CRM sync exports every night")));
    let slack = rx.of("slack");
    assert!(slack
        .iter()
        .any(|r| text_of(r).contains(&sync) && text_of(r).contains("Severity 2")));
    assert!(!slack.iter().any(|r| text_of(r).contains(&allowed)));
    assert!(!rx
        .of("webhook")
        .iter()
        .any(|r| text_of(r).contains(&allowed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_while_gets_every_message_exactly_once_also_across_a_restart() {
    let (rx_addr, rx) = receivers::start().await;
    let (smtp_addr, _) = receivers::start_smtp().await;
    // The webhook receiver is not even listening yet: connections are refused.
    let hook_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let webhook = format!("http://{hook_port}/webhook");
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_toml(rx_addr, smtp_addr, "");
    let clock = Arc::new(ManualClock::new(datetime!(2025-03-04 12:00 UTC)));
    rx.down.store(true, Ordering::SeqCst);

    let mut ids = Vec::new();
    {
        let i = open(dir.path(), &policy, clock.clone(), &webhook).await;
        for n in 0..3 {
            ids.push(raise(
                &i.alerts,
                &format!("user{n}"),
                vec![ev(
                    &format!("d{n}"),
                    &format!("user{n}@example.com"),
                    &format!("repo-{n}"),
                    "git.push.force",
                    json!({}),
                )],
                &format!("review.bypass.force_push_{n}"),
                2,
            ));
        }
        for _ in 0..4 {
            let r = i.pass().await;
            assert_eq!(r.delivered, 0);
            clock.advance(Duration::from_secs(5));
        }
        let st = i.routing.dispatcher().status();
        assert_eq!(st.pending, 15, "3 alerts × 5 destinations wait: {st:?}");
        assert!(st.destinations["slack"].retrying >= 1);
        assert!(st.destinations["webhook"]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("error"));
        assert!(rx.attempts.load(Ordering::SeqCst) >= 4 * 4);
        assert!(rx.accepted.lock().unwrap().is_empty());
        // Plumbline stops here (the instance and its database are dropped).
    }

    // Restart with the receivers still down for a while.
    let i = open(dir.path(), &policy, clock.clone(), &webhook).await;
    assert_eq!(i.routing.dispatcher().status().pending, 15);
    let r = i.pass().await;
    assert_eq!(r.delivered, 0);

    // They recover.
    rx.down.store(false, Ordering::SeqCst);
    let hook_rx = Arc::new(receivers::Rx::default());
    receivers::serve_on(
        tokio::net::TcpListener::bind(hook_port).await.unwrap(),
        hook_rx.clone(),
    );
    for _ in 0..6 {
        clock.advance(Duration::from_secs(5));
        i.pass().await;
    }
    let st = i.routing.dispatcher().status();
    assert_eq!(st.pending, 0, "{st:?}");
    assert_eq!(st.delivered, 15);
    for kind in ["slack", "teams", "jira", "linear"] {
        let got = rx.of(kind);
        assert_eq!(got.len(), 3, "{kind}: exactly one per alert");
        for id in &ids {
            assert_eq!(
                got.iter().filter(|r| text_of(r).contains(id)).count(),
                1,
                "{kind} got {id} once"
            );
        }
    }
    let hooks = hook_rx.of("webhook");
    assert_eq!(hooks.len(), 3);
    let mut delivery_ids: Vec<String> = hooks
        .iter()
        .map(|h| {
            h.headers["x-plumbline-delivery"]
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    delivery_ids.dedup();
    assert_eq!(delivery_ids.len(), 3);
    // Order kept per destination: the alerts arrive in the order they were raised.
    let slack_order: Vec<usize> = rx
        .of("slack")
        .iter()
        .map(|r| ids.iter().position(|id| text_of(r).contains(id)).unwrap())
        .collect();
    assert_eq!(slack_order, vec![0, 1, 2]);
    drop(i);

    // And after another restart nothing is sent again.
    let i = open(dir.path(), &policy, clock.clone(), &webhook).await;
    i.pass().await;
    assert_eq!(rx.of("slack").len(), 3);
    assert_eq!(hook_rx.of("webhook").len(), 3);
    let failed: Vec<_> = i
        .routing
        .outbox
        .finished()
        .filter(|d| d.state != DeliveryState::Delivered)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_lowers_to_review_within_a_day_and_follows_up_when_nobody_reviewed() {
    let (rx_addr, rx) = receivers::start().await;
    let (smtp_addr, _) = receivers::start_smtp().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(datetime!(2025-03-04 12:00 UTC)));
    let i = open(
        dir.path(),
        &policy_toml(rx_addr, smtp_addr, ""),
        clock.clone(),
        &format!("http://{rx_addr}/webhook"),
    )
    .await;
    let emergency = raise(
        &i.alerts,
        "ops",
        vec![ev(
            "b1",
            "ops@example.com",
            "payments",
            "deploy.direct",
            json!({"attributes": {"incident_id": "INC-4521"}}),
        )],
        "change.direct_to_prod",
        3,
    );
    let reviewed = raise(
        &i.alerts,
        "ops2",
        vec![ev(
            "b2",
            "ops2@example.com",
            "billing",
            "deploy.direct",
            json!({"attributes": {"incident_id": "INC-4522"}}),
        )],
        "change.direct_to_prod",
        3,
    );
    let no_ticket = raise(
        &i.alerts,
        "ops3",
        vec![ev(
            "b3",
            "ops3@example.com",
            "auth",
            "deploy.direct",
            json!({}),
        )],
        "change.direct_to_prod",
        3,
    );
    i.pass().await;
    // With a ticket: not paged, sent for review with the deadline.
    let pd = rx.of("pagerduty");
    assert_eq!(pd.len(), 1, "only the change without a ticket pages");
    assert_eq!(pd[0].body["dedup_key"], format!("plumbline-{no_ticket}"));
    let a = i.alerts.get(&emergency).unwrap().unwrap();
    let note = a.notes.iter().find(|n| n.contains("break-glass")).unwrap();
    assert!(
        note.contains("INC-4521") && note.contains("review within 24 hours"),
        "{note}"
    );
    let d = &i.routing.stage.decisions(&emergency).unwrap()[0];
    assert_eq!(d.severity, 2);
    assert_eq!(d.review_by.as_deref(), Some("2025-03-05T12:00:00Z"));
    assert!(!d.follow_up_ids.is_empty());
    let slack_now = rx.of("slack").len();
    assert_eq!(slack_now, 3);

    // One of the two is reviewed in time; the other is not.
    i.alerts
        .update(&reviewed, |a| a.status = AlertStatus::Reviewed)
        .unwrap();
    clock.set(datetime!(2025-03-05 12:00:01 UTC));
    i.pass().await;
    let follow_ups: Vec<_> = rx
        .of("slack")
        .into_iter()
        .filter(|r| text_of(r).contains("Follow-up due"))
        .collect();
    assert_eq!(follow_ups.len(), 1);
    assert!(text_of(&follow_ups[0]).contains(&emergency));
    assert!(!rx
        .of("slack")
        .iter()
        .any(|r| text_of(r).contains("Follow-up due") && text_of(r).contains(&reviewed)));
    let cancelled = i
        .routing
        .outbox
        .finished()
        .filter(|d| d.state == DeliveryState::Cancelled)
        .count();
    assert!(cancelled >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_story_notifies_once_within_the_dedup_window() {
    let (rx_addr, rx) = receivers::start().await;
    let (smtp_addr, _) = receivers::start_smtp().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(datetime!(2025-03-04 12:00 UTC)));
    let i = open(
        dir.path(),
        &policy_toml(rx_addr, smtp_addr, ""),
        clock.clone(),
        &format!("http://{rx_addr}/webhook"),
    )
    .await;
    let events = vec![ev(
        "s1",
        "bob@example.com",
        "vault/prod",
        "credential.scope.increased",
        json!({}),
    )];
    let first = raise(
        &i.alerts,
        "bob",
        events.clone(),
        "credential.scope_increase",
        2,
    );
    // The same evidence seen from the system's trajectory: another alert, same story.
    let second = raise(
        &i.alerts,
        "vault/prod",
        events.clone(),
        "credential.scope_increase",
        2,
    );
    i.pass().await;
    assert_eq!(rx.of("slack").len(), 1);
    let d = &i.routing.stage.decisions(&second).unwrap()[0];
    assert_eq!(d.deduplicated_by.as_deref(), Some(first.as_str()));
    // After the window the story may notify again.
    clock.advance(Duration::from_secs(241 * 60));
    let _third = raise(
        &i.alerts,
        "bob-again",
        events,
        "credential.scope_increase",
        2,
    );
    i.pass().await;
    assert_eq!(rx.of("slack").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_actions_run_denied_and_expired_ones_never_do() {
    let (rx_addr, rx) = receivers::start().await;
    let (smtp_addr, _) = receivers::start_smtp().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(datetime!(2025-03-04 12:00 UTC)));
    let policy = policy_toml(rx_addr, smtp_addr, "")
        .replace("[actions]\nenabled = false", "[actions]\nenabled = true")
        .replace(
            &format!("api_key = \"{}\"\n", receivers::N8N_KEY),
            &format!(
                "api_key = \"{}\"\nautomatic_signals = [\"exfil.auto_*\"]\n",
                receivers::N8N_KEY
            ),
        );
    let i = open(
        dir.path(),
        &policy,
        clock.clone(),
        &format!("http://{rx_addr}/webhook"),
    )
    .await;
    let wf = |id: &str, n: &str| {
        ev(
            id,
            &format!("{n}@example.com"),
            &format!("n8n/workflow/{n}"),
            "data.export",
            json!({"attributes": {"workflow.id": n}}),
        )
    };
    let auto = raise(
        &i.alerts,
        "a",
        vec![wf("x1", "wf-7")],
        "exfil.auto_pause",
        3,
    );
    let denied = raise(&i.alerts, "b", vec![wf("x2", "wf-8")], "exfil.manual", 3);
    let stale = raise(&i.alerts, "c", vec![wf("x3", "wf-9")], "exfil.other", 3);
    i.pass().await;
    i.pass().await;

    // Automatic for its signal: ran without anyone, recorded as decided by policy.
    let n8n = rx.of("n8n");
    assert_eq!(n8n.len(), 1);
    assert_eq!(n8n[0].body["workflow_id"], "wf-7");
    let actions = i.routing.responder.list().unwrap();
    let a = actions.iter().find(|a| a.alert_id == auto).unwrap();
    assert_eq!(a.state, plumbline_delivery::respond::ActionState::Done);
    assert_eq!(a.decision.as_ref().unwrap().by, "policy");

    // Denied: never runs, and cannot be approved afterwards.
    let d = actions.iter().find(|a| a.alert_id == denied).unwrap();
    assert_eq!(d.state, plumbline_delivery::respond::ActionState::Pending);
    let r = i
        .routing
        .responder
        .deny(&d.id, "alice", "review-page", "planned change")
        .unwrap();
    assert_eq!(r.state, plumbline_delivery::respond::ActionState::Denied);
    assert!(i
        .routing
        .responder
        .approve(&d.id, "mallory", "t", "")
        .is_err());
    // Nobody answers the third within expire_hours (24).
    clock.advance(Duration::from_secs(25 * 3600));
    let s = i
        .routing
        .responder
        .list()
        .unwrap()
        .into_iter()
        .find(|a| a.alert_id == stale)
        .unwrap();
    assert_eq!(s.state, plumbline_delivery::respond::ActionState::Expired);
    assert!(i
        .routing
        .responder
        .approve(&s.id, "alice", "t", "")
        .is_err());
    i.pass().await;
    assert_eq!(rx.of("n8n").len(), 1, "only the automatic action ran");
    let notes = i.alerts.get(&denied).unwrap().unwrap().notes;
    assert!(
        notes.iter().any(|n| n.contains("denied by alice")),
        "{notes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_delivery_is_kept_as_failed_and_can_be_put_back() {
    let (rx_addr, rx) = receivers::start().await;
    let (smtp_addr, _) = receivers::start_smtp().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(datetime!(2025-03-04 12:00 UTC)));
    // Linear refuses the key with a GraphQL error; the others accept.
    let policy = policy_toml(rx_addr, smtp_addr, "").replace(
        &format!("api_key = \"{}\"\nteam_id", receivers::LINEAR_KEY),
        "api_key = \"lin_api_wrong\"\nteam_id",
    );
    let i = open(
        dir.path(),
        &policy,
        clock.clone(),
        &format!("http://{rx_addr}/webhook"),
    )
    .await;
    raise(
        &i.alerts,
        "bob",
        vec![ev(
            "f1",
            "bob@example.com",
            "vault/prod",
            "credential.scope.increased",
            json!({}),
        )],
        "credential.scope_increase",
        2,
    );
    let r = i.pass().await;
    assert_eq!(r.failed, 1, "{r:?}");
    assert_eq!(r.delivered, 4);
    let failed: Vec<_> = i
        .routing
        .outbox
        .finished()
        .filter(|d| d.state == DeliveryState::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].destination, "linear");
    assert!(failed[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("Authentication required"));
    let st = i.routing.dispatcher().status();
    assert_eq!((st.pending, st.failed), (0, 1));
    // Put back in line (after fixing the key, an operator would): pending again.
    let back = i.routing.outbox.retry(failed[0].id).unwrap().unwrap();
    assert_eq!(back.state, DeliveryState::Pending);
    assert_eq!(i.routing.dispatcher().status().pending, 1);
    assert!(rx.of("linear").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_revoked_where_the_source_supports_it_once_approved() {
    let (rx_addr, rx) = receivers::start().await;
    let (smtp_addr, _) = receivers::start_smtp().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(datetime!(2025-03-04 12:00 UTC)));
    let extra = format!(
        r#"
[actions.revoke_credential]
kind = "revoke_credential"
github_api_url = "http://{rx_addr}/github"
github_token = "{gh}"
vault_addr = "http://{rx_addr}/vault"
vault_token = "{vault}"
"#,
        gh = receivers::GITHUB_TOKEN,
        vault = receivers::VAULT_TOKEN,
    );
    let policy = policy_toml(rx_addr, smtp_addr, &extra)
        .replace("[actions]\nenabled = false", "[actions]\nenabled = true")
        .replace(
            "actions = [\"pause_workflow\"]",
            "actions = [\"pause_workflow\", \"revoke_credential\"]",
        );
    let i = open(
        dir.path(),
        &policy,
        clock.clone(),
        &format!("http://{rx_addr}/webhook"),
    )
    .await;
    let key = ev(
        "k1",
        "mallory@example.com",
        "acme/payments",
        "deploy_key.created",
        json!({"source": "github", "attributes": {"key.id": "987", "read_only": false}}),
    );
    let token = ev(
        "k2",
        "mallory@example.com",
        "vault",
        "secret.read",
        json!({"source": "vault", "attributes": {"auth.accessor": "acc-123"}}),
    );
    // An HMAC'd accessor (Vault's default audit setting) cannot be acted on.
    let hashed = ev(
        "k3",
        "mallory@example.com",
        "vault",
        "secret.read",
        json!({"source": "vault", "attributes": {"auth.accessor": "hmac-sha256:abc"}}),
    );
    let alert = raise(
        &i.alerts,
        "mallory",
        vec![key, token, hashed],
        "secrets.restricted_access_repeated",
        3,
    );
    i.pass().await;
    let proposed: Vec<_> = i
        .routing
        .responder
        .list()
        .unwrap()
        .into_iter()
        .filter(|a| a.alert_id == alert)
        .collect();
    assert_eq!(proposed.len(), 2, "{proposed:?}");
    assert!(rx.of("github").is_empty() && rx.of("vault").is_empty());
    for a in &proposed {
        i.routing
            .responder
            .approve(&a.id, "alice", "review-page", "stolen key")
            .unwrap();
    }
    i.pass().await;
    let gh = rx.of("github");
    assert_eq!(gh.len(), 1);
    assert_eq!(
        gh[0].body,
        json!({"repository": "acme/payments", "key_id": "987"})
    );
    let vault = rx.of("vault");
    assert_eq!(vault.len(), 1);
    assert_eq!(vault[0].body["accessor"], "acc-123");
    let done = i.routing.responder.list().unwrap();
    assert!(done.iter().filter(|a| a.alert_id == alert).all(|a| a.state
        == plumbline_delivery::respond::ActionState::Done
        && a.decision.as_ref().unwrap().by == "alice"));
}

type Third = std::pin::Pin<Box<dyn std::future::Future<Output = Instance>>>;

/// Two nodes' routing on their own stores, the same receivers and clock; and a third
/// node, opened when awaited.
async fn two_nodes(
    policy: impl Fn(String) -> String,
) -> (
    Arc<receivers::Rx>,
    Instance,
    Instance,
    [tempfile::TempDir; 3],
    Third,
) {
    let (rx_addr, rx) = receivers::start().await;
    let (smtp_addr, _) = receivers::start_smtp().await;
    let policy = policy(policy_toml(rx_addr, smtp_addr, ""));
    let webhook = format!("http://{rx_addr}/webhook");
    let clock = Arc::new(ManualClock::new(datetime!(2025-03-04 12:00 UTC)));
    let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
    let a = open(dirs[0].path(), &policy, clock.clone(), &webhook).await;
    let b = open(dirs[1].path(), &policy, clock.clone(), &webhook).await;
    let third = dirs[2].path().to_path_buf();
    let c: Third = Box::pin(async move { open(&third, &policy, clock, &webhook).await });
    (rx, a, b, dirs, c)
}

/// The seam to a cluster's one outbox consumer, with the cluster replaced by a queue in
/// this process (the real one, over NATS JetStream, is `tests/e2e_cluster.rs`).
#[derive(Default)]
struct Queue {
    /// (origin, delivery, the action record that travels with it)
    #[allow(clippy::type_complexity)]
    forwarded: std::sync::Mutex<
        Vec<(
            String,
            plumbline_delivery::route::outbox::Delivery,
            Option<Vec<u8>>,
        )>,
    >,
    held: std::sync::Mutex<std::collections::HashSet<u64>>,
    acked: std::sync::Mutex<Vec<u64>>,
    node: &'static str,
}

impl plumbline_delivery::route::relay::Relay for Queue {
    fn forward<'a>(
        &'a self,
        d: &'a plumbline_delivery::route::outbox::Delivery,
        record: Option<Vec<u8>>,
    ) -> plumbline_delivery::route::relay::Forwarding<'a> {
        let origin = format!("{}:{}", self.node, d.id);
        self.forwarded
            .lock()
            .unwrap()
            .push((origin, d.clone(), record));
        Box::pin(async { Ok(()) })
    }
    fn holds(&self, id: u64) -> bool {
        self.held.lock().unwrap().contains(&id)
    }
    fn finished(&self, id: u64) {
        self.held.lock().unwrap().remove(&id);
        self.acked.lock().unwrap().push(id);
    }
}

/// Makes `i` a cluster node named `node`, its relay a [`Queue`].
fn relay(i: &Instance, node: &'static str) -> Arc<Queue> {
    let q = Arc::new(Queue {
        node,
        ..Default::default()
    });
    i.routing.dispatcher().set_relay(q.clone());
    q
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_the_deciding_node_forwards_and_only_the_consumer_sends() {
    use plumbline_delivery::route::outbox::Imported;
    let (rx, a, b, _dirs, c) = two_nodes(|p| p).await;
    let (qa, qb) = (relay(&a, "a"), relay(&b, "b"));

    // Node a decides: five destinations for a severity-2 alert; it sends none of them.
    let alert = raise(
        &a.alerts,
        "carol",
        vec![ev(
            "c1",
            "carol@example.com",
            "repo-c",
            "git.push.force",
            json!({}),
        )],
        "review.bypass.force_push",
        2,
    );
    a.pass().await;
    assert_eq!(rx.attempts.load(Ordering::SeqCst), 0);
    let st = a.routing.dispatcher().status();
    assert_eq!((st.pending, st.forwarded), (0, 5), "{st:?}");
    let forwarded = qa.forwarded.lock().unwrap().clone();
    assert_eq!(forwarded.len(), 5);

    // Node b imports them; it sends only what it holds.
    let mut ids = Vec::new();
    for (origin, d, _) in &forwarded {
        let Imported::Pending(id) = b.routing.outbox.import(d.clone(), origin).unwrap() else {
            panic!("a new delivery is pending");
        };
        ids.push(id);
    }
    b.pass().await;
    assert_eq!(rx.attempts.load(Ordering::SeqCst), 0, "nothing held yet");
    qb.held.lock().unwrap().extend(ids.iter().copied());
    let r = b.pass().await;
    assert_eq!(r.delivered, 5, "{r:?}");
    assert_eq!(rx.of("slack").len(), 1);
    assert!(text_of(&rx.of("slack")[0]).contains(&alert));
    let mut acked = qb.acked.lock().unwrap().clone();
    acked.sort();
    assert_eq!(acked, ids, "every finished import is acknowledged");

    // A redelivery is not a second delivery; the id receivers see comes from the origin.
    let (origin, d, _) = &forwarded[0];
    assert!(matches!(
        b.routing.outbox.import(d.clone(), origin).unwrap(),
        Imported::Finished(_)
    ));
    let hook = &rx.of("webhook")[0];
    let sent_as = hook.headers["x-plumbline-delivery"].to_str().unwrap();
    let hooked = forwarded
        .iter()
        .find(|(_, d, _)| d.destination == "webhook")
        .unwrap();
    let on_b = b
        .routing
        .outbox
        .finished()
        .find(|x| x.origin.as_deref() == Some(hooked.0.as_str()))
        .unwrap();
    assert_eq!(sent_as, on_b.key().to_string());
    assert_ne!(on_b.key(), on_b.id, "not the local id");
    let c = c.await;
    let Imported::Pending(on_c) = c
        .routing
        .outbox
        .import(hooked.1.clone(), &hooked.0)
        .unwrap()
    else {
        panic!("new on c")
    };
    let on_c = c.routing.outbox.get(on_c).unwrap().unwrap();
    assert_eq!(
        on_c.key(),
        on_b.key(),
        "the same id on whichever node sends it"
    );

    // A node that stops consuming drops what it imported and did not finish.
    assert_eq!(c.routing.outbox.drop_imported().unwrap(), 1);
    assert_eq!(c.routing.dispatcher().status().pending, 0);
    assert!(matches!(
        c.routing
            .outbox
            .import(hooked.1.clone(), &hooked.0)
            .unwrap(),
        Imported::Pending(_)
    ));
}

/// On a cluster, what one node decides (its dedup entries, its decisions) is kept by the
/// others: the same story decided on another node is not notified twice, and a node can
/// tell an alert whose findings were decided from one that awaits a decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_and_stories_decided_on_one_node_count_on_another() {
    let (rx, a, b, _dirs, _) = two_nodes(|p| p).await;
    type Sent = Arc<std::sync::Mutex<Vec<(Vec<u8>, Vec<u8>)>>>;
    let (stories, decisions): (Sent, Sent) = Default::default();
    let keep = |into: &Sent| -> plumbline_store::RecordReplica {
        let into = into.clone();
        Arc::new(move |k: &[u8], v: &[u8]| into.lock().unwrap().push((k.to_vec(), v.to_vec())))
    };
    a.routing.stage.replicate(keep(&stories), keep(&decisions));

    let events = vec![ev(
        "s1",
        "bob@example.com",
        "vault/prod",
        "credential.scope.increased",
        json!({}),
    )];
    let on_a = raise(
        &a.alerts,
        "bob",
        events.clone(),
        "credential.scope_increase",
        2,
    );
    assert_eq!(stories.lock().unwrap().len(), 1);
    for (k, v) in decisions.lock().unwrap().iter() {
        b.routing.stage.import_decisions(k, v).unwrap();
    }
    for (k, v) in stories.lock().unwrap().iter() {
        b.routing.stage.import_story(k, v).unwrap();
    }
    // b knows a decided about that alert, as it stands.
    let alert = a.alerts.get(&on_a).unwrap().unwrap();
    assert_eq!(b.routing.stage.undecided(&alert).unwrap(), None);
    assert_eq!(b.routing.stage.decisions(&on_a).unwrap().len(), 1);
    // A new finding is a new question; an alert nobody decided about was never decided.
    let mut grown = alert.clone();
    grown.findings.push(grown.findings[0].clone());
    grown.findings[1].signal = "credential.other".into();
    assert_eq!(b.routing.stage.undecided(&grown).unwrap(), Some(false));
    let mut other = alert.clone();
    other.id = "alr-other".into();
    assert_eq!(b.routing.stage.undecided(&other).unwrap(), Some(true));

    // The same story seen from the system's trajectory, decided on b: not notified again.
    let on_b = raise(
        &b.alerts,
        "vault/prod",
        events,
        "credential.scope_increase",
        2,
    );
    let d = &b.routing.stage.decisions(&on_b).unwrap()[0];
    assert_eq!(d.deduplicated_by.as_deref(), Some(on_a.as_str()));
    a.pass().await;
    b.pass().await;
    assert_eq!(rx.of("slack").len(), 1);

    // An older history from elsewhere does not replace a newer one here.
    let newer = b.routing.stage.decisions(&on_b).unwrap();
    let mut older = newer.clone();
    older[0].decided_at = "2025-03-04T11:00:00Z".into();
    older[0].notes = vec!["older".into()];
    b.routing
        .stage
        .import_decisions(on_b.as_bytes(), &serde_json::to_vec(&older).unwrap())
        .unwrap();
    assert_eq!(b.routing.stage.decisions(&on_b).unwrap(), newer);
}

/// An action approved on one cluster node runs on the consumer, which may not have the
/// action's record yet: the record travels with the delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_approved_on_one_node_runs_on_the_consumer() {
    use plumbline_delivery::respond::ActionState;
    use plumbline_delivery::route::outbox::Imported;
    let (rx, a, b, _dirs, _) =
        two_nodes(|p| p.replace("[actions]\nenabled = false", "[actions]\nenabled = true")).await;
    let (qa, qb) = (relay(&a, "a"), relay(&b, "b"));
    let alert = raise(
        &a.alerts,
        "erin",
        vec![ev(
            "w1",
            "erin@example.com",
            "n8n/workflow/wf-3",
            "data.export",
            json!({"attributes": {"workflow.id": "wf-3"}}),
        )],
        "exfil.manual",
        3,
    );
    let action = a
        .routing
        .responder
        .list()
        .unwrap()
        .into_iter()
        .find(|x| x.alert_id == alert)
        .unwrap();
    a.routing
        .responder
        .approve(&action.id, "alice", "review-page", "stop it")
        .unwrap();
    a.pass().await;
    assert_eq!(rx.of("n8n").len(), 0, "the deciding node runs nothing");
    let forwarded = qa.forwarded.lock().unwrap().clone();
    let (origin, d, record) = forwarded
        .iter()
        .find(|(_, d, _)| d.destination.starts_with("action:"))
        .expect("the approved action is forwarded");
    assert!(b.routing.responder.get(&action.id).unwrap().is_none());
    b.routing
        .responder
        .import(record.as_ref().unwrap())
        .unwrap();
    let Imported::Pending(id) = b.routing.outbox.import(d.clone(), origin).unwrap() else {
        panic!("new on b");
    };
    qb.held.lock().unwrap().insert(id);
    b.pass().await;
    let n8n = rx.of("n8n");
    assert_eq!(n8n.len(), 1);
    assert_eq!(n8n[0].body["workflow_id"], "wf-3");
    let ran = b.routing.responder.get(&action.id).unwrap().unwrap();
    assert_eq!(ran.state, ActionState::Done, "{ran:?}");
    assert_eq!(*qb.acked.lock().unwrap(), vec![id]);
}
