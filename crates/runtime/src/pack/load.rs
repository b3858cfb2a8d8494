//! The activation rules. A pack becomes loadable only if, in this order: its manifest
//! parses; its signature verifies against the trust store (built-ins: their hashes are the
//! ones pinned in the binary); it targets a WIT version this host supports; every file is
//! pinned by the manifest and matches its hash; every component compiles, links and answers
//! `info()` under the name the manifest gives; and every detector's own fixtures pass in
//! the real runtime (a pass is remembered beside the compiled components, per binary,
//! component, configuration and fixtures, so a restart does not run them again). Nothing
//! here touches the active set: the registry swaps it only after a pack passed all of this.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use super::archive::PackFiles;
use super::manifest::{sha256_hex, Manifest, MANIFEST, SIGNATURE};
use super::sign::{self, Trust};
use super::{PackError, PacksConfig};
use crate::{Detector, DetectorOverride, DetectorSpec, LoadError, Runtime, SUPPORTED_WIT_VERSIONS};

/// Where a pack's trust comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// Embedded in this binary.
    Builtin,
    /// Anything else: checked against the trust store.
    External,
}

/// A pack that passed every rule: its detectors are loaded but not active.
pub struct LoadedPack {
    pub manifest: Manifest,
    pub trust: Trust,
    pub shadow: bool,
    pub detectors: Vec<Arc<Detector>>,
    /// Detectors the operator disabled in `[runtime.detectors]` (not loaded).
    pub disabled: Vec<String>,
    pub fixtures_passed: usize,
}

/// The trust and integrity checks alone (what `plumbline pack verify` runs).
pub fn verify(
    files: &PackFiles,
    provenance: Provenance,
    config: &PacksConfig,
) -> Result<(Manifest, Trust), PackError> {
    let manifest_bytes = files
        .get(MANIFEST)
        .ok_or_else(|| PackError::Manifest("the pack has no pack.toml".into()))?;
    let manifest = if provenance == Provenance::Builtin {
        // Built by this binary (no detector names): not parsed back, not user input.
        toml::from_str::<Manifest>(std::str::from_utf8(manifest_bytes).unwrap_or_default())
            .map_err(|e| PackError::Manifest(e.to_string()))?
    } else {
        Manifest::parse(manifest_bytes)?
    };
    let trust = match provenance {
        Provenance::Builtin => Trust::Builtin,
        Provenance::External => sign::check(
            manifest_bytes,
            files.get(SIGNATURE),
            &config.trusted_keys,
            config.allow_unsigned,
        )?,
    };
    if !SUPPORTED_WIT_VERSIONS.contains(&manifest.wit.as_str()) {
        return Err(PackError::Wit {
            found: manifest.wit.clone(),
            supported: SUPPORTED_WIT_VERSIONS.join(", "),
        });
    }
    check_files(&manifest, files)?;
    Ok((manifest, trust))
}

/// Every file is pinned by the manifest and matches its hash; nothing pinned is missing.
fn check_files(m: &Manifest, files: &PackFiles) -> Result<(), PackError> {
    let mut pinned: Vec<(&str, &str)> = m
        .detectors
        .iter()
        .map(|d| (d.component.as_str(), d.sha256.as_str()))
        .collect();
    pinned.extend(m.files.iter().map(|(p, h)| (p.as_str(), h.as_str())));
    let known: BTreeSet<&str> = pinned.iter().map(|(p, _)| *p).collect();
    for path in files.files.keys() {
        if path != MANIFEST && path != SIGNATURE && !known.contains(path.as_str()) {
            return Err(PackError::Tampered(format!(
                "`{path}` is not pinned by pack.toml"
            )));
        }
    }
    for (path, want) in pinned {
        let data = files
            .get(path)
            .ok_or_else(|| PackError::Tampered(format!("`{path}` is missing")))?;
        let got = sha256_hex(data);
        if !got.eq_ignore_ascii_case(want) {
            return Err(PackError::Tampered(format!(
                "`{path}` has sha256 {got}, pack.toml pins {want}"
            )));
        }
    }
    Ok(())
}

