//! What a scheme implements. The same implementation is served on Redox
//! (by the `redox` module) and on Linux (by the `linux` module).
//!
//! Waiting is a type: `read` and `call` answer [`Answer::Ready`] or
//! [`Answer::Park`], naming what the request waits for ([`WakeKey`]s) and
//! until when. The serving loop keeps a parked request with its keys and
//! deadline and runs it again only when one of its keys is woken
//! ([`Context::wake`], from any request, event source or deadline of the
//! daemon) or its deadline passes ([`Context::expired`]); a non-blocking
//! request that would park is answered [`Errno::EAGAIN`] instead. A handler
//! that parks must leave its state as it found it: the request runs again
//! from the start. A parked request whose caller goes away or cancels is
//! answered [`Errno::ECANCELED`] (if anyone is left to answer) and never
//! runs again. `docs/SCHEME.md` states the whole contract.

use std::os::fd::{OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

use crate::errno::{Errno, Result};
use crate::keep::Keeper;
use crate::shm::ShmRegion;

/// A scheme's number for one open handle, chosen by the scheme.
pub type HandleId = usize;

bitflags::bitflags! {
    /// Readiness a client can wait for (`fevent`), as on Redox.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct EventFlags: u32 {
        /// Readable: a read or wait would not block.
        const READ = 1;
        /// Writable.
        const WRITE = 2;
    }
}

/// Who made a request, as the platform reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// Process id.
    pub pid: u32,
    /// User id. On Redox it is only valid at open: check permissions there.
    pub uid: u32,
    /// Group id, with the same caveat.
    pub gid: u32,
}

impl Caller {
    /// Whether the caller is root or runs as the user this daemon runs as
    /// (the stack's own daemons): who may reach a daemon's private side.
    /// As `uid`, only valid at open on Redox.
    pub fn is_privileged(&self) -> bool {
        self.uid == 0 || self.uid == own_uid()
    }
}

/// The effective user id this process runs as.
fn own_uid() -> u32 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    }
    #[cfg(target_os = "redox")]
    {
        // A uid the system cannot report matches no caller but root.
        libredox::call::geteuid().map_or(0, |u| u as u32)
    }
}

/// What opening (or duplicating) a handle produced.
#[derive(Debug)]
pub enum Opened {
    /// A new handle of this scheme.
    Handle(HandleId),
    /// A file of another scheme (or any other file), handed to the client
    /// as it is: e.g. a sync_file fd that syncd serves, returned by drmd.
    Fd(OwnedFd),
}

/// A window of shared memory a client maps (`mmap`).
#[derive(Clone, Debug)]
pub struct Mapping {
    /// The region the window is in.
    pub region: Arc<ShmRegion>,
    /// Offset of the window in the region (page aligned).
    pub offset: usize,
    /// Whether clients may write it. A read-only window (e.g. state the
    /// daemon publishes to many clients) cannot be mapped writable, so no
    /// client can change what the others read.
    pub writable: bool,
}

/// A `read` of `text` as a file's contents at `offset` into `buf` (for
/// handles that show counters or tables as text); returns the bytes read.
pub fn read_text(text: &str, buf: &mut [u8], offset: u64) -> usize {
    read_bytes(text.as_bytes(), buf, offset)
}

/// A `read` of `data` as a file's contents at `offset` into `buf`; returns
/// the bytes read.
pub fn read_bytes(data: &[u8], buf: &mut [u8], offset: u64) -> usize {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(data.len());
    let n = (data.len() - start).min(buf.len());
    buf[..n].copy_from_slice(&data[start..start + n]);
    n
}

/// What `fstat` reports of a handle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// File type and permission bits, as POSIX `st_mode` (e.g.
    /// [`Stat::CHAR_DEVICE`] `| 0o666`).
    pub mode: u32,
    /// The device number of a device file, `major << 8 | minor` in the
    /// Linux encoding for majors and minors below 256 (`st_rdev`).
    pub rdev: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Stat {
    /// `S_IFCHR`: a character device.
    pub const CHAR_DEVICE: u32 = 0o020_000;
    /// `S_IFBLK`: a block device.
    pub const BLOCK_DEVICE: u32 = 0o060_000;
    /// `S_IFREG`: a regular file.
    pub const REGULAR: u32 = 0o100_000;
    /// `S_IFMT`: the file-type bits of `mode`.
    pub const TYPE_MASK: u32 = 0o170_000;

    /// Whether this is a device file, whose `rdev` means something.
    pub fn is_device(&self) -> bool {
        matches!(
            self.mode & Self::TYPE_MASK,
            Self::CHAR_DEVICE | Self::BLOCK_DEVICE
        )
    }

    /// The device number `major:minor`, as glibc's `makedev` encodes it.
    pub fn device_number(major: u32, minor: u32) -> u64 {
        let (major, minor) = (u64::from(major), u64::from(minor));
        ((major & 0xffff_f000) << 32)
            | ((major & 0xfff) << 8)
            | ((minor & 0xffff_ff00) << 12)
            | (minor & 0xff)
    }
}

