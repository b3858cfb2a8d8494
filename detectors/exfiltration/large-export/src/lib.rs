//! Data leaving for somewhere new: a large export (rows, bytes or files above the
//! configured baseline, summed per destination so chunking does not hide it) to a
//! destination that is neither allow-listed nor used earlier in the trajectory, and any
//! export to a personal mailbox, consumer drive, request catcher, bare IP or unknown bucket.
//!
//! A database snapshot or table export (CloudTrail `data.export`: RDS `StartExportTask`,
//! DynamoDB exports) carries no volume but is a whole table by nature: it counts as large,
//! and as urgent when the target bucket belongs to an account that is not ours.
//!
//! One finding per destination, citing every export that went there. Read on actor
//! trajectories (who moved the data), so one export raises one alert.
//!
//! Incremental (`plumbline:detector@0.2.0`): the state holds, per destination not
//! allow-listed, what the exports there add up to (count, volume, snapshot, the first
//! export, the first sensitive one, the first to another account's bucket, planned and
//! off-hours) and the first exports' ids — not the events. Those summaries are made under
//! the configuration: when it changes they are made again from `history`.

use std::collections::BTreeMap;

use plumbline_sdk::kept::{self, text};
use plumbline_sdk::kit::text::has_word;
use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const LARGE: &str = "exfil.large_export_new_destination";
const UNTRUSTED: &str = "exfil.untrusted_destination";

/// Data movement actions this detector reads.
const MOVES: [&str; 3] = ["data.export", "data.download", "data.shared"];

/// Most exports cited per destination (the first ones; the title counts them all), and most
/// destinations kept (those whose newest export is oldest go first, as they do past
/// [`kept::BUDGET`]).
const MAX_CITED: usize = 50;
const MAX_PLACES: usize = 64;

/// What the detector remembers of a trajectory: per destination (by its place), what the
/// exports there add up to.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    /// A hash of the configuration the summaries were made under.
    kept_by: u64,
    places: BTreeMap<String, Dest>,
}

/// The exports to one destination. `counted` are those outside ignored environments.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Dest {
    /// A destination as an export named it (the place is parsed from it again).
    raw: String,
    /// The newest export's time: when it has left the trajectory, so have they all.
    last: i64,
    /// The adapter knows this destination from before this trajectory.
    known: bool,
    counted: usize,
    rows: u64,
    bytes: u64,
    files: u64,
    snapshot: bool,
    /// Every counted export was planned work; one was off-hours.
    planned: bool,
    off_hours: bool,
    /// The first counted export: who, whether a person, and the destination as it named it.
    first: Option<(At, (String, bool, String))>,
    /// The first counted export of sensitive data, and what it exported (for the title).
    sensitive: Option<(At, String)>,
    /// The first counted export to a bucket of an account not ours, and that account.
    owner: Option<(At, String)>,
    /// The first counted exports, in (time, id) order.
    cited: Vec<At>,
}

/// An export's (time, id): what orders them, and what cites one.
type At = (i64, String);

/// Keeps `new` if it comes before `kept` (the first of a kind, whatever order events arrive in).
fn first<T>(kept: &mut Option<(At, T)>, new: (At, T)) {
    if kept.as_ref().is_none_or(|k| new.0 < k.0) {
        *kept = Some(new);
    }
}

/// The settings, parsed once per loaded detector (asked for in `prepare`).
struct Settings {
    min: Totals,
    classifications: Vec<String>,
    markers: Vec<String>,
    lists: Destinations,
    policy: Policy,
    org_accounts: Vec<String>,
}

impl FromConfig for Settings {
    fn from_config(cfg: &dyn ConfigSource) -> Result<Settings, AnalyzeError> {
        Ok(Settings {
            min: Totals {
                rows: cfg.parsed("min_rows")?,
                bytes: cfg.parsed("min_bytes")?,
                files: cfg.parsed("min_files")?,
            },
            classifications: cfg.list("sensitive_classifications"),
            markers: cfg.list("sensitive_markers"),
            lists: Destinations::from_config(cfg),
            policy: Policy::from_config(cfg)?,
            org_accounts: cfg.list("org_accounts"),
        })
    }
}

