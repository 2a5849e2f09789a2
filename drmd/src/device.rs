//! What drmd knows of the device: what virtio-gpud negotiated (for
//! GETPARAM), its capsets (for GET_CAPS), and syncd's view of its fences.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use gpu_session::api::CapsetEntry;
use gpu_session::Session;

use crate::backend::DeviceSession;
use sync_client::{SyncFile, TimelinePage};
use virtio_gpu_proto::Features;

use crate::gem::Offsets;

/// Where a device fence stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FenceState {
    /// Its work is done.
    Signaled,
    /// Its work failed: the device answered it with an error, or was
    /// declared stuck or lost before it did.
    Failed,
    /// Not yet.
    Busy,
}

/// The device, as drmd's clients see it.
#[derive(Debug)]
pub struct Device {
    /// Negotiated features.
    pub features: Features,
    /// Capsets the device offers.
    pub capsets: Vec<CapsetEntry>,
    /// A session of drmd's own, for device-wide queries and for holding
    /// exported objects (see [`crate::gem`]).
    control: Arc<dyn DeviceSession>,
    /// mmap offsets of GEM objects.
    offsets: Offsets,
    /// syncd's timeline page, once syncd answers.
    page: Option<TimelinePage>,
    /// The syncd timeline of device fences, once virtio-gpud has one.
    timeline: Option<u32>,
}

