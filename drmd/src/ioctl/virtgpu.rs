//! The VIRTGPU ioctls (render nodes), following Linux's virtio-gpu driver
//! (ABI reference §2.4): objects and contexts go to the device through the
//! file's virtio-gpud session; fences are device fences, which syncd
//! publishes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use drm_uapi::virtgpu::{
    self as vg, ContextInitHeader, ExecSyncobj, ExecbufferHeader, GetCapsHeader, GetParam, Map,
    ResourceCreate, ResourceInfo, Transfer, Wait,
};
use drm_uapi::wire::Payload;
use gpu_session::api::{StreamRef, QUEUE_FENCED, QUEUE_STREAM_IN_MEMORY};
use scheme_seam::{Answer, Errno, Park, Result};
use virtio_gpu_proto::{
    Box3d, CmdSubmit, Features, Format, MemEntry, Rect, Resource3dParams, ResourceAttachBacking,
    ResourceCreate2d, ResourceCreate3d, ResourceId, TransferFromHost3d, TransferToHost2d,
    TransferToHost3d,
};
use zerocopy::IntoBytes;

use super::{for_room, wire, PROGRESS};
use crate::device::{Device, FenceState};
use crate::errno::io_errno;
use crate::file::{DrmFile, OutFence};
use crate::gem::{Gem, Image, Upload};
use crate::recovery::record::Submit;
use crate::ring::Batch;

/// Backing is page granular, as shmem is in Linux.
const PAGE: u32 = 4096;
/// How long a blocking WAIT waits before EBUSY (Linux: 15 s).
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(15);

/// GETPARAM: what the device negotiated, answered without asking it.
pub fn getparam(device: &Device, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut g: GetParam = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    let f = device.features;
    let flag = |x: Features| u64::from(f.contains(x));
    g.value = match g.param {
        vg::PARAM_3D_FEATURES => flag(Features::VIRGL),
        vg::PARAM_CAPSET_QUERY_FIX => 1,
        vg::PARAM_RESOURCE_BLOB => flag(Features::RESOURCE_BLOB),
        // The host-visible shared memory region is a PCI capability this
        // transport does not have.
        vg::PARAM_HOST_VISIBLE => 0,
        vg::PARAM_CROSS_DEVICE => flag(Features::RESOURCE_UUID),
        vg::PARAM_CONTEXT_INIT | vg::PARAM_EXPLICIT_DEBUG_NAME => flag(Features::CONTEXT_INIT),
        vg::PARAM_SUPPORTED_CAPSET_IDS => device.capset_mask(),
        _ => return Err(Errno::EINVAL),
    };
    p.set_header(&g).map_err(wire)?;
    Ok(0)
}

/// GET_CAPS: a capset of the device, copied up to the client's size (the
/// client library carries no more room than the wire's cap, which no
/// capset reaches).
pub fn get_caps(device: &Device, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let c: GetCapsHeader = p.header().map_err(wire)?;
    let data = p.skip_array::<u8>(c.size).map_err(wire)?;
    p.finish().map_err(wire)?;
    if device.capsets.is_empty() {
        return Err(Errno::ENOSYS);
    }
    if c.size == 0 {
        return Err(Errno::EINVAL);
    }
    if !device
        .capsets
        .iter()
        .any(|s| s.id == c.cap_set_id && s.max_version >= c.cap_set_ver)
    {
        return Err(Errno::EINVAL);
    }
    let caps = device
        .capset(c.cap_set_id, c.cap_set_ver)
        .map_err(io_errno)?;
    let n = caps.len().min(c.size as usize);
    p.set_array(data, &caps[..n]).map_err(wire)?;
    // How many bytes were written, for the client library to copy back
    // (Linux leaves the rest of the caller's buffer alone); the ioctl
    // itself returns 0.
    Ok(n)
}

/// CONTEXT_INIT: only with the CONTEXT_INIT feature (EINVAL otherwise, as
/// Linux), and EEXIST once the context exists.
pub fn context_init(device: &Device, file: &mut DrmFile, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let h: ContextInitHeader = p.header().map_err(wire)?;
    let params = p.array::<vg::ContextParam>(h.num_params);
    p.finish().map_err(wire)?;
    if !device
        .features
        .contains(Features::CONTEXT_INIT | Features::VIRGL)
        || h.num_params > 4
    {
        return Err(Errno::EINVAL);
    }
    params.map_err(wire)?;
    if file.has_context() {
        return Err(Errno::EEXIST);
    }
    // The device here never offers CONTEXT_INIT; capset-bound contexts come
    // with a device that does.
    Err(Errno::EINVAL)
}

