//! virtio-gpud's trace, read live from its scheme while real clients work:
//! the clear-and-read-back flow through drmd shows up command by command
//! with its ids and fences, replays to the same pixels on a fresh device (an
//! upload included),
//! several readers see the same stream, a reader that never reads loses
//! records without stalling anything, and only root may read it.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use drm_uapi::virtgpu::{Box3d, ResourceCreate};
use drmd::client::DrmFd;
use gpu_session::api::{QUEUE_DETACHED, QUEUE_FENCED};
use gpu_session::Session;
use scheme_seam::SchemeFd;
use stack_tests::{bus_dir, stack, workspace_binary};
use sync_client::SyncFile;
use virgl_stream::clear_stream;
use virgl_stream::format::R8G8B8A8_UNORM;
use virtio_gpu_proto::{
    CmdSubmit, CommandType, CtxAttachResource, CtxCreate, CtxId, Resource3dParams,
    ResourceCreate3d, ResourceId, ResponseType,
};
use virtio_gpud::trace::record::{self, Kind, RecordHeader};
use virtio_gpud::transport::vhost_user::{launch, LaunchOptions};
use zerocopy::{FromZeros, IntoBytes};

/// The daemons serve fixed names in the bus directory: tests take turns.
static DAEMONS: Mutex<()> = Mutex::new(());

/// Opens a trace reader (`trace`, `trace/full`, ...), non-blocking.
fn reader(path: &str) -> SchemeFd {
    SchemeFd::open(
        &format!("/scheme/virtio-gpu/{path}"),
        libc::O_NONBLOCK as usize,
    )
    .expect("opening the trace (tests run as root)")
}

/// Everything the reader has waiting, as bytes.
fn drain(fd: &SchemeFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match fd.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
            Err(e) => panic!("reading the trace: {e}"),
        }
    }
    out
}

/// The records of a whole stream (header first).
fn records(stream: &[u8]) -> Vec<(RecordHeader, Vec<u8>)> {
    let body = record::stream_body(stream).expect("a trace stream");
    let mut at = 0;
    let mut out = Vec::new();
    while let Some(r) = record::next_record(body, &mut at).expect("well-formed records") {
        out.push((r.header, r.bytes.to_vec()));
    }
    assert_eq!(at, body.len(), "no partial record at the end");
    out
}

/// The DRM-level clear and read back of a `w × h` target; returns the
/// file (still open), the resource id and the pixels the client read.
fn clear_and_read_back(w: u32, h: u32) -> (DrmFd, u32, Vec<u8>) {
    let fd = DrmFd::open("/scheme/drm/renderD128").unwrap();
    let (bo, res) = fd
        .resource_create(ResourceCreate {
            target: 2,
            format: R8G8B8A8_UNORM,
            bind: virgl_stream::bind::RENDER_TARGET,
            width: w,
            height: h,
            depth: 1,
            array_size: 1,
            size: w * h * 4,
            ..ResourceCreate::new_zeroed()
        })
        .unwrap();
    let stream = clear_stream(res, R8G8B8A8_UNORM, [0.25, 0.5, 0.75, 1.0]);
    let fence = fd.execbuffer(&stream, &[bo], None, true).unwrap().unwrap();
    assert!(fence.wait(Duration::from_secs(10)).unwrap());
    let whole = Box3d::whole(w, h);
    fd.transfer(bo, whole, false).unwrap();
    fd.wait(bo, false).unwrap();
    let mut pixels = vec![0u8; (w * h * 4) as usize];
    fd.map(bo, pixels.len()).unwrap().read_bytes(0, &mut pixels);
    (fd, res, pixels)
}

/// Waits (up to 10 s) until `fd` has bytes for the reader, then drains it.
fn drain_when_readable(fd: &SchemeFd) -> Vec<u8> {
    let ready = fd.poll_fd().expect("the trace's readiness descriptor");
    assert!(stack_tests::poll_readable(ready, 10_000), "no records came");
    drain(fd)
}

