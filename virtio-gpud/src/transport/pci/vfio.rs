//! Linux: a PCI function bound to `vfio-pci`, driven from userspace through
//! the VFIO type-1 IOMMU interface (linux/vfio.h). This is what the QEMU
//! PCI test runs on: the same [`super::PciTransport`] as on Redox, with
//! the function's BARs mapped through VFIO, MSI-X vectors delivered as
//! eventfds, and DMA memory mapped into the IOMMU at addresses chosen
//! here (the device sees IOVAs, not physical addresses).

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::time::Duration;

use log::info;

use super::caps::Msix;
use super::mmio::Mmio;
use super::{Interrupts, PciPlatform};
use crate::dma::{DmaRegion, FreeList};

/// ioctl numbers: `_IO(VFIO_TYPE, VFIO_BASE + n)` with type ';' and base 100.
const fn vfio_io(n: u64) -> u64 {
    (b';' as u64) << 8 | (100 + n)
}
const GET_API_VERSION: u64 = vfio_io(0);
const CHECK_EXTENSION: u64 = vfio_io(1);
const SET_IOMMU: u64 = vfio_io(2);
const GROUP_GET_STATUS: u64 = vfio_io(3);
const GROUP_SET_CONTAINER: u64 = vfio_io(4);
const GROUP_GET_DEVICE_FD: u64 = vfio_io(6);
const DEVICE_GET_REGION_INFO: u64 = vfio_io(8);
const DEVICE_GET_IRQ_INFO: u64 = vfio_io(9);
const DEVICE_SET_IRQS: u64 = vfio_io(10);
const IOMMU_MAP_DMA: u64 = vfio_io(13);
const IOMMU_UNMAP_DMA: u64 = vfio_io(14);

const API_VERSION: i32 = 0;
const TYPE1V2_IOMMU: u64 = 3;
const GROUP_FLAGS_VIABLE: u32 = 1;
const REGION_INFO_FLAG_MMAP: u32 = 1 << 2;
const CONFIG_REGION_INDEX: u32 = 7;
const IRQ_INDEX_INTX: u32 = 0;
const IRQ_INDEX_MSIX: u32 = 2;
const IRQ_SET_DATA_NONE: u32 = 1 << 0;
const IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
const IRQ_SET_ACTION_UNMASK: u32 = 1 << 4;
const IRQ_SET_ACTION_TRIGGER: u32 = 1 << 5;
const DMA_MAP_FLAG_READ: u32 = 1 << 0;
const DMA_MAP_FLAG_WRITE: u32 = 1 << 1;

/// The IOVA window regions are placed in: above 4 GiB, clear of the x86
/// MSI range at 0xfee00000, and below the 39 bits an emulated Intel IOMMU
/// translates.
const IOVA_BASE: u64 = 1 << 32;
const IOVA_SPACE: usize = (1 << 39) - (1 << 32);
/// Regions are aligned so that large ones can use large IOMMU pages.
const IOVA_ALIGN: usize = 2 << 20;

