//! Abuse limits against the real binary on loopback: a caller over its rate, a request
//! over the event limit, a stage backlog and a client that stops sending are refused with
//! clear answers (or closed), the service stays up, and every acknowledged event is kept.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{client, event, get, Server};

const TOKEN: &str = "loader-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_abuse_the_service_refuses_clearly_and_keeps_what_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let tokens =
        format!(r#"[{{name = "loader", token = "{TOKEN}", scopes = ["ingest", "read"]}}]"#);
    let s = Server::start_with(
        dir.path(),
        &[],
        &[
            ("PLUMBLINE_AUTH_TOKENS", tokens.as_str()),
            ("PLUMBLINE_LIMITS_REQUESTS_PER_SEC", "40"),
            ("PLUMBLINE_LIMITS_BURST", "40"),
            ("PLUMBLINE_LIMITS_MAX_CONNECTIONS", "16"),
            ("PLUMBLINE_LIMITS_CLIENT_IDLE_SECS", "1"),
            ("PLUMBLINE_INGEST_MAX_EVENTS_PER_REQUEST", "100"),
            // Any work waiting in the stages refuses new events: the storm below meets
            // back-pressure as well as the rate limit.
            ("PLUMBLINE_INGEST_MAX_BACKLOG", "0"),
        ],
    );

    // A storm: 8 senders, 40 requests of 50 events each, as fast as answers come.
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let answers = Arc::new(Mutex::new(Vec::<(u16, Option<String>, String)>::new()));
    let mut senders = Vec::new();
    for sender in 0..8 {
        let (url, acknowledged, answers) = (s.url.clone(), acknowledged.clone(), answers.clone());
        senders.push(tokio::spawn(async move {
            let http = client();
            for request in 0..40 {
                let ids: Vec<String> = (0..50)
                    .map(|i| format!("storm-{sender}-{request}-{i}"))
                    .collect();
                let batch: Vec<Value> = ids.iter().map(|id| event(id, "ada", "git.push")).collect();
                let r = http
                    .post(format!("{url}/v1/events"))
                    .bearer_auth(TOKEN)
                    .json(&batch)
                    .send()
                    .await
                    .expect("the service answers every request");
                let status = r.status().as_u16();
                let retry = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                let body: Value = r.json().await.unwrap_or(Value::Null);
                if status == 202 {
                    assert_eq!(body["accepted"], 50, "{body}");
                    acknowledged.lock().unwrap().extend(ids);
                }
                let error = body["error"].as_str().unwrap_or("").to_string();
                answers.lock().unwrap().push((status, retry, error));
            }
        }));
    }
    for t in senders {
        t.await.unwrap();
    }
    let answers = answers.lock().unwrap().clone();
    let count = |st: u16| answers.iter().filter(|a| a.0 == st).count();
    eprintln!(
        "abuse: requests={} accepted={} rate_limited={} busy={}",
        answers.len(),
        count(202),
        count(429),
        count(503)
    );
    assert!(count(202) > 0 && count(429) > 0, "{answers:?}");
    for (status, retry, error) in &answers {
        match status {
            202 => {}
            429 => {
                assert!(retry.is_some(), "429 without Retry-After");
                assert!(error.contains("rate limit"), "{error}");
            }
            503 => {
                assert!(retry.is_some(), "503 without Retry-After");
                assert!(error.contains("ingest.max_backlog"), "{error}");
            }
            other => panic!("unexpected {other}: {error}"),
        }
    }

    // Over the event limit: 413 naming it, whatever the rate.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let big: Vec<Value> = (0..101)
        .map(|i| event(&format!("big-{i}"), "ada", "git.push"))
        .collect();
    let r = client()
        .post(s.at("/v1/events"))
        .bearer_auth(TOKEN)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("max_events_per_request"),
        "{body}"
    );

    // A client that sends half its headers and stops is closed (idle 1 s), and cannot
    // hold a connection slot.
    let mut slow = tokio::net::TcpStream::connect(s.url.trim_start_matches("http://"))
        .await
        .unwrap();
    slow.write_all(b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(20), slow.read(&mut buf))
        .await
        .expect("the server closes a silent client");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    eprintln!("abuse: silent client closed after {:?}", started.elapsed());

    // A back-fill through the CLI waits out the refusals (Retry-After) instead of failing
    // half-way: every event goes in.
    let file = dir.path().join("backfill.ndjson");
    let lines: Vec<String> = (0..1000)
        .map(|i| event(&format!("backfill-{i}"), "bob", "git.push").to_string())
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plumbline"))
        .args(["ingest", "--batch", "50", "--url", &s.url, "--token", TOKEN])
        .arg(&file)
        .env("PLUMBLINE_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("accepted 1000,"), "{stdout}");
    assert!(
        stderr.contains("retrying in"),
        "the limits were met: {stderr}"
    );
    acknowledged
        .lock()
        .unwrap()
        .extend((0..1000).map(|i| format!("backfill-{i}")));

    // Still serving, and every acknowledged event is stored.
    let (st, _) = get(&s, "/healthz").await;
    assert_eq!(st, 200);
    let acknowledged = acknowledged.lock().unwrap().clone();
    let mut stored = BTreeSet::new();
    let mut cursor = String::new();
    loop {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let r = client()
            .get(s.at(&format!("/v1/events?limit=1000{cursor}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 429 {
            continue;
        }
        let page: Value = r.json().await.unwrap();
        for e in page["events"].as_array().unwrap() {
            stored.insert(e["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "{} acknowledged events lost", lost.len());
    assert!(stored.iter().all(|id| !id.starts_with("big-")));
}
