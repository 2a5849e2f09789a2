//! The hostile-input suite: the ioctls (and mmaps) a careless or hostile
//! client can make on a DRM node, made through the plain C library with
//! Linux's structs, each with the answer Linux 6.12's virtio-gpu driver
//! gives it (drivers/gpu/drm/virtio, drm_ioctl.c, drm_syncobj.c,
//! sync_file.c, dma-buf.c) — and ours where we differ on purpose, with why.
//!
//! Run under the shim against the stack (`stack_tests::mesa_command`): each
//! case is followed by a VERSION on the same fd (a bad argument never
//! kills the caller's fd), the run ends with a render read back, and it
//! prints one line per case then "hostile ok", or the cases that disagree
//! (exit 1). `--markdown` prints the table of cases that
//! docs/RELIABILITY.md carries, without running anything.

use std::ffi::CString;
use std::process::ExitCode;

use drm_uapi::core::{self as dc, GemClose, GetCap, SetClientCap};
use drm_uapi::linux::{
    ContextInit, Execbuffer, FileInfo, GetCaps, GetParam, Merge, PrimeHandle, SyncobjArray,
    SyncobjHandle, SyncobjTimelineArray, SyncobjWait, Version,
};
use drm_uapi::sync_file as sf;
use drm_uapi::syncobj::{self as so, Create, Destroy, Transfer as SyncobjTransfer};
use drm_uapi::virtgpu::{
    self as vg, Box3d, ExecSyncobj, Map, ResourceCreate, ResourceInfo, Transfer, Wait,
};
use zerocopy::FromZeros;

const RENDER: &str = "/dev/dri/renderD128";
const CARD: &str = "/dev/dri/card0";
/// A side of the test resource, in pixels.
const SIDE: u32 = 16;

/// An answer: 0 or an errno.
type Answer = i32;

/// `_IOC(dir, 'd', nr, size)`.
fn ioc(dir: u32, nr: u64, size: usize) -> u64 {
    u64::from(dir << 30 | (size as u32) << 16 | u32::from(b'd') << 8 | nr as u32)
}

/// `DRM_IOWR(nr, T)`.
fn iowr<T>(nr: u64) -> u64 {
    ioc(3, nr, size_of::<T>())
}

/// `ioctl(fd, request, arg)` as 0 or the errno.
fn raw(fd: i32, request: u64, arg: u64) -> Answer {
    // SAFETY: the cases pass what Linux's ABI allows a program to pass:
    // valid structs, or deliberately bad pointers, which the kernel (here
    // the shim) must answer with EFAULT instead of touching.
    let r = unsafe { libc::ioctl(fd, request as libc::c_ulong, arg as *mut libc::c_void) };
    if r < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
    } else {
        0
    }
}

/// `ioctl(fd, request, &mut arg)`.
fn io<T>(fd: i32, request: u64, arg: &mut T) -> Answer {
    raw(fd, request, std::ptr::from_mut(arg) as u64)
}

fn open(path: &str) -> i32 {
    let c = CString::new(path).expect("no NUL");
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    assert!(
        fd >= 0,
        "opening {path}: {}",
        std::io::Error::last_os_error()
    );
    fd
}

/// What the cases work on, set up once.
struct Env {
    /// A render node file with objects of its own.
    render: i32,
    /// Another render node file.
    other: i32,
    /// The first primary file (the master).
    card: i32,
    /// A second primary file (not master, not authenticated).
    card2: i32,
    /// A 16×16 RGBA8 object of `render`'s, and its resource.
    bo: u32,
    res: u32,
    /// An object of `other`'s, its mmap offset, and `bo`'s.
    other_offset: u64,
    offset: u64,
    /// A signalled out-fence (a sync_file) of `render`'s.
    fence: i32,
    /// A dma-buf of `bo`, exported with DRM_RDWR, and one exported read
    /// only (of another object: the first export fixes the mode).
    dma_buf: i32,
    dma_buf_ro: i32,
    /// A pipe's read end, and an fd number that is not open.
    pipe: i32,
    closed: i32,
    /// A syncobj of `render`'s that has a fence, and one that never had.
    signaled: u32,
    empty: u32,
}

fn setup() -> Env {
    let render = open(RENDER);
    let other = open(RENDER);
    let card = open(CARD);
    let card2 = open(CARD);
    let (bo, res) = create(render);
    let (other_bo, _) = create(other);
    let fence = clear(render, bo, res);
    let mut h = PrimeHandle {
        handle: bo,
        flags: (libc::O_CLOEXEC | libc::O_RDWR) as u32,
        fd: -1,
    };
    assert_eq!(io(render, u64::from(dc::IOC_PRIME_HANDLE_TO_FD), &mut h), 0);
    let dma_buf = h.fd;
    let (ro_bo, _) = create(render);
    let mut h = PrimeHandle {
        handle: ro_bo,
        flags: libc::O_CLOEXEC as u32,
        fd: -1,
    };
    assert_eq!(io(render, u64::from(dc::IOC_PRIME_HANDLE_TO_FD), &mut h), 0);
    let dma_buf_ro = h.fd;
    let mut fds = [0i32; 2];
    // SAFETY: a two-int array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let closed = open(RENDER);
    // SAFETY: closing an fd this process owns and nothing else uses.
    unsafe { libc::close(closed) };
    let signaled = syncobj(render, so::CREATE_SIGNALED);
    let empty = syncobj(render, 0);
    Env {
        render,
        other,
        card,
        card2,
        bo,
        res,
        other_offset: map(other, other_bo),
        offset: map(render, bo),
        fence,
        dma_buf,
        dma_buf_ro,
        pipe: fds[0],
        closed,
        signaled,
        empty,
    }
}

