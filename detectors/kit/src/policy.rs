//! Planned work and working hours: who the team's service accounts are, when changes are
//! declared, and what "off-hours" means locally. A migration by the migration service
//! account inside a declared window is planned work; the same actions by anyone else, or
//! outside the window, are not.

use plumbline_contract::config::{ConfigSource, FromConfig};
use plumbline_contract::{glob, parse_time, AnalyzeError, Environment, Event};

const NANOS_PER_MINUTE: i64 = 60_000_000_000;
const MINUTES_PER_DAY: i64 = 24 * 60;
const MINUTES_PER_WEEK: i64 = 7 * MINUTES_PER_DAY;

/// Working hours `[start, end)` on weekdays, at a fixed offset from UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkHours {
    pub start: u32,
    pub end: u32,
    pub utc_offset: i32,
}

impl WorkHours {
    pub fn from_config(cfg: &dyn ConfigSource) -> Result<WorkHours, AnalyzeError> {
        let h = WorkHours {
            start: cfg.parsed("work_start_hour")?,
            end: cfg.parsed("work_end_hour")?,
            utc_offset: cfg.parsed("utc_offset_hours")?,
        };
        if h.start > 24 || h.end > 24 || !(-14..=14).contains(&h.utc_offset) {
            return Err(AnalyzeError::new(format!(
                "working hours {}–{} at UTC{:+} are out of range",
                h.start, h.end, h.utc_offset
            )));
        }
        Ok(h)
    }

    pub fn is_off_hours(&self, e: &Event) -> bool {
        e.is_off_hours(self.start, self.end, self.utc_offset)
    }

    /// `02:13` local, for titles.
    pub fn local_clock(&self, e: &Event) -> String {
        let local = e.time.div_euclid(NANOS_PER_MINUTE) + i64::from(self.utc_offset) * 60;
        let m = local.rem_euclid(MINUTES_PER_DAY);
        format!("{:02}:{:02}", m / 60, m % 60)
    }
}

/// One declared window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    /// Absolute interval, unix nanoseconds, inclusive start, exclusive end.
    Between(i64, i64),
    /// Weekly: days (bit 0 = Monday) on which the window opens, and the local minute
    /// range from its opening; `end <= start` runs past midnight into the next day.
    Weekly { days: u8, start: i64, end: i64 },
}

/// Declared change windows (`change_windows`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeWindows {
    windows: Vec<Window>,
    utc_offset: i32,
}

impl ChangeWindows {
    /// Parses comma-separated windows: `START/END` (RFC 3339) or `DAYS HH:MM-HH:MM`, where
    /// DAYS is `*`, a day (`sat`) or a range (`mon-fri`), in local time at `utc_offset`.
    pub fn parse(spec: &str, utc_offset: i32) -> Result<ChangeWindows, String> {
        let mut windows = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            windows.push(parse_window(item)?);
        }
        Ok(ChangeWindows {
            windows,
            utc_offset,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    pub fn contains(&self, t: i64) -> bool {
        let local_min = t.div_euclid(NANOS_PER_MINUTE) + i64::from(self.utc_offset) * 60;
        // Minutes since Monday 00:00 local (1970-01-01 was a Thursday: day 3).
        let week_min = (local_min + 3 * MINUTES_PER_DAY).rem_euclid(MINUTES_PER_WEEK);
        self.windows.iter().any(|w| match *w {
            Window::Between(a, b) => a <= t && t < b,
            Window::Weekly { days, start, end } => {
                let len = if end > start {
                    end - start
                } else {
                    end + MINUTES_PER_DAY - start
                };
                (0..7).filter(|d| days & (1 << d) != 0).any(|d| {
                    let open = d * MINUTES_PER_DAY + start;
                    // The window may wrap past Sunday midnight into Monday.
                    let since = (week_min - open).rem_euclid(MINUTES_PER_WEEK);
                    since < len
                })
            }
        })
    }
}

fn parse_window(item: &str) -> Result<Window, String> {
    if let Some((a, b)) = item.split_once('/') {
        let (Some(a), Some(b)) = (parse_time(a), parse_time(b)) else {
            return Err(format!(
                "change window `{item}`: expected two RFC 3339 times `START/END`"
            ));
        };
        if b <= a {
            return Err(format!("change window `{item}` ends before it starts"));
        }
        return Ok(Window::Between(a, b));
    }
    let bad = || {
        format!("change window `{item}`: expected `START/END` or `DAYS HH:MM-HH:MM` (e.g. `sat 22:00-04:00`)")
    };
    let (days, range) = item.split_once(char::is_whitespace).ok_or_else(bad)?;
    let (from, to) = range.trim().split_once('-').ok_or_else(bad)?;
    let start = clock(from).ok_or_else(bad)?;
    let end = clock(to).ok_or_else(bad)?;
    Ok(Window::Weekly {
        days: day_mask(days).ok_or_else(bad)?,
        start,
        end,
    })
}

fn clock(s: &str) -> Option<i64> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..=24).contains(&h) && (0..60).contains(&m) && h * 60 + m <= MINUTES_PER_DAY)
        .then_some(h * 60 + m)
}

