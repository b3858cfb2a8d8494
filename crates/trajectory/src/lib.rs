//! Trajectories: events stitched into the story of one actor or one system over a window,
//! built incrementally as batches become durable, persisted, content-hashed, and queued
//! for evaluation. Evaluations go out through two seams ([`Evaluator`], [`Outcomes`]) so
//! this crate knows neither detectors nor alerts.

pub mod aliases;
mod config;
pub mod evaluate;
pub mod finding;
pub mod judge;
pub mod model;
pub mod persist;
pub mod stage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod window;

pub use config::{TrajectoryConfig, DEFAULT_CONFIG};
pub use evaluate::{Discard, Evaluation, Evaluator, NoDetectors, Outcomes};
pub use finding::{Finding, Severity};
pub use judge::{JudgeRequest, ModelJudge, NoModel};
pub use model::{Events, Side, Trajectory, TrajectoryKind};
pub use stage::TrajectoryStage;

#[cfg(test)]
mod tests;
