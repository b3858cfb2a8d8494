//! Two classifications a reviewer and the coverage figure need:
//!
//! - a **data-classification hint** per alert: did the story touch personal data, finance,
//!   authentication or secrets? Read from the structured parts of events (action,
//!   resource, system, destination, and attributes that name paths, tables, scopes,
//!   credentials, buckets, sources), never from free text like commit messages, so a
//!   "fix login typo" commit does not make a story about auth. A hint, with its reasons,
//!   not a verdict;
//! - the **high-risk surface** an event belongs to (the brief's list: production
//!   credentials and secrets, production workflow edits, exports, branch protection and
//!   CI/CD settings, AI assistant tools and prompts), which the coverage figure counts.

use std::collections::BTreeMap;

use serde::Serialize;

use plumbline_event::{risk, Environment, Event};

/// A class of data and why the story is thought to touch it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hint {
    /// `pii`, `finance`, `auth` or `secrets`.
    pub class: &'static str,
    /// For people: "Personal data (PII)".
    pub label: &'static str,
    /// Up to a few (event id, what matched) pairs.
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub event_id: String,
    pub why: String,
}

struct Class {
    class: &'static str,
    label: &'static str,
    /// Whole words (of the lower-cased text split on anything not a letter or digit),
    /// beyond the plain words of its high-risk path categories, which count too.
    words: &'static [&'static str],
    /// Action prefixes (`secret.` matches `secret.read`).
    actions: &'static [&'static str],
    /// High-risk path categories (`plumbline_event::risk`): a `risk.category` the
    /// adapters tagged, or one of the category's words in a name.
    categories: &'static [&'static str],
}

impl Class {
    fn matches_word(&self, w: &str) -> bool {
        self.words.contains(&w)
            || self
                .categories
                .iter()
                .any(|c| risk::category_words(c).any(|cw| cw == w))
    }
}

const CLASSES: &[Class] = &[
    Class {
        class: "pii",
        label: "Personal data (PII)",
        words: &[
            "pii",
            "personal",
            "gdpr",
            "customer",
            "customers",
            "contact",
            "contacts",
            "crm",
            "hubspot",
            "salesforce",
            "pipedrive",
            "zendesk",
            "intercom",
            "freshdesk",
            "lead",
            "leads",
            "email",
            "emails",
            "phone",
            "address",
            "addresses",
            "ssn",
            "passport",
            "patient",
            "patients",
            "health",
            "employee",
            "employees",
            "hr",
            "profile",
            "profiles",
            "tickets",
            "subscriber",
            "subscribers",
            "members",
        ],
        actions: &[],
        categories: &[],
    },
    Class {
        class: "finance",
        label: "Finance",
        words: &[
            "finance",
            "financial",
            "accounting",
            "payroll",
            "bank",
            "banking",
            "revenue",
            "tax",
            "quickbooks",
            "xero",
            "refund",
            "refunds",
            "card",
            "cards",
            "iban",
            "transactions",
        ],
        actions: &[],
        categories: &["payments"],
    },
    Class {
        class: "auth",
        label: "Authentication and permissions",
        words: &["oauth2", "admin", "okta"],
        actions: &[
            "auth.",
            "admin.role.",
            "mfa.",
            "member.permission.",
            "team.permission.",
            "iam.",
            "role.",
            "branch.protection.",
            "policy.",
        ],
        categories: &["auth", "permissions", "codeowners"],
    },
    Class {
        class: "secrets",
        label: "Secrets and credentials",
        words: &[
            "token", "tokens", "apikey", "api_key", "cert", "env", "private", "ssh",
        ],
        actions: &[
            "secret.",
            "credential.",
            "token.",
            "api_key.",
            "deploy_key.",
            "secret_scanning.",
        ],
        categories: &["secrets"],
    },
];

/// Attribute keys whose values name things (paths, tables, scopes…), by their last segment
/// or their first segment.
fn names_a_thing(key: &str) -> bool {
    const LEAVES: &[&str] = &[
        "path",
        "paths",
        "name",
        "table",
        "tables",
        "scope",
        "scopes",
        "type",
        "category",
        "bucket",
        "key",
        "source",
        "tool",
        "permissions",
        "policies",
        "policy",
        "mount",
        "point",
        "credentials",
        "destinations",
        "host",
        "kind",
        "role",
        "privilege",
        "app",
        "repository",
        "team",
        "project",
        "nodes",
        "added",
    ];
    let leaf = key.rsplit('.').next().unwrap_or(key);
    let leaf = leaf.trim_end_matches(|c: char| c.is_ascii_digit());
    let leaf = leaf.trim_end_matches('.');
    LEAVES.contains(&leaf)
        || key.starts_with("risk.paths")
        || key.starts_with("credential.")
        || key.starts_with("retrieval.")
        || key.starts_with("tool.")
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .flat_map(|w| {
            // `api_key` is a word; `customer_id` is `customer` + `id`.
            let lower = w.to_lowercase();
            let mut parts: Vec<String> = vec![lower.clone()];
            if lower.contains('_') {
                parts.extend(lower.split('_').filter(|p| !p.is_empty()).map(String::from));
            }
            parts
        })
}

