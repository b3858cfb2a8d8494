//! Glue between the generated WIT types and the SDK's plain types, used by
//! [`register_detector!`](crate::register_detector). Compiled on every target so the
//! conversions are unit-tested natively.

use crate::bindings::plumbline::detector::types as wit;
use crate::{Context, Detector};
use plumbline_contract::types::*;

wit_conversions!();

pub fn info<D: Detector>() -> wit::DetectorInfo {
    info_to_wit(D::info())
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

pub fn from_wit(t: wit::Trajectory) -> Trajectory {
    Trajectory {
        id: t.id,
        kind: kind_from_wit(t.kind),
        key: t.key,
        start: t.start,
        end: t.end,
        dropped: t.dropped,
        hash: t.hash,
        events: t.events.into_iter().map(event_from_wit).collect(),
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