/// RESOURCE_CREATE: a device resource with page-rounded backing in the
/// file's memory, attached to the file's context (created if need be).
/// Parks while the ring lacks room for its commands.
pub fn resource_create(
    device: &mut Device,
    file: &mut DrmFile,
    payload: &mut [u8],
) -> Result<Answer> {
    let mut p = Payload::new(payload);
    let mut r: ResourceCreate = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    let virgl = device.features.contains(Features::VIRGL);
    let placeholder = ResourceId::new(1).expect("non-zero");
    let request = if virgl {
        let params = Resource3dParams {
            target: r.target,
            format: r.format,
            bind: r.bind,
            width: r.width,
            height: r.height,
            depth: r.depth,
            array_size: r.array_size,
            last_level: r.last_level,
            nr_samples: r.nr_samples,
            flags: r.flags,
        };
        ResourceCreate3d::new(placeholder, &params)
            .as_bytes()
            .to_vec()
    } else {
        // Without virgl only 2D resources exist, checked as Linux does.
        if r.depth > 1 || r.nr_samples > 1 || r.last_level > 1 || r.target != 2 || r.array_size > 1
        {
            return Err(Errno::EINVAL);
        }
        ResourceCreate2d::new(placeholder, Format(r.format), r.width, r.height)
            .as_bytes()
            .to_vec()
    };
    // Linux: size 0 is a page; a size that rounds past u32 is memory it
    // cannot have.
    let size = r.size.max(1);
    // A 2D texture of one level and layer can be scanned out (PIPE_TEXTURE_2D
    // is 2; without virgl every resource is one).
    let flat = r.target == 2 && r.depth <= 1 && r.array_size <= 1;
    let image = flat.then_some(Image {
        width: r.width,
        height: r.height,
        cpp: 4,
        upload: if virgl {
            Upload::None
        } else {
            Upload::Transfer
        },
    });
    let Some((handle, res)) = new_object(device, file, &request, size, image)? else {
        return Ok(for_room());
    };
    r.bo_handle = handle;
    r.res_handle = res;
    p.set_header(&r).map_err(wire)?;
    Ok(Answer::Ready(0))
}

/// A new GEM object of `size` bytes (rounded up to pages) from `request`,
/// a resource create with a placeholder id: the memory first (a resource
/// made without it would stay on the device until the file closed), then
/// the resource, its backing and, with virgl, the file's context (if new)
/// and the resource's attachment to it, as every GEM handle's creation in
/// Linux. Its handle and resource id; None when the ring is full (nothing
/// changed).
pub fn new_object(
    device: &mut Device,
    file: &mut DrmFile,
    request: &[u8],
    size: u32,
    image: Option<Image>,
) -> Result<Option<(u32, u32)>> {
    let virgl = device.features.contains(Features::VIRGL);
    let size = size.checked_next_multiple_of(PAGE).ok_or(Errno::ENOMEM)?;
    let (addr, offset) = file.session.alloc(u64::from(size)).map_err(io_errno)?;
    let mut batch = Batch::new(if virgl { 4 } else { 2 });
    let created = batch.send(&*file.session, request, 0);
    let res = match created.map(|r| r.map(|r| ResourceId::new(r.created as u32))) {
        Ok(Some(Some(res))) => res,
        failed => {
            let _ = file.session.free(addr);
            return match failed {
                Ok(None) => Ok(None),
                Ok(Some(_)) => Err(Errno::EIO),
                Err(e) => Err(e),
            };
        }
    };
    let mut attach = ResourceAttachBacking::new(res, 1).as_bytes().to_vec();
    attach.extend_from_slice(MemEntry::new(addr, size).as_bytes());
    batch.send(&*file.session, &attach, 0)?;
    if virgl {
        file.attach(&mut batch, res)?;
    }
    let map = Arc::new(file.session.map(offset, size as usize).map_err(io_errno)?);
    let gem = Gem::new(res.get(), image, size, device.map_offset(size), map, offset);
    let handle = file.insert(Arc::new(gem))?;
    Ok(Some((handle, res.get())))
}

