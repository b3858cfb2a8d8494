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

use std::collections::BTreeMap;

use plumbline_sdk::kit::text::has_word;
use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const LARGE: &str = "exfil.large_export_new_destination";
const UNTRUSTED: &str = "exfil.untrusted_destination";

/// Data movement actions this detector reads.
const MOVES: [&str; 3] = ["data.export", "data.download", "data.shared"];

#[derive(Default)]
pub struct LargeExport;

impl Detector for LargeExport {
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

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let min = Totals {
            rows: cx.config_parsed("min_rows")?,
            bytes: cx.config_parsed("min_bytes")?,
            files: cx.config_parsed("min_files")?,
        };
        let classifications = cx.config_list("sensitive_classifications");
        let markers = cx.config_list("sensitive_markers");
        let lists = cx.settings::<Destinations>()?;
        let policy = cx.settings::<Policy>()?;
        let org_accounts = cx.config_list("org_accounts");

        // Exports grouped by where they went, in trajectory order.
        let mut by_place: BTreeMap<Place, Vec<&Event>> = BTreeMap::new();
        for e in t.with_any_action(&MOVES) {
            let Some(place) = e.destination.as_deref().and_then(Place::parse) else {
                continue;
            };
            by_place.entry(place).or_default().push(e);
        }

        let mut findings = Vec::new();
        for (place, exports) in by_place {
            let class = lists.classify_place(&place);
            if class == DestinationClass::Known {
                continue;
            }
            // The adapter knows this destination from before this trajectory.
            if exports
                .iter()
                .any(|e| e.attr_bool("destination.new") == Some(false))
            {
                continue;
            }
            let counted: Vec<&Event> = exports
                .iter()
                .copied()
                .filter(|e| !policy.is_ignored_environment(e))
                .collect();
            if counted.is_empty() {
                continue;
            }
            let total = counted.iter().fold(Totals::default(), |t, e| Totals {
                rows: t.rows + e.rows(),
                bytes: t.bytes + e.bytes(),
                files: t.files + e.files(),
            });
            let snapshot = counted.iter().any(|e| is_snapshot_export(e));
            let large = snapshot
                || total.rows >= min.rows
                || total.bytes >= min.bytes
                || total.files >= min.files;
            let external_owner = counted
                .iter()
                .find_map(|e| external_owner(e, &org_accounts));
            // Personal, anonymous or another company's: data there is out of our hands.
            let strong = class.is_personal_or_anonymous() || external_owner.is_some();
            let unknown_bucket = class == DestinationClass::UnknownBucket;
            if !large && !strong && !unknown_bucket {
                continue;
            }
            let sensitive: Vec<&Event> = counted
                .iter()
                .copied()
                .filter(|e| is_sensitive(e, &classifications, &markers))
                .collect();
            let planned = counted.iter().all(|e| policy.is_planned(e));
            let off_hours = counted.iter().any(|e| policy.is_off_hours(e));
            let (signal, mut severity) = if strong {
                let urgent = large || !sensitive.is_empty();
                (
                    UNTRUSTED,
                    if urgent {
                        Severity::Urgent
                    } else {
                        Severity::NeedsReview
                    },
                )
            } else if large {
                let urgent = !sensitive.is_empty();
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
            if planned {
                severity = Severity::Informational;
            }
            let score = match severity {
                Severity::Urgent => 0.9,
                Severity::NeedsReview if off_hours => 0.7,
                Severity::NeedsReview => 0.6,
                Severity::Informational => 0.2,
            };
            let actor = who(counted[0]);
            // The raw destination says more than the place (the whole mail address).
            let shown: String = counted[0]
                .destination
                .as_deref()
                .unwrap_or(place.name())
                .chars()
                .take(80)
                .collect();
            let what = if snapshot && total == Totals::default() {
                "a whole table / snapshot".to_string()
            } else {
                describe(&total)
            };
            let owner = external_owner
                .map(|o| format!(", owned by account {o}"))
                .unwrap_or_default();
            let data = sensitive
                .first()
                .map(|e| format!(" of sensitive {}", resource_name(e)))
                .unwrap_or_default();
            let t = title(format!(
                "{actor} exported {what}{data} to {shown} ({}{owner}){}{}",
                class.describe(),
                if counted.len() > 1 {
                    format!(" in {} exports", counted.len())
                } else {
                    String::new()
                },
                if planned {
                    " — planned work in a change window"
                } else {
                    ""
                },
            ));
            let next = match severity {
                Severity::Urgent if counted[0].actor.kind != ActorKind::Human => format!(
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
                    .evidence(counted.iter().copied())
                    .score(score)
                    .next_step(next),
            );
        }
        Ok(findings)
    }
}

register_detector!(LargeExport);

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
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::LargeExport>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::LargeExport>(FIXTURES);
    }

    /// Replaces the fixture `negative-system-trajectory.json` (the same events seen through
    /// the warehouse's system trajectory): the host never offers this detector that view.
    #[test]
    fn reads_only_its_views() {
        use plumbline_sdk::{Detector, TrajectoryKind};
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
