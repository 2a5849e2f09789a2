//! Linux ioctls on a bus handle, re-packed into the wire encoding relibc
//! uses (`drm_uapi`): the daemon receives the bytes it would receive on
//! Redox. Pointed-to arrays are read from (and written back to) the
//! caller's memory through [`user`], so a bad pointer is EFAULT; fds become
//! capability tokens on the way in, and fds coming back are obtained by
//! `dup` as docs/DRM.md says.
//!
//! The shim validates nothing the daemon validates: it only refuses to
//! read what the wire does not carry (an array over its cap, an OUT array
//! longer than any answer), so the daemon answers every malformed request
//! in Linux's order.

use std::os::fd::OwnedFd;

use drm_uapi::core::{self as dc};
use drm_uapi::sync_file as sf;
use drm_uapi::syncobj as so;
use drm_uapi::virtgpu::{self as vg};
use drm_uapi::wire::{carried, carried_bytes, Builder, MAX_COUNT};
use scheme_seam::token;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

use crate::conns::{self, Conn, Kind};
use crate::user::{self, fault_answer, in_array, InArray, Null};
use drm_uapi::linux as la;

/// An ioctl's outcome: a return value or an errno.
pub type Result<T> = std::result::Result<T, i32>;

/// The fields of a Linux request number.
struct Request {
    ty: u8,
    nr: u64,
    size: usize,
    full: u32,
}

impl Request {
    fn decode(request: u64) -> Request {
        Request {
            ty: (request >> 8) as u8,
            nr: request & 0xFF,
            size: ((request >> 16) & 0x3FFF) as usize,
            full: request as u32,
        }
    }
}

