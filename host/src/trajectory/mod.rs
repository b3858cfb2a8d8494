//! Trajectories: events stitched into the story of one actor or one system over a window,
//! built incrementally as batches become durable, persisted, content-hashed, and queued
//! for evaluation.

pub mod aliases;
pub mod evaluate;
pub mod model;
pub mod persist;
pub mod stage;
pub mod window;

pub use evaluate::{Evaluation, Evaluator};
pub use model::{Trajectory, TrajectoryKind};
pub use stage::TrajectoryStage;

#[cfg(test)]
mod tests;
