//! scheme:drm through all three daemons and the real device, as Mesa uses
//! it: the DRM-level clear-and-read-back of ABI reference §5.5, two
//! clients at once, malformed ioctls, and a client that dies.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drm_uapi::core::{self as dc, GemClose, GetCap, PrimeHandle};
use drm_uapi::syncobj as so;
use drm_uapi::virtgpu::{self as vg, Box3d, ExecbufferHeader, ResourceCreate, ResourceInfo, Wait};
use drm_uapi::wire::Builder;
use drmd::client::DrmFd;
use scheme_seam::{SchemeFd, Stat};
use stack_tests::{bus_dir, device_objects, kill_holder_and_await_release, stack, Daemon};
use sync_client::{SyncFile, SyncobjTable, TimelineOwner};
use virgl_stream::clear_stream;
use virgl_stream::format::R8G8B8A8_UNORM;
use zerocopy::{FromZeros, IntoBytes};

/// The daemons serve fixed names in the bus directory: tests take turns.
static DAEMONS: Mutex<()> = Mutex::new(());

fn render_node() -> DrmFd {
    DrmFd::open("/scheme/drm/renderD128").unwrap()
}

fn errno(r: std::io::Result<impl std::fmt::Debug>) -> Option<i32> {
    r.unwrap_err().raw_os_error()
}

/// RESOURCE_CREATE of a `w × h` RGBA8 render target; (bo handle, res id).
fn create(fd: &DrmFd, w: u32, h: u32) -> (u32, u32) {
    let (bo, res) = fd
        .resource_create(drmd::client::render_target(w, h))
        .unwrap();
    assert!(bo != 0 && res != 0);
    (bo, res)
}

/// EXECBUFFER of a clear of resource `res` to `rgba` with `bo` listed;
/// returns the out-fence.
fn clear(fd: &DrmFd, bo: u32, res: u32, rgba: [f32; 4]) -> SyncFile {
    let stream = clear_stream(res, R8G8B8A8_UNORM, rgba);
    fd.execbuffer(&stream, &[bo], None, true).unwrap().unwrap()
}

/// TRANSFER_FROM_HOST of the whole `w × h` object, WAIT, MAP and read.
fn read_back(fd: &DrmFd, bo: u32, w: u32, h: u32) -> Vec<u8> {
    fd.transfer(bo, Box3d::whole(w, h), false).unwrap();
    fd.wait(bo, false).unwrap();
    let map = fd.map(bo, (w * h * 4) as usize).unwrap();
    let mut pixels = vec![0u8; (w * h * 4) as usize];
    map.read_bytes(0, &mut pixels);
    pixels
}

#[test]
fn clear_and_read_back_through_scheme_drm() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let fd = render_node();

    // libdrm's drmGetMinorType: a character device of major 226, whose
    // minor says render node (128) or primary (0).
    let st = fd.stat().unwrap();
    assert_eq!(st.mode, Stat::CHAR_DEVICE | 0o666);
    assert_eq!(st.rdev, (226 << 8) | 128);
    let card = DrmFd::open("/scheme/drm/card0").unwrap().stat().unwrap();
    assert_eq!(card.mode & Stat::TYPE_MASK, Stat::CHAR_DEVICE);
    assert_eq!(card.rdev, 226 << 8);

    let version = fd.version().unwrap();
    assert_eq!(version.name, "virtio_gpu");
    assert_eq!(
        version.number,
        (0, 1, 0),
        "minor 1 enables fence fds in Mesa"
    );
    // GETPARAM, answered from what virtio-gpud negotiated.
    assert_eq!(fd.getparam(vg::PARAM_3D_FEATURES).unwrap(), 1);
    assert_eq!(fd.getparam(vg::PARAM_CAPSET_QUERY_FIX).unwrap(), 1);
    assert_eq!(fd.getparam(vg::PARAM_CONTEXT_INIT).unwrap(), 0);
    assert_eq!(
        fd.getparam(vg::PARAM_SUPPORTED_CAPSET_IDS).unwrap() & 0b110,
        0b110
    );
    assert_eq!(errno(fd.getparam(99)), Some(libc::EINVAL));
    // GET_CAPS for capset 2 at Mesa's size.
    let caps = fd.get_caps(2, 2, 1376).unwrap();
    assert_eq!(
        u32::from_le_bytes(caps[..4].try_into().unwrap()),
        2,
        "capset max_version"
    );
    assert_eq!(
        errno(fd.get_caps(2, 3, 1376)),
        Some(libc::EINVAL),
        "no version 3"
    );

    // RESOURCE_CREATE, EXECBUFFER with an out-fence, wait on it.
    let (w, h) = (64, 64);
    let (bo, res) = create(&fd, w, h);
    let fence = clear(&fd, bo, res, [1.0, 0.0, 0.0, 1.0]);
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
    fd.wait(bo, true).unwrap();
    fd.gem_close(bo).unwrap();
    assert_eq!(errno(fd.map(bo, 16)), Some(libc::ENOENT));
}

#[test]
fn an_upload_through_map_is_used_by_a_submit_and_read_back() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let fd = render_node();
    let (w, h) = (32u32, 16u32);
    let (src, src_res) = create(&fd, w, h);
    let (dst, dst_res) = create(&fd, w, h);
    let pattern: Vec<u8> = (0..w * h * 4).map(|i| (i * 13 + i / 7) as u8).collect();
    fd.map(src, pattern.len()).unwrap().write_bytes(0, &pattern);
    fd.transfer(src, Box3d::whole(w, h), true).unwrap();
    let mut s = virgl_stream::Stream::new();
    s.create_sub_ctx(1).set_sub_ctx(1).resource_copy_region(
        dst_res,
        0,
        [0, 0, 0],
        src_res,
        0,
        [0, 0, 0, w, h, 1],
    );
    let fence = fd
        .execbuffer(&s.to_bytes(), &[src, dst], None, true)
        .unwrap()
        .unwrap();
    assert!(fence.wait(Duration::from_secs(10)).unwrap());
    assert!(
        read_back(&fd, dst, w, h) == pattern,
        "the copy holds the uploaded pattern"
    );
}

#[test]
fn two_clients_render_their_own_colours_and_cannot_name_each_others_objects() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let (a, b) = (render_node(), render_node());
    let (bo_a, res_a) = create(&a, 32, 32);
    let (bo_b, res_b) = create(&b, 32, 32);
    let fences = [
        clear(&a, bo_a, res_a, [0.0, 1.0, 0.0, 1.0]),
        clear(&b, bo_b, res_b, [0.0, 0.0, 1.0, 1.0]),
    ];
    assert!(fences
        .iter()
        .all(|f| f.wait(Duration::from_secs(10)).unwrap()));
    assert!(read_back(&a, bo_a, 32, 32)
        .chunks_exact(4)
        .all(|p| p == [0, 0xFF, 0, 0xFF]));
    assert!(read_back(&b, bo_b, 32, 32)
        .chunks_exact(4)
        .all(|p| p == [0, 0, 0xFF, 0xFF]));
    // A handle of A's means nothing to B (B's handles are its own numbers).
    assert_eq!(errno(b.map(bo_a + 100, 16)), Some(libc::ENOENT));
}

