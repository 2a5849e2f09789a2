//! KMS state: per scanout a CRTC, an encoder, a connector, a primary and a
//! cursor plane (Linux's virtio_gpu topology, ABI reference §3.6), the
//! framebuffers clients made, and the simulated vblank that paces flips.
//!
//! How a plane update reaches the device, as Linux's virtio_gpu does it
//! ([`display`]): SET_SCANOUT only when the plane's framebuffer or the mode
//! changes; a dumb buffer's damage goes up as one TRANSFER_TO_HOST_2D of the
//! merged damaged rectangle, then a fenced RESOURCE_FLUSH of it; a
//! framebuffer of a virgl resource is shown by SET_SCANOUT and flushed,
//! with nothing to upload. The cursor goes through the cursor queue.
//!
//! Pacing ([`vblank`]): virtio-gpu has no vblank. Each active CRTC has a
//! simulated one at its mode's refresh rate, as vkms does with a timer: a
//! flip's event comes at the first simulated vblank after its fenced flush
//! completed, with that vblank's time and sequence. The timer runs only
//! while something waits for a vblank.
//!
//! Hotplug ([`Kms::update_monitors`]): when the device signals a display
//! change, each connector's status, modes, size and EDID property follow
//! what it now reports; what the CRTCs show is left as it is, for the
//! compositor to change, as Linux leaves it.

pub mod atomic;
pub mod display;
mod journal;
pub mod modes;
pub mod props;
pub mod vblank;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drm_uapi::kms::ModeInfo;
use gpu_session::api::DisplayEntry;
use scheme_seam::{Errno, HandleId, Result};
use virtio_gpu_proto::edid::Edid;

use crate::device::Device;
use crate::gem::Gem;
use vblank::Vblank;

/// The mode config's framebuffer limits (Linux's virtio_gpu).
pub const MIN_SIZE: u32 = 32;
/// See [`MIN_SIZE`].
pub const MAX_SIZE: u32 = 8192;
/// The cursor plane's size (`DRM_CAP_CURSOR_WIDTH/HEIGHT`).
pub const CURSOR_SIZE: u32 = 64;
/// Formats the primary plane scans out.
pub const PRIMARY_FORMATS: [u32; 2] = [
    drm_uapi::kms::FORMAT_XRGB8888,
    drm_uapi::kms::FORMAT_ARGB8888,
];
/// Formats the cursor plane scans out.
pub const CURSOR_FORMATS: [u32; 1] = [drm_uapi::kms::FORMAT_ARGB8888];
/// Bytes of a VBLANK or FLIP_COMPLETE event: what a request that sends one
/// reserves of its file's event space.
pub const VBLANK_EVENT: usize = size_of::<drm_uapi::kms::EventVblank>();

/// Whether `gem` can be the cursor's image: a 64x64 image, the only
/// cursor virtio shows.
pub fn cursor_image(gem: &Gem) -> bool {
    gem.image
        .is_some_and(|i| (i.width, i.height) == (CURSOR_SIZE, CURSOR_SIZE))
}

/// `DRM_MODE_ENCODER_VIRTUAL`.
pub const ENCODER_VIRTUAL: u32 = 5;
/// `DRM_MODE_CONNECTOR_VIRTUAL`.
pub const CONNECTOR_VIRTUAL: u32 = 15;

/// Ids of the fixed objects: output `i` owns `BASE + STRIDE * i` and the
/// four after it, and framebuffers and blobs take ids from [`DYNAMIC`] on.
/// One id space, as Linux's (ids below `BASE` are properties).
const BASE: u32 = 0x40;
const STRIDE: u32 = 8;
const DYNAMIC: u32 = 0x1000;

/// What kind of fixed object an id names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// Output `n`'s CRTC.
    Crtc(usize),
    /// Its encoder.
    Encoder(usize),
    /// Its connector.
    Connector(usize),
    /// Its primary plane.
    Primary(usize),
    /// Its cursor plane.
    Cursor(usize),
}

impl Object {
    /// The object's id.
    pub fn id(self) -> u32 {
        let (n, k) = match self {
            Object::Crtc(n) => (n, 0),
            Object::Encoder(n) => (n, 1),
            Object::Connector(n) => (n, 2),
            Object::Primary(n) => (n, 3),
            Object::Cursor(n) => (n, 4),
        };
        BASE + STRIDE * n as u32 + k
    }

