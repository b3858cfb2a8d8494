//! Third-party apps installed with wide permissions: a GitHub App that can write to many
//! areas or administer repositories, an OAuth app consented with admin scopes. Wide:
//! needs review; administrative power over all repositories from an app nobody vetted:
//! urgent. Apps on `known_apps` and narrow (read-only, few areas) installs are not raised.
//! Read on system trajectories (the organisation / repository).

use plumbline_sdk::*;

const SIGNAL: &str = "supply.wide_app_install";

#[derive(Default)]
pub struct AppInstall;

impl Detector for AppInstall {
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

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let known = cx.config_list("known_apps");
        let wide_count: usize = cx.config_parsed("wide_write_count")?;
        let admin_perms = cx.config_list("admin_permissions");
        let admin_scopes = cx.config_list("admin_scopes");

        let mut findings = Vec::new();
        for e in t.with_action("app.installed") {
            let app = attr_text(e, &["app"]).unwrap_or(&e.resource);
            // A vetted app is still worth a line in the digest (severity 1), not a review.
            let vetted = known.iter().any(|k| glob::matches(k, app));
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
                .filter(|(p, _)| admin_perms.iter().any(|a| a == p))
                .map(|(p, _)| *p)
                .collect();
            if writes.len() < wide_count && admin.is_empty() {
                continue;
            }
            let all_repos = e.attr_str("repository_selection") == Some("all");
            let urgent = !vetted && !admin.is_empty() && all_repos;
            let perms: Vec<String> = writes.iter().map(|(p, l)| format!("{p}:{l}")).collect();
            findings.push(
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
                    "Check who publishes {app} and why it needs {}; narrow it to selected repositories and least permissions, or uninstall it",
                    if admin.is_empty() { "write access".to_string() } else { admin.join(", ") }
                )),
            );
        }
        for e in t.with_action("app.authorized") {
            let app = attr_text(e, &["app"]).unwrap_or(&e.resource);
            if known.iter().any(|k| glob::matches(k, app)) {
                continue;
            }
            let scopes: Vec<String> = attr_list(e, "debug.grantedScopes")
                .into_iter()
                .flat_map(|s| s.split(' ').map(String::from).collect::<Vec<_>>())
                .filter(|s| !s.is_empty())
                .collect();
            let admin: Vec<&String> = scopes
                .iter()
                .filter(|s| {
                    admin_scopes
                        .iter()
                        .any(|p| glob::matches_ignore_ascii_case(p, s))
                })
                .collect();
            if admin.is_empty() {
                continue;
            }
            findings.push(
                Finding::new(
                    SIGNAL,
                    Severity::NeedsReview,
                    title(format!(
                        "{} consented to app {app} with admin scopes {}",
                        who(e),
                        admin
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")
                    )),
                )
                .evidence([e])
                .score(0.7)
                .next_step(format!(
                    "Confirm {app} is approved to hold {}; revoke the consent if not",
                    admin
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                )),
            );
        }
        Ok(findings)
    }
}

register_detector!(AppInstall);

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::AppInstall>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::AppInstall>(FIXTURES);
    }
}
