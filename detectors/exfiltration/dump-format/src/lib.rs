//! Format transformations that stage data for leaving: a database table dumped to
//! CSV/JSON/SQL, then zipped or encrypted, then moved somewhere not allow-listed. A dump
//! alone needs review; the chain dump → archive/encrypt → move off is urgent.
//!
//! Routine dumps (backups by the backup service account) are declared in
//! `routine_dump_actors` and only count when their output then leaves for an unlisted
//! destination. Read on actor trajectories.
//!
//! Incremental (`plumbline:detector@0.2.0`): the state holds the database dumps seen and the
//! archiving, encrypting and moves to unlisted places within `chain_minutes` after one
//! (ids, times, formats and places, not the events). What falls outside every dump's window
//! is not kept; `history` is read only when a dump arrives late, behind events already
//! given, or when the window or the destination lists changed.

use plumbline_sdk::kept::{self, text};
use plumbline_sdk::kit::text::has_word;
use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const SIGNAL: &str = "exfil.database_dump";
const STAGED: &str = "exfil.dump_staged_and_moved";

const DUMP_FORMATS: [&str; 11] = [
    "csv", "tsv", "json", "jsonl", "ndjson", "sql", "dump", "parquet", "avro", "xlsx", "xls",
];
const ARCHIVE_FORMATS: [&str; 8] = ["zip", "gz", "tgz", "tar", "7z", "rar", "bz2", "xz"];
const ENCRYPTED_FORMATS: [&str; 5] = ["gpg", "pgp", "age", "enc", "aes"];
const DATABASE_KINDS: [&str; 5] = ["database", "db", "warehouse", "sql", "datastore"];

/// Actions that write a dump; `data.export` counts when its source is a database.
const DUMPS: [&str; 3] = ["db.dump", "db.export", "data.export"];
/// Actions that archive or encrypt staged data.
const STAGING: [&str; 2] = ["data.archived", "data.encrypted"];
/// Actions that move data off.
const MOVES: [&str; 4] = [
    "data.export",
    "data.shared",
    "s3.object.put",
    "file.uploaded",
];

/// The config keys that decide what the state keeps (the window and the destination
/// lists): when they change, what was left out is read again from `history`.
const KEPT_BY: [&str; 6] = [
    "chain_minutes",
    "known_domains",
    "known_buckets",
    "personal_mail_domains",
    "consumer_drive_domains",
    "catcher_domains",
];

/// Bounds on what is kept (in bytes as [`kept::fold`] weighs them), the oldest dropped
/// first, so the state stays under the host's 64 KiB: dumps within a third of
/// [`kept::BUDGET`] (a trajectory with more is judged on its newest), archiving/encrypting
/// steps within a sixth and moves within half.
const DUMPS_BYTES: usize = kept::BUDGET / 3;
const STAGING_BYTES: usize = kept::BUDGET / 6;
const MOVES_BYTES: usize = kept::BUDGET / 2;

/// What the detector remembers of a trajectory, each list in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    /// A hash of the [`KEPT_BY`] settings the steps and moves were kept under.
    kept_by: u64,
    /// The latest event given before this call: a dump at or before it may have missed
    /// events that were given before it and not kept.
    horizon: Option<i64>,
    dumps: Vec<Dump>,
    staging: Vec<Step>,
    moves: Vec<Step>,
}

/// A database dump: what judging and reporting it needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Dump {
    t: i64,
    id: String,
    action: String,
    actor: String,
    human: bool,
    environment: Environment,
    resource: String,
    destination: Option<String>,
    /// The volume, when the source gave one.
    volume: Option<(u64, u64)>,
    format: Option<String>,
    /// The table names (`tables`, `table`, `data.tables`), else the database's: what marks
    /// the data sensitive.
    tables: Option<String>,
    database: Option<String>,
}

impl Dump {
    fn of(e: &Event) -> Dump {
        Dump {
            t: e.time,
            id: e.id.clone(),
            action: e.action.clone(),
            actor: text(&e.actor.id),
            human: e.actor.kind == ActorKind::Human,
            environment: e.environment,
            resource: text(&e.resource),
            destination: e.destination.as_deref().map(text),
            volume: e.volume.map(|_| (e.rows(), e.bytes())),
            format: format_of(e).as_deref().map(text),
            tables: attr_text(e, &["tables", "table", "data.tables"]).map(text),
            database: attr_text(e, &["database"]).map(text),
        }
    }