#[test]
fn the_trace_shows_the_flow_through_drmd_and_replays_to_the_same_pixels() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let stack = stack();
    let full = reader("trace/full");
    let (file, res, pixels) = clear_and_read_back(16, 16);
    let mut stream = drain(&full);
    // Closing the file releases its objects, on its behalf.
    drop(file);
    let answered_destroy = |stream: &[u8]| {
        let all = records(stream);
        all.iter()
            .filter(|(h, _)| h.kind == Kind::COMMAND.0 && h.ty == CommandType::CTX_DESTROY.0)
            .any(|(c, _)| {
                all.iter()
                    .any(|(h, _)| h.kind == Kind::RESPONSE.0 && h.seq == c.seq)
            })
    };
    while !answered_destroy(&stream) {
        stream.extend(drain_when_readable(&full));
    }
    let all = records(&stream);

    // The file's session placed these commands, in this order.
    let submit = all
        .iter()
        .find(|(h, _)| h.kind == Kind::COMMAND.0 && h.ty == CommandType::SUBMIT_3D.0)
        .expect("a SUBMIT_3D");
    let session = submit.0.origin;
    let commands: Vec<&(RecordHeader, Vec<u8>)> = all
        .iter()
        .filter(|(h, _)| h.kind == Kind::COMMAND.0 && h.origin == session)
        .collect();
    let types: Vec<CommandType> = commands.iter().map(|(h, _)| CommandType(h.ty)).collect();
    assert_eq!(
        types,
        [
            CommandType::RESOURCE_CREATE_3D,
            CommandType::RESOURCE_ATTACH_BACKING,
            CommandType::CTX_CREATE,
            CommandType::CTX_ATTACH_RESOURCE,
            CommandType::SUBMIT_3D,
            CommandType::TRANSFER_FROM_HOST_3D,
            // The file closed: its objects released on its behalf.
            CommandType::RESOURCE_UNREF,
            CommandType::CTX_DESTROY,
        ]
    );
    let [create, attach, ctx_create, ctx_attach, submit, transfer, unref, destroy] = commands[..]
    else {
        unreachable!("eight commands");
    };
    assert_eq!(
        (unref.0.resource, destroy.0.ctx_id),
        (res, ctx_create.0.ctx_id)
    );
    // Ids as the device saw them: the resource drmd reported, one context.
    for r in [create, attach, ctx_attach, transfer] {
        assert_eq!(r.0.resource, res, "{:?}", CommandType(r.0.ty));
    }
    let ctx = ctx_create.0.ctx_id;
    assert_ne!(ctx, 0);
    for r in [ctx_attach, submit, transfer] {
        assert_eq!(r.0.ctx_id, ctx);
    }
    // Fences in queue order; the stream in full, though it sat in memory.
    assert!(submit.0.fence_id > 0 && transfer.0.fence_id > submit.0.fence_id);
    assert_eq!(
        &submit.1[size_of::<CmdSubmit>()..],
        &clear_stream(res, R8G8B8A8_UNORM, [0.25, 0.5, 0.75, 1.0])[..]
    );
    // Every command was answered OK, with its latency.
    for (h, _) in &commands {
        let answer = all
            .iter()
            .find(|(a, _)| a.kind == Kind::RESPONSE.0 && a.seq == h.seq)
            .unwrap_or_else(|| panic!("no answer to {:?}", CommandType(h.ty)));
        assert_eq!(ResponseType(answer.0.ty), ResponseType::OK_NODATA);
        assert!(answer.0.latency_ns > 0 && answer.0.time_ns >= h.time_ns);
    }
    drop(stack);

    // The recording, replayed on a fresh device, gives the same pixels.
    let (mut gpu, _backend) = launch(&LaunchOptions::new(true).unwrap()).expect("a fresh device");
    let replay = virtio_gpud::trace::replay::replay(&mut gpu, &stream).expect("replaying");
    assert!(replay.mismatches.is_empty(), "{:?}", replay.mismatches);
    assert!(replay.commands >= 6);
    let replayed = replay.backing(res).expect("the resource's backing");
    assert_eq!(&replayed[..pixels.len()], &pixels[..]);
    assert!(pixels
        .chunks_exact(4)
        .all(|p| p == [0x40, 0x80, 0xBF, 0xFF]));
}

