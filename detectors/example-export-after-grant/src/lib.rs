//! Example detector: a large data export shortly after the same actor gained a credential
//! scope or a permission. Off-hours exports to a destination new in the trajectory are
//! urgent; the rest need review. Copy this crate to start a new detector.

use std::time::Duration;

use plumbline_sdk::*;

const SIGNAL: &str = "exfil.export_after_grant";
const GRANTS: [&str; 3] = [
    "credential.scope.increased",
    "permission.granted",
    "role.granted",
];

#[derive(Default)]
pub struct ExportAfterGrant;

impl Detector for ExportAfterGrant {
    fn info() -> Info {
        Info::new(
            "example.export-after-grant",
            "0.1.0",
            "Large data export soon after a credential scope, permission or role grant",
        )
        .actions(&[
            "credential.scope.increased",
            "permission.granted",
            "role.granted",
            "data.export",
        ])
        .signals(&[SIGNAL])
        .config(
            "window_minutes",
            "60",
            "How soon after the grant an export counts",
        )
        .config("min_rows", "10000", "Rows that make an export large")
        .config("min_bytes", "100000000", "Bytes that make an export large")
        .config("work_start_hour", "8", "Start of working hours (local)")
        .config(
            "work_end_hour",
            "19",
            "End of working hours (local, exclusive)",
        )
        .config(
            "utc_offset_hours",
            "0",
            "Local time offset used for working hours",
        )
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let window = Duration::from_secs(60 * cx.config_parsed::<u64>("window_minutes")?);
        let min_rows: u64 = cx.config_parsed("min_rows")?;
        let min_bytes: u64 = cx.config_parsed("min_bytes")?;
        let (start, end): (u32, u32) = (
            cx.config_parsed("work_start_hour")?,
            cx.config_parsed("work_end_hour")?,
        );
        let offset: i32 = cx.config_parsed("utc_offset_hours")?;

        // Every large export is judged, each with the grant closest before it: a harmless
        // small export between the grant and the large one hides nothing (see
        // `preceded_by` in sdk/README.md). The size condition sits in the pattern, so the
        // pairs are exactly the exports that matter.
        let large =
            |e: &Event| e.is("data.export") && (e.rows() >= min_rows || e.bytes() >= min_bytes);
        let mut findings: Vec<Finding> = Vec::new();
        for (g, export) in t.preceded_by(large, &GRANTS, window) {
            let urgent = export.is_off_hours(start, end, offset) && t.is_new_destination(export);
            let dest = export
                .destination
                .as_deref()
                .unwrap_or("an unknown destination");
            let minutes = (export.time - g.time) / 60_000_000_000;
            let (severity, score) = if urgent {
                (Severity::Urgent, 0.9)
            } else {
                (Severity::NeedsReview, 0.6)
            };
            findings.push(
                Finding::new(
                    SIGNAL,
                    severity,
                    format!(
                        "{} exported {} rows to {dest} {minutes} min after {}",
                        export.actor.id,
                        export.rows(),
                        g.action
                    ),
                )
                .evidence([g, export])
                .score(score)
                .next_step(format!(
                    "Ask {} to justify the export and review the grant on {}",
                    export.actor.id, g.system
                )),
            );
        }
        Ok(findings)
    }
}

register_detector!(ExportAfterGrant);

#[cfg(test)]
mod tests {
    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::ExportAfterGrant>(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures"
        ));
    }
}
