//! Checking the model's answer: the schema, and that every reason cites events that exist
//! in the trajectory. The error text is what the corrective retry tells the model.

use super::{Reason, Summary};
use plumbline_event::redact;
use plumbline_trajectory::Trajectory;

/// Bounds beyond the schema, so one answer cannot flood an alert.
const MAX_NARRATIVE_CHARS: usize = 4000;
const MAX_REASONS: usize = 12;
const MAX_SIGNALS: usize = 20;
const MAX_TEXT_CHARS: usize = 600;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("the answer is not JSON: {0}")]
    NotJson(String),
    #[error("the answer does not match the schema at `{path}`: {reason}")]
    Schema { path: String, reason: String },
    #[error("`{field}` is empty")]
    Empty { field: String },
    #[error("`{field}` is too long ({len} characters, at most {max})")]
    TooLong {
        field: String,
        len: usize,
        max: usize,
    },
    #[error("`risk` is {0}; it must be 1, 2 or 3")]
    Risk(u8),
    #[error("`reasons[{index}]` cites no event id; every reason must cite the events it rests on")]
    Uncited { index: usize },
    #[error("`reasons[{index}]` cites `{id}`, which is not an event id in this trajectory")]
    UnknownEvent { index: usize, id: String },
}

/// Parses and checks an answer against the trajectory it is about.
pub fn check(content: &str, t: &Trajectory) -> Result<Summary, Invalid> {
    let text = strip_code_fence(content);
    let mut de = serde_json::Deserializer::from_str(text);
    let summary: Summary = match serde_path_to_error::deserialize(&mut de) {
        Ok(s) => s,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            return Err(if inner.is_syntax() || inner.is_eof() {
                Invalid::NotJson(inner.to_string())
            } else {
                Invalid::Schema {
                    path,
                    reason: inner.to_string(),
                }
            });
        }
    };
    de.end().map_err(|e| Invalid::NotJson(e.to_string()))?;
    if !(1..=3).contains(&summary.risk) {
        return Err(Invalid::Risk(summary.risk));
    }
    non_empty("narrative", &summary.narrative)?;
    bounded("narrative", &summary.narrative, MAX_NARRATIVE_CHARS)?;
    non_empty("next_step", &summary.next_step)?;
    bounded("next_step", &summary.next_step, MAX_TEXT_CHARS)?;
    if summary.reasons.is_empty() {
        return Err(Invalid::Empty {
            field: "reasons".into(),
        });
    }
    count("reasons", summary.reasons.len(), MAX_REASONS)?;
    count("signals", summary.signals.len(), MAX_SIGNALS)?;
    for (i, s) in summary.signals.iter().enumerate() {
        bounded(&format!("signals[{i}]"), s, MAX_TEXT_CHARS)?;
    }
    for (index, r) in summary.reasons.iter().enumerate() {
        non_empty(&format!("reasons[{index}].reason"), &r.reason)?;
        bounded(
            &format!("reasons[{index}].reason"),
            &r.reason,
            MAX_TEXT_CHARS,
        )?;
        if r.event_ids.is_empty() {
            return Err(Invalid::Uncited { index });
        }
        if let Some(id) = r.event_ids.iter().find(|id| !t.contains(id)) {
            return Err(Invalid::UnknownEvent {
                index,
                id: id.chars().take(200).collect(),
            });
        }
    }
    Ok(scrub(summary))
}

/// Some local servers wrap JSON in a Markdown code fence even under a schema.
fn strip_code_fence(s: &str) -> &str {
    let t = s.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let rest = rest.strip_prefix("json").unwrap_or(rest);
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

fn non_empty(field: &str, s: &str) -> Result<(), Invalid> {
    if s.trim().is_empty() {
        return Err(Invalid::Empty {
            field: field.into(),
        });
    }
    Ok(())
}

fn bounded(field: &str, s: &str, max: usize) -> Result<(), Invalid> {
    let len = s.chars().count();
    if len > max {
        return Err(Invalid::TooLong {
            field: field.into(),
            len,
            max,
        });
    }
    Ok(())
}

fn count(field: &str, len: usize, max: usize) -> Result<(), Invalid> {
    if len > max {
        return Err(Invalid::TooLong {
            field: format!("{field} (items)"),
            len,
            max,
        });
    }
    Ok(())
}

/// The model only ever saw redacted text, but it could still assemble something that
/// looks like a credential; the alert is stored and routed, so redact its text too.
fn scrub(s: Summary) -> Summary {
    let r = |x: String| redact::text(&x).unwrap_or(x);
    Summary {
        narrative: r(s.narrative),
        risk: s.risk,
        signals: s.signals.into_iter().map(r).collect(),
        reasons: s
            .reasons
            .into_iter()
            .map(|x| Reason {
                reason: r(x.reason),
                event_ids: x.event_ids,
            })
            .collect(),
        next_step: r(s.next_step),
    }
}
