//! Logging at a limited rate, for messages a client or the device can
//! cause at will (device error answers, bogus used entries): each is still
//! counted in `stats`, but the log keeps a bounded size, as Linux's
//! `printk_ratelimited` does for virtio-gpu's host errors.

use std::time::{Duration, Instant};

/// Linux's default ratelimit: a burst of 10 messages per 5 s window.
const BURST: u32 = 10;
const INTERVAL: Duration = Duration::from_secs(5);

/// Lets a burst of messages through per window and counts the rest.
#[derive(Debug, Default)]
pub struct RateLimit {
    window: Option<Instant>,
    in_window: u32,
    /// Suppressed since the last message let through.
    unreported: u64,
    /// Suppressed in all.
    suppressed: u64,
}

impl RateLimit {
    /// Whether a message may be logged now; `Some(n)` also says how many
    /// were suppressed since the last one let through (to log with it).
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        let fresh = self.window.is_none_or(|start| now >= start + INTERVAL);
        if fresh {
            self.window = Some(now);
            self.in_window = 0;
        }
        if self.in_window >= BURST {
            self.unreported += 1;
            self.suppressed += 1;
            return None;
        }
        self.in_window += 1;
        Some(std::mem::take(&mut self.unreported))
    }

    /// Messages suppressed since the start (for `stats`).
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

/// Logs at warn level through `$limit` (a [`RateLimit`]), noting how many
/// messages the limit swallowed before this one.
#[macro_export]
macro_rules! warn_limited {
    ($limit:expr, $($arg:tt)+) => {
        if let Some(suppressed) = $limit.allow(std::time::Instant::now()) {
            if suppressed > 0 {
                log::warn!("({suppressed} similar messages suppressed)");
            }
            log::warn!($($arg)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rest_of_the_window_is_counted() {
        let mut limit = RateLimit::default();
        let t0 = Instant::now();
        for _ in 0..BURST {
            assert_eq!(limit.allow(t0), Some(0));
        }
        for _ in 0..5 {
            assert_eq!(limit.allow(t0 + Duration::from_secs(1)), None);
        }
        assert_eq!(limit.suppressed(), 5);
        // The next window lets messages through again and reports the gap.
        assert_eq!(limit.allow(t0 + INTERVAL), Some(5));
        assert_eq!(limit.allow(t0 + INTERVAL), Some(0));
        assert_eq!(limit.suppressed(), 5);
    }
}
