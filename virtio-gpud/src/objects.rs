//! Who owns what on the device, and the check every command from a session
//! passes before it reaches the device.
//!
//! The device trusts whatever ids and addresses it is given (and this
//! backend does not even report virglrenderer's objections), so the checks
//! live here: a session names only contexts it created and resources it
//! holds, points backing entries only into DMA memory it allocated, and
//! its create commands get ids assigned here, never chosen by the caller.
//!
//! A resource can be shared (PRIME): its holder asks for a share token and
//! another session adopts the resource with it. A shared resource lives on
//! the device until its last holder releases it, and its backing — memory
//! of the session that attached it — stays allocated until then, even if
//! that session has closed. While shared, nobody may unref it, nor change
//! its backing, under the others.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::mem::offset_of;

use scheme_seam::token::Tokens;
use scheme_seam::Errno;
use virtio_gpu_proto::{
    CmdSubmit, CommandType, CtrlHdr, CtxId, Format, MemEntry, ResourceAttachBacking,
    ResourceCreate2d, ResourceCreate3d, ResourceCreateBlob, ResourceField, ResourceFlush,
    ResourceId, SetScanout, TransferToHost2d, TransferToHost3d, UpdateCursor, Wire,
};
use zerocopy::FromBytes;

use crate::dma::DmaBuf;
use crate::shape::{Limits, Shape, ShapeError, TextureRules};
use gpu_session::api::MAX_STREAM;

/// A client of the private scheme (one per DRM file in drmd).
pub type SessionId = u64;

/// The id a create command needs from the device's allocators.
pub enum NewId {
    /// A fresh resource id.
    Resource(ResourceId),
    /// A fresh context id.
    Context(CtxId),
}

/// Which kind of id to allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    /// For RESOURCE_CREATE_*.
    Resource,
    /// For CTX_CREATE.
    Context,
}

/// What admitting a command created, for the caller to learn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Admitted {
    /// The id assigned to a created resource or context, 0 otherwise.
    pub created: u32,
}

/// A device resource as the table knows it.
#[derive(Debug)]
struct Resource {
    /// The sessions that may name it, its creator first; it leaves the
    /// device when the last one lets go.
    holders: Vec<SessionId>,
    /// The allocations (device addresses) its backing entries lie in.
    backing: Vec<u64>,
    /// Bytes of backing attached (none: 0), and in how many entries.
    backing_len: u64,
    entries: usize,
    /// What it is, as created.
    shape: Shape,
    /// The contexts it is attached to (the host looks it up in the
    /// context for transfers and streams, and kills the context if it is
    /// not there).
    contexts: Vec<CtxId>,
}

impl Resource {
    fn shared(&self) -> bool {
        self.holders.len() > 1
    }
}

/// A resource whose last holder let go, for release on the device.
#[derive(Debug)]
pub struct Released {
    /// The resource to unref.
    pub id: ResourceId,
    /// Its backing, to drop once the device has let go of it.
    pub memory: Vec<DmaBuf>,
}

/// What closing a session leaves to release on the device.
#[derive(Debug, Default)]
pub struct SessionRelease {
    /// Resources nobody holds any more.
    pub resources: Vec<Released>,
    /// The session's contexts.
    pub contexts: Vec<CtxId>,
    /// The session's memory that backs nothing still alive.
    pub memory: Vec<DmaBuf>,
}

/// The largest number of backing entries one attach may carry
/// (vhost-user-gpu refuses more).
const MAX_ENTRIES: usize = 16384;

/// The table of owned objects.
#[derive(Debug, Default)]
pub struct Objects {
    /// The host's texture limits, for checking creates.
    limits: Limits,
    resources: HashMap<ResourceId, Resource>,
    contexts: HashMap<CtxId, SessionId>,
    /// DMA allocations by device address, with the session that made them.
    backing: HashMap<u64, (SessionId, DmaBuf)>,
    /// Share tokens of resources offered for adoption.
    shares: Tokens<ResourceId>,
    /// Contexts the host killed: their commands are EIO (the host would
    /// drop them and answer OK).
    lost: std::collections::HashSet<CtxId>,
}

