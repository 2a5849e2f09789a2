//! Writes the seed corpora, `fuzz/corpus/<target>/`, from real payloads:
//! the wire encodings the tests and clients use, commands as virtio-gpud
//! sends them, and a trace recorded with `gpu-trace record --full`
//! (`fuzz/traces/gles-triangle.trace`: the GLES triangle through the
//! stack). Then runs every seed through its target, so a seed that fails
//! its own target is caught here.
//!
//! `seeds [CORPUS_DIR [TRACE]]`; built with the targets (`cargo fuzz
//! build`), run from `cargo xtask fuzz --seeds`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use drm_uapi::core as dc;
use drm_uapi::kms as k;
use drm_uapi::sync_file as sf;
use drm_uapi::syncobj as so;
use drm_uapi::virtgpu as vg;
use drm_uapi::Builder;
use scheme_seam::linux::wire::{encode, Reply, Request, MAX_FRAME};
use vgpu_fuzz::{
    bus_frames, bus_journal, drm_handlers, drm_wire, recovery_log, session_admission as sa,
    syncd_calls, trace_decode, used_ring, Writer,
};
use virtio_gpu_proto::{
    BlobFlags, BlobMem, Box3d, CapsetId, CmdSubmit, CommandType, CtrlHdr, CtxDestroy,
    CtxDetachResource, CtxId, CursorPos, GetCapset, GetDisplayInfo, MoveCursor, Rect,
    ResourceCreateBlob, ResourceDetachBacking, ResourceFlush, ResourceId, ResourceUnref,
    ResponseType, ScanoutId, SetScanout, TransferFromHost3d, TransferToHost2d, TransferToHost3d,
    UpdateCursor,
};
use virtio_gpud::trace::record::{self, Kind, RecordHeader, StreamHeader};
use zerocopy::IntoBytes;

type Seeds = BTreeMap<String, Vec<u8>>;

fn add(seeds: &mut Seeds, name: impl Into<String>, bytes: Vec<u8>) {
    let name = name.into();
    assert!(
        seeds.insert(name.clone(), bytes).is_none(),
        "seed {name} twice"
    );
}

/// The records of a recorded trace: (header, bytes).
fn records(trace: &[u8]) -> Vec<(RecordHeader, Vec<u8>)> {
    let body = record::stream_body(trace).expect("a trace");
    let mut at = 0;
    let mut out = Vec::new();
    while let Some(r) = record::next_record(body, &mut at).expect("a whole trace") {
        out.push((r.header, r.bytes.to_vec()));
    }
    out
}

fn commands(trace: &[(RecordHeader, Vec<u8>)]) -> impl Iterator<Item = &Vec<u8>> {
    trace
        .iter()
        .filter(|(h, _)| h.kind == Kind::COMMAND.0)
        .map(|(_, b)| b)
}

/// The virgl streams of the trace's SUBMIT_3Ds.
fn streams(trace: &[(RecordHeader, Vec<u8>)]) -> Vec<Vec<u8>> {
    commands(trace)
        .filter(|b| u32::from_le_bytes(b[..4].try_into().unwrap()) == CommandType::SUBMIT_3D.0)
        .map(|b| b[32..].to_vec())
        .collect()
}

fn drm_wire_seeds(s: &mut Seeds) {
    let seed = drm_wire::seed;
    // VERSION as libdrm asks: lengths first, then room for the strings.
    let v = dc::VersionHeader::default();
    add(
        s,
        "version-lengths",
        seed("version", 0, &Builder::new(&v).build()),
    );
    let v = dc::VersionHeader {
        name_len: 11,
        date_len: 2,
        desc_len: 11,
        ..v
    };
    add(
        s,
        "version-room",
        seed("version", 0, &Builder::new(&v).zeroed::<u8>(24).build()),
    );
    let u = dc::UniqueHeader { unique_len: 16 };
    add(
        s,
        "get-unique",
        seed("get_unique", 0, &Builder::new(&u).zeroed::<u8>(16).build()),
    );
    let cap = dc::GetCap {
        capability: dc::DRM_CAP_PRIME,
        value: 0,
    };
    add(
        s,
        "get-cap",
        seed("get_cap", 0, &Builder::new(&cap).build()),
    );
    let prime = dc::PrimeHandle {
        handle: 0,
        flags: 0,
        token: 0x1234_5678_9abc,
    };
    add(
        s,
        "prime-import",
        seed("prime_fd_to_handle", 0, &Builder::new(&prime).build()),
    );
    add(s, "set-master", seed("set_master", 0, &[]));
    add(
        s,
        "get-client",
        seed("get_client", 0, dc::Client::default().as_bytes()),
    );
    // EXECBUFFER: stream, BO handles, no in-syncobjs, one out-syncobj; the
    // syncobjs start unaligned after a 12-byte stream.
    let e = vg::ExecbufferHeader {
        flags: vg::EXECBUF_FENCE_FD_OUT,
        size: 12,
        num_bo_handles: 2,
        fence_fd: -1,
        syncobj_stride: 16,
        num_out_syncobjs: 1,
        ..vg::ExecbufferHeader::default()
    };
    let out = vg::ExecSyncobj {
        handle: 9,
        flags: 0,
        point: 7,
    };
    let bytes = Builder::new(&e)
        .array(&[1u8; 12])
        .array(&[5u32, 6])
        .array(&[out])
        .build();
    add(s, "execbuffer-out-fence", seed("execbuffer", 0, &bytes));
    let e = vg::ExecbufferHeader {
        flags: vg::EXECBUF_FENCE_FD_IN,
        size: 8,
        num_in_syncobjs: 1,
        ..vg::ExecbufferHeader::default()
    };
    let bytes = Builder::new(&e)
        .array(&[0u8; 8])
        .array(&[out])
        .array(&[0xfeed_u64])
        .build();
    add(s, "execbuffer-in-fence", seed("execbuffer", 0, &bytes));
    let e = vg::ExecbufferHeader {
        num_bo_handles: u32::MAX,
        ..vg::ExecbufferHeader::default()
    };
    add(
        s,
        "execbuffer-not-carried",
        seed("execbuffer", 0, &Builder::new(&e).build()),
    );
    let c = vg::GetCapsHeader {
        cap_set_id: 2,
        cap_set_ver: 2,
        size: 16,
        pad: 0,
    };
    add(
        s,
        "get-caps",
        seed("get_caps", 0, &Builder::new(&c).zeroed::<u8>(16).build()),
    );
    let b = vg::ResourceCreateBlobHeader {
        blob_mem: vg::BLOB_MEM_HOST3D,
        blob_flags: vg::BLOB_FLAG_USE_MAPPABLE,
        size: 1 << 20,
        cmd_size: 3,
        blob_id: 42,
        ..vg::ResourceCreateBlobHeader::default()
    };
    add(
        s,
        "create-blob",
        seed(
            "resource_create_blob",
            0,
            &Builder::new(&b).array(&[7u8, 8, 9]).build(),
        ),
    );
    let params = [
        vg::ContextParam {
            param: vg::CONTEXT_PARAM_CAPSET_ID,
            value: 2,
        },
        vg::ContextParam {
            param: vg::CONTEXT_PARAM_NUM_RINGS,
            value: 1,
        },
    ];
    let h = vg::ContextInitHeader {
        num_params: 2,
        pad: 0,
    };
    add(
        s,
        "context-init",
        seed("context_init", 0, &Builder::new(&h).array(&params).build()),
    );
    let r = vg::ResourceCreate {
        target: 2,
        format: 67,
        bind: 2,
        width: 64,
        height: 64,
        depth: 1,
        array_size: 1,
        size: 16384,
        ..vg::ResourceCreate::default()
    };
    add(
        s,
        "resource-create",
        seed("resource_create", 0, r.as_bytes()),
    );
    add(
        s,
        "transfer",
        seed("transfer_to_host", 0, vg::Transfer::default().as_bytes()),
    );
    // Syncobjs.
    let w = so::WaitHeader {
        timeout_nsec: 1_000_000,
        count_handles: 3,
        flags: so::WAIT_FLAGS_WAIT_ALL,
        ..so::WaitHeader::default()
    };
    add(
        s,
        "syncobj-wait",
        seed(
            "syncobj_wait",
            0,
            &Builder::new(&w).array(&[1u32, 2, 3]).build(),
        ),
    );
    let w = so::TimelineWaitHeader {
        count_handles: 3,
        flags: so::WAIT_FLAGS_WAIT_AVAILABLE,
        ..so::TimelineWaitHeader::default()
    };
    let bytes = Builder::new(&w)
        .array(&[1u32, 2, 3])
        .array(&[1u64, 2, 3])
        .build();
    add(
        s,
        "syncobj-timeline-wait",
        seed("syncobj_timeline_wait", 0, &bytes),
    );
    let a = so::TimelineArray {
        count_handles: 3,
        flags: 0,
    };
    let bytes = Builder::new(&a)
        .array(&[1u32, 2, 3])
        .array(&[5u64, 6, 7])
        .build();
    add(
        s,
        "syncobj-timeline-signal",
        seed("syncobj_timeline_signal", 0, &bytes),
    );
    let bytes = Builder::new(&so::TimelineArray {
        count_handles: 2,
        flags: so::QUERY_FLAGS_LAST_SUBMITTED,
    })
    .array(&[4u32, 5])
    .zeroed::<u64>(2)
    .build();
    add(s, "syncobj-query", seed("syncobj_query", 0, &bytes));
    let a = so::Array {
        count_handles: 1,
        pad: 0,
    };
    add(
        s,
        "syncobj-reset",
        seed("syncobj_reset", 0, &Builder::new(&a).array(&[1u32]).build()),
    );
    let t = so::Transfer {
        src_handle: 1,
        dst_handle: 2,
        dst_point: 3,
        ..so::Transfer::default()
    };
    add(
        s,
        "syncobj-transfer",
        seed("syncobj_transfer", 0, t.as_bytes()),
    );
    let f = so::FdToHandle {
        handle: 1,
        flags: so::FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
        token: 77,
        point: 0,
    };
    add(
        s,
        "syncobj-import",
        seed("syncobj_fd_to_handle", 0, f.as_bytes()),
    );
    add(
        s,
        "syncobj-create",
        seed("syncobj_create", 0, so::Create::default().as_bytes()),
    );
    // sync_file.
    let h = sf::FileInfoHeader {
        num_fences: 3,
        ..sf::FileInfoHeader::default()
    };
    add(
        s,
        "file-info",
        seed(
            "sync_file_info",
            0,
            &Builder::new(&h).zeroed::<sf::FenceInfo>(3).build(),
        ),
    );
    let m = sf::Merge {
        token: 5,
        ..sf::Merge::default()
    };
    add(s, "merge", seed("sync_merge", 0, m.as_bytes()));
    // Calls no daemon makes, which must be errors.
    add(
        s,
        "misuse",
        seed("get_caps", 0x1f, &Builder::new(&c).zeroed::<u8>(16).build()),
    );
}

