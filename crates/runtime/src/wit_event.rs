//! The host's event as a contract version's WIT record. Every version so far declares the
//! same `event` record in its own generated types, so one macro writes the conversion in
//! each bindings module: `wit_event_conversion!()` where `host` is `plumbline_event` and
//! `wit` that version's `types` module. A version whose record differs writes its own.

macro_rules! wit_event_conversion {
    () => {
        /// The host's event as this version's WIT record.
        pub fn event(e: &host::Event) -> wit::Event {
            wit::Event {
                id: e.id.clone(),
                time: e.time_nanos(),
                source: e.source.as_str().to_string(),
                actor: wit::Actor {
                    id: e.actor.id.clone(),
                    kind: match e.actor.kind {
                        host::ActorType::Human => wit::ActorKind::Human,
                        host::ActorType::Service => wit::ActorKind::Service,
                        host::ActorType::AiAgent => wit::ActorKind::AiAgent,
                    },
                    display: e.actor.display.clone(),
                },
                system: e.system.clone(),
                action: e.action.clone(),
                resource: e.resource.clone(),
                environment: match e.environment {
                    host::Environment::Prod => wit::Environment::Prod,
                    host::Environment::Staging => wit::Environment::Staging,
                    host::Environment::Test => wit::Environment::Test,
                    host::Environment::Unknown => wit::Environment::Unknown,
                },
                destination: e.destination.clone(),
                volume: e.volume.map(|v| wit::Volume {
                    rows: v.rows,
                    bytes: v.bytes,
                    files: v.files,
                }),
                attributes: e
                    .attributes
                    .iter()
                    .map(|(k, v)| wit::Attribute {
                        key: k.clone(),
                        value: attribute(v),
                    })
                    .collect(),
            }
        }

        fn attribute(v: &serde_json::Value) -> wit::AttributeValue {
            use serde_json::Value;
            match v {
                Value::Null => wit::AttributeValue::Null,
                Value::Bool(b) => wit::AttributeValue::Boolean(*b),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => wit::AttributeValue::Integer(i),
                    None => wit::AttributeValue::Float(n.as_f64().unwrap_or(f64::NAN)),
                },
                Value::String(s) => wit::AttributeValue::Text(s.clone()),
                // Ingest flattens objects; anything nested that slipped through stays readable.
                other => wit::AttributeValue::Text(other.to_string()),
            }
        }
    };
}
