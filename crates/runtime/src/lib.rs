//! The detector runtime: user-written WebAssembly components (the `plumbline:detector`
//! world in `wit/`) run over trajectories in a sandbox.
//!
//! One job per file:
//! - `engine`: the wasmtime engine (pooling allocator, epoch ticker) and the linker.
//! - `cache`: compiled components on disk and in memory, keyed by content + engine hash.
//! - `limits` / `settings`: per-detector budgets and the `[runtime]` configuration.
//! - `detector`: loading a component into a [`Detector`] (`InstancePre`, `info()`, overrides).
//! - `call`: one sandboxed call and the classification of its failure.
//! - `prepare`: config once per loaded detector (a snapshot after 0.2.0's `prepare`).
//! - `bindings` / `bindings_v2`: the host bindings of each contract version (0.1.0:
//!   `analyze` over the whole trajectory; 0.2.0: `observe` over the new events, with state).
//! - `incremental`: what 0.2.0 detectors keep per (detector, trajectory) between calls.
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

#[macro_use]
mod wit_event;
mod bindings;
mod bindings_v2;
mod cache;
mod call;
mod config;
mod contract;
mod detector;
mod engine;
pub mod fixture;
mod incremental;
mod interest;
mod limits;
mod org;
pub mod pack;
mod prepare;
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
pub const SUPPORTED_WIT_VERSIONS: &[&str] = &["0.1.0", "0.2.0"];

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
    #[error("prepare() failed: {0}")]
    Prepare(String),
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
    /// State of incremental (0.2.0) detectors per (detector, trajectory).
    states: incremental::StateBook,
    /// Who answers 0.2.0 detectors' questions to the language model (unset: no model).
    judge: std::sync::OnceLock<Arc<dyn plumbline_trajectory::ModelJudge>>,
}

