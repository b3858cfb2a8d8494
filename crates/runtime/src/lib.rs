//! The detector runtime: user-written WebAssembly components (the `plumbline:detector`
//! world in `wit/`) run over trajectories in a sandbox.
//!
//! One job per file:
//! - `engine`: the wasmtime engine (pooling allocator, epoch ticker) and the linker.
//! - `cache`: compiled components on disk and in memory, keyed by content + engine hash.
//! - `limits` / `settings`: per-detector budgets and the `[runtime]` configuration.
//! - `detector`: loading a component into a [`Detector`] (`InstancePre`, `info()`, overrides).
//! - `call`: one sandboxed call and the classification of its failure.
//! - `contract`: what an answer must look like (evidence in the trajectory, severity 1–3…).
//! - `quarantine`: health counters and quarantine after N failures in a row.
//! - `interest`: skipping detectors whose declared sources/actions a trajectory never touches.
//! - `fixture`: detector fixtures run through this runtime (`plumbline detector test`).
//! - `pack`: signed detector packs: install, trust, hot reload, shadow, replay.
//!
//! The active [`DetectorSet`] is swapped atomically ([`Runtime::swap`]); an evaluation keeps
//! the set it started with, so packs (hot reload) can replace detectors mid-stream.
//!
//! [`Evaluator::evaluate`] blocks (WASM runs on the calling thread): call it from a worker
//! thread or `spawn_blocking`, never from an async task.

mod bindings;
mod cache;
mod call;
mod config;
mod contract;
mod detector;
mod engine;
pub mod fixture;
mod interest;
mod limits;
mod org;
pub mod pack;
mod quarantine;
mod settings;
mod state;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

pub use cache::Origin;
pub use config::DEFAULT_CONFIG;
pub use detector::{component_files, Detector, DetectorSpec, DetectorStatus};
pub use fixture::{Fixture, FixtureOutcome};
pub use limits::Limits;
pub use org::Org;
pub use quarantine::{Failure, HealthReport, Quarantine};
pub use settings::{DetectorOverride, RuntimeConfig};

use call::CallSpec;
use engine::DetectorEngine;
use plumbline_trajectory::finding::Finding;
use plumbline_trajectory::{Evaluation, Evaluator, Trajectory};

/// Versions of `plumbline:detector` this host has bindings for (`wit/since_v*/`). A pack
/// manifest naming another version is refused.
pub const SUPPORTED_WIT_VERSIONS: &[&str] = &["0.1.0"];

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    #[error("detector {origin}: {source}")]
    Load { origin: String, source: LoadError },
    #[error("two detectors are named `{0}` ({1} and {2})")]
    DuplicateName(String, String, String),
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("not a valid component: {0}")]
    Compile(String),
    #[error("imports something the host does not provide (detectors may import log, config, clock and WASI 0.2 only): {0}")]
    Link(String),
    #[error("info() failed: {0}")]
    Info(Failure),
    #[error("info() breaks the contract: {0}")]
    Contract(String),
    #[error("{0}")]
    Config(String),
    #[error("detector `{0}` is disabled in the configuration")]
    Disabled(String),
}

/// The detectors evaluated together. Names are unique within a set.
#[derive(Default, Clone)]
pub struct DetectorSet {
    detectors: Vec<Arc<Detector>>,
}

impl DetectorSet {
    pub fn new(detectors: Vec<Arc<Detector>>) -> Result<DetectorSet, RuntimeError> {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for d in &detectors {
            if let Some(first) = seen.insert(d.name(), &d.origin) {
                return Err(RuntimeError::DuplicateName(
                    d.name().to_string(),
                    first.to_string(),
                    d.origin.clone(),
                ));
            }
        }
        Ok(DetectorSet { detectors })
    }

    pub fn detectors(&self) -> &[Arc<Detector>] {
        &self.detectors
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Detector>> {
        self.detectors.iter().find(|d| d.name() == name)
    }
}

pub struct Runtime {
    engine: DetectorEngine,
    cache: cache::ComponentCache,
    config: RuntimeConfig,
    active: ArcSwap<DetectorSet>,
}

impl Runtime {
    /// An empty runtime; `cache_dir: None` keeps compiled components in memory only.
    pub fn new(config: RuntimeConfig, cache_dir: Option<PathBuf>) -> Result<Runtime, RuntimeError> {
        let engine = DetectorEngine::new(config.pool_instances)?;
        let cache = cache::ComponentCache::new(&engine.engine, cache_dir);
        Ok(Runtime {
            engine,
            cache,
            config,
            active: ArcSwap::from_pointee(DetectorSet::default()),
        })
    }