impl Seen {
    /// Adds an export to its destination's summary (one not allow-listed).
    fn add(&mut self, e: &Event, s: &Settings) {
        let Some(place) = e.destination.as_deref().and_then(Place::parse) else {
            return;
        };
        if s.lists.classify_place(&place) == DestinationClass::Known {
            return;
        }
        let d = self
            .places
            .entry(text(&format!("{place:?}")))
            .or_insert_with(|| Dest {
                raw: text(e.destination.as_deref().unwrap_or_default()),
                planned: true,
                ..Dest::default()
            });
        d.last = d.last.max(e.time);
        d.known |= e.attr_bool("destination.new") == Some(false);
        if s.policy.is_ignored_environment(e) {
            return;
        }
        let at: At = (e.time, e.id.clone());
        d.counted += 1;
        d.rows += e.rows();
        d.bytes += e.bytes();
        d.files += e.files();
        d.snapshot |= is_snapshot_export(e);
        d.planned &= s.policy.is_planned(e);
        d.off_hours |= s.policy.is_off_hours(e);
        // The raw destination says more than the place (the whole mail address).
        let shown: String = e
            .destination
            .as_deref()
            .unwrap_or("")
            .chars()
            .take(80)
            .collect();
        let person = (text(who(e)), e.actor.kind == ActorKind::Human, shown);
        first(&mut d.first, (at.clone(), person));
        if is_sensitive(e, &s.classifications, &s.markers) {
            first(&mut d.sensitive, (at.clone(), resource_name(e)));
        }
        if let Some(owner) = external_owner(e, &s.org_accounts) {
            first(&mut d.owner, (at.clone(), text(owner)));
        }
        let i = d.cited.partition_point(|m| *m < at);
        d.cited.insert(i, at);
        d.cited.truncate(MAX_CITED);
    }
}

#[derive(Default)]
pub struct LargeExport;

impl IncrementalDetector for LargeExport {
    type State = Seen;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Settings>()?;
        Ok(())
    }

    fn info() -> Info {
        let info = Info::new(
            "exfiltration.large-export",
            "0.1.0",
            "Large exports to a new destination; any export to personal mail, consumer drives, catchers, bare IPs or unknown buckets",
        )
        .actions(&MOVES)
        .views(&[TrajectoryKind::Actor])
        .signals(&[LARGE, UNTRUSTED])
        .config("min_rows", "10000", "Rows (summed per destination) that make an export large")
        .config(
            "min_bytes",
            "104857600",
            "Bytes (summed per destination) that make an export large",
        )
        .config("min_files", "200", "Files (summed per destination) that make an export large")
        .config(
            "org_accounts",
            "",
            "The company's AWS account ids (comma-separated): a snapshot export to a bucket owned by any other account is external",
        )
        .config(
            "sensitive_classifications",
            "pii,phi,pci,confidential,restricted,secret,sensitive",
            "Values of the `classification` attribute that mark sensitive data",
        )
        .config(
            "sensitive_markers",
            "pii,customer*,client*,contact*,lead*,user*,account*,payment*,card*,billing,invoice*,salar*,payroll,ssn,passport*,patient*,medical,health*,contract*,password*,secret*,token*,credential*,employee*",
            "Words in the exported resource or table names that mark sensitive data",
        );
        let info = destination::declare(info);
        let info = keys::planned_work(info);
        let info = keys::working_hours(info);
        keys::environments(info, "test")
    }

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let s = cx.settings::<Settings>()?;
        // Summaries made under another configuration are made again from the trajectory.
        let config = kept_by(cx);
        // (A default state, never called, has nothing to make again.)
        let rebuild = seen.kept_by != config && seen.kept_by != 0;
        if seen.kept_by != config {
            *seen = Seen {
                kept_by: config,
                ..Seen::default()
            };
        }
        if rebuild {
            // The trajectory holds this call's events too.
            let history = cx.history_all();
            for e in history
                .iter()
                .filter(|e| MOVES.contains(&e.action.as_str()))
            {
                seen.add(e, &s);
            }
        } else {
            for e in new_events {
                seen.add(e, &s);
            }
        }
        // What has left the trajectory (its bound dropped it) is no longer judged, as a
        // 0.1.0 call would not see it either; the oldest destinations go past the budget.
        if let Some(w) = cx.window() {
            seen.places.retain(|_, d| d.last >= w.start);
        }
        bound(&mut seen.places);

        // Exports grouped by where they went, in the order of the places.
        let mut by_place: Vec<(Place, &Dest)> = seen
            .places
            .values()
            .filter_map(|d| Some((Place::parse(&d.raw)?, d)))
            .collect();
        by_place.sort_by(|a, b| a.0.cmp(&b.0));

        let mut findings = Vec::new();
        for (place, d) in by_place {
            let class = s.lists.classify_place(&place);
            // The adapter knows this destination from before this trajectory.
            if class == DestinationClass::Known || d.known {
                continue;
            }
            let Some((_, (actor, human, shown))) = &d.first else {
                continue;
            };
            let total = Totals {
                rows: d.rows,
                bytes: d.bytes,
                files: d.files,
            };
            let min = &s.min;
            let large = d.snapshot
                || total.rows >= min.rows
                || total.bytes >= min.bytes
                || total.files >= min.files;
            let external_owner = d.owner.as_ref().map(|(_, o)| o.as_str());
            // Personal, anonymous or another company's: data there is out of our hands.
            let strong = class.is_personal_or_anonymous() || external_owner.is_some();
            let unknown_bucket = class == DestinationClass::UnknownBucket;
            if !large && !strong && !unknown_bucket {
                continue;
            }
            let sensitive = d.sensitive.is_some();
            let (signal, mut severity) = if strong {
                let urgent = large || sensitive;
                (
                    UNTRUSTED,
                    if urgent {
                        Severity::Urgent
                    } else {
                        Severity::NeedsReview
                    },
                )
            } else if large {
                let urgent = sensitive;
                (
                    LARGE,
                    if urgent {
                        Severity::Urgent
                    } else {
                        Severity::NeedsReview
                    },
                )
            } else {
                // A small export to a bucket nobody listed.
                (UNTRUSTED, Severity::NeedsReview)
            };
            if d.planned {
                severity = Severity::Informational;
            }
            let score = match severity {
                Severity::Urgent => 0.9,
                Severity::NeedsReview if d.off_hours => 0.7,
                Severity::NeedsReview => 0.6,
                Severity::Informational => 0.2,
            };
            let what = if d.snapshot && total == Totals::default() {
                "a whole table / snapshot".to_string()
            } else {
                describe(&total)
            };
            let owner = external_owner
                .map(|o| format!(", owned by account {o}"))
                .unwrap_or_default();
            let data = d
                .sensitive
                .as_ref()
                .map(|(_, name)| format!(" of sensitive {name}"))
                .unwrap_or_default();
            let t = title(format!(
                "{actor} exported {what}{data} to {shown} ({}{owner}){}{}",
                class.describe(),
                if d.counted > 1 {
                    format!(" in {} exports", d.counted)
                } else {
                    String::new()
                },
                if d.planned {
                    " — planned work in a change window"
                } else {
                    ""
                },
            ));
            let next = match severity {
                Severity::Urgent if !human => format!(
                    "Find who runs {actor} and confirm the export to {shown} was authorised; if not, rotate its credentials and ask the destination's owner to delete the data"
                ),
                Severity::Urgent => format!(
                    "Contact {actor} now: confirm the export to {shown} was authorised; if not, revoke their session and tokens and ask the destination's owner to delete the data"
                ),
                Severity::NeedsReview => format!(
                    "Ask {actor} for the business reason to send {what} to {shown}; add {} to {} if it is approved",
                    place.name(),
                    match place {
                        Place::Bucket(_) => "known_buckets",
                        _ => "known_domains",
                    }
                ),
                _ => "None: planned work; check the migration ticket lists this destination".to_string(),
            };
            findings.push(
                Finding::new(signal, severity, t)
                    .evidence_ids(d.cited.iter().map(|(_, id)| id.clone()))
                    .score(score)
                    .next_step(next),
            );
        }
        Ok(findings)
    }
}

