//! DMA memory: the buffers the device reads and writes.
//!
//! Every buffer handed to the device (rings, requests, responses, resource
//! backing) lives in a [`DmaRegion`]: shared memory mapped into this
//! process and visible to the device at `device_addr`. The platform seam is
//! only how a region comes to exist (a memfd shared with the vhost-user
//! backend on Linux, physically contiguous memory from the memory scheme on
//! Redox); carving it into buffers is the same code everywhere.
//!
//! The device may write this memory at any time, so it is never viewed
//! through Rust references: it is copied in and out through the region's
//! [`ShmRegion`], and everything read back is treated as untrusted input.

mod alloc;

pub(crate) use self::alloc::FreeList;
#[cfg(target_os = "redox")]
mod phys;

use std::fmt;
use std::sync::{Arc, Mutex};

use zerocopy::{FromBytes, Immutable, IntoBytes};

use scheme_seam::ShmRegion;

/// Errors of the DMA memory layer.
#[derive(Debug, thiserror::Error)]
pub enum DmaError {
    /// No free range of the requested size and alignment is left.
    #[error("DMA memory exhausted: no free {len} bytes aligned to {align}")]
    Exhausted {
        /// Bytes requested.
        len: usize,
        /// Alignment requested.
        align: usize,
    },
    /// A zero-sized or non-power-of-two-aligned request.
    #[error("invalid DMA allocation: {len} bytes aligned to {align}")]
    InvalidRequest {
        /// Bytes requested.
        len: usize,
        /// Alignment requested.
        align: usize,
    },
    /// The operating system refused to create or map the region.
    #[error("creating the DMA region: {0}")]
    Os(#[from] std::io::Error),
}

/// Allocation granule: buffers never share a cache line.
const GRANULE: usize = 64;

/// A contiguous range of memory mapped here and addressable by the device.
pub struct DmaRegion {
    shm: Arc<ShmRegion>,
    device_addr: u64,
}

impl DmaRegion {
    /// Creates a region of `len` bytes the device sees at `device_addr`,
    /// backed by a memfd that can be passed to a vhost-user backend.
    #[cfg(target_os = "linux")]
    pub fn new_memfd(len: usize, device_addr: u64) -> Result<Self, DmaError> {
        let shm = Arc::new(ShmRegion::new("virtio-gpud-dma", len)?);
        Ok(DmaRegion { shm, device_addr })
    }

    /// Creates a region of `len` bytes (a multiple of the page size) of
    /// physically contiguous memory; the device sees it at its physical
    /// address.
    #[cfg(target_os = "redox")]
    pub fn new_physical(len: usize) -> Result<Self, DmaError> {
        let (shm, device_addr) = phys::contiguous(len)?;
        Ok(DmaRegion {
            shm: Arc::new(shm),
            device_addr,
        })
    }

    /// The shared memory behind the region (on Linux its memfd and this
    /// process's mapping, to announce to a vhost-user backend).
    pub fn shm(&self) -> &Arc<ShmRegion> {
        &self.shm
    }

    /// The device address of the region's first byte.
    pub fn device_addr(&self) -> u64 {
        self.device_addr
    }

    /// The region's size in bytes.
    pub fn len(&self) -> usize {
        self.shm.len()
    }

    /// Whether the region is empty (never, for a created region).
    pub fn is_empty(&self) -> bool {
        self.shm.is_empty()
    }

    /// Translates a device address range into an offset in the region, if
    /// the whole range lies inside it.
    pub fn offset_of(&self, device_addr: u64, len: usize) -> Option<usize> {
        let off = usize::try_from(device_addr.checked_sub(self.device_addr)?).ok()?;
        (off.checked_add(len)? <= self.len()).then_some(off)
    }
}

impl fmt::Debug for DmaRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaRegion")
            .field("device_addr", &format_args!("{:#x}", self.device_addr))
            .field("len", &self.len())
            .finish()
    }
}

struct PoolInner {
    region: DmaRegion,
    free: Mutex<FreeList>,
}

/// Hands out buffers from one [`DmaRegion`]; cheap to clone.
#[derive(Clone)]
pub struct DmaPool {
    inner: Arc<PoolInner>,
}

