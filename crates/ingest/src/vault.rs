//! HashiCorp Vault audit logs: `POST /v1/ingest/vault` (JSON lines, a JSON array, or one
//! entry) and, when `[vault] socket_listen` is set, the lines Vault's `socket` audit
//! device streams (`vault audit enable socket address=HOST:PORT socket_type=tcp`; the
//! listener itself is `api::vault_socket`).
//!
//! Each audit entry is one event with id `vault:<request.id>:<type>`, so the request and
//! the response of one call are two events and a replayed line is stored once. Actions
//! are decided on the response (which carries the outcome); the request half is kept as
//! `vault.request`. Vault HMACs tokens and secret values (`hmac-sha256:…`); those are kept
//! as they come — they compare equal without being readable — and anything raw that
//! looks like a credential is redacted at ingest.

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::adapter::{Adapter, Delivery, IngestError, Mapped, Memory, SourceAuth};
use super::map::{
    actor, at, content_id, event, guess_environment, json_body, ndjson, parse_time, s, segment,
    set, strings, u, unknown_action,
};
use plumbline_event::{ActorType, Source, Volume};

const SRC: Source = Source::Vault;

/// `[vault]`: the TCP address Vault's `socket` audit device streams to ("" = off), who
/// may connect, and how long a silent connection is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    pub socket_listen: String,
    /// Addresses (`10.0.4.7`) or networks (`10.0.4.0/24`) allowed to connect; empty = any.
    pub socket_peers: Vec<String>,
    /// A connection that sends nothing for this long is closed (Vault reconnects when it
    /// next writes), so idle connections cannot hold every slot.
    pub socket_idle_secs: u64,
}

impl VaultConfig {
    /// Every `socket_peers` entry is an address or a network, so a typo fails start-up
    /// instead of refusing the real Vault.
    pub fn validate(&self) -> Result<(), String> {
        // One probe per family: the prefix is checked against the entry's own family.
        let v4 = std::net::IpAddr::from([127, 0, 0, 1]);
        let v6 = std::net::IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]);
        for entry in &self.socket_peers {
            network_contains(entry, v4)?;
            network_contains(entry, v6)?;
        }
        Ok(())
    }

    /// Whether `peer` may stream to the socket. Errors name an entry that is not an
    /// address or network.
    pub fn peer_allowed(&self, peer: std::net::IpAddr) -> Result<bool, String> {
        if self.socket_peers.is_empty() {
            return Ok(true);
        }
        for entry in &self.socket_peers {
            if network_contains(entry, peer)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// `entry` is an address or `address/prefix`; whether `ip` is in it.
fn network_contains(entry: &str, ip: std::net::IpAddr) -> Result<bool, String> {
    use std::net::IpAddr;
    let bad =
        || format!("vault.socket_peers: `{entry}` is not an address or a network (10.0.4.0/24)");
    let (addr, prefix) = match entry.trim().split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u32>().map_err(|_| bad())?)),
        None => (entry.trim(), None),
    };
    let net: IpAddr = addr.parse().map_err(|_| bad())?;
    let ip = match (net, ip) {
        // An IPv4 peer may arrive as an IPv4-mapped IPv6 address.
        (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        _ => ip,
    };
    let (a, b, bits) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u32::from(n) as u128, u32::from(i) as u128, 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
        _ => return Ok(false),
    };
    let prefix = prefix.unwrap_or(bits);
    if prefix > bits {
        return Err(bad());
    }
    let shift = bits - prefix;
    Ok(prefix == 0 || (a >> shift) == (b >> shift))
}

/// Vault audit-log lines, posted (the file device's log) or streamed to the socket
/// listener, which frames lines and calls [`map_lines`] itself.
pub struct VaultAdapter;

impl Adapter for VaultAdapter {
    fn source(&self) -> Source {
        SRC
    }

    /// Vault has no way to sign what it sends: the API-token rules apply.
    fn verify(&self, _headers: &HeaderMap, _body: &[u8]) -> SourceAuth {
        SourceAuth::NotConfigured
    }

    fn map(&self, d: &Delivery<'_>, _memory: &dyn Memory) -> Result<Mapped, IngestError> {
        let bytes = d.body;
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
        let mut out = Mapped::default();
        match first {
            Some(b'[') => {
                let v = json_body(bytes)?;
                for (i, entry) in v.as_array().into_iter().flatten().enumerate() {
                    map_entry(entry, i, &mut out);
                }
            }
            Some(b'{') => {
                let lines = ndjson(bytes);
                if lines.iter().all(Result::is_err) {
                    // One pretty-printed entry, or garbage: let the JSON parser say which.
                    let v = json_body(bytes)?;
                    map_entry(&v, 0, &mut out);
                } else {
                    map_lines(lines, &mut out);
                }
            }
            None => {
                return Err(IngestError::malformed(
                    "(body)",
                    "empty body: expected Vault audit log lines",
                ))
            }
            Some(_) => {
                return Err(IngestError::malformed(
                    "(body)",
                    "expected Vault audit log lines (one JSON object per line)",
                ))
            }
        }
        Ok(out)
    }
}

