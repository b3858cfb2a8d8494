//! What a detector may ask of its host: its configuration, the clock, and a log.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::str::FromStr;

use plumbline_contract::config::{self, ConfigSource, FromConfig};
use plumbline_contract::{AnalyzeError, Info};

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
    /// Typed settings parsed so far ([`Context::settings`]), by type.
    settings: RefCell<BTreeMap<TypeId, Rc<dyn Any>>>,
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
            settings: RefCell::default(),
        }
    }

    /// A native context: `info`'s defaults overlaid with `overrides`, and a fixed clock.
    pub fn native(info: &Info, overrides: &BTreeMap<String, String>, now: i64) -> Self {
        let config = config::with_defaults(info, overrides);
        Context {
            backend: Backend::Native {
                config,
                now,
                logs: RefCell::new(Vec::new()),
            },
            settings: RefCell::default(),
        }
    }

    /// A configuration value: the host's override, else the default declared in `info()`.
    pub fn config(&self, key: &str) -> Option<String> {
        match &self.backend {
            Backend::Host => crate::bindings::plumbline::detector::config::get(key),
            Backend::Native { config, .. } => config.get(key).cloned(),
        }
    }

    /// A configuration value parsed as `T` (trimmed); the error names the key and the value.
    pub fn config_parsed<T: FromStr>(&self, key: &str) -> Result<T, AnalyzeError> {
        config::parse(key, self.config(key))
    }

    /// A comma-separated list (items trimmed, empty items dropped).
    ///
    /// Splits the value on every call: a detector that reads a long list (the destination
    /// classes hold ~85 domains) more than once parses it once with [`Context::settings`].
    pub fn config_list(&self, key: &str) -> Vec<String> {
        config::list(self.config(key).as_deref().unwrap_or(""))
    }

    /// The detector's typed settings `T`, parsed from the configuration the first time they
    /// are asked for and shared afterwards (the configuration of a detector instance never
    /// changes; the host gives every call a fresh instance, the native harness a fresh
    /// context per fixture). A parse error is returned, not cached.
    ///
    /// ```ignore
    /// let s = cx.settings::<Settings>()?;        // Settings: FromConfig
    /// let lists = cx.settings::<Destinations>()?; // the destination classes, split once
    /// ```
    pub fn settings<T: FromConfig>(&self) -> Result<Rc<T>, AnalyzeError> {
        let id = TypeId::of::<T>();
        if let Some(v) = self.settings.borrow().get(&id) {
            if let Ok(t) = Rc::clone(v).downcast::<T>() {
                return Ok(t);
            }
        }
        let t = Rc::new(T::from_config(self)?);
        self.settings
            .borrow_mut()
            .insert(id, Rc::clone(&t) as Rc<dyn Any>);
        Ok(t)
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

impl ConfigSource for Context {
    fn get(&self, key: &str) -> Option<String> {
        self.config(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rows(u64);

    thread_local!(static PARSES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });

    impl FromConfig for Rows {
        fn from_config(cfg: &dyn ConfigSource) -> Result<Self, AnalyzeError> {
            PARSES.with(|p| p.set(p.get() + 1));
            Ok(Rows(cfg.parsed("min_rows")?))
        }
    }

    #[test]
    fn settings_are_parsed_once_per_context() {
        let info = Info::new("t.x", "1", "").config("min_rows", "10", "");
        let cx = Context::native(&info, &BTreeMap::new(), 0);
        assert_eq!(cx.settings::<Rows>().unwrap().0, 10);
        assert_eq!(cx.settings::<Rows>().unwrap().0, 10);
        assert_eq!(PARSES.with(|p| p.get()), 1);
        let bad = [("min_rows".to_string(), "many".to_string())].into();
        let cx = Context::native(&info, &bad, 0);
        assert!(cx
            .settings::<Rows>()
            .err()
            .unwrap()
            .message
            .contains("`many`"));
        assert_eq!(cx.config_list("min_rows"), ["many"]);
    }
}
