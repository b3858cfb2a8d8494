//! Reading a detector's configuration: the WIT `config.get(key)` (the host's value, else
//! the default declared in `info()`), and the one way its text becomes typed values —
//! numbers parsed after trimming, lists split on commas.
//!
//! [`FromConfig`] is a detector's (or a helper's) typed configuration: parsed once from a
//! [`ConfigSource`], then read as plain fields. The SDK's `Context` is a `ConfigSource`
//! and caches each `FromConfig` type it is asked for (`cx.settings::<T>()`).

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::types::{AnalyzeError, Info};

/// Where configuration values come from.
pub trait ConfigSource {
    /// The value of `key`, if set (the host's value, else the declared default).
    fn get(&self, key: &str) -> Option<String>;
}

impl ConfigSource for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        BTreeMap::get(self, key).cloned()
    }
}

impl<C: ConfigSource + ?Sized> ConfigSource for &C {
    fn get(&self, key: &str) -> Option<String> {
        (**self).get(key)
    }
}

impl dyn ConfigSource + '_ {
    /// The value of `key` parsed as `T` (see [`parse`]).
    pub fn parsed<T: FromStr>(&self, key: &str) -> Result<T, AnalyzeError> {
        parse(key, self.get(key))
    }

    /// The value of `key` as a comma-separated list (see [`list`]).
    pub fn list(&self, key: &str) -> Vec<String> {
        list(self.get(key).as_deref().unwrap_or(""))
    }
}

/// A value parsed as `T` after trimming; the error names the key and the value.
pub fn parse<T: FromStr>(key: &str, value: Option<String>) -> Result<T, AnalyzeError> {
    let raw = value.ok_or_else(|| AnalyzeError::new(format!("config key `{key}` is not set")))?;
    raw.trim().parse().map_err(|_| {
        AnalyzeError::new(format!(
            "config key `{key}`: `{raw}` is not a valid {}",
            std::any::type_name::<T>()
        ))
    })
}

/// A comma-separated list: items trimmed, empty items dropped.
pub fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Checks configuration overrides (a fixture's `config`, a pack's): every key must be
/// declared in `info()`.
pub fn check_overrides<'a>(
    info: &Info,
    keys: impl IntoIterator<Item = &'a str>,
) -> Result<(), String> {
    for k in keys {
        if !info.config.iter().any(|d| d.name == k) {
            return Err(format!(
                "config key `{k}` is not declared by detector `{}`",
                info.name
            ));
        }
    }
    Ok(())
}

/// The configuration a detector sees: the defaults declared in `info()`, overlaid with
/// `overrides`.
pub fn with_defaults(
    info: &Info,
    overrides: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut config: BTreeMap<String, String> = info
        .config
        .iter()
        .map(|k| (k.name.clone(), k.default_value.clone()))
        .collect();
    config.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
    config
}

/// A typed configuration, parsed once per detector instance instead of on every use.
///
/// ```
/// use plumbline_contract::{AnalyzeError, ConfigSource, FromConfig};
///
/// struct Settings { min_rows: u64, known_apps: Vec<String> }
///
/// impl FromConfig for Settings {
///     fn from_config(cfg: &dyn ConfigSource) -> Result<Self, AnalyzeError> {
///         Ok(Settings { min_rows: cfg.parsed("min_rows")?, known_apps: cfg.list("known_apps") })
///     }
/// }
/// ```
pub trait FromConfig: Sized + 'static {
    fn from_config(cfg: &dyn ConfigSource) -> Result<Self, AnalyzeError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Settings {
        min_rows: u64,
        names: Vec<String>,
    }

    impl FromConfig for Settings {
        fn from_config(cfg: &dyn ConfigSource) -> Result<Self, AnalyzeError> {
            Ok(Settings {
                min_rows: cfg.parsed("min_rows")?,
                names: cfg.list("names"),
            })
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn typed_values_and_lists() {
        let m = map(&[("min_rows", " 10 "), ("names", "a, b,,c ,")]);
        let s = Settings::from_config(&m).unwrap();
        assert_eq!(s.min_rows, 10);
        assert_eq!(s.names, ["a", "b", "c"]);
        assert!(list("").is_empty());
    }

    #[test]
    fn overrides_must_be_declared() {
        let info = Info::new("t.x", "1", "").config("min_rows", "10", "");
        assert!(check_overrides(&info, ["min_rows"]).is_ok());
        assert_eq!(
            check_overrides(&info, ["min_rowz"]).unwrap_err(),
            "config key `min_rowz` is not declared by detector `t.x`"
        );
        let c = with_defaults(&info, &map(&[("min_rows", "5")]));
        assert_eq!(c["min_rows"], "5");
        assert_eq!(with_defaults(&info, &map(&[]))["min_rows"], "10");
    }

    #[test]
    fn errors_name_the_key_and_value() {
        let m = map(&[("min_rows", "lots")]);
        let err = Settings::from_config(&m).err().unwrap().message;
        assert!(
            err.contains("`min_rows`") && err.contains("`lots`"),
            "{err}"
        );
        let err = Settings::from_config(&map(&[])).err().unwrap().message;
        assert_eq!(err, "config key `min_rows` is not set");
    }
}
