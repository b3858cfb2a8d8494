//! One sandboxed call: a fresh store and instance (from the pool), the memory cap, the
//! epoch deadline, and the classification of whatever went wrong. Both contract versions:
//! 0.1.0's `analyze` and 0.2.0's `observe` (with the `history` resource lent for the call).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use wasmtime::component::Resource;
use wasmtime::{Store, Trap};

use super::bindings::{self, wit, DetectorPre};
use super::bindings_v2::{self, wit as wit2, History};
use super::engine::DetectorEngine;
use super::limits::Limits;
use super::quarantine::Failure;
use super::state::CallState;

/// Longest failure message kept (guest-controlled text ends up in logs and status).
const MESSAGE_MAX: usize = 500;

/// A linked component of either contract version.
pub enum Pre {
    /// `plumbline:detector@0.1.0`: `analyze(trajectory)`.
    V1(DetectorPre<CallState>),
    /// `plumbline:detector@0.2.0`: `observe(state, new-events, window, history)`.
    V2(bindings_v2::DetectorPre<CallState>),
}

impl Pre {
    /// The contract version this component was bound with.
    pub fn wit_version(&self) -> &'static str {
        match self {
            Pre::V1(_) => "0.1.0",
            Pre::V2(_) => "0.2.0",
        }
    }
}

pub struct CallSpec<'a> {
    pub name: &'a Arc<str>,
    pub pre: &'a Pre,
    pub limits: &'a Limits,
    pub config: Arc<BTreeMap<String, String>>,
    pub now: Option<i64>,
}

/// Calls `info()` (0.2.0's record is 0.1.0's field for field: it is returned as 0.1.0's).
pub fn info(engine: &DetectorEngine, spec: CallSpec<'_>) -> Result<wit::DetectorInfo, Failure> {
    match spec.pre {
        Pre::V1(pre) => with_instance(engine, &spec, pre, |d, store| d.call_info(store)),
        Pre::V2(pre) => {
            let i = with_instance(engine, &spec, pre, |d, store| d.call_info(store))?;
            Ok(info_v1(i))
        }
    }
}

fn info_v1(i: wit2::DetectorInfo) -> wit::DetectorInfo {
    use wit2::TrajectoryKind as K2;
    wit::DetectorInfo {
        name: i.name,
        version: i.version,
        description: i.description,
        sources: i.sources,
        actions: i.actions,
        signals: i.signals,
        config: i
            .config
            .into_iter()
            .map(|k| wit::ConfigKey {
                name: k.name,
                default_value: k.default_value,
                description: k.description,
            })
            .collect(),
        views: i
            .views
            .into_iter()
            .map(|v| match v {
                K2::Actor => wit::TrajectoryKind::Actor,
                K2::System => wit::TrajectoryKind::System,
                K2::ActorDrift => wit::TrajectoryKind::ActorDrift,
                K2::SystemDrift => wit::TrajectoryKind::SystemDrift,
            })
            .collect(),
    }
}

/// Calls `analyze(trajectory)`; the detector's own error becomes [`Failure::Detector`].
pub fn analyze(
    engine: &DetectorEngine,
    spec: CallSpec<'_>,
    trajectory: &wit::Trajectory,
) -> Result<Vec<wit::Finding>, Failure> {
    let Pre::V1(pre) = spec.pre else {
        return Err(Failure::Detector("a 0.2.0 detector has no analyze".into()));
    };
    let answer = with_instance(engine, &spec, pre, |d, store| {
        d.call_analyze(store, trajectory)
    })?;
    answer.map_err(|e| Failure::Detector(clip(&e.message)))
}

/// What one `observe` call answered, with the ids of the events it read through `history`.
pub struct Observed {
    pub state: Option<Vec<u8>>,
    pub findings: Vec<wit2::Finding>,
    pub read: HashSet<String>,
}

/// Calls `observe(state, new-events, window, history)`, lending `history` for the call
/// only; the detector's own error becomes [`Failure::Detector`].
pub fn observe(
    engine: &DetectorEngine,
    spec: CallSpec<'_>,
    state: Option<&[u8]>,
    new_events: &[wit2::Event],
    window: &wit2::Window,
    history: History,
    asking: Option<super::state::Asking>,
) -> Result<Observed, Failure> {
    let Pre::V2(pre) = spec.pre else {
        return Err(Failure::Detector("a 0.1.0 detector has no observe".into()));
    };
    let mut store = new_store(engine, &spec);
    store.data_mut().asking = asking;
    let instance = pre
        .instantiate(&mut store)
        .map_err(|e| instantiate_failure(&e, &store))?;
    let lent: Resource<History> = store
        .data_mut()
        .table
        .push(history)
        .map_err(|e| Failure::Trap(clip(&format!("lending history: {e}"))))?;
    let answer = instance
        .call_observe(
            &mut store,
            state,
            new_events,
            window,
            Resource::new_borrow(lent.rep()),
        )
        .map_err(|e| classify(&e, &store))?;
    let _ = store.data_mut().table.delete(lent);
    let observation = answer.map_err(|e| Failure::Detector(clip(&e.message)))?;
    Ok(Observed {
        state: observation.state,
        findings: observation.findings,
        read: std::mem::take(&mut store.data_mut().read),
    })
}

