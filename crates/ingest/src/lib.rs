//! Ingest: bodies in, validated events out, durably stored before the answer.
//! The native format lives here (`body.rs`); each source's own wire format is an
//! [`Adapter`] in a module beside it, owning its configuration. Nothing here knows HTTP
//! servers: the API serves every adapter through one generic handler.

pub mod adapter;
pub mod agents;
pub mod body;
pub mod cloudtrail;
pub mod git;
pub mod github;
pub mod github_audit;
pub mod gitlab;
pub mod make;
pub mod map;
pub mod memory;
pub mod n8n;
pub mod okta;
pub mod openai;
pub mod vault;

#[cfg(test)]
mod tables;

/// This crate's part of the embedded default configuration (`crates/ingest/config.toml`):
/// one section per source.
pub const DEFAULT_CONFIG: &str = include_str!("../config.toml");

pub use adapter::{Adapter, Delivery, IngestError, Mapped, Memory, MemoryError, SourceAuth};

/// `[ingest]`: limits every entry point shares.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub future_skew_secs: u64,
    /// Most events one request (or one socket batch) may carry.
    pub max_events_per_request: usize,
    /// Events stored but not yet applied to trajectories, plus evaluations queued, above
    /// which new events are refused (503, Retry-After) until the stages catch up.
    pub max_backlog: u64,
    /// Evaluation lag (the oldest change not yet evaluated), milliseconds, above which new
    /// events are refused (503, Retry-After); 0: no bound.
    pub max_lag_ms: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        #[derive(serde::Deserialize)]
        struct Defaults {
            ingest: IngestConfig,
        }
        toml::from_str::<Defaults>(DEFAULT_CONFIG)
            .expect("crates/ingest/config.toml is valid")
            .ingest
    }
}

/// Every source's section of the configuration (the sections of `config.toml`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct SourcesConfig {
    pub github: github::GithubConfig,
    pub github_audit: github_audit::GithubAuditConfig,
    pub gitlab: gitlab::GitlabConfig,
    pub n8n: n8n::N8nConfig,
    pub make: make::MakeConfig,
    pub vault: vault::VaultConfig,
    pub cloudtrail: cloudtrail::CloudtrailConfig,
    pub okta: okta::OktaConfig,
    pub openai: openai::OpenaiConfig,
    pub agents: agents::AgentsConfig,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        toml::from_str(DEFAULT_CONFIG).expect("crates/ingest/config.toml is valid")
    }
}

/// Every source adapter, configured. Adding a source is a module and a line here. The two
/// OTLP receivers ([`Adapter::otlp`]) are served at `/v1/logs` and `/v1/traces`.
pub fn adapters(config: &SourcesConfig) -> Vec<Arc<dyn Adapter>> {
    vec![
        Arc::new(github::GithubAdapter::new(config.github.clone())),
        Arc::new(github_audit::GithubAuditAdapter::new(
            config.github_audit.clone(),
        )),
        Arc::new(gitlab::GitlabAdapter::new(config.gitlab.clone())),
        Arc::new(n8n::N8nAdapter::new(config.n8n.clone())),
        Arc::new(make::MakeAdapter::new(config.make.clone())),
        Arc::new(vault::VaultAdapter),
        Arc::new(cloudtrail::CloudtrailAdapter::new(
            config.cloudtrail.clone(),
        )),
        Arc::new(okta::OktaAdapter::new(config.okta.clone())),
        Arc::new(openai::OpenaiAdapter::new(config.openai.clone())),
        Arc::new(agents::claude_code::ClaudeCodeAdapter::new(
            config.agents.clone(),
        )),
        Arc::new(agents::cursor::CursorAdapter::new(config.agents.clone())),
        Arc::new(agents::otlp::OtlpAdapter::new(
            agents::otlp::Signal::Logs,
            config.agents.clone(),
        )),
        Arc::new(agents::otlp::OtlpAdapter::new(
            agents::otlp::Signal::Traces,
            config.agents.clone(),
        )),
    ]
}

use std::sync::Arc;

use serde::Serialize;

use plumbline_event::{Event, EventError};
use plumbline_store::{IngestOutcome, StoreError, Writer};

/// One refused event in an ingest answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// 0-based position of the event in the body (array element or non-blank NDJSON line).
    pub index: usize,
    pub field: String,
    pub reason: String,
}

impl Rejection {
    pub fn new(index: usize, err: EventError) -> Self {
        Rejection {
            index,
            field: err.field,
            reason: err.reason,
        }
    }
}

/// The answer to an ingest request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestReport {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: Vec<Rejection>,
}