#[test]
fn an_in_fence_holds_the_submit_until_it_signals() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let gate = TimelineOwner::create("test gate").unwrap();
    let gate_file = SyncFile::for_fence(gate.id(), 1).unwrap();

    // Non-blocking: a submit whose in-fence is pending answers EAGAIN and
    // leaves nothing behind.
    let nb = DrmFd::open_with_flags("/scheme/drm/renderD128", libc::O_NONBLOCK as usize).unwrap();
    let (bo, res) = create(&nb, 16, 16);
    let red = clear_stream(res, R8G8B8A8_UNORM, [1.0, 0.0, 0.0, 1.0]);
    let green = clear_stream(res, R8G8B8A8_UNORM, [0.0, 1.0, 0.0, 1.0]);
    let done = nb.execbuffer(&red, &[bo], None, true).unwrap().unwrap();
    assert!(done.wait(Duration::from_secs(10)).unwrap());
    let pending = nb.execbuffer(&green, &[bo], Some(&gate_file), true);
    assert_eq!(errno(pending), Some(libc::EAGAIN));
    // A token that names no sync_file: EINVAL, as a bad fd in Linux.
    let header = ExecbufferHeader {
        flags: vg::EXECBUF_FENCE_FD_IN,
        size: green.len() as u32,
        ..ExecbufferHeader::new_zeroed()
    };
    let mut bad = Builder::new(&header)
        .array(&green)
        .array(&[0xBADu64])
        .build();
    assert_eq!(
        errno(nb.ioctl(vg::EXECBUFFER, &mut bad)),
        Some(libc::EINVAL)
    );

    // Blocking: the submit waits in drmd until the gate opens.
    let fd = render_node();
    let (bo_b, res_b) = create(&fd, 16, 16);
    let blue = clear_stream(res_b, R8G8B8A8_UNORM, [0.0, 0.0, 1.0, 1.0]);
    let out = std::thread::scope(|scope| {
        let parked = scope.spawn(|| fd.execbuffer(&blue, &[bo_b], Some(&gate_file), true));
        gate.signal(1).unwrap();
        parked.join().unwrap()
    });
    assert!(out.unwrap().unwrap().wait(Duration::from_secs(10)).unwrap());
    assert!(read_back(&fd, bo_b, 16, 16)
        .chunks_exact(4)
        .all(|p| p == [0, 0, 0xFF, 0xFF]));

    // The gate is open now: the non-blocking submit goes through, and the
    // object holds its colour, not the one before.
    let out = nb
        .execbuffer(&green, &[bo], Some(&gate_file), true)
        .unwrap();
    assert!(out.unwrap().wait(Duration::from_secs(10)).unwrap());
    nb.transfer(bo, Box3d::whole(16, 16), false).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = nb.wait(bo, true) {
        assert_eq!(e.raw_os_error(), Some(libc::EBUSY));
        assert!(Instant::now() < deadline, "the transfer never finished");
        std::thread::sleep(Duration::from_millis(1));
    }
    let map = nb.map(bo, 16 * 16 * 4).unwrap();
    let mut pixels = vec![0u8; 16 * 16 * 4];
    map.read_bytes(0, &mut pixels);
    assert!(pixels.chunks_exact(4).all(|p| p == [0, 0xFF, 0, 0xFF]));
}

/// SYNCOBJ_CREATE on the DRM file.
fn syncobj_create(fd: &DrmFd) -> u32 {
    let mut c = so::Create::new_zeroed();
    fd.ioctl(so::CREATE, c.as_mut_bytes()).unwrap();
    c.handle
}

/// FD_TO_HANDLE with IMPORT_SYNC_FILE: `file`'s fence into `handle`.
fn syncobj_import(fd: &DrmFd, handle: u32, file: &SyncFile) {
    let mut f = so::FdToHandle {
        handle,
        flags: so::FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
        token: file.token().unwrap(),
        ..so::FdToHandle::new_zeroed()
    };
    fd.ioctl(so::FD_TO_HANDLE, f.as_mut_bytes()).unwrap();
}

/// SYNCOBJ_RESET (or another handle-array op `nr`) of `handles`.
fn syncobj_array_op(fd: &DrmFd, nr: u64, handles: &[u32]) -> std::io::Result<usize> {
    let header = so::Array {
        count_handles: handles.len() as u32,
        pad: 0,
    };
    fd.ioctl(nr, &mut Builder::new(&header).array(handles).build())
}

/// SYNCOBJ_WAIT for `handle` without waiting: whether it has signalled.
fn syncobj_signaled(fd: &DrmFd, handle: u32) -> bool {
    match syncobj_status(fd, handle) {
        0 => true,
        libc::ETIME => false,
        e => panic!("SYNCOBJ_WAIT: errno {e}"),
    }
}

/// EXECBUFFER with in- and out-syncobjs (binary: point 0).
fn execbuffer_syncobjs(
    fd: &DrmFd,
    stream: &[u8],
    bo: u32,
    ins: &[u32],
    outs: &[u32],
) -> std::io::Result<usize> {
    let header = ExecbufferHeader {
        size: stream.len() as u32,
        num_bo_handles: 1,
        syncobj_stride: 16,
        num_in_syncobjs: ins.len() as u32,
        num_out_syncobjs: outs.len() as u32,
        ..ExecbufferHeader::new_zeroed()
    };
    let syncobj = |handle: &u32| vg::ExecSyncobj {
        handle: *handle,
        flags: 0,
        point: 0,
    };
    let ins: Vec<_> = ins.iter().map(syncobj).collect();
    let outs: Vec<_> = outs.iter().map(syncobj).collect();
    let mut payload = Builder::new(&header)
        .array(stream)
        .array(&[bo])
        .array(&ins)
        .array(&outs)
        .build();
    fd.ioctl(vg::EXECBUFFER, &mut payload)
}

