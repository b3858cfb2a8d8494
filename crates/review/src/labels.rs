//! Outcome labels: was an alert helpful, a false positive, or right to fire at the wrong
//! severity? Kept in the `review_labels` tree, every label (the latest per alert counts),
//! each with a snapshot of what the alert was when it was judged — detectors, versions,
//! signals, severity — so precision stays tied to the detector version that fired even
//! after the alert changes.

use serde::{Deserialize, Serialize};

use plumbline_alert::finding::Severity;
use plumbline_alert::{now, Alert, AlertBook, AlertStatus};
use std::sync::Arc;

use plumbline_store::{RecordReplica, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Right to fire, at the right severity.
    Helpful,
    /// Should not have fired.
    FalsePositive,
    /// Right to fire, wrong severity (`severity` says which it should have had).
    MissedSeverity,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Helpful => "helpful",
            Outcome::FalsePositive => "false_positive",
            Outcome::MissedSeverity => "missed_severity",
        }
    }

    pub const ALL: [Outcome; 3] = [
        Outcome::Helpful,
        Outcome::FalsePositive,
        Outcome::MissedSeverity,
    ];
}

/// One finding of the alert as it was labelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelledFinding {
    pub detector: String,
    pub detector_version: String,
    pub signal: String,
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub id: String,
    pub alert_id: String,
    pub outcome: Outcome,
    /// For `missed_severity`: the severity the alert should have had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    pub comment: String,
    /// Who labelled: the name given, else the API token's name.
    pub by: String,
    /// The API token that made the request.
    pub token: String,
    pub at: String,
    /// The alert when it was labelled.
    pub alert_severity: Severity,
    pub alert_created_at: String,
    pub findings: Vec<LabelledFinding>,
}

/// What a reviewer submits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRequest {
    pub outcome: Option<String>,
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub by: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// The request is wrong: the field and the reason.
    #[error("`{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("no alert with id `{0}`")]
    NoAlert(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sled::Error> for LabelError {
    fn from(e: sled::Error) -> Self {
        LabelError::Store(StoreError::Sled(e))
    }
}

/// Longest comment kept (a sentence or two; the rest belongs in the ticket).
pub const MAX_COMMENT: usize = 2000;

impl LabelRequest {
    /// Checks the request against the alert it labels.
    pub fn validate(&self, alert: &Alert) -> Result<(Outcome, Option<Severity>), LabelError> {
        let invalid = |field, reason: String| LabelError::Invalid { field, reason };
        let raw = self.outcome.as_deref().unwrap_or("").trim();
        let outcome = Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == raw)
            .ok_or_else(|| {
                invalid(
                    "outcome",
                    format!("expected helpful, false_positive or missed_severity, got `{raw}`"),
                )
            })?;
        let severity = match (outcome, self.severity) {
            (Outcome::MissedSeverity, None) => {
                return Err(invalid(
                    "severity",
                    "required for missed_severity: the severity (1, 2 or 3) it should have had"
                        .into(),
                ))
            }
            (Outcome::MissedSeverity, Some(s)) if !(1..=3).contains(&s) => {
                return Err(invalid("severity", format!("must be 1, 2 or 3, got {s}")))
            }
            (Outcome::MissedSeverity, Some(s)) if s == alert.severity => {
                return Err(invalid(
                    "severity",
                    format!("the alert already has severity {s}: label it helpful instead"),
                ))
            }
            (Outcome::MissedSeverity, Some(s)) => Some(s),
            (_, Some(_)) => {
                return Err(invalid(
                    "severity",
                    "only a missed_severity label names a severity".into(),
                ))
            }
            (_, None) => None,
        };
        if self.comment.chars().count() > MAX_COMMENT {
            return Err(invalid(
                "comment",
                format!("at most {MAX_COMMENT} characters"),
            ));
        }
        Ok((outcome, severity))
    }
}

/// The labels, in the `review_labels` tree: key `alert id 0x00 seq (u64 BE)`, and for a
/// label another cluster node recorded, `@node` after it.
#[derive(Clone)]
pub struct LabelBook {
    db: sled::Db,
    tree: sled::Tree,
    alerts: AlertBook,
    replica: Arc<std::sync::OnceLock<RecordReplica>>,
}

fn prefix(alert_id: &str) -> Vec<u8> {
    let mut k = alert_id.as_bytes().to_vec();
    k.push(0);
    k
}

impl LabelBook {
    pub fn open(store: &Store, alerts: AlertBook) -> Result<LabelBook, StoreError> {
        Ok(LabelBook {
            db: store.db().clone(),
            tree: store.db().open_tree("review_labels")?,
            alerts,
            replica: Arc::default(),
        })
    }

