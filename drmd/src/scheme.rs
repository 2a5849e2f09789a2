//! `scheme:drm`: the device nodes Mesa and compositors open. Each open is
//! a DRM file of its own ([`DrmFile`]); ioctls are calls whose metadata
//! word 0 is the ioctl nr and whose payload is the relibc wire encoding
//! (`drm_uapi`).
//!
//! ioctls that return an fd are completed by a `dup` of the DRM fd whose
//! buffer is the ioctl nr (`u64`) followed by a reference the ioctl gave:
//! - EXECBUFFER with FENCE_FD_OUT writes a slot naming its fence into
//!   `fence_fd`; `dup(fd, [EXECBUFFER, slot])` returns the sync_file (a
//!   file keeps its newest 64 slots; a slot may be claimed again, which a
//!   `dup` a restarted drmd lost needs). ATOMIC's
//!   OUT_FENCE_PTR is a slot the same way, `dup(fd, [ATOMIC, slot])`.
//! - SYNCOBJ_HANDLE_TO_FD is `dup(fd, [HANDLE_TO_FD, HandleToFd])`.
//! - PRIME_HANDLE_TO_FD is `dup(fd, [PRIME_HANDLE_TO_FD, PrimeHandle])`:
//!   the new handle is a dma-buf on this scheme. It answers the token call
//!   (`scheme_seam::token::CALL`), which PRIME_FD_TO_HANDLE carries, and
//!   can be mmapped at offset 0.
//!
//! `stats` (read-only text) counts what each ioctl type cost (see
//! [`crate::stats`]).

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drm_uapi::core as dc;
use drm_uapi::kms as k;
use drm_uapi::syncobj::{self as so, HandleToFd};
use drm_uapi::virtgpu as vg;
use gpu_session::Session;
use log::warn;
use scheme_seam::metrics;
use scheme_seam::token::{self, Tokens};
use scheme_seam::{
    read_text, Answer, Context, Errno, EventFlags, HandleId, Keeper, Mapping, Opened, Park, Result,
    Scheme, Stat, WakeKey,
};
use zerocopy::FromBytes;

use crate::device::Device;
use crate::errno::io_errno;
use crate::file::{DrmFile, OutFence};
use crate::gem::Names;
use crate::handle::{Handle, Handles};
use crate::ioctl::{self, table, Call, PROGRESS, ROOM};
use crate::kms::Kms;
use crate::master::Masters;
use crate::node::Node;
use crate::recovery::{self, record::Marks, restore, Recovery, View};
use crate::stats::{IoctlStats, Op};

/// How often [`PROGRESS`] and [`ROOM`] are woken while requests may wait
/// on one whose events are not available (syncd was not up when drmd
/// started, or went away; virtio-gpud's session gave no readiness).
const POLL: Duration = Duration::from_millis(1);

/// Event-source tokens: syncd's fence progress, virtio-gpud's ring room.
const PROGRESS_SOURCE: usize = 0;
const ROOM_SOURCE: usize = 1;

/// The DRM scheme.
pub struct DrmScheme {
    device: Device,
    handles: Handles,
    /// Tokens of dma-bufs, for PRIME import.
    tokens: Tokens<HandleId>,
    /// What each ioctl type cost.
    stats: IoctlStats,
    /// Without one of the events: keep waking the keys until then.
    poll_until: Option<Instant>,
    /// The next of those wake-ups (a fixed instant: the serving loop runs
    /// [`Scheme::on_deadline`] once it has passed).
    poll_at: Option<Instant>,
    /// Whether syncd's progress events wake parked requests (no polling).
    progress_events: bool,
    /// Whether virtio-gpud's ring-room events do.
    room_events: bool,
    /// Who is DRM master.
    masters: Masters,
    /// GEM_FLINK's global names.
    names: Names,
    /// KMS state.
    kms: Kms,
    /// The recovery journal, under a supervisor.
    recovery: Option<Recovery>,
    /// Handles a dead instance had that were taken back, until their
    /// clients' connections are ([`Scheme::resume`]).
    unclaimed: Vec<HandleId>,
    /// What this instance took over, if it followed one that died.
    restart: Option<RestartCounts>,
}

