//! Alerts: one per trajectory. Findings become an alert; later findings on the same story
//! update it (and may raise its severity) instead of opening a second one.

pub mod fallback;
#[cfg(test)]
mod stage_tests;
pub mod summary;

/// What a detector reports (defined beside the evaluation seam, re-exported here where
/// alerts are made of it).
pub use plumbline_trajectory::finding;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use finding::{Finding, Severity};
use plumbline_event::format_time;
use plumbline_store::{Store, StoreError};
use plumbline_trajectory::aliases::Aliases;
use plumbline_trajectory::{Evaluation, Outcomes, Trajectory};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Waiting for a reviewer.
    Open,
    /// A reviewer labelled it.
    Reviewed,
    /// Closed by a reviewer.
    Resolved,
    /// Policy suppressed it (allow-list, change window); the reason is recorded.
    Suppressed,
}

impl AlertStatus {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DetectorRef {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    pub trajectory_id: String,
    /// Hash of the trajectory as last evaluated (what the summary and audit trail key on).
    pub trajectory_hash: String,
    pub severity: Severity,
    pub status: AlertStatus,
    pub title: String,
    pub summary: String,
    pub signals: Vec<String>,
    pub event_ids: Vec<String>,
    pub actors: Vec<String>,
    pub systems: Vec<String>,
    pub detectors: Vec<DetectorRef>,
    pub findings: Vec<Finding>,
    pub created_at: String,
    pub updated_at: String,
    /// Notes added by later stages (policy decisions, summary source), newest last.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Set when a late event joined this alert's trajectory to another that had its own
    /// alert: the story continues in that one, and this one is resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
}

/// Why listeners are told about an alert.
#[derive(Debug, Clone)]
pub struct AlertUpdate {
    pub alert: Alert,
    pub trajectory: Arc<Trajectory>,
    pub is_new: bool,
    /// Severity before this update (None for a new alert).
    pub previous_severity: Option<Severity>,
}

/// Later stages (summary, policy, routing) hear about every new or changed alert.
/// Called on an evaluation worker thread: hand slow work off.
pub trait AlertListener: Send + Sync + 'static {
    /// Just before the change is stored, under the book's lock: a listener that must not
    /// miss it after a crash writes its mark here. sled logs writes in order, so any flush
    /// that keeps the alert keeps the mark too; a mark whose alert never got stored is the
    /// listener's to drop when it resumes. Keep it short.
    fn alert_changing(&self, _update: &AlertUpdate) {}

    /// Once the change is stored.
    fn alert_changed(&self, update: AlertUpdate);
}

#[derive(Clone)]
pub struct AlertBook {
    tree: sled::Tree,
    /// Trajectory id → the id of its alert.
    links: sled::Tree,
    /// Renamed trajectory ids (written by the trajectory stage).
    aliases: Aliases,
    shadow: sled::Tree,
    /// Serialises read-modify-write of one alert across evaluation workers.
    lock: Arc<Mutex<()>>,
    listeners: Arc<Mutex<Vec<Arc<dyn AlertListener>>>>,
    /// Told of every version of an alert this book stores (a cluster's alert stream).
    replica: Arc<std::sync::OnceLock<Replica>>,
}

/// Where every stored version of an alert is copied (see [`AlertBook::replicate`]).
pub type Replica = Arc<dyn Fn(&Alert) + Send + Sync>;

pub fn alert_id_for(trajectory_id: &str) -> String {
    format!("alr-{}", trajectory_id.trim_start_matches("trj-"))
}