fn io(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// The daemon's answer to `nr` with `payload`: its return value.
fn call(conn: &Conn, nr: u64, payload: &mut [u8]) -> Result<usize> {
    conn.fd.call(payload, &[nr]).map_err(io)
}

/// The value an ioctl returns for a daemon's return value.
fn ret(v: usize) -> i32 {
    v as i32
}

/// The capability token naming the caller's fd `fd` in a request; for an
/// fd that is no bus handle with a token, the sentinel saying whether it
/// is open at all, so the daemon can answer as Linux does for it.
fn token_of(fd: i32) -> u64 {
    if let Some(conn) = conns::get(fd) {
        let mut out = [0u8; 8];
        return match conn.fd.call(&mut out, &[token::CALL]) {
            Ok(_) => u64::from_le_bytes(out),
            Err(_) => token::NOT_A_HANDLE,
        };
    }
    // SAFETY: F_GETFD reads the descriptor's flags; any fd number is valid.
    if fd < 0 || unsafe { crate::real::fcntl64(fd, libc::F_GETFD, 0) } < 0 {
        token::NOT_OPEN
    } else {
        token::NOT_A_HANDLE
    }
}

/// Finishes an fd-returning ioctl: `dup(conn, buf)`, adopted as `kind`.
fn fd_from(conn: &Conn, buf: &[u8], kind: Kind, cloexec: bool) -> Result<i32> {
    let fd: OwnedFd = conn.fd.dup(buf).map_err(io)?;
    conns::adopt(fd, kind, cloexec)
}

/// A caller's array of `count` elements of `elem` bytes at `ptr`, carried
/// if the wire's cap allows.
fn elements(ptr: u64, count: u32, elem: usize, null: Null) -> InArray {
    in_array(ptr, count, elem, carried(count), null)
}

/// Serves `request` with argument `arg` (the caller's pointer) on `conn`;
/// every access to the caller's memory is checked (EFAULT).
pub fn ioctl(conn: &Conn, request: u64, arg: u64) -> Result<i32> {
    let r = Request::decode(request);
    match (conn.kind, r.ty) {
        (Kind::Drm { .. }, b'd') => drm(conn, &r, arg),
        (Kind::SyncFile, sf::IOC_TYPE) => sync_file(conn, &r, arg),
        // DMA_BUF_IOCTL_SYNC: the memory is coherent, nothing to do.
        (Kind::DmaBuf, b'b') if r.nr == 0 => Ok(0),
        _ => Err(libc::ENOTTY),
    }
}

fn drm(conn: &Conn, r: &Request, arg: u64) -> Result<i32> {
    match r.nr {
        dc::VERSION => version(conn, r, arg),
        dc::GET_UNIQUE => {
            let mut u: la::Unique = user::read_arg(arg, r.size)?;
            let header = dc::UniqueHeader {
                unique_len: u.unique_len.min(u64::from(MAX_COUNT)),
            };
            let mut payload = Builder::new(&header)
                .zeroed::<u8>(header.unique_len as usize)
                .build();
            let v = call(conn, r.nr, &mut payload)?;
            let (out, id) = dc::UniqueHeader::read_from_prefix(&payload).map_err(|_| libc::EIO)?;
            // Linux copies the bus id only into room enough for all of it.
            if u.unique_len >= out.unique_len {
                user::write(
                    u.unique,
                    id.get(..out.unique_len as usize).ok_or(libc::EIO)?,
                )?;
            }
            u.unique_len = out.unique_len;
            user::write_arg(arg, r.size, &u)?;
            Ok(ret(v))
        }
        dc::PRIME_HANDLE_TO_FD => prime_export(conn, r, arg),
        dc::PRIME_FD_TO_HANDLE => prime_import(conn, r, arg),
        vg::EXECBUFFER => execbuffer(conn, r, arg),
        vg::GETPARAM => {
            let g: la::GetParam = user::read_arg(arg, r.size)?;
            let mut wire = vg::GetParam {
                param: g.param,
                value: 0,
            };
            let v = call(conn, r.nr, wire.as_mut_bytes())?;
            // Linux writes an int through the pointer.
            user::write(g.value, &(wire.value as i32).to_ne_bytes())?;
            Ok(ret(v))
        }
        vg::GET_CAPS => get_caps(conn, r, arg),
        vg::CONTEXT_INIT => {
            let c: la::ContextInit = user::read_arg(arg, r.size)?;
            let params = elements(c.ctx_set_params, c.num_params, 16, Null::Faults);
            let header = vg::ContextInitHeader {
                num_params: params.count,
                pad: c.pad,
            };
            let mut payload = Builder::new(&header).array(&params.bytes).build();
            fault_answer(call(conn, r.nr, &mut payload), params.faulted).map(ret)
        }
        vg::RESOURCE_CREATE_BLOB => {
            let mut b: la::ResourceCreateBlob = user::read_arg(arg, r.size)?;
            let cmd = in_array(
                b.cmd,
                b.cmd_size,
                1,
                carried_bytes(b.cmd_size),
                Null::Faults,
            );
            let header = vg::ResourceCreateBlobHeader {
                blob_mem: b.blob_mem,
                blob_flags: b.blob_flags,
                bo_handle: 0,
                res_handle: 0,
                size: b.size,
                pad: b.pad,
                cmd_size: cmd.count,
                blob_id: b.blob_id,
            };
            let mut payload = Builder::new(&header).array(&cmd.bytes).build();
            let v = fault_answer(call(conn, r.nr, &mut payload), cmd.faulted)?;
            let (out, _) =
                vg::ResourceCreateBlobHeader::read_from_prefix(&payload).map_err(|_| libc::EIO)?;
            b.bo_handle = out.bo_handle;
            b.res_handle = out.res_handle;
            user::write_arg(arg, r.size, &b)?;
            Ok(ret(v))
        }
        so::HANDLE_TO_FD => syncobj_export(conn, r, arg),
        so::FD_TO_HANDLE => syncobj_import(conn, r, arg),
        so::WAIT => syncobj_wait(conn, r, arg),
        so::TIMELINE_WAIT => syncobj_timeline_wait(conn, r, arg),
        so::RESET | so::SIGNAL => {
            let a: la::SyncobjArray = user::read_arg(arg, r.size)?;
            let handles = elements(a.handles, a.count_handles, 4, Null::Faults);
            let header = so::Array {
                count_handles: handles.count,
                pad: a.pad,
            };
            let mut payload = Builder::new(&header).array(&handles.bytes).build();
            fault_answer(call(conn, r.nr, &mut payload), handles.faulted).map(ret)
        }
        so::QUERY | so::TIMELINE_SIGNAL => syncobj_timeline_array(conn, r, arg),
        // Everything else has no pointer in its struct: the struct's bytes
        drm_uapi::kms::ATOMIC => atomic(conn, r, arg),
        // KMS ioctls are packed from their one table of shapes.
        nr if drm_uapi::kms::layout(nr).is_some() => {
            let layout = drm_uapi::kms::layout(nr).expect("just matched");
            kms(conn, r, arg, &layout)
        }
        // go as they are and come back, zero-extended or cut to the wire's
        // size as Linux's drm_ioctl does with a shorter or longer struct.
        // An ioctl the shim does not know goes as the caller's bytes:
        // drmd answers as Linux's table says (EACCES on a render node,
        // EINVAL for no ioctl, and so on).
        nr => {
            let size = passthrough_size(nr).unwrap_or(r.size);
            let mut payload = vec![0u8; size];
            let n = size.min(r.size);
            payload[..n].copy_from_slice(&user::read(arg, n)?);
            let v = call(conn, nr, &mut payload)?;
            user::write(arg, &payload[..n])?;
            Ok(ret(v))
        }
    }
}

/// A KMS ioctl, packed by its [`drm_uapi::kms::Layout`]: the non-pointer
/// fields, then each array read from the caller (an array whose pointer
/// faults goes as not carried, with its count, so the daemon answers in
/// Linux's order; NULL is zeros). The daemon's arrays are copied back
/// whole (an OUT array holds the caller's bytes wherever the daemon wrote
/// nothing), then the fields.
fn kms(conn: &Conn, r: &Request, arg: u64, layout: &drm_uapi::kms::Layout) -> Result<i32> {
    let mut linux = vec![0u8; layout.linux];
    let n = r.size.min(layout.linux);
    if arg == 0 && n > 0 {
        return Err(libc::EFAULT);
    }
    linux[..n].copy_from_slice(&user::read(arg, n)?);
    let u32_at =
        |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
    let u64_at =
        |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let mut arrays: Vec<InArray> = layout
        .arrays
        .iter()
        .map(|a| {
            let count = u32_at(&linux, a.count);
            // Byte arrays (blob data) are carried up to MAX_BYTES, as relibc.
            let carried = match a.elem {
                1 => carried_bytes(count),
                _ => carried(count),
            };
            in_array(u64_at(&linux, a.ptr), count, a.elem, carried, Null::Zeros)
        })
        .collect();
    // A faulted array's count is NOT_CARRIED, and so are the arrays it
    // counts with.
    let faulted = arrays.iter().any(|a| a.faulted);
    let mut header = layout.wire_header(&linux);
    for (i, a) in layout.arrays.iter().enumerate() {
        if !arrays[i].faulted {
            continue;
        }
        for (j, b) in layout.arrays.iter().enumerate() {
            if b.count == a.count {
                arrays[j].bytes.clear();
            }
        }
        // Where the count sits in the wire header.
        let mut at = 0;
        for &(off, len) in layout.fields {
            if (off..off + len).contains(&a.count) {
                let w = at + a.count - off;
                header[w..w + 4].copy_from_slice(&user::NOT_CARRIED.to_le_bytes());
            }
            at += len;
        }
    }
    let mut payload = header;
    for a in &arrays {
        payload.extend_from_slice(&a.bytes);
    }
    let v = fault_answer(call(conn, r.nr, &mut payload), faulted)?;
    let mut at = layout.header();
    for (spec, a) in layout.arrays.iter().zip(&arrays) {
        let len = a.bytes.len();
        let ptr = u64_at(&linux, spec.ptr);
        if spec.out && ptr != 0 {
            user::write(ptr, &payload[at..at + len])?;
        }
        at += len;
    }
    let mut at = 0;
    for &(off, len) in layout.fields {
        linux[off..off + len].copy_from_slice(&payload[at..at + len]);
        at += len;
    }
    user::write(arg, &linux[..n])?;
    Ok(ret(v))
}

/// ATOMIC: the objects, their property counts, then as many property ids
/// and values as the counts add up to (the wire's one derived count). An
/// IN_FENCE_FD value goes as the fd's token; an OUT_FENCE_PTR value as 1,
/// and the slot the daemon answers in its place becomes a sync_file whose
/// fd is written where the caller's pointer points (-1 when the commit
/// failed or was TEST_ONLY, as Linux's `complete_signaling`). Any array
/// that cannot be read leaves them all out, which the daemon answers
/// ENOMEM when it reaches them: EFAULT, in Linux's order.
fn atomic(conn: &Conn, r: &Request, arg: u64) -> Result<i32> {
    use drm_uapi::kms as k;
    let l: la::Atomic = user::read_arg(arg, r.size)?;
    let objs = elements(l.objs_ptr, l.count_objs, 4, Null::Faults);
    let counts = elements(l.count_props_ptr, l.count_objs, 4, Null::Faults);
    let total: u64 = counts
        .bytes
        .chunks_exact(4)
        .map(|c| u64::from(u32::from_le_bytes(c.try_into().expect("4 bytes"))))
        .sum();
    let total = u32::try_from(total).unwrap_or(u32::MAX);
    let ids = elements(l.props_ptr, total, 4, Null::Faults);
    let mut values = elements(l.prop_values_ptr, total, 8, Null::Faults);
    let faulted = [&objs, &counts, &ids, &values].iter().any(|a| a.faulted);
    let ids_of: Vec<u32> = ids
        .bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    let mut out_ptrs = Vec::new();
    for (i, id) in ids_of.iter().enumerate() {
        let Some(v) = values.bytes.get_mut(i * 8..i * 8 + 8) else {
            break;
        };
        let value = u64::from_le_bytes((&*v).try_into().expect("8 bytes"));
        let sent = match *id {
            k::PROP_IN_FENCE_FD if value as i64 != -1 => token_of(value as i32),
            k::PROP_OUT_FENCE_PTR if value != 0 => {
                out_ptrs.push((i, value));
                1
            }
            _ => value,
        };
        v.copy_from_slice(&sent.to_le_bytes());
    }
    let header = k::AtomicHeader {
        flags: l.flags,
        count_objs: if faulted {
            user::NOT_CARRIED
        } else {
            l.count_objs
        },
        reserved: l.reserved,
        user_data: l.user_data,
    };
    let mut b = Builder::new(&header);
    if !faulted {
        b = b
            .array(&objs.bytes)
            .array(&counts.bytes)
            .array(&ids.bytes)
            .array(&values.bytes);
    }
    let mut payload = b.build();
    let answer = fault_answer(call(conn, r.nr, &mut payload), faulted);
    let installed = answer.is_ok() && l.flags & k::flip::TEST_ONLY == 0;
    let values_at =
        size_of::<k::AtomicHeader>() + objs.bytes.len() + counts.bytes.len() + ids.bytes.len();
    for (i, ptr) in out_ptrs {
        let fd = match installed {
            true => {
                let at = values_at + i * 8;
                let slot = u64::from_le_bytes(payload[at..at + 8].try_into().expect("8 bytes"));
                let mut buf = k::ATOMIC.to_le_bytes().to_vec();
                buf.extend_from_slice(&slot.to_le_bytes());
                fd_from(conn, &buf, Kind::SyncFile, true)?
            }
            false => -1,
        };
        user::write(ptr, &fd.to_le_bytes())?;
    }
    answer.map(ret)
}

/// The wire size of an ioctl whose struct has no pointer (the same bytes
/// as Linux's struct).
fn passthrough_size(nr: u64) -> Option<usize> {
    Some(match nr {
        dc::GET_CAP => size_of::<dc::GetCap>(),
        dc::SET_CLIENT_CAP => size_of::<dc::SetClientCap>(),
        dc::GEM_CLOSE => size_of::<dc::GemClose>(),
        vg::MAP => size_of::<vg::Map>(),
        vg::RESOURCE_CREATE => size_of::<vg::ResourceCreate>(),
        vg::RESOURCE_INFO => size_of::<vg::ResourceInfo>(),
        vg::TRANSFER_FROM_HOST | vg::TRANSFER_TO_HOST => size_of::<vg::Transfer>(),
        vg::WAIT => size_of::<vg::Wait>(),
        so::CREATE => size_of::<so::Create>(),
        so::DESTROY => size_of::<so::Destroy>(),
        so::TRANSFER => size_of::<so::Transfer>(),
        _ => return None,
    })
}

/// VERSION: each string's room is carried up to the wire's cap (no
/// string is longer), and only what the daemon wrote is copied back.
fn version(conn: &Conn, r: &Request, arg: u64) -> Result<i32> {
    let mut v: la::Version = user::read_arg(arg, r.size)?;
    let room = |len: u64| len.min(u64::from(MAX_COUNT));
    let header = dc::VersionHeader {
        name_len: room(v.name_len),
        date_len: room(v.date_len),
        desc_len: room(v.desc_len),
        ..dc::VersionHeader::new_zeroed()
    };
    let lens = [header.name_len, header.date_len, header.desc_len].map(|l| l as usize);
    let mut payload = Builder::new(&header)
        .zeroed::<u8>(lens[0])
        .zeroed::<u8>(lens[1])
        .zeroed::<u8>(lens[2])
        .build();
    let v_ret = call(conn, r.nr, &mut payload)?;
    let (out, strings) = dc::VersionHeader::read_from_prefix(&payload).map_err(|_| libc::EIO)?;
    let mut at = 0;
    for (ptr, room, full) in [
        (v.name, lens[0], out.name_len),
        (v.date, lens[1], out.date_len),
        (v.desc, lens[2], out.desc_len),
    ] {
        let n = room.min(full as usize);
        // Linux copies nothing to a NULL pointer and does not fail.
        if ptr != 0 {
            user::write(ptr, &strings[at..at + n])?;
        }
        at += room;
    }
    v.version_major = out.version_major;
    v.version_minor = out.version_minor;
    v.version_patchlevel = out.version_patchlevel;
    v.name_len = out.name_len;
    v.date_len = out.date_len;
    v.desc_len = out.desc_len;
    user::write_arg(arg, r.size, &v)?;
    Ok(ret(v_ret))
}

/// GET_CAPS: the room is carried up to the wire's cap (no capset is
/// larger); the daemon answers how many bytes it wrote, which are all that
/// is copied back — Linux copies what fits and leaves the rest alone.
fn get_caps(conn: &Conn, r: &Request, arg: u64) -> Result<i32> {
    let c: la::GetCaps = user::read_arg(arg, r.size)?;
    let header = vg::GetCapsHeader {
        cap_set_id: c.cap_set_id,
        cap_set_ver: c.cap_set_ver,
        size: c.size.min(MAX_COUNT),
        pad: c.pad,
    };
    let mut payload = Builder::new(&header)
        .zeroed::<u8>(header.size as usize)
        .build();
    let written = call(conn, r.nr, &mut payload)?;
    let data = &payload[size_of::<vg::GetCapsHeader>()..];
    user::write(c.addr, &data[..written.min(data.len())])?;
    Ok(0)
}

fn prime_export(conn: &Conn, r: &Request, arg: u64) -> Result<i32> {
    let mut h: la::PrimeHandle = user::read_arg(arg, r.size)?;
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
    user::write_arg(arg, r.size, &h)?;
    Ok(0)
}

fn prime_import(conn: &Conn, r: &Request, arg: u64) -> Result<i32> {
    let mut h: la::PrimeHandle = user::read_arg(arg, r.size)?;
    let mut wire = dc::PrimeHandle {
        handle: 0,
        flags: h.flags,
        token: token_of(h.fd),
    };
    call(conn, r.nr, wire.as_mut_bytes())?;
    h.handle = wire.handle;
    user::write_arg(arg, r.size, &h)?;
    Ok(0)
}

/// The caller's syncobj descriptors, `stride` bytes apart, as Linux reads
/// them: `min(stride, 16)` bytes of each, the rest zero (a stride of 0
/// reads nothing and makes every descriptor zero).
fn syncobj_descs(ptr: u64, count: u32, stride: u32) -> InArray {
    const DESC: usize = size_of::<vg::ExecSyncobj>();
    if !carried(count) || stride as usize == DESC || count == 0 {
        return elements(ptr, count, DESC, Null::Faults);
    }
    let take = (stride as usize).min(DESC);
    let mut bytes = vec![0u8; count as usize * DESC];
    for (i, desc) in bytes.chunks_exact_mut(DESC).enumerate() {
        let at = ptr.wrapping_add(i as u64 * u64::from(stride));
        let one = in_array(at, take as u32, 1, true, Null::Faults);
        if one.faulted {
            return InArray {
                bytes: Vec::new(),
                count: user::NOT_CARRIED,
                faulted: true,
            };
        }
        desc[..take].copy_from_slice(&one.bytes);
    }
    InArray {
        bytes,
        count,
        faulted: false,
    }
}

fn execbuffer(conn: &Conn, r: &Request, arg: u64) -> Result<i32> {
    let mut e: la::Execbuffer = user::read_arg(arg, r.size)?;
    let command = in_array(e.command, e.size, 1, carried_bytes(e.size), Null::Faults);
    let bos = elements(e.bo_handles, e.num_bo_handles, 4, Null::Faults);
    let ins = syncobj_descs(e.in_syncobjs, e.num_in_syncobjs, e.syncobj_stride);
    let outs = syncobj_descs(e.out_syncobjs, e.num_out_syncobjs, e.syncobj_stride);
    let faulted = command.faulted || bos.faulted || ins.faulted || outs.faulted;
    let header = vg::ExecbufferHeader {
        flags: e.flags,
        size: command.count,
        num_bo_handles: bos.count,
        fence_fd: 0,
        ring_idx: e.ring_idx,
        syncobj_stride: e.syncobj_stride,
        num_in_syncobjs: ins.count,
        num_out_syncobjs: outs.count,
    };
    let mut b = Builder::new(&header)
        .array(&command.bytes)
        .array(&bos.bytes)
        .array(&ins.bytes)
        .array(&outs.bytes);
    if e.flags & vg::EXECBUF_FENCE_FD_IN != 0 {
        b = b.array(&[token_of(e.fence_fd)]);
    }
    let mut payload = b.build();
    let v = fault_answer(call(conn, r.nr, &mut payload), faulted)?;
    if e.flags & vg::EXECBUF_FENCE_FD_OUT != 0 {
        let (out, _) = vg::ExecbufferHeader::read_from_prefix(&payload).map_err(|_| libc::EIO)?;
        // The daemon named the out-fence by a slot of the file's.
        let slot = u64::try_from(out.fence_fd).map_err(|_| libc::EIO)?;
        let mut buf = vg::EXECBUFFER.to_le_bytes().to_vec();
        buf.extend_from_slice(&slot.to_le_bytes());
        e.fence_fd = fd_from(conn, &buf, Kind::SyncFile, true)?;
        user::write_arg(arg, r.size, &e)?;
    }
    Ok(ret(v))
}

/// sync_file ioctls, matched on the whole request number as Linux does
/// (another size or direction is ENOTTY).
fn sync_file(conn: &Conn, r: &Request, arg: u64) -> Result<i32> {
    match r.full {
        sf::IOC_MERGE => {
            let mut m: la::Merge = user::read_arg(arg, r.size)?;
            let wire = sf::Merge {
                name: m.name,
                token: token_of(m.fd2),
                fence: 0,
                flags: m.flags,
                pad: m.pad,
                pad2: 0,
            };
            m.fence = fd_from(conn, wire.as_bytes(), Kind::SyncFile, true)?;
            user::write_arg(arg, r.size, &m)?;
            Ok(0)
        }
        sf::IOC_FILE_INFO => {
            let mut i: la::FileInfo = user::read_arg(arg, r.size)?;
            // Room for more fences than a sync_file can hold is pointless:
            // Linux writes only the fences there are.
            let room = i.num_fences.min(MAX_COUNT);
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
            if room > 0 {
                let n = (out.num_fences.min(room) as usize) * size_of::<sf::FenceInfo>();
                user::write(i.sync_fence_info, &fences[..n])?;
            }
            i.name = out.name;
            i.status = out.status;
            i.num_fences = out.num_fences;
            user::write_arg(arg, r.size, &i)?;
            Ok(ret(v))
        }
        sf::IOC_SET_DEADLINE => {
            let mut d: sf::SetDeadline = user::read_arg(arg, r.size)?;
            call(conn, r.nr, d.as_mut_bytes()).map(ret)
        }
        _ => Err(libc::ENOTTY),
    }
}

/// Linux's first check of HANDLE_TO_FD and FD_TO_HANDLE, on a field the
/// wire has no room for (the token takes the fd's and the pad's place).
fn no_pad(h: &la::SyncobjHandle) -> Result<()> {
    if h.pad != 0 {
        return Err(libc::EINVAL);
    }
    Ok(())
}

fn syncobj_export(conn: &Conn, r: &Request, arg: u64) -> Result<i32> {
    let mut h: la::SyncobjHandle = user::read_arg(arg, r.size)?;
    no_pad(&h)?;
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
    user::write_arg(arg, r.size, &h)?;
    Ok(0)
}

fn syncobj_import(conn: &Conn, r: &Request, arg: u64) -> Result<i32> {
    let mut h: la::SyncobjHandle = user::read_arg(arg, r.size)?;
    no_pad(&h)?;
    let mut wire = so::FdToHandle {
        handle: h.handle,
        flags: h.flags,
        token: token_of(h.fd),
        point: h.point,
    };
    call(conn, r.nr, wire.as_mut_bytes())?;
    h.handle = wire.handle;
    user::write_arg(arg, r.size, &h)?;
    Ok(0)
}

fn syncobj_wait(conn: &Conn, r: &Request, arg: u64) -> Result<i32> {
    let mut w: la::SyncobjWait = user::read_arg(arg, r.size)?;
    let handles = elements(w.handles, w.count_handles, 4, Null::Faults);
    let header = so::WaitHeader {
        timeout_nsec: w.timeout_nsec,
        count_handles: handles.count,
        flags: w.flags,
        first_signaled: 0,
        pad: w.pad,
        deadline_nsec: w.deadline_nsec,
    };
    let mut payload = Builder::new(&header).array(&handles.bytes).build();
    let v = fault_answer(call(conn, r.nr, &mut payload), handles.faulted)?;
    let (out, _) = so::WaitHeader::read_from_prefix(&payload).map_err(|_| libc::EIO)?;
    w.first_signaled = out.first_signaled;
    user::write_arg(arg, r.size, &w)?;
    Ok(ret(v))
}

fn syncobj_timeline_wait(conn: &Conn, r: &Request, arg: u64) -> Result<i32> {
    let mut w: la::SyncobjTimelineWait = user::read_arg(arg, r.size)?;
    let n = w.count_handles;
    let handles = elements(w.handles, n, 4, Null::Faults);
    // NULL points are all 0 in Linux.
    let points = elements(w.points, n, 8, Null::Zeros);
    let faulted = handles.faulted || points.faulted;
    let count = if faulted { user::NOT_CARRIED } else { n };
    let header = so::TimelineWaitHeader {
        timeout_nsec: w.timeout_nsec,
        count_handles: count,
        flags: w.flags,
        first_signaled: 0,
        pad: w.pad,
        deadline_nsec: w.deadline_nsec,
    };
    let mut b = Builder::new(&header);
    if !faulted {
        b = b.array(&handles.bytes).array(&points.bytes);
    }
    let mut payload = b.build();
    let v = fault_answer(call(conn, r.nr, &mut payload), faulted)?;
    let (out, _) = so::TimelineWaitHeader::read_from_prefix(&payload).map_err(|_| libc::EIO)?;
    w.first_signaled = out.first_signaled;
    user::write_arg(arg, r.size, &w)?;
    Ok(ret(v))
}

/// QUERY (points written back) and TIMELINE_SIGNAL.
fn syncobj_timeline_array(conn: &Conn, r: &Request, arg: u64) -> Result<i32> {
    let a: la::SyncobjTimelineArray = user::read_arg(arg, r.size)?;
    let n = a.count_handles;
    let handles = elements(a.handles, n, 4, Null::Faults);
    // QUERY's points are OUT only; TIMELINE_SIGNAL takes NULL as all 0.
    let points = match r.nr {
        so::QUERY => InArray {
            bytes: vec![0; if carried(n) { n as usize * 8 } else { 0 }],
            count: n,
            faulted: false,
        },
        _ => elements(a.points, n, 8, Null::Zeros),
    };
    let faulted = handles.faulted || points.faulted;
    let header = so::TimelineArray {
        count_handles: if faulted { user::NOT_CARRIED } else { n },
        flags: a.flags,
    };
    let mut b = Builder::new(&header);
    if !faulted {
        b = b.array(&handles.bytes).array(&points.bytes);
    }
    let mut payload = b.build();
    let v = fault_answer(call(conn, r.nr, &mut payload), faulted)?;
    if r.nr == so::QUERY {
        let at = size_of::<so::TimelineArray>() + handles.bytes.len();
        let out = payload.get(at..at + points.bytes.len()).ok_or(libc::EIO)?;
        user::write(a.points, out)?;
    }
    Ok(ret(v))
}
