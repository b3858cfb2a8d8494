//! What GitHub and GitLab share: a push described once ([`Push`]) — its action, its
//! attributes and the events derived from it (force push, push to the default or a
//! protected branch, high-risk paths touched) — the merge-without-review rule, and the
//! branch-glob and high-risk-path matchers both use.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::map::set;
use plumbline_event::{Event, Volume};

/// One push as a source reports it, in the terms both GitHub and GitLab use.
#[derive(Debug, Clone, Default)]
pub struct Push {
    pub r#ref: String,
    /// The branch name (`refs/heads/<branch>`), empty when the ref is not a branch.
    pub branch: String,
    /// `Some` when the ref is a tag: the tag's name, or empty when the source does not
    /// record it as an attribute.
    pub tag: Option<String>,
    pub before: String,
    pub after: String,
    pub created: bool,
    pub deleted: bool,
    /// Whether the push rewrote history; `None` when the source does not say.
    pub forced: Option<bool>,
    pub commits: u64,
    pub default_branch: String,
    pub to_default_branch: bool,
    /// Files added, modified or removed by the pushed commits.
    pub paths: BTreeSet<String>,
    pub authors: BTreeSet<String>,
    pub head_commit_id: String,
    pub head_commit_message: String,
    /// Whether the branch is protected; `None` when not known.
    pub protected: Option<bool>,
}

impl Push {
    /// `git.push`, `git.tag.pushed`, `git.branch.deleted` or `git.tag.deleted`.
    pub fn action(&self) -> &'static str {
        match (self.deleted, self.tag.is_some()) {
            (true, true) => "git.tag.deleted",
            (true, false) => "git.branch.deleted",
            (false, true) => "git.tag.pushed",
            (false, false) => "git.push",
        }
    }

    /// Sets the push's resource, attributes and volume on its event.
    pub fn describe(&self, e: &mut Event) {
        e.resource = self.r#ref.clone();
        set(e, "ref", self.r#ref.clone());
        set(e, "branch", self.branch.clone());
        set(e, "tag", self.tag.clone().unwrap_or_default());
        set(e, "before", self.before.clone());
        set(e, "after", self.after.clone());
        if let Some(forced) = self.forced {
            set(e, "forced", forced);
        }
        set(e, "created", self.created);
        set(e, "deleted", self.deleted);
        set(e, "commits", self.commits);
        set(e, "default_branch", self.default_branch.clone());
        set(e, "head_commit.id", self.head_commit_id.clone());
        set(e, "head_commit.message", self.head_commit_message.clone());
        set(
            e,
            "commit_authors",
            self.authors.iter().cloned().collect::<Vec<_>>().join(","),
        );
        if !self.paths.is_empty() {
            e.volume = Some(Volume {
                files: Some(self.paths.len() as u64),
                ..Volume::default()
            });
        }
        if let Some(protected) = self.protected {
            set(e, "protected", protected);
        }
        set(e, "to_default_branch", self.to_default_branch);
    }

    /// The events derived from the push event `e` (none for a deletion): `git.push.force`,
    /// `git.push.default_branch`, `git.push.protected_branch` and one
    /// `git.push.high_risk_path` per category of paths touched. `id` gives the id for a
    /// suffix (`force`, `default`, `protected`, `risk.<category>`).
    pub fn derived(&self, e: &Event, id: impl Fn(&str) -> String) -> Vec<Event> {
        let mut out = Vec::new();
        if self.deleted {
            return out;
        }
        let derived = |action: &str, suffix: &str| {
            let mut d = e.clone();
            d.id = id(suffix);
            d.action = action.to_string();
            d
        };
        if self.forced == Some(true) {
            out.push(derived("git.push.force", "force"));
        }
        if self.to_default_branch {
            out.push(derived("git.push.default_branch", "default"));
        }
        if self.protected == Some(true) {
            out.push(derived("git.push.protected_branch", "protected"));
        }
        let mut by_category: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
        for path in &self.paths {
            for cat in risk_categories(path) {
                by_category.entry(cat).or_default().push(path);
            }
        }
        for (cat, hits) in by_category {
            let mut d = derived("git.push.high_risk_path", &format!("risk.{cat}"));
            d.attributes.insert("risk.category".into(), json!(cat));
            d.attributes
                .insert("risk.paths.count".into(), json!(hits.len()));
            for (i, path) in hits.iter().take(20).enumerate() {
                d.attributes.insert(format!("risk.paths.{i}"), json!(path));
            }
            out.push(d);
        }
        out
    }
}

/// Paths of the `added` / `modified` / `removed` lists of commit objects.
pub fn commit_paths<'a>(commits: impl IntoIterator<Item = &'a Value>) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for c in commits {
        for k in ["added", "modified", "removed"] {
            paths.extend(super::map::strings(c, k));
        }
    }
    paths
}

/// Records what is known about the reviews of a merged pull / merge request on its event
/// `e` — `self_merged`, `review.known` and, when known, `review.approvals`,
/// `review.approvers`, `reviewed` — and derives `pr.merged.without_review` (id
/// `without_review_id`) when the reviews are known and none approved. `approvers` is
/// `None` when review deliveries for the repository never reached Plumbline.
pub fn merge_review(
    e: &mut Event,
    self_merged: bool,
    approvers: Option<Vec<String>>,
    without_review_id: String,
) -> Option<Event> {
    set(e, "self_merged", self_merged);
    set(e, "review.known", approvers.is_some());
    let approvers = approvers?;
    set(e, "review.approvals", approvers.len() as u64);
    set(e, "review.approvers", approvers.join(","));
    set(e, "reviewed", !approvers.is_empty());
    if !approvers.is_empty() {
        return None;
    }
    let mut d = e.clone();
    d.id = without_review_id;
    d.action = "pr.merged.without_review".into();
    Some(d)
}

/// Branch-protection patterns are the contract's path globs (`*` within a segment, `**`
/// across segments, `?` one character), as GitHub's fnmatch rules have them.
pub use plumbline_contract::glob::path_matches as glob_match;

/// High-risk paths are the event vocabulary's (one list, shared with the review page's
/// data-classification hints).
pub use plumbline_event::risk::risk_categories;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_follow_fnmatch_pathname_rules() {
        assert!(glob_match("main", "main"));
        assert!(glob_match("release/*", "release/1.2"));
        assert!(!glob_match("release/*", "release/1/2"));
        assert!(glob_match("release/**", "release/1/2"));
        assert!(glob_match("v?", "v1"));
    }
}
