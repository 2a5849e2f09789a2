//! `used_ring`: the split virtqueue's used-ring validation and the
//! command queue's completion (`virtio_gpud::command::CommandQueue` over
//! `virtio_gpud::queue::SplitQueue`) against a device that writes whatever
//! the fuzzer says into the memory it shares with the driver: used-ring
//! entries with any id and length, any used index, any response bytes,
//! and scribbles over the descriptor table, the available ring and the
//! notification fields.
//!
//! Input: `[size][config]` (queue size `1 << size % 9`, EVENT_IDX and the
//! fence wrap limit from `config`), then operations, each `[op: u8]` then
//! its arguments:
//! - 0 submit: `[type][extra][response /4][flags]` and, by flags, a
//!   device-memory payload `[addr: u32][len: u16]`, an inline payload
//!   `[u8-prefixed]`, a fence on the global timeline or on a ring `[ring]`;
//! - 1 complete honestly: `[which][len: u32][response: u8-prefixed]` (the
//!   in-flight command `which`, at the next used slot, index published);
//! - 2 used entry: `[slot: u16][id: u32][len: u32]`; 3 used index: `[u16]`;
//! - 4 scribble: `[area][offset: u16][bytes: u8-prefixed]`;
//! - 5 drain; 6 needs_notify.
//!
//! Checked against a model of the rings: every drain returns exactly the
//! completions, in order, that the entries the device published since the
//! last drain justify (an entry counts only if it names the head of a
//! chain in flight, recorded when the chain was added; a used index that
//! jumps past the chains in flight yields nothing), each with its own
//! command, fence and a response cut to the buffer given; bogus entries
//! are counted; descriptors are never lost. At the end an honest device
//! completes everything left, which must all come back, and all DMA
//! memory returns to the pool.

use std::sync::OnceLock;

use virtio_gpu_proto::{CommandType, CtrlHdr, CtxId, FenceId, ResponseType};
use virtio_gpud::command::{CommandQueue, Completion, DeviceError, Payload, RequestId};
use virtio_gpud::dma::{DmaPool, DmaRegion};
use virtio_gpud::fence::{Fences, Timeline};
use virtio_gpud::queue::SplitQueue;
use zerocopy::IntoBytes;

use crate::{Input, Writer};

const REGION_ADDR: u64 = 0x4000_0000;
const POOL: usize = 4 << 20;
const MAX_OPS: usize = 128;
/// A used ring element's size.
const ELEM: usize = 8;

fn pool() -> &'static DmaPool {
    static POOL_ONCE: OnceLock<DmaPool> = OnceLock::new();
    POOL_ONCE
        .get_or_init(|| DmaPool::new(DmaRegion::new_memfd(POOL, REGION_ADDR).expect("DMA region")))
}

/// Command types a submit picks from (any code goes to the queue).
const TYPES: &[CommandType] = &[
    CommandType::GET_DISPLAY_INFO,
    CommandType::RESOURCE_CREATE_2D,
    CommandType::SUBMIT_3D,
    CommandType::TRANSFER_FROM_HOST_3D,
    CommandType::GET_CAPSET,
    CommandType::UPDATE_CURSOR,
];

/// A command the model knows is in flight.
#[derive(Debug)]
struct Sub {
    id: RequestId,
    head: u16,
    descs: u16,
    command: CommandType,
    fence: Option<(Timeline, FenceId)>,
    /// The response buffer: device address and length (0: none).
    resp: (u64, usize),
}

/// The device's view of the shared memory.
struct Device {
    size: u16,
    avail: usize,
    used: usize,
    /// The used index the device last published.
    published: u16,
}

fn mem() -> &'static scheme_seam::ShmRegion {
    pool().region().shm()
}

fn offset(addr: u64, len: usize) -> usize {
    pool()
        .region()
        .offset_of(addr, len)
        .expect("inside the DMA region")
}

fn load_u16(off: usize) -> u16 {
    let mut b = [0u8; 2];
    mem().read_bytes(off, &mut b);
    u16::from_le_bytes(b)
}

fn store_u16(off: usize, v: u16) {
    mem().write_bytes(off, &v.to_le_bytes());
}

impl Device {
    fn used_elem(&self, slot: u16) -> usize {
        self.used + 4 + ELEM * usize::from(slot & (self.size - 1))
    }

