//! What a detector may ask of its host: its configuration, the clock, a log, and (0.2.0)
//! the host's language model.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::str::FromStr;

use plumbline_contract::config::{self, ConfigSource, FromConfig};
use plumbline_contract::{AnalyzeError, Event, Info, ModelAnswer, Question};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

thread_local! {
    /// What `prepare` read and parsed ([`crate::IncrementalDetector::prepare`]). The host
    /// snapshots the component after `prepare`, so in the host every call's context starts
    /// with it; the snapshot is only used under the configuration it was taken with.
    static PREPARED: RefCell<Rc<Memo>> = RefCell::default();
}

/// What a context has read and parsed of its configuration (which never changes for a
/// detector instance).
#[derive(Default, Clone)]
struct Memo {
    values: BTreeMap<String, Option<String>>,
    lists: BTreeMap<String, Rc<[String]>>,
    /// [`Context::config_parsed`], by key and type.
    parsed: BTreeMap<(String, TypeId), Rc<dyn Any>>,
    /// [`Context::settings`], by type.
    settings: BTreeMap<TypeId, Rc<dyn Any>>,
}

/// The host, as seen by a detector during one call.
pub struct Context {
    backend: Backend,
    /// What `prepare` left (in the host; empty natively and without a snapshot).
    prepared: Rc<Memo>,
    /// What this context read and parsed itself.
    memo: RefCell<Memo>,
    /// An incremental (0.2.0) call's window and history.
    incremental: Option<Incremental>,
}

/// The host's imports, as plain functions. Filled in by the register macros with the
/// bindings of the contract version the detector targets, so the SDK's own code links
/// neither version's imports (sdk/wit-v1/src/lib.rs says why that matters).
#[doc(hidden)]
pub struct HostImports {
    pub config: fn(&str) -> Option<String>,
    pub now: fn() -> i64,
    pub log: fn(Level, &str),
    /// 0.2.0's `model.judge`; none under 0.1.0.
    pub judge: Option<fn(&Question) -> ModelAnswer>,
}

/// What answers [`Context::judge`] in the native harness.
pub type NativeModel = Rc<dyn Fn(&Question) -> ModelAnswer>;

/// What an incremental call is told about its trajectory (`plumbline:detector@0.2.0`'s
/// `window`): never its events — the new ones are `observe`'s argument, the others are
/// read through [`Context::history`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub id: String,
    pub kind: plumbline_contract::TrajectoryKind,
    pub key: String,
    /// First and last event time, unix nanoseconds.
    pub start: i64,
    pub end: i64,
    /// Events dropped (oldest first) because the trajectory reached its bound.
    pub dropped: u64,
    /// Events the trajectory holds now (positions of [`Context::history`]).
    pub len: u32,
    /// No state was kept (a first call, or the host dropped it): `new_events` holds every
    /// matching event of the trajectory and the state is the default.
    pub replay: bool,
}

struct Incremental {
    window: Window,
    history: History,
}

enum History {
    /// The host's `history` resource, lent for this call: its handle and a reader.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    Host {
        handle: u32,
        read: fn(u32, u32, u32) -> Vec<Event>,
    },
    /// The native harness: the trajectory so far, and the ids read (evidence may cite them).
    Native {
        events: Vec<Event>,
        read: RefCell<Vec<String>>,
    },
}

enum Backend {
    /// Inside the WASM host: the imports of the world the detector was registered for.
    Host(&'static HostImports),
    /// The native harness: values from the fixture, logs kept for the test to read.
    Native {
        config: BTreeMap<String, String>,
        now: i64,
        logs: RefCell<Vec<(Level, String)>>,
        /// A test's stand-in for the host's model (none: "no model", as the host
        /// answers without one — fixtures run that way).
        model: Option<NativeModel>,
    },
}

impl Context {
    #[doc(hidden)]
    pub fn host(imports: &'static HostImports) -> Self {
        Context {
            backend: Backend::Host(imports),
            prepared: PREPARED.with(|p| p.borrow().clone()),
            memo: RefCell::default(),
            incremental: None,
        }
    }

    /// The host's context for one incremental call: `history` is the handle of the lent
    /// resource and `read` reads it (both from the register macro).
    #[doc(hidden)]
    pub fn host_incremental(
        imports: &'static HostImports,
        window: Window,
        handle: u32,
        read: fn(u32, u32, u32) -> Vec<Event>,
    ) -> Self {
        Context {
            incremental: Some(Incremental {
                window,
                history: History::Host { handle, read },
            }),
            ..Context::host(imports)
        }
    }

    /// A native incremental context: as [`Context::native`], with the window and the
    /// trajectory so far (what `history` reads).
    pub fn native_incremental(
        info: &Info,
        overrides: &BTreeMap<String, String>,
        now: i64,
        window: Window,
        history: Vec<Event>,
    ) -> Self {
        Context {
            incremental: Some(Incremental {
                window,
                history: History::Native {
                    events: history,
                    read: RefCell::default(),
                },
            }),
            ..Context::native(info, overrides, now)
        }
    }

