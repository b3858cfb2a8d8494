//! Policy evaluation: the default policy, validation messages, and verdicts.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;
use time::macros::datetime;

use super::model::Policy;
use plumbline_alert::finding::Finding;
use plumbline_alert::{Alert, AlertStatus};
use plumbline_event::{parse_event, Event};

fn ev(id: &str, extra: serde_json::Value) -> Arc<Event> {
    let mut v = json!({
        "id": id, "time": "2025-03-04T11:00:00Z", "source": "n8n",
        "actor": {"id": "ada@example.com", "type": "human"}, "system": "n8n/workflow/wf-1",
        "action": "data.export", "environment": "prod",
    });
    for (k, x) in extra.as_object().cloned().unwrap_or_default() {
        v[k] = x;
    }
    Arc::new(parse_event(v).unwrap())
}

fn alert(findings: Vec<(&str, u8, Vec<&str>)>) -> Alert {
    let findings: Vec<Finding> = findings
        .into_iter()
        .map(|(signal, severity, evidence)| Finding {
            detector: "kit.detector".into(),
            detector_version: "1".into(),
            signal: signal.into(),
            severity,
            score: 0.5,
            title: signal.into(),
            evidence: evidence.into_iter().map(String::from).collect(),
            next_step: String::new(),
        })
        .collect();
    Alert {
        id: "alr-1".into(),
        trajectory_id: "trj-1".into(),
        trajectory_hash: String::new(),
        severity: findings.iter().map(|f| f.severity).max().unwrap_or(1),
        status: AlertStatus::Open,
        title: "t".into(),
        summary: "s".into(),
        signals: findings.iter().map(|f| f.signal.clone()).collect(),
        event_ids: vec![],
        actors: vec![],
        systems: vec![],
        detectors: vec![],
        findings,
        created_at: String::new(),
        updated_at: String::new(),
        notes: vec![],
        merged_into: None,
    }
}

fn events(list: &[Arc<Event>]) -> HashMap<String, Arc<Event>> {
    list.iter().map(|e| (e.id.clone(), e.clone())).collect()
}

fn with(extra: &str) -> Policy {
    Policy::parse(
        &format!("{}\n{extra}", super::model::DEFAULT_POLICY),
        "test",
    )
    .unwrap()
}

#[test]
fn the_default_policy_follows_the_escalation_ladder() {
    let p = Policy::default_policy();
    let e = [ev("e1", json!({}))];
    let now = datetime!(2025-03-04 12:00 UTC);
    let route = |sev| {
        let v = p.evaluate(&alert(vec![("x.y", sev, vec!["e1"])]), &events(&e), now);
        (v.routes[0].name.clone(), v.routes[0].destinations.clone())
    };
    let (name, d) = route(3);
    assert_eq!(name, "urgent");
    assert!(d.contains(&"pagerduty".to_string()) && d.contains(&"jira".to_string()));
    assert!(p.routes[0].incident);
    let (name, d) = route(2);
    assert_eq!(name, "needs-review");
    assert!(!d.contains(&"pagerduty".to_string()) && d.contains(&"slack".to_string()));
    assert!(p.routes[1].justification);
    assert_eq!(
        route(1),
        (
            "informational".into(),
            vec!["digest".into(), "webhook".into()]
        )
    );
    assert!(!p.actions.enabled, "response actions are off by default");
    assert!(p.quiet_hours.enabled && p.quiet_hours.severities == vec![2]);
}

