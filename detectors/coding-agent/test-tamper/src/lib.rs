//! A coding agent makes checks pass by changing the tests instead of the code: test files
//! deleted (`rm`, `git rm`), skip markers added (`@pytest.mark.skip`, `pytest.skip(`,
//! `raise SkipTest`, `it.skip(`, `describe.skip`, `xit(`, `#[ignore]`, `t.Skip(`),
//! assertions weakened (`assert True`, `expect(true)`, fewer assertion lines than
//! before), or a test command made to always succeed (`|| true`, `exit 0` in a test
//! script). Needs review; urgent when it follows a failing test run in the session (a
//! shell test command with `tool.success = false`), the shape of "make CI green".
//! Adding tests, or removing a skip marker, is silent.
//! Read on actor trajectories (one agent session).
//!
//! Incremental (`plumbline:detector@0.2.0`): the state is the calls that tamper with
//! tests (why, whose it was) or ran tests that failed (the line shortened), and the
//! pending calls — not the events (`kit::agent::memo`).

use plumbline_sdk::kit::agent::{self, shell, FileChange, Memo, Remembered};
use plumbline_sdk::kit::text;
use plumbline_sdk::*;

const SIGNAL: &str = "agent.test_tamper";

const TEST_PATHS: &str = "test_*.py,*_test.py,*_test.go,*.test.js,*.test.jsx,*.test.ts,*.test.tsx,*.spec.js,*.spec.ts,*.spec.tsx,*_spec.rb,*Test.java,*Tests.java,*Test.kt,*Tests.cs,tests/*.rs,tests/**/*.rs,__tests__/*";
const SKIP_MARKERS: &str = "@pytest.mark.skip;pytest.skip(;raise SkipTest;unittest.skip;it.skip(;describe.skip(;test.skip(;xit(;xdescribe(;xtest(;#[ignore];t.Skip(;@Disabled;@Ignore;[Fact(Skip";
const TRIVIAL_ASSERTS: &str = "assert True;assert 1;expect(true);assert!(true);assertTrue(true);assert.ok(true);assert_eq!(1, 1)";
const ASSERT_WORDS: &str = "assert;expect(;should;.to_equal;require.";
const TEST_COMMANDS: &str = "pytest,python -m pytest,python -m unittest,npm test,npm run test,yarn test,pnpm test,npx jest,npx vitest,jest,vitest,cargo test,cargo nextest,go test,mvn test,gradle test,./gradlew test,make test,rspec,bundle exec rspec,tox,phpunit,dotnet test";
const TEST_SCRIPTS: &str = "package.json,Makefile,tox.ini,pytest.ini,setup.cfg,pyproject.toml,test.sh,run-tests*,scripts/test*";

#[derive(Default)]
pub struct TestTamper;

/// What the detector remembers of a session: test runs that failed, changes that tamper.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    calls: Vec<Memo<Tests>>,
}

/// One call: the test command it ran that failed (shortened), why its changes tamper
/// with tests (as far as a title shows), whose it was.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Tests {
    failed: Option<String>,
    tamper: Option<String>,
    who: String,
    user: String,
    session: String,
}

impl IncrementalDetector for TestTamper {
    type State = Seen;

    /// The rules every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Rules>()?;
        Ok(())
    }

    fn info() -> Info {
        Info::new(
            "coding-agent.test-tamper",
            "0.1.0",
            "A coding agent deletes, skips or weakens tests, or makes the test command always pass",
        )
        .actions(&[agent::SHELL, agent::FILE_WRITE])
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL])
        .config("test_paths", TEST_PATHS, "Test files (comma-separated; a name or trailing path segments, `*`/`**` wildcards)")
        .config("skip_markers", SKIP_MARKERS, "Added text that skips a test (`;`-separated)")
        .config("trivial_asserts", TRIVIAL_ASSERTS, "Assertions that cannot fail (`;`-separated)")
        .config("assert_words", ASSERT_WORDS, "Text of an assertion line (`;`-separated): fewer such lines after an edit weakens the test")
        .config("test_commands", TEST_COMMANDS, "Commands that run tests (comma-separated, matched at the start of a simple command)")
        .config("test_scripts", TEST_SCRIPTS, "Files that hold the test command (comma-separated, as `test_paths`)")
    }

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let rules = cx.settings::<Rules>()?;
        let w = cx
            .window()
            .map_or((0, 0, i64::MIN), |w| (w.len, w.dropped, w.start));
        let read = |start, count| cx.history(start, count);
        let history = agent::History::new(w.0, w.1, w.2, &read);
        agent::remember(&mut seen.calls, new_events, &history, |call| {
            let failed = call
                .command()
                .filter(|cmd| call.success() == Some(false) && rules.runs_tests(cmd))
                .map(|cmd| agent::short(cmd, 40));
            let reasons: Vec<String> = agent::file_changes(call)
                .iter()
                .filter_map(|c| rules.tamper(c))
                .collect();
            let tamper = (!reasons.is_empty()).then(|| agent::for_title(&reasons.join("; ")));
            (failed.is_some() || tamper.is_some()).then(|| Tests {
                failed,
                tamper,
                who: call.who(),
                user: call.user().to_string(),
                session: call.session().to_string(),
            })
        });
        let mut last_failed: Option<(&Memo<Tests>, &Tests)> = None;
        let mut findings = Vec::new();
        for m in &seen.calls {
            let Some(t) = m.facts() else {
                continue;
            };
            if t.failed.is_some() {
                last_failed = Some((m, t));
            }
            if let Some(why) = &t.tamper {
                findings.push(finding((m, t), last_failed, why));
            }
        }
        // The last failing run stays: a tamper that comes next cites it.
        let last = last_failed.map(|(m, _)| m.key().to_string());
        agent::forget_over(&mut seen.calls, &findings, |m| {
            last.as_deref() == Some(m.key())
        });
        Ok(findings)
    }
}

