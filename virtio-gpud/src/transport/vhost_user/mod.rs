//! Linux: the device is QEMU's `vhost-user-gpu` backend, driven as a
//! vhost-user frontend.
//!
//! DMA memory is one memfd announced with SET_MEM_TABLE, so the backend maps
//! the same pages and device addresses are offsets into it. Notifications
//! are eventfds: "kick" from driver to device, "call" back. The backend's
//! display socket is served by [`display`], which plays the monitor.

pub mod display;
mod host_log;

use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use log::{debug, info};
use vhost::vhost_user::message::{FrontendReq, VhostUserConfigFlags, VhostUserHeaderFlag};
use vhost::vhost_user::{Frontend, VhostUserFrontend, VhostUserProtocolFeatures};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use virtio_gpu_proto::{Features, GpuConfig, EVENT_DISPLAY};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use vmm_sys_util::sock_ctrl_msg::ScmSocket;
use zerocopy::FromBytes;

use self::display::Display;
use self::host_log::HostLog;
use super::{Transport, TransportError};
use crate::device::{Gpu, GpuOptions};
use crate::dma::{DmaPool, DmaRegion};
use crate::error::Error;
use crate::queue::QueueAddrs;

pub use self::display::DisplayState;

/// `VHOST_USER_F_PROTOCOL_FEATURES`: the backend speaks protocol extensions.
const PROTOCOL_FEATURES_BIT: u64 = 1 << 30;
/// The backend has exactly two queues: control and cursor.
const NUM_QUEUES: usize = 2;
/// Regions start on this boundary of the device address space.
const REGION_ALIGN: u64 = 1 << 30;
/// Where Debian's `qemu-system-gui` installs the backend.
pub const SYSTEM_BACKEND: &str = "/usr/lib/qemu/vhost-user-gpu";
/// Where `cargo xtask setup` installs the backend it extracts from that
/// package, without the package's GUI dependencies.
pub const PROJECT_BACKEND: &str = "/usr/local/libexec/vhost-user-gpu";
/// Environment variable naming the backend binary to use instead.
pub const BACKEND_ENV: &str = "VHOST_USER_GPU";

/// How to start the backend.
#[derive(Clone, Debug)]
pub struct BackendOptions {
    /// The `vhost-user-gpu` binary.
    pub binary: PathBuf,
    /// Enable virgl 3D (on Mesa llvmpipe when the machine has no GPU).
    /// Without it the device is 2D-only but can show scanouts.
    pub virgl: bool,
    /// Where the backend's stderr goes; `None` inherits ours.
    pub log_file: Option<PathBuf>,
}

impl BackendOptions {
    /// Options for the backend found by [`find_backend`].
    pub fn new(virgl: bool) -> io::Result<Self> {
        Ok(BackendOptions {
            binary: find_backend()?,
            virgl,
            log_file: None,
        })
    }
}

/// Finds the backend binary: `$VHOST_USER_GPU` if set, else the system's,
/// else the one `cargo xtask setup` installs.
pub fn find_backend() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os(BACKEND_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(io::Error::new(
                ErrorKind::NotFound,
                format!("{BACKEND_ENV}={} is not a file", path.display()),
            ))
        };
    }
    [SYSTEM_BACKEND, PROJECT_BACKEND]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            io::Error::new(
                ErrorKind::NotFound,
                format!(
                    "vhost-user-gpu is in neither {SYSTEM_BACKEND} nor {PROJECT_BACKEND}: \
                     run `cargo xtask setup` (or set {BACKEND_ENV})"
                ),
            )
        })
}

/// A running backend process; killed when dropped.
#[derive(Debug)]
pub struct BackendProcess {
    child: Child,
    /// Its log, until the transport takes it to read.
    log: Option<HostLog>,
}