#[repr(C)]
#[derive(Default)]
struct GroupStatus {
    argsz: u32,
    flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct RegionInfo {
    argsz: u32,
    flags: u32,
    index: u32,
    cap_offset: u32,
    size: u64,
    offset: u64,
}

#[repr(C)]
#[derive(Default)]
struct IrqInfo {
    argsz: u32,
    flags: u32,
    index: u32,
    count: u32,
}

#[repr(C)]
struct IrqSet<const N: usize> {
    argsz: u32,
    flags: u32,
    index: u32,
    start: u32,
    count: u32,
    data: [i32; N],
}

#[repr(C)]
struct DmaMap {
    argsz: u32,
    flags: u32,
    vaddr: u64,
    iova: u64,
    size: u64,
}

#[repr(C)]
struct DmaUnmap {
    argsz: u32,
    flags: u32,
    iova: u64,
    size: u64,
}

/// `size_of::<T>()` as the `argsz` field VFIO structures start with.
fn argsz<T>() -> u32 {
    std::mem::size_of::<T>() as u32
}

/// ioctl(2) with a pointer argument (or an integer, for `arg as u64`).
///
/// # Safety
/// `arg` must be what `request` expects: a pointer to a live structure of
/// its layout, or an integer for requests that take one.
unsafe fn ioctl(fd: RawFd, request: u64, arg: u64) -> io::Result<i32> {
    // SAFETY: the caller vouches for `arg`; the result is checked.
    let r = unsafe { libc::ioctl(fd, request as libc::Ioctl, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A BAR mapped through the device fd.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by mmap with this address and length
        // and nothing uses it once the platform (its owner) is dropped.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// An interrupt source: an eventfd VFIO signals.
struct Vector {
    fd: OwnedFd,
}

impl Vector {
    fn new() -> io::Result<Vector> {
        // SAFETY: eventfd with valid flags; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Vector { fd })
    }

    /// Consumes the eventfd's count; whether it had fired.
    fn take(&self) -> io::Result<bool> {
        let mut count = 0u64;
        // SAFETY: reads 8 bytes into a live u64; the eventfd is ours.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), (&raw mut count).cast(), 8) };
        if n == 8 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            ErrorKind::WouldBlock => Ok(false),
            _ => Err(err),
        }
    }
}

/// A PCI function owned through VFIO.
pub struct VfioPlatform {
    address: String,
    /// The device fd: configuration space and BARs are regions of it.
    device: File,
    config_offset: u64,
    bars: Vec<Mapping>,
    vectors: Vec<Vector>,
    mode: Option<Interrupts>,
    /// Regions mapped into the IOMMU, by IOVA.
    iova: FreeList,
    /// Kept open: closing the group releases the device.
    _group: File,
    container: File,
}

impl std::fmt::Debug for VfioPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioPlatform")
            .field("address", &self.address)
            .field("interrupts", &self.mode)
            .finish_non_exhaustive()
    }
}

impl VfioPlatform {
    /// Opens the function at `address` (`DDDD:BB:DD.F`), which must be
    /// bound to `vfio-pci` and alone in a viable IOMMU group.
    pub fn open(address: &str) -> io::Result<VfioPlatform> {
        let sys = PathBuf::from("/sys/bus/pci/devices").join(address);
        let group_link = std::fs::read_link(sys.join("iommu_group")).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{address} has no IOMMU group (is the IOMMU on?): {e}"),
            )
        })?;
        let group_id = group_link
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| io::Error::other("unreadable iommu_group link"))?
            .to_string();
        let driver = std::fs::read_link(sys.join("driver")).ok();
        if !driver.as_ref().is_some_and(|d| d.ends_with("vfio-pci")) {
            return Err(io::Error::other(format!(
                "{address} is not bound to vfio-pci (driver: {driver:?})"
            )));
        }
        let rw = || OpenOptions::new().read(true).write(true).clone();
        let container = rw().open("/dev/vfio/vfio")?;
        // SAFETY: GET_API_VERSION and CHECK_EXTENSION take an integer.
        unsafe {
            if ioctl(container.as_raw_fd(), GET_API_VERSION, 0)? != API_VERSION {
                return Err(io::Error::other("unknown VFIO API version"));
            }
            if ioctl(container.as_raw_fd(), CHECK_EXTENSION, TYPE1V2_IOMMU)? != 1 {
                return Err(io::Error::other("VFIO lacks the type-1 v2 IOMMU"));
            }
        }
        let group = rw().open(format!("/dev/vfio/{group_id}"))?;
        let mut status = GroupStatus {
            argsz: argsz::<GroupStatus>(),
            ..Default::default()
        };
        // SAFETY: GROUP_GET_STATUS fills a vfio_group_status.
        unsafe { ioctl(group.as_raw_fd(), GROUP_GET_STATUS, &raw mut status as u64)? };
        if status.flags & GROUP_FLAGS_VIABLE == 0 {
            return Err(io::Error::other(format!(
                "IOMMU group {group_id} is not viable: bind every device in it to vfio-pci"
            )));
        }
        let container_fd: i32 = container.as_raw_fd();
        // SAFETY: GROUP_SET_CONTAINER reads an int fd; SET_IOMMU takes an integer.
        unsafe {
            ioctl(
                group.as_raw_fd(),
                GROUP_SET_CONTAINER,
                &raw const container_fd as u64,
            )?;
            ioctl(container.as_raw_fd(), SET_IOMMU, TYPE1V2_IOMMU)?;
        }
        let name = CString::new(address).map_err(io::Error::other)?;
        // SAFETY: GROUP_GET_DEVICE_FD reads a NUL-terminated name and
        // returns a new descriptor.
        let fd = unsafe { ioctl(group.as_raw_fd(), GROUP_GET_DEVICE_FD, name.as_ptr() as u64)? };
        // SAFETY: a new descriptor nobody else owns.
        let device = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut platform = VfioPlatform {
            address: address.to_string(),
            device,
            config_offset: 0,
            bars: Vec::new(),
            vectors: Vec::new(),
            mode: None,
            iova: FreeList::new(IOVA_SPACE),
            _group: group,
            container,
        };
        platform.config_offset = platform.region(CONFIG_REGION_INDEX)?.offset;
        info!("vfio: {address} in IOMMU group {group_id}");
        Ok(platform)
    }

    fn region(&self, index: u32) -> io::Result<RegionInfo> {
        let mut info = RegionInfo {
            argsz: argsz::<RegionInfo>(),
            index,
            ..Default::default()
        };
        // SAFETY: DEVICE_GET_REGION_INFO fills a vfio_region_info.
        unsafe {
            ioctl(
                self.device.as_raw_fd(),
                DEVICE_GET_REGION_INFO,
                &raw mut info as u64,
            )?
        };
        Ok(info)
    }

    /// Points `fds` (one per vector from `start`) at VFIO's trigger for
    /// interrupt `index`.
    fn set_triggers(&self, index: u32, fds: &[RawFd]) -> io::Result<()> {
        // At most three vectors are asked for; a fixed array keeps the
        // variable-length structure on the stack.
        let mut set = IrqSet::<3> {
            argsz: argsz::<IrqSet<3>>(),
            flags: IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER,
            index,
            start: 0,
            count: fds.len() as u32,
            data: [-1; 3],
        };
        if fds.len() > set.data.len() {
            return Err(io::Error::other("too many interrupt vectors"));
        }
        set.data[..fds.len()].copy_from_slice(fds);
        // SAFETY: DEVICE_SET_IRQS reads a vfio_irq_set with `count` fds.
        unsafe {
            ioctl(
                self.device.as_raw_fd(),
                DEVICE_SET_IRQS,
                &raw const set as u64,
            )?
        };
        Ok(())
    }

    fn irq_count(&self, index: u32) -> io::Result<u32> {
        let mut info = IrqInfo {
            argsz: argsz::<IrqInfo>(),
            index,
            ..Default::default()
        };
        // SAFETY: DEVICE_GET_IRQ_INFO fills a vfio_irq_info.
        unsafe {
            ioctl(
                self.device.as_raw_fd(),
                DEVICE_GET_IRQ_INFO,
                &raw mut info as u64,
            )?
        };
        Ok(info.count)
    }
}

