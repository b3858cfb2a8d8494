//! Host bindings for `wit/since_v0.1.0` and the conversion of the host's trajectory into
//! the contract's types. `since_v0.2.0` has its own module beside this one (`bindings_v2`).

// Qualified: the world's `use types.{…}` puts `Trajectory` and friends at this level.
use plumbline_event as host;
use plumbline_trajectory as host_t;

wasmtime::component::bindgen!({
    path: "../../wit/since_v0.1.0",
    world: "detector",
});

// `self::`: under rustdoc the crate `plumbline` is also in scope.
pub use self::plumbline::detector::types as wit;

/// The trajectory as detectors see it (built once per evaluation, shared by all calls),
/// with at most `max_bytes` of events: the newest are kept, the older ones counted in
/// `dropped`. Returns the bytes handed over.
pub fn trajectory(t: &host_t::Trajectory, max_bytes: usize) -> (wit::Trajectory, usize) {
    let (mut bytes, mut keep) = (0usize, 0);
    for e in t.events.iter().rev() {
        let next = bytes.saturating_add(event_bytes(e));
        if next > max_bytes {
            break;
        }
        (bytes, keep) = (next, keep + 1);
    }
    let skip = t.events.len() - keep;
    let wit = wit::Trajectory {
        id: t.id.clone(),
        kind: match t.kind {
            host_t::TrajectoryKind::Actor => wit::TrajectoryKind::Actor,
            host_t::TrajectoryKind::System => wit::TrajectoryKind::System,
            host_t::TrajectoryKind::ActorDrift => wit::TrajectoryKind::ActorDrift,
            host_t::TrajectoryKind::SystemDrift => wit::TrajectoryKind::SystemDrift,
        },
        key: t.key.clone(),
        start: t.start,
        end: t.end,
        dropped: t.dropped + skip as u64,
        hash: t.hash.clone(),
        events: t.events[skip..].iter().map(|e| event(e)).collect(),
    };
    (wit, bytes)
}

/// About what one event weighs once copied into a sandbox: its text and attributes.
pub fn event_bytes(e: &host::Event) -> usize {
    const FIXED: usize = 64;
    let text = e.id.len()
        + e.actor.id.len()
        + e.actor.display.len()
        + e.system.len()
        + e.action.len()
        + e.resource.len()
        + e.destination.as_ref().map_or(0, String::len);
    let attributes: usize = e
        .attributes
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(8, str::len))
        .sum();
    FIXED + text + attributes
}

wit_event_conversion!();