#[test]
fn bad_policies_are_refused_naming_the_field() {
    let err = |extra: &str| {
        Policy::parse(
            &format!("{}\n{extra}", super::model::DEFAULT_POLICY),
            "p.toml",
        )
        .unwrap_err()
        .to_string()
    };
    let e = err("[[routes]]\nname = \"x\"\ndestinations = [\"nowhere\"]\n");
    assert!(e.contains("`nowhere` is not defined"), "{e}");
    let e = Policy::parse(
        &super::model::DEFAULT_POLICY.replace("severities = [2]", "severities = [2, 3]"),
        "p.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("severity 3 (urgent) always goes out"), "{e}");
    let e = err("[[allow.change_windows]]\nname = \"m\"\nsystems = [\"db\"]\nstart = \"2025-03-02T00:00:00Z\"\nend = \"2025-03-01T00:00:00Z\"\n");
    assert!(e.contains("start must be before end"), "{e}");
    let e = err("[[allow.domains]]\nname = \"d\"\n");
    assert!(e.contains("list at least one domain"), "{e}");
    let e = Policy::parse(
        &super::model::DEFAULT_POLICY.replace("timezone = \"UTC\"", "timezone = \"Mars/Olympus\""),
        "p.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("settings.timezone"), "{e}");
    let e = Policy::parse(
        "[destinations.x]\nkind = \"slack\"\nurl = \"u\"\nchannel = \"c\"\n",
        "p.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("channel"), "{e}");
}

#[test]
fn routes_match_on_signals_sources_systems_environments_and_detectors() {
    let p = with(
        r#"
[[routes]]
name = "data-protection"
match = { signals = ["exfil.*"], sources = ["n8n"], systems = ["n8n/*"], environments = ["prod"], detectors = ["kit.*"] }
destinations = ["slack"]
continue = true
"#,
    );
    // Routes are tried in order; the new one comes after the severity routes, so move it.
    let mut p = p;
    let dp = p.routes.pop().unwrap();
    p.routes.insert(0, dp);
    let now = datetime!(2025-03-04 12:00 UTC);
    let e = [ev("e1", json!({}))];
    let v = p.evaluate(&alert(vec![("exfil.big", 2, vec!["e1"])]), &events(&e), now);
    let names: Vec<&str> = v.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["data-protection", "needs-review"]);
    let staging = [ev("e1", json!({"environment": "staging"}))];
    let v = p.evaluate(
        &alert(vec![("exfil.big", 2, vec!["e1"])]),
        &events(&staging),
        now,
    );
    let names: Vec<&str> = v.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["needs-review"]);
    let v = p.evaluate(
        &alert(vec![("cred.scope", 2, vec!["e1"])]),
        &events(&e),
        now,
    );
    assert_eq!(v.routes[0].name, "needs-review");
}

#[test]
fn change_windows_migrations_and_partial_cover() {
    let p = with(
        r#"
[[allow.change_windows]]
name = "CHG-77 db move"
systems = ["n8n/workflow/*"]
start = "2025-03-04T10:00:00Z"
end = "2025-03-04T12:00:00Z"
action = "downgrade"
ticket = "CHG-77"

[[allow.migrations]]
name = "CRM to NewVendor"
domains = ["newvendor.io"]
signals = ["exfil.*"]
reason = "approved vendor migration"
"#,
    );
    let now = datetime!(2025-03-04 12:00 UTC);
    // Inside the window: downgraded, with the ticket in the reason.
    let e = [ev("e1", json!({}))];
    let v = p.evaluate(&alert(vec![("x.change", 3, vec!["e1"])]), &events(&e), now);
    assert_eq!(v.severity, 2);
    assert!(v.notes[0].contains("CHG-77"), "{:?}", v.notes);
    // Outside the window (event time): untouched.
    let late = [ev("e1", json!({"time": "2025-03-04T12:30:00Z"}))];
    let v = p.evaluate(
        &alert(vec![("x.change", 3, vec!["e1"])]),
        &events(&late),
        now,
    );
    assert_eq!(v.severity, 3);
    // A migration destination suppresses its finding; a second, uncovered finding keeps
    // the alert alive and the suppression is noted.
    let e = [
        ev(
            "m1",
            json!({"destination": "https://api.newvendor.io/import", "time": "2025-03-04T13:00:00Z"}),
        ),
        ev(
            "m2",
            json!({"destination": "https://paste.example.net", "time": "2025-03-04T13:00:00Z"}),
        ),
    ];
    let v = p.evaluate(
        &alert(vec![("exfil.a", 3, vec!["m1"]), ("exfil.b", 2, vec!["m2"])]),
        &events(&e),
        now,
    );
    assert!(v.suppressed.is_none());
    assert_eq!(v.severity, 2);
    assert_eq!(v.facts.signals, vec!["exfil.b"]);
    assert!(v
        .notes
        .iter()
        .any(|n| n.contains("approved vendor migration")));
    // Evidence with both an allowed and an unknown destination is not covered.
    let v = p.evaluate(
        &alert(vec![("exfil.a", 3, vec!["m1", "m2"])]),
        &events(&e),
        now,
    );
    assert!(v.suppressed.is_none());
    assert_eq!(v.severity, 3);
}

#[test]
fn suppression_windows_mute_by_wall_clock() {
    let p = with(
        r#"
[[suppressions]]
name = "pentest"
reason = "external pentest week"
start = "2025-03-03T00:00:00Z"
end = "2025-03-08T00:00:00Z"
match = { systems = ["n8n/*"] }
"#,
    );
    let e = [ev("e1", json!({}))];
    let a = alert(vec![("x.y", 3, vec!["e1"])]);
    let v = p.evaluate(&a, &events(&e), datetime!(2025-03-04 12:00 UTC));
    assert!(v.suppressed.unwrap().contains("external pentest week"));
    assert!(v.routes.is_empty());
    let v = p.evaluate(&a, &events(&e), datetime!(2025-03-09 12:00 UTC));
    assert!(v.suppressed.is_none());
}

#[test]
fn break_glass_needs_prod_and_a_ticket() {
    let p = Policy::default_policy();
    let now = datetime!(2025-03-04 12:00 UTC);
    let with_ticket = [ev("e1", json!({"attributes": {"incident_id": "INC-12"}}))];
    let a = alert(vec![("change.direct_to_prod", 3, vec!["e1"])]);
    let v = p.evaluate(&a, &events(&with_ticket), now);
    assert_eq!(v.severity, 2);
    let hit = v.break_glass.unwrap();
    assert_eq!(hit.ticket, "INC-12");
    assert_eq!(hit.review_by, datetime!(2025-03-05 12:00 UTC));
    let junk_ticket = [ev("e1", json!({"attributes": {"incident_id": "asap"}}))];
    assert_eq!(p.evaluate(&a, &events(&junk_ticket), now).severity, 3);
    let staging = [ev(
        "e1",
        json!({"environment": "staging", "attributes": {"incident_id": "INC-12"}}),
    )];
    assert_eq!(p.evaluate(&a, &events(&staging), now).severity, 3);
}

#[test]
fn a_severity_raised_by_the_summary_counts_unless_policy_adjusted_the_alert() {
    let p = with(
        r#"
[[allow.service_accounts]]
name = "sync"
actors = ["svc-*"]
action = "downgrade"
"#,
    );
    let now = datetime!(2025-03-04 12:00 UTC);
    let e = [ev("e1", json!({}))];
    let mut a = alert(vec![("x.y", 1, vec!["e1"])]);
    a.severity = 2; // the summary stage raised it
    let v = p.evaluate(&a, &events(&e), now);
    assert_eq!((v.detector_severity, v.severity), (1, 2));
    assert_eq!(v.routes[0].name, "needs-review");
    assert!(v.notes[0].contains("raised by the summary"));
    let svc = [ev(
        "e1",
        json!({"actor": {"id": "svc-sync", "type": "service"}}),
    )];
    let mut a = alert(vec![("x.y", 2, vec!["e1"])]);
    a.severity = 3;
    let v = p.evaluate(&a, &events(&svc), now);
    assert_eq!(v.severity, 1, "the allow-list wins over the model's raise");
}

/// A policy file is read over the embedded default: one that only adds an allow-list
/// keeps every default route (it used to leave none: "no route matches … recorded only");
/// one that gives routes replaces them; a table it names is merged key by key.
#[test]
fn a_policy_file_layers_over_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(
        &file,
        r#"
[[allow.domains]]
name = "company storage"
domains = ["company.com"]
reason = "our own buckets"

[quiet_hours]
start = "21:00"
"#,
    )
    .unwrap();
    let p = Policy::load(&file).unwrap();
    let default = Policy::default_policy();
    assert!(!default.routes.is_empty());
    assert_eq!(
        p.routes.iter().map(|r| &r.name).collect::<Vec<_>>(),
        default.routes.iter().map(|r| &r.name).collect::<Vec<_>>()
    );
    assert_eq!(p.quiet_hours.start, "21:00");
    assert_eq!(p.quiet_hours.end, default.quiet_hours.end);
    assert_eq!(p.allow.domains.len(), 1);

    std::fs::write(
        &file,
        r#"
[[routes]]
name = "only-urgent"
match = { severity = [3] }
destinations = ["webhook"]
"#,
    )
    .unwrap();
    let p = Policy::load(&file).unwrap();
    assert_eq!(p.routes.len(), 1);
    assert_eq!(p.routes[0].name, "only-urgent");

    std::fs::write(&file, "[quiet_hours]\nstart = \"25:00\"\n").unwrap();
    let err = Policy::load(&file).unwrap_err().to_string();
    assert!(
        err.contains("quiet_hours.start") && err.contains("policy.toml"),
        "{err}"
    );
}
