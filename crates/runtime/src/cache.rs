//! Compiled components, cached on disk and in memory. Compiling a language runtime's
//! component (CPython, SpiderMonkey) takes seconds to minutes; loading its compiled form
//! takes milliseconds. Entries are keyed by the component's sha256 and the engine's
//! compatibility hash (wasmtime version and settings), so a stale artefact is never used.
//!
//! Trust: a cached file is native code. The cache directory must be writable only by the
//! service, like its binary.

use std::collections::HashMap;
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use super::LoadError;

pub struct ComponentCache {
    dir: Option<PathBuf>,
    engine_hash: String,
    loaded: Mutex<HashMap<String, Component>>,
}

/// Where a compiled component came from (reported by `detector test` and in logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Memory,
    Disk,
    Compiled,
}

impl ComponentCache {
    /// `dir: None` keeps compiled components in memory only.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut h = ShaHasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
        ComponentCache {
            dir,
            engine_hash: hex::encode(&h.0.finalize()[..8]),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// The compiled component for `bytes`, compiling it only if no cache has it.
    pub fn get(&self, engine: &Engine, bytes: &[u8]) -> Result<(Component, Origin), LoadError> {
        let key = format!(
            "{}-{}",
            hex::encode(Sha256::digest(bytes)),
            self.engine_hash
        );
        if let Some(c) = self.loaded.lock().expect("cache lock").get(&key) {
            return Ok((c.clone(), Origin::Memory));
        }
        let file = self.dir.as_ref().map(|d| d.join(format!("{key}.cwasm")));
        if let Some(path) = file.as_deref().filter(|p| p.exists()) {
            // SAFETY: the file was written by `store` below from `Component::serialize` of
            // exactly these bytes (the key is their hash) for this engine configuration
            // (the key carries the engine's compatibility hash); wasmtime also checks the
            // header and refuses an artefact built for another engine.
            match unsafe { Component::deserialize_file(engine, path) } {
                Ok(c) => {
                    self.remember(key, &c);
                    return Ok((c, Origin::Disk));
                }
                Err(e) => tracing::warn!(path = %path.display(), error = %e,
                    "unusable compiled component in cache, recompiling"),
            }
        }
        let component =
            Component::new(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        if let Some(path) = file {
            if let Err(e) = store(&path, &component) {
                tracing::warn!(path = %path.display(), error = %e, "cannot cache compiled component");
            }
        }
        self.remember(key, &component);
        Ok((component, Origin::Compiled))
    }

    fn remember(&self, key: String, c: &Component) {
        self.loaded
            .lock()
            .expect("cache lock")
            .insert(key, c.clone());
    }
}

/// Write-then-rename, so a crash never leaves a truncated artefact under the real name.
fn store(path: &Path, component: &Component) -> std::io::Result<()> {
    let bytes = component.serialize().map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Unique per writer: two runtimes (or processes) may compile the same component at once.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Feeds `Hash` output into sha256, so the engine hash is stable across processes.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        let d = self.0.clone().finalize();
        u64::from_le_bytes(d[..8].try_into().expect("sha256 has 32 bytes"))
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
