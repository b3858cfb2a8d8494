//! Okta System Log: `POST /v1/ingest/okta` (event hooks, or a JSON array as the System
//! Log API `GET /api/v1/logs` returns it) and `GET /v1/ingest/okta` (the event hook's
//! one-time verification: `X-Okta-Verification-Challenge` echoed as `{"verification"}`).
//!
//! Event hooks carry `[okta] authorization` in the `Authorization` header (Okta's
//! "Authentication field"/"secret"). Ids are `okta:<uuid>`, so an event delivered by the
//! hook and again by a System Log back-fill is stored once. Okta counts only 200/204 as
//! delivered, so this endpoint answers 200 (with the usual report body).

use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::adapter::{
    check_token, header, Adapter, Delivery, IngestError, Mapped, Memory, SourceAuth,
};
use super::map::{
    actor, at, event, json_body, keep_payload, parse_time, s, set, unknown_action, PAYLOAD_BUDGET,
};
use plumbline_event::{ActorType, Source};

const SRC: Source = Source::Okta;

/// The prefix the event's own fields are kept under (docs/packs.md, "Sigma rules").
pub const RAW: &str = "raw";

/// `[okta]`: the event hook's authorization header value, and whether the one-time
/// verification GET is answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OktaConfig {
    pub authorization: String,
    pub verification: bool,
}

/// Okta event hooks (with their verification handshake) and System Log back-fills.
pub struct OktaAdapter {
    config: OktaConfig,
}

impl OktaAdapter {
    pub fn new(config: OktaConfig) -> Self {
        OktaAdapter { config }
    }
}

impl Adapter for OktaAdapter {
    fn source(&self) -> Source {
        SRC
    }

    fn verify(&self, headers: &HeaderMap, _body: &[u8]) -> SourceAuth {
        check_token(
            &self.config.authorization,
            [header(headers, "authorization")],
            "Authorization header",
        )
    }

    fn map(&self, d: &Delivery<'_>, _memory: &dyn Memory) -> Result<Mapped, IngestError> {
        let payload = json_body(d.body)?;
        let events: Vec<&Value> = match &payload {
            Value::Array(a) => a.iter().collect(),
            Value::Object(_) if at(&payload, "data.events").is_some() => at(&payload, "data.events")
                .and_then(Value::as_array)
                .map(|a| a.iter().collect())
                .ok_or_else(|| IngestError::malformed("data.events", "an event hook delivery carries a list of events"))?,
            Value::Object(_) if at(&payload, "eventType").is_some() && at(&payload, "uuid").is_some() => {
                vec![&payload]
            }
            _ => {
                return Err(IngestError::malformed(
                    "data.events",
                    "expected an Okta event hook delivery ({\"data\": {\"events\": [...]}}), a System Log array, or one System Log event",
                ))
            }
        };
        let mut out = Mapped::default();
        for (i, e) in events.into_iter().enumerate() {
            map_event(e, i, &mut out);
        }
        Ok(out)
    }

    /// Okta counts only 200/204 as delivered.
    fn success(&self) -> StatusCode {
        StatusCode::OK
    }

    fn has_handshake(&self) -> bool {
        true
    }

    /// The one-time verification request Okta sends when an event hook is created:
    /// `X-Okta-Verification-Challenge` echoed as `{"verification": …}`.
    fn handshake(&self, headers: &HeaderMap) -> Result<Value, IngestError> {
        if !self.config.verification {
            return Err(IngestError::NotFound(
                "event hook verification is turned off ([okta] verification = false)".into(),
            ));
        }
        let challenge = header(headers, "x-okta-verification-challenge").ok_or_else(|| {
            IngestError::malformed("X-Okta-Verification-Challenge", "header is missing")
        })?;
        Ok(json!({ "verification": challenge }))
    }
}

fn action_for(event_type: &str, failed: bool) -> String {
    let a = match event_type {
        "user.session.start" if failed => "auth.login.failed",
        "user.session.start" => "auth.login",
        "user.authentication.sso" if failed => "auth.sso.failed",
        "user.authentication.sso" => "auth.sso",
        "user.session.end" => "auth.logout",
        "user.account.privilege.grant" | "group.privilege.grant" => "admin.role.granted",
        "user.account.privilege.revoke" | "group.privilege.revoke" => "admin.role.revoked",
        "group.user_membership.add" => "member.added",
        "group.user_membership.remove" => "member.removed",
        "application.user_membership.add" => "app.access.granted",
        "application.user_membership.remove" => "app.access.revoked",
        "app.oauth2.as.consent.grant" => "app.authorized",
        "app.oauth2.as.consent.revoke" => "app.authorization.revoked",
        "system.api_token.create" => "api_key.created",
        "system.api_token.revoke" => "api_key.revoked",
        "user.mfa.factor.deactivate" | "user.mfa.factor.reset_all" => "mfa.factor.removed",
        "user.mfa.factor.activate" => "mfa.factor.added",
        "policy.lifecycle.update" | "policy.rule.update" => "policy.changed",
        "policy.lifecycle.deactivate" | "policy.rule.deactivate" => "policy.disabled",
        "policy.lifecycle.delete" | "policy.rule.delete" => "policy.deleted",
        "user.lifecycle.create" => "user.created",
        "user.lifecycle.activate" => "user.activated",
        "user.lifecycle.deactivate" => "user.deactivated",
        "user.lifecycle.suspend" => "user.suspended",
        "user.account.reset_password" | "user.account.update_password" => "password.reset",
        "application.lifecycle.create" => "app.created",
        "security.threat.detected" => "security.threat.detected",
        // Okta Support access to the org (an admin's grant) and the impersonation
        // sessions it allows, in which changes are made as the impersonated admin.
        "user.session.impersonation.grant" => "support.access.granted",
        "user.session.impersonation.extend" => "support.access.extended",
        "user.session.impersonation.revoke" => "support.access.revoked",
        "user.session.impersonation.initiate" => "impersonation.started",
        "user.session.impersonation.end" => "impersonation.ended",
        other => return unknown_action(SRC, other),
    };
    a.to_string()
}

