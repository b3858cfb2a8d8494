//! Plumbline: stores coding-traffic events, stitches them into trajectories, runs sandboxed
//! WebAssembly detectors over them and raises alerts. Stages follow the data flow:
//! `ingest` → `store` → `trajectory` → `runtime` → alerts → `summary` → `policy` → `route`.

pub mod api;
pub mod cli;
pub mod config;
pub mod demo;
pub mod review;
pub mod serve;

pub use plumbline_alert as alert;
pub use plumbline_delivery::{respond, route};
pub use plumbline_event as event;
pub use plumbline_event::redact;
pub use plumbline_ingest as ingest;
pub use plumbline_metrics as metrics;
pub use plumbline_policy as policy;
pub use plumbline_runtime as runtime;
pub use plumbline_runtime::pack;
pub use plumbline_store as store;
pub use plumbline_summary as summary;
pub use plumbline_trajectory as trajectory;
