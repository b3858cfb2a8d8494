//! Third-party apps installed with wide permissions: a GitHub App that can write to many
//! areas or administer repositories, an OAuth app consented with admin scopes. Wide:
//! needs review; administrative power over all repositories from an app nobody vetted:
//! urgent. Apps on `known_apps` and narrow (read-only, few areas) installs are not raised.
//! Read on system trajectories (the organisation / repository).
//!
//! Incremental (`plumbline:detector@0.2.0`): each finding stands on its one event, so the
//! state is the findings raised so far, each with its event's time and id; a call judges
//! only the new installs and consents (with the configuration of that call).

use plumbline_sdk::kept::{self, text};
use plumbline_sdk::*;

const SIGNAL: &str = "supply.wide_app_install";

/// Most findings kept in the state, the oldest dropped first (and fewer if they weigh
/// more than [`kept::BUDGET`]): 50 of about 600 bytes (a title is at most 200 characters,
/// a next step quotes at most two texts of the event, each cut by [`text`]).
const MAX_KEPT: usize = 50;

/// The findings raised so far on the trajectory, in (time, event id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Raised {
    found: Vec<Found>,
}

/// A finding and the time and id of the one event it cites.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Found {
    t: i64,
    id: String,
    finding: Finding,
}

kept::record!(Found);

#[derive(Default)]
pub struct AppInstall;

impl IncrementalDetector for AppInstall {
    type State = Raised;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Settings>()?;
        Ok(())
    }

    fn info() -> Info {
        Info::new(
            "supply-chain.app-install",
            "0.1.0",
            "GitHub App installations and OAuth app consents with wide permissions",
        )
        .actions(&["app.installed", "app.authorized"])
        .views(&[TrajectoryKind::System])
        .signals(&[SIGNAL])
        .config(
            "known_apps",
            // The dependency-update apps nearly every organisation installs (GitHub App
            // slugs are unique, so a look-alike cannot take these names).
            "renovate,dependabot,pre-commit-ci",
            "Vetted apps (comma-separated globs of the app slug / name): a wide install of one is informational",
        )
        .config(
            "wide_write_count",
            "3",
            "Permissions at write or admin level that make an install wide",
        )
        .config(
            "admin_permissions",
            "administration,organization_administration,members,secrets,organization_secrets,workflows,environments,actions,organization_hooks,repository_hooks",
            "Permissions whose write access is administrative",
        )
        .config(
            "admin_scopes",
            "okta.*.manage,*admin*,*.manage,directory.*,*:admin,admin:*,write:org,delete_repo",
            "OAuth scopes (globs) that are administrative",
        )
    }

    fn observe(
        &self,
        raised: &mut Raised,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        if !new_events.is_empty() {
            let cfg = cx.settings::<Settings>()?;
            let new = new_events.iter().filter_map(|e| {
                let finding = match e.action.as_str() {
                    "app.installed" => installed(e, &cfg),
                    "app.authorized" => authorized(e, &cfg),
                    _ => None,
                }?;
                Some(Found {
                    t: e.time,
                    id: e.id.clone(),
                    finding,
                })
            });
            kept::fold(&mut raised.found, new, MAX_KEPT, kept::BUDGET);
        }
        // Findings whose event left the trajectory go with it.
        kept::prune(&mut raised.found, cx);
        Ok(raised.found.iter().map(|f| f.finding.clone()).collect())
    }
}

/// The configuration, parsed once per loaded detector (asked for in `prepare`).
struct Settings {
    known: Vec<String>,
    wide_count: usize,
    admin_perms: Vec<String>,
    admin_scopes: Vec<String>,
}

impl FromConfig for Settings {
    fn from_config(cfg: &dyn ConfigSource) -> Result<Self, AnalyzeError> {
        Ok(Settings {
            known: cfg.list("known_apps"),
            wide_count: cfg.parsed("wide_write_count")?,
            admin_perms: cfg.list("admin_permissions"),
            admin_scopes: cfg.list("admin_scopes"),
        })
    }
}