impl BackendProcess {
    /// Starts the backend on one end of a fresh socket pair and returns the
    /// other end, ready for [`VhostUserTransport::new`].
    pub fn spawn(opts: &BackendOptions) -> io::Result<(BackendProcess, UnixStream)> {
        let (ours, theirs) = UnixStream::pair()?;
        /// The descriptor number the backend is told to use.
        const CHILD_FD: i32 = 3;
        let mut cmd = Command::new(&opts.binary);
        cmd.arg(format!("--fd={CHILD_FD}")).stdin(Stdio::null());
        if opts.virgl {
            // Without a render node the backend cannot initialise virgl;
            // /dev/null makes it fall back to a surfaceless llvmpipe context.
            cmd.args(["--virgl", "--render-node=/dev/null"]);
        }
        // The log comes through us: it is where the backend tells of a
        // context it killed (see `host_log`).
        let sink: Box<dyn std::io::Write + Send> = match &opts.log_file {
            Some(log) => Box::new(std::fs::File::create(log)?),
            None => Box::new(std::io::stderr()),
        };
        cmd.stderr(Stdio::piped());
        let fd = theirs.as_raw_fd();
        // SAFETY: the closure runs in the forked child before exec and only
        // calls dup2, which is async-signal-safe; the duplicate drops
        // FD_CLOEXEC so the socket survives exec under a known number.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(fd, CHILD_FD) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        drop(theirs);
        let pipe = child.stderr.take().expect("piped");
        let log = Some(HostLog::new(pipe, sink)?);
        info!(
            "started {} (pid {}, virgl {})",
            opts.binary.display(),
            child.id(),
            opts.virgl
        );
        Ok((BackendProcess { child, log }, ours))
    }

    /// The backend's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the backend has exited, and how.
    pub fn try_wait(&mut self) -> io::Result<Option<std::process::ExitStatus>> {
        self.child.try_wait()
    }
}

impl Drop for BackendProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct QueueFds {
    kick: EventFd,
    call: EventFd,
}

/// The vhost-user frontend for one backend connection.
pub struct VhostUserTransport {
    frontend: Frontend,
    device_features: u64,
    /// The region's address here: vring addresses are sent as frontend
    /// addresses, which the backend translates through the memory table.
    host_base: u64,
    device_base: u64,
    /// Memory slots the backend has left for `create_region`.
    free_slots: u64,
    /// Whether the backend acknowledges messages that ask for it.
    reply_ack: bool,
    /// Device address of the next region `create_region` makes.
    next_region: u64,
    queues: Vec<QueueFds>,
    display: Option<Display>,
    /// The backend's log, when this transport reads it.
    log: Option<HostLog>,
    /// A pidfd of the backend process, readable once it has exited;
    /// closed once that was seen.
    backend: Option<OwnedFd>,
    lost: bool,
    /// `events_read`, which the VMM (this side) manages, as QEMU does for
    /// its vhost-user-gpu device: the backend knows nothing of displays.
    events_read: u32,
    /// A configuration change not yet seen by [`Transport::config_changed`].
    config_pending: bool,
    /// Whether the backend runs virgl (its display queries then race its
    /// fences; see [`Transport::display_queries_need_idle`]).
    virgl: bool,
}

impl std::fmt::Debug for VhostUserTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VhostUserTransport")
            .field(
                "device_features",
                &format_args!("{:#x}", self.device_features),
            )
            .field("display", &self.display.is_some())
            .finish()
    }
}

impl VhostUserTransport {
    /// Makes a memory-table change that has taken effect when this
    /// returns. The backend serves its socket and its queues from one loop
    /// and may handle a queue kick before an earlier socket message, so a
    /// region must be mapped before its addresses reach a queue (a command
    /// into memory it has not mapped fails). With REPLY_ACK the backend
    /// acknowledges the message; without it, an answered request is the
    /// barrier.
    fn memory_change(
        &mut self,
        change: impl FnOnce(&mut Frontend) -> vhost::Result<()>,
    ) -> Result<(), TransportError> {
        if self.reply_ack {
            self.frontend.set_hdr_flags(VhostUserHeaderFlag::NEED_REPLY);
        }
        let result = change(&mut self.frontend);
        self.frontend.set_hdr_flags(VhostUserHeaderFlag::empty());
        result?;
        if !self.reply_ack {
            self.frontend.get_protocol_features()?;
        }
        Ok(())
    }