/// Where accepted events become durable when it is not this node's store: a cluster's
/// log. It answers as the store's writer does (which events were new), only once they are
/// durable there, so a 202 means the same on a cluster as on one node.
pub trait EventLog: Send + Sync + 'static {
    fn append(
        &self,
        events: Vec<Event>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<IngestOutcome, StoreError>> + Send + '_>,
    >;
}

/// The ingest stage: validation that needs configuration, then the durable writer.
/// Every source (native API, adapters, files, the Vault socket) goes through here.
#[derive(Clone)]
pub struct Ingest {
    writer: Writer,
    /// On a cluster: the log events go to instead of `writer`.
    log: Option<Arc<dyn EventLog>>,
    retention_nanos: Option<i64>,
    /// Events later than now plus this are refused.
    future_skew_nanos: i64,
    max_events: usize,
    max_backlog: u64,
    /// The downstream stages' backlog (see `IngestConfig::max_backlog`).
    backlog: Option<Arc<dyn Fn() -> u64 + Send + Sync>>,
    max_lag: Option<std::time::Duration>,
    /// The evaluation lag (see `IngestConfig::max_lag_ms`).
    lag: Option<Arc<dyn Fn() -> std::time::Duration + Send + Sync>>,
    pub counters: Arc<IngestCounters>,
}

/// Events accepted per source (for `/metrics` and coverage).
#[derive(Debug, Default)]
pub struct IngestCounters {
    by_source: [std::sync::atomic::AtomicU64; plumbline_event::Source::ALL.len()],
    last_seen: [std::sync::atomic::AtomicI64; plumbline_event::Source::ALL.len()],
}

impl IngestCounters {
    pub fn record(&self, e: &Event) {
        use std::sync::atomic::Ordering::Relaxed;
        let i = plumbline_event::Source::ALL
            .iter()
            .position(|s| *s == e.source)
            .expect("Source::ALL lists every source");
        self.by_source[i].fetch_add(1, Relaxed);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.last_seen[i].fetch_max(now, Relaxed);
    }

    /// (source, events accepted since start, unix seconds of the last one or 0).
    pub fn snapshot(&self) -> Vec<(plumbline_event::Source, u64, i64)> {
        use std::sync::atomic::Ordering::Relaxed;
        plumbline_event::Source::ALL
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    *s,
                    self.by_source[i].load(Relaxed),
                    self.last_seen[i].load(Relaxed),
                )
            })
            .collect()
    }
}

/// Why mapped events could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The events are stored; the memory updates that follow them are not.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error(
        "{events} events in one request: at most {max} (ingest.max_events_per_request); \
         split the batch"
    )]
    TooMany { events: usize, max: usize },
    #[error(
        "busy: {backlog} events and evaluations are waiting (ingest.max_backlog {max}); \
         nothing from this request was stored, retry shortly"
    )]
    Busy { backlog: u64, max: u64 },
    #[error(
        "busy: evaluation is {lag_ms} ms behind (ingest.max_lag_ms {max_ms}); nothing from \
         this request was stored, retry shortly"
    )]
    Lagging { lag_ms: u64, max_ms: u64 },
}

impl Ingest {
    pub fn new(writer: Writer, retention_days: u64) -> Self {
        let retention_nanos =
            (retention_days > 0).then(|| retention_days as i64 * 86_400 * 1_000_000_000);
        Ingest {
            writer,
            log: None,
            retention_nanos,
            future_skew_nanos: 0,
            max_events: 0,
            max_backlog: 0,
            backlog: None,
            max_lag: None,
            lag: None,
            counters: Arc::default(),
        }
        .with_config(&IngestConfig::default())
    }

    /// Applies `[ingest]`.
    pub fn with_config(mut self, config: &IngestConfig) -> Self {
        self.future_skew_nanos =
            config.future_skew_secs.min(i64::MAX as u64 / 1_000_000_000) as i64 * 1_000_000_000;
        self.max_events = config.max_events_per_request;
        self.max_backlog = config.max_backlog;
        self.max_lag =
            (config.max_lag_ms > 0).then(|| std::time::Duration::from_millis(config.max_lag_ms));
        self
    }

    /// Refuses new events while `lag()` is above `ingest.max_lag_ms`: work the stages
    /// cannot evaluate in time is refused at the door rather than accepted and judged late.
    pub fn with_lag(mut self, lag: Arc<dyn Fn() -> std::time::Duration + Send + Sync>) -> Self {
        self.lag = Some(lag);
        self
    }

    /// Refuses new events while `backlog()` is above `ingest.max_backlog`.
    pub fn with_backlog(mut self, backlog: Arc<dyn Fn() -> u64 + Send + Sync>) -> Self {
        self.backlog = Some(backlog);
        self
    }