/// Maps parsed lines (a line that was not JSON is refused at its position).
pub fn map_lines(lines: Vec<Result<Value, String>>, out: &mut Mapped) {
    for (i, line) in lines.into_iter().enumerate() {
        match line {
            Ok(v) => map_entry(&v, i, out),
            Err(reason) => out.reject(i, "(line)", reason),
        }
    }
}

/// The action for one audit entry.
fn action_for(kind: &str, op: &str, path: &str, mount_type: &str, error: &str) -> String {
    if kind == "request" {
        return "vault.request".into();
    }
    if kind != "response" {
        return unknown_action(SRC, kind);
    }
    if error.contains("permission denied") {
        return "secret.permission_denied".into();
    }
    let failed = !error.is_empty();
    let is_login =
        path.starts_with("auth/") && (path.contains("/login") || path.ends_with("/login"));
    if is_login {
        return if failed {
            "auth.login.failed"
        } else {
            "auth.login"
        }
        .into();
    }
    if path.starts_with("sys/audit/") || path.starts_with("sys/audit-hash") {
        return match op {
            "delete" => "audit.disabled",
            "update" | "create" => "audit.enabled",
            _ => "vault.audit",
        }
        .into();
    }
    if path.starts_with("sys/policy/") || path.starts_with("sys/policies/") {
        return match op {
            "delete" => "policy.deleted",
            "update" | "create" => "policy.updated",
            _ => "policy.read",
        }
        .into();
    }
    if path.starts_with("auth/token/create") {
        return "token.created".into();
    }
    if path.contains("/creds/") || path.contains("/sts/") {
        return "credential.issued".into();
    }
    match (mount_type, op) {
        ("kv" | "generic" | "cubbyhole", "read") => "secret.read",
        ("kv" | "generic" | "cubbyhole", "list") => "secret.list",
        ("kv" | "generic" | "cubbyhole", "create" | "update" | "patch") => "secret.written",
        ("kv" | "generic" | "cubbyhole", "delete") => "secret.deleted",
        (_, op) if !op.is_empty() => return format!("vault.{}", segment(op)),
        _ => "vault.unknown",
    }
    .into()
}

/// Auth method from the token's display name (`approle`, `userpass-ada`, `oidc-ada@x`).
fn actor_kind(display: &str, path: &str) -> ActorType {
    let method = display.split('-').next().unwrap_or(display);
    match method {
        "userpass" | "ldap" | "oidc" | "okta" | "github" | "radius" | "saml" => ActorType::Human,
        "root" => ActorType::Human,
        "" if path.starts_with("auth/userpass") || path.starts_with("auth/oidc") => {
            ActorType::Human
        }
        _ => ActorType::Service,
    }
}

/// The actor id for a token's display name. Some auth methods give every token the bare
/// method name (AppRole logins are all `approle`, tokens created without a name `token`),
/// so every service logging in that way would be one actor and their refusals one burst:
/// a bare name is qualified with the token's role (`approle-ci-runner`), else its entity.
fn qualified_display(display: &str, v: &Value) -> String {
    if display.contains('-') {
        return display.to_string();
    }
    let qualifier = [
        "auth.metadata.role_name",
        "auth.metadata.role",
        "auth.entity_id",
    ]
    .iter()
    .map(|k| s(v, k))
    .find(|x| !x.is_empty());
    match qualifier {
        Some(q) => format!("{display}-{q}"),
        None => display.to_string(),
    }
}

