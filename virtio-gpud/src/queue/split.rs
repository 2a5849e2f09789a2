//! The split virtqueue, driver side (VIRTIO 1.2 §2.7).
//!
//! The descriptor table, available ring and used ring live in one DMA
//! buffer. The driver keeps its own copy of every chain's links (`next`),
//! so freeing a chain never follows memory the device can write, and every
//! used-ring entry is checked against that copy before it is believed.

use std::num::Wrapping;
use std::sync::atomic::{fence, Ordering};

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::dma::{DmaBuf, DmaError, DmaPool};

/// `VIRTQ_DESC_F_NEXT`: the chain continues at `next`.
const DESC_F_NEXT: u16 = 1;
/// `VIRTQ_DESC_F_WRITE`: the device writes this buffer.
const DESC_F_WRITE: u16 = 2;
/// `VIRTQ_USED_F_NO_NOTIFY`: the device asks not to be notified.
const USED_F_NO_NOTIFY: u16 = 1;

/// Largest queue the split layout allows (§2.7: 32768).
pub const MAX_QUEUE_SIZE: u16 = 32768;

/// A descriptor table entry (§2.7.5), 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct Descriptor {
    addr: U64,
    len: U32,
    flags: U16,
    next: U16,
}
const _: () = assert!(std::mem::size_of::<Descriptor>() == 16);

/// A used ring element (§2.7.8), 8 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct UsedElem {
    id: U32,
    len: U32,
}
const _: () = assert!(std::mem::size_of::<UsedElem>() == 8);

/// Errors of the split virtqueue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Not enough free descriptors for the chain; retry after completions.
    #[error("virtqueue {queue} full: {needed} descriptors needed, {free} free")]
    Full {
        /// Queue index.
        queue: u16,
        /// Descriptors the chain needs.
        needed: u16,
        /// Descriptors free now.
        free: u16,
    },
    /// A chain must have at least one buffer, no more than the queue size,
    /// list device-readable buffers before device-writable ones (§2.7.4),
    /// and have no empty buffer (QEMU's and libvhost-user's devices treat a
    /// zero-length descriptor as a broken driver and stop the queue).
    #[error("virtqueue {queue}: malformed chain: {reason}")]
    BadChain {
        /// Queue index.
        queue: u16,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The queue size is not a power of two in 1..=32768.
    #[error("virtqueue size {0} is not a power of two in 1..=32768")]
    BadSize(u16),
    /// The device published a used entry that names no chain in flight.
    #[error("virtqueue {queue}: device returned descriptor {id}, which is not in flight")]
    BogusUsed {
        /// Queue index.
        queue: u16,
        /// The id the device wrote.
        id: u32,
    },
    /// The device moved `used.idx` further than there are chains in flight.
    #[error("virtqueue {queue}: device used index jumped by {jump} with {in_flight} in flight")]
    BogusUsedIdx {
        /// Queue index.
        queue: u16,
        /// How far the index moved.
        jump: u16,
        /// Chains in flight.
        in_flight: u16,
    },
    /// Ring memory could not be allocated.
    #[error(transparent)]
    Dma(#[from] DmaError),
}

/// One buffer of a descriptor chain, by device address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    /// Device address of the first byte.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// Whether the device writes (true) or reads (false) it.
    pub device_writes: bool,
}

/// A chain the device has finished with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Used {
    /// The head descriptor returned by [`SplitQueue::add`].
    pub head: u16,
    /// Bytes the device says it wrote into the chain's writable buffers.
    /// Untrusted: bound it by the writable buffers' size before use.
    pub len: u32,
}

/// Device addresses of a queue's three parts, for the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueAddrs {
    /// Descriptor table.
    pub desc: u64,
    /// Available (driver) ring.
    pub avail: u64,
    /// Used (device) ring.
    pub used: u64,
}

/// Byte offsets of the three parts inside the ring buffer.
#[derive(Clone, Copy, Debug)]
struct Layout {
    avail: usize,
    used: usize,
    total: usize,
}

