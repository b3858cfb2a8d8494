//! New administrative power: an admin role, an escalation to admin/owner/maintain on a
//! repository or organisation, AdministratorAccess on an IAM principal. Needs review;
//! self-granted (the grantee is the actor) is urgent.
//!
//! A Vault token created with an administrative policy (`token.created`, `granted.policies`)
//! is a new admin credential too: whoever holds it has that power, often for weeks and
//! outside SSO (an orphan token outlives its creator's session).
//!
//! Grants applied by provisioning accounts (SCIM, Terraform: `provisioning_accounts`) carry
//! approved access requests and are informational, as is planned work in a change window.
//! Read on actor trajectories (who granted).

use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

const GRANTED: &str = "cred.admin_granted";
const SELF: &str = "cred.admin_self_granted";

const GRANTS: [&str; 7] = [
    "admin.role.granted",
    "member.permission.changed",
    "member.added",
    "team.permission.changed",
    "role.assigned",
    "team.member.added",
    "token.created",
];

#[derive(Default)]
pub struct AdminGrant;

impl Detector for AdminGrant {
    fn info() -> Info {
        let info = Info::new(
            "credential-abuse.admin-grant",
            "0.1.0",
            "New admin grants (roles, repository/org admin, IAM AdministratorAccess), especially self-granted",
        )
        .actions(&GRANTS)
        .views(&[TrajectoryKind::Actor])
        .signals(&[GRANTED, SELF])
        .config(
            "admin_roles",
            "admin,administrator,owner,maintain,maintainer,super*,*admin*,root",
            "Role / permission names (globs) that are administrative",
        )
        .config(
            "provisioning_accounts",
            "",
            "Accounts (comma-separated globs) that apply approved access requests, e.g. SCIM or Terraform",
        );
        keys::planned_work(info)
    }

    fn analyze(&self, t: &Trajectory, cx: &Context) -> Result<Vec<Finding>, AnalyzeError> {
        let admin_roles = cx.config_list("admin_roles");
        let provisioning = cx.config_list("provisioning_accounts");
        let policy = cx.settings::<Policy>()?;
        let is_admin = |r: &str| {
            !r.is_empty()
                && admin_roles
                    .iter()
                    .any(|p| glob::matches_ignore_ascii_case(p, r))
        };

        let mut findings = Vec::new();
        for e in t.with_any_action(&GRANTS) {
            if e.is("token.created") {
                findings.extend(admin_token(e, &is_admin, &provisioning, &policy));
                continue;
            }
            let role =
                attr_text(e, &["privilege", "permission", "role", "policy", "group"]).unwrap_or("");
            let admin = e.is("admin.role.granted")
                || (e.attr_bool("escalated") != Some(false) && is_admin(role))
                || e.attr_bool("admin") == Some(true);
            // A permission change counts only when it went up.
            if !admin
                || (e.is("member.permission.changed") && e.attr_bool("escalated") == Some(false))
            {
                continue;
            }
            let grantee = grantee(e);
            let self_granted = grantee.is_some_and(|g| is_actor(e, g));
            let routine =
                provisioning.iter().any(|p| glob::matches(p, &e.actor.id)) || policy.is_planned(e);
            let (signal, severity) = match (self_granted, routine) {
                (_, true) => (
                    if self_granted { SELF } else { GRANTED },
                    Severity::Informational,
                ),
                (true, false) => (SELF, Severity::Urgent),
                (false, false) => (GRANTED, Severity::NeedsReview),
            };
            let to = grantee.unwrap_or("someone");
            let what = if role.is_empty() {
                "admin".to_string()
            } else {
                role.to_string()
            };
            let line = if self_granted {
                format!("{} granted themselves {what} on {}", who(e), e.system)
            } else {
                format!("{} granted {what} to {to} on {}", who(e), e.system)
            };
            let next = if self_granted {
                format!(
                    "Revoke {what} from {} now unless a second admin confirms the change was requested; review what they did with it",
                    who(e)
                )
            } else {
                format!(
                    "Confirm with {to}'s manager and {} that the {what} grant was requested and approved; remove it if not",
                    who(e)
                )
            };
            findings.push(
                Finding::new(signal, severity, title(line))
                    .evidence([e])
                    .score(if self_granted { 0.9 } else { 0.6 })
                    .next_step(next),
            );
        }
        Ok(findings)
    }
}

register_detector!(AdminGrant);

/// A token created with an administrative policy: the new credential is the grantee.
fn admin_token(
    e: &Event,
    is_admin: &dyn Fn(&str) -> bool,
    provisioning: &[String],
    policy: &Policy,
) -> Option<Finding> {
    let granted = attr_list(e, "granted.policies");
    let admin: Vec<&str> = granted
        .iter()
        .map(String::as_str)
        .filter(|p| is_admin(p))
        .collect();
    if admin.is_empty() {
        return None;
    }
    let routine =
        provisioning.iter().any(|p| glob::matches(p, &e.actor.id)) || policy.is_planned(e);
    let what = admin.join(", ");
    Some(
        Finding::new(
            GRANTED,
            if routine {
                Severity::Informational
            } else {
                Severity::NeedsReview
            },
            title(format!(
                "{} created a token carrying the {what} policy on {} ({})",
                who(e),
                e.system,
                e.resource
            )),
        )
        .evidence([e])
        .score(0.6)
        .next_step(format!(
            "Ask {} what the {what} token is for and where it is kept; revoke it by its accessor if nobody needs it",
            who(e)
        )),
    )
}

/// Who received the grant, where the event says.
fn grantee(e: &Event) -> Option<&str> {
    attr_text(e, &["member", "subject", "target.0.alternate_id"])
        .or_else(|| (!e.resource.is_empty()).then_some(e.resource.as_str()))
}

/// True if `id` names the actor: their id, display name, or a part of an ARN or path
/// (`arn:aws:iam::1:user/alice` is `alice`; a session of `assumed-role/DevRole/…` acts as
/// `DevRole`, so attaching a policy to DevRole grants it to itself).
fn is_actor(e: &Event, id: &str) -> bool {
    let id = id.trim();
    if id.is_empty() {
        return false;
    }
    if e.actor.id.contains('/')
        && e.actor
            .id
            .split('/')
            .skip(1)
            .any(|seg| seg.eq_ignore_ascii_case(id))
    {
        return true;
    }
    let tail = |s: &str| s.rsplit(['/', ':']).next().unwrap_or(s).to_string();
    let candidates = [
        e.actor.id.clone(),
        e.actor.display.clone(),
        tail(&e.actor.id),
    ];
    candidates
        .iter()
        .any(|c| !c.is_empty() && (c.eq_ignore_ascii_case(id) || c.eq_ignore_ascii_case(&tail(id))))
}

#[cfg(test)]
mod tests {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

    #[test]
    fn show() {
        plumbline_sdk::testing::show_findings::<super::AdminGrant>(FIXTURES);
    }

    #[test]
    fn fixtures() {
        plumbline_sdk::testing::run_fixtures::<super::AdminGrant>(FIXTURES);
    }
}
