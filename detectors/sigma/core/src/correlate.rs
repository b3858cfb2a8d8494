//! Correlation rules over one trajectory's events, with rsigma's correlation engine: the
//! events are fed in time order at their own times (not the clock's), detections are the
//! rules that read the event's source and match it (worked out once, by
//! [`crate::findings`], for its own findings too), and each firing names the events of its
//! window, which the finding cites.

use std::collections::BTreeMap;

use plumbline_sdk::*;
use rsigma_eval::event::JsonEvent;
use rsigma_eval::{
    CorrelationConfig, CorrelationEngine, CorrelationEventMode, EvaluationResult, TimestampFallback,
};
use serde_json::Value;

use crate::{id, severity, RuleSet, CORRELATION_SIGNAL};

/// The key under which a record fed to the engine carries its event's id (read back from
/// the events a correlation result holds).
const EVENT_ID: &str = "_plumbline_event";
/// Most events one correlation finding cites.
const MAX_CITED: usize = 25;

/// The correlations of a rule set, fed a trajectory's events in time order; one finding
/// per (correlation, group) that fired, the last firing's window cited.
pub struct Correlator<'s> {
    set: &'s RuleSet,
    engine: CorrelationEngine,
    // (correlation, group) → the last firing: its finding.
    fired: BTreeMap<(usize, String), Finding>,
}

impl<'s> Correlator<'s> {
    pub fn new(set: &'s RuleSet) -> Result<Correlator<'s>, AnalyzeError> {
        let config = CorrelationConfig {
            // Every event has a time; nothing here is measured against the wall clock.
            timestamp_fallback: TimestampFallback::Skip,
            correlation_event_mode: CorrelationEventMode::Full,
            max_correlation_events: MAX_CITED,
            max_state_entries: 10_000,
            ..CorrelationConfig::default()
        };
        let mut engine = CorrelationEngine::new(config);
        let refused = |what: &str, e: rsigma_eval::EvalError| {
            AnalyzeError::new(format!("sigma rule `{what}`: refused by the engine: {e}"))
        };
        for r in &set.rules {
            engine
                .add_rule(&r.parsed)
                .map_err(|e| refused(&r.label, e))?;
        }
        for c in &set.correlations {
            engine
                .add_correlation(&c.parsed)
                .map_err(|e| refused(&c.label, e))?;
        }
        Ok(Correlator {
            set,
            engine,
            fired: BTreeMap::new(),
        })
    }

    /// Feeds one event: `rec` its record (as the rules matched it), `detections` the
    /// rules that read and matched it. Events come in (time, id) order.
    pub fn feed(&mut self, e: &Event, mut rec: Value, detections: Vec<EvaluationResult>) {
        if detections.is_empty() {
            return;
        }
        if let Value::Object(m) = &mut rec {
            m.insert(EVENT_ID.into(), Value::from(e.id.as_str()));
        }
        let at = e.time.div_euclid(1_000_000_000);
        let results = self
            .engine
            .process_with_detections(&JsonEvent::borrow(&rec), detections, at);
        for res in results {
            let Some(body) = res.as_correlation() else {
                continue;
            };
            let Some((i, c)) = self.set.correlations.iter().enumerate().find(|(_, c)| {
                c.id.is_some() && c.id == res.header.rule_id || c.title == res.header.rule_title
            }) else {
                continue;
            };
            let group: Vec<String> = body
                .group_key
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let mut cited: Vec<String> = body
                .events
                .iter()
                .flatten()
                .filter_map(|v| v.get(EVENT_ID).and_then(Value::as_str))
                .map(str::to_string)
                .collect();
            if !cited.contains(&e.id) {
                cited.push(e.id.clone());
            }
            let shown = if group.is_empty() {
                String::new()
            } else {
                format!(" ({})", group.join(", "))
            };
            let finding = Finding::new(
                CORRELATION_SIGNAL,
                severity(c.severity),
                title(format!("Sigma: {}{}{shown}", c.title, id(&c.id))),
            )
            .evidence_ids(cited)
            .score(0.8)
            .next_step(c.next_step.clone());
            self.fired.insert((i, group.join("\u{1f}")), finding);
        }
    }

    pub fn findings(self) -> Vec<Finding> {
        self.fired.into_values().collect()
    }
}