impl Layout {
    fn new(size: u16) -> Layout {
        let n = usize::from(size);
        // §2.7: descriptor table 16-aligned, avail 2-aligned, used 4-aligned;
        // each part starts on its own cache line so driver and device writes
        // never share one.
        let avail = (16 * n).next_multiple_of(64);
        let used = (avail + 6 + 2 * n).next_multiple_of(64);
        let total = used + 6 + 8 * n;
        Layout { avail, used, total }
    }
    fn avail_idx(&self) -> usize {
        self.avail + 2
    }
    fn avail_ring(&self, slot: u16) -> usize {
        self.avail + 4 + 2 * usize::from(slot)
    }
    /// `used_event`, read by the device under VIRTIO_F_EVENT_IDX.
    fn used_event(&self, size: u16) -> usize {
        self.avail + 4 + 2 * usize::from(size)
    }
    fn used_flags(&self) -> usize {
        self.used
    }
    fn used_idx(&self) -> usize {
        self.used + 2
    }
    fn used_ring(&self, slot: u16) -> usize {
        self.used + 4 + 8 * usize::from(slot)
    }
    /// `avail_event`, written by the device under VIRTIO_F_EVENT_IDX.
    fn avail_event(&self, size: u16) -> usize {
        self.used + 4 + 8 * usize::from(size)
    }
}

/// The driver side of one split virtqueue.
#[derive(Debug)]
pub struct SplitQueue {
    index: u16,
    size: u16,
    mem: DmaBuf,
    layout: Layout,
    /// The driver's trusted copy of each descriptor's `next` link.
    next: Vec<u16>,
    /// Per head descriptor: length of the chain in flight, 0 when idle.
    chain_len: Vec<u16>,
    free_head: u16,
    num_free: u16,
    /// Chains made available and not yet returned.
    chains: u16,
    /// Shadow of `avail.idx`: the next slot the driver fills.
    avail_idx: Wrapping<u16>,
    /// `avail.idx` when the device was last notified (or told not to be).
    kicked_idx: Wrapping<u16>,
    /// How far the driver has consumed the used ring.
    last_used: Wrapping<u16>,
    event_idx: bool,
}

impl SplitQueue {
    /// Allocates queue `index` with `size` entries in `pool`. With
    /// `event_idx` (VIRTIO_F_EVENT_IDX negotiated) notifications in both
    /// directions are suppressed by ring position instead of flags.
    pub fn new(pool: &DmaPool, index: u16, size: u16, event_idx: bool) -> Result<Self, QueueError> {
        if size == 0 || !size.is_power_of_two() || size > MAX_QUEUE_SIZE {
            return Err(QueueError::BadSize(size));
        }
        let layout = Layout::new(size);
        let mem = pool.alloc(layout.total, 4096)?;
        Ok(SplitQueue {
            index,
            size,
            mem,
            layout,
            next: (1..=size).map(|i| i % size).collect(),
            chain_len: vec![0; usize::from(size)],
            free_head: 0,
            num_free: size,
            chains: 0,
            avail_idx: Wrapping(0),
            kicked_idx: Wrapping(0),
            last_used: Wrapping(0),
            event_idx,
        })
    }

    /// The queue's index on the device.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// Number of entries.
    pub fn size(&self) -> u16 {
        self.size
    }

    /// Chains made available and not yet returned.
    pub fn in_flight(&self) -> u16 {
        self.chains
    }

    /// Free descriptors.
    pub fn num_free(&self) -> u16 {
        self.num_free
    }

    /// Device addresses of the descriptor table and rings.
    pub fn addrs(&self) -> QueueAddrs {
        let base = self.mem.device_addr();
        QueueAddrs {
            desc: base,
            avail: base + self.layout.avail as u64,
            used: base + self.layout.used as u64,
        }
    }

