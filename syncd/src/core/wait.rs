//! The syncobj wait rule (`DRM_IOCTL_SYNCOBJ_WAIT` and `_TIMELINE_WAIT`,
//! `drm_syncobj_array_wait_timeout`), evaluated once per wake-up. Time is
//! the caller's: it answers ETIME at the deadline (and polls when the
//! deadline is 0 or past), and re-evaluates whenever something moved.

use super::sync_file::FenceSet;
use super::syncobj::Syncobj;
use super::timeline::Timelines;
use super::{TimelineId, EINVAL};

bitflags::bitflags! {
    /// `DRM_SYNCOBJ_WAIT_FLAGS_*`; which ones an ioctl accepts is the
    /// caller's check (WAIT takes no WAIT_AVAILABLE).
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
    pub struct WaitFlags: u32 {
        /// Return when every item is satisfied, not the first.
        const WAIT_ALL = 1;
        /// A missing fence is waited for instead of being EINVAL.
        const WAIT_FOR_SUBMIT = 2;
        /// An item is satisfied once its point has a fence, signalled or
        /// not (timeline waits and EVENTFD); implies waiting for submit.
        const WAIT_AVAILABLE = 4;
        /// `deadline_nsec` is a hint for the fence signallers; no effect
        /// on the rule.
        const WAIT_DEADLINE = 8;
    }
}

/// One item of a (timeline) wait as the ioctl lists it, before the caller
/// resolves its handle: the point waited for, 0 for binary waits and for
/// timeline waits given no points array.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct WaitItem {
    /// The timeline point, or 0 for the syncobj's current fence.
    pub syncobj_point: u64,
}

/// What a wait comes to now.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WaitOutcome {
    /// The wait is over; `first_signaled` is what Linux writes back.
    Done {
        /// Without WAIT_ALL the lowest index satisfied now. With WAIT_ALL
        /// Linux writes the lowest index that was satisfied when the wait
        /// began, `u32::MAX` if none was: [`evaluate`] (one look, the
        /// wait's beginning) gives 0 when it finds everything satisfied;
        /// [`PendingWait`] remembers the beginning across wake-ups.
        first_signaled: u32,
    },
    /// Not yet; evaluate again when something changes or at the deadline.
    Pending,
    /// The wait fails now with this errno (EINVAL: a fence is missing and
    /// neither WAIT_FOR_SUBMIT nor WAIT_AVAILABLE was given).
    Error(i32),
}

fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

fn satisfied(set: &FenceSet, flags: WaitFlags, tl: &Timelines) -> bool {
    flags.contains(WaitFlags::WAIT_AVAILABLE) || set.status(tl).is_complete()
}

fn waits_for_submit(flags: WaitFlags) -> bool {
    flags.intersects(WaitFlags::WAIT_FOR_SUBMIT | WaitFlags::WAIT_AVAILABLE)
}

/// Linux's up-front pass over the items: each item is its syncobj at its
/// point (0 for binary waits), the fence being everything that point
/// depends on (a timeline point waits for the chain before it too).
///
/// - A missing fence (empty syncobj, or a point not yet submitted) is
///   EINVAL, even if other items are already signalled, unless
///   WAIT_FOR_SUBMIT or WAIT_AVAILABLE makes it merely unsatisfied.
/// - An item is satisfied once its fence completed, with or without error
///   (an errored fence completes the wait as in Linux); with
///   WAIT_AVAILABLE once the fence exists.
/// - Done when all items are satisfied, or without WAIT_ALL when any is,
///   with the lowest satisfied index as `first_signaled`.
///
/// It reads the syncobjs as they are now; Linux instead holds on to each
/// fence once found, so a RESET or SIGNAL during a wait does not change
/// what it waits for. [`PendingWait`] reproduces that, and the WAIT_ALL
/// `first_signaled` of a wait that had to block.
pub fn evaluate(objs: &[(&Syncobj, u64)], flags: WaitFlags, tl: &Timelines) -> WaitOutcome {
    let mut first = None;
    let mut count = 0;
    for (i, &(obj, point)) in objs.iter().enumerate() {
        match obj.fence_set_at(point) {
            Ok(Some(set)) => {
                if satisfied(&set, flags, tl) {
                    first.get_or_insert(i);
                    count += 1;
                }
            }
            _ if waits_for_submit(flags) => {}
            _ => return WaitOutcome::Error(EINVAL),
        }
    }
    if count == objs.len() || (count > 0 && !flags.contains(WaitFlags::WAIT_ALL)) {
        WaitOutcome::Done {
            first_signaled: first.map_or(u32::MAX, index),
        }
    } else {
        WaitOutcome::Pending
    }
}

