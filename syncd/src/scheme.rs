//! `scheme:sync`: timelines, sync_files and syncobj tables as handles (the
//! protocol is in [`sync_client::api`]). Waits are parked requests: a wait that
//! cannot answer yet parks on [`CHANGED`], which every timeline move and
//! every op giving a syncobj a fence wakes, with its timeout as the seam's
//! deadline, at which it answers ETIME.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drm_uapi::sync_file::{self, FenceInfo, FileInfoHeader, Merge, SetDeadline};
use drm_uapi::syncobj::{
    self as so, Array, Create, Destroy, FdToHandle, HandleToFd, TimelineArray, Transfer, WaitHeader,
};
use drm_uapi::wire::{Payload, WireError};
use log::debug;
use scheme_seam::token::Tokens;
use scheme_seam::{
    read_text, Answer, Context, Errno, EventFlags, HandleId, Mapping, Opened, Park, Result, Scheme,
    ShmRegion, WakeKey,
};
use zerocopy::FromBytes;

use crate::core::{
    evaluate, Fence, FenceSet, FenceStatus, Syncobj, TimelineId, Timelines, WaitFlags, WaitOutcome,
};
use sync_client::api;
use sync_client::clock::now_ns;

/// A syncobj shared by the table handles and exported fds that refer to it.
type ObjId = u64;

/// What a handle is.
#[derive(Debug)]
enum Handle {
    /// The root: counters.
    Root,
    /// The owner of a timeline.
    Owner(TimelineId),
    /// The timeline page, mapped read-only; readable (poll) while some
    /// timeline has moved since the handle last read the move count.
    Page {
        /// The move count this handle last read.
        seen: u64,
    },
    /// A sync_file: an immutable set of fences.
    SyncFile(FenceSet),
    /// A table of syncobjs (one per DRM file): handle → shared object.
    Table {
        objs: HashMap<u32, ObjId>,
        next: u32,
    },
    /// An exported syncobj (an opaque syncobj fd).
    Exported(ObjId),
}

/// The fence authority's state.
pub struct SyncScheme {
    timelines: Timelines,
    page: Arc<ShmRegion>,
    /// How many times a timeline has moved: page handles read it to
    /// acknowledge a wake-up.
    moves: u64,
    handles: HashMap<HandleId, Handle>,
    next_handle: HandleId,
    /// Syncobjs with the number of handles and table entries referring to
    /// each; an object goes when its last reference does.
    objs: HashMap<ObjId, (Syncobj, usize)>,
    next_obj: ObjId,
    /// Capability tokens naming handles in other handles' requests.
    tokens: Tokens<HandleId>,
}

/// Woken by whatever may end a parked wait: a timeline moving (signal,
/// failure, abandonment) or a syncobj getting a new fence.
const CHANGED: WakeKey = WakeKey(0);

/// A malformed payload: EINVAL, or ENOMEM for an array too large to carry
/// (Linux's allocation of it fails).
fn wire(e: WireError) -> Errno {
    debug!("malformed payload: {e}");
    match e {
        WireError::TooMany { .. } => Errno::ENOMEM,
        _ => Errno::EINVAL,
    }
}

fn errno(e: i32) -> Errno {
    Errno(e)
}

/// The `u64` at the start of a payload.
fn u64_arg(payload: &[u8]) -> Result<u64> {
    u64::read_from_prefix(payload)
        .map(|(v, _)| v)
        .map_err(|_| Errno::EINVAL)
}

impl SyncScheme {
    /// A fence authority with no timelines yet.
    pub fn new() -> std::io::Result<SyncScheme> {
        Ok(SyncScheme {
            timelines: Timelines::new(),
            page: Arc::new(ShmRegion::new("syncd-timelines", api::PAGE_LEN)?),
            moves: 0,
            handles: HashMap::new(),
            next_handle: 0,
            objs: HashMap::new(),
            next_obj: 0,
            tokens: Tokens::default(),
        })
    }

    fn insert(&mut self, handle: Handle) -> HandleId {
        self.next_handle += 1;
        self.handles.insert(self.next_handle, handle);
        self.next_handle
    }

    fn new_obj(&mut self, obj: Syncobj) -> ObjId {
        self.next_obj += 1;
        self.objs.insert(self.next_obj, (obj, 1));
        self.next_obj
    }