impl PciPlatform for VfioPlatform {
    fn read_config(&mut self, offset: u16, buf: &mut [u8]) -> io::Result<()> {
        self.device
            .read_exact_at(buf, self.config_offset + u64::from(offset))
    }

    fn write_config(&mut self, offset: u16, data: &[u8]) -> io::Result<()> {
        self.device
            .write_all_at(data, self.config_offset + u64::from(offset))
    }

    fn map_bar(&mut self, bar: u8) -> io::Result<Mmio> {
        let info = self.region(u32::from(bar))?;
        if info.size == 0 || info.flags & REGION_INFO_FLAG_MMAP == 0 {
            return Err(io::Error::other(format!(
                "BAR {bar} of {} cannot be mapped (size {:#x}, flags {:#x})",
                self.address, info.size, info.flags
            )));
        }
        let len = usize::try_from(info.size).map_err(io::Error::other)?;
        let offset = libc::off_t::try_from(info.offset).map_err(io::Error::other)?;
        // SAFETY: a fresh shared mapping of the device fd's BAR region at a
        // kernel-chosen address, aliasing nothing; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.device.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        self.bars.push(Mapping { ptr, len });
        // SAFETY: the mapping is device memory, kept in `self.bars` until
        // the platform — which outlives every transport window — drops.
        Ok(unsafe { Mmio::new(ptr, len) })
    }