/// RESOURCE_INFO.
pub fn resource_info(file: &mut DrmFile, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut i: ResourceInfo = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    let bo = file.bo(i.bo_handle)?;
    i.res_handle = bo.res;
    i.size = bo.size;
    // No object is a blob: Linux leaves blob_mem as the caller sent it.
    p.set_header(&i).map_err(wire)?;
    Ok(0)
}

/// MAP: the offset to mmap the object's backing at.
pub fn map(file: &mut DrmFile, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut m: Map = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    m.offset = file.bo(m.handle)?.offset;
    p.set_header(&m).map_err(wire)?;
    Ok(0)
}

/// TRANSFER_TO_HOST / TRANSFER_FROM_HOST: a fenced transfer whose fence
/// the object then carries (for WAIT). Returns at once, as Linux; parks
/// while the ring is full.
pub fn transfer(
    device: &Device,
    file: &mut DrmFile,
    to_host: bool,
    payload: &mut [u8],
) -> Result<Answer> {
    let mut p = Payload::new(payload);
    let t: Transfer = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    let virgl = device.features.contains(Features::VIRGL);
    // Linux: FROM_HOST needs virgl before anything; TO_HOST looks the
    // object up first and, without virgl, is a plain 2D upload.
    if !to_host && !virgl {
        return Err(Errno::ENOSYS);
    }
    let res = ResourceId::new(file.bo(t.bo_handle)?.res).ok_or(Errno::EIO)?;
    let b = t.box_;
    let mut batch = Batch::new(2);
    if !virgl {
        let upload = TransferToHost2d::new(res, Rect::new(b.x, b.y, b.w, b.h), t.offset.into());
        let Some(reply) = batch.send(&*file.session, upload.as_bytes(), QUEUE_FENCED)? else {
            return Ok(for_room());
        };
        file.bo(t.bo_handle)?.set_fence(reply.fence);
        return Ok(Answer::Ready(0));
    }
    // Strides are only for blob objects, which do not exist here.
    if t.stride != 0 || t.layer_stride != 0 {
        return Err(Errno::EINVAL);
    }
    let Some(ctx) = file.context(&mut batch)? else {
        return Ok(for_room());
    };
    let bx = Box3d::new(b.x, b.y, b.z, b.w, b.h, b.d);
    let offset = u64::from(t.offset);
    let request = if to_host {
        TransferToHost3d::new(ctx, res, bx, offset, t.level, 0, 0)
            .as_bytes()
            .to_vec()
    } else {
        TransferFromHost3d::new(ctx, res, bx, offset, t.level, 0, 0)
            .as_bytes()
            .to_vec()
    };
    let Some(reply) = batch.send(&*file.session, &request, QUEUE_FENCED)? else {
        return Ok(for_room());
    };
    file.bo(t.bo_handle)?.set_fence(reply.fence);
    Ok(Answer::Ready(0))
}

/// WAIT: whether the object's last fence has signalled, from syncd's page
/// (no call): NOWAIT answers EBUSY while busy; otherwise the request parks
/// on [`PROGRESS`] until it signals or [`WAIT_TIMEOUT`] has passed since
/// it began (`expired`: EBUSY, as Linux). A fence whose work failed (the
/// device erred, or was declared stuck or lost) is EIO.
pub fn wait(
    device: &mut Device,
    file: &mut DrmFile,
    payload: &mut [u8],
    expired: bool,
) -> Result<Answer> {
    let mut p = Payload::new(payload);
    let w: Wait = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    // Linux ignores flag bits other than NOWAIT.
    let fence = file.bo(w.handle)?.fence();
    match device.fence_state(fence).map_err(io_errno)? {
        FenceState::Signaled => return Ok(Answer::Ready(0)),
        // The work on it failed: the device errored, or stopped (a stuck
        // or lost device fails every fence it had).
        FenceState::Failed => return Err(Errno::EIO),
        FenceState::Busy => {}
    }
    if w.flags & vg::WAIT_NOWAIT != 0 || expired {
        return Err(Errno::EBUSY);
    }
    let until = Instant::now() + WAIT_TIMEOUT;
    Ok(Answer::Park(Park::on(PROGRESS).until(until)))
}

