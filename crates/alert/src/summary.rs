//! The summary a reviewer reads first: a narrative, the risk, and the reasons with the
//! events each rests on. Written by the LLM (the summary stage) or, without one, by
//! [`crate::fallback`] from the findings alone.

use serde::{Deserialize, Serialize};

use plumbline_trajectory::Severity;

/// What the model must answer (and what the fallback produces): the shape of the strict
/// JSON schema the summary stage asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// One paragraph: what happened, where, and why it looks risky.
    pub narrative: String,
    /// 1 informational, 2 needs review, 3 urgent.
    pub risk: Severity,
    /// Short signal names (`new external webhook`, `privilege increase`).
    pub signals: Vec<String>,
    /// Each reason rests on events of the trajectory.
    pub reasons: Vec<Reason>,
    /// What a reviewer should do next.
    pub next_step: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    pub reason: String,
    pub event_ids: Vec<String>,
}

impl Summary {
    /// The text stored in `Alert::summary`.
    pub fn render(&self) -> String {
        let mut s = self.narrative.trim().to_string();
        if !self.reasons.is_empty() {
            s.push_str("\n\nWhy:");
            for r in &self.reasons {
                s.push_str(&format!(
                    "\n- {} (events: {})",
                    r.reason.trim(),
                    r.event_ids.join(", ")
                ));
            }
        }
        if !self.next_step.trim().is_empty() {
            s.push_str("\n\nSuggested next step: ");
            s.push_str(self.next_step.trim());
        }
        s
    }
}
