//! Frames on the bus: `[len: u32 LE][tag: u32 LE][postcard body]`, with any
//! file descriptors attached (SCM_RIGHTS) to the frame's first sendmsg.
//! A sendmsg never carries bytes of two frames: that is what lets the
//! reader tell which frame descriptors came with (`frames.rs`).
//!
//! The tag sits outside the body so that even a frame whose body does not
//! decode can be answered; replies carry the tag of their request, so one
//! connection can have many requests outstanding (a parked wait does not
//! hold up the next call).

use serde::{Deserialize, Serialize};

/// Largest frame accepted, body and tag: big enough for a large command
/// stream, small enough that a confused peer cannot make us allocate
/// without bound.
pub const MAX_FRAME: usize = 64 << 20;
/// Largest request a client sends: a reply's envelope is at most this
/// much larger than its request's (a call's reply echoes its payload), so
/// every answer to an accepted request fits a frame.
pub const MAX_REQUEST: usize = MAX_FRAME - 64;
/// Most descriptors one frame may carry.
pub const MAX_FDS: usize = 16;
/// Bytes before the body.
pub const HEADER: usize = 8;

/// What a client asks of a handle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// First frame of a new connection: open `path` in the scheme.
    Open {
        /// Path below the scheme root.
        path: String,
        /// Open flags.
        flags: u64,
    },
    /// Duplicate the handle; the reply carries the new handle's connection.
    Dup {
        /// What kind of duplicate.
        buf: Vec<u8>,
    },
    /// Read up to `len` bytes at `offset`.
    Read {
        /// Bytes wanted.
        len: u64,
        /// Position.
        offset: u64,
        /// Answer EAGAIN instead of waiting.
        nonblock: bool,
    },
    /// Write `data` at `offset`.
    Write {
        /// The bytes.
        data: Vec<u8>,
        /// Position.
        offset: u64,
    },
    /// A call with an in/out payload and up to three metadata words.
    Call {
        /// The payload; the reply returns it as the handler left it.
        payload: Vec<u8>,
        /// Metadata words.
        metadata: Vec<u64>,
        /// Answer EAGAIN instead of waiting.
        nonblock: bool,
    },
    /// Start waiting for readiness; the first reply carries the eventfd.
    Fevent {
        /// `EventFlags` bits.
        flags: u32,
    },
    /// Map `len` bytes at `offset`; the reply carries the memfd.
    Mmap {
        /// Offset in the handle.
        offset: u64,
        /// Length.
        len: u64,
        /// Whether the client wants to write.
        writable: bool,
    },
    /// What the handle is.
    Fstat,
    /// The attached descriptors are for the handle.
    SendFds {
        /// An argument word.
        arg: u64,
    },
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The request failed with this errno.
    Error(i32),
    /// Success with a value.
    Value(u64),
    /// Success with a value and bytes (read data, or a call's payload).
    Data {
        /// The value (bytes read, or the call's return).
        value: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The attached descriptor is a new handle of this scheme.
    Handle,
    /// The attached descriptor is a file from elsewhere.
    Fd,
    /// The attached memfd is the region; map it at `offset` (read-only
    /// unless the request asked to write).
    Mapped {
        /// Offset of the window in the memfd.
        offset: u64,
    },
    /// The handle's `fstat`.
    Stat {
        /// `st_mode`.
        mode: u32,
        /// `st_rdev`.
        rdev: u64,
        /// `st_size`.
        size: u64,
    },
    /// Readiness now; the attached eventfd (first time only) is readable
    /// while the handle is ready for reading.
    Events {
        /// `EventFlags` bits ready now.
        ready: u32,
    },
}

/// A frame that could not be taken apart.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length field is below the header or above [`MAX_FRAME`].
    #[error("frame length {0} out of range")]
    Length(usize),
    /// The body is not a valid message.
    #[error("undecodable frame body")]
    Body,
}

/// Serialises `msg` as a frame tagged `tag`.
///
/// A message too large for the length field gets `u32::MAX` there, which
/// no reader accepts: callers keep within [`MAX_REQUEST`].
pub fn encode<T: Serialize>(tag: u32, msg: &T) -> Vec<u8> {
    let mut frame = vec![0; HEADER];
    frame[4..8].copy_from_slice(&tag.to_le_bytes());
    let mut frame = postcard::to_extend(msg, frame).expect("serialising to a Vec cannot fail");
    let len = u32::try_from(frame.len() - 4).unwrap_or(u32::MAX);
    frame[..4].copy_from_slice(&len.to_le_bytes());
    frame
}

/// The length a frame's first four bytes announce (tag and body), if it is
/// within bounds.
pub fn frame_len(header: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(header) as usize;
    if (4..=MAX_FRAME).contains(&len) {
        Ok(len)
    } else {
        Err(FrameError::Length(len))
    }
}

/// Splits a frame's `tag + body` into the tag and the decoded message.
pub fn decode<'a, T: Deserialize<'a>>(frame: &'a [u8]) -> (u32, Result<T, FrameError>) {
    let tag = u32::from_le_bytes(frame[..4].try_into().expect("frame_len checked"));
    let body = postcard::from_bytes(&frame[4..]).map_err(|_| FrameError::Body);
    (tag, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let req = Request::Call {
            payload: vec![1, 2, 3],
            metadata: vec![0x40, 7],
            nonblock: false,
        };
        let frame = encode(77, &req);
        let len = frame_len(frame[..4].try_into().unwrap()).unwrap();
        assert_eq!(len, frame.len() - 4);
        let (tag, back) = decode::<Request>(&frame[4..]);
        assert_eq!(tag, 77);
        assert_eq!(back.unwrap(), req);
    }

    #[test]
    fn bad_lengths_and_bodies_are_errors_with_the_tag_kept() {
        assert_eq!(frame_len(3u32.to_le_bytes()), Err(FrameError::Length(3)));
        let huge = (MAX_FRAME as u32 + 1).to_le_bytes();
        assert!(frame_len(huge).is_err());
        let mut garbage = 5u32.to_le_bytes().to_vec();
        garbage.extend_from_slice(&[0xFF; 9]);
        let (tag, body) = decode::<Request>(&garbage);
        assert_eq!(tag, 5);
        assert_eq!(body, Err(FrameError::Body));
    }
}