    /// Connects over `stream`, shares `region` with the backend, and, with
    /// `displays` (each scanout's preferred width and height; none: no
    /// display), serves the backend's display socket.
    pub fn new(
        stream: UnixStream,
        region: &DmaRegion,
        displays: &[(u32, u32)],
    ) -> Result<Self, TransportError> {
        let raw = stream.try_clone()?;
        let mut frontend = Frontend::from_stream(stream, NUM_QUEUES as u64);
        frontend.set_owner()?;
        let device_features = frontend.get_features()?;
        if device_features & PROTOCOL_FEATURES_BIT == 0 {
            return Err(TransportError::Unsupported(
                "backend lacks vhost-user protocol features".into(),
            ));
        }
        let offered = frontend.get_protocol_features()?;
        if !offered.contains(VhostUserProtocolFeatures::CONFIG) {
            return Err(TransportError::Unsupported(
                "backend cannot report its configuration space".into(),
            ));
        }
        // Memory slots let each client's memory be a region of its own;
        // acknowledgements tell when a new one is mapped.
        let wanted = VhostUserProtocolFeatures::CONFIG
            | VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS
            | VhostUserProtocolFeatures::REPLY_ACK;
        frontend.set_protocol_features(offered & wanted)?;
        let free_slots = if offered.contains(VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS) {
            // One slot holds the first region.
            frontend.get_max_mem_slots()?.saturating_sub(1)
        } else {
            0
        };

        let host_base = region.shm().as_ptr() as u64;
        frontend.set_mem_table(&[memory_info(region)])?;

        let display = match displays {
            [] => None,
            sizes => Some(Self::connect_display(&raw, sizes)?),
        };
        let queues = (0..NUM_QUEUES)
            .map(|_| {
                Ok(QueueFds {
                    kick: EventFd::new(EFD_NONBLOCK)?,
                    call: EventFd::new(EFD_NONBLOCK)?,
                })
            })
            .collect::<io::Result<_>>()?;
        debug!("vhost-user backend features {device_features:#x}, protocol {offered:?}");
        Ok(VhostUserTransport {
            frontend,
            device_features,
            host_base,
            device_base: region.device_addr(),
            free_slots,
            reply_ack: offered.contains(VhostUserProtocolFeatures::REPLY_ACK),
            next_region: (region.device_addr() + region.len() as u64)
                .next_multiple_of(REGION_ALIGN),
            queues,
            display,
            log: None,
            backend: None,
            lost: false,
            events_read: 0,
            config_pending: false,
            virgl: false,
        })
    }

    /// Watches backend process `pid`: its exit is the device lost.
    pub fn watch(&mut self, pid: u32) -> io::Result<()> {
        // SAFETY: pidfd_open on a child of ours; the result is checked.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nobody else owns.
        self.backend = Some(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        Ok(())
    }

    /// Reads the backend's log from now on (see `host_log`).
    pub fn hear(&mut self, log: HostLog) {
        self.log = Some(log);
    }

    /// Hands the backend its display socket (VHOST_USER_GPU_SET_SOCKET,
    /// which the vhost crate has no call for) and starts serving our end.
    fn connect_display(raw: &UnixStream, sizes: &[(u32, u32)]) -> Result<Display, TransportError> {
        let (ours, theirs) = UnixStream::pair()?;
        let mut msg = [0u8; 12];
        msg[0..4].copy_from_slice(&(FrontendReq::GPU_SET_SOCKET as u32).to_le_bytes());
        // Version 1, no reply wanted.
        msg[4..8].copy_from_slice(&1u32.to_le_bytes());
        raw.send_with_fd(&msg[..], theirs.as_raw_fd())
            .map_err(|e| io::Error::from_raw_os_error(e.errno()))?;
        drop(OwnedFd::from(theirs));
        Ok(Display::spawn(ours, sizes)?)
    }

    /// What the display shows, when this transport serves one.
    pub fn display(&self) -> Option<&Display> {
        self.display.as_ref()
    }

    fn queue(&self, index: u16) -> Result<&QueueFds, TransportError> {
        // The backend does not bounds-check queue indices in every message,
        // so an out-of-range one must never be sent.
        self.queues
            .get(usize::from(index))
            .ok_or_else(|| TransportError::Unsupported(format!("queue {index} does not exist")))
    }

    fn host_addr(&self, device_addr: u64) -> u64 {
        device_addr - self.device_base + self.host_base
    }
}

impl Transport for VhostUserTransport {
    /// vhost-user has no reset: the backend this transport started is the
    /// one fresh device it drives.
    fn resets(&self) -> u64 {
        1
    }

