//! The watched packs directory: every `*.plpack` in it is a pack to run. A new or changed
//! archive is loaded (and swapped in if it passes); a removed one is taken out. Changes
//! arrive through `notify` and are coalesced, then the whole directory is rescanned, so a
//! missed or partial event (an archive still being copied) is caught by the next one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use super::manifest::sha256_hex;
use super::registry::Origin;
use super::{PackError, Packs};

/// Keeps the directory watched while alive.
pub struct PackWatch {
    _watcher: notify::RecommendedWatcher,
}

/// Reads `dir` once, then watches it until the returned guard is dropped.
pub fn start(packs: Arc<Packs>, dir: PathBuf) -> Result<PackWatch, PackError> {
    std::fs::create_dir_all(&dir).map_err(|e| PackError::Io(dir.clone(), e))?;
    let mut seen = HashMap::new();
    scan(&packs, &dir, &mut seen);
    let (tx, rx) = mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |r: notify::Result<notify::Event>| {
        if r.is_ok() {
            let _ = tx.send(());
        }
    })
    .map_err(|e| PackError::Io(dir.clone(), std::io::Error::other(e)))?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|e| PackError::Io(dir.clone(), std::io::Error::other(e)))?;
    tracing::info!(dir = %dir.display(), "watching for packs");
    std::thread::Builder::new()
        .name("pack-watch".into())
        .spawn(move || {
            // Ends when the watcher (and so the sender) is dropped.
            while rx.recv().is_ok() {
                // Coalesce a burst (a copy writes in many chunks).
                while rx.recv_timeout(Duration::from_millis(300)).is_ok() {}
                scan(&packs, &dir, &mut seen);
            }
        })
        .map_err(|e| PackError::Io(PathBuf::from("pack-watch thread"), e))?;
    Ok(PackWatch { _watcher: watcher })
}

/// Brings the running packs in line with the directory. `seen` remembers the bytes last
/// tried per file, so an archive that was refused is not retried until it changes.
pub fn scan(packs: &Packs, dir: &Path, seen: &mut HashMap<PathBuf, String>) {
    let mut present: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(r) => r
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "plpack"))
            .collect(),
        Err(e) => {
            tracing::error!(dir = %dir.display(), "cannot read the packs directory: {e}");
            return;
        }
    };
    present.sort();
    for path in &present {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let sha = sha256_hex(&bytes);
        if seen.get(path) == Some(&sha) {
            continue;
        }
        seen.insert(path.clone(), sha);
        match packs.install_archive(bytes, None, Origin::Watched(path.clone()), false) {
            Ok(s) => {
                tracing::info!(file = %path.display(), pack = s.name, version = s.version, "watched pack loaded")
            }
            Err(e) => tracing::warn!(file = %path.display(), "watched pack refused: {e}"),
        }
    }
    seen.retain(|p, _| present.contains(p));
    for (name, path, _) in packs.watched() {
        if !present.contains(&path) {
            if let Err(e) = packs.remove(&name) {
                tracing::warn!(pack = name, "cannot remove a pack whose file is gone: {e}");
            }
        }
    }
}
