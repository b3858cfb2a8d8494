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
#[macro_use]
mod wit_convert;
pub mod destination;
#[doc(hidden)]
pub mod guest;
#[doc(hidden)]
pub mod guest_v2;
mod helpers;
pub mod kept;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

#[doc(hidden)]
pub use context::HostImports;
pub use context::{Context, Level, Window};
pub use destination::{DestinationClass, Destinations, Place};
pub use helpers::{attr_list, attr_text, minutes_between, quoted, title, who};
/// The contract crate itself: checks, limits, the fixture format (`plumbline_contract`).
pub use plumbline_contract as contract;
pub use plumbline_contract::config::{ConfigSource, FromConfig};
pub use plumbline_contract::types::*;
pub use plumbline_contract::{
    action_matches, glob, parse_time, query, EventMatch, Judgement, ModelAnswer, Question, Reason,
    Totals, TITLE_MAX,
};
/// The built-in detectors' domain helpers: planned work, push/merge folding, phrase
/// patterns (`plumbline-detector-kit`).
pub use plumbline_detector_kit as kit;

/// Guest bindings generated from `wit/since_v0.1.0` (the frozen 0.1.0 contract).
#[doc(hidden)]
pub use plumbline_sdk_wit_v1 as bindings;
/// Guest bindings generated from `wit/since_v0.2.0` (incremental detectors).
#[doc(hidden)]
pub use plumbline_sdk_wit_v2 as bindings_v2;
/// serde, for an [`IncrementalDetector`]'s state (`#[derive(Serialize, Deserialize)]`).
pub use serde;
pub use serde::{Deserialize, Serialize};

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

/// The imports every contract version shares (config, clock, log), bound to one version's
/// generated bindings (`bindings`, `bindings_v2`), and its `model` import if it has one.
/// Used by the register macros; not part of the SDK's API.
#[doc(hidden)]
#[macro_export]
macro_rules! __host_imports {
    ($bindings:ident, $judge:expr $(,)?) => {
        $crate::HostImports {
            config: |key| $crate::$bindings::plumbline::detector::config::get(key),
            now: || $crate::$bindings::plumbline::detector::clock::now(),
            log: |level, message| {
                use $crate::$bindings::plumbline::detector::log;
                let level = match level {
                    $crate::Level::Debug => log::Level::Debug,
                    $crate::Level::Info => log::Level::Info,
                    $crate::Level::Warn => log::Level::Warn,
                    $crate::Level::Error => log::Level::Error,
                };
                log::log(level, message)
            },
            judge: $judge,
        }
    };
}

/// Exports a [`Detector`] as the component's `info` and `analyze`. On native targets it
/// expands to nothing, so the crate still builds and its fixtures run in `cargo test`.
#[macro_export]
macro_rules! register_detector {
    ($detector:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct PlumblineExport;

            // This world's description, linked into the component (and only this one's).
            #[used]
            static PLUMBLINE_LINK: fn() = $crate::bindings::link;

            // 0.1.0 has no `model` import.
            static PLUMBLINE_HOST: $crate::HostImports = $crate::__host_imports!(bindings, None);

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
                    $crate::guest::analyze::<$detector>(
                        trajectory,
                        $crate::Context::host(&PLUMBLINE_HOST),
                    )
                }
            }

    $crate::bindings::export!(PlumblineExport with_types_in $crate::bindings);
        };
    };
}

/// An incremental detector (`plumbline:detector@0.2.0`): it observes a trajectory as it
/// grows. Each call gets the events new to it since its previous call on that trajectory
/// (only those matching its declared sources and actions, ordered by (time, id); a late
/// event can be older than ones already seen) and the state it left then; it updates the
/// state and answers its findings on the whole trajectory so far.
///
/// The state is per trajectory, kept by the host between calls as bytes (serde_json of
/// `State`), bounded (`runtime.state_max_bytes`, 64 KiB by default: keep summaries, not
/// events), and may be lost at any time — then the next call starts from the default
/// state with every matching event of the trajectory (`cx.window().replay`). Events it
/// did not keep can be read through [`Context::history`].
///
/// Findings cite events given in `new_events` (now or in an earlier call) or read through
/// `history`; the same rules as [`Detector`] otherwise. The fixtures of a [`Detector`]
/// pass unchanged: [`testing::run_incremental_fixtures`] feeds their events one at a time.
pub trait IncrementalDetector: Default {
    /// What the detector remembers of one trajectory between calls.
    type State: Serialize + for<'de> Deserialize<'de> + Default;

