//! The packs this host runs: built-ins, packs installed through the API (kept under
//! `<data_dir>/packs/`), packs in the watched directory; their states; and the active
//! detector set, recomposed and swapped atomically on every change. A refused pack is
//! recorded with its reason and leaves the active set as it was.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::archive::PackFiles;
use super::load::{self, LoadedPack, Provenance};
use super::manifest::{sha256_hex, valid_name, Manifest};
use super::sign::Trust;
use super::{builtin, BuiltinMode, PackError, PacksConfig};
use crate::{Detector, DetectorSet, DetectorStatus, Runtime};

/// Earlier versions kept for their final counters (`GET /v1/packs`, state `retired`).
const RETIRED_KEPT: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "lowercase")]
pub enum Origin {
    Builtin,
    /// Uploaded (`POST /v1/packs`, `plumbline pack install`) and kept in the data dir.
    Installed,
    /// An archive in the watched directory.
    Watched(PathBuf),
}

#[derive(Clone)]
struct Entry {
    manifest: Manifest,
    origin: Origin,
    trust: Trust,
    shadow: bool,
    detectors: Vec<Arc<Detector>>,
    disabled: Vec<String>,
    fixtures_passed: usize,
    files: Arc<PackFiles>,
    /// The archive bytes and their sha256 (built-ins have none).
    archive: Option<(Arc<Vec<u8>>, String)>,
    at: String,
}

/// One pack version as `GET /v1/packs` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PackStatus {
    pub name: String,
    pub version: String,
    /// active, shadow, refused or retired (replaced or removed; counters final).
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub origin: Origin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust: Option<Trust>,
    pub wit: String,
    pub description: String,
    pub owners: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub fixtures_passed: usize,
    /// Detectors the operator disabled in `[runtime.detectors]`.
    pub disabled: Vec<String>,
    pub quarantined: Vec<String>,
    pub detectors: Vec<DetectorStatus>,
    pub at: String,
}

/// What is kept in `<data_dir>/packs/installed.json`: the installed version of each pack.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Installed {
    packs: BTreeMap<String, InstalledPack>,
}

#[derive(Debug, Serialize, Deserialize)]
struct InstalledPack {
    version: String,
    shadow: bool,
}

/// `<data_dir>/packs/claims.json`: for each name an external pack has used, who signed it
/// and the newest version accepted. Another trusted team cannot take the name over, and an
/// old version cannot be slipped back in, unless an admin forces it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Claims {
    packs: BTreeMap<String, Claim>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Claim {
    /// The signing key (hex), or `unsigned` for a pack admitted by `allow_unsigned`.
    signer: String,
    version: String,
}

#[derive(Default)]
struct Inner {
    packs: BTreeMap<String, Entry>,
    refused: BTreeMap<String, PackStatus>,
    retired: VecDeque<Entry>,
}

/// A change of the pack set an admin made here (an upload, a removal, a promotion), for
/// whoever shares the set with other nodes (a cluster). Built-in and watched packs are
/// each node's own and not reported, except a removal.
#[derive(Debug, Clone)]
pub enum PackChange {
    Installed {
        name: String,
        version: String,
        shadow: bool,
        archive: Arc<Vec<u8>>,
        sha256: String,
    },
    Removed {
        name: String,
    },
}

/// Told of each [`PackChange`] after it took effect here.
pub type PackWatcher = Arc<dyn Fn(&PackChange) + Send + Sync>;

