//! A DRM file: what one `open` of a node owns. Handles mean nothing in
//! another file; closing the file (or its process dying) releases its
//! objects on the device, because its virtio-gpud session closes with it.

use std::collections::HashMap;

use std::sync::Arc;

use scheme_seam::{Errno, ShmRegion};
use serde::{Deserialize, Serialize};
use sync_client::SyncobjTable;
use virtio_gpu_proto::{CtxAttachResource, CtxCreate, CtxDetachResource, CtxId, ResourceId};
use zerocopy::IntoBytes;

use crate::backend::DeviceSession;
use crate::errno::io_errno;
use crate::events::Events;
use crate::gem::Gem;
use crate::node::Node;
use crate::recovery::record::{ArenaState, FileHeader};
use crate::ring::Batch;

/// Where EXECBUFFER streams go: memory of the file's own that virtio-gpud
/// hands to the device in place, so a stream is copied once (from the
/// ioctl into here). A bump allocator, recycled once every stream in it
/// has been consumed, which its submit's fence says.
#[derive(Debug)]
pub struct Arena {
    /// Device address of the arena's first byte.
    addr: u64,
    /// Its mmap offset in the file's session.
    backing: u64,
    map: ShmRegion,
    head: usize,
    /// The newest fence of a stream placed since the last recycle.
    last_fence: u64,
    /// Bytes copied in, in all (for the ioctl counters).
    copied: u64,
}

/// Bytes of command arena per file.
const ARENA: usize = 1 << 20;

impl Arena {
    /// Copies `stream` into the arena; returns its device address, or None
    /// when it does not fit until earlier streams are consumed.
    pub fn place(&mut self, stream: &[u8], consumed: impl FnOnce(u64) -> bool) -> Option<u64> {
        let len = stream.len().next_multiple_of(64);
        if self.head + len > ARENA {
            if len > ARENA || !consumed(self.last_fence) {
                return None;
            }
            self.head = 0;
        }
        self.map.write_bytes(self.head, stream);
        self.copied += stream.len() as u64;
        let addr = self.addr + self.head as u64;
        self.head += len;
        Some(addr)
    }

    /// Records the fence of the submit that reads the newest stream.
    pub fn placed(&mut self, fence: u64) {
        self.last_fence = self.last_fence.max(fence);
    }

    /// Where the next stream would go, for [`Arena::rewind`].
    pub fn mark(&self) -> usize {
        self.head
    }

    /// Takes back what was placed since `mark` (its submit was not queued).
    pub fn rewind(&mut self, mark: usize) {
        self.head = mark;
    }

    /// Goes on at `head`: the end of a stream a dead instance placed whose
    /// submit reached the device.
    pub fn resume_at(&mut self, head: usize) {
        self.head = head.min(ARENA);
    }

    /// Where it stands, for the recovery journal.
    pub fn state(&self) -> ArenaState {
        ArenaState {
            addr: self.addr,
            backing: self.backing,
            head: self.head as u64,
            last_fence: self.last_fence,
        }
    }

    /// The arena of a file a dead instance served, as it stood, mapped
    /// again through the file's `session`.
    pub fn restore(state: ArenaState, session: &dyn DeviceSession) -> std::io::Result<Arena> {
        let head = usize::try_from(state.head)
            .ok()
            .filter(|&h| h <= ARENA)
            .ok_or(std::io::ErrorKind::InvalidData)?;
        Ok(Arena {
            addr: state.addr,
            backing: state.backing,
            map: session.map(state.backing, ARENA)?,
            head,
            last_fence: state.last_fence,
            copied: 0,
        })
    }
}

/// Out-fences of EXECBUFFERs waiting for the client's `dup` to turn them
/// into sync_files, named by slots that fit `fence_fd`'s int: a device
/// fence point, which grows without end, would not.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutFences {
    slots: std::collections::VecDeque<(i32, OutFence)>,
    next: i32,
}

/// A fence an out-fence slot names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutFence {
    /// A device fence (EXECBUFFER's).
    Device(u64),
    /// A point of one of drmd's own timelines in syncd (an ATOMIC commit's
    /// flip completion).
    Timeline(u32, u64),
}

/// Out-fences a file may leave unclaimed: a client that never `dup`s its
/// out-fence loses the oldest, not drmd's memory.
const OUT_FENCES: usize = 64;

