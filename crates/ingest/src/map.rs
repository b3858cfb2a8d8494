//! Helpers for reading foreign JSON and building events from it: dotted-path getters,
//! attribute setters that keep absent facts absent, bounded payload copies, source time
//! formats, environment and host guesses, and credential-scope tracking.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::adapter::{IngestError, Mapped, Memory};
use plumbline_event::{Actor, ActorType, Attributes, Environment, Event, Source};

/// Parses a JSON body, or a 400 that says where it broke.
pub fn json_body(bytes: &[u8]) -> Result<Value, IngestError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let msg = e.to_string();
        IngestError::NotJson {
            reason: msg.split(" at line ").next().unwrap_or(&msg).to_string(),
            line: e.line(),
            column: e.column(),
        }
    })
}

/// An event with the fields every adapter sets; the rest default.
pub fn event(
    source: Source,
    id: String,
    time: OffsetDateTime,
    actor: Actor,
    system: &str,
    action: &str,
) -> Event {
    Event {
        id,
        time,
        source,
        actor,
        system: if system.is_empty() {
            source.as_str().to_string()
        } else {
            system.to_string()
        },
        action: action.to_string(),
        resource: String::new(),
        environment: Environment::Unknown,
        destination: None,
        volume: None,
        attributes: Attributes::new(),
    }
}

pub fn actor(id: &str, kind: ActorType, display: &str) -> Actor {
    Actor {
        id: if id.is_empty() {
            "unknown".to_string()
        } else {
            id.to_string()
        },
        kind,
        display: display.to_string(),
    }
}

/// Bot and service-account logins that are AI coding agents. Matched on the login of an
/// account that the source already marks as a bot/service, never on people's names.
const AI_AGENT_MARKERS: &[&str] = &[
    "copilot",
    "devin",
    "claude",
    "codex",
    "cursor",
    "openhands",
    "sweep",
    "aider",
    "gemini",
    "jules",
    "codegen",
    "ai-agent",
    "agent[bot]",
];

pub fn is_ai_agent_login(login: &str) -> bool {
    let l = login.to_ascii_lowercase();
    AI_AGENT_MARKERS.iter().any(|m| l.contains(m))
}

/// `<source>.<type>` for types an adapter does not know, with the type turned into valid
/// action segments (lower case; anything but a-z, 0-9, `_`, `-` becomes `_`).
pub fn unknown_action(source: Source, kind: &str) -> String {
    let segs: Vec<String> = kind
        .split('.')
        .map(segment)
        .filter(|s| !s.is_empty())
        .collect();
    if segs.is_empty() {
        format!("{source}.unknown")
    } else {
        format!("{source}.{}", segs.join("."))
    }
}

/// One action segment: `DescribeInstances` → `describe_instances`, `Push Hook` → `push_hook`.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut prev_lower = false;
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
            prev_lower = true;
        } else if c == '-' || c == '_' {
            out.push(c);
            prev_lower = false;
        } else {
            if !out.ends_with('_') {
                out.push('_');
            }
            prev_lower = false;
        }
    }
    out.trim_matches('_').to_string()
}

/// `sha256:<hex>` over bytes: the id of payloads that carry none of their own.
pub fn content_id(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Parses the time formats sources use: RFC 3339, `2024-01-02 03:04:05 UTC`,
/// `2024-01-02 03:04:05 +0100`, and unix seconds or milliseconds.
pub fn parse_time(v: &Value) -> Option<OffsetDateTime> {
    match v {
        Value::Number(n) => {
            // Anything past year 5138 in seconds is milliseconds.
            let nanos = match n.as_i64() {
                Some(i) if i > 100_000_000_000 => i as i128 * 1_000_000,
                Some(i) => i as i128 * 1_000_000_000,
                None => {
                    let x = n.as_f64()?;
                    (if x > 1e11 { x * 1e6 } else { x * 1e9 }) as i128
                }
            };
            OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
        }
        Value::String(s) => parse_time_str(s),
        _ => None,
    }
}

pub fn parse_time_str(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    // `2024-01-02 03:04:05 UTC` / `2024-01-02 03:04:05 +0100` (GitLab hooks).
    let (date_time, zone) = s.rsplit_once(' ')?;
    let iso = date_time.replacen(' ', "T", 1);
    let zone = match zone {
        "UTC" | "Z" => "Z".to_string(),
        z if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            format!("{}:{}", &z[..3], &z[3..])
        }
        _ => return None,
    };
    OffsetDateTime::parse(&format!("{iso}{zone}"), &Rfc3339).ok()
}

/// The value at a dotted path (`a.b.0.c`), if any.
pub fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    if cur.is_null() {
        None
    } else {
        Some(cur)
    }
}

