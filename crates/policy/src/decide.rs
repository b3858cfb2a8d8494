//! The pure part of policy: from an alert and its evidence to a verdict (severity after
//! allow-lists and break-glass, suppression, matched routes). Same evidence, same verdict;
//! only suppression windows read the wall clock.

use std::collections::HashMap;
use std::sync::Arc;

use time::OffsetDateTime;

use super::matcher::{glob, parse_instant, Facts, FindingView};
use super::model::{AllowAction, Policy, Route};
use plumbline_alert::Alert;
use plumbline_event::{format_time, Event};

#[derive(Debug, Clone)]
pub struct BreakGlassHit {
    pub ticket: String,
    pub review_by: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct Verdict {
    pub detector_severity: u8,
    /// Severity after policy; meaningless when suppressed.
    pub severity: u8,
    pub suppressed: Option<String>,
    /// Why severity or routing differs from what detectors said, for the alert and messages.
    pub notes: Vec<String>,
    /// The findings that still count.
    pub findings: Vec<FindingView>,
    pub facts: Facts,
    pub routes: Vec<Route>,
    pub break_glass: Option<BreakGlassHit>,
}

impl Verdict {
    /// Evidence events of the findings that count, each once, in story order.
    pub fn events(&self) -> Vec<Arc<Event>> {
        let mut v: Vec<Arc<Event>> = Vec::new();
        for f in &self.findings {
            for e in &f.evidence {
                if !v.iter().any(|x| x.id == e.id) {
                    v.push(e.clone());
                }
            }
        }
        v.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
        v
    }
}

fn push_note(notes: &mut Vec<String>, n: String) {
    if !notes.contains(&n) {
        notes.push(n);
    }
}

impl Policy {
    pub fn evaluate(
        &self,
        alert: &Alert,
        events: &HashMap<String, Arc<Event>>,
        now: OffsetDateTime,
    ) -> Verdict {
        let mut notes = Vec::new();
        let mut suppress_reasons = Vec::new();
        let mut counting = Vec::new();
        let mut break_glass = None;
        for f in &alert.findings {
            let mut view = FindingView {
                signal: f.signal.clone(),
                detector: f.detector.clone(),
                severity: f.severity.clamp(1, 3),
                evidence: f
                    .evidence
                    .iter()
                    .filter_map(|id| events.get(id).cloned())
                    .collect(),
            };
            let covering = |want: AllowAction| {
                self.allow
                    .rules()
                    .find(|(_, r)| r.action == want && r.covers(&view))
                    .map(|(list, r)| r.describe(list))
            };
            if let Some(why) = covering(AllowAction::Suppress) {
                suppress_reasons.push(format!("`{}` allowed by {why}", f.signal));
                continue;
            }
            if let Some(why) = covering(AllowAction::Downgrade) {
                let to = view.severity.saturating_sub(1).max(1);
                if to != view.severity {
                    push_note(
                        &mut notes,
                        format!(
                            "`{}` downgraded from severity {} to {to} by {why}",
                            f.signal, view.severity
                        ),
                    );
                    view.severity = to;
                }
            }
            if let Some(hit) = self.break_glass_hit(&view, now) {
                let to = view.severity.min(self.break_glass.severity);
                push_note(
                    &mut notes,
                    format!(
                        "break-glass: `{}` is an emergency change under incident {}; severity {} → {to}, review within {} hours (by {}), follow-up scheduled",
                        f.signal,
                        hit.ticket,
                        view.severity,
                        self.break_glass.review_within_hours,
                        format_time(hit.review_by)
                    ),
                );
                view.severity = to;
                break_glass.get_or_insert(hit);
            }
            counting.push(view);
        }
        let detector_severity = alert
            .findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(1)
            .clamp(1, 3);
        let mut severity = counting.iter().map(|f| f.severity).max().unwrap_or(1);
        // The summary stage may raise the alert above its findings (the model's risk, capped
        // by llm.max_raised_severity). Allow-lists and break-glass carry knowledge the model
        // lacks (planned migrations, own domains), so a raise counts only where policy did
        // not adjust anything.
        let raised = alert.severity.clamp(1, 3);
        if raised > severity && notes.is_empty() && suppress_reasons.is_empty() {
            push_note(
                &mut notes,
                format!(
                    "severity {raised}: raised by the summary's risk assessment (detectors said {severity})"
                ),
            );
            severity = raised;
        }
        let facts = Facts::of(severity, counting.iter());
        let mut suppressed = None;
        if counting.is_empty() && !alert.findings.is_empty() {
            suppressed = Some(format!("suppressed: {}", suppress_reasons.join("; ")));
        } else {
            for r in &suppress_reasons {
                push_note(&mut notes, format!("finding {r}, not counted"));
            }
            let active = self.suppressions.iter().find(|s| {
                let (Ok(a), Ok(b)) = (parse_instant(&s.start), parse_instant(&s.end)) else {
                    return false;
                };
                now >= a && now < b && s.matches.matches(&facts)
            });
            if let Some(s) = active {
                suppressed = Some(format!(
                    "suppressed by suppression window `{}` until {}{}",
                    s.name,
                    s.end,
                    if s.reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", s.reason)
                    }
                ));
            }
        }
        let mut routes = Vec::new();
        if suppressed.is_none() {
            for r in &self.routes {
                if r.matches.matches(&facts) {
                    routes.push(r.clone());
                    if !r.continue_matching {
                        break;
                    }
                }
            }
        }
        Verdict {
            detector_severity,
            severity,
            suppressed,
            notes,
            findings: counting,
            facts,
            routes,
            break_glass,
        }
    }

    /// A direct-to-prod finding whose evidence names an incident ticket.
    fn break_glass_hit(&self, f: &FindingView, now: OffsetDateTime) -> Option<BreakGlassHit> {
        let b = &self.break_glass;
        if !b.enabled || !b.signals.iter().any(|p| glob(p, &f.signal)) {
            return None;
        }
        if !b.environments.is_empty()
            && !f
                .evidence
                .iter()
                .any(|e| b.environments.iter().any(|x| x == e.environment.as_str()))
        {
            return None;
        }
        let pattern = regex::Regex::new(&b.ticket_pattern).ok()?;
        let ticket = f.evidence.iter().find_map(|e| {
            b.ticket_attributes.iter().find_map(|k| {
                e.attr_str(k)
                    .map(str::trim)
                    .filter(|t| pattern.is_match(t))
                    .map(str::to_string)
            })
        })?;
        Some(BreakGlassHit {
            ticket,
            review_by: now + time::Duration::hours(b.review_within_hours as i64),
        })
    }
}
