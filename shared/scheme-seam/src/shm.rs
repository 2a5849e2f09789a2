//! Shared memory a scheme lets clients map: a memfd on Linux (passed to the
//! client, which maps it), anonymous shared memory on Redox (whose pages the
//! kernel maps into the client from `mmap_prep`).
//!
//! The memory can change under us (clients write it), so it is only ever
//! copied through raw pointers, never viewed as a Rust reference.

use std::fmt;
use std::io;
use std::ptr::NonNull;

#[cfg(target_os = "linux")]
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A mapping of shared memory in this process.
pub struct ShmRegion {
    host: NonNull<u8>,
    len: usize,
    /// Whether this mapping may be written (a client's view of a read-only
    /// window is not).
    writable: bool,
    /// The memfd behind the mapping, to hand to peers.
    #[cfg(target_os = "linux")]
    fd: OwnedFd,
    /// Where in the memfd the mapping starts (a window of a peer's region).
    #[cfg(target_os = "linux")]
    file_offset: u64,
}

// SAFETY: plain shared memory with no thread affinity; all access is by
// bounds-checked raw copies.
unsafe impl Send for ShmRegion {}
// SAFETY: as above; concurrent copies are data races on plain bytes that
// every peer already tolerates, never on Rust objects.
unsafe impl Sync for ShmRegion {}

#[cfg(target_os = "linux")]
impl ShmRegion {
    /// Creates `len` bytes of zeroed shared memory named `name` (for
    /// /proc/PID/maps and debugging).
    ///
    /// The memfd is sealed against shrinking and growing, and against
    /// further seals, before anyone else sees it: a peer holding it can
    /// neither truncate it under us (which would kill us, and the device
    /// backend, with SIGBUS on the next touch) nor seal it against writing.
    pub fn new(name: &str, len: usize) -> io::Result<Self> {
        let name = std::ffi::CString::new(name).map_err(io::Error::other)?;
        // SAFETY: `name` is NUL-terminated; the flags are valid.
        let fd = unsafe {
            libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and nobody else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        std::fs::File::from(fd.try_clone()?).set_len(len as u64)?;
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: F_ADD_SEALS on the memfd just made.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Self::map(fd, 0, len, true)
    }

    /// Maps `len` bytes at `offset` of the shared-memory file `fd` (a memfd
    /// a peer sent), shared; read-write only if `writable`.
    pub fn map(fd: OwnedFd, offset: u64, len: usize, writable: bool) -> io::Result<Self> {
        let file_offset = offset;
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        let offset = libc::off_t::try_from(offset).map_err(io::Error::other)?;
        // SAFETY: a fresh shared mapping at a kernel-chosen address, aliasing
        // no Rust object; the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let host =
            NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(ShmRegion {
            host,
            len,
            writable,
            fd,
            file_offset,
        })
    }

    /// The memfd, to send to a peer.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Where in the memfd this mapping starts: byte `n` of the region is
    /// byte `file_offset + n` of the file.
    pub fn file_offset(&self) -> u64 {
        self.file_offset
    }
}

#[cfg(target_os = "redox")]
impl ShmRegion {
    /// Creates `len` bytes (a multiple of the page size) of zeroed memory
    /// whose pages clients can map through `mmap_prep`.
    pub fn new(_name: &str, len: usize) -> io::Result<Self> {
        let memory = libredox::Fd::open("/scheme/memory/zeroed", libredox::flag::O_CLOEXEC, 0)?;
        Self::map_fd(&memory, 0, len, libredox::flag::MAP_SHARED, true)
    }