    /// Makes accepted events durable in `log` (a cluster's) instead of this node's store.
    pub fn with_log(mut self, log: Arc<dyn EventLog>) -> Self {
        self.log = Some(log);
        self
    }

    /// `ingest.max_lag_ms` (none: no bound).
    pub fn max_lag(&self) -> Option<std::time::Duration> {
        self.max_lag
    }

    /// `ingest.max_events_per_request`.
    pub fn max_events(&self) -> usize {
        self.max_events
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Stores the valid events (durably) and reports on all of them. `rejected` carries
    /// refusals found before this call (e.g. unparsable lines), `indexes` the body position
    /// of each event.
    pub async fn submit(
        &self,
        events: Vec<Event>,
        indexes: Vec<usize>,
        mut rejected: Vec<Rejection>,
    ) -> Result<IngestReport, SubmitError> {
        let offered = events.len() + rejected.len();
        if offered > self.max_events {
            return Err(SubmitError::TooMany {
                events: offered,
                max: self.max_events,
            });
        }
        if let Some(backlog) = self.backlog.as_ref().map(|f| f()) {
            if backlog > self.max_backlog && !events.is_empty() {
                return Err(SubmitError::Busy {
                    backlog,
                    max: self.max_backlog,
                });
            }
        }
        if let (Some(max), Some(lag)) = (self.max_lag, self.lag.as_ref()) {
            let lag = lag();
            if lag > max && !events.is_empty() {
                return Err(SubmitError::Lagging {
                    lag_ms: lag.as_millis() as u64,
                    max_ms: max.as_millis() as u64,
                });
            }
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
        let mut keep = Vec::with_capacity(events.len());
        for (event, index) in events.into_iter().zip(indexes) {
            let t = event.time_nanos();
            if t > now.saturating_add(self.future_skew_nanos) {
                let ahead = (t - now) / 1_000_000_000;
                rejected.push(Rejection::new(
                    index,
                    EventError::new(
                        "time",
                        format!(
                            "{ahead} s after this host's clock: more than the allowed skew of \
                             {} s (ingest.future_skew_secs)",
                            self.future_skew_nanos / 1_000_000_000
                        ),
                    ),
                ));
                continue;
            }
            match self.retention_nanos {
                Some(r) if t < now - r => rejected.push(Rejection::new(
                    index,
                    EventError::new(
                        "time",
                        "older than the retention period; it would be deleted at once",
                    ),
                )),
                _ => keep.push(event),
            }
        }
        rejected.sort_by_key(|r| r.index);
        if keep.is_empty() {
            return Ok(IngestReport {
                accepted: 0,
                duplicates: 0,
                rejected,
            });
        }
        let outcome: IngestOutcome = match &self.log {
            Some(log) => log.append(keep.clone()).await?,
            None => self.writer.write(keep.clone()).await?,
        };
        for (e, stored) in keep.iter().zip(&outcome.stored) {
            if *stored {
                self.counters.record(e);
            }
        }
        Ok(IngestReport {
            accepted: outcome.accepted,
            duplicates: outcome.duplicates,
            rejected,
        })
    }

    /// Stores an adapter's mapped events durably, then applies its memory updates (a
    /// retried delivery must see the same memory as the failed one).
    pub async fn submit_mapped(
        &self,
        mapped: Mapped,
        memory: &dyn Memory,
    ) -> Result<IngestReport, SubmitError> {
        let Mapped {
            events,
            indexes,
            rejected,
            remember,
        } = mapped;
        let report = self.submit(events, indexes, rejected).await?;
        adapter::apply(memory, &remember)?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumbline_store::{CommittedBatch, Store};

    fn event_at(id: &str, t: time::OffsetDateTime) -> Event {
        plumbline_event::parse_event(serde_json::json!({
            "id": id, "time": plumbline_event::format_time(t), "source": "vault",
            "actor": {"id": "eve", "type": "human"}, "system": "vault",
            "action": "secret.read",
        }))
        .unwrap()
    }

    /// Every entry point submits here, so one far-future event (which would move the
    /// trajectory watermark past every real window) is refused wherever it comes from.
    #[tokio::test]
    async fn events_from_beyond_the_allowed_skew_are_refused_naming_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let writer = Writer::start(store.clone(), false, Arc::new(|_: CommittedBatch| {})).unwrap();
        let ingest = Ingest::new(writer, 90).with_config(&IngestConfig {
            future_skew_secs: 120,
            ..IngestConfig::default()
        });
        let now = time::OffsetDateTime::now_utc();
        let events = vec![
            event_at("ok-now", now),
            event_at("ok-skewed", now + time::Duration::seconds(60)),
            event_at("too-far", now + time::Duration::seconds(600)),
            event_at("2262", time::macros::datetime!(2262-01-01 0:00 UTC)),
        ];
        let report = ingest
            .submit(events, vec![0, 1, 2, 3], vec![])
            .await
            .unwrap();
        assert_eq!(report.accepted, 2);
        let refused: Vec<(usize, &str)> = report
            .rejected
            .iter()
            .map(|r| (r.index, r.field.as_str()))
            .collect();
        assert_eq!(refused, vec![(2, "time"), (3, "time")]);
        assert!(report.rejected[0].reason.contains("future_skew_secs"));
        assert!(store.get("ok-skewed").unwrap().is_some());
        assert!(store.get("2262").unwrap().is_none());
    }

    /// Too many events in one request, or stages too far behind: refused whole, naming the
    /// limit, with nothing stored; once the backlog drains the same request goes in.
    #[tokio::test]
    async fn oversized_requests_and_a_full_backlog_are_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let writer = Writer::start(store.clone(), false, Arc::new(|_: CommittedBatch| {})).unwrap();
        let backlog = Arc::new(std::sync::atomic::AtomicU64::new(11));
        let gauge = backlog.clone();
        let ingest = Ingest::new(writer, 90)
            .with_config(&IngestConfig {
                max_events_per_request: 2,
                max_backlog: 10,
                ..IngestConfig::default()
            })
            .with_backlog(Arc::new(move || {
                gauge.load(std::sync::atomic::Ordering::Relaxed)
            }));
        let now = time::OffsetDateTime::now_utc();
        let three: Vec<Event> = (0..3).map(|i| event_at(&format!("e{i}"), now)).collect();
        let e = ingest
            .submit(three, vec![0, 1, 2], vec![])
            .await
            .unwrap_err();
        assert!(
            matches!(e, SubmitError::TooMany { events: 3, max: 2 }),
            "{e}"
        );
        assert!(e.to_string().contains("max_events_per_request"), "{e}");

        let two = || (0..2).map(|i| event_at(&format!("e{i}"), now)).collect();
        let e = ingest.submit(two(), vec![0, 1], vec![]).await.unwrap_err();
        assert!(
            matches!(
                e,
                SubmitError::Busy {
                    backlog: 11,
                    max: 10
                }
            ),
            "{e}"
        );
        assert!(store.get("e0").unwrap().is_none(), "nothing stored");
        backlog.store(10, std::sync::atomic::Ordering::Relaxed);
        let report = ingest.submit(two(), vec![0, 1], vec![]).await.unwrap();
        assert_eq!(report.accepted, 2);
    }

    /// Evaluation too far behind: refused whole, naming the bound, nothing stored; once
    /// the lag is back under it the same request goes in. No bound, no refusal.
    #[tokio::test]
    async fn a_request_is_refused_while_evaluation_lags_past_the_bound() {
        use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let writer = Writer::start(store.clone(), false, Arc::new(|_: CommittedBatch| {})).unwrap();
        let lag_ms = Arc::new(AtomicU64::new(12_000));
        let gauge = lag_ms.clone();
        let lag = Arc::new(move || std::time::Duration::from_millis(gauge.load(Relaxed)));
        let ingest = Ingest::new(writer.clone(), 90)
            .with_config(&IngestConfig {
                max_lag_ms: 10_000,
                ..IngestConfig::default()
            })
            .with_lag(lag.clone());
        let now = time::OffsetDateTime::now_utc();
        let one = || vec![event_at("late", now)];
        let e = ingest.submit(one(), vec![0], vec![]).await.unwrap_err();
        assert!(
            matches!(
                e,
                SubmitError::Lagging {
                    lag_ms: 12_000,
                    max_ms: 10_000
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("ingest.max_lag_ms 10000"), "{e}");
        assert!(store.get("late").unwrap().is_none(), "nothing stored");
        lag_ms.store(9_000, Relaxed);
        assert_eq!(
            ingest
                .submit(one(), vec![0], vec![])
                .await
                .unwrap()
                .accepted,
            1
        );
        lag_ms.store(60_000, Relaxed);
        let unbounded = Ingest::new(writer, 90)
            .with_config(&IngestConfig {
                max_lag_ms: 0,
                ..IngestConfig::default()
            })
            .with_lag(lag);
        let e2 = vec![event_at("unbounded", now)];
        assert_eq!(
            unbounded
                .submit(e2, vec![0], vec![])
                .await
                .unwrap()
                .accepted,
            1
        );
    }
}
