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
    /// Self-tests known to pass (see [`ComponentCache::self_test_passed`]).
    passed: Mutex<std::collections::HashSet<String>>,
    /// Compiled prepared snapshots by key (see [`ComponentCache::prepared`]).
    prepared: Mutex<HashMap<String, Component>>,
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
            passed: Mutex::default(),
            prepared: Mutex::default(),
        }
    }

    /// Whether the self-test named by `key` ([`self_test_key`]) passed before, in this
    /// process or (with a cache directory) an earlier one. Fixtures are deterministic, so
    /// the same component, fixtures, configuration and limits under the same binary give
    /// the same answer: a restart need not run a pack's hundreds of fixtures again (they
    /// were half of a start's second). A failure is never remembered.
    pub fn self_test_passed(&self, key: &str) -> bool {
        if self.passed.lock().expect("cache lock").contains(key) {
            return true;
        }
        let found = self.self_test_file(key).is_some_and(|p| p.exists());
        if found {
            self.passed
                .lock()
                .expect("cache lock")
                .insert(key.to_string());
        }
        found
    }

    /// Records that the self-test named by `key` passed.
    pub fn remember_self_test(&self, key: &str) {
        self.passed
            .lock()
            .expect("cache lock")
            .insert(key.to_string());
        if let Some(path) = self.self_test_file(key) {
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&path, b"passed\n"));
            if let Err(e) = written {
                tracing::warn!(path = %path.display(), error = %e, "cannot record a passed self-test");
            }
        }
    }

    fn self_test_file(&self, key: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(
            dir.join("self-tests")
                .join(format!("{key}-{}", self.engine_hash)),
        )
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

    /// The compiled snapshot named by `key` ([`super::prepare`]): from memory, from its
    /// WebAssembly on disk, or made by `make` (and its WebAssembly kept on disk). Compiled
    /// through [`ComponentCache::get`], so a snapshot's native code is cached like any
    /// component's; only the compiled form stays in memory.
    pub fn prepared(
        &self,
        engine: &Engine,
        key: &str,
        make: impl FnOnce() -> Result<Vec<u8>, LoadError>,
    ) -> Result<Component, LoadError> {
        if let Some(c) = self.prepared.lock().expect("cache lock").get(key) {
            return Ok(c.clone());
        }
        let file = self
            .dir
            .as_ref()
            .map(|d| d.join("prepared").join(format!("{key}.wasm")));
        let bytes = match file.as_deref().map(std::fs::read) {
            Some(Ok(bytes)) => bytes,
            _ => {
                let bytes = make()?;
                if let Some(path) = &file {
                    let written = path
                        .parent()
                        .map_or(Ok(()), std::fs::create_dir_all)
                        .and_then(|()| write_atomically(path, &bytes));
                    if let Err(e) = written {
                        tracing::warn!(path = %path.display(), error = %e, "cannot cache a prepared snapshot");
                    }
                }
                bytes
            }
        };
        let (component, _) = self.get(engine, &bytes)?;
        self.prepared
            .lock()
            .expect("cache lock")
            .insert(key.to_string(), component.clone());
        Ok(component)
    }

    fn remember(&self, key: String, c: &Component) {
        self.loaded
            .lock()
            .expect("cache lock")
            .insert(key, c.clone());
    }
}

/// Names one self-test: this binary (its path, size, modification time and inode: a
/// rebuilt or replaced binary is another), and everything the `parts` say (the component's
/// hash, its configuration and limits, each fixture's name and text). `None` when the
/// binary cannot be identified: then every self-test runs.
pub fn self_test_key<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Option<String> {
    static BINARY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let binary = BINARY.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        let exe = std::env::current_exe().ok()?;
        let m = std::fs::metadata(&exe).ok()?;
        Some(format!(
            "{}:{}:{}.{}:{}:{}",
            exe.display(),
            m.len(),
            m.mtime(),
            m.mtime_nsec(),
            m.ino(),
            m.dev()
        ))
    });
    let mut h = Sha256::new();
    h.update(binary.as_ref()?.as_bytes());
    hash_parts(&mut h, parts);
    Some(hex::encode(&h.finalize()[..16]))
}

/// Feeds `parts` to `h` length-prefixed, so parts cannot run into each other (`a`,`bc` and
/// `ab`,`c` hash apart). For cache keys made of several values.
pub fn hash_parts<'a>(h: &mut Sha256, parts: impl IntoIterator<Item = &'a [u8]>) {
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
}

/// Write-then-rename, so a crash never leaves a truncated artefact under the real name.
fn store(path: &Path, component: &Component) -> std::io::Result<()> {
    let bytes = component.serialize().map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_atomically(path, &bytes)
}

/// Writes `bytes` beside `path` and renames them into place: a reader never sees half a
/// file. The temporary name is unique per writer: two runtimes (or processes) may make the
/// same entry at once.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
