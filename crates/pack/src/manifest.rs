//! `pack.toml`: what a pack is (name, version, the WIT version it targets, owners), its
//! detectors with the sha256 of each component, config defaults, and the sha256 of every
//! other file. The signature covers these exact bytes, so it pins every file of the pack.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::PackError;

/// The manifest's file name inside a pack.
pub const MANIFEST: &str = "pack.toml";
/// The signature's file name inside a pack (not covered by the manifest).
pub const SIGNATURE: &str = "pack.sig";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Lowercase letters, digits and `-`; a pack's identity across versions.
    pub name: String,
    pub version: String,
    /// The `plumbline:detector` WIT version the components are built against.
    pub wit: String,
    #[serde(default)]
    pub description: String,
    /// Who to ask about this pack (emails, team names).
    #[serde(default)]
    pub owners: Vec<String>,
    /// Installed as shadow unless the install says otherwise: findings recorded, no alerts.
    #[serde(default)]
    pub shadow: bool,
    pub detectors: Vec<ManifestDetector>,
    /// sha256 of every other file (fixtures), by path; written by `plumbline pack build`.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestDetector {
    /// The name the component declares in `info()`; a mismatch refuses the pack.
    pub name: String,
    /// Path of the component inside the pack.
    pub component: String,
    /// sha256 of the component (hex); written by `plumbline pack build`.
    #[serde(default)]
    pub sha256: String,
    /// Directory of this detector's fixtures inside the pack (`*.json`).
    pub fixtures: String,
    /// Defaults for the config keys the detector declares ([runtime.detectors] wins).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Config defaults kept as files of the pack: key → a folder; the value is the text of
    /// the pinned files under it, in path order, as one multi-document text (a `---` line
    /// between files). A Sigma pack keeps its rules so (`rules = "rules"`): one reviewable
    /// file a rule, not one long string.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config_files: BTreeMap<String, String>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Manifest, PackError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| PackError::Manifest("pack.toml is not UTF-8".into()))?;
        let m: Manifest =
            toml::from_str(text).map_err(|e| PackError::Manifest(e.message().to_string()))?;
        m.check()?;
        Ok(m)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        toml::to_string_pretty(self)
            .expect("a manifest serialises")
            .into_bytes()
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Orders two versions of a pack by semver precedence: dot-separated parts compared
    /// numerically when both are numbers (so `10.0.0` > `9.9.9`), a pre-release (`-rc.1`)
    /// before its release, build metadata (`+…`) ignored.
    pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        fn parts(v: &str) -> (&str, Option<&str>) {
            let v = v.split('+').next().unwrap_or(v);
            match v.split_once('-') {
                Some((core, pre)) => (core, Some(pre)),
                None => (v, None),
            }
        }
        fn dotted(a: &str, b: &str) -> Ordering {
            let (mut x, mut y) = (a.split('.'), b.split('.'));
            loop {
                match (x.next(), y.next()) {
                    (None, None) => return Ordering::Equal,
                    (None, Some(_)) => return Ordering::Less,
                    (Some(_), None) => return Ordering::Greater,
                    (Some(p), Some(q)) => {
                        let o = match (p.parse::<u64>(), q.parse::<u64>()) {
                            (Ok(m), Ok(n)) => m.cmp(&n),
                            // Numeric parts sort before alphanumeric ones (semver 11.4.3).
                            (Ok(_), Err(_)) => Ordering::Less,
                            (Err(_), Ok(_)) => Ordering::Greater,
                            (Err(_), Err(_)) => p.cmp(q),
                        };
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                }
            }
        }
        let ((core_a, pre_a), (core_b, pre_b)) = (parts(a), parts(b));
        dotted(core_a, core_b).then_with(|| match (pre_a, pre_b) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(p), Some(q)) => dotted(p, q),
        })
    }

    fn check(&self) -> Result<(), PackError> {
        let bad = |m: String| Err(PackError::Manifest(m));
        if !valid_name(&self.name) {
            return bad(format!(
                "name `{}`: use 1-64 lowercase letters, digits and `-`",
                self.name
            ));
        }
        if self.version.is_empty()
            || self.version.len() > 64
            || !self
                .version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c))
        {
            return bad(format!(
                "version `{}`: use letters, digits, `.`, `-`, `+`",
                self.version
            ));
        }
        if self.detectors.is_empty() {
            return bad("a pack needs at least one [[detectors]] entry".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for d in &self.detectors {
            if d.name.is_empty() {
                return bad(format!(
                    "detector `{}`: name (what its info() declares) is required",
                    d.component
                ));
            }
            if !names.insert(&d.name) {
                return bad(format!("detector `{}` is listed twice", d.name));
            }
            check_path(&d.component)?;
            check_path(&d.fixtures)?;
            for (key, folder) in &d.config_files {
                check_path(folder)?;
                if d.config.contains_key(key) {
                    return bad(format!(
                        "detector `{}`: config key `{key}` is given both in config and in config_files",
                        d.name
                    ));
                }
            }
        }
        for p in self.files.keys() {
            check_path(p)?;
        }
        Ok(())
    }

    /// The config defaults of `d`: its `config`, and each `config_files` folder's pinned
    /// files joined. A folder with no pinned file is refused (the key would silently be
    /// empty).
    pub fn config_of(
        &self,
        d: &ManifestDetector,
        files: &crate::PackFiles,
    ) -> Result<BTreeMap<String, String>, PackError> {
        let mut config = d.config.clone();
        for (key, folder) in &d.config_files {
            let texts: Vec<String> = self
                .files
                .keys()
                .filter(|p| in_folder(p, folder))
                .filter_map(|p| files.get(p))
                .map(|b| {
                    String::from_utf8_lossy(b)
                        .trim_end_matches('\n')
                        .to_string()
                        + "\n"
                })
                .collect();
            if texts.is_empty() {
                return Err(PackError::Manifest(format!(
                    "detector `{}`: config_files `{key}` names `{folder}`, which holds no pinned file",
                    d.name
                )));
            }
            config.insert(key.clone(), texts.join("---\n"));
        }
        Ok(config)
    }

    /// Fixture files of `d`: the pinned `*.json` files under its fixtures directory.
    pub fn fixtures_of<'a>(&'a self, d: &'a ManifestDetector) -> impl Iterator<Item = &'a str> {
        self.files
            .keys()
            .filter(move |p| in_folder(p, &d.fixtures) && p.ends_with(".json"))
            .map(String::as_str)
    }
}

