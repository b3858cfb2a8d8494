//! Format transformations that stage data for leaving: a database table dumped to
//! CSV/JSON/SQL, then zipped or encrypted, then moved somewhere not allow-listed. A dump
//! alone needs review; the chain dump → archive/encrypt → move off is urgent.
//!
//! Routine dumps (backups by the backup service account) are declared in
//! `routine_dump_actors` and only count when their output then leaves for an unlisted
//! destination. Read on actor trajectories.

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

#[derive(Default)]
pub struct DumpFormat;

impl Detector for DumpFormat {
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

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let min_rows: u64 = cx.config_parsed("min_rows")?;
        let min_bytes: u64 = cx.config_parsed("min_bytes")?;
        let chain = cx.config_parsed::<i64>("chain_minutes")? * 60_000_000_000;
        let routine = cx.config_list("routine_dump_actors");
        let markers = cx.config_list("sensitive_markers");
        let lists = cx.settings::<Destinations>()?;
        let policy = cx.settings::<Policy>()?;

        let mut findings = Vec::new();
        let mut cited: Vec<&str> = Vec::new();
        for dump in t.with_any_action(&DUMPS) {
            if cited.contains(&dump.id.as_str()) || !is_database_dump(dump) {
                continue;
            }
            let format = format_of(dump);
            let unknown_volume = dump.volume.is_none();
            let big = dump.rows() >= min_rows
                || dump.bytes() >= min_bytes
                || (unknown_volume && dump.is("db.dump"));
            if !big || policy.is_ignored_environment(dump) {
                continue;
            }
            let later =
                |e: &&Event| e.time >= dump.time && e.time - dump.time <= chain && e.id != dump.id;
            // Archived or encrypted: in the dump's own format, or by a later step.
            let staged_by: Vec<&Event> = t.with_any_action(&STAGING).filter(later).collect();
            let staged = staged_by.first().copied();
            let staged_in_place = format
                .as_deref()
                .is_some_and(|f| ARCHIVE_FORMATS.contains(&f) || ENCRYPTED_FORMATS.contains(&f));
            let moved: Vec<(&Event, String, DestinationClass)> = t
                .with_any_action(&MOVES)
                .filter(later)
                .filter_map(|e| {
                    let raw = e
                        .destination
                        .clone()
                        .or_else(|| e.attr_str("bucket").map(|b| format!("s3://{b}")))?;
                    let place = Place::parse(&raw)?;
                    let class = lists.classify_place(&place);
                    (class != DestinationClass::Known).then_some((e, raw, class))
                })
                .collect();
            let is_routine = routine.iter().any(|p| glob::matches(p, &dump.actor.id));
            // A dump written straight to an unlisted place moves it in one step.
            let self_moved = dump.is("data.export")
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
                attr_text(dump, &["tables", "table", "data.tables", "database"]).unwrap_or(""),
            ]
            .iter()
            .any(|n| !n.is_empty() && has_word(n, &markers));
            let what =
                attr_text(dump, &["tables", "table", "data.tables"]).unwrap_or(&dump.resource);
            let rows = if dump.rows() > 0 {
                format!("{} rows of ", dump.rows())
            } else {
                String::new()
            };
            let fmt = match format.as_deref() {
                Some(f) => format!("a {} file", f.to_ascii_uppercase()),
                None => "a file".to_string(),
            };
            let actor = &dump.actor.id;
            let who = if dump.actor.kind == ActorKind::Human {
                actor.clone()
            } else {
                format!("the owner of {actor}")
            };
            let to = moved
                .first()
                .map(|(_, raw, c)| (raw.clone(), c.describe()))
                .or_else(|| dump.destination.clone().map(|d| (d, "")));
            let (signal, severity, score, t_line, next) = if leaves
                && (staged.is_some() || staged_in_place)
            {
                let (dest, class) = to.unwrap_or_default();
                let how = match staged {
                    Some(s) => format!(", {} it", s.action.trim_start_matches("data.")),
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
            let severity = if policy.is_planned(dump) {
                Severity::Informational
            } else {
                severity
            };
            let mut evidence = vec![dump];
            evidence.extend(staged);
            if leaves {
                evidence.extend(moved.iter().map(|(e, _, _)| *e));
            }
            cited.extend(evidence.iter().map(|e| e.id.as_str()));
            findings.push(
                Finding::new(signal, severity, title(t_line))
                    .evidence(evidence)
                    .score(score)
                    .next_step(next),
            );
        }
        Ok(findings)
    }
}

register_detector!(DumpFormat);

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
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::DumpFormat>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::DumpFormat>(FIXTURES);
    }
}
