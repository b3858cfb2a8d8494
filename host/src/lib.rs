//! Plumbline: stores coding-traffic events, stitches them into trajectories, runs sandboxed
//! WebAssembly detectors over them and raises alerts. Stages follow the data flow:
//! `ingest` → `store` → `trajectory` → `runtime` → alerts → `summary` → `policy` → `route`.

pub mod alert;
pub mod api;
pub mod cli;
pub mod config;
pub mod demo;
pub mod event;
pub mod ingest;
pub mod metrics;
pub mod pack;
pub mod policy;
pub mod redact;
pub mod respond;
pub mod review;
pub mod route;
pub mod runtime;
pub mod serve;
pub mod store;
pub mod summary;
pub mod trajectory;
