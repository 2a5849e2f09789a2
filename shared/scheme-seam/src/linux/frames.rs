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

/// What one [`FrameReader::fill_frame`] took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filled {
    /// Bytes received (0: the peer closed the stream).
    pub bytes: usize,
    /// The socket held nothing past them: a level-triggered caller can
    /// wait for readiness instead of finding that out with one more call.
    pub drained: bool,
}

/// What [`FrameReader::fill_frame`] is about to take from the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// A whole frame, all of it waiting, starting with these bytes
    /// (length and tag).
    Whole([u8; 8]),
    /// Part of a frame (one not all sent yet, or too big for the socket to
    /// hold at once), or bytes of a refused one being discarded.
    Piece,
}

/// Bytes received but not yet taken as frames.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    start: u64,
    /// Descriptors by the stream offset of the last byte of the read that
    /// brought them. Linux hands a message's descriptors to the first read
    /// that takes any of its bytes, and that read ends inside the message
    /// (`unix_stream_read_generic` stops after a segment with descriptors,
    /// having glued any segments before it onto the same read). Every
    /// sendmsg on the bus carries bytes of one frame only, so that last
    /// byte names the frame the descriptors were sent with.
    fds: VecDeque<(u64, Vec<OwnedFd>)>,
    /// Bytes of a refused frame still to discard: its length field says
    /// where the next frame starts, so one bad frame costs only itself.
    skip: u64,
    /// The frame being discarded: its first bytes and its whole length,
    /// for [`FrameReader::partial`].
    skip_head: [u8; 8],
    skip_total: u64,
}

impl FrameReader {
    /// Receives once from `sock`; returns the bytes received (0 at end of
    /// stream).
    pub fn fill(&mut self, sock: RawFd) -> io::Result<usize> {
        self.fill_max(sock, CHUNK)
    }

    /// Receives once from `sock`, never past the end of the frame being
    /// read, so that what the reader holds is always the start of one
    /// frame ([`FrameReader::partial`]): a server that dies leaves the
    /// rest of the stream where its next instance can take it up. Frames
    /// already complete must be taken with [`FrameReader::next_frame`]
    /// before this is called again.
    ///
    /// The kernel takes bytes from the socket before the caller can write
    /// down where the stream stands, so `announce` is told what the
    /// receive is about to take, before it is made (and only when there is
    /// something to take): a whole frame, whose header lets a next
    /// instance tell whether it is still in the socket, or a piece, after
    /// which the position is unknown until the caller records it.
    pub fn fill_frame(
        &mut self,
        sock: RawFd,
        announce: &mut dyn FnMut(Take),
    ) -> io::Result<Filled> {
        let mut head = [0u8; 8];
        let peeked = scm::peek(sock, &mut head)?;
        if peeked == 0 {
            return Ok(Filled::default());
        }
        if self.skip == 0 && self.buf.is_empty() && peeked == head.len() {
            if let Ok(len) = frame_len(head[..4].try_into().expect("4 bytes")) {
                let queued = scm::queued(sock)?;
                if queued >= 4 + len {
                    announce(Take::Whole(head));
                    return Ok(Filled {
                        bytes: self.fill_max(sock, 4 + len)?,
                        drained: queued == 4 + len,
                    });
                }
            }
        }
        let want = if self.skip > 0 {
            usize::try_from(self.skip).unwrap_or(CHUNK)
        } else {
            match self
                .buf
                .get(..4)
                .map(|h| frame_len(h.try_into().expect("4 bytes")))
            {
                // The whole header first: the tag is needed for an answer.
                None => 8 - self.buf.len(),
                Some(Ok(len)) => (4 + len).saturating_sub(self.buf.len()),
                Some(Err(_)) => 8usize.saturating_sub(self.buf.len()),
            }
        };
        announce(Take::Piece);
        Ok(Filled {
            bytes: self.fill_max(sock, want.clamp(1, CHUNK))?,
            drained: false,
        })
    }

    fn fill_max(&mut self, sock: RawFd, max: usize) -> io::Result<usize> {
        let old = self.buf.len();
        let mut fds = Vec::new();
        let result = scm::recv(sock, &mut self.buf, max, &mut fds);
        if let Ok(n @ 1..) = result {
            if !fds.is_empty() {
                self.fds.push_back((self.start + (old + n - 1) as u64, fds));
            }
        }
        result
    }

