//! What the fuzz targets share (docs/fuzzing.md): one function per reader of outside bytes,
//! each feeding the input to the real code and checking what must hold of any answer, not
//! only that nothing panics. A target file is one line calling one of these.
//!
//! Adapter inputs are deliveries, so that one input can teach the adapter memory something
//! (an approval, a workflow's nodes) that a later delivery reads:
//!
//! ```text
//! x-github-event: push          <- headers, one `name: value` a line
//! x-github-delivery: d1
//!                               <- a blank line ends the headers
//! {"ref": "refs/heads/main"}    <- the body, to the separator or the end
//! \n\x1e\n                      <- SEPARATOR, then the next delivery
//! ```
//!
//! A delivery without a blank line is all body. `fuzz/seeds.py` writes the fixtures of
//! `crates/ingest/src/fixtures/<source>/cases.json` in this form.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;
use time::OffsetDateTime;

use plumbline_event::{parse_event, Event, Source, RESERVED_PREFIX, VERIFIED_BY};
use plumbline_ingest::adapter::{apply, Adapter, Delivery, InMemory, SourceAuth};
use plumbline_ingest::body::{self, BodyForm};
use plumbline_ingest::SourcesConfig;

/// Between two deliveries of one adapter input.
pub const SEPARATOR: &[u8] = b"\n\x1e\n";
/// More deliveries than this in one input are ignored (a long input is a long body).
const MAX_DELIVERIES: usize = 8;
/// When the deliveries were received: a fixed instant, so a run is reproducible.
const RECEIVED: OffsetDateTime = time::macros::datetime!(2026-11-25 12:00 UTC);

/// Splits an adapter input into deliveries: headers (invalid lines skipped) and body.
pub fn deliveries(data: &[u8]) -> Vec<(HeaderMap, &[u8])> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() < MAX_DELIVERIES {
        let (chunk, next) = match find(rest, SEPARATOR) {
            Some(i) => (&rest[..i], Some(&rest[i + SEPARATOR.len()..])),
            None => (rest, None),
        };
        out.push(delivery(chunk));
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    out
}

