//! Tracing: every command placed in a queue and every answer the device
//! gives, as records ([`record`]) for the readers of `trace` on
//! `scheme:virtio-gpu`, live, like a packet capture.
//!
//! Each reader has a queue of its own with a byte limit: a reader that does
//! not keep up loses records (counted, and reported in its stream by a
//! DROPPED record) and never slows the device path. With no reader the
//! cost is one branch per command and per completion.

pub mod record;
pub mod replay;

use std::collections::{HashMap, VecDeque};

use virtio_gpu_proto::{layout, CommandType, CtrlHdr, FenceId, Queue};
use zerocopy::{FromBytes, IntoBytes};

use crate::command::{Completion, RequestId};
use record::{Kind, RecordHeader, StreamHeader};

/// Identifies a reader (the scheme uses its handle id).
pub type ReaderId = usize;

/// Bytes of command or response a reader gets per record unless it asks
/// for more.
pub const DEFAULT_CAP: usize = 4096;
/// Bytes a reader may have waiting before its records are dropped.
pub const READER_BUFFER: usize = 4 << 20;

#[derive(Debug)]
struct Reader {
    /// Bytes of command or response per record (`usize::MAX`: all).
    cap: usize,
    pending: VecDeque<u8>,
    /// Records dropped since the last DROPPED record.
    dropped: u64,
    /// Records dropped in all.
    dropped_total: u64,
}

/// A command in flight, for its answer's record.
#[derive(Clone, Copy, Debug)]
struct Placed {
    seq: u64,
    time_ns: u64,
    queue: u8,
    origin: u64,
    ctx_id: u32,
    fence_id: u64,
    resource: u32,
}

/// The trace hub.
#[derive(Debug, Default)]
pub struct Tracer {
    readers: HashMap<ReaderId, Reader>,
    placed: HashMap<RequestId, Placed>,
    seq: u64,
    origin: u64,
    /// A device-memory payload's bytes, provided by whoever placed the
    /// command (the tracer cannot read session memory itself).
    device_payload: Option<Vec<u8>>,
    /// The backing contents the next command reads, likewise provided.
    upload: Option<Vec<u8>>,
    /// Readers that got records since [`Tracer::take_woken`].
    woken: Vec<ReaderId>,
    records: u64,
}

/// The resource id a command names or creates (0 if none).
fn resource_of(ty: CommandType, bytes: &[u8]) -> u32 {
    layout(ty).and_then(|l| l.resource_id(bytes)).unwrap_or(0)
}

fn now_ns() -> u64 {
    sync_client::clock::now_ns()
}

impl Tracer {
    /// Whether anyone is reading: the device path checks this and nothing
    /// else when nobody is.
    pub fn is_on(&self) -> bool {
        !self.readers.is_empty()
    }

    /// A new reader, getting up to `cap` bytes of each command and answer.
    /// Its stream starts with the stream header.
    pub fn add_reader(&mut self, id: ReaderId, cap: usize) {
        let mut pending = VecDeque::new();
        pending.extend(StreamHeader::V1.as_bytes());
        self.readers.insert(
            id,
            Reader {
                cap,
                pending,
                dropped: 0,
                dropped_total: 0,
            },
        );
    }

    /// A reader went away.
    pub fn remove_reader(&mut self, id: ReaderId) {
        self.readers.remove(&id);
        if self.readers.is_empty() {
            self.placed.clear();
        }
    }

    /// Moves up to `buf.len()` waiting bytes of reader `id` into `buf`.
    pub fn read(&mut self, id: ReaderId, buf: &mut [u8]) -> usize {
        let Some(r) = self.readers.get_mut(&id) else {
            return 0;
        };
        let n = buf.len().min(r.pending.len());
        for (dst, src) in buf.iter_mut().zip(r.pending.drain(..n)) {
            *dst = src;
        }
        n
    }

    /// Whether reader `id` has bytes waiting.
    pub fn readable(&self, id: ReaderId) -> bool {
        self.readers.get(&id).is_some_and(|r| !r.pending.is_empty())
    }

    /// Readers that got records since the last call (to wake them).
    pub fn take_woken(&mut self) -> Vec<ReaderId> {
        std::mem::take(&mut self.woken)
    }

    /// Records made, and records dropped over all readers.
    pub fn counts(&self) -> (u64, u64) {
        let dropped = self.readers.values().map(|r| r.dropped_total).sum();
        (self.records, dropped)
    }

    /// Who places the next commands (a session; 0 for the daemon). Bytes
    /// provided for a command that was never placed (it failed) are
    /// dropped here, so they cannot go with someone else's.
    pub fn set_origin(&mut self, origin: u64) {
        self.origin = origin;
        self.device_payload = None;
        self.upload = None;
    }

    /// The bytes of the next command's device-memory payload.
    pub fn provide_device_payload(&mut self, bytes: Vec<u8>) {
        self.device_payload = Some(bytes);
    }

    /// Whether a reader takes every byte (then uploads are worth reading).
    pub fn wants_memory(&self) -> bool {
        self.readers.values().any(|r| r.cap == usize::MAX)
    }

