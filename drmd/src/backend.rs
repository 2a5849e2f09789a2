//! The seam under drmd's ioctls: what they need of virtio-gpud, as a trait,
//! so that their rules are unit-tested (and fuzzed) without a device. The
//! daemon's implementation is virtio-gpud's client, [`Session`]; the unit
//! tests' and the fuzz target's is an in-memory device ([`memory`]).

use std::fmt::Debug;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use gpu_session::api::{CapsetEntry, DeviceInfo, DisplayEntry, QueueReply};
use gpu_session::Session;
use scheme_seam::ShmRegion;

pub mod memory;

/// A session with the device (see [`gpu_session::api`] for each call).
pub trait DeviceSession: Debug + Send + Sync {
    /// A new session serving the clients of user `uid` (a DRM file's).
    fn open_for(&self, uid: u32) -> io::Result<Box<dyn DeviceSession>>;
    /// What the device negotiated, and its capsets.
    fn info(&self) -> io::Result<(DeviceInfo, Vec<CapsetEntry>)>;
    /// Each scanout's display.
    fn displays(&self) -> io::Result<Vec<DisplayEntry>>;
    /// Scanout `scanout`'s EDID (empty: none).
    fn edid(&self, scanout: u32) -> io::Result<Vec<u8>>;
    /// Capset `id` at `version`, up to `max_size` bytes.
    fn capset(&self, id: u32, version: u32, max_size: usize) -> io::Result<Vec<u8>>;
    /// The syncd timeline of device fences.
    fn timeline(&self) -> io::Result<u32>;
    /// DMA memory: its device address and mmap offset.
    fn alloc(&self, len: u64) -> io::Result<(u64, u64)>;
    /// Frees memory from [`DeviceSession::alloc`].
    fn free(&self, addr: u64) -> io::Result<()>;
    /// Maps allocated memory.
    fn map(&self, offset: u64, len: usize) -> io::Result<ShmRegion>;
    /// Places a request, waiting for ring room.
    fn queue(&self, request: &[u8], flags: u32) -> io::Result<QueueReply>;
    /// Places a request, EAGAIN when the ring lacks room for it and
    /// `reserve` more.
    fn try_queue(&self, request: &[u8], flags: u32, reserve: u32) -> io::Result<QueueReply>;
    /// A share token for resource `res`.
    fn share(&self, res: u32) -> io::Result<u64>;
    /// Holds the resource a share token names; its id.
    fn adopt(&self, token: u64) -> io::Result<u32>;
    /// Lets go of resource `res`.
    fn release(&self, res: u32) -> io::Result<()>;
    /// A descriptor readable once ring room frees after a refused
    /// [`DeviceSession::try_queue`].
    fn room_fd(&self) -> io::Result<RawFd>;
    /// Clears what [`DeviceSession::room_fd`] reported.
    fn acknowledge_room(&self) -> io::Result<()>;
    /// The session's connection, for the supervisor to keep across a
    /// restart (None: it cannot be kept).
    fn keep_fd(&self) -> Option<BorrowedFd<'_>>;
    /// Tells virtio-gpud a restarted drmd took this session back, its
    /// client gone (`vanished`: it closes next) or not; the objects it holds.
    fn taken_over(&self, vanished: bool) -> io::Result<usize>;
    /// Tells virtio-gpud the restart is done, after `micros`.
    fn restarted(&self, micros: u64) -> io::Result<()>;
}

impl DeviceSession for Session {
    fn open_for(&self, uid: u32) -> io::Result<Box<dyn DeviceSession>> {
        Ok(Box::new(Session::open_for(uid)?))
    }
    fn info(&self) -> io::Result<(DeviceInfo, Vec<CapsetEntry>)> {
        Session::info(self)
    }
    fn displays(&self) -> io::Result<Vec<DisplayEntry>> {
        Session::displays(self)
    }
    fn edid(&self, scanout: u32) -> io::Result<Vec<u8>> {
        Session::edid(self, scanout)
    }
    fn capset(&self, id: u32, version: u32, max_size: usize) -> io::Result<Vec<u8>> {
        Session::capset(self, id, version, max_size)
    }
    fn timeline(&self) -> io::Result<u32> {
        Session::timeline(self)
    }
    fn alloc(&self, len: u64) -> io::Result<(u64, u64)> {
        Session::alloc(self, len)
    }
    fn free(&self, addr: u64) -> io::Result<()> {
        Session::free(self, addr)
    }
    fn map(&self, offset: u64, len: usize) -> io::Result<ShmRegion> {
        Session::map(self, offset, len)
    }
    fn queue(&self, request: &[u8], flags: u32) -> io::Result<QueueReply> {
        Session::queue(self, request, flags)
    }
    fn try_queue(&self, request: &[u8], flags: u32, reserve: u32) -> io::Result<QueueReply> {
        Session::try_queue(self, request, flags, reserve)
    }
    fn share(&self, res: u32) -> io::Result<u64> {
        Session::share(self, res)
    }
    fn adopt(&self, token: u64) -> io::Result<u32> {
        Session::adopt(self, token)
    }
    fn release(&self, res: u32) -> io::Result<()> {
        Session::release(self, res)
    }
    fn room_fd(&self) -> io::Result<RawFd> {
        Ok(self.poll_fd()?.as_raw_fd())
    }
    fn acknowledge_room(&self) -> io::Result<()> {
        self.acknowledge()
    }
    fn keep_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }
    fn taken_over(&self, vanished: bool) -> io::Result<usize> {
        Session::taken_over(self, vanished)
    }
    fn restarted(&self, micros: u64) -> io::Result<()> {
        Session::restarted(self, micros)
    }
}
