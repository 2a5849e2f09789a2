//! virtio-gpud's private scheme across processes, on the real device: a
//! client (in drmd's place) renders and reads back through a session with
//! fences from syncd; sessions are isolated from each other; a client that
//! dies has its objects released on the device.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use gpu_session::api::{
    QueueReply, StreamRef, QUEUE_DETACHED, QUEUE_FENCED, QUEUE_STREAM_IN_MEMORY, RESTARTED,
    TAKEN_OVER,
};
use gpu_session::Session;
use stack_tests::display::{display, shown, Pam};
use stack_tests::{device_objects, kill_holder_and_await_release, workspace_binary, Daemon};
use sync_client::SyncFile;
use virtio_gpu_proto::{
    BlobFlags, BlobMem, Box3d, CapsetId, CmdSubmit, CtrlHdr, CtxAttachResource, CtxCreate,
    CtxDestroy, CtxDetachResource, CtxId, Format, GetCapset, GetEdid, MemEntry, Resource3dParams,
    ResourceAttachBacking, ResourceCreate2d, ResourceCreate3d, ResourceCreateBlob, ResourceId,
    ResourceMapBlob, ResponseType, ScanoutId, TransferFromHost3d,
};
use zerocopy::{FromBytes, IntoBytes};

/// The daemons serve fixed names in the bus directory: tests take turns.
static DAEMONS: Mutex<()> = Mutex::new(());

struct Stack {
    _sync: Daemon,
    _gpu: Daemon,
}

fn stack() -> Stack {
    let sync = Daemon::start(&workspace_binary("syncd"), &[], "sync");
    let gpu = Daemon::start(&workspace_binary("virtio-gpud"), &[], "virtio-gpu");
    Stack {
        _sync: sync,
        _gpu: gpu,
    }
}

fn placeholder_ctx() -> CtxId {
    CtxId::new(1).unwrap()
}

fn placeholder_res() -> ResourceId {
    ResourceId::new(1).unwrap()
}

fn ok(answer: &[u8]) {
    let (hdr, _) = CtrlHdr::read_from_prefix(answer).unwrap();
    assert_eq!(hdr.response_type(), ResponseType::OK_NODATA);
}

fn target(w: u32, h: u32) -> Resource3dParams {
    Resource3dParams {
        target: virgl_stream::target::TEXTURE_2D,
        format: virgl_stream::format::R8G8B8A8_UNORM,
        bind: virgl_stream::bind::RENDER_TARGET | virgl_stream::bind::SAMPLER_VIEW,
        width: w,
        height: h,
        depth: 1,
        array_size: 1,
        last_level: 0,
        nr_samples: 0,
        flags: 0,
    }
}

/// A context and an attached `w × h` render target with backing; returns
/// (ctx, res, backing address, backing offset).
fn setup(s: &Session, w: u32, h: u32) -> (CtxId, ResourceId, u64, u64) {
    let (r, a) = s
        .call(
            CtxCreate::new(placeholder_ctx(), 0, "session-test").as_bytes(),
            0,
        )
        .unwrap();
    ok(&a);
    let ctx = CtxId::new(r.created as u32).unwrap();
    let (r, a) = s
        .call(
            ResourceCreate3d::new(placeholder_res(), &target(w, h)).as_bytes(),
            0,
        )
        .unwrap();
    ok(&a);
    let res = ResourceId::new(r.created as u32).unwrap();
    let (addr, offset) = s.alloc(u64::from(w * h * 4)).unwrap();
    let mut attach = ResourceAttachBacking::new(res, 1).as_bytes().to_vec();
    attach.extend_from_slice(MemEntry::new(addr, w * h * 4).as_bytes());
    ok(&s.call(&attach, 0).unwrap().1);
    ok(&s
        .call(CtxAttachResource::new(ctx, res).as_bytes(), 0)
        .unwrap()
        .1);
    (ctx, res, addr, offset)
}

fn errno(r: std::io::Result<impl std::fmt::Debug>) -> Option<i32> {
    r.unwrap_err().raw_os_error()
}

#[test]
fn a_client_renders_and_reads_back_through_a_session_with_syncd_fences() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let s = Session::open().unwrap();
    let timeline = s.timeline().unwrap();
    let (w, h) = (64u32, 64u32);
    let (ctx, res, _, offset) = setup(&s, w, h);

    let mut stream = virgl_stream::Stream::new();
    stream
        .create_sub_ctx(1)
        .set_sub_ctx(1)
        .create_surface(1, res.get(), virgl_stream::format::R8G8B8A8_UNORM, 0)
        .set_framebuffer_state(0, &[1])
        .clear(virgl_stream::clear::COLOR0, [0.0, 0.0, 1.0, 1.0], 0.0, 0);
    let bytes = stream.to_bytes();
    let mut submit = CmdSubmit::new(ctx, bytes.len() as u32).as_bytes().to_vec();
    submit.extend_from_slice(&bytes);
    // Fenced and detached, as drmd's EXECBUFFER will queue it.
    let r = s.queue(&submit, QUEUE_FENCED | QUEUE_DETACHED).unwrap();
    assert_eq!(r.ticket, 0);
    assert!(r.fence > 0);

    let readback = TransferFromHost3d::new(ctx, res, Box3d::new(0, 0, 0, w, h, 1), 0, 0, 0, 0);
    let r = s
        .queue(readback.as_bytes(), QUEUE_FENCED | QUEUE_DETACHED)
        .unwrap();
    let fence = SyncFile::for_fence(timeline, r.fence).unwrap();
    assert!(
        fence.wait(Duration::from_secs(10)).unwrap(),
        "syncd saw the device fence"
    );
    assert_eq!(fence.info().unwrap().status, 1);

    let map = s.map(offset, (w * h * 4) as usize).unwrap();
    let mut pixels = vec![0u8; (w * h * 4) as usize];
    map.read_bytes(0, &mut pixels);
    assert!(
        pixels.chunks_exact(4).all(|p| p == [0, 0, 0xFF, 0xFF]),
        "every pixel blue"
    );
}