#[test]
fn execbuffer_waits_on_in_syncobjs_and_signals_out_syncobjs() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let gate = TimelineOwner::create("syncobj gate").unwrap();
    let fd = std::sync::Arc::new(render_node());
    let (bo, res) = create(&fd, 16, 16);
    let stream = clear_stream(res, R8G8B8A8_UNORM, [1.0, 1.0, 0.0, 1.0]);
    // `held` carries the gate's pending fence; `done` gets the submit's.
    let (held, done) = (syncobj_create(&fd), syncobj_create(&fd));
    syncobj_import(&fd, held, &SyncFile::for_fence(gate.id(), 1).unwrap());
    assert!(!syncobj_signaled(&fd, held));

    // Parked behind `held`; woken by a timeline moving.
    let (tx, rx) = std::sync::mpsc::channel();
    let submit = {
        let (fd, stream, tx) = (fd.clone(), stream.clone(), tx.clone());
        move || tx.send(execbuffer_syncobjs(&fd, &stream, bo, &[held], &[done]).map(drop))
    };
    std::thread::spawn(submit.clone());
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "ran before its in-syncobj"
    );
    gate.signal(1).unwrap();
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the gate's signal never woke the submit")
        .unwrap();
    fd.wait(bo, false).unwrap();
    assert!(
        syncobj_signaled(&fd, done),
        "the out-syncobj has the submit's fence"
    );
    assert!(read_back(&fd, bo, 16, 16)
        .chunks_exact(4)
        .all(|p| p == [0xFF, 0xFF, 0, 0xFF]));

    // Parked behind a fence no timeline will signal; woken when another
    // party, holding the syncobj through syncd alone (not through drmd),
    // signals it: no timeline moves and drmd hears of no request.
    syncobj_import(&fd, held, &SyncFile::for_fence(gate.id(), 2).unwrap());
    syncobj_array_op(&fd, so::RESET, &[done]).unwrap();
    let export = so::HandleToFd {
        handle: held,
        ..so::HandleToFd::new_zeroed()
    };
    let shared = fd.fd_of(so::HANDLE_TO_FD, export.as_bytes()).unwrap();
    let other = SyncobjTable::open().unwrap();
    let theirs = other.import(&SchemeFd::from_fd(shared)).unwrap();
    std::thread::spawn(submit);
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "ran before its in-syncobj"
    );
    other.signal(&[theirs]).unwrap();
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the other party's SYNCOBJ_SIGNAL never woke the submit")
        .unwrap();
    fd.wait(bo, false).unwrap();
    assert!(syncobj_signaled(&fd, done));
}

#[test]
fn malformed_ioctls_get_clear_errnos_and_the_daemons_keep_serving() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let fd = render_node();
    // Truncated payloads, for every ioctl that decodes one.
    for nr in [
        dc::VERSION,
        dc::GET_CAP,
        dc::GEM_CLOSE,
        dc::PRIME_FD_TO_HANDLE,
        vg::GETPARAM,
        vg::GET_CAPS,
        vg::CONTEXT_INIT,
        vg::RESOURCE_CREATE,
        vg::RESOURCE_INFO,
        vg::MAP,
        vg::WAIT,
        vg::EXECBUFFER,
        vg::TRANSFER_TO_HOST,
        vg::TRANSFER_FROM_HOST,
        so::CREATE,
        so::DESTROY,
        so::FD_TO_HANDLE,
        so::WAIT,
        so::RESET,
        so::SIGNAL,
        so::TIMELINE_WAIT,
        so::QUERY,
        so::TRANSFER,
        so::TIMELINE_SIGNAL,
    ] {
        assert_eq!(
            errno(fd.ioctl(nr, &mut [0u8; 3])),
            Some(libc::EINVAL),
            "nr {nr:#x}"
        );
    }
    // SET_CLIENT_CAP is for the primary node only, as in Linux.
    assert_eq!(
        errno(fd.ioctl(dc::SET_CLIENT_CAP, &mut [0u8; 16])),
        Some(libc::EACCES)
    );
    let card = DrmFd::open("/scheme/drm/card0").unwrap();
    assert_eq!(
        errno(card.ioctl(dc::SET_CLIENT_CAP, &mut [0u8; 3])),
        Some(libc::EINVAL)
    );
    // A count running past the payload.
    let header = ExecbufferHeader {
        size: 1 << 20,
        ..ExecbufferHeader::new_zeroed()
    };
    let mut payload = Builder::new(&header).build();
    assert_eq!(
        errno(fd.ioctl(vg::EXECBUFFER, &mut payload)),
        Some(libc::EINVAL)
    );
    // A count over the wire's cap (not carried): ENOMEM, as Linux's
    // allocation of such an array fails.
    let header = ExecbufferHeader {
        num_bo_handles: u32::MAX,
        ..ExecbufferHeader::new_zeroed()
    };
    let mut payload = Builder::new(&header).build();
    assert_eq!(
        errno(fd.ioctl(vg::EXECBUFFER, &mut payload)),
        Some(libc::ENOMEM)
    );
    // Unknown handles, flags and nrs.
    let mut wait = Wait {
        handle: 77,
        flags: 0,
    };
    assert_eq!(
        errno(fd.ioctl(vg::WAIT, wait.as_mut_bytes())),
        Some(libc::ENOENT)
    );
    let header = ExecbufferHeader {
        flags: 0x80,
        ..ExecbufferHeader::new_zeroed()
    };
    assert_eq!(
        errno(fd.ioctl(vg::EXECBUFFER, &mut Builder::new(&header).build())),
        Some(libc::EINVAL)
    );
    let header = ExecbufferHeader {
        num_bo_handles: 1,
        ..ExecbufferHeader::new_zeroed()
    };
    let mut payload = Builder::new(&header).array(&[55u32]).build();
    assert_eq!(
        errno(fd.ioctl(vg::EXECBUFFER, &mut payload)),
        Some(libc::ENOENT)
    );
    assert_eq!(errno(fd.ioctl(0x7F, &mut [0u8; 8])), Some(libc::EINVAL));
    let mut close = GemClose { handle: 9, pad: 0 };
    assert_eq!(
        errno(fd.ioctl(dc::GEM_CLOSE, close.as_mut_bytes())),
        Some(libc::EINVAL)
    );
    // The file still works.
    let (bo, res) = create(&fd, 16, 16);
    clear(&fd, bo, res, [1.0, 1.0, 1.0, 1.0]);
}

/// One empty EXECBUFFER once stopped the device's queue for everyone
/// (a zero-length descriptor); Linux answers it with 0 and sends the bare
/// command.
#[test]
fn test_regression_an_empty_execbuffer_is_answered_and_the_device_keeps_serving() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let fd = render_node();
    let other = render_node();
    // Before and after a real submit (the second one finds an arena).
    for _ in 0..2 {
        let fence = fd.execbuffer(&[], &[], None, true).unwrap().unwrap();
        assert!(fence.wait(Duration::from_secs(10)).unwrap());
        let (bo, res) = create(&fd, 16, 16);
        fenced(clear(&fd, bo, res, [0.0, 1.0, 0.0, 1.0]));
    }
    // Everyone, new files included, still renders.
    for client in [&other, &render_node()] {
        let (bo, res) = create(client, 16, 16);
        fenced(clear(client, bo, res, [0.0, 0.0, 1.0, 1.0]));
        assert!(all(&read_back(client, bo, 16, 16), [0, 0, 0xFF, 0xFF]));
    }
}

