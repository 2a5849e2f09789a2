//! Device fences: ids handed out in queue order, progress tracked per
//! timeline (ABI reference §1.6).
//!
//! Ids come from one counter for the whole device, as in Linux: they are
//! increasing on every timeline, which is all the device asks. A fenced
//! response for id N means every fence up to N on the same timeline is done,
//! so a response the device folded into a later one cannot strand a waiter.

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

/// Fence ids and per-timeline progress.
#[derive(Debug)]
pub struct Fences {
    next: u64,
    signaled: HashMap<Timeline, FenceId>,
    /// Timelines that moved since the last [`Fences::take_progress`].
    moved: Vec<Timeline>,
}

impl Default for Fences {
    fn default() -> Self {
        Fences {
            next: 1,
            signaled: HashMap::new(),
            moved: Vec::new(),
        }
    }
}

impl Fences {
    /// Takes the next id. Call only once the command is sure to enter the
    /// ring, so ids reach the device in increasing order.
    pub fn next_id(&mut self) -> FenceId {
        let id = FenceId::new(self.next);
        self.next += 1;
        id
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
        self.moved.retain(|t| !of_ctx(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_from_one() {
        let mut f = Fences::default();
        assert_eq!(f.next_id(), FenceId::new(1));
        assert_eq!(f.next_id(), FenceId::new(2));
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
