//! The protocol of `scheme:sync`, shared by the daemon and its clients.
//!
//! Paths (opened relative to `/scheme/sync/`):
//! - `timeline/<name>`: creates a timeline owned by the handle. Calls:
//!   [`TIMELINE_ID`], [`SIGNAL`] (payload: the point as `u64`),
//!   [`FAIL`] (payload: point `u64`, errno `i32`, pad `u32`). Closing the
//!   handle abandons the timeline: points not yet signalled fail with
//!   ECANCELED, so nobody waits forever on a fence no one can signal.
//! - `timelines`: the read-only pages of [`PAGE_SLOTS`] little-endian
//!   `u64` slots each: slot `id` of the first holds timeline `id`'s last
//!   signalled (or failed) point, for busy checks without a call; slot `id`
//!   of the second, at [`FAILED_AT`], its highest failed point (0: none;
//!   `u64::MAX`: abandoned, every later point fails), so a waiter asks
//!   syncd a fence's status only when it may have failed. The handle is
//!   readable (poll) while there was
//!   progress since it last read — a timeline moved, or a syncobj got a
//!   new fence (SIGNAL, TIMELINE_SIGNAL, TRANSFER, FD_TO_HANDLE); a read
//!   returns the progress count (`u64`) and acknowledges, so a daemon with
//!   parked waits sleeps until progress instead of polling. `dup` with a
//!   [`FenceRef`] gives a sync_file of that fence, as opening
//!   `fence/<timeline>/<point>` does, without a new connection to syncd
//!   (drmd makes its out-fences so).
//! - `fence/<timeline>/<point>`: a sync_file holding that one fence.
//!   sync_file ioctls are calls with the ioctl's nr as metadata word 0:
//!   FILE_INFO (4), SET_DEADLINE (5); readable (fevent) once every fence
//!   has signalled; [`TOKEN`] names it for another handle's request. MERGE
//!   (3) returns a new file, so it is a `dup` whose buffer is the
//!   `sync_file::Merge` wire struct (with the other file's token).
//! - `syncobj`: a table of syncobjs (one per DRM file). The syncobj ioctls
//!   are calls with the DRM nr as metadata word 0 and the relibc wire
//!   encoding as payload (`drm_uapi::syncobj`); HANDLE_TO_FD returns a new
//!   file, so it is a `dup` whose buffer is the `HandleToFd` wire struct;
//!   FD_TO_HANDLE takes the file's [`TOKEN`] in place of its fd.
//! - `` (the root): reading it gives counters, for debugging and tests.

/// The scheme's name.
pub const SCHEME: &str = "sync";
/// Prefix of a timeline-creating path.
pub const TIMELINE_PATH: &str = "timeline/";
/// Prefix of a single-fence sync_file path.
pub const FENCE_PATH: &str = "fence/";
/// The syncobj table path.
pub const SYNCOBJ_PATH: &str = "syncobj";
/// The timeline page path.
pub const PAGE_PATH: &str = "timelines";

/// A fence, as a `dup` of the page handle names it.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
    zerocopy::KnownLayout,
)]
pub struct FenceRef {
    /// The timeline.
    pub timeline: u32,
    /// Zero.
    pub pad: u32,
    /// The point on it.
    pub point: u64,
}

/// Call: the owned timeline's id (the call's return value).
pub const TIMELINE_ID: u64 = 0x100;
/// Call: signal the owned timeline up to a point.
pub const SIGNAL: u64 = 0x101;
/// Call: mark one point of the owned timeline failed.
pub const FAIL: u64 = 0x102;
/// Call on a syncobj table (numbered clear of [`TOKEN`], which every
/// handle answers): EXECBUFFER's post-dependencies, all or
/// nothing. Payload: [`SubmitDeps`], then `count_outs` [`OutSyncobj`]s,
/// then `count_resets` handles (`u32`). Each out-syncobj gets fence `point`
/// of `timeline` (at its own timeline point when that is nonzero, else in
/// place of its fence), then each reset handle is reset.
pub const SUBMIT_DEPS: u64 = 0x120;
/// Call on a syncobj table, with [`SUBMIT_DEPS`]'s payload: changes
/// nothing, only resolves the timeline and every handle (an unknown one is
/// ENOENT), so that a submit learns, before it queues anything, that
/// publishing its results cannot fail.
pub const CHECK_DEPS: u64 = 0x121;
const _: () = assert!(SUBMIT_DEPS != TOKEN && CHECK_DEPS != TOKEN);

/// The header of a [`SUBMIT_DEPS`] or [`CHECK_DEPS`] call.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
    zerocopy::KnownLayout,
)]
pub struct SubmitDeps {
    /// The timeline of the submit's fence.
    pub timeline: u32,
    /// Zero.
    pub pad: u32,
    /// The submit's fence on `timeline` (ignored by [`CHECK_DEPS`]).
    pub point: u64,
    /// Out-syncobjs that follow.
    pub count_outs: u32,
    /// Handles to reset that follow them.
    pub count_resets: u32,
}

/// An out-syncobj of a [`SUBMIT_DEPS`] call.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
    zerocopy::KnownLayout,
)]
pub struct OutSyncobj {
    /// The syncobj's handle in the table.
    pub handle: u32,
    /// Zero.
    pub pad: u32,
    /// The timeline point to add the fence at; 0 replaces its fence.
    pub point: u64,
}

/// Call: this handle's capability token (payload: `u64` out), which names
/// it in another handle's request in place of an fd.
pub const TOKEN: u64 = scheme_seam::token::CALL;

/// Bytes of the timeline pages (last signalled, then last failed).
pub const PAGE_LEN: usize = 8192;
/// Where the slots of failed points start.
pub const FAILED_AT: usize = PAGE_LEN / 2;
/// Timelines the pages have slots for; ids at or above it are not
/// published.
pub const PAGE_SLOTS: u32 = (FAILED_AT / 8) as u32;

/// The `sync_fence_info` driver name, as Linux's virtio-gpu reports it.
pub const DRIVER_NAME: &str = "virtio_gpu";