/// The parts of an event that name what it touched: (where, text).
fn named_parts(e: &Event) -> Vec<(String, String)> {
    let mut out = vec![
        ("resource".to_string(), e.resource.clone()),
        ("system".to_string(), e.system.clone()),
    ];
    if let Some(d) = &e.destination {
        out.push(("destination".into(), d.clone()));
    }
    for (k, v) in &e.attributes {
        if !names_a_thing(k) {
            continue;
        }
        if let Some(s) = v.as_str() {
            out.push((k.clone(), s.to_string()));
        }
    }
    out
}

/// Data-classification hints for the events of a story (cited events first, so the
/// reasons shown are the ones the alert rests on).
pub fn hints<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<Hint> {
    const MAX_REASONS: usize = 4;
    let mut found: BTreeMap<usize, Vec<Reason>> = BTreeMap::new();
    for e in events {
        let category = e.attr_str("risk.category").unwrap_or("");
        let parts = named_parts(e);
        for (i, c) in CLASSES.iter().enumerate() {
            let why = if let Some(p) = c.actions.iter().find(|p| e.action.starts_with(*p)) {
                Some(format!("action {} ({p}*)", e.action))
            } else if !category.is_empty() && c.categories.contains(&category) {
                Some(format!("high-risk path category `{category}`"))
            } else {
                parts.iter().find_map(|(field, text)| {
                    words(text)
                        .find(|w| c.matches_word(w))
                        .map(|w| format!("{field} mentions `{w}`"))
                })
            };
            if let Some(why) = why {
                let reasons = found.entry(i).or_default();
                // One reason per event, and each reason once: four events whose system
                // mentions `hubspot` say so once, leaving room for other reasons.
                if reasons.len() < MAX_REASONS
                    && !reasons.iter().any(|r| r.event_id == e.id || r.why == why)
                {
                    reasons.push(Reason {
                        event_id: e.id.clone(),
                        why,
                    });
                }
            }
        }
    }
    found
        .into_iter()
        .map(|(i, reasons)| Hint {
            class: CLASSES[i].class,
            label: CLASSES[i].label,
            reasons,
        })
        .collect()
}

/// The high-risk surfaces of the brief.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Surface {
    CredentialsAndSecrets,
    WorkflowEdits,
    DataExports,
    BranchProtectionAndCi,
    AssistantToolsAndPrompts,
}

impl Surface {
    pub const ALL: [Surface; 5] = [
        Surface::CredentialsAndSecrets,
        Surface::WorkflowEdits,
        Surface::DataExports,
        Surface::BranchProtectionAndCi,
        Surface::AssistantToolsAndPrompts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Surface::CredentialsAndSecrets => "credentials_and_secrets",
            Surface::WorkflowEdits => "workflow_edits",
            Surface::DataExports => "data_exports",
            Surface::BranchProtectionAndCi => "branch_protection_and_ci",
            Surface::AssistantToolsAndPrompts => "assistant_tools_and_prompts",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Surface::CredentialsAndSecrets => "Production credentials and secrets",
            Surface::WorkflowEdits => "Production workflow edits",
            Surface::DataExports => "Exports and sharing of data",
            Surface::BranchProtectionAndCi => "Branch protection and CI/CD settings",
            Surface::AssistantToolsAndPrompts => "AI assistant tools and prompts",
        }
    }
}

fn any_prefix(action: &str, prefixes: &[&str]) -> bool {
    prefixes
        .iter()
        .any(|p| action == p.trim_end_matches('.') || action.starts_with(p))
}

