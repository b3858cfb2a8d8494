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
//!
//! Incremental (`plumbline:detector@0.2.0`): the state holds one summary per grant that
//! could be administrative (id, time, who, the role or token policies, the grantee — not
//! the event), judged again on every call.

use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

use plumbline_sdk::kept::{self, text};

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

/// Most grants kept (the oldest dropped first): one finding each at most, and the host
/// takes at most 100 findings per answer by default.
const MAX_KEPT: usize = 100;

/// What the detector remembers of a trajectory: the grants, in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Grants {
    seen: Vec<Grant>,
}

/// One grant event that could be administrative: what its finding needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Grant {
    t: i64,
    id: String,
    /// The actor's id (provisioning accounts, planned work) and how a reviewer reads them.
    actor: String,
    who: String,
    system: String,
    what: What,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
enum What {
    /// `token.created`: the policies it carries and the token.
    Token {
        policies: Vec<String>,
        token: String,
    },
    /// A role, permission or membership granted.
    Role {
        role: String,
        /// `admin.role.granted`, or the event says `admin: true`.
        admin: bool,
        /// The event does not say the permission did not go up (`escalated: false`).
        escalated: bool,
        grantee: Option<String>,
        self_granted: bool,
    },
}

kept::record!(Grant);

impl Grant {
    /// The grant `e` records, unless it can never be administrative whatever the config.
    fn of(e: &Event) -> Option<Grant> {
        let what = if e.is("token.created") {
            let policies: Vec<String> = attr_list(e, "granted.policies")
                .iter()
                .map(|p| text(p))
                .collect();
            if policies.is_empty() {
                return None;
            }
            What::Token {
                policies,
                token: text(&e.resource),
            }
        } else {
            let role =
                attr_text(e, &["privilege", "permission", "role", "policy", "group"]).unwrap_or("");
            let admin = e.is("admin.role.granted") || e.attr_bool("admin") == Some(true);
            let escalated = e.attr_bool("escalated") != Some(false);
            // A permission change counts only when it went up.
            if (!admin && (!escalated || role.is_empty()))
                || (e.is("member.permission.changed") && !escalated)
            {
                return None;
            }
            let grantee = grantee(e);
            What::Role {
                role: text(role),
                admin,
                escalated,
                grantee: grantee.map(text),
                self_granted: grantee.is_some_and(|g| is_actor(e, g)),
            }
        };
        Some(Grant {
            t: e.time,
            id: e.id.clone(),
            actor: text(&e.actor.id),
            who: text(who(e)),
            system: text(&e.system),
            what,
        })
    }
}

#[derive(Default)]
pub struct AdminGrant;

impl IncrementalDetector for AdminGrant {
    type State = Grants;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Policy>()?;
        Ok(())
    }

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

    fn observe(
        &self,
        state: &mut Grants,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let new = new_events
            .iter()
            .filter(|e| GRANTS.iter().any(|a| e.is(a)))
            .filter_map(Grant::of);
        kept::fold(&mut state.seen, new, MAX_KEPT, kept::BUDGET);
        kept::prune(&mut state.seen, cx);

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
        for g in &state.seen {
            let routine = provisioning.iter().any(|p| glob::matches(p, &g.actor))
                || (policy.is_service_account(&g.actor) && policy.windows.contains(g.t));
            let finding = match &g.what {
                What::Token { policies, token } => {
                    admin_token(g, policies, token, &is_admin, routine)
                }
                What::Role {
                    role,
                    admin,
                    escalated,
                    grantee,
                    self_granted,
                } => {
                    if !(*admin || (*escalated && is_admin(role))) {
                        continue;
                    }
                    Some(role_grant(
                        g,
                        role,
                        grantee.as_deref(),
                        *self_granted,
                        routine,
                    ))
                }
            };
            findings.extend(finding);
        }
        Ok(findings)
    }
}

register_incremental_detector!(AdminGrant);

/// A role granted: who gave what to whom.
fn role_grant(
    g: &Grant,
    role: &str,
    grantee: Option<&str>,
    self_granted: bool,
    routine: bool,
) -> Finding {
    let (signal, severity) = match (self_granted, routine) {
        (_, true) => (
            if self_granted { SELF } else { GRANTED },
            Severity::Informational,
        ),
        (true, false) => (SELF, Severity::Urgent),
        (false, false) => (GRANTED, Severity::NeedsReview),
    };
    let (who, system) = (&g.who, &g.system);
    let to = grantee.unwrap_or("someone");
    let what = if role.is_empty() { "admin" } else { role };
    let line = if self_granted {
        format!("{who} granted themselves {what} on {system}")
    } else {
        format!("{who} granted {what} to {to} on {system}")
    };
    let next = if self_granted {
        format!(
            "Revoke {what} from {who} now unless a second admin confirms the change was requested; review what they did with it"
        )
    } else {
        format!(
            "Confirm with {to}'s manager and {who} that the {what} grant was requested and approved; remove it if not"
        )
    };
    Finding::new(signal, severity, title(line))
        .evidence_ids([g.id.clone()])
        .score(if self_granted { 0.9 } else { 0.6 })
        .next_step(next)
}

/// A token created with an administrative policy: the new credential is the grantee.
fn admin_token(
    g: &Grant,
    granted: &[String],
    token: &str,
    is_admin: &dyn Fn(&str) -> bool,
    routine: bool,
) -> Option<Finding> {
    let admin: Vec<&str> = granted
        .iter()
        .map(String::as_str)
        .filter(|p| is_admin(p))
        .collect();
    if admin.is_empty() {
        return None;
    }
    let what = admin.join(", ");
    let (who, system) = (&g.who, &g.system);
    Some(
        Finding::new(
            GRANTED,
            if routine {
                Severity::Informational
            } else {
                Severity::NeedsReview
            },
            title(format!(
                "{who} created a token carrying the {what} policy on {system} ({token})"
            )),
        )
        .evidence_ids([g.id.clone()])
        .score(0.6)
        .next_step(format!(
            "Ask {who} what the {what} token is for and where it is kept; revoke it by its accessor if nobody needs it"
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
    use super::AdminGrant;
    use plumbline_sdk::testing::feed;

    plumbline_sdk::testing::incremental_fixture_tests!(AdminGrant);

    /// Many admin grants with huge role names: the answer stays under the host's 100
    /// findings, the newest kept.
    #[test]
    fn state_stays_bounded() {
        let f = feed::load(FIXTURES, "positive-okta-self-grant.json");
        let found = feed::flood::<AdminGrant>(&f, "okta:g1", 300);
        feed::newest_kept(&found);
    }
}
