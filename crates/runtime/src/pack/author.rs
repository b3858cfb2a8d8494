//! What a team runs to make a pack: a skeleton (`pack new`), pinning every file's hash in
//! the manifest (`pack build`), and signing it (`pack sign`).

use std::collections::BTreeMap;

use super::archive::PackFiles;
use super::manifest::{in_folder, sha256_hex, Manifest, MANIFEST, SIGNATURE};
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

/// Pins what the manifest names: each component's sha256 in its `[[detectors]]` entry,
/// and in `[files]` every fixture (`*.json` under a detector's `fixtures` directory) and
/// every path `[files]` already lists. Nothing else goes into the pack (see [`left_out`]).
/// The manifest is edited in place, so its comments and layout stay as written. Any old
/// signature is dropped (it no longer matches).
pub fn build(mut files: PackFiles) -> Result<(Manifest, PackFiles), PackError> {
    let bad = |m: String| PackError::Manifest(m);
    let bytes = files
        .get(MANIFEST)
        .ok_or_else(|| bad("no pack.toml".into()))?;
    let text = std::str::from_utf8(bytes).map_err(|_| bad("pack.toml is not UTF-8".into()))?;
    let m: Manifest = toml::from_str(text).map_err(|e| bad(e.message().to_string()))?;
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| bad(format!("{e}")))?;
    files.files.remove(SIGNATURE);

    let tables = doc
        .get_mut("detectors")
        .and_then(|d| d.as_array_of_tables_mut())
        .ok_or_else(|| bad("a pack needs at least one [[detectors]] entry".into()))?;
    for (d, table) in m.detectors.iter().zip(tables.iter_mut()) {
        let c = files
            .get(&d.component)
            .ok_or_else(|| bad(format!("component `{}` is not in the pack", d.component)))?;
        table["sha256"] = toml_edit::value(sha256_hex(c));
    }
    let mut pinned = BTreeMap::new();
    for d in &m.detectors {
        // Its fixtures, and every file under a config_files folder (part of its config).
        for (path, bytes) in &files.files {
            let fixture = in_folder(path, &d.fixtures) && path.ends_with(".json");
            if fixture || d.config_files.values().any(|f| in_folder(path, f)) {
                pinned.insert(path.clone(), sha256_hex(bytes));
            }
        }
    }
    for path in m.files.keys() {
        let bytes = files.get(path).ok_or_else(|| {
            bad(format!(
                "[files] names `{path}`, which is not in the pack directory"
            ))
        })?;
        pinned.insert(path.clone(), sha256_hex(bytes));
    }
    let components: Vec<&str> = m.detectors.iter().map(|d| d.component.as_str()).collect();
    files
        .files
        .retain(|p, _| p == MANIFEST || components.contains(&p.as_str()) || pinned.contains_key(p));

    let mut table = match doc.remove("files") {
        Some(toml_edit::Item::Table(t)) => t,
        _ => toml_edit::Table::new(),
    };
    table.clear();
    for (path, sha) in pinned {
        table.insert(&path, toml_edit::value(sha));
    }
    doc.insert("files", toml_edit::Item::Table(table));
    let out = doc.to_string().into_bytes();
    let m = Manifest::parse(&out)?;
    files.files.insert(MANIFEST.to_string(), out);
    Ok((m, files))
}

/// The files of a pack directory that [`build`] did not put in the pack, to tell the author.
pub fn left_out(dir: &PackFiles, built: &PackFiles) -> Vec<String> {
    dir.files
        .keys()
        .filter(|p| p.as_str() != SIGNATURE && !built.files.contains_key(p.as_str()))
        .cloned()
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `pack build` keeps the author's comments, pins the component and the fixtures, and
    /// leaves out what the manifest does not name (the skeleton's README).
    #[test]
    fn build_keeps_comments_and_pins_only_what_the_manifest_names() {
        let mut dir = skeleton("acme-exfil", "acme.big-export").unwrap();
        dir.files.insert(
            "components/acme.big-export.wasm".into(),
            b"\0asm component".to_vec(),
        );
        dir.files.insert(
            "fixtures/acme.big-export/positive.json".into(),
            b"{}".to_vec(),
        );
        dir.files.insert("notes/todo.txt".into(), b"later".to_vec());
        let (m, built) = build(dir.clone()).unwrap();
        let text = String::from_utf8(built.files[MANIFEST].clone()).unwrap();
        assert!(
            text.contains("# Install as shadow (findings recorded, no alerts)"),
            "{text}"
        );
        assert_eq!(m.detectors[0].sha256, sha256_hex(b"\0asm component"));
        assert_eq!(
            m.files.keys().collect::<Vec<_>>(),
            ["fixtures/acme.big-export/positive.json"]
        );
        assert_eq!(
            left_out(&dir, &built),
            ["fixtures/acme.big-export/README.md", "notes/todo.txt"]
        );
        // Building again changes nothing: the same bytes, the same pack.
        let (_, again) = build(built.clone()).unwrap();
        assert_eq!(again, built);

        // A path the author lists in [files] is pinned; one that is missing is named.
        let mut named = built.clone();
        let listed = text.replace("\n[files]\n", "\n[files]\n\"notes/todo.txt\" = \"\"\n");
        named.files.insert(MANIFEST.into(), listed.into_bytes());
        named
            .files
            .insert("notes/todo.txt".into(), b"later".to_vec());
        let (m, _) = build(named.clone()).unwrap();
        assert!(m.files.contains_key("notes/todo.txt"));
        named.files.remove("notes/todo.txt");
        let e = build(named).unwrap_err();
        assert!(e.to_string().contains("`notes/todo.txt`"), "{e}");
    }
}
