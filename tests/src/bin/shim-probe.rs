//! A Linux program that uses a DRM render node through the plain C library
//! — `open`, `ioctl` with Linux's structs, `poll`, `mmap`, `dup`, `fstat` —
//! for what Mesa's tests do not reach: PRIME between two files, sync_file
//! out-fences polled, merged and described, GETPARAM's int pointer,
//! syncobjs (signalled by a submit, waited, exported as a sync_file and
//! imported, timeline points, reset, destroyed), and a dup outliving its
//! original. Run under the shim (`drmd::mesa`); prints
//! "probe ok" or what was wrong (exit 1).

use std::ffi::CString;
use std::process::ExitCode;

use drm_uapi::core as dc;
use drm_uapi::linux::{
    Execbuffer, FileInfo, GetParam, Merge as MergeData, PrimeHandle, SyncobjArray, SyncobjHandle,
    SyncobjTimelineArray, SyncobjWait,
};
use drm_uapi::sync_file as sf;
use drm_uapi::syncobj as so;
use drm_uapi::virtgpu::{self as vg, Box3d, Map, ResourceCreate, ResourceInfo, Transfer, Wait};
use zerocopy::FromZeros;

const W: u32 = 32;
const H: u32 = 32;
const NODE: &str = "/dev/dri/renderD128";

/// `DRM_IOWR(nr, T)`, as Linux's drm.h spells the syncobj requests.
fn iowr<T>(nr: u64) -> u32 {
    0xC000_0000 | ((size_of::<T>() as u32) << 16) | (u32::from(b'd') << 8) | nr as u32
}

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    match probe() {
        Ok(()) => {
            println!("probe ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shim-probe: {e}");
            ExitCode::FAILURE
        }
    }
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// `ioctl(fd, request, arg)`, failing with the errno.
fn ioctl<T>(fd: i32, request: u32, arg: &mut T, what: &str) -> Result {
    // SAFETY: `arg` is the struct `request` is defined with.
    let r = unsafe { libc::ioctl(fd, request as libc::c_ulong, std::ptr::from_mut(arg)) };
    if r < 0 {
        Err(os_err(what))
    } else {
        Ok(())
    }
}

fn open_node() -> Result<i32> {
    let path = CString::new(NODE).expect("no NUL");
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(os_err(NODE));
    }
    Ok(fd)
}

fn create(fd: i32) -> Result<(u32, u32)> {
    let mut r = ResourceCreate {
        target: 2,
        format: virgl_stream::format::R8G8B8A8_UNORM,
        bind: virgl_stream::bind::RENDER_TARGET | virgl_stream::bind::SAMPLER_VIEW,
        width: W,
        height: H,
        depth: 1,
        array_size: 1,
        size: W * H * 4,
        stride: W * 4,
        ..ResourceCreate::new_zeroed()
    };
    ioctl(fd, vg::IOC_RESOURCE_CREATE, &mut r, "RESOURCE_CREATE")?;
    Ok((r.bo_handle, r.res_handle))
}

/// EXECBUFFER of a clear of `res`; returns the out-fence fd.
fn clear(fd: i32, bo: u32, res: u32, rgba: [f32; 4]) -> Result<i32> {
    let stream = virgl_stream::clear_stream(res, virgl_stream::format::R8G8B8A8_UNORM, rgba);
    let bos = [bo];
    let mut e = Execbuffer {
        flags: vg::EXECBUF_FENCE_FD_OUT,
        size: stream.len() as u32,
        command: stream.as_ptr() as u64,
        bo_handles: bos.as_ptr() as u64,
        num_bo_handles: 1,
        fence_fd: -1,
        ..Execbuffer::default()
    };
    ioctl(fd, vg::IOC_EXECBUFFER, &mut e, "EXECBUFFER")?;
    if e.fence_fd < 0 {
        return Err("EXECBUFFER gave no fence fd".into());
    }
    Ok(e.fence_fd)
}

