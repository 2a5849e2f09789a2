//! The client side of the bus: a handle is a connection; requests carry a
//! tag, so threads can have requests outstanding on one handle at once (a
//! blocked wait does not hold up a submit).
//!
//! A connection belongs to one process: a handle passed to another process
//! over SCM_RIGHTS must not be used by both, since replies would go to
//! whichever reads first. Duplicate it (`dup`) and pass the duplicate.

use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

use super::frames::{Frame, FrameReader};
use super::scm;
use super::wire::{decode, encode, Reply, Request, MAX_FDS, MAX_REQUEST};
use crate::errno::Errno;
use crate::handler::EventFlags;
use crate::handler::Stat;
use crate::shm::ShmRegion;
use crate::Stale;

use crate::NONBLOCK;

/// Replies read by whichever thread held the reader, for their owners.
#[derive(Default)]
struct Inbox {
    reading: bool,
    replies: HashMap<u32, (Reply, Vec<OwnedFd>)>,
    reader: FrameReader,
    broken: Option<ErrorKind>,
}

/// An open handle of a scheme on the bus.
pub struct SchemeFd {
    stream: UnixStream,
    nonblock: bool,
    next_tag: AtomicU32,
    send_lock: Mutex<()>,
    inbox: Mutex<Inbox>,
    arrived: Condvar,
    events: OnceLock<OwnedFd>,
}

impl std::fmt::Debug for SchemeFd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemeFd")
            .field("fd", &self.stream.as_raw_fd())
            .finish_non_exhaustive()
    }
}

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

fn protocol(what: &str) -> io::Error {
    io::Error::new(
        ErrorKind::InvalidData,
        format!("scheme bus: unexpected {what}"),
    )
}

impl SchemeFd {
    /// Opens `/scheme/<name>/<path>` with `flags`.
    pub fn open(path: &str, flags: usize) -> io::Result<SchemeFd> {
        crate::metrics::count(0);
        let (name, rest) = super::split_scheme_path(path)?;
        let stream = UnixStream::connect(super::scheme_dir().join(name))?;
        let fd = Self::with_flags(stream, flags);
        let request = Request::Open {
            path: rest.to_string(),
            flags: flags as u64,
        };
        match fd.request(&request, &[])? {
            (Reply::Value(_), _) => Ok(fd),
            (Reply::Fd, mut fds) if fds.len() == 1 => Ok(Self::from_fd(fds.remove(0))),
            (Reply::Error(e), _) => Err(errno(e)),
            (other, _) => Err(protocol(&format!("open reply {other:?}"))),
        }
    }

    /// Wraps the connection of a handle received from a scheme (a `dup`, or
    /// another scheme's file handed over).
    pub fn from_fd(fd: OwnedFd) -> SchemeFd {
        Self::with_flags(UnixStream::from(fd), 0)
    }

    fn with_flags(stream: UnixStream, flags: usize) -> SchemeFd {
        SchemeFd {
            stream,
            nonblock: flags & NONBLOCK != 0,
            next_tag: AtomicU32::new(1),
            send_lock: Mutex::new(()),
            inbox: Mutex::new(Inbox::default()),
            arrived: Condvar::new(),
            events: OnceLock::new(),
        }
    }

    /// Takes back the connection of a handle an earlier process (this
    /// program's previous instance) used and kept, opened with `flags`.
    /// Its stream may hold answers to what that process asked last and did
    /// not read: they are read up to the answer of a request sent now, and
    /// returned in the order they were answered (value and data; errors
    /// and other answers as `Err`). Tags go on from a random point, so an
    /// answer that comes later still (a request the server parked) is never
    /// taken for one of this process's, but by a 1-in-2^30 chance.
    pub fn resume(fd: OwnedFd, flags: usize) -> io::Result<(SchemeFd, Vec<Stale>)> {
        let fd = Self::with_flags(UnixStream::from(fd), flags);
        let mut bytes = [0u8; 4];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
        fd.next_tag.store(
            1 << 31 | (u32::from_le_bytes(bytes) >> 2),
            Ordering::Relaxed,
        );
        match fd.request(&Request::Fstat, &[])? {
            (Reply::Stat { .. }, _) | (Reply::Error(_), _) => {}
            (other, _) => return Err(protocol(&format!("fstat reply {other:?}"))),
        }
        let mut stale: Vec<(u32, Reply)> = {
            let mut inbox = fd.inbox.lock().unwrap_or_else(|e| e.into_inner());
            inbox.replies.drain().map(|(t, (r, _))| (t, r)).collect()
        };
        stale.sort_by_key(|(t, _)| *t);
        let stale = stale
            .into_iter()
            .map(|(_, r)| match r {
                Reply::Data { value, data } => Ok((value, data)),
                Reply::Value(value) => Ok((value, Vec::new())),
                Reply::Error(e) => Err(e),
                _ => Err(0),
            })
            .collect();
        Ok((fd, stale))
    }

