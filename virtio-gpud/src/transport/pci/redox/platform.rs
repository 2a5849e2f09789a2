//! [`PciPlatform`] for the function pcid hands this process.

use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::time::Duration;

use libredox::call::MmapArgs;
use libredox::flag::{MAP_SHARED, PROT_READ, PROT_WRITE};
use log::{info, warn};

use super::irq::{self, Kind, Lines, VECTOR_BASE};
use super::msix::{self, MsixTable};
use super::pcid::{Bar, FunctionConfig, PcidChannel};
use crate::dma::{DmaError, DmaRegion};
use crate::transport::pci::caps::Msix;
use crate::transport::pci::mmio::Mmio;
use crate::transport::pci::{Interrupts, PciPlatform, COMMAND};

/// The variable pcid-spawner names the channel's fd in.
pub const PCID_CLIENT_CHANNEL: &str = "PCID_CLIENT_CHANNEL";
/// PCI command register: Interrupt Disable, which silences INTx (PCI 3.0
/// §6.2.2).
const INTX_DISABLE: u16 = 1 << 10;
/// DMA regions are whole pages of the memory scheme.
const PAGE: usize = 4096;
/// pcid's `common::MemoryType::Uncacheable`, as the channel's mmap offset
/// carries it: registers must not be cached or combined.
const UNCACHEABLE: u64 = 0b01;

/// The mmap offset of the channel that maps BAR `bar` whole with memory
/// type `memory_type` (pcid's `mmap_prep`: the BAR index in the top three
/// bits, the type in the two below, the offset in the BAR under them).
fn bar_offset(bar: u8, memory_type: u64) -> u64 {
    u64::from(bar) << 61 | memory_type << 59
}

/// A BAR mapped through the channel.
#[derive(Debug)]
struct BarMapping {
    mmio: Mmio,
    ptr: NonNull<u8>,
    len: usize,
}

impl Drop for BarMapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by mmap with this address and length
        // and nothing uses it once the platform (its owner) is dropped.
        if let Err(e) = unsafe { libredox::call::munmap(self.ptr.as_ptr().cast(), self.len) } {
            warn!("unmapping a BAR: {e}");
        }
    }
}

/// The PCI function pcid handed over, driven through its channel.
pub struct RedoxPci {
    pcid: PcidChannel<File>,
    function: FunctionConfig,
    /// The MSI-X table, once programmed (a window of one of `bars`).
    msix: Option<MsixTable>,
    lines: Option<Lines>,
    /// Last: the windows above point into these mappings.
    bars: [Option<BarMapping>; 6],
}

impl std::fmt::Debug for RedoxPci {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedoxPci")
            .field("function", &self.function)
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

impl RedoxPci {
    /// Connects to the function whose channel pcid-spawner passed in
    /// [`PCID_CLIENT_CHANNEL`].
    pub fn from_env() -> io::Result<RedoxPci> {
        let var = std::env::var(PCID_CLIENT_CHANNEL).map_err(|e| {
            io::Error::new(
                ErrorKind::NotFound,
                format!("{PCID_CLIENT_CHANNEL}: {e} (virtio-gpud is started by pcid-spawner)"),
            )
        })?;
        let fd: RawFd = var.parse().ok().filter(|fd| *fd >= 0).ok_or_else(|| {
            io::Error::new(
                ErrorKind::InvalidInput,
                format!("{PCID_CLIENT_CHANNEL}={var} is not an fd number"),
            )
        })?;
        // Nothing started from here should find it.
        std::env::remove_var(PCID_CLIENT_CHANNEL);
        // SAFETY: pcid-spawner opened the channel for this process and
        // passes only its number; nothing else here owns it.
        let channel = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        RedoxPci::new(channel)
    }

