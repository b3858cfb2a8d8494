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
//!
//! Incremental (`plumbline:detector@0.2.0`): the state holds summaries (not events) of the
//! resets of someone else's MFA, each with the later uses of that account from elsewhere;
//! of the impersonation sessions, each with the privileged changes inside it; of the
//! support-access grants; and of the session ends. Privileged changes are declared
//! actions (the default `privileged_actions`), matched as they arrive; `history` is read
//! only when a trigger arrives: a session's end (its whole window again, which also finds
//! configured privileged actions outside the declared ones), or a reset or session start
//! that arrives late (the events already given after it).

use plumbline_sdk::kit::{keys, Policy};
use plumbline_sdk::*;

use plumbline_sdk::kept::{self, text};

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
/// What the detector reads for its own rules: resets, uses, grants, sessions.
const ACTIONS: [&str; 9] = [
    "mfa.factor.removed",
    "mfa.factor.added",
    "auth.login",
    "auth.sso",
    "password.reset",
    "support.access.granted",
    "support.access.extended",
    "impersonation.started",
    "impersonation.ended",
];
/// The default `privileged_actions`, declared so they arrive as they happen.
const PRIVILEGED: [&str; 12] = [
    "admin.role.granted",
    "api_key.created",
    "mfa.factor.removed",
    "password.reset",
    "policy.changed",
    "policy.disabled",
    "policy.deleted",
    "app.created",
    "app.access.granted",
    "member.added",
    "user.created",
    "credential.scope.increased",
];

/// Most resets, sessions, grants and session ends kept, the oldest dropped first (a
/// trajectory with more is judged on its newest); most uses cited per reset and changes
/// per session (the first ones; the title still counts them all).
const MAX_RESETS: usize = 50;
const MAX_SESSIONS: usize = 50;
const MAX_GRANTS: usize = 50;
const MAX_ENDS: usize = 100;
const MAX_CITED: usize = 25;

/// What the detector remembers of a trajectory, each list in (time, id) order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
pub struct Seen {
    resets: Vec<Reset>,
    sessions: Vec<Session>,
    grants: Vec<Grant>,
    ends: Vec<End>,
    /// The latest time of the events given before: an event not after it is late.
    latest: Option<i64>,
}

/// MFA factors of someone else removed, with the uses of that account that followed it
/// from elsewhere.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Reset {
    t: i64,
    id: String,
    /// The actor's id (planned work) and how a reviewer reads them.
    actor: String,
    who: String,
    system: String,
    /// Whose factors.
    whose: String,
    country: Option<String>,
    /// Uses within `takeover_minutes` after it (the first [`MAX_CITED`]), in order.
    uses: Vec<Use>,
}

/// A sign-in, enrolment or password reset of the account through a proxy or from another
/// country than the reset.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Use {
    t: i64,
    id: String,
    ip: Option<String>,
    country: Option<String>,
    proxy: bool,
}

/// An impersonation session, with the privileged changes inside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Session {
    t: i64,
    id: String,
    actor: String,
    who: String,
    system: String,
    /// Who is impersonated (its end names them too).
    impersonated: String,
    /// When its end was seen (the earliest end of that session after its start).
    end: Option<i64>,
    /// The privileged changes inside it: the first [`MAX_CITED`] in order, and how many.
    changes: Vec<Change>,
    count: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Change {
    t: i64,
    id: String,
    action: String,
    resource: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct Grant {
    t: i64,
    id: String,
    who: String,
    system: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "plumbline_sdk::serde")]
struct End {
    t: i64,
    id: String,
    impersonated: String,
}

kept::record!(Reset, Session, Grant, End);

impl Reset {
    /// The reset `e` is, if it removed someone else's factors.
    fn of(e: &Event) -> Option<Reset> {
        let whose = e.resource.as_str();
        if whose.is_empty() || same_person(e, whose) {
            return None;
        }
        Some(Reset {
            t: e.time,
            id: e.id.clone(),
            actor: text(&e.actor.id),
            who: text(who(e)),
            system: text(&e.system),
            whose: whose.to_string(),
            country: e.attr_str("geo.country").map(text),
            uses: Vec::new(),
        })
    }