impl OutFences {
    /// A slot for `fence`.
    pub fn put(&mut self, fence: OutFence) -> i32 {
        self.next = self.next.checked_add(1).filter(|&n| n > 0).unwrap_or(1);
        if self.slots.len() == OUT_FENCES {
            self.slots.pop_front();
        }
        self.slots.push_back((self.next, fence));
        self.next
    }

    /// The fence of slot `id` (ENOENT if unknown, or gone with 64 newer
    /// ones). A slot stays until then, so a `dup` a restarted drmd answered
    /// EINTR gets the same fence when it is sent again.
    pub fn get(&self, id: u64) -> Result<OutFence, Errno> {
        self.slots
            .iter()
            .find(|&&(slot, _)| u64::try_from(slot) == Ok(id))
            .map(|&(_, fence)| fence)
            .ok_or(Errno::ENOENT)
    }
}

/// The client caps a file set (SET_CLIENT_CAP).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCaps {
    /// UNIVERSAL_PLANES: primary and cursor planes are listed.
    pub universal_planes: bool,
    /// ASPECT_RATIO.
    pub aspect_ratio: bool,
    /// STEREO_3D.
    pub stereo_3d: bool,
    /// Redox's hotplug events.
    pub redox_hotplug: bool,
    /// ATOMIC: atomic commits, and the atomic-only properties.
    pub atomic: bool,
    /// CURSOR_PLANE_HOTSPOT: an atomic client that sets the cursor's
    /// hotspot (the cursor plane is hidden from atomic clients without it).
    pub cursor_hotspot: bool,
    /// WRITEBACK_CONNECTORS (there are none).
    pub writeback: bool,
}

/// Per-open-file state.
#[derive(Debug)]
pub struct DrmFile {
    /// The node it was opened through.
    pub node: Node,
    /// Whether it was opened by root (ROOT_ONLY ioctls; a Redox call's
    /// uid is only valid at open).
    pub root: bool,
    /// The user who opened it.
    uid: u32,
    /// Its session with virtio-gpud: its resources, context and memory.
    pub session: Box<dyn DeviceSession>,
    /// GEM handles.
    pub bos: HashMap<u32, Arc<Gem>>,
    next_handle: u32,
    /// The device context, created on first use as Linux does.
    ctx: Option<CtxId>,
    /// Its syncobj table in syncd, opened on first use.
    syncobjs: Option<SyncobjTable>,
    /// Its command arena, made on the first EXECBUFFER.
    arena: Option<Arena>,
    /// Where its EXECBUFFER in-fences are looked at, made on first use.
    in_fences: Option<InFenceSlot>,
    /// EXECBUFFER out-fences not yet claimed by `dup`.
    pub out_fences: OutFences,
    /// Client caps.
    pub caps: ClientCaps,
    /// Events to read.
    pub events: Events,
}

/// What a restored file is made of besides its journaled scalars.
#[derive(Debug)]
pub struct Restored {
    /// Its session, taken back.
    pub session: Box<dyn DeviceSession>,
    /// Its GEM handles.
    pub bos: HashMap<u32, Arc<Gem>>,
    /// Its syncobj table, taken back.
    pub syncobjs: Option<SyncobjTable>,
    /// Its arena, mapped again.
    pub arena: Option<Arena>,
    /// Its in-fence table and syncobj, taken back.
    pub in_fences: Option<(SyncobjTable, u32)>,
    /// Unclaimed out-fences.
    pub out_fences: OutFences,
    /// Unread events.
    pub events: Events,
}

/// A syncobj in a table of drmd's own in syncd — not the client's, which
/// the client could change under drmd — that in-fence sync_files are
/// imported into to learn whether they have signalled.
#[derive(Debug)]
struct InFenceSlot {
    table: SyncobjTable,
    handle: u32,
    /// The sync_file imported last. A parked EXECBUFFER re-runs with the
    /// same one, and a sync_file's fences never change: importing again
    /// would only report progress to syncd's pollers — drmd itself.
    imported: Option<u64>,
}

impl DrmFile {
    /// A new file on `node` opened by user `uid`, with `session`, a
    /// session of its own serving that user (its memory and quota are that
    /// user's).
    pub fn open(node: Node, uid: u32, session: Box<dyn DeviceSession>) -> DrmFile {
        DrmFile {
            node,
            root: uid == 0,
            uid,
            session,
            bos: HashMap::new(),
            next_handle: 0,
            ctx: None,
            syncobjs: None,
            arena: None,
            in_fences: None,
            out_fences: OutFences::default(),
            caps: ClientCaps::default(),
            events: Events::default(),
        }
    }

