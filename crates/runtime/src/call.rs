//! One sandboxed call: a fresh store and instance (from the pool), the memory cap, the
//! epoch deadline, and the classification of whatever went wrong.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::{Store, Trap};

use super::bindings::{self, wit, DetectorPre};
use super::engine::DetectorEngine;
use super::limits::Limits;
use super::quarantine::Failure;
use super::state::CallState;

/// Longest failure message kept (guest-controlled text ends up in logs and status).
const MESSAGE_MAX: usize = 500;

pub struct CallSpec<'a> {
    pub name: &'a Arc<str>,
    pub pre: &'a DetectorPre<CallState>,
    pub limits: &'a Limits,
    pub config: Arc<BTreeMap<String, String>>,
    pub now: Option<i64>,
}

/// Calls `info()`.
pub fn info(engine: &DetectorEngine, spec: CallSpec<'_>) -> Result<wit::DetectorInfo, Failure> {
    with_instance(engine, spec, |d, store| d.call_info(store))
}

/// Calls `analyze(trajectory)`; the detector's own error becomes [`Failure::Detector`].
pub fn analyze(
    engine: &DetectorEngine,
    spec: CallSpec<'_>,
    trajectory: &wit::Trajectory,
) -> Result<Vec<wit::Finding>, Failure> {
    let answer = with_instance(engine, spec, |d, store| d.call_analyze(store, trajectory))?;
    answer.map_err(|e| Failure::Detector(clip(&e.message)))
}

fn with_instance<R>(
    engine: &DetectorEngine,
    spec: CallSpec<'_>,
    f: impl FnOnce(&bindings::Detector, &mut Store<CallState>) -> wasmtime::Result<R>,
) -> Result<R, Failure> {
    let state = CallState::new(
        spec.name.clone(),
        spec.config,
        spec.limits.memory_bytes,
        spec.now,
    );
    let mut store = Store::new(&engine.engine, state);
    store.limiter(|s| &mut s.memory);
    // The deadline covers instantiation too: a start function can spin as well.
    store.set_epoch_deadline(engine.ticks(spec.limits.deadline));
    let instance = match spec.pre.instantiate(&mut store) {
        Ok(i) => i,
        Err(e) => {
            return Err(match classify(&e, &store) {
                Failure::Trap(m) => Failure::Instantiate(m),
                other => other,
            })
        }
    };
    match f(&instance, &mut store) {
        Ok(r) => Ok(r),
        Err(e) => Err(classify(&e, &store)),
    }
}

fn classify(e: &wasmtime::Error, store: &Store<CallState>) -> Failure {
    let state = store.data();
    if state.memory.hit {
        return Failure::Memory(clip(&format!("{e}")));
    }
    let stderr = state.stderr_tail();
    let detail = |m: String| {
        if stderr.is_empty() {
            clip(&m)
        } else {
            clip(&format!("{m}; stderr: {stderr}"))
        }
    };
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Failure::Deadline,
        Some(Trap::StackOverflow) => Failure::StackOverflow,
        Some(t) => Failure::Trap(detail(t.to_string())),
        None => Failure::Trap(detail(format!("{e:#}"))),
    }
}

fn clip(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).collect();
    match s.char_indices().nth(MESSAGE_MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}
