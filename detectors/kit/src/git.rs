//! Pushes and merges as the GitHub / GitLab adapters describe them. One push arrives as a
//! base `git.push` plus derived events (`git.push.force`, `.default_branch`,
//! `.protected_branch`, one `.high_risk_path` per category); [`pushes`] folds them back
//! into one [`Push`]. A push that lands a pull-request merge is matched to its `pr.merged`
//! by commit.

use std::collections::BTreeMap;

use plumbline_contract::{Event, Trajectory};

/// One push, with every event the adapter derived from it.
#[derive(Debug, Clone)]
pub struct Push<'a> {
    pub events: Vec<&'a Event>,
    pub system: &'a str,
    pub branch: &'a str,
    pub after: &'a str,
    pub forced: bool,
    pub protected: bool,
    pub default_branch: bool,
    /// High-risk path categories touched (`ci`, `auth`, `permissions`, `secrets`, …).
    pub risk: Vec<&'a str>,
    pub message: &'a str,
    pub time: i64,
}

impl<'a> Push<'a> {
    /// The event a reviewer opens first: the base push, else the first derived one.
    pub fn head(&self) -> &'a Event {
        self.events
            .iter()
            .copied()
            .find(|e| e.is("git.push") && !e.action.starts_with("git.push."))
            .unwrap_or(self.events[0])
    }

    /// The high-risk events of one category.
    pub fn risk_events(&self, category: &str) -> Vec<&'a Event> {
        self.events
            .iter()
            .copied()
            .filter(|e| {
                e.is("git.push.high_risk_path") && e.attr_str("risk.category") == Some(category)
            })
            .collect()
    }

    pub fn touches(&self, categories: &[&str]) -> bool {
        self.risk.iter().any(|r| categories.contains(r))
    }

    /// Commit ids that identify this push's result.
    fn commits(&self) -> impl Iterator<Item = &'a str> + '_ {
        let head = self
            .events
            .iter()
            .filter_map(|e| e.attr_str("head_commit.id"));
        std::iter::once(self.after)
            .chain(head)
            .filter(|c| !c.is_empty())
    }
}

/// The pushes of a trajectory (branch pushes that add commits; deletions and tags are
/// not pushes here), in time order.
pub fn pushes(t: &Trajectory) -> Vec<Push<'_>> {
    let mut groups: BTreeMap<(&str, &str, &str), Vec<&Event>> = BTreeMap::new();
    for e in t.with_action("git.push.*") {
        let branch = e.attr_str("branch").unwrap_or("");
        let after = e.attr_str("after").unwrap_or("");
        if branch.is_empty() || e.attr_bool("deleted") == Some(true) {
            continue;
        }
        groups
            .entry((e.system.as_str(), branch, after))
            .or_default()
            .push(e);
    }
    let mut out: Vec<Push> = groups
        .into_iter()
        .map(|((system, branch, after), events)| {
            let any = |f: &dyn Fn(&Event) -> bool| events.iter().any(|e| f(e));
            let mut risk: Vec<&str> = events
                .iter()
                .filter(|e| e.is("git.push.high_risk_path"))
                .filter_map(|e| e.attr_str("risk.category"))
                .collect();
            risk.sort_unstable();
            risk.dedup();
            Push {
                system,
                branch,
                after,
                forced: any(&|e| e.is("git.push.force") || e.attr_bool("forced") == Some(true)),
                protected: any(&|e| {
                    e.is("git.push.protected_branch") || e.attr_bool("protected") == Some(true)
                }),
                default_branch: any(&|e| {
                    e.is("git.push.default_branch")
                        || e.attr_bool("to_default_branch") == Some(true)
                }),
                risk,
                message: events
                    .iter()
                    .find_map(|e| e.attr_str("head_commit.message"))
                    .unwrap_or(""),
                time: events.iter().map(|e| e.time).min().unwrap_or(0),
                events,
            }
        })
        .collect();
    out.sort_by_key(|p| (p.time, p.after));
    out
}

/// The `pr.merged` whose merge commit this push carries, if it is in the trajectory.
pub fn merge_of<'a>(t: &'a Trajectory, push: &Push) -> Option<&'a Event> {
    t.with_action("pr.merged").find(|m| {
        m.system == push.system
            && m.attr_str("pr.merge_commit")
                .is_some_and(|c| !c.is_empty() && push.commits().any(|x| x == c))
    })
}

/// The pull request a commit message says it merges: GitHub's `Merge pull request #12
/// from …` and squash titles ending `(#12)`, GitLab's `See merge request group/p!12`.
pub fn claimed_merge(message: &str) -> Option<u64> {
    let first = message.lines().next().unwrap_or("").trim();
    let number = |s: &str| -> Option<u64> {
        let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().ok()
    };
    if let Some(rest) = first.strip_prefix("Merge pull request #") {
        return number(rest);
    }
    if let Some(open) = first.rfind("(#") {
        if first.ends_with(')') {
            return number(&first[open + 2..]);
        }
    }
    let see = message.rfind("See merge request ")?;
    let rest = &message[see..];
    number(&rest[rest.find('!')? + 1..])
}

/// The first reference in `text` starting with one of `prefixes` and followed by a digit
/// (`INC-1234`, `SEV-7`): how break-glass changes name their incident.
pub fn ticket_in<'t>(text: &'t str, prefixes: &[String]) -> Option<&'t str> {
    for p in prefixes.iter().filter(|p| !p.is_empty()) {
        let lower = text.to_ascii_lowercase();
        let needle = p.to_ascii_lowercase();
        let mut from = 0;
        while let Some(i) = lower[from..].find(&needle) {
            let start = from + i;
            let after = start + needle.len();
            let boundary = start == 0 || !text.as_bytes()[start - 1].is_ascii_alphanumeric();
            let digits = text[after..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if boundary && digits > 0 {
                return Some(&text[start..after + digits]);
            }
            from = after;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_messages() {
        assert_eq!(
            claimed_merge("Merge pull request #42 from acme/fix\n\nFix it"),
            Some(42)
        );
        assert_eq!(claimed_merge("Add login throttling (#311)"), Some(311));
        assert_eq!(
            claimed_merge("Merge branch 'fix' into 'main'\n\nFix\n\nSee merge request acme/api!17"),
            Some(17)
        );
        assert_eq!(claimed_merge("hotfix: disable auth check"), None);
    }

    #[test]
    fn tickets() {
        let p = vec!["INC-".to_string(), "SEV".to_string()];
        assert_eq!(
            ticket_in("hotfix for INC-4211: restore login", &p),
            Some("INC-4211")
        );
        assert_eq!(ticket_in("see sev12 channel", &p), Some("sev12"));
        assert_eq!(ticket_in("PRINC-12 is not an incident", &p), None);
        assert_eq!(ticket_in("INC- none", &p), None);
    }
}