fn bus_frames_seeds(s: &mut Seeds) {
    let requests = [
        Request::Open {
            path: "card0".into(),
            flags: 2,
        },
        Request::Dup { buf: vec![1, 2, 3] },
        Request::Read {
            len: 4096,
            offset: 0,
            nonblock: true,
        },
        Request::Write {
            data: b"hello".to_vec(),
            offset: 8,
        },
        Request::Call {
            payload: vec![0; 32],
            metadata: vec![vg::EXECBUFFER, 1],
            nonblock: false,
        },
        Request::Fevent { flags: 1 },
        Request::Mmap {
            offset: 4096,
            len: 8192,
            writable: true,
        },
        Request::Fstat,
        Request::SendFds { arg: 9 },
    ];
    let replies = [
        Reply::Error(22),
        Reply::Value(7),
        Reply::Data {
            value: 0,
            data: vec![9; 24],
        },
        Reply::Handle,
        Reply::Fd,
        Reply::Mapped { offset: 4096 },
        Reply::Stat {
            mode: 0o20666,
            rdev: 226 << 8,
            size: 0,
        },
        Reply::Events { ready: 1 },
    ];
    for (i, r) in requests.iter().enumerate() {
        let frame = encode(i as u32 + 1, r);
        add(
            s,
            format!("request-{i}"),
            bus_frames::seed(&[], 0, 0, &frame),
        );
    }
    for (i, r) in replies.iter().enumerate() {
        let frame = encode(i as u32 + 100, r);
        let fd = u16::from(matches!(
            r,
            Reply::Handle | Reply::Fd | Reply::Mapped { .. }
        ));
        add(
            s,
            format!("reply-{i}"),
            bus_frames::seed(&[], fd, 0, &frame),
        );
    }
    // Several frames, cut inside and between them, a descriptor on the
    // second, reads held back after the first.
    let mut stream = encode(1, &requests[4]);
    let second = stream.len();
    stream.extend(encode(2, &requests[8]));
    stream.extend(encode(3, &requests[7]));
    let cuts = [3, second as u16, second as u16 + 5];
    add(
        s,
        "three-frames-cut",
        bus_frames::seed(&cuts, 0b0010, 0b0001, &stream),
    );
    // A frame without descriptors, held in the socket, then one with a
    // descriptor: Linux hands both to one recvmsg (see fuzz/README.md).
    let mut stream = encode(1, &requests[7]);
    let first = stream.len() as u16;
    stream.extend(encode(2, &requests[8]));
    add(
        s,
        "fd-after-held-frame",
        bus_frames::seed(&[first], 0b10, 0b01, &stream),
    );
    // A frame too long (its tag kept), one too short, then a good one.
    let mut bad = ((MAX_FRAME + 1) as u32).to_le_bytes().to_vec();
    bad.extend(42u32.to_le_bytes());
    bad.extend([0xAB; 16]);
    add(s, "too-long", bus_frames::seed(&[6], 0, 0, &bad));
    let mut short = 2u32.to_le_bytes().to_vec();
    short.extend([7, 7]);
    short.extend(encode(9, &Request::Fstat));
    add(s, "too-short", bus_frames::seed(&[4], 0b10, 0, &short));
    let mut garbage = 9u32.to_le_bytes().to_vec();
    garbage.extend(5u32.to_le_bytes());
    garbage.extend([0xff; 5]);
    add(s, "garbage-body", bus_frames::seed(&[], 0, 0, &garbage));
}

/// The set-up's ids, by the fix that picks them: contexts 1 and 2, then
/// resources 1 (session 1's texture, attached to context 1), 2 (session
/// 2's texture), 3 (session 1's 2D image), 4 (session 1's buffer).
const CTX1: u8 = 1;
const TEX1: u8 = 1;
const TEX2: u8 = 2;
const IMAGE: u8 = 3;
const BUFFER: u8 = 4;

fn res(id: u32) -> ResourceId {
    ResourceId::new(id).expect("non-zero")
}

