//! `sigma-engine`: the component that runs Sigma rules given as data, on every event of a
//! trajectory (docs/packs.md, "Sigma rules"). Not a built-in pack: `plumbline pack
//! from-sigma` puts this component in a pack with the rules as its `rules` config value.
//! What a rule reads, matches and raises is `plumbline-sigma`'s (shared with the CLI and
//! the built-in `single-event` pack).
//!
//! - The detector's name is the pack's: `pack from-sigma` writes it into [`NAME_SLOT`]
//!   (the host calls `info()` before any config is given, so config cannot name it).
//! - A rule that does not parse fails every call with an error naming it; a pack's
//!   fixtures run at install, so such a pack is refused then.

use plumbline_sdk::*;
use plumbline_sigma::{findings, Rules, CORRELATION_SIGNAL, NAME_MARKER, NAME_ROOM, SIGNAL};

/// The detector's name when no pack has named it.
pub const DEFAULT_NAME: &str = "sigma.rules";

const fn slot() -> [u8; 32 + NAME_ROOM] {
    let mut s = [0u8; 32 + NAME_ROOM];
    let mut i = 0;
    while i < 32 {
        s[i] = NAME_MARKER[i];
        i += 1;
    }
    let name = DEFAULT_NAME.as_bytes();
    let mut j = 0;
    while j < name.len() {
        s[32 + j] = name[j];
        j += 1;
    }
    s
}

/// The marker, then the detector's name (zero-padded). `from-sigma` rewrites the name in
/// the component's bytes (`plumbline_sigma::with_name`); read volatile so the compiler
/// keeps the bytes.
#[used]
pub static NAME_SLOT: [u8; 32 + NAME_ROOM] = slot();

/// The name in [`NAME_SLOT`].
pub fn detector_name() -> String {
    // SAFETY: a plain read of an initialised static.
    let s = unsafe { std::ptr::read_volatile(&NAME_SLOT) };
    let name = &s[32..];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(&name[..end]).into_owned()
}

#[derive(Default)]
pub struct SigmaEngine;

impl Detector for SigmaEngine {
    fn info() -> Info {
        Info::new(
            &detector_name(),
            env!("CARGO_PKG_VERSION"),
            "Sigma rules, run on each event of the source their logsource names",
        )
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL, CORRELATION_SIGNAL])
        .config(
            "rules",
            "",
            "The Sigma rules: their YAML, several as one multi-document text",
        )
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let rules = cx.settings::<Rules>()?;
        findings(&rules.0, &t.events)
    }
}

register_detector!(SigmaEngine);

#[cfg(test)]
mod tests;