    fn rows(&self) -> u64 {
        self.volume.map_or(0, |v| v.0)
    }

    fn bytes(&self) -> u64 {
        self.volume.map_or(0, |v| v.1)
    }

    /// Whether `e` comes after this dump within `chain` (and is not the dump itself).
    fn followed_by(&self, time: i64, id: &str, chain: i64) -> bool {
        time >= self.t && time - self.t <= chain && id != self.id
    }
}

/// An archiving or encrypting step (`what` is its action), or a move (`what` is where to).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Step {
    t: i64,
    id: String,
    what: String,
}

kept::record!(Dump, Step);

/// Where a move takes data: its destination, or the bucket it writes to.
fn move_target(e: &Event) -> Option<String> {
    e.destination
        .clone()
        .or_else(|| e.attr_str("bucket").map(|b| format!("s3://{b}")))
}

/// The fingerprint of the [`KEPT_BY`] settings.
fn kept_by(cx: &Context) -> u64 {
    cx.config_fingerprint(KEPT_BY)
}

impl Seen {
    /// Keeps the archiving, encrypting and moves to places not allow-listed among `events`
    /// that come within `chain` after a dump kept.
    fn offer<'a>(
        &mut self,
        events: impl Iterator<Item = &'a Event>,
        chain: i64,
        lists: &Destinations,
    ) {
        let (mut staging, mut moves) = (Vec::new(), Vec::new());
        for e in events {
            if !self
                .dumps
                .iter()
                .any(|d| d.followed_by(e.time, &e.id, chain))
            {
                continue;
            }
            let step = |what: String| Step {
                t: e.time,
                id: e.id.clone(),
                what,
            };
            if STAGING.contains(&e.action.as_str()) {
                staging.push(step(e.action.clone()));
            }
            if MOVES.contains(&e.action.as_str()) {
                if let Some(to) = move_target(e).as_deref().map(text) {
                    let unlisted = Place::parse(&to)
                        .is_some_and(|p| lists.classify_place(&p) != DestinationClass::Known);
                    if unlisted {
                        moves.push(step(to));
                    }
                }
            }
        }
        kept::fold(&mut self.staging, staging, usize::MAX, STAGING_BYTES);
        kept::fold(&mut self.moves, moves, usize::MAX, MOVES_BYTES);
    }
}

#[derive(Default)]
pub struct DumpFormat;