    fn retain_obj(&mut self, id: ObjId) {
        if let Some((_, refs)) = self.objs.get_mut(&id) {
            *refs += 1;
        }
    }

    fn release_obj(&mut self, id: ObjId) {
        if let Some((_, refs)) = self.objs.get_mut(&id) {
            *refs -= 1;
            if *refs == 0 {
                self.objs.remove(&id);
            }
        }
    }

    fn by_token(&self, token: u64) -> Option<&Handle> {
        self.tokens.get(token).and_then(|h| self.handles.get(&h))
    }

    /// A sync_file of one fence (ENOENT for an unknown timeline).
    fn fence_file(&self, timeline: TimelineId, point: u64) -> Result<Handle> {
        if !self.timelines.exists(timeline) {
            return Err(Errno::ENOENT);
        }
        Ok(Handle::SyncFile(FenceSet::single(Fence::Point {
            timeline,
            point,
        })))
    }

    /// Publishes a timeline's progress and wakes the sync_file pollers it
    /// concerns.
    fn timeline_moved(&mut self, tid: TimelineId, ctx: &mut Context) {
        let last = self.timelines.last_signaled(tid);
        if tid.0 < api::PAGE_SLOTS {
            let failed = self.timelines.last_failed(tid);
            let slot = tid.0 as usize * 8;
            // The failed slot first: a reader seeing the new point also
            // sees whether it may have failed.
            self.page
                .write_bytes(api::FAILED_AT + slot, &failed.to_le_bytes());
            self.page.write_bytes(slot, &last.to_le_bytes());
        }
        // Finished chain nodes are dropped, as Linux's chain walk does, so
        // timeline syncobjs do not grow with every point.
        for (obj, _) in self.objs.values_mut() {
            obj.collect(&self.timelines);
        }
        for (&h, handle) in &self.handles {
            if let Handle::SyncFile(set) = handle {
                let concerned = set
                    .fences()
                    .iter()
                    .any(|f| matches!(f, Fence::Point { timeline, .. } if *timeline == tid));
                if concerned && set.status(&self.timelines) != FenceStatus::Active {
                    ctx.post_event(h, EventFlags::READ);
                }
            }
        }
        self.progress(ctx);
    }

    /// Something a parked wait may be waiting for happened (a timeline
    /// moved, a syncobj got a new fence): page handles become readable.
    fn progress(&mut self, ctx: &mut Context) {
        ctx.wake(CHANGED);
        self.moves += 1;
        for (&h, handle) in &self.handles {
            if let Handle::Page { .. } = handle {
                ctx.post_event(h, EventFlags::READ);
            }
        }
    }

    fn stats(&self) -> String {
        let mut counts = [0usize; 6];
        for h in self.handles.values() {
            let i = match h {
                Handle::Root => 0,
                Handle::Owner(_) => 1,
                Handle::Page { .. } => 2,
                Handle::SyncFile(_) => 3,
                Handle::Table { .. } => 4,
                Handle::Exported(_) => 5,
            };
            counts[i] += 1;
        }
        let mut s = String::new();
        let _ = writeln!(s, "handles {}", self.handles.len());
        let _ = writeln!(s, "owners {}", counts[1]);
        let _ = writeln!(s, "sync_files {}", counts[3]);
        let _ = writeln!(s, "tables {}", counts[4]);
        let _ = writeln!(s, "exported {}", counts[5]);
        let _ = writeln!(s, "syncobjs {}", self.objs.len());
        let _ = writeln!(s, "tokens {}", self.tokens.len());
        let _ = writeln!(s, "timelines {}", self.timelines.len());
        s
    }

