//! Secrets never reach storage (or the LLM) in clear: values that look like credentials,
//! and values under keys that name a credential, are replaced by a short hash so that
//! equal secrets still compare equal without being readable.

use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use sha2::{Digest, Sha256};

use crate::event::Event;

/// Key names whose values are credentials whatever they look like.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
    "client_secret",
    "authorization",
    "cookie",
    "session",
    "credential_value",
    "bearer",
];

/// Patterns of well-known credential formats (kept narrow to avoid eating ordinary text).
static PATTERNS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    vec![
        r"gh[pousr]_[A-Za-z0-9]{20,}",
        r"github_pat_[A-Za-z0-9_]{20,}",
        r"glpat-[A-Za-z0-9_\-]{20,}",
        r"xox[abprs]-[A-Za-z0-9\-]{10,}",
        r"(?:AKIA|ASIA)[A-Z0-9]{16}",
        r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
        r"hv[sb]\.[A-Za-z0-9_\-]{20,}",
        r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
        r"(?i)\bbearer\s+[A-Za-z0-9._~+/\-]{12,}=*",
        r"(?i)\b(?:password|passwd|pwd|secret|token|api[_-]?key)\s*[=:]\s*[^\s&,;]{6,}",
        r"://[^/\s:@]+:[^/\s@]{3,}@",
    ]
});

static SET: LazyLock<RegexSet> =
    LazyLock::new(|| RegexSet::new(PATTERNS.iter()).expect("valid patterns"));
static ALL: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    PATTERNS
        .iter()
        .map(|p| Regex::new(p).expect("valid pattern"))
        .collect()
});

/// `[redacted:1a2b3c4d]`: a stable short hash of the secret.
pub fn marker(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    format!("[redacted:{}]", hex::encode(&digest[..4]))
}

/// Whether a key names a credential (`db_password`, `X-Api-Key`, `client_secret`).
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('-', "_");
    let last = k.rsplit('.').next().unwrap_or(&k);
    SECRET_KEYS
        .iter()
        .any(|s| last == *s || last.ends_with(&format!("_{s}")))
        && !last.ends_with("_id")
}

/// Replaces every credential-looking span in `text`. Returns `None` when nothing matched
/// (the common case, which costs one pass of the regex set).
pub fn text(text: &str) -> Option<String> {
    if text.len() < 10 || !SET.is_match(text) {
        return None;
    }
    let mut out = text.to_string();
    for (i, re) in ALL.iter().enumerate() {
        if SET.matches(&out).matched(i) {
            out = re
                .replace_all(&out, |c: &regex::Captures| marker(&c[0]))
                .into_owned();
        }
    }
    Some(out)
}

fn in_place(s: &mut String) {
    if let Some(r) = text(s) {
        *s = r;
    }
}

/// Redacts an event in place: attribute values under secret-named keys are hashed,
/// credential-shaped text anywhere in free-text fields is replaced.
pub fn event(e: &mut Event) {
    in_place(&mut e.resource);
    if let Some(d) = e.destination.as_mut() {
        in_place(d);
    }
    for (k, v) in e.attributes.iter_mut() {
        let Some(s) = v.as_str() else { continue };
        if is_secret_key(k)
            && !s.is_empty()
            && !s.starts_with("[redacted:")
            && !s.starts_with("hmac-")
        {
            *v = serde_json::Value::String(marker(s));
        } else if let Some(r) = text(s) {
            *v = serde_json::Value::String(r);
        }
    }
}

/// Redacts every string inside an arbitrary JSON value (used on raw payloads and on what
/// is sent to the LLM).
pub fn json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => in_place(s),
        serde_json::Value::Array(xs) => xs.iter_mut().for_each(json),
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match x {
                    serde_json::Value::String(s) if is_secret_key(k) && !s.is_empty() => {
                        *s = marker(s)
                    }
                    _ => json(x),
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_credential_shapes_are_replaced() {
        for secret in [
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "AKIAIOSFODNN7EXAMPLE",
            "sk-proj-abcdefghijklmnopqrstuvwxyz",
            "xoxb-1234567890-abcdefghij",
            "Bearer abcdefghijklmnopqrstuvwxyz",
            "password=hunter2hunter2",
        ] {
            let red = text(&format!("deploy with {secret} now")).expect(secret);
            assert!(!red.contains(secret), "{red}");
            assert!(red.contains("[redacted:"), "{red}");
        }
        assert_eq!(text("an ordinary commit message about tokens"), None);
    }

    #[test]
    fn secret_named_keys_are_hashed_and_ids_are_not() {
        assert!(is_secret_key("db_password"));
        assert!(is_secret_key("headers.Authorization"));
        assert!(is_secret_key("client_secret"));
        assert!(!is_secret_key("token_id"));
        assert!(!is_secret_key("workflow"));
        let mut v = serde_json::json!({"nested": {"api_key": "abc123456"}, "note": "x"});
        json(&mut v);
        assert!(v["nested"]["api_key"]
            .as_str()
            .unwrap()
            .starts_with("[redacted:"));
    }
}