fn u32_at(bytes: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(bytes[off..off + 4].try_into().expect("bounds checked"))
}

fn set_u32(bytes: &mut [u8], off: usize, value: u32) {
    bytes[off..off + 4].copy_from_slice(&value.to_le_bytes());
}

/// A rule of the host's a command breaks: EINVAL to its sender.
fn refused(e: ShapeError) -> Errno {
    log::debug!("refused before the host: {e}");
    Errno::EINVAL
}

fn read<T: FromBytes>(request: &[u8]) -> Result<T, Errno> {
    T::read_from_prefix(request)
        .map(|(v, _)| v)
        .map_err(|_| Errno::EINVAL)
}

impl Objects {
    /// A table checking creates against the host's `limits`.
    pub fn new(limits: Limits) -> Self {
        Objects {
            limits,
            ..Objects::default()
        }
    }

    fn resource(&self, session: SessionId, raw: u32) -> Option<&Resource> {
        let r = self.resources.get(&ResourceId::new(raw)?)?;
        r.holders.contains(&session).then_some(r)
    }

    fn owns_resource(&self, session: SessionId, raw: u32) -> bool {
        self.resource(session, raw).is_some()
    }

    /// The session's allocation that holds `len` bytes at `addr`.
    fn allocation_of(&self, session: SessionId, addr: u64, len: u64) -> Option<u64> {
        self.backing
            .iter()
            .find(|(_, (s, buf))| {
                *s == session
                    && addr >= buf.device_addr()
                    && addr
                        .checked_add(len)
                        .is_some_and(|end| end <= buf.device_addr() + buf.len() as u64)
            })
            .map(|(a, _)| *a)
    }

    fn owns_context(&self, session: SessionId, raw: u32) -> bool {
        CtxId::new(raw).is_some_and(|id| self.contexts.get(&id) == Some(&session))
    }

    /// Whether `len` bytes at device address `addr` lie inside one of the
    /// session's allocations.
    pub fn owns_memory(&self, session: SessionId, addr: u64, len: u64) -> bool {
        self.allocation_of(session, addr, len).is_some()
    }