fn ctx(id: u32) -> CtxId {
    CtxId::new(id).expect("non-zero")
}

fn submit(ctx_id: u32, stream: &[u8]) -> Vec<u8> {
    let mut req = CmdSubmit::new(ctx(ctx_id), stream.len() as u32)
        .as_bytes()
        .to_vec();
    req.extend_from_slice(stream);
    req
}

fn session_admission_seeds(s: &mut Seeds, trace: &[(RecordHeader, Vec<u8>)]) {
    let (resources, contexts, _) = sa::setup_ids();
    assert_eq!(resources, [1, 2, 3, 4], "the set-up's resource ids");
    assert_eq!(contexts, [1, 2], "the set-up's context ids");
    let one = |name: &str, s: &mut Seeds, fixes: [u8; 3], req: &[u8], stream: Option<&[u8]>| {
        let mut w = Writer::new();
        sa::seed_admit(&mut w, 0, fixes, req, stream);
        add(s, name, w.build());
    };
    let tex_box = Box3d::new(0, 0, 0, 64, 64, 1);
    let up = TransferToHost3d::new(ctx(1), res(1), tex_box, 0, 0, 0, 0);
    one(
        "transfer-to-host-3d",
        s,
        [CTX1, TEX1, 0],
        up.as_bytes(),
        None,
    );
    let down = TransferFromHost3d::new(ctx(1), res(1), tex_box, 0, 0, 256, 0);
    one(
        "transfer-from-host-3d",
        s,
        [CTX1, TEX1, 0],
        down.as_bytes(),
        None,
    );
    let clear = virgl_stream::clear_stream(1, 67, [0.0, 0.5, 1.0, 1.0]);
    one("submit-inline", s, [CTX1, 0, 0], &submit(1, &clear), None);
    let head = CmdSubmit::new(ctx(1), clear.len() as u32);
    one(
        "submit-in-memory",
        s,
        [CTX1, 0, 0],
        head.as_bytes(),
        Some(&clear),
    );
    let r = Rect::new(0, 0, 64, 64);
    one(
        "transfer-2d",
        s,
        [0, IMAGE, 0],
        TransferToHost2d::new(res(3), r, 0).as_bytes(),
        None,
    );
    one(
        "flush",
        s,
        [0, IMAGE, 0],
        ResourceFlush::new(res(3), r).as_bytes(),
        None,
    );
    let scanout = SetScanout::new(ScanoutId::new(0), Some(res(3)), r);
    one("scanout", s, [0, IMAGE, 0], scanout.as_bytes(), None);
    let pos = CursorPos::new(ScanoutId::new(0), 10, 10);
    one(
        "cursor",
        s,
        [0, TEX1, 0],
        UpdateCursor::new(pos, Some(res(1)), 0, 0).as_bytes(),
        None,
    );
    one(
        "cursor-move",
        s,
        [0, TEX1, 0],
        MoveCursor::new(pos, Some(res(1))).as_bytes(),
        None,
    );
    one(
        "capset",
        s,
        [0, 0, 0],
        GetCapset::new(CapsetId::VIRGL2, 2).as_bytes(),
        None,
    );
    one(
        "display-info",
        s,
        [0, 0, 0],
        GetDisplayInfo::new().as_bytes(),
        None,
    );
    let blob =
        ResourceCreateBlob::new(None, res(1), BlobMem::GUEST, BlobFlags::empty(), 0, 4096, 0);
    one("create-blob", s, [0, 0, 0], blob.as_bytes(), None);

    // A new texture with backing in the session's memory, attached to
    // the context, uploaded to and submitted to (resource fix 5: the new
    // one).
    let mut w = Writer::new();
    sa::seed_admit(&mut w, 0, [0, 0, 0], &sa::texture_2d(32, 32), None);
    sa::seed_admit(
        &mut w,
        0,
        [0, 5, 1],
        &sa::attach_backing(res(5), &[(0, 4096)]),
        None,
    );
    let attach = virtio_gpu_proto::CtxAttachResource::new(ctx(1), res(5));
    sa::seed_admit(&mut w, 0, [CTX1, 5, 0], attach.as_bytes(), None);
    let up = TransferToHost3d::new(ctx(1), res(5), Box3d::new(0, 0, 0, 32, 32, 1), 0, 0, 0, 0);
    sa::seed_admit(&mut w, 0, [CTX1, 5, 0], up.as_bytes(), None);
    add(s, "create-attach-upload", w.build());

    // Backing entries the table must refuse: overlapping, empty, twice.
    let mut w = Writer::new();
    sa::seed_admit(&mut w, 0, [0, 0, 0], &sa::buffer_3d(8192), None);
    let overlap = sa::attach_backing(res(5), &[(0, 4096), (2048, 4096)]);
    sa::seed_admit(&mut w, 0, [0, 5, 1], &overlap, None);
    let empty = sa::attach_backing(res(5), &[(0, 0)]);
    sa::seed_admit(&mut w, 0, [0, 5, 1], &empty, None);
    let good = sa::attach_backing(res(5), &[(0, 4096), (8192, 4096)]);
    sa::seed_admit(&mut w, 0, [0, 5, 1], &good, None);
    sa::seed_admit(&mut w, 0, [0, 5, 1], &good, None);
    let spread = sa::attach_backing(res(5), &[(0, 4096), (0, 4096)]);
    sa::seed_admit(&mut w, 0, [0, 5, 0x41], &spread, None);
    add(s, "backing-rules", w.build());

    // Teardown: detach, unref, destroy.
    let mut w = Writer::new();
    let detach = CtxDetachResource::new(ctx(1), res(4));
    sa::seed_admit(&mut w, 0, [CTX1, BUFFER, 0], detach.as_bytes(), None);
    let rdb = ResourceDetachBacking::new(res(4));
    sa::seed_admit(&mut w, 0, [0, BUFFER, 0], rdb.as_bytes(), None);
    sa::seed_admit(
        &mut w,
        0,
        [0, BUFFER, 0],
        ResourceUnref::new(res(4)).as_bytes(),
        None,
    );
    sa::seed_admit(
        &mut w,
        0,
        [CTX1, 0, 0],
        CtxDestroy::new(ctx(1)).as_bytes(),
        None,
    );
    w.u8(3).u8(0).u8(2); // remove session 1's second allocation
    add(s, "teardown", w.build());

    // PRIME: session 1 shares its texture with session 2, which then
    // tries to use it; session 1 cannot unref it while shared.
    let mut w = Writer::new();
    w.u8(1).u8(0).u8(1).u8(TEX1);
    let up = TransferToHost3d::new(ctx(2), res(1), tex_box, 0, 0, 0, 0);
    sa::seed_admit(&mut w, 1, [2, TEX1, 0], up.as_bytes(), None);
    sa::seed_admit(
        &mut w,
        0,
        [0, TEX1, 0],
        ResourceUnref::new(res(1)).as_bytes(),
        None,
    );
    w.u8(2).u8(1).u8(TEX1); // session 2 releases it
    w.u8(4).u8(0); // session 1 closes
    sa::seed_admit(
        &mut w,
        1,
        [2, TEX2, 0],
        ResourceUnref::new(res(2)).as_bytes(),
        None,
    );
    add(s, "share-release-close", w.build());

    // A lost context: its commands are refused until it is destroyed.
    let mut w = Writer::new();
    w.u8(5).u8(CTX1);
    sa::seed_admit(&mut w, 0, [CTX1, 0, 0], &submit(1, &clear), None);
    sa::seed_admit(
        &mut w,
        0,
        [CTX1, 0, 0],
        CtxDestroy::new(ctx(1)).as_bytes(),
        None,
    );
    sa::seed_admit(&mut w, 0, [0, 0, 0], &sa::ctx_create(), None);
    add(s, "lost-context", w.build());

    // Session 3 starts from nothing: memory, a texture, its backing.
    let mut w = Writer::new();
    w.u8(6).u8(2).u16(8191);
    sa::seed_admit(&mut w, 2, [0, 0, 0], &sa::texture_2d(16, 16), None);
    sa::seed_admit(
        &mut w,
        2,
        [0, 5, 0x81],
        &sa::attach_backing(res(5), &[(0, 1024)]),
        None,
    );
    add(s, "new-session", w.build());

    // The recorded session's commands, each on its own.
    for (i, cmd) in commands(trace).enumerate() {
        if cmd.len() <= 4096 {
            let mut w = Writer::new();
            sa::seed_admit(&mut w, 0, [CTX1, 0, 0], cmd, None);
            add(s, format!("trace-{i:02}"), w.build());
        }
    }
}

