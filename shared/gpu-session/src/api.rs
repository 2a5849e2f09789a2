//! The protocol of `scheme:virtio-gpu`, the daemon's private scheme
//! (drmd and debuggers), shared with its clients.
//!
//! - `stats`: counters as text (anyone). `objects`: the object table as
//!   text (root only).
//! - `trace`, `trace/full`, `trace/cap=N` (root only): the live stream of
//!   every command and device answer in both queues, in the format of
//!   virtio-gpud's `trace::record`, each record's bytes cut at 4096 bytes, not at
//!   all, or at N. Reads park while nothing is waiting (non-blocking: EAGAIN);
//!   a reader that falls 4 MiB behind loses records, and its stream says how
//!   many. Writing to `stats`, `objects` or `trace` is EBADF.
//! - `display/N` (root only): scanout N as the display the transport serves
//!   shows it, taken when the handle opens, as a Netpbm PAM image (RGB_ALPHA;
//!   a `# updates N` header comment counts the frame updates the display had
//!   received, `# monitor WxH` or `# monitor off` says what its monitor asks
//!   for): what tests compare and tools convert. Writing `WxH` (each 1 to
//!   16384) or `off` to `display/N` makes its monitor ask for that size or
//!   unplugs it, as resizing or closing a VMM's window does: the device
//!   signals a display change (EINVAL for other text). `display/cursor`: the
//!   cursor the same way (64x64 with its alpha, 0x0 before its first image;
//!   `# visible`, `# scanout`, `# x`, `# y`, `# hot_x`, `# hot_y` comments).
//!   ENOENT on a transport whose display cannot be read back (a real
//!   monitor) and for a scanout it lacks.
//! - `session` or `session/UID` (drmd's user and root only: EACCES for
//!   anyone else): a client of the device, serving the clients of user UID
//!   (default: the opener's). Its memory comes from regions that user's
//!   sessions share, under that user's quota (sessions: EMFILE beyond;
//!   memory: ENOMEM). Its resources, contexts and memory
//!   are its own (another session cannot name them) and are released on
//!   the device when the handle closes. Calls (metadata word 0):
//!   - [`QUEUE`]: payload = [`QueueHeader`] then a raw virtio-gpu request
//!     (header, fixed part, trailing payload). Checked against the object
//!     table (ids assigned to create commands), placed in the control
//!     queue, the device notified. The first 32 bytes come back as
//!     [`QueueReply`]. With [`QUEUE_FENCED`] it carries a fence on the
//!     device timeline; with [`QUEUE_DETACHED`] nobody waits for the answer
//!     (errors are logged, and a failed fence fails in syncd). A full ring
//!     parks the call until the device frees room — other sessions are
//!     served meanwhile — and ETIMEDOUT if it stays full for the device
//!     timeout. A non-blocking QUEUE (`try_call`, or a non-blocking handle)
//!     is answered EAGAIN instead, and once the device frees room after
//!     such a refusal every session handle polls readable (`fevent` READ),
//!     so a daemon that parks its own client on the refusal (drmd) needs to
//!     watch only one session; a read of the session (0 bytes) clears it.
//!     A QUEUE that reserves room ([`QueueHeader::reserve`]) is placed only
//!     when the ring also has room for that many more commands.
//!   - [`WAIT`]: payload = the ticket (`u64`), then room for the answer;
//!     parks until the device answered, then returns the answer's length
//!     with the answer in the payload (an error answer is a bare header).
//!     ETIMEDOUT when the device has not answered within its timeout
//!     (`--device-timeout-ms`, default 10 s): it is stuck or gone, which is
//!     logged and counted (`stuck` in `stats`), not waited on forever.
//!   - [`ALLOC`]: payload = length (`u64`) in; device address and mmap
//!     offset (`u64` each, the same) out: DMA memory for this session's
//!     backing, mappable through this handle at that offset (only that
//!     allocation, and only the session's own).
//!   - [`FREE`]: payload = a device address from ALLOC.
//!   - [`TIMELINE`]: the syncd timeline carrying the device's fences (the
//!     return value), ENODEV while syncd is not reachable.
//!   - [`INFO`]: [`DeviceInfo`] then one [`CapsetEntry`] per capset (the
//!     return value is the bytes written).
//!   - [`DISPLAYS`]: one [`DisplayEntry`] per scanout (the return value is
//!     the bytes written): each scanout's preferred mode and connection, as
//!     the device last answered GET_DISPLAY_INFO (at start, and after each
//!     display change it signalled; every session handle then polls
//!     readable, as for ring room).
//!   - [`EDID`]: payload = a scanout index (`u32`) in, then room; the
//!     scanout's EDID out, as the device last answered GET_EDID (the return
//!     value is its length: 0 when the device gives none; ENOENT for a
//!     scanout it lacks).
//!   - [`CAPSET`]: payload = capset id and version (`u32` each) in, then
//!     room; the capset's data out, from the daemon's cache (the return
//!     value is its length).
//!   - [`SHARE`]: payload = a resource id the session holds (`u64`) in, a
//!     share token (`u64`) out: with it another session can [`ADOPT`] the
//!     resource (PRIME). The same token each time; it dies with the
//!     resource.
//!   - [`ADOPT`]: payload = a share token (`u64`); the session becomes a
//!     holder of the resource, whose id is the return value (ENOENT for a
//!     token naming nothing).
//!   - [`RELEASE`]: payload = a resource id (`u64`) the session holds: it
//!     lets go. With the last holder the resource is unreffed on the device
//!     and the allocations its backing lies in are freed, whoever made
//!     them; until then they stay, even past their session's close.
//!
//!   While a resource has several holders, RESOURCE_UNREF, ATTACH_BACKING
//!   and DETACH_BACKING of it are EBUSY, and FREE of memory backing any
//!   resource is EBUSY.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The scheme's name.
pub const SCHEME: &str = "virtio-gpu";
/// Path of a new session.
pub const SESSION_PATH: &str = "session";
/// Path of the object table dump.
pub const OBJECTS_PATH: &str = "objects";
/// Path of the counters.
pub const STATS_PATH: &str = "stats";
/// Path of the trace stream (`trace`, `trace/full`, `trace/cap=N`).
pub const TRACE_PATH: &str = "trace";
/// Path of what a display the transport serves shows (`display/N`,
/// `display/cursor`).
pub const DISPLAY_PATH: &str = "display";

