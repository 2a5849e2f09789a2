//! The virtio PCI transport (virtio 1.2 §4.1, modern devices only): the
//! same code drives the device on Redox (the function pcid hands over) and
//! on Linux (a function bound to vfio-pci, as in the QEMU PCI test).
//!
//! What differs between platforms is small and sits behind
//! [`PciPlatform`]: reading configuration space, mapping a BAR, enabling
//! and waiting for interrupts, and making DMA memory with device
//! addresses. Everything above it — finding the virtio structures,
//! feature negotiation and the status handshake, queue set-up,
//! notification, MSI-X vector assignment, the ISR and configuration
//! changes — is here.
//!
//! The device is reset once, when the transport is created (the spec's
//! initialisation, §3.1.1), and again when it is dropped, so that it
//! stops using memory this process is about to give back.

pub mod caps;
pub mod mmio;
#[cfg(any(target_os = "redox", test))]
pub mod redox;
#[cfg(target_os = "linux")]
pub mod vfio;

use std::collections::BTreeMap;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use virtio_gpu_proto::{Features, GpuConfig};
use zerocopy::FromBytes;

use self::caps::{Msix, VirtioCaps};
use self::mmio::Mmio;
use super::{Transport, TransportError};
use crate::device::{Gpu, GpuOptions};
use crate::dma::{DmaPool, DmaRegion};
use crate::error::Error;
use crate::queue::QueueAddrs;

/// PCI command register and the bits the driver sets (PCI 3.0 §6.2.2).
const COMMAND: u16 = 0x04;
const COMMAND_MEMORY: u16 = 1 << 1;
const COMMAND_BUS_MASTER: u16 = 1 << 2;

/// `struct virtio_pci_common_cfg` (virtio 1.2 §4.1.4.3).
mod common {
    pub const DEVICE_FEATURE_SELECT: usize = 0x00;
    pub const DEVICE_FEATURE: usize = 0x04;
    pub const DRIVER_FEATURE_SELECT: usize = 0x08;
    pub const DRIVER_FEATURE: usize = 0x0c;
    pub const CONFIG_MSIX_VECTOR: usize = 0x10;
    pub const NUM_QUEUES: usize = 0x12;
    pub const DEVICE_STATUS: usize = 0x14;
    pub const CONFIG_GENERATION: usize = 0x15;
    pub const QUEUE_SELECT: usize = 0x16;
    pub const QUEUE_SIZE: usize = 0x18;
    pub const QUEUE_MSIX_VECTOR: usize = 0x1a;
    pub const QUEUE_ENABLE: usize = 0x1c;
    pub const QUEUE_NOTIFY_OFF: usize = 0x1e;
    pub const QUEUE_DESC: usize = 0x20;
    pub const QUEUE_DRIVER: usize = 0x28;
    pub const QUEUE_DEVICE: usize = 0x30;
    /// The structure up to `queue_device`, which every modern device has.
    pub const LEN: u64 = 0x38;
}

/// `device_status` bits (virtio 1.2 §2.1).
mod status {
    pub const ACKNOWLEDGE: u8 = 1;
    pub const DRIVER: u8 = 2;
    pub const DRIVER_OK: u8 = 4;
    pub const FEATURES_OK: u8 = 8;
    pub const DEVICE_NEEDS_RESET: u8 = 0x40;
    pub const FAILED: u8 = 0x80;
}

/// An MSI-X vector register that reads back this refused the vector
/// (virtio 1.2 §4.1.5.1.2).
const NO_VECTOR: u16 = 0xffff;
/// ISR status bit: a configuration change (virtio 1.2 §4.1.4.5).
const ISR_CONFIG: u8 = 1 << 1;
/// virtio-gpu's queues: control and cursor.
const QUEUES: u16 = 2;
/// MSI-X vectors wanted: one for configuration changes, one per queue.
const VECTORS: u16 = 1 + QUEUES;
/// How long a reset may take to read back as done.
const RESET_TIMEOUT: Duration = Duration::from_secs(1);

