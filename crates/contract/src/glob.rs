//! Globs: the one implementation of the wildcard patterns operators and detectors write
//! in configuration (policy routes and allow-rules, grant and drift actions, response
//! actions, detector allow-lists and vocabularies, branch protection patterns).
//!
//! Two kinds of text, two functions:
//!
//! - **Names** ([`matches`]): signals, actions, detector names, actor ids, systems, tool
//!   names, scopes. `*` matches any run of characters, including none and including `.`
//!   and `/` (`exfil.*` covers `exfil.large_export`; `acme/*` covers `acme/payments`).
//!   Every other character is literal — there is no `?`, no `[...]`, no escape.
//! - **Paths** ([`path_matches`]): branch names and file paths, with fnmatch's pathname
//!   rules as GitHub applies them to branch protection patterns: `*` matches within one
//!   `/`-separated segment, `**` across segments, `?` one character other than `/`.
//!
//! # Case
//!
//! Both match **case-sensitively**, byte for byte. [`matches_ignore_ascii_case`] is the
//! explicit, separately named exception for detector vocabularies (roles, scopes) where a
//! wider match finds more, never less.
//!
//! Why case-sensitive by default: most globs here *suppress* or *automate* something — an
//! allow-rule quiets an alert, a service-account pattern makes activity "planned work", a
//! response action's signal pattern runs without a human. A wider match there is a hole: a
//! case-folded `svc-*` would also cover `SVC-evil`. A pattern that is too narrow fails
//! closed: the alert is raised and a reviewer fixes the entry. Identifiers in the contract
//! (signals, actions, sources, evidence ids) are compared exactly everywhere else, so a
//! pattern means the bytes an operator sees in an alert; and text that *is*
//! case-insensitive by nature (host names, mail domains, buckets) is lower-cased where it
//! is parsed, not matched loosely here. The detector kit's old glob folded ASCII case; its
//! allow-lists now match exactly and its vocabularies say `matches_ignore_ascii_case`.
//!
//! # Cost
//!
//! Both run in time proportional to pattern × text at worst (no exponential backtracking:
//! the patterns come from configuration, but the text comes from events anyone can send).
//!
//! # Where each replaced copy went
//!
//! The host's policy matcher `glob`, trajectory window `glob` and response-action `glob`
//! (all `*`-only, case-sensitive) are [`matches`]; the policy's `glob_valid` is [`valid`];
//! the ingest adapter's `glob_match` (branch protection patterns) is [`path_matches`]; the
//! detector kit's `glob` is [`matches`] for allow-lists and [`matches_ignore_ascii_case`]
//! for vocabularies.

/// Whether `text` matches the name glob `pattern` (`*` only, case-sensitive; see the module
/// documentation).
pub fn matches(pattern: &str, text: &str) -> bool {
    star_match(pattern.as_bytes(), text.as_bytes(), |a, b| a == b)
}

/// As [`matches`], with ASCII letters compared case-insensitively (other characters
/// exactly). For detector vocabularies only, where a wider match detects more; never for
/// allow-lists.
pub fn matches_ignore_ascii_case(pattern: &str, text: &str) -> bool {
    star_match(pattern.as_bytes(), text.as_bytes(), |a, b| {
        a.eq_ignore_ascii_case(&b)
    })
}

/// Whether a pattern is usable: not empty or blank (a blank pattern matches only blank
/// text, which is always a configuration mistake).
pub fn valid(pattern: &str) -> bool {
    !pattern.trim().is_empty()
}

/// Whether the path (or branch name) `text` matches `pattern` under fnmatch's pathname
/// rules: `*` matches any run of characters within one `/`-separated segment, `**` any run
/// including `/`, `?` exactly one character other than `/`; everything else literally and
/// case-sensitively.
pub fn path_matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // memo[pi * (t.len() + 1) + ti]: 0 unknown, 1 matches, 2 does not.
    let mut memo = vec![0u8; (p.len() + 1) * (t.len() + 1)];
    path_go(&p, &t, 0, 0, &mut memo)
}