impl IncrementalDetector for DumpFormat {
    type State = Seen;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Destinations>()?;
        cx.settings::<Policy>()?;
        Ok(())
    }

    fn info() -> Info {
        let info = Info::new(
            "exfiltration.dump-format",
            "0.1.0",
            "Database tables dumped to CSV/JSON/SQL files, especially when then archived or encrypted and moved off",
        )
        .actions(&[
            "db.dump",
            "db.export",
            "data.export",
            "data.archived",
            "data.encrypted",
            "data.shared",
            "s3.object.put",
            "file.uploaded",
        ])
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL, STAGED])
        .config("min_rows", "5000", "Rows that make a dump worth a look")
        .config("min_bytes", "52428800", "Bytes that make a dump worth a look")
        .config(
            "chain_minutes",
            "120",
            "How long after the dump archiving/encrypting and moving still belong to it",
        )
        .config(
            "routine_dump_actors",
            "",
            "Actors (comma-separated, `*` wildcards) whose dumps are routine, e.g. the backup service account",
        )
        .config(
            "sensitive_markers",
            "pii,customer*,client*,contact*,user*,account*,payment*,card*,billing,invoice*,salar*,payroll,ssn,passport*,patient*,medical,health*,contract*,password*,secret*,token*,credential*,employee*",
            "Words in table or resource names that mark sensitive data",
        );
        let info = destination::declare(info);
        let info = keys::planned_work(info);
        keys::environments(info, "test")
    }

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let min_rows: u64 = cx.config_parsed("min_rows")?;
        let min_bytes: u64 = cx.config_parsed("min_bytes")?;
        let chain = cx.config_parsed::<i64>("chain_minutes")? * 60_000_000_000;
        let routine = cx.config_list("routine_dump_actors");
        let markers = cx.config_list("sensitive_markers");
        let lists = cx.settings::<Destinations>()?;
        let policy = cx.settings::<Policy>()?;

        // Kept under other settings: what they left out may count now.
        let settings = kept_by(cx);
        let mut reread = seen.kept_by != settings && !seen.dumps.is_empty();
        if seen.kept_by != settings {
            seen.kept_by = settings;
            seen.staging.clear();
            seen.moves.clear();
        }
        let dumps: Vec<Dump> = new_events
            .iter()
            .filter(|e| DUMPS.contains(&e.action.as_str()) && is_database_dump(e))
            .map(Dump::of)
            .collect();
        // A dump behind events already given: what followed it was not kept.
        reread |= dumps.iter().any(|d| seen.horizon.is_some_and(|h| d.t <= h));
        kept::fold(&mut seen.dumps, dumps, usize::MAX, DUMPS_BYTES);
        // What has left the trajectory (its bound dropped it) is no longer judged, as a
        // 0.1.0 call would not see it either.
        kept::prune(&mut seen.dumps, cx);
        if reread {
            seen.offer(cx.history_all().iter(), chain, &lists);
        } else {
            seen.offer(new_events.iter(), chain, &lists);
        }
        // Steps of dumps no longer kept go with them.
        let dumps = &seen.dumps;
        let followed = |s: &Step| dumps.iter().any(|d| d.followed_by(s.t, &s.id, chain));
        seen.staging.retain(followed);
        seen.moves.retain(followed);
        seen.horizon = new_events.iter().map(|e| e.time).chain(seen.horizon).max();

        // Each move's class, worked out once for all the dumps it may follow.
        let moves: Vec<(&Step, DestinationClass)> = seen
            .moves
            .iter()
            .filter_map(|m| {
                let class = lists.classify_place(&Place::parse(&m.what)?);
                (class != DestinationClass::Known).then_some((m, class))
            })
            .collect();
        let mut findings = Vec::new();
        let mut cited: Vec<&str> = Vec::new();
        for dump in &seen.dumps {
            if cited.contains(&dump.id.as_str()) {
                continue;
            }
            let format = dump.format.as_deref();
            let big = dump.rows() >= min_rows
                || dump.bytes() >= min_bytes
                || (dump.volume.is_none() && dump.action == "db.dump");
            if !big || policy.ignore_environments.contains(&dump.environment) {
                continue;
            }
            let later = |s: &&Step| dump.followed_by(s.t, &s.id, chain);
            // Archived or encrypted: in the dump's own format, or by a later step.
            let staged = seen.staging.iter().find(later);
            let staged_in_place = format
                .is_some_and(|f| ARCHIVE_FORMATS.contains(&f) || ENCRYPTED_FORMATS.contains(&f));
            let moved: Vec<(&Step, DestinationClass)> =
                moves.iter().filter(|(m, _)| later(m)).copied().collect();
            let is_routine = routine.iter().any(|p| glob::matches(p, &dump.actor));
            // A dump written straight to an unlisted place moves it in one step.
            let self_moved = dump.action == "data.export"
                && dump
                    .destination
                    .as_deref()
                    .and_then(|d| lists.classify(d))
                    .is_some_and(|(_, c)| c != DestinationClass::Known);
            let leaves = !moved.is_empty() || self_moved;
            if is_routine && !leaves {
                continue;
            }
            let sensitive = [
                dump.resource.as_str(),
                dump.tables
                    .as_deref()
                    .or(dump.database.as_deref())
                    .unwrap_or(""),
            ]
            .iter()
            .any(|n| !n.is_empty() && has_word(n, &markers));
            let what = dump.tables.as_deref().unwrap_or(&dump.resource);
            let rows = if dump.rows() > 0 {
                format!("{} rows of ", dump.rows())
            } else {
                String::new()
            };
            let fmt = match format {
                Some(f) => format!("a {} file", f.to_ascii_uppercase()),
                None => "a file".to_string(),
            };
            let actor = &dump.actor;
            let who = if dump.human {
                actor.clone()
            } else {
                format!("the owner of {actor}")
            };
            let to = moved
                .first()
                .map(|(m, c)| (m.what.clone(), c.describe()))
                .or_else(|| dump.destination.clone().map(|d| (d, "")));
            let (signal, severity, score, t_line, next) = if leaves
                && (staged.is_some() || staged_in_place)
            {
                let (dest, class) = to.unwrap_or_default();
                let how = match staged {
                    Some(s) => format!(", {} it", s.what.trim_start_matches("data.")),
                    None => String::new(),
                };
                (
                    STAGED,
                    Severity::Urgent,
                    0.9,
                    format!("{actor} dumped {rows}{} to {fmt}{how}, then moved it to {dest} ({class})", quoted(what, 40)),
                    format!("Contact {who} now and find where the dump went; if unapproved, revoke the access used and have the copy at {dest} deleted"),
                )
            } else {
                let extra = match (&to, staged.is_some() || staged_in_place) {
                    (_, true) => " and archived/encrypted it".to_string(),
                    (Some((dest, _)), false) if leaves => format!(" and sent it to {dest}"),
                    _ => String::new(),
                };
                (
                    SIGNAL,
                    Severity::NeedsReview,
                    if sensitive { 0.75 } else { 0.55 },
                    format!("{actor} dumped {rows}{}{} to {fmt}{extra}", if sensitive { "sensitive " } else { "" }, quoted(what, 40)),
                    format!("Ask {who} why {} was dumped to a file and where the file is now; delete it if no longer needed", quoted(what, 40)),
                )
            };
            let planned = policy.is_service_account(actor) && policy.windows.contains(dump.t);
            let severity = if planned {
                Severity::Informational
            } else {
                severity
            };
            let mut evidence = vec![dump.id.as_str()];
            evidence.extend(staged.map(|s| s.id.as_str()));
            if leaves {
                evidence.extend(moved.iter().map(|(m, _)| m.id.as_str()));
            }
            cited.extend(evidence.iter().copied());
            findings.push(
                Finding::new(signal, severity, title(t_line))
                    .evidence_ids(evidence.into_iter().map(str::to_string))
                    .score(score)
                    .next_step(next),
            );
        }
        Ok(findings)
    }
}

