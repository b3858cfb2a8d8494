use super::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rules");

fn rules_text() -> String {
    let mut files: Vec<_> = std::fs::read_dir(RULES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<Vec<_>>()
        .join("---\n")
}

#[test]
fn fixtures() {
    plumbline_sdk::testing::run_fixtures::<SigmaEngine>(DIR);
}

#[test]
fn every_fixture_runs_the_rules_folder() {
    let want = rules_text();
    for f in plumbline_sdk::testing::fixture_files(std::path::Path::new(DIR)).unwrap() {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert_eq!(
            v["config"]["rules"].as_str(),
            Some(want.as_str()),
            "{}: its config.rules is not rules/*.yml",
            f.display()
        );
    }
}

#[test]
fn every_rule_of_the_folder_is_taken() {
    let (rules, errors) = parse_all(&rules_text());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(rules.len(), 7);
    let sev: Vec<u8> = rules.iter().map(|r| r.severity).collect();
    assert_eq!(sev, [3, 2, 3, 3, 3, 3, 2]);
    assert_eq!(
        rules[0].target,
        Target {
            source: "cloudtrail",
            feed: None
        }
    );
    assert_eq!(rules[3].target.feed, Some("audit-log"));
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
    assert!(why[2].1.starts_with("correlation rule"), "{why:?}");
    assert!(why[3].1.contains("product `windows`"), "{why:?}");
    assert!(why[4].1.starts_with("unsupported"), "{why:?}");
    assert!(why[5].1.starts_with("unsupported"), "{why:?}");
}

#[test]
fn a_broken_rule_fails_the_call_naming_it() {
    let mut cfg = std::collections::BTreeMap::new();
    cfg.insert(
        "rules".to_string(),
        format!(
            "{}---\ntitle: Half written\nlogsource: {{product: okta}}\ndetection:\n  s: {{eventType|nosuch: x}}\n  condition: s\n",
            rules_text()
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
fn the_name_slot_is_rewritten_in_place() {
    assert_eq!(detector_name(), DEFAULT_NAME);
    let mut bytes = b"head".to_vec();
    bytes.extend_from_slice(&NAME_SLOT);
    bytes.extend_from_slice(b"tail");
    let named = with_name(&bytes, "acme-aws.sigma").unwrap();
    assert_eq!(named.len(), bytes.len());
    let at = 4 + NAME_MARKER.len();
    assert_eq!(&named[at..at + 14], b"acme-aws.sigma");
    assert_eq!(named[at + 14], 0);
    assert!(named.ends_with(b"tail"));
    assert!(with_name(&bytes, "Bad Name").is_err());
    assert!(with_name(b"no slot here", "ok").is_err());
    let twice = [bytes.clone(), bytes].concat();
    assert!(with_name(&twice, "ok").is_err());
}
