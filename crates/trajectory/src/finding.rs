//! What a detector reports: a signal, a severity, and the events it rests on.

use serde::{Deserialize, Serialize};

/// Severity 1 informational, 2 needs review, 3 urgent (the brief's three levels).
pub type Severity = u8;

pub const INFORMATIONAL: Severity = 1;
pub const NEEDS_REVIEW: Severity = 2;
pub const URGENT: Severity = 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Detector that produced it, and its version.
    pub detector: String,
    pub detector_version: String,
    /// Signal name, e.g. `exfil.large_export_new_destination`.
    pub signal: String,
    pub severity: Severity,
    /// Detector's confidence, 0.0–1.0.
    pub score: f32,
    /// One-line title a reviewer reads first.
    pub title: String,
    /// Ids of the events this finding rests on. Never empty.
    pub evidence: Vec<String>,
    /// Suggested next step (review diff, rotate key, pause workflow, ask for justification).
    pub next_step: String,
}

impl Finding {
    /// Identity for de-duplication across re-evaluations of a growing trajectory.
    pub fn key(&self) -> (String, String, Vec<String>) {
        let mut ev = self.evidence.clone();
        ev.sort();
        (self.detector.clone(), self.signal.clone(), ev)
    }
}

/// The contract's checks and fixture comparison read attributed findings as they are.
impl plumbline_contract::FindingFields for Finding {
    fn signal(&self) -> &str {
        &self.signal
    }
    fn severity(&self) -> u8 {
        self.severity
    }
    fn score(&self) -> f32 {
        self.score
    }
    fn title(&self) -> &str {
        &self.title
    }
    fn evidence(&self) -> &[String] {
        &self.evidence
    }
    fn next_step(&self) -> &str {
        &self.next_step
    }
}

/// Identity of a set of findings (order-free): a cached summary is reused only for the
/// findings the model saw, and a routing decision counts as made for the findings it
/// was made on (a new detector finding on the same events is a new question).
pub fn findings_fingerprint(findings: &[Finding]) -> String {
    use sha2::Digest as _;
    let mut keys: Vec<String> = findings
        .iter()
        .map(|f| {
            let mut ev = f.evidence.clone();
            ev.sort();
            serde_json::to_string(&(
                &f.detector,
                &f.detector_version,
                &f.signal,
                f.severity,
                &f.title,
                ev,
            ))
            .expect("finding keys serialise")
        })
        .collect();
    keys.sort();
    let mut h = sha2::Sha256::new();
    for k in keys {
        h.update((k.len() as u32).to_le_bytes());
        h.update(k.as_bytes());
    }
    hex::encode(h.finalize())
}
