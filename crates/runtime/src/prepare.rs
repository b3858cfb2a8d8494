//! Config once per loaded detector (`plumbline:detector@0.2.0`'s `prepared-detector`
//! world). A component that exports `prepare` is instantiated once with the configuration
//! its live calls get, `prepare` runs (the SDK parses the detector's settings there), and
//! the instance's memory and globals are snapshotted into a new component with wasmtime's
//! pre-initialiser (wizer). Every call then instantiates the snapshot: it starts with the
//! settings parsed, from the pool's copy-on-write image, as cheaply as the original.
//!
//! Invariants:
//! - A snapshot is used only under the exact configuration it was taken with
//!   ([`Prepared::serves`]); any other call (a fixture's own values) uses the original
//!   component, which parses per call. Both give the same answers: `prepare` only moves
//!   work earlier.
//! - Isolation is unchanged: the snapshot holds the detector's own set-up, nothing of a
//!   trajectory (none exists during `prepare`), and each call still gets a fresh instance.
//! - `prepare` runs under the detector's limits (deadline, memory cap); a trap refuses the
//!   load with its cause, like a trap in `info()`.
//! - Snapshots are cached on disk by component, configuration and wizer version, and then
//!   compiled through the component cache like any component.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Instance, Lift, WasmList};
use wasmtime::Store;
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use super::bindings_v2;
use super::cache::{hash_parts, ComponentCache};
use super::call::{self, CallSpec, Pre};
use super::engine::DetectorEngine;
use super::state::CallState;
use super::LoadError;

/// The export a component offers to be prepared.
const EXPORT: &str = "prepare";

/// Names the snapshot format: a new wizer may lay a snapshot out otherwise.
const WIZER: &str = "wizer-48";

/// A detector's snapshot after `prepare`, and the configuration it was taken with.
pub struct Prepared {
    pub pre: Pre,
    pub config: Arc<BTreeMap<String, String>>,
}

impl Prepared {
    /// Whether a call with `config` may start from this snapshot.
    pub fn serves(&self, config: &Arc<BTreeMap<String, String>>) -> bool {
        Arc::ptr_eq(&self.config, config) || *self.config == **config
    }
}

/// Whether `component` exports `prepare`.
pub fn offered(component: &Component, engine: &DetectorEngine) -> bool {
    component
        .component_type()
        .exports(&engine.engine)
        .any(|(name, _)| name == EXPORT)
}

/// The snapshot of `bytes` (whose sha256 is `sha256`) prepared under `spec.config` (from
/// the cache, or made now).
pub fn prepare(
    engine: &DetectorEngine,
    cache: &ComponentCache,
    bytes: &[u8],
    sha256: &str,
    spec: CallSpec<'_>,
) -> Result<Prepared, LoadError> {
    let key = snapshot_key(sha256, &spec.config);
    let component = cache.prepared(&engine.engine, &key, || snapshot(engine, bytes, &spec))?;
    let link = |e: wasmtime::Error| LoadError::Link(format!("prepared snapshot: {e:#}"));
    let pre = engine.linker.instantiate_pre(&component).map_err(link)?;
    let pre = bindings_v2::DetectorPre::new(pre).map_err(link)?;
    Ok(Prepared {
        pre: Pre::V2(pre),
        config: spec.config,
    })
}

/// The component's hash, the configuration's and the snapshot format's.
fn snapshot_key(sha256: &str, config: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    h.update(sha256.as_bytes());
    hash_parts(
        &mut h,
        config
            .iter()
            .flat_map(|(k, v)| [k.as_bytes(), v.as_bytes()]),
    );
    h.update(WIZER.as_bytes());
    hex::encode(h.finalize())
}

/// Instruments the component, runs `prepare` in it under the detector's limits and
/// returns the snapshot.
fn snapshot(
    engine: &DetectorEngine,
    bytes: &[u8],
    spec: &CallSpec<'_>,
) -> Result<Vec<u8>, LoadError> {
    let mut wizer = Wizer::new();
    // Kept: wizer 48 drops it from the core module but not from the component's own
    // export list, which then fails validation. The host never calls it on a snapshot.
    wizer.init_func(EXPORT).keep_init_func(true);
    let failed = |what: &str, e: wasmtime::Error| LoadError::Prepare(format!("{what}: {e:#}"));
    let (cx, instrumented) = wizer
        .instrument_component(bytes)
        .map_err(|e| failed("cannot instrument the component", e))?;
    let component = Component::new(&engine.engine, &instrumented)
        .map_err(|e| failed("cannot compile the instrumented component", e))?;
    let mut store = call::new_store(engine, spec);
    let instance = engine
        .linker
        .instantiate(&mut store, &component)
        .map_err(|e| LoadError::Prepare(format!("{}", call::failure(&e, &store))))?;
    let run = instance
        .get_typed_func::<(), ()>(&mut store, EXPORT)
        .map_err(|e| failed("`prepare` is not `func()`", e))?;
    run.call(&mut store, ())
        .map_err(|e| LoadError::Prepare(format!("{}", call::failure(&e, &store))))?;
    let mut state = Snapshotting { store, instance };
    let snapshot = ready(wizer.snapshot_component(&cx, &mut state))
        .map_err(|e| failed("cannot snapshot the prepared instance", e))?;
    Ok(snapshot)
}

/// The prepared instance, read by wizer through the accessors it instrumented in.
struct Snapshotting {
    store: Store<CallState>,
    instance: Instance,
}

impl Snapshotting {
    /// Calls the instrumented accessor `func` of the exported `instance`. They are wizer's
    /// own exports, present by construction: a missing one is a bug in wizer.
    fn call<R: Lift + Send + Sync + 'static>(&mut self, instance: &str, func: &str) -> R {
        let (_, inst) = self
            .instance
            .get_export(&mut self.store, None, instance)
            .unwrap_or_else(|| panic!("wizer's instrumentation exports `{instance}`"));
        let (_, f) = self
            .instance
            .get_export(&mut self.store, Some(&inst), func)
            .unwrap_or_else(|| panic!("wizer's instrumentation exports `{instance}#{func}`"));
        let f = self
            .instance
            .get_typed_func::<(), (R,)>(&mut self.store, f)
            .unwrap_or_else(|e| panic!("wizer's `{instance}#{func}`: {e}"));
        match f.call(&mut self.store, ()) {
            Ok((r,)) => r,
            Err(e) => panic!("wizer's `{instance}#{func}` trapped: {e}"),
        }
    }
}

impl ComponentInstanceState for Snapshotting {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        let list: WasmList<u8> = self.call(instance, func);
        contents(list.as_le_slice(&self.store));
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func)
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func)
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call::<f32>(instance, func).to_bits()
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call::<f64>(instance, func).to_bits()
    }
}

/// Runs a future that never waits (every accessor above answers at once): one poll
/// completes it.
fn ready<T>(f: impl std::future::Future<Output = T>) -> T {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(f).poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("the snapshot's accessors never wait"),
    }
}