/// A string (or number rendered as a string) at a dotted path; empty when absent.
pub fn s(v: &Value, path: &str) -> String {
    match at(v, path) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

pub fn b(v: &Value, path: &str) -> Option<bool> {
    at(v, path).and_then(Value::as_bool)
}

pub fn u(v: &Value, path: &str) -> Option<u64> {
    match at(v, path)? {
        Value::Number(n) => n.as_u64(),
        Value::String(x) => x.parse().ok(),
        _ => None,
    }
}

/// Strings of an array at a path (scalars only).
pub fn strings(v: &Value, path: &str) -> Vec<String> {
    at(v, path)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Sets an attribute unless the value is empty/null (keeps events small and honest:
/// an absent fact stays absent rather than becoming `""`).
pub fn set(e: &mut Event, key: &str, value: impl Into<Value>) {
    let value = value.into();
    let empty = match &value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if !empty {
        e.attributes.insert(key.to_string(), value);
    }
}

/// Copies the value at `path` of `v` into attribute `key` when present.
pub fn copy(e: &mut Event, key: &str, v: &Value, path: &str) {
    if let Some(x) = at(v, path) {
        set(e, key, x.clone());
    }
}

/// Most attributes kept from a raw payload under one prefix.
pub const PAYLOAD_BUDGET: usize = 160;

/// Keeps a raw payload as flattened attributes under `prefix`, skipping API link fields
/// (`*_url`, `_links`) and stopping after `budget` keys. What is dropped is counted in
/// `<prefix>.dropped`, and the whole payload's hash is kept in `<prefix>.sha256`, so
/// nothing is lost silently and the event stays within the attribute limit.
pub fn keep_payload(e: &mut Event, prefix: &str, payload: &Value, budget: usize) {
    let mut flat = Vec::new();
    flatten_into(&mut flat, prefix.to_string(), payload, 0);
    // Shallow fields first, so a large record loses its deepest detail, not what names the
    // call and who made it (`eventName`, `userIdentity.type`, `sourceIPAddress` …).
    flat.sort_by_key(|(k, _)| k.matches('.').count());
    let mut dropped = 0usize;
    for (k, v) in flat {
        if e.attributes.len() >= budget + 8 || e.attributes.len() >= 480 {
            dropped += 1;
            continue;
        }
        e.attributes.entry(k).or_insert(v);
    }
    if dropped > 0 {
        e.attributes
            .insert(format!("{prefix}.dropped"), Value::from(dropped as u64));
    }
    let bytes = serde_json::to_vec(payload).unwrap_or_default();
    e.attributes.insert(
        format!("{prefix}.sha256"),
        Value::String(hex::encode(Sha256::digest(&bytes))),
    );
}

/// How deep a kept payload is flattened; deeper values are kept as one JSON text. Deep
/// enough for CloudTrail's nested request items
/// (`requestParameters.ipPermissions.items.0.ipRanges.items.0.cidrIp`); the attribute
/// budget, not the depth, bounds the size.
const MAX_DEPTH: usize = 10;

fn flatten_into(out: &mut Vec<(String, Value)>, key: String, v: &Value, depth: usize) {
    let leaf = key.rsplit('.').next().unwrap_or("");
    if leaf.ends_with("_url") || leaf == "url" && depth > 1 || leaf == "_links" {
        return;
    }
    match v {
        Value::Object(m) if depth < MAX_DEPTH => {
            for (k, x) in m {
                flatten_into(out, format!("{key}.{k}"), x, depth + 1);
            }
        }
        Value::Array(a) if depth < MAX_DEPTH => {
            for (i, x) in a.iter().enumerate().take(32) {
                flatten_into(out, format!("{key}.{i}"), x, depth + 1);
            }
        }
        Value::Object(_) | Value::Array(_) => out.push((key, Value::String(v.to_string()))),
        Value::Null => {}
        scalar => out.push((key, scalar.clone())),
    }
}

/// The host of a URL (`https://api.example.com:8443/x` → `api.example.com`); expressions
/// and bare paths give `None`.
pub fn url_host(url: &str) -> Option<String> {
    let u = url.trim().trim_start_matches('=');
    let rest = u.split_once("://").map(|(_, r)| r)?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if host_port.starts_with('[') {
        host_port.split(']').next()?.trim_start_matches('[')
    } else {
        host_port.split(':').next()?
    };
    let host = host.to_ascii_lowercase();
    let ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == ':');
    ok.then_some(host)
}

/// Environment from names: a path segment or word such as `prod`, `staging`, `test`.
pub fn guess_environment<'a>(names: impl IntoIterator<Item = &'a str>) -> Environment {
    for name in names {
        for word in name
            .to_ascii_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
        {
            match word {
                "prod" | "production" | "prd" | "live" => return Environment::Prod,
                "staging" | "stage" | "stg" | "preprod" => return Environment::Staging,
                "test" | "testing" | "dev" | "development" | "qa" | "sandbox" => {
                    return Environment::Test
                }
                _ => {}
            }
        }
    }
    Environment::Unknown
}

/// An environment named by a source field (`production`, `Staging`, ...).
pub fn environment_named(name: &str) -> Environment {
    guess_environment([name])
}

/// Items of a container: the array itself, or the array under one of `keys`, or the
/// object as a single item.
pub fn items<'a>(v: &'a Value, keys: &[&str]) -> Vec<&'a Value> {
    if let Value::Array(a) = v {
        return a.iter().collect();
    }
    for k in keys {
        if let Some(Value::Array(a)) = v.get(*k) {
            return a.iter().collect();
        }
    }
    vec![v]
}