/// How the function interrupts, as the platform set it up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupts {
    /// MSI-X with this many vectors, each its own source: vector `v` fired
    /// is bit `v` of what [`PciPlatform::wait_interrupts`] returns.
    Msix(u16),
    /// The legacy INTx line (bit 0), shared by every cause: the ISR says
    /// which.
    Intx,
}

/// What a platform provides to drive one PCI function.
pub trait PciPlatform {
    /// Reads `buf.len()` bytes of the function's configuration space at
    /// `offset`.
    fn read_config(&mut self, offset: u16, buf: &mut [u8]) -> io::Result<()>;

    /// Writes `data` to the function's configuration space at `offset`.
    fn write_config(&mut self, offset: u16, data: &[u8]) -> io::Result<()>;

    /// Maps memory BAR `bar` whole; the mapping lives as long as the
    /// platform.
    fn map_bar(&mut self, bar: u8) -> io::Result<Mmio>;

    /// Enables up to `wanted` MSI-X vectors when the function has MSI-X
    /// (`msix`), else its INTx line.
    fn enable_interrupts(&mut self, msix: Option<Msix>, wanted: u16) -> io::Result<Interrupts>;

    /// Descriptors that become readable when an interrupt fires, for an
    /// event loop.
    fn interrupt_fds(&self) -> Vec<RawFd>;

    /// Waits up to `timeout` (zero: not at all) for an interrupt and
    /// consumes every pending one; returns which fired (see
    /// [`Interrupts`]).
    fn wait_interrupts(&mut self, timeout: Duration) -> io::Result<u32>;

    /// Lets the INTx line fire again once the ISR was read (it is masked
    /// when it fires).
    fn unmask_intx(&mut self) -> io::Result<()>;

    /// Makes `len` bytes of memory the device can reach by DMA.
    fn create_region(&mut self, len: usize) -> io::Result<DmaRegion>;

    /// Withdraws a region from `create_region`; the device no longer uses it.
    fn release_region(&mut self, region: &DmaRegion) -> io::Result<()>;
}

/// A virtio-gpu PCI function driven through a [`PciPlatform`].
pub struct PciTransport<P: PciPlatform> {
    common: Mmio,
    notify: Mmio,
    isr: Mmio,
    device: Mmio,
    notify_multiplier: u32,
    interrupts: Interrupts,
    /// Offset in the notify window of each set-up queue's register.
    notify_at: BTreeMap<u16, usize>,
    num_queues: u16,
    device_features: u64,
    config_pending: bool,
    lost: bool,
    /// Resets done (see [`Transport::resets`]).
    resets: u64,
    caps: VirtioCaps,
    /// Last: the mappings above belong to it.
    platform: P,
}

impl<P: PciPlatform> std::fmt::Debug for PciTransport<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PciTransport")
            .field("caps", &self.caps)
            .field("interrupts", &self.interrupts)
            .finish_non_exhaustive()
    }
}

