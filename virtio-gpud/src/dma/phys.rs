//! Redox: DMA memory is physically contiguous memory from the memory
//! scheme, and device addresses are physical addresses.

use std::io;
use std::ptr::NonNull;

use libredox::call::MmapArgs;
use libredox::flag::{MAP_PRIVATE, O_CLOEXEC, PROT_READ, PROT_WRITE};
use libredox::Fd;
use syscall::CallFlags;

/// Write-back is coherent with device DMA on x86, the only target so far;
/// aarch64 would need an uncacheable mapping here.
const ZEROED_CONTIGUOUS: &str = "/scheme/memory/zeroed@wb?phys_contiguous";
/// Translates an address of this process into its physical address.
const TRANSLATION: &str = "/scheme/memory/translation";

/// A physically contiguous mapping and its physical address.
pub struct PhysBacking {
    host: NonNull<u8>,
    len: usize,
    phys: u64,
}

impl PhysBacking {
    /// Allocates and maps `len` zeroed, physically contiguous bytes.
    pub(super) fn new(len: usize) -> io::Result<Self> {
        let memory = Fd::open(ZEROED_CONTIGUOUS, O_CLOEXEC, 0)?;
        // SAFETY: a fresh private mapping at a kernel-chosen address; it
        // aliases no Rust object, and the result is checked before use.
        let ptr = unsafe {
            libredox::call::mmap(MmapArgs {
                addr: std::ptr::null_mut(),
                length: len,
                prot: PROT_READ | PROT_WRITE,
                flags: MAP_PRIVATE,
                fd: memory.raw(),
                offset: 0,
            })
        }?;
        let host =
            NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        let backing = PhysBacking { host, len, phys: 0 };
        let translation = Fd::open(TRANSLATION, O_CLOEXEC, 0)?;
        let mut addr = (host.as_ptr() as usize).to_ne_bytes();
        translation.call_rw(&mut addr, CallFlags::empty(), &[])?;
        Ok(PhysBacking {
            phys: usize::from_ne_bytes(addr) as u64,
            ..backing
        })
    }

    /// The address of the mapping in this process.
    pub(super) fn host(&self) -> NonNull<u8> {
        self.host
    }

    /// The physical address of the first byte: the device address.
    pub(super) fn phys(&self) -> u64 {
        self.phys
    }
}

impl Drop for PhysBacking {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `new`; every DmaBuf
        // holds the pool (and so this backing) alive while it exists.
        let _ = unsafe { libredox::call::munmap(self.host.as_ptr().cast(), self.len) };
    }
}