    /// Places a chain and makes it available to the device; returns its
    /// head descriptor. The device is not notified: call
    /// [`SplitQueue::needs_notify`] once per batch.
    pub fn add(&mut self, bufs: &[Buffer]) -> Result<u16, QueueError> {
        let bad = |reason| QueueError::BadChain {
            queue: self.index,
            reason,
        };
        let n = u16::try_from(bufs.len()).map_err(|_| bad("longer than the queue"))?;
        if n == 0 {
            return Err(bad("no buffers"));
        }
        if n > self.size {
            return Err(bad("longer than the queue"));
        }
        if bufs
            .windows(2)
            .any(|w| w[0].device_writes && !w[1].device_writes)
        {
            return Err(bad("a device-readable buffer follows a writable one"));
        }
        // libvhost-user's virtqueue_map_desc answers one with "zero sized
        // buffers are not allowed" and never serves the queue again: the
        // whole device would be lost to one empty payload.
        if bufs.iter().any(|b| b.len == 0) {
            return Err(bad("an empty buffer"));
        }
        if n > self.num_free {
            return Err(QueueError::Full {
                queue: self.index,
                needed: n,
                free: self.num_free,
            });
        }
        let head = self.free_head;
        let mut id = head;
        for (i, buf) in bufs.iter().enumerate() {
            let last = i + 1 == bufs.len();
            let mut flags = 0;
            if buf.device_writes {
                flags |= DESC_F_WRITE;
            }
            if !last {
                flags |= DESC_F_NEXT;
            }
            let next = self.next[usize::from(id)];
            let desc = Descriptor {
                addr: buf.addr.into(),
                len: buf.len.into(),
                flags: flags.into(),
                next: if last { 0 } else { next }.into(),
            };
            self.mem.write_obj(16 * usize::from(id), &desc);
            if !last {
                id = next;
            }
        }
        self.free_head = self.next[usize::from(id)];
        self.num_free -= n;
        self.chain_len[usize::from(head)] = n;
        self.chains += 1;

        let slot = self.avail_idx.0 & (self.size - 1);
        self.mem.store_u16(self.layout.avail_ring(slot), head);
        self.avail_idx += 1;
        // §2.7.13: the descriptors and ring entry must be visible before the
        // index that publishes them.
        fence(Ordering::Release);
        self.mem
            .store_u16(self.layout.avail_idx(), self.avail_idx.0);
        Ok(head)
    }

    /// Whether the chains added since the last call need a notification
    /// (§2.7.23 with and without VIRTIO_F_EVENT_IDX). Call once per batch.
    pub fn needs_notify(&mut self) -> bool {
        // The published avail.idx must be visible to the device before we
        // read its suppression state, or both sides can decide to wait.
        fence(Ordering::SeqCst);
        let old = self.kicked_idx;
        let new = self.avail_idx;
        self.kicked_idx = new;
        if old == new {
            return false;
        }
        if self.event_idx {
            let event = Wrapping(self.mem.load_u16(self.layout.avail_event(self.size)));
            // vring_need_event: notify if `event` lies in (old, new].
            (new - event - Wrapping(1)) < (new - old)
        } else {
            self.mem.load_u16(self.layout.used_flags()) & USED_F_NO_NOTIFY == 0
        }
    }

    /// Whether the device has returned chains not yet popped.
    pub fn has_used(&self) -> bool {
        self.mem.load_u16(self.layout.used_idx()) != self.last_used.0
    }