impl<P: PciPlatform> PciTransport<P> {
    /// Finds the function's virtio structures, maps them, resets the
    /// device and acknowledges it (ACKNOWLEDGE, DRIVER), and sets up its
    /// interrupts. Feature negotiation follows through [`Transport`].
    pub fn new(mut platform: P) -> Result<Self, TransportError> {
        let mut space = [0u8; caps::CONFIG_SPACE];
        platform.read_config(0, &mut space)?;
        let caps = caps::parse(&space).map_err(|e| TransportError::Unsupported(e.to_string()))?;
        debug!("virtio PCI capabilities: {caps:?}");

        let command = u16::from_le_bytes([space[4], space[5]]);
        let enabled = command | COMMAND_MEMORY | COMMAND_BUS_MASTER;
        platform.write_config(COMMAND, &enabled.to_le_bytes())?;

        let mut bars: BTreeMap<u8, Mmio> = BTreeMap::new();
        let mut window = |what, w: caps::Window, min| -> Result<Mmio, TransportError> {
            let bar = match bars.get(&w.bar) {
                Some(bar) => *bar,
                None => *bars.entry(w.bar).or_insert(platform.map_bar(w.bar)?),
            };
            bar.window(what, w, min)
        };
        let common = window("common configuration", caps.common, common::LEN)?;
        // A queue's register is checked when its offset is known.
        let notify = window("notify", caps.notify, 0)?;
        let isr = window("ISR", caps.isr, 1)?;
        let device = window(
            "device configuration",
            caps.device,
            std::mem::size_of::<GpuConfig>() as u64,
        )?;

        let mut transport = PciTransport {
            common,
            notify,
            isr,
            device,
            notify_multiplier: caps.notify_multiplier,
            interrupts: Interrupts::Intx,
            notify_at: BTreeMap::new(),
            num_queues: 0,
            device_features: 0,
            config_pending: false,
            lost: false,
            resets: 0,
            caps,
            platform,
        };
        transport.reset()?;
        transport.set_status(status::ACKNOWLEDGE)?;
        transport.set_status(status::DRIVER)?;
        transport.num_queues = transport.common.read(common::NUM_QUEUES)?;
        if transport.num_queues < QUEUES {
            return Err(transport.fail(format!(
                "the device has {} queues, virtio-gpu needs {QUEUES}",
                transport.num_queues
            )));
        }
        transport.device_features = transport.read_features()?;
        transport.interrupts = transport
            .platform
            .enable_interrupts(transport.caps.msix, VECTORS)?;
        if let Interrupts::Msix(_) = transport.interrupts {
            transport.common.write(common::CONFIG_MSIX_VECTOR, 0u16)?;
            if transport.common.read::<u16>(common::CONFIG_MSIX_VECTOR)? == NO_VECTOR {
                return Err(transport.fail("the device refused MSI-X vector 0 for config".into()));
            }
        }
        info!(
            "virtio PCI: {} queues, features {:#x}, interrupts {:?}",
            transport.num_queues, transport.device_features, transport.interrupts
        );
        Ok(transport)
    }

    /// The virtio structures the function offers (shared-memory regions
    /// among them).
    pub fn caps(&self) -> &VirtioCaps {
        &self.caps
    }