fn path_go(p: &[char], t: &[char], pi: usize, ti: usize, memo: &mut [u8]) -> bool {
    let slot = pi * (t.len() + 1) + ti;
    if memo[slot] != 0 {
        return memo[slot] == 1;
    }
    let result = match p.get(pi) {
        None => ti == t.len(),
        Some('*') if p.get(pi + 1) == Some(&'*') => {
            (ti..=t.len()).any(|i| path_go(p, t, pi + 2, i, memo))
        }
        Some('*') => {
            let mut found = false;
            for i in ti..=t.len() {
                if path_go(p, t, pi + 1, i, memo) {
                    found = true;
                    break;
                }
                if i < t.len() && t[i] == '/' {
                    break;
                }
            }
            found
        }
        Some('?') => ti < t.len() && t[ti] != '/' && path_go(p, t, pi + 1, ti + 1, memo),
        Some(c) => ti < t.len() && t[ti] == *c && path_go(p, t, pi + 1, ti + 1, memo),
    };
    memo[slot] = if result { 1 } else { 2 };
    result
}

/// `*`-only matching with the classic single-backtrack-point loop: linear in practice,
/// pattern × text at worst.
fn star_match(p: &[u8], t: &[u8], eq: impl Fn(u8, u8) -> bool) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && eq(p[pi], t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    // From the policy crate's matcher `globs_match_like_shell_stars`.
    #[test]
    fn names_match_like_shell_stars() {
        assert!(matches("exfil.*", "exfil.large_export"));
        assert!(!matches("exfil.*", "credential.abuse"));
        assert!(matches("*direct_to_prod*", "change.direct_to_prod.auth"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        assert!(matches("*", ""));
        assert!(matches("exact", "exact"));
    }

    // The host's trajectory window globs (grant and drift actions, each crate's config.toml).
    #[test]
    fn grant_and_drift_action_patterns() {
        for (p, t) in [
            ("*.granted", "admin.role.granted"),
            ("*.scope.increased", "credential.scope.increased"),
            ("member.added", "member.added"),
            ("a*", "a"),
            ("*a", "a"),
        ] {
            assert!(matches(p, t), "{p} {t}");
        }
        for (p, t) in [
            ("*.granted", "admin.role.granted.not"),
            ("member.added", "member.added.x"),
            ("a*a", "a"),
            ("", "x"),
        ] {
            assert!(!matches(p, t), "{p} {t}");
        }
        assert!(matches("", ""));
    }

    // From detectors/kit `globs`, with the case rule changed on purpose (module docs).
    #[test]
    fn kit_globs_and_the_case_rule() {
        assert!(!matches("svc-*", "SVC-migration"));
        assert!(matches("svc-*", "svc-migration"));
        assert!(matches_ignore_ascii_case("svc-*", "SVC-migration"));
        assert!(matches("*[bot]", "dependabot[bot]"));
        assert!(!matches("svc-*", "alice"));
        assert!(!matches_ignore_ascii_case("svc-*", "alice"));
        assert!(matches("exact", "exact"));
        assert!(!matches("exact", "exactly"));
        assert!(matches_ignore_ascii_case("Admin*", "administratorAccess"));
    }

    #[test]
    fn names_have_no_single_character_wildcard() {
        assert!(!matches("v?", "v1"));
        assert!(matches("v?", "v?"));
        assert!(matches("acme/*", "acme/payments/api"));
    }

    #[test]
    fn stars_do_not_explode_on_hostile_text() {
        let text = "a".repeat(10_000);
        assert!(!matches("*a*a*a*a*a*a*a*a*b", &text));
        assert!(!path_matches("**a**a**a**a**b", &text[..400]));
    }

    #[test]
    fn blank_patterns_are_invalid() {
        assert!(valid("exfil.*"));
        assert!(valid("*"));
        assert!(!valid(""));
        assert!(!valid("   "));
    }

    // From the ingest crate `globs_follow_fnmatch_pathname_rules`.
    #[test]
    fn paths_follow_fnmatch_pathname_rules() {
        assert!(path_matches("main", "main"));
        assert!(path_matches("release/*", "release/1.2"));
        assert!(!path_matches("release/*", "release/1/2"));
        assert!(path_matches("release/**", "release/1/2"));
        assert!(path_matches("v?", "v1"));
    }

    #[test]
    fn path_wildcards_and_case() {
        assert!(!path_matches("v?", "v/"));
        assert!(!path_matches("v?", "v12"));
        assert!(
            path_matches("v?", "vé"),
            "`?` is one character, not one byte"
        );
        assert!(path_matches("**/main", "a/b/main"));
        assert!(path_matches("*", "main"));
        assert!(!path_matches("*", "feature/x"));
        assert!(path_matches("**", "feature/x"));
        assert!(!path_matches("Main", "main"));
        assert!(!path_matches("release/*", "release"));
        assert!(path_matches("release/*", "release/"));
    }
}
