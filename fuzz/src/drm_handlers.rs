//! `drm_handlers`: drmd's ioctl handlers on an in-memory device
//! (`drmd::backend::memory`), looked up in drmd's ioctl table and run as
//! the scheme runs them: any served ioctl with any payload, on a ring that
//! may be full, with the file's GEM handles patched into payloads.
//!
//! Input: operations until the input ends (at most [`MAX_OPS`]), each
//! `sel: u8` (the ioctl, [`NRS`]`[sel % len]`), `room: u8` (0xff: the ring
//! takes any number of commands; else `room % 6` more), `patch: u8, at: u8`
//! (a non-zero `patch` writes the file's `patch`-th GEM handle, counting
//! from 1 in handle order, as a `u32` at byte `at` of the payload),
//! `expired: u8` (odd: the call runs as a parked one at its deadline) and
//! `payload` (`u16` length, bytes).
//!
//! After each call the KMS state's deadline and due work are run, as the
//! serving loop runs them.
//!
//! Checked: nothing panics; the payload keeps its length; an ioctl that
//! parks changed nothing a client or the device sees (the file's handles,
//! the commands placed, the device's holds); a call at its deadline does
//! not park on a fence; no handler met a full ring after it had placed
//! the first command of its batch; every GEM handle names a resource the
//! device holds.

use std::sync::Arc;

use drm_uapi::core as dc;
use drm_uapi::kms as k;
use drm_uapi::syncobj as so;
use drm_uapi::virtgpu as vg;
use drmd::backend::memory::MemoryDevice;
use drmd::device::Device;
use drmd::file::DrmFile;
use drmd::gem::{Gem, Names};
use drmd::ioctl::{table, Call, PROGRESS};
use drmd::kms::Kms;
use drmd::master::Masters;
use drmd::node::Node;
use scheme_seam::Answer;
use virtio_gpu_proto::Features;

use crate::{Input, Writer};

/// Operations per input.
pub const MAX_OPS: usize = 32;

/// The ioctls a render file may call, the primary node's GEM_OPEN and
/// GET_UNIQUE, and the KMS ioctls served (the table's permission check is
/// not what is fuzzed here).
pub const NRS: [u64; 57] = [
    dc::VERSION,
    dc::GET_UNIQUE,
    dc::GET_CAP,
    dc::GEM_CLOSE,
    dc::GEM_FLINK,
    dc::GEM_OPEN,
    dc::PRIME_FD_TO_HANDLE,
    vg::MAP,
    vg::EXECBUFFER,
    vg::GETPARAM,
    vg::RESOURCE_CREATE,
    vg::RESOURCE_INFO,
    vg::TRANSFER_FROM_HOST,
    vg::TRANSFER_TO_HOST,
    vg::WAIT,
    vg::GET_CAPS,
    vg::RESOURCE_CREATE_BLOB,
    vg::CONTEXT_INIT,
    dc::SET_CLIENT_CAP,
    dc::GET_STATS,
    dc::GET_CLIENT,
    so::CREATE,
    k::CREATE_DUMB,
    k::MAP_DUMB,
    k::DESTROY_DUMB,
    k::ADDFB,
    k::ADDFB2,
    k::RMFB,
    k::CLOSEFB,
    k::GETFB,
    k::GETFB2,
    k::GETRESOURCES,
    k::GETCONNECTOR,
    k::GETENCODER,
    k::GETCRTC,
    k::SETCRTC,
    k::PAGE_FLIP,
    k::DIRTYFB,
    k::CURSOR,
    k::CURSOR2,
    k::GETPLANERESOURCES,
    k::GETPLANE,
    k::GETGAMMA,
    k::SETGAMMA,
    k::LIST_LESSEES,
    k::SETPLANE,
    k::ATOMIC,
    k::WAIT_VBLANK,
    k::CRTC_GET_SEQUENCE,
    k::CRTC_QUEUE_SEQUENCE,
    k::GETPROPERTY,
    k::SETPROPERTY,
    k::OBJ_GETPROPERTIES,
    k::OBJ_SETPROPERTY,
    k::GETPROPBLOB,
    k::CREATEPROPBLOB,
    k::DESTROYPROPBLOB,
];

/// What a parked ioctl must leave as it was.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    handles: Vec<(u32, u32)>,
    placed: usize,
    held: Vec<(u32, u32)>,
}

struct State {
    device: Device,
    memory: MemoryDevice,
    file: DrmFile,
    masters: Masters,
    names: Names,
    kms: Kms,
}

