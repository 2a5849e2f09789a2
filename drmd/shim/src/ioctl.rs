//! Linux ioctls on a bus handle, re-packed into the wire encoding relibc
//! uses (`drm_uapi`): the daemon receives the bytes it would receive on
//! Redox. Pointed-to arrays are read from (and written back to) the
//! caller's memory; fds become capability tokens on the way in, and fds
//! coming back are obtained by `dup` as docs/DRM.md says.

use std::os::fd::OwnedFd;

use drm_uapi::core::{self as dc};
use drm_uapi::sync_file as sf;
use drm_uapi::syncobj as so;
use drm_uapi::virtgpu::{self as vg};
use drm_uapi::wire::Builder;
use scheme_seam::token;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes};

use crate::conns::{self, Conn, Kind};
use crate::linux_abi as la;

/// An ioctl's outcome: a return value or an errno.
pub type Result<T> = std::result::Result<T, i32>;

/// The fields of a Linux request number.
struct Request {
    ty: u8,
    nr: u64,
    size: usize,
}

impl Request {
    fn decode(request: u64) -> Request {
        Request {
            ty: (request >> 8) as u8,
            nr: request & 0xFF,
            size: ((request >> 16) & 0x3FFF) as usize,
        }
    }
}

fn io(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// The caller's struct `T` at `arg`, of which the request says `size`
/// bytes are there (a shorter struct reads as zero-extended, as Linux).
///
/// # Safety
/// `arg` points at `size` readable bytes.
unsafe fn read_arg<T: FromBytes + IntoBytes>(arg: *const u8, size: usize) -> Result<T> {
    if arg.is_null() {
        return Err(libc::EFAULT);
    }
    let mut value = T::new_zeroed();
    let n = size.min(size_of::<T>());
    // SAFETY: the caller's guarantee for `n <= size` bytes; `value` has
    // room for `n <= size_of::<T>()`.
    unsafe { std::ptr::copy_nonoverlapping(arg, value.as_mut_bytes().as_mut_ptr(), n) };
    Ok(value)
}

/// Writes `value`'s first `size` bytes back to the caller's struct.
///
/// # Safety
/// `arg` points at `size` writable bytes.
unsafe fn write_arg<T: IntoBytes + Immutable>(arg: *mut u8, size: usize, value: &T) {
    let n = size.min(size_of::<T>());
    // SAFETY: the caller's guarantee.
    unsafe { std::ptr::copy_nonoverlapping(value.as_bytes().as_ptr(), arg, n) };
}

/// `len` bytes of the caller's memory at `ptr` (zeros for NULL, as the
/// wire rule says).
///
/// # Safety
/// `ptr` is NULL or points at `len` readable bytes.
unsafe fn user_bytes(ptr: u64, len: usize) -> Vec<u8> {
    if ptr == 0 {
        return vec![0; len];
    }
    // SAFETY: the caller's guarantee.
    unsafe { std::slice::from_raw_parts(ptr as *const u8, len) }.to_vec()
}

/// Copies `bytes` to the caller's memory at `ptr` (nothing for NULL).
///
/// # Safety
/// `ptr` is NULL or points at `bytes.len()` writable bytes.
unsafe fn copy_out(ptr: u64, bytes: &[u8]) {
    if ptr != 0 {
        // SAFETY: the caller's guarantee.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr as *mut u8, bytes.len()) };
    }
}

fn call(conn: &Conn, nr: u64, payload: &mut [u8]) -> Result<i32> {
    conn.fd.call(payload, &[nr]).map(|v| v as i32).map_err(io)
}

/// The capability token of the caller's fd `fd` (EBADF if it is no bus
/// handle).
fn token_of(fd: i32) -> Result<u64> {
    let conn = conns::get(fd).ok_or(libc::EBADF)?;
    let mut out = [0u8; 8];
    conn.fd.call(&mut out, &[token::CALL]).map_err(io)?;
    Ok(u64::from_le_bytes(out))
}

/// Finishes an fd-returning ioctl: `dup(conn, buf)`, adopted as `kind`.
fn fd_from(conn: &Conn, buf: &[u8], kind: Kind, cloexec: bool) -> Result<i32> {
    let fd: OwnedFd = conn.fd.dup(buf).map_err(io)?;
    conns::adopt(fd, kind, cloexec)
}

/// Serves `request` with argument `arg` on `conn`.
///
/// # Safety
/// `arg` is what the caller passed to `ioctl`: for the requests handled
/// here, a pointer to the request's struct, whose pointers are valid.
pub unsafe fn ioctl(conn: &Conn, request: u64, arg: *mut u8) -> Result<i32> {
    let r = Request::decode(request);
    // SAFETY: the caller's guarantee, passed on to every handler below.
    unsafe {
        match (conn.kind, r.ty) {
            (Kind::Drm { .. }, b'd') => drm(conn, &r, arg),
            (Kind::SyncFile, sf::IOC_TYPE) => sync_file(conn, &r, arg),
            // DMA_BUF_IOCTL_SYNC: the memory is coherent, nothing to do.
            (Kind::DmaBuf, b'b') if r.nr == 0 => Ok(0),
            _ => Err(libc::ENOTTY),
        }
    }
}

/// # Safety
/// As [`ioctl`].
unsafe fn drm(conn: &Conn, r: &Request, arg: *mut u8) -> Result<i32> {
    // SAFETY: the caller's guarantee, passed on to every handler below.
    unsafe {
        match r.nr {
            dc::VERSION => version(conn, r, arg),
            dc::PRIME_HANDLE_TO_FD => prime_export(conn, r, arg),
            dc::PRIME_FD_TO_HANDLE => prime_import(conn, r, arg),
            vg::EXECBUFFER => execbuffer(conn, r, arg),
            vg::GETPARAM => {
                let g: la::GetParam = read_arg(arg, r.size)?;
                let mut wire = vg::GetParam {
                    param: g.param,
                    value: 0,
                };
                let v = call(conn, r.nr, wire.as_mut_bytes())?;
                // Linux writes an int through the pointer.
                copy_out(g.value, &(wire.value as i32).to_ne_bytes());
                Ok(v)
            }
            vg::GET_CAPS => {
                let c: la::GetCaps = read_arg(arg, r.size)?;
                let header = vg::GetCapsHeader {
                    cap_set_id: c.cap_set_id,
                    cap_set_ver: c.cap_set_ver,
                    size: c.size,
                    pad: c.pad,
                };
                let mut payload = Builder::new(&header).zeroed::<u8>(c.size as usize).build();
                let v = call(conn, r.nr, &mut payload)?;
                copy_out(c.addr, &payload[size_of::<vg::GetCapsHeader>()..]);
                Ok(v)
            }
            vg::CONTEXT_INIT => {
                let c: la::ContextInit = read_arg(arg, r.size)?;
                let params = user_bytes(c.ctx_set_params, c.num_params as usize * 16);
                let header = vg::ContextInitHeader {
                    num_params: c.num_params,
                    pad: c.pad,
                };
                let mut payload = Builder::new(&header).array(&params).build();
                call(conn, r.nr, &mut payload)
            }
            vg::RESOURCE_CREATE_BLOB => {
                let mut b: la::ResourceCreateBlob = read_arg(arg, r.size)?;
                let header = vg::ResourceCreateBlobHeader {
                    blob_mem: b.blob_mem,
                    blob_flags: b.blob_flags,
                    bo_handle: 0,
                    res_handle: 0,
                    size: b.size,
                    pad: b.pad,
                    cmd_size: b.cmd_size,
                    blob_id: b.blob_id,
                };
                let cmd = user_bytes(b.cmd, b.cmd_size as usize);
                let mut payload = Builder::new(&header).array(&cmd).build();
                let v = call(conn, r.nr, &mut payload)?;
                let (out, _) = vg::ResourceCreateBlobHeader::read_from_prefix(&payload)
                    .map_err(|_| libc::EIO)?;
                b.bo_handle = out.bo_handle;
                b.res_handle = out.res_handle;
                write_arg(arg, r.size, &b);
                Ok(v)
            }
            so::HANDLE_TO_FD => syncobj_export(conn, r, arg),
            so::FD_TO_HANDLE => syncobj_import(conn, r, arg),
            so::WAIT => syncobj_wait(conn, r, arg),
            so::TIMELINE_WAIT => syncobj_timeline_wait(conn, r, arg),
            so::RESET | so::SIGNAL => {
                let a: la::SyncobjArray = read_arg(arg, r.size)?;
                let handles = user_bytes(a.handles, a.count_handles as usize * 4);
                let header = so::Array {
                    count_handles: a.count_handles,
                    pad: a.pad,
                };
                call(
                    conn,
                    r.nr,
                    &mut Builder::new(&header).array(&handles).build(),
                )
            }
            so::QUERY | so::TIMELINE_SIGNAL => syncobj_timeline_array(conn, r, arg),
            // The same bytes on both sides: GET_CAP, SET_CLIENT_CAP,
            // GEM_CLOSE, MAP, RESOURCE_CREATE, RESOURCE_INFO, the
            // transfers, WAIT, and the syncobj CREATE, DESTROY, TRANSFER.
            so::CREATE
            | so::DESTROY
            | so::TRANSFER
            | dc::GET_CAP
            | dc::SET_CLIENT_CAP
            | dc::GEM_CLOSE
            | vg::MAP
            | vg::RESOURCE_CREATE
            | vg::RESOURCE_INFO
            | vg::TRANSFER_FROM_HOST
            | vg::TRANSFER_TO_HOST
            | vg::WAIT => {
                if arg.is_null() {
                    return Err(libc::EFAULT);
                }
                let mut payload = user_bytes(arg as u64, r.size);
                let v = call(conn, r.nr, &mut payload)?;
                copy_out(arg as u64, &payload);
                Ok(v)
            }
            // SYNCOBJ_EVENTFD (no wire form yet) and everything else.
            _ => Err(libc::EINVAL),
        }
    }
}

/// # Safety
/// As [`ioctl`].
unsafe fn version(conn: &Conn, r: &Request, arg: *mut u8) -> Result<i32> {
    // SAFETY: the caller's guarantee.
    let mut v: la::Version = unsafe { read_arg(arg, r.size)? };
    let header = dc::VersionHeader {
        name_len: v.name_len,
        date_len: v.date_len,
        desc_len: v.desc_len,
        ..dc::VersionHeader::new_zeroed()
    };
    let lens = [v.name_len, v.date_len, v.desc_len].map(|l| l as usize);
    let total: usize = lens.iter().sum();
    if total > drm_uapi::MAX_COUNT as usize {
        return Err(libc::EINVAL);
    }
    let mut payload = Builder::new(&header)
        .zeroed::<u8>(lens[0])
        .zeroed::<u8>(lens[1])
        .zeroed::<u8>(lens[2])
        .build();
    let ret = call(conn, r.nr, &mut payload)?;
    let (out, strings) = dc::VersionHeader::read_from_prefix(&payload).map_err(|_| libc::EIO)?;
    let mut at = 0;
    for (ptr, room, full) in [
        (v.name, lens[0], out.name_len),
        (v.date, lens[1], out.date_len),
        (v.desc, lens[2], out.desc_len),
    ] {
        let n = room.min(full as usize);
        // SAFETY: the caller gave `room` writable bytes at `ptr`.
        unsafe { copy_out(ptr, &strings[at..at + n]) };
        at += room;
    }
    v.version_major = out.version_major;
    v.version_minor = out.version_minor;
    v.version_patchlevel = out.version_patchlevel;
    v.name_len = out.name_len;
    v.date_len = out.date_len;
    v.desc_len = out.desc_len;
    // SAFETY: the caller's guarantee.
    unsafe { write_arg(arg, r.size, &v) };
    Ok(ret)
}

/// # Safety
/// As [`ioctl`].
unsafe fn prime_export(conn: &Conn, r: &Request, arg: *mut u8) -> Result<i32> {
    // SAFETY: the caller's guarantee.
    let mut h: la::PrimeHandle = unsafe { read_arg(arg, r.size)? };
    // The wire carries relibc's flag values.
    let mut flags = h.flags & !(la::O_CLOEXEC | la::O_RDWR);
    if h.flags & la::O_CLOEXEC != 0 {
        flags |= dc::PRIME_FLAG_CLOEXEC;
    }
    if h.flags & la::O_RDWR != 0 {
        flags |= dc::PRIME_FLAG_RDWR;
    }
    let wire = dc::PrimeHandle {
        handle: h.handle,
        flags,
        token: 0,
    };
    let mut buf = dc::PRIME_HANDLE_TO_FD.to_le_bytes().to_vec();
    buf.extend_from_slice(wire.as_bytes());
    h.fd = fd_from(conn, &buf, Kind::DmaBuf, h.flags & la::O_CLOEXEC != 0)?;
    // SAFETY: the caller's guarantee.
    unsafe { write_arg(arg, r.size, &h) };
    Ok(0)
}

/// # Safety
/// As [`ioctl`].
unsafe fn prime_import(conn: &Conn, r: &Request, arg: *mut u8) -> Result<i32> {
    // SAFETY: the caller's guarantee.
    let mut h: la::PrimeHandle = unsafe { read_arg(arg, r.size)? };
    let mut wire = dc::PrimeHandle {
        handle: 0,
        flags: 0,
        token: token_of(h.fd)?,
    };
    call(conn, r.nr, wire.as_mut_bytes())?;
    h.handle = wire.handle;
    // SAFETY: the caller's guarantee.
    unsafe { write_arg(arg, r.size, &h) };
    Ok(0)
}

/// # Safety
/// As [`ioctl`].
unsafe fn execbuffer(conn: &Conn, r: &Request, arg: *mut u8) -> Result<i32> {
    // SAFETY: the caller's guarantee.
    let mut e: la::Execbuffer = unsafe { read_arg(arg, r.size)? };
    let syncobjs = e.num_in_syncobjs > 0 || e.num_out_syncobjs > 0;
    if syncobjs && e.syncobj_stride as usize != size_of::<vg::ExecSyncobj>() {
        return Err(libc::EINVAL);
    }
    let header = vg::ExecbufferHeader {
        flags: e.flags,
        size: e.size,
        num_bo_handles: e.num_bo_handles,
        fence_fd: 0,
        ring_idx: e.ring_idx,
        syncobj_stride: e.syncobj_stride,
        num_in_syncobjs: e.num_in_syncobjs,
        num_out_syncobjs: e.num_out_syncobjs,
    };
    // SAFETY: the caller's pointers, with the lengths its counts give.
    let (command, bos, ins, outs) = unsafe {
        (
            user_bytes(e.command, e.size as usize),
            user_bytes(e.bo_handles, e.num_bo_handles as usize * 4),
            user_bytes(e.in_syncobjs, e.num_in_syncobjs as usize * 16),
            user_bytes(e.out_syncobjs, e.num_out_syncobjs as usize * 16),
        )
    };
    let mut b = Builder::new(&header)
        .array(&command)
        .array(&bos)
        .array(&ins)
        .array(&outs);
    if e.flags & vg::EXECBUF_FENCE_FD_IN != 0 {
        b = b.array(&[token_of(e.fence_fd)?]);
    }
    let mut payload = b.build();
    let v = call(conn, r.nr, &mut payload)?;
    if e.flags & vg::EXECBUF_FENCE_FD_OUT != 0 {
        let (out, _) = vg::ExecbufferHeader::read_from_prefix(&payload).map_err(|_| libc::EIO)?;
        let point = u64::try_from(out.fence_fd).map_err(|_| libc::EIO)?;
        let mut buf = vg::EXECBUFFER.to_le_bytes().to_vec();
        buf.extend_from_slice(&point.to_le_bytes());
        e.fence_fd = fd_from(conn, &buf, Kind::SyncFile, true)?;
        // SAFETY: the caller's guarantee.
        unsafe { write_arg(arg, r.size, &e) };
    }
    Ok(v)
}

/// # Safety
/// As [`ioctl`].
unsafe fn sync_file(conn: &Conn, r: &Request, arg: *mut u8) -> Result<i32> {
    match r.nr {
        sf::MERGE => {
            // SAFETY: the caller's guarantee.
            let mut m: la::Merge = unsafe { read_arg(arg, r.size)? };
            let wire = sf::Merge {
                name: m.name,
                token: token_of(m.fd2)?,
                fence: 0,
                flags: m.flags,
                pad: m.pad,
                pad2: 0,
            };
            m.fence = fd_from(conn, wire.as_bytes(), Kind::SyncFile, true)?;
            // SAFETY: the caller's guarantee.
            unsafe { write_arg(arg, r.size, &m) };
            Ok(0)
        }
        sf::FILE_INFO => {
            // SAFETY: the caller's guarantee.
            let mut i: la::FileInfo = unsafe { read_arg(arg, r.size)? };
            let room = if i.sync_fence_info == 0 {
                0
            } else {
                i.num_fences
            };
            let header = sf::FileInfoHeader {
                name: i.name,
                status: i.status,
                flags: i.flags,
                num_fences: room,
                pad: i.pad,
            };
            let mut payload = Builder::new(&header)
                .zeroed::<sf::FenceInfo>(room as usize)
                .build();
            let v = call(conn, r.nr, &mut payload)?;
            let (out, fences) =
                sf::FileInfoHeader::read_from_prefix(&payload).map_err(|_| libc::EIO)?;
            // SAFETY: the caller gave room for `room` fences.
            unsafe { copy_out(i.sync_fence_info, fences) };
            i.name = out.name;
            i.status = out.status;
            i.num_fences = out.num_fences;
            // SAFETY: the caller's guarantee.
            unsafe { write_arg(arg, r.size, &i) };
            Ok(v)
        }
        _ => Err(libc::ENOTTY),
    }
}

/// # Safety
/// As [`ioctl`].
unsafe fn syncobj_export(conn: &Conn, r: &Request, arg: *mut u8) -> Result<i32> {
    // SAFETY: the caller's guarantee.
    let mut h: la::SyncobjHandle = unsafe { read_arg(arg, r.size)? };
    if h.pad != 0 {
        return Err(libc::EINVAL);
    }
    let wire = so::HandleToFd {
        handle: h.handle,
        flags: h.flags,
        token: 0,
        point: h.point,
    };
    let mut buf = so::HANDLE_TO_FD.to_le_bytes().to_vec();
    buf.extend_from_slice(wire.as_bytes());
    let kind = if h.flags & so::HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE != 0 {
        Kind::SyncFile
    } else {
        Kind::Syncobj
    };
    h.fd = fd_from(conn, &buf, kind, true)?;
    // SAFETY: the caller's guarantee.
    unsafe { write_arg(arg, r.size, &h) };
    Ok(0)
}

/// # Safety
/// As [`ioctl`].
unsafe fn syncobj_import(conn: &Conn, r: &Request, arg: *mut u8) -> Result<i32> {
    // SAFETY: the caller's guarantee.
    let mut h: la::SyncobjHandle = unsafe { read_arg(arg, r.size)? };
    if h.pad != 0 {
        return Err(libc::EINVAL);
    }
    let mut wire = so::FdToHandle {
        handle: h.handle,
        flags: h.flags,
        token: token_of(h.fd)?,
        point: h.point,
    };
    call(conn, r.nr, wire.as_mut_bytes())?;
    h.handle = wire.handle;
    // SAFETY: the caller's guarantee.
    unsafe { write_arg(arg, r.size, &h) };
    Ok(0)
}

/// # Safety
/// As [`ioctl`].
unsafe fn syncobj_wait(conn: &Conn, r: &Request, arg: *mut u8) -> Result<i32> {
    // SAFETY: the caller's guarantee.
    let mut w: la::SyncobjWait = unsafe { read_arg(arg, r.size)? };
    let header = so::WaitHeader {
        timeout_nsec: w.timeout_nsec,
        count_handles: w.count_handles,
        flags: w.flags,
        first_signaled: 0,
        pad: w.pad,
        deadline_nsec: w.deadline_nsec,
    };
    // SAFETY: the caller's pointer, with the length its count gives.
    let handles = unsafe { user_bytes(w.handles, w.count_handles as usize * 4) };
    let mut payload = Builder::new(&header).array(&handles).build();
    let v = call(conn, r.nr, &mut payload)?;
    let (out, _) = so::WaitHeader::read_from_prefix(&payload).map_err(|_| libc::EIO)?;
    w.first_signaled = out.first_signaled;
    // SAFETY: the caller's guarantee.
    unsafe { write_arg(arg, r.size, &w) };
    Ok(v)
}

/// # Safety
/// As [`ioctl`].
unsafe fn syncobj_timeline_wait(conn: &Conn, r: &Request, arg: *mut u8) -> Result<i32> {
    // SAFETY: the caller's guarantee.
    let mut w: la::SyncobjTimelineWait = unsafe { read_arg(arg, r.size)? };
    let header = so::TimelineWaitHeader {
        timeout_nsec: w.timeout_nsec,
        count_handles: w.count_handles,
        flags: w.flags,
        first_signaled: 0,
        pad: w.pad,
        deadline_nsec: w.deadline_nsec,
    };
    let n = w.count_handles as usize;
    // SAFETY: the caller's pointers, with the lengths its count gives.
    let (handles, points) = unsafe { (user_bytes(w.handles, n * 4), user_bytes(w.points, n * 8)) };
    let mut payload = Builder::new(&header).array(&handles).array(&points).build();
    let v = call(conn, r.nr, &mut payload)?;
    let (out, _) = so::TimelineWaitHeader::read_from_prefix(&payload).map_err(|_| libc::EIO)?;
    w.first_signaled = out.first_signaled;
    // SAFETY: the caller's guarantee.
    unsafe { write_arg(arg, r.size, &w) };
    Ok(v)
}

/// QUERY (points written back) and TIMELINE_SIGNAL.
///
/// # Safety
/// As [`ioctl`].
unsafe fn syncobj_timeline_array(conn: &Conn, r: &Request, arg: *mut u8) -> Result<i32> {
    // SAFETY: the caller's guarantee.
    let a: la::SyncobjTimelineArray = unsafe { read_arg(arg, r.size)? };
    let n = a.count_handles as usize;
    // SAFETY: the caller's pointers, with the lengths its count gives.
    let (handles, points) = unsafe { (user_bytes(a.handles, n * 4), user_bytes(a.points, n * 8)) };
    let header = so::TimelineArray {
        count_handles: a.count_handles,
        flags: a.flags,
    };
    let mut payload = Builder::new(&header).array(&handles).array(&points).build();
    let v = call(conn, r.nr, &mut payload)?;
    if r.nr == so::QUERY {
        let at = size_of::<so::TimelineArray>() + handles.len();
        let out = payload.get(at..at + points.len()).ok_or(libc::EIO)?;
        // SAFETY: the caller gave room for `n` points.
        unsafe { copy_out(a.points, out) };
    }
    Ok(v)
}