/// drmd's ioctls on the in-memory device: an object's life (create,
/// upload, submit, wait, read back, info, map, close), the same on a ring
/// that is full at each step, and sharing (FLINK/OPEN, PRIME import).
fn drm_handlers_seeds(s: &mut Seeds) {
    let op = drm_handlers::seed_op;
    let create = drmd::client::render_target(16, 16);
    let transfer = vg::Transfer {
        box_: vg::Box3d {
            w: 16,
            h: 16,
            d: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let exec = vg::ExecbufferHeader {
        flags: vg::EXECBUF_FENCE_FD_OUT,
        size: 64,
        num_bo_handles: 1,
        ..Default::default()
    };
    let exec = Builder::new(&exec).array(&[0u8; 64]).array(&[0u32]).build();
    // The bo handle's offset in the EXECBUFFER payload: after the stream.
    let exec_bo = (size_of::<vg::ExecbufferHeader>() + 64) as u8;
    let life = |w: &mut Writer, room: Option<u8>| {
        op(w, vg::RESOURCE_CREATE, None, None, create.as_bytes());
        op(
            w,
            vg::TRANSFER_TO_HOST,
            room,
            Some((1, 0)),
            transfer.as_bytes(),
        );
        op(w, vg::EXECBUFFER, room, Some((1, exec_bo)), &exec);
        let wait = vg::Wait {
            handle: 0,
            flags: vg::WAIT_NOWAIT,
        };
        op(w, vg::WAIT, room, Some((1, 0)), wait.as_bytes());
        op(
            w,
            vg::TRANSFER_FROM_HOST,
            room,
            Some((1, 0)),
            transfer.as_bytes(),
        );
        op(
            w,
            vg::RESOURCE_INFO,
            room,
            Some((1, 0)),
            vg::ResourceInfo::default().as_bytes(),
        );
        op(
            w,
            vg::MAP,
            room,
            Some((1, 0)),
            vg::Map::default().as_bytes(),
        );
        op(w, vg::RESOURCE_CREATE, room, None, create.as_bytes());
        op(
            w,
            dc::GEM_CLOSE,
            room,
            Some((1, 0)),
            dc::GemClose::default().as_bytes(),
        );
    };
    let mut w = Writer::new();
    life(&mut w, None);
    add(s, "object-life", w.build());
    // KMS: a dumb buffer as a framebuffer, a mode on it, damage, a flip, a
    // cursor, then an atomic commit (framebuffer ids start at 0x1000).
    let mut w = Writer::new();
    let dumb = k::CreateDumb {
        width: 64,
        height: 64,
        bpp: 32,
        ..Default::default()
    };
    op(&mut w, k::CREATE_DUMB, None, None, dumb.as_bytes());
    let mut fb = k::FbCmd2 {
        width: 64,
        height: 64,
        pixel_format: k::FORMAT_XRGB8888,
        ..Default::default()
    };
    fb.pitches[0] = 256;
    op(&mut w, k::ADDFB2, None, Some((1, 20)), fb.as_bytes());
    let mode = k::ModeInfo {
        clock: 1000,
        hdisplay: 64,
        hsync_start: 64,
        hsync_end: 64,
        htotal: 200,
        vdisplay: 64,
        vsync_start: 64,
        vsync_end: 64,
        vtotal: 100,
        vrefresh: 50,
        ..Default::default()
    };
    let crtc = k::CrtcHeader {
        count_connectors: 1,
        crtc_id: 0x40,
        fb_id: 0x1000,
        mode_valid: 1,
        mode,
        ..Default::default()
    };
    op(
        &mut w,
        k::SETCRTC,
        None,
        None,
        &Builder::new(&crtc).array(&[0x42u32]).build(),
    );
    let dirty = k::FbDirtyHeader {
        fb_id: 0x1000,
        num_clips: 1,
        ..Default::default()
    };
    let clip = k::ClipRect {
        x1: 1,
        y1: 2,
        x2: 9,
        y2: 10,
    };
    op(
        &mut w,
        k::DIRTYFB,
        Some(1),
        None,
        &Builder::new(&dirty).array(&[clip]).build(),
    );
    let flip = k::PageFlip {
        crtc_id: 0x40,
        fb_id: 0x1000,
        flags: k::flip::EVENT,
        ..Default::default()
    };
    op(&mut w, k::PAGE_FLIP, None, None, flip.as_bytes());
    let cursor = k::Cursor2 {
        flags: k::CURSOR_BO | k::CURSOR_MOVE,
        crtc_id: 0x40,
        width: 64,
        height: 64,
        ..Default::default()
    };
    op(&mut w, k::CURSOR2, None, Some((1, 24)), cursor.as_bytes());
    let atomic_cap = dc::SetClientCap {
        capability: dc::DRM_CLIENT_CAP_ATOMIC,
        value: 1,
    };
    op(
        &mut w,
        dc::SET_CLIENT_CAP,
        None,
        None,
        atomic_cap.as_bytes(),
    );
    let commit = k::AtomicHeader {
        flags: k::flip::TEST_ONLY | k::flip::ALLOW_MODESET,
        count_objs: 1,
        ..Default::default()
    };
    let commit = Builder::new(&commit)
        .array(&[0x43u32])
        .array(&[1u32])
        .array(&[11u32])
        .array(&[0x1000u64])
        .build();
    op(&mut w, k::ATOMIC, None, None, &commit);
    add(s, "kms-life", w.build());
    for room in [0, 1, 3] {
        let mut w = Writer::new();
        life(&mut w, Some(room));
        add(s, format!("object-life-room-{room}"), w.build());
    }
    let mut w = Writer::new();
    op(&mut w, vg::RESOURCE_CREATE, None, None, create.as_bytes());
    op(
        &mut w,
        dc::GEM_FLINK,
        None,
        Some((1, 0)),
        dc::GemFlink::default().as_bytes(),
    );
    let open = dc::GemOpen {
        name: 1,
        ..Default::default()
    };
    op(&mut w, dc::GEM_OPEN, None, None, open.as_bytes());
    op(
        &mut w,
        dc::PRIME_FD_TO_HANDLE,
        None,
        None,
        dc::PrimeHandle::default().as_bytes(),
    );
    op(
        &mut w,
        dc::GEM_CLOSE,
        None,
        Some((2, 0)),
        dc::GemClose::default().as_bytes(),
    );
    add(s, "sharing", w.build());
    let mut w = Writer::new();
    let param = vg::GetParam {
        param: vg::PARAM_3D_FEATURES,
        value: 0,
    };
    op(&mut w, vg::GETPARAM, None, None, param.as_bytes());
    let caps = vg::GetCapsHeader {
        cap_set_id: 2,
        cap_set_ver: 2,
        size: 16,
        pad: 0,
    };
    op(
        &mut w,
        vg::GET_CAPS,
        None,
        None,
        &Builder::new(&caps).zeroed::<u8>(16).build(),
    );
    let version = dc::VersionHeader::default();
    op(&mut w, dc::VERSION, None, None, version.as_bytes());
    add(s, "queries", w.build());
}

/// Handles at the start of `syncd_calls`, by index.
const ROOT: u8 = 0;
const PAGE: u8 = 1;
const TABLE: u8 = 2;
const OWNER: u8 = 4;
const FENCE: u8 = 6;

fn syncd_seeds(s: &mut Seeds) {
    let call = syncd_calls::seed_call;
    let create = so::Create::default();
    // Create, signal, wait (WAIT_ALL), query, reset, destroy.
    let mut w = Writer::new();
    call(&mut w, TABLE, so::CREATE, None, create.as_bytes());
    let signal = so::Array {
        count_handles: 1,
        pad: 0,
    };
    call(
        &mut w,
        TABLE,
        so::SIGNAL,
        None,
        &Builder::new(&signal).array(&[1u32]).build(),
    );
    let wait = so::WaitHeader {
        count_handles: 1,
        flags: so::WAIT_FLAGS_WAIT_ALL,
        ..so::WaitHeader::default()
    };
    call(
        &mut w,
        TABLE,
        so::WAIT,
        None,
        &Builder::new(&wait).array(&[1u32]).build(),
    );
    let query = so::TimelineArray {
        count_handles: 1,
        flags: 0,
    };
    call(
        &mut w,
        TABLE,
        so::QUERY,
        None,
        &Builder::new(&query).array(&[1u32]).zeroed::<u64>(1).build(),
    );
    call(
        &mut w,
        TABLE,
        so::RESET,
        None,
        &Builder::new(&signal).array(&[1u32]).build(),
    );
    let destroy = so::Destroy { handle: 1, pad: 0 };
    call(&mut w, TABLE, so::DESTROY, None, destroy.as_bytes());
    add(s, "syncobj-lifecycle", w.build());

    // A wait that parks (a deadline far ahead), then the signal.
    let mut w = Writer::new();
    call(&mut w, TABLE, so::CREATE, None, create.as_bytes());
    let wait = so::WaitHeader {
        timeout_nsec: i64::MAX,
        count_handles: 1,
        flags: so::WAIT_FLAGS_WAIT_FOR_SUBMIT,
        ..so::WaitHeader::default()
    };
    call(
        &mut w,
        TABLE,
        so::WAIT,
        None,
        &Builder::new(&wait).array(&[1u32]).build(),
    );
    let tl = so::TimelineArray {
        count_handles: 1,
        flags: 0,
    };
    call(
        &mut w,
        TABLE,
        so::TIMELINE_SIGNAL,
        None,
        &Builder::new(&tl).array(&[1u32]).array(&[5u64]).build(),
    );
    let twait = so::TimelineWaitHeader {
        timeout_nsec: i64::MAX,
        count_handles: 1,
        flags: so::WAIT_FLAGS_WAIT_AVAILABLE,
        ..so::TimelineWaitHeader::default()
    };
    call(
        &mut w,
        TABLE,
        so::TIMELINE_WAIT,
        None,
        &Builder::new(&twait).array(&[1u32]).array(&[9u64]).build(),
    );
    add(s, "waits", w.build());

    // Timelines: signal and fail points; the fence file's FILE_INFO.
    let mut w = Writer::new();
    call(&mut w, OWNER, api_signal(), None, &1u64.to_le_bytes());
    let mut fail = 2u64.to_le_bytes().to_vec();
    fail.extend(5i32.to_le_bytes());
    fail.extend([0; 4]);
    call(&mut w, OWNER, sync_client::api::FAIL, None, &fail);
    let info = sf::FileInfoHeader {
        num_fences: 1,
        ..sf::FileInfoHeader::default()
    };
    call(
        &mut w,
        FENCE,
        sf::FILE_INFO,
        None,
        &Builder::new(&info).zeroed::<sf::FenceInfo>(1).build(),
    );
    call(
        &mut w,
        FENCE,
        sf::SET_DEADLINE,
        None,
        sf::SetDeadline::default().as_bytes(),
    );
    call(&mut w, OWNER, sync_client::api::TIMELINE_ID, None, &[]);
    add(s, "timeline", w.build());

    // Sync_files into syncobjs and back: import the fence file (its token
    // patched in at 8), export a snapshot (a dup), merge two files.
    let mut w = Writer::new();
    call(&mut w, TABLE, so::CREATE, None, create.as_bytes());
    let import = so::FdToHandle {
        handle: 1,
        flags: so::FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
        token: 0,
        point: 0,
    };
    call(
        &mut w,
        TABLE,
        so::FD_TO_HANDLE,
        Some((FENCE + 1, 8)),
        import.as_bytes(),
    );
    let export = so::HandleToFd {
        handle: 1,
        flags: so::HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE,
        ..so::HandleToFd::default()
    };
    syncd_calls::seed_dup(&mut w, TABLE, None, export.as_bytes());
    let merge = sf::Merge::default();
    syncd_calls::seed_dup(&mut w, FENCE, Some((FENCE + 1, 32)), merge.as_bytes());
    add(s, "import-export-merge", w.build());

    // An opaque export into the other table, and a transfer.
    let mut w = Writer::new();
    call(
        &mut w,
        TABLE,
        so::CREATE,
        None,
        so::Create {
            handle: 0,
            flags: so::CREATE_SIGNALED,
        }
        .as_bytes(),
    );
    let opaque = so::HandleToFd {
        handle: 1,
        ..so::HandleToFd::default()
    };
    syncd_calls::seed_dup(&mut w, TABLE, None, opaque.as_bytes());
    let import = so::FdToHandle {
        handle: 0,
        flags: 0,
        token: 0,
        point: 0,
    };
    // The exported handle is the 8th (index 7).
    call(
        &mut w,
        TABLE + 1,
        so::FD_TO_HANDLE,
        Some((8, 8)),
        import.as_bytes(),
    );
    call(&mut w, TABLE, so::CREATE, None, create.as_bytes());
    let t = so::Transfer {
        src_handle: 1,
        dst_handle: 2,
        dst_point: 4,
        ..so::Transfer::default()
    };
    call(&mut w, TABLE, so::TRANSFER, None, t.as_bytes());
    add(s, "export-import-transfer", w.build());

    // The page: a fence by reference, read, map, poll; the root's text.
    let mut w = Writer::new();
    let fref = sync_client::api::FenceRef {
        timeline: 1,
        pad: 0,
        point: 1,
    };
    syncd_calls::seed_dup(&mut w, PAGE, None, fref.as_bytes());
    w.u8(4).u8(PAGE).u16(8).u8(0);
    w.u8(6).u8(PAGE).u16(0).u16(4096);
    w.u8(5).u8(FENCE).u8(1);
    w.u8(4).u8(ROOT).u16(512).u8(0);
    w.u8(2).u8(3).u8(7); // open a timeline
    w.u8(3).u8(OWNER); // close the owner: its points fail
    add(s, "page-and-root", w.build());
}

fn api_signal() -> u64 {
    sync_client::api::SIGNAL
}

fn used_ring_seeds(s: &mut Seeds) {
    // Queue of 8, no EVENT_IDX, default fences: three commands, completed
    // out of order with OK responses, drained.
    let ok = CtrlHdr {
        ty: ResponseType::OK_NODATA.0.into(),
        ..CtrlHdr::default()
    };
    let mut w = Writer::new();
    w.u8(3).u8(2);
    used_ring::seed_submit(&mut w, 0, 8, 24, 0);
    used_ring::seed_submit(&mut w, 2, 40, 24, 1 << 2 | 1);
    w.u32(0).u16(64); // a payload in device memory
    used_ring::seed_submit(&mut w, 5, 32, 0, 0);
    used_ring::seed_complete(&mut w, 1, 24, ok.as_bytes());
    used_ring::seed_complete(&mut w, 0, 24, ok.as_bytes());
    w.u8(5);
    used_ring::seed_complete(&mut w, 0, 0, &[]);
    w.u8(5);
    add(s, "complete-out-of-order", w.build());

    // EVENT_IDX, a ring-fenced command, an error response, a short one.
    let mut w = Writer::new();
    w.u8(4).u8(3);
    used_ring::seed_submit(&mut w, 4, 8, 64, 2 << 2 | 1 << 4);
    w.u8(3);
    used_ring::seed_submit(&mut w, 1, 16, 24, 2);
    w.u8(4).raw(&[1, 2, 3, 4]);
    let err = CtrlHdr {
        ty: ResponseType::ERR_INVALID_PARAMETER.0.into(),
        ..CtrlHdr::default()
    };
    used_ring::seed_complete(&mut w, 0, 24, err.as_bytes());
    used_ring::seed_complete(&mut w, 1, 8, ok.as_bytes());
    w.u8(6).u8(5);
    add(s, "event-idx-errors", w.build());

    // A bogus device: an entry naming no chain, an index jumping past
    // what is in flight, a used slot written twice; scribbles over the
    // descriptors and the available ring.
    let mut w = Writer::new();
    w.u8(3).u8(2);
    used_ring::seed_submit(&mut w, 0, 8, 24, 0);
    used_ring::seed_submit(&mut w, 0, 8, 24, 0);
    w.u8(2).u16(0).u32(3).u32(24); // entry for descriptor 3 at slot 0
    w.u8(3).u16(1).u8(5);
    w.u8(3).u16(40).u8(5); // index jumps by 39
    w.u8(4).u8(0).u16(0).u8(16).raw(&[0xff; 16]);
    w.u8(4).u8(1).u16(2).u8(2).raw(&[9, 9]);
    used_ring::seed_complete(&mut w, 0, 1 << 20, ok.as_bytes());
    w.u8(5);
    add(s, "bogus-device", w.build());

    // Fences that wrap after 2 ids: the third fenced submit must wait.
    let mut w = Writer::new();
    w.u8(4).u8(1 << 4);
    for _ in 0..3 {
        used_ring::seed_submit(&mut w, 2, 8, 24, 1 << 2);
    }
    used_ring::seed_complete(&mut w, 0, 24, ok.as_bytes());
    used_ring::seed_complete(&mut w, 1, 24, ok.as_bytes());
    w.u8(5);
    used_ring::seed_submit(&mut w, 2, 8, 24, 1 << 2);
    add(s, "fence-wrap", w.build());

    // A full ring of 2: the second submit does not fit.
    let mut w = Writer::new();
    w.u8(1).u8(2);
    used_ring::seed_submit(&mut w, 0, 8, 24, 0);
    used_ring::seed_submit(&mut w, 0, 8, 24, 0);
    used_ring::seed_submit(&mut w, 0, 8, 24, 0x80);
    add(s, "full-and-malformed", w.build());
}

fn capset_seeds(s: &mut Seeds, trace: &[(RecordHeader, Vec<u8>)]) {
    let mut v1 = virtio_gpu_proto::CapsetHeader {
        max_version: 1.into(),
        glsl_level: 130.into(),
        ..Default::default()
    };
    v1.render[2] = (1u32 << 3).into(); // format 67, R8G8B8A8_UNORM
    v1.render[0] = 2u32.into(); // format 1, B8G8R8A8_UNORM
    let mut seed = vec![0u8];
    seed.extend_from_slice(v1.as_bytes());
    add(s, "virgl-v1", seed);
    let mut v2 = v1;
    v2.max_version = 2.into();
    v2.max_texture_array_layers = 2048.into();
    let mut data = v2.as_bytes().to_vec();
    data.resize(496, 0);
    data[484..488].copy_from_slice(&16384u32.to_le_bytes());
    data[488..492].copy_from_slice(&2048u32.to_le_bytes());
    data[492..496].copy_from_slice(&16384u32.to_le_bytes());
    let mut seed = vec![1u8];
    seed.extend_from_slice(&data);
    add(s, "virgl-v2", seed.clone());
    seed.truncate(1 + 490);
    add(s, "virgl-v2-cut", seed);
    // The host's own VIRGL2 capset, from the trace (after the response
    // header).
    let capset = trace
        .iter()
        .find(|(h, _)| h.kind == Kind::RESPONSE.0 && h.ty == ResponseType::OK_CAPSET.0)
        .map(|(_, b)| b[24..].to_vec());
    if let Some(capset) = capset {
        let mut seed = vec![1u8];
        seed.extend_from_slice(&capset);
        add(s, "host-virgl2", seed);
    }
}

/// QEMU's virtio-gpu-gl-pci on q35 as its driver reads it (MSI-X with 3
/// vectors, then common, ISR, device and notify structures in BAR 4), and
/// the same with the list made to loop, to end early and to point into the
/// header; each after a BAR size of 16 KiB.
fn pci_caps_seeds(s: &mut Seeds) {
    let mut c = vec![0u8; 256];
    c[0..4].copy_from_slice(&[0xf4, 0x1a, 0x50, 0x10]);
    c[6] = 0x10;
    c[0x34] = 0x98;
    c[0x98..0x9c].copy_from_slice(&[0x11, 0x84, 0x02, 0x00]);
    for (at, next, ty, offset, len) in [
        (0x84, 0x70, 1u8, 0x0u32, 16u8),
        (0x70, 0x60, 3, 0x1000, 16),
        (0x60, 0x40, 4, 0x2000, 16),
        (0x40, 0x00, 2, 0x3000, 20),
    ] {
        c[at..at + 6].copy_from_slice(&[0x09, next, len, ty, 4, 0]);
        c[at + 8..at + 12].copy_from_slice(&offset.to_le_bytes());
        c[at + 12..at + 16].copy_from_slice(&0x1000u32.to_le_bytes());
    }
    c[0x40 + 16..0x40 + 20].copy_from_slice(&4u32.to_le_bytes());
    let seed = |space: &[u8]| [&0x4000u64.to_le_bytes()[..], space].concat();
    add(s, "qemu-virtio-gpu-gl", seed(&c));
    let mut looped = c.clone();
    looped[0x41] = 0x84;
    add(s, "loop", seed(&looped));
    let mut early = c.clone();
    early[0x61] = 0;
    add(s, "no-notify", seed(&early));
    let mut header = c;
    header[0x41] = 0x20;
    add(s, "into-header", seed(&header));
}

/// Connections as a server journals them: opened, a request taken, a
/// frame cut inside its header or past it, a whole frame being taken, a
/// slot released; then the same scribbled over.
fn bus_journal_seeds(s: &mut Seeds) {
    use bus_journal::Op;
    let first = encode(
        7,
        &Request::Write {
            data: vec![0xab; 40],
            offset: 0,
        },
    );
    let second = encode(8, &Request::Fstat);
    let head = |f: &[u8]| -> [u8; 8] { f[..8].try_into().unwrap() };
    let opened = [Op::Take(0x10, 0), Op::Handle(0, 3), Op::Tag(0, 5, true)];
    let stream = [&first[3..], &second[..]].concat();
    let mut cut_in_header = opened.to_vec();
    cut_in_header.push(Op::Partial(0, 3, head(&first)));
    add(
        s,
        "cut-in-header",
        bus_journal::seed(&cut_in_header, &[], &stream),
    );
    let mut past_header = opened.to_vec();
    past_header.push(Op::Partial(0, 10, head(&first)));
    let rest = [&first[10..], &second[..]].concat();
    add(
        s,
        "cut-past-header",
        bus_journal::seed(&past_header, &[], &rest),
    );
    let mut taking = opened.to_vec();
    taking.extend([
        Op::Taking(0, head(&first)),
        Op::Take(0x20, 1),
        Op::Unknown(1),
    ]);
    add(
        s,
        "taking-and-unknown",
        bus_journal::seed(&taking, &[], &first),
    );
    let mut churn = opened.to_vec();
    churn.extend([
        Op::Take(0x30, 2),
        Op::Tag(1, 9, true),
        Op::Tag(1, 10, true),
        Op::Tag(1, 9, false),
        Op::OutSent(1, 12),
        Op::Release(0),
    ]);
    add(s, "churn", bus_journal::seed(&churn, &[], &second));
    add(
        s,
        "scribbled",
        bus_journal::seed(&past_header, &[(16, 0xff), (40, 0xff), (0, 0)], &rest),
    );
}

/// A journal as drmd writes one: a file with objects, handles, an
/// EXECBUFFER journaled on its way and one answered, a dma-buf, a name,
/// and the display as drmd starts it, then with a framebuffer shown.
fn recovery_log_seeds(s: &mut Seeds) {
    use drmd::file::{ClientCaps, OutFences};
    use drmd::kms::Kms;
    use drmd::node::Node;
    use drmd::recovery::record::{FbState, FileHeader, Marks, ObjectState, Record, Submit};
    let header = |ctx| FileHeader {
        node: Node::Render,
        uid: 1000,
        caps: ClientCaps::default(),
        ctx,
        next_handle: 3,
        arena: None,
        syncobjs: true,
        in_fences: None,
    };
    let object = |res, backing| ObjectState {
        res,
        image: None,
        size: 4096,
        backing,
        token: None,
        writable: Some(true),
        name: None,
    };
    let (a, b) = (1u64 << 32, 2u64 << 32);
    let submit = Submit {
        ctx: 1,
        header: vec![0; 48],
        outs: vec![(1, 0)],
        resets: vec![],
        timeline: Some(1),
        mark: 0,
        placed: Some(4096),
    };
    let memory = drmd::backend::memory::MemoryDevice::new(virtio_gpu_proto::Features::VIRGL);
    let device = drmd::device::Device::new(std::sync::Arc::new(memory), None).unwrap();
    let kms = Kms::new(&device.monitors()).state();
    let mut shown = kms.clone();
    shown.fbs.push(FbState {
        id: shown.next_id,
        owner: 3,
        key: a,
        handle: 1,
        geometry: [64, 64, 256, 0x3432_5258, 0],
        origin: (0, 0),
        listed: true,
    });
    shown.outputs[0].primary = Some(shown.next_id);
    shown.next_id += 1;
    let records = [
        Record::Marks(Marks {
            offsets: 3,
            handles: 4,
        }),
        Record::File(3, header(None)),
        Record::Object(a, object(1, 0x1000)),
        Record::Object(b, object(2, 0x2000)),
        Record::Handle(3, 1, a),
        Record::Handle(3, 2, b),
        Record::File(3, header(Some(1))),
        Record::Submitting(3, 41, submit.clone()),
        Record::Answered(3, 41, vec![0; 8], header(Some(1)), OutFences::default()),
        Record::Submitting(3, 42, submit),
        Record::DmaBuf(4, b, Some(7)),
        Record::Names([(1, b)].into(), 1),
        Record::Events(3, vec![vec![0; 32]]),
        Record::Kms(kms),
        Record::Kms(shown),
        Record::HandleClosed(3, 2),
        Record::Stats(5),
        Record::File(6, header(None)),
        Record::Closed(6),
    ];
    let bytes: Vec<Vec<u8>> = records
        .iter()
        .map(|r| postcard::to_allocvec(r).unwrap())
        .collect();
    add(s, "journal", recovery_log::seed(0, 0, &bytes));
    add(s, "journal-torn-append", recovery_log::seed(1, 0, &bytes));
    add(
        s,
        "journal-committed-short",
        recovery_log::seed(2, 3, &bytes),
    );
    let mut garbled = bytes.clone();
    garbled[5] = vec![0xff; 9];
    add(
        s,
        "journal-record-garbled",
        recovery_log::seed(0, 0, &garbled),
    );
    add(s, "empty", recovery_log::seed(0, 0, &[]));
}

fn edid_seeds(s: &mut Seeds) {
    use virtio_gpu_proto::edid::{build, Monitor, Timing, BLOCK};
    let monitor = |w: u32, h: u32, sizes: &[(u16, u16)]| {
        let mut preferred = Timing::cvt_rb(w, h);
        preferred.size_mm = (w as u16 / 4, h as u16 / 4);
        build(&Monitor {
            vendor: *b"VGD",
            name: "Monitor 0",
            serial: 1,
            preferred,
            sizes,
        })
        .expect("a DTD-sized mode")
    };
    let common = [
        (640, 480),
        (800, 600),
        (1024, 768),
        (1280, 720),
        (1280, 1024),
        (1920, 1200),
    ];
    add(s, "1024x768", monitor(1024, 768, &common).to_vec());
    add(s, "1920x1080", monitor(1920, 1080, &common).to_vec());
    add(s, "4095x2160", monitor(4095, 2160, &[]).to_vec());
    // Announcing one extension block (CTA-861's tag), which follows.
    let mut with_ext = monitor(1280, 800, &common).to_vec();
    with_ext[126] = 1;
    with_ext[127] = with_ext[127].wrapping_sub(1);
    let mut ext = [0u8; BLOCK];
    (ext[0], ext[1]) = (0x02, 0x03);
    with_ext.extend_from_slice(&ext);
    add(s, "cta-extension", with_ext);
    // EDID 1.2 (the 1:1 aspect code), an interlaced, analog-sync DTD.
    let mut old = monitor(1024, 768, &common);
    old[19] = 2;
    old[54 + 17] = 1 << 7;
    old[127] = 0;
    old[127] = old.iter().fold(0u8, |sum, &b| sum.wrapping_sub(b));
    add(s, "edid-1.2-interlaced", old.to_vec());
}

fn virgl_walk_seeds(s: &mut Seeds, trace: &[(RecordHeader, Vec<u8>)]) {
    use virgl_stream::Stream;
    add(
        s,
        "clear",
        virgl_stream::clear_stream(1, 67, [0.0, 0.0, 0.0, 1.0]),
    );
    let mut st = Stream::new();
    st.create_sub_ctx(1)
        .set_sub_ctx(1)
        .create_surface(2, 1, 67, 0)
        .set_framebuffer_state(0, &[2])
        .clear(virgl_stream::clear::COLOR0, [1.0, 0.0, 0.0, 1.0], 1.0, 0)
        .destroy_object(2)
        .destroy_sub_ctx(1);
    add(s, "sub-ctx-surface", st.to_bytes());
    add(s, "empty", Vec::new());
    // The recorded streams, whole, and cut at command boundaries into
    // pieces of about 512 bytes (so each opcode Mesa sent leads a seed).
    for (i, stream) in streams(trace).iter().enumerate() {
        add(s, format!("trace-{i}"), stream.clone());
        let mut commands = virgl_stream::names::commands(stream);
        let (mut start, mut piece) = (0, 0);
        while commands.next().is_some() {
            if commands.offset() - start >= 512 {
                add(
                    s,
                    format!("trace-{i}-{piece:02}"),
                    stream[start..commands.offset()].to_vec(),
                );
                start = commands.offset();
                piece += 1;
            }
        }
        if start < stream.len() {
            add(s, format!("trace-{i}-{piece:02}"), stream[start..].to_vec());
        }
    }
}

fn trace_seeds(s: &mut Seeds, trace_bytes: &[u8], trace: &[(RecordHeader, Vec<u8>)]) {
    let none = (0, 0, 0, 0);
    // The recorded trace in pieces of about 1 KiB of records, each a whole
    // stream with its header; the first also cut into chunks.
    let mut stream = StreamHeader::V1.as_bytes().to_vec();
    let mut piece = 0;
    for (h, b) in trace {
        record::encode(&mut stream, *h, b);
        if stream.len() >= 1024 {
            let cuts: &[u16] = if piece == 0 { &[5, 17, 100] } else { &[] };
            let config = cuts.len() as u8;
            add(
                s,
                format!("trace-{piece:02}"),
                trace_decode::seed(config, 0, none, cuts, &stream),
            );
            stream = StreamHeader::V1.as_bytes().to_vec();
            piece += 1;
        }
    }
    if stream.len() > 16 {
        add(
            s,
            format!("trace-{piece:02}"),
            trace_decode::seed(0, 0, none, &[], &stream),
        );
    }
    // The trace's first 2 KiB with a filter on SUBMIT_3D, the bytes in
    // the JSON (the stream ends inside a record).
    let filter = (1, CommandType::SUBMIT_3D.0, 0, 3);
    let start = &trace_bytes[..trace_bytes.len().min(2048)];
    add(
        s,
        "start-filtered",
        trace_decode::seed(0x20, 0b1010, filter, &[], start),
    );
    // Synthesized: records of each kind, one cut at the cap, with the
    // header prepended by the target (config bit 4).
    let mut body = Vec::new();
    let h = RecordHeader {
        kind: Kind::COMMAND.0,
        seq: 1,
        ty: CommandType::CTX_CREATE.0,
        ctx_id: 1,
        origin: 3,
        ..RecordHeader::default()
    };
    let name = virtio_gpu_proto::CtxCreate::new(ctx(1), 0, "a \"name\"\n\u{7}");
    record::encode(
        &mut body,
        RecordHeader { orig_len: 96, ..h },
        name.as_bytes(),
    );
    let h = RecordHeader {
        kind: Kind::RESPONSE.0,
        ty: ResponseType::ERR_INVALID_PARAMETER.0,
        latency_ns: 1234,
        ..h
    };
    record::encode(
        &mut body,
        RecordHeader { orig_len: 24, ..h },
        CtrlHdr::new(CommandType(0x1205)).as_bytes(),
    );
    let dropped = RecordHeader {
        kind: Kind::DROPPED.0,
        latency_ns: 17,
        ..RecordHeader::default()
    };
    record::encode(&mut body, dropped, &[]);
    let memory = RecordHeader {
        kind: Kind::MEMORY.0,
        resource: 5,
        orig_len: 4096,
        flags: record::FLAG_TRUNCATED,
        ..RecordHeader::default()
    };
    record::encode(&mut body, memory, &[0xAB; 40]);
    let clear = virgl_stream::clear_stream(1, 67, [0.0; 4]);
    let submit_cmd = submit(1, &clear);
    let sub = RecordHeader {
        kind: Kind::COMMAND.0,
        seq: 2,
        ty: CommandType::SUBMIT_3D.0,
        ctx_id: 1,
        orig_len: submit_cmd.len() as u32 + 100,
        flags: record::FLAG_TRUNCATED,
        ..RecordHeader::default()
    };
    record::encode(&mut body, sub, &submit_cmd[..submit_cmd.len() - 4]);
    record::encode(&mut body, RecordHeader { kind: 9, ..dropped }, &[1, 2, 3]);
    add(
        s,
        "synthesized",
        trace_decode::seed(0x12, 0b0001, (1, 0, 0, 0), &[3, 90], &body),
    );
    // Not a trace; another version.
    add(
        s,
        "bad-magic",
        trace_decode::seed(0, 0, none, &[], b"VGTRACX\0\x01\0\0\0\x10\0\0\0"),
    );
    let mut v2 = StreamHeader::V1;
    v2.version = 2;
    add(
        s,
        "version-2",
        trace_decode::seed(0, 0, none, &[], v2.as_bytes()),
    );
}

fn write(dir: &Path, target: &str, seeds: &Seeds) -> usize {
    let dir = dir.join(target);
    if dir.exists() {
        for e in std::fs::read_dir(&dir).expect("corpus dir") {
            std::fs::remove_file(e.expect("entry").path()).expect("old seed");
        }
    }
    std::fs::create_dir_all(&dir).expect("corpus dir");
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).expect("seed");
    }
    seeds.len()
}

