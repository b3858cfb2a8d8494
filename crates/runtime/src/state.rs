//! What one detector call's store holds, and the host side of the detector's imports:
//! log, config and clock (both contract versions), and 0.2.0's `history` resource and
//! `model` judgements (through [`ModelJudge`], never a model directly). Nothing else is
//! reachable from a detector.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::plumbline::detector::{clock, config, log, types};
use super::bindings_v2::plumbline::detector as v2;
use super::bindings_v2::{self, History, HISTORY_PAGE};
use super::limits::MemoryCap;
use plumbline_contract::{ModelAnswer, Question};
use plumbline_trajectory::judge::{JudgeRequest, ModelJudge, NO_MODEL};

/// Log lines one call may emit; the rest are counted and dropped.
const LOG_LINES_PER_CALL: u32 = 32;
/// Longest log line kept (bytes).
const LOG_LINE_MAX: usize = 1024;
/// What a guest may write to stderr per call (panic messages, Python tracebacks).
const STDERR_CAPACITY: usize = 8 << 10;

pub struct CallState {
    wasi: WasiCtx,
    pub table: ResourceTable,
    pub memory: MemoryCap,
    detector: Arc<str>,
    config: Arc<BTreeMap<String, String>>,
    /// A pinned clock (fixtures); `None` reads the system clock.
    now: Option<i64>,
    logs_left: u32,
    pub logs_dropped: u32,
    stderr: MemoryOutputPipe,
    /// Ids of the events a 0.2.0 call read through `history` (they may be cited).
    pub read: HashSet<String>,
    /// Who answers a 0.2.0 call's `model.judge`, and about what (none: no model).
    pub asking: Option<Asking>,
}

/// What a 0.2.0 call's questions to the model are about.
pub struct Asking {
    pub judge: Arc<dyn ModelJudge>,
    pub detector_version: String,
    pub trajectory: String,
    pub trajectory_hash: String,
    /// The trajectory's events: a question may show only these.
    pub events: plumbline_trajectory::Events,
}

