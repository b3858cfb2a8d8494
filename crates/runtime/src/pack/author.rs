//! What a team runs to make a pack: a skeleton (`pack new`), pinning every file's hash in
//! the manifest (`pack build`), and signing it (`pack sign`).

use std::collections::BTreeMap;

use super::archive::PackFiles;
use super::manifest::{sha256_hex, Manifest, MANIFEST, SIGNATURE};
use super::sign::PackKey;
use super::PackError;

/// A new pack directory's files: a manifest to fill in and where things go.
pub fn skeleton(name: &str, detector: &str) -> Result<PackFiles, PackError> {
    let manifest = format!(
        r#"# A Plumbline detector pack (docs/packs.md). `plumbline pack build` fills in the
# sha256 of each component and the [files] table; `plumbline pack sign` signs this file.
name = "{name}"
version = "0.1.0"
# The plumbline:detector WIT version the components are built against.
wit = "{wit}"
description = ""
owners = []
# Install as shadow (findings recorded, no alerts) unless the install says otherwise.
shadow = true

[[detectors]]
# The name the component declares in info().
name = "{detector}"
component = "components/{detector}.wasm"
fixtures = "fixtures/{detector}"
# Defaults for config keys the detector declares ([runtime.detectors] overrides them).
config = {{}}
"#,
        wit = crate::SUPPORTED_WIT_VERSIONS[0],
    );
    Manifest::parse(manifest.as_bytes())?;
    let mut files = BTreeMap::new();
    files.insert(MANIFEST.to_string(), manifest.into_bytes());
    files.insert(
        format!("fixtures/{detector}/README.md"),
        b"Fixture files (*.json: trajectory + expected findings, see sdk/README.md) for this detector.\nA pack is refused unless every one of them passes.\n".to_vec(),
    );
    Ok(PackFiles { files })
}

/// Pins every file: each component's sha256 in its `[[detectors]]` entry, every other file
/// in `[files]`. Any old signature is dropped (it no longer matches).
pub fn build(mut files: PackFiles) -> Result<(Manifest, PackFiles), PackError> {
    let bytes = files
        .get(MANIFEST)
        .ok_or_else(|| PackError::Manifest("no pack.toml".into()))?;
    let text = std::str::from_utf8(bytes)
        .map_err(|_| PackError::Manifest("pack.toml is not UTF-8".into()))?;
    let mut m: Manifest =
        toml::from_str(text).map_err(|e| PackError::Manifest(e.message().to_string()))?;
    files.files.remove(SIGNATURE);
    for d in &mut m.detectors {
        let c = files.get(&d.component).ok_or_else(|| {
            PackError::Manifest(format!("component `{}` is not in the pack", d.component))
        })?;
        d.sha256 = sha256_hex(c);
    }
    let components: Vec<&str> = m.detectors.iter().map(|d| d.component.as_str()).collect();
    m.files = files
        .files
        .iter()
        .filter(|(p, _)| p.as_str() != MANIFEST && !components.contains(&p.as_str()))
        .map(|(p, b)| (p.clone(), sha256_hex(b)))
        .collect();
    let out = m.to_bytes();
    let m = Manifest::parse(&out)?;
    files.files.insert(MANIFEST.to_string(), out);
    Ok((m, files))
}

/// Adds (or replaces) `pack.sig`: the key's signature over the manifest's exact bytes.
pub fn sign(mut files: PackFiles, key: &PackKey) -> Result<PackFiles, PackError> {
    let manifest = files
        .get(MANIFEST)
        .ok_or_else(|| PackError::Manifest("no pack.toml".into()))?;
    Manifest::parse(manifest)?;
    let sig = key.sign(manifest).to_bytes();
    files.files.insert(SIGNATURE.to_string(), sig);
    Ok(files)
}
