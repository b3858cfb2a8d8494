//! Coverage: what Plumbline is watching, and what it is not.
//!
//! - **Arrivals per source**: each durable batch is counted as it passes to the trajectory
//!   stage (arrival time, not event time: a back-fill of last month is not "github is
//!   alive"), in hourly buckets kept in the `review_coverage` tree, with the last event id
//!   and the quiet spells between arrivals.
//! - **Silent sources**: a source that has been quiet for longer than its usual gap (the
//!   longest quiet spell of the learning window, times `silence_factor`, at least
//!   `silence_min_minutes`) raises one informational alert per quiet spell, through the
//!   alert book like any other alert, so policy routes it (severity 1: the digest). Its
//!   evidence is the last event the source sent. When the source speaks again the alert is
//!   resolved with a note, and that spell does not teach the usual gap.
//! - **Evaluated within the deadline**: the trajectory stage's event-to-evaluation
//!   histogram, against `deadline_ms`.
//! - **High-risk coverage**: of the events that touched a high-risk surface in the last 24
//!   hours, the share that an active detector reads (by its declared sources and actions),
//!   times the share of evaluations within the deadline. The brief's goal is 99.9%.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::classify::{surface, Surface};
use super::ReviewConfig;
use plumbline_alert::finding::{Finding, INFORMATIONAL};
use plumbline_alert::{alert_id_for, AlertBook, AlertStatus};
use plumbline_contract::interest::action_matches;
use plumbline_event::{format_time, Event, Source};
use plumbline_metrics::{Histogram, LATENCY_BOUNDS};
use plumbline_store::{Store, StoreError};
use plumbline_trajectory::model::{event_digest, trajectory_hash};
use plumbline_trajectory::{Trajectory, TrajectoryKind};

/// Quiet spells shorter than this are ordinary traffic, not worth remembering.
const MIN_GAP_SECS: i64 = 60;
/// High-risk arrivals are judged over this window.
pub const HIGH_RISK_WINDOW_HOURS: i64 = 24;
/// Quiet spells remembered per source (the learning window bounds them too).
const MAX_GAPS: usize = 2000;
const PERSIST_EVERY: Duration = Duration::from_secs(5);

pub const SIGNAL: &str = "coverage.source_silent";
pub const DETECTOR: &str = "plumbline.coverage";

/// What is remembered about one source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// Unix seconds of the last arrival (0: never).
    pub last_seen: i64,
    pub last_event_id: String,
    /// Events since this record began.
    pub total: u64,
    /// Arrivals per hour (unix hour → events).
    pub hourly: BTreeMap<i64, u64>,
    /// High-risk arrivals per hour: unix hour → "surface\taction" → events.
    pub high_risk: BTreeMap<i64, BTreeMap<String, u64>>,
    /// Quiet spells of at least a minute: (ended at, length), unix seconds.
    pub gaps: Vec<(i64, i64)>,
    /// The alert raised for the current quiet spell ("" when the last event could not be
    /// found to cite, so none was raised).
    pub silent_alert: Option<String>,
    /// When the current quiet spell began (the last arrival before it), unix seconds.
    #[serde(default)]
    pub silent_since: i64,
}

impl SourceRecord {
    fn prune(&mut self, now: i64, learn_secs: i64) {
        let keep_from = now - learn_secs - 48 * 3600;
        self.hourly.retain(|h, _| h * 3600 >= keep_from);
        self.high_risk
            .retain(|h, _| h * 3600 >= now - (HIGH_RISK_WINDOW_HOURS + 1) * 3600);
        self.gaps.retain(|(at, _)| *at >= now - learn_secs);
        if self.gaps.len() > MAX_GAPS {
            let cut = self.gaps.len() - MAX_GAPS;
            self.gaps.drain(..cut);
        }
    }

    /// Arrivals in the `secs` up to `now`.
    fn events_since(&self, now: i64, secs: i64) -> u64 {
        let from = (now - secs).div_euclid(3600);
        self.hourly.range(from..).map(|(_, n)| n).sum()
    }

    /// The longest quiet spell that ended within the learning window.
    fn usual_gap(&self, now: i64, learn_secs: i64) -> i64 {
        self.gaps
            .iter()
            .filter(|(at, _)| *at >= now - learn_secs)
            .map(|(_, g)| *g)
            .max()
            .unwrap_or(0)
    }
}

/// How long a source may be quiet before it is silent.
fn silent_after(c: &ReviewConfig, usual_gap: i64) -> i64 {
    let min = c.silence_min_minutes as i64 * 60;
    min.max((usual_gap as f64 * c.silence_factor).ceil() as i64)
}