    /// Takes the next finished chain, if any, and frees its descriptors.
    ///
    /// An entry that does not match a chain in flight is reported as an
    /// error and skipped, so a misbehaving device cannot corrupt the free
    /// list or wedge the queue.
    pub fn pop_used(&mut self) -> Result<Option<Used>, QueueError> {
        let mut used_idx = Wrapping(self.mem.load_u16(self.layout.used_idx()));
        if used_idx == self.last_used {
            if !self.event_idx {
                return Ok(None);
            }
            // Nothing more: ask for an interrupt at the next entry, then
            // look again. The store must be visible before the re-read (a
            // full fence: x86 lets a load pass an earlier store), or the
            // device can publish an entry, read the old `used_event`, and
            // decide not to interrupt, while this reads the old index: the
            // entry then waits for an interrupt that never comes (§2.7.10,
            // as Linux's virtqueue_enable_cb with its virtio_mb).
            self.mem
                .store_u16(self.layout.used_event(self.size), self.last_used.0);
            fence(Ordering::SeqCst);
            used_idx = Wrapping(self.mem.load_u16(self.layout.used_idx()));
            if used_idx == self.last_used {
                return Ok(None);
            }
        }
        let in_flight = self.chains;
        let jump = (used_idx - self.last_used).0;
        if jump > in_flight {
            // Not even the entries are believable; resynchronise so the
            // device's next honest entries are still seen.
            self.last_used = used_idx;
            return Err(QueueError::BogusUsedIdx {
                queue: self.index,
                jump,
                in_flight,
            });
        }
        // The entry must be read after the index that published it.
        fence(Ordering::Acquire);
        let slot = self.last_used.0 & (self.size - 1);
        let elem: UsedElem = self.mem.read_obj(self.layout.used_ring(slot));
        self.last_used += 1;
        if self.event_idx {
            // Ask for an interrupt at the next entry (re-armed per pop, so a
            // drain that stops early still gets woken).
            self.mem
                .store_u16(self.layout.used_event(self.size), self.last_used.0);
        }
        let id = elem.id.get();
        let head = match u16::try_from(id) {
            Ok(h) if h < self.size && self.chain_len[usize::from(h)] != 0 => h,
            _ => {
                return Err(QueueError::BogusUsed {
                    queue: self.index,
                    id,
                })
            }
        };
        self.free_chain(head);
        Ok(Some(Used {
            head,
            len: elem.len.get(),
        }))
    }

