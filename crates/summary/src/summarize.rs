//! Producing one alert's summary: cache, else model (with one corrective retry), else the
//! deterministic fallback. Never fails: the worst case is the fallback, with its reason.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::audit::{AuditRecord, CacheEntry, CallRecord, SeverityRecord, SummaryAudit};
use super::client::{Call, ChatClient, ClientError, Reply};
use super::request::ChatRequest;
use super::{combined_severity, fallback, findings_fingerprint, validate, LlmConfig};
use super::{Provenance, Summary};
use plumbline_alert::{now, Alert};
use plumbline_trajectory::Trajectory;

/// Counters since start.
#[derive(Debug, Default, Serialize)]
pub struct SummaryStats {
    /// HTTP tries sent to the model.
    pub http_tries: AtomicU64,
    pub llm: AtomicU64,
    pub cached: AtomicU64,
    pub fallback: AtomicU64,
    pub refusals: AtomicU64,
    pub invalid_answers: AtomicU64,
}

/// A summary with how it was made and the audit record to keep.
#[derive(Debug, Clone)]
pub struct Produced {
    pub summary: Summary,
    pub provenance: Provenance,
    pub record: AuditRecord,
}

pub struct Summarizer {
    config: LlmConfig,
    client: Option<ChatClient>,
    audit: SummaryAudit,
    /// One producer per (trajectory hash, findings) at a time, so the actor and system
    /// trajectories of the same events cost one call, not two.
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pub stats: SummaryStats,
}