    /// Checks `request` (a header, the command's fixed part, then its
    /// trailing payload) from `session`, assigning ids to create commands
    /// from `new_id`.
    ///
    /// `stream` is a SUBMIT_3D's stream when it is not in `request` (it is
    /// in the session's memory): the stream is walked, and the resources it
    /// names must be attached to its context.
    pub fn admit(
        &mut self,
        session: SessionId,
        request: &mut Wire<&mut [u8]>,
        stream: Option<&[u8]>,
        new_id: impl FnOnce(IdKind) -> NewId,
    ) -> Result<Admitted, Errno> {
        let (hdr, ty, layout) = (request.header(), request.ty(), request.layout());
        let request = request.bytes_mut();
        let ctx = hdr.ctx_id.get();
        // These act on the context the header names: none is no context
        // (0 is the host's own, which no session may drive).
        let on_context = matches!(
            ty,
            CommandType::CTX_DESTROY
                | CommandType::CTX_ATTACH_RESOURCE
                | CommandType::CTX_DETACH_RESOURCE
                | CommandType::SUBMIT_3D
        );
        if on_context && ctx == 0 {
            return Err(Errno::EINVAL);
        }
        // A context in the header must be the session's own; commands that
        // create one get theirs assigned below.
        if ctx != 0 && ty != CommandType::CTX_CREATE && !self.owns_context(session, ctx) {
            return Err(Errno::EACCES);
        }
        // A lost context can only be destroyed: anything else would be
        // dropped by the host and answered OK.
        let lost = CtxId::new(ctx).is_some_and(|c| self.lost.contains(&c));
        if lost && !matches!(ty, CommandType::CTX_DESTROY | CommandType::CTX_CREATE) {
            return Err(Errno::EIO);
        }
        // The resource the command acts on, the session's own (checked
        // here, once, for every command that names one).
        let mut named = None;
        if let Some(off) = layout.named_resource_field() {
            let res = u32_at(request, off);
            let may_be_none = matches!(
                ty,
                CommandType::SET_SCANOUT | CommandType::UPDATE_CURSOR | CommandType::MOVE_CURSOR
            );
            let owned = self.owns_resource(session, res);
            let allowed = owned || (res == 0 && may_be_none);
            if !allowed {
                return Err(Errno::EACCES);
            }
            named = ResourceId::new(res).filter(|_| owned);
        }
        // Every arm below that acts on a named resource has one.
        let named = || named.ok_or(Errno::EINVAL);
        let mut admitted = Admitted::default();
        self.check(ty, ctx, request, stream)?;
        match ty {
            CommandType::RESOURCE_CREATE_2D
            | CommandType::RESOURCE_CREATE_3D
            | CommandType::RESOURCE_CREATE_BLOB => {
                let shape = self.shape_of(ty, request)?;
                let NewId::Resource(id) = new_id(IdKind::Resource) else {
                    return Err(Errno::EIO);
                };
                if let Some(ResourceField::Creates(at)) = layout.resource {
                    set_u32(request, at, id.get());
                }
                let resource = Resource {
                    holders: vec![session],
                    backing: Vec::new(),
                    backing_len: 0,
                    entries: 0,
                    shape,
                    contexts: Vec::new(),
                };
                self.resources.insert(id, resource);
                admitted.created = id.get();
            }
            CommandType::CTX_ATTACH_RESOURCE | CommandType::CTX_DETACH_RESOURCE => {
                let id = named()?;
                let ctx = CtxId::new(ctx).expect("checked above");
                let contexts = &mut self.resources.get_mut(&id).expect("owned").contexts;
                contexts.retain(|c| *c != ctx);
                if ty == CommandType::CTX_ATTACH_RESOURCE {
                    contexts.push(ctx);
                }
            }
            CommandType::CTX_CREATE => {
                let NewId::Context(id) = new_id(IdKind::Context) else {
                    return Err(Errno::EIO);
                };
                set_u32(request, offset_of!(CtrlHdr, ctx_id), id.get());
                self.contexts.insert(id, session);
                admitted.created = id.get();
            }
            CommandType::RESOURCE_UNREF => {
                let id = named()?;
                if self.resources[&id].shared() {
                    return Err(Errno::EBUSY);
                }
                self.resources.remove(&id);
                self.shares.remove(id);
            }
            CommandType::RESOURCE_DETACH_BACKING => {
                let id = named()?;
                let resource = self.resources.get_mut(&id).expect("owned");
                if resource.shared() {
                    return Err(Errno::EBUSY);
                }
                resource.backing.clear();
                resource.backing_len = 0;
                resource.entries = 0;
            }
            CommandType::CTX_DESTROY => {
                let ctx = CtxId::new(ctx).expect("checked above");
                self.contexts.remove(&ctx);
                self.lost.remove(&ctx);
                for r in self.resources.values_mut() {
                    r.contexts.retain(|c| *c != ctx);
                }
            }
            CommandType::RESOURCE_ATTACH_BACKING => {
                let id = named()?;
                let n = read::<ResourceAttachBacking>(request)?.nr_entries.get() as usize;
                let entries = &request[layout.request_len..];
                // The backend maps at most 16384 entries, none empty; a
                // second attach it drops while answering OK.
                if n == 0 || n > MAX_ENTRIES || entries.len() != n * 16 {
                    return Err(Errno::EINVAL);
                }
                let mut allocations = Vec::with_capacity(n);
                let mut ranges = Vec::with_capacity(n);
                for e in entries.chunks_exact(16) {
                    let (entry, _) = MemEntry::read_from_prefix(e).map_err(|_| Errno::EINVAL)?;
                    let addr = entry.addr.get();
                    let len = u64::from(entry.length.get());
                    if len == 0 {
                        return Err(Errno::EINVAL);
                    }
                    allocations.push(
                        self.allocation_of(session, addr, len)
                            .ok_or(Errno::EACCES)?,
                    );
                    ranges.push((addr, addr + len));
                }
                // Two entries over the same bytes would have the host write
                // one pixel's readback into another's.
                ranges.sort_unstable();
                if ranges.windows(2).any(|w| w[1].0 < w[0].1) {
                    return Err(Errno::EINVAL);
                }
                let total: u64 = ranges.iter().map(|(a, b)| b - a).sum();
                let resource = self.resources.get_mut(&id).expect("owned");
                if resource.shared() {
                    return Err(Errno::EBUSY);
                }
                if resource.entries > 0 {
                    return Err(Errno::EINVAL);
                }
                // Recorded when admitted: should the device refuse the
                // attach, the memory only stays pinned until the resource
                // goes.
                resource.backing.extend(allocations);
                resource.backing_len = total;
                resource.entries = n;
            }
            CommandType::SUBMIT_3D if ctx == 0 => return Err(Errno::EINVAL),
            _ => {}
        }
        Ok(admitted)
    }

