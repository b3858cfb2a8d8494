//! Secrets never reach storage (or the LLM) in clear: values that look like credentials,
//! and values under keys that name a credential, are replaced by a short keyed hash, so
//! equal secrets still compare equal without being readable, and a reader cannot test
//! guesses offline: the key is this installation's ([`set_key`], kept in the data
//! directory), not public.

use std::sync::{LazyLock, OnceLock};

use hmac::{Hmac, Mac};
use regex::{Regex, RegexSet};
use sha2::Sha256;

use crate::Event;

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

/// Keys whose last segment names a credential but whose value is an identifier Plumbline
/// itself sets: a coding agent's session id (`agent.session`) is what detectors group by.
const ID_KEYS: &[&str] = &["agent.session"];

/// Patterns of well-known credential formats (kept narrow to avoid eating ordinary text).
/// Word boundaries are ASCII (`(?-u:\b)`): credentials are ASCII, and a Unicode `\b`
/// makes the regex engine give up its DFA on any text with a non-ASCII letter (a name, a
/// commit message) and run the PikeVM, ~100× slower — 12% of the server's CPU under
/// single-event ingest of the shared baseline's events.
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
        r"(?i)(?-u:\b)bearer\s+[A-Za-z0-9._~+/\-]{12,}=*",
        // `password=…`, `db_password:12345678`, `"clientSecret": "…"` inside text: the key may
        // carry a prefix (`db_`, `client`) and quotes; a quoted value may hold spaces.
        r#"(?i)(?-u:\b)[a-z0-9_\-]*(?:password|passwd|pwd|secret|token|api[_-]?key)["']?\s*[=:]\s*"[^"]{4,}""#,
        r#"(?i)(?-u:\b)[a-z0-9_\-]*(?:password|passwd|pwd|secret|token|api[_-]?key)["']?\s*[=:]\s*["']?[^\s&,;"']{6,}"#,
        // `AWS_SECRET_ACCESS_KEY=…`, `SECRET_KEY: …`, `private_key=…` in shell commands and
        // env dumps (the key ends in `key`, which the rule above does not cover).
        r#"(?i)(?-u:\b)[a-z0-9_\-]*(?:secret|private)[_-]?(?:access[_-]?)?key["']?\s*[=:]\s*["']?[^\s&,;"']{6,}"#,
        r"://[^/\s:@]+:[^/\s@]{3,}@",
        // Chat webhooks: the path is the credential; the host stays readable.
        r"(?:services|workflows|triggers)/T[A-Z0-9]{6,}/[AB][A-Z0-9]{6,}/[A-Za-z0-9]{16,}",
        r"api/webhooks/\d{6,}/[A-Za-z0-9_\-]{20,}",
        r"AIza[0-9A-Za-z_\-]{35}",
        r"(?-u:\b)(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
        r"(?-u:\b)npm_[A-Za-z0-9]{36}",
        r"pypi-AgE[A-Za-z0-9_\-]{40,}",
        r"(?-u:\b)SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}",
        // Source adapters: Okta API tokens (`SSWS …`), Google OAuth access tokens, HTTP
        // Basic credentials copied from a header or a workflow node.
        r"(?i)(?-u:\b)SSWS\s+[A-Za-z0-9_\-]{20,}",
        r"(?-u:\b)ya29\.[A-Za-z0-9_\-]{20,}",
        r"(?i)(?-u:\b)basic\s+[A-Za-z0-9+/]{16,}={0,2}",
        // Signed URLs and OAuth tokens in query strings (`access_token` is not matched by
        // the `token=` rule above: `_` is a word character).
        r"(?i)[?&](?:sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|access_token|refresh_token|id_token|client_secret)=[^&#\s]{8,}",
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

static KEY: OnceLock<[u8; 32]> = OnceLock::new();

/// Sets this installation's redaction key (the service reads or creates it in its data
/// directory at start, so markers stay stable across restarts). Without it a process uses
/// a random key of its own. Returns false when a different key was already in use.
pub fn set_key(key: [u8; 32]) -> bool {
    *KEY.get_or_init(|| key) == key
}

fn key() -> &'static [u8; 32] {
    KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        getrandom::getrandom(&mut k).expect("the OS provides randomness");
        k
    })
}

/// `[redacted:1a2b3c4d]`: a stable short HMAC of the secret under this installation's key.
pub fn marker(secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key()).expect("any key length");
    mac.update(secret.as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("[redacted:{}]", hex::encode(&digest[..4]))
}

/// Whether a key names a credential (`db_password`, `X-Api-Key`, `clientSecret`).
pub fn is_secret_key(key: &str) -> bool {
    if ID_KEYS.contains(&key) {
        return false;
    }
    let k = snake_case(key).replace('-', "_");
    let last = k.rsplit('.').next().unwrap_or(&k);
    SECRET_KEYS
        .iter()
        .any(|s| last == *s || last.ends_with(&format!("_{s}")))
        && !last.ends_with("_id")
}

