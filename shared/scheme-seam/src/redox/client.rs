//! The client side on Redox: a scheme handle is an ordinary file
//! descriptor, and every operation is one syscall the kernel turns into a
//! request to the scheme.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

use libredox::flag::{MAP_SHARED, O_CLOEXEC};
use syscall::flag::CallFlags;

use super::{owned_fd, set_cloexec};
use crate::errno::Errno;
use crate::handler::Stat;
use crate::shm::ShmRegion;
use crate::CALL_NONBLOCK;

/// Most metadata words a call carries: the kernel forwards three.
const MAX_METADATA: usize = 3;

/// An open handle of a scheme, served by another process.
pub struct SchemeFd {
    fd: libredox::Fd,
    /// Opened `O_NONBLOCK`: its calls carry [`CALL_NONBLOCK`].
    nonblock: bool,
}

// Handles are shared between threads (the Linux client promises the same):
// fail the build, not a caller, if that ever stops holding.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<SchemeFd>();
};

impl SchemeFd {
    /// Opens `path` (`/scheme/<name>/<rest>`) with open `flags` (Redox
    /// `O_*` values, as `libc` spells them here); the handle is always
    /// close-on-exec.
    pub fn open(path: &str, flags: usize) -> io::Result<SchemeFd> {
        crate::metrics::count(0);
        let flags = i32::try_from(flags).map_err(|_| Errno::EINVAL)?;
        let fd = libredox::Fd::open(path, flags | O_CLOEXEC, 0)?;
        Ok(SchemeFd {
            fd,
            nonblock: flags as usize & crate::NONBLOCK != 0,
        })
    }

    /// Gives up the handle, to pass it on.
    pub fn into_fd(self) -> OwnedFd {
        let raw = self.fd.into_raw();
        // SAFETY: the descriptor was this handle's own, and ownership moves
        // out with it.
        unsafe { OwnedFd::from_raw_fd(raw as RawFd) }
    }

    /// Wraps a handle returned by [`SchemeFd::dup`] or received from a peer.
    pub fn from_fd(fd: OwnedFd) -> SchemeFd {
        // into_raw_fd never yields a negative number for an OwnedFd.
        let raw = fd.into_raw_fd() as usize;
        SchemeFd {
            fd: libredox::Fd::new(raw),
            nonblock: false,
        }
    }

    /// Takes back a handle an earlier process (this program's previous
    /// instance) kept, opened with `flags`. Each Redox request is one
    /// syscall, so no answer of that process's can be left to read.
    pub fn resume(fd: OwnedFd, flags: usize) -> io::Result<(SchemeFd, Vec<crate::Stale>)> {
        let mut fd = Self::from_fd(fd);
        fd.nonblock = flags & crate::NONBLOCK != 0;
        Ok((fd, Vec::new()))
    }

    /// Reads what the scheme has for this handle.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        crate::metrics::count(0);
        Ok(self.fd.read(buf)?)
    }

    /// Writes `buf` to the handle.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        crate::metrics::count(buf.len());
        Ok(self.fd.write(buf)?)
    }

    /// A call: `payload` goes to the scheme and comes back rewritten;
    /// `metadata` is at most three words, the ioctl number first. It waits
    /// if the scheme parks it, unless the handle was opened `O_NONBLOCK`.
    pub fn call(&self, payload: &mut [u8], metadata: &[u64]) -> io::Result<usize> {
        self.call_with(payload, metadata, self.nonblock)
    }

    /// A call that answers `EAGAIN` rather than wait, whatever the handle's
    /// flags.
    pub fn try_call(&self, payload: &mut [u8], metadata: &[u64]) -> io::Result<usize> {
        self.call_with(payload, metadata, true)
    }

    fn call_with(&self, payload: &mut [u8], metadata: &[u64], nonblock: bool) -> io::Result<usize> {
        crate::metrics::count(payload.len());
        if metadata.len() > MAX_METADATA || metadata.first().is_some_and(|w| w & CALL_NONBLOCK != 0)
        {
            return Err(Errno::EINVAL.into());
        }
        let mut words = [0u64; MAX_METADATA];
        let words = &mut words[..metadata.len()];
        words.copy_from_slice(metadata);
        if let (true, Some(first)) = (nonblock, words.first_mut()) {
            *first |= CALL_NONBLOCK;
        }
        Ok(self.fd.call_rw(payload, CallFlags::empty(), words)?)
    }

    /// Duplicates the handle; `buf` says what kind of duplicate, as the
    /// scheme defines. The new handle is close-on-exec.
    pub fn dup(&self, buf: &[u8]) -> io::Result<OwnedFd> {
        crate::metrics::count(buf.len());
        let raw = libredox::call::dup(self.fd.raw(), buf)?;
        let fd = owned_fd(raw)?;
        set_cloexec(raw);
        Ok(fd)
    }

    /// Maps `len` bytes at `offset` of the handle, shared and read-write:
    /// the scheme's pages appear in this process.
    pub fn mmap(&self, offset: u64, len: usize, writable: bool) -> io::Result<ShmRegion> {
        crate::metrics::count(0);
        ShmRegion::map_fd(&self.fd, offset, len, MAP_SHARED, writable)
    }

    /// What the handle is (`fstat`), with a device file's number read back
    /// from `st_dev`, where the serving side puts it.
    pub fn fstat(&self) -> io::Result<Stat> {
        crate::metrics::count(0);
        let mut st = syscall::Stat::default();
        syscall::fstat(self.fd.raw(), &mut st).map_err(|e| Errno(e.errno))?;
        let mut stat = Stat {
            mode: u32::from(st.st_mode),
            rdev: 0,
            size: st.st_size,
        };
        if stat.is_device() {
            stat.rdev = st.st_dev;
        }
        Ok(stat)
    }

    /// Sends `fds` to the scheme with an argument word. The kernel passes
    /// copies (the caller keeps its own) and answers with how many were
    /// sent, not with what the scheme's handler returned.
    pub fn send_fds(&self, fds: &[BorrowedFd<'_>], arg: u64) -> io::Result<usize> {
        let payload = fd_payload(fds);
        // FD_CLONE: without it the kernel would take the descriptors out of
        // this process, behind the backs of the `OwnedFd`s they borrow from.
        Ok(self
            .fd
            .call_wo(&payload, CallFlags::FD | CallFlags::FD_CLONE, &[arg])?)
    }

    /// The descriptor to wait on for readability: the handle itself, since
    /// Redox's event queue asks the scheme (`fevent`) directly.
    pub fn poll_fd(&self) -> io::Result<BorrowedFd<'_>> {
        let raw = RawFd::try_from(self.fd.raw()).map_err(|_| Errno::EBADF)?;
        // SAFETY: `raw` is this handle's descriptor, open for as long as
        // `self`, which the returned borrow cannot outlive.
        Ok(unsafe { BorrowedFd::borrow_raw(raw) })
    }
}

impl fmt::Debug for SchemeFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemeFd")
            .field("fd", &self.fd.raw())
            .finish()
    }
}

/// The descriptor numbers as the kernel reads them for an fd-passing call:
/// native-endian `usize`s, back to back.
fn fd_payload(fds: &[BorrowedFd<'_>]) -> Vec<u8> {
    fds.iter()
        .flat_map(|fd| (fd.as_raw_fd() as usize).to_ne_bytes())
        .collect()
}

impl std::os::fd::AsFd for SchemeFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor is this handle's, open for as long as
        // `self`, which the borrow cannot outlive; libredox descriptors are
        // process file descriptors (they fit an fd's int on Redox).
        unsafe { BorrowedFd::borrow_raw(self.fd.raw() as RawFd) }
    }
}