/// "3 h 20 min", "45 min", "2 d 4 h".
pub fn human(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// A quiet spell found by [`Coverage::check_at`].
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub source: Source,
    pub last_seen: i64,
    pub last_event_id: String,
    pub usual_gap: i64,
    pub silent_after: i64,
    pub now: i64,
}

impl Silence {
    pub fn title(&self) -> String {
        let usual = if self.usual_gap > 0 {
            format!("usually quiet at most {}", human(self.usual_gap))
        } else {
            "usually never quiet for a minute".to_string()
        };
        format!(
            "{} has sent nothing for {} ({usual})",
            self.source,
            human(self.now - self.last_seen)
        )
    }

    fn trajectory_id(&self) -> String {
        format!("trj-coverage-{}-{}", self.source, self.last_seen)
    }
}

pub struct Coverage {
    tree: sled::Tree,
    store: Store,
    config: Arc<ReviewConfig>,
    alerts: AlertBook,
    sources: Mutex<(BTreeMap<Source, SourceRecord>, bool)>,
}

fn source_key(s: Source) -> Vec<u8> {
    format!("source/{s}").into_bytes()
}

fn trajectory_key(id: &str) -> Vec<u8> {
    format!("trajectory/{id}").into_bytes()
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Coverage {
    pub fn open(
        store: &Store,
        config: Arc<ReviewConfig>,
        alerts: AlertBook,
    ) -> Result<Coverage, StoreError> {
        let tree = store.db().open_tree("review_coverage")?;
        let mut sources = BTreeMap::new();
        for s in Source::ALL {
            if let Some(v) = tree.get(source_key(s))? {
                if let Ok(r) = serde_json::from_slice(&v) {
                    sources.insert(s, r);
                }
            }
        }
        Ok(Coverage {
            tree,
            store: store.clone(),
            config,
            alerts,
            sources: Mutex::new((sources, false)),
        })
    }

    /// Counts a durable batch (called on the store's flusher thread: map updates only).
    pub fn record(&self, events: &[Arc<Event>]) {
        self.record_at(events, unix_now());
    }

    pub fn record_at(&self, events: &[Arc<Event>], now: i64) {
        if events.is_empty() {
            return;
        }
        let hour = now.div_euclid(3600);
        let mut guard = self.sources.lock().expect("coverage lock");
        let (sources, dirty) = &mut *guard;
        for e in events {
            let r = sources.entry(e.source).or_default();
            if r.last_seen > 0 && now - r.last_seen >= MIN_GAP_SECS {
                r.gaps.push((now, now - r.last_seen));
            }
            r.last_seen = now;
            r.last_event_id.clone_from(&e.id);
            r.total += 1;
            *r.hourly.entry(hour).or_default() += 1;
            if let Some(s) = surface(e) {
                *r.high_risk
                    .entry(hour)
                    .or_default()
                    .entry(format!("{}\t{}", s.as_str(), e.action))
                    .or_default() += 1;
            }
        }
        *dirty = true;
    }

    /// Writes the records (pruned) when something changed.
    pub fn persist_at(&self, now: i64) -> Result<(), StoreError> {
        let learn = self.config.silence_learn_hours as i64 * 3600;
        let snapshot: Vec<(Source, SourceRecord)> = {
            let mut guard = self.sources.lock().expect("coverage lock");
            let (sources, dirty) = &mut *guard;
            if !*dirty {
                return Ok(());
            }
            *dirty = false;
            for r in sources.values_mut() {
                r.prune(now, learn);
            }
            sources.iter().map(|(s, r)| (*s, r.clone())).collect()
        };
        for (s, r) in snapshot {
            self.tree
                .insert(source_key(s), serde_json::to_vec(&r).expect("json"))?;
        }
        Ok(())
    }

    /// Sources silent beyond their usual gap that have no alert yet; and the alerts of
    /// spells that ended (the source spoke again), which are settled here.
    pub fn check_at(&self, now: i64) -> (Vec<Silence>, Vec<(String, String)>) {
        let c = &self.config;
        let learn = c.silence_learn_hours as i64 * 3600;
        let mut silent = Vec::new();
        let mut ended = Vec::new();
        let mut guard = self.sources.lock().expect("coverage lock");
        let (sources, dirty) = &mut *guard;
        for (s, r) in sources.iter_mut() {
            if r.last_seen == 0 {
                continue;
            }
            let usual = r.usual_gap(now, learn);
            let after = silent_after(c, usual);
            let quiet = now - r.last_seen;
            match &r.silent_alert {
                Some(id) if quiet <= after => {
                    // It spoke again: the spell that raised the alert is not a usual gap.
                    let since = r.silent_since;
                    let spell = r
                        .gaps
                        .iter()
                        .find(|(at, g)| at - g == since)
                        .map(|(_, g)| *g)
                        .unwrap_or(0);
                    r.gaps.retain(|(at, g)| at - g != since);
                    if !id.is_empty() {
                        ended.push((
                            id.clone(),
                            format!(
                                "{s} sent events again at {} after {} of silence",
                                format_time(plumbline_event::time_from_nanos(
                                    r.last_seen.saturating_mul(1_000_000_000)
                                )),
                                human(spell)
                            ),
                        ));
                    }
                    r.silent_alert = None;
                    r.silent_since = 0;
                    *dirty = true;
                }
                None if quiet > after && r.events_since(now, learn) >= c.silence_min_events => {
                    silent.push(Silence {
                        source: *s,
                        last_seen: r.last_seen,
                        last_event_id: r.last_event_id.clone(),
                        usual_gap: usual,
                        silent_after: after,
                        now,
                    });
                }
                _ => {}
            }
        }
        (silent, ended)
    }

    /// Raises the alert for a silent source through the alert book (blocking: call off the
    /// async workers). Returns its id, or None when the last event is gone (retention).
    pub fn raise(&self, s: &Silence) -> Result<Option<String>, StoreError> {
        let Some(event) = self.store.get(&s.last_event_id)? else {
            tracing::warn!(source = %s.source, event = %s.last_event_id,
                "source is silent but its last event is no longer stored; no alert to cite it");
            self.mark(s, String::new());
            return Ok(None);
        };
        let event = Arc::new(event);
        let digest = event_digest(&event);
        let t = Arc::new(Trajectory {
            id: s.trajectory_id(),
            kind: TrajectoryKind::System,
            key: format!("plumbline/coverage/{}", s.source),
            start: event.time_nanos(),
            end: event.time_nanos(),
            closes_at: event.time_nanos(),
            dropped: 0,
            hash: trajectory_hash(std::iter::once((event.id.as_str(), &digest))),
            events: vec![event.clone()].into(),
        });
        // Kept so the alert's story (and a summary resumed after a restart) can be found.
        self.tree.insert(
            trajectory_key(&t.id),
            serde_json::to_vec(&*t).expect("json"),
        )?;
        let finding = Finding {
            detector: DETECTOR.into(),
            detector_version: env!("CARGO_PKG_VERSION").into(),
            signal: SIGNAL.into(),
            severity: INFORMATIONAL,
            score: 1.0,
            title: s.title(),
            evidence: vec![event.id.clone()],
            next_step: format!(
                "Check that {src} still delivers to Plumbline (its webhook or log-stream \
                 status, the token or secret, the network path), then back-fill what it \
                 sent meanwhile with `plumbline ingest --source {src}`.",
                src = s.source
            ),
        };
        self.alerts.apply(&t, &[finding])?;
        let id = alert_id_for(&t.id);
        self.mark(s, id.clone());
        tracing::info!(source = %s.source, alert = %id, "{}", s.title());
        Ok(Some(id))
    }

    fn mark(&self, s: &Silence, alert: String) {
        let mut guard = self.sources.lock().expect("coverage lock");
        if let Some(r) = guard.0.get_mut(&s.source) {
            r.silent_alert = Some(alert);
            r.silent_since = s.last_seen;
        }
        guard.1 = true;
    }

    /// Settles the alert of a spell that ended.
    pub fn settle(&self, alert_id: &str, note: String) -> Result<(), StoreError> {
        self.alerts.update(alert_id, |a| {
            if a.status == AlertStatus::Open {
                a.status = AlertStatus::Resolved;
            }
            a.notes.push(note);
        })?;
        Ok(())
    }

    /// The trajectory of a silent-source alert.
    pub fn trajectory(&self, id: &str) -> Option<Trajectory> {
        let v = self.tree.get(trajectory_key(id)).ok()??;
        serde_json::from_slice(&v).ok()
    }

    /// One round of bookkeeping: persist, settle ended spells, raise new ones.
    pub fn tick(&self, now: i64) {
        let (silent, ended) = self.check_at(now);
        for (id, note) in ended {
            if let Err(e) = self.settle(&id, note) {
                tracing::error!(alert = %id, error = %e, "could not settle a silent-source alert");
            }
        }
        for s in silent {
            if let Err(e) = self.raise(&s) {
                tracing::error!(source = %s.source, error = %e, "could not raise a silent-source alert; will retry");
            }
        }
        if let Err(e) = self.persist_at(now) {
            tracing::error!(error = %e, "could not save coverage; will retry");
        }
    }

    /// Persists every few seconds and checks for silence every `silence_check_secs`.
    pub fn spawn(self: Arc<Self>) {
        let check_every = Duration::from_secs(self.config.silence_check_secs.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PERSIST_EVERY.min(check_every));
            let mut last_check = std::time::Instant::now();
            loop {
                tick.tick().await;
                let me = self.clone();
                let check = last_check.elapsed() >= check_every;
                if check {
                    last_check = std::time::Instant::now();
                }
                // The alert book's listeners and sled writes block: off the async workers.
                let done = tokio::task::spawn_blocking(move || {
                    let now = unix_now();
                    if check {
                        me.tick(now);
                    } else if let Err(e) = me.persist_at(now) {
                        tracing::error!(error = %e, "could not save coverage; will retry");
                    }
                })
                .await;
                if let Err(e) = done {
                    tracing::error!(error = %e, "coverage bookkeeping panicked");
                }
            }
        });
    }

    /// The coverage report. `detectors` is the runtime's status (None: not known here).
    pub fn report(
        &self,
        now: i64,
        detectors: Option<&[Watch]>,
        evaluations: &Histogram,
    ) -> CoverageReport {
        let c = &self.config;
        let learn = c.silence_learn_hours as i64 * 3600;
        let sources = self.sources.lock().expect("coverage lock").0.clone();
        let mut rows = Vec::new();
        let mut surfaces: BTreeMap<Surface, SurfaceCoverage> = Surface::ALL
            .iter()
            .map(|s| {
                (
                    *s,
                    SurfaceCoverage {
                        surface: s.as_str(),
                        label: s.label(),
                        events: 0,
                        watched: 0,
                        unwatched: Vec::new(),
                    },
                )
            })
            .collect();
        let this_hour = now.div_euclid(3600);
        for s in Source::ALL {
            let r = sources.get(&s).cloned().unwrap_or_default();
            let usual = r.usual_gap(now, learn);
            let after = silent_after(c, usual);
            let learned = r.events_since(now, learn);
            let state = if r.last_seen == 0 {
                "never"
            } else if r.silent_alert.is_some()
                || (now - r.last_seen > after && learned >= c.silence_min_events)
            {
                "silent"
            } else if learned < c.silence_min_events {
                "learning"
            } else {
                "ok"
            };
            let hourly: Vec<u64> = (0..24)
                .rev()
                .map(|i| r.hourly.get(&(this_hour - i)).copied().unwrap_or(0))
                .collect();
            let last_24h: u64 = hourly.iter().sum();
            for (hour, counts) in &r.high_risk {
                if *hour < this_hour - HIGH_RISK_WINDOW_HOURS + 1 {
                    continue;
                }
                for (k, n) in counts {
                    let Some((surface_name, action)) = k.split_once('\t') else {
                        continue;
                    };
                    let Some(surface) = Surface::ALL
                        .into_iter()
                        .find(|x| x.as_str() == surface_name)
                    else {
                        continue;
                    };
                    let sc = surfaces.get_mut(&surface).expect("every surface");
                    sc.events += n;
                    let watched = detectors.is_some_and(|d| watched_by(d, s.as_str(), action));
                    if watched {
                        sc.watched += n;
                    } else {
                        let name = format!("{s} {action}");
                        if !sc.unwatched.contains(&name) {
                            sc.unwatched.push(name);
                        }
                    }
                }
            }
            rows.push(SourceCoverage {
                source: s.as_str(),
                state,
                last_seen: (r.last_seen > 0).then(|| {
                    format_time(plumbline_event::time_from_nanos(
                        r.last_seen.saturating_mul(1_000_000_000),
                    ))
                }),
                quiet_secs: (r.last_seen > 0).then(|| now - r.last_seen),
                last_event_id: (!r.last_event_id.is_empty()).then(|| r.last_event_id.clone()),
                events_total: r.total,
                events_last_hour: r.events_since(now, 3600),
                events_per_hour: last_24h as f64 / 24.0,
                hourly,
                usual_gap_secs: usual,
                silent_after_secs: after,
                silent_alert: r.silent_alert.clone().filter(|a| !a.is_empty()),
            });
        }
        let deadline_s = c.deadline_ms as f64 / 1000.0;
        let effective = LATENCY_BOUNDS
            .iter()
            .copied()
            .find(|b| *b >= deadline_s)
            .unwrap_or(f64::INFINITY);
        let total = evaluations.count();
        let within = evaluations.count_within(deadline_s);
        let on_time = (total > 0).then(|| within as f64 / total as f64);
        let events: u64 = surfaces.values().map(|s| s.events).sum();
        let watched: u64 = surfaces.values().map(|s| s.watched).sum();
        let watched_share =
            (events > 0 && detectors.is_some()).then(|| watched as f64 / events as f64);
        // Nothing evaluated yet means nothing was late.
        let coverage = watched_share.map(|w| w * on_time.unwrap_or(1.0));
        let silent: Vec<&'static str> = rows
            .iter()
            .filter(|r| r.state == "silent")
            .map(|r| r.source)
            .collect();
        CoverageReport {
            at: format_time(plumbline_event::time_from_nanos(
                now.saturating_mul(1_000_000_000),
            )),
            sources: rows,
            evaluations: EvaluationCoverage {
                deadline_ms: c.deadline_ms,
                effective_deadline_ms: (effective * 1000.0).round() as u64,
                evaluations: total,
                within_deadline: within,
                share: on_time,
                p99_ms: evaluations.quantile(0.99).map(|s| s * 1000.0),
            },
            high_risk: HighRiskCoverage {
                window_hours: HIGH_RISK_WINDOW_HOURS as u64,
                events,
                watched,
                watched_share,
                coverage,
                target: c.coverage_target,
                meets_target: coverage.map(|x| x >= c.coverage_target),
                silent_sources: silent,
                detectors_known: detectors.is_some(),
                surfaces: surfaces.into_values().collect(),
            },
        }
    }
}