    /// Drives the function behind `channel`, an open pcid channel.
    pub fn new(channel: File) -> io::Result<RedoxPci> {
        let mut pcid = PcidChannel::new(channel);
        let function = pcid.config()?;
        info!(
            "pcid: {} {:04x}:{:04x}",
            function.addr, function.vendor_id, function.device_id
        );
        Ok(RedoxPci {
            pcid,
            function,
            msix: None,
            lines: None,
            bars: [const { None }; 6],
        })
    }

    /// What pcid says about the function.
    pub fn function(&self) -> &FunctionConfig {
        &self.function
    }

    /// Sets MSI-X up with up to `wanted` vectors; `None` when no vector is
    /// free, to fall back to INTx.
    fn enable_msix(&mut self, msix: Msix, wanted: u16) -> io::Result<Option<u16>> {
        let cpu = irq::bsp()?;
        // Bit `v` of a wait's answer is vector `v`.
        let count = wanted.min(msix.vectors).min(32);
        let vectors = irq::allocate(cpu, usize::from(count))?;
        if vectors.is_empty() {
            return Ok(None);
        }
        let window = msix.table;
        let table = self
            .map_bar(window.bar)?
            .window("MSI-X table", window, window.length)
            .map_err(invalid)?;
        let table = MsixTable::new(table);
        let (irqs, files): (Vec<u8>, Vec<File>) = vectors.into_iter().unzip();
        // Before any vector can fire, so that every firing counts.
        let lines = Lines::new(Kind::Msi, files)?;
        table.mask_all().map_err(invalid)?;
        // From here on, dropping the platform masks the table again, even
        // if the rest fails and the vectors go back.
        self.msix = Some(table);
        for (entry, irq) in irqs.iter().enumerate() {
            let vector = irq
                .checked_add(VECTOR_BASE)
                .ok_or_else(|| invalid(format!("IRQ {irq}")))?;
            table
                .program(entry, msix::x86_message(cpu, vector))
                .map_err(invalid)?;
        }
        self.pcid.enable_msix()?;
        for entry in 0..irqs.len() {
            table.unmask(entry).map_err(invalid)?;
        }
        self.pcid.set_msix_function_mask(false)?;
        info!("MSI-X vectors {irqs:?} (+{VECTOR_BASE}) of CPU {cpu}");
        self.lines = Some(lines);
        // At most 32 (above).
        Ok(Some(irqs.len() as u16))
    }

    fn enable_intx(&mut self) -> io::Result<Interrupts> {
        let line = self.function.legacy_interrupt.ok_or_else(|| {
            io::Error::new(
                ErrorKind::Unsupported,
                "the function has neither usable MSI-X nor an INTx line",
            )
        })?;
        let file = irq::open_legacy(line)?;
        // A previous owner may have silenced the line.
        let mut command = [0u8; 2];
        self.read_config(COMMAND, &mut command)?;
        let command = u16::from_le_bytes(command) & !INTX_DISABLE;
        self.write_config(COMMAND, &command.to_le_bytes())?;
        self.lines = Some(Lines::new(Kind::Legacy, vec![file])?);
        info!("INTx {line:?}");
        Ok(Interrupts::Intx)
    }

    fn lines(&mut self) -> io::Result<&mut Lines> {
        self.lines
            .as_mut()
            .ok_or_else(|| io::Error::new(ErrorKind::NotConnected, "interrupts are not enabled"))
    }
}

impl PciPlatform for RedoxPci {
    /// Reads through pcid, within the 256 bytes it reaches everywhere.
    fn read_config(&mut self, offset: u16, buf: &mut [u8]) -> io::Result<()> {
        Ok(self.pcid.read_bytes(offset, buf)?)
    }

    /// Writes through pcid, within the 256 bytes it reaches everywhere.
    fn write_config(&mut self, offset: u16, data: &[u8]) -> io::Result<()> {
        Ok(self.pcid.write_bytes(offset, data)?)
    }