    /// The service's runtime: every component named by `[runtime]` loaded and active.
    /// A component that fails to load stops the start, naming the file and the reason.
    pub fn load(rc: &RuntimeConfig, data_dir: &Path) -> Result<Arc<Runtime>, RuntimeError> {
        let runtime = Runtime::new(rc.clone(), Some(rc.cache_dir_in(data_dir)))?;
        let files = component_files(&rc.detector_dirs, &rc.detector_paths).map_err(|e| {
            RuntimeError::Load {
                origin: "[runtime]".into(),
                source: e,
            }
        })?;
        let mut loaded = Vec::new();
        for path in files {
            match runtime.load_file(&path) {
                Ok(d) => loaded.push(d),
                Err(RuntimeError::Load {
                    source: LoadError::Disabled(name),
                    ..
                }) => tracing::info!(detector = name, "disabled in configuration, not loaded"),
                Err(e) => return Err(e),
            }
        }
        runtime.swap(DetectorSet::new(loaded)?);
        Ok(Arc::new(runtime))
    }

    pub fn load_file(&self, path: &Path) -> Result<Arc<Detector>, RuntimeError> {
        let origin = path.display().to_string();
        let spec = DetectorSpec::from_file(path).map_err(|source| RuntimeError::Load {
            origin: origin.clone(),
            source,
        })?;
        self.load_detector(spec)
            .map_err(|source| RuntimeError::Load { origin, source })
    }

    /// Compiles (or takes from the cache), links and introspects one component. The
    /// result is not active until it is part of a set passed to [`Runtime::swap`].
    pub fn load_detector(&self, spec: DetectorSpec) -> Result<Arc<Detector>, LoadError> {
        let started = std::time::Instant::now();
        let origin = spec.origin.clone();
        let (d, from) = detector::load(
            &self.engine,
            &self.cache,
            Limits::from_config(&self.config),
            spec,
            |name| self.config.detectors.get(name).cloned(),
            &self.config.org,
        )?;
        tracing::info!(
            detector = d.name(),
            version = %d.info.version,
            origin,
            compiled = ?from,
            ms = started.elapsed().as_millis() as u64,
            "detector loaded"
        );
        Ok(Arc::new(d))
    }

    /// Makes `set` the active set; evaluations already running finish on the old one.
    pub fn swap(&self, set: DetectorSet) -> Arc<DetectorSet> {
        self.active.swap(Arc::new(set))
    }

    pub fn detectors(&self) -> Arc<DetectorSet> {
        self.active.load_full()
    }

    pub fn status(&self) -> Vec<DetectorStatus> {
        self.detectors()
            .detectors()
            .iter()
            .map(|d| d.status())
            .collect()
    }

