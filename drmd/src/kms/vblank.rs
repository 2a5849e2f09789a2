//! A CRTC's simulated vblank, as vkms's hrtimer: while the CRTC is on, a
//! vblank happens every frame time of its mode, counted from when it went
//! on; the count stands still while it is off. Nothing ticks: the count and
//! the time of any vblank are computed from the clock, and the daemon's
//! timer is armed for the next vblank only while something waits for one.

use std::time::{Duration, Instant};

/// Far enough in the future to stand for "never".
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// One CRTC's vblank counter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vblank {
    /// When the count was `base` (None: the CRTC is off), and that instant
    /// on CLOCK_MONOTONIC in ns (the clock of event timestamps).
    epoch: Option<(Instant, u64)>,
    /// The count at `epoch`.
    base: u64,
    /// Nanoseconds per frame.
    period: u64,
}

impl Vblank {
    /// The CRTC goes on (or changes mode) now, with `period_ns` per frame;
    /// the count goes on from where it was.
    pub fn start(&mut self, period_ns: u64, now: Instant) {
        self.base = self.count(now);
        let clock = sync_client::clock::now_ns().saturating_sub(now.elapsed().as_nanos() as u64);
        self.epoch = Some((now, clock));
        self.period = period_ns.max(1);
    }

    /// The CRTC goes off: the count stops.
    pub fn stop(&mut self, now: Instant) {
        self.base = self.count(now);
        self.epoch = None;
    }

    /// The CRTC now scans out `mode` (None: it is off, or DPMS turned it
    /// off): the count goes on at that mode's rate, or stops.
    pub fn follow(&mut self, mode: Option<&drm_uapi::kms::ModeInfo>, now: Instant) {
        match mode {
            Some(m) => self.start(super::modes::frame_ns(m), now),
            None => self.stop(now),
        }
    }

    /// Its epoch (instant and monotonic ns), base count and frame time.
    pub(super) fn parts(&self) -> (Option<(Instant, u64)>, u64, u64) {
        (self.epoch, self.base, self.period)
    }

    /// A vblank of these parts (see [`Vblank::parts`]).
    pub(super) fn from_parts(epoch: Option<(Instant, u64)>, base: u64, period: u64) -> Vblank {
        Vblank {
            epoch,
            base,
            period,
        }
    }

    /// Whether the CRTC is on.
    pub fn on(&self) -> bool {
        self.epoch.is_some()
    }

    /// Vblanks so far.
    pub fn count(&self, now: Instant) -> u64 {
        match self.epoch {
            Some((epoch, _)) => {
                let since = now.saturating_duration_since(epoch).as_nanos() as u64;
                self.base + since / self.period
            }
            None => self.base,
        }
    }

    /// When vblank `seq` happened or will (for a CRTC that is off: now).
    pub fn time(&self, seq: u64, now: Instant) -> Instant {
        match self.epoch {
            // A target the clock cannot reach (a client may queue for any
            // u64 sequence) is a year away: it waits as long as anyone will.
            Some((epoch, _)) => epoch
                .checked_add(Duration::from_nanos(self.since_epoch(seq)))
                .unwrap_or(now + FAR),
            None => now,
        }
    }

    /// When vblank `seq` happened or will, in CLOCK_MONOTONIC ns (for a CRTC
    /// that is off: now): on the grid of the period exactly, as event
    /// timestamps must be.
    pub fn time_ns(&self, seq: u64) -> u64 {
        match self.epoch {
            Some((_, clock)) => clock.saturating_add(self.since_epoch(seq)),
            None => sync_client::clock::now_ns(),
        }
    }

    fn since_epoch(&self, seq: u64) -> u64 {
        seq.saturating_sub(self.base).saturating_mul(self.period)
    }

    /// When the next vblank after `now` happens (None: off).
    pub fn next(&self, now: Instant) -> Option<Instant> {
        self.epoch?;
        Some(self.time(self.count(now) + 1, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_frames_while_on_and_stands_still_while_off() {
        let t0 = Instant::now();
        let mut v = Vblank::default();
        assert_eq!(v.next(t0), None);
        v.start(10_000_000, t0);
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(v.count(ms(5)), 0);
        assert_eq!(v.count(ms(25)), 2);
        assert_eq!(v.next(ms(25)), Some(ms(30)));
        assert_eq!(v.time(2, ms(25)), ms(20));
        v.stop(ms(25));
        assert_eq!(v.count(ms(1000)), 2);
        v.start(10_000_000, ms(1000));
        assert_eq!(v.count(ms(1015)), 3);
        // A sequence no clock reaches: far away, no overflow.
        assert!(v.time(u64::MAX, ms(1015)) > ms(1015) + Duration::from_secs(3600));
        assert_eq!(v.time_ns(u64::MAX), u64::MAX);
    }
}
