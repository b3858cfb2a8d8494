//! Inline verdicts: an AI coding agent asks before it runs a tool (Claude Code's
//! `PreToolUse` hook, Cursor's `beforeShellExecution` …); the pending call is judged against
//! the agent's session *before* it happens, and the answer — allow, ask or deny — goes back
//! in the hook's reply.
//!
//! The call is judged on the session trajectory it would join ([`TrajectoryStage::preview`]:
//! the open window plus the call, the book unchanged) by the detectors whose interests match
//! the call ([`Evaluator::evaluate_pending`]); only findings citing the call count, so a story
//! already alerted on does not deny every later `ls`. The same sandbox, limits and
//! quarantine as the asynchronous pipeline, which judges the stored call again as usual and
//! raises the alert: a verdict decides one call, it never replaces the alert.
//!
//! The agent is waiting, so the answer has a deadline and a bound on verdicts in flight;
//! past either the configured `on_timeout` answer is given (fail open or closed). Every
//! decision is recorded on the session as an `agent.verdict` event citing the call.

mod config;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Semaphore;

pub use config::{Permission, VerdictConfig, DEFAULT_CONFIG};
use plumbline_event::{format_time, parse_event, Event};
use plumbline_metrics::{Exposition, Histogram, LATENCY_BOUNDS};
use plumbline_store::Writer;
use plumbline_trajectory::finding::Finding;
use plumbline_trajectory::{Evaluator, TrajectoryKind, TrajectoryStage};

/// The action of the event that records a decision on the session.
pub const VERDICT_ACTION: &str = "agent.verdict";

/// Why the answer is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The detectors judged the call in time.
    Judged,
    /// The deadline passed first: the configured fail mode answered.
    Deadline,
    /// Too many verdicts in flight: the configured fail mode answered at once.
    Overload,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Judged => "judged",
            Basis::Deadline => "deadline",
            Basis::Overload => "overload",
        }
    }
}

/// One pending call's answer.
#[derive(Debug, Clone)]
pub struct Decision {
    pub permission: Permission,
    /// Shown to the person (and the agent) when the call is not simply allowed.
    pub reason: String,
    pub basis: Basis,
    /// Findings citing the call, most severe first.
    pub findings: Vec<Finding>,
    pub took: Duration,
}

/// Counters and the answer-time histogram, for `/metrics`.
#[derive(Debug)]
pub struct VerdictStats {
    pub allow: AtomicU64,
    pub ask: AtomicU64,
    pub deny: AtomicU64,
    pub deadline: AtomicU64,
    pub overload: AtomicU64,
    /// From the call reaching the gate to its answer.
    pub answer_time: Histogram,
}

impl Default for VerdictStats {
    fn default() -> Self {
        VerdictStats {
            allow: AtomicU64::new(0),
            ask: AtomicU64::new(0),
            deny: AtomicU64::new(0),
            deadline: AtomicU64::new(0),
            overload: AtomicU64::new(0),
            answer_time: Histogram::new(LATENCY_BOUNDS),
        }
    }
}

impl VerdictStats {
    /// Appends the verdict families to a `/metrics` page.
    pub fn render(&self, p: &mut Exposition) {
        p.family(
            "plumbline_verdicts_total",
            "counter",
            "Inline verdicts on agents' pending calls, by answer and by what decided it",
        );
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        for (answer, c) in [
            ("allow", &self.allow),
            ("ask", &self.ask),
            ("deny", &self.deny),
        ] {
            p.sample("plumbline_verdicts_total", &[("answer", answer)], n(c));
        }
        p.single(
            "plumbline_verdict_fallbacks_total",
            "counter",
            "Verdicts answered by verdict.on_timeout: the deadline passed or too many were in flight",
            n(&self.deadline) + n(&self.overload),
        );
        p.histogram(
            "plumbline_verdict_answer_seconds",
            "From a pending call reaching the gate to its answer",
            &self.answer_time,
        );
    }
}

/// Judges pending calls. Cheap to share; one per service.
pub struct Gate {
    stage: Arc<TrajectoryStage>,
    evaluator: Arc<dyn Evaluator>,
    writer: Writer,
    config: VerdictConfig,
    in_flight: Arc<Semaphore>,
    pub stats: Arc<VerdictStats>,
}

impl Gate {
    pub fn new(
        stage: Arc<TrajectoryStage>,
        evaluator: Arc<dyn Evaluator>,
        writer: Writer,
        config: VerdictConfig,
    ) -> Gate {
        Gate {
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            stage,
            evaluator,
            writer,
            config,
            stats: Arc::default(),
        }
    }

    pub fn config(&self) -> &VerdictConfig {
        &self.config
    }

