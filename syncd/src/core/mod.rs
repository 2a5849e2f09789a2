//! The pure core of the fence authority: timelines, sync_file fence sets,
//! syncobj containers and the wait rule, with Linux's semantics
//! (`dma-fence.c`, `dma-fence-chain.c`, `sync_file.c`, `drm_syncobj.c`).
//!
//! Nothing here does I/O or reads a clock: the scheme layer passes the
//! current CLOCK_MONOTONIC time as `now_ns`, so every rule can be tested
//! with made-up times and every answer is a function of the calls made.
//!
//! The model: a fence is either an already-signalled stub or a point on a
//! [`Timelines`] timeline (the owner signals points in order, so point `N`
//! done means every point `<= N` is done). A [`FenceSet`] is a sync_file's
//! immutable contents; a [`Syncobj`] is the mutable container of a DRM
//! syncobj handle; [`evaluate`] and [`PendingWait`] are the
//! `DRM_IOCTL_SYNCOBJ_(TIMELINE_)WAIT` rule.
//!
//! Errors are plain positive errno values ([`EINVAL`], ...), the form the
//! scheme layer turns into its own error type.

pub mod sync_file;
pub mod syncobj;
pub mod timeline;
pub mod wait;

pub use sync_file::FenceSet;
pub use syncobj::Syncobj;
pub use timeline::Timelines;
pub use wait::{evaluate, PendingWait, WaitFlags, WaitItem, WaitOutcome};

/// No such file or directory: a fence on a timeline that no longer exists.
pub const ENOENT: i32 = 2;
/// Invalid argument: unknown timeline, point not submitted, fence missing.
pub const EINVAL: i32 = 22;
/// Timer expired: what a wait answers at its deadline (the caller's rule).
pub const ETIME: i32 = 62;
/// Operation canceled: the error of points whose timeline owner went away.
pub const ECANCELED: i32 = 125;

/// A timeline's identity, allocated by [`Timelines::create`] from 1.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TimelineId(pub u32);

/// One fence: a one-shot completion whose status the [`Timelines`] know.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Fence {
    /// Signalled from birth (Linux's stub fence: `SYNCOBJ_SIGNAL`,
    /// `CREATE_SIGNALED`, `TIMELINE_SIGNAL`), at `signaled_ns`.
    Stub {
        /// When it was made, which is when it signalled.
        signaled_ns: u64,
    },
    /// Point `point` of a timeline: done once the owner signals `>= point`.
    Point {
        /// The timeline.
        timeline: TimelineId,
        /// The point on it; point 0 counts as already done.
        point: u64,
    },
}

impl Fence {
    /// The timeline the fence lives on, if any: what a caller that keeps
    /// timelines alive while fences refer to them counts.
    pub fn timeline(self) -> Option<TimelineId> {
        match self {
            Fence::Stub { .. } => None,
            Fence::Point { timeline, .. } => Some(timeline),
        }
    }
}

/// Where a fence (or a set of them) stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FenceStatus {
    /// Not signalled yet.
    Active,
    /// Signalled without error.
    Signaled {
        /// CLOCK_MONOTONIC time of the signal.
        at_ns: u64,
    },
    /// Signalled with an error; it still completes waits, as in Linux.
    Error {
        /// The positive errno.
        errno: i32,
        /// CLOCK_MONOTONIC time it completed.
        at_ns: u64,
    },
}

impl FenceStatus {
    /// Whether the fence has completed, with or without error: what makes
    /// a sync_file readable and a syncobj wait return.
    pub fn is_complete(self) -> bool {
        !matches!(self, FenceStatus::Active)
    }

    /// The sync_file ABI's status number: 1 signalled, 0 active, negative
    /// errno on error (never positive for an error, whatever errno holds).
    pub fn sync_status(self) -> i32 {
        match self {
            FenceStatus::Active => 0,
            FenceStatus::Signaled { .. } => 1,
            FenceStatus::Error { errno, .. } => errno.saturating_abs().saturating_neg(),
        }
    }

    /// The completion time, 0 while active (`sync_fence_info.timestamp_ns`).
    pub fn timestamp_ns(self) -> u64 {
        match self {
            FenceStatus::Active => 0,
            FenceStatus::Signaled { at_ns } | FenceStatus::Error { at_ns, .. } => at_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_status_follows_the_sync_file_convention() {
        assert_eq!(FenceStatus::Active.sync_status(), 0);
        assert_eq!(FenceStatus::Signaled { at_ns: 5 }.sync_status(), 1);
        let e = FenceStatus::Error {
            errno: ECANCELED,
            at_ns: 5,
        };
        assert_eq!(e.sync_status(), -ECANCELED);
        assert_eq!(e.timestamp_ns(), 5);
        // A hostile errno value never turns an error into "signalled".
        let odd = FenceStatus::Error {
            errno: i32::MIN,
            at_ns: 0,
        };
        assert!(odd.sync_status() < 0);
    }

    #[test]
    fn only_points_name_a_timeline() {
        assert_eq!(Fence::Stub { signaled_ns: 1 }.timeline(), None);
        let f = Fence::Point {
            timeline: TimelineId(3),
            point: 9,
        };
        assert_eq!(f.timeline(), Some(TimelineId(3)));
    }
}
