//! sync_file contents: an immutable set of fences, merged and judged the
//! way `sync_file.c` and `dma_fence_unwrap_merge` do.

use super::timeline::Timelines;
use super::{Fence, FenceStatus};

/// The fences of one sync_file, at most one per timeline plus at most one
/// stub, in a fixed order (the stub, then timelines by id) so that "first
/// error" and FILE_INFO's array order are reproducible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceSet {
    fences: Vec<Fence>,
}

/// The identity Linux dedups on (the fence context): all stubs are one
/// "context" here since they are signalled anyway, each timeline is one.
fn context(f: &Fence) -> (u8, u32) {
    match f {
        Fence::Stub { .. } => (0, 0),
        Fence::Point { timeline, .. } => (1, timeline.0),
    }
}

/// Of two fences on one context, the one that completes last.
fn later(a: Fence, b: Fence) -> Fence {
    match (a, b) {
        (Fence::Stub { signaled_ns: x }, Fence::Stub { signaled_ns: y }) => Fence::Stub {
            signaled_ns: x.max(y),
        },
        (Fence::Point { timeline, point: p }, Fence::Point { point: q, .. }) => Fence::Point {
            timeline,
            point: p.max(q),
        },
        _ => a,
    }
}

impl FenceSet {
    /// A set of one fence (`sync_file_create`).
    pub fn single(f: Fence) -> Self {
        FenceSet { fences: vec![f] }
    }

    /// Builds the canonical set of `fences`; for the crate's own use where
    /// many fences are gathered at once (a syncobj chain's dependencies).
    pub(crate) fn from_fences(mut fences: Vec<Fence>) -> Self {
        fences.sort_unstable_by_key(context);
        let mut out: Vec<Fence> = Vec::with_capacity(fences.len());
        for f in fences {
            match out.last_mut() {
                Some(last) if context(last) == context(&f) => *last = later(*last, f),
                _ => out.push(f),
            }
        }
        FenceSet { fences: out }
    }

    /// SYNC_IOC_MERGE: the union of both sets, keeping only the later point
    /// where both hold a fence of the same timeline (later on a timeline
    /// means done no earlier). Stubs collapse into one carrying the latest
    /// signal time; Linux keeps each private stub as its own context, but
    /// a signalled fence adds nothing to a wait, and modern Linux drops
    /// signalled fences from merges altogether. Neither input changes.
    pub fn merge(&self, other: &FenceSet) -> FenceSet {
        let mut all = Vec::with_capacity(self.fences.len() + other.fences.len());
        all.extend_from_slice(&self.fences);
        all.extend_from_slice(&other.fences);
        FenceSet::from_fences(all)
    }

    /// The fences, in the set's fixed order (FILE_INFO's array).
    pub fn fences(&self) -> &[Fence] {
        &self.fences
    }

    /// The status of the sync_file as a whole, i.e. of Linux's merged
    /// fence (what poll and FILE_INFO with `num_fences` 0 report): active
    /// while any member is; once all completed, the first error in order
    /// if any member failed, else signalled. Either way the time is the
    /// latest member's, when the last one completed.
    pub fn status(&self, tl: &Timelines) -> FenceStatus {
        let mut at_ns = 0;
        let mut error = None;
        for &f in &self.fences {
            match tl.status(f) {
                FenceStatus::Active => return FenceStatus::Active,
                FenceStatus::Signaled { at_ns: t } => at_ns = at_ns.max(t),
                FenceStatus::Error { errno, at_ns: t } => {
                    at_ns = at_ns.max(t);
                    error.get_or_insert(errno);
                }
            }
        }
        match error {
            Some(errno) => FenceStatus::Error { errno, at_ns },
            None => FenceStatus::Signaled { at_ns },
        }
    }

