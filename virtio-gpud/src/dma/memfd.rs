//! Linux: DMA memory is a memfd mapped here and, through SET_MEM_TABLE, in
//! the vhost-user backend, so "device addresses" are offsets into it.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd};
use std::ptr::NonNull;

/// A shared-memory file and this process's mapping of it.
pub struct MemfdBacking {
    file: File,
    host: NonNull<u8>,
    len: usize,
}

impl MemfdBacking {
    /// Creates and maps a zero-filled memfd of `len` bytes.
    pub(super) fn new(len: usize) -> io::Result<Self> {
        // SAFETY: the name is a NUL-terminated literal; the flags are valid.
        let fd = unsafe { libc::memfd_create(c"virtio-gpud-dma".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nobody else.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(len as u64)?;
        // SAFETY: mapping a fresh file we own, shared, at a kernel-chosen
        // address; the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let host =
            NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(MemfdBacking { file, host, len })
    }

    /// The address of the mapping in this process.
    pub(super) fn host(&self) -> NonNull<u8> {
        self.host
    }

    /// This process's address of the mapping, as vhost-user's "user address".
    pub fn host_addr(&self) -> u64 {
        self.host.as_ptr() as u64
    }

    /// The memfd, to share with the device backend.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl Drop for MemfdBacking {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `new`; every DmaBuf
        // holds the pool (and so this backing) alive while it exists.
        unsafe { libc::munmap(self.host.as_ptr().cast(), self.len) };
    }
}