    /// Takes the next complete frame, if one is buffered. A frame whose
    /// length is out of bounds is reported once (with its tag, when it has
    /// one) and then discarded as its bytes arrive, with any descriptors
    /// sent with it: the frames after it are read as usual.
    pub fn next_frame(&mut self) -> Option<Result<Frame, (Option<u32>, FrameError)>> {
        if self.skip > 0 {
            let n = usize::try_from(self.skip).map_or(self.buf.len(), |s| s.min(self.buf.len()));
            self.consume(n);
            self.skip -= n as u64;
            if self.skip > 0 {
                return None;
            }
        }
        let header: [u8; 4] = self.buf.get(..4)?.try_into().expect("4 bytes");
        let len = match frame_len(header) {
            Ok(len) => len,
            Err(e) => {
                let announced = u64::from(u32::from_le_bytes(header));
                let tag = if announced >= 4 {
                    // Wait for the tag: the refusal is answered with it.
                    let tag = self.buf.get(4..8)?;
                    Some(u32::from_le_bytes(tag.try_into().expect("4 bytes")))
                } else {
                    None
                };
                self.skip = 4 + announced;
                self.skip_total = self.skip;
                self.skip_head = [0; 8];
                let n = self.buf.len().min(8);
                self.skip_head[..n].copy_from_slice(&self.buf[..n]);
                return Some(Err((tag, e)));
            }
        };
        if self.buf.len() < 4 + len {
            return None;
        }
        let bytes = self.buf[4..4 + len].to_vec();
        let fds = self.consume(4 + len);
        Some(Ok(Frame { bytes, fds }))
    }

    /// Where the stream stands for a reader filled with
    /// [`FrameReader::fill_frame`] whose complete frames were taken: the
    /// bytes of the current frame read so far, and its first bytes (up to
    /// 8: length and tag).
    pub fn partial(&self) -> (u64, [u8; 8]) {
        if self.skip > 0 {
            return (self.skip_total - self.skip, self.skip_head);
        }
        let mut head = [0u8; 8];
        let n = self.buf.len().min(8);
        head[..n].copy_from_slice(&self.buf[..n]);
        (self.buf.len() as u64, head)
    }

    /// A reader that goes on where another stopped, as its
    /// [`FrameReader::partial`] said: a frame of which only part of the
    /// header was read is completed as usual; one read past its header is
    /// discarded (its descriptors and first bytes died with the other
    /// reader), and its tag returned, to be answered.
    pub fn resume(taken: u64, head: &[u8]) -> (FrameReader, Option<u32>) {
        let mut reader = FrameReader::default();
        if taken < 8 {
            let n = (taken as usize).min(head.len());
            reader.buf.extend_from_slice(&head[..n]);
            return (reader, None);
        }
        let Some(header) = head.get(..8) else {
            return (reader, None);
        };
        let announced = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let total = 4 + u64::from(announced);
        reader.skip = total.saturating_sub(taken);
        reader.skip_total = total;
        reader.skip_head.copy_from_slice(header);
        let tag = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        let lost = frame_len(announced.to_le_bytes()).is_ok().then_some(tag);
        (reader, lost)
    }