/// Maps one audit entry (a request or a response half) to one event.
pub fn map_entry(v: &Value, index: usize, out: &mut Mapped) {
    let kind = s(v, "type");
    if kind.is_empty() {
        out.reject(
            index,
            "type",
            "a Vault audit entry is a request or a response",
        );
        return;
    }
    let Some(time) = at(v, "time").and_then(parse_time) else {
        out.reject(index, "time", "missing or not an RFC 3339 time");
        return;
    };
    let request_id = s(v, "request.id");
    let id = if request_id.is_empty() {
        format!(
            "vault:{}",
            content_id(&serde_json::to_vec(v).unwrap_or_default())
        )
    } else {
        format!("vault:{request_id}:{kind}")
    };
    let path = s(v, "request.path");
    let op = s(v, "request.operation");
    let mount_type = match s(v, "request.mount_type") {
        m if m.is_empty() => s(v, "response.mount_type"),
        m => m,
    };
    let error = s(v, "error");
    let display = s(v, "auth.display_name");
    let entity = s(v, "auth.entity_id");
    let who_id = if !display.is_empty() {
        qualified_display(&display, v)
    } else if !entity.is_empty() {
        entity.clone()
    } else if path.starts_with("auth/") {
        // A login has no token yet: the caller is only known by address.
        format!("vault-client:{}", s(v, "request.remote_address"))
    } else {
        "vault-anonymous".to_string()
    };
    let action = action_for(&kind, &op, &path, &mount_type, &error);
    let namespace = s(v, "request.namespace.path");
    let system = match namespace.trim_matches('/') {
        "" => "vault".to_string(),
        ns => format!("vault/{ns}"),
    };
    let mut e = event(
        SRC,
        id,
        time,
        actor(
            &who_id,
            actor_kind(&display, &path),
            if display.is_empty() {
                &display
            } else {
                &who_id
            },
        ),
        &system,
        &action,
    );
    e.resource = path.clone();
    e.environment = guess_environment([path.as_str(), namespace.as_str()]);
    set(&mut e, "source_event", kind.clone());
    set(&mut e, "vault.type", kind.clone());
    set(&mut e, "request.id", request_id);
    set(&mut e, "operation", op.clone());
    set(&mut e, "path", path.clone());
    set(&mut e, "mount.type", mount_type);
    set(
        &mut e,
        "mount.point",
        match s(v, "request.mount_point") {
            m if m.is_empty() => s(v, "response.mount_point"),
            m => m,
        },
    );
    set(&mut e, "ip", s(v, "request.remote_address"));
    set(&mut e, "namespace", namespace);
    set(
        &mut e,
        "outcome",
        if error.is_empty() {
            "success"
        } else {
            "failure"
        },
    );
    set(
        &mut e,
        "error",
        error.trim().replace("\n\t* ", " ").replace('\n', " "),
    );
    set(
        &mut e,
        "auth.policies",
        strings(v, "auth.policies").join(","),
    );
    set(
        &mut e,
        "auth.token_policies",
        strings(v, "auth.token_policies").join(","),
    );
    set(&mut e, "auth.token_type", s(v, "auth.token_type"));
    set(&mut e, "auth.entity_id", entity);
    set(&mut e, "auth.accessor", s(v, "auth.accessor"));
    set(&mut e, "auth.client_token", s(v, "auth.client_token"));
    if let Some(meta) = at(v, "auth.metadata").and_then(Value::as_object) {
        for (k, x) in meta.iter().take(16) {
            set(&mut e, &format!("auth.metadata.{k}"), x.clone());
        }
    }
    if let Some(ttl) = u(v, "auth.token_ttl") {
        set(&mut e, "auth.token_ttl", ttl);
    }
    if action == "token.created" || action == "auth.login" {
        set(
            &mut e,
            "granted.policies",
            strings(v, "response.auth.policies").join(","),
        );
    }
    if let Some(keys) = at(v, "response.data.keys").and_then(Value::as_array) {
        set(&mut e, "response.keys", keys.len() as u64);
        e.volume = Some(Volume {
            rows: Some(keys.len() as u64),
            ..Volume::default()
        });
    }
    out.push(index, e);
}

#[cfg(test)]
mod tests {

    #[test]
    fn socket_peers_are_addresses_or_networks() {
        let c = |peers: &[&str]| VaultConfig {
            socket_listen: String::new(),
            socket_peers: peers.iter().map(|p| p.to_string()).collect(),
            socket_idle_secs: 600,
        };
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert!(c(&[]).peer_allowed(ip("203.0.113.9")).unwrap());
        let net = c(&["10.0.4.0/24", "192.0.2.7"]);
        assert!(net.peer_allowed(ip("10.0.4.200")).unwrap());
        assert!(net.peer_allowed(ip("192.0.2.7")).unwrap());
        assert!(net.peer_allowed(ip("::ffff:10.0.4.1")).unwrap());
        assert!(!net.peer_allowed(ip("10.0.5.1")).unwrap());
        assert!(!net.peer_allowed(ip("127.0.0.1")).unwrap());
        assert!(c(&["10.0.0.0/33"]).peer_allowed(ip("10.0.0.1")).is_err());
        assert!(c(&["10.0.0.0/8", "fd00::/8"]).validate().is_ok());
        assert!(c(&["fd00::/129"]).validate().is_err());
        assert!(c(&["10.0.0.0/33"]).validate().is_err());
        assert!(c(&["vault.internal"]).validate().is_err());
        assert!(c(&["vault.internal"]).peer_allowed(ip("10.0.0.1")).is_err());
    }

    use super::*;

    #[test]
    fn actions_follow_path_operation_and_outcome() {
        assert_eq!(
            action_for("response", "read", "secret/data/prod/db", "kv", ""),
            "secret.read"
        );
        assert_eq!(
            action_for(
                "response",
                "read",
                "secret/data/prod/db",
                "kv",
                "1 error occurred:\n\t* permission denied\n\n"
            ),
            "secret.permission_denied"
        );
        assert_eq!(
            action_for("request", "read", "secret/data/x", "kv", ""),
            "vault.request"
        );
        assert_eq!(
            action_for(
                "response",
                "read",
                "database/creds/readonly",
                "database",
                ""
            ),
            "credential.issued"
        );
        assert_eq!(
            action_for("response", "update", "auth/approle/login", "approle", ""),
            "auth.login"
        );
        assert_eq!(
            action_for("response", "delete", "sys/audit/file", "system", ""),
            "audit.disabled"
        );
        assert_eq!(
            action_for("response", "update", "transit/decrypt/k", "transit", ""),
            "vault.update"
        );
        assert_eq!(action_for("weird", "", "", "", ""), "vault.weird");
    }
}