register_incremental_detector!(AppInstall);

/// The finding on one installation, if it is wide.
fn installed(e: &Event, cfg: &Settings) -> Option<Finding> {
    let app = attr_text(e, &["app"]).unwrap_or(&e.resource);
    // A vetted app is still worth a line in the digest (severity 1), not a review.
    let vetted = cfg.known.iter().any(|k| glob::matches(k, app));
    let writes: Vec<(&str, &str)> = e
        .attributes
        .iter()
        .filter_map(|(k, v)| {
            let perm = k.strip_prefix("permissions.")?;
            let level = match v {
                AttributeValue::Text(s) => s.as_str(),
                _ => return None,
            };
            matches!(level, "write" | "admin").then_some((perm, level))
        })
        .collect();
    let admin: Vec<&str> = writes
        .iter()
        .filter(|(p, _)| cfg.admin_perms.iter().any(|a| a == p))
        .map(|(p, _)| *p)
        .collect();
    if writes.len() < cfg.wide_count && admin.is_empty() {
        return None;
    }
    let all_repos = e.attr_str("repository_selection") == Some("all");
    let urgent = !vetted && !admin.is_empty() && all_repos;
    let perms: Vec<String> = writes.iter().map(|(p, l)| format!("{p}:{l}")).collect();
    Some(
        Finding::new(
            SIGNAL,
            if vetted {
                Severity::Informational
            } else if urgent {
                Severity::Urgent
            } else {
                Severity::NeedsReview
            },
            title(format!(
                "{} installed app {app} on {} with {} ({})",
                who(e),
                e.system,
                perms.join(", "),
                if all_repos { "all repositories" } else { "selected repositories" }
            )),
        )
        .evidence([e])
        .score(if vetted { 0.2 } else if urgent { 0.9 } else { 0.65 })
        .next_step(format!(
            "Check who publishes {} and why it needs {}; narrow it to selected repositories and least permissions, or uninstall it",
            text(app),
            if admin.is_empty() { "write access".to_string() } else { admin.join(", ") }
        )),
    )
}

/// The finding on one OAuth consent, if it grants admin scopes.
fn authorized(e: &Event, cfg: &Settings) -> Option<Finding> {
    let app = attr_text(e, &["app"]).unwrap_or(&e.resource);
    if cfg.known.iter().any(|k| glob::matches(k, app)) {
        return None;
    }
    let scopes: Vec<String> = attr_list(e, "debug.grantedScopes")
        .into_iter()
        .flat_map(|s| s.split(' ').map(String::from).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    let admin: Vec<&String> = scopes
        .iter()
        .filter(|s| {
            cfg.admin_scopes
                .iter()
                .any(|p| glob::matches_ignore_ascii_case(p, s))
        })
        .collect();
    if admin.is_empty() {
        return None;
    }
    let admin = admin
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    Some(
        Finding::new(
            SIGNAL,
            Severity::NeedsReview,
            title(format!(
                "{} consented to app {app} with admin scopes {admin}",
                who(e)
            )),
        )
        .evidence([e])
        .score(0.7)
        .next_step(format!(
            "Confirm {} is approved to hold {}; revoke the consent if not",
            text(app),
            text(&admin)
        )),
    )
}

#[cfg(test)]
mod tests {
    plumbline_sdk::testing::incremental_fixture_tests!(super::AppInstall);

    /// Many copies of one event with 500-byte ids and 8 KiB texts: the state stays under
    /// the host's bound (each call checks it), the answer under its 100 findings.
    #[test]
    fn state_stays_bounded() {
        use plumbline_sdk::testing::feed;
        let f = feed::load(FIXTURES, "positive-okta-admin-consent.json");
        let found = feed::flood::<super::AppInstall>(&f, "okta:c1", 300);
        feed::newest_kept(&found);
    }
}