impl DmaPool {
    /// Takes ownership of `region` and makes all of it allocatable.
    pub fn new(region: DmaRegion) -> Self {
        let free = FreeList::new(region.len());
        DmaPool {
            inner: Arc::new(PoolInner {
                region,
                free: Mutex::new(free),
            }),
        }
    }

    /// The region buffers come from.
    pub fn region(&self) -> &DmaRegion {
        &self.inner.region
    }

    /// Allocates `len` zeroed bytes whose device address is a multiple of
    /// `align` (a power of two). Zeroing keeps one client's old data from
    /// reaching another through a recycled buffer.
    pub fn alloc(&self, len: usize, align: usize) -> Result<DmaBuf, DmaError> {
        if len == 0 || !align.is_power_of_two() {
            return Err(DmaError::InvalidRequest { len, align });
        }
        let rounded = len.div_ceil(GRANULE) * GRANULE;
        let align = align.max(GRANULE);
        // Alignment is of the device address; the region base is page aligned
        // on every platform, so aligning offsets suffices when the base is.
        debug_assert_eq!(self.inner.region.device_addr % 4096, 0);
        let offset = self
            .inner
            .free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .alloc(rounded, align)
            .ok_or(DmaError::Exhausted { len, align })?;
        let buf = DmaBuf {
            pool: self.inner.clone(),
            offset,
            len,
            reserved: rounded,
        };
        buf.fill(0);
        Ok(buf)
    }

    /// Bytes not currently allocated.
    pub fn free_bytes(&self) -> usize {
        self.inner
            .free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .free_bytes()
    }
}

impl fmt::Debug for DmaPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaPool")
            .field("region", &self.inner.region)
            .field("free_bytes", &self.free_bytes())
            .finish()
    }
}

/// One allocation in a [`DmaPool`]; returned to the pool on drop.
///
/// Accessors take byte offsets into the buffer and panic when an access
/// would leave it, as slice indexing does: offsets come from this driver's
/// own layout code, and values the device wrote are validated before they
/// are used as offsets.
pub struct DmaBuf {
    pool: Arc<PoolInner>,
    offset: usize,
    len: usize,
    reserved: usize,
}

impl DmaBuf {
    /// The device address of the buffer's first byte.
    pub fn device_addr(&self) -> u64 {
        self.pool.region.device_addr + self.offset as u64
    }

    /// The buffer's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The region the buffer is in (to share it, as a window of it).
    pub fn region(&self) -> &DmaRegion {
        &self.pool.region
    }

    /// Whether the buffer is empty (never, for an allocated buffer).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The region offset of byte `off`, after checking `off..off + n` is
    /// inside the buffer.
    fn at(&self, off: usize, n: usize) -> usize {
        let end = off.checked_add(n).expect("DMA access overflows");
        assert!(
            end <= self.len,
            "DMA access {off}..{end} outside a {}-byte buffer",
            self.len
        );
        self.offset + off
    }

    /// Copies `src` into the buffer at `off`.
    pub fn write_bytes(&self, off: usize, src: &[u8]) {
        self.pool
            .region
            .shm
            .write_bytes(self.at(off, src.len()), src);
    }

