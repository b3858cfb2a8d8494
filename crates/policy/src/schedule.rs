//! Time: an injectable clock, quiet hours and daily send times in the policy's time zone.

use std::sync::Mutex;

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use time::OffsetDateTime;

/// Where "now" comes from. Injected so quiet hours, digests and follow-ups can be tested
/// without waiting for the night to pass.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to.
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn new(at: OffsetDateTime) -> Self {
        ManualClock(Mutex::new(at))
    }

    pub fn set(&self, at: OffsetDateTime) {
        *self.0.lock().expect("clock") = at;
    }

    pub fn advance(&self, by: std::time::Duration) {
        let mut t = self.0.lock().expect("clock");
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().expect("clock")
    }
}

pub fn nanos(t: OffsetDateTime) -> i64 {
    t.unix_timestamp_nanos() as i64
}

fn to_jiff(t: OffsetDateTime) -> Timestamp {
    Timestamp::from_nanosecond(t.unix_timestamp_nanos()).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn from_jiff(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(t.as_nanosecond())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The first instant after `now` whose local time in `tz` is `at` (a DST gap moves it
/// forward, as a person's alarm would).
pub fn next_local(now: OffsetDateTime, tz: &TimeZone, at: Time) -> OffsetDateTime {
    let zoned = to_jiff(now).to_zoned_datetime(tz.clone());
    let mut date = zoned.date();
    for _ in 0..3 {
        if let Ok(candidate) = date.to_datetime(at).to_zoned_datetime(tz.clone()) {
            if candidate.timestamp() > zoned.timestamp() {
                return from_jiff(candidate.timestamp());
            }
        }
        match date.tomorrow() {
            Ok(d) => date = d,
            Err(_) => break,
        }
    }
    now + time::Duration::days(1)
}

/// When quiet hours started at `start` and end at `end` (local), and `now` falls inside
/// them: the instant they end. `start == end` means no quiet hours.
pub fn quiet_until(
    now: OffsetDateTime,
    tz: &TimeZone,
    start: Time,
    end: Time,
) -> Option<OffsetDateTime> {
    if start == end {
        return None;
    }
    let local = to_jiff(now).to_zoned_datetime(tz.clone()).time();
    let quiet = if start < end {
        local >= start && local < end
    } else {
        local >= start || local < end
    };
    quiet.then(|| next_local(now, tz, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn t(h: i8, m: i8) -> Time {
        Time::new(h, m, 0, 0).unwrap()
    }

    #[test]
    fn overnight_quiet_hours_end_the_next_morning() {
        let utc = TimeZone::UTC;
        let until = quiet_until(datetime!(2025-03-03 23:30 UTC), &utc, t(22, 0), t(8, 0));
        assert_eq!(until, Some(datetime!(2025-03-04 08:00 UTC)));
        let until = quiet_until(datetime!(2025-03-04 02:00 UTC), &utc, t(22, 0), t(8, 0));
        assert_eq!(until, Some(datetime!(2025-03-04 08:00 UTC)));
        assert_eq!(
            quiet_until(datetime!(2025-03-04 08:00 UTC), &utc, t(22, 0), t(8, 0)),
            None
        );
        assert_eq!(
            quiet_until(datetime!(2025-03-04 12:00 UTC), &utc, t(22, 0), t(8, 0)),
            None
        );
    }

    #[test]
    fn local_time_follows_the_zone_and_its_dst() {
        let warsaw = TimeZone::get("Europe/Warsaw").unwrap();
        // 21:30 UTC in winter is 22:30 in Warsaw: quiet until 08:00 local = 07:00 UTC.
        let until = quiet_until(datetime!(2025-01-10 21:30 UTC), &warsaw, t(22, 0), t(8, 0));
        assert_eq!(until, Some(datetime!(2025-01-11 07:00 UTC)));
        // In summer 08:00 local is 06:00 UTC.
        let next = next_local(datetime!(2025-07-10 12:00 UTC), &warsaw, t(8, 0));
        assert_eq!(next, datetime!(2025-07-11 06:00 UTC));
    }
}
