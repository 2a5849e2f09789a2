//! Commands on a virtqueue: framing a request and its response buffer in
//! DMA memory, stamping fences, and turning used-ring entries back into
//! results the caller can match by [`RequestId`].
//!
//! One chain per command: a device-readable buffer holding the request and
//! its trailing payload, then a device-writable buffer for the response,
//! both carved from one DMA allocation.

use log::trace;
use virtio_gpu_proto::{CommandType, CtrlHdr, FenceId, ResponseType};
use zerocopy::FromBytes;

use crate::dma::{DmaBuf, DmaError, DmaPool};
use crate::fence::{Fences, Timeline};
use crate::queue::{Buffer, QueueError, SplitQueue};
use crate::ratelimit::RateLimit;
use crate::warn_limited;

/// The bytes that follow a command's fixed part (backing entries, a virgl
/// stream).
#[derive(Clone, Copy, Debug)]
pub enum Payload<'a> {
    /// Copied into the command's own DMA buffer.
    Inline(&'a [u8]),
    /// Already in DMA memory: the device reads it where it is, through a
    /// descriptor of its own (no copy). The caller keeps the memory
    /// unchanged until the command completes.
    Device {
        /// Device address of the first byte.
        addr: u64,
        /// Length in bytes.
        len: u32,
    },
}

impl Payload<'_> {
    /// No payload.
    pub const NONE: Payload<'static> = Payload::Inline(&[]);

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Payload::Inline(bytes) => bytes.len(),
            Payload::Device { len, .. } => *len as usize,
        }
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Identifies a submitted command until its completion is collected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

/// Errors submitting a command.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The ring has no room; retry after completions are drained.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// No DMA memory for the request or its response.
    #[error(transparent)]
    Dma(#[from] DmaError),
    /// The request is shorter than a header, or too large for one buffer.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// The device's fence ids are used up until the fences in flight
    /// complete (see [`crate::fence`]); retry after completions.
    #[error("fence ids wrap: waiting for the fences in flight")]
    FenceWrap,
}

/// Why the device did not succeed with a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The device answered with a `RESP_ERR_*` code.
    #[error("{command} failed: device answered {response}")]
    Response {
        /// The command that failed.
        command: CommandType,
        /// The error the device reported.
        response: ResponseType,
    },
    /// The device wrote fewer bytes than a response header.
    #[error("{command}: device wrote a {len}-byte response")]
    ShortResponse {
        /// The command.
        command: CommandType,
        /// Bytes the device claimed to write.
        len: u32,
    },
}

/// A command the device has finished.
#[derive(Debug)]
pub struct Completion {
    /// The id [`CommandQueue::submit`] returned.
    pub id: RequestId,
    /// The command's type.
    pub command: CommandType,
    /// The fence the command carried, if any; it is signalled now.
    pub fence: Option<(Timeline, FenceId)>,
    /// The response bytes (header first), or the device's error.
    pub result: Result<Vec<u8>, DeviceError>,
}

/// A command in flight, indexed by its chain's head descriptor.
#[derive(Debug)]
struct InFlight {
    id: RequestId,
    command: CommandType,
    /// Its fence: timeline, point, and the id the device knows it by.
    fence: Option<(Timeline, FenceId, FenceId)>,
    /// Request and payload, then the response at `resp_off`.
    buf: DmaBuf,
    resp_off: usize,
}

/// Counters for a queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Commands placed in the ring.
    pub submitted: u64,
    /// Commands completed (successfully or not).
    pub completed: u64,
    /// Commands the device answered with an error.
    pub device_errors: u64,
    /// Notifications sent to the device.
    pub notifies: u64,
    /// Used-ring entries rejected as bogus.
    pub bogus_used: u64,
    /// Warnings about the device not logged (over the rate limit).
    pub suppressed_logs: u64,
}

/// A virtqueue that carries virtio-gpu commands.
#[derive(Debug)]
pub struct CommandQueue {
    vq: SplitQueue,
    pool: DmaPool,
    in_flight: Vec<Option<InFlight>>,
    next_request: u64,
    stats: QueueStats,
    /// The device decides how often it errs: its errors are logged at a
    /// limited rate (and all counted).
    log: RateLimit,
}

