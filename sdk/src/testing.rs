//! The native fixture harness: runs a detector over fixture files without WASM, with the
//! same checks, the same default limits and the same fixture rules as the host's
//! `plumbline detector test` (all of them are `plumbline-contract`'s functions):
//!
//! 1. `info()` passes [`check_info`];
//! 2. the fixture parses ([`Fixture`], format in [`plumbline_contract::fixture`]), its
//!    `config` names only declared keys, and its trajectory is of a kind the detector reads
//!    (`info().views`; no views = actor and system) — a fixture the host would never
//!    offer the detector is an error, not a silent pass;
//! 3. the answer passes [`check_findings`] under [`Limits::default`] (the host's default
//!    `[runtime] max_findings` and `max_output_bytes`);
//! 4. the findings match the expectations ([`Fixture::compare`]).

use std::path::{Path, PathBuf};

use plumbline_contract::config::check_overrides;
pub use plumbline_contract::fixture::{compare, Expected, Fixture, FixtureError};
pub use plumbline_contract::{check_findings, check_info, Limits};

use crate::{Context, Detector, Finding, IncrementalDetector, Info, Trajectory, Window};

/// The contract every answer must meet: [`check_info`] and [`check_findings`] under the
/// host's default limits.
pub fn check_contract(info: &Info, t: &Trajectory, findings: &[Finding]) -> Result<(), String> {
    check_info(info).map_err(|e| format!("info(): {e}"))?;
    check_findings(
        info,
        t.events.iter().map(|e| e.id.as_str()),
        &Limits::default(),
        findings,
    )
}

/// Loads one fixture and checks it against `info` (config keys, views).
fn prepare(info: &Info, path: &Path) -> Result<(Fixture, Context), String> {
    let fixture: Fixture = Fixture::load(path).map_err(|e| e.to_string())?;
    check_overrides(info, fixture.config.keys().map(String::as_str))?;
    fixture.check_view(&info.views)?;
    let cx = Context::native(info, &fixture.config, fixture.now());
    Ok((fixture, cx))
}

/// Runs one fixture through `D` natively.
pub fn run_fixture<D: Detector>(path: &Path) -> Result<Vec<Finding>, String> {
    let info = D::info();
    check_info(&info).map_err(|e| format!("info(): {e}"))?;
    let (fixture, cx) = prepare(&info, path)?;
    let trajectory = fixture.to_trajectory();
    let findings = D::default()
        .analyze(&trajectory, &cx)
        .map_err(|e| format!("analyze failed: {e}"))?;
    check_contract(&info, &trajectory, &findings)?;
    fixture.compare(&findings)?;
    Ok(findings)
}

/// Runs one fixture through the incremental detector `D` natively, as the host does: the
/// fixture's events that match `D`'s interests arrive one at a time (the trajectory grows
/// by one event per call, state carried between calls as bytes), and the last answer is
/// checked and compared with the expectations. Then again with every event in one call
/// (what a host that lost the state replays), which must give the same verdict.
pub fn run_incremental_fixture<D: IncrementalDetector>(
    path: &Path,
) -> Result<Vec<Finding>, String> {
    let info = D::info();
    check_info(&info).map_err(|e| format!("info(): {e}"))?;
    let fixture: Fixture = Fixture::load(path).map_err(|e| e.to_string())?;
    check_overrides(&info, fixture.config.keys().map(String::as_str))?;
    fixture.check_view(&info.views)?;
    let t = fixture.to_trajectory();
    let reads = |e: &crate::Event| {
        plumbline_contract::reads_event(&info.sources, &info.actions, &e.source, &e.action)
    };
    // One event at a time.
    let mut state: Option<Vec<u8>> = None;
    let mut given: Vec<String> = Vec::new();
    let mut last: Vec<Finding> = Vec::new();
    for n in 1..=t.events.len() {
        let e = &t.events[n - 1];
        if !reads(e) {
            continue;
        }
        let (findings, read, bytes) =
            observe_prefix::<D>(&fixture, &info, &t, n, state.take(), &t.events[n - 1..n])
                .map_err(|e| format!("after event {n} (`{}`): {e}", t.events[n - 1].id))?;
        given.push(e.id.clone());
        given.extend(read);
        state = Some(bytes);
        last = findings;
    }
    let cite = |findings: &[Finding], given: &[String]| {
        check_findings(
            &info,
            given.iter().map(String::as_str),
            &Limits::default(),
            findings,
        )
    };
    cite(&last, &given).map_err(|e| format!("one event at a time: {e}"))?;
    fixture
        .compare(&last)
        .map_err(|e| format!("one event at a time: {e}"))?;
    // Every event in one call (a replay).
    let all: Vec<crate::Event> = t.events.iter().filter(|e| reads(e)).cloned().collect();
    if !all.is_empty() {
        let (findings, read, _) =
            observe_prefix::<D>(&fixture, &info, &t, t.events.len(), None, &all)?;
        let mut given: Vec<String> = all.iter().map(|e| e.id.clone()).collect();
        given.extend(read);
        cite(&findings, &given).map_err(|e| format!("all events in one call: {e}"))?;
        fixture
            .compare(&findings)
            .map_err(|e| format!("all events in one call: {e}"))?;
    }
    Ok(last)
}