fn poll_readable(fd: i32) -> Result {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd.
    let r = unsafe { libc::poll(&mut p, 1, 10_000) };
    if r == 1 && p.revents & libc::POLLIN != 0 {
        Ok(())
    } else {
        Err(format!("fence fd {fd} not readable (poll {r})"))
    }
}

/// SYNC_IOC_FILE_INFO, count first, then the fences; (status, fences).
fn file_info(fd: i32) -> Result<(i32, u32)> {
    let mut info = FileInfo::default();
    ioctl(fd, sf::IOC_FILE_INFO, &mut info, "FILE_INFO (count)")?;
    let mut fences = vec![sf::FenceInfo::new_zeroed(); info.num_fences as usize];
    let mut full = FileInfo {
        num_fences: info.num_fences,
        sync_fence_info: fences.as_mut_ptr() as u64,
        ..FileInfo::default()
    };
    ioctl(fd, sf::IOC_FILE_INFO, &mut full, "FILE_INFO")?;
    if fences.iter().any(|f| f.status != 1) {
        return Err("a fence of a signalled file is not signalled".into());
    }
    Ok((full.status, full.num_fences))
}

/// TRANSFER_FROM_HOST, WAIT, MAP and mmap through `fd`: the pixels.
fn read_back(fd: i32, bo: u32) -> Result<Vec<u8>> {
    let mut t = Transfer {
        bo_handle: bo,
        box_: Box3d::whole(W, H),
        ..Transfer::new_zeroed()
    };
    ioctl(fd, vg::IOC_TRANSFER_FROM_HOST, &mut t, "TRANSFER_FROM_HOST")?;
    let mut w = Wait {
        handle: bo,
        flags: 0,
    };
    ioctl(fd, vg::IOC_WAIT, &mut w, "WAIT")?;
    let mut m = Map {
        handle: bo,
        ..Map::new_zeroed()
    };
    ioctl(fd, vg::IOC_MAP, &mut m, "MAP")?;
    map_pixels(fd, m.offset as libc::off_t)
}

fn map_pixels(fd: i32, offset: libc::off_t) -> Result<Vec<u8>> {
    let len = (W * H * 4) as usize;
    // SAFETY: a fresh shared mapping, unmapped below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            offset,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(os_err("mmap"));
    }
    // SAFETY: `len` mapped bytes.
    let pixels = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }.to_vec();
    // SAFETY: the mapping made above.
    unsafe { libc::munmap(p, len) };
    Ok(pixels)
}

fn all(pixels: &[u8], rgba: [u8; 4], what: &str) -> Result {
    if pixels.chunks_exact(4).all(|p| p == rgba) {
        Ok(())
    } else {
        Err(format!("{what}: not every pixel is {rgba:?}"))
    }
}

