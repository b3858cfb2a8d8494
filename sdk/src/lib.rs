//! # plumbline-sdk
//!
//! Write a Plumbline detector in Rust: a struct, one [`Detector`] impl and
//! [`register_detector!`]. The same code runs natively over fixture files
//! ([`testing::run_fixtures`], in `cargo test`) and as a WebAssembly component
//! (`cargo build --release --target wasm32-wasip2`) inside the host.
//!
//! ```ignore
//! use plumbline_sdk::*;
//!
//! #[derive(Default)]
//! struct ForcePush;
//!
//! impl Detector for ForcePush {
//!     fn info() -> Info {
//!         Info::new("team.force-push", "0.1.0", "Force pushes to main")
//!             .actions(&["git.push.force"])
//!             .signals(&["branch.force_push"])
//!     }
//!
//!     fn analyze(&self, t: &Trajectory, _cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
//!         Ok(t.with_action("git.push.force")
//!             .map(|e| Finding::new("branch.force_push", Severity::NeedsReview, "Force push")
//!                 .evidence([e])
//!                 .next_step("Review the overwritten commits"))
//!             .collect())
//!     }
//! }
//!
//! register_detector!(ForcePush);
//! ```
//!
//! Beside the trait: the contract's types and trajectory queries (from
//! `plumbline-contract`), finding helpers ([`title`], [`quoted`], [`who`], [`attr_text`],
//! [`attr_list`]), typed configuration parsed once ([`FromConfig`],
//! [`Context::settings`]), destination classes ([`destination`]), globs ([`glob`]), and
//! the built-in detectors' domain helpers ([`kit`]). See `sdk/README.md`.

mod context;
pub mod destination;
#[doc(hidden)]
pub mod guest;
mod helpers;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use context::{Context, Level};
pub use destination::{DestinationClass, Destinations, Place};
pub use helpers::{attr_list, attr_text, minutes_between, quoted, title, who};
/// The contract crate itself: checks, limits, the fixture format (`plumbline_contract`).
pub use plumbline_contract as contract;
pub use plumbline_contract::config::{ConfigSource, FromConfig};
pub use plumbline_contract::types::*;
pub use plumbline_contract::{
    action_matches, glob, parse_time, query, EventMatch, Totals, TITLE_MAX,
};
/// The built-in detectors' domain helpers: planned work, push/merge folding, phrase
/// patterns (`plumbline-detector-kit`).
pub use plumbline_detector_kit as kit;

/// Guest bindings generated from `wit/since_v0.1.0` (the frozen 0.1.0 contract).
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/since_v0.1.0",
        world: "detector",
        pub_export_macro: true,
        default_bindings_module: "plumbline_sdk::bindings",
    });
}

/// A detector: what it declares, and how it reads a trajectory.
///
/// A fresh value (`Default`) is made for every call: the host gives each call its own
/// instance, so detectors keep no state between trajectories.
pub trait Detector: Default {
    /// Name, version, interests (sources, actions and the trajectory views it reads),
    /// signals and config keys.
    fn info() -> Info;

    /// Findings for one trajectory. Each finding must cite at least one event of `trajectory`,
    /// carry a declared signal and a severity of 1–3; the host rejects the whole answer
    /// otherwise.
    fn analyze(&self, trajectory: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError>;
}

/// Exports a [`Detector`] as the component's `info` and `analyze`. On native targets it
/// expands to nothing, so the crate still builds and its fixtures run in `cargo test`.
#[macro_export]
macro_rules! register_detector {
    ($detector:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct PlumblineExport;

            impl $crate::bindings::Guest for PlumblineExport {
                fn info() -> $crate::bindings::plumbline::detector::types::DetectorInfo {
                    $crate::guest::info::<$detector>()
                }

                fn analyze(
                    trajectory: $crate::bindings::plumbline::detector::types::Trajectory,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<$crate::bindings::plumbline::detector::types::Finding>,
                    $crate::bindings::plumbline::detector::types::AnalyzeError,
                > {
                    $crate::guest::analyze::<$detector>(trajectory)
                }
            }

    $crate::bindings::export!(PlumblineExport with_types_in $crate::bindings);
        };
    };
}