    /// Judges `pending` (already stored) and records the decision on its session.
    pub async fn decide(&self, pending: &Event) -> Decision {
        let started = Instant::now();
        let decision = match self.in_flight.clone().try_acquire_owned() {
            Err(_) => self.fallback(Basis::Overload, started),
            Ok(permit) => {
                let deadline = Duration::from_millis(self.config.deadline_ms);
                // The session's earlier calls were acknowledged before this one: the story
                // is judged once the stage has applied them (a loaded machine's builder may
                // be a batch behind), within the same deadline.
                if let Some(stored) = self.stage.stored_seq() {
                    while self.stage.applied_seq() < stored && started.elapsed() < deadline {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                let (stage, evaluator) = (self.stage.clone(), self.evaluator.clone());
                let call = Arc::new(pending.clone());
                // The permit is held by the judging thread, not the answer: a call past
                // its deadline still occupies a slot until its detectors return.
                let judging = tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    let t = stage.preview(TrajectoryKind::Actor, &call);
                    evaluator.evaluate_pending(&t, &call.id)
                });
                match tokio::time::timeout(deadline.saturating_sub(started.elapsed()), judging)
                    .await
                {
                    Ok(Ok(evaluation)) => self.judged(evaluation.findings, started),
                    Ok(Err(e)) => {
                        tracing::error!(call = %pending.id, "verdict failed: {e}");
                        self.fallback(Basis::Deadline, started)
                    }
                    Err(_) => self.fallback(Basis::Deadline, started),
                }
            }
        };
        self.count(&decision);
        self.record(pending, &decision);
        decision
    }

    fn judged(&self, mut findings: Vec<Finding>, started: Instant) -> Decision {
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(b.score.total_cmp(&a.score))
        });
        let top = findings.first();
        let permission = self.config.permission_for(top.map_or(0, |f| f.severity));
        let reason = match (permission, top) {
            (Permission::Allow, _) | (_, None) => String::new(),
            (_, Some(f)) => {
                let mut r = format!(
                    "Plumbline: {} ({} by {}, severity {}).",
                    f.title.trim(),
                    f.signal,
                    f.detector,
                    f.severity
                );
                if !f.next_step.trim().is_empty() {
                    r.push(' ');
                    r.push_str(f.next_step.trim());
                }
                r
            }
        };
        Decision {
            permission,
            reason,
            basis: Basis::Judged,
            findings,
            took: started.elapsed(),
        }
    }

    fn fallback(&self, basis: Basis, started: Instant) -> Decision {
        let why = match basis {
            Basis::Overload => "too many calls are being judged at once",
            _ => "the call could not be judged in time",
        };
        Decision {
            permission: self.config.on_timeout,
            reason: format!(
                "Plumbline: {why} ({} ms); verdict.on_timeout answers {}.",
                self.config.deadline_ms,
                self.config.on_timeout.as_str()
            ),
            basis,
            findings: Vec::new(),
            took: started.elapsed(),
        }
    }

    fn count(&self, d: &Decision) {
        let s = &self.stats;
        let c = match d.permission {
            Permission::Allow => &s.allow,
            Permission::Ask => &s.ask,
            Permission::Deny => &s.deny,
        };
        c.fetch_add(1, Ordering::Relaxed);
        match d.basis {
            Basis::Deadline => s.deadline.fetch_add(1, Ordering::Relaxed),
            Basis::Overload => s.overload.fetch_add(1, Ordering::Relaxed),
            Basis::Judged => 0,
        };
        s.answer_time.observe(d.took.as_secs_f64());
    }

    /// Writes the decision onto the session after the answer is on its way: the agent does
    /// not wait for a second durable write, and a lost record loses no accepted event.
    fn record(&self, pending: &Event, d: &Decision) {
        let event = match decision_event(pending, d) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(call = %pending.id, "verdict record refused: {e}");
                return;
            }
        };
        let writer = self.writer.clone();
        tokio::spawn(async move {
            if let Err(e) = writer.write(vec![event]).await {
                tracing::warn!("verdict not recorded: {e}");
            }
        });
    }
}

/// The `agent.verdict` event: on the call's session (same actor, system and time, so it
/// sorts right after the call), citing it.
pub fn decision_event(pending: &Event, d: &Decision) -> Result<Event, String> {
    let signals: Vec<&str> = d.findings.iter().map(|f| f.signal.as_str()).collect();
    let mut attributes = json!({
        "verdict.decision": d.permission.as_str(),
        "verdict.basis": d.basis.as_str(),
        "verdict.call": pending.id,
        "verdict.took_us": d.took.as_micros() as u64,
        "verdict.signals": signals.join(","),
    });
    if !d.reason.is_empty() {
        attributes["verdict.reason"] = d.reason.clone().into();
    }
    for key in ["agent.name", "agent.session", "agent.user", "agent.cwd"] {
        if let Some(v) = pending.attributes.get(key) {
            attributes[key] = v.clone();
        }
    }
    parse_event(json!({
        "id": format!("{}:verdict", pending.id),
        "time": format_time(pending.time),
        "source": pending.source.as_str(),
        "actor": pending.actor,
        "system": pending.system,
        "action": VERDICT_ACTION,
        "resource": pending.id,
        "environment": pending.environment,
        "attributes": attributes,
    }))
    .map_err(|e| e.to_string())
}
