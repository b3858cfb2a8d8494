//! Loading a detector: read the component, compile it (or take it from the cache), link it
//! against the host's imports once (`InstancePre`), ask its `info()`, check it, and apply
//! the operator's overrides (limits, config values, shadow).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::bindings::{wit, DetectorPre};
use super::bindings_v2;
use super::cache::{ComponentCache, Origin};
use super::call::{self, CallSpec, Pre};
use super::contract;
use super::engine::DetectorEngine;
use super::interest::Interest;
use super::limits::Limits;
use super::prepare::{self, Prepared};
use super::quarantine::{Health, HealthReport};
use super::settings::DetectorOverride;
use super::LoadError;
use crate::Org;

/// A component to load, with what the operator (or a pack manifest) says about it.
#[derive(Debug, Clone)]
pub struct DetectorSpec {
    /// Where it came from (a path, or `pack/name` for packs).
    pub origin: String,
    pub bytes: Arc<Vec<u8>>,
    /// Applied on top of `[runtime.detectors.<name>]`, if any.
    pub overrides: Option<DetectorOverride>,
}

impl DetectorSpec {
    pub fn from_file(path: &Path) -> Result<DetectorSpec, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| LoadError::Read(path.to_path_buf(), e))?;
        Ok(DetectorSpec {
            origin: path.display().to_string(),
            bytes: Arc::new(bytes),
            overrides: None,
        })
    }
}

/// A loaded detector, ready to be called. Its health lives here, so it survives a swap
/// that keeps this detector and starts fresh for a new version.
pub struct Detector {
    pub info: wit::DetectorInfo,
    pub limits: Limits,
    /// Declared defaults overlaid with `[org]` and then this detector's configured values.
    pub config: Arc<BTreeMap<String, String>>,
    /// The same without `[org]`: the base fixtures run on (see `load`).
    pub fixture_config: Arc<BTreeMap<String, String>>,
    pub shadow: bool,
    pub origin: String,
    pub sha256: String,
    pub health: Health,
    pub(super) interest: Interest,
    /// `info` as the contract's plain type: what the answers are checked against.
    pub(super) declared: plumbline_contract::Info,
    pub(super) name: Arc<str>,
    pub(super) pre: Pre,
    /// The snapshot after `prepare` under `config`, when the component offers `prepare`.
    pub(super) prepared: Option<Prepared>,
}

/// What `GET /v1/detectors` and `plumbline detector test` report about a detector.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DetectorStatus {
    pub name: String,
    pub version: String,
    pub description: String,
    pub origin: String,
    pub sha256: String,
    /// active, shadow or quarantined.
    pub state: &'static str,
    /// The contract version the component implements (`0.1.0`: analyze, `0.2.0`: observe).
    pub wit_version: &'static str,
    pub sources: Vec<String>,
    pub actions: Vec<String>,
    pub signals: Vec<String>,
    pub deadline_ms: u64,
    pub memory_mib: u64,
    pub config: BTreeMap<String, String>,
    #[serde(flatten)]
    pub health: HealthReport,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("name", &self.info.name)
            .field("version", &self.info.version)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Detector {
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The component a call under `config` starts from: the prepared snapshot when it was
    /// taken under this very configuration, else the component as loaded.
    pub(super) fn pre_for(&self, config: &Arc<BTreeMap<String, String>>) -> &Pre {
        match &self.prepared {
            Some(p) if p.serves(config) => &p.pre,
            _ => &self.pre,
        }
    }

    /// Whether live calls start from a snapshot taken after `prepare`.
    pub fn is_prepared(&self) -> bool {
        self.prepared.is_some()
    }

    /// The contract version the component implements: `0.1.0` or `0.2.0`.
    pub fn wit_version(&self) -> &'static str {
        self.pre.wit_version()
    }

    pub fn status(&self) -> DetectorStatus {
        let health = self.health.report();
        DetectorStatus {
            name: self.info.name.clone(),
            version: self.info.version.clone(),
            description: self.info.description.clone(),
            origin: self.origin.clone(),
            sha256: self.sha256.clone(),
            state: if health.quarantine.is_some() {
                "quarantined"
            } else if self.shadow {
                "shadow"
            } else {
                "active"
            },
            wit_version: self.pre.wit_version(),
            sources: self.info.sources.clone(),
            actions: self.info.actions.clone(),
            signals: self.info.signals.clone(),
            deadline_ms: self.limits.deadline.as_millis() as u64,
            memory_mib: (self.limits.memory_bytes >> 20) as u64,
            config: (*self.config).clone(),
            health,
        }
    }

    /// The config a fixture runs with: declared defaults and this detector's configured
    /// values (never `[org]`), the fixture's own values on top; undeclared keys refused.
    pub fn fixture_config_with(
        &self,
        values: &BTreeMap<String, String>,
    ) -> Result<Arc<BTreeMap<String, String>>, String> {
        if values.is_empty() {
            return Ok(self.fixture_config.clone());
        }
        let mut c = (*self.fixture_config).clone();
        for (k, v) in values {
            if !self.info.config.iter().any(|d| &d.name == k) {
                return Err(format!(
                    "config key `{k}` is not declared by detector `{}`",
                    self.info.name
                ));
            }
            c.insert(k.clone(), v.clone());
        }
        Ok(Arc::new(c))
    }
}

