//! The platform seam to the device: feature bits, configuration space,
//! queue set-up, notifications and interrupts.
//!
//! Everything above this trait is the same on every platform. On Redox the
//! device is the PCI function pcid hands over ([`pci`]); on Linux it is
//! QEMU's `vhost-user-gpu` backend ([`vhost_user`]) or, in the QEMU PCI
//! test, a PCI function bound to vfio-pci ([`pci`] again).

pub mod pci;
pub mod screen;
#[cfg(target_os = "linux")]
pub mod vhost_user;

use std::time::Duration;

use virtio_gpu_proto::GpuConfig;

use crate::dma::DmaRegion;
use crate::queue::QueueAddrs;

/// Waits until one of `fds` is readable or `timeout` passes (a signal
/// cuts the wait short); whether one is. Linux transports signal through
/// eventfds.
#[cfg(target_os = "linux")]
fn wait_readable(fds: &[std::os::fd::RawFd], timeout: Duration) -> std::io::Result<bool> {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: `polled` is a live array of `polled.len()` pollfd structs.
    let n = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, ms) };
    if n < 0 {
        let err = std::io::Error::last_os_error();
        return match err.kind() {
            std::io::ErrorKind::Interrupted => Ok(false),
            _ => Err(err),
        };
    }
    Ok(n > 0)
}

/// Errors of a transport.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The device, or the connection to it, failed.
    #[error("device transport: {0}")]
    Io(#[from] std::io::Error),
    /// The vhost-user protocol reported an error.
    #[cfg(target_os = "linux")]
    #[error("vhost-user: {0}")]
    VhostUser(#[from] vhost::Error),
    /// The device lacks something the driver cannot work without.
    #[error("device unsupported: {0}")]
    Unsupported(String),
}

/// How the driver reaches a virtio device.
pub trait Transport {
    /// The feature bits the device offers.
    fn device_features(&mut self) -> Result<u64, TransportError>;

    /// How many times this process brought the device to its initial
    /// state: a reset, or where the transport has none, the start of a
    /// fresh device. Once at start; a reset later would have lost every
    /// object the host held (`device_resets` in virtio-gpud's `stats`).
    fn resets(&self) -> u64;

    /// Acknowledges the subset of features the driver will use.
    fn set_driver_features(&mut self, features: u64) -> Result<(), TransportError>;

    /// The largest size the device accepts for queue `index`.
    fn max_queue_size(&mut self, index: u16) -> Result<u16, TransportError>;

    /// Tells the device where queue `index` of `size` entries lives.
    fn setup_queue(
        &mut self,
        index: u16,
        size: u16,
        addrs: QueueAddrs,
    ) -> Result<(), TransportError>;

    /// Sets DRIVER_OK: the device may start processing queues.
    fn driver_ok(&mut self) -> Result<(), TransportError>;

    /// Reads the device configuration space.
    fn read_config(&mut self) -> Result<GpuConfig, TransportError>;

    /// Writes `events` to the configuration's `events_clear`: the driver
    /// has handled them (virtio 1.2 §5.7.4).
    fn clear_config_events(&mut self, events: u32) -> Result<(), TransportError>;

    /// Whether the device signalled a configuration change since the last
    /// call (which consumes it). Interrupt handling ([`Transport::wait_interrupt`],
    /// [`Transport::ack_interrupts`]) records the signal.
    fn config_changed(&mut self) -> bool;

    /// Tells the device that queue `index` has new buffers.
    fn notify(&mut self, index: u16) -> Result<(), TransportError>;

    /// Blocks until the device signals a used buffer (or a configuration
    /// change) or `timeout` passes; returns whether it signalled. Spurious
    /// wake-ups are allowed: callers re-check the rings.
    fn wait_interrupt(&mut self, timeout: Duration) -> Result<bool, TransportError>;

    /// Descriptors that become readable when the device signals, for an
    /// event loop to watch instead of blocking in `wait_interrupt`.
    fn interrupt_fds(&self) -> Vec<std::os::fd::RawFd>;

    /// Consumes pending interrupt signals without waiting, so an
    /// edge-triggered or level-triggered watcher is re-armed.
    fn ack_interrupts(&mut self) -> Result<(), TransportError>;

    /// Contexts the host reported dead since the last call (virglrenderer
    /// stops running a context that hit an error). A device has no
    /// virtio answer for it: only a transport that hears the host (the
    /// vhost-user backend's log) knows; others report none.
    fn take_context_errors(&mut self) -> Vec<u32> {
        Vec::new()
    }

    /// Whether the device is gone for good (the vhost-user backend process
    /// exited); a transport that cannot tell says no, and a device that
    /// stops answering is then found stuck.
    fn device_lost(&mut self) -> bool {
        false
    }

    /// A descriptor that becomes readable when the device is lost, for an
    /// event loop to watch; [`Transport::device_lost`] then closes it, so a
    /// level-triggered watcher hears it once.
    fn loss_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }

    /// Creates another region of `len` bytes of DMA memory the device can
    /// reach, apart from the first: a client's memory of its own, which can
    /// be shared with that client without exposing anyone else's.
    fn create_region(&mut self, len: usize) -> Result<DmaRegion, TransportError>;

    /// Withdraws a region from `create_region`. The device must no longer
    /// use it (its resources released).
    fn release_region(&mut self, region: &DmaRegion) -> Result<(), TransportError>;

    /// What the display shows now, when the transport serves the display
    /// itself (the Linux backend's display side); a real monitor cannot be
    /// read back: None.
    fn screen(&self) -> Option<screen::DisplayState> {
        None
    }

    /// Makes the display the transport serves ask for `size` on scanout
    /// `scanout` (None: unplug its monitor), as a window resized in a VMM's
    /// UI does, and signals the configuration change. A real monitor
    /// cannot be told: Unsupported.
    fn request_display(
        &mut self,
        scanout: usize,
        size: Option<(u32, u32)>,
    ) -> Result<(), TransportError> {
        let _ = (scanout, size);
        Err(TransportError::Unsupported(
            "the display is not ours to resize".into(),
        ))
    }

    /// Whether GET_DISPLAY_INFO and GET_EDID may only be sent while no
    /// fenced command is in flight. QEMU's vhost-user-gpu backend in virgl
    /// mode answers a pending display query with the first fence that
    /// retires (and then crashes on the real answer), so it needs this;
    /// a device that answers commands on their own does not.
    fn display_queries_need_idle(&self) -> bool {
        false
    }
}
