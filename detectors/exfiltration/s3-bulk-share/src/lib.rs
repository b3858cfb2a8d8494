//! Bulk reads from S3 followed by sharing with an account outside the company: read many
//! objects, then open a bucket policy, a bucket ACL or a snapshot to another AWS account
//! (or to everyone). The CloudTrail adapter marks shares with accounts outside
//! `[cloudtrail] org_accounts` as `*.shared` with those accounts as `shared_with`.
//!
//! Bulk read then external share: urgent. An external share alone: needs review (public:
//! urgent). Accounts of known partners (`partner_accounts`) are not external here.
//! Read on actor trajectories.
//!
//! Incremental (`plumbline:detector@0.2.0`): the state holds the external shares seen (who,
//! what, with whom — not the events) and, for each, the bulk reads before it, worked out
//! from `history` when the share arrives (and again only if a late read lands before it).

use std::collections::{BTreeMap, BTreeSet};

use plumbline_sdk::kept::{self, text};
use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const BULK_SHARE: &str = "exfil.s3_bulk_read_then_external_share";
const SHARE: &str = "exfil.external_share";
const READ: &str = "s3.object.get";

const SHARES: [&str; 4] = [
    "s3.bucket.policy.shared",
    "s3.bucket.acl.shared",
    "snapshot.shared",
    "image.shared",
];

/// Most shares kept, the oldest dropped first (and fewer if they weigh more than
/// [`kept::BUDGET`]: a trajectory with more external shares is judged on its newest), and
/// most reads kept cited per share whatever `max_evidence_reads` says.
const MAX_SHARES: usize = 16;
const MAX_CITED: usize = 50;

/// What the detector remembers of a trajectory: its shares with an account other than
/// everyone-in-the-org (`*`) or with the public, in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Shares {
    shares: Vec<Share>,
}

/// One share: what a finding says of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Share {
    t: i64,
    id: String,
    action: String,
    resource: String,
    actor: String,
    display: String,
    environment: Environment,
    public: bool,
    /// `shared_with`, but `*` (partners are taken out when judged: the list may change).
    with: Vec<String>,
    /// The bulk reads before the share; none until worked out, or again after a late read
    /// that lands before the share.
    bulk: Option<Bulk>,
}

impl Share {
    fn of(e: &Event) -> Share {
        Share {
            t: e.time,
            id: e.id.clone(),
            action: e.action.clone(),
            resource: text(&e.resource),
            actor: text(&e.actor.id),
            display: text(&e.actor.display),
            environment: e.environment,
            public: e.attr_bool("public") == Some(true)
                || e.destination.as_deref() == Some("public"),
            with: attr_list(e, "shared_with")
                .iter()
                .filter(|a| *a != "*")
                .map(|a| text(a))
                .collect(),
            bulk: None,
        }
    }
}

kept::record!(Share);

/// The successful reads up to a share's time, in the buckets read in bulk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Bulk {
    /// What makes a read bulk and how many are cited, when this was worked out.
    under: Thresholds,
    /// Their names, as many as a title can show.
    buckets: Vec<String>,
    count: usize,
    bytes: u64,
    /// The first reads of those buckets (bucket by bucket), at most `max_evidence_reads`.
    cited: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Thresholds {
    min_objects: usize,
    min_bytes: u64,
    max_reads: usize,
}

impl Thresholds {
    /// The bulk reads among `history` (the trajectory's events) up to `time`.
    fn bulk(self, history: &[Event], time: i64) -> Bulk {
        let mut reads: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
        for r in history.iter().filter(|r| r.is(READ)) {
            if r.time <= time && r.attr_str("outcome") != Some("failure") {
                let bucket = r.attr_str("bucket").unwrap_or("");
                reads.entry(bucket).or_default().push(r);
            }
        }
        let bulk: Vec<(&str, Vec<&Event>)> = reads
            .into_iter()
            .filter(|(_, rs)| {
                let keys: BTreeSet<&str> = rs.iter().map(|r| r.resource.as_str()).collect();
                keys.len() >= self.min_objects
                    || rs.iter().map(|r| r.bytes()).sum::<u64>() >= self.min_bytes
            })
            .collect();
        let reads = || bulk.iter().flat_map(|(_, rs)| rs.iter());
        let mut shown = 0;
        let buckets = bulk
            .iter()
            .map(|(b, _)| text(b))
            .take_while(|b| {
                shown += b.chars().count() + 2;
                shown <= TITLE_MAX + 2
            })
            .collect();
        Bulk {
            under: self,
            buckets,
            count: reads().count(),
            bytes: reads().map(|r| r.bytes()).sum(),
            cited: reads()
                .take(self.max_reads.min(MAX_CITED))
                .map(|r| r.id.clone())
                .collect(),
        }
    }
}