impl AlertBook {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(AlertBook {
            tree: store.db().open_tree("alerts")?,
            links: store.db().open_tree("alert_links")?,
            aliases: Aliases::open(store)?,
            shadow: store.db().open_tree("shadow_findings")?,
            lock: Arc::default(),
            listeners: Arc::default(),
            replica: Arc::default(),
        })
    }

    pub fn subscribe(&self, l: Arc<dyn AlertListener>) {
        self.listeners.lock().expect("listeners").push(l);
    }

    pub fn get(&self, id: &str) -> Result<Option<Alert>, StoreError> {
        Ok(self
            .tree
            .get(id.as_bytes())?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Stores a version of an alert and hands it to the replica, if any. Every change
    /// of an alert goes through here (under the book's lock), so the replica sees the
    /// versions in the order they were stored.
    pub fn put(&self, a: &Alert) -> Result<(), StoreError> {
        self.store(a)?;
        if let Some(replica) = self.replica.get() {
            replica(a);
        }
        Ok(())
    }

    fn store(&self, a: &Alert) -> Result<(), StoreError> {
        self.tree.insert(
            a.id.as_bytes(),
            serde_json::to_vec(a).expect("alerts serialise"),
        )?;
        Ok(())
    }

    /// Copies every alert version stored from now on to `replica` (a cluster node
    /// publishes them; see [`AlertBook::import`] for the way back). Set once.
    pub fn replicate(&self, replica: Replica) {
        if self.replica.set(replica).is_err() {
            tracing::warn!("the alert book already has a replica; the second is ignored");
        }
    }

    /// Takes in an alert another cluster node recorded (its owner's version), unless the
    /// one here is newer. Listeners are not told: the node that recorded it summarised,
    /// decided and routed it. Returns whether it was taken.
    pub fn import(&self, a: &Alert) -> Result<bool, StoreError> {
        let parse = |at: &str| {
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
        };
        let _g = self.lock.lock().expect("alert lock");
        if let Some(here) = self.get(&a.id)? {
            if parse(&here.updated_at) > parse(&a.updated_at) {
                return Ok(false);
            }
        }
        self.store(a)?;
        self.set_link(&a.trajectory_id, &a.id)?;
        Ok(true)
    }

    /// Changes one stored alert under the book's lock (used by later stages).
    pub fn update(
        &self,
        id: &str,
        f: impl FnOnce(&mut Alert),
    ) -> Result<Option<Alert>, StoreError> {
        let _g = self.lock.lock().expect("alert lock");
        let Some(mut a) = self.get(id)? else {
            return Ok(None);
        };
        f(&mut a);
        a.updated_at = now();
        self.put(&a)?;
        Ok(Some(a))
    }

    /// Retention: forgets alerts last updated before `cutoff`, their trajectory links, and
    /// shadow findings recorded before it. Returns the removed alert ids, so the stages
    /// that keep records per alert (labels, policy decisions, actions) can forget theirs.
    pub fn sweep_before(&self, cutoff: time::OffsetDateTime) -> Result<Vec<String>, StoreError> {
        let before = |at: &str| {
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                .is_ok_and(|t| t < cutoff)
        };
        let mut removed = std::collections::HashSet::new();
        {
            let _g = self.lock.lock().expect("alert lock");
            for a in self.all() {
                if before(&a.updated_at) {
                    self.tree.remove(a.id.as_bytes())?;
                    removed.insert(a.id);
                }
            }
        }
        for item in self.links.iter() {
            let (trajectory, alert) = item?;
            if removed.contains(String::from_utf8_lossy(&alert).as_ref()) {
                self.links.remove(trajectory)?;
            }
        }
        for item in self.shadow.iter() {
            let (k, v) = item?;
            let rec: serde_json::Value = serde_json::from_slice(&v).unwrap_or_default();
            if rec["recorded_at"].as_str().is_none_or(before) {
                self.shadow.remove(k)?;
            }
        }
        let mut ids: Vec<String> = removed.into_iter().collect();
        ids.sort();
        Ok(ids)
    }

    /// Records shadow-mode findings for a trajectory: visible, never alerting or routed.
    pub fn record_shadow(&self, t: &Trajectory, findings: &[Finding]) {
        let rec = serde_json::json!({
            "trajectory_id": t.id, "trajectory_hash": t.hash, "findings": findings, "recorded_at": now(),
        });
        if let Err(e) = self
            .shadow
            .insert(t.id.as_bytes(), serde_json::to_vec(&rec).expect("json"))
        {
            tracing::error!(trajectory = %t.id, error = %e, "could not record shadow findings");
        }
    }

    /// Shadow findings per trajectory.
    pub fn shadow_findings(&self) -> impl Iterator<Item = serde_json::Value> + '_ {
        self.shadow
            .iter()
            .values()
            .filter_map(|v| v.ok().and_then(|v| serde_json::from_slice(&v).ok()))
    }

    pub fn all(&self) -> impl Iterator<Item = Alert> + '_ {
        self.tree
            .iter()
            .values()
            .filter_map(|v| v.ok().and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Folds new findings into the trajectory's alert. Returns the update when something
    /// changed (new alert, new finding, higher severity); listeners have been told.
    pub fn apply(
        &self,
        t: &Arc<Trajectory>,
        findings: &[Finding],
    ) -> Result<Option<AlertUpdate>, StoreError> {
        if findings.is_empty() {
            return Ok(None);
        }
        let update = {
            let _g = self.lock.lock().expect("alert lock");
            if self.aliases.is_renamed(&t.id)? {
                tracing::debug!(trajectory = %t.id, "stale evaluation of a renamed trajectory; its successor is queued");
                return Ok(None);
            }
            let id = self
                .alert_id_of(&t.id)?
                .unwrap_or_else(|| alert_id_for(&t.id));
            let existing = self.get(&id)?;
            let is_new = existing.is_none();
            let previous_severity = existing.as_ref().map(|a| a.severity);
            let mut alert = existing.unwrap_or_else(|| Alert {
                id: id.clone(),
                trajectory_id: t.id.clone(),
                trajectory_hash: String::new(),
                severity: 0,
                status: AlertStatus::Open,
                title: String::new(),
                summary: String::new(),
                signals: vec![],
                event_ids: vec![],
                actors: vec![],
                systems: vec![],
                detectors: vec![],
                findings: vec![],
                created_at: now(),
                updated_at: now(),
                notes: vec![],
                merged_into: None,
            });
            let changed = fold_findings(&mut alert, findings) || is_new;
            if !changed {
                return Ok(None);
            }
            derive(&mut alert, t);
            reopen_if_raised(&mut alert, previous_severity);
            alert.updated_at = now();
            let update = AlertUpdate {
                alert,
                trajectory: t.clone(),
                is_new,
                previous_severity,
            };
            for l in self.listeners.lock().expect("listeners").iter() {
                l.alert_changing(&update);
            }
            self.put(&update.alert)?;
            if is_new {
                self.set_link(&t.id, &id)?;
            }
            update
        };
        self.notify(&update);
        Ok(Some(update))
    }

    /// Tells the listeners about `alert` as it stands, on `t` (a cluster partition's new
    /// owner, for an alert whose last change the node that stored it did not get to
    /// route). `is_new`: no decision was ever taken about it.
    pub fn renotify(&self, alert: Alert, t: Arc<Trajectory>, is_new: bool) {
        let update = AlertUpdate {
            previous_severity: (!is_new).then_some(alert.severity),
            alert,
            trajectory: t,
            is_new,
        };
        for l in self.listeners.lock().expect("listeners").iter() {
            l.alert_changing(&update);
        }
        self.notify(&update);
    }

    /// The alert raised on trajectory `trajectory_id`, if any.
    pub fn of_trajectory(&self, trajectory_id: &str) -> Result<Option<Alert>, StoreError> {
        match self.alert_id_of(trajectory_id)? {
            Some(id) => self.get(&id),
            None => Ok(None),
        }
    }

    fn notify(&self, update: &AlertUpdate) {
        let listeners = self.listeners.lock().expect("listeners").clone();
        for l in listeners {
            l.alert_changed(update.clone());
        }
    }

    /// The id of the alert raised on a trajectory id. Alerts recorded before links existed
    /// are found by their derived id.
    fn alert_id_of(&self, trajectory_id: &str) -> Result<Option<String>, StoreError> {
        if let Some(v) = self.links.get(trajectory_id.as_bytes())? {
            return Ok(Some(String::from_utf8_lossy(&v).into_owned()));
        }
        let legacy = alert_id_for(trajectory_id);
        Ok(self.tree.contains_key(legacy.as_bytes())?.then_some(legacy))
    }

    fn set_link(&self, trajectory_id: &str, alert_id: &str) -> Result<(), StoreError> {
        self.links
            .insert(trajectory_id.as_bytes(), alert_id.as_bytes())?;
        Ok(())
    }

    /// The alert raised on a trajectory (by its current or a former id).
    pub fn alert_of_trajectory(&self, trajectory_id: &str) -> Result<Option<Alert>, StoreError> {
        let current = self.aliases.resolve(trajectory_id)?;
        match self.alert_id_of(current.as_deref().unwrap_or(trajectory_id))? {
            Some(id) => self.get(&id),
            None => Ok(None),
        }
    }

    /// The trajectory `old` now goes by `t.id` (an earlier event arrived, or a late event
    /// merged two trajectories): its alert follows, and if `t` already had an alert of its
    /// own the two fold into the one raised first, so one story keeps one alert. Returns the
    /// surviving alert's update when two folded (listeners have been told).
    pub fn retarget(
        &self,
        old: &str,
        t: &Arc<Trajectory>,
    ) -> Result<Option<AlertUpdate>, StoreError> {
        let update = {
            let _g = self.lock.lock().expect("alert lock");
            let Some(moved) = self.alert_id_of(old)? else {
                return Ok(None);
            };
            let Some(mut a) = self.get(&moved)? else {
                return Ok(None);
            };
            // Already moved or folded: the same batch re-applied after a crash.
            if a.trajectory_id != old || a.merged_into.is_some() {
                return Ok(None);
            }
            let there = match self.alert_id_of(&t.id)? {
                Some(id) if id != moved => self.get(&id)?,
                _ => None,
            };
            let Some(b) = there else {
                a.trajectory_id = t.id.clone();
                self.put(&a)?;
                self.set_link(&t.id, &moved)?;
                return Ok(None);
            };
            // Keep the alert raised first: it is the one reviewers and pages already know.
            let (mut keep, mut gone) = if (&a.created_at, &a.id) <= (&b.created_at, &b.id) {
                (a, b)
            } else {
                (b, a)
            };
            let previous_severity = Some(keep.severity);
            let gone_findings = gone.findings.clone();
            fold_findings(&mut keep, &gone_findings);
            keep.trajectory_id = t.id.clone();
            keep.notes.push(format!(
                "A late event joined this story with {}; its findings are folded in here.",
                gone.id
            ));
            derive(&mut keep, t);
            reopen_if_raised(&mut keep, previous_severity);
            keep.updated_at = now();
            gone.merged_into = Some(keep.id.clone());
            if gone.status != AlertStatus::Suppressed {
                gone.status = AlertStatus::Resolved;
            }
            gone.notes.push(format!(
                "A late event joined this story with {}; it continues there.",
                keep.id
            ));
            gone.updated_at = now();
            self.put(&gone)?;
            self.put(&keep)?;
            self.set_link(&t.id, &keep.id)?;
            AlertUpdate {
                alert: keep,
                trajectory: t.clone(),
                is_new: false,
                previous_severity,
            }
        };
        self.notify(&update);
        Ok(Some(update))
    }
}

/// Folds findings into the alert; true if anything changed (a new finding, a higher
/// severity, a new title, or evidence that grew).
fn fold_findings(alert: &mut Alert, findings: &[Finding]) -> bool {
    let mut changed = false;
    for f in findings {
        let key = f.key();
        if let Some(old) = alert.findings.iter_mut().find(|o| o.key() == key) {
            if old.severity < f.severity || old.title != f.title {
                *old = f.clone();
                changed = true;
            }
        } else if !alert.findings.iter().any(|o| {
            o.detector == f.detector && o.signal == f.signal && covers(&f.evidence, &o.evidence)
        }) {
            // A finding whose evidence only grew replaces the narrower one.
            alert.findings.retain(|o| {
                !(o.detector == f.detector
                    && o.signal == f.signal
                    && covers(&o.evidence, &f.evidence))
            });
            alert.findings.push(f.clone());
            changed = true;
        }
    }
    changed
}

/// A resolved alert whose story got worse is open again.
fn reopen_if_raised(alert: &mut Alert, previous_severity: Option<Severity>) {
    if alert.status == AlertStatus::Resolved
        && previous_severity.is_some_and(|p| alert.severity > p)
    {
        alert.status = AlertStatus::Open;
    }
}

/// `a` ⊆ `b`.
fn covers(a: &[String], b: &[String]) -> bool {
    a.iter().all(|x| b.contains(x))
}

/// Recomputes the alert's derived fields from its findings and trajectory.
fn derive(a: &mut Alert, t: &Trajectory) {
    a.findings.sort_by(|x, y| {
        y.severity
            .cmp(&x.severity)
            .then(y.score.total_cmp(&x.score))
    });
    a.severity = a
        .findings
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(1)
        .clamp(1, 3);
    a.title = a
        .findings
        .first()
        .map(|f| f.title.clone())
        .unwrap_or_default();
    a.trajectory_hash = t.hash.clone();
    let signals: BTreeSet<&str> = a.findings.iter().map(|f| f.signal.as_str()).collect();
    a.signals = signals.into_iter().map(str::to_string).collect();
    let cited: BTreeSet<&str> = a
        .findings
        .iter()
        .flat_map(|f| f.evidence.iter().map(String::as_str))
        .collect();
    // Evidence in story order.
    a.event_ids = t
        .events
        .iter()
        .filter(|e| cited.contains(e.id.as_str()))
        .map(|e| e.id.clone())
        .collect();
    for id in cited {
        if !a.event_ids.iter().any(|x| x == id) {
            a.event_ids.push(id.to_string());
        }
    }
    let in_evidence = |e: &&Arc<plumbline_event::Event>| a.event_ids.contains(&e.id);
    let actors: BTreeSet<String> = t
        .events
        .iter()
        .filter(in_evidence)
        .map(|e| e.actor.id.clone())
        .collect();
    let systems: BTreeSet<String> = t
        .events
        .iter()
        .filter(in_evidence)
        .map(|e| e.system.clone())
        .collect();
    a.actors = actors.into_iter().collect();
    a.systems = systems.into_iter().collect();
    let dets: BTreeSet<DetectorRef> = a
        .findings
        .iter()
        .map(|f| DetectorRef {
            name: f.detector.clone(),
            version: f.detector_version.clone(),
        })
        .collect();
    a.detectors = dets.into_iter().collect();
    // The summary stage replaces this with a narrative when an LLM is configured.
    a.summary = findings_summary(a, t);
}

/// The deterministic summary from the findings, in story order, with the evidence: what an
/// alert carries until (or instead of) the model's narrative.
pub fn findings_summary(a: &Alert, t: &Trajectory) -> String {
    fallback::build(a, t).render()
}

pub fn now() -> String {
    format_time(time::OffsetDateTime::now_utc())
}

/// The trajectory stage records its evaluations here.
impl Outcomes for AlertBook {
    fn record(&self, t: &Arc<Trajectory>, evaluation: &Evaluation) -> Result<(), StoreError> {
        self.apply(t, &evaluation.findings)?;
        if !evaluation.shadow.is_empty() {
            self.record_shadow(t, &evaluation.shadow);
        }
        Ok(())
    }

    fn renamed(&self, old: &str, t: &Arc<Trajectory>) -> Result<(), StoreError> {
        self.retarget(old, t).map(|_| ())
    }
}
