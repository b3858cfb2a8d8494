//! The seams between trajectories and the stages after them: the detector stage
//! ([`Evaluator`]) and where its results are kept ([`Outcomes`], the alert book). The
//! trajectory stage only calls these; it never reads alerts back, so it does not depend on
//! the alert crate.

use std::sync::Arc;

use plumbline_store::StoreError;

use crate::finding::Finding;

use super::Trajectory;

/// Runs detectors over a trajectory. Implementations contain every detector failure
/// (trap, deadline, junk output): a broken detector yields no findings, never a panic.
pub trait Evaluator: Send + Sync + 'static {
    /// Findings that raise alerts, and findings of shadow detectors (recorded, never routed).
    fn evaluate(&self, trajectory: &Trajectory) -> Evaluation;

    /// Judges a pending event (an agent's call that has not run yet) on the trajectory it
    /// would join (`trajectory` holds it): only findings citing it. Every detector is asked
    /// here; the detector runtime asks only those whose interests match the event.
    fn evaluate_pending(&self, trajectory: &Trajectory, pending: &str) -> Evaluation {
        let mut out = self.evaluate(trajectory);
        out.findings
            .retain(|f| f.evidence.iter().any(|id| id == pending));
        out.shadow
            .retain(|f| f.evidence.iter().any(|id| id == pending));
        out
    }

    /// A settle re-evaluation: the trajectory did not change, time passed (detectors
    /// whose verdict depends on the clock judge it again).
    fn evaluate_settled(&self, trajectory: &Trajectory) -> Evaluation {
        self.evaluate(trajectory)
    }

    /// The trajectory `id` closed or took a new id (an earlier event, a merge): whatever
    /// the evaluator keeps for it (incremental detectors' state) can go.
    fn forget(&self, _id: &str) {}

    /// What the evaluator keeps for the open trajectory `id`, saved with the trajectory
    /// checkpoint (none: nothing to save).
    fn snapshot(&self, _id: &str) -> Option<Vec<u8>> {
        None
    }

    /// Gives back what [`Evaluator::snapshot`] returned for `id` before a restart.
    fn restore(&self, _id: &str, _saved: &[u8]) {}
}

#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    pub findings: Vec<Finding>,
    pub shadow: Vec<Finding>,
}

/// The empty detector set: every trajectory evaluates to nothing.
pub struct NoDetectors;

impl Evaluator for NoDetectors {
    fn evaluate(&self, _: &Trajectory) -> Evaluation {
        Evaluation::default()
    }
}

/// Where evaluations are recorded. An error leaves the trajectory's hash unrecorded, so
/// the next change evaluates it again.
pub trait Outcomes: Send + Sync + 'static {
    /// Records one evaluation of `t` (findings raise or grow its alert; shadow findings are
    /// kept apart and never routed).
    fn record(&self, t: &Arc<Trajectory>, evaluation: &Evaluation) -> Result<(), StoreError>;

    /// The trajectory `old` now goes by `t.id` (an earlier event, or a merge).
    fn renamed(&self, old: &str, t: &Arc<Trajectory>) -> Result<(), StoreError>;
}

/// Keeps nothing (stage tests and tools that only build trajectories).
pub struct Discard;

impl Outcomes for Discard {
    fn record(&self, _: &Arc<Trajectory>, _: &Evaluation) -> Result<(), StoreError> {
        Ok(())
    }
    fn renamed(&self, _: &str, _: &Arc<Trajectory>) -> Result<(), StoreError> {
        Ok(())
    }
}