register_incremental_detector!(DumpFormat);

/// A dump of a database: a `db.*` action, or an export whose source is a database.
fn is_database_dump(e: &Event) -> bool {
    if e.is("db.*") {
        return true;
    }
    let kind = attr_text(e, &["source.kind", "data.source.kind"]).unwrap_or("");
    DATABASE_KINDS.iter().any(|k| kind.eq_ignore_ascii_case(k)) && format_of(e).is_some()
}

/// The file format: the `format` attribute, else the extension of the file name,
/// resource or destination.
fn format_of(e: &Event) -> Option<String> {
    if let Some(f) = attr_text(e, &["format", "file.format"]) {
        return Some(f.trim().trim_start_matches('.').to_ascii_lowercase());
    }
    let names = [
        attr_text(e, &["file.name", "file"]).unwrap_or(""),
        e.destination.as_deref().unwrap_or(""),
        e.resource.as_str(),
    ];
    names.iter().find_map(|n| {
        let last = n.rsplit('/').next()?;
        let (_, ext) = last.rsplit_once('.')?;
        let ext = ext.to_ascii_lowercase();
        let known = DUMP_FORMATS.contains(&ext.as_str())
            || ARCHIVE_FORMATS.contains(&ext.as_str())
            || ENCRYPTED_FORMATS.contains(&ext.as_str());
        known.then_some(ext)
    })
}

#[cfg(test)]
mod tests {
    plumbline_sdk::testing::incremental_fixture_tests!(super::DumpFormat);