/// What one loaded detector watches, as coverage needs it (the runtime's status,
/// narrowed: this crate does not depend on the runtime).
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    /// Active (not shadow, not quarantined): only active detectors cover anything.
    pub active: bool,
    /// Declared sources; empty means all.
    pub sources: Vec<String>,
    /// Declared action patterns; empty means all.
    pub actions: Vec<String>,
}

/// Whether an active detector reads this source and action: the runtime's interest rule
/// (`plumbline_contract::interest`).
pub fn watched_by(detectors: &[Watch], source: &str, action: &str) -> bool {
    detectors.iter().any(|d| {
        d.active
            && (d.sources.is_empty() || d.sources.iter().any(|s| s == source))
            && (d.actions.is_empty() || d.actions.iter().any(|p| action_matches(p, action)))
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceCoverage {
    pub source: &'static str,
    /// `ok`, `silent`, `learning` (too few events yet to know its rhythm) or `never`.
    pub state: &'static str,
    pub last_seen: Option<String>,
    pub quiet_secs: Option<i64>,
    pub last_event_id: Option<String>,
    pub events_total: u64,
    pub events_last_hour: u64,
    /// Average over the last 24 hours.
    pub events_per_hour: f64,
    /// Arrivals per hour, the last 24 hours, oldest first (the current hour last).
    pub hourly: Vec<u64>,
    pub usual_gap_secs: i64,
    pub silent_after_secs: i64,
    pub silent_alert: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvaluationCoverage {
    pub deadline_ms: u64,
    /// The deadline rounded up to the latency histogram's bucket bound.
    pub effective_deadline_ms: u64,
    /// Evaluations since start (each covers the events that changed a trajectory).
    pub evaluations: u64,
    pub within_deadline: u64,
    pub share: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SurfaceCoverage {
    pub surface: &'static str,
    pub label: &'static str,
    pub events: u64,
    pub watched: u64,
    /// `source action` pairs no active detector reads.
    pub unwatched: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HighRiskCoverage {
    pub window_hours: u64,
    /// High-risk events that arrived in the window.
    pub events: u64,
    /// Of those, read by an active detector.
    pub watched: u64,
    pub watched_share: Option<f64>,
    /// watched share × share of evaluations within the deadline.
    pub coverage: Option<f64>,
    pub target: f64,
    pub meets_target: Option<bool>,
    /// Sources silent beyond their usual gap: what they did not send is not counted above.
    pub silent_sources: Vec<&'static str>,
    /// False when the detector set is not known to this process (no runtime attached).
    pub detectors_known: bool,
    pub surfaces: Vec<SurfaceCoverage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CoverageReport {
    pub at: String,
    pub sources: Vec<SourceCoverage>,
    pub evaluations: EvaluationCoverage,
    pub high_risk: HighRiskCoverage,
}

#[cfg(test)]
mod tests;