    /// A sync_file's FILE_INFO (sync_file.c semantics).
    fn file_info(&self, set: &FenceSet, payload: &mut [u8]) -> Result<usize> {
        let mut p = Payload::new(payload);
        let mut header: FileInfoHeader = p.header().map_err(wire)?;
        if header.flags != 0 || header.pad != 0 {
            return Err(Errno::EINVAL);
        }
        let count = set.fences().len() as u32;
        let want = header.num_fences;
        let index = p.skip_array::<FenceInfo>(want).map_err(wire)?;
        p.finish().map_err(wire)?;
        header.name = name32("dma_fence_unwrap");
        // With the fences asked for, Linux reports the first member that is
        // not cleanly signalled; for the count alone, the set's status.
        header.status = if want == 0 {
            set.status(&self.timelines).sync_status()
        } else {
            set.info_status(&self.timelines).sync_status()
        };
        if want != 0 {
            if want < count {
                return Err(Errno::EINVAL);
            }
            let infos: Vec<FenceInfo> =
                set.fences()
                    .iter()
                    .map(|&f| {
                        let status = self.timelines.status(f);
                        FenceInfo {
                            obj_name: name32(match f {
                                Fence::Stub { .. } => "stub",
                                Fence::Point { timeline, .. } => {
                                    self.timelines.name(timeline).unwrap_or("gone")
                                }
                            }),
                            driver_name: name32(api::DRIVER_NAME),
                            status: status.sync_status(),
                            flags: 0,
                            timestamp_ns: match status {
                                FenceStatus::Active => 0,
                                FenceStatus::Signaled { at_ns }
                                | FenceStatus::Error { at_ns, .. } => at_ns,
                            },
                        }
                    })
                    .collect();
            p.set_array(index, &infos).map_err(wire)?;
        }
        header.num_fences = count;
        p.set_header(&header).map_err(wire)?;
        Ok(0)
    }

