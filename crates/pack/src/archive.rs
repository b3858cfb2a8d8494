//! A pack as one file (`.plpack`): a magic line, then each file as (path length, path,
//! data length, data), big-endian. No compression and no metadata (owners, modes, times),
//! so the same files always make the same bytes. Integrity does not rest on this format:
//! the signed manifest pins every file by sha256.

use std::collections::BTreeMap;
use std::path::Path;

use super::manifest::{check_path, MANIFEST, SIGNATURE};
use super::PackError;

const MAGIC: &[u8] = b"plumbline-pack 1\n";
/// Most bytes a pack may hold, all files together.
pub const MAX_PACK_BYTES: usize = 64 << 20;
const MAX_FILES: usize = 10_000;

/// The files of a pack by path (`/`-separated, relative).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PackFiles {
    pub files: BTreeMap<String, Vec<u8>>,
}

impl PackFiles {
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// Every file under `dir` (hidden files and directories skipped).
    pub fn from_dir(dir: &Path) -> Result<PackFiles, PackError> {
        let mut out = PackFiles::default();
        let mut total = 0usize;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = std::fs::read_dir(&d).map_err(|e| PackError::Io(d.clone(), e))?;
            for e in entries {
                let e = e.map_err(|e| PackError::Io(d.clone(), e))?;
                let path = e.path();
                if e.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let rel = path
                    .strip_prefix(dir)
                    .expect("below dir")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                let bytes = std::fs::read(&path).map_err(|e| PackError::Io(path.clone(), e))?;
                total += bytes.len();
                if total > MAX_PACK_BYTES {
                    return Err(PackError::Archive(format!(
                        "{} holds more than {} MiB",
                        dir.display(),
                        MAX_PACK_BYTES >> 20
                    )));
                }
                out.files.insert(rel, bytes);
            }
        }
        Ok(out)
    }

    /// The archive: manifest first, then the signature, then the rest by path.
    pub fn to_archive(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let first = [MANIFEST, SIGNATURE];
        let ordered = first
            .iter()
            .filter_map(|p| self.files.get_key_value(*p))
            .chain(
                self.files
                    .iter()
                    .filter(|(p, _)| !first.contains(&p.as_str())),
            );
        for (path, data) in ordered {
            out.extend_from_slice(&(path.len() as u16).to_be_bytes());
            out.extend_from_slice(path.as_bytes());
            out.extend_from_slice(&(data.len() as u64).to_be_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    pub fn from_archive(bytes: &[u8]) -> Result<PackFiles, PackError> {
        let bad = |m: &str| PackError::Archive(m.to_string());
        if bytes.len() > MAX_PACK_BYTES + 1024 * 1024 {
            return Err(bad("larger than the pack size limit"));
        }
        let mut rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| bad("not a Plumbline pack archive (bad magic)"))?;
        let mut out = PackFiles::default();
        while !rest.is_empty() {
            let (len, r) = take::<2>(rest).ok_or_else(|| bad("truncated path length"))?;
            let len = u16::from_be_bytes(len) as usize;
            let path = r.get(..len).ok_or_else(|| bad("truncated path"))?;
            let path = std::str::from_utf8(path)
                .map_err(|_| bad("a path is not UTF-8"))?
                .to_string();
            check_path(&path).map_err(|e| PackError::Archive(e.to_string()))?;
            let (n, r) = take::<8>(&r[len..]).ok_or_else(|| bad("truncated data length"))?;
            let n = u64::from_be_bytes(n) as usize;
            let data = r.get(..n).ok_or_else(|| bad("truncated file data"))?;
            if out.files.insert(path.clone(), data.to_vec()).is_some() {
                return Err(PackError::Archive(format!("`{path}` appears twice")));
            }
            if out.files.len() > MAX_FILES {
                return Err(bad("too many files"));
            }
            rest = &r[n..];
        }
        Ok(out)
    }

    /// Writes the files below `dir` (which must not exist yet or be empty).
    pub fn write_dir(&self, dir: &Path) -> Result<(), PackError> {
        for (path, data) in &self.files {
            let to = dir.join(path);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|e| PackError::Io(parent.into(), e))?;
            }
            std::fs::write(&to, data).map_err(|e| PackError::Io(to.clone(), e))?;
        }
        Ok(())
    }
}

fn take<const N: usize>(b: &[u8]) -> Option<([u8; N], &[u8])> {
    let head: [u8; N] = b.get(..N)?.try_into().ok()?;
    Some((head, &b[N..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> PackFiles {
        let mut f = PackFiles::default();
        f.files.insert("z/last.json".into(), b"{}".to_vec());
        f.files.insert(MANIFEST.into(), b"name = 'x'".to_vec());
        f.files
            .insert("components/a.wasm".into(), vec![0, 1, 2, 255]);
        f
    }

    #[test]
    fn round_trips_with_the_manifest_first() {
        let a = files().to_archive();
        assert!(a[MAGIC.len() + 2..].starts_with(MANIFEST.as_bytes()));
        assert_eq!(PackFiles::from_archive(&a).unwrap(), files());
        assert_eq!(files().to_archive(), a, "same files, same bytes");
    }

    #[test]
    fn refuses_truncation_bad_magic_and_escaping_paths() {
        let a = files().to_archive();
        assert!(PackFiles::from_archive(&a[..a.len() - 1]).is_err());
        assert!(PackFiles::from_archive(b"PK\x03\x04").is_err());
        let mut evil = PackFiles::default();
        evil.files.insert("../x".into(), vec![]);
        assert!(PackFiles::from_archive(&evil.to_archive())
            .unwrap_err()
            .to_string()
            .contains("inside the pack"));
    }
}