impl Device {
    /// Learns the device from virtio-gpud.
    pub fn open() -> io::Result<Device> {
        let control = Session::open().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot reach virtio-gpud (scheme:virtio-gpu): {e}"),
            )
        })?;
        // Init starts syncd first; opened now, the page's handle can be an
        // event source for the whole run (see `progress_fd`).
        let page = TimelinePage::open()
            .map_err(|e| log::warn!("syncd not reachable yet ({e}): parked waits will poll"))
            .ok();
        Device::new(Arc::new(control), page)
    }

    /// The device behind `control`, drmd's own session, with syncd's
    /// timeline page if syncd is up.
    pub fn new(control: Arc<dyn DeviceSession>, page: Option<TimelinePage>) -> io::Result<Device> {
        let (info, capsets) = control.info()?;
        Ok(Device {
            features: Features::from_bits_retain(info.features),
            capsets,
            control,
            offsets: Offsets::default(),
            page,
            timeline: None,
        })
    }

    /// Takes `control`, the control session a dead instance kept (it holds
    /// what that instance exported), in place of the one opened at start.
    pub fn adopt_control(&mut self, control: Arc<dyn DeviceSession>) {
        self.control = control;
    }

    /// The next mmap offset to give (a restarted instance goes on from
    /// there).
    pub fn next_offset(&self) -> u64 {
        self.offsets.next()
    }

    /// Offsets go on from `next`.
    pub fn continue_offsets(&mut self, next: u64) {
        self.offsets = Offsets::from(next.max(self.offsets.next()));
    }

    /// A session of the device for a DRM file of user `uid`.
    pub fn open_session(&self, uid: u32) -> io::Result<Box<dyn DeviceSession>> {
        self.control.open_for(uid)
    }

    /// Each scanout's display and EDID, as virtio-gpud last learnt them
    /// (none if it cannot say: the device then shows nothing; a scanout
    /// whose EDID cannot be read has none).
    pub fn monitors(&self) -> Vec<crate::kms::Monitor> {
        let entries = self
            .control
            .displays()
            .map_err(|e| log::warn!("no display information ({e}): no outputs"))
            .unwrap_or_default();
        entries
            .into_iter()
            .enumerate()
            .map(|(i, entry)| crate::kms::Monitor {
                entry,
                edid: self
                    .control
                    .edid(i as u32)
                    .map_err(|e| log::warn!("scanout {i}: no EDID ({e})"))
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// The session that holds exported objects for their dma-bufs, and
    /// sends every display command.
    pub fn export_holder(&self) -> &Arc<dyn DeviceSession> {
        &self.control
    }

    /// An mmap offset for a new object of `size` bytes.
    pub fn map_offset(&mut self, size: u32) -> u64 {
        self.offsets.take(size)
    }

    /// The capset `id`'s data at `version`, from virtio-gpud's cache.
    pub fn capset(&self, id: u32, version: u32) -> io::Result<Vec<u8>> {
        let size = self
            .capsets
            .iter()
            .find(|c| c.id == id)
            .map_or(0, |c| c.max_size);
        self.control.capset(id, version, size as usize)
    }

    /// Bit N set for each capset id N the device lists.
    pub fn capset_mask(&self) -> u64 {
        self.capsets
            .iter()
            .filter(|c| c.id < 64)
            .fold(0, |m, c| m | 1 << c.id)
    }

    /// The syncd timeline of device fences (asking virtio-gpud the first
    /// time: it attaches to syncd lazily).
    pub fn timeline(&mut self) -> io::Result<u32> {
        if self.timeline.is_none() {
            self.timeline = Some(self.control.timeline()?);
        }
        Ok(self.timeline.expect("just set"))
    }

    /// A sync_file of device fence `point`, made by duplicating drmd's
    /// page handle at syncd (no new connection per fence).
    pub fn sync_file(&mut self, point: u64) -> io::Result<SyncFile> {
        let timeline = self.timeline()?;
        self.page()?.sync_file(timeline, point)
    }

    /// A sync_file of `point` on `timeline`, one of drmd's own.
    pub fn sync_file_on(&mut self, timeline: u32, point: u64) -> io::Result<SyncFile> {
        self.page()?.sync_file(timeline, point)
    }

    fn page(&mut self) -> io::Result<&TimelinePage> {
        if self.page.is_none() {
            self.page = Some(TimelinePage::open()?);
        }
        Ok(self.page.as_ref().expect("just set"))
    }

    /// A descriptor readable once virtio-gpud frees ring room after a
    /// refused `try_queue` of any of drmd's sessions (see
    /// [`gpu_session::api::QUEUE`]).
    pub fn room_fd(&self) -> io::Result<RawFd> {
        self.control.room_fd()
    }

    /// Takes note of the room [`Device::room_fd`] reported.
    pub fn acknowledge_room(&self) {
        if let Err(e) = self.control.acknowledge_room() {
            log::warn!("acknowledging ring room: {e}");
        }
    }

    /// A descriptor readable once a fence timeline moves, if syncd was up
    /// when drmd started; without it parked waits poll the page.
    pub fn progress_fd(&self) -> Option<RawFd> {
        let page = self.page.as_ref()?;
        page.poll_fd()
            .map_err(|e| log::warn!("no fence progress events ({e}): parked waits will poll"))
            .ok()
            .map(|fd| fd.as_raw_fd())
    }

    /// Takes note of the fence progress [`Device::progress_fd`] reported.
    /// `false` if syncd no longer answers: the page handle is dropped (its
    /// descriptor leaves the serving loop with it, rather than staying
    /// readable forever) and waits must poll.
    pub fn acknowledge_progress(&mut self) -> bool {
        match self.page.as_ref().map(TimelinePage::acknowledge) {
            Some(Err(e)) => {
                log::warn!("fence progress events lost ({e}): parked waits will poll");
                self.page = None;
                false
            }
            _ => true,
        }
    }

    /// Whether device fence `point` is done — signalled, or failed
    /// (0: nothing to wait for).
    pub fn signaled(&mut self, point: u64) -> io::Result<bool> {
        Ok(self.fence_state(point)? != FenceState::Busy)
    }

    /// Where device fence `point` stands, from syncd's pages: a call to
    /// syncd only when the pages say the point may have failed.
    pub fn fence_state(&mut self, point: u64) -> io::Result<FenceState> {
        if point == 0 {
            return Ok(FenceState::Signaled);
        }
        let timeline = self.timeline()?;
        let page = self.page()?;
        let (Some(last), Some(failed)) = (page.last_signaled(timeline), page.last_failed(timeline))
        else {
            return Err(io::Error::other("device timeline has no slot on the page"));
        };
        // Abandoned (virtio-gpud is gone): every point past the last fails.
        if point > last {
            return Ok(match failed {
                u64::MAX => FenceState::Failed,
                _ => FenceState::Busy,
            });
        }
        if point > failed {
            return Ok(FenceState::Signaled);
        }
        let status = page.sync_file(timeline, point)?.info()?.status;
        Ok(if status < 0 {
            FenceState::Failed
        } else {
            FenceState::Signaled
        })
    }
}