/// The host kills a context that hits an error and then answers every
/// command of it OK while running none: the client learned nothing and
/// rendered garbage. Its next submit is EIO now, and only its own.
#[test]
fn a_context_the_host_killed_fails_its_next_submit_with_eio_and_only_it() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let fd = render_node();
    let other = render_node();
    let (bo, res) = create(&fd, 16, 16);
    fenced(clear(&fd, bo, res, [1.0, 0.0, 0.0, 1.0]));
    // Well framed (the walker passes it), but BIND_OBJECT of a blend
    // state that does not exist: virglrenderer kills the context.
    let mut stream = virgl_stream::Stream::new();
    // BIND_OBJECT (2) of an object of type BLEND (1).
    stream.command(2, 1, &[0xbad]);
    let fence = fd
        .execbuffer(&stream.to_bytes(), &[], None, true)
        .unwrap()
        .unwrap();
    fenced(fence);
    let stream = clear_stream(res, R8G8B8A8_UNORM, [0.0, 1.0, 0.0, 1.0]);
    assert_eq!(
        errno(fd.execbuffer(&stream, &[bo], None, false)),
        Some(libc::EIO),
        "the lost context's next submit"
    );
    assert!(stack_tests::scheme_text("/scheme/virtio-gpu/stats").contains("contexts_lost 1"));
    // Everyone else renders, a new file of the same process too.
    for client in [&other, &render_node()] {
        let (bo, res) = create(client, 16, 16);
        fenced(clear(client, bo, res, [0.0, 0.0, 1.0, 1.0]));
        assert!(all(&read_back(client, bo, 16, 16), [0, 0, 0xFF, 0xFF]));
    }
    // Closing the lost file releases its objects as usual.
    drop(fd);
    await_released(res);
}

/// 256 DRM files open at once, each rendering: the device's 32 memory
/// regions no longer bound the clients (a file's memory comes from its
/// user's shared regions).
#[test]
fn two_hundred_fifty_six_clients_render_at_once() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let files: Vec<DrmFd> = (0..256).map(|_| render_node()).collect();
    let objects: Vec<(u32, u32)> = files.iter().map(|fd| create(fd, 16, 16)).collect();
    let fences: Vec<SyncFile> = files
        .iter()
        .zip(&objects)
        .enumerate()
        .map(|(i, (fd, &(bo, res)))| clear(fd, bo, res, [(i % 2) as f32, 0.0, 1.0, 1.0]))
        .collect();
    fences.into_iter().for_each(fenced);
    for (i, (fd, &(bo, _))) in files.iter().zip(&objects).enumerate().step_by(37) {
        let red = if i % 2 == 1 { 0xFF } else { 0 };
        assert!(
            all(&read_back(fd, bo, 16, 16), [red, 0, 0xFF, 0xFF]),
            "file {i}"
        );
    }
}

#[test]
fn a_killed_client_has_its_host_objects_released() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    // drmd's own control session owns nothing.
    assert_eq!(device_objects(), "");
    let held = kill_holder_and_await_release("drm-hold");
    assert!(
        held.contains("resource ") && held.contains("context "),
        "{held}"
    );
}

#[test]
fn drmd_keeps_serving_when_syncd_dies() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let stack = stack();
    let fd = render_node();
    let (bo, res) = create(&fd, 16, 16);
    assert!(clear(&fd, bo, res, [1.0, 0.0, 0.0, 1.0])
        .wait(Duration::from_secs(10))
        .unwrap());

    // SAFETY: a plain signal to a child process this test started.
    unsafe { libc::kill(stack.sync.pid() as libc::pid_t, libc::SIGKILL) };
    let log = bus_dir().join("drm.log");
    let lost = || {
        std::fs::read_to_string(&log)
            .unwrap()
            .matches("fence progress events lost")
            .count()
    };

    // Everything that does not need syncd still works; what does fails.
    assert_eq!(fd.version().unwrap().name, "virtio_gpu");
    assert_eq!(fd.getparam(vg::PARAM_3D_FEATURES).unwrap(), 1);
    let second = render_node();
    create(&second, 16, 16);
    let stream = clear_stream(res, R8G8B8A8_UNORM, [0.0, 1.0, 0.0, 1.0]);
    assert!(fd.execbuffer(&stream, &[bo], None, true).is_err());
    // drmd noticed (once its progress descriptor reported the hang-up) or
    // not yet; either way a descriptor that stays readable must not spin
    // its loop, which would log the loss on every turn.
    std::thread::sleep(Duration::from_millis(200));
    assert!(lost() <= 1, "drmd keeps waking for a dead syncd");
    assert_eq!(fd.version().unwrap().name, "virtio_gpu");
}

fn all(pixels: &[u8], rgba: [u8; 4]) -> bool {
    pixels.chunks_exact(4).all(|p| p == rgba)
}

fn fenced(fence: SyncFile) {
    assert!(fence.wait(Duration::from_secs(10)).unwrap());
}

/// Waits until virtio-gpud's table no longer lists resource `res`.
fn await_released(res: u32) {
    let line = format!("resource {res} ");
    let deadline = Instant::now() + Duration::from_secs(5);
    while device_objects().contains(&line) {
        assert!(Instant::now() < deadline, "{}", device_objects());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn prime_shares_a_buffer_between_files_until_the_last_user_lets_go() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let (w, h) = (16u32, 16u32);
    let a = render_node();
    let b = render_node();
    let mut cap = GetCap {
        capability: dc::DRM_CAP_PRIME,
        value: 0,
    };
    a.ioctl(dc::GET_CAP, cap.as_mut_bytes()).unwrap();
    assert_eq!(
        cap.value,
        dc::DRM_PRIME_CAP_IMPORT | dc::DRM_PRIME_CAP_EXPORT
    );

    let (bo_a, res) = create(&a, w, h);
    fenced(clear(&a, bo_a, res, [1.0, 0.0, 0.0, 1.0]));
    let dma_buf = a.prime_export(bo_a).unwrap();
    assert_eq!(dma_buf.stat().unwrap().size, 4096, "the buffer's size");
    // The exporter gets its own handle back; another file gets a handle
    // of its own to the same object, the same one each time.
    assert_eq!(a.prime_import(&dma_buf).unwrap(), bo_a);
    let bo_b = b.prime_import(&dma_buf).unwrap();
    assert_eq!(b.prime_import(&dma_buf).unwrap(), bo_b);
    let mut info = ResourceInfo {
        bo_handle: bo_b,
        ..ResourceInfo::new_zeroed()
    };
    b.ioctl(vg::RESOURCE_INFO, info.as_mut_bytes()).unwrap();
    assert_eq!((info.res_handle, info.size), (res, 4096));

    // Both render into it and see each other's pixels.
    assert!(
        all(&read_back(&b, bo_b, w, h), [0xFF, 0, 0, 0xFF]),
        "A's red in B"
    );
    fenced(clear(&b, bo_b, res, [0.0, 1.0, 0.0, 1.0]));
    assert!(
        all(&read_back(&a, bo_a, w, h), [0, 0xFF, 0, 0xFF]),
        "B's green in A"
    );
    let mut through_dma_buf = vec![0u8; (w * h * 4) as usize];
    dma_buf
        .map(4096)
        .unwrap()
        .read_bytes(0, &mut through_dma_buf);
    assert!(
        all(&through_dma_buf, [0, 0xFF, 0, 0xFF]),
        "mmap of the dma-buf"
    );

    // The exporter leaves entirely (its memory backs the buffer); B and the
    // dma-buf keep it alive.
    a.gem_close(bo_a).unwrap();
    drop(a);
    fenced(clear(&b, bo_b, res, [0.0, 0.0, 1.0, 1.0]));
    assert!(all(&read_back(&b, bo_b, w, h), [0, 0, 0xFF, 0xFF]));
    drop(dma_buf);
    assert!(device_objects().contains(&format!("resource {res} ")));
    b.gem_close(bo_b).unwrap();
    await_released(res);
}

#[test]
fn a_dma_buf_alone_keeps_its_buffer_for_a_later_import() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let (w, h) = (16u32, 16u32);
    let a = render_node();
    let (bo, res) = create(&a, w, h);
    fenced(clear(&a, bo, res, [1.0, 1.0, 0.0, 1.0]));
    let dma_buf = a.prime_export(bo).unwrap();
    drop(a);
    let c = render_node();
    let bo_c = c.prime_import(&dma_buf).unwrap();
    assert!(all(&read_back(&c, bo_c, w, h), [0xFF, 0xFF, 0, 0xFF]));
    // Exporting it again gives a dma-buf of the same object.
    let again = c.prime_export(bo_c).unwrap();
    assert_eq!(c.prime_import(&again).unwrap(), bo_c);
    drop((dma_buf, again));
    assert!(device_objects().contains(&format!("resource {res} ")));
    c.gem_close(bo_c).unwrap();
    await_released(res);
}

