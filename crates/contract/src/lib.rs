//! # plumbline-contract
//!
//! The detector contract (`plumbline:detector@0.1.0`, `wit/`) in plain Rust, and the one
//! implementation of every rule the host, the SDK and the detector kit must agree on:
//!
//! | module | what |
//! | --- | --- |
//! | [`types`] | [`Event`], [`Trajectory`], [`Finding`], [`Info`], … — the WIT records field for field, with the host's JSON form |
//! | [`query`] | what detectors ask of events and trajectories (`e.is("git.push.*")`, `t.preceded_by(..)`, `t.sequences(..)`) |
//! | [`interest`] | [`action_matches`], [`reads_view`], [`reads_event`]: which trajectories a detector is offered |
//! | [`check`] | [`check_info`], [`check_findings`], [`Limits`], [`TITLE_MAX`]: what `info()` and every answer must satisfy |
//! | [`fixture`] | the fixture file format, its "now" rule, [`fixture::compare`], [`fixture::fixture_files`] |
//! | [`glob`] | name globs ([`glob::matches`]) and path globs ([`glob::path_matches`]), [`glob::valid`] |
//! | [`config`] | config values as typed settings: [`ConfigSource`], [`FromConfig`] |
//! | [`time`] | RFC 3339 ⇄ unix nanoseconds |
//! | [`model`] | a detector's question to the host's language model, the answer, and [`parse_judgement`]: what a model's answer must be before a detector sees it |
//!
//! It depends on `serde` and `serde_json` only and builds natively and for
//! `wasm32-wasip2`: detectors carry it inside their components, the host links it natively.
//!
//! ## How the host uses it
//!
//! The host keeps its own types (its event with `OffsetDateTime`, its WIT bindings, its
//! attributed findings) and calls these functions on them:
//!
//! - **Loading a detector** (`runtime/contract.rs`): convert the component's
//!   `wit::DetectorInfo` into an [`Info`] once (field for field; views map one to one onto
//!   [`TrajectoryKind`]) and call [`check_info`]. Keep the `Info` beside the detector.
//! - **Every answer** (`runtime/contract.rs`): implement [`FindingFields`] for
//!   `wit::Finding` (six accessors), then
//!   `check_findings(&info, wit_trajectory.events.iter().map(|e| e.id.as_str()), &limits, &found)`
//!   with `Limits { max_findings, max_output_bytes }` from `[runtime]`
//!   ([`Limits::default`] equals the defaults in `crates/runtime/config.toml`). On `Ok`,
//!   attribute the findings (detector name and version) and drop repeated evidence ids as
//!   today; the error texts are the host's.
//! - **Interest** (`runtime/interest.rs`): [`reads_view`]`(&info.views, kind)` replaces
//!   `Interest::reads_view` (same rule: no views = the actor and system windows);
//!   [`reads_event`] per (source, action) replaces the body of `matches_any`; the host's
//!   `action_matches` is [`action_matches`].
//! - **Fixtures** (`runtime/fixture.rs`, `plumbline detector test`, pack self-tests):
//!   `Fixture::<serde_json::Value>::load(path)` / `::parse(path, text)` gives the same
//!   structure with each event as raw JSON, sorted and with the trajectory id defaulted;
//!   run each event through the host's own validation into its event type (or implement
//!   [`fixture::FixtureEvent`] for the host event and use `Fixture<HostEvent>` directly).
//!   Build the host trajectory from it: `start()` / `end()` give the trajectory bounds,
//!   [`Fixture::now`] the pinned clock, `trajectory.hash` an explicit hash if any.
//!   Before calling the detector, [`Fixture::check_view`]`(&info.views)` — a fixture of a
//!   kind the detector does not read fails, as in the SDK's harness. After the contract
//!   check, implement [`FindingFields`] for the host's finding and call
//!   [`Fixture::compare`]. [`fixture::fixture_files`] lists a directory;
//!   [`fixture::FixtureError`] has the host's messages.
//! - **Globs**: `policy/matcher.rs` `glob` → [`glob::matches`], `glob_valid` →
//!   [`glob::valid`]; `trajectory/window.rs` `glob` (grant and drift actions) →
//!   [`glob::matches`]; `respond/mod.rs` (automatic signals) → [`glob::matches`];
//!   `ingest/adapter.rs` `glob_match` (branch protection patterns) →
//!   [`glob::path_matches`]. See [`glob`] for the semantics and why they are
//!   case-sensitive.

pub mod check;
pub mod config;
pub mod fixture;
pub mod glob;
pub mod interest;
pub mod model;
pub mod query;
pub mod time;
pub mod types;

pub use check::{check_findings, check_info, FindingFields, Limits, NAME_MAX, TITLE_MAX};
pub use config::{ConfigSource, FromConfig};
pub use fixture::{Expected, Fixture};
pub use interest::{action_matches, reads_event, reads_view};
pub use model::{parse_judgement, Judgement, ModelAnswer, Question, Reason};
pub use query::{EventMatch, Totals};
pub use time::{format_time, parse_time};
pub use types::*;