    fn write_elem(&self, slot: u16, id: u32, len: u32) {
        let mut e = [0u8; ELEM];
        e[..4].copy_from_slice(&id.to_le_bytes());
        e[4..].copy_from_slice(&len.to_le_bytes());
        mem().write_bytes(self.used_elem(slot), &e);
    }

    fn read_elem(&self, slot: u16) -> (u32, u32) {
        let mut e = [0u8; ELEM];
        mem().read_bytes(self.used_elem(slot), &mut e);
        (
            u32::from_le_bytes(e[..4].try_into().unwrap()),
            u32::from_le_bytes(e[4..].try_into().unwrap()),
        )
    }

    fn publish(&mut self, idx: u16) {
        self.published = idx;
        store_u16(self.used + 2, idx);
    }
}

struct State {
    cq: CommandQueue,
    fences: Fences,
    dev: Device,
    inflight: Vec<Sub>,
    /// Where the driver stands in the used ring (after each drain it has
    /// taken everything published).
    driver_pos: u16,
    bogus: u64,
}

impl State {
    fn free_descs(&self) -> u16 {
        self.dev.size - self.inflight.iter().map(|s| s.descs).sum::<u16>()
    }

    fn check_counts(&self) {
        assert_eq!(
            self.cq.in_flight(),
            self.inflight.len(),
            "commands in flight"
        );
        assert_eq!(
            self.cq.virtqueue().num_free(),
            self.free_descs(),
            "free descriptors"
        );
        assert_eq!(
            self.cq.stats().bogus_used,
            self.bogus,
            "bogus entries counted"
        );
    }

    fn submit(&mut self, input: &mut Input<'_>) {
        let ty = match input.u8() {
            b if usize::from(b) < TYPES.len() * 32 => TYPES[usize::from(b) % TYPES.len()],
            b => CommandType(u32::from(b) << 4),
        };
        let extra = usize::from(input.u8());
        let response_len = usize::from(input.u8()) * 4;
        let flags = input.u8();
        let mut request = CtrlHdr::new(ty).as_bytes().to_vec();
        request.resize(request.len() + extra, 0x5A);
        if flags & 0x80 != 0 {
            // Shorter than a header.
            request.truncate(extra % 24);
        }
        let device = (flags & 1 != 0).then(|| (input.u32(), input.u16()));
        let inline = if flags & 2 != 0 {
            let n = usize::from(input.u8());
            input.take(n).to_vec()
        } else {
            Vec::new()
        };
        let payload = match device {
            Some((addr, len)) => Payload::Device {
                addr: REGION_ADDR + u64::from(addr % POOL as u32),
                len: u32::from(len % 4096),
            },
            None => Payload::Inline(&inline),
        };
        let timeline = match flags >> 2 & 3 {
            1 => Some(Timeline::Global),
            2 => Some(Timeline::Ring {
                ctx: CtxId::new(1 + u32::from(flags >> 4 & 3)).expect("non-zero"),
                ring: input.u8() % CtrlHdr::MAX_RINGS,
            }),
            _ => None,
        };
        let room = self.free_descs() >= 3;
        let can_stamp = self.fences.can_stamp();
        let fence = timeline.map(|t| (t, &mut self.fences));
        let r = self.cq.submit(&request, payload, response_len, fence);
        if crate::debug() {
            eprintln!(
                "submit {ty} ({} B, response {response_len}) -> {r:?}",
                request.len()
            );
        }
        let malformed = request.len() < 24 || matches!(payload, Payload::Device { len: 0, .. });
        let (id, point) = match r {
            Ok(ok) => ok,
            Err(e) => {
                use virtio_gpud::command::SubmitError as E;
                match e {
                    E::Malformed(_) => assert!(malformed),
                    E::Queue(_) => assert!(!malformed && !room, "{e}"),
                    E::FenceWrap => assert!(!malformed && room && !can_stamp, "{e}"),
                    E::Dma(_) => {}
                }
                return;
            }
        };
        assert!(!malformed && room && (timeline.is_none() || can_stamp));
        assert_eq!(point.is_some(), timeline.is_some());
        // What the driver just published: the chain's head and descriptors.
        let size = self.dev.size;
        let avail_idx = load_u16(self.dev.avail + 2);
        let slot = avail_idx.wrapping_sub(1) & (size - 1);
        let head = load_u16(self.dev.avail + 4 + 2 * usize::from(slot));
        let desc_base = offset(self.cq.virtqueue().addrs().desc, 16 * usize::from(size));
        let mut descs = 0;
        let mut resp = (0, 0);
        let mut d = head;
        loop {
            let mut raw = [0u8; 16];
            mem().read_bytes(desc_base + 16 * usize::from(d), &mut raw);
            let addr = u64::from_le_bytes(raw[..8].try_into().unwrap());
            let len = u32::from_le_bytes(raw[8..12].try_into().unwrap()) as usize;
            let dflags = u16::from_le_bytes([raw[12], raw[13]]);
            descs += 1;
            if dflags & 2 != 0 {
                resp = (addr, len);
            }
            if dflags & 1 == 0 {
                break;
            }
            d = u16::from_le_bytes([raw[14], raw[15]]);
            assert!(descs < 3, "a command chain of more than 3 descriptors");
        }
        assert_eq!(resp.1, response_len, "the response buffer's length");
        assert!(
            self.inflight.iter().all(|s| s.head != head),
            "head {head} handed out twice"
        );
        self.inflight.push(Sub {
            id,
            head,
            descs,
            command: ty,
            fence: timeline.zip(point),
            resp,
        });
    }