    /// Takes in `f` if it is a later use of the account from elsewhere, within `takeover`.
    fn take(&mut self, f: &Event, takeover: i64) {
        let whose = self.whose.as_str();
        let suspicious = f.time >= self.t
            && f.time - self.t <= takeover
            && (same_person(f, whose) || f.resource == whose)
            && f.attr_str("outcome") != Some("failure")
            && from_elsewhere(f, self.country.as_deref());
        if !suspicious || self.uses.iter().any(|u| u.id == f.id) {
            return;
        }
        let at = self
            .uses
            .partition_point(|u| (u.t, u.id.as_str()) < (f.time, f.id.as_str()));
        self.uses.insert(
            at,
            Use {
                t: f.time,
                id: f.id.clone(),
                ip: f.attr_str("ip").map(text),
                country: f.attr_str("geo.country").map(text),
                proxy: f.attr_bool("client.proxy") == Some(true),
            },
        );
        self.uses.truncate(MAX_CITED);
    }
}

impl Session {
    fn of(e: &Event, ends: &[End]) -> Session {
        let mut s = Session {
            t: e.time,
            id: e.id.clone(),
            actor: text(&e.actor.id),
            who: text(who(e)),
            system: text(&e.system),
            impersonated: e.resource.clone(),
            end: None,
            changes: Vec::new(),
            count: 0,
        };
        for end in ends {
            s.ended(end);
        }
        s
    }

    /// Takes in an end; true if it ends the session earlier than known before.
    fn ended(&mut self, end: &End) -> bool {
        let earlier = end.t >= self.t
            && end.impersonated == self.impersonated
            && self.end.is_none_or(|t| end.t < t);
        if earlier {
            self.end = Some(end.t);
        }
        earlier
    }

    /// Its end: seen, or `session` after its start.
    fn until(&self, session: i64) -> i64 {
        self.end.unwrap_or(self.t + session)
    }

    /// Takes in a privileged change if it falls inside the session.
    fn take(&mut self, c: &Event, session: i64) {
        if c.time < self.t
            || c.time > self.until(session)
            || self.changes.iter().any(|x| x.id == c.id)
        {
            return;
        }
        self.count += 1;
        let at = self
            .changes
            .partition_point(|x| (x.t, x.id.as_str()) < (c.time, c.id.as_str()));
        self.changes.insert(at, Change::of(c));
        self.changes.truncate(MAX_CITED);
    }
}

impl Change {
    fn of(e: &Event) -> Change {
        Change {
            t: e.time,
            id: e.id.clone(),
            action: e.action.clone(),
            resource: text(&e.resource),
        }
    }
}

#[derive(Default)]
pub struct AccountTakeover;

impl IncrementalDetector for AccountTakeover {
    type State = Seen;

    /// The settings every call reads, parsed once per loaded detector.
    fn prepare(cx: &Context) -> Result<(), AnalyzeError> {
        cx.settings::<Policy>()?;
        Ok(())
    }