#[test]
fn prime_refuses_unknown_handles_flags_and_fds() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let fd = render_node();
    let (bo, res) = create(&fd, 16, 16);
    let export = |handle: u32, flags: u32| {
        let h = PrimeHandle {
            handle,
            flags,
            token: 0,
        };
        fd.fd_of(dc::PRIME_HANDLE_TO_FD, h.as_bytes())
    };
    assert_eq!(errno(export(99, 0)), Some(libc::ENOENT));
    assert_eq!(errno(export(bo, 0x4)), Some(libc::EINVAL));
    assert_eq!(
        errno(fd.fd_of(dc::PRIME_HANDLE_TO_FD, &[0u8; 3])),
        Some(libc::EINVAL)
    );
    // The fd comes from the dup, not from the call.
    let mut h = PrimeHandle {
        handle: bo,
        ..PrimeHandle::new_zeroed()
    };
    assert_eq!(
        errno(fd.ioctl(dc::PRIME_HANDLE_TO_FD, h.as_mut_bytes())),
        Some(libc::EOPNOTSUPP)
    );
    // A token naming no dma-buf of this device (a made-up one, and a
    // sync_file's) is EINVAL, as Linux answers for an fd of another kind;
    // a client library's "not open" is EBADF.
    let import = |token: u64| {
        let mut h = PrimeHandle {
            token,
            ..PrimeHandle::new_zeroed()
        };
        fd.ioctl(dc::PRIME_FD_TO_HANDLE, h.as_mut_bytes())
    };
    assert_eq!(errno(import(0x1234)), Some(libc::EINVAL));
    let fence = clear(&fd, bo, res, [1.0, 1.0, 1.0, 1.0]);
    assert_eq!(errno(import(fence.token().unwrap())), Some(libc::EINVAL));
    assert_eq!(
        errno(import(scheme_seam::token::NOT_OPEN)),
        Some(libc::EBADF)
    );
    // A dma-buf answers nothing but its token.
    let dma_buf = export(bo, 0).unwrap();
    let dma_buf = SchemeFd::from_fd(dma_buf);
    assert_eq!(
        errno(dma_buf.call(&mut [0u8; 8], &[vg::GETPARAM])),
        Some(libc::ENOTTY)
    );
    assert_eq!(errno(dma_buf.mmap(4096, 4096, true)), Some(libc::EINVAL));
    // The file still works.
    fenced(clear(&fd, bo, res, [0.0, 0.0, 0.0, 1.0]));
}

/// drmd's `stats` line for ioctl `name`: (calls, hops, bytes_in, bytes_out,
/// copied).
fn ioctl_counters(name: &str) -> (u64, u64, u64, u64, u64) {
    let text = stack_tests::scheme_text("/scheme/drm/stats");
    let line = text
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no {name} in {text}"));
    let w: Vec<u64> = line
        .split_whitespace()
        .skip(2)
        .skip(1)
        .step_by(2)
        .map(|v| v.parse().unwrap())
        .collect();
    (w[0], w[1], w[2], w[3], w[4])
}

#[test]
fn drmd_counts_the_hops_and_copies_of_each_ioctl() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let fd = render_node();
    let (bo, res) = create(&fd, 16, 16);
    let stream = clear_stream(res, R8G8B8A8_UNORM, [1.0, 0.0, 0.0, 1.0]);
    // The first submit also makes the file's arena (ALLOC and mmap at
    // virtio-gpud); count the ones after it.
    assert!(fd
        .execbuffer(&stream, &[bo], None, false)
        .unwrap()
        .is_none());
    let first = ioctl_counters("VIRTGPU_EXECBUFFER");
    assert_eq!((first.0, first.1), (1, 4));
    fd.execbuffer(&stream, &[bo], None, false).unwrap();
    fd.execbuffer(&stream, &[bo], None, true).unwrap().unwrap();
    fd.getparam(vg::PARAM_3D_FEATURES).unwrap();
    fd.wait(bo, false).unwrap();
    for _ in 0..10 {
        fd.wait(bo, true).unwrap();
    }
    // A submit: the client's call, then virtio-gpud's QUEUE; its stream
    // copied once, into the arena, and not sent on.
    let now = ioctl_counters("VIRTGPU_EXECBUFFER");
    let (calls, hops, bytes_in, bytes_out, copied) = (
        now.0 - first.0,
        now.1 - first.1,
        now.2 - first.2,
        now.3 - first.3,
        now.4 - first.4,
    );
    assert_eq!(calls, 2);
    assert_eq!(
        hops,
        2 * 2,
        "one hop to drmd, one to virtio-gpud, per submit"
    );
    assert!(bytes_in >= 2 * stream.len() as u64);
    assert!(
        bytes_out < 2 * stream.len() as u64,
        "the stream does not travel on"
    );
    assert_eq!(copied, 2 * stream.len() as u64);
    // The out-fence's sync_file: the client's dup, then the syncd open of
    // the fence (and, this first time, the device timeline's id from
    // virtio-gpud, kept afterwards).
    let (calls, hops, ..) = ioctl_counters("VIRTGPU_EXECBUFFER_FD");
    assert_eq!((calls, hops), (1, 3));
    // GETPARAM and WAIT are answered by drmd alone: WAIT from syncd's page.
    assert_eq!(ioctl_counters("VIRTGPU_GETPARAM").1, 1);
    let (calls, hops, ..) = ioctl_counters("VIRTGPU_WAIT");
    assert_eq!((calls, hops), (11, 11), "no round trip to syncd per WAIT");
}

/// SYNCOBJ_WAIT for `handle` until CLOCK_MONOTONIC `deadline_ns`.
fn syncobj_wait_until(fd: &DrmFd, handle: u32, deadline_ns: i64) -> std::io::Result<usize> {
    let header = so::WaitHeader {
        timeout_nsec: deadline_ns,
        count_handles: 1,
        ..so::WaitHeader::new_zeroed()
    };
    fd.ioctl(
        so::WAIT,
        &mut Builder::new(&header).array(&[handle]).build(),
    )
}

fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

