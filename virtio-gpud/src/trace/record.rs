//! The trace stream's format, version 1: what a reader of `trace` on
//! `scheme:virtio-gpu` receives, and what a recorded trace file holds.
//!
//! The stream starts with a [`StreamHeader`]; then records, each a
//! [`RecordHeader`] followed by `bytes_len` bytes and padding to a multiple
//! of 8 (`len` covers all of it). Everything is little-endian. A reader of
//! version 1 skips record kinds it does not know by `len`.
//!
//! - [`Kind::COMMAND`]: a command as placed in its queue. `bytes` are what
//!   the device reads: header, fixed part, trailing payload (backing entries
//!   or the virgl stream, also when the stream is in the session's memory).
//! - [`Kind::RESPONSE`]: the device's answer to the command with the same
//!   `seq`; `latency_ns` is the time since that command was placed. An
//!   error answer's `bytes` are the response header.
//! - [`Kind::DROPPED`]: `latency_ns` records were dropped for this reader
//!   because it did not keep up (just before this record).
//! - [`Kind::MEMORY`] (`trace/full` readers only): what the backing of
//!   `resource` held when the command with the same `seq` was placed — the
//!   client's upload, which a TRANSFER_TO_HOST then reads; it comes just
//!   before that command.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The stream header's magic.
pub const MAGIC: [u8; 8] = *b"VGTRACE\0";
/// The format version this module writes and reads.
pub const VERSION: u32 = 1;

/// The first bytes of a trace stream.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct StreamHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`VERSION`].
    pub version: u32,
    /// Bytes of this header (16): records start after it.
    pub header_len: u32,
}

impl StreamHeader {
    /// The header of a version-1 stream.
    pub const V1: StreamHeader = StreamHeader {
        magic: MAGIC,
        version: VERSION,
        header_len: size_of::<StreamHeader>() as u32,
    };
}

/// What a record is.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Kind(pub u8);

impl Kind {
    /// A command placed in a queue.
    pub const COMMAND: Kind = Kind(1);
    /// The device's answer to a command.
    pub const RESPONSE: Kind = Kind(2);
    /// Records this reader lost.
    pub const DROPPED: Kind = Kind(3);
    /// A resource's backing contents before a command.
    pub const MEMORY: Kind = Kind(4);
}

/// [`RecordHeader::flags`]: `bytes` were cut at the reader's cap.
pub const FLAG_TRUNCATED: u16 = 1;

/// Each record's fixed part.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct RecordHeader {
    /// Bytes of the whole record: this header, `bytes`, padding to 8.
    pub len: u32,
    /// A [`Kind`] value.
    pub kind: u8,
    /// 0 control queue, 1 cursor queue.
    pub queue: u8,
    /// `FLAG_*`.
    pub flags: u16,
    /// The command's sequence number (a response carries its command's).
    pub seq: u64,
    /// CLOCK_MONOTONIC time of the event, in ns.
    pub time_ns: u64,
    /// RESPONSE: ns since the command was placed. DROPPED: records lost.
    pub latency_ns: u64,
    /// The fence id in the header (0 if unfenced).
    pub fence_id: u64,
    /// Who placed the command: the session, 0 for virtio-gpud itself.
    pub origin: u64,
    /// COMMAND: the command type; RESPONSE: the response type.
    pub ty: u32,
    /// The header's context id.
    pub ctx_id: u32,
    /// The header's flags (FENCE, INFO_RING_IDX).
    pub hdr_flags: u32,
    /// The first resource id the command names (0 if none).
    pub resource: u32,
    /// Bytes of command or response that follow.
    pub bytes_len: u32,
    /// Bytes the command or response had (more than `bytes_len` if cut).
    pub orig_len: u32,
    /// The header's ring index.
    pub ring_idx: u8,
    /// Zero.
    pub pad: [u8; 7],
}

const _: () = {
    assert!(size_of::<StreamHeader>() == 16);
    assert!(size_of::<RecordHeader>() == 80);
};