/// Whether the pack path `path` lies under the pack folder `folder`.
pub fn in_folder(path: &str, folder: &str) -> bool {
    path.strip_prefix(folder.trim_end_matches('/'))
        .is_some_and(|rest| rest.starts_with('/'))
}

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
}

/// A relative path inside the pack: `/`-separated, no `..`, no empty or hidden parts.
pub fn check_path(p: &str) -> Result<(), PackError> {
    let ok = !p.is_empty()
        && p.len() <= 255
        && !p.starts_with('/')
        && !p.contains('\\')
        && p.split('/')
            .all(|part| !part.is_empty() && part != "." && part != ".." && !part.starts_with('.'));
    if ok {
        Ok(())
    } else {
        Err(PackError::Manifest(format!(
            "path `{p}` must be relative, inside the pack"
        )))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_order_by_semver_precedence() {
        use std::cmp::Ordering::*;
        let cmp = super::Manifest::version_cmp;
        assert_eq!(cmp("0.0.1", "9.9.9"), Less);
        assert_eq!(cmp("10.0.0", "9.9.9"), Greater);
        assert_eq!(cmp("1.2.0", "1.2.0+build.7"), Equal);
        assert_eq!(cmp("1.2.0-rc.1", "1.2.0"), Less);
        assert_eq!(cmp("1.2.0-rc.2", "1.2.0-rc.10"), Less);
        assert_eq!(cmp("1.2.0-alpha", "1.2.0-1"), Greater);
        assert_eq!(cmp("1.2", "1.2.0"), Less);
    }

    use super::*;

    const GOOD: &str = r#"
name = "acme-exfil"
version = "1.0.0"
wit = "0.1.0"
owners = ["secops@acme.com"]

[[detectors]]
name = "acme.big-export"
component = "components/big.wasm"
sha256 = "00"
fixtures = "fixtures/big"
config = { min_rows = "5000" }

[files]
"fixtures/big/a.json" = "11"
"fixtures/other/b.json" = "22"
"#;

    #[test]
    fn parses_and_lists_fixtures_per_detector() {
        let m = Manifest::parse(GOOD.as_bytes()).unwrap();
        assert_eq!(m.id(), "acme-exfil@1.0.0");
        let d = &m.detectors[0];
        assert_eq!(
            m.fixtures_of(d).collect::<Vec<_>>(),
            ["fixtures/big/a.json"]
        );
        assert_eq!(Manifest::parse(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn refuses_paths_outside_the_pack_and_bad_names() {
        let escape = GOOD.replace("components/big.wasm", "../etc/big.wasm");
        assert!(Manifest::parse(escape.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("inside the pack"));
        let upper = GOOD.replace("acme-exfil", "Acme");
        assert!(Manifest::parse(upper.as_bytes()).is_err());
        let unknown = format!("{GOOD}\nsurprise = 1\n").replace("[files]", "x = 1\n[files]");
        assert!(Manifest::parse(unknown.as_bytes()).is_err());
    }

    #[test]
    fn config_files_are_joined_in_path_order() {
        let text = GOOD
            .replace(
                "config = { min_rows = \"5000\" }",
                "config = { min_rows = \"5000\" }\nconfig_files = { rules = \"rules\" }",
            )
            .replace(
                "[files]",
                "[files]\n\"rules/b.yml\" = \"33\"\n\"rules/a.yml\" = \"44\"",
            );
        let m = Manifest::parse(text.as_bytes()).unwrap();
        let mut files = crate::PackFiles::default();
        files
            .files
            .insert("rules/a.yml".into(), b"title: a\n".to_vec());
        files
            .files
            .insert("rules/b.yml".into(), b"title: b".to_vec());
        let c = m.config_of(&m.detectors[0], &files).unwrap();
        assert_eq!(c["rules"], "title: a\n---\ntitle: b\n");
        assert_eq!(c["min_rows"], "5000");
        assert_eq!(Manifest::parse(&m.to_bytes()).unwrap(), m);

        // A folder with nothing pinned under it, a key given twice, a path outside.
        let empty = text.replace("\"rules/b.yml\" = \"33\"\n\"rules/a.yml\" = \"44\"", "");
        let m = Manifest::parse(empty.as_bytes()).unwrap();
        let err = m
            .config_of(&m.detectors[0], &files)
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds no pinned file"), "{err}");
        let twice = text.replace("rules = \"rules\"", "min_rows = \"rules\"");
        assert!(Manifest::parse(twice.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("both in config and in config_files"));
        let outside = text.replace("rules = \"rules\"", "rules = \"../rules\"");
        assert!(Manifest::parse(outside.as_bytes()).is_err());
    }
}
