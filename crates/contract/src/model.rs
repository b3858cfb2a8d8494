//! A detector's question to the host's language model and the answer it gets
//! (`plumbline:detector@0.2.0`, interface `model`), and the one rule every answer must pass
//! ([`parse_judgement`]) — the host validates the model's text with it before a detector
//! sees it, so a detector may cite a judgement's evidence as its own.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Longest instructions a question may carry.
pub const INSTRUCTIONS_MAX: usize = 4096;
/// Most events one question may show the model.
pub const QUESTION_EVENTS_MAX: usize = 200;
/// Most reasons kept from one judgement, and longest text of one.
pub const REASONS_MAX: usize = 10;
pub const REASON_TEXT_MAX: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    /// What to judge and how.
    pub instructions: String,
    /// Ids of the events to show, each given or read on this trajectory.
    pub events: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub text: String,
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judgement {
    /// 1 routine, 2 needs review, 3 urgent.
    pub risk: u8,
    pub reasons: Vec<Reason>,
    /// The model that answered.
    pub model: String,
}

impl Judgement {
    /// Every event a reason cites, in order of first citation.
    pub fn evidence(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.reasons
            .iter()
            .flat_map(|r| r.evidence.iter())
            .filter(|id| seen.insert(id.as_str()))
            .cloned()
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelAnswer {
    Ready(Judgement),
    /// Asked; the host observes the trajectory again when the answer arrives.
    Pending,
    /// Why there is no judgement: no model, over budget, an answer refused.
    Unavailable(String),
}

impl Question {
    /// What is wrong with the question itself, if anything.
    pub fn check(&self) -> Result<(), String> {
        if self.instructions.trim().is_empty() {
            return Err("the question has no instructions".into());
        }
        if self.instructions.len() > INSTRUCTIONS_MAX {
            return Err(format!(
                "instructions are {} bytes (at most {INSTRUCTIONS_MAX})",
                self.instructions.len()
            ));
        }
        if self.events.is_empty() {
            return Err("the question shows no events".into());
        }
        if self.events.len() > QUESTION_EVENTS_MAX {
            return Err(format!(
                "the question shows {} events (at most {QUESTION_EVENTS_MAX})",
                self.events.len()
            ));
        }
        Ok(())
    }
}

/// The model's answer text as a [`Judgement`]: strict JSON
/// `{"risk": 1|2|3, "reasons": [{"text": "…", "evidence": ["<event id>", …]}, …]}`, every
/// reason citing at least one event, each among `shown` (the question's events). Anything
/// else is refused with the reason: a model that cites an event it was not shown, or none,
/// has not read the story it rates.
pub fn parse_judgement(text: &str, shown: &[String], model: &str) -> Result<Judgement, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Answer {
        risk: u8,
        reasons: Vec<Reason>,
    }
    let body = text.trim();
    // Models often fence JSON; the fence is not part of the answer.
    let body = body
        .strip_prefix("```json")
        .or_else(|| body.strip_prefix("```"))
        .and_then(|b| b.strip_suffix("```"))
        .map(str::trim)
        .unwrap_or(body);
    let a: Answer = serde_json::from_str(body)
        .map_err(|e| format!("the answer is not the JSON asked for: {e}"))?;
    if !(1..=3).contains(&a.risk) {
        return Err(format!("risk {} is not 1, 2 or 3", a.risk));
    }
    if a.reasons.is_empty() {
        return Err("the answer gives no reasons".into());
    }
    let shown: BTreeSet<&str> = shown.iter().map(String::as_str).collect();
    let mut reasons = Vec::new();
    for (i, r) in a.reasons.into_iter().take(REASONS_MAX).enumerate() {
        if r.evidence.is_empty() {
            return Err(format!("reason {i} cites no event"));
        }
        if let Some(bad) = r.evidence.iter().find(|id| !shown.contains(id.as_str())) {
            return Err(format!(
                "reason {i} cites {bad:?}, an event it was not shown"
            ));
        }
        let text: String = r
            .text
            .chars()
            .filter(|c| !c.is_control())
            .take(REASON_TEXT_MAX)
            .collect();
        reasons.push(Reason {
            text,
            evidence: r.evidence,
        });
    }
    Ok(Judgement {
        risk: a.risk,
        reasons,
        model: model.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown() -> Vec<String> {
        vec!["e1".into(), "e2".into(), "e3".into()]
    }

    #[test]
    fn a_strict_answer_citing_shown_events_is_a_judgement() {
        let j = parse_judgement(
            "```json\n{\"risk\": 3, \"reasons\": [{\"text\": \"read .env then uploaded it\", \"evidence\": [\"e1\", \"e3\"]}, {\"text\": \"again\", \"evidence\": [\"e3\"]}]}\n```",
            &shown(),
            "m",
        )
        .unwrap();
        assert_eq!((j.risk, j.model.as_str()), (3, "m"));
        assert_eq!(j.evidence(), ["e1", "e3"]);
    }

    #[test]
    fn answers_that_break_the_rule_are_refused_by_name() {
        let refused = |t: &str| parse_judgement(t, &shown(), "m").unwrap_err();
        assert!(
            refused(r#"{"risk": 3, "reasons": [{"text": "x", "evidence": ["e9"]}]}"#)
                .contains("cites \"e9\", an event it was not shown")
        );
        assert!(
            refused(r#"{"risk": 4, "reasons": [{"text": "x", "evidence": ["e1"]}]}"#)
                .contains("risk 4")
        );
        assert!(refused(r#"{"risk": 2, "reasons": []}"#).contains("no reasons"));
        assert!(
            refused(r#"{"risk": 2, "reasons": [{"text": "x", "evidence": []}]}"#)
                .contains("cites no event")
        );
        assert!(refused("It looks risky to me.").contains("not the JSON asked for"));
        assert!(refused(r#"{"risk": 2, "reasons": [], "extra": 1}"#).contains("not the JSON"));
    }

    #[test]
    fn a_question_is_bounded() {
        let q = |instructions: &str, n: usize| Question {
            instructions: instructions.into(),
            events: (0..n).map(|i| format!("e{i}")).collect(),
        };
        assert!(q("rate it", 3).check().is_ok());
        assert!(q(" ", 3).check().unwrap_err().contains("no instructions"));
        assert!(q("rate it", 0).check().unwrap_err().contains("no events"));
        assert!(q("rate it", 201)
            .check()
            .unwrap_err()
            .contains("at most 200"));
        assert!(q(&"x".repeat(5000), 1)
            .check()
            .unwrap_err()
            .contains("5000 bytes"));
    }
}