/// `accessToken` → `access_token`, `X-Api-Key` → `x-api-key`.
fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    let mut prev_lower = false;
    for c in key.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push('_');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_lowercase());
    }
    out
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
    in_place(&mut e.system);
    in_place(&mut e.actor.display);
    if let Some(d) = e.destination.as_mut() {
        in_place(d);
    }
    for (k, v) in e.attributes.iter_mut() {
        let Some(s) = v.as_str() else { continue };
        if is_secret_key(k) && !s.is_empty() && !is_redacted(s) {
            *v = serde_json::Value::String(marker(s));
        } else if let Some(r) = text(s) {
            *v = serde_json::Value::String(r);
        }
    }
}

/// Redacts every string inside an arbitrary JSON value (used on raw payloads and on what
/// is sent to the LLM). Idempotent: a value already redacted is left as it is.
pub fn json(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => in_place(s),
        Value::Array(xs) => xs.iter_mut().for_each(json),
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if !is_secret_key(k) {
                    json(x);
                    continue;
                }
                match x {
                    Value::String(s) if !s.is_empty() && !is_redacted(s) => *s = marker(s),
                    // A numeric PIN or key under a credential name is as secret as text.
                    Value::Number(n) => *x = Value::String(marker(&n.to_string())),
                    _ => json(x),
                }
            }
        }
        _ => {}
    }
}