#[test]
fn a_long_syncobj_wait_stalls_nobody_else_and_ends_at_its_signal_or_deadline() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let owner = TimelineOwner::create("held-back").unwrap();
    let a = std::sync::Arc::new(render_node());
    let held = syncobj_create(&a);
    syncobj_import(&a, held, &SyncFile::for_fence(owner.id(), 1).unwrap());
    // A waits (30 s at most) for a fence nobody has signalled yet.
    let waiter = {
        let a = a.clone();
        std::thread::spawn(move || syncobj_wait_until(&a, held, monotonic_ns() + 30_000_000_000))
    };
    // Let A's wait reach drmd, then B is served meanwhile.
    std::thread::sleep(Duration::from_millis(200));
    let b = render_node();
    assert_eq!(b.getparam(vg::PARAM_3D_FEATURES).unwrap(), 1);
    let (bo, res) = create(&b, 16, 16);
    assert!(clear(&b, bo, res, [1.0, 1.0, 1.0, 1.0])
        .wait(Duration::from_secs(10))
        .unwrap());
    assert!(!waiter.is_finished(), "A's wait ended before its fence did");
    // The signal ends A's wait.
    owner.signal(1).unwrap();
    assert!(waiter.join().unwrap().is_ok());
    // A wait whose deadline passes first ends with ETIME, also parked.
    let later = syncobj_create(&a);
    syncobj_import(&a, later, &SyncFile::for_fence(owner.id(), 2).unwrap());
    let err = syncobj_wait_until(&a, later, monotonic_ns() + 300_000_000).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ETIME));
    assert_eq!(b.getparam(vg::PARAM_3D_FEATURES).unwrap(), 1);
}

fn backend_pid(gpu: &Daemon) -> libc::pid_t {
    std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", gpu.pid()))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn small_target() -> ResourceCreate {
    ResourceCreate {
        target: 2,
        format: R8G8B8A8_UNORM,
        bind: virgl_stream::bind::RENDER_TARGET,
        width: 4,
        height: 4,
        depth: 1,
        array_size: 1,
        size: 64,
        ..ResourceCreate::new_zeroed()
    }
}

/// virtio-gpud (device timeout `ms`), syncd and drmd, in that order.
fn stack_with_device_timeout(ms: &str) -> [Daemon; 3] {
    let gpu = Daemon::start(
        &stack_tests::workspace_binary("virtio-gpud"),
        &["--device-timeout-ms", ms],
        "virtio-gpu",
    );
    let sync = Daemon::start(&stack_tests::workspace_binary("syncd"), &[], "sync");
    let drm = Daemon::start(&stack_tests::workspace_binary("drmd"), &[], "drm");
    [gpu, sync, drm]
}

fn gpu_stats() -> String {
    stack_tests::scheme_text("/scheme/virtio-gpu/stats")
}

