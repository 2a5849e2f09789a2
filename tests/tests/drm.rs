//! scheme:drm through all three daemons and the real device, as Mesa uses
//! it: the DRM-level clear-and-read-back of ABI reference §5.5, two
//! clients at once, malformed ioctls, and a client that dies.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use drm_uapi::core::{self as dc, GemClose, VersionHeader};
use drm_uapi::virtgpu::{
    self as vg, ExecSyncobj, ExecbufferHeader, GetCapsHeader, GetParam, Map, ResourceCreate,
    Transfer, Wait,
};
use drm_uapi::wire::Builder;
use scheme_seam::SchemeFd;
use stack_tests::{bus_dir, workspace_binary, Daemon};
use syncd::client::SyncFile;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// The daemons serve fixed names in the bus directory: tests take turns.
static DAEMONS: Mutex<()> = Mutex::new(());

struct Stack {
    _gpu: Daemon,
    _sync: Daemon,
    _drm: Daemon,
}

/// Started in init's order: virtio-gpud, syncd, drmd.
fn stack() -> Stack {
    let gpu = Daemon::start(&workspace_binary("virtio-gpud"), &[], "virtio-gpu");
    let sync = Daemon::start(&workspace_binary("syncd"), &[], "sync");
    let drm = Daemon::start(&workspace_binary("drmd"), &[], "drm");
    Stack {
        _gpu: gpu,
        _sync: sync,
        _drm: drm,
    }
}

fn render_node() -> SchemeFd {
    SchemeFd::open("/scheme/drm/renderD128", 0).unwrap()
}

fn ioctl(fd: &SchemeFd, nr: u64, payload: &mut [u8]) -> std::io::Result<usize> {
    fd.call(payload, &[nr])
}

fn errno(r: std::io::Result<usize>) -> Option<i32> {
    r.unwrap_err().raw_os_error()
}

fn getparam(fd: &SchemeFd, param: u64) -> std::io::Result<u64> {
    let mut g = GetParam { param, value: 0 };
    ioctl(fd, vg::GETPARAM, g.as_mut_bytes())?;
    Ok(g.value)
}

/// RESOURCE_CREATE of a `w × h` RGBA8 render target; (bo handle, res id).
fn create(fd: &SchemeFd, w: u32, h: u32) -> (u32, u32) {
    let mut r = ResourceCreate {
        target: 2,
        format: virgl_stream::format::R8G8B8A8_UNORM,
        bind: virgl_stream::bind::RENDER_TARGET | virgl_stream::bind::SAMPLER_VIEW,
        width: w,
        height: h,
        depth: 1,
        array_size: 1,
        size: w * h * 4,
        stride: w * 4,
        ..ResourceCreate::new_zeroed()
    };
    ioctl(fd, vg::RESOURCE_CREATE, r.as_mut_bytes()).unwrap();
    assert_ne!(r.bo_handle, 0);
    assert_ne!(r.res_handle, 0);
    (r.bo_handle, r.res_handle)
}

/// EXECBUFFER of a clear of resource `res` to `rgba` with `bo` listed;
/// returns the fence point written to `fence_fd`.
fn clear(fd: &SchemeFd, bo: u32, res: u32, rgba: [f32; 4]) -> u64 {
    let mut s = virgl_stream::Stream::new();
    s.create_sub_ctx(1)
        .set_sub_ctx(1)
        .create_surface(1, res, virgl_stream::format::R8G8B8A8_UNORM, 0)
        .set_framebuffer_state(0, &[1])
        .clear(virgl_stream::clear::COLOR0, rgba, 0.0, 0)
        .destroy_object(1);
    let stream = s.to_bytes();
    let header = ExecbufferHeader {
        flags: vg::EXECBUF_FENCE_FD_OUT,
        size: stream.len() as u32,
        num_bo_handles: 1,
        ..ExecbufferHeader::new_zeroed()
    };
    let mut payload = Builder::new(&header).array(&stream).array(&[bo]).build();
    ioctl(fd, vg::EXECBUFFER, &mut payload).unwrap();
    let (out, _) = ExecbufferHeader::read_from_prefix(&payload).unwrap();
    assert!(out.fence_fd > 0);
    out.fence_fd as u64
}

