//! Glue between the generated 0.2.0 WIT types and the SDK's plain types, used by
//! [`register_incremental_detector!`](crate::register_incremental_detector), and the one
//! implementation of an incremental call's state round trip (shared with the native
//! harness). Compiled on every target; nothing here calls an import (the macro does).

use crate::bindings_v2::plumbline::detector::types as wit;
use crate::{Context, IncrementalDetector, Window};
use plumbline_contract::types::*;

wit_conversions!();

pub fn declared<D: IncrementalDetector>() -> Info {
    D::info()
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

/// `prepare`: the detector's set-up, its parsed settings kept for every later call (the
/// host snapshots the instance after this). A failure is logged and not kept: each call
/// then parses, and reports the error, as it would without `prepare`.
pub fn prepare<D: IncrementalDetector>(cx: &Context) {
    match D::prepare(cx) {
        Ok(()) => cx.keep_prepared(&D::info()),
        Err(e) => cx.log(
            crate::Level::Warn,
            &format!("prepare: {}; settings are parsed per call", e.message),
        ),
    }
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
        kind: kind_from_wit(w.kind),
        key: w.key,
        start: w.start,
        end: w.end,
        dropped: w.dropped,
        len: w.len,
        replay: w.replay,
    }
}