#[derive(Default)]
pub struct S3BulkShare;

impl IncrementalDetector for S3BulkShare {
    type State = Shares;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Policy>()?;
        Ok(())
    }

    fn info() -> Info {
        let info = Info::new(
            "exfiltration.s3-bulk-share",
            "0.1.0",
            "Bulk S3 reads followed by sharing a bucket or snapshot with an external account",
        )
        .actions(&[
            READ,
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

    fn observe(
        &self,
        seen: &mut Shares,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let under = Thresholds {
            min_objects: cx.config_parsed("min_objects")?,
            min_bytes: cx.config_parsed("min_bytes")?,
            max_reads: cx.config_parsed("max_evidence_reads")?,
        };
        let partners = cx.config_list("partner_accounts");
        let policy = cx.settings::<Policy>()?;

        let mut shares = Vec::new();
        for e in new_events {
            if e.is(READ) {
                // A late read changes what was read before the shares after it.
                if e.attr_str("outcome") != Some("failure") {
                    for s in seen.shares.iter_mut().filter(|s| s.t >= e.time) {
                        s.bulk = None;
                    }
                }
            } else if SHARES.contains(&e.action.as_str()) {
                let share = Share::of(e);
                if share.public || !share.with.is_empty() {
                    shares.push(share);
                }
            }
        }
        // In (time, id) order, each once; what has left the trajectory (its bound dropped
        // it) is no longer judged, as a 0.1.0 call would not see it either.
        if !shares.is_empty() {
            kept::fold(&mut seen.shares, shares, MAX_SHARES, kept::BUDGET);
        }
        kept::prune(&mut seen.shares, cx);

        // The shares judged, with who they open the data to.
        let judged: Vec<(usize, String)> = seen
            .shares
            .iter()
            .enumerate()
            .filter(|(_, s)| !policy.ignore_environments.contains(&s.environment))
            .filter_map(|(i, s)| {
                let external: Vec<&str> = s
                    .with
                    .iter()
                    .filter(|a| !partners.contains(a))
                    .map(String::as_str)
                    .collect();
                if s.public {
                    Some((i, "everyone (public)".to_string()))
                } else if external.is_empty() {
                    None
                } else {
                    Some((i, format!("account {}", external.join(", "))))
                }
            })
            .collect();
        // Their bulk reads, read from history only for shares not worked out yet (or under
        // other thresholds): once per share, not once per call.
        if judged.iter().any(|(i, _)| {
            seen.shares[*i]
                .bulk
                .as_ref()
                .is_none_or(|b| b.under != under)
        }) {
            let history = cx.history_all();
            for (i, _) in &judged {
                let s = &mut seen.shares[*i];
                if s.bulk.as_ref().is_none_or(|b| b.under != under) {
                    s.bulk = Some(under.bulk(&history, s.t));
                }
            }
            // The reads cited weigh too: the oldest shares go if they weigh too much.
            let gone = kept::fold(&mut seen.shares, [], MAX_SHARES, kept::BUDGET).len();
            return Ok(judged
                .iter()
                .filter(|(i, _)| *i >= gone)
                .map(|(i, with)| finding(&seen.shares[*i - gone], with, &policy))
                .collect());
        }

        Ok(judged
            .iter()
            .map(|(i, with)| finding(&seen.shares[*i], with, &policy))
            .collect())
    }
}

fn finding(share: &Share, with: &str, policy: &Policy) -> Finding {
    let public = share.public;
    let what = match share.action.as_str() {
        "snapshot.shared" => "snapshot",
        "image.shared" => "machine image",
        _ => "bucket",
    };
    let shown_actor = if share.display.is_empty() {
        share.actor.as_str()
    } else {
        share.display.as_str()
    };
    let bulk = share.bulk.as_ref().filter(|b| !b.buckets.is_empty());
    let finding = match bulk {
        None => {
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
            .evidence_ids([share.id.clone()])
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
        }
        Some(bulk) => Finding::new(
            BULK_SHARE,
            Severity::Urgent,
            title(format!(
                "{shown_actor} read {} objects ({} MB) from {} then shared {what} {} with {with}",
                bulk.count,
                bulk.bytes / 1_048_576,
                bulk.buckets.join(", "),
                share.resource
            )),
        )
        .evidence_ids(std::iter::once(share.id.clone()).chain(bulk.cited.iter().cloned()))
        .score(0.92)
        .next_step(format!(
            "Remove the external grant on {} now, then ask {shown_actor} to justify the reads and the share; check the external account's access logs",
            share.resource
        )),
    };
    // Planned work: a declared service account inside a declared change window.
    if policy.is_service_account(&share.actor) && policy.windows.contains(share.t) {
        Finding {
            severity: Severity::Informational.as_u8(),
            ..finding
        }
    } else {
        finding
    }
}

register_incremental_detector!(S3BulkShare);

#[cfg(test)]
mod tests {
    plumbline_sdk::testing::incremental_fixture_tests!(super::S3BulkShare);

    /// Many public shares with 500-byte ids and 8 KiB texts, after the twelve bulk reads:
    /// the state stays under the host's bound (each call checks it), the newest share kept
    /// is reported.
    #[test]
    fn state_stays_bounded() {
        use plumbline_sdk::testing::feed;
        let f = feed::load(FIXTURES, "positive-public-snapshot.json");
        let found = feed::flood::<super::S3BulkShare>(&f, "cloudtrail:s3", 300);
        feed::newest_kept(&found);
        assert!(found.len() <= super::MAX_SHARES);
    }

    /// Forty public shares after 300 reads, each citing as many reads as it may: the newest
    /// (at most 16) are judged, each citing at most 50 reads, and the state stays under the
    /// host's bound (the harness checks it).
    #[test]
    fn reads_cited_stay_bounded() {
        let event = |i: usize, action: &str| {
            format!(
                r#"{{"id": "cloudtrail:{i:08}-0000-4000-8000-{i:012}", "time": "2024-06-12T{:02}:{:02}:{:02}Z", "source": "cloudtrail", "actor": {{"id": "arn:aws:sts::111122223333:assumed-role/DataEng/ben@acme.com", "type": "human"}}, "system": "aws/111122223333", "action": "{action}", "resource": "s3://acme-customer-exports-{}/exports/{i}.parquet", "attributes": {{"bucket": "acme-customer-exports-{}", "public": true}}}}"#,
                10 + i / 3600,
                i / 60 % 60,
                i % 60,
                i % 4,
                i % 4
            )
        };
        let mut events: Vec<String> = (0..300).map(|i| event(i, "s3.object.get")).collect();
        events.extend((300..340).map(|i| event(i, "snapshot.shared")));
        let fixture = format!(
            r#"{{"config": {{"min_objects": "10", "max_evidence_reads": "1000"}}, "trajectory": {{"kind": "actor", "key": "ben@acme.com", "events": [{}]}}, "expected": [], "ignore_unexpected_below": 4}}"#,
            events.join(",\n")
        );
        let path = std::env::temp_dir().join("exfiltration-s3-bulk-share-bounded.json");
        std::fs::write(&path, fixture).unwrap();
        let found =
            plumbline_sdk::testing::run_incremental_fixture::<super::S3BulkShare>(&path).unwrap();
        assert!(
            (8..=super::MAX_SHARES).contains(&found.len()),
            "{}",
            found.len()
        );
        assert!(found.iter().all(|f| f.signal == super::BULK_SHARE));
        assert!(found
            .iter()
            .all(|f| f.evidence.len() == 1 + super::MAX_CITED));
        assert!(found[found.len() - 1].evidence[0].starts_with("cloudtrail:00000339-"));
    }
}