/// TRANSFER_FROM_HOST of the whole `w × h` object, WAIT, MAP and read.
fn read_back(fd: &SchemeFd, bo: u32, w: u32, h: u32) -> Vec<u8> {
    let mut t = Transfer {
        bo_handle: bo,
        ..Transfer::new_zeroed()
    };
    t.box_.w = w;
    t.box_.h = h;
    t.box_.d = 1;
    ioctl(fd, vg::TRANSFER_FROM_HOST, t.as_mut_bytes()).unwrap();
    let mut wait = Wait {
        handle: bo,
        flags: 0,
    };
    ioctl(fd, vg::WAIT, wait.as_mut_bytes()).unwrap();
    let mut m = Map {
        handle: bo,
        ..Map::new_zeroed()
    };
    ioctl(fd, vg::MAP, m.as_mut_bytes()).unwrap();
    let map = fd.mmap(m.offset, (w * h * 4) as usize, true).unwrap();
    let mut pixels = vec![0u8; (w * h * 4) as usize];
    map.read_bytes(0, &mut pixels);
    pixels
}

#[test]
fn clear_and_read_back_through_scheme_drm() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let fd = render_node();

    // VERSION twice, as Mesa does: lengths, then the strings.
    let mut payload = VersionHeader::new_zeroed().as_bytes().to_vec();
    ioctl(&fd, dc::VERSION, &mut payload).unwrap();
    let (v, _) = VersionHeader::read_from_prefix(&payload).unwrap();
    assert_eq!((v.version_major, v.version_minor), (0, 1));
    let ask = VersionHeader {
        name_len: v.name_len,
        date_len: v.date_len,
        desc_len: v.desc_len,
        ..VersionHeader::new_zeroed()
    };
    let total = (v.name_len + v.date_len + v.desc_len) as usize;
    let mut payload = Builder::new(&ask).zeroed::<u8>(total).build();
    ioctl(&fd, dc::VERSION, &mut payload).unwrap();
    let name = &payload[size_of::<VersionHeader>()..][..v.name_len as usize];
    assert_eq!(name, b"virtio_gpu");

    // GETPARAM, answered from what virtio-gpud negotiated.
    assert_eq!(getparam(&fd, vg::PARAM_3D_FEATURES).unwrap(), 1);
    assert_eq!(getparam(&fd, vg::PARAM_CAPSET_QUERY_FIX).unwrap(), 1);
    assert_eq!(getparam(&fd, vg::PARAM_CONTEXT_INIT).unwrap(), 0);
    assert_eq!(
        getparam(&fd, vg::PARAM_SUPPORTED_CAPSET_IDS).unwrap() & 0b110,
        0b110
    );
    assert_eq!(
        errno(ioctl(
            &fd,
            vg::GETPARAM,
            GetParam {
                param: 99,
                value: 0
            }
            .as_mut_bytes()
        )),
        Some(libc::EINVAL)
    );

    // GET_CAPS for capset 2 at Mesa's size.
    let caps = GetCapsHeader {
        cap_set_id: 2,
        cap_set_ver: 2,
        size: 1376,
        pad: 0,
    };
    let mut payload = Builder::new(&caps).zeroed::<u8>(1376).build();
    ioctl(&fd, vg::GET_CAPS, &mut payload).unwrap();
    let data = &payload[size_of::<GetCapsHeader>()..];
    assert_eq!(
        u32::from_le_bytes(data[..4].try_into().unwrap()),
        2,
        "capset max_version"
    );

    // RESOURCE_CREATE, EXECBUFFER with an out-fence, wait on it.
    let (w, h) = (64, 64);
    let (bo, res) = create(&fd, w, h);
    let point = clear(&fd, bo, res, [1.0, 0.0, 0.0, 1.0]);
    let mut dup = vg::EXECBUFFER.to_le_bytes().to_vec();
    dup.extend_from_slice(&point.to_le_bytes());
    let fence = SyncFile::from_fd(fd.dup(&dup).unwrap());
    assert!(
        fence.wait(Duration::from_secs(10)).unwrap(),
        "the out-fence signals"
    );

    // TRANSFER_FROM_HOST, WAIT, MAP + read: every pixel red.
    let pixels = read_back(&fd, bo, w, h);
    assert!(
        pixels.chunks_exact(4).all(|p| p == [0xFF, 0, 0, 0xFF]),
        "every pixel red"
    );

    // NOWAIT on an idle object answers 0; GEM_CLOSE releases it.
    let mut nowait = Wait {
        handle: bo,
        flags: vg::WAIT_NOWAIT,
    };
    ioctl(&fd, vg::WAIT, nowait.as_mut_bytes()).unwrap();
    ioctl(
        &fd,
        dc::GEM_CLOSE,
        GemClose { handle: bo, pad: 0 }.as_mut_bytes(),
    )
    .unwrap();
    assert_eq!(
        errno(ioctl(
            &fd,
            vg::MAP,
            Map {
                handle: bo,
                ..Map::new_zeroed()
            }
            .as_mut_bytes()
        )),
        Some(libc::ENOENT)
    );
}