impl Summarizer {
    pub fn new(
        config: &LlmConfig,
        audit: SummaryAudit,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Summarizer, ClientError> {
        let client = if config.enabled() {
            Some(ChatClient::new(config, env)?)
        } else {
            None
        };
        Ok(Summarizer {
            config: config.clone(),
            client,
            audit,
            inflight: Mutex::default(),
            stats: SummaryStats::default(),
        })
    }

    pub fn audit(&self) -> &SummaryAudit {
        &self.audit
    }

    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    pub async fn summarize(&self, alert: &Alert, t: &Trajectory) -> Produced {
        let fingerprint = findings_fingerprint(&alert.findings);
        let gate_key = format!("{}/{fingerprint}", t.hash);
        let gate = self
            .inflight
            .lock()
            .expect("inflight")
            .entry(gate_key.clone())
            .or_default()
            .clone();
        let produced = {
            let _turn = gate.lock().await;
            self.produce(alert, t, &fingerprint).await
        };
        let mut inflight = self.inflight.lock().expect("inflight");
        // Ours and the map's: nobody else is waiting on this story.
        if Arc::strong_count(&gate) <= 2 {
            inflight.remove(&gate_key);
        }
        produced
    }

    async fn produce(&self, alert: &Alert, t: &Trajectory, fingerprint: &str) -> Produced {
        let mut draft = Draft {
            alert,
            t,
            fingerprint,
            config: &self.config,
            calls: Vec::new(),
        };
        if let Some(c) = self.audit.cached(&t.hash, fingerprint) {
            self.stats.cached.fetch_add(1, Ordering::Relaxed);
            let provenance = Provenance::Cached {
                model: c.model.clone(),
                produced_at: c.produced_at.clone(),
            };
            let mut p = draft.finish(c.summary, provenance);
            p.record.cached_request_sha256 = Some(c.request_sha256);
            p.record.cached_response_sha256 = c.response_sha256;
            return p;
        }
        let Some(client) = &self.client else {
            return self.fallback(draft, "no LLM configured (llm.base_url is empty)".into());
        };
        let deadline = Instant::now() + Duration::from_millis(self.config.budget_ms);
        let first = ChatRequest::build(&self.config, alert, t);
        let (answer, error) = match self
            .ask(client, &mut draft, &first, "initial", deadline)
            .await
        {
            Asked::Valid(s, response_sha) => {
                return self.success(draft, s, &first, response_sha);
            }
            Asked::Failed(reason) => return self.fallback(draft, reason),
            Asked::Invalid { answer, error } => (answer, error),
        };
        let second = first.correction(&answer, &error);
        match self
            .ask(client, &mut draft, &second, "correction", deadline)
            .await
        {
            Asked::Valid(s, response_sha) => self.success(draft, s, &second, response_sha),
            Asked::Failed(reason) => self.fallback(
                draft,
                format!("first answer invalid ({error}); then {reason}"),
            ),
            Asked::Invalid { error: again, .. } => self.fallback(
                draft,
                format!("model answer invalid twice: {error}; then {again}"),
            ),
        }
    }

    /// One request to the model, recorded, and its answer checked.
    async fn ask(
        &self,
        client: &ChatClient,
        draft: &mut Draft<'_>,
        req: &ChatRequest,
        purpose: &str,
        deadline: Instant,
    ) -> Asked {
        let Call { tries, result } = client.complete(&req.body, deadline).await;
        self.stats
            .http_tries
            .fetch_add(tries.len() as u64, Ordering::Relaxed);
        let response_sha = tries.last().and_then(|t| t.response_sha256.clone());
        let (asked, outcome) = match result {
            Ok(Reply::Content(content)) => match validate::check(&content, draft.t) {
                Ok(s) => (Asked::Valid(s, response_sha), "answered".to_string()),
                Err(e) => {
                    self.stats.invalid_answers.fetch_add(1, Ordering::Relaxed);
                    let error = e.to_string();
                    let outcome = format!("invalid: {error}");
                    (
                        Asked::Invalid {
                            answer: content,
                            error,
                        },
                        outcome,
                    )
                }
            },
            Ok(Reply::Refusal(r)) => {
                self.stats.refusals.fetch_add(1, Ordering::Relaxed);
                let r = cut(&r, 300);
                (
                    Asked::Failed(format!("model refused: {r}")),
                    format!("refused: {r}"),
                )
            }
            Err(e) => (
                Asked::Failed(format!("LLM call failed: {e}")),
                format!("failed: {e}"),
            ),
        };
        draft.calls.push(CallRecord {
            purpose: purpose.into(),
            request: req.body.clone(),
            request_sha256: req.sha256.clone(),
            tries,
            outcome,
        });
        asked
    }

    fn success(
        &self,
        draft: Draft<'_>,
        summary: Summary,
        req: &ChatRequest,
        response_sha: Option<String>,
    ) -> Produced {
        self.stats.llm.fetch_add(1, Ordering::Relaxed);
        let entry = CacheEntry {
            summary: summary.clone(),
            model: self.config.model.clone(),
            produced_at: now(),
            request_sha256: req.sha256.clone(),
            response_sha256: response_sha,
        };
        if let Err(e) = self
            .audit
            .put_cache(&draft.t.hash, draft.fingerprint, &entry)
        {
            tracing::warn!(error = %e, "could not cache a summary; the next update calls again");
        }
        let provenance = Provenance::Llm {
            model: self.config.model.clone(),
        };
        draft.finish(summary, provenance)
    }

    fn fallback(&self, draft: Draft<'_>, reason: String) -> Produced {
        self.stats.fallback.fetch_add(1, Ordering::Relaxed);
        if self.client.is_some() {
            tracing::warn!(alert = %draft.alert.id, %reason, "using the deterministic summary");
        }
        let summary = fallback::build(draft.alert, draft.t);
        draft.finish(summary, Provenance::Fallback { reason })
    }
}

enum Asked {
    Valid(Summary, Option<String>),
    Invalid { answer: String, error: String },
    Failed(String),
}

/// What is known about a summary while it is being produced.
struct Draft<'a> {
    alert: &'a Alert,
    t: &'a Trajectory,
    fingerprint: &'a str,
    config: &'a LlmConfig,
    calls: Vec<CallRecord>,
}

impl Draft<'_> {
    fn finish(self, summary: Summary, provenance: Provenance) -> Produced {
        let detectors = fallback::detector_severity(self.alert);
        let model_risk = match provenance {
            Provenance::Fallback { .. } => None,
            _ => Some(summary.risk),
        };
        let cap = self.config.max_raised_severity;
        let severity = SeverityRecord {
            detectors,
            model_risk,
            cap,
            applied: combined_severity(detectors, model_risk, cap),
        };
        let enabled = self.config.enabled();
        let record = AuditRecord {
            alert_id: self.alert.id.clone(),
            trajectory_id: self.t.id.clone(),
            trajectory_hash: self.t.hash.clone(),
            findings_fingerprint: self.fingerprint.to_string(),
            at: now(),
            provenance: provenance.clone(),
            model: enabled.then(|| self.config.model.clone()),
            endpoint: enabled.then(|| {
                let url = self.config.completions_url();
                plumbline_event::redact::text(&url).unwrap_or(url)
            }),
            calls: self.calls,
            cached_request_sha256: None,
            cached_response_sha256: None,
            summary: summary.clone(),
            severity,
        };
        Produced {
            summary,
            provenance,
            record,
        }
    }
}

fn cut(s: &str, max: usize) -> String {
    let c: String = s.chars().take(max).collect();
    if c.len() < s.len() {
        format!("{c}…")
    } else {
        c
    }
}
