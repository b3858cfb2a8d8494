//! @NAME@: a large data export soon after the same actor read a secret.
//!
//! Every large export is judged with the latest secret read before it, so a harmless small
//! export in between hides nothing (`preceded_by`; sdk/README.md, "Sequences").

use std::time::Duration;

use plumbline_sdk::*;

const SIGNAL: &str = "@SIGNAL@";

#[derive(Default)]
pub struct Rule;

impl Detector for Rule {
    fn info() -> Info {
        Info::new(
            "@NAME@",
            "0.1.0",
            "Large data export soon after the same actor read a secret",
        )
        .actions(&["secret.read", "data.export"])
        .views(&[TrajectoryKind::Actor])
        .signals(&[SIGNAL])
        .config("window_minutes", "60", "How soon after the secret read an export counts")
        .config("min_rows", "10000", "Rows that make an export large")
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let window = Duration::from_secs(60 * cx.config_parsed::<u64>("window_minutes")?);
        let min_rows: u64 = cx.config_parsed("min_rows")?;
        // The size condition sits in the pattern: only large exports are paired.
        let large = |e: &Event| e.is("data.export") && e.rows() >= min_rows;
        Ok(t.preceded_by(large, "secret.read", window)
            .into_iter()
            .map(|(read, export)| {
                let dest = export.destination.as_deref().unwrap_or("an unknown destination");
                Finding::new(
                    SIGNAL,
                    Severity::NeedsReview,
                    title(format!(
                        "{} exported {} rows to {dest} {} min after reading {}",
                        who(export),
                        export.rows(),
                        minutes_between(read, export),
                        read.resource
                    )),
                )
                .evidence([read, export])
                .score(0.7)
                .next_step("Ask the actor why the export followed the secret read")
            })
            .collect())
    }
}

register_detector!(Rule);

#[cfg(test)]
mod tests {
    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::Rule>(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/pack/fixtures/@NAME@"
        ));
    }
}