    fn of(id: u32, outputs: usize) -> Option<Object> {
        let n = (id.checked_sub(BASE)? / STRIDE) as usize;
        if n >= outputs {
            return None;
        }
        Some(match (id - BASE) % STRIDE {
            0 => Object::Crtc(n),
            1 => Object::Encoder(n),
            2 => Object::Connector(n),
            3 => Object::Primary(n),
            4 => Object::Cursor(n),
            _ => return None,
        })
    }
}

/// A framebuffer (ADDFB/ADDFB2).
#[derive(Debug)]
pub struct Framebuffer {
    /// Its id.
    pub id: u32,
    /// The file that made it (RMFB, GETFB and the file's close know it).
    pub owner: HandleId,
    /// The buffer.
    pub gem: Arc<Gem>,
    /// The GEM handle it was made with (GETFB2 gives the owner this).
    pub handle: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per line.
    pub pitch: u32,
    /// Byte offset of its first pixel in the buffer.
    pub offset: u32,
    /// fourcc.
    pub format: u32,
    /// Its origin in the resource's image (the offset over the pitch).
    pub origin: (u32, u32),
}

/// A plane's framebuffer and source position.
#[derive(Debug, Clone, Default)]
pub struct PlaneState {
    /// What it shows (None: off).
    pub fb: Option<Arc<Framebuffer>>,
    /// The source's top-left in the framebuffer.
    pub src: (u32, u32),
}

/// The cursor as the device shows it.
#[derive(Debug, Clone, Default)]
pub struct CursorState {
    /// Its image (None: hidden).
    pub image: Option<Arc<Gem>>,
    /// Position of the image's top-left on the CRTC.
    pub pos: (i32, i32),
    /// Hotspot in the image.
    pub hot: (i32, i32),
    /// The framebuffer it was set from (SETPLANE, ATOMIC; None from the
    /// legacy CURSOR ioctls, which name a buffer).
    pub fb: Option<Arc<Framebuffer>>,
    /// An UPDATE_CURSOR waiting for its image's upload: the upload's
    /// fence, and when to look at it next (fence progress looks sooner).
    pub pending: Option<(u64, Instant)>,
}

/// A flip waiting for its vblank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Flip {
    /// The file to tell.
    pub owner: HandleId,
    /// The fence of its flush (0: nothing to wait for).
    pub fence: u64,
    /// Whether it sends an event, and the event's user data.
    pub event: Option<u64>,
    /// The vblank count when it was last looked at (first: when it was
    /// queued): it completes at a later one.
    pub checked: u64,
    /// The point of the output's display timeline its completion signals
    /// (an ATOMIC commit's OUT_FENCE_PTR).
    pub out_fence: Option<u64>,
}

/// An event to send at a vblank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Queued {
    /// The file to tell.
    pub owner: HandleId,
    /// The vblank it waits for.
    pub target: u64,
    /// The request's user data.
    pub user_data: u64,
    /// A CRTC_QUEUE_SEQUENCE's event (else WAIT_VBLANK's).
    pub sequence: bool,
}

/// What the device reports of a scanout's display.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Monitor {
    /// Its GET_DISPLAY_INFO entry.
    pub entry: DisplayEntry,
    /// Its EDID as the device gave it (empty: none).
    pub edid: Vec<u8>,
}

