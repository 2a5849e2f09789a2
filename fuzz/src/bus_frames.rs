//! `bus_frames`: the Linux scheme bus's frame reader
//! (`scheme_seam::linux::frames::FrameReader`) fed an arbitrary byte
//! stream through a real Unix socket pair, cut into chunks at arbitrary
//! points, some chunks carrying a descriptor (SCM_RIGHTS); then
//! `wire::decode::<Request>` and `::<Reply>` on every frame.
//!
//! Input: `[cuts: u8][fds: u16][batch: u16][cuts % 17 × u16 offsets][stream...]`.
//! The offsets (modulo the stream's length) cut the stream into chunks,
//! each sent with one `sendmsg`; chunk `i` carries a memfd (whose size
//! names the chunk) if bit `i % 16` of `fds` is set, and the reader reads
//! what was sent after chunk `i` unless bit `i % 16` of `batch` is set
//! (then the next chunk joins it in the socket, and Linux may glue them
//! into one read).
//!
//! Checked against a model that parses the whole stream at once: the same
//! frames and refusals in the same order, however the stream was cut.
//! A chunk's descriptor goes with a frame the chunk overlaps (the bus's
//! senders never let a sendmsg span frames, so there it is exactly the
//! frame the descriptor was sent with), is dropped only when the chunk
//! overlaps a refused frame or the unfinished tail, and never goes twice;
//! every body that decodes re-encodes to a frame that decodes to the same
//! message.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use scheme_seam::linux::frames::FrameReader;
use scheme_seam::linux::wire::{decode, encode, FrameError, Reply, Request, MAX_FRAME};

use crate::{Input, Writer};

/// Longest stream fed (the socket's buffer is not the subject).
const MAX_STREAM: usize = 1 << 20;

/// What came out of the reader, or the model.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Out {
    /// A frame: its tag and body.
    Frame(Vec<u8>),
    /// A frame refused for its length (with its tag, if it has one).
    Refused { tag: Option<u32>, len: usize },
}

/// The frames of the whole `stream`, as the reader must find them, with
/// the stream range each covers; the range after the last is unfinished.
pub(crate) fn model(stream: &[u8]) -> Vec<(Out, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(header) = stream.get(at..at + 4) {
        let announced = u32::from_le_bytes(header.try_into().expect("4 bytes")) as usize;
        let end = at + 4 + announced;
        if (4..=MAX_FRAME).contains(&announced) {
            let Some(bytes) = stream.get(at + 4..end) else {
                break;
            };
            out.push((Out::Frame(bytes.to_vec()), at..end));
        } else {
            let tag = if announced >= 4 {
                let Some(tag) = stream.get(at + 4..at + 8) else {
                    break;
                };
                Some(u32::from_le_bytes(tag.try_into().expect("4 bytes")))
            } else {
                None
            };
            out.push((
                Out::Refused {
                    tag,
                    len: announced,
                },
                at..end,
            ));
        }
        at = end;
    }
    out
}

/// Checks where the descriptor of the chunk covering `chunk` went
/// (`got`: the index of the frame that carried it) against the frames
/// of the whole stream.
fn check_fd(
    chunk: std::ops::Range<usize>,
    got: Option<usize>,
    frames: &[(Out, std::ops::Range<usize>)],
) {
    let overlaps = |r: &std::ops::Range<usize>| r.start < chunk.end && chunk.start < r.end;
    let finished = frames.last().map_or(0, |(_, r)| r.end);
    match got {
        Some(i) => assert!(
            matches!(frames[i].0, Out::Frame(_)) && overlaps(&frames[i].1),
            "the fd of chunk {chunk:?} went with frame {i} at {:?}",
            frames[i].1
        ),
        None => assert!(
            chunk.end > finished
                || frames
                    .iter()
                    .any(|(o, r)| matches!(o, Out::Refused { .. }) && overlaps(r)),
            "the fd of chunk {chunk:?} was lost, though only accepted frames hold it"
        ),
    }
}

/// A memfd whose size tells which chunk sent it.
fn marker(chunk: usize) -> OwnedFd {
    // SAFETY: memfd_create with a static name; the result is checked.
    let fd = unsafe { libc::memfd_create(c"bus-fuzz".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", io::Error::last_os_error());
    // SAFETY: `fd` was just created and is owned here only.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ftruncate on a descriptor this function owns.
    let r = unsafe { libc::ftruncate(fd.as_raw_fd(), chunk as libc::off_t + 1) };
    assert_eq!(r, 0, "ftruncate: {}", io::Error::last_os_error());
    fd
}

/// Which chunk a received descriptor came from.
fn chunk_of(fd: &OwnedFd) -> usize {
    // SAFETY: a zeroed stat is valid for fstat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on a live descriptor into a local.
    let r = unsafe { libc::fstat(fd.as_raw_fd(), &mut st) };
    assert_eq!(r, 0, "fstat: {}", io::Error::last_os_error());
    st.st_size as usize - 1
}

/// One sendmsg of `data` with `fd` attached; returns bytes sent (0 when
/// the socket is full).
pub(crate) fn send(sock: RawFd, data: &[u8], fd: Option<RawFd>) -> usize {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut _,
        iov_len: data.len(),
    };
    #[repr(C, align(8))]
    struct Cmsg([u8; 64]);
    let mut cmsg = Cmsg([0; 64]);
    // SAFETY: an all-zero msghdr is an empty message.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(fd) = fd {
        let len = std::mem::size_of::<RawFd>() as u32;
        msg.msg_control = cmsg.0.as_mut_ptr().cast();
        // SAFETY: a pure computation on a length.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(len) } as _;
        // SAFETY: the 64-byte buffer holds one header and one fd.
        unsafe {
            let hdr = libc::CMSG_FIRSTHDR(&msg);
            (*hdr).cmsg_level = libc::SOL_SOCKET;
            (*hdr).cmsg_type = libc::SCM_RIGHTS;
            (*hdr).cmsg_len = libc::CMSG_LEN(len) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(hdr).cast::<RawFd>(), fd);
        }
    }
    // SAFETY: `msg` points at live buffers for the call.
    let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
    if n < 0 {
        let e = io::Error::last_os_error();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "sendmsg: {e}");
        return 0;
    }
    n as usize
}