fn main() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .map_or_else(|| here.join("corpus"), PathBuf::from);
    let trace_path = args
        .next()
        .map_or_else(|| here.join("traces/gles-triangle.trace"), PathBuf::from);
    let trace_bytes =
        std::fs::read(&trace_path).unwrap_or_else(|e| panic!("{}: {e}", trace_path.display()));
    let trace = records(&trace_bytes);

    let mut all: Vec<(&str, Seeds)> = Vec::new();
    let mut build = |name, f: &dyn Fn(&mut Seeds)| {
        let mut s = Seeds::new();
        f(&mut s);
        all.push((name, s));
    };
    build("drm_wire", &drm_wire_seeds);
    build("bus_frames", &bus_frames_seeds);
    build("bus_journal", &bus_journal_seeds);
    build("session_admission", &|s| session_admission_seeds(s, &trace));
    build("syncd_calls", &syncd_seeds);
    build("used_ring", &used_ring_seeds);
    build("capset", &|s| capset_seeds(s, &trace));
    build("virgl_walk", &|s| virgl_walk_seeds(s, &trace));
    build("trace_decode", &|s| trace_seeds(s, &trace_bytes, &trace));
    build("drm_handlers", &drm_handlers_seeds);
    build("edid", &edid_seeds);
    build("pci_caps", &pci_caps_seeds);
    build("recovery_log", &recovery_log_seeds);

    for (target, seeds) in &all {
        let run = vgpu_fuzz::TARGETS
            .iter()
            .find(|t| t.0 == *target)
            .expect("a target")
            .1;
        for (name, bytes) in seeds {
            let ok = std::panic::catch_unwind(|| run(bytes)).is_ok();
            assert!(ok, "seed {target}/{name} fails its target");
        }
        let n = write(&dir, target, seeds);
        println!("{target}: {n} seeds");
    }
}