    /// A file a dead instance served, from its journaled `header` and what
    /// was kept of it: its session, syncobj tables, arena and objects.
    pub fn restore(header: &FileHeader, parts: Restored) -> DrmFile {
        DrmFile {
            node: header.node,
            root: header.uid == 0,
            uid: header.uid,
            session: parts.session,
            bos: parts.bos,
            next_handle: header.next_handle,
            ctx: header.ctx.and_then(CtxId::new),
            syncobjs: parts.syncobjs,
            arena: parts.arena,
            in_fences: parts.in_fences.map(|(table, handle)| InFenceSlot {
                table,
                handle,
                imported: None,
            }),
            out_fences: parts.out_fences,
            caps: header.caps,
            events: parts.events,
        }
    }

    /// The file's scalars, for the recovery journal.
    pub fn header(&self) -> FileHeader {
        FileHeader {
            node: self.node,
            uid: self.uid,
            caps: self.caps,
            ctx: self.ctx.map(CtxId::get),
            next_handle: self.next_handle,
            arena: self.arena.as_ref().map(Arena::state),
            syncobjs: self.syncobjs.is_some(),
            in_fences: self.in_fences.as_ref().map(|s| s.handle),
        }
    }

    /// The table its in-fences are imported into, once made.
    pub fn in_fence_table(&self) -> Option<&SyncobjTable> {
        self.in_fences.as_ref().map(|s| &s.table)
    }

    /// The file's context, created now (one command of `batch`) if it does
    /// not exist yet; `None` when the ring is full.
    pub fn context(&mut self, batch: &mut Batch) -> Result<Option<CtxId>, Errno> {
        if let Some(ctx) = self.ctx {
            return Ok(Some(ctx));
        }
        let placeholder = CtxId::new(1).expect("non-zero");
        let request = CtxCreate::new(placeholder, 0, "drmd client");
        let Some(reply) = batch.send(&*self.session, request.as_bytes(), 0)? else {
            return Ok(None);
        };
        let ctx = CtxId::new(reply.created as u32).ok_or(Errno::EIO)?;
        self.ctx = Some(ctx);
        Ok(Some(ctx))
    }

    /// Whether the context exists (CONTEXT_INIT answers EEXIST then).
    pub fn has_context(&self) -> bool {
        self.ctx.is_some()
    }

    /// A new GEM handle for `gem`.
    pub fn insert(&mut self, gem: Arc<Gem>) -> Result<u32, Errno> {
        self.next_handle = self.next_handle.checked_add(1).ok_or(Errno::ENOSPC)?;
        self.bos.insert(self.next_handle, gem);
        Ok(self.next_handle)
    }

    /// The object behind GEM handle `handle` (ENOENT, as Linux).
    pub fn bo(&self, handle: u32) -> Result<&Arc<Gem>, Errno> {
        self.bos.get(&handle).ok_or(Errno::ENOENT)
    }

    /// The file's handle to `gem`, if it has one.
    pub fn handle_of(&self, gem: &Arc<Gem>) -> Option<u32> {
        self.bos
            .iter()
            .find(|(_, g)| Arc::ptr_eq(g, gem))
            .map(|(h, _)| *h)
    }

    /// Attaches resource `res` to the file's context (created if need be),
    /// as every GEM handle's creation does in Linux: one or two commands of
    /// `batch`; `None` when the ring is full.
    pub fn attach(&mut self, batch: &mut Batch, res: ResourceId) -> Result<Option<()>, Errno> {
        let Some(ctx) = self.context(batch)? else {
            return Ok(None);
        };
        let request = CtxAttachResource::new(ctx, res);
        Ok(batch.send(&*self.session, request.as_bytes(), 0)?.map(drop))
    }

    /// A new handle to `gem`, an object of another file or a dma-buf: the
    /// file's session adopts its resource (unless it holds it already) and
    /// it is attached to the file's context, as opening a GEM object does
    /// in Linux. `None` when the ring is full (nothing changed).
    pub fn open_object(&mut self, gem: Arc<Gem>, virgl: bool) -> Result<Option<u32>, Errno> {
        if self.handle_of(&gem).is_none() {
            let token = gem.export_token().ok_or(Errno::EIO)?;
            let res = self.session.adopt(token).map_err(io_errno)?;
            let res = ResourceId::new(res).ok_or(Errno::EIO)?;
            if virgl {
                let attached = self.attach(&mut Batch::new(2), res);
                if !matches!(attached, Ok(Some(()))) {
                    let _ = self.session.release(res.get());
                    return attached.map(|_| None);
                }
            }
        }
        self.insert(gem).map(Some)
    }