#[test]
fn sessions_cannot_name_each_others_objects() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let a = Session::open().unwrap();
    let b = Session::open().unwrap();
    let (ctx_a, res_a, addr_a, offset_a) = setup(&a, 16, 16);
    let (ctx_b, res_b, _, _) = setup(&b, 16, 16);
    // B names A's context, A's resource, A's memory: all refused.
    let attach = CtxAttachResource::new(ctx_a, res_b);
    assert_eq!(errno(b.queue(attach.as_bytes(), 0)), Some(libc::EACCES));
    let attach = CtxAttachResource::new(ctx_b, res_a);
    assert_eq!(errno(b.queue(attach.as_bytes(), 0)), Some(libc::EACCES));
    let mut steal = ResourceAttachBacking::new(res_b, 1).as_bytes().to_vec();
    steal.extend_from_slice(MemEntry::new(addr_a, 4096).as_bytes());
    assert_eq!(errno(b.queue(&steal, 0)), Some(libc::EACCES));
    // B cannot map A's memory, nor anything that is no allocation of its
    // own.
    let map_a = a.map(offset_a, 4096).unwrap();
    map_a.write_bytes(0, b"belongs to A");
    assert_eq!(errno(b.map(offset_a, 4096)), Some(libc::EACCES));
    assert_eq!(errno(b.map(offset_a + (1 << 20), 4096)), Some(libc::EACCES));
    let foreign = QueueReply {
        ticket: 1,
        answer_len: 24,
        ..QueueReply::default()
    };
    assert_eq!(errno(b.wait(&foreign)), Some(libc::ENOENT));
    // A stream "in memory" must be in the session's own memory, and exactly
    // the size the command says.
    let stream_at = |addr: u64, len: u32, size: u32| {
        let mut r = CmdSubmit::new(ctx_b, size).as_bytes().to_vec();
        r.extend_from_slice(StreamRef { addr, len, pad: 0 }.as_bytes());
        r
    };
    let in_memory = QUEUE_FENCED | QUEUE_STREAM_IN_MEMORY;
    assert_eq!(
        errno(b.queue(&stream_at(addr_a, 64, 64), in_memory)),
        Some(libc::EACCES)
    );
    let (addr_b, _) = b.alloc(4096).unwrap();
    assert_eq!(
        errno(b.queue(&stream_at(addr_b, 64, 32), in_memory)),
        Some(libc::EINVAL)
    );
    // Malformed requests get clear errnos and the session keeps working.
    assert_eq!(errno(b.queue(&[0u8; 8], 0)), Some(libc::EINVAL));
    assert_eq!(
        errno(b.queue(
            CtrlHdr::new(virtio_gpu_proto::CommandType(0x777)).as_bytes(),
            0
        )),
        Some(libc::EINVAL)
    );
    assert_eq!(
        errno(b.queue(CtxAttachResource::new(ctx_b, res_b).as_bytes(), 0x80)),
        Some(libc::EINVAL)
    );
    // A reservation beyond MAX_RESERVE, however large, is EINVAL; up to it
    // the command is placed (the ring has room). Reading a session only
    // acknowledges its readiness, whatever the length asked.
    let attach = CtxAttachResource::new(ctx_b, res_b);
    for reserve in [gpu_session::api::MAX_RESERVE + 1, i32::MAX as u32, u32::MAX] {
        assert_eq!(
            errno(b.try_queue(attach.as_bytes(), QUEUE_DETACHED, reserve)),
            Some(libc::EINVAL),
            "reserve {reserve}"
        );
    }
    for reserve in [0, gpu_session::api::MAX_RESERVE] {
        b.try_queue(attach.as_bytes(), QUEUE_DETACHED, reserve)
            .unwrap();
    }
    b.acknowledge().unwrap();
    ok(&b
        .call(CtxAttachResource::new(ctx_b, res_b).as_bytes(), 0)
        .unwrap()
        .1);
}

#[test]
fn a_killed_client_has_its_objects_released_on_the_device() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    assert_eq!(device_objects(), "");
    let held = kill_holder_and_await_release("hold");
    assert!(
        held.contains("resource ") && held.contains("context ") && held.contains("memory "),
        "{held}"
    );
}

/// The backend maps 32 regions: a region per session capped the device at
/// 31 clients. Sessions of one user share regions now.
#[test]
fn test_regression_hundreds_of_sessions_of_one_user_share_a_few_regions() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let sessions: Vec<Session> = (0..300).map(|_| Session::open().unwrap()).collect();
    for s in &sessions {
        s.alloc(64 << 10).unwrap();
    }
    // Each maps only its own allocations, and renders.
    let (_, _, _, offset) = setup(&sessions[0], 16, 16);
    assert_eq!(errno(sessions[1].map(offset, 4096)), Some(libc::EACCES));
    let last = &sessions[299];
    let (ctx, res, _, offset) = setup(last, 16, 16);
    clear_and_read_back(last, ctx, res, 16, 16, [1.0; 4]);
    let mut pixels = [0u8; 1024];
    last.map(offset, 1024).unwrap().read_bytes(0, &mut pixels);
    assert!(pixels.iter().all(|&b| b == 0xFF));
    let stats = stack_tests::scheme_text("/scheme/virtio-gpu/stats");
    assert!(stats.contains("regions 1 "), "{stats}");
}