/// A wait in progress with Linux's exact memory: each item's fence set is
/// captured the first time it exists and then waited on whatever happens
/// to the syncobj, and WAIT_ALL reports the index first satisfied when
/// the wait began. Call [`Self::poll`] after every change to the syncobjs
/// (Linux captures a submitted fence at the moment it is added, so a
/// reset before the next poll would hide it) and on each wake-up.
#[derive(Clone, Debug)]
pub struct PendingWait {
    flags: WaitFlags,
    points: Vec<u64>,
    pinned: Vec<Option<FenceSet>>,
    first_signaled: u32,
}

impl PendingWait {
    /// Starts a wait over `objs` (each at its point): captures the fences
    /// present, or fails with EINVAL as [`evaluate`] would. Then
    /// [`Self::poll`] tells whether it is already done.
    pub fn begin(objs: &[(&Syncobj, u64)], flags: WaitFlags, tl: &Timelines) -> Result<Self, i32> {
        let mut pinned = Vec::with_capacity(objs.len());
        let mut first_signaled = u32::MAX;
        for (i, &(obj, point)) in objs.iter().enumerate() {
            let set = match obj.fence_set_at(point) {
                Ok(Some(set)) => Some(set),
                _ if waits_for_submit(flags) => None,
                _ => return Err(EINVAL),
            };
            let now = set.as_ref().is_some_and(|s| satisfied(s, flags, tl));
            if now && first_signaled == u32::MAX {
                first_signaled = index(i);
            }
            pinned.push(set);
        }
        Ok(PendingWait {
            flags,
            points: objs.iter().map(|&(_, p)| p).collect(),
            pinned,
            first_signaled,
        })
    }

    /// Captures fences newly submitted for items that had none, then
    /// judges the captured fences. `objs` are the syncobjs given to
    /// [`Self::begin`], in the same order (a different count is EINVAL).
    pub fn poll(&mut self, objs: &[&Syncobj], tl: &Timelines) -> WaitOutcome {
        if objs.len() != self.pinned.len() {
            return WaitOutcome::Error(EINVAL);
        }
        for ((slot, obj), &point) in self.pinned.iter_mut().zip(objs).zip(&self.points) {
            if slot.is_none() {
                *slot = obj.fence_set_at(point).ok().flatten();
            }
        }
        let all = self.flags.contains(WaitFlags::WAIT_ALL);
        let mut count = 0;
        for (i, slot) in self.pinned.iter().enumerate() {
            if slot.as_ref().is_some_and(|s| satisfied(s, self.flags, tl)) {
                if !all {
                    return WaitOutcome::Done {
                        first_signaled: index(i),
                    };
                }
                count += 1;
            }
        }
        if count == self.pinned.len() {
            WaitOutcome::Done {
                first_signaled: self.first_signaled,
            }
        } else {
            WaitOutcome::Pending
        }
    }