fn map_event(v: &Value, index: usize, out: &mut Mapped) {
    let uuid = s(v, "uuid");
    if uuid.is_empty() {
        out.reject(index, "uuid", "an Okta System Log event carries its uuid");
        return;
    }
    let Some(time) = at(v, "published").and_then(parse_time) else {
        out.reject(index, "published", "missing or not an ISO 8601 time");
        return;
    };
    let event_type = s(v, "eventType");
    if event_type.is_empty() {
        out.reject(
            index,
            "eventType",
            "an Okta System Log event names its type",
        );
        return;
    }
    let result = s(v, "outcome.result");
    let failed = matches!(result.as_str(), "FAILURE" | "DENY");
    let action = action_for(&event_type, failed);
    let kind = match s(v, "actor.type").as_str() {
        "User" => ActorType::Human,
        _ => ActorType::Service,
    };
    let who = match s(v, "actor.alternateId") {
        a if a.is_empty() || a == "unknown" => s(v, "actor.id"),
        a => a,
    };
    let mut e = event(
        SRC,
        format!("okta:{uuid}"),
        time,
        actor(&who, kind, &s(v, "actor.displayName")),
        "okta",
        &action,
    );
    let targets: Vec<&Value> = at(v, "target")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    if let Some(t) = targets.first() {
        e.resource = match s(t, "alternateId") {
            a if a.is_empty() || a == "unknown" => s(t, "displayName"),
            a => a,
        };
    }
    set(&mut e, "source_event", event_type.clone());
    set(&mut e, "display_message", s(v, "displayMessage"));
    set(&mut e, "severity", s(v, "severity"));
    set(&mut e, "outcome", result.to_ascii_lowercase());
    set(&mut e, "outcome.reason", s(v, "outcome.reason"));
    set(&mut e, "actor.okta_id", s(v, "actor.id"));
    set(&mut e, "actor.okta_type", s(v, "actor.type"));
    set(&mut e, "ip", s(v, "client.ipAddress"));
    set(&mut e, "user_agent", s(v, "client.userAgent.rawUserAgent"));
    set(
        &mut e,
        "geo.country",
        s(v, "client.geographicalContext.country"),
    );
    set(&mut e, "geo.city", s(v, "client.geographicalContext.city"));
    set(&mut e, "client.zone", s(v, "client.zone"));
    set(
        &mut e,
        "auth.provider",
        s(v, "authenticationContext.authenticationProvider"),
    );
    set(
        &mut e,
        "auth.credential_type",
        s(v, "authenticationContext.credentialType"),
    );
    set(
        &mut e,
        "session.id",
        s(v, "authenticationContext.externalSessionId"),
    );
    set(&mut e, "transaction.id", s(v, "transaction.id"));
    set(
        &mut e,
        "client.proxy",
        at(v, "securityContext.isProxy")
            .cloned()
            .unwrap_or(Value::Null),
    );
    for (i, t) in targets.iter().take(5).enumerate() {
        set(&mut e, &format!("target.{i}.type"), s(t, "type"));
        set(&mut e, &format!("target.{i}.id"), s(t, "id"));
        set(
            &mut e,
            &format!("target.{i}.alternate_id"),
            s(t, "alternateId"),
        );
        set(
            &mut e,
            &format!("target.{i}.display_name"),
            s(t, "displayName"),
        );
    }
    // The role granted, the app and group involved, where Okta says.
    let debug = at(v, "debugContext.debugData")
        .cloned()
        .unwrap_or(Value::Null);
    set(&mut e, "privilege", s(&debug, "privilegeGranted"));
    for t in &targets {
        match s(t, "type").as_str() {
            "AppInstance" => set(&mut e, "app", s(t, "displayName")),
            "UserGroup" => set(&mut e, "group", s(t, "displayName")),
            "User" if e.resource != s(t, "alternateId") => {
                set(&mut e, "subject", s(t, "alternateId"))
            }
            _ => {}
        }
    }
    if action.starts_with("okta.") {
        keep_payload(&mut e, "debug", &debug, 40);
    } else {
        for k in ["requestUri", "url", "grantedScopes", "behaviors", "risk"] {
            set(&mut e, &format!("debug.{k}"), s(&debug, k));
        }
    }
    // The event itself under `raw.` (Okta's own field names: `raw.eventType`,
    // `raw.outcome.result`, `raw.debugContext.debugData.*`, …), for rules written against
    // the System Log's format (Sigma). Bounded; ingest's redaction pass still runs over
    // every value.
    keep_payload(&mut e, RAW, v, PAYLOAD_BUDGET);
    out.push(index, e);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_decides_login_actions() {
        assert_eq!(action_for("user.session.start", false), "auth.login");
        assert_eq!(action_for("user.session.start", true), "auth.login.failed");
        assert_eq!(
            action_for("user.account.privilege.grant", false),
            "admin.role.granted"
        );
        assert_eq!(
            action_for("user.session.impersonation.initiate", false),
            "impersonation.started"
        );
        assert_eq!(
            action_for("zone.make_blocklist", false),
            "okta.zone.make_blocklist"
        );
    }
}