    /// The file status FILE_INFO reports when it also fills the per-fence
    /// array (`num_fences` > 0): Linux then takes the first member in
    /// order that is not cleanly signalled, active or failed, so an error
    /// before an active member shows although the file is not done yet.
    pub fn info_status(&self, tl: &Timelines) -> FenceStatus {
        let mut at_ns = 0;
        for &f in &self.fences {
            match tl.status(f) {
                FenceStatus::Signaled { at_ns: t } => at_ns = at_ns.max(t),
                other => return other,
            }
        }
        FenceStatus::Signaled { at_ns }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{TimelineId, ECANCELED};

    fn pt(t: TimelineId, point: u64) -> Fence {
        Fence::Point { timeline: t, point }
    }

    #[test]
    fn merge_on_one_timeline_keeps_the_later_point() {
        let a = FenceSet::single(pt(TimelineId(1), 3));
        let b = FenceSet::single(pt(TimelineId(1), 8));
        assert_eq!(a.merge(&b).fences(), &[pt(TimelineId(1), 8)]);
        assert_eq!(b.merge(&a).fences(), &[pt(TimelineId(1), 8)]);
    }

    #[test]
    fn merge_across_timelines_is_the_union_and_leaves_inputs_alone() {
        let a = FenceSet::single(pt(TimelineId(2), 3));
        let b =
            FenceSet::single(pt(TimelineId(1), 8)).merge(&FenceSet::single(pt(TimelineId(2), 1)));
        let m = a.merge(&b);
        assert_eq!(m.fences(), &[pt(TimelineId(1), 8), pt(TimelineId(2), 3)]);
        assert_eq!(a.fences(), &[pt(TimelineId(2), 3)]);
        assert_eq!(b.fences(), &[pt(TimelineId(1), 8), pt(TimelineId(2), 1)]);
    }

    #[test]
    fn merged_stubs_collapse_into_the_latest() {
        let a = FenceSet::single(Fence::Stub { signaled_ns: 5 });
        let b = FenceSet::single(Fence::Stub { signaled_ns: 9 })
            .merge(&FenceSet::single(pt(TimelineId(1), 1)));
        assert_eq!(
            a.merge(&b).fences(),
            &[Fence::Stub { signaled_ns: 9 }, pt(TimelineId(1), 1)]
        );
    }

    #[test]
    fn status_is_active_while_any_member_is_active() {
        let mut tl = Timelines::new();
        let t1 = tl.create("a");
        let t2 = tl.create("b");
        let set = FenceSet::single(pt(t1, 1)).merge(&FenceSet::single(pt(t2, 1)));
        assert_eq!(set.status(&tl), FenceStatus::Active);
        // Even a failed member does not complete the file early.
        tl.fail(t1, 1, 5, 10).unwrap();
        assert_eq!(set.status(&tl), FenceStatus::Active);
        tl.signal(t2, 1, 20).unwrap();
        assert_eq!(
            set.status(&tl),
            FenceStatus::Error {
                errno: 5,
                at_ns: 20
            }
        );
    }

    #[test]
    fn status_of_a_completed_set_is_signalled_at_the_latest_member() {
        let mut tl = Timelines::new();
        let t1 = tl.create("a");
        let t2 = tl.create("b");
        let set = FenceSet::single(pt(t1, 1))
            .merge(&FenceSet::single(pt(t2, 1)))
            .merge(&FenceSet::single(Fence::Stub { signaled_ns: 3 }));
        tl.signal(t2, 1, 50).unwrap();
        tl.signal(t1, 1, 20).unwrap();
        assert_eq!(set.status(&tl), FenceStatus::Signaled { at_ns: 50 });
        assert_eq!(set.info_status(&tl), FenceStatus::Signaled { at_ns: 50 });
    }

    #[test]
    fn status_error_takes_precedence_over_signalled_and_the_first_error_wins() {
        let mut tl = Timelines::new();
        let t1 = tl.create("a");
        let t2 = tl.create("b");
        let t3 = tl.create("c");
        let set = FenceSet::single(pt(t1, 1))
            .merge(&FenceSet::single(pt(t2, 1)))
            .merge(&FenceSet::single(pt(t3, 1)));
        tl.signal(t1, 1, 10).unwrap();
        tl.abandon(t3, 40);
        tl.fail(t2, 1, 5, 30).unwrap();
        assert_eq!(
            set.status(&tl),
            FenceStatus::Error {
                errno: 5,
                at_ns: 40
            }
        );
        // Only the first error shows; the ECANCELED behind it does not.
        assert_ne!(
            set.status(&tl),
            FenceStatus::Error {
                errno: ECANCELED,
                at_ns: 40
            }
        );
    }

    #[test]
    fn info_status_takes_the_first_member_not_cleanly_signalled() {
        let mut tl = Timelines::new();
        let t1 = tl.create("a");
        let t2 = tl.create("b");
        let set = FenceSet::single(pt(t1, 1)).merge(&FenceSet::single(pt(t2, 1)));
        tl.fail(t1, 1, 5, 10).unwrap();
        // t2 still active, but the failed t1 comes first.
        assert_eq!(
            set.info_status(&tl),
            FenceStatus::Error {
                errno: 5,
                at_ns: 10
            }
        );
        assert_eq!(set.status(&tl), FenceStatus::Active);
    }

    #[test]
    fn a_set_on_a_removed_timeline_completes_with_enoent() {
        let mut tl = Timelines::new();
        let t = tl.create("a");
        let set = FenceSet::single(pt(t, 1));
        tl.remove(t);
        assert_eq!(
            set.status(&tl),
            FenceStatus::Error {
                errno: crate::core::ENOENT,
                at_ns: 0
            }
        );
    }
}
