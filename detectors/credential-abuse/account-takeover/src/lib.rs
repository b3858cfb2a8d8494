//! Someone else's account opened up: an administrator removes another person's MFA factors
//! (Okta's "reset all factors", a security key deactivated by the help desk), and a support
//! or impersonation session changes the organisation as the impersonated administrator.
//!
//! - MFA removed from someone else's account: needs review (the help-desk path should
//!   have a ticket). Followed within `takeover_minutes` by that account signing in or
//!   enrolling a new factor through an anonymising proxy, or from another country than the
//!   reset was made from: urgent (the reset was the way in).
//! - An impersonation session (Okta Support access) during which privileged changes are
//!   made — admin grants, API tokens, MFA resets, policy changes: urgent. A session, or a
//!   support-access grant, with nothing privileged in it: informational.
//!
//! Removing one's own factor (a new phone) is not raised. Planned work (a listed service
//! account inside a change window) is informational. Read on system trajectories: the
//! reset and the sign-in that follows are different people's events on one system.

use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const MFA_RESET: &str = "cred.mfa_reset_for_other";
const TAKEOVER: &str = "cred.mfa_reset_then_takeover";
const IMPERSONATION: &str = "cred.impersonation_session";

const RESETS: [&str; 1] = ["mfa.factor.removed"];
const FOLLOW_UPS: [&str; 4] = [
    "auth.login",
    "auth.sso",
    "mfa.factor.added",
    "password.reset",
];
const GRANTS: [&str; 2] = ["support.access.granted", "support.access.extended"];

#[derive(Default)]
pub struct AccountTakeover;