    fn info() -> Info {
        // The privileged actions too: 0.2.0 gives only declared actions (0.1.0 read the
        // whole trajectory).
        let actions: Vec<&str> = ACTIONS
            .iter()
            .chain(PRIVILEGED.iter().filter(|p| !ACTIONS.contains(p)))
            .copied()
            .collect();
        let info = Info::new(
            "credential-abuse.account-takeover",
            "0.1.0",
            "MFA removed from someone else's account (then used from elsewhere); privileged changes inside impersonation sessions",
        )
        .actions(&actions)
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
            &PRIVILEGED.join(","),
            "Actions (globs) that count as privileged changes inside an impersonation session",
        );
        keys::planned_work(info)
    }

    fn observe(
        &self,
        seen: &mut Seen,
        new_events: &[Event],
        cx: &Context,
    ) -> Result<Vec<Finding>, AnalyzeError> {
        let takeover = cx.config_parsed::<i64>("takeover_minutes")? * 60_000_000_000;
        let session = cx.config_parsed::<i64>("session_minutes")? * 60_000_000_000;
        let privileged = cx.config_list("privileged_actions");
        let policy = cx.settings::<Policy>()?;
        let is_privileged = |e: &Event| privileged.iter().any(|p| e.is(p));
        // Late: not after every event given before (one at the same time may follow it).
        let late = |t: i64| seen.latest.is_some_and(|l| t <= l);
        let of = |actions: &'static [&'static str]| {
            new_events
                .iter()
                .filter(move |e| actions.iter().any(|a| e.is(a)))
        };

        // Grants and ends first: a session starting in this call looks its end up.
        kept::fold(
            &mut seen.grants,
            of(&GRANTS).map(|e| Grant {
                t: e.time,
                id: e.id.clone(),
                who: text(who(e)),
                system: text(&e.system),
            }),
            MAX_GRANTS,
            kept::BUDGET / 8,
        );
        let ends: Vec<End> = of(&["impersonation.ended"])
            .map(|e| End {
                t: e.time,
                id: e.id.clone(),
                impersonated: e.resource.clone(),
            })
            .collect();
        kept::fold(
            &mut seen.ends,
            ends.iter().cloned(),
            MAX_ENDS,
            kept::BUDGET / 8,
        );

        // Sessions: a new one, or one whose end arrives now or ends it earlier, has its
        // window read from history once; then changes are matched as they arrive.
        let mut rescan: Vec<String> = Vec::new();
        let starts: Vec<Session> = of(&["impersonation.started"])
            .map(|e| Session::of(e, &seen.ends))
            .collect();
        rescan.extend(
            starts
                .iter()
                .filter(|s| late(s.t) || s.end.is_some())
                .map(|s| s.id.clone()),
        );
        for s in seen.sessions.iter_mut() {
            let mut earlier = false;
            for end in &ends {
                earlier |= s.ended(end);
            }
            if earlier {
                rescan.push(s.id.clone());
            }
        }
        kept::fold(
            &mut seen.sessions,
            starts,
            MAX_SESSIONS,
            kept::BUDGET * 3 / 8,
        );
        for c in new_events.iter().filter(|e| is_privileged(e)) {
            for s in seen.sessions.iter_mut() {
                s.take(c, session);
            }
        }
        for s in seen.sessions.iter_mut().filter(|s| rescan.contains(&s.id)) {
            s.changes.clear();
            s.count = 0;
            for c in history_between(cx, s.t, s.until(session)) {
                if is_privileged(&c) {
                    s.take(&c, session);
                }
            }
        }

        // Resets: a late one reads the uses already given after it from history.
        let mut resets: Vec<Reset> = of(&RESETS).filter_map(Reset::of).collect();
        for r in resets.iter_mut().filter(|r| late(r.t)) {
            for f in history_between(cx, r.t, r.t + takeover) {
                if FOLLOW_UPS.iter().any(|a| f.is(a)) {
                    r.take(&f, takeover);
                }
            }
        }
        kept::fold(&mut seen.resets, resets, MAX_RESETS, kept::BUDGET / 4);
        for f in of(&FOLLOW_UPS) {
            for r in seen.resets.iter_mut() {
                r.take(f, takeover);
            }
        }
        kept::prune(&mut seen.resets, cx);
        kept::prune(&mut seen.sessions, cx);
        kept::prune(&mut seen.grants, cx);
        kept::prune(&mut seen.ends, cx);
        let newest = new_events.iter().map(|e| e.time).max();
        seen.latest = seen.latest.max(newest);

        let planned =
            |actor: &str, t: i64| policy.is_service_account(actor) && policy.windows.contains(t);
        let mut findings: Vec<Finding> = seen
            .resets
            .iter()
            .map(|r| reset_finding(r, takeover, planned(&r.actor, r.t)))
            .collect();
        for s in &seen.sessions {
            let end = s.until(session);
            let grant = seen.grants.iter().rev().find(|g| g.t <= s.t);
            let changes: Vec<&Change> = s.changes.iter().filter(|c| c.t <= end).collect();
            let count = s.count - (s.changes.len() - changes.len());
            findings.push(session_finding(
                s,
                grant,
                &changes,
                count,
                planned(&s.actor, s.t),
            ));
        }
        // A support-access grant no session used (yet): a digest line.
        for g in &seen.grants {
            if seen.sessions.iter().any(|s| s.t >= g.t) {
                continue;
            }
            findings.push(
                Finding::new(
                    IMPERSONATION,
                    Severity::Informational,
                    title(format!("{} granted support access to {}", g.who, g.system)),
                )
                .evidence_ids([g.id.clone()])
                .score(0.2)
                .next_step(format!(
                    "Check {} has an open support case and that the grant is revoked when it closes",
                    g.who
                )),
            );
        }
        Ok(findings)
    }
}