/// A device that stops answering is declared stuck at the device timeout:
/// the fences it had fail (ETIMEDOUT), a WAIT on their objects is EIO, calls
/// needing it are ETIMEDOUT, and once it has answered everything it had it
/// is served again.
#[test]
fn a_stuck_device_fails_its_fences_at_the_timeout_and_is_served_again_once_it_answers() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let [gpu, _sync, _drm] = stack_with_device_timeout("1000");
    let fd = render_node();
    let (bo, res) = create(&fd, 16, 16);
    fenced(clear(&fd, bo, res, [1.0, 0.0, 0.0, 1.0]));
    let backend = backend_pid(&gpu);
    // SAFETY: plain signals to a process this test's daemon started.
    unsafe { libc::kill(backend, libc::SIGSTOP) };
    let fence = clear(&fd, bo, res, [0.0, 1.0, 0.0, 1.0]);
    assert_eq!(errno(fd.wait(bo, true)), Some(libc::EBUSY));
    // A blocking WAIT ends with the device timeout, not its own.
    let started = Instant::now();
    assert_eq!(errno(fd.wait(bo, false)), Some(libc::EIO));
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(fence.wait(Duration::ZERO).unwrap());
    assert_eq!(fence.info().unwrap().status, -libc::ETIMEDOUT);
    assert!(gpu_stats().contains("device stuck"), "{}", gpu_stats());
    assert_eq!(
        errno(fd.resource_create(small_target())),
        Some(libc::ETIMEDOUT)
    );
    assert_eq!(fd.version().unwrap().name, "virtio_gpu");
    // SAFETY: as above.
    unsafe { libc::kill(backend, libc::SIGCONT) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !gpu_stats().contains("device answering") {
        assert!(Instant::now() < deadline, "{}", gpu_stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    fenced(clear(&fd, bo, res, [0.0, 0.0, 1.0, 1.0]));
    assert!(all(&read_back(&fd, bo, 16, 16), [0, 0, 255, 255]));
}

/// A backend that exits is the device lost, found at once: the fences it
/// had fail (ENODEV), WAIT is EIO, calls needing the device are ENODEV,
/// and drmd and virtio-gpud keep serving everything else.
#[test]
fn a_lost_device_fails_its_fences_and_calls_at_once_and_nothing_hangs() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let [gpu, _sync, _drm] = stack_with_device_timeout("60000");
    let fd = render_node();
    let (bo, res) = create(&fd, 16, 16);
    fenced(clear(&fd, bo, res, [1.0, 0.0, 0.0, 1.0]));
    let backend = backend_pid(&gpu);
    // SAFETY: plain signals to a process this test's daemon started.
    unsafe { libc::kill(backend, libc::SIGSTOP) };
    let fence = clear(&fd, bo, res, [0.0, 1.0, 0.0, 1.0]);
    let started = Instant::now();
    // SAFETY: as above.
    unsafe { libc::kill(backend, libc::SIGKILL) };
    assert_eq!(errno(fd.wait(bo, false)), Some(libc::EIO));
    assert_eq!(fence.info().unwrap().status, -libc::ENODEV);
    assert_eq!(
        errno(fd.resource_create(small_target())),
        Some(libc::ENODEV)
    );
    let stream = clear_stream(res, R8G8B8A8_UNORM, [0.0; 4]);
    assert_eq!(
        errno(fd.execbuffer(&stream, &[bo], None, true)),
        Some(libc::ENODEV)
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "found only at the device timeout"
    );
    assert_eq!(fd.version().unwrap().name, "virtio_gpu");
    assert_eq!(fd.getparam(vg::PARAM_3D_FEATURES).unwrap(), 1);
    assert!(gpu_stats().contains("device lost"), "{}", gpu_stats());
    // New clients are served what needs no device.
    let other = render_node();
    assert_eq!(other.version().unwrap().name, "virtio_gpu");
}

/// SUBMIT_3D commands virtio-gpud has placed on the device so far.
fn submits_queued() -> u64 {
    gpu_stats()
        .lines()
        .find(|l| l.starts_with("command SUBMIT_3D"))
        .and_then(|l| l.split_whitespace().last())
        .map_or(0, |n| n.parse().unwrap())
}

/// EXECBUFFER is staged as Linux's submit path: every way it can fail
/// does so before anything is queued, so the device sees nothing, the
/// out-syncobjs keep what they had, and a client that retries the error
/// never submits twice. Each failure mode, then the good submit.
#[test]
fn test_regression_a_failed_execbuffer_queues_and_publishes_nothing() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let fd = render_node();
    let (bo, res) = create(&fd, 16, 16);
    let stream = clear_stream(res, R8G8B8A8_UNORM, [0.0, 1.0, 0.0, 1.0]);
    // The context exists and the device has run a submit: what follows
    // must not add one.
    fenced(clear(&fd, bo, res, [0.0; 4]));
    let (out, reset_me) = (syncobj_create(&fd), syncobj_create(&fd));
    syncobj_array_op(&fd, so::SIGNAL, &[reset_me]).unwrap();
    let exec = |e: ExecbufferHeader,
                stream: &[u8],
                bos: &[u32],
                ins: &[vg::ExecSyncobj],
                outs: &[vg::ExecSyncobj],
                in_fence: Option<u64>| {
        let mut b = Builder::new(&ExecbufferHeader {
            size: stream.len() as u32,
            num_bo_handles: bos.len() as u32,
            syncobj_stride: 16,
            num_in_syncobjs: ins.len() as u32,
            num_out_syncobjs: outs.len() as u32,
            ..e
        })
        .array(stream)
        .array(bos)
        .array(ins)
        .array(outs);
        if let Some(token) = in_fence {
            b = b.array(&[token]);
        }
        fd.ioctl(vg::EXECBUFFER, &mut b.build())
    };
    let none = ExecbufferHeader::new_zeroed();
    let sync = |handle, flags| vg::ExecSyncobj {
        handle,
        flags,
        point: 0,
    };
    let good_out = [sync(out, 0)];
    let reset = [sync(reset_me, vg::EXECBUF_SYNCOBJ_RESET)];
    let past_end = ((100u32 << 16) | 7).to_le_bytes();
    let fence_in = ExecbufferHeader {
        flags: vg::EXECBUF_FENCE_FD_IN,
        ..none
    };
    let cases: [(&str, std::io::Result<usize>, i32); 10] = [
        (
            "unknown object",
            exec(none, &stream, &[bo + 100], &reset, &good_out, None),
            libc::ENOENT,
        ),
        (
            "unknown flag",
            exec(
                ExecbufferHeader { flags: 0x8, ..none },
                &stream,
                &[bo],
                &reset,
                &good_out,
                None,
            ),
            libc::EINVAL,
        ),
        (
            "ring index",
            exec(
                ExecbufferHeader {
                    flags: vg::EXECBUF_RING_IDX,
                    ..none
                },
                &stream,
                &[bo],
                &reset,
                &good_out,
                None,
            ),
            libc::EINVAL,
        ),
        (
            "unknown out-syncobj",
            exec(
                none,
                &stream,
                &[bo],
                &reset,
                &[sync(out, 0), sync(out + 100, 0)],
                None,
            ),
            libc::EINVAL,
        ),
        (
            "out-syncobj flags",
            exec(
                none,
                &stream,
                &[bo],
                &reset,
                &[sync(out, vg::EXECBUF_SYNCOBJ_RESET)],
                None,
            ),
            libc::EINVAL,
        ),
        (
            "unknown in-syncobj",
            exec(
                none,
                &stream,
                &[bo],
                &[reset[0], sync(reset_me + 100, 0)],
                &good_out,
                None,
            ),
            libc::ENOENT,
        ),
        (
            "in-syncobj flags",
            exec(none, &stream, &[bo], &[sync(reset_me, 2)], &good_out, None),
            libc::EINVAL,
        ),
        (
            "in-fence not a sync_file",
            exec(
                fence_in,
                &stream,
                &[bo],
                &reset,
                &good_out,
                Some(scheme_seam::token::NOT_A_HANDLE),
            ),
            libc::EINVAL,
        ),
        (
            "object listed twice",
            exec(none, &stream, &[bo, bo], &reset, &good_out, None),
            libc::EALREADY,
        ),
        (
            "stream past its end",
            exec(none, &past_end, &[bo], &reset, &good_out, None),
            libc::EINVAL,
        ),
    ];
    let queued = submits_queued();
    for (what, result, want) in cases {
        assert_eq!(errno(result), Some(want), "{what}");
        assert_eq!(submits_queued(), queued, "{what}: the device got a submit");
        let status = syncobj_status(&fd, out);
        assert_eq!(status, libc::EINVAL, "{what}: the out-syncobj got a fence");
        let status = syncobj_status(&fd, reset_me);
        assert_eq!(status, 0, "{what}: the in-syncobj was reset");
    }
    // The good submit queues one command and publishes every result.
    exec(none, &stream, &[bo], &reset, &good_out, None).unwrap();
    assert_eq!(submits_queued(), queued + 1);
    fd.wait(bo, false).unwrap();
    assert_eq!(syncobj_status(&fd, out), 0, "the out-syncobj has the fence");
    let status = syncobj_status(&fd, reset_me);
    assert_eq!(status, libc::EINVAL, "the in-syncobj was not reset");
}

/// SYNCOBJ_WAIT for `handle` without waiting: 0 once signalled, ETIME while
/// pending, EINVAL with no fence at all.
fn syncobj_status(fd: &DrmFd, handle: u32) -> i32 {
    let header = so::WaitHeader {
        count_handles: 1,
        ..so::WaitHeader::new_zeroed()
    };
    let mut payload = Builder::new(&header).array(&[handle]).build();
    match fd.ioctl(so::WAIT, &mut payload) {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap(),
    }
}

/// Requests drmd holds parked now (its `stats`).
fn drm_parked() -> usize {
    stack_tests::scheme_text("/scheme/drm/stats")
        .lines()
        .find_map(|l| l.strip_prefix("parked "))
        .map_or(0, |n| n.parse().unwrap())
}

/// Latencies (µs) of `n` rounds of GETPARAM, NOWAIT on an idle object and
/// an EXECBUFFER of a small clear, by `fd` on object `bo` of resource
/// `res`: p50 and p99 of each, in that order.
fn other_client_latencies(fd: &DrmFd, bo: u32, res: u32, n: usize) -> [(u64, u64); 3] {
    let mut samples: [Vec<u64>; 3] = Default::default();
    let stream = clear_stream(res, R8G8B8A8_UNORM, [0.0, 0.0, 1.0, 1.0]);
    for _ in 0..n {
        let t = Instant::now();
        assert_eq!(fd.getparam(vg::PARAM_3D_FEATURES).unwrap(), 1);
        samples[0].push(t.elapsed().as_micros() as u64);
        // Its last submit may still run: NOWAIT answers 0 or EBUSY, at once.
        let t = Instant::now();
        match fd.wait(bo, true) {
            Ok(()) => {}
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EBUSY)),
        }
        samples[1].push(t.elapsed().as_micros() as u64);
        let t = Instant::now();
        fd.execbuffer(&stream, &[bo], None, false).unwrap();
        samples[2].push(t.elapsed().as_micros() as u64);
    }
    samples.map(|mut s| {
        s.sort_unstable();
        (s[s.len() / 2], s[s.len() * 99 / 100])
    })
}