    /// Drains, checking the completions against the model.
    fn drain(&mut self) {
        let jump = self.dev.published.wrapping_sub(self.driver_pos);
        let mut expect: Vec<(RequestId, Result<Vec<u8>, ()>)> = Vec::new();
        let mut subs: Vec<Sub> = Vec::new();
        let mut bogus = 0;
        if usize::from(jump) > self.inflight.len() {
            bogus += 1;
        } else {
            for i in 0..jump {
                let (id, len) = self.dev.read_elem(self.driver_pos.wrapping_add(i));
                match self.inflight.iter().position(|s| u32::from(s.head) == id) {
                    Some(k) => {
                        let sub = self.inflight.remove(k);
                        expect.push((sub.id, expected_result(&sub, len)));
                        subs.push(sub);
                    }
                    None => bogus += 1,
                }
            }
        }
        let mut out = Vec::new();
        self.cq.drain(&mut self.fences, &mut out);
        if crate::debug() {
            eprintln!("drain (jump {jump}): {out:?}, {bogus} bogus");
        }
        self.driver_pos = self.dev.published;
        self.bogus += bogus;
        assert_eq!(
            out.iter().map(|c| c.id).collect::<Vec<_>>(),
            expect.iter().map(|e| e.0).collect::<Vec<_>>(),
            "completions (jump {jump})"
        );
        for ((c, (_, want)), sub) in out.iter().zip(&expect).zip(&subs) {
            check_completion(c, want, sub);
        }
        self.check_counts();
    }
}

/// What a completion of `sub` with used length `used_len` must carry,
/// from the response bytes in memory now: Ok(bytes) or an error.
fn expected_result(sub: &Sub, used_len: u32) -> Result<Vec<u8>, ()> {
    let (addr, capacity) = sub.resp;
    if capacity == 0 {
        return Ok(Vec::new());
    }
    let len = (used_len as usize).min(capacity);
    if len < 24 {
        return Err(());
    }
    let mut bytes = vec![0u8; len];
    mem().read_bytes(offset(addr, len), &mut bytes);
    let ty = u32::from_le_bytes(bytes[..4].try_into().unwrap());
    if ResponseType(ty).is_error() {
        Err(())
    } else {
        Ok(bytes)
    }
}

fn check_completion(c: &Completion, want: &Result<Vec<u8>, ()>, sub: &Sub) {
    assert_eq!(c.command, sub.command);
    assert_eq!(c.fence, sub.fence);
    match (&c.result, want) {
        (Ok(got), Ok(want)) => assert!(got == want, "response bytes"),
        (Err(DeviceError::ShortResponse { .. } | DeviceError::Response { .. }), Err(())) => {}
        (got, want) => panic!("{:?}: result {got:?}, expected {want:?}", sub.command),
    }
}