    /// One syncobj ioctl on a table.
    fn syncobj_call(
        &mut self,
        table: HandleId,
        nr: u64,
        payload: &mut [u8],
        ctx: &mut Context,
    ) -> Result<Answer> {
        let now = now_ns();
        let mut p = Payload::new(payload);
        let done = match nr {
            so::CREATE => {
                let mut c: Create = p.header().map_err(wire)?;
                p.finish().map_err(wire)?;
                if c.flags & !so::CREATE_SIGNALED != 0 {
                    return Err(Errno::EINVAL);
                }
                let obj = self.new_obj(Syncobj::new(c.flags & so::CREATE_SIGNALED != 0, now));
                c.handle = self.table_insert(table, obj)?;
                p.set_header(&c).map_err(wire)?;
                Ok(0)
            }
            so::DESTROY => {
                let d: Destroy = p.header().map_err(wire)?;
                p.finish().map_err(wire)?;
                if d.pad != 0 {
                    return Err(Errno::EINVAL);
                }
                let obj = self.table_remove(table, d.handle).ok_or(Errno::EINVAL)?;
                self.release_obj(obj);
                Ok(0)
            }
            so::FD_TO_HANDLE => {
                let mut f: FdToHandle = p.header().map_err(wire)?;
                p.finish().map_err(wire)?;
                self.import(table, &mut f, now)?;
                p.set_header(&f).map_err(wire)?;
                Ok(0)
            }
            so::HANDLE_TO_FD => Err(Errno::EOPNOTSUPP), // returns an fd: a dup (see api)
            so::WAIT | so::TIMELINE_WAIT => {
                let mut w: WaitHeader = p.header().map_err(wire)?;
                // Arrays too large to carry are ENOMEM once Linux's order
                // reaches them: after the flags and the empty case.
                let handles = p.u32s(w.count_handles);
                let points = match nr {
                    so::TIMELINE_WAIT => p.u64s(w.count_handles),
                    _ => Ok(vec![0; w.count_handles.min(drm_uapi::MAX_COUNT) as usize]),
                };
                p.finish().map_err(wire)?;
                let mut allowed = so::WAIT_FLAGS_WAIT_ALL
                    | so::WAIT_FLAGS_WAIT_FOR_SUBMIT
                    | so::WAIT_FLAGS_WAIT_DEADLINE;
                if nr == so::TIMELINE_WAIT {
                    allowed |= so::WAIT_FLAGS_WAIT_AVAILABLE;
                }
                if w.flags & !allowed != 0 {
                    return Err(Errno::EINVAL);
                }
                if w.count_handles == 0 {
                    return Ok(Answer::Ready(0));
                }
                let (handles, points) = (handles.map_err(wire)?, points.map_err(wire)?);
                let ids = self.resolve(table, &handles)?;
                let objs: Vec<(&Syncobj, u64)> = ids
                    .iter()
                    .zip(&points)
                    .map(|(id, &pt)| (&self.objs[id].0, pt))
                    .collect();
                return match evaluate(
                    &objs,
                    WaitFlags::from_bits_truncate(w.flags),
                    &self.timelines,
                ) {
                    WaitOutcome::Done { first_signaled } => {
                        w.first_signaled = first_signaled;
                        p.set_header(&w).map_err(wire)?;
                        Ok(Answer::Ready(0))
                    }
                    WaitOutcome::Error(e) => Err(errno(e)),
                    WaitOutcome::Pending => {
                        // The timeout is absolute CLOCK_MONOTONIC; the seam
                        // keeps it from the first park on.
                        let deadline = w.timeout_nsec.max(0) as u64;
                        if deadline <= now || ctx.expired() {
                            return Err(Errno::ETIME);
                        }
                        let until = Instant::now() + Duration::from_nanos(deadline - now);
                        Ok(Answer::Park(Park::on(CHANGED).until(until)))
                    }
                };
            }
            so::RESET | so::SIGNAL => {
                let a: Array = p.header().map_err(wire)?;
                let handles = p.u32s(a.count_handles);
                p.finish().map_err(wire)?;
                if a.pad != 0 || a.count_handles == 0 {
                    return Err(Errno::EINVAL);
                }
                let handles = handles.map_err(wire)?;
                for id in self.resolve(table, &handles)? {
                    let obj = &mut self.objs.get_mut(&id).expect("resolved").0;
                    if nr == so::RESET {
                        obj.reset();
                    } else {
                        obj.signal(now);
                    }
                }
                Ok(0)
            }
            api::SUBMIT_DEPS | api::CHECK_DEPS => {
                let d: api::SubmitDeps = p.header().map_err(wire)?;
                let outs = p.array::<api::OutSyncobj>(d.count_outs);
                let resets = p.u32s(d.count_resets);
                p.finish().map_err(wire)?;
                let (outs, resets) = (outs.map_err(wire)?, resets.map_err(wire)?);
                if d.pad != 0 || outs.iter().any(|o| o.pad != 0) {
                    return Err(Errno::EINVAL);
                }
                let timeline = TimelineId(d.timeline);
                if !self.timelines.exists(timeline) {
                    return Err(Errno::ENOENT);
                }
                let handles: Vec<u32> = outs.iter().map(|o| o.handle).collect();
                let out_ids = self.resolve(table, &handles)?;
                let reset_ids = self.resolve(table, &resets)?;
                if nr == api::CHECK_DEPS {
                    return Ok(Answer::Ready(0));
                }
                let fence = FenceSet::single(Fence::Point {
                    timeline,
                    point: d.point,
                });
                for (id, o) in out_ids.into_iter().zip(&outs) {
                    let obj = &mut self.objs.get_mut(&id).expect("resolved").0;
                    if o.point != 0 {
                        obj.add_point_set(o.point, fence.clone());
                    } else {
                        obj.replace_set(Some(fence.clone()));
                    }
                }
                for id in reset_ids {
                    self.objs.get_mut(&id).expect("resolved").0.reset();
                }
                Ok(0)
            }
            so::QUERY | so::TIMELINE_SIGNAL => {
                let a: TimelineArray = p.header().map_err(wire)?;
                let handles = p.u32s(a.count_handles);
                let points = p.u64s(a.count_handles);
                p.finish().map_err(wire)?;
                let allowed = if nr == so::QUERY {
                    so::QUERY_FLAGS_LAST_SUBMITTED
                } else {
                    0
                };
                if a.flags & !allowed != 0 || a.count_handles == 0 {
                    return Err(Errno::EINVAL);
                }
                let (handles, points) = (handles.map_err(wire)?, points.map_err(wire)?);
                let ids = self.resolve(table, &handles)?;
                if nr == so::QUERY {
                    let last_submitted = a.flags & so::QUERY_FLAGS_LAST_SUBMITTED != 0;
                    let out: Vec<u64> = ids
                        .iter()
                        .map(|id| self.objs[id].0.query(&self.timelines, last_submitted))
                        .collect();
                    p.set_u64s(1, &out).map_err(wire)?;
                } else {
                    // Linux adds a chain point even for point 0 (numbered
                    // like the newest one).
                    for (id, point) in ids.iter().zip(points) {
                        let stub = Fence::Stub { signaled_ns: now };
                        self.objs
                            .get_mut(id)
                            .expect("resolved")
                            .0
                            .add_point(point, stub);
                    }
                }
                Ok(0)
            }
            so::TRANSFER => {
                let t: Transfer = p.header().map_err(wire)?;
                p.finish().map_err(wire)?;
                if t.pad != 0 {
                    return Err(Errno::EINVAL);
                }
                // Linux looks both up (destination first) before the flags.
                let ids = self.resolve(table, &[t.src_handle, t.dst_handle])?;
                if t.flags & !(so::WAIT_FLAGS_WAIT_FOR_SUBMIT) != 0 {
                    return Err(Errno::EINVAL);
                }
                let set = self.objs[&ids[0]]
                    .0
                    .fence_set_at(t.src_point)
                    .map_err(errno)?;
                let Some(set) = set else {
                    // Nothing submitted at the source point yet: with
                    // WAIT_FOR_SUBMIT Linux would wait for it.
                    return Err(Errno::EINVAL);
                };
                let dst = &mut self.objs.get_mut(&ids[1]).expect("resolved").0;
                if t.dst_point == 0 {
                    dst.replace_set(Some(set));
                } else {
                    dst.add_point_set(t.dst_point, set);
                }
                Ok(0)
            }
            so::EVENTFD => Err(Errno::EOPNOTSUPP),
            _ => Err(Errno::ENOTTY),
        };
        done.map(Answer::Ready)
    }