register_incremental_detector!(AccountTakeover);

/// The finding on one reset: with the uses from elsewhere within `takeover`, a takeover.
fn reset_finding(reset: &Reset, takeover: i64, planned: bool) -> Finding {
    let suspicious: Vec<&Use> = reset
        .uses
        .iter()
        .filter(|u| u.t - reset.t <= takeover)
        .collect();
    let (who, whose) = (&reset.who, &reset.whose);
    let (signal, severity) = match (planned, suspicious.is_empty()) {
        (true, _) => (MFA_RESET, Severity::Informational),
        (false, true) => (MFA_RESET, Severity::NeedsReview),
        (false, false) => (TAKEOVER, Severity::Urgent),
    };
    let line = match suspicious.first() {
        None => format!("{who} removed MFA factors of {whose} on {}", reset.system),
        Some(first) => format!(
            "{who} removed MFA factors of {whose}; {} min later the account was used from {}",
            (first.t - reset.t) / 60_000_000_000,
            place_of(first)
        ),
    };
    let next = if suspicious.is_empty() {
        format!(
            "Ask {who} for the ticket behind resetting {whose}'s MFA and confirm with {whose} directly that they asked for it"
        )
    } else {
        format!(
            "Suspend {whose} and end their sessions now, then confirm with {whose} by phone; ask {who} why the factors were reset"
        )
    };
    let mut evidence = vec![reset.id.clone()];
    evidence.extend(suspicious.iter().map(|u| u.id.clone()));
    Finding::new(signal, severity, title(line))
        .evidence_ids(evidence)
        .score(if suspicious.is_empty() { 0.6 } else { 0.9 })
        .next_step(next)
}