/// Compiles, links and introspects `spec`. `lookup` gives the configured overrides for a
/// detector name (known only once `info()` has answered).
pub(super) fn load(
    engine: &DetectorEngine,
    cache: &ComponentCache,
    base: Limits,
    spec: DetectorSpec,
    lookup: impl Fn(&str) -> Option<DetectorOverride>,
    org: &Org,
) -> Result<(Detector, Origin), LoadError> {
    let sha256 = hex::encode(Sha256::digest(spec.bytes.as_slice()));
    let (component, origin) = cache.get(&engine.engine, &spec.bytes)?;
    let pre = engine
        .linker
        .instantiate_pre(&component)
        .map_err(|e| LoadError::Link(format!("{e:#}")))?;
    let link = |e: wasmtime::Error| LoadError::Link(format!("{e:#}"));
    let pre = match contract_version(&component, &engine.engine)? {
        "0.2.0" => Pre::V2(bindings_v2::DetectorPre::new(pre).map_err(link)?),
        _ => Pre::V1(DetectorPre::new(pre).map_err(link)?),
    };
    let probe_name: Arc<str> = Arc::from(spec.origin.as_str());
    let info = call::info(
        engine,
        CallSpec {
            name: &probe_name,
            pre: &pre,
            limits: &base,
            config: Arc::new(BTreeMap::new()),
            now: None,
        },
    )
    .map_err(LoadError::Info)?;
    let declared = contract::declared(&info);
    plumbline_contract::check_info(&declared).map_err(LoadError::Contract)?;

    let mut o = lookup(&info.name).unwrap_or_default();
    if let Some(extra) = spec.overrides {
        o.deadline_ms = extra.deadline_ms.or(o.deadline_ms);
        o.memory_mib = extra.memory_mib.or(o.memory_mib);
        o.shadow |= extra.shadow;
        o.enabled &= extra.enabled;
        o.config.extend(extra.config);
    }
    if !o.enabled {
        return Err(LoadError::Disabled(info.name));
    }
    // Two views of the config: what live calls get (defaults, then `[org]`, then this
    // detector's own values) and what its fixtures are judged with (the same without
    // `[org]`: a fixture states the rule, and a company's allow-lists must not make a
    // pack's own fixtures fail and the pack be refused).
    let mut config: BTreeMap<String, String> = info
        .config
        .iter()
        .map(|k| (k.name.clone(), k.default_value.clone()))
        .collect();
    let mut live = config.clone();
    org.apply(&mut live);
    for (k, v) in o.config.iter() {
        if !config.contains_key(k) {
            return Err(LoadError::Config(format!(
                "runtime.detectors.\"{}\".config: key `{k}` is not declared by the detector \
                 (it declares: {})",
                info.name,
                info.config
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        config.insert(k.clone(), v.clone());
        live.insert(k.clone(), v.clone());
    }
    let limits = base.with(&o);
    let live = Arc::new(live);
    let name: Arc<str> = Arc::from(info.name.as_str());
    // Config once: a 0.2.0 detector that declares config keys and offers `prepare` is
    // snapshotted after it under its live configuration (prepare.rs). Without config keys
    // there is nothing to parse once, and the snapshot would only cost a compile.
    let prepared = match &pre {
        Pre::V2(_) if !info.config.is_empty() && prepare::offered(&component, engine) => {
            Some(prepare::prepare(
                engine,
                cache,
                &spec.bytes,
                &sha256,
                CallSpec {
                    name: &name,
                    pre: &pre,
                    limits: &limits,
                    config: live.clone(),
                    now: None,
                },
            )?)
        }
        _ => None,
    };
    Ok((
        Detector {
            interest: Interest::of(&declared),
            declared,
            name,
            info,
            limits,
            config: live,
            fixture_config: Arc::new(config),
            shadow: o.shadow,
            origin: spec.origin,
            sha256,
            health: Health::default(),
            pre,
            prepared,
        },
        origin,
    ))
}

/// The contract version a component implements, read off its exports: 0.2.0's world
/// exports `observe`, 0.1.0's `analyze` (each with `info`). The bindings of that version
/// then check every export's and import's type when they are linked.
fn contract_version(
    component: &wasmtime::component::Component,
    engine: &wasmtime::Engine,
) -> Result<&'static str, LoadError> {
    let ty = component.component_type();
    let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
    if exports.contains(&"observe") {
        Ok("0.2.0")
    } else if exports.contains(&"analyze") {
        Ok("0.1.0")
    } else {
        Err(LoadError::Link(format!(
            "exports neither `analyze` (plumbline:detector@0.1.0) nor `observe` \
             (plumbline:detector@0.2.0); it exports: {}",
            exports.join(", ")
        )))
    }
}

/// The `*.wasm` files of `dirs` (sorted, non-recursive) followed by `paths`.
pub fn component_files(dirs: &[PathBuf], paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    for d in dirs {
        let mut found: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| LoadError::Read(d.clone(), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        found.sort();
        out.extend(found);
    }
    out.extend(paths.iter().cloned());
    Ok(out)
}