fn day(s: &str) -> Option<u8> {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let s = s.trim().to_ascii_lowercase();
    DAYS.iter().position(|d| s.starts_with(d)).map(|i| i as u8)
}

fn day_mask(s: &str) -> Option<u8> {
    let s = s.trim();
    if s == "*" {
        return Some(0x7f);
    }
    let mut mask = 0u8;
    for part in s.split('+') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                let mut d = a;
                loop {
                    mask |= 1 << d;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => mask |= 1 << day(part)?,
        }
    }
    Some(mask)
}

/// The team's declared planned work: service accounts, change windows, working hours and
/// environments whose events are routine.
#[derive(Debug, Clone)]
pub struct Policy {
    pub service_accounts: Vec<String>,
    pub windows: ChangeWindows,
    pub hours: WorkHours,
    pub ignore_environments: Vec<Environment>,
}

impl Policy {
    /// Reads `service_accounts`, `change_windows`, the working-hours keys and
    /// `ignore_environments` (each optional: a detector declares the groups it uses).
    pub fn from_config(cfg: &dyn ConfigSource) -> Result<Policy, AnalyzeError> {
        let hours = if cfg.get("work_start_hour").is_some() {
            WorkHours::from_config(cfg)?
        } else {
            WorkHours {
                start: 8,
                end: 19,
                utc_offset: 0,
            }
        };
        let windows = ChangeWindows::parse(
            &cfg.get("change_windows").unwrap_or_default(),
            hours.utc_offset,
        )
        .map_err(AnalyzeError::new)?;
        let mut ignore_environments = Vec::new();
        for name in cfg.list("ignore_environments") {
            ignore_environments.push(environment(&name).ok_or_else(|| {
                AnalyzeError::new(format!(
                    "config key `ignore_environments`: `{name}` is not prod, staging, test or unknown"
                ))
            })?);
        }
        Ok(Policy {
            service_accounts: cfg.list("service_accounts"),
            windows,
            hours,
            ignore_environments,
        })
    }

    /// An allow-list: the actor id must match a pattern exactly, case included (see
    /// `plumbline_contract::glob`).
    pub fn is_service_account(&self, actor_id: &str) -> bool {
        self.service_accounts
            .iter()
            .any(|p| glob::matches(p, actor_id))
    }

    /// Planned work: a declared service account acting inside a declared change window.
    /// Both are required: a service account outside its window may be a stolen token, and
    /// a person inside a window is not the migration.
    pub fn is_planned(&self, e: &Event) -> bool {
        self.is_service_account(&e.actor.id) && self.windows.contains(e.time)
    }

    pub fn is_ignored_environment(&self, e: &Event) -> bool {
        self.ignore_environments.contains(&e.environment)
    }

    pub fn is_off_hours(&self, e: &Event) -> bool {
        self.hours.is_off_hours(e)
    }

    /// The telling one of several events of a kind (a workflow's activations): the first
    /// outside working hours if there is one, else the first; and whether it is off-hours.
    pub fn first_off_hours<'a>(
        &self,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> Option<(&'a Event, bool)> {
        let mut first = None;
        for e in events {
            if self.is_off_hours(e) {
                return Some((e, true));
            }
            first.get_or_insert((e, false));
        }
        first
    }
}

impl FromConfig for Policy {
    fn from_config(cfg: &dyn ConfigSource) -> Result<Self, AnalyzeError> {
        Policy::from_config(cfg)
    }
}

impl FromConfig for WorkHours {
    fn from_config(cfg: &dyn ConfigSource) -> Result<Self, AnalyzeError> {
        WorkHours::from_config(cfg)
    }
}

/// `prod`, `production`, `staging`, `test`, `dev`, … → the environment.
pub fn environment(name: &str) -> Option<Environment> {
    match name.trim().to_ascii_lowercase().as_str() {
        "prod" | "production" | "prd" | "live" => Some(Environment::Prod),
        "staging" | "stage" | "stg" | "preprod" => Some(Environment::Staging),
        "test" | "testing" | "dev" | "development" | "qa" | "sandbox" => Some(Environment::Test),
        "unknown" => Some(Environment::Unknown),
        _ => None,
    }
}

