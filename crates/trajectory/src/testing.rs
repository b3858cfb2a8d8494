//! Events for tests of this crate and the stages after it (`features = ["testing"]`).

use serde_json::json;

use plumbline_event::{parse_event, Event};

pub const MIN: i64 = 60;

/// A minimal n8n event `secs` after a fixed instant.
pub fn ev(id: &str, actor: &str, system: &str, action: &str, secs: i64) -> Event {
    let t = time::OffsetDateTime::from_unix_timestamp(1_764_000_000 + secs).unwrap();
    parse_event(json!({
        "id": id, "time": plumbline_event::format_time(t), "source": "n8n",
        "actor": {"id": actor, "type": "human"}, "system": system, "action": action,
    }))
    .unwrap()
}

/// The canonical six-step story (new workflow, trigger, credential, node, activation,
/// rename), one actor, in order.
pub fn six_step_story() -> Vec<Event> {
    let steps = [
        ("s1", "workflow.created", 0),
        ("s2", "workflow.trigger.added", 4 * MIN),
        ("s3", "credential.attached", 9 * MIN),
        ("s4", "workflow.node.added", 15 * MIN),
        ("s5", "workflow.activated", 73 * MIN),
        ("s6", "workflow.renamed", 80 * MIN),
    ];
    steps
        .iter()
        .map(|(id, action, t)| ev(id, "mallory", "n8n/invoice-sync", action, *t))
        .collect()
}
