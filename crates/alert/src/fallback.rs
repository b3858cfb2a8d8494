//! The deterministic summary, built from the findings alone: what happened, in story
//! order, with the evidence. Used when no LLM is configured or the model fails, and as
//! the summary an alert carries until the model's arrives. Same alert, same text.

use std::collections::HashSet;

use crate::summary::{Reason, Summary};
use crate::Alert;
use plumbline_event::redact;
use plumbline_event::{format_time, time_from_nanos, Event};
use plumbline_trajectory::Severity;
use plumbline_trajectory::Trajectory;

/// Evidence events narrated one by one; beyond this the rest are counted.
const MAX_STEPS: usize = 12;

pub fn build(alert: &Alert, t: &Trajectory) -> Summary {
    let severity = detector_severity(alert);
    let evidence: HashSet<&str> = alert
        .findings
        .iter()
        .flat_map(|f| f.evidence.iter().map(String::as_str))
        .collect();
    let steps: Vec<&Event> = t
        .events
        .iter()
        .filter(|e| evidence.contains(e.id.as_str()))
        .map(|e| e.as_ref())
        .collect();

    let mut narrative = format!(
        "Detectors raised {} finding{} (highest severity {} — {}) on the {} trajectory of `{}`: \
         {} event{} from {} to {}",
        alert.findings.len(),
        plural(alert.findings.len()),
        severity,
        severity_name(severity),
        t.kind.as_str(),
        t.key,
        t.events.len(),
        plural(t.events.len()),
        format_time(time_from_nanos(t.start)),
        format_time(time_from_nanos(t.end)),
    );
    if t.dropped > 0 {
        narrative.push_str(&format!(
            " ({} older event{} dropped by the trajectory bound)",
            t.dropped,
            plural(t.dropped as usize)
        ));
    }
    narrative.push('.');
    if !steps.is_empty() {
        narrative.push_str(" What happened, in order: ");
        let described: Vec<String> = steps
            .iter()
            .take(MAX_STEPS)
            .enumerate()
            .map(|(i, e)| format!("({}) {}", i + 1, describe(e)))
            .collect();
        narrative.push_str(&described.join("; "));
        if steps.len() > MAX_STEPS {
            narrative.push_str(&format!(
                "; and {} more cited event{}",
                steps.len() - MAX_STEPS,
                plural(steps.len() - MAX_STEPS)
            ));
        }
        narrative.push('.');
    }

    let reasons = alert
        .findings
        .iter()
        .map(|f| Reason {
            reason: format!(
                "{} — signal `{}` from {} {}, severity {}, score {:.2}",
                f.title.trim(),
                f.signal,
                f.detector,
                f.detector_version,
                f.severity,
                f.score
            ),
            event_ids: in_story_order(&f.evidence, t),
        })
        .collect();

    // Findings are kept most severe first, so their next steps are too.
    let mut next: Vec<&str> = Vec::new();
    for f in &alert.findings {
        let s = f.next_step.trim();
        if !s.is_empty() && !next.contains(&s) {
            next.push(s);
        }
    }
    let next_step = if next.is_empty() {
        default_next_step(severity).to_string()
    } else {
        next.join("; ")
    };

    let summary = Summary {
        narrative,
        risk: severity,
        signals: alert.signals.clone(),
        reasons,
        next_step,
    };
    scrub(summary)
}

/// The highest severity among the findings (1 when there are none).
pub fn detector_severity(alert: &Alert) -> Severity {
    alert
        .findings
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(1)
        .clamp(1, 3)
}

/// `16:04:00Z human mallory: workflow.trigger.added `webhook` in `n8n/x` (prod) → dest, 120 rows [s2]`
fn describe(e: &Event) -> String {
    let mut s = format!(
        "{} {} `{}`: {}",
        format_time(e.time),
        e.actor.kind.as_str(),
        e.actor.id,
        e.action
    );
    if !e.resource.is_empty() {
        s.push_str(&format!(" `{}`", e.resource));
    }
    s.push_str(&format!(" in `{}`", e.system));
    s.push_str(&format!(" ({})", e.environment.as_str()));
    if let Some(d) = &e.destination {
        s.push_str(&format!(" → `{d}`"));
    }
    if let Some(v) = &e.volume {
        let mut parts = Vec::new();
        if let Some(r) = v.rows {
            parts.push(format!("{r} rows"));
        }
        if let Some(b) = v.bytes {
            parts.push(format!("{b} bytes"));
        }
        if let Some(f) = v.files {
            parts.push(format!("{f} files"));
        }
        if !parts.is_empty() {
            s.push_str(&format!(", {}", parts.join(", ")));
        }
    }
    s.push_str(&format!(" [event {}]", e.id));
    s
}

fn in_story_order(ids: &[String], t: &Trajectory) -> Vec<String> {
    let mut out: Vec<String> = t
        .events
        .iter()
        .filter(|e| ids.contains(&e.id))
        .map(|e| e.id.clone())
        .collect();
    // Evidence outside the kept window (dropped by the bound) is still named.
    for id in ids {
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    out
}

fn default_next_step(severity: Severity) -> &'static str {
    match severity {
        3 => "Page on-call, review the cited events now and decide whether to pause the workflow or revoke the token.",
        2 => "Ask the owner for a short business justification and review the cited events.",
        _ => "No action needed beyond the daily digest; review the cited events if they look unfamiliar.",
    }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        3 => "urgent",
        2 => "needs review",
        _ => "informational",
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Events are redacted at ingest; this keeps a rule added later from being bypassed here.
fn scrub(mut s: Summary) -> Summary {
    let r = |x: &mut String| {
        if let Some(v) = redact::text(x) {
            *x = v;
        }
    };
    r(&mut s.narrative);
    r(&mut s.next_step);
    s.reasons.iter_mut().for_each(|x| r(&mut x.reason));
    s
}
