//! Turning untrusted bytes into a valid [`Event`], with errors that name the field.

use serde_json::Value;

use super::{Attributes, Event};
use crate::redact;

/// Why one event was refused: the field (dotted path) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("field `{field}`: {reason}")]
pub struct EventError {
    pub field: String,
    pub reason: String,
}

impl EventError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        EventError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

const MAX_ID_LEN: usize = 512;
const MAX_ACTION_LEN: usize = 128;
/// Attribute values per event, counted after nested objects and arrays are flattened.
const MAX_ATTRIBUTES: usize = 512;
/// Bytes of attribute keys and values per event: a trajectory hands every attribute of up
/// to a thousand events to each detector, so one event cannot be allowed to be huge.
pub const MAX_ATTRIBUTE_BYTES: usize = 256 * 1024;

/// Parses and validates one event from JSON bytes. The typed fast path runs first;
/// only a refused event pays for the second, path-tracking parse that names the field.
pub fn parse_event_bytes(bytes: &[u8]) -> Result<Event, EventError> {
    match serde_json::from_slice::<Event>(bytes) {
        Ok(mut event) => {
            check(&mut event)?;
            Ok(event)
        }
        Err(err) if err.is_syntax() || err.is_eof() => {
            Err(EventError::new("(event)", format!("not JSON: {err}")))
        }
        Err(_) => match serde_json::from_slice::<Value>(bytes) {
            Ok(v) => parse_event(v),
            Err(err) => Err(EventError::new("(event)", format!("not JSON: {err}"))),
        },
    }
}

/// Parses and validates one event from a JSON value, normalising it on the way:
/// time to UTC, nested attributes flattened to dotted keys, secrets redacted.
pub fn parse_event(value: Value) -> Result<Event, EventError> {
    let mut event: Event = match serde_path_to_error::deserialize(value) {
        Ok(e) => e,
        Err(err) => {
            let path = err.path().to_string();
            let field = if path == "." { String::new() } else { path };
            let inner = err.into_inner().to_string();
            // serde reports a missing field at the parent path; name the field itself.
            if let Some(name) = missing_field_name(&inner) {
                let field = if field.is_empty() {
                    name.to_string()
                } else {
                    format!("{field}.{name}")
                };
                return Err(EventError::new(field, "required field is missing"));
            }
            let field = if field.is_empty() {
                "(event)".to_string()
            } else {
                field
            };
            return Err(EventError::new(field, strip_position(&inner)));
        }
    };
    check(&mut event)?;
    Ok(event)
}