fn create(fd: i32) -> (u32, u32) {
    let mut r = ResourceCreate {
        target: 2,
        format: virgl_stream::format::R8G8B8A8_UNORM,
        bind: virgl_stream::bind::RENDER_TARGET | virgl_stream::bind::SAMPLER_VIEW,
        width: SIDE,
        height: SIDE,
        depth: 1,
        array_size: 1,
        size: SIDE * SIDE * 4,
        stride: SIDE * 4,
        ..ResourceCreate::new_zeroed()
    };
    assert_eq!(io(fd, u64::from(vg::IOC_RESOURCE_CREATE), &mut r), 0);
    (r.bo_handle, r.res_handle)
}

fn map(fd: i32, bo: u32) -> u64 {
    let mut m = Map {
        handle: bo,
        ..Map::new_zeroed()
    };
    assert_eq!(io(fd, u64::from(vg::IOC_MAP), &mut m), 0);
    m.offset
}

fn syncobj(fd: i32, flags: u32) -> u32 {
    let mut c = Create { handle: 0, flags };
    assert_eq!(io(fd, iowr::<Create>(so::CREATE), &mut c), 0);
    c.handle
}

/// An EXECBUFFER of a clear of `res` with `bo` listed; its out-fence,
/// waited for.
fn clear(fd: i32, bo: u32, res: u32) -> i32 {
    let stream = virgl_stream::clear_stream(res, virgl_stream::format::R8G8B8A8_UNORM, [1.0; 4]);
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
    assert_eq!(io(fd, u64::from(vg::IOC_EXECBUFFER), &mut e), 0);
    let mut p = libc::pollfd {
        fd: e.fence_fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd.
    assert_eq!(unsafe { libc::poll(&mut p, 1, 10_000) }, 1, "out-fence");
    e.fence_fd
}

/// One case of the table.
struct Case {
    name: &'static str,
    /// Linux's answer.
    linux: Answer,
    /// Ours where it differs on purpose, and why.
    ours: Option<(Answer, &'static str)>,
    run: fn(&Env) -> Answer,
}

impl Case {
    fn expected(&self) -> Answer {
        self.ours.map_or(self.linux, |(a, _)| a)
    }
}

/// A plain EXECBUFFER (Linux 6.12's 64-byte struct).
fn exec(e: &Env, mut x: Execbuffer) -> Answer {
    io(e.render, iowr::<Execbuffer>(vg::EXECBUFFER), &mut x)
}

fn exec_fence_in(e: &Env, fd: i32) -> Answer {
    exec(
        e,
        Execbuffer {
            flags: vg::EXECBUF_FENCE_FD_IN,
            fence_fd: fd,
            ..Execbuffer::default()
        },
    )
}

fn exec_syncobjs(e: &Env, ins: &[ExecSyncobj], outs: &[ExecSyncobj]) -> Answer {
    exec(
        e,
        Execbuffer {
            syncobj_stride: size_of::<ExecSyncobj>() as u32,
            num_in_syncobjs: ins.len() as u32,
            in_syncobjs: ins.as_ptr() as u64,
            num_out_syncobjs: outs.len() as u32,
            out_syncobjs: outs.as_ptr() as u64,
            ..Execbuffer::default()
        },
    )
}

fn in_syncobj(handle: u32, flags: u32) -> ExecSyncobj {
    ExecSyncobj {
        handle,
        flags,
        point: 0,
    }
}

fn getparam(e: &Env, param: u64, value: u64) -> Answer {
    let mut g = GetParam { param, value };
    io(e.render, u64::from(vg::IOC_GETPARAM), &mut g)
}

fn get_caps(e: &Env, id: u32, ver: u32, size: u32, addr: u64) -> Answer {
    let mut c = GetCaps {
        cap_set_id: id,
        cap_set_ver: ver,
        addr,
        size,
        pad: 0,
    };
    io(e.render, u64::from(vg::IOC_GET_CAPS), &mut c)
}

fn transfer(e: &Env, to_host: bool, t: Transfer) -> Answer {
    let mut t = t;
    let request = if to_host {
        vg::IOC_TRANSFER_TO_HOST
    } else {
        vg::IOC_TRANSFER_FROM_HOST
    };
    io(e.render, u64::from(request), &mut t)
}

fn whole(e: &Env) -> Transfer {
    Transfer {
        bo_handle: e.bo,
        box_: Box3d::whole(SIDE, SIDE),
        ..Transfer::new_zeroed()
    }
}

fn resource_create(e: &Env, r: ResourceCreate) -> Answer {
    let mut r = r;
    io(e.render, u64::from(vg::IOC_RESOURCE_CREATE), &mut r)
}

fn good_resource() -> ResourceCreate {
    ResourceCreate {
        target: 2,
        format: virgl_stream::format::R8G8B8A8_UNORM,
        bind: virgl_stream::bind::SAMPLER_VIEW,
        width: 8,
        height: 8,
        depth: 1,
        array_size: 1,
        size: 256,
        ..ResourceCreate::new_zeroed()
    }
}

fn prime_import(e: &Env, fd: i32) -> Answer {
    let mut h = PrimeHandle {
        handle: 0,
        flags: 0,
        fd,
    };
    io(e.render, u64::from(dc::IOC_PRIME_FD_TO_HANDLE), &mut h)
}

fn prime_export(e: &Env, handle: u32, flags: u32) -> Answer {
    let mut h = PrimeHandle {
        handle,
        flags,
        fd: -1,
    };
    let r = io(e.render, u64::from(dc::IOC_PRIME_HANDLE_TO_FD), &mut h);
    if r == 0 {
        // SAFETY: the fd the ioctl returned, ours to close.
        unsafe { libc::close(h.fd) };
    }
    r
}

fn syncobj_h2fd(e: &Env, handle: u32, flags: u32, pad: u32) -> Answer {
    let mut h = SyncobjHandle {
        handle,
        flags,
        fd: -1,
        pad,
        point: 0,
    };
    let r = io(e.render, iowr::<SyncobjHandle>(so::HANDLE_TO_FD), &mut h);
    if r == 0 {
        // SAFETY: the fd the ioctl returned, ours to close.
        unsafe { libc::close(h.fd) };
    }
    r
}

fn syncobj_fd2h(e: &Env, fd: i32, handle: u32, flags: u32) -> Answer {
    let mut h = SyncobjHandle {
        handle,
        flags,
        fd,
        pad: 0,
        point: 0,
    };
    io(e.render, iowr::<SyncobjHandle>(so::FD_TO_HANDLE), &mut h)
}

fn syncobj_wait(e: &Env, handles: u64, count: u32, flags: u32) -> Answer {
    let mut w = SyncobjWait {
        handles,
        count_handles: count,
        flags,
        ..SyncobjWait::default()
    };
    io(e.render, iowr::<SyncobjWait>(so::WAIT), &mut w)
}

fn syncobj_array(e: &Env, nr: u64, handles: u64, count: u32, pad: u32) -> Answer {
    let mut a = SyncobjArray {
        handles,
        count_handles: count,
        pad,
    };
    io(e.render, iowr::<SyncobjArray>(nr), &mut a)
}

fn syncobj_timeline(e: &Env, nr: u64, handles: u64, points: u64, count: u32, flags: u32) -> Answer {
    let mut a = SyncobjTimelineArray {
        handles,
        points,
        count_handles: count,
        flags,
    };
    io(e.render, iowr::<SyncobjTimelineArray>(nr), &mut a)
}

fn merge(e: &Env, fd2: i32, flags: u32, pad: u32) -> Answer {
    let mut m = Merge {
        fd2,
        fence: -1,
        flags,
        pad,
        ..Merge::default()
    };
    let r = io(e.fence, u64::from(sf::IOC_MERGE), &mut m);
    if r == 0 {
        // SAFETY: the fd the ioctl returned, ours to close.
        unsafe { libc::close(m.fence) };
    }
    r
}

fn file_info(e: &Env, num_fences: u32, ptr: u64, flags: u32) -> Answer {
    let mut i = FileInfo {
        num_fences,
        sync_fence_info: ptr,
        flags,
        ..FileInfo::default()
    };
    io(e.fence, u64::from(sf::IOC_FILE_INFO), &mut i)
}

/// `mmap(fd, offset, len, prot)` as 0 or the errno (unmapped again).
fn mmap(fd: i32, offset: u64, len: usize, prot: i32) -> Answer {
    // SAFETY: a fresh shared mapping at a kernel-chosen address, unmapped
    // at once.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_SHARED,
            fd,
            offset as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        return std::io::Error::last_os_error().raw_os_error().unwrap_or(-1);
    }
    // SAFETY: the mapping just made.
    unsafe { libc::munmap(p, len) };
    0
}

/// An address nothing is mapped at.
const BAD: u64 = 0x10;

/// Why we differ where we check what Linux passes to a host that then
/// fails silently (and kills the context).
const CHECKED: &str = "checked against the resource before the host sees it";

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    macro_rules! case {
        ($name:expr, $linux:expr, $run:expr) => {
            Case { name: $name, linux: $linux, ours: None, run: $run }
        };
        ($name:expr, $linux:expr, ours $ours:expr, $why:expr, $run:expr) => {
            Case { name: $name, linux: $linux, ours: Some(($ours, $why)), run: $run }
        };
    }
    use libc::{EACCES, EALREADY, EBADF, EFAULT, EINVAL, ENOENT, ENOMEM, ENOTTY, EOPNOTSUPP, ETIME};
    vec![
        // drm_ioctl: the table and who may call what.
        case!("no such nr (0x03, a removed legacy ioctl)", EINVAL, |e| io(e.render, ioc(3, 0x03, 16), &mut [0u8; 16])),
        case!("no such nr (virtio 0x40)", EINVAL, |e| io(e.render, ioc(3, 0x40, 16), &mut [0u8; 16])),
        case!("no such nr (virtio 0x4c)", EINVAL, |e| io(e.render, ioc(3, 0x4c, 16), &mut [0u8; 16])),
        case!("no such nr (0xff)", EINVAL, |e| io(e.render, ioc(3, 0xff, 16), &mut [0u8; 16])),
        case!("ioctl type not 'd'", ENOTTY, |e| io(e.render, 0xC010_4100, &mut [0u8; 16])),
        case!("render: MODE_GETRESOURCES", EACCES, |e| io(e.render, ioc(3, 0xa0, 64), &mut [0u8; 64])),
        case!("render: MODE_SETCRTC", EACCES, |e| io(e.render, ioc(3, 0xa2, 104), &mut [0u8; 104])),
        case!("render: MODE_CREATE_DUMB", EACCES, |e| io(e.render, ioc(3, 0xb2, 32), &mut [0u8; 32])),
        case!("render: MODE_ATOMIC", EACCES, |e| io(e.render, ioc(3, 0xbc, 56), &mut [0u8; 56])),
        case!("render: SET_MASTER", EACCES, |e| raw(e.render, ioc(0, 0x1e, 0), 0)),
        case!("render: DROP_MASTER", EACCES, |e| raw(e.render, ioc(0, 0x1f, 0), 0)),
        case!("render: GET_MAGIC", EACCES, |e| io(e.render, ioc(2, 0x02, 4), &mut 0u32)),
        case!("render: SET_CLIENT_CAP", EACCES, |e| io(e.render, u64::from(dc::IOC_SET_CLIENT_CAP), &mut SetClientCap { capability: 2, value: 1 })),
        case!("render: GEM_FLINK", EACCES, |e| io(e.render, ioc(3, 0x0a, 8), &mut [e.bo, 0])),
        case!("primary, not master: MODE_SETCRTC", EACCES, |e| io(e.card2, ioc(3, 0xa2, 104), &mut [0u8; 104])),
        case!("primary (root, so authenticated): GEM_OPEN of name 0", ENOENT, |e| io(e.card2, ioc(3, 0x0b, 16), &mut [0u8; 16])),
        case!("primary, not master: AUTH_MAGIC", EACCES, |e| io(e.card2, ioc(1, 0x11, 4), &mut 1u32)),
        case!("master: AUTH_MAGIC of no file", EINVAL, |e| io(e.card, ioc(1, 0x11, 4), &mut 77u32)),
        case!("master: AUTH_MAGIC 0", EINVAL, |e| io(e.card, ioc(1, 0x11, 4), &mut 0u32)),
        case!("SET_MASTER while another file is master (as root)", libc::EBUSY, |e| raw(e.card2, ioc(0, 0x1e, 0), 0)),
        case!("DROP_MASTER by a file that is not master (as root)", EINVAL, |e| raw(e.card2, ioc(0, 0x1f, 0), 0)),
        case!("SET_MASTER by the master", 0, |e| raw(e.card, ioc(0, 0x1e, 0), 0)),
        case!("GET_CLIENT index 1", EINVAL, |e| io(e.card, ioc(3, 0x05, 40), &mut [1u64, 0, 0, 0, 0])),
        case!("master: MODE_GETRESOURCES", 0, |e| io(e.card, ioc(3, 0xa0, 64), &mut [0u8; 64])),
        case!("master: WAIT_VBLANK on a CRTC that is off", EOPNOTSUPP, ours EINVAL, "a simulated vblank, as Linux 6.19's virtio_gpu: an off CRTC has none", |e| io(e.card, ioc(3, 0x3a, 24), &mut [0u8; 24])),
        // VERSION.
        case!("VERSION with NULL strings and lengths", 0, |e| io(e.render, u64::from(dc::IOC_VERSION), &mut Version { name_len: 64, date_len: 64, desc_len: 64, ..Version::default() })),
        case!("VERSION with lengths 0xffffffff and 16-byte buffers", 0, |e| {
            let mut bufs = [[0u8; 16]; 3];
            let mut v = Version { name_len: 0xffff_ffff, name: bufs[0].as_mut_ptr() as u64, date_len: 0xffff_ffff, date: bufs[1].as_mut_ptr() as u64, desc_len: 0xffff_ffff, desc: bufs[2].as_mut_ptr() as u64, ..Version::default() };
            io(e.render, u64::from(dc::IOC_VERSION), &mut v)
        }),
        case!("VERSION with a bad string pointer", EFAULT, |e| io(e.render, u64::from(dc::IOC_VERSION), &mut Version { name_len: 16, name: BAD, ..Version::default() })),
        case!("ioctl struct at a bad address", EFAULT, |e| raw(e.render, u64::from(dc::IOC_VERSION), BAD)),
        // GET_CAP / SET_CLIENT_CAP.
        case!("GET_CAP 0", EINVAL, |e| io(e.render, u64::from(dc::IOC_GET_CAP), &mut GetCap { capability: 0, value: 0 })),
        case!("GET_CAP u64::MAX", EINVAL, |e| io(e.render, u64::from(dc::IOC_GET_CAP), &mut GetCap { capability: u64::MAX, value: 0 })),
        case!("GET_CAP PRIME", 0, |e| io(e.render, u64::from(dc::IOC_GET_CAP), &mut GetCap { capability: dc::DRM_CAP_PRIME, value: 0 })),
        case!("SET_CLIENT_CAP on the primary node", 0, |e| io(e.card, u64::from(dc::IOC_SET_CLIENT_CAP), &mut SetClientCap { capability: 2, value: 1 })),
        // GEM_CLOSE.
        case!("GEM_CLOSE handle 0", EINVAL, |e| io(e.render, u64::from(dc::IOC_GEM_CLOSE), &mut GemClose { handle: 0, pad: 0 })),
        case!("GEM_CLOSE an unknown handle", EINVAL, |e| io(e.render, u64::from(dc::IOC_GEM_CLOSE), &mut GemClose { handle: 0xdead, pad: 0 })),
        case!("GEM_CLOSE with pad set", 0, ours EINVAL, "a nonzero pad is refused (room for later use)", |e| io(e.render, u64::from(dc::IOC_GEM_CLOSE), &mut GemClose { handle: e.bo, pad: 1 })),
        // PRIME.
        case!("PRIME_HANDLE_TO_FD with O_WRONLY", EINVAL, |e| prime_export(e, e.bo, libc::O_WRONLY as u32)),
        case!("PRIME_HANDLE_TO_FD with flags 0xffffffff", EINVAL, |e| prime_export(e, e.bo, u32::MAX)),
        case!("PRIME_HANDLE_TO_FD of an unknown handle", ENOENT, |e| prime_export(e, 0xdead, 0)),
        case!("PRIME_HANDLE_TO_FD of another file's handle number", ENOENT, |e| prime_export(e, e.bo + 100, 0)),
        case!("PRIME_FD_TO_HANDLE of fd -1", EBADF, |e| prime_import(e, -1)),
        case!("PRIME_FD_TO_HANDLE of a closed fd", EBADF, |e| prime_import(e, e.closed)),
        case!("PRIME_FD_TO_HANDLE of a pipe", EINVAL, |e| prime_import(e, e.pipe)),
        case!("PRIME_FD_TO_HANDLE of a sync_file", EINVAL, |e| prime_import(e, e.fence)),
        case!("PRIME_FD_TO_HANDLE of the DRM fd itself", EINVAL, |e| prime_import(e, e.render)),
        case!("PRIME_FD_TO_HANDLE of its own dma-buf", 0, |e| prime_import(e, e.dma_buf)),
        // GETPARAM / GET_CAPS / CONTEXT_INIT / RESOURCE_CREATE_BLOB.
        case!("GETPARAM 0", EINVAL, |e| getparam(e, 0, std::ptr::from_mut(&mut 0i32) as u64)),
        case!("GETPARAM u64::MAX", EINVAL, |e| getparam(e, u64::MAX, std::ptr::from_mut(&mut 0i32) as u64)),
        case!("GETPARAM with a NULL value pointer", EFAULT, |e| getparam(e, vg::PARAM_3D_FEATURES, 0)),
        case!("GETPARAM with a bad value pointer", EFAULT, |e| getparam(e, vg::PARAM_3D_FEATURES, BAD)),
        case!("GET_CAPS size 0", EINVAL, |e| get_caps(e, 2, 2, 0, std::ptr::from_mut(&mut [0u8; 8]) as u64)),
        case!("GET_CAPS of an unknown capset", EINVAL, |e| get_caps(e, 77, 1, 8, std::ptr::from_mut(&mut [0u8; 8]) as u64)),
        case!("GET_CAPS of a version too new", EINVAL, |e| get_caps(e, 2, 99, 8, std::ptr::from_mut(&mut [0u8; 8]) as u64)),
        case!("GET_CAPS size 0xffffffff into 8 KiB (copies what fits)", 0, |e| {
            // Guard bytes after the capset's size must stay as they were.
            let mut buf = vec![0xA5u8; 8192];
            let r = get_caps(e, 2, 2, u32::MAX, buf.as_mut_ptr() as u64);
            if r != 0 { return r }
            if buf[4000..].iter().all(|&b| b == 0xA5) { 0 } else { -1 }
        }),
        case!("GET_CAPS to a NULL address", EFAULT, |e| get_caps(e, 2, 2, 16, 0)),
        case!("CONTEXT_INIT without the feature", EINVAL, |e| io(e.render, u64::from(vg::IOC_CONTEXT_INIT), &mut ContextInit { num_params: 1, pad: 0, ctx_set_params: BAD })),
        case!("CONTEXT_INIT with 0xffffffff params", EINVAL, |e| io(e.render, u64::from(vg::IOC_CONTEXT_INIT), &mut ContextInit { num_params: u32::MAX, pad: 0, ctx_set_params: BAD })),
        case!("RESOURCE_CREATE_BLOB without the feature", EINVAL, |e| io(e.render, u64::from(vg::IOC_RESOURCE_CREATE_BLOB), &mut drm_uapi::linux::ResourceCreateBlob { blob_mem: 1, size: 4096, ..Default::default() })),
        // RESOURCE_CREATE.
        case!("RESOURCE_CREATE of target 99", 0, ours EINVAL, CHECKED, |e| resource_create(e, ResourceCreate { target: 99, ..good_resource() })),
        case!("RESOURCE_CREATE of format 0", 0, ours EINVAL, CHECKED, |e| resource_create(e, ResourceCreate { format: 0, ..good_resource() })),
        case!("RESOURCE_CREATE of width 0", 0, ours EINVAL, CHECKED, |e| resource_create(e, ResourceCreate { width: 0, ..good_resource() })),
        case!("RESOURCE_CREATE of 100 levels", 0, ours EINVAL, CHECKED, |e| resource_create(e, ResourceCreate { last_level: 100, ..good_resource() })),
        case!("RESOURCE_CREATE of a 2D texture of depth 2", 0, ours EINVAL, CHECKED, |e| resource_create(e, ResourceCreate { depth: 2, ..good_resource() })),
        case!("RESOURCE_CREATE of a cube with 5 faces", 0, ours EINVAL, CHECKED, |e| resource_create(e, ResourceCreate { target: 4, array_size: 5, ..good_resource() })),
        case!("RESOURCE_CREATE of a 1<<20 wide texture", 0, ours EINVAL, CHECKED, |e| resource_create(e, ResourceCreate { width: 1 << 20, ..good_resource() })),
        case!("RESOURCE_CREATE of size 0xffffffff", ENOMEM, |e| resource_create(e, ResourceCreate { size: u32::MAX, ..good_resource() })),
        // RESOURCE_INFO / MAP / WAIT.
        case!("RESOURCE_INFO of handle 0", ENOENT, |e| io(e.render, u64::from(vg::IOC_RESOURCE_INFO), &mut ResourceInfo { bo_handle: 0, ..ResourceInfo::new_zeroed() })),
        case!("MAP of an unknown handle", ENOENT, |e| io(e.render, u64::from(vg::IOC_MAP), &mut Map { handle: 0xdead, ..Map::new_zeroed() })),
        case!("WAIT on an unknown handle", ENOENT, |e| io(e.render, u64::from(vg::IOC_WAIT), &mut Wait { handle: 0xdead, flags: 0 })),
        case!("WAIT with unknown flag bits on an idle object", 0, |e| io(e.render, u64::from(vg::IOC_WAIT), &mut Wait { handle: e.bo, flags: !vg::WAIT_NOWAIT })),
        // Transfers.
        case!("TRANSFER_FROM_HOST of an unknown handle", ENOENT, |e| transfer(e, false, Transfer { bo_handle: 0xdead, ..whole(e) })),
        case!("TRANSFER_TO_HOST with a stride", EINVAL, |e| transfer(e, true, Transfer { stride: 64, ..whole(e) })),
        case!("TRANSFER_TO_HOST of a box past the resource", 0, ours EINVAL, CHECKED, |e| transfer(e, true, Transfer { box_: Box3d { x: 8, w: SIDE, ..whole(e).box_ }, ..whole(e) })),
        case!("TRANSFER_FROM_HOST of a box of 0xffffffff", 0, ours EINVAL, CHECKED, |e| transfer(e, false, Transfer { box_: Box3d { w: u32::MAX, h: u32::MAX, ..whole(e).box_ }, ..whole(e) })),
        case!("TRANSFER_TO_HOST of level 5 (one level)", 0, ours EINVAL, CHECKED, |e| transfer(e, true, Transfer { level: 5, ..whole(e) })),
        case!("TRANSFER_TO_HOST at an offset past the object", 0, ours EINVAL, CHECKED, |e| transfer(e, true, Transfer { offset: 1 << 20, ..whole(e) })),
        case!("TRANSFER_FROM_HOST of layer 3 of a 2D texture", 0, ours EINVAL, CHECKED, |e| transfer(e, false, Transfer { box_: Box3d { z: 3, ..whole(e).box_ }, ..whole(e) })),
        // EXECBUFFER, in Linux 6.12's order.
        case!("EXECBUFFER with flags 0x8", EINVAL, |e| exec(e, Execbuffer { flags: 8, ..Execbuffer::default() })),
        case!("EXECBUFFER with every flag bit and fence fd -1", EINVAL, |e| exec(e, Execbuffer { flags: u32::MAX, fence_fd: -1, ..Execbuffer::default() })),
        case!("EXECBUFFER with RING_IDX (no rings)", EINVAL, |e| exec(e, Execbuffer { flags: vg::EXECBUF_RING_IDX, ..Execbuffer::default() })),
        case!("EXECBUFFER in-fence -1", EINVAL, |e| exec_fence_in(e, -1)),
        case!("EXECBUFFER in-fence closed", EINVAL, |e| exec_fence_in(e, e.closed)),
        case!("EXECBUFFER in-fence a pipe", EINVAL, |e| exec_fence_in(e, e.pipe)),
        case!("EXECBUFFER in-fence a dma-buf", EINVAL, |e| exec_fence_in(e, e.dma_buf)),
        case!("EXECBUFFER in-fence a signalled sync_file", 0, |e| exec_fence_in(e, e.fence)),
        case!("EXECBUFFER of 0xffffffff objects in a 4-entry array", ENOMEM, |e| { let bos = [e.bo; 4]; exec(e, Execbuffer { num_bo_handles: u32::MAX, bo_handles: bos.as_ptr() as u64, ..Execbuffer::default() }) }),
        case!("EXECBUFFER of 1000 objects at NULL", EFAULT, |e| exec(e, Execbuffer { num_bo_handles: 1000, ..Execbuffer::default() })),
        case!("EXECBUFFER of 2 objects at a bad address", EFAULT, |e| exec(e, Execbuffer { num_bo_handles: 2, bo_handles: BAD, ..Execbuffer::default() })),
        case!("EXECBUFFER of an unknown object", ENOENT, |e| exec(e, Execbuffer { num_bo_handles: 1, bo_handles: [0xdeadu32].as_ptr() as u64, ..Execbuffer::default() })),
        case!("EXECBUFFER of another file's handle number", ENOENT, |e| exec(e, Execbuffer { num_bo_handles: 1, bo_handles: [e.bo + 100].as_ptr() as u64, ..Execbuffer::default() })),
        case!("EXECBUFFER of one object listed twice", EALREADY, |e| { let bos = [e.bo, e.bo]; exec(e, Execbuffer { num_bo_handles: 2, bo_handles: bos.as_ptr() as u64, ..Execbuffer::default() }) }),
        case!("EXECBUFFER of size 0 at NULL", 0, |e| exec(e, Execbuffer::default())),
        case!("EXECBUFFER of size 0xffffffff", ENOMEM, |e| exec(e, Execbuffer { size: u32::MAX, command: BAD, ..Execbuffer::default() })),
        case!("EXECBUFFER of 64 bytes at NULL", EFAULT, |e| exec(e, Execbuffer { size: 64, ..Execbuffer::default() })),
        case!("EXECBUFFER of a stream whose command runs past its end", 0, ours EINVAL, "the stream is walked before the host sees it", |e| { let cmd = [(100u32 << 16) | 7]; exec(e, Execbuffer { size: 4, command: cmd.as_ptr() as u64, ..Execbuffer::default() }) }),
        case!("EXECBUFFER of a stream not a multiple of 4 bytes", 0, ours EINVAL, "the stream is walked before the host sees it", |e| { let cmd = [0u8; 6]; exec(e, Execbuffer { size: 6, command: cmd.as_ptr() as u64, ..Execbuffer::default() }) }),
        case!("EXECBUFFER of an unknown in-syncobj", ENOENT, |e| exec_syncobjs(e, &[in_syncobj(0xdead, 0)], &[])),
        case!("EXECBUFFER of an in-syncobj with flags 2", EINVAL, |e| exec_syncobjs(e, &[in_syncobj(e.signaled, 2)], &[])),
        case!("EXECBUFFER of an in-syncobj never signalled", EINVAL, |e| exec_syncobjs(e, &[in_syncobj(e.empty, 0)], &[])),
        case!("EXECBUFFER of an unknown out-syncobj", EINVAL, |e| exec_syncobjs(e, &[], &[in_syncobj(0xdead, 0)])),
        case!("EXECBUFFER of an out-syncobj with RESET", EINVAL, |e| exec_syncobjs(e, &[], &[in_syncobj(e.signaled, vg::EXECBUF_SYNCOBJ_RESET)])),
        case!("EXECBUFFER of 0xffffffff in-syncobjs", ENOMEM, |e| exec(e, Execbuffer { num_in_syncobjs: u32::MAX, syncobj_stride: 16, in_syncobjs: BAD, ..Execbuffer::default() })),
        case!("EXECBUFFER of in-syncobjs with stride 0 (all read as handle 0)", ENOENT, |e| exec(e, Execbuffer { num_in_syncobjs: 1, syncobj_stride: 0, in_syncobjs: BAD, ..Execbuffer::default() })),
        // SYNCOBJ (Linux 6.12: 6.1's virtio-gpu has none).
        case!("SYNCOBJ_CREATE with flags 2", EINVAL, |e| io(e.render, iowr::<Create>(so::CREATE), &mut Create { handle: 0, flags: 2 })),
        case!("SYNCOBJ_DESTROY with pad set", EINVAL, |e| io(e.render, iowr::<Destroy>(so::DESTROY), &mut Destroy { handle: e.signaled, pad: 1 })),
        case!("SYNCOBJ_DESTROY of an unknown handle", EINVAL, |e| io(e.render, iowr::<Destroy>(so::DESTROY), &mut Destroy { handle: 0xdead, pad: 0 })),
        case!("SYNCOBJ_HANDLE_TO_FD with pad set", EINVAL, |e| syncobj_h2fd(e, e.signaled, 0, 1)),
        case!("SYNCOBJ_HANDLE_TO_FD with flags 4", EINVAL, |e| syncobj_h2fd(e, e.signaled, 4, 0)),
        case!("SYNCOBJ_HANDLE_TO_FD of an unknown handle", EINVAL, |e| syncobj_h2fd(e, 0xdead, 0, 0)),
        case!("SYNCOBJ_HANDLE_TO_FD (sync_file) of an unknown handle", ENOENT, |e| syncobj_h2fd(e, 0xdead, so::HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE, 0)),
        case!("SYNCOBJ_HANDLE_TO_FD (sync_file) of an empty syncobj", EINVAL, |e| syncobj_h2fd(e, e.empty, so::HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE, 0)),
        case!("SYNCOBJ_FD_TO_HANDLE of fd -1", EINVAL, |e| syncobj_fd2h(e, -1, 0, 0)),
        case!("SYNCOBJ_FD_TO_HANDLE of a pipe", EINVAL, |e| syncobj_fd2h(e, e.pipe, 0, 0)),
        case!("SYNCOBJ_FD_TO_HANDLE of a sync_file", EINVAL, |e| syncobj_fd2h(e, e.fence, 0, 0)),
        case!("SYNCOBJ_FD_TO_HANDLE (sync_file) of a pipe", EINVAL, |e| syncobj_fd2h(e, e.pipe, e.empty, so::FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE)),
        case!("SYNCOBJ_FD_TO_HANDLE (sync_file) into an unknown handle", ENOENT, |e| syncobj_fd2h(e, e.fence, 0xdead, so::FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE)),
        case!("SYNCOBJ_WAIT with WAIT_AVAILABLE", EINVAL, |e| syncobj_wait(e, [e.signaled].as_ptr() as u64, 1, so::WAIT_FLAGS_WAIT_AVAILABLE)),
        case!("SYNCOBJ_WAIT of 0 handles", 0, |e| syncobj_wait(e, 0, 0, 0)),
        case!("SYNCOBJ_WAIT of 0xffffffff handles", ENOMEM, |e| syncobj_wait(e, BAD, u32::MAX, 0)),
        case!("SYNCOBJ_WAIT of 2 handles at NULL", EFAULT, |e| syncobj_wait(e, 0, 2, 0)),
        case!("SYNCOBJ_WAIT of an unknown handle", ENOENT, |e| syncobj_wait(e, [e.signaled, 0xdead].as_ptr() as u64, 2, 0)),
        case!("SYNCOBJ_WAIT on a syncobj never signalled", EINVAL, |e| syncobj_wait(e, [e.empty].as_ptr() as u64, 1, 0)),
        case!("SYNCOBJ_WAIT (for submit) past its timeout", ETIME, |e| syncobj_wait(e, [e.empty].as_ptr() as u64, 1, so::WAIT_FLAGS_WAIT_FOR_SUBMIT)),
        case!("SYNCOBJ_RESET of 0 handles", EINVAL, |e| syncobj_array(e, so::RESET, 0, 0, 0)),
        case!("SYNCOBJ_RESET with pad set", EINVAL, |e| syncobj_array(e, so::RESET, [e.signaled].as_ptr() as u64, 1, 1)),
        case!("SYNCOBJ_SIGNAL of 0xffffffff handles", ENOMEM, |e| syncobj_array(e, so::SIGNAL, BAD, u32::MAX, 0)),
        case!("SYNCOBJ_SIGNAL of an unknown handle", ENOENT, |e| syncobj_array(e, so::SIGNAL, [0xdeadu32].as_ptr() as u64, 1, 0)),
        case!("SYNCOBJ_TIMELINE_SIGNAL with flags 1", EINVAL, |e| syncobj_timeline(e, so::TIMELINE_SIGNAL, [e.signaled].as_ptr() as u64, 0, 1, 1)),
        case!("SYNCOBJ_QUERY with flags 2", EINVAL, |e| syncobj_timeline(e, so::QUERY, [e.signaled].as_ptr() as u64, [0u64].as_ptr() as u64, 1, 2)),
        case!("SYNCOBJ_QUERY of 0 handles", EINVAL, |e| syncobj_timeline(e, so::QUERY, 0, 0, 0, 0)),
        case!("SYNCOBJ_QUERY into NULL points", EFAULT, |e| syncobj_timeline(e, so::QUERY, [e.signaled].as_ptr() as u64, 0, 1, 0)),
        case!("SYNCOBJ_TRANSFER with pad set", EINVAL, |e| io(e.render, iowr::<SyncobjTransfer>(so::TRANSFER), &mut SyncobjTransfer { src_handle: e.signaled, dst_handle: e.empty, pad: 1, ..SyncobjTransfer::default() })),
        case!("SYNCOBJ_TRANSFER to an unknown handle", ENOENT, |e| io(e.render, iowr::<SyncobjTransfer>(so::TRANSFER), &mut SyncobjTransfer { src_handle: e.signaled, dst_handle: 0xdead, ..SyncobjTransfer::default() })),
        // sync_file.
        case!("SYNC_IOC_MERGE with fd -1", ENOENT, |e| merge(e, -1, 0, 0)),
        case!("SYNC_IOC_MERGE with a pipe", ENOENT, |e| merge(e, e.pipe, 0, 0)),
        case!("SYNC_IOC_MERGE with a dma-buf", ENOENT, |e| merge(e, e.dma_buf, 0, 0)),
        case!("SYNC_IOC_MERGE with flags set", EINVAL, |e| merge(e, e.fence, 1, 0)),
        case!("SYNC_IOC_MERGE with pad set", EINVAL, |e| merge(e, e.fence, 0, 1)),
        case!("SYNC_IOC_MERGE with itself", 0, |e| merge(e, e.fence, 0, 0)),
        case!("SYNC_IOC_FILE_INFO with flags set", EINVAL, |e| file_info(e, 0, 0, 1)),
        case!("SYNC_IOC_FILE_INFO of 0 fences (count only)", 0, |e| file_info(e, 0, 0, 0)),
        case!("SYNC_IOC_FILE_INFO with room for 0xffffffff fences", 0, |e| file_info(e, u32::MAX, std::ptr::from_mut(&mut [0u8; 80]) as u64, 0)),
        case!("SYNC_IOC_FILE_INFO into NULL", EFAULT, |e| file_info(e, 1, 0, 0)),
        case!("SYNC_IOC_FILE_INFO of another size", ENOTTY, |e| io(e.fence, u64::from(sf::IOC_FILE_INFO) & !(0x3fff << 16) | (48 << 16), &mut [0u8; 48])),
        // mmap.
        case!("mmap of an offset no object has", EINVAL, |e| mmap(e.render, 1 << 40, 4096, libc::PROT_READ)),
        case!("mmap of another file's object", EACCES, |e| mmap(e.render, e.other_offset, 4096, libc::PROT_READ)),
        case!("mmap of more than the object", EINVAL, |e| mmap(e.render, e.offset, 1 << 20, libc::PROT_READ)),
        case!("mmap of a dma-buf past its size", EINVAL, |e| mmap(e.dma_buf, 4096, 4096, libc::PROT_READ)),
        case!("mmap writable of a dma-buf exported read-only", EACCES, |e| mmap(e.dma_buf_ro, 0, 4096, libc::PROT_READ | libc::PROT_WRITE)),
        case!("mmap of its own object", 0, |e| mmap(e.render, e.offset, 4096, libc::PROT_READ | libc::PROT_WRITE)),
        case!("GEM_CLOSE of an object twice", EINVAL, |e| {
            let (bo, _) = create(e.render);
            io(e.render, u64::from(dc::IOC_GEM_CLOSE), &mut GemClose { handle: bo, pad: 0 });
            io(e.render, u64::from(dc::IOC_GEM_CLOSE), &mut GemClose { handle: bo, pad: 0 })
        }),
        case!("RESOURCE_CREATE and GEM_CLOSE 64 times", 0, |e| {
            for _ in 0..64 {
                let (bo, _) = create(e.render);
                let r = io(e.render, u64::from(dc::IOC_GEM_CLOSE), &mut GemClose { handle: bo, pad: 0 });
                if r != 0 { return r }
            }
            0
        }),
    ]
}