/// JSON objects of an NDJSON body (blank lines skipped). A line that is not JSON is
/// reported with its position.
pub fn ndjson(body: &[u8]) -> Vec<Result<Value, String>> {
    body.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(|l| {
            serde_json::from_slice::<Value>(l).map_err(|e| {
                let m = e.to_string();
                format!("not JSON: {}", m.split(" at line ").next().unwrap_or(&m))
            })
        })
        .collect()
}

/// `a` and `b` of a JSON object as an owned map (for merging detail into attributes).
pub fn object(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// Scopes are sets of words (`repo read:org`, `["a","b"]`); growth is an escalation.
pub fn scope_set(v: &Value) -> std::collections::BTreeSet<String> {
    match v {
        Value::String(x) => x
            .split([' ', ','])
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect(),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Default::default(),
    }
}

/// One node of a workflow (an n8n node, a make.com module) as added, changed or removed by
/// the version `base`: `workflow.node.<what>`, id `<base id>:node.<what>.<hash of key>`
/// (`key` is unique in the workflow), carrying the version's attributes and the node's
/// `node.name`, `node.type`, `node.export` and `node.destination`.
pub fn node_event(
    base: &Event,
    what: &str,
    key: &str,
    name: &str,
    kind: &str,
    export: bool,
    destination: Option<&str>,
) -> Event {
    let mut d = base.clone();
    d.action = format!("workflow.node.{what}");
    d.id = format!(
        "{}:node.{what}.{}",
        base.id,
        &content_id(key.as_bytes())[..12]
    );
    d.destination = destination.map(str::to_string);
    let text = |v: &str| Value::String(v.to_string());
    d.attributes.insert("node.name".into(), text(name));
    d.attributes.insert("node.type".into(), text(kind));
    d.attributes
        .insert("node.export".into(), Value::Bool(export));
    if let Some(h) = destination {
        d.attributes.insert("node.destination".into(), text(h));
    }
    d
}

/// Keeps a credential's scopes as `credential.scope` on `e`, remembers them, and derives
/// `credential.scope.increased` (id `<id>:scope`) when they grew since the last time this
/// credential was seen. A first sighting has no baseline and derives nothing.
pub fn track_scope(
    e: &mut Event,
    scopes: &Value,
    credential: &str,
    memory: &dyn Memory,
    out: &mut Mapped,
) -> Option<Event> {
    let now = scope_set(scopes);
    let before = out
        .recall(memory, e.source, "credential_scope", credential)
        .map(|v| scope_set(&v))
        .unwrap_or_default();
    let join =
        |s: &std::collections::BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(" ");
    e.attributes
        .insert("credential.scope".into(), Value::String(join(&now)));
    out.remember(
        e.source,
        "credential_scope",
        credential,
        Some(Value::Array(
            now.iter().cloned().map(Value::String).collect(),
        )),
    );
    let added: std::collections::BTreeSet<String> = now.difference(&before).cloned().collect();
    if before.is_empty() || added.is_empty() {
        return None;
    }
    let mut d = e.clone();
    d.id = format!("{}:scope", e.id);
    d.action = "credential.scope.increased".into();
    d.attributes
        .insert("credential.scope.added".into(), Value::String(join(&added)));
    d.attributes.insert(
        "credential.scope.before".into(),
        Value::String(join(&before)),
    );
    Some(d)
}

/// What the enrichment stage (`plumbline-enrich`) attached beside a source's own payload
/// (`{"source": "n8n-api"}`, or `{"error": "n8n API: GET … HTTP 500"}`): `enrichment.source`
/// when facts on this event came from the source's API, `enrichment.error` when they could
/// not be fetched (the event is mapped without them).
pub fn enrichment(e: &mut Event, attached: Option<&Value>) {
    if let Some(v) = attached {
        set(e, "enrichment.source", s(v, "source"));
        set(e, "enrichment.error", s(v, "error"));
    }
}

/// A source's API section: an http(s) base URL, and its credential when the URL is set.
pub fn check_api(section: &str, url: &str, key: &str, credential: &str) -> Result<(), String> {
    if url.is_empty() {
        return Ok(());
    }
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(format!(
            "{section}.api_url must start with http:// or https://"
        ));
    }
    if credential.is_empty() {
        return Err(format!(
            "{section}.{key} must be set when {section}.api_url is"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_in_source_formats() {
        let t = |v: Value| {
            parse_time(&v).map(|t| plumbline_event::format_time(t.to_offset(time::UtcOffset::UTC)))
        };
        assert_eq!(
            t(json!("2024-05-01T10:00:00.5+02:00")).unwrap(),
            "2024-05-01T08:00:00.5Z"
        );
        assert_eq!(
            t(json!("2013-12-03 17:23:34 UTC")).unwrap(),
            "2013-12-03T17:23:34Z"
        );
        assert_eq!(
            t(json!("2013-12-03 17:23:34 +0100")).unwrap(),
            "2013-12-03T16:23:34Z"
        );
        assert_eq!(t(json!(1720804090)).unwrap(), "2024-07-12T17:08:10Z");
        assert_eq!(
            t(json!(1720804090123u64)).unwrap(),
            "2024-07-12T17:08:10.123Z"
        );
        assert_eq!(t(json!("yesterday")), None);
    }

    #[test]
    fn segments_and_unknown_actions() {
        assert_eq!(segment("DescribeInstances"), "describe_instances");
        assert_eq!(segment("Push Hook"), "push_hook");
        assert_eq!(
            unknown_action(Source::Okta, "app.oauth2.as.consent.Grant"),
            "okta.app.oauth2.as.consent.grant"
        );
        assert!(
            plumbline_event::check_action(&unknown_action(Source::Github, "Weird Event!")).is_ok()
        );
    }
    #[test]
    fn url_hosts_and_environments() {
        assert_eq!(
            url_host("https://user:pw@API.example.com:8443/x?y").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(url_host("={{ $json.url }}"), None);
        assert_eq!(url_host("/relative"), None);
        assert_eq!(
            guess_environment(["secret/data/prod/db"]),
            Environment::Prod
        );
        assert_eq!(guess_environment(["n8n-staging"]), Environment::Staging);
        assert_eq!(guess_environment(["product"]), Environment::Unknown);
    }

    #[test]
    fn payloads_are_kept_within_budget_with_a_hash() {
        let mut e = event(
            Source::Github,
            "x".into(),
            OffsetDateTime::UNIX_EPOCH,
            actor("a", ActorType::Human, ""),
            "s",
            "github.star.created",
        );
        let big: Map<String, Value> = (0..500).map(|i| (format!("k{i}"), json!(i))).collect();
        keep_payload(&mut e, "payload", &Value::Object(big), 100);
        assert!(e.attributes.len() <= 110, "{}", e.attributes.len());
        assert!(e.attributes["payload.dropped"].as_u64().unwrap() > 380);
        assert!(e.attributes.contains_key("payload.sha256"));
        let mut m = Mapped::default();
        m.push(0, e);
        assert!(m.rejected.is_empty(), "{:?}", m.rejected);
    }

    #[test]
    fn a_large_payload_loses_its_deepest_fields_first() {
        let mut e = event(
            Source::Cloudtrail,
            "x".into(),
            OffsetDateTime::UNIX_EPOCH,
            actor("a", ActorType::Human, ""),
            "s",
            "cloudtrail.unknown",
        );
        // A record whose deep response outnumbers the budget, with the fields that name
        // the call and its caller last in the alphabet.
        let items: Vec<Value> = (0..40)
            .map(|i| json!({"id": i, "state": {"name": "running", "code": 16}}))
            .collect();
        let record = json!({
            "eventName": "RunInstances",
            "responseElements": {"instancesSet": {"items": items}},
            "userIdentity": {"type": "IAMUser", "userName": "alice"},
            "userAgent": "aws-cli/2.15"
        });
        keep_payload(&mut e, "raw", &record, 60);
        assert!(e.attributes["raw.dropped"].as_u64().unwrap() > 0);
        assert_eq!(e.attributes["raw.userIdentity.type"], json!("IAMUser"));
        assert_eq!(e.attributes["raw.userAgent"], json!("aws-cli/2.15"));
        assert_eq!(e.attributes["raw.eventName"], json!("RunInstances"));

        // Eight levels below the prefix are still fields of their own.
        let record = json!({"requestParameters": {"ipPermissions": {"items": [
            {"ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}
        ]}}});
        keep_payload(&mut e, "raw2", &record, 200);
        assert_eq!(
            e.attributes["raw2.requestParameters.ipPermissions.items.0.ipRanges.items.0.cidrIp"],
            json!("0.0.0.0/0")
        );
    }
}
