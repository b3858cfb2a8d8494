//! The review page and its HTTP endpoints over the review read model (plumbline-review).

pub use plumbline_review::*;

pub mod api;
pub mod metrics;
pub mod page;
