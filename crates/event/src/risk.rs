//! High-risk paths: the places where a change deserves a second look whoever makes it.
//! One list, read by the adapters (which tag pushes with `risk.category` and `risk.paths`)
//! and by the review page's data-classification hints (which reuse the plain words).

/// Categories of high-risk paths: a change there deserves a second look whoever makes it.
/// Matched case-insensitively against each path segment (and the whole path for the CI
/// files), so `src/auth/session.rs` is `auth` and `.github/workflows/ci.yml` is `ci`.
pub const HIGH_RISK_PATHS: &[(&str, &[&str])] = &[
    (
        "ci",
        &[
            ".github/workflows/",
            ".github/actions/",
            ".gitlab-ci.yml",
            ".gitlab/ci/",
            "jenkinsfile",
            ".circleci/",
            "azure-pipelines.yml",
            ".buildkite/",
            ".drone.yml",
            "bitbucket-pipelines.yml",
        ],
    ),
    ("codeowners", &["codeowners"]),
    (
        "auth",
        &[
            "auth",
            "authn",
            "authentication",
            "login",
            "oauth",
            "oidc",
            "saml",
            "sso",
            "session",
            "sessions",
            "jwt",
            "mfa",
            "2fa",
            "password",
            "passwords",
        ],
    ),
    (
        "permissions",
        &[
            "authz",
            "authorization",
            "permission",
            "permissions",
            "rbac",
            "acl",
            "acls",
            "iam",
            "roles",
            "policy",
            "policies",
            "access",
        ],
    ),
    (
        "secrets",
        &[
            "secret",
            "secrets",
            "credential",
            "credentials",
            "vault",
            "keys",
            ".env",
            "kms",
            "certs",
            "tls",
        ],
    ),
    (
        "payments",
        &[
            "payment", "payments", "billing", "invoice", "invoices", "checkout", "stripe",
            "ledger", "payout", "payouts",
        ],
    ),
];

/// The high-risk categories a path falls in. Needles with a `/` or a file extension
/// match anywhere in the path; dot-file needles (`.env`) match a segment's start; plain
/// words match whole words of the path (split on `/ _ - .`).
pub fn risk_categories(path: &str) -> Vec<&'static str> {
    let lower = path.to_ascii_lowercase();
    let segments: Vec<&str> = lower.split('/').collect();
    let words: Vec<&str> = segments
        .iter()
        .flat_map(|seg| seg.split(['_', '-', '.']))
        .collect();
    let mut out = Vec::new();
    for (cat, needles) in HIGH_RISK_PATHS {
        let hit = needles.iter().any(|n| {
            if n.contains('/') || n.ends_with(".yml") {
                lower.contains(n)
            } else if n.starts_with('.') {
                segments.iter().any(|seg| seg.starts_with(n))
            } else {
                words.iter().any(|w| w == n)
            }
        });
        if hit {
            out.push(*cat);
        }
    }
    out
}

/// The plain words of a category (not the path or dot-file needles), for matching the
/// words of names: `category_words("payments")` has `billing`, `invoice`, ….
pub fn category_words(category: &str) -> impl Iterator<Item = &'static str> + '_ {
    HIGH_RISK_PATHS
        .iter()
        .filter(move |(c, _)| *c == category)
        .flat_map(|(_, needles)| needles.iter().copied())
        .filter(|n| !n.contains('/') && !n.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_categories_by_segment() {
        assert_eq!(risk_categories(".github/workflows/release.yml"), vec!["ci"]);
        assert_eq!(risk_categories("src/auth/session.rs"), vec!["auth"]);
        assert_eq!(
            risk_categories("services/billing/invoice.go"),
            vec!["payments"]
        );
        assert_eq!(risk_categories("config/.env.production"), vec!["secrets"]);
        assert_eq!(risk_categories("docs/CODEOWNERS"), vec!["codeowners"]);
        assert!(risk_categories("README.md").is_empty());
        // "author" is not "auth", "accessibility" is not "access".
        assert!(risk_categories("src/author/accessibility.md").is_empty());
    }

    #[test]
    fn category_words_are_the_plain_words_only() {
        let secrets: Vec<&str> = category_words("secrets").collect();
        assert!(secrets.contains(&"vault") && !secrets.contains(&".env"));
        assert_eq!(category_words("ci").collect::<Vec<_>>(), ["jenkinsfile"]);
        assert!(category_words("no such category").next().is_none());
    }
}