/// Already a redaction marker or an ingest-time HMAC.
fn is_redacted(s: &str) -> bool {
    s.starts_with("[redacted:") || s.starts_with("hmac-")
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
    fn source_adapter_credential_shapes_are_replaced() {
        for secret in [
            "SSWS 00Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8Ii9Jj0KkLl",
            "ya29.a0AfH6SMBx3kQ9zLx2Wf3kQ9zLx2Wf3kQ9zLx2",
            "Basic ZGFuYTpodW50ZXIyaHVudGVyMg==",
        ] {
            let red = text(&format!("header was {secret} then")).expect(secret);
            assert!(!red.contains(secret), "{red}");
        }
        assert_eq!(text("uses basic authentication for the legacy API"), None);
    }

    /// The confirmed misses: camelCase keys, a prefixed key in text, a quoted JSON pair.
    #[test]
    fn camel_case_keys_prefixed_and_quoted_pairs_are_redacted() {
        for key in [
            "accessToken",
            "clientSecret",
            "dbPassword",
            "privateKey",
            "X-Api-Key",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        assert!(!is_secret_key("tokenId") && !is_secret_key("passwordPolicy"));
        for (input, secret) in [
            ("db_password:12345678 in the env dump", "12345678"),
            (
                r#"body {"password": "correct horse battery"} sent"#,
                "correct horse",
            ),
            (r#"{"clientSecret":"s3cr3t-v4lue-99"}"#, "s3cr3t-v4lue-99"),
            ("AUTH_TOKEN='abcdef123456'", "abcdef123456"),
        ] {
            let red = text(input).unwrap_or_else(|| panic!("not redacted: {input}"));
            assert!(!red.contains(secret), "{red}");
        }
        assert_eq!(text("rotate the tokens: see runbook"), None);
    }

    /// Markers are keyed: the plain sha256 prefix of a guess does not match them.
    /// Word boundaries are ASCII: text with non-ASCII letters around a credential is
    /// redacted as ASCII text is (and is matched by the fast engine, not the PikeVM).
    #[test]
    fn credentials_in_non_ascii_text_are_replaced() {
        for (text, secret) in [
            (
                "Zoë Müller: Bearer abcdefghijklmnop123",
                "Bearer abcdefghijklmnop123",
            ),
            (
                "Größe password=hunter2hunter2 ändern",
                "password=hunter2hunter2",
            ),
            (
                "clé SSWS 00Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8Ii9Jj0KkLl ✓",
                "SSWS 00Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8Ii9Jj0KkLl",
            ),
            (
                "日本語 sk_live_abcdefghijklmnop1234",
                "sk_live_abcdefghijklmnop1234",
            ),
        ] {
            let out = super::text(text).unwrap_or_else(|| panic!("{text} not redacted"));
            assert!(!out.contains(secret), "{out}");
            assert!(out.contains("[redacted:"), "{out}");
        }
        assert_eq!(super::text("Zoë Müller pushed to feature-42"), None);
    }

    #[test]
    fn markers_are_keyed_not_plain_hashes() {
        use sha2::Digest;
        let m = marker("hunter2hunter2");
        assert_eq!(m, marker("hunter2hunter2"), "stable within an installation");
        let plain = hex::encode(&Sha256::digest(b"hunter2hunter2")[..4]);
        assert!(!m.contains(&plain), "{m}");
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

    #[test]
    fn webhook_keys_and_signed_urls_are_replaced_and_hosts_kept() {
        for (input, secret, kept) in [
            (
                "post to https://hooks.slack.com/services/T0ABCDEF12/B0ABCDEF34/abcdefghijklmnopqrstuvwx",
                "abcdefghijklmnopqrstuvwx",
                "https://hooks.slack.com/",
            ),
            (
                "https://discord.com/api/webhooks/123456789012345678/abcdefghijklmnopqrstuvwxyz_-0123",
                "abcdefghijklmnopqrstuvwxyz_-0123",
                "https://discord.com/",
            ),
            (
                "https://acct.blob.core.windows.net/c/f.csv?sv=2024-01-01&sig=AbCdEf0123456789%2B%3D",
                "AbCdEf0123456789",
                "https://acct.blob.core.windows.net/c/f.csv?sv=2024-01-01",
            ),
            (
                "https://bucket.s3.amazonaws.com/x?X-Amz-Signature=0123456789abcdef0123",
                "0123456789abcdef0123",
                "https://bucket.s3.amazonaws.com/x",
            ),
            (
                "https://api.example.com/cb#x?access_token=ya29.a0AfH6SMBxyz",
                "ya29.a0AfH6SMBxyz",
                "https://api.example.com/cb",
            ),
            ("key AIzaSyA1234567890abcdefghijklmnopqrstuv", "AIzaSyA1234567890abcdefghijklmnopqrstuv", "key "),
            ("stripe sk_live_0123456789abcdefABCD", "sk_live_0123456789abcdefABCD", "stripe "),
            ("npm_0123456789abcdefghijklmnopqrstuvwxyz", "npm_0123456789abcdefghijklmnopqrstuvwxyz", ""),
            (
                "SG.abcdefghijklmnopqrstuv.ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg",
                "abcdefghijklmnopqrstuv",
                "",
            ),
        ] {
            let red = text(input).unwrap_or_else(|| panic!("not redacted: {input}"));
            assert!(!red.contains(secret), "{red}");
            assert!(red.contains(kept), "{red}");
        }
        for ordinary in [
            "signature verified for release v1.2.3",
            "see https://hooks.slack.com/ for set-up",
            "?page=2&sort=created_at_desc",
            "npm_config_registry set",
        ] {
            assert_eq!(text(ordinary), None, "{ordinary}");
        }
    }

    /// What coding agents run and write: a curl with a bearer key, cloud keys exported
    /// inline, a `.env` file's text. The command stays readable around the markers.
    #[test]
    fn agent_commands_and_file_content_are_redacted() {
        for (input, secret, kept) in [
            (
                r#"curl -s -H "Authorization: Bearer sk-ant-api03-abcdefghijklmnopqrstuvwx" https://api.example.com"#,
                "abcdefghijklmnopqrstuvwx",
                "https://api.example.com",
            ),
            (
                "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY aws s3 ls",
                "wJalrXUtnFEMI",
                "aws s3 ls",
            ),
            (
                "export SECRET_KEY='django-insecure-0123456789abcdef' && ./manage.py run",
                "django-insecure-0123456789abcdef",
                "./manage.py run",
            ),
            (
                "DATABASE_URL=postgres://app:s3cr3t-pw@db:5432/app\nSTRIPE_API_KEY=sk_live_0123456789abcdefABCD",
                "s3cr3t-pw",
                "db:5432/app",
            ),
        ] {
            let red = text(input).unwrap_or_else(|| panic!("not redacted: {input}"));
            assert!(!red.contains(secret), "{red}");
            assert!(red.contains(kept), "{red}");
        }
        assert_eq!(
            text("cat .env && curl -X POST https://paste.example.net"),
            None
        );
        assert!(!is_secret_key("agent.session"));
        assert!(is_secret_key("session") && is_secret_key("headers.session"));
    }

    #[test]
    fn json_redaction_covers_numbers_and_is_idempotent() {
        let mut v = serde_json::json!({
            "db_password": 12345678,
            "token": true,
            "note": "curl -H 'Authorization: Bearer abcdefghijklmnop1234'",
        });
        json(&mut v);
        assert!(v["db_password"].as_str().unwrap().starts_with("[redacted:"));
        assert_eq!(
            v["token"], true,
            "a flag under a credential name is not a secret"
        );
        assert!(!v["note"].as_str().unwrap().contains("abcdefghijklmnop1234"));
        let once = v.clone();
        json(&mut v);
        assert_eq!(v, once);
    }

    #[test]
    fn events_are_redacted_in_system_and_display_too() {
        let mut e = crate::parse_event(serde_json::json!({
            "id": "e1", "time": "2025-11-24T16:00:00Z", "source": "ci",
            "actor": {"id": "ci-bot", "type": "service", "display": "bot ghp_abcdefghijklmnopqrstuvwxyz0123456789"},
            "system": "https://deploy:hunter2hunter2@git.example.com/app.git",
            "action": "ci.run.started",
        }))
        .unwrap();
        // parse_event redacts at ingest; put the clear values back to test `event` alone.
        e.actor.display = "bot ghp_abcdefghijklmnopqrstuvwxyz0123456789".into();
        e.system = "https://deploy:hunter2hunter2@git.example.com/app.git".into();
        event(&mut e);
        assert!(!e.actor.display.contains("ghp_"), "{}", e.actor.display);
        assert!(!e.system.contains("hunter2"), "{}", e.system);
        assert!(
            e.system.ends_with("git.example.com/app.git"),
            "{}",
            e.system
        );
    }
}
