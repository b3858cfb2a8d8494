//! Small helpers for building findings a reviewer reads: titles within the contract's
//! limit, untrusted text quoted safely, who acted, and attribute lookups.

use plumbline_contract::{Event, TITLE_MAX};

/// A finding title cut to [`TITLE_MAX`] characters (the contract's limit) on a character
/// boundary, ending in `…` when cut.
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
/// characters dropped, cut to `max` characters (then `…`).
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
    plumbline_contract::config::list(e.attr_str(key).unwrap_or(""))
}

/// Whole minutes from `a` to `b` (negative if `b` is earlier).
pub fn minutes_between(a: &Event, b: &Event) -> i64 {
    (b.time - a.time) / 60_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumbline_contract::{Actor, ActorKind, AttributeValue, Environment};

    fn event(id: &str, display: &str) -> Event {
        Event {
            id: "e".into(),
            time: 0,
            source: "custom".into(),
            actor: Actor {
                id: id.into(),
                kind: ActorKind::Human,
                display: display.into(),
            },
            system: "s".into(),
            action: "x".into(),
            resource: String::new(),
            environment: Environment::Unknown,
            destination: None,
            volume: None,
            attributes: [
                ("a".to_string(), AttributeValue::Text(" ".into())),
                ("b".to_string(), AttributeValue::Text("x, y,,z".into())),
            ]
            .into(),
        }
    }

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
    fn who_prefers_mail_ids_then_display_names() {
        assert_eq!(who(&event("ops@acme.com", "Ops")), "ops@acme.com");
        assert_eq!(who(&event("arn:aws:sts::1:assumed-role/x", "Ops")), "Ops");
        assert_eq!(who(&event("alice", "")), "alice");
    }

    #[test]
    fn attributes() {
        let e = event("a", "");
        assert_eq!(attr_text(&e, &["a", "b"]), Some("x, y,,z"));
        assert_eq!(attr_text(&e, &["a", "missing"]), None);
        assert_eq!(attr_list(&e, "b"), ["x", "y", "z"]);
        assert!(attr_list(&e, "missing").is_empty());
    }
}