    /// Maps `len` bytes at `offset` of `fd` (a scheme handle: another
    /// scheme's shared pages, or the memory scheme's) with `MAP_SHARED` or
    /// `MAP_PRIVATE`, read-write only if `writable`; the region unmaps them
    /// when dropped.
    pub fn map_fd(
        fd: &libredox::Fd,
        offset: u64,
        len: usize,
        flags: u32,
        writable: bool,
    ) -> io::Result<Self> {
        use libredox::call::MmapArgs;
        use libredox::flag::{PROT_READ, PROT_WRITE};
        let prot = if writable {
            PROT_READ | PROT_WRITE
        } else {
            PROT_READ
        };
        // SAFETY: a fresh mapping at a kernel-chosen address, aliasing no
        // Rust object; the result is checked before use.
        let ptr = unsafe {
            libredox::call::mmap(MmapArgs {
                addr: std::ptr::null_mut(),
                length: len,
                prot,
                flags,
                fd: fd.raw(),
                offset,
            })
        }?;
        let host =
            NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(ShmRegion {
            host,
            len,
            writable,
        })
    }
}

impl ShmRegion {
    /// The mapping's address in this process (what Redox's `mmap_prep`
    /// returns, offset by the window).
    pub fn as_ptr(&self) -> *mut u8 {
        self.host.as_ptr()
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether this mapping may be written.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    fn ptr(&self, off: usize, n: usize) -> *mut u8 {
        let end = off.checked_add(n).expect("shared memory access overflows");
        assert!(
            end <= self.len,
            "access {off}..{end} outside a {}-byte region",
            self.len
        );
        // SAFETY: off + n <= len keeps the pointer inside the mapping.
        unsafe { self.host.as_ptr().add(off) }
    }

    /// Copies `src` into the region at `off`.
    ///
    /// # Panics
    ///
    /// If the range leaves the region, like slice indexing, or the mapping
    /// is read-only.
    pub fn write_bytes(&self, off: usize, src: &[u8]) {
        assert!(self.writable, "write to a read-only mapping");
        let dst = self.ptr(off, src.len());
        // SAFETY: `dst` is valid for src.len() bytes and never overlaps a
        // Rust-owned slice.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) }
    }

    /// Sets `len` bytes at `off` to `byte`.
    ///
    /// # Panics
    ///
    /// If the range leaves the region, like slice indexing.
    pub fn fill(&self, off: usize, len: usize, byte: u8) {
        assert!(self.writable, "write to a read-only mapping");
        let dst = self.ptr(off, len);
        // SAFETY: `dst` is valid for `len` bytes.
        unsafe { std::ptr::write_bytes(dst, byte, len) }
    }

    /// Copies bytes at `off` out of the region.
    ///
    /// # Panics
    ///
    /// If the range leaves the region, like slice indexing.
    pub fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        let src = self.ptr(off, dst.len());
        // SAFETY: `src` is valid for dst.len() bytes; a peer writing at the
        // same time can only make the copy stale, and any bytes are valid u8.
        unsafe { std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) }
    }
}

impl Drop for ShmRegion {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping this value made.
        #[cfg(target_os = "linux")]
        unsafe {
            libc::munmap(self.host.as_ptr().cast(), self.len)
        };
        // SAFETY: as above.
        #[cfg(target_os = "redox")]
        let _ = unsafe { libredox::call::munmap(self.host.as_ptr().cast(), self.len) };
    }
}

impl fmt::Debug for ShmRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmRegion").field("len", &self.len).finish()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::ShmRegion;
    use std::os::fd::AsRawFd;

    #[test]
    fn two_mappings_of_one_memfd_share_bytes() {
        let a = ShmRegion::new("test", 8192).unwrap();
        let b = ShmRegion::map(a.fd().try_clone_to_owned().unwrap(), 4096, 4096, true).unwrap();
        a.write_bytes(4096 + 10, b"hello");
        let mut out = [0u8; 5];
        b.read_bytes(10, &mut out);
        assert_eq!(&out, b"hello");
    }

    #[test]
    fn test_regression_a_peer_cannot_resize_or_seal_the_memory() {
        let a = ShmRegion::new("test", 8192).unwrap();
        let peer = std::fs::File::from(a.fd().try_clone_to_owned().unwrap());
        for len in [0, 4096, 1 << 20] {
            let err = peer.set_len(len).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EPERM), "set_len({len})");
        }
        // SAFETY: F_ADD_SEALS on a memfd this test holds.
        let r = unsafe { libc::fcntl(a.fd().as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_WRITE) };
        assert_eq!(r, -1);
        a.write_bytes(8000, b"still here");
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn out_of_range_access_panics_like_a_slice() {
        let a = ShmRegion::new("test", 4096).unwrap();
        a.write_bytes(4090, &[0; 8]);
    }
}