    fn table_insert(&mut self, table: HandleId, obj: ObjId) -> Result<u32> {
        let Some(Handle::Table { objs, next }) = self.handles.get_mut(&table) else {
            return Err(Errno::EBADF);
        };
        *next = next.checked_add(1).ok_or(Errno::ENOSPC)?;
        objs.insert(*next, obj);
        Ok(*next)
    }

    fn table_remove(&mut self, table: HandleId, handle: u32) -> Option<ObjId> {
        match self.handles.get_mut(&table) {
            Some(Handle::Table { objs, .. }) => objs.remove(&handle),
            _ => None,
        }
    }

    /// Table handles to objects; any unknown handle is ENOENT.
    fn resolve(&self, table: HandleId, handles: &[u32]) -> Result<Vec<ObjId>> {
        let Some(Handle::Table { objs, .. }) = self.handles.get(&table) else {
            return Err(Errno::EBADF);
        };
        handles
            .iter()
            .map(|h| objs.get(h).copied().ok_or(Errno::ENOENT))
            .collect()
    }

    /// FD_TO_HANDLE: a sync_file into an existing syncobj, or an exported
    /// syncobj as a new handle of this table.
    fn import(&mut self, table: HandleId, f: &mut FdToHandle, now: u64) -> Result<()> {
        let _ = now;
        let allowed = so::FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE | so::FLAGS_TIMELINE;
        if f.flags & !allowed != 0 {
            return Err(Errno::EINVAL);
        }
        if f.flags & so::FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE != 0 {
            let Some(Handle::SyncFile(set)) = self.by_token(f.token) else {
                return Err(Errno::EINVAL);
            };
            let set = set.clone();
            let id = *self
                .resolve(table, &[f.handle])?
                .first()
                .expect("one handle");
            let obj = &mut self.objs.get_mut(&id).expect("resolved").0;
            if f.flags & so::FLAGS_TIMELINE != 0 && f.point != 0 {
                obj.add_point_set(f.point, set);
            } else {
                obj.replace_set(Some(set));
            }
            return Ok(());
        }
        if f.point != 0 {
            return Err(Errno::EINVAL);
        }
        let Some(&Handle::Exported(obj)) = self.by_token(f.token) else {
            return Err(Errno::EINVAL);
        };
        self.retain_obj(obj);
        f.handle = self.table_insert(table, obj)?;
        Ok(())
    }