/// The reader's side: everything it has taken so far.
pub(crate) struct Side {
    pub(crate) reader: FrameReader,
    pub(crate) sock: UnixStream,
    pub(crate) received: usize,
    pub(crate) out: Vec<Out>,
    /// For each descriptor received with a frame: its chunk, and the frame.
    pub(crate) fds: Vec<(usize, usize)>,
}

impl Side {
    /// Reads until `sent` bytes have arrived, taking frames as they come.
    pub(crate) fn catch_up(&mut self, sent: usize) {
        while self.received < sent {
            let n = self
                .reader
                .fill(self.sock.as_raw_fd())
                .expect("reading the socket");
            assert!(n > 0, "end of stream with bytes outstanding");
            self.received += n;
            self.take();
        }
    }

    pub(crate) fn take(&mut self) {
        while let Some(frame) = self.reader.next_frame() {
            match frame {
                Ok(frame) => {
                    check_bodies(&frame.bytes);
                    let index = self.out.len();
                    self.fds
                        .extend(frame.fds.iter().map(|fd| (chunk_of(fd), index)));
                    self.out.push(Out::Frame(frame.bytes));
                }
                Err((tag, FrameError::Length(len))) => self.out.push(Out::Refused { tag, len }),
                Err((_, FrameError::Body)) => panic!("the reader judged a body"),
            }
        }
    }
}

/// Decodes a frame's body both ways; whatever decodes must survive a round
/// trip.
fn check_bodies(frame: &[u8]) {
    assert!(frame.len() >= 4 && frame.len() <= MAX_FRAME);
    let (tag, request) = decode::<Request>(frame);
    if let Ok(request) = request {
        let again = encode(tag, &request);
        assert_eq!(
            again.len(),
            u32::from_le_bytes(again[..4].try_into().unwrap()) as usize + 4
        );
        assert_eq!(decode::<Request>(&again[4..]), (tag, Ok(request)));
    }
    let (tag, reply) = decode::<Reply>(frame);
    if let Ok(reply) = reply {
        let again = encode(tag, &reply);
        assert_eq!(decode::<Reply>(&again[4..]), (tag, Ok(reply)));
    }
}

/// The target.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let ncuts = usize::from(input.u8() % 17);
    let fd_mask = input.u16();
    let batch_mask = input.u16();
    let mut cuts: Vec<usize> = (0..ncuts).map(|_| usize::from(input.u16())).collect();
    let stream = input.rest();
    let stream = &stream[..stream.len().min(MAX_STREAM)];
    for c in &mut cuts {
        *c %= stream.len() + 1;
    }
    cuts.extend([0, stream.len()]);
    cuts.sort_unstable();
    cuts.dedup();
    let chunks: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
    let with_fd = |i: usize| fd_mask >> (i % 16) & 1 != 0;

    let (a, b) = UnixStream::pair().expect("socketpair");
    let mut side = Side {
        reader: FrameReader::default(),
        sock: b,
        received: 0,
        out: Vec::new(),
        fds: Vec::new(),
    };
    let mut sent = 0;
    for (i, &(start, end)) in chunks.iter().enumerate() {
        let fd = with_fd(i).then(|| marker(i));
        let mut at = start;
        let mut fd = fd.as_ref().map(AsRawFd::as_raw_fd);
        while at < end {
            let n = send(a.as_raw_fd(), &stream[at..end], fd);
            if n == 0 {
                // The socket is full: let the reader take what is there.
                side.catch_up(sent);
                continue;
            }
            fd = None;
            at += n;
            sent += n;
        }
        if batch_mask >> (i % 16) & 1 == 0 {
            side.catch_up(sent);
        }
    }
    side.catch_up(sent);
    drop(a);
    let expected = model(stream);
    assert_eq!(
        side.out.len(),
        expected.len(),
        "the reader found {} frames, the whole stream has {}",
        side.out.len(),
        expected.len()
    );
    for (i, (got, (want, _))) in side.out.iter().zip(&expected).enumerate() {
        assert!(
            got == want,
            "frame {i}: the reader gave {got:?}, the whole stream has {want:?}"
        );
    }
    for (i, &(start, end)) in chunks.iter().enumerate().filter(|&(i, _)| with_fd(i)) {
        let mut went = side.fds.iter().filter(|&&(chunk, _)| chunk == i);
        let got = went.next().map(|&(_, frame)| frame);
        assert!(
            went.next().is_none(),
            "the fd of chunk {i} was received twice"
        );
        check_fd(start..end, got, &expected);
    }
}

/// A seed: `stream` cut at `cuts`, with descriptors on the chunks in
/// `fd_mask` and reads held back after the chunks in `batch_mask`.
pub fn seed(cuts: &[u16], fd_mask: u16, batch_mask: u16, stream: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(cuts.len() as u8).u16(fd_mask).u16(batch_mask);
    for &c in cuts {
        w.u16(c);
    }
    w.raw(stream).build()
}