    /// The shape a create command gives its resource, checked.
    fn shape_of(&self, ty: CommandType, request: &[u8]) -> Result<Shape, Errno> {
        Ok(match ty {
            CommandType::RESOURCE_CREATE_2D => {
                let c: ResourceCreate2d = read(request)?;
                Shape::image(Format(c.format.get()), c.width.get(), c.height.get())
                    .map_err(refused)?
            }
            CommandType::RESOURCE_CREATE_3D => {
                let t = read::<ResourceCreate3d>(request)?.params();
                t.validate(self.limits).map_err(refused)?;
                Shape::Texture(t)
            }
            _ => Shape::Blob(read::<ResourceCreateBlob>(request)?.size.get()),
        })
    }

    /// The host's rules for commands on resources the session holds:
    /// transfers within the resource and its backing and in a context it
    /// is attached to, rectangles within images, cursors as the backend
    /// copies them, and SUBMIT_3D streams that walk clean and name only
    /// resources attached to their context.
    fn check(
        &self,
        ty: CommandType,
        ctx: u32,
        request: &[u8],
        stream: Option<&[u8]>,
    ) -> Result<(), Errno> {
        let resource = |raw: u32| {
            ResourceId::new(raw)
                .and_then(|id| self.resources.get(&id))
                .ok_or(Errno::EINVAL)
        };
        match ty {
            CommandType::TRANSFER_TO_HOST_3D | CommandType::TRANSFER_FROM_HOST_3D => {
                // Both directions have the same layout.
                let t: TransferToHost3d = read(request)?;
                let r = resource(t.resource_id.get())?;
                let Shape::Texture(texture) = r.shape else {
                    return Err(Errno::EINVAL);
                };
                let attached = CtxId::new(ctx).is_none_or(|c| r.contexts.contains(&c));
                if r.backing_len == 0 || !attached {
                    return Err(Errno::EINVAL);
                }
                let readback = ty == CommandType::TRANSFER_FROM_HOST_3D;
                let span = texture
                    .transfer_span(
                        t.level.get(),
                        t.box_,
                        t.stride.get(),
                        t.layer_stride.get(),
                        readback,
                    )
                    .map_err(refused)?;
                let end = t.offset.get().checked_add(span).ok_or(Errno::EINVAL)?;
                if end > r.backing_len {
                    return Err(refused(ShapeError::Transfer("past the backing")));
                }
            }
            CommandType::TRANSFER_TO_HOST_2D => {
                let t: TransferToHost2d = read(request)?;
                let r = resource(t.resource_id.get())?;
                if r.backing_len == 0 {
                    return Err(Errno::EINVAL);
                }
                r.shape.rect_inside(t.r).map_err(refused)?;
            }
            CommandType::RESOURCE_FLUSH => {
                let f: ResourceFlush = read(request)?;
                resource(f.resource_id.get())?
                    .shape
                    .rect_inside(f.r)
                    .map_err(refused)?;
            }
            CommandType::SET_SCANOUT => {
                let s: SetScanout = read(request)?;
                if s.resource_id.get() != 0 {
                    resource(s.resource_id.get())?
                        .shape
                        .rect_inside(s.r)
                        .map_err(refused)?;
                }
            }
            CommandType::UPDATE_CURSOR => {
                let u: UpdateCursor = read(request)?;
                // The backend copies 64×64 pixels of 4 bytes from it.
                if u.resource_id.get() != 0 {
                    let ok = match resource(u.resource_id.get())?.shape {
                        Shape::Image { width, height, .. } => (width, height) == (64, 64),
                        Shape::Texture(t) => {
                            (t.width, t.height) == (64, 64)
                                && virgl_stream::formats::block(t.format)
                                    .is_some_and(|b| b.bytes == 4)
                        }
                        Shape::Blob(_) => false,
                    };
                    if !ok {
                        return Err(Errno::EINVAL);
                    }
                }
            }
            CommandType::SUBMIT_3D => {
                let submit: CmdSubmit = read(request)?;
                let size = submit.size.get();
                let bytes = match stream {
                    Some(bytes) => bytes,
                    None => &request[size_of::<CmdSubmit>()..],
                };
                // The backend allocates `size` before it looks at it, and
                // reads exactly that much.
                if size > MAX_STREAM || bytes.len() != size as usize {
                    return Err(Errno::EINVAL);
                }
                let walked = virgl_stream::walk::walk(bytes).map_err(|e| {
                    log::debug!("refused before the host: {e}");
                    Errno::EINVAL
                })?;
                let ctx = CtxId::new(ctx).ok_or(Errno::EINVAL)?;
                for &raw in &walked.resources {
                    if !resource(raw)?.contexts.contains(&ctx) {
                        return Err(Errno::EINVAL);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Marks a context the host killed; returns its session, if the
    /// context is one of a session's (and was not already lost).
    pub fn lose_context(&mut self, ctx: CtxId) -> Option<SessionId> {
        let session = *self.contexts.get(&ctx)?;
        self.lost.insert(ctx).then_some(session)
    }

    /// Contexts lost and not yet destroyed.
    pub fn lost_contexts(&self) -> usize {
        self.lost.len()
    }

    /// Records a DMA allocation made for `session`.
    pub fn add_memory(&mut self, session: SessionId, buf: DmaBuf) -> u64 {
        let addr = buf.device_addr();
        self.backing.insert(addr, (session, buf));
        addr
    }

    /// What resource `res`'s backing holds now, allocation by allocation in
    /// attach order (for the trace: uploads are memory, not commands).
    pub fn backing_contents(&self, res: u32) -> Vec<u8> {
        let Some(r) = ResourceId::new(res).and_then(|id| self.resources.get(&id)) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for addr in &r.backing {
            if let Some((_, buf)) = self.backing.get(addr) {
                let start = out.len();
                out.resize(start + buf.len(), 0);
                buf.read_bytes(0, &mut out[start..]);
            }
        }
        out
    }

    /// The session's allocation holding `len` bytes at `addr`, and where
    /// in it they start.
    pub fn memory_at(&self, session: SessionId, addr: u64, len: u64) -> Option<(&DmaBuf, usize)> {
        let start = self.allocation_of(session, addr, len)?;
        let (_, buf) = &self.backing[&start];
        Some((buf, (addr - start) as usize))
    }

    /// The session's allocation at device address `addr`.
    pub fn memory(&self, session: SessionId, addr: u64) -> Option<&DmaBuf> {
        match self.backing.get(&addr) {
            Some((s, buf)) if *s == session => Some(buf),
            _ => None,
        }
    }

    /// Gives up the session's allocation at `addr`: ENOENT if it is not
    /// one, EBUSY while it backs a resource (which another session may be
    /// using). Detaching the backing or unreffing the resource ends that.
    pub fn remove_memory(&mut self, session: SessionId, addr: u64) -> Result<DmaBuf, Errno> {
        match self.backing.get(&addr) {
            Some((s, _)) if *s == session => {}
            _ => return Err(Errno::ENOENT),
        }
        if self.resources.values().any(|r| r.backing.contains(&addr)) {
            return Err(Errno::EBUSY);
        }
        Ok(self.backing.remove(&addr).expect("present").1)
    }

    /// A token with which another session can adopt `res`, which `session`
    /// holds (the same token each time).
    pub fn share(&mut self, session: SessionId, res: u32) -> Result<u64, Errno> {
        if !self.owns_resource(session, res) {
            return Err(Errno::ENOENT);
        }
        Ok(self.shares.token(ResourceId::new(res).expect("held")))
    }

    /// Makes `session` a holder of the resource `token` names; returns it.
    pub fn adopt(&mut self, session: SessionId, token: u64) -> Result<ResourceId, Errno> {
        let id = self.shares.get(token).ok_or(Errno::ENOENT)?;
        let resource = self.resources.get_mut(&id).expect("shares track resources");
        if !resource.holders.contains(&session) {
            resource.holders.push(session);
        }
        Ok(id)
    }

    /// `session` lets go of `res`; if it was the last holder, the resource
    /// leaves the table and is returned for release on the device.
    pub fn release(&mut self, session: SessionId, res: u32) -> Result<Option<Released>, Errno> {
        if !self.owns_resource(session, res) {
            return Err(Errno::ENOENT);
        }
        Ok(self.let_go(session, ResourceId::new(res).expect("held")))
    }

    fn let_go(&mut self, session: SessionId, id: ResourceId) -> Option<Released> {
        let resource = self.resources.get_mut(&id)?;
        resource.holders.retain(|s| *s != session);
        if !resource.holders.is_empty() {
            return None;
        }
        let resource = self.resources.remove(&id).expect("present");
        self.shares.remove(id);
        let memory = resource
            .backing
            .iter()
            .filter(|a| !self.resources.values().any(|r| r.backing.contains(a)))
            .filter_map(|a| self.backing.remove(a).map(|(_, b)| b))
            .collect();
        Some(Released { id, memory })
    }

    /// Resources, contexts and memory regions `session` holds.
    pub fn held_by(&self, session: SessionId) -> usize {
        let resources = self
            .resources
            .values()
            .filter(|r| r.holders.contains(&session))
            .count();
        let contexts = self.contexts.values().filter(|&&s| s == session).count();
        let memory = self.backing.values().filter(|(s, _)| *s == session).count();
        resources + contexts + memory
    }

    /// Takes the session out of the table: its holds are let go (resources
    /// nobody else holds are returned), its contexts are returned, and its
    /// memory that backs nothing still alive is returned. Memory backing a
    /// resource another session holds stays, under this session's name.
    pub fn take_session(&mut self, session: SessionId) -> SessionRelease {
        let held: Vec<ResourceId> = self
            .resources
            .iter()
            .filter(|(_, r)| r.holders.contains(&session))
            .map(|(id, _)| *id)
            .collect();
        let resources = held
            .into_iter()
            .filter_map(|id| self.let_go(session, id))
            .collect();
        let contexts: Vec<CtxId> = self
            .contexts
            .iter()
            .filter(|(_, s)| **s == session)
            .map(|(c, _)| *c)
            .collect();
        for c in &contexts {
            self.contexts.remove(c);
            self.lost.remove(c);
        }
        let addrs: Vec<u64> = self
            .backing
            .iter()
            .filter(|(a, (s, _))| {
                *s == session && !self.resources.values().any(|r| r.backing.contains(a))
            })
            .map(|(a, _)| *a)
            .collect();
        let memory = addrs
            .into_iter()
            .filter_map(|a| self.backing.remove(&a).map(|(_, b)| b))
            .collect();
        SessionRelease {
            resources,
            contexts,
            memory,
        }
    }

    /// The table as text, one object a line (the `objects` file).
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (id, r) in &self.resources {
            let holders: Vec<String> = r.holders.iter().map(|h| h.to_string()).collect();
            let _ = writeln!(s, "resource {} session {}", id.get(), holders.join(","));
        }
        for (c, owner) in &self.contexts {
            let _ = writeln!(s, "context {} session {owner}", c.get());
        }
        for (addr, (owner, buf)) in &self.backing {
            let _ = writeln!(s, "memory {addr:#x} {} session {owner}", buf.len());
        }
        s
    }
}