    /// The platform under the transport.
    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// Writes 0 to `device_status` and waits until it reads back 0
    /// (virtio 1.2 §4.1.4.3.2).
    fn reset(&mut self) -> Result<(), TransportError> {
        self.resets += 1;
        self.common.write(common::DEVICE_STATUS, 0u8)?;
        let started = Instant::now();
        while self.common.read::<u8>(common::DEVICE_STATUS)? != 0 {
            if started.elapsed() > RESET_TIMEOUT {
                return Err(TransportError::Unsupported(
                    "the device does not finish its reset".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    fn set_status(&mut self, bit: u8) -> Result<(), TransportError> {
        let now: u8 = self.common.read(common::DEVICE_STATUS)?;
        self.common.write(common::DEVICE_STATUS, now | bit)
    }

    /// Sets FAILED, as a driver that gives up must (virtio 1.2 §3.1.1),
    /// and returns why as an error.
    fn fail(&mut self, why: String) -> TransportError {
        if let Err(e) = self.set_status(status::FAILED) {
            warn!("setting FAILED: {e}");
        }
        TransportError::Unsupported(why)
    }

    fn read_features(&mut self) -> Result<u64, TransportError> {
        let mut features = 0u64;
        for half in 0..2u32 {
            self.common.write(common::DEVICE_FEATURE_SELECT, half)?;
            let bits: u32 = self.common.read(common::DEVICE_FEATURE)?;
            features |= u64::from(bits) << (32 * half);
        }
        Ok(features)
    }

    fn select(&mut self, index: u16) -> Result<(), TransportError> {
        if index >= self.num_queues {
            return Err(TransportError::Unsupported(format!(
                "queue {index} does not exist"
            )));
        }
        self.common.write(common::QUEUE_SELECT, index)
    }

    /// The MSI-X vector for queue `index`: its own when there are enough,
    /// else one shared by both queues, else the only one.
    fn queue_vector(&self, index: u16) -> Option<u16> {
        match self.interrupts {
            Interrupts::Msix(n) if n >= VECTORS => Some(1 + index),
            Interrupts::Msix(n) if n >= 2 => Some(1),
            Interrupts::Msix(_) => Some(0),
            Interrupts::Intx => None,
        }
    }

    /// Records what fired: MSI-X vector 0 is configuration changes (when
    /// it is not also a queue's); with INTx, reading the ISR tells, clears
    /// it and lowers the line.
    fn note(&mut self, fired: u32) -> Result<(), TransportError> {
        match self.interrupts {
            Interrupts::Msix(n) if n >= 2 => self.config_pending |= fired & 1 != 0,
            // One vector for everything: any interrupt may be a change.
            Interrupts::Msix(_) => self.config_pending |= fired != 0,
            Interrupts::Intx if fired != 0 => {
                let isr: u8 = self.isr.read(0)?;
                self.config_pending |= isr & ISR_CONFIG != 0;
                self.platform.unmask_intx()?;
            }
            Interrupts::Intx => {}
        }
        Ok(())
    }
}

impl<P: PciPlatform> Transport for PciTransport<P> {
    fn resets(&self) -> u64 {
        self.resets
    }

    fn device_features(&mut self) -> Result<u64, TransportError> {
        Ok(self.device_features)
    }

    fn set_driver_features(&mut self, features: u64) -> Result<(), TransportError> {
        // Device addresses are what the platform's DMA mapping gives (IOVAs
        // behind an IOMMU), so a device behind one is accepted as such; a
        // device offering ACCESS_PLATFORM may refuse a driver that does not
        // take it (virtio 1.2 §6.1).
        let features = features | (self.device_features & Features::ACCESS_PLATFORM.bits());
        for half in 0..2u32 {
            self.common.write(common::DRIVER_FEATURE_SELECT, half)?;
            self.common
                .write(common::DRIVER_FEATURE, (features >> (32 * half)) as u32)?;
        }
        self.set_status(status::FEATURES_OK)?;
        if self.common.read::<u8>(common::DEVICE_STATUS)? & status::FEATURES_OK == 0 {
            return Err(self.fail(format!("the device refused features {features:#x}")));
        }
        Ok(())
    }

    fn max_queue_size(&mut self, index: u16) -> Result<u16, TransportError> {
        self.select(index)?;
        match self.common.read::<u16>(common::QUEUE_SIZE)? {
            0 => Err(TransportError::Unsupported(format!(
                "queue {index} is not available"
            ))),
            size => Ok(size),
        }
    }

    fn setup_queue(
        &mut self,
        index: u16,
        size: u16,
        addrs: QueueAddrs,
    ) -> Result<(), TransportError> {
        self.select(index)?;
        self.common.write(common::QUEUE_SIZE, size)?;
        if let Some(vector) = self.queue_vector(index) {
            self.common.write(common::QUEUE_MSIX_VECTOR, vector)?;
            if self.common.read::<u16>(common::QUEUE_MSIX_VECTOR)? == NO_VECTOR {
                return Err(self.fail(format!(
                    "the device refused MSI-X vector {vector} for queue {index}"
                )));
            }
        }
        // 64-bit fields may be written as two 32-bit halves, low first
        // (virtio 1.2 §4.1.3.1).
        for (at, addr) in [
            (common::QUEUE_DESC, addrs.desc),
            (common::QUEUE_DRIVER, addrs.avail),
            (common::QUEUE_DEVICE, addrs.used),
        ] {
            self.common.write(at, addr as u32)?;
            self.common.write(at + 4, (addr >> 32) as u32)?;
        }
        let off: u16 = self.common.read(common::QUEUE_NOTIFY_OFF)?;
        // The register must lie inside the notify structure (virtio 1.2
        // §4.1.4.4: cap.length >= queue_notify_off * multiplier + 2).
        let at = u64::from(off) * u64::from(self.notify_multiplier);
        if at + 2 > self.notify.len() as u64 {
            return Err(self.fail(format!(
                "queue {index}'s notify offset {at:#x} is outside the notify structure"
            )));
        }
        self.notify_at.insert(index, at as usize);
        self.common.write(common::QUEUE_ENABLE, 1u16)
    }

    fn driver_ok(&mut self) -> Result<(), TransportError> {
        self.set_status(status::DRIVER_OK)
    }

    fn read_config(&mut self) -> Result<GpuConfig, TransportError> {
        // A read is consistent when config_generation is the same before
        // and after it (virtio 1.2 §4.1.4.3.1).
        for _ in 0..100 {
            let before: u8 = self.common.read(common::CONFIG_GENERATION)?;
            let mut bytes = [0u8; std::mem::size_of::<GpuConfig>()];
            for (i, word) in bytes.chunks_exact_mut(4).enumerate() {
                word.copy_from_slice(&self.device.read::<u32>(4 * i)?.to_le_bytes());
            }
            if self.common.read::<u8>(common::CONFIG_GENERATION)? == before {
                return Ok(GpuConfig::read_from_bytes(&bytes).expect("sized to the struct"));
            }
        }
        Err(TransportError::Unsupported(
            "the device configuration never reads consistently".into(),
        ))
    }

    fn clear_config_events(&mut self, events: u32) -> Result<(), TransportError> {
        // `events_clear` follows `events_read` (virtio 1.2 §5.7.4).
        self.device.write(4, events)
    }

    fn config_changed(&mut self) -> bool {
        std::mem::take(&mut self.config_pending)
    }

    fn notify(&mut self, index: u16) -> Result<(), TransportError> {
        let at = *self
            .notify_at
            .get(&index)
            .ok_or_else(|| TransportError::Unsupported(format!("queue {index} is not set up")))?;
        // Without VIRTIO_F_NOTIFICATION_DATA the queue index is written.
        self.notify.write(at, index)
    }

    fn wait_interrupt(&mut self, timeout: Duration) -> Result<bool, TransportError> {
        let fired = self.platform.wait_interrupts(timeout)?;
        self.note(fired)?;
        Ok(fired != 0)
    }

    fn interrupt_fds(&self) -> Vec<RawFd> {
        self.platform.interrupt_fds()
    }

    fn ack_interrupts(&mut self) -> Result<(), TransportError> {
        let fired = self.platform.wait_interrupts(Duration::ZERO)?;
        self.note(fired)
    }

    fn device_lost(&mut self) -> bool {
        // DEVICE_NEEDS_RESET: the device hit an error it cannot go on from
        // (virtio 1.2 §2.1.1); all ones: the function is gone from the bus.
        if !self.lost {
            self.lost = match self.common.read::<u8>(common::DEVICE_STATUS) {
                Ok(s) => s == 0xff || s & status::DEVICE_NEEDS_RESET != 0,
                Err(_) => true,
            };
        }
        self.lost
    }

    fn create_region(&mut self, len: usize) -> Result<DmaRegion, TransportError> {
        Ok(self.platform.create_region(len)?)
    }

    fn release_region(&mut self, region: &DmaRegion) -> Result<(), TransportError> {
        Ok(self.platform.release_region(region)?)
    }
}

impl<P: PciPlatform> Drop for PciTransport<P> {
    fn drop(&mut self) {
        // The device must stop using memory that is about to be freed.
        if let Err(e) = self.reset() {
            warn!("resetting the device on the way out: {e}");
        }
    }
}

/// Bytes of DMA memory taken at start for the rings and commands (each
/// client's memory is a region of its own, made as it comes).
pub const DMA_SIZE: usize = 64 << 20;

/// Brings up the virtio-gpu function `platform` drives.
pub fn launch<P: PciPlatform>(
    platform: P,
    opts: &GpuOptions,
) -> Result<Gpu<PciTransport<P>>, Error> {
    let mut transport = PciTransport::new(platform)?;
    let region = transport.create_region(DMA_SIZE)?;
    Gpu::new(transport, DmaPool::new(region), opts)
}