    pub fn settings(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Runs `set` over `t`: quarantined and uninterested detectors are skipped, every
    /// failure is contained, counted and logged.
    pub fn evaluate_on(&self, set: &DetectorSet, t: &Trajectory) -> Evaluation {
        let events = t
            .events
            .iter()
            .map(|e| (e.source.as_str(), e.action.as_str()));
        self.evaluate_interested(set, t, |d| d.interest.matches_any(events.clone()))
    }

    /// Judges a pending event (an agent's call that has not run yet) on the trajectory it
    /// would join (`t` holds it): only the detectors whose interests match that event are
    /// called — the rest cannot say anything new about it — and only findings citing it
    /// are returned. What an inline verdict rests on.
    pub fn evaluate_pending_on(
        &self,
        set: &DetectorSet,
        t: &Trajectory,
        pending: &str,
    ) -> Evaluation {
        let Some(p) = t.events.iter().find(|e| e.id == pending) else {
            return Evaluation::default();
        };
        let one = [(p.source.as_str(), p.action.as_str())];
        let mut out =
            self.evaluate_interested(set, t, |d| d.interest.matches_any(one.iter().copied()));
        let cites = |f: &Finding| f.evidence.iter().any(|id| id == pending);
        out.findings.retain(cites);
        out.shadow.retain(cites);
        out
    }

    fn evaluate_interested(
        &self,
        set: &DetectorSet,
        t: &Trajectory,
        interested_in: impl Fn(&Detector) -> bool,
    ) -> Evaluation {
        let mut out = Evaluation::default();
        if set.detectors.is_empty() || t.events.is_empty() {
            return out;
        }
        let called: Vec<&Arc<Detector>> = set
            .detectors
            .iter()
            .filter(|d| !d.health.is_quarantined())
            .filter(|d| {
                let interested = d.interest.reads_view(t.kind) && interested_in(d);
                if !interested {
                    d.health.skipped();
                }
                interested
            })
            .collect();
        if called.is_empty() {
            return out;
        }
        // Converted once, only when some detector will read it.
        let (wit_t, input_bytes) = bindings::trajectory(t, self.config.max_input_bytes);
        let large = input_bytes > self.config.max_input_bytes / 4;
        for d in called {
            match self.run(d, &wit_t, d.config.clone(), None) {
                Ok(findings) => {
                    if d.shadow {
                        out.shadow.extend(findings);
                    } else {
                        out.findings.extend(findings);
                    }
                }
                Err(failure) => self.record_failure(d, &t.id, &failure, large),
            }
        }
        out
    }

    /// One call with contract checks; success and failure are recorded in the detector's
    /// health by the caller (failures) or here (successes).
    fn run(
        &self,
        d: &Detector,
        t: &bindings::wit::Trajectory,
        config: Arc<BTreeMap<String, String>>,
        now: Option<i64>,
    ) -> Result<Vec<Finding>, Failure> {
        let found = call::analyze(
            &self.engine,
            CallSpec {
                name: &d.name,
                pre: &d.pre,
                limits: &d.limits,
                config,
                now,
            },
            t,
        )?;
        let findings = contract::check_findings(&d.declared, t, &d.limits, found)
            .map_err(Failure::Contract)?;
        d.health.succeeded(findings.len());
        Ok(findings)
    }

    /// Counts a failed call. A deadline or memory failure on a `large_input` is the input's
    /// doing, not the detector's: counted and shown, but it does not move the detector
    /// toward quarantine (a burst of huge events must not switch detection off).
    fn record_failure(&self, d: &Detector, trajectory: &str, failure: &Failure, large_input: bool) {
        tracing::warn!(
            detector = d.name(),
            trajectory,
            kind = failure.kind(),
            large_input,
            "detector call failed: {failure}"
        );
        let by_size = large_input && matches!(failure, Failure::Deadline | Failure::Memory(_));
        if let Some(q) = d
            .health
            .failed(failure, by_size, self.config.quarantine_after)
        {
            tracing::error!(
                detector = d.name(),
                version = %d.info.version,
                "detector quarantined: {}",
                q.reason
            );
        }
    }

    /// Runs one fixture file through `d` in the sandbox (the detector's health is not
    /// touched: a failing fixture says nothing about live traffic).
    pub fn run_fixture(&self, d: &Detector, path: &Path) -> FixtureOutcome {
        self.run_fixture_parsed(d, path, fixture::load(path))
    }

    /// As [`Runtime::run_fixture`], for a fixture held in memory (a pack's), named `path`.
    pub fn run_fixture_text(&self, d: &Detector, path: &Path, text: &str) -> FixtureOutcome {
        self.run_fixture_parsed(d, path, fixture::parse(path, text))
    }

    fn run_fixture_parsed(
        &self,
        d: &Detector,
        path: &Path,
        parsed: Result<(Fixture, Trajectory), fixture::FixtureError>,
    ) -> FixtureOutcome {
        let file = path.display().to_string();
        let fail = |description: String, message: String| FixtureOutcome {
            file: file.clone(),
            description,
            passed: false,
            message: Some(message),
            findings: vec![],
            call_micros: None,
        };
        let (fixture, t) = match parsed {
            Ok(x) => x,
            Err(e) => return fail(String::new(), e.to_string()),
        };
        if let Err(e) = fixture.check_view(&d.declared.views) {
            return fail(fixture.description, e);
        }
        let config = match d.fixture_config_with(&fixture.config) {
            Ok(c) => c,
            Err(e) => return fail(fixture.description, e),
        };
        let (wit_t, _) = bindings::trajectory(&t, usize::MAX);
        let started = std::time::Instant::now();
        let answer = call::analyze(
            &self.engine,
            CallSpec {
                name: &d.name,
                pre: &d.pre,
                limits: &d.limits,
                config,
                now: Some(fixture.now()),
            },
            &wit_t,
        )
        .and_then(|found| {
            contract::check_findings(&d.declared, &wit_t, &d.limits, found)
                .map_err(Failure::Contract)
        });
        // The call as live evaluation makes it: a fresh sandbox, the trajectory copied in.
        let call_micros = Some(started.elapsed().as_micros() as u64);
        match answer {
            Err(f) => FixtureOutcome {
                call_micros,
                ..fail(fixture.description, f.to_string())
            },
            Ok(findings) => {
                let verdict = fixture.compare(&findings);
                FixtureOutcome {
                    file,
                    description: fixture.description,
                    passed: verdict.is_ok(),
                    message: verdict.err(),
                    findings,
                    call_micros,
                }
            }
        }
    }

    /// Lifts a detector's quarantine (returns false if it was not quarantined).
    pub fn release(&self, name: &str) -> bool {
        self.detectors()
            .get(name)
            .is_some_and(|d| d.health.release())
    }
}

impl Evaluator for Runtime {
    fn evaluate(&self, trajectory: &Trajectory) -> Evaluation {
        // Pin the set for the whole evaluation: a swap mid-way does not mix versions.
        let set = self.active.load_full();
        self.evaluate_on(&set, trajectory)
    }

    fn evaluate_pending(&self, trajectory: &Trajectory, pending: &str) -> Evaluation {
        let set = self.active.load_full();
        self.evaluate_pending_on(&set, trajectory, pending)
    }
}

#[cfg(test)]
pub(crate) mod tests;
