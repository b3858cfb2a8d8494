//! The built-in packs, embedded by `crates/runtime/build.rs` from detectors/<pack>/<detector>/: each
//! component with the sha256 pinned at build time, and its fixtures. They are trusted
//! because they are part of the release (no signing key in the repository); the pinned
//! hashes are still checked before loading, and the fixtures still run.

use std::collections::BTreeMap;

use super::archive::PackFiles;
use super::manifest::{Manifest, ManifestDetector, MANIFEST};

pub struct BuiltinPack {
    pub name: &'static str,
    pub detectors: &'static [BuiltinDetector],
}

pub struct BuiltinDetector {
    pub crate_name: &'static str,
    pub sha256: &'static str,
    pub component: &'static [u8],
    pub fixtures: &'static [(&'static str, &'static str)],
}

pub static BUILTIN: &[BuiltinPack] = include!(concat!(env!("OUT_DIR"), "/builtin_packs.rs"));

pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|p| p.name)
}

pub fn get(name: &str) -> Option<&'static BuiltinPack> {
    BUILTIN.iter().find(|p| p.name == name)
}

/// The contract the built-in detectors target (the 0.1.0 compatibility examples are not
/// in a built-in pack).
const BUILTIN_WIT: &str = "0.2.0";

impl BuiltinPack {
    /// The pack as files with a manifest pinning them, as if read from an archive. The
    /// detectors' names are left empty: a built-in detector is named by its own `info()`.
    pub fn files(&self) -> PackFiles {
        let mut files = BTreeMap::new();
        let mut pinned = BTreeMap::new();
        let mut detectors = Vec::new();
        for d in self.detectors {
            let component = format!("components/{}.wasm", d.crate_name);
            let fixtures = format!("fixtures/{}", d.crate_name);
            files.insert(component.clone(), d.component.to_vec());
            for (name, text) in d.fixtures {
                let path = format!("{fixtures}/{name}");
                pinned.insert(path.clone(), super::manifest::sha256_hex(text.as_bytes()));
                files.insert(path, text.as_bytes().to_vec());
            }
            detectors.push(ManifestDetector {
                name: String::new(),
                component,
                // Pinned at build time, not recomputed here.
                sha256: d.sha256.to_string(),
                fixtures,
                config: BTreeMap::new(),
                config_files: BTreeMap::new(),
            });
        }
        let manifest = Manifest {
            name: self.name.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            wit: BUILTIN_WIT.to_string(),
            description: format!("Built-in {} detectors (part of this release)", self.name),
            owners: vec!["plumbline".into()],
            shadow: false,
            detectors,
            files: pinned,
        };
        files.insert(MANIFEST.to_string(), manifest.to_bytes());
        PackFiles { files }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_pack_is_embedded_with_fixtures_and_pinned_hashes() {
        let names: Vec<_> = names().collect();
        for want in [
            "exfiltration",
            "prompt-edits",
            "branch-bypass",
            "credential-abuse",
            "supply-chain",
            "drift",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        for p in BUILTIN {
            assert!(!p.detectors.is_empty(), "{} has no detectors", p.name);
            for d in p.detectors {
                assert_eq!(super::super::manifest::sha256_hex(d.component), d.sha256);
                assert!(!d.fixtures.is_empty(), "{} has no fixtures", d.crate_name);
            }
        }
    }
}
