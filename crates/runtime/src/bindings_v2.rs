//! Host bindings for `wit/since_v0.2.0` (incremental detectors: `observe`), the
//! `history` resource the host lends for one call, and the conversion of host events
//! into the 0.2.0 types. 0.1.0's bindings stay in `bindings`.

use plumbline_event as host;

wasmtime::component::bindgen!({
    path: "../../wit/since_v0.2.0",
    world: "detector",
    with: {
        "plumbline:detector/history.trajectory": History,
    },
});

pub use self::plumbline::detector::types as wit;

/// Most events one `history.events` read returns.
pub const HISTORY_PAGE: u32 = 64;

/// What a `history` resource reads: the trajectory's events as the evaluation saw them
/// (shared by every 0.2.0 call of one evaluation; nothing is copied until read).
pub struct History {
    pub events: plumbline_trajectory::Events,
}

wit_event_conversion!();