    /// What the backing of the next command's resource holds (an upload).
    pub fn provide_upload(&mut self, bytes: Vec<u8>) {
        self.upload = Some(bytes);
    }

    /// A command was placed: `request` (header first) and its `payload`
    /// (None when it is in device memory: the provided bytes are used).
    pub(crate) fn command(
        &mut self,
        queue: Queue,
        id: RequestId,
        request: &[u8],
        payload: Option<&[u8]>,
        fence: Option<FenceId>,
    ) {
        let Ok((hdr, _)) = CtrlHdr::read_from_prefix(request) else {
            return;
        };
        self.seq += 1;
        let device_payload = self.device_payload.take();
        let payload = payload.or(device_payload.as_deref()).unwrap_or_default();
        let ty = hdr.command_type();
        let fence_id = fence.map_or(hdr.fence_id.get(), |f| f.get());
        let mut hdr_flags = hdr.flags.get();
        if fence.is_some() {
            hdr_flags |= virtio_gpu_proto::CtrlHdr::FLAG_FENCE;
        }
        let placed = Placed {
            seq: self.seq,
            time_ns: now_ns(),
            queue: queue.index() as u8,
            origin: self.origin,
            ctx_id: hdr.ctx_id.get(),
            fence_id,
            resource: resource_of(ty, request),
        };
        self.placed.insert(id, placed);
        if let Some(upload) = self.upload.take() {
            let memory = RecordHeader {
                kind: Kind::MEMORY.0,
                queue: placed.queue,
                seq: placed.seq,
                time_ns: placed.time_ns,
                origin: placed.origin,
                resource: placed.resource,
                orig_len: upload.len() as u32,
                ..RecordHeader::default()
            };
            self.emit(memory, &[&upload]);
        }
        let header = RecordHeader {
            kind: Kind::COMMAND.0,
            queue: placed.queue,
            seq: placed.seq,
            time_ns: placed.time_ns,
            fence_id,
            origin: placed.origin,
            ty: ty.0,
            ctx_id: placed.ctx_id,
            hdr_flags,
            resource: placed.resource,
            ring_idx: hdr.ring_idx,
            orig_len: (request.len() + payload.len()) as u32,
            ..RecordHeader::default()
        };
        self.emit(header, &[request, payload]);
    }

    /// The device answered a command.
    pub(crate) fn response(&mut self, c: &Completion) {
        let placed = self.placed.remove(&c.id);
        let bytes = match &c.result {
            Ok(bytes) => bytes.clone(),
            Err(crate::command::DeviceError::Response { response, .. }) => CtrlHdr {
                ty: response.0.into(),
                ..CtrlHdr::default()
            }
            .as_bytes()
            .to_vec(),
            Err(crate::command::DeviceError::ShortResponse { .. }) => Vec::new(),
        };
        let ty = CtrlHdr::read_from_prefix(&bytes).map_or(0, |(h, _)| h.ty.get());
        let now = now_ns();
        let p = placed.unwrap_or(Placed {
            seq: 0,
            time_ns: now,
            queue: 0,
            origin: 0,
            ctx_id: 0,
            fence_id: 0,
            resource: 0,
        });
        let header = RecordHeader {
            kind: Kind::RESPONSE.0,
            queue: p.queue,
            seq: p.seq,
            time_ns: now,
            latency_ns: now.saturating_sub(p.time_ns),
            fence_id: p.fence_id,
            origin: p.origin,
            ty,
            ctx_id: p.ctx_id,
            resource: p.resource,
            orig_len: bytes.len() as u32,
            ..RecordHeader::default()
        };
        self.emit(header, &[&bytes]);
    }

    /// Queues a record (its bytes the concatenation of `parts`) for every
    /// reader, cut at each reader's cap; a reader without room loses it.
    fn emit(&mut self, header: RecordHeader, parts: &[&[u8]]) {
        self.records += 1;
        let total: usize = parts.iter().map(|p| p.len()).sum();
        for (&id, r) in &mut self.readers {
            // Memory is only for readers of every byte.
            if header.kind == Kind::MEMORY.0 && r.cap != usize::MAX {
                continue;
            }
            let keep = total.min(r.cap);
            let mut bytes = Vec::with_capacity(keep);
            for p in parts {
                let room = keep - bytes.len();
                bytes.extend_from_slice(&p[..p.len().min(room)]);
            }
            let mut h = header;
            if keep < total {
                h.flags |= record::FLAG_TRUNCATED;
            }
            let mut out = Vec::new();
            if r.dropped > 0 {
                let notice = RecordHeader {
                    kind: Kind::DROPPED.0,
                    time_ns: header.time_ns,
                    latency_ns: r.dropped,
                    ..RecordHeader::default()
                };
                record::encode(&mut out, notice, &[]);
            }
            record::encode(&mut out, h, &bytes);
            if r.pending.len() + out.len() > READER_BUFFER {
                r.dropped += 1;
                r.dropped_total += 1;
                continue;
            }
            r.dropped = 0;
            r.pending.extend(out);
            if !self.woken.contains(&id) {
                self.woken.push(id);
            }
        }
    }
}