/// Something parked requests wait for, named by the scheme (a fence
/// moving, ring room, an answer arriving): the scheme wakes a key when it
/// happens, and the requests parked on it run again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WakeKey(pub u64);

/// Why and until when a request waits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Park {
    pub(crate) wake: Vec<WakeKey>,
    pub(crate) until: Option<Instant>,
}

impl Park {
    /// Waits until `key` is woken.
    pub fn on(key: WakeKey) -> Park {
        Park::on_any([key])
    }

    /// Waits until any of `keys` is woken.
    pub fn on_any(keys: impl IntoIterator<Item = WakeKey>) -> Park {
        Park {
            wake: keys.into_iter().collect(),
            until: None,
        }
    }

    /// Whether `key` wakes it.
    pub fn waits_for(&self, key: WakeKey) -> bool {
        self.wake.contains(&key)
    }

    /// Gives up at `at`: the request then runs once more with
    /// [`Context::expired`] set and must answer. A request parked again
    /// keeps the deadline it was first given, unless this one is earlier.
    pub fn until(mut self, at: Instant) -> Park {
        self.until = Some(at);
        self
    }
}

/// What a request that may wait (`read`, `call`) answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Done: the value the client's operation returns.
    Ready(usize),
    /// Not yet: the loop keeps the request and runs it again as [`Park`]
    /// says (a non-blocking request is answered `EAGAIN` instead).
    Park(Park),
}

/// Per-request context: the caller, whether a parked request runs at its
/// deadline, and what the handler reports while handling it (readiness of
/// handles, keys woken).
#[derive(Debug)]
pub struct Context {
    caller: Caller,
    expired: bool,
    tag: u32,
    events: Vec<(HandleId, EventFlags)>,
    woken: Vec<WakeKey>,
}

impl Context {
    /// A context for a request from `caller`.
    pub fn new(caller: Caller) -> Self {
        Context {
            caller,
            expired: false,
            tag: 0,
            events: Vec::new(),
            woken: Vec::new(),
        }
    }

    /// A context for running a parked request from `caller` again;
    /// `expired` when its deadline has passed (the serving loops' and tests
    /// of handlers').
    pub fn rerun(caller: Caller, expired: bool) -> Self {
        Context {
            expired,
            ..Context::new(caller)
        }
    }

    /// The same context for request `tag` of its handle.
    pub fn with_tag(mut self, tag: u32) -> Self {
        self.tag = tag;
        self
    }

    /// Who is asking.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The request's number on its handle: what names it to
    /// [`Scheme::interrupted`] after a restart (0 where requests are not
    /// carried across one).
    pub fn tag(&self) -> u32 {
        self.tag
    }

    /// Whether this is a parked request running at its deadline: it must
    /// answer now (its timeout's errno, or its result if it is ready after
    /// all). Parking again is answered `ETIMEDOUT`.
    pub fn expired(&self) -> bool {
        self.expired
    }

    /// Wakes `key`: requests parked on it run again once this step is done.
    pub fn wake(&mut self, key: WakeKey) {
        if !self.woken.contains(&key) {
            self.woken.push(key);
        }
    }

    /// The keys woken so far, for the serving loop.
    pub(crate) fn take_woken(&mut self) -> Vec<WakeKey> {
        std::mem::take(&mut self.woken)
    }

    /// Reports that handle `id` is now ready for `flags` (any handle, not
    /// only the caller's): pollers waiting on it wake up.
    pub fn post_event(&mut self, id: HandleId, flags: EventFlags) {
        self.events.push((id, flags));
    }

    /// The events posted so far, for the serving loop.
    pub fn take_events(&mut self) -> Vec<(HandleId, EventFlags)> {
        std::mem::take(&mut self.events)
    }
}

/// A scheme: the handler side of every operation a client can perform.
///
/// Defaults answer as a file that does not support the operation would.
pub trait Scheme {
    /// Opens `path` (relative to the scheme root) with open `flags`.
    fn open(&mut self, path: &str, flags: usize, ctx: &mut Context) -> Result<Opened>;

    /// Duplicates handle `id`; `buf` says what kind of duplicate (as Redox's
    /// `dup` with a path-like argument).
    fn dup(&mut self, id: HandleId, buf: &[u8], ctx: &mut Context) -> Result<Opened> {
        let _ = (id, buf, ctx);
        Err(Errno::EOPNOTSUPP)
    }