/// What a restarted drmd took back (shown in `stats`).
#[derive(Debug, Default, Clone, Copy)]
struct RestartCounts {
    /// DRM files rebuilt.
    files: usize,
    /// Objects mapped again.
    objects: usize,
    /// Files the journal listed that could not come back.
    lost: usize,
    /// Rebuilt handles whose clients had gone: closed.
    reclaimed: usize,
    /// When this instance began taking over.
    began: Option<Instant>,
}

/// Woken when an event is queued for file `id`: its parked reads.
fn events_key(id: HandleId) -> WakeKey {
    WakeKey(1 << 32 | id as u64)
}

impl DrmScheme {
    /// The `stats` text: drmd's tables (all back to 0 once every client is
    /// gone), then what each ioctl type cost.
    fn describe(&self) -> String {
        let bos: usize = self.handles.files().map(|f| f.bos.len()).sum();
        let r = self.restart.unwrap_or_default();
        format!(
            "files {}\nbos {bos}\ndma_bufs {}\ntokens {}\nparked {}\nflink_names {}\n\
             taken_over {} files_adopted {} objects_adopted {} files_lost {} files_reclaimed {}\n{}",
            self.handles.files().count(),
            self.handles.dma_bufs().count(),
            self.tokens.len(),
            metrics::parked(),
            self.names.live(),
            u8::from(self.restart.is_some()),
            r.files,
            r.objects,
            r.lost,
            r.reclaimed,
            self.stats.describe()
        )
    }

    /// Serves `device`.
    pub fn new(device: Device) -> Self {
        DrmScheme {
            kms: Kms::new(&device.monitors()),
            progress_events: device.progress_fd().is_some(),
            room_events: device.room_fd().is_ok(),
            device,
            handles: Handles::default(),
            tokens: Tokens::default(),
            stats: IoctlStats::default(),
            poll_until: None,
            poll_at: None,
            masters: Masters::default(),
            names: Names::default(),
            recovery: None,
            unclaimed: Vec::new(),
            restart: None,
        }
    }

    /// Journals what requests on `touched` changed (and, with `shared`,
    /// the state every handle shares).
    fn journal(&mut self, touched: &[HandleId], shared: bool) {
        let Some(recovery) = &mut self.recovery else {
            return;
        };
        let view = View {
            handles: &self.handles,
            tokens: &self.tokens,
            masters: &self.masters,
            names: &self.names,
            kms: &self.kms,
            marks: Marks {
                offsets: self.device.next_offset(),
                handles: self.handles.last_id() as u64,
            },
        };
        recovery.sync(&view, touched, shared);
    }

    /// Journals how request `tag` of file `id` ended, for a submit it
    /// journaled on its way: published with `payload`'s header when
    /// answered, else withdrawn.
    fn journal_settled(&mut self, id: HandleId, tag: u32, answered: bool, payload: &[u8]) {
        let (Some(recovery), Ok(file)) = (&mut self.recovery, self.handles.file(id)) else {
            return;
        };
        let header = &payload[..size_of::<vg::ExecbufferHeader>().min(payload.len())];
        recovery.settled(id, file, tag, answered.then_some(header));
    }

    /// Takes over what a dead instance left in `keeper`, if anything, and
    /// starts journaling for the next.
    fn take_over(&mut self, mut keeper: Keeper) {
        let began = Instant::now();
        // The dead instance's control session holds what it exported.
        if let Some(fd) = keeper.take(recovery::CONTROL) {
            match Session::resume(fd) {
                Ok((control, _)) => self.device.adopt_control(Arc::new(control)),
                Err(e) => warn!("the kept control session: {e}"),
            }
        }
        let mut interrupted = HashMap::new();
        if let Some(state) = recovery::inherited(&mut keeper) {
            let monitors = self.device.monitors();
            let rebuilt = restore::rebuild(state, &mut keeper, &mut self.device, &monitors);
            self.device.continue_offsets(rebuilt.offsets);
            self.handles = rebuilt.handles;
            self.tokens = rebuilt.tokens;
            self.masters = rebuilt.masters;
            self.names = rebuilt.names;
            self.kms = rebuilt.kms;
            self.unclaimed = self.handles.ids();
            self.restart = Some(RestartCounts {
                files: self.handles.files().count(),
                objects: rebuilt.objects,
                lost: rebuilt.lost,
                reclaimed: 0,
                began: Some(began),
            });
            interrupted = rebuilt.interrupted;
        }
        // What nothing took is of files that did not come back.
        keeper.forget_left();
        let recovery = match Recovery::new(keeper, interrupted) {
            Ok(r) => r,
            Err(e) => return warn!("no recovery journal ({e}): a restart loses every file"),
        };
        if let Some(fd) = self.device.export_holder().keep_fd() {
            recovery.keep(recovery::CONTROL, fd);
        }
        self.recovery = Some(recovery);
        let ids = self.handles.ids();
        self.journal(&ids, true);
        if let Some(r) = &self.recovery {
            r.commit();
        }
    }

