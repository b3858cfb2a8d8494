//! The native body forms of `POST /v1/events`: one JSON event, a JSON array, or NDJSON.

use serde_json::value::RawValue;

use super::Rejection;
use plumbline_event::{parse_event_bytes, Event, EventError, RESERVED_PREFIX};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyForm {
    /// `application/json`: one event or an array of events.
    Json,
    /// `application/x-ndjson` (also `application/jsonl`, `application/json-seq`-free lines).
    Ndjson,
}

impl BodyForm {
    pub fn from_content_type(ct: Option<&str>) -> Option<BodyForm> {
        let ct = ct.unwrap_or("application/json");
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/json" | "text/json" | "" => Some(BodyForm::Json),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines" => Some(BodyForm::Ndjson),
            _ => None,
        }
    }
}

/// The body as a whole is not JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("body is not JSON: {message} (line {line}, column {column})")]
pub struct NotJson {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Validated events with their body positions, and the refusals.
#[derive(Debug, Default)]
pub struct ParsedBody {
    pub events: Vec<Event>,
    pub indexes: Vec<usize>,
    pub rejected: Vec<Rejection>,
}

impl ParsedBody {
    fn push(&mut self, index: usize, bytes: &[u8]) {
        match parse_event_bytes(bytes).and_then(refuse_reserved) {
            Ok(e) => {
                self.events.push(e);
                self.indexes.push(index);
            }
            Err(err) => self.rejected.push(Rejection::new(index, err)),
        }
    }
}

/// Native bodies may not set Plumbline's own attributes: whether a source verified an
/// event is decided at its endpoint, never claimed by a client.
fn refuse_reserved(e: Event) -> Result<Event, EventError> {
    match e.attributes.keys().find(|k| k.starts_with(RESERVED_PREFIX)) {
        Some(k) => Err(EventError::new(
            format!("attributes.{k}"),
            format!(
                "`{RESERVED_PREFIX}*` attributes are set by Plumbline itself (which source \
                 verified an event); a client cannot send them"
            ),
        )),
        None => Ok(e),
    }
}

pub fn parse(form: BodyForm, body: &[u8]) -> Result<ParsedBody, NotJson> {
    match form {
        BodyForm::Json => parse_json(body),
        BodyForm::Ndjson => parse_ndjson(body),
    }
}

fn not_json(e: serde_json::Error) -> NotJson {
    let msg = e.to_string();
    let message = match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    NotJson {
        line: e.line(),
        column: e.column(),
        message,
    }
}

fn parse_json(body: &[u8]) -> Result<ParsedBody, NotJson> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let mut out = ParsedBody::default();
    if first == Some(&b'[') {
        let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(not_json)?;
        for (i, raw) in items.iter().enumerate() {
            out.push(i, raw.get().as_bytes());
        }
    } else {
        let raw: &RawValue = serde_json::from_slice(body).map_err(not_json)?;
        out.push(0, raw.get().as_bytes());
    }
    Ok(out)
}

fn parse_ndjson(body: &[u8]) -> Result<ParsedBody, NotJson> {
    let mut out = ParsedBody::default();
    let mut index = 0;
    let mut first_syntax_error = None;
    let mut any_json = false;
    for (lineno, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<&RawValue>(line) {
            Ok(_) => {
                any_json = true;
                out.push(index, line);
            }
            Err(e) => {
                let mut nj = not_json(e);
                nj.line = lineno + 1;
                out.rejected.push(Rejection {
                    index,
                    field: "(line)".into(),
                    reason: format!(
                        "not JSON: {} (line {}, column {})",
                        nj.message, nj.line, nj.column
                    ),
                });
                first_syntax_error.get_or_insert(nj);
            }
        }
        index += 1;
    }
    match first_syntax_error {
        Some(err) if !any_json => Err(err),
        _ => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EV: &str = r#"{"id":"a","time":"2026-11-25T10:00:00Z","source":"github","actor":{"id":"u","type":"human"},"system":"acme/api","action":"git.push"}"#;

    #[test]
    fn three_forms() {
        assert_eq!(
            parse(BodyForm::Json, EV.as_bytes()).unwrap().events.len(),
            1
        );
        let arr = format!("[{EV},{}]", EV.replace("\"a\"", "\"b\""));
        assert_eq!(
            parse(BodyForm::Json, arr.as_bytes()).unwrap().events.len(),
            2
        );
        let nd = format!("{EV}\n\n{}\r\n", EV.replace("\"a\"", "\"b\""));
        let p = parse(BodyForm::Ndjson, nd.as_bytes()).unwrap();
        assert_eq!(p.indexes, vec![0, 1]);
    }

    #[test]
    fn not_json_names_line_and_column() {
        let err = parse(BodyForm::Json, b"{\n \"id\": nope}").unwrap_err();
        assert_eq!(err.line, 2);
        assert!((8..=9).contains(&err.column), "{err}");
        let err = parse(BodyForm::Ndjson, b"garbage\nmore garbage").unwrap_err();
        assert_eq!(err.line, 1);
        let p = parse(BodyForm::Ndjson, format!("{EV}\n{{broken\n").as_bytes()).unwrap();
        assert_eq!(p.events.len(), 1);
        assert_eq!(p.rejected[0].index, 1);
        assert!(p.rejected[0].reason.contains("line 2"), "{:?}", p.rejected);
    }

    #[test]
    fn a_client_cannot_claim_a_source_verified_its_event() {
        let forged = EV.replace(
            r#""action":"git.push""#,
            r#""action":"deploy_key.created","attributes":{"plumbline.verified_by":"github","key.id":"1"}"#,
        );
        let p = parse(BodyForm::Json, forged.as_bytes()).unwrap();
        assert!(p.events.is_empty());
        assert_eq!(p.rejected[0].field, "attributes.plumbline.verified_by");
    }

    #[test]
    fn content_types() {
        assert_eq!(
            BodyForm::from_content_type(Some("application/x-ndjson")),
            Some(BodyForm::Ndjson)
        );
        assert_eq!(
            BodyForm::from_content_type(Some("application/json; charset=utf-8")),
            Some(BodyForm::Json)
        );
        assert_eq!(BodyForm::from_content_type(Some("text/plain")), None);
    }
}