/// A command uses up to three descriptors: request (with an inline
/// payload), a payload in place, the response.
const MAX_DESCS_PER_COMMAND: u16 = 3;

impl CommandQueue {
    /// Wraps `vq`, allocating command buffers from `pool`.
    pub fn new(vq: SplitQueue, pool: DmaPool) -> Self {
        let size = usize::from(vq.size());
        CommandQueue {
            vq,
            pool,
            in_flight: (0..size).map(|_| None).collect(),
            next_request: 1,
            stats: QueueStats::default(),
            log: RateLimit::default(),
        }
    }

    /// The underlying virtqueue (for its addresses at set-up).
    pub fn virtqueue(&self) -> &SplitQueue {
        &self.vq
    }

    /// Whether `commands` more commands (of the largest chain) fit in the
    /// ring now.
    pub fn has_room(&self, commands: usize) -> bool {
        usize::from(self.vq.num_free()) >= usize::from(MAX_DESCS_PER_COMMAND) * commands
    }

    /// Commands submitted and not yet completed.
    pub fn in_flight(&self) -> usize {
        usize::from(self.vq.in_flight())
    }

    /// The fence points of the commands in flight.
    pub fn fences_in_flight(&self) -> impl Iterator<Item = FenceId> + '_ {
        self.in_flight
            .iter()
            .flatten()
            .filter_map(|c| c.fence.map(|(_, point, _)| point))
    }

    /// Counters since creation.
    pub fn stats(&self) -> QueueStats {
        QueueStats {
            suppressed_logs: self.log.suppressed(),
            ..self.stats
        }
    }

    /// Places a command in the ring without notifying the device.
    ///
    /// `request` starts with a [`CtrlHdr`]; `payload` follows it in the same
    /// device-readable buffer; `response_len` bytes are reserved for the
    /// answer, none for commands the device does not answer (the cursor
    /// queue's). With `fence`, the header is stamped with the next fence id
    /// on that timeline, taken only once the ring has room so that ids
    /// enter the ring in increasing order.
    pub fn submit(
        &mut self,
        request: &[u8],
        payload: Payload<'_>,
        response_len: usize,
        fence: Option<(Timeline, &mut Fences)>,
    ) -> Result<(RequestId, Option<FenceId>), SubmitError> {
        let mut hdr = CtrlHdr::read_from_prefix(request)
            .map_err(|_| SubmitError::Malformed("shorter than a header"))?
            .0;
        let inline = match payload {
            Payload::Inline(bytes) => bytes,
            Payload::Device { len: 0, .. } => {
                return Err(SubmitError::Malformed("an empty payload in place"));
            }
            Payload::Device { .. } => &[],
        };
        let readable = request.len() + inline.len();
        let readable_u32 = u32::try_from(readable)
            .map_err(|_| SubmitError::Malformed("request larger than 4 GiB"))?;
        if !self.has_room(1) {
            return Err(QueueError::Full {
                queue: self.vq.index(),
                needed: MAX_DESCS_PER_COMMAND,
                free: self.vq.num_free(),
            }
            .into());
        }
        if fence
            .as_ref()
            .is_some_and(|(_, fences)| !fences.can_stamp())
        {
            return Err(SubmitError::FenceWrap);
        }
        let resp_off = readable.next_multiple_of(8);
        let response_len_u32 = u32::try_from(response_len)
            .map_err(|_| SubmitError::Malformed("response larger than 4 GiB"))?;
        let buf = self.pool.alloc(resp_off + response_len, 64)?;

        let fence = fence.map(|(timeline, fences)| {
            let (point, device_id) = fences.next_id(timeline).expect("can_stamp checked");
            hdr = hdr.fenced(device_id);
            if let Timeline::Ring { ctx, ring } = timeline {
                hdr = hdr.with_ctx(ctx).with_ring(ring);
            }
            (timeline, point, device_id)
        });
        buf.write_bytes(0, request);
        buf.write_obj(0, &hdr);
        buf.write_bytes(request.len(), inline);

        let mut chain = [Buffer {
            addr: buf.device_addr(),
            len: readable_u32,
            device_writes: false,
        }; MAX_DESCS_PER_COMMAND as usize];
        let mut n = 1;
        if let Payload::Device { addr, len } = payload {
            chain[n] = Buffer {
                addr,
                len,
                device_writes: false,
            };
            n += 1;
        }
        if response_len > 0 {
            chain[n] = Buffer {
                addr: buf.device_addr() + resp_off as u64,
                len: response_len_u32,
                device_writes: true,
            };
            n += 1;
        }
        let chain = &chain[..n];
        // Room was checked above and the chain is well formed, so this
        // cannot fail after a fence id was taken.
        let head = self.vq.add(chain)?;
        let id = RequestId(self.next_request);
        self.next_request += 1;
        let command = hdr.command_type();
        trace!(
            "queue {}: {command} as {id:?} head {head} fence {:?}",
            self.vq.index(),
            fence
        );
        self.in_flight[usize::from(head)] = Some(InFlight {
            id,
            command,
            fence,
            buf,
            resp_off,
        });
        self.stats.submitted += 1;
        Ok((id, fence.map(|(_, point, _)| point)))
    }

    /// Whether the device must be notified of what was submitted since the
    /// last call (one notification per batch).
    pub fn needs_notify(&mut self) -> bool {
        let notify = self.vq.needs_notify();
        if notify {
            self.stats.notifies += 1;
        }
        notify
    }

    /// Drains every used entry, in the order the device finished them, and
    /// records fenced completions in `fences`.
    pub fn drain(&mut self, fences: &mut Fences, out: &mut Vec<Completion>) {
        loop {
            let used = match self.vq.pop_used() {
                Ok(Some(used)) => used,
                Ok(None) => break,
                Err(e) => {
                    self.stats.bogus_used += 1;
                    warn_limited!(self.log, "{e}");
                    continue;
                }
            };
            let Some(cmd) = self.in_flight[usize::from(used.head)].take() else {
                // The queue already checked the head is in flight.
                warn_limited!(
                    self.log,
                    "queue {}: no command for head {}",
                    self.vq.index(),
                    used.head
                );
                continue;
            };
            let completion = self.complete(cmd, used.len, fences);
            out.push(completion);
        }
    }

    fn complete(&mut self, cmd: InFlight, used_len: u32, fences: &mut Fences) -> Completion {
        self.stats.completed += 1;
        // Never believe the device's length beyond the buffer we gave it.
        let capacity = cmd.buf.len() - cmd.resp_off;
        let len = (used_len as usize).min(capacity);
        let result = if capacity == 0 {
            Ok(Vec::new())
        } else if len < std::mem::size_of::<CtrlHdr>() {
            Err(DeviceError::ShortResponse {
                command: cmd.command,
                len: used_len,
            })
        } else {
            let mut bytes = vec![0; len];
            cmd.buf.read_bytes(cmd.resp_off, &mut bytes);
            let hdr = CtrlHdr::read_from_prefix(&bytes)
                .expect("length checked above")
                .0;
            let response = hdr.response_type();
            if response.is_error() {
                Err(DeviceError::Response {
                    command: cmd.command,
                    response,
                })
            } else {
                if let Some((_, _, fence)) = cmd.fence {
                    if hdr.fence_id() != Some(fence) {
                        warn_limited!(
                            self.log,
                            "{}: fenced response carries fence {:?}, expected {fence:?}",
                            cmd.command,
                            hdr.fence_id()
                        );
                    }
                }
                Ok(bytes)
            }
        };
        if let Err(e) = &result {
            self.stats.device_errors += 1;
            warn_limited!(self.log, "{e}");
        }
        // The device answers a fenced command only once the work is done,
        // error or not, so its fence is signalled either way.
        if let Some((timeline, point, _)) = cmd.fence {
            fences.signal(timeline, point);
        }
        Completion {
            id: cmd.id,
            command: cmd.command,
            fence: cmd.fence.map(|(timeline, point, _)| (timeline, point)),
            result,
        }
    }
}