/// One record of a stream, borrowed from it.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// The fixed part.
    pub header: RecordHeader,
    /// The command or response bytes (possibly cut, see the header).
    pub bytes: &'a [u8],
}

impl Record<'_> {
    /// The record's kind.
    pub fn kind(&self) -> Kind {
        Kind(self.header.kind)
    }
}

/// Why bytes are not a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// No stream header, or another format.
    #[error("not a virtio-gpu trace (bad magic)")]
    BadMagic,
    /// A version this reader does not know.
    #[error("trace format version {0}, this reader knows {VERSION}")]
    Version(u32),
    /// A record's length is impossible.
    #[error("corrupt record at byte {0}")]
    Corrupt(usize),
}

/// Appends a record to `out`.
pub fn encode(out: &mut Vec<u8>, mut header: RecordHeader, bytes: &[u8]) {
    let len = (size_of::<RecordHeader>() + bytes.len()).next_multiple_of(8);
    header.len = len as u32;
    header.bytes_len = bytes.len() as u32;
    let start = out.len();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(bytes);
    out.resize(start + len, 0);
}

/// Checks a stream's header; returns the bytes after it.
pub fn stream_body(stream: &[u8]) -> Result<&[u8], FormatError> {
    let (h, _) = StreamHeader::read_from_prefix(stream).map_err(|_| FormatError::BadMagic)?;
    if h.magic != MAGIC {
        return Err(FormatError::BadMagic);
    }
    if h.version != VERSION {
        return Err(FormatError::Version(h.version));
    }
    stream
        .get(h.header_len as usize..)
        .ok_or(FormatError::BadMagic)
}

/// The next whole record of `body` at `*at`, advancing `*at`; None when
/// the bytes left hold no whole record (a live stream's next read may
/// complete it).
pub fn next_record<'a>(body: &'a [u8], at: &mut usize) -> Result<Option<Record<'a>>, FormatError> {
    let rest = &body[*at..];
    let Ok((header, _)) = RecordHeader::read_from_prefix(rest) else {
        return Ok(None);
    };
    let len = header.len as usize;
    let fixed = size_of::<RecordHeader>();
    if len < fixed || !len.is_multiple_of(8) || header.bytes_len as usize > len - fixed {
        return Err(FormatError::Corrupt(*at));
    }
    if rest.len() < len {
        return Ok(None);
    }
    let bytes = &rest[fixed..fixed + header.bytes_len as usize];
    *at += len;
    Ok(Some(Record { header, bytes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_partial_ones_wait() {
        let mut stream = StreamHeader::V1.as_bytes().to_vec();
        let h = RecordHeader {
            kind: Kind::COMMAND.0,
            seq: 7,
            ty: 0x207,
            ..RecordHeader::default()
        };
        encode(&mut stream, h, b"abc");
        encode(
            &mut stream,
            RecordHeader {
                kind: Kind::DROPPED.0,
                latency_ns: 3,
                ..h
            },
            &[],
        );
        let body = stream_body(&stream).unwrap();
        let mut at = 0;
        let r = next_record(body, &mut at).unwrap().unwrap();
        assert_eq!(
            (r.kind(), r.header.seq, r.bytes),
            (Kind::COMMAND, 7, &b"abc"[..])
        );
        assert_eq!(r.header.len, 88);
        let r = next_record(body, &mut at).unwrap().unwrap();
        assert_eq!((r.kind(), r.header.latency_ns), (Kind::DROPPED, 3));
        assert!(next_record(body, &mut at).unwrap().is_none());
        // A record cut short is not returned until it is whole.
        let mut at = 0;
        assert!(next_record(&body[..40], &mut at).unwrap().is_none());
        assert_eq!(at, 0);
        assert_eq!(stream_body(b"nonsense........"), Err(FormatError::BadMagic));
        let mut corrupt = body.to_vec();
        corrupt[0] = 3;
        assert_eq!(
            next_record(&corrupt, &mut 0).unwrap_err(),
            FormatError::Corrupt(0)
        );
    }
}