fn missing_field_name(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// serde_json appends " at line L column C" which is meaningless for a value
/// already parsed; the field path says where.
fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn check(event: &mut Event) -> Result<(), EventError> {
    check_text("id", &event.id, MAX_ID_LEN)?;
    check_text("actor.id", &event.actor.id, MAX_ID_LEN)?;
    check_text("system", &event.system, MAX_ID_LEN)?;
    check_action(&event.action)?;
    event.time = event.time.to_offset(time::UtcOffset::UTC);
    let (values, bytes) = attribute_size(&event.attributes);
    if values > MAX_ATTRIBUTES {
        return Err(EventError::new(
            "attributes",
            format!(
                "{values} values once nested objects and arrays are flattened; at most \
                 {MAX_ATTRIBUTES} are kept per event"
            ),
        ));
    }
    if bytes > MAX_ATTRIBUTE_BYTES {
        return Err(EventError::new(
            "attributes",
            format!("{bytes} bytes of keys and values; at most {MAX_ATTRIBUTE_BYTES} per event"),
        ));
    }
    if event
        .attributes
        .values()
        .any(|v| v.is_object() || v.is_array())
    {
        event.attributes = flatten(std::mem::take(&mut event.attributes));
    }
    redact::event(event);
    Ok(())
}

/// (values, bytes) the attributes will have once flattened, counted without flattening
/// (a 150,000-element array is refused before anything is allocated for it). Keys count
/// with their flattened prefix; numbers and booleans count 8 bytes.
fn attribute_size(attrs: &Attributes) -> (usize, usize) {
    fn walk(prefix: usize, v: &Value, acc: &mut (usize, usize)) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    if acc.0 > MAX_ATTRIBUTES {
                        return;
                    }
                    walk(prefix + 1 + k.len(), v, acc);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    if acc.0 > MAX_ATTRIBUTES {
                        return; // enough to refuse: not the rest of a hostile array
                    }
                    let digits = i.checked_ilog10().map_or(1, |d| d as usize + 1);
                    walk(prefix + 1 + digits, v, acc);
                }
            }
            Value::String(s) => {
                acc.0 += 1;
                acc.1 += prefix + s.len();
            }
            _ => {
                acc.0 += 1;
                acc.1 += prefix + 8;
            }
        }
    }
    let mut acc = (0, 0);
    for (k, v) in attrs {
        walk(k.len(), v, &mut acc);
    }
    acc
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), EventError> {
    if value.is_empty() {
        return Err(EventError::new(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(EventError::new(
            field,
            format!("{} bytes; at most {max}", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(EventError::new(field, "contains control characters"));
    }
    Ok(())
}

/// Actions are dotted lower-case verbs (`git.push.force`); see docs/actions.md.
pub fn check_action(action: &str) -> Result<(), EventError> {
    let ok = !action.is_empty()
        && action.len() <= MAX_ACTION_LEN
        && action.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(EventError::new(
            "action",
            format!("`{action}` is not a dotted lower-case verb such as `git.push.force` (segments of a-z, 0-9, _ or -)"),
        ))
    }
}

/// Flattens nested objects and arrays into dotted keys (`a.b`, `list.0`), so unknown
/// detail is kept rather than dropped.
pub fn flatten(attrs: Attributes) -> Attributes {
    let mut out = Attributes::new();
    for (k, v) in attrs {
        flatten_into(&mut out, k, v);
    }
    out
}

fn flatten_into(out: &mut Attributes, key: String, value: Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten_into(out, format!("{key}.{k}"), v);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.into_iter().enumerate() {
                flatten_into(out, format!("{key}.{i}"), v);
            }
        }
        scalar => {
            out.insert(key, scalar);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({
            "id": "e1", "time": "2026-11-25T02:13:00+01:00", "source": "n8n",
            "actor": {"id": "u1", "type": "human", "display": "Ada"},
            "system": "n8n/prod", "action": "workflow.activated", "resource": "wf/1",
            "environment": "prod", "attributes": {"workflow": {"name": "Invoice sync"}}
        })
    }

    /// The confirmed attack: a 150,000-element array passed the 512-attribute check
    /// (one top-level key) and, flattened, stalled detectors into quarantine.
    #[test]
    fn attribute_limits_count_flattened_values_and_bytes() {
        let base = json!({
            "id": "big", "time": "2026-11-25T10:00:00Z", "source": "github",
            "actor": {"id": "u", "type": "human"}, "system": "acme/api", "action": "git.push",
        });
        let with = |attributes: Value| {
            let mut v = base.clone();
            v["attributes"] = attributes;
            parse_event(v)
        };
        let huge: Vec<u32> = (0..150_000).collect();
        let err = with(json!({ "list": huge })).unwrap_err();
        assert_eq!(err.field, "attributes");
        assert!(err.reason.contains("flattened"), "{}", err.reason);
        let nested = json!({"a": {"b": (0..600).collect::<Vec<u32>>()}});
        assert_eq!(with(nested).unwrap_err().field, "attributes");
        let long = "x".repeat(MAX_ATTRIBUTE_BYTES);
        let err = with(json!({ "body": long })).unwrap_err();
        assert!(err.reason.contains("bytes"), "{}", err.reason);
        // Within both limits: kept, flattened.
        let ok = with(json!({"files": (0..500).collect::<Vec<u32>>()})).unwrap();
        assert_eq!(ok.attributes.len(), 500);
    }

    #[test]
    fn normalises_time_and_flattens_attributes() {
        let e = parse_event(good()).unwrap();
        assert_eq!(crate::format_time(e.time), "2026-11-25T01:13:00Z");
        assert_eq!(e.attributes["workflow.name"], json!("Invoice sync"));
    }

    #[test]
    fn names_the_field_that_is_wrong() {
        let mut v = good();
        v["time"] = json!("yesterday");
        assert_eq!(parse_event(v).unwrap_err().field, "time");
        let mut v = good();
        v["actor"]["type"] = json!("robot");
        let err = parse_event(v).unwrap_err();
        assert_eq!(err.field, "actor.type");
        assert!(err.reason.contains("robot"), "{err}");
        let mut v = good();
        v.as_object_mut().unwrap().remove("action");
        assert_eq!(
            parse_event(v).unwrap_err(),
            EventError::new("action", "required field is missing")
        );
        let mut v = good();
        v["actor"].as_object_mut().unwrap().remove("id");
        assert_eq!(parse_event(v).unwrap_err().field, "actor.id");
        let mut v = good();
        v["volume"] = json!({"rows": "many"});
        assert_eq!(parse_event(v).unwrap_err().field, "volume.rows");
        let mut v = good();
        v["action"] = json!("Git Push");
        assert_eq!(parse_event(v).unwrap_err().field, "action");
        let mut v = good();
        v["id"] = json!("");
        assert_eq!(parse_event(v).unwrap_err().field, "id");
        let mut v = good();
        v["colour"] = json!("red");
        assert!(parse_event(v).unwrap_err().reason.contains("colour"));
    }
}