    /// Maps the BAR uncached through the channel, once; later calls get the
    /// same mapping.
    fn map_bar(&mut self, bar: u8) -> io::Result<Mmio> {
        let index = usize::from(bar);
        let Some(&described) = self.function.bars.get(index) else {
            return Err(invalid(format!("BAR {bar}")));
        };
        if let Some(mapping) = &self.bars[index] {
            return Ok(mapping.mmio);
        }
        let Bar::Memory { size, .. } = described else {
            return Err(invalid(format!("BAR {bar} is {described:?}, not memory")));
        };
        let len = usize::try_from(size)
            .ok()
            .filter(|len| *len > 0)
            .ok_or_else(|| invalid(format!("BAR {bar} of {size:#x} bytes")))?;
        let fd = usize::try_from(self.pcid.get_ref().as_raw_fd())
            .map_err(|_| invalid("the channel fd"))?;
        // SAFETY: a new shared mapping at an address the kernel picks, so
        // it aliases nothing; pcid backs it with the BAR (physmapped
        // uncached), which is `len` bytes long. The result is checked.
        let ptr = unsafe {
            libredox::call::mmap(MmapArgs {
                addr: std::ptr::null_mut(),
                length: len,
                prot: PROT_READ | PROT_WRITE,
                flags: MAP_SHARED,
                fd,
                offset: bar_offset(bar, UNCACHEABLE),
            })
        }
        .map_err(|e| {
            io::Error::new(io::Error::from(e).kind(), format!("mapping BAR {bar}: {e}"))
        })?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| invalid("mmap gave null"))?;
        // SAFETY: the mapping is device memory, kept in `self.bars` until
        // the platform — which outlives every transport window — drops.
        let mmio = unsafe { Mmio::new(ptr, len) };
        self.bars[index] = Some(BarMapping { mmio, ptr, len });
        Ok(mmio)
    }

    /// MSI-X when the function has it and the CPU takes MSI (x86: Redox
    /// delivers no MSI elsewhere), with vectors of the boot CPU; else, or
    /// when no vector is free, INTx.
    fn enable_interrupts(&mut self, msix: Option<Msix>, wanted: u16) -> io::Result<Interrupts> {
        if self.lines.is_some() {
            return Err(io::Error::new(
                ErrorKind::AlreadyExists,
                "interrupts are already enabled",
            ));
        }
        let msi = cfg!(any(target_arch = "x86", target_arch = "x86_64"));
        if let (Some(msix), true) = (msix, msi) {
            match self.enable_msix(msix, wanted)? {
                Some(vectors) => return Ok(Interrupts::Msix(vectors)),
                None => warn!("no free interrupt vector: using INTx"),
            }
        }
        self.enable_intx()
    }

    fn interrupt_fds(&self) -> Vec<RawFd> {
        self.lines.as_ref().map(Lines::fds).unwrap_or_default()
    }

    fn wait_interrupts(&mut self, timeout: Duration) -> io::Result<u32> {
        self.lines()?.wait(timeout)
    }

    fn unmask_intx(&mut self) -> io::Result<()> {
        self.lines()?.unmask()
    }

    /// Physically contiguous memory of the memory scheme, rounded up to
    /// whole pages; the device sees its physical address (no IOMMU is set
    /// up on Redox).
    fn create_region(&mut self, len: usize) -> io::Result<DmaRegion> {
        DmaRegion::new_physical(len.next_multiple_of(PAGE)).map_err(|e| match e {
            DmaError::Os(e) => e,
            e => io::Error::other(e),
        })
    }

    /// Nothing to withdraw: no IOMMU maps the region. Its memory returns to
    /// the system when the region's last reference drops and unmaps it.
    fn release_region(&mut self, _region: &DmaRegion) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for RedoxPci {
    fn drop(&mut self) {
        // The vectors go back to the kernel with their handles: the
        // function must not raise them for whoever takes them next.
        if let Some(table) = &self.msix {
            if let Err(e) = table.mask_all() {
                warn!("masking MSI-X on the way out: {e}");
            }
        }
    }
}

fn invalid(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, what.to_string())
}