    /// HANDLE_TO_FD as a dup: a snapshot sync_file or an exported syncobj.
    fn export(&mut self, table: HandleId, h: &HandleToFd) -> Result<Handle> {
        let allowed = so::HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE | so::FLAGS_TIMELINE;
        if h.flags & !allowed != 0 {
            return Err(Errno::EINVAL);
        }
        // Linux: an unknown handle is EINVAL for an opaque export (its
        // drm_syncobj_handle_to_fd) and ENOENT for a sync_file (its fence
        // lookup).
        let id = match self.resolve(table, &[h.handle]) {
            Ok(ids) => ids[0],
            Err(_) if h.flags & so::HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE != 0 => {
                return Err(Errno::ENOENT)
            }
            Err(_) => return Err(Errno::EINVAL),
        };
        if h.flags & so::HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE != 0 {
            let point = if h.flags & so::FLAGS_TIMELINE != 0 {
                h.point
            } else {
                0
            };
            let set = self.objs[&id].0.fence_set_at(point).map_err(errno)?;
            return Ok(Handle::SyncFile(set.ok_or(Errno::EINVAL)?));
        }
        if h.point != 0 {
            return Err(Errno::EINVAL);
        }
        self.retain_obj(id);
        Ok(Handle::Exported(id))
    }
}

/// A fixed 32-byte, NUL-padded name.
fn name32(name: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    let n = name.len().min(31);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
}

impl Scheme for SyncScheme {
    fn open(&mut self, path: &str, _flags: usize, _ctx: &mut Context) -> Result<Opened> {
        let path = path.trim_matches('/');
        let handle = if path.is_empty() {
            Handle::Root
        } else if path == api::PAGE_PATH {
            Handle::Page { seen: self.moves }
        } else if path == api::SYNCOBJ_PATH {
            Handle::Table {
                objs: HashMap::new(),
                next: 0,
            }
        } else if let Some(name) = path.strip_prefix(api::TIMELINE_PATH) {
            if name.is_empty() {
                return Err(Errno::EINVAL);
            }
            Handle::Owner(self.timelines.create(name))
        } else if let Some(rest) = path.strip_prefix(api::FENCE_PATH) {
            let (t, p) = rest.split_once('/').ok_or(Errno::ENOENT)?;
            let timeline = TimelineId(t.parse().map_err(|_| Errno::ENOENT)?);
            let point: u64 = p.parse().map_err(|_| Errno::ENOENT)?;
            self.fence_file(timeline, point)?
        } else {
            return Err(Errno::ENOENT);
        };
        Ok(Opened::Handle(self.insert(handle)))
    }

    fn dup(&mut self, id: HandleId, buf: &[u8], _ctx: &mut Context) -> Result<Opened> {
        let handle = match self.handles.get(&id).ok_or(Errno::EBADF)? {
            Handle::SyncFile(set) => {
                // MERGE: the other file named by its token.
                let m = Merge::read_from_bytes(buf).map_err(|_| Errno::EINVAL)?;
                if m.flags != 0 || m.pad != 0 {
                    return Err(Errno::EINVAL);
                }
                let set = set.clone();
                let Some(Handle::SyncFile(other)) = self.by_token(m.token) else {
                    return Err(Errno::ENOENT);
                };
                Handle::SyncFile(set.merge(other))
            }
            Handle::Table { .. } => {
                let h = HandleToFd::read_from_bytes(buf).map_err(|_| Errno::EINVAL)?;
                self.export(id, &h)?
            }
            Handle::Page { .. } => {
                let f = api::FenceRef::read_from_bytes(buf).map_err(|_| Errno::EINVAL)?;
                if f.pad != 0 {
                    return Err(Errno::EINVAL);
                }
                self.fence_file(TimelineId(f.timeline), f.point)?
            }
            _ => return Err(Errno::EOPNOTSUPP),
        };
        Ok(Opened::Handle(self.insert(handle)))
    }

    fn read(
        &mut self,
        id: HandleId,
        buf: &mut [u8],
        offset: u64,
        _ctx: &mut Context,
    ) -> Result<Answer> {
        let n = match self.handles.get(&id).ok_or(Errno::EBADF)? {
            Handle::Root => read_text(&self.stats(), buf, offset),
            Handle::Page { .. } => {
                // The move count: reading it acknowledges the wake-up.
                let out = buf.get_mut(..8).ok_or(Errno::EINVAL)?;
                out.copy_from_slice(&self.moves.to_le_bytes());
                if let Some(Handle::Page { seen }) = self.handles.get_mut(&id) {
                    *seen = self.moves;
                }
                8
            }
            _ => return Err(Errno::EBADF),
        };
        Ok(Answer::Ready(n))
    }