#[test]
fn an_upload_is_in_a_full_trace_and_replays_to_the_same_copy() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let stack = stack();
    let full = reader("trace/full");
    let capped = reader("trace");
    let fd = DrmFd::open("/scheme/drm/renderD128").unwrap();
    let (w, h) = (32u32, 16u32);
    let make = || {
        fd.resource_create(ResourceCreate {
            target: 2,
            format: R8G8B8A8_UNORM,
            bind: virgl_stream::bind::RENDER_TARGET | virgl_stream::bind::SAMPLER_VIEW,
            width: w,
            height: h,
            depth: 1,
            array_size: 1,
            size: w * h * 4,
            ..ResourceCreate::new_zeroed()
        })
        .unwrap()
    };
    let ((src, src_res), (dst, dst_res)) = (make(), make());
    let pattern: Vec<u8> = (0..w * h * 4).map(|i| (i * 13 + i / 7) as u8).collect();
    fd.map(src, pattern.len()).unwrap().write_bytes(0, &pattern);
    let whole = Box3d::whole(w, h);
    fd.transfer(src, whole, true).unwrap();
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
    fd.transfer(dst, whole, false).unwrap();
    fd.wait(dst, false).unwrap();
    let stream = drain(&full);
    // The upload is a MEMORY record just before its transfer, for the full
    // reader only.
    let all = records(&stream);
    let at = all
        .iter()
        .position(|(h, _)| h.kind == Kind::MEMORY.0)
        .expect("a MEMORY record");
    let (memory, bytes) = &all[at];
    assert_eq!(memory.resource, src_res);
    assert_eq!(&bytes[..pattern.len()], &pattern[..]);
    let next = &all[at + 1].0;
    assert_eq!(
        (next.kind, next.ty),
        (Kind::COMMAND.0, CommandType::TRANSFER_TO_HOST_3D.0)
    );
    assert_eq!(next.seq, memory.seq);
    assert!(records(&drain(&capped))
        .iter()
        .all(|(h, _)| h.kind != Kind::MEMORY.0));
    drop(stack);
    // Replayed on a fresh device, the copy holds the pattern again.
    let (mut gpu, _backend) = launch(&LaunchOptions::new(true).unwrap()).expect("a fresh device");
    let replay = virtio_gpud::trace::replay::replay(&mut gpu, &stream).expect("replaying");
    assert!(replay.mismatches.is_empty(), "{:?}", replay.mismatches);
    let copy = replay.backing(dst_res).expect("the copy's backing");
    assert_eq!(&copy[..pattern.len()], &pattern[..]);
}

#[test]
fn two_readers_see_the_same_records() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let a = reader("trace");
    let b = reader("trace");
    let flow = clear_and_read_back(8, 8);
    let (sa, sb) = (drain(&a), drain(&b));
    assert!(records(&sa).len() >= 12);
    assert_eq!(sa, sb);
    // A cap cuts the bytes, not the records.
    let capped = reader("trace/cap=16");
    let again = clear_and_read_back(8, 8);
    let capped = records(&drain(&capped));
    drop((flow, again));
    assert!(capped
        .iter()
        .all(|(h, b)| b.len() <= 16 && h.orig_len as usize >= b.len()));
    assert!(capped
        .iter()
        .any(|(h, _)| h.flags & record::FLAG_TRUNCATED != 0));
}