impl CallState {
    pub fn new(
        detector: Arc<str>,
        config: Arc<BTreeMap<String, String>>,
        memory_bytes: usize,
        now: Option<i64>,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let mut wasi = WasiCtx::builder();
        // The builder's defaults already give no preopens, no env, no args and deny every
        // socket address; also refuse to create sockets at all.
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .stderr(stderr.clone());
        CallState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            memory: MemoryCap::new(memory_bytes),
            detector,
            config,
            now,
            logs_left: LOG_LINES_PER_CALL,
            logs_dropped: 0,
            stderr,
            read: HashSet::new(),
            asking: None,
        }
    }

    /// The tail of what the guest wrote to stderr (a panic message, a traceback).
    pub fn stderr_tail(&self) -> String {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        let start = text.char_indices().rev().nth(400).map_or(0, |(i, _)| i);
        text[start..].replace('\n', " | ")
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for CallState {}

impl log::Host for CallState {
    fn log(&mut self, level: log::Level, message: String) {
        self.log_line(level, message)
    }
}

impl CallState {
    fn log_line(&mut self, level: log::Level, message: String) {
        if self.logs_left == 0 {
            self.logs_dropped += 1;
            return;
        }
        self.logs_left -= 1;
        let mut message = message;
        if message.len() > LOG_LINE_MAX {
            let mut cut = LOG_LINE_MAX;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let detector = &*self.detector;
        match level {
            log::Level::Debug => {
                tracing::debug!(target: "plumbline::detector", detector, "{message}")
            }
            log::Level::Info => {
                tracing::info!(target: "plumbline::detector", detector, "{message}")
            }
            log::Level::Warn => {
                tracing::warn!(target: "plumbline::detector", detector, "{message}")
            }
            log::Level::Error => {
                tracing::error!(target: "plumbline::detector", detector, "{message}")
            }
        }
    }
}

impl config::Host for CallState {
    fn get(&mut self, key: String) -> Option<String> {
        self.config_value(&key)
    }
}

impl clock::Host for CallState {
    fn now(&mut self) -> i64 {
        self.clock()
    }
}

impl CallState {
    fn config_value(&self, key: &str) -> Option<String> {
        self.config.get(key).cloned()
    }

    fn clock(&self) -> i64 {
        self.now
            .unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64)
    }
}

// 0.2.0: the same log, config and clock, and the `history` resource.

impl v2::types::Host for CallState {}

impl v2::log::Host for CallState {
    fn log(&mut self, level: v2::log::Level, message: String) {
        let level = match level {
            v2::log::Level::Debug => log::Level::Debug,
            v2::log::Level::Info => log::Level::Info,
            v2::log::Level::Warn => log::Level::Warn,
            v2::log::Level::Error => log::Level::Error,
        };
        self.log_line(level, message)
    }
}

impl v2::config::Host for CallState {
    fn get(&mut self, key: String) -> Option<String> {
        self.config_value(&key)
    }
}

impl v2::clock::Host for CallState {
    fn now(&mut self) -> i64 {
        self.clock()
    }
}

impl v2::history::Host for CallState {}

impl v2::model::Host for CallState {
    fn judge(&mut self, q: v2::model::Question) -> v2::model::Answer {
        let question = Question {
            instructions: q.instructions,
            events: q.events,
        };
        let answer = self.ask(question);
        match answer {
            ModelAnswer::Ready(j) => v2::model::Answer::Ready(v2::model::Judgement {
                risk: j.risk,
                reasons: j
                    .reasons
                    .into_iter()
                    .map(|r| v2::model::Reason {
                        text: r.text,
                        evidence: r.evidence,
                    })
                    .collect(),
                model: j.model,
            }),
            ModelAnswer::Pending => v2::model::Answer::Pending,
            ModelAnswer::Unavailable(why) => v2::model::Answer::Unavailable(why),
        }
    }
}

impl CallState {
    /// A detector's question, checked (bounded; only events of its own trajectory, which
    /// become citable as if read) and handed to the judge, which never blocks.
    fn ask(&mut self, question: Question) -> ModelAnswer {
        let Some(a) = &self.asking else {
            return ModelAnswer::Unavailable(NO_MODEL.into());
        };
        if let Err(e) = question.check() {
            return ModelAnswer::Unavailable(format!("question refused: {e}"));
        }
        let wanted: HashSet<&str> = question.events.iter().map(String::as_str).collect();
        let events: Vec<Arc<plumbline_event::Event>> = a
            .events
            .iter()
            .filter(|e| wanted.contains(e.id.as_str()))
            .cloned()
            .collect();
        if events.len() != wanted.len() {
            let known: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
            let stray = wanted.iter().find(|id| !known.contains(*id)).unwrap_or(&"");
            return ModelAnswer::Unavailable(format!(
                "question refused: {stray:?} is not an event of this trajectory"
            ));
        }
        let request = JudgeRequest {
            detector: self.detector.to_string(),
            detector_version: a.detector_version.clone(),
            trajectory: a.trajectory.clone(),
            trajectory_hash: a.trajectory_hash.clone(),
            question,
            events,
        };
        let judge = a.judge.clone();
        self.read.extend(request.question.events.iter().cloned());
        judge.judge(request)
    }
}

impl v2::history::HostTrajectory for CallState {
    fn len(&mut self, this: Resource<History>) -> u32 {
        self.table
            .get(&this)
            .map_or(0, |h| u32::try_from(h.events.len()).unwrap_or(u32::MAX))
    }

    fn events(
        &mut self,
        this: Resource<History>,
        start: u32,
        count: u32,
    ) -> Vec<bindings_v2::wit::Event> {
        let Ok(h) = self.table.get(&this) else {
            return Vec::new();
        };
        let events = h.events.clone();
        let start = (start as usize).min(events.len());
        let end = start
            .saturating_add(count.min(HISTORY_PAGE) as usize)
            .min(events.len());
        let page = &events[start..end];
        self.read.extend(page.iter().map(|e| e.id.clone()));
        page.iter().map(|e| bindings_v2::event(e)).collect()
    }

    fn drop(&mut self, this: Resource<History>) -> wasmtime::Result<()> {
        // The host owns the resource and removes it after the call; a guest never gets
        // an owned handle, so there is nothing to do here.
        let _ = this;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::Host as _;

    #[test]
    fn logging_is_rate_limited_and_truncated_and_config_is_the_detectors_own() {
        let config = Arc::new(BTreeMap::from([("k".to_string(), "v".to_string())]));
        let mut s = CallState::new(Arc::from("d"), config, 1 << 20, Some(42));
        for i in 0..(LOG_LINES_PER_CALL + 8) {
            s.log(log::Level::Info, format!("line {i} {}", "x".repeat(2000)));
        }
        assert_eq!(s.logs_dropped, 8);
        assert_eq!(config::Host::get(&mut s, "k".into()).as_deref(), Some("v"));
        assert_eq!(config::Host::get(&mut s, "other".into()), None);
        assert_eq!(clock::Host::now(&mut s), 42);
    }
}
