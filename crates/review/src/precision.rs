//! Precision from labels: of the alerts a detector (or a signal) raised and a reviewer
//! judged, how many were worth raising. `helpful` and `missed_severity` count as worth it
//! (a wrong severity is a routing problem, not a false alarm, and is reported on its own);
//! `false_positive` does not. Each alert counts once per detector and once per signal it
//! carried, with its latest label.
//!
//! Over time: alerts are bucketed by the day (UTC) they were raised, so a tuning change
//! shows up in the days after it, whenever the labelling happened.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use super::labels::{Label, Outcome};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub helpful: u64,
    pub false_positive: u64,
    pub missed_severity: u64,
}

impl Tally {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Helpful => self.helpful += 1,
            Outcome::FalsePositive => self.false_positive += 1,
            Outcome::MissedSeverity => self.missed_severity += 1,
        }
    }

    fn merge(&mut self, o: &Tally) {
        self.helpful += o.helpful;
        self.false_positive += o.false_positive;
        self.missed_severity += o.missed_severity;
    }

    pub fn labelled(&self) -> u64 {
        self.helpful + self.false_positive + self.missed_severity
    }

    /// Worth raising / labelled; None before the first label.
    pub fn precision(&self) -> Option<f64> {
        let n = self.labelled();
        (n > 0).then(|| (self.helpful + self.missed_severity) as f64 / n as f64)
    }
}

/// One day of one series.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Point {
    /// The day, `YYYY-MM-DD` (UTC).
    pub day: String,
    pub tally: Tally,
    /// Precision of that day's alerts.
    pub precision: Option<f64>,
    /// Precision of every labelled alert of the window up to and including that day.
    pub cumulative: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Series {
    /// `overall`, a detector name, or a signal name.
    pub key: String,
    /// Detector versions seen in the labelled alerts (detector series only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    pub tally: Tally,
    pub precision: Option<f64>,
    /// One point per day of the window that had labelled alerts.
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PrecisionReport {
    /// First day of the window (`YYYY-MM-DD`).
    pub since: String,
    pub days: u32,
    pub overall: Series,
    pub by_detector: Vec<Series>,
    pub by_signal: Vec<Series>,
}

fn day_of(rfc3339: &str) -> Option<time::Date> {
    OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.to_offset(time::UtcOffset::UTC).date())
}