    fn enable_interrupts(&mut self, msix: Option<Msix>, wanted: u16) -> io::Result<Interrupts> {
        let available = match msix {
            Some(_) => self.irq_count(IRQ_INDEX_MSIX)?,
            None => 0,
        };
        let (index, mode) = match u16::try_from(available.min(u32::from(wanted))) {
            Ok(n) if n > 0 => (IRQ_INDEX_MSIX, Interrupts::Msix(n)),
            _ => (IRQ_INDEX_INTX, Interrupts::Intx),
        };
        let n = match mode {
            Interrupts::Msix(n) => usize::from(n),
            Interrupts::Intx => 1,
        };
        self.vectors = (0..n).map(|_| Vector::new()).collect::<io::Result<_>>()?;
        let fds: Vec<RawFd> = self.vectors.iter().map(|v| v.fd.as_raw_fd()).collect();
        self.set_triggers(index, &fds)?;
        self.mode = Some(mode);
        Ok(mode)
    }

    fn interrupt_fds(&self) -> Vec<RawFd> {
        self.vectors.iter().map(|v| v.fd.as_raw_fd()).collect()
    }

    fn wait_interrupts(&mut self, timeout: Duration) -> io::Result<u32> {
        if !timeout.is_zero() {
            crate::transport::wait_readable(&self.interrupt_fds(), timeout)?;
        }
        let mut fired = 0;
        for (i, v) in self.vectors.iter().enumerate() {
            if v.take()? {
                fired |= 1 << i;
            }
        }
        Ok(fired)
    }

    fn unmask_intx(&mut self) -> io::Result<()> {
        // VFIO masks INTx when it fires, until told to unmask.
        let set = IrqSet::<0> {
            argsz: argsz::<IrqSet<0>>(),
            flags: IRQ_SET_DATA_NONE | IRQ_SET_ACTION_UNMASK,
            index: IRQ_INDEX_INTX,
            start: 0,
            count: 1,
            data: [],
        };
        // SAFETY: DEVICE_SET_IRQS reads a vfio_irq_set without data.
        unsafe {
            ioctl(
                self.device.as_raw_fd(),
                DEVICE_SET_IRQS,
                &raw const set as u64,
            )?
        };
        Ok(())
    }

    fn create_region(&mut self, len: usize) -> io::Result<DmaRegion> {
        let len = len.next_multiple_of(4096);
        let offset = self
            .iova
            .alloc(len, IOVA_ALIGN)
            .ok_or_else(|| io::Error::new(ErrorKind::OutOfMemory, "the IOVA space is exhausted"))?;
        let iova = IOVA_BASE + offset as u64;
        let region = match DmaRegion::new_memfd(len, iova) {
            Ok(r) => r,
            Err(e) => {
                self.iova.free(offset, len);
                return Err(io::Error::other(e));
            }
        };
        let map = DmaMap {
            argsz: argsz::<DmaMap>(),
            flags: DMA_MAP_FLAG_READ | DMA_MAP_FLAG_WRITE,
            vaddr: region.shm().as_ptr() as u64,
            iova,
            size: len as u64,
        };
        // SAFETY: IOMMU_MAP_DMA reads a vfio_iommu_type1_dma_map; the
        // memory it names is the region's mapping, which stays until
        // `release_region` unmaps it from the IOMMU.
        if let Err(e) = unsafe {
            ioctl(
                self.container.as_raw_fd(),
                IOMMU_MAP_DMA,
                &raw const map as u64,
            )
        } {
            self.iova.free(offset, len);
            return Err(e);
        }
        Ok(region)
    }

    fn release_region(&mut self, region: &DmaRegion) -> io::Result<()> {
        let unmap = DmaUnmap {
            argsz: argsz::<DmaUnmap>(),
            flags: 0,
            iova: region.device_addr(),
            size: region.len() as u64,
        };
        // SAFETY: IOMMU_UNMAP_DMA reads a vfio_iommu_type1_dma_unmap.
        unsafe {
            ioctl(
                self.container.as_raw_fd(),
                IOMMU_UNMAP_DMA,
                &raw const unmap as u64,
            )?
        };
        let offset = (region.device_addr() - IOVA_BASE) as usize;
        self.iova.free(offset, region.len());
        Ok(())
    }
}