    /// Whether `id` is a primary file (whose requests may change the
    /// shared state).
    fn primary(&self, id: HandleId) -> bool {
        self.handles.file(id).is_ok_and(|f| f.node == Node::Primary)
    }

    /// Without an event, the requests waiting for it are woken by polling
    /// for a while after one parks.
    fn poll(&mut self) {
        let now = Instant::now();
        self.poll_until = Some(now + POLL * 10);
        self.poll_at = Some(now + POLL);
    }

    /// The fd an fd-returning ioctl `nr` of file `id` returns, by the
    /// reference its call gave (`rest`).
    fn dup_fd(&mut self, id: HandleId, nr: u64, rest: &[u8]) -> Result<Opened> {
        let file = self.handles.file_mut(id)?;
        match nr {
            dc::PRIME_HANDLE_TO_FD => {
                let gem = ioctl::prime::export(&self.device, file, rest)?;
                Ok(Opened::Handle(self.handles.insert(Handle::DmaBuf(gem))))
            }
            vg::EXECBUFFER | k::ATOMIC => {
                let (slot, _) = u64::read_from_prefix(rest).map_err(|_| Errno::EINVAL)?;
                let fence = match file.out_fences.get(slot)? {
                    OutFence::Device(point) => self.device.sync_file(point),
                    OutFence::Timeline(timeline, point) => {
                        self.device.sync_file_on(timeline, point)
                    }
                };
                Ok(Opened::Fd(fence.map_err(io_errno)?.into_fd()))
            }
            so::HANDLE_TO_FD => {
                let h = HandleToFd::read_from_bytes(rest).map_err(|_| Errno::EINVAL)?;
                let fd = file
                    .syncobjs()?
                    .forward_handle_to_fd(&h)
                    .map_err(io_errno)?;
                Ok(Opened::Fd(fd))
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// Completes the flips and cursor updates that are due, and queues the
    /// events for their files (a file that closed meanwhile gets none).
    fn kms_tick(&mut self, ctx: &mut Context) {
        let (events, flipped) = self.kms.tick(&mut self.device, Instant::now());
        let done = !flipped.is_empty() || !events.is_empty();
        for n in flipped {
            ctx.wake(ioctl::atomic::flip_key(n));
        }
        let mut told = Vec::new();
        for (id, event) in events {
            log::debug!("event for file {id}: {} bytes", event.len());
            if let Ok(file) = self.handles.file_mut(id) {
                file.events.push(event);
                ctx.post_event(id, EventFlags::READ);
                ctx.wake(events_key(id));
                told.push(id);
            }
        }
        if done {
            self.journal(&told, true);
        }
    }

    /// Takes what virtio-gpud now reports of the displays (it makes the
    /// control session readable after a display change): each changed
    /// connector is announced to the files that asked for Redox's hotplug
    /// events. Linux clients hear of it from udev there; here they find
    /// it by asking GETCONNECTOR again.
    fn refresh_monitors(&mut self, ctx: &mut Context) {
        let changed = self.kms.update_monitors(&self.device.monitors());
        for n in changed {
            log::info!(
                "connector {n} changed: {:?}",
                self.kms.outputs[n].monitor.entry
            );
            let event = crate::events::hotplug(crate::kms::Object::Connector(n).id());
            let mut told = Vec::new();
            for (id, file) in self.handles.files_mut() {
                if file.caps.redox_hotplug {
                    file.events.post(event.clone());
                    ctx.post_event(id, EventFlags::READ);
                    ctx.wake(events_key(id));
                    told.push(id);
                }
            }
            self.journal(&told, true);
        }
    }

    /// A call on a dma-buf: only its token.
    fn dma_buf_call(
        &mut self,
        id: HandleId,
        payload: &mut [u8],
        metadata: &[u64],
    ) -> Result<usize> {
        if metadata.first() != Some(&token::CALL) {
            return Err(Errno::ENOTTY);
        }
        let out = payload.get_mut(..8).ok_or(Errno::EINVAL)?;
        out.copy_from_slice(&self.tokens.token(id).to_le_bytes());
        Ok(0)
    }
}

impl Scheme for DrmScheme {
    fn open(&mut self, path: &str, _flags: usize, ctx: &mut Context) -> Result<Opened> {
        if path.trim_matches('/') == "stats" {
            let id = self.handles.insert(Handle::Stats);
            self.journal(&[id], false);
            return Ok(Opened::Handle(id));
        }
        let node = Node::from_path(path).ok_or(Errno::ENOENT)?;
        let caller = *ctx.caller();
        // As the device files' modes say: card0 is the display's, for root
        // and the stack's own user (0660); renderD128 is everyone's.
        if node == Node::Primary && !caller.is_privileged() {
            return Err(Errno::EACCES);
        }
        let session = self.device.open_session(caller.uid).map_err(|e| {
            warn!("opening a DRM file: {e}");
            io_errno(e)
        })?;
        let file = DrmFile::open(node, caller.uid, session);
        let id = self.handles.insert(Handle::File(Box::new(file)));
        if node == Node::Primary {
            self.masters.open(id, caller.pid, caller.uid == 0);
        }
        if let (Some(recovery), Ok(file)) = (&self.recovery, self.handles.file(id)) {
            if let Some(fd) = file.session.keep_fd() {
                recovery.keep(&recovery::session_name(id), fd);
            }
        }
        self.journal(&[id], node == Node::Primary);
        Ok(Opened::Handle(id))
    }

    fn call(
        &mut self,
        id: HandleId,
        payload: &mut [u8],
        metadata: &[u64],
        ctx: &mut Context,
    ) -> Result<Answer> {
        if self.handles.dma_buf(id).is_some() {
            return self.dma_buf_call(id, payload, metadata).map(Answer::Ready);
        }
        let nr = *metadata.first().ok_or(Errno::EINVAL)?;
        let file = self.handles.file(id)?;
        // Linux's table first: no such ioctl, or not for this caller.
        let caller = table::Caller {
            render: file.node == Node::Render,
            authenticated: self.masters.authenticated(id),
            master: self.masters.is_master(id),
            root: file.root,
        };
        let handler = match table::check(nr, caller)?.kind {
            table::Kind::Served(handler) => handler,
            table::Kind::Noop => return Ok(Answer::Ready(0)),
            table::Kind::Invalid => return Err(Errno::EINVAL),
            table::Kind::NoModeset(errno) => {
                return ioctl::core::no_modeset(nr, errno, payload).map(Answer::Ready)
            }
        };
        let (traffic, copied) = (metrics::traffic(), file.copied());
        let bytes_in = payload.len();
        let (pid, expired, tag) = (ctx.caller().pid, ctx.expired(), ctx.tag());
        let (device, masters, names, tokens, kms, recovery) = (
            &mut self.device,
            &mut self.masters,
            &mut self.names,
            &self.tokens,
            &mut self.kms,
            &mut self.recovery,
        );
        let mut stage = |submit| {
            if let Some(r) = recovery.as_mut() {
                r.submitting(id, tag, submit);
            }
        };
        let answer = self.handles.with_file(id, |file, handles| {
            let dma_buf = |token| tokens.get(token).and_then(|h| handles.dma_buf(h)).cloned();
            handler(&mut Call {
                nr,
                payload,
                id,
                pid,
                expired,
                file,
                device,
                masters,
                names,
                kms,
                dma_buf: &dma_buf,
                stage: &mut stage,
            })
        })?;
        self.journal_settled(id, tag, matches!(answer, Ok(Answer::Ready(_))), payload);
        match &answer {
            Ok(Answer::Park(park)) => {
                let unheard = (!self.progress_events && park.waits_for(PROGRESS))
                    || (!self.room_events && park.waits_for(ROOM));
                if unheard {
                    self.poll();
                }
            }
            // Counted once done: a parked request's earlier runs only looked
            // at fences and ring room.
            _ => {
                if let Ok(file) = self.handles.file(id) {
                    let downstream = metrics::traffic().since(traffic);
                    let copied = file.copied() - copied;
                    self.stats
                        .record(Op::Call(nr), bytes_in, downstream, copied);
                }
                let shared = self.primary(id);
                self.journal(&[id], shared);
            }
        }
        answer
    }

    fn dup(&mut self, id: HandleId, buf: &[u8], _ctx: &mut Context) -> Result<Opened> {
        // A dma-buf returns no fds (a plain dup of its fd shares the
        // handle and never reaches the scheme).
        if self.handles.dma_buf(id).is_some() {
            return Err(Errno::EINVAL);
        }
        let (nr, rest) = u64::read_from_prefix(buf).map_err(|_| Errno::EINVAL)?;
        let traffic = metrics::traffic();
        let opened = self.dup_fd(id, nr, rest);
        if opened.is_ok() {
            let downstream = metrics::traffic().since(traffic);
            self.stats.record(Op::Fd(nr), buf.len(), downstream, 0);
        }
        match &opened {
            Ok(Opened::Handle(new)) => self.journal(&[id, *new], false),
            _ => self.journal(&[id], false),
        }
        opened
    }

    fn read(
        &mut self,
        id: HandleId,
        buf: &mut [u8],
        offset: u64,
        _ctx: &mut Context,
    ) -> Result<Answer> {
        match self.handles.get(id) {
            Some(Handle::Stats) => Ok(Answer::Ready(read_text(&self.describe(), buf, offset))),
            // A DRM file reads its events, whole; with none it waits (a
            // non-blocking file: EAGAIN), as Linux's drm_read.
            Some(Handle::File(_)) => {
                let file = self.handles.file_mut(id)?;
                if !file.events.ready() {
                    return Ok(Answer::Park(Park::on(events_key(id))));
                }
                let n = file.events.read(buf);
                self.journal(&[id], false);
                Ok(Answer::Ready(n))
            }
            _ => Err(Errno::EBADF),
        }
    }

    fn fstat(&mut self, id: HandleId, _ctx: &mut Context) -> Result<Stat> {
        match self.handles.get(id) {
            // As Linux's dma-buf inode: the buffer's size.
            Some(Handle::DmaBuf(gem)) => Ok(Stat {
                mode: 0o600,
                rdev: 0,
                size: u64::from(gem.size),
            }),
            Some(Handle::File(file)) => Ok(file.node.stat()),
            Some(Handle::Stats) | None => Err(Errno::EBADF),
        }
    }

    fn mmap(
        &mut self,
        id: HandleId,
        offset: u64,
        len: usize,
        _ctx: &mut Context,
    ) -> Result<Mapping> {
        // Linux's drm_gem_mmap: the offset must start an object and the
        // length fit it (EINVAL), and the file must have a handle to it
        // (EACCES). A dma-buf maps at offsets within its buffer, writable
        // only if its first export asked for DRM_RDWR.
        let end = offset.checked_add(len as u64).ok_or(Errno::EINVAL)?;
        let (gem, at, writable) = match self.handles.dma_buf(id) {
            Some(gem) if end <= u64::from(gem.size) => {
                (gem, offset as usize, gem.dma_buf_writable())
            }
            Some(_) => return Err(Errno::EINVAL),
            None => {
                let file = self.handles.file(id)?;
                let gem = self
                    .handles
                    .files()
                    .flat_map(|f| f.bos.values())
                    .chain(self.handles.dma_bufs())
                    .find(|g| g.offset == offset && len as u64 <= u64::from(g.size))
                    .ok_or(Errno::EINVAL)?;
                if file.handle_of(gem).is_none() {
                    return Err(Errno::EACCES);
                }
                (gem, 0, true)
            }
        };
        Ok(Mapping {
            region: gem.map.clone(),
            offset: at,
            writable,
        })
    }

    fn fevent(
        &mut self,
        id: HandleId,
        _flags: EventFlags,
        _ctx: &mut Context,
    ) -> Result<EventFlags> {
        match self.handles.get(id) {
            Some(Handle::File(file)) if file.events.ready() => Ok(EventFlags::READ),
            Some(_) => Ok(EventFlags::empty()),
            None => Err(Errno::EBADF),
        }
    }

    fn close(&mut self, id: HandleId, _ctx: &mut Context) {
        // Its framebuffers go, and what showed them goes off, as Linux's
        // drm_fb_release (CLOSEFB'd ones were taken out of its list).
        for fb in self.kms.fbs_of(id) {
            if let Ok(fb) = self.kms.take_fb(fb, id) {
                match ioctl::kms::stop_showing(&self.device, &mut self.kms, &fb) {
                    Ok(true) => {}
                    other => warn!("turning off a closed file's framebuffer: {other:?}"),
                }
            }
        }
        self.kms.drop_blobs_of(id);
        self.kms.drop_queued_of(id);
        // Dropping the file closes its virtio-gpud session, which releases
        // its objects on the device, and its syncobj table in syncd.
        self.handles.remove(id);
        self.masters.close(id);
        self.tokens.remove(id);
        self.journal(&[id], true);
    }

    fn keep(&mut self, keeper: Keeper) {
        self.take_over(keeper);
    }

    fn resume(&mut self, old: HandleId, _ctx: &mut Context) -> Result<HandleId> {
        let at = self.unclaimed.iter().position(|&h| h == old);
        at.map(|i| self.unclaimed.swap_remove(i))
            .ok_or(Errno::ENODEV)
    }

    fn resumed(&mut self, ctx: &mut Context) {
        // Their clients went away while no drmd ran: what they held goes,
        // as at any close.
        let vanished = std::mem::take(&mut self.unclaimed);
        let Some(counts) = &mut self.restart else {
            return;
        };
        counts.reclaimed = vanished.len();
        let began = counts.began;
        // virtio-gpud counts what each session held, kept or reclaimed.
        let _ = self.device.export_holder().taken_over(false);
        for (id, file) in self.handles.files_mut() {
            if let Err(e) = file.session.taken_over(vanished.contains(&id)) {
                warn!("file {id}: telling virtio-gpud it was taken over: {e}");
            }
        }
        for id in vanished {
            self.close(id, ctx);
        }
        let micros = began.map_or(0, |b| b.elapsed().as_micros() as u64);
        log::info!("restart done in {micros} us");
        if let Err(e) = self.device.export_holder().restarted(micros) {
            warn!("telling virtio-gpud the restart is done: {e}");
        }
    }

    fn interrupted(&mut self, id: HandleId, tag: u32) -> Option<(usize, Vec<u8>)> {
        let answer = self.recovery.as_mut()?.interrupted(id, tag)?;
        Some((0, answer))
    }

    fn sources(&self) -> Vec<(RawFd, usize)> {
        let room = self
            .device
            .room_fd()
            .map_err(|e| warn!("no ring-room events ({e}): parked requests will poll for room"))
            .ok();
        let progress = self.device.progress_fd().map(|fd| (fd, PROGRESS_SOURCE));
        progress
            .into_iter()
            .chain(room.map(|fd| (fd, ROOM_SOURCE)))
            .collect()
    }

    fn on_source(&mut self, token: usize, ctx: &mut Context) {
        // Acknowledged before the wake-up, so that what happens after the
        // acknowledgement raises a new event (sources are edge-triggered on
        // Redox) and what happened before it is seen by the requests run.
        match token {
            PROGRESS_SOURCE => {
                if !self.device.acknowledge_progress() {
                    self.progress_events = false;
                    self.poll();
                }
                ctx.wake(PROGRESS);
                // A flush or cursor upload may be done.
                self.kms_tick(ctx);
            }
            ROOM_SOURCE => {
                self.device.acknowledge_room();
                ctx.wake(ROOM);
                // The same readiness announces display changes.
                self.refresh_monitors(ctx);
            }
            _ => {}
        }
    }

    fn on_deadline(&mut self, ctx: &mut Context) {
        let now = Instant::now();
        if self.poll_at.is_some_and(|at| at <= now) {
            self.poll_at = self.poll_until.filter(|&u| u > now).map(|_| now + POLL);
            ctx.wake(PROGRESS);
            ctx.wake(ROOM);
        }
        self.kms_tick(ctx);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let now = Instant::now();
        let poll = self.poll_at;
        match (poll, self.kms.next_deadline(now)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