/// Verifies, compiles and self-tests a pack. `shadow: None` takes the manifest's flag.
pub fn load(
    runtime: &Runtime,
    files: &PackFiles,
    provenance: Provenance,
    config: &PacksConfig,
    shadow: Option<bool>,
) -> Result<LoadedPack, PackError> {
    let (manifest, trust) = verify(files, provenance, config)?;
    let shadow = shadow.unwrap_or(manifest.shadow);
    let mut detectors = Vec::new();
    let mut disabled = Vec::new();
    let mut fixtures_passed = 0;
    for d in &manifest.detectors {
        let label = if d.name.is_empty() {
            d.component.as_str()
        } else {
            d.name.as_str()
        };
        // The pack's config values are defaults: the operator's [runtime.detectors] win.
        let operator = runtime.settings().detectors.get(&d.name);
        let mut config = manifest.config_of(d, files)?;
        config.retain(|k, _| operator.is_none_or(|o| !o.config.contains_key(k)));
        let spec = DetectorSpec {
            origin: format!("pack:{}/{}", manifest.id(), d.component),
            bytes: Arc::new(files.get(&d.component).expect("checked").to_vec()),
            overrides: Some(DetectorOverride {
                shadow,
                config,
                ..DetectorOverride::default()
            }),
        };
        let detector = match runtime.load_detector(spec) {
            Ok(x) => x,
            Err(LoadError::Disabled(name)) => {
                disabled.push(name);
                continue;
            }
            Err(e) => {
                return Err(PackError::Load {
                    detector: label.to_string(),
                    reason: e.to_string(),
                })
            }
        };
        if !d.name.is_empty() && detector.name() != d.name {
            return Err(PackError::Load {
                detector: label.to_string(),
                reason: format!(
                    "the component declares itself `{}`, pack.toml says `{}`",
                    detector.name(),
                    d.name
                ),
            });
        }
        let fixtures: Vec<&str> = manifest.fixtures_of(d).collect();
        if fixtures.is_empty() {
            return Err(PackError::Fixtures {
                detector: detector.name().to_string(),
                reason: format!("no fixtures under `{}` (a pack tests itself)", d.fixtures),
            });
        }
        // Everything a fixture's outcome depends on besides the binary and the component.
        let limits = format!("{:?} {:?}", detector.limits, runtime.settings());
        let config = serde_json::to_vec(&*detector.fixture_config).expect("config serialises");
        let mut parts: Vec<&[u8]> = vec![detector.sha256.as_bytes(), &config, limits.as_bytes()];
        for f in &fixtures {
            parts.extend([f.as_bytes(), files.get(f).expect("checked")]);
        }
        let proof = crate::cache::self_test_key(parts);
        if proof
            .as_deref()
            .is_some_and(|k| runtime.self_tests().self_test_passed(k))
        {
            tracing::debug!(
                detector = detector.name(),
                fixtures = fixtures.len(),
                "self-test passed before with this binary, component, config and fixtures"
            );
            fixtures_passed += fixtures.len();
            detectors.push(detector);
            continue;
        }
        let mut failures = Vec::new();
        for f in fixtures {
            let text = String::from_utf8_lossy(files.get(f).expect("checked"));
            let outcome = runtime.run_fixture_text(&detector, Path::new(f), &text);
            if outcome.passed {
                fixtures_passed += 1;
            } else {
                failures.push(format!(
                    "{f}: {}",
                    outcome.message.unwrap_or_else(|| "failed".into())
                ));
            }
        }
        if !failures.is_empty() {
            return Err(PackError::Fixtures {
                detector: detector.name().to_string(),
                reason: failures.join("; "),
            });
        }
        if let Some(k) = &proof {
            runtime.self_tests().remember_self_test(k);
        }
        detectors.push(detector);
    }
    Ok(LoadedPack {
        manifest,
        trust,
        shadow,
        detectors,
        disabled,
        fixtures_passed,
    })
}
