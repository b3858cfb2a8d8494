//! The policy stage: what happens to an alert. It asks the policy crate for a decision
//! (allow-lists and break-glass adjust severity, routes pick destinations, dedup keeps one
//! story from notifying twice, quiet hours hold severity 2 until morning) and writes the
//! decided deliveries into the durable outbox before anything is sent.
//!
//! The stage is an [`AlertListener`]: it runs on an evaluation worker thread, records to
//! sled and wakes the dispatcher; sending happens on tokio tasks.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::TransactionError;
use sled::Transactional as _;
use time::OffsetDateTime;

use crate::respond::{ActionRecord, ActionState, Responder};
use crate::route::outbox::{
    Condition, DeliverySettings, Dispatcher, Durability, NewDelivery, Outbox, Payload,
};
use crate::route::{ActionOffer, Destination, Message, MessageKind};
use plumbline_alert::finding::findings_fingerprint;
use plumbline_alert::{Alert, AlertBook, AlertListener, AlertStatus, AlertUpdate};
use plumbline_event::{format_time, Event};
use plumbline_policy::decide::Verdict;
use plumbline_policy::model::Policy;
use plumbline_policy::schedule::{nanos, next_local, quiet_until, Clock};
use plumbline_store::{Store, StoreError};

/// What happened to one destination for one decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryOutcome {
    pub destination: String,
    /// queued, held, disabled, deduplicated
    pub outcome: String,
    pub delivery_id: Option<u64>,
    pub not_before: Option<String>,
    pub reason: Option<String>,
}

/// One policy decision about an alert (kept per alert, newest last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub alert_id: String,
    pub decided_at: String,
    pub detector_severity: u8,
    pub severity: u8,
    pub suppressed: Option<String>,
    pub routes: Vec<String>,
    pub deliveries: Vec<DeliveryOutcome>,
    pub notes: Vec<String>,
    pub fingerprint: String,
    pub deduplicated_by: Option<String>,
    pub break_glass_ticket: Option<String>,
    pub review_by: Option<String>,
    pub follow_up_ids: Vec<u64>,
    pub incident: bool,
    pub actions: Vec<String>,
    /// The alert's findings this decision was about ([`findings_fingerprint`]): a
    /// partition's next owner routes an alert whose findings no decision covers.
    #[serde(default)]
    pub findings: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DedupEntry {
    alert_id: String,
    severity: u8,
    at: i64,
}

/// An incident record, opened by routes with `incident = true`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub alert_id: String,
    pub opened_at: String,
    pub route: String,
    pub severity: u8,
    pub title: String,
    pub destinations: Vec<String>,
    pub actions: Vec<String>,
}

const HISTORY: usize = 20;

/// What one decision writes to the outbox and the dedup tree, committed with its record.
#[derive(Default)]
struct Staged {
    deliveries: Vec<(u64, Vec<u8>)>,
    dedup: Option<(String, Vec<u8>)>,
}

impl Staged {
    fn delivery(&mut self, (id, bytes): (u64, Vec<u8>)) -> u64 {
        self.deliveries.push((id, bytes));
        id
    }
}

/// What the stage knows of each destination.
#[derive(Debug, Clone)]
struct DestinationInfo {
    kind: &'static str,
    disabled: Option<String>,
    digest_at: Option<jiff::civil::Time>,
    pagerduty: bool,
}

/// The policy stage: an [`AlertListener`].
pub struct PolicyStage {
    policy: Arc<Policy>,
    tz: jiff::tz::TimeZone,
    outbox: Outbox,
    responder: Responder,
    alerts: AlertBook,
    destinations: BTreeMap<String, DestinationInfo>,
    clock: Arc<dyn Clock>,
    public_url: String,
    decisions: sled::Tree,
    dedup: sled::Tree,
    incidents: sled::Tree,
    /// Decisions are read-modify-write on shared trees (dedup); evaluation workers run in
    /// parallel.
    lock: Mutex<()>,
    /// Where dedup entries and decisions go on a cluster.
    replicas: std::sync::OnceLock<Replicas>,
}