    /// Drops `n` buffered bytes; returns the descriptors that came with
    /// them.
    fn consume(&mut self, n: usize) -> Vec<OwnedFd> {
        self.buf.drain(..n);
        self.start += n as u64;
        let mut fds = Vec::new();
        while self.fds.front().is_some_and(|(at, _)| *at < self.start) {
            fds.extend(self.fds.pop_front().expect("checked").1);
        }
        fds
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
    fn test_regression_descriptors_stay_with_their_frame_when_reads_glue_frames() {
        // A frame without descriptors still unread when one with a
        // descriptor arrives: Linux returns both in one read, with the
        // descriptor. It belongs to the second frame.
        let (a, b) = UnixStream::pair().unwrap();
        let held = encode(1, &Request::Fstat);
        let with_fd = encode(2, &Request::SendFds { arg: 0 });
        let extra = UnixStream::pair().unwrap().0;
        scm::send(a.as_raw_fd(), &held, &[]).unwrap();
        scm::send(a.as_raw_fd(), &with_fd, &[extra.as_raw_fd()]).unwrap();
        drop(a);
        let frames = read_all(&b);
        assert_eq!(frames.len(), 2);
        let (first, second) = (frames[0].as_ref().unwrap(), frames[1].as_ref().unwrap());
        assert_eq!(decode::<Request>(&first.bytes), (1, Ok(Request::Fstat)));
        assert!(
            first.fds.is_empty(),
            "the held frame took the next one's fd"
        );
        assert_eq!(second.fds.len(), 1);
    }

    #[test]
    fn a_reader_filled_frame_by_frame_can_be_taken_over_mid_frame() {
        let (a, b) = UnixStream::pair().unwrap();
        let first = encode(1, &Request::Fstat);
        let second = encode(
            2,
            &Request::Write {
                data: vec![5; 300],
                offset: 0,
            },
        );
        let third = encode(3, &Request::Fstat);
        let mut stream = [first.clone(), second.clone(), third.clone()].concat();
        // Everything is in the socket, but each fill stops at a frame's
        // end, and says beforehand that it takes a whole frame.
        scm::send(a.as_raw_fd(), &stream, &[]).unwrap();
        let mut r = FrameReader::default();
        let mut takes = Vec::new();
        let mut note = |t| takes.push(t);
        let filled = r.fill_frame(b.as_raw_fd(), &mut note).unwrap();
        assert_eq!(filled.bytes, first.len());
        assert!(!filled.drained, "two more frames are queued");
        assert_eq!(r.partial().0, first.len() as u64);
        assert_eq!(
            decode::<Request>(&r.next_frame().unwrap().unwrap().bytes).0,
            1
        );
        assert!(r.next_frame().is_none());
        r.fill_frame(b.as_raw_fd(), &mut note).unwrap();
        assert_eq!(
            takes,
            [
                Take::Whole(first[..8].try_into().unwrap()),
                Take::Whole(second[..8].try_into().unwrap())
            ]
        );
        let (taken, head) = r.partial();
        assert_eq!(taken, second.len() as u64);
        // (It had read the whole of it: take half back to model a death
        // half-way.) A new reader skips the rest of the frame and names
        // its tag; the third frame comes whole.
        drop(r);
        stream.drain(..first.len() + second.len());
        let (mut r, lost) = FrameReader::resume(8 + 100, &head);
        assert_eq!(lost, Some(2));
        let (c, d) = UnixStream::pair().unwrap();
        scm::send(c.as_raw_fd(), &second[108..], &[]).unwrap();
        scm::send(c.as_raw_fd(), &stream, &[]).unwrap();
        drop(c);
        let mut frames = Vec::new();
        while r.fill_frame(d.as_raw_fd(), &mut |_| {}).unwrap().bytes > 0 {
            while let Some(f) = r.next_frame() {
                frames.push(f.unwrap());
            }
        }
        assert_eq!(frames.len(), 1);
        assert_eq!(decode::<Request>(&frames[0].bytes), (3, Ok(Request::Fstat)));
        // A header cut short is completed, not lost; what is not a whole
        // frame is taken as pieces.
        let (mut r, lost) = FrameReader::resume(3, &third[..3]);
        assert_eq!(lost, None);
        let (e, f) = UnixStream::pair().unwrap();
        scm::send(e.as_raw_fd(), &third[3..], &[]).unwrap();
        drop(e);
        let mut takes = Vec::new();
        while r
            .fill_frame(f.as_raw_fd(), &mut |t| takes.push(t))
            .unwrap()
            .bytes
            > 0
        {}
        assert!(takes.iter().all(|t| *t == Take::Piece), "{takes:?}");
        assert_eq!(
            decode::<Request>(&r.next_frame().unwrap().unwrap().bytes).0,
            3
        );
    }

    /// Reads everything sent to `b` until its peer closed.
    fn read_all(b: &UnixStream) -> Vec<Result<Frame, (Option<u32>, FrameError)>> {
        let mut r = FrameReader::default();
        let mut frames = Vec::new();
        while r.fill(b.as_raw_fd()).unwrap() > 0 {
            while let Some(f) = r.next_frame() {
                frames.push(f);
            }
        }
        frames
    }

    #[test]
    fn test_regression_a_frame_of_impossible_length_costs_only_itself() {
        // Too long (MAX_FRAME + 1 bytes really sent, with an fd), too
        // short (2 bytes, no room for a tag), then a good frame.
        let (a, b) = UnixStream::pair().unwrap();
        let writer = std::thread::spawn(move || {
            let long = crate::linux::wire::MAX_FRAME + 1;
            let mut bad = (long as u32).to_le_bytes().to_vec();
            bad.extend_from_slice(&42u32.to_le_bytes());
            bad.resize(4 + long, 0xAB);
            let extra = UnixStream::pair().unwrap().0;
            scm::send(a.as_raw_fd(), &bad[..100], &[extra.as_raw_fd()]).unwrap();
            let mut sent = 100;
            while sent < bad.len() {
                sent += scm::send(a.as_raw_fd(), &bad[sent..], &[]).unwrap();
            }
            let mut short = 2u32.to_le_bytes().to_vec();
            short.extend_from_slice(&[7, 7]);
            scm::send(a.as_raw_fd(), &short, &[]).unwrap();
            scm::send(a.as_raw_fd(), &encode(9, &Request::Fstat), &[]).unwrap();
        });
        let frames = read_all(&b);
        writer.join().unwrap();
        assert_eq!(frames.len(), 3);
        assert!(matches!(frames[0], Err((Some(42), FrameError::Length(_)))));
        assert!(matches!(frames[1], Err((None, FrameError::Length(2)))));
        let good = frames[2].as_ref().unwrap();
        assert!(good.fds.is_empty(), "the refused frame's fd went with it");
        assert_eq!(decode::<Request>(&good.bytes), (9, Ok(Request::Fstat)));
    }
}