    fn device_features(&mut self) -> Result<u64, TransportError> {
        Ok(self.device_features)
    }

    fn set_driver_features(&mut self, features: u64) -> Result<(), TransportError> {
        self.virgl = features & Features::VIRGL.bits() != 0;
        // Protocol features were negotiated, which the backend learns from
        // this bit in SET_FEATURES.
        Ok(self
            .frontend
            .set_features(features | PROTOCOL_FEATURES_BIT)?)
    }

    fn max_queue_size(&mut self, index: u16) -> Result<u16, TransportError> {
        self.queue(index)?;
        // libvhost-user accepts up to 1024 entries per queue.
        Ok(1024)
    }

    fn setup_queue(
        &mut self,
        index: u16,
        size: u16,
        addrs: QueueAddrs,
    ) -> Result<(), TransportError> {
        let fds = self.queue(index)?;
        let i = usize::from(index);
        self.frontend.set_vring_num(i, size)?;
        self.frontend.set_vring_addr(
            i,
            &VringConfigData {
                queue_max_size: size,
                queue_size: size,
                flags: 0,
                desc_table_addr: self.host_addr(addrs.desc),
                used_ring_addr: self.host_addr(addrs.used),
                avail_ring_addr: self.host_addr(addrs.avail),
                log_addr: None,
            },
        )?;
        self.frontend.set_vring_base(i, 0)?;
        self.frontend.set_vring_call(i, &fds.call)?;
        // The backend starts a queue when it receives its kick fd.
        self.frontend.set_vring_kick(i, &fds.kick)?;
        Ok(())
    }

    fn driver_ok(&mut self) -> Result<(), TransportError> {
        for i in 0..NUM_QUEUES {
            self.frontend.set_vring_enable(i, true)?;
        }
        Ok(())
    }

    fn read_config(&mut self) -> Result<GpuConfig, TransportError> {
        let size = std::mem::size_of::<GpuConfig>() as u32;
        let (_, payload) =
            self.frontend
                .get_config(0, size, VhostUserConfigFlags::empty(), &[0; 16])?;
        let mut config = GpuConfig::read_from_bytes(&payload)
            .map_err(|_| TransportError::Unsupported("short configuration space".into()))?;
        // The backend leaves num_scanouts to the VMM, which is this side:
        // it is the number of displays we serve.
        let scanouts = self.display.as_ref().map_or(0, Display::num_scanouts);
        config.num_scanouts = scanouts.into();
        config.events_read = self.events_read.into();
        Ok(config)
    }

    fn clear_config_events(&mut self, events: u32) -> Result<(), TransportError> {
        self.events_read &= !events;
        Ok(())
    }

    fn config_changed(&mut self) -> bool {
        std::mem::take(&mut self.config_pending)
    }

    fn request_display(
        &mut self,
        scanout: usize,
        size: Option<(u32, u32)>,
    ) -> Result<(), TransportError> {
        let display = self
            .display
            .as_ref()
            .ok_or_else(|| TransportError::Unsupported("no display is served".into()))?;
        if !display.request(scanout, size) {
            return Err(TransportError::Unsupported(format!("no scanout {scanout}")));
        }
        // The VMM's configuration interrupt, raised in-process: the event
        // loop that called this looks at `config_changed` next.
        self.events_read |= EVENT_DISPLAY;
        self.config_pending = true;
        Ok(())
    }

    fn display_queries_need_idle(&self) -> bool {
        self.virgl
    }

    fn notify(&mut self, index: u16) -> Result<(), TransportError> {
        Ok(self.queue(index)?.kick.write(1)?)
    }

    fn wait_interrupt(&mut self, timeout: Duration) -> Result<bool, TransportError> {
        let calls: Vec<RawFd> = self.queues.iter().map(|q| q.call.as_raw_fd()).collect();
        let signalled = super::wait_readable(&calls, timeout)?;
        self.ack_interrupts()?;
        Ok(signalled)
    }

    fn create_region(&mut self, len: usize) -> Result<DmaRegion, TransportError> {
        if self.free_slots == 0 {
            return Err(TransportError::Unsupported(
                "no memory slot left on the backend".into(),
            ));
        }
        let region = DmaRegion::new_memfd(len, self.next_region).map_err(io::Error::other)?;
        let info = memory_info(&region);
        self.memory_change(|f| f.add_mem_region(&info).map(drop))?;
        self.free_slots -= 1;
        self.next_region = (self.next_region + len as u64).next_multiple_of(REGION_ALIGN);
        Ok(region)
    }