struct Replicas {
    /// A story is notified once whichever node decides about it (the other side's
    /// trajectory, a partition's next owner).
    stories: plumbline_store::RecordReplica,
    decisions: plumbline_store::RecordReplica,
}

impl AlertListener for PolicyStage {
    fn alert_changed(&self, update: AlertUpdate) {
        let events: HashMap<String, Arc<Event>> = update
            .trajectory
            .events
            .iter()
            .filter(|e| update.alert.event_ids.contains(&e.id))
            .map(|e| (e.id.clone(), e.clone()))
            .collect();
        match self.decide(&update.alert, &events) {
            Ok(d) => {
                tracing::debug!(alert = %d.alert_id, severity = d.severity, routes = ?d.routes, "policy decided")
            }
            Err(e) => {
                tracing::error!(alert = %update.alert.id, error = %e, "policy could not record its decision")
            }
        }
    }
}

fn fingerprint(v: &Verdict) -> String {
    let mut signals = v.facts.signals.clone();
    signals.sort();
    let events = v.events();
    let mut actors: Vec<&str> = events.iter().map(|e| e.actor.id.as_str()).collect();
    actors.sort();
    actors.dedup();
    let mut systems: Vec<&str> = events.iter().map(|e| e.system.as_str()).collect();
    systems.sort();
    systems.dedup();
    let mut h = Sha256::new();
    for part in [signals.join("\n"), actors.join("\n"), systems.join("\n")] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// Forwards to the stage without keeping it alive, for subscribing it to an alert book
/// the stage itself holds (a strong subscription would be a reference cycle).
struct WeakListener(std::sync::Weak<PolicyStage>);

impl AlertListener for WeakListener {
    fn alert_changed(&self, update: AlertUpdate) {
        if let Some(s) = self.0.upgrade() {
            s.alert_changed(update);
        }
    }
}

impl PolicyStage {
    /// A listener for `AlertBook::subscribe` that does not keep the stage (and with it the
    /// database) alive.
    pub fn subscriber(self: &Arc<Self>) -> Arc<dyn AlertListener> {
        Arc::new(WeakListener(Arc::downgrade(self)))
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The decisions taken about one alert, oldest first.
    pub fn decisions(&self, alert_id: &str) -> Result<Vec<DecisionRecord>, StoreError> {
        Ok(self
            .decisions
            .get(alert_id)?
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default())
    }

    pub fn incidents(&self) -> Vec<Incident> {
        let mut v: Vec<Incident> = self
            .incidents
            .iter()
            .values()
            .filter_map(|v| v.ok().and_then(|v| serde_json::from_slice(&v).ok()))
            .collect();
        v.sort_by(|a, b| b.opened_at.cmp(&a.opened_at));
        v
    }

    /// Decides what happens to `alert` and records it: outbox entries, notes and status on
    /// the alert, dedup state, incident record, proposed actions.
    pub fn decide(
        &self,
        alert: &Alert,
        events: &HashMap<String, Arc<Event>>,
    ) -> Result<DecisionRecord, StoreError> {
        let _g = self.lock.lock().expect("policy lock");
        let _deciding = self.outbox.deciding();
        let now = self.clock.now();
        let v = self.policy.evaluate(alert, events, now);
        let history = self.decisions(&alert.id)?;
        let previous = history.last();
        let mut rec = DecisionRecord {
            alert_id: alert.id.clone(),
            decided_at: format_time(now),
            detector_severity: v.detector_severity,
            severity: v.severity,
            suppressed: v.suppressed.clone(),
            routes: v.routes.iter().map(|r| r.name.clone()).collect(),
            deliveries: vec![],
            notes: v.notes.clone(),
            fingerprint: fingerprint(&v),
            deduplicated_by: None,
            break_glass_ticket: v.break_glass.as_ref().map(|b| b.ticket.clone()),
            review_by: None,
            follow_up_ids: previous
                .map(|p| p.follow_up_ids.clone())
                .unwrap_or_default(),
            incident: false,
            actions: vec![],
            findings: findings_fingerprint(&alert.findings),
        };
        let mut staged = Staged::default();
        if rec.suppressed.is_none() {
            self.route(alert, &v, &mut rec, now, &mut staged)?;
        }
        self.record_on_alert(alert, &rec, previous)?;
        let mut history = history;
        history.push(rec.clone());
        if history.len() > HISTORY {
            history.drain(..history.len() - HISTORY);
        }
        // The deliveries, the dedup entry and the decision record in one transaction: sled
        // makes a prefix of separate writes durable on its own (its background flush), and
        // a crash after such a prefix once kept a delivery (and the dedup entry that then
        // kept the alert from being notified again) without the record naming it.
        let history = serde_json::to_vec(&history).expect("json");
        (&self.outbox.pending, &self.dedup, &self.decisions)
            .transaction(|(pending, dedup, decisions)| {
                for (id, bytes) in &staged.deliveries {
                    pending.insert(&crate::route::outbox::key(*id)[..], bytes.as_slice())?;
                }
                if let Some((k, v)) = &staged.dedup {
                    dedup.insert(k.as_bytes(), v.as_slice())?;
                }
                decisions.insert(alert.id.as_bytes(), history.as_slice())?;
                Ok(())
            })
            .map_err(|e: TransactionError<()>| match e {
                TransactionError::Storage(e) => StoreError::from(e),
                TransactionError::Abort(()) => unreachable!("the transaction never aborts"),
            })?;
        if let Some(r) = self.replicas.get() {
            if let Some((k, v)) = &staged.dedup {
                (r.stories)(k.as_bytes(), v);
            }
            (r.decisions)(alert.id.as_bytes(), &history);
        }
        self.outbox.wake();
        Ok(rec)
    }

    /// Copies every dedup entry and decision history written here from now on (a
    /// cluster node): a story notifies once whichever node decides, and every node knows
    /// what was decided.
    pub fn replicate(
        &self,
        stories: plumbline_store::RecordReplica,
        decisions: plumbline_store::RecordReplica,
    ) {
        let _ = self.replicas.set(Replicas { stories, decisions });
    }

    /// Keeps an alert's decision history another cluster node wrote, unless the one here
    /// has a later decision.
    pub fn import_decisions(&self, alert_id: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let Ok(theirs) = serde_json::from_slice::<Vec<DecisionRecord>>(value) else {
            return Ok(());
        };
        let last = |h: &[DecisionRecord]| {
            h.last().and_then(|d| {
                OffsetDateTime::parse(
                    &d.decided_at,
                    &time::format_description::well_known::Rfc3339,
                )
                .ok()
            })
        };
        let _g = self.lock.lock().expect("policy lock");
        let ours: Vec<DecisionRecord> = self
            .decisions
            .get(alert_id)?
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default();
        if ours.is_empty() || last(&theirs) > last(&ours) {
            self.decisions.insert(alert_id, value)?;
        }
        Ok(())
    }

    /// Whether `alert`'s findings as they stand await a decision: `None` when a decision
    /// covers them, `Some(true)` when the alert was never decided about, `Some(false)`
    /// when only earlier findings were.
    pub fn undecided(&self, alert: &Alert) -> Result<Option<bool>, StoreError> {
        let history = self.decisions(&alert.id)?;
        Ok(match history.last() {
            None => Some(true),
            // Decided before decisions named their findings.
            Some(d) if d.findings.is_empty() => None,
            Some(d) if d.findings == findings_fingerprint(&alert.findings) => None,
            Some(_) => Some(false),
        })
    }

    /// Keeps a dedup entry another cluster node wrote, unless the one here is newer.
    pub fn import_story(&self, fingerprint: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let Ok(theirs) = serde_json::from_slice::<DedupEntry>(value) else {
            return Ok(());
        };
        let _g = self.lock.lock().expect("policy lock");
        let ours = self
            .dedup
            .get(fingerprint)?
            .and_then(|v| serde_json::from_slice::<DedupEntry>(&v).ok());
        if ours.is_none_or(|o| o.at < theirs.at) {
            self.dedup.insert(fingerprint, value)?;
        }
        Ok(())
    }

    fn route(
        &self,
        alert: &Alert,
        v: &Verdict,
        rec: &mut DecisionRecord,
        now: OffsetDateTime,
        staged: &mut Staged,
    ) -> Result<(), StoreError> {
        if v.routes.is_empty() {
            rec.notes.push(format!(
                "no route matches severity {} with signals {}: recorded only",
                v.severity,
                v.facts.signals.join(", ")
            ));
            return Ok(());
        }
        // Dedup: the same story within the window notifies once, unless it got worse.
        let window = self.policy.settings.dedup_window_minutes as i64 * 60_000_000_000;
        let seen: Option<DedupEntry> = self
            .dedup
            .get(&rec.fingerprint)?
            .and_then(|x| serde_json::from_slice(&x).ok());
        if let Some(d) = seen.filter(|d| nanos(now) - d.at < window && v.severity <= d.severity) {
            let same = d.alert_id == alert.id;
            let why = if same {
                format!(
                    "not notified again: nothing new since {} (same signals, severity {})",
                    format_time(plumbline_event::time_from_nanos(d.at)),
                    d.severity
                )
            } else {
                format!(
                    "not notified: same story as {} notified at {} (dedup window {} min)",
                    d.alert_id,
                    format_time(plumbline_event::time_from_nanos(d.at)),
                    self.policy.settings.dedup_window_minutes
                )
            };
            rec.deduplicated_by = Some(d.alert_id.clone());
            rec.notes.push(why.clone());
            for r in &v.routes {
                for dest in &r.destinations {
                    rec.deliveries.push(DeliveryOutcome {
                        destination: dest.clone(),
                        outcome: "deduplicated".into(),
                        delivery_id: None,
                        not_before: None,
                        reason: Some(why.clone()),
                    });
                }
            }
            return Ok(());
        }
        staged.dedup = Some((
            rec.fingerprint.clone(),
            serde_json::to_vec(&DedupEntry {
                alert_id: alert.id.clone(),
                severity: v.severity,
                at: nanos(now),
            })
            .expect("json"),
        ));

        // Response actions first, so messages can offer them.
        let evidence = v.events();
        let mut offers: Vec<ActionRecord> = Vec::new();
        for r in &v.routes {
            for a in &r.actions {
                if !self.responder.enabled() {
                    continue;
                }
                for p in self
                    .responder
                    .propose(&alert.id, a, &v.facts.signals, &evidence)?
                {
                    if !offers.iter().any(|o| o.id == p.id) {
                        offers.push(p);
                    }
                }
            }
        }
        rec.actions = offers.iter().map(|o| o.id.clone()).collect();
        let wanted_actions: Vec<&String> = v.routes.iter().flat_map(|r| &r.actions).collect();
        if !wanted_actions.is_empty() && offers.is_empty() {
            rec.notes.push(if self.responder.enabled() {
                "no response action offered: no workflow or revocable credential in the evidence"
                    .into()
            } else {
                "response actions are off ([actions] enabled = false)".into()
            });
        }

        let justification = v.routes.iter().any(|r| r.justification);
        let incident = v.routes.iter().any(|r| r.incident);
        rec.incident = incident;
        rec.review_by = v.break_glass.as_ref().map(|b| format_time(b.review_by));
        let base = self.message(alert, v, &offers, justification, incident, rec);
        let q = &self.policy.quiet_hours;
        let quiet = if q.enabled && q.severities.contains(&v.severity) {
            quiet_until(
                now,
                &self.tz,
                plumbline_policy::matcher::parse_clock_time(&q.start).expect("validated"),
                plumbline_policy::matcher::parse_clock_time(&q.end).expect("validated"),
            )
        } else {
            None
        };
        let mut seen_dest: Vec<&str> = Vec::new();
        let mut notified: Vec<String> = Vec::new();
        for r in &v.routes {
            for dest in &r.destinations {
                if seen_dest.contains(&dest.as_str()) {
                    continue;
                }
                seen_dest.push(dest);
                let info = self.destinations.get(dest);
                if let Some(why) = info.and_then(|i| i.disabled.clone()) {
                    rec.deliveries.push(DeliveryOutcome {
                        destination: dest.clone(),
                        outcome: "disabled".into(),
                        delivery_id: None,
                        not_before: None,
                        reason: Some(why),
                    });
                    continue;
                }
                let mut m = base.clone();
                m.route = r.name.clone();
                let (not_before, held) = match info.and_then(|i| i.digest_at) {
                    Some(at) => {
                        let t = next_local(now, &self.tz, at);
                        (Some(t), Some(format!("daily digest at {}", format_time(t))))
                    }
                    None => match quiet {
                        Some(t) => (
                            Some(t),
                            Some(format!("quiet hours until {}", format_time(t))),
                        ),
                        None => (None, None),
                    },
                };
                let id = staged.delivery(self.outbox.prepare(
                    NewDelivery {
                        destination: dest.clone(),
                        payload: Payload::Message(Box::new(m.clone())),
                        not_before,
                        held: held.clone(),
                        condition: None,
                    },
                    now,
                )?);
                if info.is_some_and(|i| i.pagerduty) {
                    self.outbox.watch_resolve(&alert.id, &m, dest)?;
                }
                notified.push(dest.clone());
                rec.deliveries.push(DeliveryOutcome {
                    destination: dest.clone(),
                    outcome: if held.is_some() { "held" } else { "queued" }.into(),
                    delivery_id: Some(id),
                    not_before: not_before.map(format_time),
                    reason: held,
                });
            }
        }
        if let Some(t) = quiet {
            rec.notes.push(format!(
                "severity {} held for quiet hours until {}",
                v.severity,
                format_time(t)
            ));
        }
        rec.notes.push(format!(
            "routed by {} to {}",
            rec.routes
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if notified.is_empty() {
                "no configured destination".to_string()
            } else {
                notified.join(", ")
            }
        ));
        if let Some(bg) = &v.break_glass {
            // One follow-up per alert, however often it is re-evaluated.
            if rec.follow_up_ids.is_empty() {
                let mut m = base.clone();
                m.kind = MessageKind::FollowUp;
                for dest in &notified {
                    // A reminder belongs in chat (and the webhook); the ticket already
                    // carries the deadline, and nobody should be paged for it.
                    if !self
                        .destinations
                        .get(dest)
                        .is_some_and(|i| ["slack", "teams", "webhook"].contains(&i.kind))
                    {
                        continue;
                    }
                    let id = staged.delivery(self.outbox.prepare(
                        NewDelivery {
                            destination: dest.clone(),
                            payload: Payload::Message(Box::new(m.clone())),
                            not_before: Some(bg.review_by),
                            held: Some(format!(
                                "break-glass follow-up due {}",
                                format_time(bg.review_by)
                            )),
                            condition: Some(Condition::AlertStillOpen {
                                alert_id: alert.id.clone(),
                            }),
                        },
                        now,
                    )?);
                    rec.follow_up_ids.push(id);
                }
            }
        }
        if incident && self.incidents.get(&alert.id)?.is_none() {
            let i = Incident {
                alert_id: alert.id.clone(),
                opened_at: format_time(now),
                route: rec.routes.join(", "),
                severity: v.severity,
                title: alert.title.clone(),
                destinations: notified.clone(),
                actions: rec.actions.clone(),
            };
            self.incidents
                .insert(alert.id.as_bytes(), serde_json::to_vec(&i).expect("json"))?;
            rec.notes
                .push(format!("incident record opened for {}", alert.id));
        }
        Ok(())
    }

    fn message(
        &self,
        alert: &Alert,
        v: &Verdict,
        offers: &[ActionRecord],
        justification: bool,
        incident: bool,
        rec: &DecisionRecord,
    ) -> Message {
        let events = v.events();
        let mut actors: Vec<String> = events.iter().map(|e| e.actor.id.clone()).collect();
        actors.sort();
        actors.dedup();
        let mut systems: Vec<String> = events.iter().map(|e| e.system.clone()).collect();
        systems.sort();
        systems.dedup();
        let mut next_steps: Vec<String> = Vec::new();
        for f in &alert.findings {
            if v.findings.iter().any(|x| x.signal == f.signal)
                && !f.next_step.is_empty()
                && !next_steps.contains(&f.next_step)
            {
                next_steps.push(f.next_step.clone());
            }
        }
        if v.break_glass.is_some() && !self.policy.break_glass.follow_up.is_empty() {
            next_steps.push(self.policy.break_glass.follow_up.clone());
        }
        Message {
            kind: MessageKind::Alert,
            alert_id: alert.id.clone(),
            title: alert.title.clone(),
            summary: alert.summary.clone(),
            severity: v.severity,
            detector_severity: v.detector_severity,
            signals: v.facts.signals.clone(),
            systems,
            actors,
            detectors: v.facts.detectors.clone(),
            event_count: events.len(),
            review_url: format!(
                "{}/review/#/alert/{}",
                self.public_url.trim_end_matches('/'),
                alert.id
            ),
            route: String::new(),
            notes: v.notes.clone(),
            next_steps,
            justification_requested: justification,
            incident,
            actions: offers
                .iter()
                .map(|o| ActionOffer {
                    id: o.id.clone(),
                    action: o.action.clone(),
                    target: o.target.describe(),
                    state: match o.state {
                        ActionState::Pending => "waiting for approval".into(),
                        ActionState::Approved if o.automatic => {
                            "running automatically (policy)".into()
                        }
                        s => format!("{s:?}").to_lowercase(),
                    },
                })
                .collect(),
            review_by: rec.review_by.clone(),
            dedup_key: format!("plumbline-{}", alert.id),
            created_at: rec.decided_at.clone(),
        }
    }

    /// Notes (once each) and status on the alert itself.
    fn record_on_alert(
        &self,
        alert: &Alert,
        rec: &DecisionRecord,
        previous: Option<&DecisionRecord>,
    ) -> Result<(), StoreError> {
        let mut notes: Vec<String> = Vec::new();
        if let Some(s) = &rec.suppressed {
            notes.push(format!("policy: {s}"));
        }
        notes.extend(rec.notes.iter().map(|n| format!("policy: {n}")));
        let suppress = rec.suppressed.is_some();
        let was_suppressed_by_us = previous.is_some_and(|p| p.suppressed.is_some());
        self.alerts.update(&alert.id, |a| {
            for n in notes {
                if !a.notes.contains(&n) {
                    a.notes.push(n);
                }
            }
            if suppress && a.status == AlertStatus::Open {
                a.status = AlertStatus::Suppressed;
            } else if !suppress && a.status == AlertStatus::Suppressed && was_suppressed_by_us {
                a.status = AlertStatus::Open;
                a.notes
                    .push("policy: no longer suppressed: new findings are not covered".into());
            }
        })?;
        Ok(())
    }
}

/// `[policy]` + `[delivery]` configuration, as the stage needs it.
#[derive(Debug, Clone)]
pub struct RoutingSettings {
    pub public_url: String,
    pub delivery: DeliverySettings,
    pub http_timeout: std::time::Duration,
}

/// Policy, outbox, destinations and response actions, wired together.
pub struct Routing {
    pub stage: Arc<PolicyStage>,
    pub outbox: Outbox,
    pub responder: Responder,
    dispatcher: Dispatcher,
}

impl Routing {
    /// Opens the trees and builds every destination (`env` expands `${VAR}`). Nothing is
    /// sent until [`Routing::start`].
    pub fn open(
        store: &Store,
        alerts: AlertBook,
        policy: Policy,
        settings: RoutingSettings,
        clock: Arc<dyn Clock>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Routing, StoreError> {
        let db = store.db();
        let tz =
            jiff::tz::TimeZone::get(&policy.settings.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let http = reqwest::Client::builder()
            .timeout(settings.http_timeout)
            .user_agent(concat!("plumbline/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
        let built = crate::route::build_all(&policy, env, &http);
        let destinations = built
            .iter()
            .map(|(name, d)| {
                let info = match d {
                    Ok(d) => DestinationInfo {
                        kind: d.kind(),
                        disabled: None,
                        digest_at: match d {
                            Destination::Digest(g) => Some(g.send_at),
                            _ => None,
                        },
                        pagerduty: matches!(d, Destination::PagerDuty(_)),
                    },
                    Err(why) => DestinationInfo {
                        kind: "",
                        disabled: Some(why.clone()),
                        digest_at: None,
                        pagerduty: false,
                    },
                };
                (name.clone(), info)
            })
            .collect::<BTreeMap<_, _>>();
        for (name, d) in &built {
            match d {
                Ok(d) => tracing::info!(destination = %name, kind = d.kind(), "destination ready"),
                Err(why) => tracing::info!(destination = %name, %why, "destination disabled"),
            }
        }
        let outbox = Outbox::open(db)?;
        let responder = Responder::open(
            db,
            policy.actions.defs.clone(),
            policy.actions.enabled,
            policy.actions.expire_hours,
            outbox.clone(),
            alerts.clone(),
            clock.clone(),
            http.clone(),
        )?;
        let dispatcher = Dispatcher::new(
            outbox.clone(),
            built,
            clock.clone(),
            settings.delivery.clone(),
            Some(alerts.clone()),
            Some(Arc::new(responder.clone())),
        );
        let stage = Arc::new(PolicyStage {
            policy: Arc::new(policy),
            tz,
            outbox: outbox.clone(),
            responder: responder.clone(),
            alerts,
            destinations,
            clock,
            public_url: settings.public_url,
            decisions: db.open_tree("policy_decisions")?,
            dedup: db.open_tree("policy_dedup")?,
            incidents: db.open_tree("incidents")?,
            lock: Mutex::new(()),
            replicas: std::sync::OnceLock::new(),
        });
        Ok(Routing {
            stage,
            outbox,
            responder,
            dispatcher,
        })
    }

    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// Retention: forgets what routing kept about alerts retention removed (decision
    /// history, incident records, paging state, decided response actions) and dedup
    /// fingerprints last seen before `cutoff` (unix nanos). Pending actions stay until
    /// they are decided or expire. Finished deliveries have their own horizon
    /// (`delivery.keep_delivered_days`). Returns how many records went.
    pub fn forget(&self, alert_ids: &[String], cutoff: i64) -> Result<usize, StoreError> {
        let mut n = 0;
        for id in alert_ids {
            for tree in [
                &self.stage.decisions,
                &self.stage.incidents,
                &self.outbox.paged,
            ] {
                n += usize::from(tree.remove(id.as_bytes())?.is_some());
            }
        }
        n += self.responder.forget(alert_ids)?;
        for item in self.stage.dedup.iter() {
            let (k, v) = item?;
            let at = serde_json::from_slice::<DedupEntry>(&v).map_or(i64::MIN, |d| d.at);
            if at < cutoff {
                self.stage.dedup.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Starts the delivery loop on the current tokio runtime; `durability` is the store's
    /// writer, whose barrier makes each delivery durable before its first attempt.
    pub fn start(&self, durability: Arc<dyn Durability>) -> tokio::task::JoinHandle<()> {
        self.dispatcher.set_durability(durability);
        self.dispatcher.spawn()
    }

    /// As [`Routing::start`], on a cluster node: what this node decides is forwarded
    /// through `relay` to the cluster's one outbox consumer, and only what that consumer
    /// imported here is sent from here.
    pub fn start_relayed(
        &self,
        durability: Arc<dyn Durability>,
        relay: Arc<dyn crate::route::relay::Relay>,
    ) -> tokio::task::JoinHandle<()> {
        self.dispatcher.set_relay(relay);
        self.start(durability)
    }
}
