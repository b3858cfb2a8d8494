//! Glue between the generated 0.2.0 WIT types and the SDK's plain types, used by
//! [`register_incremental_detector!`](crate::register_incremental_detector), and the one
//! implementation of an incremental call's state round trip (shared with the native
//! harness). Compiled on every target; nothing here calls an import (the macro does).

use crate::bindings_v2::plumbline::detector::types as wit;
use crate::{Context, IncrementalDetector, Window};
use plumbline_contract::types::*;

pub fn declared<D: IncrementalDetector>() -> Info {
    D::info()
}

pub fn info(i: Info) -> wit::DetectorInfo {
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

/// One call as the host makes it: the state's bytes in, the state's bytes out.
pub fn observe<D: IncrementalDetector>(
    state: Option<Vec<u8>>,
    new_events: Vec<wit::Event>,
    cx: &Context,
) -> Result<wit::Observation, wit::ObserveError> {
    let events: Vec<Event> = new_events.into_iter().map(event_from_wit).collect();
    let (state, findings) = observe_bytes::<D>(state.as_deref(), &events, cx)
        .map_err(|e| wit::ObserveError { message: e.message })?;
    Ok(wit::Observation {
        state: Some(state),
        findings: findings.into_iter().map(finding_to_wit).collect(),
    })
}

/// The state round trip around [`IncrementalDetector::observe`]: bytes the previous call
/// left (none: the default state; bytes that no longer parse — a state written by another
/// build — are logged and start again from the default), the call, the new state's bytes.
pub fn observe_bytes<D: IncrementalDetector>(
    state: Option<&[u8]>,
    new_events: &[Event],
    cx: &Context,
) -> Result<(Vec<u8>, Vec<Finding>), AnalyzeError> {
    let mut s: D::State = match state {
        None => D::State::default(),
        Some(bytes) => serde_json::from_slice(bytes).unwrap_or_else(|e| {
            cx.log(
                crate::Level::Warn,
                &format!("state does not parse ({e}); starting from the default"),
            );
            D::State::default()
        }),
    };
    let findings = D::default().observe(&mut s, new_events, cx)?;
    let bytes = serde_json::to_vec(&s).map_err(|e| AnalyzeError {
        message: format!("state does not serialise: {e}"),
    })?;
    Ok((bytes, findings))
}

pub fn window_from_wit(w: wit::Window) -> Window {
    Window {
        id: w.id,
        kind: match w.kind {
            wit::TrajectoryKind::Actor => TrajectoryKind::Actor,
            wit::TrajectoryKind::System => TrajectoryKind::System,
            wit::TrajectoryKind::ActorDrift => TrajectoryKind::ActorDrift,
            wit::TrajectoryKind::SystemDrift => TrajectoryKind::SystemDrift,
        },
        key: w.key,
        start: w.start,
        end: w.end,
        dropped: w.dropped,
        len: w.len,
        replay: w.replay,
    }
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

pub fn event_from_wit(e: wit::Event) -> Event {
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