    /// Removes GEM handle `handle` (EINVAL if unknown, as Linux). With the
    /// file's last handle to the object, the resource leaves the file's
    /// context and the file's session lets go of it — which unrefs it on
    /// the device unless someone else holds it. `None` when the ring is
    /// full (the handle stays).
    pub fn close_handle(&mut self, handle: u32) -> Result<Option<()>, Errno> {
        let gem = self.bos.get(&handle).ok_or(Errno::EINVAL)?.clone();
        let last = self
            .bos
            .iter()
            .all(|(&h, g)| h == handle || !Arc::ptr_eq(g, &gem));
        if last {
            let res = ResourceId::new(gem.res).ok_or(Errno::EIO)?;
            if let Some(ctx) = self.ctx {
                let detach = CtxDetachResource::new(ctx, res);
                if Batch::new(1)
                    .send(&*self.session, detach.as_bytes(), 0)?
                    .is_none()
                {
                    return Ok(None);
                }
            }
        }
        self.bos.remove(&handle);
        if last {
            self.session.release(gem.res).map_err(io_errno)?;
        }
        Ok(Some(()))
    }

    /// Bytes of client data drmd has copied for this file (command streams
    /// into the arena).
    pub fn copied(&self) -> u64 {
        self.arena.as_ref().map_or(0, |a| a.copied)
    }

    /// The file's command arena.
    pub fn arena(&mut self) -> Result<&mut Arena, Errno> {
        if self.arena.is_none() {
            let (addr, offset) = self.session.alloc(ARENA as u64).map_err(io_errno)?;
            let map = self.session.map(offset, ARENA).map_err(io_errno)?;
            self.arena = Some(Arena {
                addr,
                backing: offset,
                map,
                head: 0,
                last_fence: 0,
                copied: 0,
            });
        }
        Ok(self.arena.as_mut().expect("just set"))
    }

    /// Whether the sync_file named by `token` has signalled. A token that
    /// names no sync_file is EINVAL, as an fd that is none is in Linux.
    pub fn in_fence_signaled(&mut self, token: u64) -> Result<bool, Errno> {
        if self.in_fences.is_none() {
            let table = SyncobjTable::open().map_err(io_errno)?;
            let handle = table.create(false).map_err(io_errno)?;
            self.in_fences = Some(InFenceSlot {
                table,
                handle,
                imported: None,
            });
        }
        let slot = self.in_fences.as_mut().expect("just set");
        if slot.imported != Some(token) {
            slot.imported = None;
            slot.table
                .import_sync_file_token(slot.handle, token)
                .map_err(|e| match io_errno(e) {
                    Errno::ENOMEM => Errno::ENOMEM,
                    _ => Errno::EINVAL,
                })?;
            slot.imported = Some(token);
        }
        match slot.table.wait(&[slot.handle], None, 0, 0) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(Errno::ETIME.0) => Ok(false),
            Err(e) => Err(io_errno(e)),
        }
    }

    /// Records that the arena's streams up to now are read by the command
    /// whose fence is `fence` (nothing if the file has no arena yet).
    pub fn arena_placed(&mut self, fence: u64) {
        if let Some(arena) = &mut self.arena {
            arena.placed(fence);
        }
    }

    /// The file's syncobj table at syncd, if [`DrmFile::syncobjs`] opened it.
    pub fn opened_syncobjs(&self) -> Option<&SyncobjTable> {
        self.syncobjs.as_ref()
    }

    /// The file's syncobj table in syncd. Non-blocking: a SYNCOBJ_WAIT that
    /// cannot answer yet is EAGAIN, and the request parks in drmd's loop
    /// instead of holding it (and every other client) until it ends.
    pub fn syncobjs(&mut self) -> Result<&SyncobjTable, Errno> {
        if self.syncobjs.is_none() {
            self.syncobjs = Some(SyncobjTable::open_nonblocking().map_err(io_errno)?);
        }
        Ok(self.syncobjs.as_ref().expect("just set"))
    }
}