    /// The timelines the captured fences are on, for a caller that keeps
    /// timelines alive while something refers to them.
    pub fn timelines(&self) -> impl Iterator<Item = TimelineId> + '_ {
        self.pinned
            .iter()
            .flatten()
            .flat_map(|s| s.fences().iter().filter_map(|f| f.timeline()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Fence;

    const NONE: WaitFlags = WaitFlags::empty();
    const ALL: WaitFlags = WaitFlags::WAIT_ALL;
    const SUBMIT: WaitFlags = WaitFlags::WAIT_FOR_SUBMIT;
    const AVAILABLE: WaitFlags = WaitFlags::WAIT_AVAILABLE;

    fn pt(t: TimelineId, point: u64) -> Fence {
        Fence::Point { timeline: t, point }
    }

    fn binary(f: Fence) -> Syncobj {
        let mut obj = Syncobj::new(false, 0);
        obj.replace(Some(f));
        obj
    }

    fn setup() -> (Timelines, TimelineId) {
        let mut tl = Timelines::new();
        let t = tl.create("ring");
        (tl, t)
    }

    #[test]
    fn flags_have_the_linux_values() {
        assert_eq!(WaitFlags::WAIT_ALL.bits(), 1);
        assert_eq!(WaitFlags::WAIT_FOR_SUBMIT.bits(), 2);
        assert_eq!(WaitFlags::WAIT_AVAILABLE.bits(), 4);
        assert_eq!(WaitFlags::WAIT_DEADLINE.bits(), 8);
        assert_eq!(WaitFlags::from_bits_truncate(0xff).bits(), 0xf);
    }

    #[test]
    fn wait_any_returns_the_first_signalled_index() {
        let (mut tl, t) = setup();
        let a = binary(pt(t, 5));
        let b = binary(pt(t, 2));
        let c = binary(pt(t, 1));
        let objs = [(&a, 0), (&b, 0), (&c, 0)];
        assert_eq!(evaluate(&objs, NONE, &tl), WaitOutcome::Pending);
        tl.signal(t, 2, 10).unwrap();
        assert_eq!(
            evaluate(&objs, NONE, &tl),
            WaitOutcome::Done { first_signaled: 1 }
        );
    }

    #[test]
    fn wait_all_waits_for_every_item_and_reports_index_zero_at_once() {
        let (mut tl, t) = setup();
        let a = binary(pt(t, 5));
        let b = binary(pt(t, 2));
        let objs = [(&a, 0), (&b, 0)];
        tl.signal(t, 2, 10).unwrap();
        assert_eq!(evaluate(&objs, ALL, &tl), WaitOutcome::Pending);
        tl.signal(t, 5, 20).unwrap();
        assert_eq!(
            evaluate(&objs, ALL, &tl),
            WaitOutcome::Done { first_signaled: 0 }
        );
    }

    #[test]
    fn a_blocked_wait_all_reports_what_was_signalled_when_it_began() {
        let (mut tl, t) = setup();
        let a = binary(pt(t, 5));
        let b = binary(pt(t, 2));
        let objs = [(&a, 0), (&b, 0)];
        tl.signal(t, 2, 10).unwrap();
        let mut w = PendingWait::begin(&objs, ALL, &tl).unwrap();
        assert_eq!(w.poll(&[&a, &b], &tl), WaitOutcome::Pending);
        tl.signal(t, 5, 20).unwrap();
        assert_eq!(
            w.poll(&[&a, &b], &tl),
            WaitOutcome::Done { first_signaled: 1 }
        );
        // Nothing signalled at the start: Linux leaves its ~0 in place.
        let c = binary(pt(t, 6));
        let mut w = PendingWait::begin(&[(&c, 0)], ALL, &tl).unwrap();
        tl.signal(t, 6, 30).unwrap();
        assert_eq!(
            w.poll(&[&c], &tl),
            WaitOutcome::Done {
                first_signaled: u32::MAX
            }
        );
    }

    #[test]
    fn a_null_fence_without_wait_for_submit_is_einval() {
        let (tl, _) = setup();
        let empty = Syncobj::new(false, 0);
        let done = Syncobj::new(true, 1);
        // Even though another item is already signalled.
        let objs = [(&done, 0), (&empty, 0)];
        assert_eq!(evaluate(&objs, NONE, &tl), WaitOutcome::Error(EINVAL));
        assert_eq!(evaluate(&objs, ALL, &tl), WaitOutcome::Error(EINVAL));
        assert_eq!(PendingWait::begin(&objs, NONE, &tl).err(), Some(EINVAL));
    }

    #[test]
    fn wait_for_submit_waits_for_a_fence_then_for_it_to_signal() {
        let (mut tl, t) = setup();
        let mut obj = Syncobj::new(false, 0);
        assert_eq!(evaluate(&[(&obj, 0)], SUBMIT, &tl), WaitOutcome::Pending);
        let mut w = PendingWait::begin(&[(&obj, 0)], SUBMIT, &tl).unwrap();
        assert_eq!(w.poll(&[&obj], &tl), WaitOutcome::Pending);
        obj.replace(Some(pt(t, 1)));
        assert_eq!(evaluate(&[(&obj, 0)], SUBMIT, &tl), WaitOutcome::Pending);
        assert_eq!(w.poll(&[&obj], &tl), WaitOutcome::Pending);
        tl.signal(t, 1, 10).unwrap();
        assert_eq!(
            evaluate(&[(&obj, 0)], SUBMIT, &tl),
            WaitOutcome::Done { first_signaled: 0 }
        );
        assert_eq!(
            w.poll(&[&obj], &tl),
            WaitOutcome::Done { first_signaled: 0 }
        );
    }

    #[test]
    fn a_timeline_wait_on_an_unsubmitted_point_is_einval_unless_waiting_for_submit() {
        let (mut tl, t) = setup();
        let mut obj = Syncobj::new(false, 0);
        obj.add_point(1, pt(t, 1));
        assert_eq!(
            evaluate(&[(&obj, 2)], NONE, &tl),
            WaitOutcome::Error(EINVAL)
        );
        assert_eq!(evaluate(&[(&obj, 2)], SUBMIT, &tl), WaitOutcome::Pending);
        obj.add_point(2, pt(t, 2));
        tl.signal(t, 2, 10).unwrap();
        assert_eq!(
            evaluate(&[(&obj, 2)], NONE, &tl),
            WaitOutcome::Done { first_signaled: 0 }
        );
    }

    #[test]
    fn wait_available_needs_only_the_fence_to_exist() {
        let (tl, t) = setup();
        let mut obj = Syncobj::new(false, 0);
        obj.add_point(1, pt(t, 1));
        assert_eq!(evaluate(&[(&obj, 3)], AVAILABLE, &tl), WaitOutcome::Pending);
        let mut w = PendingWait::begin(&[(&obj, 3)], AVAILABLE | ALL, &tl).unwrap();
        obj.add_point(3, pt(t, 3));
        // Submitted, not signalled: enough.
        assert_eq!(
            evaluate(&[(&obj, 3)], AVAILABLE, &tl),
            WaitOutcome::Done { first_signaled: 0 }
        );
        assert_eq!(
            w.poll(&[&obj], &tl),
            WaitOutcome::Done {
                first_signaled: u32::MAX
            }
        );
    }

    #[test]
    fn an_errored_fence_completes_the_wait() {
        let (mut tl, t) = setup();
        let a = binary(pt(t, 1));
        let b = binary(pt(t, 9));
        tl.fail(t, 1, 5, 10).unwrap();
        assert_eq!(
            evaluate(&[(&b, 0), (&a, 0)], NONE, &tl),
            WaitOutcome::Done { first_signaled: 1 }
        );
        // An abandoned timeline's pending points end the wait too.
        tl.abandon(t, 20);
        assert_eq!(
            evaluate(&[(&a, 0), (&b, 0)], ALL, &tl),
            WaitOutcome::Done { first_signaled: 0 }
        );
    }

    #[test]
    fn a_timeline_point_waits_for_the_points_before_it() {
        let mut tl = Timelines::new();
        let a = tl.create("a");
        let b = tl.create("b");
        let mut obj = Syncobj::new(false, 0);
        obj.add_point(1, pt(a, 1));
        obj.add_point(2, pt(b, 1));
        tl.signal(b, 1, 10).unwrap();
        assert_eq!(evaluate(&[(&obj, 2)], NONE, &tl), WaitOutcome::Pending);
        // A binary wait on a timeline syncobj waits for the whole chain.
        assert_eq!(evaluate(&[(&obj, 0)], NONE, &tl), WaitOutcome::Pending);
        assert_eq!(evaluate(&[(&obj, 1)], NONE, &tl), WaitOutcome::Pending);
        tl.signal(a, 1, 20).unwrap();
        assert_eq!(
            evaluate(&[(&obj, 2)], NONE, &tl),
            WaitOutcome::Done { first_signaled: 0 }
        );
    }

    #[test]
    fn a_begun_wait_keeps_its_fence_across_reset_and_signal() {
        let (mut tl, t) = setup();
        let mut obj = binary(pt(t, 1));
        let mut w = PendingWait::begin(&[(&obj, 0)], NONE, &tl).unwrap();
        assert_eq!(w.timelines().collect::<Vec<_>>(), vec![t]);
        obj.reset();
        assert_eq!(w.poll(&[&obj], &tl), WaitOutcome::Pending);
        obj.signal(5);
        assert_eq!(w.poll(&[&obj], &tl), WaitOutcome::Pending);
        tl.signal(t, 1, 10).unwrap();
        assert_eq!(
            w.poll(&[&obj], &tl),
            WaitOutcome::Done { first_signaled: 0 }
        );
    }

    #[test]
    fn a_poll_with_other_objects_than_begun_is_einval() {
        let (tl, _) = setup();
        let obj = Syncobj::new(true, 0);
        let mut w = PendingWait::begin(&[(&obj, 0)], NONE, &tl).unwrap();
        assert_eq!(w.poll(&[], &tl), WaitOutcome::Error(EINVAL));
        assert_eq!(w.poll(&[&obj, &obj], &tl), WaitOutcome::Error(EINVAL));
    }

    #[test]
    fn an_empty_wait_is_done_at_once() {
        let (tl, _) = setup();
        assert_eq!(
            evaluate(&[], ALL, &tl),
            WaitOutcome::Done {
                first_signaled: u32::MAX
            }
        );
        let mut w = PendingWait::begin(&[], NONE, &tl).unwrap();
        assert_eq!(
            w.poll(&[], &tl),
            WaitOutcome::Done {
                first_signaled: u32::MAX
            }
        );
    }
}
