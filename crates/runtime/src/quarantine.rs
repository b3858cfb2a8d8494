//! Health of one loaded detector: call and failure counters, and quarantine after N
//! failures in a row. Quarantine lasts until the detector is reloaded (a new version or a
//! restart gives it a fresh record), so a flapping detector cannot keep costing deadlines.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

/// Why a call produced no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The epoch deadline passed.
    Deadline,
    /// The memory cap was reached.
    Memory(String),
    /// The guest's stack overflowed.
    StackOverflow,
    /// Any other trap (a Rust panic, an unreachable, a Python exception escaping).
    Trap(String),
    /// The answer broke the contract (invented evidence, bad severity, oversized output).
    Contract(String),
    /// The detector returned its own error.
    Detector(String),
    /// The instance could not be created.
    Instantiate(String),
}

impl Failure {
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Deadline => "deadline",
            Failure::Memory(_) => "memory",
            Failure::StackOverflow => "stack-overflow",
            Failure::Trap(_) => "trap",
            Failure::Contract(_) => "contract",
            Failure::Detector(_) => "detector-error",
            Failure::Instantiate(_) => "instantiate",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Deadline => f.write_str("deadline exceeded"),
            Failure::StackOverflow => f.write_str("stack overflow"),
            Failure::Memory(m) => write!(f, "memory: {m}"),
            Failure::Trap(m) => write!(f, "trap: {m}"),
            Failure::Contract(m) => write!(f, "contract violation: {m}"),
            Failure::Detector(m) => write!(f, "detector error: {m}"),
            Failure::Instantiate(m) => write!(f, "cannot instantiate: {m}"),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Quarantine {
    pub reason: String,
    /// RFC 3339.
    pub since: String,
}

#[derive(Debug, Default)]
pub struct Health {
    calls: AtomicU64,
    failures: AtomicU64,
    consecutive: AtomicU32,
    findings: AtomicU64,
    skipped: AtomicU64,
    last_failure: Mutex<Option<String>>,
    quarantine: Mutex<Option<Quarantine>>,
}

/// A snapshot for status reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HealthReport {
    pub calls: u64,
    pub failures: u64,
    pub consecutive_failures: u32,
    pub findings: u64,
    /// Trajectories not offered because they did not touch the detector's interests.
    pub skipped: u64,
    pub last_failure: Option<String>,
    pub quarantine: Option<Quarantine>,
}

impl Health {
    pub fn is_quarantined(&self) -> bool {
        self.quarantine.lock().expect("health lock").is_some()
    }

    pub fn skipped(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn succeeded(&self, findings: usize) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.findings.fetch_add(findings as u64, Ordering::Relaxed);
        self.consecutive.store(0, Ordering::Relaxed);
    }

    /// Records a failure; returns the quarantine if this failure caused it. A failure
    /// `by_input_size` is counted but leaves the run of consecutive failures as it was.
    pub fn failed(
        &self,
        failure: &Failure,
        by_input_size: bool,
        quarantine_after: u32,
    ) -> Option<Quarantine> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
        *self.last_failure.lock().expect("health lock") = Some(failure.to_string());
        if by_input_size {
            return None;
        }
        let n = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        if n < quarantine_after {
            return None;
        }
        let mut q = self.quarantine.lock().expect("health lock");
        if q.is_some() {
            return None;
        }
        let set = Quarantine {
            reason: format!("{n} failures in a row; last: {failure}"),
            since: plumbline_event::format_time(time::OffsetDateTime::now_utc()),
        };
        *q = Some(set.clone());
        Some(set)
    }

    /// Lifts a quarantine (an operator's decision after a fix elsewhere, e.g. config).
    pub fn release(&self) -> bool {
        self.consecutive.store(0, Ordering::Relaxed);
        self.quarantine
            .lock()
            .expect("health lock")
            .take()
            .is_some()
    }

    pub fn report(&self) -> HealthReport {
        HealthReport {
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            consecutive_failures: self.consecutive.load(Ordering::Relaxed),
            findings: self.findings.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            last_failure: self.last_failure.lock().expect("health lock").clone(),
            quarantine: self.quarantine.lock().expect("health lock").clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantine_after_n_in_a_row_only() {
        let h = Health::default();
        assert!(h.failed(&Failure::Deadline, false, 3).is_none());
        assert!(h.failed(&Failure::Deadline, false, 3).is_none());
        h.succeeded(1);
        assert!(h.failed(&Failure::Deadline, false, 3).is_none());
        assert!(h.failed(&Failure::Deadline, false, 3).is_none());
        assert!(!h.is_quarantined());
        let q = h
            .failed(&Failure::Trap("boom".into()), false, 3)
            .expect("quarantined");
        assert!(
            q.reason.contains("3 failures in a row; last: trap: boom"),
            "{}",
            q.reason
        );
        assert!(h.is_quarantined());
        // Later failures do not re-announce it.
        assert!(h.failed(&Failure::Deadline, false, 3).is_none());
        let r = h.report();
        assert_eq!((r.calls, r.failures, r.findings), (7, 6, 1));
        assert!(h.release());
        assert!(!h.is_quarantined());
    }

    /// Deadlines on huge inputs are the input's doing: counted, never a quarantine.
    #[test]
    fn failures_caused_by_input_size_do_not_quarantine() {
        let h = Health::default();
        for _ in 0..10 {
            assert!(h.failed(&Failure::Deadline, true, 3).is_none());
        }
        let r = h.report();
        assert_eq!((r.failures, r.consecutive_failures), (10, 0));
        assert!(r.quarantine.is_none() && r.last_failure.is_some());
        // The detector's own failures still count.
        assert!(h.failed(&Failure::Deadline, false, 2).is_none());
        assert!(h.failed(&Failure::Deadline, false, 2).is_some());
    }
}
