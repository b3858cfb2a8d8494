//! Failed sign-ins are limited, so `POST /v1/session` cannot be used to guess tokens at
//! speed: past `max` failures within a minute (from anyone), sign-in answers 429 with
//! `Retry-After` until the minute is over. API calls with a bearer token are not affected.

use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

pub struct SignInThrottle {
    max: u32,
    /// Start of the current window and the failures in it.
    state: Mutex<(Instant, u32)>,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        SignInThrottle::new(20)
    }
}

impl SignInThrottle {
    pub fn new(max: u32) -> Self {
        SignInThrottle {
            max,
            state: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Seconds to wait before trying again, when the window's failures are used up.
    pub fn retry_after(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(s.0) >= WINDOW {
            *s = (now, 0);
        }
        // Rounded up: a client that waits this long is let through.
        (s.1 >= self.max).then(|| {
            let left = WINDOW.saturating_sub(now.duration_since(s.0));
            (left.as_secs_f64().ceil() as u64).max(1)
        })
    }

    pub fn failed(&self, now: Instant) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(s.0) >= WINDOW {
            *s = (now, 0);
        }
        s.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_past_the_limit_wait_for_the_window_to_end() {
        let t = SignInThrottle::new(3);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.retry_after(start), None);
            t.failed(start);
        }
        let later = start + Duration::from_secs(15);
        assert_eq!(t.retry_after(later), Some(45));
        // A new window starts afresh.
        assert_eq!(t.retry_after(start + WINDOW), None);
    }
}