/// The environment a name points at, from its words (`secret/data/prod/db`,
/// `ci-test-token`, `role:staging-deployer`); `None` when no word names one.
pub fn environment_in(name: &str) -> Option<Environment> {
    name.to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find_map(|w| environment(w).filter(|e| *e != Environment::Unknown))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        parse_time(s).unwrap()
    }

    #[test]
    fn the_first_off_hours_event_is_the_telling_one() {
        use plumbline_contract::{Actor, ActorKind};
        let ev = |id: &str, time: &str| Event {
            id: id.into(),
            time: at(time),
            source: "n8n".into(),
            actor: Actor {
                id: "a".into(),
                kind: ActorKind::Human,
                display: String::new(),
            },
            system: "s".into(),
            action: "workflow.activated".into(),
            resource: String::new(),
            environment: Environment::Unknown,
            destination: None,
            volume: None,
            attributes: Default::default(),
        };
        let p = Policy {
            service_accounts: vec![],
            windows: ChangeWindows::parse("", 0).unwrap(),
            hours: WorkHours {
                start: 8,
                end: 19,
                utc_offset: 0,
            },
            ignore_environments: vec![],
        };
        let day = ev("day", "2024-06-12T10:00:00Z");
        let night = ev("night", "2024-06-12T02:13:00Z");
        let late = ev("late", "2024-06-12T23:00:00Z");
        let pick = |evs: &[&Event]| {
            p.first_off_hours(evs.iter().copied())
                .map(|(e, off)| (e.id.clone(), off))
        };
        assert_eq!(pick(&[&day, &night, &late]), Some(("night".into(), true)));
        assert_eq!(pick(&[&day]), Some(("day".into(), false)));
        assert_eq!(pick(&[]), None);
    }

    #[test]
    fn absolute_windows() {
        let w = ChangeWindows::parse("2024-06-01T22:00:00Z/2024-06-02T04:00:00Z", 0).unwrap();
        assert!(w.contains(at("2024-06-01T23:30:00Z")));
        assert!(w.contains(at("2024-06-01T22:00:00Z")));
        assert!(!w.contains(at("2024-06-02T04:00:00Z")));
        assert!(!w.contains(at("2024-06-01T21:59:59Z")));
    }

    #[test]
    fn weekly_windows_cross_midnight_and_weeks() {
        // 2024-06-01 is a Saturday.
        let w = ChangeWindows::parse("sat 22:00-04:00", 0).unwrap();
        assert!(w.contains(at("2024-06-01T23:00:00Z")));
        assert!(w.contains(at("2024-06-02T03:59:00Z")));
        assert!(!w.contains(at("2024-06-02T04:00:00Z")));
        assert!(!w.contains(at("2024-06-01T21:00:00Z")));
        let sun = ChangeWindows::parse("sun 23:00-01:00", 0).unwrap();
        assert!(
            sun.contains(at("2024-06-03T00:30:00Z")),
            "wraps into Monday"
        );
        let weekdays = ChangeWindows::parse("mon-fri 01:00-02:00", 0).unwrap();
        assert!(weekdays.contains(at("2024-06-03T01:30:00Z")));
        assert!(!weekdays.contains(at("2024-06-01T01:30:00Z")));
        let fri_mon = ChangeWindows::parse("fri-mon 00:00-24:00", 0).unwrap();
        assert!(fri_mon.contains(at("2024-06-02T12:00:00Z")));
        assert!(!fri_mon.contains(at("2024-06-05T12:00:00Z")));
    }

    #[test]
    fn weekly_windows_use_the_local_offset() {
        // 23:00 UTC Friday is 01:00 Saturday at UTC+2.
        let w = ChangeWindows::parse("sat 00:00-02:00", 2).unwrap();
        assert!(w.contains(at("2024-05-31T23:00:00Z")));
        assert!(!w.contains(at("2024-06-01T23:00:00Z")));
    }

    #[test]
    fn bad_windows_are_named() {
        assert!(ChangeWindows::parse("sometime", 0)
            .unwrap_err()
            .contains("sometime"));
        assert!(ChangeWindows::parse("2024-06-02T00:00:00Z/2024-06-01T00:00:00Z", 0).is_err());
        assert!(ChangeWindows::parse("xyz 01:00-02:00", 0).is_err());
        assert!(ChangeWindows::parse("", 0).unwrap().is_empty());
    }

    #[test]
    fn environments_from_names() {
        assert_eq!(
            environment_in("secret/data/prod/db"),
            Some(Environment::Prod)
        );
        assert_eq!(environment_in("ci-test-token"), Some(Environment::Test));
        assert_eq!(environment_in("product-catalog"), None);
    }
}
