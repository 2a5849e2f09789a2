//! The file-descriptor store: a supervisor keeps descriptors a daemon hands
//! it, so that they outlive the daemon and its next instance takes them
//! back (systemd's FDSTORE). The bus server keeps its listening socket,
//! every connection and its request journal there, so a restarted daemon
//! serves the same connections: a client's handle survives the daemon.
//!
//! The store is a `SOCK_SEQPACKET` socket the supervisor passes as the fd
//! named by [`FDSTORE_ENV`]. Each message is one record: an opcode byte,
//! then a name (UTF-8, at most [`MAX_NAME`] bytes), with one descriptor
//! attached where the opcode carries one. The daemon sends [`Op::Store`]
//! and [`Op::Remove`], and [`Op::Fetch`] once at start; the store answers
//! a fetch with one [`Op::Entry`] per descriptor it holds, then
//! [`Op::End`]. A later store under the same name replaces the earlier.

use std::collections::BTreeMap;
use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::scm;

/// Environment variable naming the store socket's fd.
pub const FDSTORE_ENV: &str = "SCHEME_FDSTORE";
/// Longest name.
pub const MAX_NAME: usize = 255;

/// Record kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// Keep the attached descriptor under the name.
    Store = 1,
    /// Close what the name holds.
    Remove = 2,
    /// Send every entry.
    Fetch = 3,
    /// One held descriptor, attached, with its name.
    Entry = 4,
    /// No more entries.
    End = 5,
}

impl Op {
    fn from_byte(b: u8) -> Option<Op> {
        Some(match b {
            1 => Op::Store,
            2 => Op::Remove,
            3 => Op::Fetch,
            4 => Op::Entry,
            5 => Op::End,
            _ => return None,
        })
    }

    /// Whether a record of this kind carries a descriptor.
    fn carries_fd(self) -> bool {
        matches!(self, Op::Store | Op::Entry)
    }
}

/// A record as received: its kind, name and descriptor.
#[derive(Debug)]
pub struct Record {
    /// Its kind.
    pub op: Op,
    /// Its name (empty for [`Op::Fetch`] and [`Op::End`]).
    pub name: String,
    /// The descriptor, for the kinds that carry one.
    pub fd: Option<OwnedFd>,
}

/// Sends one record on `sock`.
pub fn send(sock: RawFd, op: Op, name: &str, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    if name.len() > MAX_NAME {
        return Err(io::Error::new(ErrorKind::InvalidInput, "name too long"));
    }
    if op.carries_fd() != fd.is_some() {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            "a descriptor goes with Store and Entry only",
        ));
    }
    let mut bytes = Vec::with_capacity(1 + name.len());
    bytes.push(op as u8);
    bytes.extend_from_slice(name.as_bytes());
    let fds: Vec<RawFd> = fd.iter().map(AsRawFd::as_raw_fd).collect();
    scm::send(sock, &bytes, &fds)?;
    Ok(())
}

/// Receives one record from `sock`; None at end of stream. A record that
/// is malformed (unknown kind, bad name, a descriptor missing or extra) is
/// an `InvalidData` error, its descriptors closed.
pub fn recv(sock: RawFd) -> io::Result<Option<Record>> {
    let mut bytes = Vec::new();
    let mut fds = Vec::new();
    if scm::recv(sock, &mut bytes, 1 + MAX_NAME, &mut fds)? == 0 {
        return Ok(None);
    }
    let bad = |what: &str| io::Error::new(ErrorKind::InvalidData, format!("fd store: {what}"));
    let op = Op::from_byte(bytes[0]).ok_or_else(|| bad("unknown record"))?;
    let name = String::from_utf8(bytes[1..].to_vec()).map_err(|_| bad("name not UTF-8"))?;
    let fd = match (op.carries_fd(), fds.len()) {
        (true, 1) => fds.pop(),
        (false, 0) => None,
        _ => return Err(bad("descriptor count")),
    };
    Ok(Some(Record { op, name, fd }))
}

/// A `SOCK_SEQPACKET` socket pair: the store's end and the daemon's.
pub fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair fills `fds` with two new descriptors on success.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are new descriptors nobody else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The daemon's side: the store its supervisor gave it, if any.
#[derive(Debug)]
pub struct FdStore {
    sock: OwnedFd,
}