    /// As [`Detector::info`].
    fn info() -> Info;

    /// Set-up done once per loaded configuration: ask here for the settings every call
    /// needs (`cx.settings::<Settings>().map(drop)`), and each call's `cx.settings` finds
    /// them parsed. The host runs it once and snapshots the component after it (see the
    /// `prepared-detector` world); the native harness runs it before each fixture. An
    /// error is not kept: calls parse again and report it. No trajectory exists yet.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        let _ = cx;
        Ok(())
    }

    /// Folds `new_events` into `state` and answers the findings on the trajectory so far.
    fn observe(
        &self,
        state: &mut Self::State,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError>;
}

/// Exports an [`IncrementalDetector`] as the component's `info` and `observe`
/// (`plumbline:detector@0.2.0`). On native targets it expands to nothing.
#[macro_export]
macro_rules! register_incremental_detector {
    ($detector:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::bindings_v2::plumbline::detector::{history, types as wit};

            struct PlumblineExport;

            // This world's description, linked into the component (and only this one's).
            #[used]
            static PLUMBLINE_LINK: fn() = $crate::bindings_v2::link;

            static PLUMBLINE_HOST: $crate::HostImports = $crate::__host_imports!(
                bindings_v2,
                Some(|q| {
                    use $crate::bindings_v2::plumbline::detector::model;
                    let answer = model::judge(&model::Question {
                        instructions: q.instructions.clone(),
                        events: q.events.clone(),
                    });
                    match answer {
                        model::Answer::Ready(j) => $crate::ModelAnswer::Ready($crate::Judgement {
                            risk: j.risk,
                            reasons: j
                                .reasons
                                .into_iter()
                                .map(|r| $crate::Reason {
                                    text: r.text,
                                    evidence: r.evidence,
                                })
                                .collect(),
                            model: j.model,
                        }),
                        model::Answer::Pending => $crate::ModelAnswer::Pending,
                        model::Answer::Unavailable(why) => $crate::ModelAnswer::Unavailable(why),
                    }
                }),
            );

            /// Reads the lent `history` resource by its handle. The handle is borrowed for
            /// the call: the wrapper must never drop it (that would end the host's loan).
            fn read_history(handle: u32, start: u32, count: u32) -> ::std::vec::Vec<$crate::Event> {
                let t = ::core::mem::ManuallyDrop::new(unsafe {
                    history::Trajectory::from_handle(handle)
                });
                t.events(start, count)
                    .into_iter()
                    .map($crate::guest_v2::event_from_wit)
                    .collect()
            }

            impl $crate::bindings_v2::Guest for PlumblineExport {
                fn prepare() {
                    $crate::guest_v2::prepare::<$detector>(&$crate::Context::host(&PLUMBLINE_HOST))
                }

                fn info() -> wit::DetectorInfo {
                    $crate::guest_v2::info_to_wit($crate::guest_v2::declared::<$detector>())
                }

                fn observe(
                    state: ::core::option::Option<::std::vec::Vec<u8>>,
                    new_events: ::std::vec::Vec<wit::Event>,
                    window: wit::Window,
                    history: &history::Trajectory,
                ) -> ::core::result::Result<wit::Observation, wit::ObserveError> {
                    let cx = $crate::Context::host_incremental(
                        &PLUMBLINE_HOST,
                        $crate::guest_v2::window_from_wit(window),
                        history.handle(),
                        read_history,
                    );
                    $crate::guest_v2::observe::<$detector>(state, new_events, &cx)
                }
            }

    $crate::bindings_v2::export!(PlumblineExport with_types_in $crate::bindings_v2);
        };
    };
}