    /// The window of an incremental call (none in a 0.1.0 `analyze`).
    pub fn window(&self) -> Option<&Window> {
        self.incremental.as_ref().map(|i| &i.window)
    }

    /// Events of the trajectory at positions `start .. start + count` (at most 64 per
    /// read, ordered by (time, id)), read from the host only now; each may be cited as
    /// evidence. Empty outside an incremental call.
    pub fn history(&self, start: u32, count: u32) -> Vec<Event> {
        match self.incremental.as_ref().map(|i| &i.history) {
            None => Vec::new(),
            Some(History::Host { handle, read }) => read(*handle, start, count.min(64)),
            Some(History::Native { events, read }) => {
                let start = (start as usize).min(events.len());
                let end = start
                    .saturating_add(count.min(64) as usize)
                    .min(events.len());
                let page = events[start..end].to_vec();
                read.borrow_mut().extend(page.iter().map(|e| e.id.clone()));
                page
            }
        }
    }

    /// Every event of the trajectory, read page by page (a detector that needs the whole
    /// story now and then; one that needs it on every call keeps a summary in its state).
    pub fn history_all(&self) -> Vec<Event> {
        let len = self.window().map_or(0, |w| w.len);
        let mut out = Vec::with_capacity(len as usize);
        while (out.len() as u32) < len {
            let page = self.history(out.len() as u32, 64);
            if page.is_empty() {
                break;
            }
            out.extend(page);
        }
        out
    }

    /// Ids read through [`Context::history`] (native harness only).
    pub fn history_read(&self) -> Vec<String> {
        match self.incremental.as_ref().map(|i| &i.history) {
            Some(History::Native { read, .. }) => read.borrow().clone(),
            _ => Vec::new(),
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
                model: None,
            },
            prepared: Rc::default(),
            memo: RefCell::default(),
            incremental: None,
        }
    }

    /// What `prepare` or this context already has under `get`.
    fn recall<R>(&self, get: impl Fn(&Memo) -> Option<R>) -> Option<R> {
        get(&self.prepared).or_else(|| get(&self.memo.borrow()))
    }

    /// A configuration value: the host's override, else the default declared in `info()`.
    /// Read from the host once per instance (in the host: once per loaded detector, by
    /// `prepare`, for every declared key).
    pub fn config(&self, key: &str) -> Option<String> {
        if let Some(v) = self.recall(|m| m.values.get(key).cloned()) {
            return v;
        }
        let v = match &self.backend {
            Backend::Host(imports) => (imports.config)(key),
            Backend::Native { config, .. } => config.get(key).cloned(),
        };
        self.memo
            .borrow_mut()
            .values
            .insert(key.to_string(), v.clone());
        v
    }

    /// Reads every key `info` declares (values and lists), then keeps all this context
    /// read and parsed for every later context in this instance. The host calls it at the
    /// end of `prepare`, then snapshots the instance.
    #[doc(hidden)]
    pub fn keep_prepared(&self, info: &Info) {
        for key in &info.config {
            self.config_list(&key.name);
        }
        let mut all = (*self.prepared).clone();
        let mine = self.memo.take();
        all.values.extend(mine.values);
        all.lists.extend(mine.lists);
        all.parsed.extend(mine.parsed);
        all.settings.extend(mine.settings);
        PREPARED.with(|p| *p.borrow_mut() = Rc::new(all));
    }