    /// Reads into `buf` at `offset`: the bytes read, or a park.
    fn read(
        &mut self,
        id: HandleId,
        buf: &mut [u8],
        offset: u64,
        ctx: &mut Context,
    ) -> Result<Answer> {
        let _ = (id, buf, offset, ctx);
        Err(Errno::EBADF)
    }

    /// Writes `buf` at `offset`.
    fn write(&mut self, id: HandleId, buf: &[u8], offset: u64, ctx: &mut Context) -> Result<usize> {
        let _ = (id, buf, offset, ctx);
        Err(Errno::EBADF)
    }

    /// A call: `payload` is read and may be written back (the ioctl
    /// argument); `metadata` holds up to three words (the ioctl number
    /// first). A call that parks must leave `payload` unread by the client:
    /// it runs again on the payload as the client sent it.
    fn call(
        &mut self,
        id: HandleId,
        payload: &mut [u8],
        metadata: &[u64],
        ctx: &mut Context,
    ) -> Result<Answer> {
        let _ = (id, payload, metadata, ctx);
        Err(Errno::ENOSYS)
    }

    /// A client starts waiting for `flags` on `id`: returns the readiness
    /// that holds now. Later changes are reported with
    /// [`Context::post_event`].
    fn fevent(&mut self, id: HandleId, flags: EventFlags, ctx: &mut Context) -> Result<EventFlags> {
        let _ = (id, flags, ctx);
        Ok(EventFlags::empty())
    }

    /// What handle `id` is (`fstat`). The default is what a file without
    /// a type of its own reports: a regular file of size 0, read-write.
    fn fstat(&mut self, id: HandleId, ctx: &mut Context) -> Result<Stat> {
        let _ = (id, ctx);
        Ok(Stat {
            mode: Stat::REGULAR | 0o666,
            ..Stat::default()
        })
    }

    /// The supervisor's store, given once before any request when the
    /// scheme is served under one: what the scheme keeps there outlives
    /// this instance, and what the instance before it kept is in it.
    fn keep(&mut self, keeper: Keeper) {
        drop(keeper);
    }

    /// Handle `old` of the instance before this one, which died while a
    /// client held it: rebuilt, under the id it answers to now. Called
    /// after [`Scheme::keep`] and before any request; an error (the
    /// default: the handle's state died with it) is what every request on
    /// the handle answers from then on.
    fn resume(&mut self, old: HandleId, ctx: &mut Context) -> Result<HandleId> {
        let _ = (old, ctx);
        Err(Errno::ENODEV)
    }

    /// Every handle that comes back has been [`Scheme::resume`]d: what the
    /// dead instance held for the others (clients that went away while no
    /// instance ran) can be let go of.
    fn resumed(&mut self, ctx: &mut Context) {
        let _ = ctx;
    }

    /// A request the dead instance took on handle `id` (resumed) and did
    /// not answer, by its [`Context::tag`]: if its work was done, the
    /// answer — the value and the start of the payload written back (the
    /// rest reaches the client as it sent it). None (the default): nothing
    /// of it took effect, and it is answered EINTR for the client to retry.
    fn interrupted(&mut self, id: HandleId, tag: u32) -> Option<(usize, Vec<u8>)> {
        let _ = (id, tag);
        None
    }

    /// Maps `len` bytes at `offset` of handle `id`.
    fn mmap(
        &mut self,
        id: HandleId,
        offset: u64,
        len: usize,
        ctx: &mut Context,
    ) -> Result<Mapping> {
        let _ = (id, offset, len, ctx);
        Err(Errno::ENODEV)
    }

    /// The client sends `fds` to handle `id`, with an argument word.
    fn send_fds(
        &mut self,
        id: HandleId,
        fds: Vec<OwnedFd>,
        arg: u64,
        ctx: &mut Context,
    ) -> Result<usize> {
        let _ = (id, fds, arg, ctx);
        Err(Errno::EOPNOTSUPP)
    }

    /// The last reference to handle `id` is gone (closed, or its process
    /// exited). Release what it owns.
    fn close(&mut self, id: HandleId, ctx: &mut Context);

    /// Other files the serving loop should watch for readability (device
    /// interrupts, timers), each with a token for [`Scheme::on_source`].
    fn sources(&self) -> Vec<(RawFd, usize)> {
        Vec::new()
    }

    /// Source `token` became readable.
    fn on_source(&mut self, token: usize, ctx: &mut Context) {
        let _ = (token, ctx);
    }

    /// A time [`Scheme::next_deadline`] gave has come: act on it (a daemon's
    /// own timers: a device watchdog, a simulated vblank), waking the keys
    /// of what it changed.
    fn on_deadline(&mut self, ctx: &mut Context) {
        let _ = ctx;
    }

    /// When the daemon's own next timer is due ([`Scheme::on_deadline`]).
    /// Parked requests' deadlines are the loop's, not this.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }
}