pub(super) fn new_store(engine: &DetectorEngine, spec: &CallSpec<'_>) -> Store<CallState> {
    let state = CallState::new(
        spec.name.clone(),
        spec.config.clone(),
        spec.limits.memory_bytes,
        spec.now,
    );
    let mut store = Store::new(&engine.engine, state);
    store.limiter(|s| &mut s.memory);
    // The deadline covers instantiation too: a start function can spin as well.
    let budget = CpuBudget::start(spec.limits.deadline);
    store.set_epoch_deadline(engine.ticks(spec.limits.deadline));
    store.epoch_deadline_callback(move |_| Ok(budget.at_deadline()));
    store
}

/// A call's deadline counted in the CPU time of the thread running it, not only the wall
/// clock: when the cores are saturated (evaluation workers run below ingest's priority) a
/// good detector can pass its wall-clock deadline while barely running, and three such
/// calls would quarantine it. At each wall-clock deadline the call goes on, one tick at a
/// time, while its thread has used less CPU than the deadline, and is interrupted at once
/// when it has (a spinning detector uses its CPU budget whatever the load) or when the
/// wall clock reaches [`STARVED_CAP`] times the deadline (a host call that blocks, or a
/// machine too starved to judge anything in time).
struct CpuBudget {
    deadline: std::time::Duration,
    wall: std::time::Instant,
    /// The thread's CPU time at the start (none without a CPU clock: then every deadline
    /// is the wall clock's, as it was).
    cpu: Option<std::time::Duration>,
}

/// The hard wall-clock cap, in deadlines.
const STARVED_CAP: u32 = 10;

impl CpuBudget {
    fn start(deadline: std::time::Duration) -> CpuBudget {
        CpuBudget {
            deadline,
            wall: std::time::Instant::now(),
            cpu: thread_cpu_time(),
        }
    }

    fn at_deadline(&self) -> wasmtime::UpdateDeadline {
        let used = match (self.cpu, thread_cpu_time()) {
            (Some(start), Some(now)) => now.saturating_sub(start),
            _ => return wasmtime::UpdateDeadline::Interrupt,
        };
        if used < self.deadline && self.wall.elapsed() < self.deadline * STARVED_CAP {
            wasmtime::UpdateDeadline::Continue(1)
        } else {
            wasmtime::UpdateDeadline::Interrupt
        }
    }
}

/// CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu_time() -> Option<std::time::Duration> {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill; the clock id is a constant.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } == 0;
    ok.then(|| std::time::Duration::new(t.tv_sec as u64, t.tv_nsec as u32))
}

fn instantiate_failure(e: &wasmtime::Error, store: &Store<CallState>) -> Failure {
    match classify(e, store) {
        Failure::Trap(m) => Failure::Instantiate(m),
        other => other,
    }
}

/// Instantiates a component of either version afresh and runs `f` on it.
trait Instantiate {
    type Bindings;
    fn fresh(&self, store: &mut Store<CallState>) -> wasmtime::Result<Self::Bindings>;
}

impl Instantiate for DetectorPre<CallState> {
    type Bindings = bindings::Detector;
    fn fresh(&self, store: &mut Store<CallState>) -> wasmtime::Result<Self::Bindings> {
        self.instantiate(store)
    }
}

impl Instantiate for bindings_v2::DetectorPre<CallState> {
    type Bindings = bindings_v2::Detector;
    fn fresh(&self, store: &mut Store<CallState>) -> wasmtime::Result<Self::Bindings> {
        self.instantiate(store)
    }
}

fn with_instance<P: Instantiate, R>(
    engine: &DetectorEngine,
    spec: &CallSpec<'_>,
    pre: &P,
    f: impl FnOnce(&P::Bindings, &mut Store<CallState>) -> wasmtime::Result<R>,
) -> Result<R, Failure> {
    let mut store = new_store(engine, spec);
    let instance = pre
        .fresh(&mut store)
        .map_err(|e| instantiate_failure(&e, &store))?;
    f(&instance, &mut store).map_err(|e| classify(&e, &store))
}

/// What went wrong in a call on `store` (a trap, the deadline, the memory cap…).
pub(super) fn failure(e: &wasmtime::Error, store: &Store<CallState>) -> Failure {
    classify(e, store)
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