#[test]
fn each_user_has_a_quota_of_sessions_and_memory_and_regions_of_its_own() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _sync = Daemon::start(&workspace_binary("syncd"), &[], "sync");
    let _gpu = Daemon::start(
        &workspace_binary("virtio-gpud"),
        &["--uid-sessions", "8", "--uid-memory", "1048576"],
        "virtio-gpu",
    );
    // Sessions: 8 for user 1000, the 9th is EMFILE; another user's are not
    // counted against it; closing one gives its place back.
    let mut mine: Vec<Session> = (0..8).map(|_| Session::open_for(1000).unwrap()).collect();
    assert_eq!(errno(Session::open_for(1000)), Some(libc::EMFILE));
    let theirs = Session::open_for(1001).unwrap();
    drop(mine.pop());
    mine.push(Session::open_for(1000).unwrap());
    // Memory: 1 MiB for the user, whichever sessions ask.
    mine[0].alloc(512 << 10).unwrap();
    mine[1].alloc(512 << 10).unwrap();
    assert_eq!(errno(mine[2].alloc(4096)), Some(libc::ENOMEM));
    theirs.alloc(512 << 10).unwrap();
    let stats = stack_tests::scheme_text("/scheme/virtio-gpu/stats");
    assert!(stats.contains("regions 2 "), "one region per user: {stats}");
    // A user with no session left and nothing allocated gives its region
    // back.
    drop(theirs);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !stack_tests::scheme_text("/scheme/virtio-gpu/stats").contains("regions 1 ") {
        assert!(Instant::now() < deadline, "user 1001's region was kept");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Clears `res` to `rgba` in `ctx` and reads it back into its backing,
/// waiting for the device's answer to the read-back.
fn clear_and_read_back(s: &Session, ctx: CtxId, res: ResourceId, w: u32, h: u32, rgba: [f32; 4]) {
    let bytes = virgl_stream::clear_stream(res.get(), virgl_stream::format::R8G8B8A8_UNORM, rgba);
    let mut submit = CmdSubmit::new(ctx, bytes.len() as u32).as_bytes().to_vec();
    submit.extend_from_slice(&bytes);
    ok(&s.call(&submit, QUEUE_FENCED).unwrap().1);
    let readback = TransferFromHost3d::new(ctx, res, Box3d::new(0, 0, 0, w, h, 1), 0, 0, 0, 0);
    ok(&s.call(readback.as_bytes(), QUEUE_FENCED).unwrap().1);
}

#[test]
fn a_shared_resource_lives_until_its_last_holder_lets_go() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let (w, h) = (16u32, 16u32);
    let a = Session::open().unwrap();
    let b = Session::open().unwrap();
    let (_, res, addr, offset) = setup(&a, w, h);
    let (ctx_b, _, _, _) = setup(&b, w, h);
    let map = a.map(offset, (w * h * 4) as usize).unwrap();
    let every_pixel = |rgba: [u8; 4]| {
        let mut pixels = vec![0u8; (w * h * 4) as usize];
        map.read_bytes(0, &mut pixels);
        pixels.chunks_exact(4).all(|p| p == rgba)
    };

    // Before sharing, B cannot name it, nor share it, nor adopt by guess.
    let attach = CtxAttachResource::new(ctx_b, res);
    assert_eq!(errno(b.queue(attach.as_bytes(), 0)), Some(libc::EACCES));
    assert_eq!(errno(b.share(res.get())), Some(libc::ENOENT));
    assert_eq!(errno(b.adopt(1)), Some(libc::ENOENT));

    let token = a.share(res.get()).unwrap();
    assert_eq!(a.share(res.get()).unwrap(), token, "one token per resource");
    assert_eq!(b.adopt(token).unwrap(), res.get());
    assert_eq!(
        b.adopt(token).unwrap(),
        res.get(),
        "adopting twice is one hold"
    );
    ok(&b.call(attach.as_bytes(), 0).unwrap().1);
    // B renders into it in its own context; the pixels land in A's memory.
    clear_and_read_back(&b, ctx_b, res, w, h, [0.0, 1.0, 0.0, 1.0]);
    assert!(every_pixel([0, 0xFF, 0, 0xFF]), "B's green in A's backing");

    // Nobody pulls it from under the other holder.
    let unref = virtio_gpu_proto::ResourceUnref::new(res);
    assert_eq!(errno(a.queue(unref.as_bytes(), 0)), Some(libc::EBUSY));
    let detach = virtio_gpu_proto::ResourceDetachBacking::new(res);
    assert_eq!(errno(a.queue(detach.as_bytes(), 0)), Some(libc::EBUSY));
    assert_eq!(errno(a.free(addr)), Some(libc::EBUSY));

    // A's close leaves the resource and its backing (A's memory) to B.
    drop(map);
    drop(a);
    let table = device_objects();
    let line = format!("resource {} session ", res.get());
    assert!(
        table.contains(&line) && table.contains("memory "),
        "{table}"
    );
    clear_and_read_back(&b, ctx_b, res, w, h, [1.0, 0.0, 0.0, 1.0]);

    // B's release is the last: the resource and A's memory go, and the
    // token names nothing any more.
    b.release(res.get()).unwrap();
    assert_eq!(errno(b.release(res.get())), Some(libc::ENOENT));
    let c = Session::open().unwrap();
    assert_eq!(errno(c.adopt(token)), Some(libc::ENOENT));
    let table = device_objects();
    assert!(!table.contains(&line), "{table}");
    drop((b, c));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !device_objects().is_empty() {
        assert!(Instant::now() < deadline, "left: {}", device_objects());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_session_parked_on_a_full_ring_stalls_no_other_session() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _sync = Daemon::start(&workspace_binary("syncd"), &[], "sync");
    let gpu = Daemon::start(
        &workspace_binary("virtio-gpud"),
        &["--device-timeout-ms", "3000"],
        "virtio-gpu",
    );
    let a = Session::open().unwrap();
    let (ctx, res, _, _) = setup(&a, 8, 8);
    // The device stops: nothing it was given comes back, and the ring fills.
    let backend = backend_pid(&gpu);
    // SAFETY: a plain signal to a process this test's daemon started.
    unsafe { libc::kill(backend, libc::SIGSTOP) };
    let flood = std::thread::spawn(move || {
        let bytes =
            virgl_stream::clear_stream(res.get(), virgl_stream::format::R8G8B8A8_UNORM, [0.0; 4]);
        let mut submit = CmdSubmit::new(ctx, bytes.len() as u32).as_bytes().to_vec();
        submit.extend_from_slice(&bytes);
        loop {
            if let Err(e) = a.queue(&submit, QUEUE_FENCED | QUEUE_DETACHED) {
                return e.raw_os_error();
            }
        }
    });
    // Once the ring is full (the flood's next QUEUE is parked), another
    // session is still served.
    let stats = || stack_tests::scheme_text("/scheme/virtio-gpu/stats");
    let in_flight = |s: &str| -> usize {
        s.lines()
            .find_map(|l| l.strip_prefix("in_flight "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    while in_flight(&stats()) < 100 {
        assert!(
            !flood.is_finished(),
            "the flood stopped before the ring filled"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let b = Session::open().unwrap();
    let (info, _) = b.info().unwrap();
    assert!(info.num_capsets > 0);
    assert!(!flood.is_finished(), "B was served only after A gave up");
    // The parked QUEUE ends at the device timeout: the device is stuck.
    assert_eq!(flood.join().unwrap(), Some(libc::ETIMEDOUT));
    let s = stats();
    assert!(s.contains("stuck 1") && s.contains("device stuck"), "{s}");
    // Once it has answered everything it had, it is served again.
    // SAFETY: as above.
    unsafe { libc::kill(backend, libc::SIGCONT) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !stats().contains("device answering") {
        assert!(Instant::now() < deadline, "{}", stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    let (ctx, res, _, _) = setup(&b, 8, 8);
    clear_and_read_back(&b, ctx, res, 8, 8, [0.0, 1.0, 0.0, 1.0]);
}

/// A backend that exits is the device lost, found at once (not at the
/// device timeout): every fence it had fails with ENODEV, and every call
/// needing it answers ENODEV while the daemon keeps serving.
#[test]
fn a_lost_device_fails_its_fences_and_its_calls_at_once() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _sync = Daemon::start(&workspace_binary("syncd"), &[], "sync");
    let gpu = Daemon::start(
        &workspace_binary("virtio-gpud"),
        &["--device-timeout-ms", "60000"],
        "virtio-gpu",
    );
    let s = Session::open().unwrap();
    let (ctx, res, _, _) = setup(&s, 8, 8);
    let backend = backend_pid(&gpu);
    // SAFETY: plain signals to a process this test's daemon started.
    unsafe { libc::kill(backend, libc::SIGSTOP) };
    let bytes =
        virgl_stream::clear_stream(res.get(), virgl_stream::format::R8G8B8A8_UNORM, [0.0; 4]);
    let mut submit = CmdSubmit::new(ctx, bytes.len() as u32).as_bytes().to_vec();
    submit.extend_from_slice(&bytes);
    let queued = s.queue(&submit, QUEUE_FENCED).unwrap();
    let timeline = s.timeline().unwrap();
    let file = SyncFile::for_fence(timeline, queued.fence).unwrap();
    assert!(!file.wait(Duration::ZERO).unwrap());
    let started = Instant::now();
    // SAFETY: as above.
    unsafe { libc::kill(backend, libc::SIGKILL) };
    assert!(
        file.wait(Duration::from_secs(10)).unwrap(),
        "the fence hangs"
    );
    assert_eq!(file.info().unwrap().status, -libc::ENODEV);
    assert_eq!(errno(s.wait(&queued)), Some(libc::ENODEV));
    assert_eq!(errno(s.queue(&submit, QUEUE_FENCED)), Some(libc::ENODEV));
    assert_eq!(errno(s.alloc(4096)), Some(libc::ENODEV));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "found only at the device timeout"
    );
    // Calls that need no device answer are still served.
    assert!(s.info().unwrap().0.num_capsets > 0);
    let stats = stack_tests::scheme_text("/scheme/virtio-gpu/stats");
    assert!(stats.contains("device lost"), "{stats}");
    assert!(Session::open().is_ok());
}

/// Sizes a session names are checked before anything is computed from
/// them: ALLOC of a length near the maximum once panicked virtio-gpud
/// (an unchecked round-up), and an empty in-memory stream reached the
/// device as an empty descriptor, which stops its queue.
#[test]
fn test_regression_hostile_sizes_are_refused_and_the_daemon_keeps_serving() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let s = Session::open().unwrap();
    for len in [u64::MAX, u64::MAX - 4094, 1 << 40, (256 << 20) + 1] {
        assert_eq!(errno(s.alloc(len)), Some(libc::ENOMEM), "ALLOC {len:#x}");
    }
    assert_eq!(errno(s.alloc(0)), Some(libc::EINVAL));
    // 2D images of no pixels or of more bytes than the host addresses
    // (u32::MAX squared once overflowed the size check and panicked
    // virtio-gpud); the largest allowed one is created.
    let create_2d = |w: u32, h: u32| {
        let request = ResourceCreate2d::new(placeholder_res(), Format::B8G8R8A8_UNORM, w, h);
        s.call(request.as_bytes(), 0)
    };
    for (w, h) in [
        (0, 16),
        (16, 0),
        (u32::MAX, u32::MAX),
        (u32::MAX, 1),
        (1, u32::MAX),
        (1 << 16, 1 << 15),
        (i32::MAX as u32 / 4 + 1, 1),
    ] {
        assert_eq!(errno(create_2d(w, h)), Some(libc::EINVAL), "2D {w}x{h}");
    }
    ok(&create_2d(64, 64).unwrap().1);
    let (ctx, res, addr, _) = setup(&s, 16, 16);
    // A SUBMIT_3D of size 0 pointing into the session's memory.
    let mut submit = CmdSubmit::new(ctx, 0).as_bytes().to_vec();
    submit.extend_from_slice(
        StreamRef {
            addr,
            len: 0,
            pad: 0,
        }
        .as_bytes(),
    );
    assert_eq!(
        errno(s.queue(&submit, QUEUE_FENCED | QUEUE_STREAM_IN_MEMORY)),
        Some(libc::EINVAL)
    );
    // The bare command (no stream) is fine, and the device still renders.
    let (_, answer) = s
        .call(CmdSubmit::new(ctx, 0).as_bytes(), QUEUE_FENCED)
        .unwrap();
    ok(&answer);
    let bytes =
        virgl_stream::clear_stream(res.get(), virgl_stream::format::R8G8B8A8_UNORM, [1.0; 4]);
    let mut submit = CmdSubmit::new(ctx, bytes.len() as u32).as_bytes().to_vec();
    submit.extend_from_slice(&bytes);
    ok(&s.call(&submit, QUEUE_FENCED).unwrap().1);
}

/// A command acting on a context must name the session's own: context 0
/// (the host's own) once panicked virtio-gpud on CTX_DESTROY. Each context
/// command is tried with no context, an unknown one, another session's and
/// a destroyed one.
#[test]
fn test_regression_context_commands_name_the_sessions_own_context() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let a = Session::open().unwrap();
    let b = Session::open().unwrap();
    let (ctx, res, _, _) = setup(&a, 8, 8);
    let (theirs, _, _, _) = setup(&b, 8, 8);
    let (gone, _, _, _) = setup(&a, 8, 8);
    ok(&a.call(CtxDestroy::new(gone).as_bytes(), 0).unwrap().1);
    let commands = |c: CtxId| -> Vec<Vec<u8>> {
        vec![
            CtxDestroy::new(c).as_bytes().to_vec(),
            CtxAttachResource::new(c, res).as_bytes().to_vec(),
            CtxDetachResource::new(c, res).as_bytes().to_vec(),
            CmdSubmit::new(c, 0).as_bytes().to_vec(),
        ]
    };
    for mut request in commands(ctx) {
        request[16..20].fill(0);
        assert_eq!(
            errno(a.queue(&request, 0)),
            Some(libc::EINVAL),
            "{request:02x?}"
        );
    }
    for c in [CtxId::new(4242).unwrap(), theirs, gone] {
        for request in commands(c) {
            assert_eq!(errno(a.queue(&request, 0)), Some(libc::EACCES), "{c:?}");
        }
    }
    // Nothing of it reached the host or disturbed either session.
    clear_and_read_back(&a, ctx, res, 8, 8, [0.0, 1.0, 0.0, 1.0]);
    ok(&b.call(CtxDestroy::new(theirs).as_bytes(), 0).unwrap().1);
}

/// A command the device answers with an error gets that answer, its fence
/// fails (EIO) instead of signalling, and the queue keeps serving: one
/// command per class this device refuses (display, capsets, blobs).
#[test]
fn device_error_answers_fail_their_fences_and_the_queue_keeps_serving() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let s = Session::open().unwrap();
    let timeline = s.timeline().unwrap();
    let (ctx, res, _, _) = setup(&s, 8, 8);
    let blob = ResourceId::new(1).unwrap();
    let refused: [(&str, Vec<u8>); 4] = [
        ("edid", GetEdid::new(ScanoutId::new(0)).as_bytes().to_vec()),
        (
            "capset",
            GetCapset::new(CapsetId::new(99), 1).as_bytes().to_vec(),
        ),
        (
            "blob",
            ResourceCreateBlob::new(None, blob, BlobMem::GUEST, BlobFlags::empty(), 0, 4096, 0)
                .as_bytes()
                .to_vec(),
        ),
        ("map blob", ResourceMapBlob::new(res, 0).as_bytes().to_vec()),
    ];
    for (what, request) in refused {
        let (queued, answer) = s.call(&request, QUEUE_FENCED).unwrap();
        let (hdr, _) = CtrlHdr::read_from_prefix(&answer).unwrap();
        assert!(hdr.response_type().is_error(), "{what}: {hdr:?}");
        let fence = SyncFile::for_fence(timeline, queued.fence).unwrap();
        assert!(fence.wait(Duration::from_secs(10)).unwrap());
        assert_eq!(fence.info().unwrap().status, -libc::EIO, "{what}");
    }
    clear_and_read_back(&s, ctx, res, 8, 8, [1.0, 0.0, 1.0, 1.0]);
    let stats = stack_tests::scheme_text("/scheme/virtio-gpu/stats");
    assert!(stats.contains("device answering"), "{stats}");
}

/// What the host would take silently and then fail on (killing the
/// session's context, or worse) is refused before it reaches it: backing
/// entries that are empty, overlap or come twice; transfers outside the
/// resource, its backing, or a context it is attached to; streams whose
/// commands run past their end or name a resource their context lacks;
/// a cursor the backend cannot copy.
#[test]
fn test_regression_what_the_host_would_choke_on_is_refused_first() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let s = Session::open().unwrap();
    let (ctx, res, addr, _) = setup(&s, 16, 16);
    let einval = |request: &[u8]| {
        assert_eq!(
            errno(s.queue(request, QUEUE_FENCED)),
            Some(libc::EINVAL),
            "{request:02x?}"
        );
    };
    // Backing: a second attach, and a fresh resource's empty or
    // overlapping entries.
    let attach = |res: ResourceId, entries: &[(u64, u32)]| {
        let mut a = ResourceAttachBacking::new(res, entries.len() as u32)
            .as_bytes()
            .to_vec();
        for &(addr, len) in entries {
            a.extend_from_slice(MemEntry::new(addr, len).as_bytes());
        }
        a
    };
    einval(&attach(res, &[(addr, 1024)]));
    let (r, answer) = s
        .call(
            ResourceCreate3d::new(placeholder_res(), &target(16, 16)).as_bytes(),
            0,
        )
        .unwrap();
    ok(&answer);
    let fresh = ResourceId::new(r.created as u32).unwrap();
    let (mem, _) = s.alloc(4096).unwrap();
    einval(&attach(fresh, &[(mem, 0)]));
    einval(&attach(fresh, &[(mem, 2048), (mem + 1024, 2048)]));
    // Transfers: past the box, past the backing, and in a context the
    // resource is not attached to.
    let from = |bx: Box3d, offset: u64, ctx: CtxId, res: ResourceId| {
        TransferFromHost3d::new(ctx, res, bx, offset, 0, 0, 0)
            .as_bytes()
            .to_vec()
    };
    einval(&from(Box3d::new(8, 0, 0, 16, 16, 1), 0, ctx, res));
    einval(&from(Box3d::new(0, 0, 0, 16, 16, 1), 512, ctx, res));
    ok(&s.call(&attach(fresh, &[(mem, 4096)]), 0).unwrap().1);
    einval(&from(Box3d::new(0, 0, 0, 16, 16, 1), 0, ctx, fresh));
    // Streams: a command past the end, and a clear of a resource the
    // context does not have.
    let submit = |bytes: &[u8]| {
        let mut submit = CmdSubmit::new(ctx, bytes.len() as u32).as_bytes().to_vec();
        submit.extend_from_slice(bytes);
        submit
    };
    einval(&submit(&((100u32 << 16) | 7).to_le_bytes()));
    let foreign =
        virgl_stream::clear_stream(fresh.get(), virgl_stream::format::R8G8B8A8_UNORM, [1.0; 4]);
    einval(&submit(&foreign));
    // None of it hurt the context: it still renders.
    let bytes =
        virgl_stream::clear_stream(res.get(), virgl_stream::format::R8G8B8A8_UNORM, [1.0; 4]);
    ok(&s.call(&submit(&bytes), QUEUE_FENCED).unwrap().1);
    ok(&s
        .call(
            &from(Box3d::new(0, 0, 0, 16, 16, 1), 0, ctx, res),
            QUEUE_FENCED,
        )
        .unwrap()
        .1);
}

/// Fence ids wrap without a stall or a lost fence: the device sees ids up
/// to the wrap limit, syncd's points go on growing, every fence signals
/// (forced here with a limit of 50).
#[test]
fn fence_ids_wrap_with_a_drain_and_points_go_on() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _sync = Daemon::start(&workspace_binary("syncd"), &[], "sync");
    let _gpu = Daemon::start(
        &workspace_binary("virtio-gpud"),
        &["--fence-wrap", "50"],
        "virtio-gpu",
    );
    let s = Session::open().unwrap();
    let timeline = s.timeline().unwrap();
    let (ctx, res, _, _) = setup(&s, 16, 16);
    let bytes =
        virgl_stream::clear_stream(res.get(), virgl_stream::format::R8G8B8A8_UNORM, [1.0; 4]);
    let mut submit = CmdSubmit::new(ctx, bytes.len() as u32).as_bytes().to_vec();
    submit.extend_from_slice(&bytes);
    let mut last = 0;
    for _ in 0..500 {
        let r = s.queue(&submit, QUEUE_FENCED | QUEUE_DETACHED).unwrap();
        assert!(r.fence > last, "points keep increasing");
        last = r.fence;
    }
    assert!(last >= 500);
    let fence = SyncFile::for_fence(timeline, last).unwrap();
    assert!(
        fence.wait(Duration::from_secs(20)).unwrap(),
        "the last fence signals"
    );
    assert_eq!(fence.info().unwrap().status, 1);
    let stats = stack_tests::scheme_text("/scheme/virtio-gpu/stats");
    let epochs: u64 = stats
        .split_whitespace()
        .skip_while(|w| *w != "fence_epochs")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(epochs >= 9, "{stats}");
    // And an answered call still matches its fence after the wraps.
    ok(&s.call(&submit, QUEUE_FENCED).unwrap().1);
}

fn backend_pid(gpu: &Daemon) -> i32 {
    std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", gpu.pid()))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn stat_of(name: &str) -> u64 {
    let stats = stack_tests::scheme_text("/scheme/virtio-gpu/stats");
    stats
        .split_whitespace()
        .skip_while(|w| *w != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {stats}"))
}

/// Closing a session made synchronous device round trips in virtio-gpud's
/// one loop (the device timeout each, with a stuck device), then withdrew
/// its memory while commands of it the device had not run could still read
/// it.
#[test]
fn test_regression_a_closing_session_stalls_nothing_and_its_memory_outlives_its_commands() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _sync = Daemon::start(&workspace_binary("syncd"), &[], "sync");
    let gpu = Daemon::start(&workspace_binary("virtio-gpud"), &[], "virtio-gpu");
    // A user of its own, so its region is withdrawn once it is done.
    let s = Session::open_for(4242).unwrap();
    let (ctx, res, _, _) = setup(&s, 16, 16);
    let (stream_at, _) = s.alloc(4096).unwrap();
    let bytes =
        virgl_stream::clear_stream(res.get(), virgl_stream::format::R8G8B8A8_UNORM, [1.0; 4]);
    let map = s.map(stream_at, 4096).unwrap();
    map.write_bytes(0, &bytes);
    let mut submit = CmdSubmit::new(ctx, bytes.len() as u32).as_bytes().to_vec();
    submit.extend_from_slice(
        StreamRef {
            addr: stream_at,
            len: bytes.len() as u32,
            pad: 0,
        }
        .as_bytes(),
    );
    assert_eq!(stat_of("regions"), 1);
    // The device stops; commands reading the session's memory in place are
    // queued, and the session closes.
    let backend = backend_pid(&gpu);
    // SAFETY: plain signals to a process this test's daemon started.
    unsafe { libc::kill(backend, libc::SIGSTOP) };
    for _ in 0..8 {
        s.queue(
            &submit,
            QUEUE_FENCED | QUEUE_DETACHED | QUEUE_STREAM_IN_MEMORY,
        )
        .unwrap();
    }
    drop((map, s));
    // virtio-gpud answers at once (no round trip on the stopped device),
    // and keeps the memory while the device may still read it.
    let started = Instant::now();
    let other = Session::open().unwrap();
    other.info().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the loop was held"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(stat_of("closing"), 1, "the memory went before its commands");
    assert_eq!(stat_of("regions"), 1);
    // SAFETY: as above.
    unsafe { libc::kill(backend, libc::SIGCONT) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while stat_of("closing") != 0 || stat_of("regions") != 0 || !device_objects().is_empty() {
        assert!(
            Instant::now() < deadline,
            "never released: {} (objects: {})",
            stack_tests::scheme_text("/scheme/virtio-gpu/stats"),
            device_objects()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The device survived all of it.
    let (ctx, res, _, _) = setup(&other, 16, 16);
    clear_and_read_back(&other, ctx, res, 16, 16, [0.0; 4]);
}

/// WAIT's buffer must hold the answer the QUEUE reply announced: shorter is
/// EMSGSIZE and the answer stays for a WAIT that has room; a ticket that is
/// unknown, zero, huge or already answered is ENOENT.
#[test]
fn a_wait_gets_its_answer_only_with_room_for_it() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let s = Session::open().unwrap();
    let queued = s
        .queue(GetCapset::new(CapsetId::new(2), 2).as_bytes(), 0)
        .unwrap();
    assert!(
        queued.answer_len > 24,
        "GET_CAPSET's answer holds the capset"
    );
    for len in [0, 8, 24, queued.answer_len - 1] {
        let short = QueueReply {
            answer_len: len,
            ..queued
        };
        assert_eq!(errno(s.wait(&short)), Some(libc::EMSGSIZE), "{len} bytes");
    }
    let answer = s.wait(&queued).unwrap();
    assert_eq!(answer.len() as u64, queued.answer_len);
    let (hdr, _) = CtrlHdr::read_from_prefix(&answer).unwrap();
    assert_eq!(hdr.response_type(), ResponseType::OK_CAPSET);
    for ticket in [queued.ticket, 0, u64::MAX, queued.ticket + 1000] {
        let gone = QueueReply { ticket, ..queued };
        assert_eq!(errno(s.wait(&gone)), Some(libc::ENOENT), "ticket {ticket}");
    }
    // The session goes on.
    s.call(GetCapset::new(CapsetId::new(2), 2).as_bytes(), 0)
        .unwrap();
}

/// A 2D resource of `format` with `bytes` as its backing, uploaded.
fn uploaded_2d(s: &Session, format: Format, w: u32, h: u32, bytes: &[u8]) -> ResourceId {
    let (r, a) = s
        .call(
            ResourceCreate2d::new(placeholder_res(), format, w, h).as_bytes(),
            0,
        )
        .unwrap();
    ok(&a);
    let res = ResourceId::new(r.created as u32).unwrap();
    let len = w * h * 4;
    let (addr, offset) = s.alloc(u64::from(len)).unwrap();
    s.map(offset, len as usize).unwrap().write_bytes(0, bytes);
    let mut attach = ResourceAttachBacking::new(res, 1).as_bytes().to_vec();
    attach.extend_from_slice(MemEntry::new(addr, len).as_bytes());
    ok(&s.call(&attach, 0).unwrap().1);
    let full = virtio_gpu_proto::Rect::new(0, 0, w, h);
    let upload = virtio_gpu_proto::TransferToHost2d::new(res, full, 0);
    ok(&s.call(upload.as_bytes(), 0).unwrap().1);
    res
}

/// On the 2D display backend (`virtio-gpud --2d`), what a session puts on
/// the scanout (a transfer, SET_SCANOUT and a flush) is what `display/0`
/// shows, pixel for pixel, and its cursor (UPDATE_CURSOR, MOVE_CURSOR) is
/// what `display/cursor` shows; a scanout the display lacks, or a name that
/// is none, is ENOENT.
#[test]
fn the_2d_backend_shows_the_scanout_and_cursor_in_display() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _gpu = Daemon::start(&workspace_binary("virtio-gpud"), &["--2d"], "virtio-gpu");
    let s = Session::open().unwrap();
    let (info, _) = s.info().unwrap();
    assert_eq!(
        info.features & virtio_gpu_proto::Features::VIRGL.bits(),
        0,
        "a 2D device"
    );
    let before = Pam::parse(&display("0").unwrap());
    assert!(
        before.pixels.chunks_exact(4).all(|p| p == [0, 0, 0, 0xFF]),
        "black at first"
    );
    let c = Pam::parse(&display("cursor").unwrap());
    assert_eq!(
        (c.size(), c.field("# visible ")),
        ((0, 0), 0),
        "no cursor yet"
    );

    let (w, h) = (64u32, 48u32);
    // B8G8R8X8 in memory: blue, green, red, X per pixel.
    let expect: Vec<[u8; 4]> = (0..w * h)
        .map(|i| [(i % w * 4) as u8, (i / w * 5) as u8, 0x80, 0xFF])
        .collect();
    let bytes: Vec<u8> = expect.iter().flat_map(|p| [p[2], p[1], p[0], 0]).collect();
    let res = uploaded_2d(&s, Format::B8G8R8X8_UNORM, w, h, &bytes);
    let full = virtio_gpu_proto::Rect::new(0, 0, w, h);
    let scanout = virtio_gpu_proto::SetScanout::new(ScanoutId::new(0), Some(res), full);
    ok(&s.call(scanout.as_bytes(), 0).unwrap().1);
    let flush = virtio_gpu_proto::ResourceFlush::new(res, full);
    ok(&s.call(flush.as_bytes(), 0).unwrap().1);
    let frame = shown("0", |p| {
        p.field("# updates ") > 0 && p.size() == (u64::from(w), u64::from(h))
    });
    for (i, (got, want)) in frame.pixels.chunks_exact(4).zip(&expect).enumerate() {
        assert_eq!(got, want, "pixel {i}");
    }

    // The cursor: an image with its alpha and hot spot, then a move.
    let side = 64u32;
    let image: Vec<[u8; 4]> = (0..side * side)
        .map(|i| {
            [
                (i % side * 3) as u8,
                (i / side * 2) as u8,
                0x40,
                (i % 256) as u8,
            ]
        })
        .collect();
    let bytes: Vec<u8> = image
        .iter()
        .flat_map(|p| [p[2], p[1], p[0], p[3]])
        .collect();
    let cursor = uploaded_2d(&s, Format::B8G8R8A8_UNORM, side, side, &bytes);
    let at = |x, y| virtio_gpu_proto::CursorPos::new(ScanoutId::new(0), x, y);
    let update = virtio_gpu_proto::UpdateCursor::new(at(100, 50), Some(cursor), 3, 4);
    s.queue(update.as_bytes(), QUEUE_DETACHED).unwrap();
    let c = shown("cursor", |p| {
        p.field("# visible ") == 1 && p.field("# x ") == 100
    });
    assert_eq!(c.size(), (64, 64));
    assert_eq!(
        (c.field("# y "), c.field("# hot_x "), c.field("# hot_y ")),
        (50, 3, 4)
    );
    for (i, (got, want)) in c.pixels.chunks_exact(4).zip(&image).enumerate() {
        assert_eq!(got, want, "cursor pixel {i}");
    }
    let moved = virtio_gpu_proto::MoveCursor::new(at(300, 200), Some(cursor));
    s.queue(moved.as_bytes(), QUEUE_DETACHED).unwrap();
    let c = shown("cursor", |p| p.field("# x ") == 300);
    assert_eq!(c.field("# y "), 200);

    for missing in [
        "1",
        "x",
        "",
        "-1",
        "4294967296",
        "18446744073709551616",
        "0x0",
        "cursor/1",
        "0/0",
    ] {
        assert_eq!(
            display(missing).unwrap_err().raw_os_error(),
            Some(libc::ENOENT),
            "display/{missing}"
        );
    }
    // The session and the display are still served.
    ok(&s.call(flush.as_bytes(), 0).unwrap().1);
    assert_eq!(Pam::parse(&display("0").unwrap()).size(), (64, 48));
}

/// A raw CTX_DESTROY, sent unfenced, while another session's fenced submit
/// runs: that submit is still answered. virglrenderer's sync thread drops
/// the fence it is waiting on when any context is destroyed, so virtio-gpud
/// places every CTX_DESTROY fenced, whatever its session asked; a big clear
/// keeps the other session's fence the one waited on.
#[test]
fn test_regression_a_context_destroyed_does_not_lose_another_sessions_fence() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let a = Session::open().unwrap();
    let b = Session::open().unwrap();
    let (ctx, res, _, _) = setup(&a, 4096, 4096);
    for round in 0..4 {
        let (theirs, _, _, _) = setup(&b, 8, 8);
        let v = f32::from(round % 2 == 0);
        let bytes = virgl_stream::clear_stream(
            res.get(),
            virgl_stream::format::R8G8B8A8_UNORM,
            [v, 0.0, 0.0, 1.0],
        );
        let mut submit = CmdSubmit::new(ctx, bytes.len() as u32).as_bytes().to_vec();
        submit.extend_from_slice(&bytes);
        let queued = a.queue(&submit, QUEUE_FENCED).unwrap();
        let (destroyed, answer) = b.call(CtxDestroy::new(theirs).as_bytes(), 0).unwrap();
        ok(&answer);
        assert_ne!(destroyed.fence, 0, "a CTX_DESTROY is placed fenced");
        // Lost, the fence would fail only at the device timeout.
        ok(&a
            .wait(&queued)
            .unwrap_or_else(|e| panic!("round {round}: {e}")));
    }
}

/// TAKEN_OVER and RESTARTED, the calls a restarted drmd makes, sent by any
/// session with any payload: short ones are EINVAL, any value is taken
/// (huge, "negative", repeated), only the caller's own objects are
/// counted, and the daemon, the caller's session and another session's
/// work go on.
#[test]
fn restart_calls_take_any_payload_and_count_only_the_callers_objects() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let path = format!(
        "/scheme/{}/{}",
        gpu_session::api::SCHEME,
        gpu_session::api::SESSION_PATH
    );
    let raw = scheme_seam::SchemeFd::open(&path, 0).unwrap();
    let other = Session::open().unwrap();
    let (ctx, res, _, _) = setup(&other, 8, 8);
    let call = |payload: &[u8], nr: u64| {
        let mut p = payload.to_vec();
        raw.call(&mut p, &[nr])
    };
    for short in [&[][..], &[1, 2, 3][..]] {
        assert_eq!(errno(call(short, TAKEN_OVER)), Some(libc::EINVAL));
    }
    for short in [&[][..], &[0; 7][..]] {
        assert_eq!(errno(call(short, RESTARTED)), Some(libc::EINVAL));
    }
    // The raw session holds nothing: another session's objects are not
    // its to count, vanished or not.
    for vanished in [0u32, 1, u32::MAX] {
        assert_eq!(call(&vanished.to_le_bytes(), TAKEN_OVER).unwrap(), 0);
    }
    for micros in [0u64, u64::MAX, (-1i64) as u64, 1 << 63] {
        for _ in 0..3 {
            assert_eq!(call(&micros.to_le_bytes(), RESTARTED).unwrap(), 0);
        }
    }
    // The other session's object count is its own.
    assert_eq!(
        other.taken_over(false).unwrap(),
        3,
        "a context, a resource, its memory"
    );
    let stats = stack_tests::scheme_text("/scheme/virtio-gpu/stats");
    assert!(
        stats.contains(&format!("last_restart_us {}", 1u64 << 63)),
        "{stats}"
    );
    // Everyone goes on.
    clear_and_read_back(&other, ctx, res, 8, 8, [0.0, 0.0, 1.0, 1.0]);
    assert_eq!(call(&0u32.to_le_bytes(), TAKEN_OVER).unwrap(), 0);
    drop(raw);
    Session::open().unwrap().info().unwrap();
}