/// One scanout's objects and state.
#[derive(Debug)]
pub struct Output {
    /// The scanout index.
    pub index: usize,
    /// What the device said of the display.
    pub monitor: Monitor,
    /// The connector's modes, preferred first.
    pub modes: Vec<ModeInfo>,
    /// The display's image size in millimetres, from its EDID (0: unknown).
    pub size_mm: (u32, u32),
    /// The connector's EDID blob, when the display gave a valid EDID.
    pub edid_blob: Option<u32>,
    /// Bumped at each change of what the connector reports.
    pub epoch: u64,
    /// The CRTC's mode (None: off).
    pub mode: Option<ModeInfo>,
    /// The primary plane.
    pub primary: PlaneState,
    /// The cursor plane.
    pub cursor: CursorState,
    /// What SET_SCANOUT last set: resource and rectangle (None: nothing).
    pub shown: Option<(u32, [u32; 4])>,
    /// The simulated vblank.
    pub vblank: Vblank,
    /// The flip waiting for its vblank.
    pub flip: Option<Flip>,
    /// Events waiting for a vblank (WAIT_VBLANK with EVENT,
    /// CRTC_QUEUE_SEQUENCE).
    pub queued: Vec<Queued>,
    /// DPMS turned the CRTC off (its mode and planes are kept).
    pub dpms_off: bool,
    /// The timeline of its flips' out-fences, made in syncd on first use,
    /// and its last point.
    pub fences: Option<(sync_client::TimelineOwner, u64)>,
    /// The driver's blob of `mode` (MODE_ID).
    pub mode_blob: Option<u32>,
}

impl Output {
    /// Whether the CRTC is on: a mode set and DPMS on.
    pub fn active(&self) -> bool {
        self.mode.is_some() && !self.dpms_off
    }

    /// Whether a display is connected.
    pub fn connected(&self) -> bool {
        self.monitor.entry.enabled != 0
    }

    /// The CRTC's id.
    pub fn crtc_id(&self) -> u32 {
        Object::Crtc(self.index).id()
    }
}

/// All KMS state of the device.
#[derive(Debug)]
pub struct Kms {
    /// One per scanout.
    pub outputs: Vec<Output>,
    fbs: BTreeMap<u32, Arc<Framebuffer>>,
    blobs: BTreeMap<u32, Blob>,
    next_id: u32,
}

/// A property blob.
#[derive(Debug)]
pub struct Blob {
    /// The file that made it (None: the driver's, e.g. a mode's).
    pub owner: Option<HandleId>,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// Bytes of blobs one file may have (Linux bounds them only by memory).
pub const BLOB_SPACE: usize = 1 << 20;

impl Kms {
    /// The topology of a device with `monitors`, one per scanout.
    pub fn new(monitors: &[Monitor]) -> Kms {
        let outputs = (0..monitors.len())
            .map(|index| Output {
                index,
                monitor: Monitor::default(),
                modes: Vec::new(),
                size_mm: (0, 0),
                edid_blob: None,
                epoch: 0,
                mode: None,
                primary: PlaneState::default(),
                cursor: CursorState::default(),
                shown: None,
                vblank: Vblank::default(),
                flip: None,
                queued: Vec::new(),
                dpms_off: false,
                fences: None,
                mode_blob: None,
            })
            .collect();
        let mut kms = Kms {
            outputs,
            fbs: BTreeMap::new(),
            blobs: BTreeMap::new(),
            next_id: DYNAMIC,
        };
        kms.update_monitors(monitors);
        kms
    }

    /// Takes what the device now reports of each scanout's display: the
    /// connectors whose display changed get its status, modes, size and
    /// EDID (a new blob, as `drm_connector_update_edid_property` makes);
    /// returns their outputs. An EDID that does not parse counts as none.
    pub fn update_monitors(&mut self, monitors: &[Monitor]) -> Vec<usize> {
        let mut changed = Vec::new();
        for (n, monitor) in monitors.iter().enumerate().take(self.outputs.len()) {
            if self.outputs[n].monitor == *monitor && self.outputs[n].epoch > 0 {
                continue;
            }
            let connected = monitor.entry.enabled != 0;
            let edid = match Edid::parse(&monitor.edid) {
                Ok(edid) if connected => Some(edid),
                Ok(_) => None,
                Err(e) => {
                    if !monitor.edid.is_empty() {
                        log::warn!("scanout {n}: {e}: its modes come from its size");
                    }
                    None
                }
            };
            if let Some(old) = self.outputs[n].edid_blob.take() {
                self.blobs.remove(&old);
            }
            let blob = edid.and_then(|e| self.create_blob(None, e.bytes().to_vec()).ok());
            let out = &mut self.outputs[n];
            out.modes = modes::of_display(&monitor.entry, edid.as_ref());
            out.size_mm = edid.map_or((0, 0), |e| e.size_mm());
            out.edid_blob = blob;
            out.monitor = monitor.clone();
            out.epoch += 1;
            changed.push(n);
        }
        changed
    }