    /// Returns a chain's descriptors to the free list, following only the
    /// driver's own copy of the links.
    fn free_chain(&mut self, head: u16) {
        let n = std::mem::take(&mut self.chain_len[usize::from(head)]);
        let mut last = head;
        for _ in 1..n {
            last = self.next[usize::from(last)];
        }
        self.next[usize::from(last)] = self.free_head;
        self.free_head = head;
        self.num_free += n;
        self.chains -= 1;
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::dma::DmaRegion;

    /// Plays the device's side of the rings, reading and writing the same
    /// memory the device would.
    #[derive(Default)]
    struct FakeDevice {
        last_avail: Wrapping<u16>,
        used_idx: Wrapping<u16>,
    }

    impl FakeDevice {
        /// Heads made available and not yet taken, with their chains.
        fn take_avail(&mut self, q: &SplitQueue) -> Vec<(u16, Vec<Descriptor>)> {
            let l = q.layout;
            let idx = Wrapping(q.mem.load_u16(l.avail_idx()));
            let mut out = vec![];
            while self.last_avail != idx {
                let slot = self.last_avail.0 & (q.size - 1);
                let head = q.mem.load_u16(l.avail_ring(slot));
                let mut chain = vec![];
                let mut id = head;
                loop {
                    let d: Descriptor = q.mem.read_obj(16 * usize::from(id));
                    chain.push(d);
                    if d.flags.get() & DESC_F_NEXT == 0 {
                        break;
                    }
                    id = d.next.get();
                }
                out.push((head, chain));
                self.last_avail += 1;
            }
            out
        }
        fn complete(&mut self, q: &SplitQueue, id: u32, len: u32) {
            let l = q.layout;
            let slot = self.used_idx.0 & (q.size - 1);
            let elem = UsedElem {
                id: id.into(),
                len: len.into(),
            };
            q.mem.write_obj(l.used_ring(slot), &elem);
            self.used_idx += 1;
            q.mem.store_u16(l.used_idx(), self.used_idx.0);
        }
        fn set_avail_event(q: &SplitQueue, v: u16) {
            q.mem.store_u16(q.layout.avail_event(q.size), v);
        }
    }

    fn pool() -> DmaPool {
        DmaPool::new(DmaRegion::new_memfd(1 << 20, 0x1000_0000).unwrap())
    }

    fn rw(addr: u64) -> [Buffer; 2] {
        [
            Buffer {
                addr,
                len: 32,
                device_writes: false,
            },
            Buffer {
                addr: addr + 32,
                len: 24,
                device_writes: true,
            },
        ]
    }

    #[test]
    fn sizes_must_be_powers_of_two() {
        let p = pool();
        assert!(matches!(
            SplitQueue::new(&p, 0, 0, false),
            Err(QueueError::BadSize(0))
        ));
        assert!(matches!(
            SplitQueue::new(&p, 0, 12, false),
            Err(QueueError::BadSize(12))
        ));
        assert!(SplitQueue::new(&p, 0, 16, false).is_ok());
    }

    #[test]
    fn chains_reach_the_device_as_written() {
        let p = pool();
        let mut q = SplitQueue::new(&p, 0, 8, false).unwrap();
        let head = q.add(&rw(0x1000_0100)).unwrap();
        let avail = FakeDevice::default().take_avail(&q);
        assert_eq!(avail.len(), 1);
        let (h, chain) = &avail[0];
        assert_eq!(*h, head);
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0].addr.get(), 0x1000_0100);
        assert_eq!(chain[0].flags.get(), DESC_F_NEXT);
        assert_eq!(chain[1].len.get(), 24);
        assert_eq!(chain[1].flags.get(), DESC_F_WRITE);
    }

    #[test]
    fn readable_after_writable_is_rejected() {
        let p = pool();
        let mut q = SplitQueue::new(&p, 0, 8, false).unwrap();
        let mut bufs = rw(0x1000_0000);
        bufs.reverse();
        assert!(matches!(q.add(&bufs), Err(QueueError::BadChain { .. })));
        assert!(matches!(q.add(&[]), Err(QueueError::BadChain { .. })));
        assert_eq!(q.num_free(), 8);
    }

    #[test]
    fn test_regression_empty_buffers_never_reach_the_device() {
        let p = pool();
        let mut q = SplitQueue::new(&p, 0, 8, false).unwrap();
        let mut bufs = rw(0x1000_0000);
        bufs[0].len = 0;
        assert!(matches!(
            q.add(&bufs),
            Err(QueueError::BadChain {
                reason: "an empty buffer",
                ..
            })
        ));
        assert_eq!(q.num_free(), 8);
        assert!(FakeDevice::default().take_avail(&q).is_empty());
    }

    #[test]
    fn free_list_exhaustion_and_recovery() {
        let p = pool();
        let mut q = SplitQueue::new(&p, 0, 8, false).unwrap();
        let heads: Vec<u16> = (0..4)
            .map(|i| q.add(&rw(0x1000_0000 + i * 64)).unwrap())
            .collect();
        assert_eq!(q.num_free(), 0);
        assert!(matches!(
            q.add(&rw(0)),
            Err(QueueError::Full {
                needed: 2,
                free: 0,
                ..
            })
        ));
        let mut dev = FakeDevice::default();
        dev.take_avail(&q);
        // Out of order: the device finishes the third chain first.
        dev.complete(&q, u32::from(heads[2]), 24);
        dev.complete(&q, u32::from(heads[0]), 24);
        let used = |head| Some(Used { head, len: 24 });
        assert_eq!(q.pop_used().unwrap(), used(heads[2]));
        assert_eq!(q.pop_used().unwrap(), used(heads[0]));
        assert_eq!(q.pop_used().unwrap(), None);
        assert_eq!(q.num_free(), 4);
        // The freed descriptors are reusable.
        q.add(&rw(0)).unwrap();
        q.add(&rw(0)).unwrap();
        assert_eq!(q.num_free(), 0);
    }

    #[test]
    fn indices_wrap_around_u16() {
        let p = pool();
        let mut q = SplitQueue::new(&p, 0, 4, false).unwrap();
        let mut dev = FakeDevice::default();
        // Run the 16-bit indices through a wrap with a second chain always in
        // flight, so ring slots and indices disagree across the boundary.
        let mut pending = q.add(&rw(0x1000_0000)).unwrap();
        for round in 0..70_000u32 {
            let head = q.add(&rw(0x1000_0000)).unwrap();
            let avail: Vec<u16> = dev.take_avail(&q).into_iter().map(|(h, _)| h).collect();
            assert_eq!(avail.last(), Some(&head), "round {round}");
            dev.complete(&q, u32::from(pending), 0);
            assert_eq!(q.pop_used().unwrap().unwrap().head, pending);
            pending = head;
        }
        assert_eq!(q.num_free(), 2);
        assert_eq!(q.avail_idx.0, (70_001u32 % 65_536) as u16);
    }

    #[test]
    fn bogus_used_entries_are_rejected_without_damage() {
        let p = pool();
        let mut q = SplitQueue::new(&p, 0, 8, false).unwrap();
        let head = q.add(&rw(0x1000_0000)).unwrap();
        let mut dev = FakeDevice::default();
        dev.take_avail(&q);
        // The index jumps past what is in flight.
        dev.complete(&q, 7, 0);
        dev.complete(&q, 1000, 0);
        assert!(matches!(
            q.pop_used(),
            Err(QueueError::BogusUsedIdx { jump: 2, .. })
        ));
        assert_eq!(q.num_free(), 6, "nothing freed by a bogus entry");
        // A single entry naming a descriptor that is not a head in flight.
        dev.complete(&q, 5, 0);
        assert!(matches!(
            q.pop_used(),
            Err(QueueError::BogusUsed { id: 5, .. })
        ));
        assert_eq!(q.num_free(), 6);
        // The honest completion still arrives afterwards.
        dev.complete(&q, u32::from(head), 0);
        assert_eq!(q.pop_used().unwrap().unwrap().head, head);
        assert_eq!(q.num_free(), 8);
    }

    #[test]
    fn notification_suppression_by_flag() {
        let p = pool();
        let mut q = SplitQueue::new(&p, 0, 8, false).unwrap();
        assert!(!q.needs_notify(), "nothing added, nothing to notify");
        q.add(&rw(0)).unwrap();
        q.add(&rw(0)).unwrap();
        assert!(q.needs_notify(), "one notification for the batch");
        assert!(!q.needs_notify());
        q.mem.store_u16(q.layout.used_flags(), USED_F_NO_NOTIFY);
        q.add(&rw(0)).unwrap();
        assert!(!q.needs_notify(), "device asked for no notifications");
    }

    #[test]
    fn notification_suppression_by_event_idx() {
        let p = pool();
        let mut q = SplitQueue::new(&p, 0, 16, true).unwrap();
        FakeDevice::set_avail_event(&q, 0);
        q.add(&rw(0)).unwrap(); // avail.idx 0 -> 1 passes entry 0
        assert!(q.needs_notify());
        // The device wants a kick once entry 5 is available.
        FakeDevice::set_avail_event(&q, 5);
        q.add(&rw(0)).unwrap();
        q.add(&rw(0)).unwrap(); // 1 -> 3
        assert!(!q.needs_notify());
        q.add(&rw(0)).unwrap();
        q.add(&rw(0)).unwrap();
        q.add(&rw(0)).unwrap(); // 3 -> 6 passes entry 5
        assert!(q.needs_notify());
    }

    #[test]
    fn event_idx_rearms_used_event_per_pop() {
        let p = pool();
        let mut q = SplitQueue::new(&p, 0, 8, true).unwrap();
        let h = q.add(&rw(0)).unwrap();
        let mut dev = FakeDevice::default();
        dev.take_avail(&q);
        dev.complete(&q, u32::from(h), 0);
        q.pop_used().unwrap().unwrap();
        assert_eq!(q.mem.load_u16(q.layout.used_event(8)), 1);
    }
}