#[test]
fn two_clients_render_their_own_colours_and_cannot_name_each_others_objects() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let (a, b) = (render_node(), render_node());
    let (bo_a, res_a) = create(&a, 32, 32);
    let (bo_b, res_b) = create(&b, 32, 32);
    clear(&a, bo_a, res_a, [0.0, 1.0, 0.0, 1.0]);
    clear(&b, bo_b, res_b, [0.0, 0.0, 1.0, 1.0]);
    assert!(read_back(&a, bo_a, 32, 32)
        .chunks_exact(4)
        .all(|p| p == [0, 0xFF, 0, 0xFF]));
    assert!(read_back(&b, bo_b, 32, 32)
        .chunks_exact(4)
        .all(|p| p == [0, 0, 0xFF, 0xFF]));
    // A handle of A's means nothing to B (B's handles are its own numbers).
    let foreign = bo_a + 100;
    let mut m = Map {
        handle: foreign,
        ..Map::new_zeroed()
    };
    assert_eq!(
        errno(ioctl(&b, vg::MAP, m.as_mut_bytes())),
        Some(libc::ENOENT)
    );
}

#[test]
fn malformed_ioctls_get_clear_errnos_and_the_daemons_keep_serving() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let fd = render_node();
    // Truncated payloads.
    for nr in [
        dc::VERSION,
        dc::GET_CAP,
        dc::GEM_CLOSE,
        vg::GETPARAM,
        vg::RESOURCE_CREATE,
        vg::MAP,
        vg::WAIT,
        vg::EXECBUFFER,
        vg::TRANSFER_TO_HOST,
        vg::GET_CAPS,
    ] {
        assert_eq!(
            errno(ioctl(&fd, nr, &mut [0u8; 3])),
            Some(libc::EINVAL),
            "nr {nr:#x}"
        );
    }
    // A count running past the payload.
    let header = ExecbufferHeader {
        size: 1 << 20,
        ..ExecbufferHeader::new_zeroed()
    };
    let mut payload = Builder::new(&header).build();
    assert_eq!(
        errno(ioctl(&fd, vg::EXECBUFFER, &mut payload)),
        Some(libc::EINVAL)
    );
    // An oversized count.
    let header = ExecbufferHeader {
        num_bo_handles: u32::MAX,
        ..ExecbufferHeader::new_zeroed()
    };
    let mut payload = Builder::new(&header).build();
    assert_eq!(
        errno(ioctl(&fd, vg::EXECBUFFER, &mut payload)),
        Some(libc::EINVAL)
    );
    // Unknown handles, flags and nrs.
    let mut wait = Wait {
        handle: 77,
        flags: 0,
    };
    assert_eq!(
        errno(ioctl(&fd, vg::WAIT, wait.as_mut_bytes())),
        Some(libc::ENOENT)
    );
    let header = ExecbufferHeader {
        flags: 0x80,
        ..ExecbufferHeader::new_zeroed()
    };
    assert_eq!(
        errno(ioctl(
            &fd,
            vg::EXECBUFFER,
            &mut Builder::new(&header).build()
        )),
        Some(libc::EINVAL)
    );
    let header = ExecbufferHeader {
        num_bo_handles: 1,
        ..ExecbufferHeader::new_zeroed()
    };
    let mut payload = Builder::new(&header).array(&[55u32]).build();
    assert_eq!(
        errno(ioctl(&fd, vg::EXECBUFFER, &mut payload)),
        Some(libc::ENOENT)
    );
    assert_eq!(errno(ioctl(&fd, 0x7F, &mut [0u8; 8])), Some(libc::ENOTTY));
    let mut close = GemClose { handle: 9, pad: 0 };
    assert_eq!(
        errno(ioctl(&fd, dc::GEM_CLOSE, close.as_mut_bytes())),
        Some(libc::EINVAL)
    );
    // The file still works.
    let (bo, res) = create(&fd, 16, 16);
    clear(&fd, bo, res, [1.0, 1.0, 1.0, 1.0]);
    let _ = ExecSyncobj::new_zeroed();
}

fn objects() -> String {
    let fd = SchemeFd::open("/scheme/virtio-gpu/objects", 0).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let n = fd.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn a_killed_client_has_its_host_objects_released() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let mut child = Command::new(workspace_binary("gpu-tool"))
        .arg("drm-hold")
        .env(scheme_seam::linux::SCHEME_DIR, bus_dir())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "holding");
    let held = objects();
    assert!(
        held.contains("resource ") && held.contains("context "),
        "{held}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    // drmd's own control session owns nothing.
    while !objects().is_empty() {
        assert!(Instant::now() < deadline, "still held: {}", objects());
        std::thread::sleep(Duration::from_millis(10));
    }
}