impl Detector for AccountTakeover {
    fn info() -> Info {
        let info = Info::new(
            "credential-abuse.account-takeover",
            "0.1.0",
            "MFA removed from someone else's account (then used from elsewhere); privileged changes inside impersonation sessions",
        )
        .actions(&[
            "mfa.factor.removed",
            "mfa.factor.added",
            "auth.login",
            "auth.sso",
            "password.reset",
            "support.access.granted",
            "support.access.extended",
            "impersonation.started",
            "impersonation.ended",
        ])
        .views(&[TrajectoryKind::System])
        .signals(&[MFA_RESET, TAKEOVER, IMPERSONATION])
        .config(
            "takeover_minutes",
            "120",
            "How long after a reset a sign-in or enrolment of that account still belongs to it",
        )
        .config(
            "session_minutes",
            "240",
            "How long an impersonation session is taken to last when its end is not seen",
        )
        .config(
            "privileged_actions",
            "admin.role.granted,api_key.created,mfa.factor.removed,password.reset,policy.changed,policy.disabled,policy.deleted,app.created,app.access.granted,member.added,user.created,credential.scope.increased",
            "Actions (globs) that count as privileged changes inside an impersonation session",
        );
        keys::planned_work(info)
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let takeover = cx.config_parsed::<i64>("takeover_minutes")? * 60_000_000_000;
        let session = cx.config_parsed::<i64>("session_minutes")? * 60_000_000_000;
        let privileged = cx.config_list("privileged_actions");
        let policy = cx.settings::<Policy>()?;

        let mut findings = Vec::new();
        for reset in t.with_any_action(&RESETS) {
            let whose = reset.resource.as_str();
            if whose.is_empty() || same_person(reset, whose) {
                continue;
            }
            // Every later use of the account is judged, so a harmless sign-in from the
            // office right after the reset cannot hide the one from elsewhere.
            let suspicious: Vec<&Event> = t
                .with_any_action(&FOLLOW_UPS)
                .filter(|f| f.time >= reset.time && f.time - reset.time <= takeover)
                .filter(|f| same_person(f, whose) || f.resource == whose)
                .filter(|f| f.attr_str("outcome") != Some("failure"))
                .filter(|f| from_elsewhere(f, reset))
                .collect();
            let planned = policy.is_planned(reset);
            let (signal, severity) = match (planned, suspicious.is_empty()) {
                (true, _) => (MFA_RESET, Severity::Informational),
                (false, true) => (MFA_RESET, Severity::NeedsReview),
                (false, false) => (TAKEOVER, Severity::Urgent),
            };
            let line = if suspicious.is_empty() {
                format!(
                    "{} removed MFA factors of {whose} on {}",
                    who(reset),
                    reset.system
                )
            } else {
                let place = place_of(suspicious[0]);
                format!(
                    "{} removed MFA factors of {whose}; {} min later the account was used from {place}",
                    who(reset),
                    (suspicious[0].time - reset.time) / 60_000_000_000
                )
            };
            let next = if suspicious.is_empty() {
                format!(
                    "Ask {} for the ticket behind resetting {whose}'s MFA and confirm with {whose} directly that they asked for it",
                    who(reset)
                )
            } else {
                format!(
                    "Suspend {whose} and end their sessions now, then confirm with {whose} by phone; ask {} why the factors were reset",
                    who(reset)
                )
            };
            let mut evidence = vec![reset];
            evidence.extend(suspicious.iter().copied());
            findings.push(
                Finding::new(signal, severity, title(line))
                    .evidence(evidence)
                    .score(if suspicious.is_empty() { 0.6 } else { 0.9 })
                    .next_step(next),
            );
        }

        let starts: Vec<&Event> = t.with_action("impersonation.started").collect();
        for start in &starts {
            let end = t
                .with_action("impersonation.ended")
                .filter(|e| e.time >= start.time && e.resource == start.resource)
                .map(|e| e.time)
                .next()
                .unwrap_or(start.time + session);
            let grant = t
                .with_any_action(&GRANTS)
                .filter(|g| g.time <= start.time)
                .last();
            let changes: Vec<&Event> = t
                .events
                .iter()
                .filter(|e| e.time >= start.time && e.time <= end)
                .filter(|e| privileged.iter().any(|p| e.is(p)))
                .collect();
            let impersonated = start.resource.as_str();
            let mut evidence: Vec<&Event> = grant.into_iter().collect();
            evidence.push(start);
            evidence.extend(changes.iter().copied());
            let finding = if changes.is_empty() {
                Finding::new(
                    IMPERSONATION,
                    Severity::Informational,
                    title(format!(
                        "{} opened an impersonation session as {impersonated} on {}; nothing privileged changed",
                        who(start),
                        start.system
                    )),
                )
                .score(0.2)
                .next_step(format!(
                    "Check the support case behind the session and that the access grant was revoked afterwards ({impersonated})"
                ))
            } else {
                let what: Vec<String> = changes
                    .iter()
                    .take(4)
                    .map(|c| format!("{} {}", c.action, c.resource))
                    .collect();
                Finding::new(
                    IMPERSONATION,
                    if policy.is_planned(start) {
                        Severity::Informational
                    } else {
                        Severity::Urgent
                    },
                    title(format!(
                        "{} impersonated {impersonated} on {} and {} privileged change(s) followed: {}",
                        who(start),
                        start.system,
                        changes.len(),
                        what.join("; ")
                    )),
                )
                .score(0.9)
                .next_step(format!(
                    "Revoke the support access grant, undo {} and confirm with {impersonated} and the vendor's support case that these changes were requested",
                    what.join("; ")
                ))
            };
            findings.push(finding.evidence(evidence));
        }
        // A support-access grant no session used (yet): a digest line.
        for g in t.with_any_action(&GRANTS) {
            if starts.iter().any(|s| s.time >= g.time) {
                continue;
            }
            findings.push(
                Finding::new(
                    IMPERSONATION,
                    Severity::Informational,
                    title(format!(
                        "{} granted support access to {}",
                        who(g),
                        g.system
                    )),
                )
                .evidence([g])
                .score(0.2)
                .next_step(format!(
                    "Check {} has an open support case and that the grant is revoked when it closes",
                    who(g)
                )),
            );
        }
        Ok(findings)
    }
}

register_detector!(AccountTakeover);

/// True if the event's actor is `person` (by id or display name).
fn same_person(e: &Event, person: &str) -> bool {
    e.actor.id.eq_ignore_ascii_case(person) || e.actor.display.eq_ignore_ascii_case(person)
}

/// Whether a use of the account comes through an anonymising proxy, or from another
/// country than the reset was made from.
fn from_elsewhere(use_: &Event, reset: &Event) -> bool {
    if use_.attr_bool("client.proxy") == Some(true) {
        return true;
    }
    match (use_.attr_str("geo.country"), reset.attr_str("geo.country")) {
        (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => !a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

fn place_of(e: &Event) -> String {
    let ip = e.attr_str("ip").unwrap_or("an unknown address");
    let country = e.attr_str("geo.country").unwrap_or("");
    let proxy = if e.attr_bool("client.proxy") == Some(true) {
        ", an anonymising proxy"
    } else {
        ""
    };
    if country.is_empty() {
        format!("{ip}{proxy}")
    } else {
        format!("{ip} ({country}{proxy})")
    }
}

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::AccountTakeover>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::AccountTakeover>(FIXTURES);
    }
}
