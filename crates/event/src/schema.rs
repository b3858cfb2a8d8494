//! The JSON Schema of the normalised event, published at `GET /v1/schema/event`.

use serde_json::{json, Value};

use super::Source;

pub fn event_schema() -> Value {
    let sources: Vec<&str> = Source::ALL.iter().map(|s| s.as_str()).collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://plumbline.dev/schema/event/v1",
        "title": "Plumbline normalised event",
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "time", "source", "actor", "system", "action"],
        "properties": {
            "id": {"type": "string", "minLength": 1, "maxLength": 512,
                   "description": "Stable id (source delivery id or content hash); ingest is idempotent on it."},
            "time": {"type": "string", "format": "date-time", "description": "RFC 3339; stored in UTC."},
            "source": {"enum": sources},
            "actor": {
                "type": "object", "additionalProperties": false, "required": ["id", "type"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "type": {"enum": ["human", "service", "ai-agent"]},
                    "display": {"type": "string"}
                }
            },
            "system": {"type": "string", "minLength": 1, "description": "Repository, workflow or environment."},
            "action": {"type": "string", "pattern": "^[a-z0-9_-]+(\\.[a-z0-9_-]+)*$", "maxLength": 128,
                       "description": "Dotted verb from docs/actions.md, e.g. git.push.force."},
            "resource": {"type": "string", "default": ""},
            "environment": {"enum": ["prod", "staging", "test", "unknown"], "default": "unknown"},
            "destination": {"type": "string", "description": "Where data went (host, bucket, address)."},
            "volume": {
                "type": "object", "additionalProperties": false,
                "properties": {
                    "rows": {"type": "integer", "minimum": 0},
                    "bytes": {"type": "integer", "minimum": 0},
                    "files": {"type": "integer", "minimum": 0}
                }
            },
            "attributes": {
                "type": "object", "maxProperties": 512,
                "description": "Flattened key → scalar value; nested objects are flattened to dotted keys at ingest.",
                "additionalProperties": {"type": ["string", "number", "boolean", "null"]}
            }
        }
    })
}
