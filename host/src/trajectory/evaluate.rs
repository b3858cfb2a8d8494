//! The seam between trajectories and the detector stage.

use crate::alert::finding::Finding;

use super::Trajectory;

/// Runs detectors over a trajectory. Implementations contain every detector failure
/// (trap, deadline, junk output): a broken detector yields no findings, never a panic.
pub trait Evaluator: Send + Sync + 'static {
    /// Findings that raise alerts, and findings of shadow detectors (recorded, never routed).
    fn evaluate(&self, trajectory: &Trajectory) -> Evaluation;
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