fn delivery(chunk: &[u8]) -> (HeaderMap, &[u8]) {
    let mut headers = HeaderMap::new();
    let Some(end) = find(chunk, b"\n\n") else {
        return (headers, chunk);
    };
    for line in chunk[..end].split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(line[..colon].trim_ascii()),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    (headers, &chunk[end + 2..])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Every adapter, configured with the credentials its fixtures are signed with (so signed
/// seeds verify and the verified path is fuzzed too).
fn configured() -> &'static Vec<Arc<dyn Adapter>> {
    static ADAPTERS: OnceLock<Vec<Arc<dyn Adapter>>> = OnceLock::new();
    ADAPTERS.get_or_init(|| {
        let mut c = SourcesConfig::default();
        c.github.secret = "It's a Secret to Everybody".into();
        c.github_audit.token = "gh-audit-shipper-7c1e".into();
        c.gitlab.token = "gitlab-hook-secret".into();
        c.n8n.token = "n8n-log-stream-token".into();
        c.make.token = "make-audit-shipper".into();
        c.okta.authorization = "okta-hook-3f9a1c0e".into();
        c.openai.token = "openai-audit-shipper".into();
        c.agents.hook_token = "hook-7f3a".into();
        c.agents.otlp_token = "otlp-7c1e".into();
        c.cloudtrail.org_accounts = vec!["444455556666".into()];
        c.cloudtrail
            .account_environments
            .insert("111122223333".into(), "prod".into());
        plumbline_ingest::adapters(&c)
    })
}

/// One adapter over the deliveries of `data`, sharing one memory; then the first delivery
/// again (a retry sees what the first attempt taught the memory).
pub fn adapter(source: Source, data: &[u8]) {
    adapter_at(source.as_str(), data);
}

/// The adapter served at `/v1/ingest/<endpoint>` (`github-audit` is a second GitHub
/// endpoint), as [`adapter`].
pub fn adapter_at(endpoint: &str, data: &[u8]) {
    let adapter = configured()
        .iter()
        .find(|a| a.endpoint() == endpoint)
        .expect("every endpoint has an adapter");
    let source = adapter.source();
    let memory = InMemory::default();
    let all = deliveries(data);
    for (headers, body) in all.iter().chain(all.first()) {
        let verified =
            match adapter.verify(headers, if adapter.verifies_body() { body } else { &[] }) {
                SourceAuth::Valid => true,
                SourceAuth::Invalid(reason) => {
                    assert!(!reason.is_empty());
                    false
                }
                SourceAuth::NotConfigured => false,
            };
        if adapter.has_handshake() {
            let _ = adapter.handshake(headers);
        }
        let d = Delivery {
            headers,
            body,
            received: RECEIVED,
        };
        match adapter.map(&d, &memory) {
            Ok(mut mapped) => {
                assert_eq!(mapped.events.len(), mapped.indexes.len());
                mapped.stamp(verified);
                hook_answer(adapter.as_ref(), &d, &mapped);
                for e in &mapped.events {
                    if adapter.otlp().is_some() {
                        // The OTLP receivers' events are of the agent that sent them.
                        assert!(
                            matches!(e.source, Source::ClaudeCode | Source::Codex | Source::Otel),
                            "{e:?}"
                        );
                    } else {
                        assert_eq!(e.source, source, "{e:?}");
                    }
                    stored_form_is_stable(e);
                    for k in e.attributes.keys() {
                        assert!(
                            !k.starts_with(RESERVED_PREFIX) || (verified && k == VERIFIED_BY),
                            "a payload set Plumbline's own attribute `{k}`"
                        );
                    }
                }
                for r in &mapped.rejected {
                    assert!(!r.reason.is_empty());
                }
                apply(&memory, &mapped.remember).expect("in-memory memory never fails");
            }
            Err(e) => {
                assert!(e.status_hint().is_client_error(), "{e}");
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

/// A coding agent's hook answer: the pending call is one of the mapped events and a
/// pre-tool hook; every verdict renders as a JSON object (`{}` when nothing is pending).
fn hook_answer(adapter: &dyn Adapter, d: &Delivery<'_>, mapped: &plumbline_ingest::Mapped) {
    use plumbline_ingest::agents::Verdict;
    let Some(reply) = adapter.hook_reply(d, mapped) else {
        return;
    };
    if let Some(i) = reply.pending {
        assert_eq!(mapped.events[i].attr_str("tool.phase"), Some("requested"));
    }
    for v in [
        Verdict::Allow,
        Verdict::Ask("why".into()),
        Verdict::Deny("why".into()),
    ] {
        let answer = reply.answer(&v);
        assert!(answer.is_object(), "{answer}");
        assert_eq!(reply.pending.is_none(), answer == json!({}), "{answer}");
    }
}

/// An accepted event is what the store writes and reads back: validating its stored form
/// again must give the same event (redaction, flattening and limits are idempotent).
fn stored_form_is_stable(e: &Event) {
    let again = parse_event(serde_json::to_value(e).expect("events serialise"))
        .unwrap_or_else(|err| panic!("an accepted event fails validation again: {err:?}\n{e:?}"));
    assert_eq!(&again, e, "validating an accepted event again changed it");
}

/// The native bodies of `POST /v1/events` (one event, an array, NDJSON), and the NDJSON
/// reader the Vault adapter and socket use.
pub fn native_body(data: &[u8]) {
    for form in [BodyForm::Json, BodyForm::Ndjson] {
        match body::parse(form, data) {
            Ok(p) => {
                assert_eq!(p.events.len(), p.indexes.len());
                assert!(p.indexes.windows(2).all(|w| w[0] < w[1]), "{:?}", p.indexes);
                for e in &p.events {
                    stored_form_is_stable(e);
                    assert!(!e.attributes.keys().any(|k| k.starts_with(RESERVED_PREFIX)));
                }
                for r in &p.rejected {
                    assert!(!r.field.is_empty() || !r.reason.is_empty());
                    assert!(!p.indexes.contains(&r.index), "index {} both", r.index);
                }
            }
            Err(e) => assert!(e.line >= 1, "{e}"),
        }
    }
    let lines = plumbline_ingest::map::ndjson(data);
    let non_blank = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .count();
    assert!(lines.len() <= non_blank);
}

/// A `.plpack` archive and the `pack.toml` in it; the input is also tried as a manifest.
pub fn pack(data: &[u8]) {
    use plumbline_pack::manifest::MANIFEST;
    use plumbline_pack::PackFiles;
    if let Ok(files) = PackFiles::from_archive(data) {
        let again = PackFiles::from_archive(&files.to_archive())
            .expect("an archive written from read files reads back");
        assert_eq!(again, files);
        if let Some(m) = files.get(MANIFEST) {
            manifest(m);
        }
    }
    manifest(data);
}

fn manifest(bytes: &[u8]) {
    use plumbline_pack::manifest::check_path;
    use plumbline_pack::Manifest;
    let Ok(m) = Manifest::parse(bytes) else {
        return;
    };
    let back = Manifest::parse(&m.to_bytes()).expect("a parsed manifest writes a valid one");
    assert_eq!(back, m);
    for d in &m.detectors {
        for f in m.fixtures_of(d) {
            assert!(check_path(f).is_ok());
        }
    }
    for other in ["0.0.1", "1.0.0", "1.0.0-rc.1", "10.0.0", m.version.as_str()] {
        let ab = Manifest::version_cmp(&m.version, other);
        assert_eq!(ab, Manifest::version_cmp(other, &m.version).reverse());
    }
}

/// The policy file: parsed and validated, then asked about one alert, its destinations
/// and actions expanded.
pub fn policy(data: &[u8]) {
    use plumbline_policy::model::Policy;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = Policy::parse(text, "fuzz") else {
        return;
    };
    let (alert, events) = sample_alert();
    let now = time::macros::datetime!(2026-11-25 03:30 UTC);
    let verdict = p.evaluate(alert, events, now);
    if verdict.suppressed.is_none() {
        assert!((1..=3).contains(&verdict.severity), "{verdict:?}");
    }
    let env = |name: &str| (name.len() % 2 == 0).then(|| format!("value-of-{name}"));
    for d in p.destinations.values() {
        let _ = d.expanded(&env);
    }
    for a in p.actions.defs.values() {
        let _ = a.expanded(&env);
    }
}

fn sample_alert() -> &'static (plumbline_alert::Alert, HashMap<String, Arc<Event>>) {
    static ALERT: OnceLock<(plumbline_alert::Alert, HashMap<String, Arc<Event>>)> = OnceLock::new();
    ALERT.get_or_init(|| {
        let events: HashMap<String, Arc<Event>> = story()
            .into_iter()
            .map(|e| (e.id.clone(), Arc::new(e)))
            .collect();
        let finding = |signal: &str, severity: u8, evidence: &[&str]| {
            json!({
                "detector": "exfil.export-after-grant", "detector_version": "1.0.0",
                "signal": signal, "severity": severity, "score": 0.9, "title": signal,
                "evidence": evidence, "next_step": "ask",
            })
        };
        let alert = serde_json::from_value(json!({
            "id": "alr-fuzz", "trajectory_id": "trj-fuzz", "trajectory_hash": "",
            "severity": 2, "status": "open", "title": "t", "summary": "s",
            "signals": ["exfil.large_export_new_destination", "branch.bypass"],
            "event_ids": ["s1", "s4"], "actors": ["ada@example.com"],
            "systems": ["crm"],
            "detectors": [{"name": "exfil.export-after-grant", "version": "1.0.0"}],
            "findings": [
                finding("exfil.large_export_new_destination", 2, &["s1", "s4"]),
                finding("branch.bypass", 3, &["s2"]),
            ],
            "created_at": "", "updated_at": "", "notes": [], "merged_into": null,
        }))
        .expect("fuzz/src/lib.rs: the sample alert no longer decodes; update it to the Alert type");
        (alert, events)
    })
}

/// Four events of one actor: a grant, a protected-branch push, a role change, an export.
fn story() -> Vec<Event> {
    let ev = |id: &str, action: &str, minute: u8, extra: serde_json::Value| {
        let mut v = json!({
            "id": id, "time": format!("2026-11-25T02:{minute:02}:00Z"), "source": "n8n",
            "actor": {"id": "ada@example.com", "type": "human"}, "system": "crm",
            "action": action, "environment": "prod",
        });
        for (k, x) in extra.as_object().cloned().unwrap_or_default() {
            v[k] = x;
        }
        parse_event(v).expect("a valid sample event")
    };
    vec![
        ev(
            "s1",
            "credential.granted",
            1,
            json!({"resource": "crm-export"}),
        ),
        ev(
            "s2",
            "git.push.protected_branch",
            2,
            json!({"attributes": {"ticket": "INC-42"}}),
        ),
        ev(
            "s3",
            "admin.role.granted",
            3,
            json!({"resource": "crm-admin"}),
        ),
        ev(
            "s4",
            "data.export",
            4,
            json!({"destination": "files.unknown-host.example", "volume": {"rows": 48000}}),
        ),
    ]
}

/// The model's answer: the chat-completions reply around it, then the validator, which must
/// only ever accept a summary within its bounds that cites events of the trajectory.
pub fn llm_answer(data: &[u8]) {
    use plumbline_summary::client::{parse_reply, Reply};
    let t = trajectory();
    if let Ok(text) = std::str::from_utf8(data) {
        answer(text, t);
    }
    if let Ok(Reply::Content(content)) = parse_reply(data) {
        answer(&content, t);
    }
}

fn answer(text: &str, t: &plumbline_trajectory::model::Trajectory) {
    let Ok(s) = plumbline_summary::validate::check(text, t) else {
        return;
    };
    assert!((1..=3).contains(&s.risk));
    assert!(!s.narrative.trim().is_empty() && !s.next_step.trim().is_empty());
    assert!(!s.reasons.is_empty());
    for r in &s.reasons {
        assert!(!r.event_ids.is_empty());
        assert!(r.event_ids.iter().all(|id| t.contains(id)), "{r:?}");
    }
}

fn trajectory() -> &'static plumbline_trajectory::model::Trajectory {
    use plumbline_trajectory::model::{Trajectory, TrajectoryKind};
    static T: OnceLock<Trajectory> = OnceLock::new();
    T.get_or_init(|| {
        let events: Vec<Arc<Event>> = story().into_iter().map(Arc::new).collect();
        Trajectory {
            id: "trj-fuzz".into(),
            kind: TrajectoryKind::Actor,
            key: "ada@example.com".into(),
            start: events[0].time_nanos(),
            end: events[3].time_nanos(),
            closes_at: events[3].time_nanos() + 3_600_000_000_000,
            dropped: 0,
            hash: String::new(),
            events: events.into(),
        }
    })
}