/// EXECBUFFER: the stream goes to the device as a fenced SUBMIT_3D in the
/// file's context (created if need be); the fence goes on each listed
/// object and into each out-syncobj; with FENCE_FD_OUT a slot naming its
/// fence is written to `fence_fd`, and the client obtains the sync_file by
/// `dup` of that slot.
///
/// Checked in Linux 6.12's order (virtgpu_submit.c): virgl (ENOSYS), flags
/// and ring (EINVAL), the objects (ENOMEM over the wire's cap, ENOENT for
/// an unknown handle) and the stream (ENOMEM over its cap), the
/// out-syncobjs (flags, unknown handles: EINVAL), the in-syncobjs (flags:
/// EINVAL, unknown: ENOENT, nothing submitted: EINVAL), the in-fence
/// (EINVAL for no sync_file), an object listed twice (EALREADY) — all
/// before anything is queued. In-fences and in-syncobjs that have not
/// signalled park the request on [`PROGRESS`], and a full ring parks it on
/// [`ROOM`] (it runs again from the start: nothing was submitted yet),
/// where Linux would block in the ioctl.
pub fn execbuffer(
    device: &mut Device,
    file: &mut DrmFile,
    payload: &mut [u8],
    stage: &mut dyn FnMut(Submit),
) -> Result<Answer> {
    // Staged as Linux's virtgpu_submit.c: parse, resolve, check the
    // in-fences, place the stream, queue, publish. Everything that can fail
    // does so before the queue stage, so a client that retries an error
    // never submits twice; what the publish needs is journaled (`stage`)
    // before the queue, so a restarted drmd can publish a submit the
    // device took from a dead one, and never submit it twice either.
    let mut p = Payload::new(payload);
    let mut e: ExecbufferHeader = p.header().map_err(wire)?;
    // Arrays over the wire's cap are not carried: their errors wait for
    // the stage Linux finds them at.
    let stream_index = p.bytes(e.size);
    let handles = p.u32s(e.num_bo_handles);
    let ins = p.array::<ExecSyncobj>(e.num_in_syncobjs);
    let outs = p.array::<ExecSyncobj>(e.num_out_syncobjs);
    let in_fence = match e.flags & vg::EXECBUF_FENCE_FD_IN {
        0 => None,
        _ => Some(p.u64s(1).map_err(wire)?[0]),
    };
    p.finish().map_err(wire)?;
    if !device.features.contains(Features::VIRGL) {
        return Err(Errno::ENOSYS);
    }
    let known = vg::EXECBUF_FENCE_FD_IN | vg::EXECBUF_FENCE_FD_OUT | vg::EXECBUF_RING_IDX;
    if e.flags & !known != 0 {
        return Err(Errno::EINVAL);
    }
    // A ring index needs rings, which only CONTEXT_INIT makes: without
    // it Linux answers EINVAL too.
    if e.flags & vg::EXECBUF_RING_IDX != 0 {
        return Err(Errno::EINVAL);
    }

    // Resolve: the objects, the stream, and every syncobj the publish
    // stage will touch (one syncd call).
    let handles = handles.map_err(wire)?;
    let objects = handles
        .iter()
        .map(|h| file.bo(*h).cloned())
        .collect::<Result<Vec<_>>>()?;
    let stream_index = stream_index.map_err(wire)?;
    let outs = outs.map_err(wire)?;
    if outs.iter().any(|s| s.flags != 0) {
        return Err(Errno::EINVAL);
    }
    let outs: Vec<(u32, u64)> = outs.iter().map(|s| (s.handle, s.point)).collect();
    let ins = ins.map_err(wire)?;
    if ins
        .iter()
        .any(|s| s.flags & !vg::EXECBUF_SYNCOBJ_RESET != 0)
    {
        return Err(Errno::EINVAL);
    }
    let resets: Vec<u32> = ins
        .iter()
        .filter(|s| s.flags & vg::EXECBUF_SYNCOBJ_RESET != 0)
        .map(|s| s.handle)
        .collect();
    let timeline = if outs.is_empty() && resets.is_empty() {
        None
    } else {
        let timeline = device.timeline().map_err(io_errno)?;
        // Linux's drm_syncobj_find: an unknown out-syncobj is EINVAL. An
        // unknown in-syncobj is found by its wait below first.
        file.syncobjs()?
            .submit_deps(timeline, None, &outs, &[])
            .map_err(|e| match io_errno(e) {
                Errno::ENOENT => Errno::EINVAL,
                other => other,
            })?;
        Some(timeline)
    };

    // Check the in-fences: a pending one parks the request.
    for s in &ins {
        let points = [s.point];
        let table = file.syncobjs()?;
        match table.wait(&[s.handle], Some(&points), 0, 0) {
            Ok(_) => {}
            Err(err) if err.raw_os_error() == Some(Errno::ETIME.0) => {
                return Ok(Answer::Park(Park::on(PROGRESS)))
            }
            Err(err) => return Err(io_errno(err)),
        }
    }
    if let Some(token) = in_fence {
        if !file.in_fence_signaled(token)? {
            return Ok(Answer::Park(Park::on(PROGRESS)));
        }
    }
    // Linux locks each object's reservation once: one listed twice is
    // EALREADY (ww_mutex).
    let mut sorted = handles.clone();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(Errno::EALREADY);
    }
    let mut batch = Batch::new(2);
    let Some(ctx) = file.context(&mut batch)? else {
        return Ok(for_room());
    };
    let stream = p.array_bytes(stream_index).map_err(wire)?;

    // Place: the one copy of the submit path, into the arena, which the
    // device reads in place. A stream that does not fit goes inline
    // instead, and an empty one (Linux sends the bare command) has nothing
    // to place.
    let mark = file.arena()?.mark();
    let placed = match stream.is_empty() {
        true => None,
        false => file
            .arena()?
            .place(stream, |fence| device.signaled(fence).unwrap_or(false)),
    };
    let mut request = CmdSubmit::new(ctx, stream.len() as u32).as_bytes().to_vec();
    let flags = match placed {
        Some(addr) => {
            let at = StreamRef {
                addr,
                len: stream.len() as u32,
                pad: 0,
            };
            request.extend_from_slice(at.as_bytes());
            QUEUE_FENCED | QUEUE_STREAM_IN_MEMORY
        }
        None => {
            request.extend_from_slice(stream);
            QUEUE_FENCED
        }
    };

    stage(Submit {
        ctx: ctx.get(),
        header: e.as_bytes().to_vec(),
        outs: outs.clone(),
        resets: resets.clone(),
        timeline,
        mark: mark as u64,
        placed: placed.map(|_| file.arena().map_or(0, |a| a.mark() as u64)),
    });
    // Queue: a full ring takes the placement back and parks.
    let Some(reply) = batch.send(&*file.session, &request, flags)? else {
        file.arena()?.rewind(mark);
        return Ok(for_room());
    };

    for gem in &objects {
        gem.set_fence(reply.fence);
    }
    let signals = Signals {
        timeline,
        outs: &outs,
        resets: &resets,
    };
    publish(file, &mut e, placed.is_some(), signals, reply.fence);
    p.set_header(&e).map_err(wire)?;
    Ok(Answer::Ready(0))
}

