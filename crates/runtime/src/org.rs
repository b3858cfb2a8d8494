//! `[org]`: what is true of the whole organisation — its domains, accounts, service
//! accounts, change windows, working hours, vetted apps and packages — said once and handed
//! to every detector that declares the matching config key, instead of repeated under each
//! `[runtime.detectors."<name>"]`.
//!
//! The mapping from an `[org]` field to the detectors' shared key names lives here and
//! nowhere else. Lists are added to the key's declared default (a detector's built-in list
//! of public registries stays, the company's mirror joins it); the working hours replace
//! theirs. A per-detector `config` still wins over both.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Org {
    /// The company's own domains (a domain covers its subdomains).
    pub domains: Vec<String>,
    /// Vendors' domains data may go to (SaaS the company uses).
    pub vendor_domains: Vec<String>,
    /// The company's storage buckets (`*` wildcards).
    pub buckets: Vec<String>,
    /// The company's own cloud accounts (AWS account ids), disaster recovery included.
    pub cloud_accounts: Vec<String>,
    /// Partners' cloud accounts data may be shared with.
    pub partner_accounts: Vec<String>,
    /// Actors (globs) that run planned work: migrations, rotations, deploys.
    pub service_accounts: Vec<String>,
    /// Declared change windows: `2024-06-01T22:00:00Z/2024-06-02T04:00:00Z` or weekly
    /// `sat 22:00-04:00` (local time).
    pub change_windows: Vec<String>,
    /// Working hours, local: start and end hour (end exclusive).
    pub work_start_hour: Option<u32>,
    pub work_end_hour: Option<u32>,
    /// Local time offset from UTC, hours.
    pub utc_offset_hours: Option<i32>,
    /// Vetted apps and integrations (globs of the app slug or name).
    pub apps: Vec<String>,
    /// Bot accounts whose routine pushes (version bumps) and merges (dependency updates,
    /// merged by the bot itself) are expected.
    pub bots: Vec<String>,
    /// Approved packages and the registries dependencies may come from.
    pub packages: Vec<String>,
    pub registries: Vec<String>,
}

/// How an `[org]` value meets a detector's declared default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Merge {
    /// Comma-separated lists: the default's items, then the organisation's.
    Append,
    Replace,
}

impl Org {
    /// Detector config key → value and how it merges, for every field that is set.
    fn values(&self) -> Vec<(&'static str, String, Merge)> {
        let list = |v: &[&Vec<String>]| -> String {
            v.iter()
                .flat_map(|l| l.iter())
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut out = vec![
            (
                "known_domains",
                list(&[&self.domains, &self.vendor_domains]),
                Merge::Append,
            ),
            ("known_buckets", list(&[&self.buckets]), Merge::Append),
            ("org_accounts", list(&[&self.cloud_accounts]), Merge::Append),
            // Sharing with one's own accounts (disaster recovery) is not external either.
            (
                "partner_accounts",
                list(&[&self.cloud_accounts, &self.partner_accounts]),
                Merge::Append,
            ),
            (
                "service_accounts",
                list(&[&self.service_accounts]),
                Merge::Append,
            ),
            (
                "change_windows",
                list(&[&self.change_windows]),
                Merge::Append,
            ),
            ("known_apps", list(&[&self.apps]), Merge::Append),
            ("release_bots", list(&[&self.bots]), Merge::Append),
            ("auto_merge_bots", list(&[&self.bots]), Merge::Append),
            ("known_packages", list(&[&self.packages]), Merge::Append),
            ("known_registries", list(&[&self.registries]), Merge::Append),
        ];
        out.retain(|(_, v, _)| !v.is_empty());
        for (key, v) in [
            (
                "work_start_hour",
                self.work_start_hour.map(|h| h.to_string()),
            ),
            ("work_end_hour", self.work_end_hour.map(|h| h.to_string())),
            (
                "utc_offset_hours",
                self.utc_offset_hours.map(|h| h.to_string()),
            ),
        ] {
            if let Some(v) = v {
                out.push((key, v, Merge::Replace));
            }
        }
        out
    }

    /// Applies the organisation's values to a detector's config (its declared defaults):
    /// only keys the detector declares are touched.
    pub fn apply(&self, config: &mut BTreeMap<String, String>) {
        for (key, value, merge) in self.values() {
            let Some(current) = config.get_mut(key) else {
                continue;
            };
            *current = match merge {
                Merge::Append if !current.trim().is_empty() => format!("{current},{value}"),
                _ => value,
            };
        }
    }

    /// Refuses hours outside the day and offsets outside UTC−12…+14.
    pub fn validate(&self) -> Result<(), String> {
        for (name, h) in [
            ("work_start_hour", self.work_start_hour),
            ("work_end_hour", self.work_end_hour),
        ] {
            if h.is_some_and(|h| h > 24) {
                return Err(format!("org.{name} must be 0–24"));
            }
        }
        if self
            .utc_offset_hours
            .is_some_and(|o| !(-12..=14).contains(&o))
        {
            return Err("org.utc_offset_hours must be between -12 and 14".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_join_the_declared_default_and_hours_replace_it_only_where_declared() {
        let org = Org {
            domains: vec!["acme.com".into()],
            vendor_domains: vec!["slack.com".into()],
            cloud_accounts: vec!["111122223333".into()],
            registries: vec!["npm.acme.internal".into()],
            work_start_hour: Some(7),
            ..Org::default()
        };
        let mut config: BTreeMap<String, String> = [
            ("known_domains", ""),
            ("known_registries", "registry.npmjs.org"),
            ("partner_accounts", "999988887777"),
            ("work_start_hour", "8"),
            ("min_rows", "10000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        org.apply(&mut config);
        assert_eq!(config["known_domains"], "acme.com,slack.com");
        assert_eq!(
            config["known_registries"],
            "registry.npmjs.org,npm.acme.internal"
        );
        assert_eq!(config["partner_accounts"], "999988887777,111122223333");
        assert_eq!(config["work_start_hour"], "7");
        assert_eq!(config["min_rows"], "10000");
        // Keys the detector does not declare are not added.
        assert!(!config.contains_key("org_accounts"));
        assert!(Org {
            utc_offset_hours: Some(20),
            ..Org::default()
        }
        .validate()
        .is_err());
    }
    #[test]
    fn bots_are_release_and_auto_merge_bots() {
        let org = Org {
            bots: vec!["renovate-bot".into()],
            ..Org::default()
        };
        let mut config: BTreeMap<String, String> =
            [("auto_merge_bots", "dependabot[bot]"), ("release_bots", "")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        org.apply(&mut config);
        assert_eq!(config["auto_merge_bots"], "dependabot[bot],renovate-bot");
        assert_eq!(config["release_bots"], "renovate-bot");
    }
}
