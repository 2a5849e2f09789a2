//! Device fences: ids handed out in queue order, progress tracked per
//! timeline (ABI reference §1.6).
//!
//! Ids come from one counter for the whole device, as in Linux: they are
//! increasing on every timeline, which is all the device asks. A fenced
//! response for id N means every fence up to N on the same timeline is done,
//! so a response the device folded into a later one cannot strand a waiter.
//!
//! **Points and device ids.** What the driver (and syncd) counts is a
//! fence's *point*, which grows for the life of the daemon. What the device
//! sees is its *device id*, the point less the current epoch's base: this
//! backend keeps only 32 bits of an id and casts it through an `int`, so a
//! device id stays at or below the wrap limit (`i32::MAX` by default). When
//! the next would pass it, no fenced command is stamped until every fence
//! stamped so far has completed (the backend then holds no fence, so ids
//! can start at 1 again without an old id retiring a new one); then a new
//! epoch begins.

use std::collections::HashMap;

use virtio_gpu_proto::{CtxId, FenceId};

/// A sequence of fences that complete in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timeline {
    /// The device-global timeline (no `INFO_RING_IDX`).
    Global,
    /// Ring `ring` of context `ctx` (`INFO_RING_IDX`, needs CONTEXT_INIT).
    Ring {
        /// The context.
        ctx: CtxId,
        /// Ring index, below `CtrlHdr::MAX_RINGS`.
        ring: u8,
    },
}

/// The largest device id this backend retires correctly: it casts ids
/// through an `int`.
pub const DEFAULT_WRAP: u64 = i32::MAX as u64;

/// Fence ids and per-timeline progress.
#[derive(Debug)]
pub struct Fences {
    next: u64,
    /// Device id = point - `base`.
    base: u64,
    /// The largest device id.
    wrap: u64,
    /// Epochs begun after the first.
    epochs: u64,
    signaled: HashMap<Timeline, FenceId>,
    /// The newest point stamped on each timeline.
    stamped: HashMap<Timeline, FenceId>,
    /// Timelines that moved since the last [`Fences::take_progress`].
    moved: Vec<Timeline>,
}

impl Default for Fences {
    fn default() -> Self {
        Fences::with_wrap(DEFAULT_WRAP)
    }
}

impl Fences {
    /// Fences whose device ids wrap after `wrap` (at least 1).
    pub fn with_wrap(wrap: u64) -> Self {
        Fences {
            next: 1,
            base: 0,
            wrap: wrap.max(1),
            epochs: 0,
            signaled: HashMap::new(),
            stamped: HashMap::new(),
            moved: Vec::new(),
        }
    }

    /// Whether every fence stamped so far has completed.
    fn drained(&self) -> bool {
        self.stamped
            .iter()
            .all(|(t, &s)| self.last_signaled(*t) >= s)
    }

    /// Whether a fenced command can be stamped now: not while an epoch's
    /// ids are used up and fences of it are still in flight.
    pub fn can_stamp(&self) -> bool {
        self.next - self.base <= self.wrap || self.drained()
    }

    /// Takes the next fence on `timeline`: its point and the device id for
    /// it, or None while a wrap waits for the device to drain (see
    /// [`Fences::can_stamp`]). Call only once the command is sure to enter
    /// the ring, so ids reach the device in increasing order.
    pub fn next_id(&mut self, timeline: Timeline) -> Option<(FenceId, FenceId)> {
        if self.next - self.base > self.wrap {
            if !self.drained() {
                return None;
            }
            self.base = self.next - 1;
            self.epochs += 1;
        }
        let point = FenceId::new(self.next);
        self.next += 1;
        self.stamped.insert(timeline, point);
        Some((point, self.device_id(point)))
    }

    /// The id the device knows `point` by (in the current epoch).
    pub fn device_id(&self, point: FenceId) -> FenceId {
        FenceId::new(point.get().saturating_sub(self.base))
    }

    /// Epochs begun after the first (device id wraps).
    pub fn epochs(&self) -> u64 {
        self.epochs
    }

    /// Records that `fence` on `timeline` completed; returns whether the
    /// timeline moved forward.
    pub fn signal(&mut self, timeline: Timeline, fence: FenceId) -> bool {
        let last = self.signaled.entry(timeline).or_insert(FenceId::new(0));
        if fence <= *last {
            return false;
        }
        if !self.moved.contains(&timeline) {
            self.moved.push(timeline);
        }
        *last = fence;
        true
    }