    /// What fixed object `id` is, if any.
    pub fn object(&self, id: u32) -> Option<Object> {
        Object::of(id, self.outputs.len())
    }

    /// The output whose CRTC is `id` (ENOENT otherwise, as Linux).
    pub fn crtc(&self, id: u32) -> Result<usize> {
        match self.object(id) {
            Some(Object::Crtc(n)) => Ok(n),
            _ => Err(Errno::ENOENT),
        }
    }

    /// A new object id (framebuffer or blob): never one in use, and not
    /// reused soon, so that a stale id names nothing rather than another
    /// client's object.
    pub fn new_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.checked_add(1).unwrap_or(DYNAMIC);
            if !self.fbs.contains_key(&id) && !self.blobs.contains_key(&id) {
                return id;
            }
        }
    }

    /// Adds `fb` (whose id came from [`Kms::new_id`]).
    pub fn add_fb(&mut self, fb: Framebuffer) -> u32 {
        let id = fb.id;
        self.fbs.insert(id, Arc::new(fb));
        id
    }

    /// The framebuffer `id` (ENOENT).
    pub fn fb(&self, id: u32) -> Result<Arc<Framebuffer>> {
        self.fbs.get(&id).cloned().ok_or(Errno::ENOENT)
    }

    /// The framebuffers `owner` made, by id.
    pub fn fbs_of(&self, owner: HandleId) -> Vec<u32> {
        self.fbs
            .values()
            .filter(|f| f.owner == owner)
            .map(|f| f.id)
            .collect()
    }

    /// Takes framebuffer `id` of `owner` out of the table (ENOENT when it
    /// is not one of `owner`'s, as Linux's RMFB and CLOSEFB); planes that
    /// show it keep it.
    pub fn take_fb(&mut self, id: u32, owner: HandleId) -> Result<Arc<Framebuffer>> {
        match self.fbs.get(&id) {
            Some(fb) if fb.owner == owner => Ok(self.fbs.remove(&id).expect("present")),
            _ => Err(Errno::ENOENT),
        }
    }

    /// A new blob of `owner`'s (ENOMEM past [`BLOB_SPACE`]).
    pub fn create_blob(&mut self, owner: Option<HandleId>, data: Vec<u8>) -> Result<u32> {
        if let Some(owner) = owner {
            let used: usize = self
                .blobs
                .values()
                .filter(|b| b.owner == Some(owner))
                .map(|b| b.data.len())
                .sum();
            if used + data.len() > BLOB_SPACE {
                return Err(Errno::ENOMEM);
            }
        }
        let id = self.new_id();
        self.blobs.insert(id, Blob { owner, data });
        Ok(id)
    }

    /// The blob `id` (ENOENT).
    pub fn blob(&self, id: u32) -> Result<&Blob> {
        self.blobs.get(&id).ok_or(Errno::ENOENT)
    }

    /// Destroys blob `id` of `owner` (ENOENT: no such blob; EPERM: not
    /// `owner`'s, as Linux's DESTROYPROPBLOB).
    pub fn destroy_blob(&mut self, id: u32, owner: HandleId) -> Result<()> {
        match self.blobs.get(&id) {
            None => Err(Errno::ENOENT),
            Some(b) if b.owner != Some(owner) => Err(Errno::EPERM),
            Some(_) => {
                self.blobs.remove(&id);
                Ok(())
            }
        }
    }

    /// Drops every blob of `owner` (its file closed).
    pub fn drop_blobs_of(&mut self, owner: HandleId) {
        self.blobs.retain(|_, b| b.owner != Some(owner));
    }

    /// The blob of output `n`'s mode (MODE_ID), if it has one.
    pub fn mode_blob(&self, n: usize) -> Option<u32> {
        self.outputs[n].mode_blob
    }

    /// Records output `n`'s new mode: its MODE_ID blob is replaced.
    pub fn set_mode(&mut self, n: usize, mode: Option<ModeInfo>) {
        if let Some(old) = self.outputs[n].mode_blob.take() {
            self.blobs.remove(&old);
        }
        if let Some(m) = mode {
            use zerocopy::IntoBytes;
            self.outputs[n].mode_blob = self.create_blob(None, m.as_bytes().to_vec()).ok();
        }
        self.outputs[n].mode = mode;
    }

    /// Forgets what `owner` queued (its file closed).
    pub fn drop_queued_of(&mut self, owner: HandleId) {
        for out in &mut self.outputs {
            out.queued.retain(|q| q.owner != owner);
        }
    }

    /// The outputs whose primary plane shows `fb`.
    pub fn showing(&self, fb: &Arc<Framebuffer>) -> Vec<usize> {
        self.outputs
            .iter()
            .filter(|o| o.primary.fb.as_ref().is_some_and(|f| Arc::ptr_eq(f, fb)))
            .map(|o| o.index)
            .collect()
    }
}

