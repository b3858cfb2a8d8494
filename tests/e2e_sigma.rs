//! Sigma rules end to end against the real binary: `plumbline pack from-sigma` over a
//! folder with a good rule and a broken one (the report names the broken one, the pack
//! takes the good one), `pack sign`, `pack install` on a running server (no restart), then
//! a CloudTrail record posted to `/v1/ingest/cloudtrail` raises an alert at the rule's
//! level, citing the record; an everyday record raises nothing; a correlation over the
//! rule fires when the trail is stopped twice. The built-in single-event pack reads a
//! GitHub webhook delivery and an audit-log entry streamed as HEC events.
//!
//! Component: detectors/sigma/engine (scripts/build-detectors.sh rust builds it).

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};
use support::{client, event_time, eventually, get, Server};

fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

async fn plumbline(args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_plumbline"));
    cmd.args(args).env_remove("PLUMBLINE_TOKEN");
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(out)
}

/// One CloudTrail record as CloudTrail writes it.
fn record(id: &str, name: &str, source: &str) -> Value {
    json!({
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "IAMUser", "principalId": "AIDAEXAMPLEALICE0001",
            "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333",
            "userName": "alice"
        },
        "eventTime": event_time(),
        "eventSource": source,
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "203.0.113.50",
        "userAgent": "aws-cli/2.17.0",
        "requestParameters": {"name": "org-trail"},
        "responseElements": null,
        "requestID": format!("req-{id}"),
        "eventID": id,
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": "111122223333",
        "eventCategory": "Management"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigma_rule_goes_from_file_to_alert_through_a_signed_pack() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let engine = target().join("wasm32-wasip2/release/sigma_engine.wasm");
    assert!(
        engine.is_file(),
        "{}: run scripts/build-detectors.sh rust",
        engine.display()
    );

    // The rules: one good (the built-in pack's StopLogging rule), a correlation over it,
    // one whose modifier does not exist, and a correlation naming a rule that is not there.
    let rules = d.join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../detectors/single-event/sigma/rules/aws_cloudtrail_logging_stopped.yml"),
        rules.join("trail_stopped.yml"),
    )
    .unwrap();
    std::fs::write(
        rules.join("broken.yml"),
        "title: Console login without MFA\nlogsource:\n  product: aws\n  service: cloudtrail\n\
         detection:\n  selection:\n    eventName|likeish: ConsoleLogin\n  condition: selection\nlevel: high\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("many.yml"),
        "title: Many trails stopped\ncorrelation:\n  type: event_count\n  rules: [x]\n  \
         timespan: 1h\n  group-by: [userIdentity.arn]\n  condition: {gte: 3}\nlevel: high\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("twice.yml"),
        "title: Logging stopped twice\nid: 7d1f2e3a-4b5c-4d6e-8f70-8192a3b4c5d6\ncorrelation:\n  \
         type: event_count\n  rules: [cbb24ca5-aeda-4da8-b075-16650e351512]\n  timespan: 1h\n  \
         group-by: [userIdentity.arn]\n  condition: {gte: 2}\n  generate: true\nlevel: critical\n",
    )
    .unwrap();

    let from_sigma = |name: &str| {
        let out = d.join(format!("{name}.plpack"));
        let args: Vec<String> = vec![
            "pack".into(),
            "from-sigma".into(),
            rules.display().to_string(),
            "--name".into(),
            name.into(),
            "-o".into(),
            out.display().to_string(),
            "--engine".into(),
            engine.display().to_string(),
        ];
        async move { plumbline(&args.iter().map(String::as_str).collect::<Vec<_>>()).await }
    };
    let pack = d.join("aws-sigma.plpack");
    let report = ok(&from_sigma("aws-sigma").await);
    let skipped: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("skipped "))
        .collect();
    assert_eq!(skipped.len(), 2, "{report}");
    assert!(
        skipped[0].contains("broken.yml: `Console login without MFA`: unsupported"),
        "{report}"
    );
    assert!(
        skipped[1].contains("many.yml: `Many trails stopped`: correlation names rule `x`"),
        "{report}"
    );
    assert!(
        report.contains("detector aws-sigma.sigma): 2 rule(s) taken, 2 skipped"),
        "{report}"
    );

    // The pack carries each rule as a file of its own (config_files), pinned by pack.toml.
    let archive = std::fs::read(&pack).unwrap();
    let holds = |needle: &str| {
        archive
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    };
    assert!(holds("rules/trail_stopped.yml") && holds("rules/twice.yml"));
    assert!(!holds("rules/broken.yml") && !holds("rules/many.yml"));
    assert!(holds("config_files"));

    // Only broken rules: nothing to pack, a failing exit code.
    std::fs::remove_file(rules.join("trail_stopped.yml")).unwrap();
    std::fs::remove_file(rules.join("twice.yml")).unwrap();
    let none = from_sigma("nothing").await;
    assert!(!none.status.success(), "{}", stdout(&none));
    assert!(!d.join("nothing.plpack").exists());

    // Sign with a team key the server trusts.
    let key = d.join("team");
    ok(&plumbline(&["keygen", "--out", key.to_str().unwrap(), "--name", "e2e"]).await);
    ok(&plumbline(&[
        "pack",
        "sign",
        pack.to_str().unwrap(),
        "--key",
        key.with_extension("key").to_str().unwrap(),
    ])
    .await);
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let config = d.join("plumbline.toml");
    std::fs::write(
        &config,
        format!(
            "[runtime]\ncache_dir = {:?}\ndeadline_ms = 10000\n\n[packs]\n\
             trusted_keys = [{{ name = \"e2e\", key = \"{}\" }}]\n\
             builtin_packs = {{ single-event = \"disabled\" }}\n",
            target().join("plumbline-test-cache").display().to_string(),
            public.trim()
        ),
    )
    .unwrap();
    let s = Server::start_with(
        &d.join("data"),
        &["--config", config.to_str().unwrap()],
        &[],
    );

    let out = plumbline(&[
        "pack",
        "install",
        pack.to_str().unwrap(),
        "--active",
        "--url",
        &s.url,
    ])
    .await;
    assert!(
        ok(&out).contains("aws-sigma 0.1.0 installed and active"),
        "{}",
        stdout(&out)
    );
    let (_, packs) = get(&s, "/v1/packs").await;
    let ours = packs["packs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "aws-sigma")
        .cloned()
        .unwrap();
    assert_eq!(ours["state"], "active", "{ours}");
    assert_eq!(ours["detectors"][0]["name"], "aws-sigma.sigma", "{ours}");

    // An everyday call first, then the trail stopped, twice.
    for (id, name, src) in [
        (
            "e2e-describe-1",
            "DescribeTrails",
            "cloudtrail.amazonaws.com",
        ),
        ("e2e-stop-1", "StopLogging", "cloudtrail.amazonaws.com"),
        ("e2e-stop-2", "StopLogging", "cloudtrail.amazonaws.com"),
    ] {
        let r = client()
            .post(s.at("/v1/ingest/cloudtrail"))
            .json(&json!({"Records": [record(id, name, src)]}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{:?}", r.text().await);
    }
    // The pack's findings (the built-in single-event pack, which reads StopLogging too,
    // is off).
    let ours = |a: &Value| -> Vec<Value> {
        a["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| {
                f["signal"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("sigma."))
            })
            .cloned()
            .collect()
    };
    let alert = eventually(120, || async {
        let (_, v) = get(&s, "/v1/alerts").await;
        v["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| ours(a).len() == 3)
            .cloned()
    })
    .await;
    assert_eq!(alert["severity"], 3, "high → urgent: {alert}");
    let findings = ours(&alert);
    let matched: Vec<&Value> = findings
        .iter()
        .filter(|f| f["signal"] == "sigma.match")
        .collect();
    assert_eq!(matched.len(), 2, "{alert}");
    for f in &matched {
        assert!(
            f["title"]
                .as_str()
                .unwrap()
                .starts_with("Sigma: CloudTrail trail stopped or deleted"),
            "{f}"
        );
    }
    let cited: Vec<&Value> = matched.iter().map(|f| &f["evidence"][0]).collect();
    assert_eq!(
        cited,
        [
            &json!("cloudtrail:e2e-stop-1"),
            &json!("cloudtrail:e2e-stop-2")
        ],
        "{alert}"
    );
    // The correlation: both stops within the hour, by one identity.
    let corr = findings
        .iter()
        .find(|f| f["signal"] == "sigma.correlation")
        .expect("the correlation's finding");
    assert!(
        corr["title"]
            .as_str()
            .unwrap()
            .starts_with("Sigma: Logging stopped twice"),
        "{corr}"
    );
    assert_eq!(
        corr["evidence"],
        json!(["cloudtrail:e2e-stop-1", "cloudtrail:e2e-stop-2"]),
        "{corr}"
    );
}

/// The built-in `single-event` pack through the real binary: a GitHub webhook delivery and
/// a GitHub audit-log entry streamed as Splunk HEC events reach its rules by their own
/// field names (the webhook's `raw.` record, the entry's fields), and each raises an alert
/// at its rule's level citing the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_single_event_pack_reads_webhooks_and_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), &[], &[]);

    // A pull_request_target run whose head is a fork (GitHub's workflow_run payload).
    let mut run: Value = serde_json::from_str(include_str!(
        "../crates/ingest/src/fixtures/github/workflow_run_completed.json"
    ))
    .unwrap();
    run["workflow_run"]["event"] = json!("pull_request_target");
    run["workflow_run"]["head_repository"]["fork"] = json!(true);
    run["workflow_run"]["head_repository"]["full_name"] = json!("mallory-dev/payments-api");
    let r = client()
        .post(s.at("/v1/ingest/github"))
        .header("x-github-event", "workflow_run")
        .header("x-github-delivery", "e2e-prt-fork-1")
        .json(&run)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);

    // The organization's two-factor requirement turned off, as audit-log streaming sends it
    // to a Splunk HEC endpoint.
    let entry = json!({
        "@timestamp": 1792486800000u64, "created_at": 1792486800000u64,
        "_document_id": "e2e-2fa-off-0001", "action": "org.disable_two_factor_requirement",
        "actor": "lee-admin", "actor_id": 4103, "actor_location": {"country_code": "DE"},
        "org": "acme-example", "org_id": 7001, "operation_type": "modify",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)"
    });
    let r = client()
        .post(s.at("/services/collector/event"))
        .header("authorization", "Splunk e2e")
        .json(&json!({"time": 1792486800, "sourcetype": "github:enterprise:audit", "event": entry}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);

    let sigma_alert = |alerts: &Value, evidence: &str| -> Option<Value> {
        alerts["alerts"]
            .as_array()?
            .iter()
            .find(|a| {
                a["findings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|f| f["signal"] == "sigma.match" && f["evidence"] == json!([evidence]))
            })
            .cloned()
    };
    let (fork, audit) = eventually(120, || async {
        let (_, v) = get(&s, "/v1/alerts").await;
        Some((
            sigma_alert(&v, "github:e2e-prt-fork-1")?,
            sigma_alert(&v, "github-audit:e2e-2fa-off-0001")?,
        ))
    })
    .await;
    let finding = |a: &Value| -> Value {
        a["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["signal"] == "sigma.match")
            .cloned()
            .unwrap()
    };
    let f = finding(&fork);
    assert_eq!(f["severity"], 2, "{f}");
    assert!(
        f["title"]
            .as_str()
            .unwrap()
            .contains("pull_request_target from a fork"),
        "{f}"
    );
    let f = finding(&audit);
    assert_eq!(f["severity"], 3, "{f}");
    assert!(
        f["title"]
            .as_str()
            .unwrap()
            .contains("two-factor requirement"),
        "{f}"
    );
    assert!(audit["detectors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["name"] == "single-event.sigma"));
}