    /// Gives up the handle's connection, to pass it on.
    pub fn into_fd(self) -> OwnedFd {
        OwnedFd::from(self.stream)
    }

    /// Sends one request and waits for its reply.
    fn request(&self, req: &Request, fds: &[BorrowedFd<'_>]) -> io::Result<(Reply, Vec<OwnedFd>)> {
        if fds.len() > MAX_FDS {
            return Err(errno(Errno::EINVAL.0));
        }
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        let frame = encode(tag, req);
        // Sent, it would be refused; its reply (which echoes a call's
        // payload) must fit a frame too.
        if frame.len() - 4 > MAX_REQUEST {
            return Err(errno(Errno::EMSGSIZE.0));
        }
        {
            let _guard = self.send_lock.lock().unwrap_or_else(|e| e.into_inner());
            let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
            let mut sent = scm::send(self.stream.as_raw_fd(), &frame, &raw)?;
            while sent < frame.len() {
                sent += scm::send(self.stream.as_raw_fd(), &frame[sent..], &[])?;
            }
        }
        self.await_reply(tag)
    }

    /// Sends a request that POSIX never interrupts (dup, mmap, fstat)
    /// until it is not answered EINTR: a restarted server answers that to
    /// a request its dead instance took and did not carry out.
    fn unless_lost(&self, req: &Request) -> io::Result<(Reply, Vec<OwnedFd>)> {
        loop {
            match self.request(req, &[])? {
                (Reply::Error(e), _) if e == Errno::EINTR.0 => continue,
                reply => return Ok(reply),
            }
        }
    }

    fn await_reply(&self, tag: u32) -> io::Result<(Reply, Vec<OwnedFd>)> {
        let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(reply) = inbox.replies.remove(&tag) {
                return Ok(reply);
            }
            if let Some(kind) = inbox.broken {
                return Err(io::Error::new(kind, "scheme connection closed"));
            }
            if inbox.reading {
                inbox = self.arrived.wait(inbox).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            // Become the reader: one frame, then hand it to its owner.
            inbox.reading = true;
            let mut reader = std::mem::take(&mut inbox.reader);
            drop(inbox);
            let frame = self.read_frame(&mut reader);
            inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
            inbox.reader = reader;
            inbox.reading = false;
            match frame {
                Ok(frame) => {
                    let (t, reply) = decode::<Reply>(&frame.bytes);
                    match reply {
                        Ok(reply) => {
                            inbox.replies.insert(t, (reply, frame.fds));
                        }
                        Err(_) => inbox.broken = Some(ErrorKind::InvalidData),
                    }
                }
                Err(e) => inbox.broken = Some(e.kind()),
            }
            self.arrived.notify_all();
        }
    }

    fn read_frame(&self, reader: &mut FrameReader) -> io::Result<Frame> {
        loop {
            match reader.next_frame() {
                Some(Ok(frame)) => return Ok(frame),
                Some(Err((_, e))) => return Err(io::Error::new(ErrorKind::InvalidData, e)),
                None => {}
            }
            match reader.fill(self.stream.as_raw_fd()) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends a request whose reply is a value or an error.
    fn value(&self, req: &Request) -> io::Result<usize> {
        match self.request(req, &[])? {
            (Reply::Value(v), _) => Ok(v as usize),
            (Reply::Error(e), _) => Err(errno(e)),
            (other, _) => Err(protocol(&format!("reply {other:?}"))),
        }
    }

    /// Reads at offset 0 (schemes here are not positioned files).
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        crate::metrics::count(0);
        let req = Request::Read {
            len: buf.len() as u64,
            offset: 0,
            nonblock: self.nonblock,
        };
        match self.request(&req, &[])? {
            (Reply::Data { value, data }, _) if data.len() <= buf.len() => {
                buf[..data.len()].copy_from_slice(&data);
                Ok(value as usize)
            }
            (Reply::Error(e), _) => Err(errno(e)),
            (other, _) => Err(protocol(&format!("read reply {other:?}"))),
        }
    }

    /// Writes at offset 0.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        crate::metrics::count(buf.len());
        self.value(&Request::Write {
            data: buf.to_vec(),
            offset: 0,
        })
    }

    /// A call: `payload` goes to the scheme and comes back as it left it;
    /// `metadata` is at most three words. It waits if the scheme parks it,
    /// unless the handle was opened `O_NONBLOCK`.
    pub fn call(&self, payload: &mut [u8], metadata: &[u64]) -> io::Result<usize> {
        self.call_with(payload, metadata, self.nonblock)
    }

    /// A call that answers `EAGAIN` rather than wait, whatever the handle's
    /// flags.
    pub fn try_call(&self, payload: &mut [u8], metadata: &[u64]) -> io::Result<usize> {
        self.call_with(payload, metadata, true)
    }

    fn call_with(&self, payload: &mut [u8], metadata: &[u64], nonblock: bool) -> io::Result<usize> {
        crate::metrics::count(payload.len());
        // The same words are valid on both platforms (see CALL_NONBLOCK).
        if metadata
            .first()
            .is_some_and(|w| w & crate::CALL_NONBLOCK != 0)
        {
            return Err(errno(Errno::EINVAL.0));
        }
        let req = Request::Call {
            payload: payload.to_vec(),
            metadata: metadata.to_vec(),
            nonblock,
        };
        match self.request(&req, &[])? {
            // A shorter answer is the start of the payload written back,
            // the rest as sent (what a restarted server knows of an answer).
            (Reply::Data { value, data }, _) if data.len() <= payload.len() => {
                payload[..data.len()].copy_from_slice(&data);
                Ok(value as usize)
            }
            (Reply::Error(e), _) => Err(errno(e)),
            (other, _) => Err(protocol(&format!("call reply {other:?}"))),
        }
    }

    /// Duplicates the handle (`buf` says how); returns the new handle's
    /// descriptor, for [`SchemeFd::from_fd`] or to pass on.
    pub fn dup(&self, buf: &[u8]) -> io::Result<OwnedFd> {
        crate::metrics::count(buf.len());
        match self.unless_lost(&Request::Dup { buf: buf.to_vec() })? {
            (Reply::Handle | Reply::Fd, mut fds) if fds.len() == 1 => Ok(fds.remove(0)),
            (Reply::Error(e), _) => Err(errno(e)),
            (other, _) => Err(protocol(&format!("dup reply {other:?}"))),
        }
    }

    /// Maps `len` bytes at `offset` of the handle, shared with the scheme;
    /// writable only if asked for (and if the scheme allows it: EACCES
    /// otherwise).
    pub fn mmap(&self, offset: u64, len: usize, writable: bool) -> io::Result<ShmRegion> {
        crate::metrics::count(0);
        let req = Request::Mmap {
            offset,
            len: len as u64,
            writable,
        };
        match self.unless_lost(&req)? {
            (Reply::Mapped { offset }, mut fds) if fds.len() == 1 => {
                ShmRegion::map(fds.remove(0), offset, len, writable)
            }
            (Reply::Error(e), _) => Err(errno(e)),
            (other, _) => Err(protocol(&format!("mmap reply {other:?}"))),
        }
    }

    /// What the handle is (`fstat`).
    pub fn fstat(&self) -> io::Result<Stat> {
        crate::metrics::count(0);
        match self.unless_lost(&Request::Fstat)? {
            (Reply::Stat { mode, rdev, size }, _) => Ok(Stat { mode, rdev, size }),
            (Reply::Error(e), _) => Err(errno(e)),
            (other, _) => Err(protocol(&format!("fstat reply {other:?}"))),
        }
    }

    /// Sends `fds` to the scheme with an argument word.
    pub fn send_fds(&self, fds: &[BorrowedFd<'_>], arg: u64) -> io::Result<usize> {
        match self.request(&Request::SendFds { arg }, fds)? {
            (Reply::Value(v), _) => Ok(v as usize),
            (Reply::Error(e), _) => Err(errno(e)),
            (other, _) => Err(protocol(&format!("sendfd reply {other:?}"))),
        }
    }

    /// Starts waiting for `flags`; returns the readiness now.
    pub fn fevent(&self, flags: EventFlags) -> io::Result<EventFlags> {
        match self.request(
            &Request::Fevent {
                flags: flags.bits(),
            },
            &[],
        )? {
            (Reply::Events { ready }, fds) => {
                if let Some(fd) = fds.into_iter().next() {
                    let _ = self.events.set(fd);
                }
                Ok(EventFlags::from_bits_truncate(ready))
            }
            (Reply::Error(e), _) => Err(errno(e)),
            (other, _) => Err(protocol(&format!("fevent reply {other:?}"))),
        }
    }

    /// A descriptor that is readable while the handle is ready for reading:
    /// poll it like any file.
    pub fn poll_fd(&self) -> io::Result<BorrowedFd<'_>> {
        if self.events.get().is_none() {
            self.fevent(EventFlags::READ)?;
        }
        self.events
            .get()
            .map(|fd| fd.as_fd())
            .ok_or_else(|| protocol("fevent reply without an eventfd"))
    }
}

impl AsFd for SchemeFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}
