//! The review packet of one alert: what a reviewer needs to decide in one page — the
//! narrative, the trajectory as a timeline with the cited events marked, links back to the
//! sources, a data-classification hint, who should explain and who can approve, suggested
//! remediation, the response actions waiting for a decision, what policy did, the summary's
//! audit trail and the labels so far. `GET /v1/alerts/{id}/packet` returns it; the page
//! renders it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;

use super::classify::{self, Hint};
use super::labels::Label;
use super::links::{self, Link};
use super::ReviewConfig;
use plumbline_alert::Alert;
use plumbline_delivery::respond::ActionRecord;
use plumbline_delivery::DecisionRecord;
use plumbline_event::{format_time, time_from_nanos, Event};
use plumbline_summary::audit::AuditRecord;
use plumbline_trajectory::Trajectory;

/// Most events shown on the timeline: every cited event, then the latest others.
pub const MAX_TIMELINE: usize = 500;

#[derive(Debug, Clone, Serialize)]
pub struct TimelineEvent {
    #[serde(flatten)]
    pub event: Arc<Event>,
    /// Cited as evidence by at least one finding.
    pub cited: bool,
    /// The signals whose findings cite it.
    pub cited_by: Vec<String>,
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrajectoryHeader {
    pub id: String,
    /// False when the trajectory is no longer stored; the timeline then holds the cited
    /// events read from the event store.
    pub found: bool,
    pub kind: Option<String>,
    pub key: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub hash: Option<String>,
    pub event_count: usize,
    pub dropped: u64,
    /// Events left off the timeline (beyond [`MAX_TIMELINE`]).
    pub omitted: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceLink {
    #[serde(flatten)]
    pub link: Link,
    pub event_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Person {
    pub id: String,
    pub display: String,
    /// human, service, ai-agent, or `unknown` for names read from attributes.
    pub kind: String,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct People {
    /// Who should explain: the actors of the cited events, and authors named in them.
    pub owners: Vec<Person>,
    /// Who can approve: reviewers and approvers named in the story's events.
    pub approvers: Vec<Person>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Remediation {
    pub step: String,
    /// `detector / signal` of the findings that suggest it.
    pub from: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditBrief {
    /// `llm`, `cached` or `fallback`, with the model or the reason.
    pub provenance: serde_json::Value,
    pub at: String,
    pub model: Option<String>,
    pub trajectory_hash: String,
    pub calls: Vec<CallBrief>,
    pub severity: serde_json::Value,
    /// Records kept for this alert; the full trail is at `url`.
    pub records: usize,
    pub url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CallBrief {
    pub purpose: String,
    pub request_sha256: String,
    pub outcome: String,
    pub tries: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Packet {
    pub alert: Alert,
    pub narrative: String,
    pub trajectory: TrajectoryHeader,
    pub timeline: Vec<TimelineEvent>,
    pub links: Vec<SourceLink>,
    pub classification: Vec<Hint>,
    pub people: People,
    pub remediation: Vec<Remediation>,
    pub response_actions: Vec<ActionRecord>,
    pub decisions: Vec<DecisionRecord>,
    pub summary_audit: Option<AuditBrief>,
    pub labels: Vec<Label>,
}

/// What the packet is made from (gathered by the API handler).
pub struct Inputs<'a> {
    pub alert: Alert,
    pub trajectory: Option<Trajectory>,
    /// Cited events missing from the trajectory, read from the event store.
    pub missing: Vec<Event>,
    pub config: &'a ReviewConfig,
    pub actions: Vec<ActionRecord>,
    pub decisions: Vec<DecisionRecord>,
    pub audit: Vec<AuditRecord>,
    pub labels: Vec<Label>,
}

pub fn build(i: Inputs<'_>) -> Packet {
    let alert = i.alert;
    let mut cited_by: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for f in &alert.findings {
        for id in &f.evidence {
            cited_by.entry(id).or_default().insert(&f.signal);
        }
    }
    let (mut events, header) = match &i.trajectory {
        Some(t) => (
            t.events.to_vec(),
            TrajectoryHeader {
                id: t.id.clone(),
                found: true,
                kind: Some(t.kind.as_str().to_string()),
                key: Some(t.key.clone()),
                start: Some(format_time(time_from_nanos(t.start))),
                end: Some(format_time(time_from_nanos(t.end))),
                hash: Some(t.hash.clone()),
                event_count: t.events.len(),
                dropped: t.dropped,
                omitted: 0,
            },
        ),
        None => (
            Vec::new(),
            TrajectoryHeader {
                id: alert.trajectory_id.clone(),
                found: false,
                kind: None,
                key: None,
                start: None,
                end: None,
                hash: None,
                event_count: 0,
                dropped: 0,
                omitted: 0,
            },
        ),
    };
    let mut header = header;
    for e in i.missing {
        if !events.iter().any(|x| x.id == e.id) {
            events.push(Arc::new(e));
        }
    }
    events.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
    if events.len() > MAX_TIMELINE {
        let others = events
            .iter()
            .filter(|e| !cited_by.contains_key(e.id.as_str()))
            .count();
        let keep_others = MAX_TIMELINE.saturating_sub(events.len() - others);
        let mut skip = others.saturating_sub(keep_others);
        header.omitted = skip;
        events.retain(|e| {
            if skip > 0 && !cited_by.contains_key(e.id.as_str()) {
                skip -= 1;
                false
            } else {
                true
            }
        });
    }
    let timeline: Vec<TimelineEvent> = events
        .iter()
        .map(|e| {
            let by = cited_by.get(e.id.as_str());
            TimelineEvent {
                event: e.clone(),
                cited: by.is_some(),
                cited_by: by
                    .map(|s| s.iter().map(|x| x.to_string()).collect())
                    .unwrap_or_default(),
                links: links::for_event(e, i.config),
            }
        })
        .collect();
    let cited: Vec<&Event> = timeline
        .iter()
        .filter(|t| t.cited)
        .map(|t| &*t.event)
        .collect();
    // Links of cited events first: those are what the reviewer opens.
    let mut source_links: Vec<SourceLink> = Vec::new();
    let ordered = timeline
        .iter()
        .filter(|t| t.cited)
        .chain(timeline.iter().filter(|t| !t.cited));
    for t in ordered {
        for l in &t.links {
            if !source_links.iter().any(|s| s.link.url == l.url) {
                source_links.push(SourceLink {
                    link: l.clone(),
                    event_id: t.event.id.clone(),
                });
            }
        }
    }
    let others = timeline.iter().filter(|t| !t.cited).map(|t| &*t.event);
    let classification = classify::hints(cited.iter().copied().chain(others));
    let people = people(&cited, &timeline);
    let mut remediation: Vec<Remediation> = Vec::new();
    for f in &alert.findings {
        let step = f.next_step.trim();
        if step.is_empty() {
            continue;
        }
        let from = format!("{} / {}", f.detector, f.signal);
        match remediation.iter_mut().find(|r| r.step == step) {
            Some(r) if !r.from.contains(&from) => r.from.push(from),
            Some(_) => {}
            None => remediation.push(Remediation {
                step: step.to_string(),
                from: vec![from],
            }),
        }
    }
    let summary_audit = i.audit.last().map(|r| AuditBrief {
        provenance: serde_json::to_value(&r.provenance).unwrap_or_default(),
        at: r.at.clone(),
        model: r.model.clone(),
        trajectory_hash: r.trajectory_hash.clone(),
        calls: r
            .calls
            .iter()
            .map(|c| CallBrief {
                purpose: c.purpose.clone(),
                request_sha256: c.request_sha256.clone(),
                outcome: c.outcome.clone(),
                tries: c.tries.len(),
            })
            .collect(),
        severity: serde_json::to_value(r.severity).unwrap_or_default(),
        records: i.audit.len(),
        url: format!("/v1/alerts/{}/summary-audit", alert.id),
    });
    Packet {
        narrative: alert.summary.clone(),
        trajectory: header,
        timeline,
        links: source_links,
        classification,
        people,
        remediation,
        response_actions: i.actions,
        decisions: i.decisions,
        summary_audit,
        labels: i.labels,
        alert,
    }
}

/// Names in attributes: comma-separated lists and numbered keys (`review.approvers.0`).
fn names(e: &Event, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in &e.attributes {
        let matches = k == key
            || k.strip_prefix(key)
                .and_then(|r| r.strip_prefix('.'))
                .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()));
        if !matches {
            continue;
        }
        if let Some(s) = v.as_str() {
            out.extend(
                s.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty() && !x.starts_with("[redacted"))
                    .map(str::to_string),
            );
        }
    }
    out
}

fn people(cited: &[&Event], timeline: &[TimelineEvent]) -> People {
    let mut owners: Vec<Person> = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for e in cited {
        *counts.entry(e.actor.id.as_str()).or_default() += 1;
    }
    for e in cited {
        if owners.iter().any(|p| p.id == e.actor.id) {
            continue;
        }
        let n = counts[e.actor.id.as_str()];
        owners.push(Person {
            id: e.actor.id.clone(),
            display: if e.actor.display.is_empty() {
                e.actor.id.clone()
            } else {
                e.actor.display.clone()
            },
            kind: e.actor.kind.as_str().to_string(),
            why: format!(
                "acted in {n} of the {} cited event{}",
                cited.len(),
                if cited.len() == 1 { "" } else { "s" }
            ),
        });
    }
    let add = |list: &mut Vec<Person>, name: String, why: String| {
        if !list.iter().any(|p| p.id == name) {
            list.push(Person {
                display: name.clone(),
                id: name,
                kind: "unknown".into(),
                why,
            });
        }
    };
    for e in cited {
        for n in names(e, "pr.author") {
            add(&mut owners, n, format!("author of {}", e.resource));
        }
    }
    let mut approvers: Vec<Person> = Vec::new();
    for t in timeline {
        let e = &t.event;
        for (key, why) in [
            ("review.approvers", "approved the change"),
            ("pr.reviewers", "asked to review"),
            ("reviewer", "reviewed"),
            ("pr.merged_by", "merged it"),
        ] {
            for n in names(e, key) {
                add(&mut approvers, n, format!("{why} ({})", e.id));
            }
        }
        if e.action == "pr.review.approved" {
            add(
                &mut approvers,
                e.actor.id.clone(),
                format!("approved {}", e.resource),
            );
        }
    }
    People { owners, approvers }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumbline_alert::finding::Finding;
    use plumbline_alert::AlertStatus;

    fn ev(id: &str, minute: u32, actor: &str, action: &str, attrs: serde_json::Value) -> Event {
        serde_json::from_value(serde_json::json!({
            "id": id, "time": format!("2026-11-25T10:{minute:02}:00Z"), "source": "github",
            "actor": {"id": actor, "type": "human"}, "system": "acme/api", "action": action,
            "resource": "acme/api#7", "attributes": attrs,
        }))
        .unwrap()
    }

    fn alert(evidence: &[&str]) -> Alert {
        Alert {
            id: "alr-1".into(),
            trajectory_id: "trj-1".into(),
            trajectory_hash: "h".into(),
            severity: 3,
            status: AlertStatus::Open,
            title: "t".into(),
            summary: "what happened".into(),
            signals: vec!["bypass.merge".into()],
            event_ids: evidence.iter().map(|s| s.to_string()).collect(),
            actors: vec![],
            systems: vec![],
            detectors: vec![],
            findings: vec![Finding {
                detector: "bypass".into(),
                detector_version: "1".into(),
                signal: "bypass.merge".into(),
                severity: 3,
                score: 0.9,
                title: "t".into(),
                evidence: evidence.iter().map(|s| s.to_string()).collect(),
                next_step: "Revert the merge and re-review.".into(),
            }],
            created_at: "2026-11-25T10:10:00Z".into(),
            updated_at: "2026-11-25T10:10:00Z".into(),
            notes: vec![],
            merged_into: None,
        }
    }

    #[test]
    fn packet_marks_cited_events_links_people_and_remediation() {
        let events: Vec<Arc<Event>> = vec![
            Arc::new(ev(
                "e1",
                1,
                "bob",
                "pr.review.approved",
                serde_json::json!({"pr.number": 7}),
            )),
            Arc::new(ev(
                "e2",
                2,
                "mallory",
                "pr.merged.without_review",
                serde_json::json!({"pr.number": 7, "pr.author": "mallory", "review.approvers": "carol, dave",
                                   "risk.category": "auth"}),
            )),
            Arc::new(ev("e3", 3, "mallory", "git.push", serde_json::json!({}))),
        ];
        let t = Trajectory {
            id: "trj-1".into(),
            kind: plumbline_trajectory::TrajectoryKind::Actor,
            key: "mallory".into(),
            start: 0,
            end: 0,
            closes_at: 0,
            dropped: 0,
            hash: "h".into(),
            events: events.into(),
        };
        let config = ReviewConfig::default();
        let p = build(Inputs {
            alert: alert(&["e2", "e9"]),
            trajectory: Some(t),
            missing: vec![ev(
                "e9",
                0,
                "mallory",
                "branch.protection.disabled",
                serde_json::json!({}),
            )],
            config: &config,
            actions: vec![],
            decisions: vec![],
            audit: vec![],
            labels: vec![],
        });
        let ids: Vec<(&str, bool)> = p
            .timeline
            .iter()
            .map(|t| (t.event.id.as_str(), t.cited))
            .collect();
        assert_eq!(
            ids,
            vec![("e9", true), ("e1", false), ("e2", true), ("e3", false)]
        );
        assert_eq!(p.timeline[2].cited_by, vec!["bypass.merge"]);
        assert_eq!(p.links[0].event_id, "e9", "cited events' links come first");
        assert!(p
            .links
            .iter()
            .any(|l| l.link.url == "https://github.com/acme/api/pull/7"));
        assert_eq!(p.people.owners.len(), 1);
        assert_eq!(p.people.owners[0].id, "mallory");
        let approvers: Vec<&str> = p.people.approvers.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(approvers, vec!["bob", "carol", "dave"]);
        assert_eq!(p.remediation[0].step, "Revert the merge and re-review.");
        assert_eq!(p.classification[0].class, "auth");
        assert_eq!(p.narrative, "what happened");
    }

    #[test]
    fn a_long_story_keeps_every_cited_event() {
        let events: Vec<Arc<Event>> = (0..MAX_TIMELINE + 50)
            .map(|i| {
                Arc::new(ev(
                    &format!("e{i:04}"),
                    0,
                    "a",
                    "git.push",
                    serde_json::json!({}),
                ))
            })
            .collect();
        let t = Trajectory {
            id: "trj-1".into(),
            kind: plumbline_trajectory::TrajectoryKind::Actor,
            key: "a".into(),
            start: 0,
            end: 0,
            closes_at: 0,
            dropped: 0,
            hash: "h".into(),
            events: events.into(),
        };
        let config = ReviewConfig::default();
        let p = build(Inputs {
            alert: alert(&["e0000"]),
            trajectory: Some(t),
            missing: vec![],
            config: &config,
            actions: vec![],
            decisions: vec![],
            audit: vec![],
            labels: vec![],
        });
        assert_eq!(p.timeline.len(), MAX_TIMELINE);
        assert_eq!(p.trajectory.omitted, 50);
        assert!(p.timeline[0].cited, "the oldest event is cited and kept");
    }
}
