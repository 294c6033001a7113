//! The gateway's wall clock, injectable so that timestamp checks can be tested at a fixed time.

use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync {
    /// Current time in whole seconds since the Unix epoch.
    fn now_unix(&self) -> i64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(elapsed) => i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX),
            Err(before_epoch) => {
                -i64::try_from(before_epoch.duration().as_secs()).unwrap_or(i64::MAX)
            }
        }
    }
}

/// A clock stopped at one instant.
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now_unix(&self) -> i64 {
        self.0
    }
}
