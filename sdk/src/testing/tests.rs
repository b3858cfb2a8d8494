//! The harness runs the host's checks: the cases where the old native checks disagreed
//! with the host (title length, answer size) and the views rule.

use super::*;
use crate::{AnalyzeError, Severity, TrajectoryKind};

/// Fires one finding per event; its config lets a test break the contract.
#[derive(Default)]
struct Echo;

impl Detector for Echo {
    fn info() -> Info {
        Info::new("test.echo", "0.1.0", "one finding per event")
            .signals(&["echo"])
            .views(&[TrajectoryKind::System])
            .config("title_len", "5", "")
            .config("copies", "1", "")
            .config("step_len", "0", "")
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let len: usize = cx.config_parsed("title_len")?;
        let copies: usize = cx.config_parsed("copies")?;
        let step: usize = cx.config_parsed("step_len")?;
        let mut out = Vec::new();
        for e in &t.events {
            for _ in 0..copies {
                out.push(
                    Finding::new("echo", Severity::NeedsReview, "x".repeat(len))
                        .evidence([e])
                        .next_step("n".repeat(step)),
                );
            }
        }
        Ok(out)
    }
}

fn fixture(dir: &Path, name: &str, kind: &str, config: &str, expected: &str) -> PathBuf {
    let text = format!(
        r#"{{"config": {{{config}}}, "trajectory": {{"kind": "{kind}", "key": "k", "events": [
        {{"id": "e1", "time": "2024-03-05T23:10:00Z", "source": "github",
          "actor": {{"id": "a", "type": "human"}}, "system": "s", "action": "git.push"}}]}},
        "expected": [{expected}]}}"#
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("plumbline-sdk-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const ONE: &str = r#"{"signal": "echo", "severity": 2, "evidence": ["e1"]}"#;

#[test]
fn a_good_fixture_passes() {
    let dir = scratch("good");
    let found = run_fixture::<Echo>(&fixture(&dir, "ok.json", "system", "", ONE)).unwrap();
    assert_eq!(found.len(), 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn over_long_titles_fail_as_in_the_host() {
    let dir = scratch("title");
    let p = fixture(&dir, "t.json", "system", r#""title_len": "201""#, ONE);
    let err = run_fixture::<Echo>(&p).unwrap_err();
    assert!(err.contains("title must be 1–200 characters"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn answers_over_the_default_limits_fail_as_in_the_host() {
    let dir = scratch("limits");
    let p = fixture(&dir, "n.json", "system", r#""copies": "101""#, ONE);
    let err = run_fixture::<Echo>(&p).unwrap_err();
    assert!(err.contains("101 findings (at most 100)"), "{err}");
    let p = fixture(&dir, "b.json", "system", r#""step_len": "262144""#, ONE);
    let err = run_fixture::<Echo>(&p).unwrap_err();
    assert!(err.contains("bytes of text (at most 262144)"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_kind_the_detector_does_not_read_is_reported() {
    let dir = scratch("views");
    let err = run_fixture::<Echo>(&fixture(&dir, "a.json", "actor", "", "")).unwrap_err();
    assert!(
        err.contains("kind `actor`") && err.contains("tests nothing"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn undeclared_config_keys_are_reported() {
    let dir = scratch("config");
    let p = fixture(&dir, "c.json", "system", r#""title_lenn": "3""#, ONE);
    let err = run_fixture::<Echo>(&p).unwrap_err();
    assert_eq!(
        err,
        "config key `title_lenn` is not declared by detector `test.echo`"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