register_incremental_detector!(LargeExport);

/// The fingerprint of the whole configuration.
fn kept_by(cx: &Context) -> u64 {
    let keys = LargeExport::info().config;
    cx.config_fingerprint(keys.iter().map(|k| k.name.as_str()))
}

/// Keeps at most [`MAX_PLACES`] destinations within [`kept::BUDGET`] (weighed as
/// [`kept::fold`] weighs), the ones whose newest export is oldest dropped first.
fn bound(places: &mut BTreeMap<String, Dest>) {
    let weigh = |k: &String, d: &Dest| k.len() + format!("{d:?}").len();
    let mut total: usize = places.iter().map(|(k, d)| weigh(k, d)).sum();
    while total > kept::BUDGET || places.len() > MAX_PLACES {
        let Some(oldest) = places
            .iter()
            .min_by_key(|(_, d)| d.last)
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        if let Some(d) = places.remove(&oldest) {
            total -= weigh(&oldest, &d);
        }
    }
}

/// A CloudTrail export of a database snapshot or table: bulk whatever its volume.
fn is_snapshot_export(e: &Event) -> bool {
    e.source == "cloudtrail" && e.is("data.export")
}

/// The account owning the export's target bucket, when it is not the exporting account
/// and not one of `org_accounts`.
fn external_owner<'a>(e: &'a Event, org_accounts: &[String]) -> Option<&'a str> {
    let owner = e
        .attr_str("export.bucket_owner")
        .filter(|o| !o.is_empty())?;
    let own = e.attr_str("account").unwrap_or("");
    (owner != own && !org_accounts.iter().any(|a| a == owner)).then_some(owner)
}

fn is_sensitive(e: &Event, classifications: &[String], markers: &[String]) -> bool {
    let class = attr_text(e, &["classification", "data.classification"]).unwrap_or("");
    if !class.is_empty() && has_word(class, classifications) {
        return true;
    }
    let names = [
        e.resource.as_str(),
        attr_text(e, &["tables", "table", "data.tables", "report", "object"]).unwrap_or(""),
    ];
    names.iter().any(|n| !n.is_empty() && has_word(n, markers))
}