/// How often an upload a cursor image waits for is looked at without fence
/// progress events.
const CURSOR_RETRY: Duration = Duration::from_millis(1);

/// An event for a file.
pub type Delivery = (HandleId, Vec<u8>);

impl Kms {
    /// When the daemon must next look at the outputs: the vblank after
    /// the one each pending flip was last looked at (a fixed instant, so
    /// that the serving loop sees it pass), or now for a cursor image whose
    /// upload waits (fence progress also brings [`Kms::tick`]). None while
    /// nothing waits.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        self.outputs
            .iter()
            .filter_map(|o| {
                let flip = o.flip.map(|f| match o.vblank.on() {
                    true => o.vblank.time(f.checked + 1, now),
                    false => now,
                });
                let cursor = o.cursor.pending.map(|(_, at)| at);
                let queued = o.queued.iter().map(|q| q.target).min();
                let queued = queued.map(|t| o.vblank.time(t, now));
                [flip, cursor, queued].into_iter().flatten().min()
            })
            .min()
    }

    /// Completes what is due at `now`: flips whose flush is done complete
    /// at this vblank (their events are returned), and cursor images whose
    /// upload is done are shown.
    pub fn tick(&mut self, device: &mut Device, now: Instant) -> (Vec<Delivery>, Vec<usize>) {
        let mut flipped = Vec::new();
        let session = device.export_holder().clone();
        let mut events = Vec::new();
        for out in &mut self.outputs {
            if let Some((fence, _)) = out.cursor.pending {
                let shown = match device.signaled(fence).unwrap_or(true) {
                    true => display::show_cursor(&*session, out),
                    false => Ok(false),
                };
                match shown {
                    Ok(true) => {}
                    // The upload is not done, or the cursor queue is full.
                    Ok(false) => out.cursor.pending = Some((fence, now + CURSOR_RETRY)),
                    Err(e) => {
                        log::warn!("showing the cursor: {e:?}");
                        out.cursor.pending = None;
                    }
                }
            }
            let seq = out.vblank.count(now);
            let (due, waiting): (Vec<Queued>, Vec<Queued>) = out
                .queued
                .iter()
                .partition(|q| q.target <= seq || !out.vblank.on());
            out.queued = waiting;
            for q in due {
                let time = out.vblank.time_ns(q.target);
                let event = match q.sequence {
                    true => crate::events::sequence(q.user_data, q.target, time),
                    false => crate::events::vblank(q.user_data, out.crtc_id(), q.target, time),
                };
                events.push((q.owner, event));
            }
            let Some(flip) = &mut out.flip else { continue };
            let seq = out.vblank.count(now);
            let on = out.vblank.on();
            if on && seq <= flip.checked {
                continue;
            }
            if !device.signaled(flip.fence).unwrap_or(true) {
                // Not at this vblank: at the next one after the flush.
                flip.checked = seq;
                continue;
            }
            let flip = *flip;
            out.flip = None;
            flipped.push(out.index);
            if let (Some(point), Some((timeline, _))) = (flip.out_fence, &out.fences) {
                if let Err(e) = timeline.signal(point) {
                    log::warn!("signalling a flip's out-fence: {e}");
                }
            }
            if let Some(user_data) = flip.event {
                let time = Duration::from_nanos(out.vblank.time_ns(seq));
                let event = crate::events::flip(user_data, out.crtc_id(), seq, time);
                events.push((flip.owner, event));
            }
        }
        (events, flipped)
    }
}