pub struct Packs {
    /// Set once (a cluster node shares its set).
    watcher: std::sync::OnceLock<PackWatcher>,
    runtime: Arc<Runtime>,
    config: PacksConfig,
    dir: PathBuf,
    /// Detectors from `[runtime] detector_dirs/detector_paths`, always in the set.
    base: Vec<Arc<Detector>>,
    inner: Mutex<Inner>,
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Packs {
    /// Takes the runtime's current set as the base and loads built-in and installed packs
    /// (the watched directory is read by [`super::watch`]). A pack that fails is refused
    /// with its reason; the others load.
    pub fn start(
        runtime: Arc<Runtime>,
        config: PacksConfig,
        data_dir: &Path,
    ) -> Result<Arc<Packs>, PackError> {
        let dir = data_dir.join("packs");
        std::fs::create_dir_all(dir.join("archives")).map_err(|e| PackError::Io(dir.clone(), e))?;
        let packs = Arc::new(Packs {
            watcher: std::sync::OnceLock::new(),
            base: runtime.detectors().detectors().to_vec(),
            runtime,
            config,
            dir,
            inner: Mutex::default(),
        });
        if packs.config.builtin {
            for b in builtin::BUILTIN {
                let mode = packs
                    .config
                    .builtin_packs
                    .get(b.name)
                    .copied()
                    .unwrap_or_default();
                if mode == BuiltinMode::Disabled {
                    tracing::info!(pack = b.name, "built-in pack disabled in [packs]");
                    continue;
                }
                let shadow = mode == BuiltinMode::Shadow;
                match packs.add(b.files(), None, Some(shadow), Origin::Builtin, false, false) {
                    Ok(s) => tracing::info!(
                        pack = b.name,
                        state = s.state,
                        detectors = s.detectors.len(),
                        "built-in pack loaded"
                    ),
                    Err(e) => tracing::error!(pack = b.name, "built-in pack refused: {e}"),
                }
            }
        }
        for (name, p) in packs.read_installed().packs {
            let path = packs.archive_path(&name, &p.version);
            let result = std::fs::read(&path)
                .map_err(|e| PackError::Io(path.clone(), e))
                .and_then(|bytes| packs.reload_installed(bytes, p.shadow));
            if let Err(e) = result {
                tracing::error!(
                    pack = name,
                    version = p.version,
                    "installed pack refused: {e}"
                );
            }
        }
        Ok(packs)
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Reports every later [`PackChange`] to `watcher` (set once).
    pub fn on_change(&self, watcher: PackWatcher) {
        if self.watcher.set(watcher).is_err() {
            tracing::warn!("the pack set already has a watcher; the second is ignored");
        }
    }

    fn changed(&self, change: PackChange) {
        if let Some(w) = self.watcher.get() {
            w(&change);
        }
    }

    pub fn config(&self) -> &PacksConfig {
        &self.config
    }

    /// Installs an archive: verified, compiled and self-tested, then swapped in (replacing
    /// any other version of the same pack). `persist` keeps it across restarts.
    pub fn install_archive(
        &self,
        bytes: Vec<u8>,
        shadow: Option<bool>,
        origin: Origin,
        persist: bool,
    ) -> Result<PackStatus, PackError> {
        let files = match PackFiles::from_archive(&bytes) {
            Ok(f) => f,
            Err(e) => {
                self.refuse(None, &origin, &e);
                return Err(e);
            }
        };
        self.add(files, Some(bytes), shadow, origin, persist, false)
    }

    /// A pack listed in `installed.json` at start. It was admitted when it was installed
    /// (its claim checked, or an admin's force), so its claim is not checked again but set
    /// from it: an install killed after `claims.json` was written and before
    /// `installed.json` leaves the claim naming a version (or key) that never finished
    /// installing, and checking against it would refuse the pack that was acknowledged and
    /// leave its detectors off. Signature, hashes, compilation and fixtures are checked as
    /// for any install.
    fn reload_installed(&self, bytes: Vec<u8>, shadow: bool) -> Result<PackStatus, PackError> {
        let files = match PackFiles::from_archive(&bytes) {
            Ok(f) => f,
            Err(e) => {
                self.refuse(None, &Origin::Installed, &e);
                return Err(e);
            }
        };
        self.add(
            files,
            Some(bytes),
            Some(shadow),
            Origin::Installed,
            false,
            true,
        )
    }

    /// [`Self::install_archive`] from an admin who accepts a downgrade, or a pack name
    /// passing to another signing key. Built-in names stay reserved.
    pub fn install_archive_forced(
        &self,
        bytes: Vec<u8>,
        shadow: Option<bool>,
    ) -> Result<PackStatus, PackError> {
        let files = match PackFiles::from_archive(&bytes) {
            Ok(f) => f,
            Err(e) => {
                self.refuse(None, &Origin::Installed, &e);
                return Err(e);
            }
        };
        self.add(files, Some(bytes), shadow, Origin::Installed, true, true)
    }

    fn add(
        &self,
        files: PackFiles,
        archive: Option<Vec<u8>>,
        shadow: Option<bool>,
        origin: Origin,
        persist: bool,
        force: bool,
    ) -> Result<PackStatus, PackError> {
        let provenance = if origin == Origin::Builtin {
            Provenance::Builtin
        } else {
            Provenance::External
        };
        // Compiling and self-testing take a while: outside the lock, so listing and
        // evaluation go on meanwhile.
        let loaded = match load::load(&self.runtime, &files, provenance, &self.config, shadow) {
            Ok(l) => l,
            Err(e) => {
                let m = files
                    .get(super::manifest::MANIFEST)
                    .and_then(|b| toml::from_str::<Manifest>(std::str::from_utf8(b).ok()?).ok());
                self.refuse(m.as_ref(), &origin, &e);
                return Err(e);
            }
        };
        let entry = self.entry(loaded, origin, files, archive);
        let mut inner = self.inner.lock().expect("packs lock");
        let claim = match self.claim(&inner, &entry, force) {
            Ok(c) => c,
            Err(e) => {
                drop(inner);
                self.refuse(Some(&entry.manifest), &entry.origin, &e);
                return Err(e);
            }
        };
        let mut next = inner.packs.clone();
        let old = next.insert(entry.manifest.name.clone(), entry.clone());
        let set = match self.compose(&next) {
            Ok(s) => s,
            Err(e) => {
                drop(inner);
                self.refuse(Some(&entry.manifest), &entry.origin, &e);
                return Err(e);
            }
        };
        let recorded = match claim {
            Some(c) => self.record_claim(&entry.manifest.name, c),
            None => Ok(()),
        };
        let kept = recorded.and_then(|()| match persist {
            true => self.persist(&entry),
            false => Ok(()),
        });
        if let Err(e) = kept {
            drop(inner);
            self.refuse(Some(&entry.manifest), &entry.origin, &e);
            return Err(e);
        }
        self.runtime.swap(set);
        tracing::info!(
            pack = entry.manifest.id(),
            shadow = entry.shadow,
            detectors = entry.detectors.len(),
            "pack active"
        );
        inner.packs = next;
        inner.refused.remove(&entry.manifest.id());
        // Promote and demote reload the same version: that replaces it, it retires nothing.
        if let Some(old) = old.filter(|o| o.manifest.version != entry.manifest.version) {
            retire(&mut inner, old);
        }
        drop(inner);
        if let (Origin::Installed, Some((archive, sha256))) = (&entry.origin, &entry.archive) {
            self.changed(PackChange::Installed {
                name: entry.manifest.name.clone(),
                version: entry.manifest.version.clone(),
                shadow: entry.shadow,
                archive: archive.clone(),
                sha256: sha256.clone(),
            });
        }
        Ok(status(&entry, None))
    }

    /// Takes a pack out of the active set (a built-in comes back at the next start unless
    /// disabled in `[packs] builtin_packs`).
    pub fn remove(&self, name: &str) -> Result<PackStatus, PackError> {
        let mut inner = self.inner.lock().expect("packs lock");
        let mut next = inner.packs.clone();
        let Some(old) = next.remove(name) else {
            return Err(PackError::NotFound(format!("no pack named `{name}`")));
        };
        let set = self.compose(&next)?;
        if old.origin == Origin::Installed {
            let mut installed = self.read_installed();
            installed.packs.remove(name);
            self.write_installed(&installed)?;
        }
        self.runtime.swap(set);
        inner.packs = next;
        let s = status(&old, Some("retired"));
        let shared = !matches!(old.origin, Origin::Watched(_));
        retire(&mut inner, old);
        drop(inner);
        tracing::info!(pack = name, "pack removed");
        if shared {
            self.changed(PackChange::Removed {
                name: name.to_string(),
            });
        }
        Ok(s)
    }

    /// Shadow → active (or back): the pack is reloaded (and self-tested again) in the
    /// new mode and swapped in.
    pub fn set_shadow(&self, name: &str, shadow: bool) -> Result<PackStatus, PackError> {
        let current = self
            .inner
            .lock()
            .expect("packs lock")
            .packs
            .get(name)
            .cloned()
            .ok_or_else(|| PackError::NotFound(format!("no pack named `{name}`")))?;
        let persist = current.origin == Origin::Installed;
        self.add(
            (*current.files).clone(),
            current.archive.map(|(a, _)| (*a).clone()),
            Some(shadow),
            current.origin,
            persist,
            false,
        )
    }

    /// Every pack version: active and shadow first, then refused, then retired.
    pub fn list(&self) -> Vec<PackStatus> {
        let inner = self.inner.lock().expect("packs lock");
        let mut out: Vec<PackStatus> = inner.packs.values().map(|e| status(e, None)).collect();
        out.extend(inner.refused.values().cloned());
        out.extend(
            inner
                .retired
                .iter()
                .rev()
                .map(|e| status(e, Some("retired"))),
        );
        out
    }

    /// The archive of `name` at `version`, to share with another host.
    pub fn archive(&self, name: &str, version: &str) -> Option<Arc<Vec<u8>>> {
        {
            let inner = self.inner.lock().expect("packs lock");
            let found = inner
                .packs
                .values()
                .chain(inner.retired.iter())
                .find(|e| e.manifest.name == name && e.manifest.version == version)
                .and_then(|e| e.archive.as_ref().map(|(a, _)| a.clone()));
            if found.is_some() {
                return found;
            }
        }
        if !valid_name(name) || super::manifest::check_path(version).is_err() {
            return None;
        }
        std::fs::read(self.archive_path(name, version))
            .ok()
            .map(Arc::new)
    }

    /// A fresh copy of a running pack's detectors (own counters), for replay.
    pub fn fresh_detectors(&self, name: &str) -> Result<LoadedPack, PackError> {
        let e = self
            .inner
            .lock()
            .expect("packs lock")
            .packs
            .get(name)
            .cloned()
            .ok_or_else(|| PackError::NotFound(format!("no pack named `{name}`")))?;
        let provenance = if e.origin == Origin::Builtin {
            Provenance::Builtin
        } else {
            Provenance::External
        };
        load::load(
            &self.runtime,
            &e.files,
            provenance,
            &self.config,
            Some(false),
        )
    }

    /// Archives of watched packs currently loaded from `path`, with their sha256.
    pub(super) fn watched(&self) -> Vec<(String, PathBuf, String)> {
        let inner = self.inner.lock().expect("packs lock");
        inner
            .packs
            .values()
            .filter_map(|e| match (&e.origin, &e.archive) {
                (Origin::Watched(p), Some((_, sha))) => {
                    Some((e.manifest.name.clone(), p.clone(), sha.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn compose(&self, packs: &BTreeMap<String, Entry>) -> Result<DetectorSet, PackError> {
        let all = self
            .base
            .iter()
            .cloned()
            .chain(packs.values().flat_map(|e| e.detectors.iter().cloned()))
            .collect();
        DetectorSet::new(all).map_err(|e| PackError::Conflict(e.to_string()))
    }

    fn entry(
        &self,
        l: LoadedPack,
        origin: Origin,
        files: PackFiles,
        archive: Option<Vec<u8>>,
    ) -> Entry {
        Entry {
            archive: archive.map(|a| {
                let sha = sha256_hex(&a);
                (Arc::new(a), sha)
            }),
            manifest: l.manifest,
            origin,
            trust: l.trust,
            shadow: l.shadow,
            detectors: l.detectors,
            disabled: l.disabled,
            fixtures_passed: l.fixtures_passed,
            files: Arc::new(files),
            at: now(),
        }
    }

    fn refuse(&self, m: Option<&Manifest>, origin: &Origin, e: &PackError) {
        let (name, version) = m
            .map(|m| (m.name.clone(), m.version.clone()))
            .unwrap_or_else(|| ("?".into(), "?".into()));
        tracing::warn!(pack = name, version, "pack refused: {e}");
        let s = PackStatus {
            name: name.clone(),
            version: version.clone(),
            state: "refused",
            reason: Some(e.to_string()),
            origin: origin.clone(),
            trust: None,
            wit: m.map(|m| m.wit.clone()).unwrap_or_default(),
            description: m.map(|m| m.description.clone()).unwrap_or_default(),
            owners: m.map(|m| m.owners.clone()).unwrap_or_default(),
            sha256: None,
            fixtures_passed: 0,
            disabled: vec![],
            quarantined: vec![],
            detectors: vec![],
            at: now(),
        };
        let mut inner = self.inner.lock().expect("packs lock");
        inner.refused.insert(format!("{name}@{version}"), s);
        // Bounded: a watched directory full of junk must not grow this without end.
        while inner.refused.len() > 64 {
            let first = inner.refused.keys().next().cloned().expect("non-empty");
            inner.refused.remove(&first);
        }
    }

    /// Checks an external pack against its name's claim; returns the claim to record once
    /// the pack is in (None for built-ins, which the release itself vouches for).
    fn claim(&self, inner: &Inner, e: &Entry, force: bool) -> Result<Option<Claim>, PackError> {
        if e.origin == Origin::Builtin {
            return Ok(None);
        }
        let (name, version) = (&e.manifest.name, &e.manifest.version);
        if builtin::get(name).is_some() {
            return Err(PackError::Refused(format!(
                "the name `{name}` belongs to a built-in pack: give this pack a name of its own"
            )));
        }
        let signer = match &e.trust {
            Trust::Signed { key, .. } => key.clone(),
            Trust::Unverified { .. } | Trust::Builtin => "unsigned".to_string(),
        };
        let claims = self.read_claims()?;
        let old = claims.packs.get(name);
        let newest = old
            .map(|c| c.version.as_str())
            .into_iter()
            .chain(inner.packs.get(name).map(|p| p.manifest.version.as_str()))
            .max_by(|a, b| Manifest::version_cmp(a, b));
        if !force {
            if let Some(c) = old.filter(|c| c.signer != signer) {
                return Err(PackError::Refused(format!(
                    "pack `{name}` belongs to {}, which first installed it; this archive is \
                     signed by {} (an admin may hand the name over with force)",
                    self.signer_name(&c.signer),
                    self.signer_name(&signer)
                )));
            }
            if let Some(v) = newest.filter(|v| Manifest::version_cmp(version, v).is_lt()) {
                return Err(PackError::Refused(format!(
                    "`{name}` {version} is older than {v}, already accepted: a downgrade needs \
                     an admin's force"
                )));
            }
        }
        let version = match newest {
            Some(v) if !force && Manifest::version_cmp(v, version).is_gt() => v.to_string(),
            _ => version.clone(),
        };
        Ok(Some(Claim { signer, version }))
    }

    /// `key `team-b` (3f2a…)` for a trusted key, the hex prefix for another.
    fn signer_name(&self, signer: &str) -> String {
        if signer == "unsigned" {
            return "no signature".into();
        }
        let short = &signer[..signer.len().min(12)];
        match self.config.trusted_keys.iter().find(|k| k.key == signer) {
            Some(k) => format!("key `{}` ({short}…)", k.name),
            None => format!("key {short}…"),
        }
    }

    fn read_claims(&self) -> Result<Claims, PackError> {
        let path = self.dir.join("claims.json");
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                PackError::Refused(format!(
                    "{}: unreadable ({e}); pack names cannot be checked",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Claims::default()),
            Err(e) => Err(PackError::Io(path, e)),
        }
    }

    fn record_claim(&self, name: &str, claim: Claim) -> Result<(), PackError> {
        let mut claims = self.read_claims()?;
        if claims.packs.get(name) == Some(&claim) {
            return Ok(());
        }
        claims.packs.insert(name.to_string(), claim);
        write_atomic(
            &self.dir.join("claims.json"),
            &serde_json::to_vec_pretty(&claims).expect("json"),
        )
    }

    fn archive_path(&self, name: &str, version: &str) -> PathBuf {
        self.dir
            .join("archives")
            .join(format!("{name}@{version}.plpack"))
    }

    fn persist(&self, e: &Entry) -> Result<(), PackError> {
        let (bytes, _) = e.archive.as_ref().expect("installed packs have an archive");
        let path = self.archive_path(&e.manifest.name, &e.manifest.version);
        write_atomic(&path, bytes)?;
        let mut installed = self.read_installed();
        installed.packs.insert(
            e.manifest.name.clone(),
            InstalledPack {
                version: e.manifest.version.clone(),
                shadow: e.shadow,
            },
        );
        self.write_installed(&installed)
    }

    fn read_installed(&self) -> Installed {
        std::fs::read(self.dir.join("installed.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn write_installed(&self, i: &Installed) -> Result<(), PackError> {
        write_atomic(
            &self.dir.join("installed.json"),
            &serde_json::to_vec_pretty(i).expect("json"),
        )
    }
}

fn retire(inner: &mut Inner, e: Entry) {
    inner.retired.push_back(e);
    while inner.retired.len() > RETIRED_KEPT {
        inner.retired.pop_front();
    }
}

fn status(e: &Entry, state: Option<&'static str>) -> PackStatus {
    let detectors: Vec<DetectorStatus> = e.detectors.iter().map(|d| d.status()).collect();
    PackStatus {
        name: e.manifest.name.clone(),
        version: e.manifest.version.clone(),
        state: state.unwrap_or(if e.shadow { "shadow" } else { "active" }),
        reason: None,
        origin: e.origin.clone(),
        trust: Some(e.trust.clone()),
        wit: e.manifest.wit.clone(),
        description: e.manifest.description.clone(),
        owners: e.manifest.owners.clone(),
        sha256: e.archive.as_ref().map(|(_, s)| s.clone()),
        fixtures_passed: e.fixtures_passed,
        disabled: e.disabled.clone(),
        quarantined: detectors
            .iter()
            .filter(|d| d.state == "quarantined")
            .map(|d| d.name.clone())
            .collect(),
        detectors,
        at: e.at.clone(),
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PackError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| PackError::Io(tmp.clone(), e))?;
    std::fs::rename(&tmp, path).map_err(|e| PackError::Io(path.into(), e))
}