fn probe() -> Result {
    let a = open_node()?;
    let b = open_node()?;

    // What libdrm checks of the node.
    // SAFETY: a zeroed stat buffer filled by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: an open fd and a stat buffer.
    if unsafe { libc::fstat(a, &mut st) } != 0 {
        return Err(os_err("fstat"));
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(226, 128) {
        return Err(format!(
            "fstat: mode {:o} rdev {:#x}",
            st.st_mode, st.st_rdev
        ));
    }

    // GETPARAM writes an int through its pointer.
    let mut value: i32 = -1;
    let mut g = GetParam {
        param: vg::PARAM_3D_FEATURES,
        value: std::ptr::from_mut(&mut value) as u64,
    };
    ioctl(a, vg::IOC_GETPARAM, &mut g, "GETPARAM")?;
    if value != 1 {
        return Err(format!("GETPARAM 3D_FEATURES = {value}"));
    }

    // Out-fences: polled, described, merged.
    let (bo, res) = create(a)?;
    let first = clear(a, bo, res, [1.0, 0.0, 0.0, 1.0])?;
    let second = clear(a, bo, res, [0.0, 1.0, 0.0, 1.0])?;
    let mut m = MergeData {
        fd2: second,
        fence: -1,
        ..MergeData::default()
    };
    m.name[..6].copy_from_slice(b"merged");
    ioctl(first, sf::IOC_MERGE, &mut m, "MERGE")?;
    poll_readable(m.fence)?;
    let (status, count) = file_info(m.fence)?;
    if status != 1 || count == 0 {
        return Err(format!("merged file: status {status}, {count} fences"));
    }
    // SAFETY: fds this program owns.
    unsafe {
        libc::close(first);
        libc::close(second);
        libc::close(m.fence);
    }

    // PRIME: the buffer exported by A, imported by B, read back in B and
    // through the dma-buf itself.
    let mut h = PrimeHandle {
        handle: bo,
        flags: libc::O_CLOEXEC as u32 | libc::O_RDWR as u32,
        fd: -1,
    };
    ioctl(a, dc::IOC_PRIME_HANDLE_TO_FD, &mut h, "PRIME_HANDLE_TO_FD")?;
    // SAFETY: an fd just returned.
    if unsafe { libc::fcntl(h.fd, libc::F_GETFD) } & libc::FD_CLOEXEC == 0 {
        return Err("DRM_CLOEXEC did not make a close-on-exec fd".into());
    }
    let mut imported = PrimeHandle {
        fd: h.fd,
        ..PrimeHandle::default()
    };
    ioctl(
        b,
        dc::IOC_PRIME_FD_TO_HANDLE,
        &mut imported,
        "PRIME_FD_TO_HANDLE",
    )?;
    let mut info = ResourceInfo {
        bo_handle: imported.handle,
        ..ResourceInfo::new_zeroed()
    };
    ioctl(b, vg::IOC_RESOURCE_INFO, &mut info, "RESOURCE_INFO")?;
    if info.res_handle != res {
        return Err(format!(
            "imported resource {} is not {res}",
            info.res_handle
        ));
    }
    all(
        &read_back(b, imported.handle)?,
        [0, 0xFF, 0, 0xFF],
        "B's read-back",
    )?;
    all(
        &map_pixels(h.fd, 0)?,
        [0, 0xFF, 0, 0xFF],
        "the dma-buf's mmap",
    )?;

    syncobjs(b, imported.handle, res)?;

    // A dup outlives the fd it was made from.
    // SAFETY: an open fd.
    let twin = unsafe { libc::dup(a) };
    // SAFETY: fds this program owns.
    unsafe { libc::close(a) };
    let fence = clear(twin, bo, res, [0.0, 0.0, 1.0, 1.0])?;
    poll_readable(fence)?;
    all(
        &read_back(b, imported.handle)?,
        [0, 0, 0xFF, 0xFF],
        "after the dup",
    )?;
    Ok(())
}

/// Syncobjs through the shim: an EXECBUFFER signals one, WAIT sees it,
/// it exports as a sync_file that polls and imports into another, a
/// timeline point is signalled and queried, and they are reset and
/// destroyed.
fn syncobjs(fd: i32, bo: u32, res: u32) -> Result {
    let mut handles = [0u32; 3];
    for h in &mut handles {
        let mut c = so::Create::default();
        ioctl(fd, iowr::<so::Create>(so::CREATE), &mut c, "SYNCOBJ_CREATE")?;
        *h = c.handle;
    }
    // The submit signals the first.
    let stream = virgl_stream::clear_stream(res, virgl_stream::format::R8G8B8A8_UNORM, [0.0; 4]);
    let bos = [bo];
    let out = [vg::ExecSyncobj {
        handle: handles[0],
        flags: 0,
        point: 0,
    }];
    let mut e = Execbuffer {
        size: stream.len() as u32,
        command: stream.as_ptr() as u64,
        bo_handles: bos.as_ptr() as u64,
        num_bo_handles: 1,
        syncobj_stride: size_of::<vg::ExecSyncobj>() as u32,
        num_out_syncobjs: 1,
        out_syncobjs: out.as_ptr() as u64,
        ..Execbuffer::default()
    };
    ioctl(
        fd,
        vg::IOC_EXECBUFFER,
        &mut e,
        "EXECBUFFER with an out-syncobj",
    )?;
    let mut w = SyncobjWait {
        handles: handles.as_ptr() as u64,
        timeout_nsec: i64::MAX,
        count_handles: 1,
        ..SyncobjWait::default()
    };
    ioctl(fd, iowr::<SyncobjWait>(so::WAIT), &mut w, "SYNCOBJ_WAIT")?;
    // Exported as a sync_file, it polls signalled and imports elsewhere.
    let mut h = SyncobjHandle {
        handle: handles[0],
        flags: so::HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE,
        fd: -1,
        ..SyncobjHandle::default()
    };
    ioctl(
        fd,
        iowr::<SyncobjHandle>(so::HANDLE_TO_FD),
        &mut h,
        "SYNCOBJ_HANDLE_TO_FD",
    )?;
    poll_readable(h.fd)?;
    let mut import = SyncobjHandle {
        handle: handles[1],
        flags: so::FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
        fd: h.fd,
        ..SyncobjHandle::default()
    };
    ioctl(
        fd,
        iowr::<SyncobjHandle>(so::FD_TO_HANDLE),
        &mut import,
        "SYNCOBJ_FD_TO_HANDLE",
    )?;
    let mut w = SyncobjWait {
        handles: handles[1..].as_ptr() as u64,
        timeout_nsec: 0,
        count_handles: 1,
        ..SyncobjWait::default()
    };
    ioctl(
        fd,
        iowr::<SyncobjWait>(so::WAIT),
        &mut w,
        "SYNCOBJ_WAIT on the import",
    )?;
    // A timeline point, signalled and queried back.
    let points = [7u64];
    let mut signal = SyncobjTimelineArray {
        handles: handles[2..].as_ptr() as u64,
        points: points.as_ptr() as u64,
        count_handles: 1,
        flags: 0,
    };
    let request = iowr::<SyncobjTimelineArray>(so::TIMELINE_SIGNAL);
    ioctl(fd, request, &mut signal, "SYNCOBJ_TIMELINE_SIGNAL")?;
    let mut queried = [0u64];
    let mut query = SyncobjTimelineArray {
        handles: handles[2..].as_ptr() as u64,
        points: queried.as_mut_ptr() as u64,
        count_handles: 1,
        flags: 0,
    };
    ioctl(
        fd,
        iowr::<SyncobjTimelineArray>(so::QUERY),
        &mut query,
        "SYNCOBJ_QUERY",
    )?;
    if queried[0] != 7 {
        return Err(format!("SYNCOBJ_QUERY gave point {}", queried[0]));
    }
    // Reset: waiting on the first now finds nothing (EINVAL, as Linux).
    let mut reset = SyncobjArray {
        handles: handles.as_ptr() as u64,
        count_handles: 1,
        pad: 0,
    };
    ioctl(
        fd,
        iowr::<SyncobjArray>(so::RESET),
        &mut reset,
        "SYNCOBJ_RESET",
    )?;
    let mut w = SyncobjWait {
        handles: handles.as_ptr() as u64,
        timeout_nsec: 0,
        count_handles: 1,
        ..SyncobjWait::default()
    };
    if ioctl(fd, iowr::<SyncobjWait>(so::WAIT), &mut w, "").is_ok() {
        return Err("SYNCOBJ_WAIT on a reset syncobj succeeded".into());
    }
    for h in handles {
        let mut d = so::Destroy { handle: h, pad: 0 };
        ioctl(
            fd,
            iowr::<so::Destroy>(so::DESTROY),
            &mut d,
            "SYNCOBJ_DESTROY",
        )?;
    }
    // SAFETY: an fd this program owns.
    unsafe { libc::close(h.fd) };
    Ok(())
}