/// Whether `fd` still answers (VERSION).
fn alive(fd: i32) -> bool {
    io(fd, u64::from(dc::IOC_VERSION), &mut Version::default()) == 0
}

fn errno_name(a: Answer) -> String {
    match scheme_seam::Errno(a).name() {
        _ if a == 0 => "0".into(),
        "E?" => format!("errno {a}"),
        name => name.into(),
    }
}

/// The table docs/RELIABILITY.md carries.
fn markdown() -> String {
    let mut s = String::from("| case | Linux 6.12 | ours |\n|---|---|---|\n");
    for c in cases() {
        let ours = match c.ours {
            None => "same".to_string(),
            Some((a, why)) => format!("{} ({why})", errno_name(a)),
        };
        s.push_str(&format!(
            "| {} | {} | {ours} |\n",
            c.name,
            errno_name(c.linux)
        ));
    }
    s
}

/// After the cases: the device still renders for this file.
fn still_renders(e: &Env) -> Result<(), String> {
    let fence = clear(e.render, e.bo, e.res);
    // SAFETY: the fd the ioctl returned, ours to close.
    unsafe { libc::close(fence) };
    let mut t = whole(e);
    if io(e.render, u64::from(vg::IOC_TRANSFER_FROM_HOST), &mut t) != 0 {
        return Err("TRANSFER_FROM_HOST after the cases".into());
    }
    let mut w = Wait {
        handle: e.bo,
        flags: 0,
    };
    if io(e.render, u64::from(vg::IOC_WAIT), &mut w) != 0 {
        return Err("WAIT after the cases".into());
    }
    let len = (SIDE * SIDE * 4) as usize;
    // SAFETY: a fresh shared read-only mapping of the object, unmapped below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            e.render,
            e.offset as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        return Err("mmap after the cases".into());
    }
    // SAFETY: `len` readable bytes just mapped.
    let pixels = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }.to_vec();
    // SAFETY: the mapping made above.
    unsafe { libc::munmap(p, len) };
    if pixels.iter().all(|&b| b == 0xFF) {
        Ok(())
    } else {
        Err("the render after the cases is not white".into())
    }
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--markdown") {
        print!("{}", markdown());
        return ExitCode::SUCCESS;
    }
    let env = setup();
    let mut wrong: Vec<String> = Vec::new();
    let cases = cases();
    for c in &cases {
        let got = (c.run)(&env);
        let ok = got == c.expected();
        println!(
            "{} {}: expected {}, got {}",
            if ok { "ok  " } else { "FAIL" },
            c.name,
            errno_name(c.expected()),
            errno_name(got)
        );
        if !ok {
            wrong.push(c.name.into());
        }
        // A bad argument never kills the caller's fd (or another's).
        if !alive(env.render) || !alive(env.card) || !alive(env.other) {
            wrong.push(format!("after {:?} a file stopped answering", c.name));
            break;
        }
    }
    if let Err(e) = still_renders(&env) {
        wrong.push(e);
    }
    if wrong.is_empty() {
        println!("hostile ok: {} cases", cases.len());
        ExitCode::SUCCESS
    } else {
        eprintln!("hostile-probe: {} wrong: {}", wrong.len(), wrong.join("; "));
        ExitCode::FAILURE
    }
}