    /// Copies every label recorded here from now on to `replica` (set once).
    pub fn replicate(&self, replica: RecordReplica) {
        let _ = self.replica.set(replica);
    }

    /// Keeps a label another node recorded (`key` as that node wrote it). Its key gets the
    /// node's name, so two nodes' labels never overwrite each other.
    pub fn import(&self, key: &[u8], value: &[u8], from: &str) -> Result<(), StoreError> {
        if serde_json::from_slice::<Label>(value).is_err() {
            return Ok(());
        }
        let mut k = key.to_vec();
        k.push(b'@');
        k.extend_from_slice(from.as_bytes());
        self.tree.insert(k, value)?;
        Ok(())
    }

    /// Retention: forgets the labels of alerts retention removed. Returns how many.
    pub fn forget(&self, alert_ids: &[String]) -> Result<usize, StoreError> {
        let mut n = 0;
        for id in alert_ids {
            for item in self.tree.scan_prefix(prefix(id)) {
                self.tree.remove(item?.0)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Records a label and marks the alert reviewed (an open alert; a resolved or suppressed
    /// one keeps its status). `by` and `token` are already settled by the caller.
    pub fn add(
        &self,
        alert_id: &str,
        req: &LabelRequest,
        by: &str,
        token: &str,
    ) -> Result<Label, LabelError> {
        let alert = self
            .alerts
            .get(alert_id)?
            .ok_or_else(|| LabelError::NoAlert(alert_id.to_string()))?;
        let (outcome, severity) = req.validate(&alert)?;
        let seq = self.db.generate_id()?;
        let label = Label {
            id: format!("lbl-{seq}"),
            alert_id: alert.id.clone(),
            outcome,
            severity,
            comment: req.comment.trim().to_string(),
            by: by.to_string(),
            token: token.to_string(),
            at: now(),
            alert_severity: alert.severity,
            alert_created_at: alert.created_at.clone(),
            findings: alert
                .findings
                .iter()
                .map(|f| LabelledFinding {
                    detector: f.detector.clone(),
                    detector_version: f.detector_version.clone(),
                    signal: f.signal.clone(),
                    severity: f.severity,
                })
                .collect(),
        };
        let mut key = prefix(&alert.id);
        key.extend_from_slice(&seq.to_be_bytes());
        let value = serde_json::to_vec(&label).expect("labels serialise");
        self.tree.insert(key.as_slice(), value.as_slice())?;
        if let Some(replica) = self.replica.get() {
            replica(&key, &value);
        }
        let note = match severity {
            Some(s) => format!(
                "labelled {} (should be severity {s}) by {by}",
                outcome.as_str()
            ),
            None => format!("labelled {} by {by}", outcome.as_str()),
        };
        self.alerts.update(&alert.id, |a| {
            if a.status == AlertStatus::Open {
                a.status = AlertStatus::Reviewed;
            }
            a.notes.push(note);
        })?;
        Ok(label)
    }

    /// Every label of one alert, oldest first.
    pub fn for_alert(&self, alert_id: &str) -> Result<Vec<Label>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(prefix(alert_id)) {
            let (_, v) = item?;
            if let Ok(l) = serde_json::from_slice(&v) {
                out.push(l);
            }
        }
        Ok(out)
    }

    /// The label that counts for each alert: its latest.
    pub fn latest(&self) -> Result<Vec<Label>, StoreError> {
        let mut out: Vec<Label> = Vec::new();
        for item in self.tree.iter() {
            let (_, v) = item?;
            let Ok(l) = serde_json::from_slice::<Label>(&v) else {
                continue;
            };
            // Keys sort by alert, then sequence (and, for labels from other cluster nodes,
            // their node): the latest is the one recorded last.
            match out.last_mut() {
                Some(last) if last.alert_id == l.alert_id => {
                    if l.at >= last.at {
                        *last = l
                    }
                }
                _ => out.push(l),
            }
        }
        Ok(out)
    }

    /// Labels recorded, by outcome (every label, not only the latest).
    pub fn counts(&self) -> [(Outcome, u64); 3] {
        let mut n = [0u64; 3];
        for v in self.tree.iter().values().flatten() {
            if let Ok(l) = serde_json::from_slice::<Label>(&v) {
                n[Outcome::ALL
                    .iter()
                    .position(|o| *o == l.outcome)
                    .unwrap_or(0)] += 1;
            }
        }
        [
            (Outcome::Helpful, n[0]),
            (Outcome::FalsePositive, n[1]),
            (Outcome::MissedSeverity, n[2]),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumbline_alert::finding::Finding;

    fn book_with_alert(severity: Severity) -> (tempfile::TempDir, AlertBook, LabelBook) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let alerts = AlertBook::open(&store).unwrap();
        alerts
            .put(&Alert {
                id: "alr-1".into(),
                trajectory_id: "trj-1".into(),
                trajectory_hash: "h".into(),
                severity,
                status: AlertStatus::Open,
                title: "t".into(),
                summary: String::new(),
                signals: vec!["exfil.large".into()],
                event_ids: vec!["e1".into()],
                actors: vec![],
                systems: vec![],
                detectors: vec![],
                findings: vec![Finding {
                    detector: "exfil".into(),
                    detector_version: "0.2.0".into(),
                    signal: "exfil.large".into(),
                    severity,
                    score: 0.8,
                    title: "t".into(),
                    evidence: vec!["e1".into()],
                    next_step: String::new(),
                }],
                created_at: "2026-11-25T10:00:00Z".into(),
                updated_at: "2026-11-25T10:00:00Z".into(),
                notes: vec![],
                merged_into: None,
            })
            .unwrap();
        let labels = LabelBook::open(&store, alerts.clone()).unwrap();
        (dir, alerts, labels)
    }

    fn req(outcome: &str, severity: Option<Severity>) -> LabelRequest {
        LabelRequest {
            outcome: Some(outcome.into()),
            severity,
            comment: " why ".into(),
            by: String::new(),
        }
    }

    #[test]
    fn a_label_is_kept_with_its_snapshot_and_marks_the_alert_reviewed() {
        let (_d, alerts, labels) = book_with_alert(2);
        let l = labels
            .add("alr-1", &req("false_positive", None), "alice", "tok")
            .unwrap();
        assert_eq!(l.outcome, Outcome::FalsePositive);
        assert_eq!(l.comment, "why");
        assert_eq!(l.findings[0].detector_version, "0.2.0");
        let a = alerts.get("alr-1").unwrap().unwrap();
        assert_eq!(a.status, AlertStatus::Reviewed);
        assert_eq!(a.notes, vec!["labelled false_positive by alice"]);
        // A later label replaces it for precision; both are kept.
        labels
            .add("alr-1", &req("missed_severity", Some(3)), "bob", "tok")
            .unwrap();
        assert_eq!(labels.for_alert("alr-1").unwrap().len(), 2);
        let latest = labels.latest().unwrap();
        assert_eq!(latest.len(), 1);
        assert_eq!(latest[0].by, "bob");
        assert_eq!(latest[0].severity, Some(3));
        assert_eq!(labels.counts()[1], (Outcome::FalsePositive, 1));
    }

    /// A cluster: a label recorded here goes to the replica with its key; one from another
    /// node with the same key is kept beside it, and the latest by time counts.
    #[test]
    fn labels_replicate_and_another_nodes_never_overwrite_this_ones() {
        let (_d, _alerts, labels) = book_with_alert(2);
        type Copies = std::sync::Mutex<Vec<(Vec<u8>, Vec<u8>)>>;
        let copied: Arc<Copies> = Arc::default();
        let c = copied.clone();
        labels.replicate(Arc::new(move |k: &[u8], v: &[u8]| {
            c.lock().unwrap().push((k.to_vec(), v.to_vec()))
        }));
        labels
            .add("alr-1", &req("helpful", None), "alice", "tok")
            .unwrap();
        let (key, value) = copied.lock().unwrap()[0].clone();
        let mut theirs: Label = serde_json::from_slice(&value).unwrap();
        theirs.by = "bob".into();
        theirs.outcome = Outcome::FalsePositive;
        theirs.at = "2999-01-01T00:00:00Z".into();
        labels
            .import(&key, &serde_json::to_vec(&theirs).unwrap(), "node2")
            .unwrap();
        labels.import(&key, b"not a label", "node3").unwrap();
        assert_eq!(labels.for_alert("alr-1").unwrap().len(), 2);
        assert_eq!(labels.latest().unwrap()[0].by, "bob");
        assert_eq!(
            copied.lock().unwrap().len(),
            1,
            "imports are not replicated"
        );
    }

    #[test]
    fn bad_labels_name_the_field() {
        let (_d, _alerts, labels) = book_with_alert(2);
        let field = |r: LabelRequest| match labels.add("alr-1", &r, "a", "t") {
            Err(LabelError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(req("great", None)), "outcome");
        assert_eq!(field(req("missed_severity", None)), "severity");
        assert_eq!(field(req("missed_severity", Some(2))), "severity");
        assert_eq!(field(req("missed_severity", Some(4))), "severity");
        assert_eq!(field(req("helpful", Some(3))), "severity");
        let mut long = req("helpful", None);
        long.comment = "x".repeat(MAX_COMMENT + 1);
        assert_eq!(field(long), "comment");
        assert!(matches!(
            labels.add("alr-404", &req("helpful", None), "a", "t"),
            Err(LabelError::NoAlert(_))
        ));
    }
}