fn resource_name(e: &Event) -> String {
    let name = attr_text(e, &["tables", "table", "data.tables"]).unwrap_or(&e.resource);
    quoted(name, 40)
}

fn describe(t: &Totals) -> String {
    let mut parts = Vec::new();
    if t.rows > 0 {
        parts.push(format!("{} rows", t.rows));
    }
    if t.bytes > 0 {
        parts.push(human_bytes(t.bytes));
    }
    match t.files {
        0 => {}
        1 => parts.push("1 file".to_string()),
        n => parts.push(format!("{n} files")),
    }
    if parts.is_empty() {
        "data".to_string()
    } else {
        parts.join(" / ")
    }
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    plumbline_sdk::testing::incremental_fixture_tests!(super::LargeExport);

    /// Many exports with 500-byte ids and 8 KiB texts: the state stays under the host's
    /// bound (each call checks it); they add up at their one destination.
    #[test]
    fn state_stays_bounded() {
        use plumbline_sdk::testing::feed;
        let f = feed::load(FIXTURES, "positive-customers-to-personal-mail.json");
        let found = feed::flood::<super::LargeExport>(&f, "exp:m1", 300);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].title.contains("in 300 exports"),
            "{}",
            found[0].title
        );
        assert_eq!(found[0].evidence.len(), super::MAX_CITED);
    }

    /// Exports to a destination the allow-list named are not kept; once the list no longer
    /// names it, they are read again from history and add up.
    #[test]
    fn a_changed_allow_list_reads_history_again() {
        use plumbline_sdk::*;
        let f = testing::feed::load(FIXTURES, "positive-chunked-export.json");
        let events = f.to_trajectory().events;
        let info = super::LargeExport::info();
        let call = |state: Option<&[u8]>, new: &[Event], known: &str| {
            let config = [("known_domains".to_string(), known.to_string())].into();
            let window = Window {
                id: "t".into(),
                kind: TrajectoryKind::Actor,
                key: f.trajectory.key.clone(),
                start: events[0].time,
                end: events[events.len() - 1].time,
                dropped: 0,
                len: events.len() as u32,
                replay: state.is_none(),
            };
            let cx = Context::native_incremental(&info, &config, 0, window, events.clone());
            guest_v2::observe_bytes::<super::LargeExport>(state, new, &cx).unwrap()
        };
        let (state, found) = call(None, &events, "example-analytics.com");
        assert!(found.is_empty());
        let (_, found) = call(Some(&state), &[], "");
        f.compare(&found).unwrap();
    }

    /// 300 exports, each to a destination of its own: the newest destinations are judged,
    /// within the state's bound (the harness checks it) and the answer's 100 findings.
    #[test]
    fn destinations_stay_bounded() {
        let events: Vec<String> = (0..300)
            .map(|i| {
                format!(
                    r#"{{"id": "exp:{i:04}", "time": "2024-06-12T{:02}:{:02}:00Z", "source": "custom", "actor": {{"id": "dana@acme.com", "type": "human"}}, "system": "crm", "action": "data.export", "destination": "https://intake-{i:04}.example-collector.net/upload", "volume": {{"rows": 50000}}}}"#,
                    10 + i / 60,
                    i % 60
                )
            })
            .collect();
        let fixture = format!(
            r#"{{"trajectory": {{"kind": "actor", "key": "dana@acme.com", "events": [{}]}}, "expected": [], "ignore_unexpected_below": 4}}"#,
            events.join(",\n")
        );
        let path = std::env::temp_dir().join("exfiltration-large-export-bounded.json");
        std::fs::write(&path, fixture).unwrap();
        let found =
            plumbline_sdk::testing::run_incremental_fixture::<super::LargeExport>(&path).unwrap();
        assert_eq!(found.len(), super::MAX_PLACES);
        assert!(found.iter().any(|f| f.evidence == ["exp:0299"]));
        assert!(found.iter().all(|f| f.evidence[0].as_str() >= "exp:0236"));
    }

    /// Replaces the fixture `negative-system-trajectory.json` (the same events seen through
    /// the warehouse's system trajectory): the host never offers this detector that view.
    #[test]
    fn reads_only_its_views() {
        use plumbline_sdk::{IncrementalDetector, TrajectoryKind};
        let info = super::LargeExport::info();
        assert!(info.reads_view(TrajectoryKind::Actor));
        assert!(!info.reads_view(TrajectoryKind::System));
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(super::human_bytes(512), "512 B");
        assert_eq!(super::human_bytes(3 * 1024 * 1024 * 1024), "3.0 GB");
    }
}