    /// Each timeline that moved since the last call, with the fence it has
    /// reached: one report per batch of completions, for the fence
    /// authority.
    pub fn take_progress(&mut self) -> Vec<(Timeline, FenceId)> {
        let moved = std::mem::take(&mut self.moved);
        moved
            .into_iter()
            .filter_map(|t| Some((t, *self.signaled.get(&t)?)))
            .collect()
    }

    /// The newest completed fence on `timeline` (0 when none).
    pub fn last_signaled(&self, timeline: Timeline) -> FenceId {
        self.signaled
            .get(&timeline)
            .copied()
            .unwrap_or(FenceId::new(0))
    }

    /// Whether `fence` on `timeline` has completed.
    pub fn is_signaled(&self, timeline: Timeline, fence: FenceId) -> bool {
        self.last_signaled(timeline) >= fence
    }

    /// Drops the ring timelines of a destroyed context.
    pub fn forget_context(&mut self, ctx: CtxId) {
        let of_ctx = |t: &Timeline| matches!(t, Timeline::Ring { ctx: c, .. } if *c == ctx);
        self.signaled.retain(|t, _| !of_ctx(t));
        self.stamped.retain(|t, _| !of_ctx(t));
        self.moved.retain(|t| !of_ctx(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_from_one() {
        let mut f = Fences::default();
        let one = FenceId::new(1);
        assert_eq!(f.next_id(Timeline::Global), Some((one, one)));
        let two = FenceId::new(2);
        assert_eq!(f.next_id(Timeline::Global), Some((two, two)));
    }

    #[test]
    fn device_ids_wrap_only_once_the_device_holds_no_fence() {
        let mut f = Fences::with_wrap(3);
        for _ in 0..3 {
            f.next_id(Timeline::Global).unwrap();
        }
        // The fourth would be device id 4: it waits for 1..=3.
        assert!(!f.can_stamp());
        assert_eq!(f.next_id(Timeline::Global), None);
        f.signal(Timeline::Global, FenceId::new(2));
        assert_eq!(f.next_id(Timeline::Global), None);
        f.signal(Timeline::Global, FenceId::new(3));
        assert!(f.can_stamp());
        // Point 4 is device id 1 of the next epoch; points go on.
        assert_eq!(
            f.next_id(Timeline::Global),
            Some((FenceId::new(4), FenceId::new(1)))
        );
        assert_eq!(f.epochs(), 1);
        assert_eq!(f.device_id(FenceId::new(6)), FenceId::new(3));
        assert!(!f.is_signaled(Timeline::Global, FenceId::new(4)));
        f.signal(Timeline::Global, FenceId::new(4));
        assert!(f.is_signaled(Timeline::Global, FenceId::new(4)));
    }

    #[test]
    fn signalling_n_covers_everything_below() {
        let mut f = Fences::default();
        assert!(f.signal(Timeline::Global, FenceId::new(5)));
        assert!(f.is_signaled(Timeline::Global, FenceId::new(3)));
        assert!(!f.is_signaled(Timeline::Global, FenceId::new(6)));
        // A late, older completion does not move the timeline back.
        assert!(!f.signal(Timeline::Global, FenceId::new(4)));
        assert_eq!(f.last_signaled(Timeline::Global), FenceId::new(5));
    }

    #[test]
    fn progress_is_reported_once_per_batch_with_the_newest_fence() {
        let mut f = Fences::default();
        let ring = Timeline::Ring {
            ctx: CtxId::new(1).unwrap(),
            ring: 0,
        };
        f.signal(Timeline::Global, FenceId::new(1));
        f.signal(Timeline::Global, FenceId::new(3));
        f.signal(ring, FenceId::new(2));
        f.signal(Timeline::Global, FenceId::new(2)); // late, no progress
        assert_eq!(
            f.take_progress(),
            vec![(Timeline::Global, FenceId::new(3)), (ring, FenceId::new(2))]
        );
        assert_eq!(f.take_progress(), vec![]);
        f.signal(ring, FenceId::new(4));
        assert_eq!(f.take_progress(), vec![(ring, FenceId::new(4))]);
    }

    #[test]
    fn timelines_are_independent_and_forgotten_with_their_context() {
        let mut f = Fences::default();
        let ctx = CtxId::new(3).unwrap();
        let ring = Timeline::Ring { ctx, ring: 1 };
        f.signal(ring, FenceId::new(9));
        assert!(!f.is_signaled(Timeline::Global, FenceId::new(1)));
        assert!(!f.is_signaled(Timeline::Ring { ctx, ring: 0 }, FenceId::new(1)));
        f.forget_context(ctx);
        assert_eq!(f.last_signaled(ring), FenceId::new(0));
    }
}