    /// A fingerprint of the values of `keys`: an incremental detector that judged events
    /// against its settings when they arrived keeps it in its state and reads the
    /// trajectory again when it changes. (Another build may hash otherwise: that costs one
    /// more reading of `history`, nothing else.)
    pub fn config_fingerprint<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        for key in keys {
            self.config(key).hash(&mut h);
        }
        h.finish()
    }

    /// A configuration value parsed as `T` (trimmed); the error names the key and the value.
    /// Parsed once per instance; an error is returned, not kept.
    pub fn config_parsed<T: FromStr + Clone + 'static>(
        &self,
        key: &str,
    ) -> Result<T, AnalyzeError> {
        let id = (key.to_string(), TypeId::of::<T>());
        if let Some(v) = self.recall(|m| m.parsed.get(&id).cloned()) {
            if let Ok(t) = v.downcast::<T>() {
                return Ok((*t).clone());
            }
        }
        let t: T = config::parse(key, self.config(key))?;
        self.memo
            .borrow_mut()
            .parsed
            .insert(id, Rc::new(t.clone()) as Rc<dyn Any>);
        Ok(t)
    }

    /// A comma-separated list (items trimmed, empty items dropped), split once per
    /// instance (in the host: once per loaded detector, by `prepare`).
    pub fn config_list(&self, key: &str) -> Rc<[String]> {
        if let Some(l) = self.recall(|m| m.lists.get(key).cloned()) {
            return l;
        }
        let l: Rc<[String]> = config::list(self.config(key).as_deref().unwrap_or("")).into();
        self.memo
            .borrow_mut()
            .lists
            .insert(key.to_string(), l.clone());
        l
    }

    /// The detector's typed settings `T`, parsed from the configuration the first time they
    /// are asked for and shared afterwards (the configuration of a detector instance never
    /// changes; the host gives every call a fresh instance, the native harness a fresh
    /// context per fixture). Settings asked for in `prepare` are parsed once per loaded
    /// detector, not per call. A parse error is returned, not cached.
    ///
    /// ```ignore
    /// let s = cx.settings::<Settings>()?;        // Settings: FromConfig
    /// let lists = cx.settings::<Destinations>()?; // the destination classes, split once
    /// ```
    pub fn settings<T: FromConfig>(&self) -> Result<Rc<T>, AnalyzeError> {
        let id = TypeId::of::<T>();
        if let Some(v) = self.recall(|m| m.settings.get(&id).cloned()) {
            if let Ok(t) = v.downcast::<T>() {
                return Ok(t);
            }
        }
        let t = Rc::new(T::from_config(self)?);
        self.memo
            .borrow_mut()
            .settings
            .insert(id, Rc::clone(&t) as Rc<dyn Any>);
        Ok(t)
    }

    /// Asks the host's language model for a judgement on events of this trajectory
    /// (`plumbline:detector@0.2.0`; an incremental detector only). Never blocks: a
    /// question not answered yet is [`ModelAnswer::Pending`] and the host observes the
    /// trajectory again when the answer arrives (same question, same trajectory: the
    /// cached answer). Without a model — fixtures, 0.1.0, a host with no `[llm]` — the
    /// answer is [`ModelAnswer::Unavailable`]: fall back to the detector's own rules.
    /// A [`ModelAnswer::Ready`] judgement is validated by the host: its reasons cite only
    /// the question's events, which the detector may cite in turn.
    pub fn judge(&self, question: &Question) -> ModelAnswer {
        const NONE: &str = "no language model here";
        match &self.backend {
            Backend::Host(imports) => match imports.judge {
                Some(judge) => judge(question),
                None => ModelAnswer::Unavailable("the 0.1.0 contract has no model".into()),
            },
            Backend::Native { model, .. } => {
                // As the host does: the events shown become citable, as if read.
                if let Some(Incremental {
                    history: History::Native { events, read },
                    ..
                }) = &self.incremental
                {
                    read.borrow_mut().extend(
                        question
                            .events
                            .iter()
                            .filter(|id| events.iter().any(|e| &e.id == *id))
                            .cloned(),
                    );
                }
                match model {
                    Some(m) => m(question),
                    None => ModelAnswer::Unavailable(NONE.into()),
                }
            }
        }
    }

    /// The native harness's model stand-in (tests of a detector's use of [`Context::judge`]).
    pub fn with_model(mut self, model: NativeModel) -> Self {
        if let Backend::Native { model: m, .. } = &mut self.backend {
            *m = Some(model);
        }
        self
    }

    /// Unix nanoseconds, UTC.
    pub fn now(&self) -> i64 {
        match &self.backend {
            Backend::Host(imports) => (imports.now)(),
            Backend::Native { now, .. } => *now,
        }
    }

    pub fn log(&self, level: Level, message: &str) {
        match &self.backend {
            Backend::Host(imports) => (imports.log)(level, message),
            Backend::Native { logs, .. } => logs.borrow_mut().push((level, message.to_string())),
        }
    }

    /// Lines logged so far (native harness only; empty inside the host).
    pub fn logs(&self) -> Vec<(Level, String)> {
        match &self.backend {
            Backend::Host(_) => Vec::new(),
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

    thread_local!(static HOST_READS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });

    fn host_config(key: &str) -> Option<String> {
        HOST_READS.with(|r| r.set(r.get() + 1));
        (key == "min_rows").then(|| "7".to_string())
    }

    static HOST: HostImports = HostImports {
        config: host_config,
        now: || 0,
        log: |_, _| {},
        judge: None,
    };

    /// What `prepare` read and parsed, every later context in the instance starts with: no
    /// host read, no parse (in the host, that instance is the snapshot every call starts
    /// from).
    #[test]
    fn a_prepared_context_leaves_its_reads_and_parses_to_later_ones() {
        let info = Info::new("t.x", "1", "").config("min_rows", "10", "");
        let first = Context::host(&HOST);
        assert_eq!(first.settings::<Rows>().unwrap().0, 7);
        first.keep_prepared(&info);
        let (reads, parses) = (HOST_READS.with(|r| r.get()), PARSES.with(|p| p.get()));
        let later = Context::host(&HOST);
        assert_eq!(later.settings::<Rows>().unwrap().0, 7);
        assert_eq!(&*later.config_list("min_rows"), ["7"]);
        assert_eq!(later.config_parsed::<u64>("min_rows").unwrap(), 7);
        assert_eq!(later.config("min_rows").as_deref(), Some("7"));
        assert_eq!(HOST_READS.with(|r| r.get()), reads);
        assert_eq!(PARSES.with(|p| p.get()), parses);
        // A key `prepare` never read is read in the call, once.
        assert_eq!(later.config("other"), None);
        assert_eq!(later.config("other"), None);
        assert_eq!(HOST_READS.with(|r| r.get()), reads + 1);
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
        assert_eq!(&*cx.config_list("min_rows"), ["many"]);
    }
}
