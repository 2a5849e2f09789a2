//! Redox: DMA memory is physically contiguous memory from the memory
//! scheme, and device addresses are physical addresses.

use std::io;

use libredox::flag::{MAP_PRIVATE, O_CLOEXEC};
use libredox::Fd;
use scheme_seam::ShmRegion;
use syscall::CallFlags;

/// Write-back is coherent with device DMA on x86, the only target so far;
/// aarch64 would need an uncacheable mapping here.
const ZEROED_CONTIGUOUS: &str = "/scheme/memory/zeroed@wb?phys_contiguous";
/// Translates an address of this process into its physical address.
const TRANSLATION: &str = "/scheme/memory/translation";

/// Allocates and maps `len` zeroed, physically contiguous bytes; returns the
/// mapping and its physical address.
pub(super) fn contiguous(len: usize) -> io::Result<(ShmRegion, u64)> {
    let memory = Fd::open(ZEROED_CONTIGUOUS, O_CLOEXEC, 0)?;
    let shm = ShmRegion::map_fd(&memory, 0, len, MAP_PRIVATE, true)?;
    let translation = Fd::open(TRANSLATION, O_CLOEXEC, 0)?;
    let mut addr = (shm.as_ptr() as usize).to_ne_bytes();
    translation.call_rw(&mut addr, CallFlags::empty(), &[])?;
    Ok((shm, usize::from_ne_bytes(addr) as u64))
}
