//! Glue between the generated WIT types and the SDK's plain types, used by
//! [`register_detector!`](crate::register_detector). Compiled on every target so the
//! conversions are unit-tested natively.

use crate::bindings::plumbline::detector::types as wit;
use crate::{Context, Detector};
use plumbline_contract::types::*;

pub fn info<D: Detector>() -> wit::DetectorInfo {
    let i = D::info();
    wit::DetectorInfo {
        name: i.name,
        version: i.version,
        description: i.description,
        sources: i.sources,
        actions: i.actions,
        signals: i.signals,
        views: i.views.into_iter().map(kind_to_wit).collect(),
        config: i
            .config
            .into_iter()
            .map(|k| wit::ConfigKey {
                name: k.name,
                default_value: k.default_value,
                description: k.description,
            })
            .collect(),
    }
}

pub fn analyze<D: Detector>(
    trajectory: wit::Trajectory,
    cx: Context,
) -> Result<Vec<wit::Finding>, wit::AnalyzeError> {
    let trajectory = from_wit(trajectory);
    D::default()
        .analyze(&trajectory, &cx)
        .map(|found| found.into_iter().map(finding_to_wit).collect())
        .map_err(|e| wit::AnalyzeError { message: e.message })
}

fn kind_to_wit(k: TrajectoryKind) -> wit::TrajectoryKind {
    match k {
        TrajectoryKind::Actor => wit::TrajectoryKind::Actor,
        TrajectoryKind::System => wit::TrajectoryKind::System,
        TrajectoryKind::ActorDrift => wit::TrajectoryKind::ActorDrift,
        TrajectoryKind::SystemDrift => wit::TrajectoryKind::SystemDrift,
    }
}

pub fn finding_to_wit(f: Finding) -> wit::Finding {
    wit::Finding {
        signal: f.signal,
        severity: f.severity,
        score: f.score,
        title: f.title,
        evidence: f.evidence,
        next_step: f.next_step,
    }
}

pub fn from_wit(t: wit::Trajectory) -> Trajectory {
    Trajectory {
        id: t.id,
        kind: match t.kind {
            wit::TrajectoryKind::Actor => TrajectoryKind::Actor,
            wit::TrajectoryKind::System => TrajectoryKind::System,
            wit::TrajectoryKind::ActorDrift => TrajectoryKind::ActorDrift,
            wit::TrajectoryKind::SystemDrift => TrajectoryKind::SystemDrift,
        },
        key: t.key,
        start: t.start,
        end: t.end,
        dropped: t.dropped,
        hash: t.hash,
        events: t.events.into_iter().map(event_from_wit).collect(),
    }
}

fn event_from_wit(e: wit::Event) -> Event {
    Event {
        id: e.id,
        time: e.time,
        source: e.source,
        actor: Actor {
            id: e.actor.id,
            kind: match e.actor.kind {
                wit::ActorKind::Human => ActorKind::Human,
                wit::ActorKind::Service => ActorKind::Service,
                wit::ActorKind::AiAgent => ActorKind::AiAgent,
            },
            display: e.actor.display,
        },
        system: e.system,
        action: e.action,
        resource: e.resource,
        environment: match e.environment {
            wit::Environment::Prod => Environment::Prod,
            wit::Environment::Staging => Environment::Staging,
            wit::Environment::Test => Environment::Test,
            wit::Environment::Unknown => Environment::Unknown,
        },
        destination: e.destination,
        volume: e.volume.map(|v| Volume {
            rows: v.rows,
            bytes: v.bytes,
            files: v.files,
        }),
        attributes: e
            .attributes
            .into_iter()
            .map(|a| {
                let v = match a.value {
                    wit::AttributeValue::Text(s) => AttributeValue::Text(s),
                    wit::AttributeValue::Integer(i) => AttributeValue::Integer(i),
                    wit::AttributeValue::Float(f) => AttributeValue::Float(f),
                    wit::AttributeValue::Boolean(b) => AttributeValue::Boolean(b),
                    wit::AttributeValue::Null => AttributeValue::Null,
                };
                (a.key, v)
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wit_trajectory_converts_field_for_field() {
        let t = wit::Trajectory {
            id: "t1".into(),
            kind: wit::TrajectoryKind::System,
            key: "acme/payments".into(),
            start: 1,
            end: 2,
            dropped: 3,
            hash: "h".into(),
            events: vec![wit::Event {
                id: "e1".into(),
                time: 2,
                source: "github".into(),
                actor: wit::Actor {
                    id: "bot".into(),
                    kind: wit::ActorKind::AiAgent,
                    display: "Bot".into(),
                },
                system: "acme/payments".into(),
                action: "git.push.force".into(),
                resource: "refs/heads/main".into(),
                environment: wit::Environment::Staging,
                destination: Some("s3://x".into()),
                volume: Some(wit::Volume {
                    rows: Some(5),
                    bytes: None,
                    files: Some(1),
                }),
                attributes: vec![
                    wit::Attribute {
                        key: "branch".into(),
                        value: wit::AttributeValue::Text("main".into()),
                    },
                    wit::Attribute {
                        key: "commits".into(),
                        value: wit::AttributeValue::Integer(3),
                    },
                    wit::Attribute {
                        key: "forced".into(),
                        value: wit::AttributeValue::Boolean(true),
                    },
                ],
            }],
        };
        let t = from_wit(t);
        assert_eq!((t.id.as_str(), t.kind), ("t1", TrajectoryKind::System));
        assert_eq!((t.start, t.end, t.dropped), (1, 2, 3));
        let e = &t.events[0];
        assert_eq!(e.actor.kind, ActorKind::AiAgent);
        assert_eq!(e.environment, Environment::Staging);
        assert_eq!(e.destination.as_deref(), Some("s3://x"));
        assert_eq!((e.rows(), e.bytes(), e.files()), (5, 0, 1));
        assert_eq!(e.attr_str("branch"), Some("main"));
        assert_eq!(e.attr_i64("commits"), Some(3));
        assert_eq!(e.attr_bool("forced"), Some(true));
    }

    #[test]
    fn findings_convert_unchanged() {
        let f = Finding::new("s", Severity::Urgent, "title")
            .score(0.5)
            .next_step("do");
        let w = finding_to_wit(Finding {
            evidence: vec!["e1".into()],
            ..f
        });
        assert_eq!(
            (w.signal.as_str(), w.severity, w.score, w.title.as_str()),
            ("s", 3, 0.5, "title")
        );
        assert_eq!(
            (w.evidence, w.next_step.as_str()),
            (vec!["e1".to_string()], "do")
        );
    }
}