/// The high-risk surface an event touches, if any. Test and staging changes to
/// credentials and workflows are not production surfaces; unknown environments count
/// (an adapter that cannot tell must not hide production).
pub fn surface(e: &Event) -> Option<Surface> {
    let a = e.action.as_str();
    let production = !matches!(e.environment, Environment::Test | Environment::Staging);
    if any_prefix(
        a,
        &[
            "data.export",
            "data.download",
            "s3.bucket.policy.shared",
            "s3.bucket.acl.shared",
            "snapshot.shared",
            "image.shared",
            "model.checkpoint.shared",
        ],
    ) {
        return Some(Surface::DataExports);
    }
    if any_prefix(
        a,
        &[
            "branch.protection.",
            "repo.ruleset.",
            "repo.visibility.",
            "git.push.force",
            "git.push.protected_branch",
            "git.push.high_risk_path",
            "pr.merged.without_review",
            "audit.disabled",
        ],
    ) {
        return Some(Surface::BranchProtectionAndCi);
    }
    if any_prefix(
        a,
        &[
            "assistant.tool.",
            "assistant.prompt.",
            "assistant.retrieval.",
            "assistant.deployed",
        ],
    ) {
        return Some(Surface::AssistantToolsAndPrompts);
    }
    if production
        && any_prefix(
            a,
            &[
                "secret.",
                "credential.",
                "token.created",
                "api_key.",
                "deploy_key.",
                "admin.role.",
                "iam.policy.",
            ],
        )
    {
        return Some(Surface::CredentialsAndSecrets);
    }
    if production
        && any_prefix(
            a,
            &[
                "workflow.created",
                "workflow.updated",
                "workflow.activated",
                "workflow.deactivated",
                "workflow.deleted",
                "workflow.version.",
                "workflow.node.added",
                "workflow.node.removed",
                "workflow.node.changed",
                "webhook.created",
                "webhook.updated",
                "webhook.enabled",
                "package.installed",
                "package.updated",
            ],
        )
    {
        return Some(Surface::WorkflowEdits);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, action: &str, attrs: serde_json::Value) -> Event {
        serde_json::from_value(serde_json::json!({
            "id": id, "time": "2026-11-25T10:00:00Z", "source": "github",
            "actor": {"id": "a", "type": "human"}, "system": "acme/api", "action": action,
            "attributes": attrs,
        }))
        .unwrap()
    }

    fn classes(h: &[Hint]) -> Vec<&str> {
        h.iter().map(|h| h.class).collect()
    }

    #[test]
    fn hints_come_from_names_not_free_text() {
        let msg = ev(
            "e1",
            "git.push",
            serde_json::json!({"head_commit.message": "fix login and password reset for customers"}),
        );
        assert!(hints([&msg]).is_empty(), "commit messages are not read");

        let path = ev(
            "e2",
            "git.push.high_risk_path",
            serde_json::json!({"risk.category": "payments", "risk.paths.0": "src/billing/invoice.rs"}),
        );
        let h = hints([&path]);
        assert_eq!(classes(&h), vec!["finance"]);
        assert_eq!(h[0].reasons[0].event_id, "e2");

        let cred = ev(
            "e3",
            "credential.created",
            serde_json::json!({"credential.type": "hubspotOAuth2Api", "credential.name": "HubSpot (all objects)",
                               "credential.scope": "crm.objects.contacts.read crm.export"}),
        );
        let h = hints([&cred]);
        assert_eq!(classes(&h), vec!["pii", "secrets"]);
        assert!(h[1].reasons[0].why.contains("credential.created"), "{h:?}");

        let login = ev("e4", "auth.login.failed", serde_json::json!({}));
        assert_eq!(classes(&hints([&login])), vec!["auth"]);
    }

    /// The page and the adapters read one list: every plain word of a high-risk path
    /// category names its class here too, tagged by an adapter or not.
    #[test]
    fn high_risk_path_words_are_the_adapters_words() {
        for c in CLASSES {
            for cat in c.categories {
                for w in risk::category_words(cat) {
                    let e = ev("e", "object.read", serde_json::json!({"table": w}));
                    assert!(
                        classes(&hints([&e])).contains(&c.class),
                        "`{w}` ({cat}) gives no {} hint",
                        c.class
                    );
                }
            }
        }
    }

    #[test]
    fn a_reason_shared_by_several_events_is_given_once() {
        let hubspot = |id| {
            ev(
                id,
                "workflow.updated",
                serde_json::json!({"credential.name": "HubSpot (all objects)"}),
            )
        };
        let (a, b) = (hubspot("e1"), hubspot("e2"));
        let payroll = ev(
            "e3",
            "workflow.updated",
            serde_json::json!({"credential.name": "Payroll export", "table": "customers"}),
        );
        let h = hints([&a, &b, &payroll]);
        let pii = h.iter().find(|h| h.class == "pii").expect("pii hint");
        let whys: Vec<&str> = pii.reasons.iter().map(|r| r.why.as_str()).collect();
        let unique: std::collections::BTreeSet<&str> = whys.iter().copied().collect();
        assert_eq!(whys.len(), unique.len(), "{whys:?}");
        assert_eq!(pii.reasons[0].event_id, "e1");
        assert!(pii.reasons.iter().all(|r| r.event_id != "e2"), "{whys:?}");
    }

    #[test]
    fn surfaces_follow_the_brief() {
        assert_eq!(
            surface(&ev("a", "secret.read", serde_json::json!({}))),
            Some(Surface::CredentialsAndSecrets)
        );
        let mut staging = ev("b", "workflow.updated", serde_json::json!({}));
        assert_eq!(surface(&staging), Some(Surface::WorkflowEdits));
        staging.environment = Environment::Staging;
        assert_eq!(
            surface(&staging),
            None,
            "staging workflow edits are not production"
        );
        assert_eq!(
            surface(&ev("c", "data.export", serde_json::json!({}))),
            Some(Surface::DataExports)
        );
        assert_eq!(
            surface(&ev(
                "d",
                "branch.protection.disabled",
                serde_json::json!({})
            )),
            Some(Surface::BranchProtectionAndCi)
        );
        assert_eq!(
            surface(&ev("e", "assistant.tool.granted", serde_json::json!({}))),
            Some(Surface::AssistantToolsAndPrompts)
        );
        assert_eq!(surface(&ev("f", "git.push", serde_json::json!({}))), None);
        assert_eq!(
            surface(&ev("g", "workflow.executed", serde_json::json!({}))),
            None
        );
    }
}