impl Runtime {
    /// An empty runtime; `cache_dir: None` keeps compiled components in memory only.
    pub fn new(config: RuntimeConfig, cache_dir: Option<PathBuf>) -> Result<Runtime, RuntimeError> {
        let engine = DetectorEngine::new(config.pool_instances)?;
        let cache = cache::ComponentCache::new(&engine.engine, cache_dir);
        let state_bytes =
            usize::try_from(config.state_total_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        Ok(Runtime {
            engine,
            cache,
            config,
            active: ArcSwap::from_pointee(DetectorSet::default()),
            states: incremental::StateBook::new(state_bytes),
            judge: std::sync::OnceLock::new(),
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

    /// Lets 0.2.0 detectors ask the language model, through `judge` (once, at start;
    /// without it every question is answered "no model").
    pub fn set_judge(&self, judge: Arc<dyn plumbline_trajectory::ModelJudge>) {
        if self.judge.set(judge).is_err() {
            tracing::warn!("a model judge was already set; the first one stays");
        }
    }

    /// Where passed pack self-tests are remembered (beside the compiled components).
    pub(crate) fn self_tests(&self) -> &cache::ComponentCache {
        &self.cache
    }

    pub fn settings(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Incremental detectors' state held now (bytes) and the states evicted under
    /// `runtime.state_total_mib` so far (each costs its trajectory a replay).
    pub fn state_usage(&self) -> (usize, u64) {
        (self.states.bytes(), self.states.evicted())
    }

    /// Runs `set` over `t` from scratch (replays, benchmarks): quarantined and uninterested
    /// detectors are skipped, every failure is contained, counted and logged. 0.2.0
    /// detectors see `t` as a first look (every matching event, no state), in a book of
    /// their own, so the live state is neither read nor touched.
    pub fn evaluate_on(&self, set: &DetectorSet, t: &Trajectory) -> Evaluation {
        self.evaluate_set(
            set,
            t,
            false,
            &incremental::StateBook::new(usize::MAX),
            |_| true,
        )
    }

    /// Judges a pending event (an agent's call that has not run yet) on the trajectory it
    /// would join (`t` holds it): only the detectors whose interests match that event are
    /// called — the rest cannot say anything new about it — and only findings citing it
    /// are returned. What an inline verdict rests on. 0.2.0 detectors see a copy of their
    /// state: the call may never happen, so the live state does not take it in.
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
        // The call is stored before it is judged, so live evaluation may have given it to a
        // detector already: that detector then has nothing new to look at, and the call
        // would pass unjudged. It takes a first look at the trajectory instead (every event
        // it wants, no state), as after its state was evicted.
        let scratch = self
            .states
            .scratch_copy(&t.id, |entry| !entry.was_given(pending));
        let mut out = self.evaluate_set(set, t, false, &scratch, |d| {
            d.interest.matches_any(one.iter().copied())
        });
        let cites = |f: &Finding| f.evidence.iter().any(|id| id == pending);
        out.findings.retain(cites);
        out.shadow.retain(cites);
        out
    }

    /// Live evaluation ([`Evaluator`]): 0.1.0 detectors get the whole trajectory; 0.2.0
    /// detectors get the events new to them since their last call, with their state.
    /// Detectors that do not read `t`'s view, or that `interested_in` turns away, are
    /// skipped (and, unless interested in none of `t`'s events, not called).
    fn evaluate_set(
        &self,
        set: &DetectorSet,
        t: &Trajectory,
        settle: bool,
        states: &incremental::StateBook,
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
                // A 0.2.0 detector's new events are found above its watermark (observe):
                // scanning the whole trajectory for its interests here would make every
                // call O(trajectory) again.
                let incremental = matches!(d.pre, call::Pre::V2(_));
                let interested = d.interest.reads_view(t.kind)
                    && (incremental
                        || d.interest.matches_any(
                            t.events
                                .iter()
                                .map(|e| (e.source.as_str(), e.action.as_str())),
                        ))
                    && interested_in(d);
                if !interested {
                    d.health.skipped();
                }
                interested
            })
            .collect();
        if called.is_empty() {
            return out;
        }
        let mut keep = |d: &Detector, findings: Vec<Finding>| {
            if d.shadow {
                out.shadow.extend(findings);
            } else {
                out.findings.extend(findings);
            }
        };
        // Converted once, only when some 0.1.0 detector will read it.
        let mut v1: Option<(bindings::wit::Trajectory, usize)> = None;
        // The events 0.2.0 detectors may read through `history`: the trajectory's own list.
        let history = &t.events;
        for d in called {
            match d.pre {
                call::Pre::V1(_) => {
                    let (wit_t, input_bytes) = v1.get_or_insert_with(|| {
                        bindings::trajectory(t, self.config.max_input_bytes)
                    });
                    let large = *input_bytes > self.config.max_input_bytes / 4;
                    match self.run(d, wit_t, d.config.clone(), None) {
                        Ok(findings) => keep(d, findings),
                        Err(failure) => self.record_failure(d, &t.id, &failure, large),
                    }
                }
                call::Pre::V2(_) => {
                    let history = history.clone();
                    let how = ObserveWith {
                        config: d.config.clone(),
                        now: None,
                        settle,
                        judge: None,
                    };
                    let answer = self.observe(d, t, history, how, states);
                    match answer {
                        Observe::Skipped => d.health.skipped(),
                        Observe::Found(findings) => {
                            d.health.succeeded(findings.len());
                            keep(d, findings)
                        }
                        Observe::Failed(failure, large) => {
                            self.record_failure(d, &t.id, &failure, large)
                        }
                    }
                }
            }
        }
        out
    }

    /// One `observe` call of a 0.2.0 detector on `t`: the events it was not given yet
    /// (those matching its interests; the newest within `max_input_bytes`), its state, the
    /// trajectory lent as `history`; then the contract checks, and the new state kept.
    /// A failure keeps the state as it was before the call.
    fn observe(
        &self,
        d: &Detector,
        t: &Trajectory,
        history: plumbline_trajectory::Events,
        how: ObserveWith,
        states: &incremental::StateBook,
    ) -> Observe {
        let ObserveWith {
            config,
            now,
            settle,
            judge,
        } = how;
        let judge = judge.or_else(|| self.judge.get().cloned());
        let version = d.info.version.as_str();
        let kept = states.take(&t.id, d.name(), version);
        let had_entry = kept.is_some();
        let replay = !kept.as_ref().is_some_and(|e| e.called);
        let mut entry = kept.unwrap_or_else(|| incremental::Entry::new(version));
        let mut new = entry.new_events(t, |e| {
            d.interest
                .matches_any(std::iter::once((e.source.as_str(), e.action.as_str())))
        });
        if new.is_empty() && !(settle && entry.state.is_some()) {
            // Nothing it wants is new: the watermark moves past what was looked at — before
            // its first call too, so a detector that wants nothing of a trajectory does not
            // scan all of it again on every change (that scan, once per such detector and
            // evaluation, was an eighth of the evaluators' time at 5,000 events/s).
            entry.record(t, [], &Default::default());
            states.put(&t.id, d.name(), entry);
            return Observe::Skipped;
        }
        // The newest within the input bound; the older ones are counted as given (they stay
        // readable through `history`), as 0.1.0 leaves them out of the trajectory.
        let (mut bytes, mut first) = (0usize, new.len());
        for (i, e) in new.iter().enumerate().rev() {
            let next = bytes.saturating_add(bindings::event_bytes(e));
            if next > self.config.max_input_bytes {
                break;
            }
            (bytes, first) = (next, i);
        }
        let skipped: Vec<&Arc<plumbline_event::Event>> = new.drain(..first).collect();
        let large = bytes > self.config.max_input_bytes / 4;
        let events: Vec<bindings_v2::wit::Event> =
            new.iter().map(|e| bindings_v2::event(e)).collect();
        let window = bindings_v2::wit::Window {
            id: t.id.clone(),
            kind: match t.kind {
                plumbline_trajectory::TrajectoryKind::Actor => {
                    bindings_v2::wit::TrajectoryKind::Actor
                }
                plumbline_trajectory::TrajectoryKind::System => {
                    bindings_v2::wit::TrajectoryKind::System
                }
                plumbline_trajectory::TrajectoryKind::ActorDrift => {
                    bindings_v2::wit::TrajectoryKind::ActorDrift
                }
                plumbline_trajectory::TrajectoryKind::SystemDrift => {
                    bindings_v2::wit::TrajectoryKind::SystemDrift
                }
            },
            key: t.key.clone(),
            start: t.start,
            end: t.end,
            dropped: t.dropped,
            len: u32::try_from(t.events.len()).unwrap_or(u32::MAX),
            replay,
        };
        let answer = call::observe(
            &self.engine,
            CallSpec {
                name: &d.name,
                pre: d.pre_for(&config),
                limits: &d.limits,
                config,
                now,
            },
            entry.state.as_deref(),
            &events,
            &window,
            bindings_v2::History {
                events: history.clone(),
            },
            judge.map(|judge| state::Asking {
                judge,
                detector_version: version.to_string(),
                trajectory: t.id.clone(),
                trajectory_hash: t.hash.clone(),
                events: history,
            }),
        );
        // A failed call leaves the entry as it was before the call (none if there was none).
        let restore = |entry: incremental::Entry| {
            if had_entry {
                states.put(&t.id, d.name(), entry);
            }
        };
        let observed = match answer {
            Ok(o) => o,
            Err(f) => {
                restore(entry);
                return Observe::Failed(f, large);
            }
        };
        if let Some(s) = &observed.state {
            if s.len() > self.config.state_max_bytes {
                restore(entry);
                return Observe::Failed(
                    Failure::Contract(format!(
                        "state of {} bytes is over runtime.state_max_bytes ({})",
                        s.len(),
                        self.config.state_max_bytes
                    )),
                    large,
                );
            }
        }
        // Evidence may cite what the detector was given or read, in this call or before;
        // an id given earlier that has since left the trajectory (its bound) is removed.
        let now: std::collections::HashSet<&str> = new
            .iter()
            .map(|e| e.id.as_str())
            .chain(skipped.iter().map(|e| e.id.as_str()))
            .chain(observed.read.iter().map(String::as_str))
            .collect();
        let mut found: Vec<bindings::wit::Finding> = observed
            .findings
            .into_iter()
            .map(contract::finding_v1)
            .collect();
        found.retain_mut(|f| {
            let cited = !f.evidence.is_empty();
            f.evidence
                .retain(|id| now.contains(id.as_str()) || !entry.left(t, id));
            // A finding whose every event left the trajectory goes; one that cited nothing
            // stays, for the contract check to refuse.
            !(cited && f.evidence.is_empty())
        });
        let citable: Vec<String> = found
            .iter()
            .flat_map(|f| &f.evidence)
            .filter(|id| now.contains(id.as_str()) || entry.was_given(id))
            .cloned()
            .collect();
        let checked = contract::check_findings_citing(
            &d.declared,
            citable.iter().map(String::as_str),
            &d.limits,
            found,
        );
        let findings = match checked {
            Ok(f) => f,
            Err(e) => {
                restore(entry);
                return Observe::Failed(Failure::Contract(e), large);
            }
        };
        entry.record(
            t,
            new.iter().chain(&skipped).map(|e| e.as_ref()),
            &observed.read,
        );
        entry.state = observed.state;
        entry.called = true;
        states.put(&t.id, d.name(), entry);
        Observe::Found(findings)
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
                pre: d.pre_for(&config),
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
        if let call::Pre::V2(_) = d.pre {
            return self.run_fixture_incremental(d, file, fixture, t, config);
        }
        let (wit_t, _) = bindings::trajectory(&t, usize::MAX);
        let started = std::time::Instant::now();
        let answer = call::analyze(
            &self.engine,
            CallSpec {
                name: &d.name,
                pre: d.pre_for(&config),
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

    /// A fixture through a 0.2.0 detector as live evaluation makes it: the events arrive
    /// one at a time (the trajectory grows by one event per evaluation), the state is kept
    /// between calls by the host, and the last answer is compared with the expectations.
    fn run_fixture_incremental(
        &self,
        d: &Detector,
        file: String,
        fixture: Fixture,
        t: Trajectory,
        config: Arc<BTreeMap<String, String>>,
    ) -> FixtureOutcome {
        // The fixture's own book: its state never mixes with live trajectories'.
        let states = incremental::StateBook::new(usize::MAX);
        let mut last: Vec<Finding> = Vec::new();
        let mut call_micros = None;
        for n in 1..=t.events.len() {
            let events = t.events[..n].to_vec();
            let prefix = Trajectory {
                start: events[0].time_nanos(),
                end: events[n - 1].time_nanos(),
                events: events.into(),
                ..t.clone()
            };
            let history = prefix.events.clone();
            let started = std::time::Instant::now();
            let how = ObserveWith {
                config: config.clone(),
                now: Some(fixture.now()),
                settle: false,
                judge: Some(Arc::new(FixtureModel(fixture.model.clone()))),
            };
            let answer = self.observe(d, &prefix, history, how, &states);
            match answer {
                Observe::Skipped => continue,
                Observe::Found(findings) => {
                    call_micros = Some(started.elapsed().as_micros() as u64);
                    last = findings;
                }
                Observe::Failed(f, _) => {
                    return FixtureOutcome {
                        file,
                        description: fixture.description,
                        passed: false,
                        message: Some(format!("after event {n}: {f}")),
                        findings: vec![],
                        call_micros,
                    }
                }
            }
        }
        let verdict = fixture.compare(&last);
        FixtureOutcome {
            file,
            description: fixture.description,
            passed: verdict.is_ok(),
            message: verdict.err(),
            findings: last,
            call_micros,
        }
    }

    /// Lifts a detector's quarantine (returns false if it was not quarantined).
    pub fn release(&self, name: &str) -> bool {
        self.detectors()
            .get(name)
            .is_some_and(|d| d.health.release())
    }
}

/// How one 0.2.0 call is made: the config it reads, a pinned clock (fixtures), whether
/// it is a settle re-evaluation (a detector with state is called even with nothing new),
/// and who answers its questions to the model if not the service's judge (fixtures).
struct ObserveWith {
    config: Arc<BTreeMap<String, String>>,
    now: Option<i64>,
    settle: bool,
    judge: Option<Arc<dyn plumbline_trajectory::ModelJudge>>,
}

/// A fixture's `model` as the judge of its calls.
struct FixtureModel(Option<serde_json::Value>);

impl plumbline_trajectory::ModelJudge for FixtureModel {
    fn judge(&self, r: plumbline_trajectory::JudgeRequest) -> plumbline_contract::ModelAnswer {
        plumbline_contract::fixture::model_answer(self.0.as_ref(), &r.question)
    }
}

/// What one 0.2.0 call came to.
enum Observe {
    /// Nothing new for it (and nothing to re-judge): not called.
    Skipped,
    Found(Vec<Finding>),
    /// The failure, and whether the input was large (see `record_failure`).
    Failed(Failure, bool),
}

impl Evaluator for Runtime {
    fn evaluate(&self, trajectory: &Trajectory) -> Evaluation {
        // Pin the set for the whole evaluation: a swap mid-way does not mix versions.
        let set = self.active.load_full();
        self.evaluate_set(&set, trajectory, false, &self.states, |_| true)
    }

    fn evaluate_settled(&self, trajectory: &Trajectory) -> Evaluation {
        let set = self.active.load_full();
        self.evaluate_set(&set, trajectory, true, &self.states, |_| true)
    }

    fn forget(&self, trajectory: &str) {
        self.states.forget(trajectory);
    }

    fn evaluate_pending(&self, trajectory: &Trajectory, pending: &str) -> Evaluation {
        let set = self.active.load_full();
        self.evaluate_pending_on(&set, trajectory, pending)
    }

    fn snapshot(&self, trajectory: &str) -> Option<Vec<u8>> {
        self.states.snapshot(trajectory)
    }

    fn restore(&self, trajectory: &str, saved: &[u8]) {
        self.states.restore(trajectory, saved);
    }
}

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_incremental;
#[cfg(test)]
mod tests_prepare;
