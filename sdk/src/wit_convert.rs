//! Conversions between the contract's plain types and one WIT version's generated types.
//! Every version so far declares the same records (`detector-info`, `finding`, `event`,
//! `trajectory-kind`) in its own generated module, so one macro writes them in each guest
//! module: `wit_conversions!()` where `wit` is that version's `types` module and the
//! contract's types are in scope. A version whose records differ writes its own.

macro_rules! wit_conversions {
    () => {
        pub fn info_to_wit(i: Info) -> wit::DetectorInfo {
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

        pub fn kind_to_wit(k: TrajectoryKind) -> wit::TrajectoryKind {
            match k {
                TrajectoryKind::Actor => wit::TrajectoryKind::Actor,
                TrajectoryKind::System => wit::TrajectoryKind::System,
                TrajectoryKind::ActorDrift => wit::TrajectoryKind::ActorDrift,
                TrajectoryKind::SystemDrift => wit::TrajectoryKind::SystemDrift,
            }
        }

        pub fn kind_from_wit(k: wit::TrajectoryKind) -> TrajectoryKind {
            match k {
                wit::TrajectoryKind::Actor => TrajectoryKind::Actor,
                wit::TrajectoryKind::System => TrajectoryKind::System,
                wit::TrajectoryKind::ActorDrift => TrajectoryKind::ActorDrift,
                wit::TrajectoryKind::SystemDrift => TrajectoryKind::SystemDrift,
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
    };
}