fn day_str(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[derive(Default)]
struct Acc {
    versions: std::collections::BTreeSet<String>,
    by_day: BTreeMap<time::Date, Tally>,
}

impl Acc {
    fn series(self, key: String) -> Series {
        let mut total = Tally::default();
        let points = self
            .by_day
            .into_iter()
            .map(|(day, tally)| {
                total.merge(&tally);
                Point {
                    day: day_str(day),
                    tally,
                    precision: tally.precision(),
                    cumulative: total.precision(),
                }
            })
            .collect();
        Series {
            key,
            versions: self.versions.into_iter().collect(),
            tally: total,
            precision: total.precision(),
            points,
        }
    }
}

/// Precision over the `days` days up to `today` (inclusive), from each alert's latest label.
pub fn report(latest: &[Label], today: time::Date, days: u32) -> PrecisionReport {
    let days = days.max(1);
    let since = today - time::Duration::days(days as i64 - 1);
    let mut overall = Acc::default();
    let mut detectors: BTreeMap<String, Acc> = BTreeMap::new();
    let mut signals: BTreeMap<String, Acc> = BTreeMap::new();
    for l in latest {
        let Some(day) = day_of(&l.alert_created_at).or_else(|| day_of(&l.at)) else {
            continue;
        };
        if day < since || day > today {
            continue;
        }
        overall.by_day.entry(day).or_default().add(l.outcome);
        let mut seen_d = std::collections::BTreeSet::new();
        let mut seen_s = std::collections::BTreeSet::new();
        for f in &l.findings {
            let d = detectors.entry(f.detector.clone()).or_default();
            d.versions.insert(f.detector_version.clone());
            if seen_d.insert(f.detector.as_str()) {
                d.by_day.entry(day).or_default().add(l.outcome);
            }
            if seen_s.insert(f.signal.as_str()) {
                signals
                    .entry(f.signal.clone())
                    .or_default()
                    .by_day
                    .entry(day)
                    .or_default()
                    .add(l.outcome);
            }
        }
    }
    let mut by_detector: Vec<Series> = detectors.into_iter().map(|(k, a)| a.series(k)).collect();
    let mut by_signal: Vec<Series> = signals.into_iter().map(|(k, a)| a.series(k)).collect();
    // Most labelled first: the series people look at.
    by_detector.sort_by_key(|s| std::cmp::Reverse(s.tally.labelled()));
    by_signal.sort_by_key(|s| std::cmp::Reverse(s.tally.labelled()));
    PrecisionReport {
        since: day_str(since),
        days,
        overall: overall.series("overall".into()),
        by_detector,
        by_signal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::LabelledFinding;

    fn label(alert: &str, day: &str, outcome: Outcome, findings: &[(&str, &str)]) -> Label {
        Label {
            id: format!("lbl-{alert}"),
            alert_id: alert.into(),
            outcome,
            severity: (outcome == Outcome::MissedSeverity).then_some(3),
            comment: String::new(),
            by: "rev".into(),
            token: "rev".into(),
            at: format!("{day}T12:00:00Z"),
            alert_severity: 2,
            alert_created_at: format!("{day}T10:00:00Z"),
            findings: findings
                .iter()
                .map(|(d, s)| LabelledFinding {
                    detector: d.to_string(),
                    detector_version: "0.1.0".into(),
                    signal: s.to_string(),
                    severity: 2,
                })
                .collect(),
        }
    }

    #[test]
    fn precision_per_detector_and_signal_by_day() {
        let today = time::macros::date!(2026 - 11 - 25);
        let labels = vec![
            label(
                "a1",
                "2026-11-23",
                Outcome::Helpful,
                &[("exfil", "exfil.large"), ("exfil", "exfil.new_dest")],
            ),
            label(
                "a2",
                "2026-11-23",
                Outcome::FalsePositive,
                &[("exfil", "exfil.large")],
            ),
            label(
                "a3",
                "2026-11-24",
                Outcome::MissedSeverity,
                &[("bypass", "bypass.force")],
            ),
            label(
                "a4",
                "2026-11-25",
                Outcome::FalsePositive,
                &[("exfil", "exfil.new_dest")],
            ),
            // Outside the window.
            label(
                "a5",
                "2026-10-01",
                Outcome::FalsePositive,
                &[("exfil", "exfil.large")],
            ),
        ];
        let r = report(&labels, today, 7);
        assert_eq!(r.since, "2026-11-19");
        assert_eq!(r.overall.tally.labelled(), 4);
        assert_eq!(r.overall.precision, Some(0.5));
        assert_eq!(r.overall.points.len(), 3);
        assert_eq!(r.overall.points[0].precision, Some(0.5));
        assert_eq!(r.overall.points[1].cumulative, Some(2.0 / 3.0));
        assert_eq!(r.overall.points[2].precision, Some(0.0));

        let exfil = r.by_detector.iter().find(|s| s.key == "exfil").unwrap();
        // a1 counts once for the detector even with two findings.
        assert_eq!(exfil.tally.labelled(), 3);
        assert_eq!(exfil.precision, Some(1.0 / 3.0));
        assert_eq!(exfil.versions, vec!["0.1.0"]);
        let bypass = r.by_detector.iter().find(|s| s.key == "bypass").unwrap();
        assert_eq!(
            bypass.precision,
            Some(1.0),
            "a missed severity is still worth raising"
        );
        assert_eq!(bypass.tally.missed_severity, 1);

        let large = r.by_signal.iter().find(|s| s.key == "exfil.large").unwrap();
        assert_eq!(large.precision, Some(0.5));
        let new_dest = r
            .by_signal
            .iter()
            .find(|s| s.key == "exfil.new_dest")
            .unwrap();
        assert_eq!(new_dest.precision, Some(0.5));
        assert_eq!(r.by_detector[0].key, "exfil", "most labelled first");
    }

    #[test]
    fn no_labels_means_no_precision_yet() {
        let r = report(&[], time::macros::date!(2026 - 11 - 25), 30);
        assert_eq!(r.overall.precision, None);
        assert!(r.by_detector.is_empty());
    }
}