/// The finding on one impersonation session: urgent when privileged changes followed.
fn session_finding(
    s: &Session,
    grant: Option<&Grant>,
    changes: &[&Change],
    count: usize,
    planned: bool,
) -> Finding {
    let (who, impersonated, system) = (&s.who, &s.impersonated, &s.system);
    let mut evidence: Vec<String> = grant.map(|g| g.id.clone()).into_iter().collect();
    evidence.push(s.id.clone());
    evidence.extend(changes.iter().map(|c| c.id.clone()));
    let finding = if changes.is_empty() {
        Finding::new(
            IMPERSONATION,
            Severity::Informational,
            title(format!(
                "{who} opened an impersonation session as {impersonated} on {system}; nothing privileged changed"
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
            if planned {
                Severity::Informational
            } else {
                Severity::Urgent
            },
            title(format!(
                "{who} impersonated {impersonated} on {system} and {count} privileged change(s) followed: {}",
                what.join("; ")
            )),
        )
        .score(0.9)
        .next_step(format!(
            "Revoke the support access grant, undo {} and confirm with {impersonated} and the vendor's support case that these changes were requested",
            what.join("; ")
        ))
    };
    finding.evidence_ids(evidence)
}

/// The trajectory's events from `from` to `to` (inclusive), read through `history`: the
/// first found by halving (one event read per step), then page by page.
fn history_between(cx: &Context, from: i64, to: i64) -> Vec<Event> {
    let (mut lo, mut hi) = (0, cx.window().map_or(0, |w| w.len));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match cx.history(mid, 1).first() {
            Some(e) if e.time < from => lo = mid + 1,
            _ => hi = mid,
        }
    }
    let mut out = Vec::new();
    loop {
        let page = cx.history(lo, 64);
        if page.is_empty() {
            return out;
        }
        lo += page.len() as u32;
        for e in page {
            if e.time > to {
                return out;
            }
            out.push(e);
        }
    }
}

/// True if the event's actor is `person` (by id or display name).
fn same_person(e: &Event, person: &str) -> bool {
    e.actor.id.eq_ignore_ascii_case(person) || e.actor.display.eq_ignore_ascii_case(person)
}

/// Whether a use of the account comes through an anonymising proxy, or from another
/// country than the reset was made from (`reset_country`).
fn from_elsewhere(use_: &Event, reset_country: Option<&str>) -> bool {
    if use_.attr_bool("client.proxy") == Some(true) {
        return true;
    }
    match (use_.attr_str("geo.country"), reset_country) {
        (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => !a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

fn place_of(u: &Use) -> String {
    let ip = u.ip.as_deref().unwrap_or("an unknown address");
    let country = u.country.as_deref().unwrap_or("");
    let proxy = if u.proxy {
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
    use plumbline_sdk::Finding;

    use super::AccountTakeover;
    use plumbline_sdk::testing::feed;

    // Newest first, every event but the first arrives late: resets and session starts
    // read what came after them from history.
    plumbline_sdk::testing::incremental_fixture_tests!(AccountTakeover);

    fn urgent_evidence(answers: &[Vec<Finding>]) -> Vec<Vec<&str>> {
        let last = answers.last().map_or(&[][..], Vec::as_slice);
        last.iter()
            .filter(|f| f.severity == 3)
            .map(|f| f.evidence.iter().map(String::as_str).collect())
            .collect()
    }

    /// A session start that arrives after the changes inside it, and a reset that arrives
    /// after the proxy sign-in it opened: each reads what it missed from history once.
    #[test]
    fn late_starts_and_resets_read_what_came_before() {
        let f = feed::load(FIXTURES, "positive-impersonation-session-grants-admin.json");
        let order = ["okta:g1", "okta:a1", "okta:t1", "okta:s1"];
        assert_eq!(
            urgent_evidence(&feed::arrive::<AccountTakeover>(&f, &order)),
            [["okta:g1", "okta:s1", "okta:a1", "okta:t1"]]
        );
        let f = feed::load(FIXTURES, "positive-mfa-reset-then-login-through-proxy.json");
        let order = ["okta:l2", "okta:e2", "okta:r1"];
        assert_eq!(
            urgent_evidence(&feed::arrive::<AccountTakeover>(&f, &order)),
            [["okta:r1", "okta:l2", "okta:e2"]]
        );
    }

    /// A configured privileged action the detector does not declare is never given; the
    /// session's end reads its window from history and finds it.
    #[test]
    fn the_end_of_a_session_finds_undeclared_privileged_actions() {
        let mut f = feed::load(FIXTURES, "positive-impersonation-session-grants-admin.json");
        f.config.insert(
            "privileged_actions".into(),
            "api_key.created,directory.exported".into(),
        );
        let a1 = f
            .trajectory
            .events
            .iter_mut()
            .find(|e| e.id == "okta:a1")
            .unwrap();
        a1.action = "directory.exported".into();
        let order = ["okta:g1", "okta:s1", "okta:a1", "okta:t1", "okta:x1"];
        assert_eq!(
            urgent_evidence(&feed::arrive::<AccountTakeover>(&f, &order[..4])),
            [["okta:g1", "okta:s1", "okta:t1"]]
        );
        assert_eq!(
            urgent_evidence(&feed::arrive::<AccountTakeover>(&f, &order)),
            [["okta:g1", "okta:s1", "okta:a1", "okta:t1"]]
        );
    }

    /// Many resets of other people's factors under huge names: the answer stays under the
    /// host's 100 findings, the newest kept.
    #[test]
    fn state_stays_bounded() {
        let f = feed::load(FIXTURES, "positive-mfa-factor-removed-for-other.json");
        let found = feed::flood::<AccountTakeover>(&f, "okta:r2", 300);
        assert!(!found.is_empty() && found.len() <= 100);
        assert!(
            found.last().unwrap().evidence[0].ends_with("299"),
            "the newest kept"
        );
    }
}
