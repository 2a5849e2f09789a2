//! Reassembles frames from a stream socket, keeping each frame's
//! descriptors with it. Used by both ends of the bus.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{OwnedFd, RawFd};

use super::scm;
use super::wire::{frame_len, FrameError};

/// How much to ask the socket for at a time.
const CHUNK: usize = 64 * 1024;

/// A complete frame: the tag and body bytes, and the descriptors sent with it.
#[derive(Debug)]
pub struct Frame {
    /// Tag (4 bytes) then body.
    pub bytes: Vec<u8>,
    /// Descriptors that came with the frame.
    pub fds: Vec<OwnedFd>,
}

/// Bytes received but not yet taken as frames.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    start: u64,
    /// Descriptors by the stream offset they arrived at: the kernel attaches
    /// them to the first byte of the sendmsg that carried them, and a read
    /// never runs past such a byte, so they belong to the frame starting
    /// there.
    fds: VecDeque<(u64, Vec<OwnedFd>)>,
}

impl FrameReader {
    /// Receives once from `sock`; returns the bytes received (0 at end of
    /// stream).
    pub fn fill(&mut self, sock: RawFd) -> io::Result<usize> {
        let old = self.buf.len();
        let mut fds = Vec::new();
        let result = scm::recv(sock, &mut self.buf, CHUNK, &mut fds);
        if !fds.is_empty() {
            self.fds.push_back((self.start + old as u64, fds));
        }
        result
    }

    /// Takes the next complete frame, if one is buffered. A frame with an
    /// impossible length is an error after which the stream cannot be
    /// resynchronised; its tag is returned when it was received.
    pub fn next_frame(&mut self) -> Option<Result<Frame, (Option<u32>, FrameError)>> {
        let header: [u8; 4] = self.buf.get(..4)?.try_into().expect("4 bytes");
        let len = match frame_len(header) {
            Ok(len) => len,
            Err(e) => {
                let tag = self
                    .buf
                    .get(4..8)
                    .map(|t| u32::from_le_bytes(t.try_into().expect("4 bytes")));
                return Some(Err((tag, e)));
            }
        };
        if self.buf.len() < 4 + len {
            return None;
        }
        let bytes = self.buf[4..4 + len].to_vec();
        self.buf.drain(..4 + len);
        let end = self.start + (4 + len) as u64;
        self.start = end;
        let mut fds = Vec::new();
        while self.fds.front().is_some_and(|(at, _)| *at < end) {
            fds.extend(self.fds.pop_front().expect("checked").1);
        }
        Some(Ok(Frame { bytes, fds }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::wire::{decode, encode, Request};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn frames_split_and_joined_by_the_stream_come_out_whole_with_their_fds() {
        let (a, b) = UnixStream::pair().unwrap();
        let first = encode(1, &Request::SendFds { arg: 9 });
        let second = encode(2, &Request::Fevent { flags: 1 });
        let extra = UnixStream::pair().unwrap().0;
        // The first frame in two pieces, its fd on the first piece; then the
        // second frame with no fds.
        scm::send(a.as_raw_fd(), &first[..3], &[extra.as_raw_fd()]).unwrap();
        scm::send(a.as_raw_fd(), &first[3..], &[]).unwrap();
        scm::send(a.as_raw_fd(), &second, &[]).unwrap();
        drop(a);
        let mut r = FrameReader::default();
        let mut frames = Vec::new();
        while r.fill(b.as_raw_fd()).unwrap() > 0 {
            while let Some(f) = r.next_frame() {
                frames.push(f.unwrap());
            }
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].fds.len(), 1);
        assert!(frames[1].fds.is_empty());
        assert_eq!(decode::<Request>(&frames[1].bytes).0, 2);
    }

    #[test]
    fn an_impossible_length_is_reported_with_its_tag() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut bad = u32::MAX.to_le_bytes().to_vec();
        bad.extend_from_slice(&42u32.to_le_bytes());
        scm::send(a.as_raw_fd(), &bad, &[]).unwrap();
        let mut r = FrameReader::default();
        r.fill(b.as_raw_fd()).unwrap();
        let err = r.next_frame().unwrap().unwrap_err();
        assert_eq!(err.0, Some(42));
    }
}