/// One client whose submits keep the ring full holds up nobody else: its
/// EXECBUFFER parks on ring room in drmd (virtio-gpud answers drmd's QUEUE
/// EAGAIN instead of making it wait), and meanwhile other clients' GETPARAM
/// and NOWAIT are answered; their EXECBUFFERs wait for room like its own and
/// are answered when the device frees it. First with the device stopped,
/// so the ring is certainly full; then under a real load, where the
/// latencies of both situations are reported (not asserted on).
#[test]
fn a_client_that_keeps_the_ring_full_holds_up_nobody_else() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let [gpu, _sync, _drm] = stack_with_device_timeout("60000");
    let other = render_node();
    let (obo, ores) = create(&other, 16, 16);
    fenced(clear(&other, obo, ores, [1.0, 0.0, 0.0, 1.0]));
    let idle = other_client_latencies(&other, obo, ores, 300);

    let heavy = Arc::new(render_node());
    let (hbo, hres) = create(&heavy, 1024, 1024);
    let big = clear_stream(hres, R8G8B8A8_UNORM, [0.0, 1.0, 0.0, 1.0]);
    let stop = Arc::new(AtomicBool::new(false));
    let flood = |heavy: Arc<DrmFd>, stop: Arc<AtomicBool>| {
        let big = big.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                heavy.execbuffer(&big, &[hbo], None, false).unwrap();
                n += 1;
            }
            n
        })
    };

    // The device stopped: the flood fills the ring and its next submit parks.
    let backend = backend_pid(&gpu);
    // SAFETY: plain signals to a process this test's daemon started.
    unsafe { libc::kill(backend, libc::SIGSTOP) };
    let flooding = flood(heavy.clone(), stop.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    while drm_parked() == 0 {
        assert!(Instant::now() < deadline, "the ring never filled");
        assert!(!flooding.is_finished());
        std::thread::sleep(Duration::from_millis(5));
    }
    for _ in 0..100 {
        assert_eq!(other.getparam(vg::PARAM_3D_FEATURES).unwrap(), 1);
        other.wait(obo, true).unwrap();
    }
    assert!(
        drm_parked() >= 1,
        "answered while the flood's submit waited"
    );
    assert!(!flooding.is_finished());
    // The other client's submit waits for room too, and both are answered
    // once the device frees it.
    let (done, answered) = std::sync::mpsc::channel();
    let other = Arc::new(other);
    std::thread::spawn({
        let other = other.clone();
        let stream = clear_stream(ores, R8G8B8A8_UNORM, [0.0, 0.0, 1.0, 1.0]);
        move || {
            done.send(other.execbuffer(&stream, &[obo], None, true))
                .unwrap()
        }
    });
    while drm_parked() < 2 {
        assert!(
            Instant::now() < deadline,
            "the second submit was not parked"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: as above.
    unsafe { libc::kill(backend, libc::SIGCONT) };
    let fence = answered
        .recv_timeout(Duration::from_secs(30))
        .expect("the parked submit was answered once the ring had room")
        .unwrap()
        .unwrap();
    fenced(fence);
    stop.store(true, Ordering::Relaxed);
    flooding.join().unwrap();

    // A real load: the flood keeps the device busy and the ring full.
    let parks_before = ring_full_parks();
    stop.store(false, Ordering::Relaxed);
    let flooding = flood(heavy.clone(), stop.clone());
    std::thread::sleep(Duration::from_millis(200));
    let busy = other_client_latencies(&other, obo, ores, 300);
    stop.store(true, Ordering::Relaxed);
    let floods = flooding.join().unwrap();
    let parks = ring_full_parks() - parks_before;
    fenced(clear(&other, obo, ores, [1.0, 1.0, 1.0, 1.0]));
    assert!(all(&read_back(&other, obo, 16, 16), [255, 255, 255, 255]));
    for (name, (i, b)) in ["GETPARAM", "WAIT NOWAIT", "EXECBUFFER"]
        .iter()
        .zip(idle.iter().zip(&busy))
    {
        println!(
            "{name}: idle p50 {} us p99 {} us; beside a full ring p50 {} us p99 {} us",
            i.0, i.1, b.0, b.1
        );
    }
    println!("the flood submitted {floods} clears; QUEUEs refused for a full ring: {parks}");
}

/// QUEUEs virtio-gpud parked or refused because the ring was full.
fn ring_full_parks() -> u64 {
    gpu_stats()
        .lines()
        .find_map(|l| l.strip_prefix("ring_full_parks "))
        .map_or(0, |n| n.parse().unwrap())
}

/// The `dup` that turns an EXECBUFFER's out-fence slot into a sync_file:
/// a slot can be claimed again (a restarted drmd may have lost the first
/// `dup`) until 64 newer ones push it out; zero, huge, negative, not yet
/// given, short and another file's slots are refused; the file and
/// another client go on.
#[test]
fn out_fence_slots_are_claimed_again_and_bad_ones_refused() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let fd = DrmFd::open("/scheme/drm/renderD128").unwrap();
    let other = DrmFd::open("/scheme/drm/renderD128").unwrap();
    let (bo, res) = fd
        .resource_create(drmd::client::render_target(16, 16))
        .unwrap();
    let stream = clear_stream(res, R8G8B8A8_UNORM, [1.0; 4]);
    let submit = || fd.execbuffer(&stream, &[bo], None, true).unwrap().unwrap();
    // A fresh file's first slot is 1.
    assert!(submit().wait(Duration::from_secs(10)).unwrap());
    let claim = |fd: &DrmFd, slot: u64| fd.fd_of(vg::EXECBUFFER, &slot.to_le_bytes());
    for _ in 0..3 {
        let again = SyncFile::from_fd(claim(&fd, 1).unwrap());
        assert!(again.wait(Duration::from_secs(10)).unwrap());
    }
    for slot in [0, 2, u64::MAX, (-1i64) as u64, u64::from(u32::MAX), 1 << 31] {
        assert_eq!(errno(claim(&fd, slot)), Some(libc::ENOENT), "slot {slot}");
    }
    assert_eq!(
        errno(fd.fd_of(vg::EXECBUFFER, &[1, 0, 0])),
        Some(libc::EINVAL)
    );
    assert_eq!(
        errno(claim(&other, 1)),
        Some(libc::ENOENT),
        "another file's slot"
    );
    // 64 newer slots push the first out.
    for _ in 0..64 {
        submit();
    }
    assert_eq!(errno(claim(&fd, 1)), Some(libc::ENOENT));
    assert!(SyncFile::from_fd(claim(&fd, 65).unwrap())
        .wait(Duration::from_secs(10))
        .unwrap());
    // The file and the other client go on.
    assert!(submit().wait(Duration::from_secs(10)).unwrap());
    let (obo, ores) = other
        .resource_create(drmd::client::render_target(16, 16))
        .unwrap();
    let theirs = clear_stream(ores, R8G8B8A8_UNORM, [1.0; 4]);
    assert!(other
        .execbuffer(&theirs, &[obo], None, true)
        .unwrap()
        .unwrap()
        .wait(Duration::from_secs(10))
        .unwrap());
}
