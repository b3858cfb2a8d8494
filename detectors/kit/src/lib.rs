//! # plumbline-detector-kit
//!
//! What the built-in detectors share, so every pack tunes the same way: the team's
//! allow-lists (known domains, buckets, service accounts), declared change windows,
//! working hours, destination classes (personal mail, consumer drives, request catchers),
//! and plain-text pattern matching. Each helper reads the detector's own config keys;
//! [`keys`] declares them with their defaults so `info()` stays short and uniform.
//!
//! Everything here is pure and runs the same natively and inside WASM.

pub mod destination;
pub mod git;
pub mod keys;
pub mod policy;
pub mod text;

pub use destination::{DestinationClass, Destinations};
pub use policy::{ChangeWindows, Policy, WorkHours};

use plumbline_sdk::Event;

/// Most characters in a finding title (the contract's limit).
pub use plumbline_sdk::TITLE_MAX;

/// A finding title cut to [`TITLE_MAX`] characters on a character boundary.
pub fn title(s: impl Into<String>) -> String {
    let s: String = s.into();
    if s.chars().count() <= TITLE_MAX {
        return s;
    }
    let mut out: String = s.chars().take(TITLE_MAX - 1).collect();
    out.push('…');
    out
}

/// Untrusted text (workflow names, commit messages) quoted for a title: control
/// characters dropped, cut to `max` characters.
pub fn quoted(s: &str, max: usize) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    let mut out: String = clean.chars().take(max).collect();
    if clean.chars().count() > max {
        out.push('…');
    }
    format!("\"{out}\"")
}

/// Who acted, as a reviewer reads it: the id when it is a mail address, else the display
/// name when there is one (CloudTrail role sessions: `ops@acme.com` rather than the ARN).
pub fn who(e: &Event) -> &str {
    let d = e.actor.display.trim();
    let mail = e.actor.id.contains('@') && !e.actor.id.contains(['/', ':']);
    if mail || d.is_empty() || d.len() > 80 {
        &e.actor.id
    } else {
        d
    }
}

/// The first of `keys` present as a non-empty text attribute.
pub fn attr_text<'a>(e: &'a Event, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| e.attr_str(k).filter(|v| !v.trim().is_empty()))
}

/// A comma-separated text attribute as trimmed, non-empty items.
pub fn attr_list(e: &Event, key: &str) -> Vec<String> {
    e.attr_str(key)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Minutes between two event times (b after a).
pub fn minutes_between(a: &Event, b: &Event) -> i64 {
    (b.time - a.time) / 60_000_000_000
}

/// `*` matches any run of characters; everything else literally, ASCII case-insensitively.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some((c, rest)) => t
                .split_first()
                .is_some_and(|(x, tail)| x.eq_ignore_ascii_case(c) && go(rest, tail)),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// Prints every fixture's findings (title, evidence, next step) under `cargo test --
/// --nocapture`, for reviewing how findings read; the pass/fail check is the SDK's
/// `run_fixtures`.
#[cfg(not(target_arch = "wasm32"))]
pub fn show_findings<D: plumbline_sdk::Detector>(dir: &str) {
    plumbline_sdk::testing::show_findings::<D>(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_cut_on_char_boundaries() {
        let long = "é".repeat(300);
        let t = title(long);
        assert_eq!(t.chars().count(), TITLE_MAX);
        assert!(t.ends_with('…'));
        assert_eq!(title("short"), "short");
    }

    #[test]
    fn quoting_strips_controls_and_cuts() {
        assert_eq!(quoted("Invoice\nsync", 40), "\"Invoicesync\"");
        assert_eq!(quoted("abcdef", 3), "\"abc…\"");
    }

    #[test]
    fn globs() {
        assert!(glob("svc-*", "SVC-migration"));
        assert!(glob("*[bot]", "dependabot[bot]"));
        assert!(!glob("svc-*", "alice"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
    }
}