    fn call(
        &mut self,
        id: HandleId,
        payload: &mut [u8],
        metadata: &[u64],
        ctx: &mut Context,
    ) -> Result<Answer> {
        let nr = *metadata.first().ok_or(Errno::EINVAL)?;
        let handle = self.handles.get(&id).ok_or(Errno::EBADF)?;
        let done = match (handle, nr) {
            (_, api::TOKEN) => {
                if payload.len() != 8 {
                    return Err(Errno::EINVAL);
                }
                let token = self.tokens.token(id);
                payload.copy_from_slice(&token.to_le_bytes());
                Ok(0)
            }
            (&Handle::Owner(tid), api::TIMELINE_ID) => Ok(tid.0 as usize),
            (&Handle::Owner(tid), api::SIGNAL) => {
                let point = u64_arg(payload)?;
                if self.timelines.signal(tid, point, now_ns()).map_err(errno)? {
                    self.timeline_moved(tid, ctx);
                }
                Ok(0)
            }
            (&Handle::Owner(tid), api::FAIL) => {
                let point = u64_arg(payload)?;
                let code = payload
                    .get(8..12)
                    .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")))
                    .ok_or(Errno::EINVAL)?;
                if code <= 0 {
                    return Err(Errno::EINVAL);
                }
                self.timelines
                    .fail(tid, point, code, now_ns())
                    .map_err(errno)?;
                self.timeline_moved(tid, ctx);
                Ok(0)
            }
            (Handle::SyncFile(set), sync_file::FILE_INFO) => {
                let set = set.clone();
                self.file_info(&set, payload)
            }
            (Handle::SyncFile(_), sync_file::SET_DEADLINE) => {
                let d = SetDeadline::read_from_bytes(payload).map_err(|_| Errno::EINVAL)?;
                // A hint Linux forwards to drivers that can boost clocks;
                // the device here has no such control.
                if d.pad != 0 {
                    return Err(Errno::EINVAL);
                }
                Ok(0)
            }
            (Handle::SyncFile(_), _) => Err(Errno::ENOTTY),
            (Handle::Table { .. }, nr) => {
                let r = self.syncobj_call(id, nr, payload, ctx);
                // Ops that give a syncobj a new fence can satisfy another
                // daemon's parked wait without any timeline moving.
                let gives_fences = matches!(
                    nr,
                    so::SIGNAL
                        | so::TIMELINE_SIGNAL
                        | so::TRANSFER
                        | so::FD_TO_HANDLE
                        | api::SUBMIT_DEPS
                );
                if gives_fences && r.is_ok() {
                    self.progress(ctx);
                }
                return r;
            }
            _ => Err(Errno::ENOTTY),
        };
        done.map(Answer::Ready)
    }

    fn fevent(
        &mut self,
        id: HandleId,
        _flags: EventFlags,
        _ctx: &mut Context,
    ) -> Result<EventFlags> {
        match self.handles.get(&id).ok_or(Errno::EBADF)? {
            Handle::SyncFile(set) if set.status(&self.timelines) != FenceStatus::Active => {
                Ok(EventFlags::READ)
            }
            Handle::Page { seen } if *seen < self.moves => Ok(EventFlags::READ),
            _ => Ok(EventFlags::empty()),
        }
    }

    fn mmap(
        &mut self,
        id: HandleId,
        offset: u64,
        len: usize,
        _ctx: &mut Context,
    ) -> Result<Mapping> {
        match self.handles.get(&id).ok_or(Errno::EBADF)? {
            Handle::Page { .. } if offset == 0 && len <= api::PAGE_LEN => Ok(Mapping {
                region: self.page.clone(),
                offset: 0,
                writable: false,
            }),
            Handle::Page { .. } => Err(Errno::EINVAL),
            _ => Err(Errno::ENODEV),
        }
    }

    fn close(&mut self, id: HandleId, ctx: &mut Context) {
        self.tokens.remove(id);
        match self.handles.remove(&id) {
            Some(Handle::Owner(tid)) => {
                // Nobody can signal its pending points any more.
                self.timelines.abandon(tid, now_ns());
                self.timeline_moved(tid, ctx);
            }
            Some(Handle::Table { objs, .. }) => {
                for obj in objs.into_values() {
                    self.release_obj(obj);
                }
            }
            Some(Handle::Exported(obj)) => self.release_obj(obj),
            _ => {}
        }
    }
}