/// Call: place a command.
pub const QUEUE: u64 = 1;
/// Call: wait for a command's answer.
pub const WAIT: u64 = 2;
/// Call: allocate DMA memory.
pub const ALLOC: u64 = 3;
/// Call: free DMA memory.
pub const FREE: u64 = 4;
/// Call: the syncd timeline id of device fences.
pub const TIMELINE: u64 = 5;

/// Call: what the device negotiated.
pub const INFO: u64 = 6;
/// Call: a capset's data.
pub const CAPSET: u64 = 7;
/// Call: a token to share a resource with.
pub const SHARE: u64 = 8;
/// Call: hold a resource another session shared.
pub const ADOPT: u64 = 9;
/// Call: let go of a resource.
pub const RELEASE: u64 = 10;

/// Call: the scanouts' displays.
pub const DISPLAYS: u64 = 11;
/// Call: a scanout's EDID.
pub const EDID: u64 = 12;

/// Call: this session was taken back by a restarted instance of the
/// process that opened it (drmd). Payload: `u32` 1 if its client went away
/// meanwhile and it is about to close (its objects are reclaimed), else 0
/// (they are adopted). Answers how many objects it holds (resources,
/// contexts, memory regions); counted in the daemon's `stats`.
pub const TAKEN_OVER: u64 = 13;
/// Call: a restarted instance took over every session of the dead one.
/// Payload: `u64` how long that took, in microseconds. Ends the restart in
/// the daemon's `stats`.
pub const RESTARTED: u64 = 14;

/// One scanout in a [`DISPLAYS`] answer (`virtio_gpu_display_one` in the
/// host's byte order).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct DisplayEntry {
    /// Preferred position.
    pub x: u32,
    /// Preferred position.
    pub y: u32,
    /// Preferred width (0: the device has no preference).
    pub width: u32,
    /// Preferred height.
    pub height: u32,
    /// Non-zero when a display is connected.
    pub enabled: u32,
    /// The device's flags, as it gave them.
    pub flags: u32,
}

/// The start of an [`INFO`] answer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DeviceInfo {
    /// Negotiated feature bits (`virtio_gpu_proto::Features`).
    pub features: u64,
    /// Scanouts the device has.
    pub num_scanouts: u32,
    /// [`CapsetEntry`]s that follow.
    pub num_capsets: u32,
}

/// One capset in an [`INFO`] answer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct CapsetEntry {
    /// Capset id.
    pub id: u32,
    /// Newest version.
    pub max_version: u32,
    /// Bytes of data.
    pub max_size: u32,
    /// Zero.
    pub pad: u32,
}

/// [`QueueHeader`] flag: fence the command on the device timeline.
pub const QUEUE_FENCED: u32 = 1;
/// [`QueueHeader`] flag: nobody will wait for the answer.
pub const QUEUE_DETACHED: u32 = 2;
/// [`QueueHeader`] flag: a SUBMIT_3D whose stream is in the session's own
/// memory: the request is the command's fixed part then a [`StreamRef`];
/// the device reads the stream in place (the one copy of the submit path
/// is the client's write into that memory). The session must not change
/// those bytes until the command's fence has signalled.
pub const QUEUE_STREAM_IN_MEMORY: u32 = 4;

/// The longest SUBMIT_3D stream a session may queue: the backend allocates
/// a stream's size before it checks it (and Mesa's streams stay below
/// 256 KiB).
pub const MAX_STREAM: u32 = 16 << 20;

/// Where a [`QUEUE_STREAM_IN_MEMORY`] stream is.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct StreamRef {
    /// Device address (inside an allocation of the session's).
    pub addr: u64,
    /// Bytes of stream; must equal the command's `size`.
    pub len: u32,
    /// Zero.
    pub pad: u32,
}

/// What precedes the request in a [`QUEUE`] payload.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct QueueHeader {
    /// `QUEUE_*` flags.
    pub flags: u32,
    /// How many more commands the ring must have room for after this one
    /// (at most [`MAX_RESERVE`]): the first command of a group an ioctl
    /// sends reserves room for the rest, so that once it is placed the
    /// others are not held up by a full ring.
    pub reserve: u32,
}

/// The most commands a [`QueueHeader`] may reserve room for.
pub const MAX_RESERVE: u32 = 4;

/// What a [`QUEUE`] call writes over the start of its payload.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct QueueReply {
    /// The ticket to [`WAIT`] on (0 when detached).
    pub ticket: u64,
    /// The device fence id (the syncd timeline point), 0 if unfenced.
    pub fence: u64,
    /// The id assigned to a created resource or context, 0 otherwise.
    pub created: u64,
    /// Bytes of the device's answer: the room a [`WAIT`] on the ticket
    /// needs after its ticket (GET_CAPSET's includes the capset).
    pub answer_len: u64,
}
