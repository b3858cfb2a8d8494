//! Matching: globs, destination domains, times, and what a route or rule sees of an alert.

use std::sync::Arc;

use time::OffsetDateTime;

use super::model::{AllowRule, Match};
use plumbline_event::Event;

/// Policy globs are the contract's name globs: `*` matches any run of characters, the rest
/// is literal and case-sensitive (an allow-list entry that is too narrow fails closed).
pub use plumbline_contract::glob::{matches as glob, valid as glob_valid};

fn any_glob(patterns: &[String], text: &str) -> bool {
    patterns.iter().any(|p| glob(p, text))
}

/// The host of a destination: a URL's host, an email's domain, a bucket URL's bucket, or
/// the text itself when it is already a host. Lower-cased, without port or trailing dot.
pub fn destination_host(dest: &str) -> String {
    let d = dest.trim();
    let rest = match d.find("://") {
        Some(i) => &d[i + 3..],
        None => d,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let host = if host.starts_with('[') {
        host.split(']')
            .next()
            .unwrap_or(host)
            .trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or(host)
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// `example.com` covers `example.com` and every subdomain; `*.example.com` only subdomains.
pub fn domain_matches(pattern: &str, host: &str) -> bool {
    let p = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return false;
    }
    if let Some(suffix) = p.strip_prefix("*.") {
        return host.ends_with(&format!(".{suffix}"));
    }
    host == p || host.ends_with(&format!(".{p}"))
}

/// "HH:MM" (24-hour).
pub fn parse_clock_time(s: &str) -> Result<jiff::civil::Time, String> {
    let bad = || format!("`{s}` is not a time of day as HH:MM");
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let h: i8 = h.parse().map_err(|_| bad())?;
    let m: i8 = m.parse().map_err(|_| bad())?;
    jiff::civil::Time::new(h, m, 0, 0).map_err(|_| bad())
}

/// An RFC 3339 instant.
pub fn parse_instant(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("`{s}` is not an RFC 3339 time such as 2025-03-01T22:00:00Z"))
}

/// One finding as policy sees it: its signal, detector, severity and evidence events.
#[derive(Debug, Clone)]
pub struct FindingView {
    pub signal: String,
    pub detector: String,
    pub severity: u8,
    pub evidence: Vec<Arc<Event>>,
}

/// The facts a route is matched on, computed over the findings that still count.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub severity: u8,
    pub signals: Vec<String>,
    pub sources: Vec<String>,
    pub systems: Vec<String>,
    pub environments: Vec<String>,
    pub detectors: Vec<String>,
}

impl Facts {
    pub fn of<'a>(severity: u8, findings: impl Iterator<Item = &'a FindingView>) -> Facts {
        let mut f = Facts {
            severity,
            ..Facts::default()
        };
        for x in findings {
            push_unique(&mut f.signals, &x.signal);
            push_unique(&mut f.detectors, &x.detector);
            for e in &x.evidence {
                push_unique(&mut f.sources, e.source.as_str());
                push_unique(&mut f.systems, &e.system);
                push_unique(&mut f.environments, e.environment.as_str());
            }
        }
        f
    }
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}

impl Match {
    pub fn matches(&self, f: &Facts) -> bool {
        (self.severity.is_empty() || self.severity.contains(&f.severity))
            && (self.signals.is_empty() || f.signals.iter().any(|s| any_glob(&self.signals, s)))
            && (self.sources.is_empty() || f.sources.iter().any(|s| self.sources.contains(s)))
            && (self.systems.is_empty() || f.systems.iter().any(|s| any_glob(&self.systems, s)))
            && (self.environments.is_empty()
                || f.environments.iter().any(|s| self.environments.contains(s)))
            && (self.detectors.is_empty()
                || f.detectors.iter().any(|s| any_glob(&self.detectors, s)))
    }
}

impl AllowRule {
    /// Whether this rule covers the finding: its signal matches and every evidence event
    /// satisfies every constraint given. A domain rule needs at least one destination.
    pub fn covers(&self, f: &FindingView) -> bool {
        if !self.signals.is_empty() && !any_glob(&self.signals, &f.signal) {
            return false;
        }
        if f.evidence.is_empty() {
            return false;
        }
        let start = self.start.as_deref().and_then(|s| parse_instant(s).ok());
        let end = self.end.as_deref().and_then(|s| parse_instant(s).ok());
        let mut saw_destination = false;
        for e in &f.evidence {
            if !self.actors.is_empty() && !any_glob(&self.actors, &e.actor.id) {
                return false;
            }
            if !self.systems.is_empty() && !any_glob(&self.systems, &e.system) {
                return false;
            }
            if !self.environments.is_empty()
                && !self
                    .environments
                    .iter()
                    .any(|x| x == e.environment.as_str())
            {
                return false;
            }
            if start.is_some_and(|s| e.time < s) || end.is_some_and(|x| e.time >= x) {
                return false;
            }
            if !self.domains.is_empty() {
                if let Some(d) = e.destination.as_deref().filter(|d| !d.is_empty()) {
                    saw_destination = true;
                    let host = destination_host(d);
                    if !self.domains.iter().any(|p| domain_matches(p, &host)) {
                        return false;
                    }
                }
            }
        }
        self.domains.is_empty() || saw_destination
    }

    /// How a reviewer reads this rule in a note.
    pub fn describe(&self, list: &str) -> String {
        let mut s = format!("{list} `{}`", self.name);
        if !self.domains.is_empty() {
            s.push_str(&format!(" ({})", self.domains.join(", ")));
        } else if !self.actors.is_empty() {
            s.push_str(&format!(" ({})", self.actors.join(", ")));
        }
        if let (Some(a), Some(b)) = (&self.start, &self.end) {
            s.push_str(&format!(" {a} – {b}"));
        }
        if !self.ticket.is_empty() {
            s.push_str(&format!(", ticket {}", self.ticket));
        }
        if !self.reason.is_empty() {
            s.push_str(&format!(": {}", self.reason));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_hosts_come_from_urls_emails_and_buckets() {
        assert_eq!(
            destination_host("https://Hooks.Example.com:8443/x?y"),
            "hooks.example.com"
        );
        assert_eq!(destination_host("bob@gmail.com"), "gmail.com");
        assert_eq!(
            destination_host("s3://company-backups/x"),
            "company-backups"
        );
        assert_eq!(destination_host("api.vendor.io"), "api.vendor.io");
        assert_eq!(destination_host("https://user:pw@h.io/"), "h.io");
        assert!(domain_matches("example.com", "example.com"));
        assert!(domain_matches("example.com", "a.b.example.com"));
        assert!(!domain_matches("example.com", "badexample.com"));
        assert!(!domain_matches("*.example.com", "example.com"));
        assert!(domain_matches("*.example.com", "x.example.com"));
    }

    #[test]
    fn clock_times_and_instants_are_checked() {
        assert!(parse_clock_time("22:00").is_ok());
        assert!(parse_clock_time("24:00").is_err());
        assert!(parse_clock_time("8").is_err());
        assert!(parse_instant("2025-03-01T22:00:00Z").is_ok());
        assert!(parse_instant("yesterday").is_err());
    }
}