    fn release_region(&mut self, region: &DmaRegion) -> Result<(), TransportError> {
        let info = memory_info(region);
        self.memory_change(|f| f.remove_mem_region(&info))?;
        self.free_slots += 1;
        Ok(())
    }

    fn screen(&self) -> Option<DisplayState> {
        self.display.as_ref().map(|d| d.lock().clone())
    }

    fn interrupt_fds(&self) -> Vec<std::os::fd::RawFd> {
        let log = self.log.as_ref().map(HostLog::fd);
        self.queues
            .iter()
            .map(|q| q.call.as_raw_fd())
            .chain(log)
            .collect()
    }

    fn device_lost(&mut self) -> bool {
        if let Some(fd) = &self.backend {
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd, no waiting; a pidfd polls readable once
            // its process has exited.
            if unsafe { libc::poll(&mut p, 1, 0) } == 1 {
                self.lost = true;
                self.backend = None;
            }
        }
        self.lost
    }

    fn loss_fd(&self) -> Option<RawFd> {
        self.backend.as_ref().map(AsRawFd::as_raw_fd)
    }

    fn take_context_errors(&mut self) -> Vec<u32> {
        self.log.as_mut().map_or_else(Vec::new, |log| {
            log.drain();
            log.take_lost()
        })
    }

    fn ack_interrupts(&mut self) -> Result<(), TransportError> {
        // The log first: a context's death is logged before the answer to
        // the command that caused it.
        if let Some(log) = &mut self.log {
            log.drain();
        }
        for q in &self.queues {
            // Reset the counter; an empty eventfd reports WouldBlock.
            match q.call.read() {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// How the backend learns of a region: its device address, size, our
/// address of it (vring addresses are given in ours), and its memfd.
fn memory_info(region: &DmaRegion) -> VhostUserMemoryRegionInfo {
    let shm = region.shm();
    VhostUserMemoryRegionInfo {
        guest_phys_addr: region.device_addr(),
        memory_size: region.len() as u64,
        userspace_addr: shm.as_ptr() as u64,
        mmap_offset: 0,
        mmap_handle: shm.fd().as_raw_fd(),
    }
}

/// Everything needed to bring up a device on Linux.
#[derive(Clone, Debug)]
pub struct LaunchOptions {
    /// The backend to start.
    pub backend: BackendOptions,
    /// Bytes of DMA memory shared with it.
    pub dma_size: usize,
    /// Device address of the first DMA byte.
    pub dma_base: u64,
    /// Serve a display with scanouts of these preferred sizes (needed for
    /// GET_DISPLAY_INFO; empty: none).
    pub displays: Vec<(u32, u32)>,
    /// Driver tunables.
    pub gpu: GpuOptions,
}

impl LaunchOptions {
    /// Defaults: the backend [`find_backend`] finds, 64 MiB of DMA memory,
    /// a 1024×768 display.
    pub fn new(virgl: bool) -> io::Result<Self> {
        Ok(LaunchOptions {
            backend: BackendOptions::new(virgl)?,
            dma_size: 64 << 20,
            dma_base: 0x4000_0000,
            displays: vec![(1024, 768)],
            gpu: GpuOptions::default(),
        })
    }
}

/// Starts a backend and brings the device up on it. Drop the [`Gpu`]
/// before the process handle to let the backend exit on its own.
pub fn launch(opts: &LaunchOptions) -> Result<(Gpu<VhostUserTransport>, BackendProcess), Error> {
    let region = DmaRegion::new_memfd(opts.dma_size, opts.dma_base)?;
    let (mut process, stream) =
        BackendProcess::spawn(&opts.backend).map_err(TransportError::from)?;
    let mut transport = VhostUserTransport::new(stream, &region, &opts.displays)?;
    if let Some(log) = process.log.take() {
        transport.hear(log);
    }
    transport
        .watch(process.pid())
        .map_err(TransportError::from)?;
    let gpu = Gpu::new(transport, DmaPool::new(region), &opts.gpu)?;
    Ok((gpu, process))
}
