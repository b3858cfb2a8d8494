//! The wasmtime engine detectors run on: component model, pooling allocator, epoch
//! interruption driven by a ticker thread, and the linker holding the host's imports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::limits::MAX_TABLE_ELEMENTS;
use super::state::CallState;
use super::RuntimeError;
use super::{bindings, bindings_v2};

/// How often the epoch advances: deadlines are whole ticks, so this is their precision.
pub const TICK: Duration = Duration::from_millis(1);

/// Guest stack for one call: deep enough for real detectors, small enough that unbounded
/// recursion traps quickly instead of exhausting the host thread's stack.
const MAX_WASM_STACK: usize = 512 << 10;

pub struct DetectorEngine {
    pub engine: Engine,
    pub linker: Linker<CallState>,
    ticker: Ticker,
}

impl DetectorEngine {
    /// `instances` bounds the detector instances alive at once (one per call in flight).
    pub fn new(instances: u32) -> Result<Self, RuntimeError> {
        let mut pool = PoolingAllocationConfig::new();
        // Language runtimes link several core modules per component, each with its own
        // memory and table; size the pool for that, not for one module per component.
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(32))
            .total_memories(instances.saturating_mul(4))
            .total_tables(instances.saturating_mul(8))
            .total_stacks(instances)
            .table_elements(MAX_TABLE_ELEMENTS)
            .max_core_instance_size(4 << 20)
            .max_component_instance_size(4 << 20)
            .max_memories_per_module(4)
            .max_tables_per_module(4)
            // Every call instantiates afresh: reset the low pages of a reused slot in place
            // (only the dirty ones, where the kernel can tell) instead of unmapping them, so
            // the next call does not page-fault its way back in.
            .linear_memory_keep_resident(4 << 20)
            .table_keep_resident(1 << 20)
            .pagemap_scan(Enabled::Auto);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(MAX_WASM_STACK)
            .parallel_compilation(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        // Language runtimes (Rust std, CPython) import WASI; each call gets an empty WASI
        // context: no files, no environment, no network, stdout/stderr captured.
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| RuntimeError::Engine(format!("linking WASI: {e:#}")))?;
        bindings::Detector::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)
            .map_err(|e| RuntimeError::Engine(format!("linking detector imports: {e:#}")))?;
        // 0.2.0's imports sit beside 0.1.0's (their names carry the package version).
        bindings_v2::Detector::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)
            .map_err(|e| RuntimeError::Engine(format!("linking detector imports: {e:#}")))?;
        let ticker = Ticker::start(engine.clone());
        Ok(DetectorEngine {
            engine,
            linker,
            ticker,
        })
    }

    /// Epoch ticks for a deadline (at least one).
    pub fn ticks(&self, deadline: Duration) -> u64 {
        let _ = &self.ticker;
        (deadline.as_micros() / TICK.as_micros()).max(1) as u64
    }
}

/// Advances the engine's epoch every [`TICK`] until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Ticker {
    fn start(engine: Engine) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("detector-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch ticker");
        Ticker { stop }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
