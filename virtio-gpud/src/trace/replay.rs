//! Replay: the commands of a recorded trace sent again, in order, to a
//! device (a fresh one: the recorded ids are used as they are), each
//! answer compared with the recorded one.
//!
//! Backing entries pointed into the recording session's memory, which the
//! replay does not have: each ATTACH_BACKING gets fresh DMA memory of the
//! same sizes, and [`Replay::backing`] reads what the device left there
//! (e.g. the read-back pixels of a TRANSFER_FROM_HOST). What a client wrote
//! into its memory before a TRANSFER_TO_HOST (an upload) comes as a MEMORY
//! record, written into the fresh backing before the transfer is sent.
//! Records must be whole (recorded with `trace/full`).

use std::collections::HashMap;

use virtio_gpu_proto::{CommandType, CtrlHdr, MemEntry, ResponseType, Wire};
use zerocopy::{FromBytes, IntoBytes};

use super::record::{self, Kind, FLAG_TRUNCATED};
use crate::command::{DeviceError, Payload};
use crate::device::Gpu;
use crate::dma::DmaBuf;
use crate::fence::Timeline;
use crate::transport::Transport;

/// Why a trace could not be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The trace is not readable.
    #[error(transparent)]
    Format(#[from] record::FormatError),
    /// A command's bytes were cut when recorded.
    #[error("command {seq} was recorded truncated: record with trace/full")]
    Truncated {
        /// Its sequence number.
        seq: u64,
    },
    /// The device failed.
    #[error(transparent)]
    Device(#[from] crate::Error),
    /// No DMA memory for a backing.
    #[error("no memory for a backing of {0} bytes")]
    Memory(usize),
    /// A command is malformed.
    #[error("command {seq} is malformed")]
    Malformed {
        /// Its sequence number.
        seq: u64,
    },
}

/// A command whose answer differs from the recorded one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The command's sequence number in the trace.
    pub seq: u64,
    /// The command.
    pub command: CommandType,
    /// What the device answered when recorded.
    pub recorded: ResponseType,
    /// What it answered now.
    pub replayed: ResponseType,
}

/// The result of a replay.
#[derive(Debug, Default)]
pub struct Replay {
    /// Commands sent.
    pub commands: usize,
    /// Answers that differ from the recorded ones.
    pub mismatches: Vec<Mismatch>,
    /// Each resource's backing memory, by resource id.
    backings: HashMap<u32, Vec<DmaBuf>>,
}

impl Replay {
    /// The bytes of resource `res`'s backing as the device left them.
    pub fn backing(&self, res: u32) -> Option<Vec<u8>> {
        let bufs = self.backings.get(&res)?;
        let mut out = Vec::new();
        for b in bufs {
            let start = out.len();
            out.resize(start + b.len(), 0);
            b.read_bytes(0, &mut out[start..]);
        }
        Some(out)
    }
}

/// Sends the commands of trace `stream` (a whole recorded stream, header
/// first) to `gpu`, one at a time, each waited for.
pub fn replay<T: Transport>(gpu: &mut Gpu<T>, stream: &[u8]) -> Result<Replay, ReplayError> {
    let body = record::stream_body(stream)?;
    let mut at = 0;
    // First the recorded answers, by command.
    let mut answers = HashMap::new();
    while let Some(r) = record::next_record(body, &mut at)? {
        if r.kind() == Kind::RESPONSE && r.header.seq != 0 {
            answers.insert(r.header.seq, ResponseType(r.header.ty));
        }
    }
    let mut out = Replay::default();
    let mut at = 0;
    while let Some(r) = record::next_record(body, &mut at)? {
        if r.kind() == Kind::MEMORY {
            out.restore(r.header.resource, r.bytes);
            continue;
        }
        if r.kind() != Kind::COMMAND {
            continue;
        }
        let seq = r.header.seq;
        if r.header.flags & FLAG_TRUNCATED != 0 {
            return Err(ReplayError::Truncated { seq });
        }
        let mut request =
            Wire::parse(r.bytes.to_vec()).map_err(|_| ReplayError::Malformed { seq })?;
        let hdr = request.header();
        // The fence is the device's to stamp again.
        let fenced = r.header.hdr_flags & CtrlHdr::FLAG_FENCE != 0;
        let mut clean = hdr;
        clean.flags = (hdr.flags.get() & !CtrlHdr::FLAG_FENCE).into();
        clean.fence_id = 0.into();
        request.bytes_mut()[..size_of::<CtrlHdr>()].copy_from_slice(clean.as_bytes());
        if request.ty() == CommandType::RESOURCE_ATTACH_BACKING {
            out.rebase_backing(gpu, seq, request.bytes_mut())?;
        }
        let fence = fenced.then_some(Timeline::Global);
        let response_len = gpu.response_len(&request);
        let pending = gpu.submit_bytes(request.as_ref(), Payload::NONE, response_len, fence)?;
        gpu.flush()?;
        let replayed = match gpu.wait(pending)?.result {
            Ok(answer) => CtrlHdr::read_from_prefix(&answer)
                .map_or(ResponseType(0), |(h, _)| h.response_type()),
            Err(DeviceError::Response { response, .. }) => response,
            Err(DeviceError::ShortResponse { .. }) => ResponseType(0),
        };
        out.commands += 1;
        if let Some(&recorded) = answers.get(&seq) {
            if recorded != replayed {
                out.mismatches.push(Mismatch {
                    seq,
                    command: request.ty(),
                    recorded,
                    replayed,
                });
            }
        }
    }
    Ok(out)
}

impl Replay {
    /// Writes recorded backing contents into resource `res`'s fresh
    /// backing, in the same order.
    fn restore(&mut self, res: u32, mut bytes: &[u8]) {
        for b in self.backings.get(&res).into_iter().flatten() {
            let n = b.len().min(bytes.len());
            b.write_bytes(0, &bytes[..n]);
            bytes = &bytes[n..];
        }
    }

    /// Points an ATTACH_BACKING's entries at fresh memory of the same sizes.
    fn rebase_backing<T: Transport>(
        &mut self,
        gpu: &mut Gpu<T>,
        seq: u64,
        bytes: &mut [u8],
    ) -> Result<(), ReplayError> {
        const FIXED: usize = 32;
        let malformed = ReplayError::Malformed { seq };
        let res = bytes
            .get(24..28)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .ok_or(malformed)?;
        let mut bufs = Vec::new();
        for entry in bytes
            .get_mut(FIXED..)
            .unwrap_or_default()
            .chunks_exact_mut(16)
        {
            let (mut e, _) =
                MemEntry::read_from_prefix(entry).map_err(|_| ReplayError::Malformed { seq })?;
            let len = e.length.get() as usize;
            let buf = gpu
                .pool()
                .alloc(len.max(1), 4096)
                .map_err(|_| ReplayError::Memory(len))?;
            e.addr = buf.device_addr().into();
            entry.copy_from_slice(e.as_bytes());
            bufs.push(buf);
        }
        self.backings.insert(res, bufs);
        Ok(())
    }
}