struct Rules {
    test_paths: Vec<String>,
    skip: Vec<String>,
    trivial: Vec<String>,
    asserts: Vec<String>,
    commands: Vec<String>,
    scripts: Vec<String>,
}

impl FromConfig for Rules {
    fn from_config(cfg: &dyn ConfigSource) -> Result<Self, AnalyzeError> {
        let semi = |k: &str| text::items(&cfg.get(k).unwrap_or_default());
        Ok(Rules {
            test_paths: cfg.list("test_paths"),
            skip: semi("skip_markers"),
            trivial: semi("trivial_asserts"),
            asserts: semi("assert_words"),
            commands: cfg.list("test_commands"),
            scripts: cfg.list("test_scripts"),
        })
    }
}

impl Rules {
    fn runs_tests(&self, cmd: &str) -> bool {
        shell::simples(cmd).iter().any(|s| {
            let line = format!("{} {}", s.program(), s.args().join(" "));
            self.commands.iter().any(|c| {
                let c = c.rsplit('/').next().unwrap_or(c);
                line == c || line.starts_with(&format!("{c} "))
            })
        })
    }

    /// Why a change tampers with tests, if it does.
    fn tamper(&self, c: &FileChange) -> Option<String> {
        let is_test = agent::path_matches_any(&c.path, &self.test_paths);
        if c.deleted {
            return is_test.then(|| format!("deleted {} (`{}`)", c.path, c.how));
        }
        let content = c.content.as_deref()?;
        let old = c.old.as_deref().unwrap_or("");
        let added = agent::added_lines(old, content);
        let found = |list: &[String]| {
            added
                .iter()
                .find(|l| list.iter().any(|m| l.contains(m.as_str())))
                .map(|l| agent::short(l, 50))
        };
        if is_test {
            if let Some(l) = found(&self.skip) {
                return Some(format!("skips a test in {}: `{l}`", c.path));
            }
            if let Some(l) = found(&self.trivial) {
                return Some(format!(
                    "adds an assertion that cannot fail to {}: `{l}`",
                    c.path
                ));
            }
            let count = |text: &str| {
                text.lines()
                    .filter(|l| self.asserts.iter().any(|a| l.contains(a.as_str())))
                    .count()
            };
            if c.old.is_some() && count(content) < count(old) {
                return Some(format!(
                    "removes {} assertion(s) from {}",
                    count(old) - count(content),
                    c.path
                ));
            }
        }
        // The test command made to succeed whatever happens.
        let always = added.iter().find(|l| {
            (l.contains("|| true") && self.commands.iter().any(|c| l.contains(c.as_str())))
                || (l.trim() == "exit 0" && agent::path_matches_any(&c.path, &self.scripts))
        });
        always.map(|l| {
            format!(
                "makes the tests always pass in {}: `{}`",
                c.path,
                agent::short(l, 50)
            )
        })
    }
}

/// A call that tampers, the failing run before it if any.
type Tested<'a> = (&'a Memo<Tests>, &'a Tests);

fn finding(call: Tested, failed: Option<Tested>, why: &str) -> Finding {
    let mut cited: Vec<&Memo<Tests>> = failed.iter().map(|(m, _)| *m).collect();
    cited.push(call.0);
    let (severity, score, after) = match failed.and_then(|(_, f)| f.failed.as_deref()) {
        Some(line) => (Severity::Urgent, 0.85, format!(" after `{line}` failed")),
        None => (Severity::NeedsReview, 0.55, String::new()),
    };
    let Tests {
        who, user, session, ..
    } = call.1;
    Finding::new(SIGNAL, severity, title(format!("{who} {why}{after}")))
        .evidence_ids(agent::cite(&cited))
        .score(score)
        .next_step(format!(
            "Do not merge on a green run from this session ({session}): restore the tests, run them against the change and fix the code instead; ask {user} whether skipping was intended"
        ))
}

register_incremental_detector!(TestTamper);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_incremental_fixtures::<super::TestTamper>(FIXTURES);
    }
}