/// What one native incremental call answered: findings, ids read through `history`, and
/// the new state's bytes.
type Observed = (Vec<Finding>, Vec<String>, Vec<u8>);

/// One native incremental call on the first `n` events of `t`.
fn observe_prefix<D: IncrementalDetector>(
    fixture: &Fixture,
    info: &Info,
    t: &Trajectory,
    n: usize,
    state: Option<Vec<u8>>,
    new_events: &[crate::Event],
) -> Result<Observed, String> {
    let so_far = &t.events[..n];
    let window = Window {
        id: t.id.clone(),
        kind: t.kind,
        key: t.key.clone(),
        start: so_far.first().map_or(t.start, |e| e.time),
        end: so_far.last().map_or(t.end, |e| e.time),
        dropped: t.dropped,
        len: n as u32,
        replay: state.is_none(),
    };
    // The fixture's model answers the detector's questions, as the host's fixture runs do.
    let model = fixture.model.clone();
    let cx = Context::native_incremental(
        info,
        &fixture.config,
        fixture.now(),
        window,
        so_far.to_vec(),
    )
    .with_model(std::rc::Rc::new(move |q: &crate::Question| {
        plumbline_contract::fixture::model_answer(model.as_ref(), q)
    }));
    // As in the host: the set-up first, its settings shared with the call (an error is
    // not kept: the call parses again and reports it).
    let _ = D::prepare(&cx);
    let (bytes, findings) = crate::guest_v2::observe_bytes::<D>(state.as_deref(), new_events, &cx)
        .map_err(|e| format!("observe failed: {e}"))?;
    if bytes.len() > STATE_MAX_BYTES {
        return Err(format!(
            "state of {} bytes is over the host's default runtime.state_max_bytes ({STATE_MAX_BYTES})",
            bytes.len()
        ));
    }
    Ok((findings, cx.history_read(), bytes))
}

/// The host's default bound on one detector's state for one trajectory
/// (`runtime.state_max_bytes`).
pub const STATE_MAX_BYTES: usize = 64 << 10;

/// Runs every fixture in `dir` through the incremental detector `D`
/// ([`run_incremental_fixture`]); panics if any fails or the directory holds none.
pub fn run_incremental_fixtures<D: IncrementalDetector>(dir: impl AsRef<Path>) {
    run_each(dir.as_ref(), run_incremental_fixture::<D>);
}

/// The `*.json` files of a directory, sorted.
pub fn fixture_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    plumbline_contract::fixture::fixture_files(dir).map_err(|e| e.to_string())
}

/// Runs every fixture in `dir`, printing pass/fail per file; panics (failing the test)
/// if any fails, or if the directory holds no fixture.
pub fn run_fixtures<D: Detector>(dir: impl AsRef<Path>) {
    run_each(dir.as_ref(), run_fixture::<D>);
}

/// Runs `run` on every fixture in `dir`, printing pass/fail per file; panics if any fails
/// or the directory holds none. Both traits' harnesses report the same way.
fn run_each(dir: &Path, run: impl Fn(&Path) -> Result<Vec<Finding>, String>) {
    let files = fixture_files(dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(!files.is_empty(), "no *.json fixtures in {}", dir.display());
    let mut failed = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        match run(f) {
            Ok(found) => println!("pass {name} ({} findings)", found.len()),
            Err(e) => {
                println!("FAIL {name}: {e}");
                failed.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}

/// Prints every fixture's findings (title, evidence, next step) under `cargo test --
/// --nocapture`, for reviewing how findings read; the pass/fail check is [`run_fixtures`].
pub fn show_findings<D: Detector>(dir: impl AsRef<Path>) {
    let info = D::info();
    for path in fixture_files(dir.as_ref()).unwrap_or_default() {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let (fixture, cx) = match prepare(&info, &path) {
            Ok(x) => x,
            Err(e) => {
                println!("{name}: {e}");
                continue;
            }
        };
        match D::default().analyze(&fixture.to_trajectory(), &cx) {
            Ok(found) => {
                println!("{name}:");
                for f in found {
                    println!(
                        "  [{}] {} ({:.2}) {}",
                        f.severity, f.signal, f.score, f.title
                    );
                    println!("      evidence: {}", f.evidence.join(" "));
                    println!("      next: {}", f.next_step);
                }
            }
            Err(e) => println!("{name}: error {e}"),
        }
    }
}

pub mod feed;

/// The tests of an incremental detector `$d`, in its crate's test module: its fixtures
/// (`fixtures/`) fed one event at a time and all at once ([`run_incremental_fixtures`]),
/// and fed newest first, every event but the first arriving late
/// ([`feed::every_fixture_backwards`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __incremental_fixture_tests {
    ($d:ty) => {
        const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

        #[test]
        fn fixtures() {
            $crate::testing::run_incremental_fixtures::<$d>(FIXTURES);
        }

        #[test]
        fn fixtures_arriving_newest_first() {
            $crate::testing::feed::every_fixture_backwards::<$d>(FIXTURES);
        }
    };
}
pub use crate::__incremental_fixture_tests as incremental_fixture_tests;

#[cfg(test)]
mod tests;