impl State {
    fn seen(&self) -> Seen {
        let mut handles: Vec<(u32, u32)> = self.file.bos.iter().map(|(&h, g)| (h, g.res)).collect();
        handles.sort_unstable();
        Seen {
            handles,
            placed: self.memory.placed().len(),
            held: self.memory.held(),
        }
    }

    /// The file's `n`-th GEM handle (from 1), in handle order.
    fn handle(&self, n: u8) -> Option<u32> {
        let mut handles: Vec<u32> = self.file.bos.keys().copied().collect();
        handles.sort_unstable();
        handles.get(usize::from(n).checked_sub(1)?).copied()
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    // No daemon of this machine's may answer: a call that needs syncd
    // finds no scheme directory.
    static ISOLATED: std::sync::Once = std::sync::Once::new();
    ISOLATED.call_once(|| std::env::set_var(scheme_seam::linux::SCHEME_DIR, "/nonexistent"));
    let memory = MemoryDevice::new(Features::VIRGL);
    let device = Device::new(Arc::new(memory.clone()), None).expect("the memory device answers");
    let file = DrmFile::open(Node::Render, 1000, Box::new(memory.clone()));
    let mut s = State {
        kms: Kms::new(&device.monitors()),
        device,
        memory,
        file,
        masters: Masters::default(),
        names: Names::default(),
    };
    s.masters.open(1, 1, false);
    let mut input = Input::new(data);
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        operation(&mut s, &mut input);
        for (h, gem) in &s.file.bos {
            assert!(
                s.memory.holds(gem.res),
                "handle {h} names resource {} nobody holds",
                gem.res
            );
        }
        assert_eq!(s.memory.waited(), 0, "a handler waited for room mid-batch");
    }
}

fn operation(s: &mut State, input: &mut Input<'_>) {
    let nr = NRS[usize::from(input.u8()) % NRS.len()];
    let room = input.u8();
    let (patch, at) = (input.u8(), input.u8());
    let expired = input.u8() & 1 == 1;
    let mut payload = input.bytes16().to_vec();
    if let Some(handle) = s.handle(patch) {
        let at = usize::from(at);
        if let Some(dst) = payload.get_mut(at..at + 4) {
            dst.copy_from_slice(&handle.to_le_bytes());
        }
    }
    s.memory
        .set_room((room != 0xff).then_some(u32::from(room % 6)));
    let Some(table::Entry {
        kind: table::Kind::Served(handler),
        ..
    }) = table::entry(nr)
    else {
        panic!("{nr:#x} is served");
    };
    let before = s.seen();
    let len = payload.len();
    // The dma-bufs a PRIME import may name: the file's own objects' first.
    let exported: Vec<Arc<Gem>> = s.file.bos.values().take(1).cloned().collect();
    let dma_buf = |_token: u64| exported.first().cloned();
    let answer = handler(&mut Call {
        nr,
        payload: &mut payload,
        id: 1,
        pid: 1,
        expired,
        file: &mut s.file,
        device: &mut s.device,
        masters: &mut s.masters,
        names: &mut s.names,
        kms: &mut s.kms,
        dma_buf: &dma_buf,
        stage: &mut |_| {},
    });
    if crate::debug() {
        eprintln!("ioctl {nr:#x} ({len} B, room {room}) -> {answer:?}");
    }
    assert_eq!(payload.len(), len, "the payload changed length");
    if let Ok(Answer::Park(park)) = &answer {
        assert_eq!(before, s.seen(), "{nr:#x} parked after changing state");
        assert!(
            !(expired && park.waits_for(PROGRESS)),
            "{nr:#x} parked on a fence at its deadline"
        );
    }
    // The serving loop's side of KMS: when it must look again, and what is
    // due now (flips, queued vblank events, cursor uploads).
    let now = std::time::Instant::now();
    let _ = s.kms.next_deadline(now);
    let _ = s.kms.tick(&mut s.device, now);
}

/// Seeds' side: one operation (`room` None: no limit).
pub fn seed_op(w: &mut Writer, nr: u64, room: Option<u8>, patch: Option<(u8, u8)>, payload: &[u8]) {
    let index = NRS.iter().position(|&n| n == nr).expect("a fuzzed nr");
    let (patch, at) = patch.unwrap_or((0, 0));
    w.u8(index as u8)
        .u8(room.unwrap_or(0xff))
        .u8(patch)
        .u8(at)
        .u8(0);
    w.bytes16(payload);
}