    /// Copies bytes at `off` out of the buffer into `dst`.
    pub fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        self.pool
            .region
            .shm
            .read_bytes(self.at(off, dst.len()), dst);
    }

    /// Copies the bytes of `value` into the buffer at `off`.
    pub fn write_obj<T: IntoBytes + Immutable>(&self, off: usize, value: &T) {
        self.write_bytes(off, value.as_bytes());
    }

    /// Reads a `T` at `off`; any bytes make a valid `T`.
    pub fn read_obj<T: FromBytes + IntoBytes>(&self, off: usize) -> T {
        let mut value = T::new_zeroed();
        self.read_bytes(off, value.as_mut_bytes());
        value
    }

    /// Sets every byte of the buffer to `byte`.
    pub fn fill(&self, byte: u8) {
        self.pool
            .region
            .shm
            .fill(self.at(0, self.len), self.len, byte);
    }

    /// A pointer to the 2-aligned `u16` at `off`.
    fn u16_ptr(&self, off: usize) -> *mut u16 {
        assert_eq!(off % 2, 0, "unaligned ring index");
        let at = self.at(off, 2);
        // SAFETY: `at + 2` is inside the region's mapping (checked by `at`).
        unsafe { self.pool.region.shm.as_ptr().add(at) }.cast()
    }

    /// A single, untorn little-endian `u16` load, for ring indices the
    /// device publishes.
    pub fn load_u16(&self, off: usize) -> u16 {
        let p = self.u16_ptr(off);
        // SAFETY: `p` is in bounds and 2-aligned (region and buffers are
        // 64-byte aligned, `off` is even); volatile keeps the load whole and
        // un-elided, as the device changes this memory behind our back.
        u16::from_le(unsafe { p.read_volatile() })
    }

    /// A single, untorn little-endian `u16` store, for ring indices the
    /// device reads.
    pub fn store_u16(&self, off: usize, value: u16) {
        let p = self.u16_ptr(off);
        // SAFETY: as in `load_u16`; volatile keeps the store whole and
        // un-merged.
        unsafe { p.write_volatile(value.to_le()) }
    }
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        self.pool
            .free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .free(self.offset, self.reserved);
    }
}

impl fmt::Debug for DmaBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaBuf")
            .field("device_addr", &format_args!("{:#x}", self.device_addr()))
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn pool(len: usize) -> DmaPool {
        DmaPool::new(DmaRegion::new_memfd(len, 0x4000_0000).unwrap())
    }

    #[test]
    fn buffers_are_zeroed_aligned_and_recycled() {
        let pool = pool(1 << 20);
        let a = pool.alloc(100, 4096).unwrap();
        assert_eq!(a.device_addr() % 4096, 0);
        a.fill(0xAB);
        let a_addr = a.device_addr();
        drop(a);
        let b = pool.alloc(100, 4096).unwrap();
        assert_eq!(b.device_addr(), a_addr, "freed range is reused");
        let mut bytes = [0xFFu8; 100];
        b.read_bytes(0, &mut bytes);
        assert!(bytes.iter().all(|&x| x == 0), "recycled buffer is zeroed");
        assert_eq!(pool.free_bytes(), (1 << 20) - 128);
    }

    #[test]
    fn exhaustion_is_an_error_and_recovers() {
        let pool = pool(64 * 1024);
        let whole = pool.alloc(64 * 1024, 64).unwrap();
        assert!(matches!(pool.alloc(1, 1), Err(DmaError::Exhausted { .. })));
        drop(whole);
        assert!(pool.alloc(64 * 1024, 64).is_ok());
    }

    #[test]
    fn invalid_requests_are_rejected() {
        let pool = pool(4096);
        assert!(matches!(
            pool.alloc(0, 64),
            Err(DmaError::InvalidRequest { .. })
        ));
        assert!(matches!(
            pool.alloc(8, 3),
            Err(DmaError::InvalidRequest { .. })
        ));
    }

    #[test]
    fn objects_round_trip() {
        let pool = pool(4096);
        let buf = pool.alloc(16, 64).unwrap();
        buf.write_obj(4, &0x1234_5678u32);
        assert_eq!(buf.read_obj::<u32>(4), 0x1234_5678);
        buf.store_u16(2, 0xBEEF);
        assert_eq!(buf.load_u16(2), 0xBEEF);
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn access_past_the_end_panics_like_a_slice() {
        let pool = pool(4096);
        let buf = pool.alloc(16, 64).unwrap();
        buf.write_bytes(12, &[0; 8]);
    }

    #[test]
    fn device_addresses_translate_back() {
        let pool = pool(8192);
        let buf = pool.alloc(100, 64).unwrap();
        let region = pool.region();
        let off = region.offset_of(buf.device_addr(), 100).unwrap();
        assert_eq!(region.device_addr() + off as u64, buf.device_addr());
        assert_eq!(region.offset_of(0x4000_0000 + 8190, 4), None);
        assert_eq!(region.offset_of(0x1000, 4), None);
    }
}