impl FdStore {
    /// The store named by [`FDSTORE_ENV`], taken out of the environment
    /// (what this process starts does not inherit it); None without one.
    pub fn from_env() -> io::Result<Option<FdStore>> {
        let Some(value) = std::env::var_os(FDSTORE_ENV) else {
            return Ok(None);
        };
        std::env::remove_var(FDSTORE_ENV);
        let fd: RawFd = value
            .to_str()
            .and_then(|v| v.parse().ok())
            .filter(|fd| *fd >= 0)
            .ok_or_else(|| {
                io::Error::new(
                    ErrorKind::InvalidInput,
                    format!("{FDSTORE_ENV}={value:?} is not an fd number"),
                )
            })?;
        // SAFETY: the supervisor passed this descriptor for this use only.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        // It must not leak into what this process starts.
        // SAFETY: F_SETFD on a descriptor we own.
        unsafe { libc::fcntl(sock.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        Ok(Some(FdStore { sock }))
    }

    /// Keeps `fd` under `name`.
    pub fn store(&self, name: &str, fd: BorrowedFd<'_>) -> io::Result<()> {
        send(self.sock.as_raw_fd(), Op::Store, name, Some(fd))
    }

    /// Closes what `name` holds.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        send(self.sock.as_raw_fd(), Op::Remove, name, None)
    }

    /// Everything the store holds, by name.
    pub fn fetch(&self) -> io::Result<BTreeMap<String, OwnedFd>> {
        send(self.sock.as_raw_fd(), Op::Fetch, "", None)?;
        let mut entries = BTreeMap::new();
        loop {
            match recv(self.sock.as_raw_fd())? {
                Some(Record {
                    op: Op::Entry,
                    name,
                    fd: Some(fd),
                }) => {
                    entries.insert(name, fd);
                }
                Some(Record { op: Op::End, .. }) => return Ok(entries),
                Some(r) => {
                    return Err(io::Error::new(
                        ErrorKind::InvalidData,
                        format!("fd store answered {:?}", r.op),
                    ))
                }
                None => return Err(ErrorKind::UnexpectedEof.into()),
            }
        }
    }
}

/// The supervisor's side: what it holds for one daemon.
#[derive(Debug, Default)]
pub struct Held {
    entries: BTreeMap<String, OwnedFd>,
}

impl Held {
    /// Descriptors held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes one record from the daemon's end `sock` and acts on it;
    /// false once the daemon is gone. A malformed record is logged and
    /// skipped: the daemon's mistake must not cost what the store holds.
    pub fn serve(&mut self, sock: RawFd) -> io::Result<bool> {
        let record = match recv(sock) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(false),
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                log::warn!("{e}");
                return Ok(true);
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(false),
            Err(e) => return Err(e),
        };
        match record {
            Record {
                op: Op::Store,
                name,
                fd: Some(fd),
            } => {
                self.entries.insert(name, fd);
            }
            Record {
                op: Op::Remove,
                name,
                ..
            } => {
                self.entries.remove(&name);
            }
            Record { op: Op::Fetch, .. } => {
                for (name, fd) in &self.entries {
                    use std::os::fd::AsFd;
                    send(sock, Op::Entry, name, Some(fd.as_fd()))?;
                }
                send(sock, Op::End, "", None)?;
            }
            Record { op, .. } => log::warn!("fd store: a daemon sent {op:?}"),
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn stored_descriptors_come_back_by_name_until_removed() {
        let (store_end, daemon_end) = pair().unwrap();
        let daemon = FdStore { sock: daemon_end };
        let mut held = Held::default();
        let (mut a, b) = UnixStream::pair().unwrap();
        daemon.store("conn/1", b.as_fd()).unwrap();
        daemon.store("conn/2", b.as_fd()).unwrap();
        daemon.remove("conn/2").unwrap();
        daemon.remove("never").unwrap();
        drop(b);
        for _ in 0..4 {
            assert!(held.serve(store_end.as_raw_fd()).unwrap());
        }
        assert_eq!(held.len(), 1);
        // The fetch is answered by the store's side, run here in turn.
        send(daemon.sock.as_raw_fd(), Op::Fetch, "", None).unwrap();
        assert!(held.serve(store_end.as_raw_fd()).unwrap());
        let first = recv(daemon.sock.as_raw_fd()).unwrap().unwrap();
        assert_eq!((first.op, first.name.as_str()), (Op::Entry, "conn/1"));
        let end = recv(daemon.sock.as_raw_fd()).unwrap().unwrap();
        assert_eq!(end.op, Op::End);
        // The descriptor is the same socket: what goes in comes out of `a`.
        let mut kept = UnixStream::from(first.fd.unwrap());
        kept.write_all(b"x").unwrap();
        let mut byte = [0u8];
        a.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
        drop(daemon);
        assert!(!held.serve(store_end.as_raw_fd()).unwrap());
    }

    #[test]
    fn malformed_records_are_refused_without_losing_the_store() {
        let (store_end, daemon_end) = pair().unwrap();
        let (x, _y) = UnixStream::pair().unwrap();
        assert!(send(daemon_end.as_raw_fd(), Op::Store, "a", None).is_err());
        assert!(send(daemon_end.as_raw_fd(), Op::Remove, "a", Some(x.as_fd())).is_err());
        assert!(send(daemon_end.as_raw_fd(), Op::Remove, &"n".repeat(256), None).is_err());
        let mut held = Held::default();
        send(daemon_end.as_raw_fd(), Op::Store, "kept", Some(x.as_fd())).unwrap();
        assert!(held.serve(store_end.as_raw_fd()).unwrap());
        scm::send(daemon_end.as_raw_fd(), &[9, b'z'], &[]).unwrap();
        scm::send(daemon_end.as_raw_fd(), &[1, b'q'], &[]).unwrap();
        scm::send(daemon_end.as_raw_fd(), &[2, 0xff], &[]).unwrap();
        for _ in 0..3 {
            assert!(held.serve(store_end.as_raw_fd()).unwrap());
        }
        assert_eq!(held.len(), 1);
    }
}