/// The syncobjs a submit signals: its out-syncobjs (handle, point) and
/// the in-syncobjs it resets, on drmd's `timeline` in syncd.
#[derive(Clone, Copy, Debug)]
pub struct Signals<'a> {
    /// The timeline the submit's fence is mirrored on (None: no syncobj).
    pub timeline: Option<u32>,
    /// Out-syncobjs and their points.
    pub outs: &'a [(u32, u64)],
    /// In-syncobjs to reset.
    pub resets: &'a [u32],
}

/// Publish: what a submit the device took with `fence` changes in its
/// file — the arena space it was `placed` in, the syncobjs it signals, an
/// out-fence slot (written into `e`). Nothing here fails, since the work
/// is on the device. A restarted drmd that finds an interrupted submit
/// reached the device publishes it here too (`recovery::restore`).
pub fn publish(
    file: &mut DrmFile,
    e: &mut ExecbufferHeader,
    placed: bool,
    signals: Signals<'_>,
    fence: u64,
) {
    if placed {
        file.arena_placed(fence);
    }
    if let (Some(timeline), Some(table)) = (signals.timeline, file.opened_syncobjs()) {
        // Resolved before the submit was queued, so only syncd's going
        // away fails this, and then every waiter on these syncobjs fails
        // with it.
        if let Err(err) = table.submit_deps(timeline, Some(fence), signals.outs, signals.resets) {
            log::warn!("publishing a submit's syncobjs: {err}");
        }
    }
    if e.flags & vg::EXECBUF_FENCE_FD_OUT != 0 {
        // The fence's point does not fit an fd's int for long (2^31
        // fences): the client names it by a slot of its file's.
        e.fence_fd = file.out_fences.put(OutFence::Device(fence));
    }
}