    /// Many copies of a dump with 500-byte ids and 8 KiB texts: the state stays under the
    /// host's bound (each call checks it), the newest dumps kept are reported.
    #[test]
    fn flooded_state_stays_bounded() {
        use plumbline_sdk::testing::feed;
        let f = feed::load(FIXTURES, "positive-dump-encrypt-upload.json");
        let found = feed::flood::<super::DumpFormat>(&f, "db:d1", 300);
        feed::newest_kept(&found);
    }

    fn event(id: &str, minute: usize, action: &str, rest: &str) -> String {
        format!(
            r#"{{"id": "{id}", "time": "2024-06-12T{:02}:{:02}:00Z", "source": "db", "actor": {{"id": "alice@acme.com", "type": "human"}}, "system": "billing", "action": "{action}", {rest}}}"#,
            10 + minute / 60,
            minute % 60
        )
    }

    fn fixture(events: &[String], config: &str) -> String {
        format!(
            r#"{{"config": {{{config}}}, "trajectory": {{"kind": "actor", "key": "alice@acme.com", "events": [{}]}}, "expected": [], "ignore_unexpected_below": 4}}"#,
            events.join(",\n")
        )
    }

    const DUMP: &str = r#""resource": "billing.customers", "volume": {"rows": 900000}, "attributes": {"source.kind": "database", "format": "zip"}"#;
    const UPLOAD: &str = r#""resource": "c.zip", "destination": "https://transfer.sh/c.zip""#;

    /// An upload an hour after the dump is outside a 30-minute window and not kept; when
    /// the window is widened to two hours, it is read again from history and counts.
    #[test]
    fn a_wider_window_reads_again_what_it_left_out() {
        use plumbline_sdk::*;
        let text = fixture(
            &[
                event("db:d1", 0, "db.dump", DUMP),
                event("up:u1", 60, "file.uploaded", UPLOAD),
            ],
            "",
        );
        let t = testing::Fixture::parse(std::path::Path::new("inline.json"), &text)
            .unwrap()
            .to_trajectory();
        let info = super::DumpFormat::info();
        let call = |state: Option<&[u8]>, n: usize, new: &[Event], chain: &str| {
            let config = [("chain_minutes".to_string(), chain.to_string())].into();
            let window = Window {
                id: "t".into(),
                kind: TrajectoryKind::Actor,
                key: t.key.clone(),
                start: t.events[0].time,
                end: t.events[n - 1].time,
                dropped: 0,
                len: n as u32,
                replay: state.is_none(),
            };
            let cx = Context::native_incremental(&info, &config, 0, window, t.events[..n].into());
            guest_v2::observe_bytes::<super::DumpFormat>(state, new, &cx).unwrap()
        };
        let (state, _) = call(None, 1, &t.events[..1], "30");
        let (state, found) = call(Some(&state), 2, &t.events[1..], "30");
        assert_eq!(
            (found[0].signal.as_str(), &found[0].evidence[..]),
            (super::SIGNAL, &["db:d1".to_string()][..])
        );
        let (_, found) = call(Some(&state), 2, &[], "120");
        assert_eq!(found[0].signal, super::STAGED);
        assert_eq!(found[0].evidence, ["db:d1", "up:u1"]);
    }

    /// 300 dumps, each zipped and uploaded within a minute: the state stays under the host's
    /// bound on every call (the harness checks it) and the newest dumps are still reported
    /// whole.
    #[test]
    fn state_stays_bounded() {
        let mut events = Vec::new();
        for i in 0..300 {
            events.push(event(&format!("db:dump-{i:04}"), i * 2, "db.dump", DUMP));
            let upload = format!("up:upload-{i:04}");
            events.push(event(&upload, i * 2 + 1, "file.uploaded", UPLOAD));
        }
        let path = std::env::temp_dir().join("exfiltration-dump-format-bounded.json");
        std::fs::write(&path, fixture(&events, r#""chain_minutes": "1""#)).unwrap();
        let found =
            plumbline_sdk::testing::run_incremental_fixture::<super::DumpFormat>(&path).unwrap();
        assert!((10..300).contains(&found.len()), "{}", found.len());
        let last = &found[found.len() - 1];
        assert_eq!(last.evidence, ["db:dump-0299", "up:upload-0299"]);
    }
}
