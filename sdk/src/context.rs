//! What a detector may ask of its host: its configuration, the clock, and a log.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::str::FromStr;

use crate::types::{AnalyzeError, Info};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// The host, as seen by a detector during one call.
pub struct Context {
    backend: Backend,
}

enum Backend {
    /// Inside the WASM host: the imports of the `detector` world.
    Host,
    /// The native harness: values from the fixture, logs kept for the test to read.
    Native {
        config: BTreeMap<String, String>,
        now: i64,
        logs: RefCell<Vec<(Level, String)>>,
    },
}

impl Context {
    #[doc(hidden)]
    pub fn host() -> Self {
        Context {
            backend: Backend::Host,
        }
    }

    /// A native context: `info`'s defaults overlaid with `overrides`, and a fixed clock.
    pub fn native(info: &Info, overrides: &BTreeMap<String, String>, now: i64) -> Self {
        let mut config: BTreeMap<String, String> = info
            .config
            .iter()
            .map(|k| (k.name.clone(), k.default_value.clone()))
            .collect();
        config.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        Context {
            backend: Backend::Native {
                config,
                now,
                logs: RefCell::new(Vec::new()),
            },
        }
    }

    /// A configuration value: the host's override, else the default declared in `info()`.
    pub fn config(&self, key: &str) -> Option<String> {
        match &self.backend {
            Backend::Host => crate::bindings::plumbline::detector::config::get(key),
            Backend::Native { config, .. } => config.get(key).cloned(),
        }
    }

    /// A configuration value parsed as `T`; the error names the key and the value.
    pub fn config_parsed<T: FromStr>(&self, key: &str) -> Result<T, AnalyzeError> {
        let raw = self
            .config(key)
            .ok_or_else(|| AnalyzeError::new(format!("config key `{key}` is not set")))?;
        raw.trim().parse().map_err(|_| {
            AnalyzeError::new(format!(
                "config key `{key}`: `{raw}` is not a valid {}",
                std::any::type_name::<T>()
            ))
        })
    }

    /// A comma-separated list (empty items dropped).
    pub fn config_list(&self, key: &str) -> Vec<String> {
        self.config(key)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    /// Unix nanoseconds, UTC.
    pub fn now(&self) -> i64 {
        match &self.backend {
            Backend::Host => crate::bindings::plumbline::detector::clock::now(),
            Backend::Native { now, .. } => *now,
        }
    }

    pub fn log(&self, level: Level, message: &str) {
        match &self.backend {
            Backend::Host => {
                use crate::bindings::plumbline::detector::log;
                let level = match level {
                    Level::Debug => log::Level::Debug,
                    Level::Info => log::Level::Info,
                    Level::Warn => log::Level::Warn,
                    Level::Error => log::Level::Error,
                };
                log::log(level, message)
            }
            Backend::Native { logs, .. } => logs.borrow_mut().push((level, message.to_string())),
        }
    }

    /// Lines logged so far (native harness only; empty inside the host).
    pub fn logs(&self) -> Vec<(Level, String)> {
        match &self.backend {
            Backend::Host => Vec::new(),
            Backend::Native { logs, .. } => logs.borrow().clone(),
        }
    }
}