#[test]
fn a_reader_that_never_reads_loses_records_and_stalls_nothing() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let idle = reader("trace/full");
    let s = Session::open().unwrap();
    let (r, _) = s
        .call(
            CtxCreate::new(CtxId::new(1).unwrap(), 0, "trace-test").as_bytes(),
            0,
        )
        .unwrap();
    let ctx = CtxId::new(r.created as u32).unwrap();
    let params = Resource3dParams {
        target: 2,
        format: R8G8B8A8_UNORM,
        bind: virgl_stream::bind::RENDER_TARGET,
        width: 8,
        height: 8,
        depth: 1,
        array_size: 1,
        last_level: 0,
        nr_samples: 0,
        flags: 0,
    };
    let (r, _) = s
        .call(
            ResourceCreate3d::new(ResourceId::new(1).unwrap(), &params).as_bytes(),
            0,
        )
        .unwrap();
    let res = r.created as u32;
    let attach = CtxAttachResource::new(ctx, ResourceId::new(res).unwrap());
    s.call(attach.as_bytes(), 0).unwrap();
    // A kilobyte of stream per submit: 10,000 of them overflow the idle
    // reader's 4 MiB several times.
    let one = clear_stream(res, R8G8B8A8_UNORM, [1.0, 0.0, 0.0, 1.0]);
    let stream: Vec<u8> = std::iter::repeat_n(one, 8).flatten().collect();
    let mut submit = CmdSubmit::new(ctx, stream.len() as u32).as_bytes().to_vec();
    submit.extend_from_slice(&stream);
    let mut last = 0;
    for _ in 0..10_000 {
        last = s
            .queue(&submit, QUEUE_FENCED | QUEUE_DETACHED)
            .unwrap()
            .fence;
    }
    let fence = SyncFile::for_fence(s.timeline().unwrap(), last).unwrap();
    assert!(
        fence.wait(Duration::from_secs(60)).unwrap(),
        "all 10,000 ran"
    );
    let stats = read_stats();
    let dropped: u64 = field(&stats, "trace_dropped");
    assert!(dropped > 0, "{stats}");
    // Once the reader catches up, its stream says how many it lost.
    drain(&idle);
    s.queue(&submit, QUEUE_FENCED).unwrap();
    let after = drain(&idle);
    let body = after.as_slice();
    let mut at = 0;
    let first = record::next_record(body, &mut at).unwrap().unwrap();
    assert_eq!(first.kind(), Kind::DROPPED);
    assert!(first.header.latency_ns > 0);
}

fn read_stats() -> String {
    stack_tests::scheme_text("/scheme/virtio-gpu/stats")
}

fn field(stats: &str, name: &str) -> u64 {
    stats
        .split_whitespace()
        .skip_while(|w| *w != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {stats}"))
}

#[test]
fn only_root_reads_the_trace_and_the_object_table() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    // Let an unprivileged process reach the socket, so the daemon decides.
    let socket = bus_dir().join("virtio-gpu");
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let output = Command::new(workspace_binary("gpu-tool"))
        .args([
            "open-as-nobody",
            "/scheme/virtio-gpu/trace",
            "/scheme/virtio-gpu/trace/full",
            "/scheme/virtio-gpu/objects",
            "/scheme/virtio-gpu/stats",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    let eacces = libc::EACCES.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            format!("/scheme/virtio-gpu/trace {eacces}"),
            format!("/scheme/virtio-gpu/trace/full {eacces}"),
            format!("/scheme/virtio-gpu/objects {eacces}"),
            "/scheme/virtio-gpu/stats ok".to_string(),
        ]
    );
    // Root reads them; nobody writes them.
    let trace = reader("trace");
    assert_eq!(
        trace.write(b"x").unwrap_err().raw_os_error(),
        Some(libc::EBADF)
    );
    for bad in ["trace/cap=x", "trace/bogus"] {
        let err = SchemeFd::open(&format!("/scheme/virtio-gpu/{bad}"), 0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{bad}");
    }
}