/// The target.
pub fn run(data: &[u8]) {
    let free = pool().free_bytes();
    {
        let mut input = Input::new(data);
        let size = 1u16 << (input.u8() % 9);
        let config = input.u8();
        let vq = SplitQueue::new(pool(), 0, size, config & 1 != 0).expect("queue");
        let addrs = vq.addrs();
        let dev = Device {
            size,
            avail: offset(addrs.avail, 4),
            used: offset(addrs.used, 4 + ELEM * usize::from(size) + 2),
            published: 0,
        };
        let fences = match config >> 1 & 7 {
            0 => Fences::with_wrap(1 + u64::from(config >> 4)),
            _ => Fences::default(),
        };
        let mut s = State {
            cq: CommandQueue::new(vq, pool().clone()),
            fences,
            dev,
            inflight: Vec::new(),
            driver_pos: 0,
            bogus: 0,
        };
        for _ in 0..MAX_OPS {
            if input.is_empty() {
                break;
            }
            operation(&mut s, &mut input);
        }
        // An honest device now: everything left completes, answered OK.
        s.drain();
        let n = s.inflight.len();
        for (i, sub) in s.inflight.iter().enumerate() {
            let (addr, len) = sub.resp;
            if len >= 24 {
                let ok = CtrlHdr {
                    ty: ResponseType::OK_NODATA.0.into(),
                    ..CtrlHdr::default()
                };
                mem().write_bytes(offset(addr, 24), ok.as_bytes());
            }
            let slot = s.dev.published.wrapping_add(i as u16);
            s.dev.write_elem(slot, u32::from(sub.head), len as u32);
        }
        let published = s.dev.published.wrapping_add(n as u16);
        s.dev.publish(published);
        s.drain();
        assert!(s.inflight.is_empty(), "honest completions were lost");
        assert_eq!(s.cq.virtqueue().num_free(), size, "descriptors were lost");
    }
    assert_eq!(pool().free_bytes(), free, "DMA memory leaked");
}

fn operation(s: &mut State, input: &mut Input<'_>) {
    match input.u8() % 7 {
        0 => s.submit(input),
        1 => {
            let which = usize::from(input.u8());
            let len = input.u32();
            let n = usize::from(input.u8());
            let response = input.take(n);
            if s.inflight.is_empty() {
                return;
            }
            let sub = &s.inflight[which % s.inflight.len()];
            let (addr, cap) = sub.resp;
            let n = response.len().min(cap);
            if n > 0 {
                mem().write_bytes(offset(addr, n), &response[..n]);
            }
            let head = u32::from(sub.head);
            s.dev.write_elem(s.dev.published, head, len);
            let next = s.dev.published.wrapping_add(1);
            s.dev.publish(next);
        }
        2 => {
            let (slot, id, len) = (input.u16(), input.u32(), input.u32());
            s.dev.write_elem(slot, id, len);
        }
        3 => {
            let idx = input.u16();
            s.dev.publish(idx);
        }
        4 => {
            let area = input.u8();
            let at = usize::from(input.u16());
            let n = usize::from(input.u8());
            let bytes = input.take(n);
            scribble(s, area, at, bytes);
        }
        5 => s.drain(),
        _ => {
            let _ = s.cq.needs_notify();
        }
    }
}

/// Device writes outside the used ring: the descriptor table, the
/// available ring (and `used_event`), `flags` and `avail_event` of the
/// used ring, or a command's buffers.
fn scribble(s: &State, area: u8, at: usize, bytes: &[u8]) {
    let size = usize::from(s.dev.size);
    let desc = offset(s.cq.virtqueue().addrs().desc, 16 * size);
    let (start, len) = match area % 5 {
        0 => (desc, 16 * size),
        1 => (s.dev.avail, 6 + 2 * size),
        2 => (s.dev.used, 2),
        3 => (s.dev.used + 4 + ELEM * size, 2),
        _ => match s.inflight.first() {
            Some(sub) if sub.resp.1 > 0 => (offset(sub.resp.0, sub.resp.1), sub.resp.1),
            _ => return,
        },
    };
    let at = at % len;
    let n = bytes.len().min(len - at);
    mem().write_bytes(start + at, &bytes[..n]);
}

/// Seeds' side: a submit of type index `ty` with `extra` request bytes,
/// `response_len` (a multiple of 4) and `flags` (see the module).
pub fn seed_submit(w: &mut Writer, ty: u8, extra: u8, response_len: usize, flags: u8) {
    w.u8(0)
        .u8(ty)
        .u8(extra)
        .u8((response_len / 4) as u8)
        .u8(flags);
}

/// Seeds' side: an honest completion of in-flight command `which`.
pub fn seed_complete(w: &mut Writer, which: u8, len: u32, response: &[u8]) {
    w.u8(1)
        .u8(which)
        .u32(len)
        .u8(response.len() as u8)
        .raw(response);
}
