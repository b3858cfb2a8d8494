//! Bulk reads from S3 followed by sharing with an account outside the company: read many
//! objects, then open a bucket policy, a bucket ACL or a snapshot to another AWS account
//! (or to everyone). The CloudTrail adapter marks shares with accounts outside
//! `[cloudtrail] org_accounts` as `*.shared` with those accounts as `shared_with`.
//!
//! Bulk read then external share: urgent. An external share alone: needs review (public:
//! urgent). Accounts of known partners (`partner_accounts`) are not external here.
//! Read on actor trajectories.

use std::collections::{BTreeMap, BTreeSet};

use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const BULK_SHARE: &str = "exfil.s3_bulk_read_then_external_share";
const SHARE: &str = "exfil.external_share";

const SHARES: [&str; 4] = [
    "s3.bucket.policy.shared",
    "s3.bucket.acl.shared",
    "snapshot.shared",
    "image.shared",
];

#[derive(Default)]
pub struct S3BulkShare;

impl Detector for S3BulkShare {
    fn info() -> Info {
        let info = Info::new(
            "exfiltration.s3-bulk-share",
            "0.1.0",
            "Bulk S3 reads followed by sharing a bucket or snapshot with an external account",
        )
        .actions(&[
            "s3.object.get",
            "s3.bucket.policy.shared",
            "s3.bucket.acl.shared",
            "snapshot.shared",
            "image.shared",
        ])
        .views(&[TrajectoryKind::Actor])
        .signals(&[BULK_SHARE, SHARE])
        .config("min_objects", "200", "Objects read that make a read bulk")
        .config("min_bytes", "1073741824", "Bytes read that make a read bulk")
        .config(
            "partner_accounts",
            "",
            "AWS account ids of known partners (comma-separated): sharing with them is not external",
        )
        .config(
            "max_evidence_reads",
            "25",
            "Most read events cited per finding (the title gives the full count)",
        );
        let info = keys::planned_work(info);
        keys::environments(info, "test")
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let min_objects: usize = cx.config_parsed("min_objects")?;
        let min_bytes: u64 = cx.config_parsed("min_bytes")?;
        let partners = cx.config_list("partner_accounts");
        let max_reads: usize = cx.config_parsed("max_evidence_reads")?;
        let policy = cx.settings::<Policy>()?;

        let mut findings = Vec::new();
        for share in t.with_any_action(&SHARES) {
            if policy.is_ignored_environment(share) {
                continue;
            }
            let public = share.attr_bool("public") == Some(true)
                || share.destination.as_deref() == Some("public");
            let external: Vec<String> = attr_list(share, "shared_with")
                .into_iter()
                .filter(|a| a != "*" && !partners.contains(a))
                .collect();
            if !public && external.is_empty() {
                continue;
            }
            // Successful reads before the share, per bucket.
            let mut reads: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
            for r in t.with_action("s3.object.get") {
                if r.time <= share.time && r.attr_str("outcome") != Some("failure") {
                    let bucket = r.attr_str("bucket").unwrap_or("");
                    reads.entry(bucket).or_default().push(r);
                }
            }
            let bulk: Vec<(&str, Vec<&Event>)> = reads
                .into_iter()
                .filter(|(_, rs)| {
                    let keys: BTreeSet<&str> = rs.iter().map(|r| r.resource.as_str()).collect();
                    keys.len() >= min_objects
                        || rs.iter().map(|r| r.bytes()).sum::<u64>() >= min_bytes
                })
                .collect();
            let with = if public {
                "everyone (public)".to_string()
            } else {
                format!("account {}", external.join(", "))
            };
            let what = match share.action.as_str() {
                "snapshot.shared" => "snapshot",
                "image.shared" => "machine image",
                _ => "bucket",
            };
            let actor = &share.actor.id;
            let shown_actor = if share.actor.display.is_empty() {
                actor.as_str()
            } else {
                share.actor.display.as_str()
            };
            let finding = if bulk.is_empty() {
                let severity = if public {
                    Severity::Urgent
                } else {
                    Severity::NeedsReview
                };
                Finding::new(
                    SHARE,
                    severity,
                    title(format!("{shown_actor} shared {what} {} with {with}", share.resource)),
                )
                .evidence([share])
                .score(if public { 0.85 } else { 0.6 })
                .next_step(if public {
                    format!(
                        "Make {} private now unless it was published on purpose, then ask {shown_actor} why it was shared publicly",
                        share.resource
                    )
                } else {
                    format!(
                        "Confirm with {shown_actor} that {with} should read {}; remove the grant if not, or add the account to partner_accounts",
                        share.resource
                    )
                })
            } else {
                let count: usize = bulk.iter().map(|(_, rs)| rs.len()).sum();
                let bytes: u64 = bulk
                    .iter()
                    .flat_map(|(_, rs)| rs.iter())
                    .map(|r| r.bytes())
                    .sum();
                let buckets: Vec<&str> = bulk.iter().map(|(b, _)| *b).collect();
                let mut evidence: Vec<&Event> = vec![share];
                evidence.extend(
                    bulk.iter()
                        .flat_map(|(_, rs)| rs.iter().copied())
                        .take(max_reads),
                );
                Finding::new(
                    BULK_SHARE,
                    Severity::Urgent,
                    title(format!(
                        "{shown_actor} read {count} objects ({} MB) from {} then shared {what} {} with {with}",
                        bytes / 1_048_576,
                        buckets.join(", "),
                        share.resource
                    )),
                )
                .evidence(evidence)
                .score(0.92)
                .next_step(format!(
                    "Remove the external grant on {} now, then ask {shown_actor} to justify the reads and the share; check the external account's access logs",
                    share.resource
                ))
            };
            let finding = if policy.is_planned(share) {
                Finding {
                    severity: Severity::Informational.as_u8(),
                    ..finding
                }
            } else {
                finding
            };
            findings.push(finding);
        }
        Ok(findings)
    }
}

register_detector!(S3BulkShare);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::S3BulkShare>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::S3BulkShare>(FIXTURES);
    }
}
