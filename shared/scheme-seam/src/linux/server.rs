//! Serving a [`Scheme`] on the bus: one epoll loop over the listening
//! socket, every handle's connection, the scheme's own event sources and the
//! termination pipe.

use std::collections::{HashMap, VecDeque};
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Instant;

use log::{debug, info, warn};

use super::frames::{Filled, Frame, FrameReader, Take};
use super::journal::{SlotId, NO_HANDLE};
use super::persist::{Persist, Resumed};
use super::scm;
use super::wire::{decode, encode, FrameError, Reply, Request, MAX_FDS};
use crate::daemon::{notify_ready, Termination};
use crate::errno::Errno;
use crate::handler::{
    Answer, Caller, Context, EventFlags, HandleId, Opened, Park, Scheme, WakeKey,
};
use crate::parked::{self, Parked, Rerun};

const LISTENER: u64 = 0;
const TERMINATION: u64 = 1;
const SOURCE: u64 = 1 << 32;
const CONN: u64 = 1 << 48;

/// Serves `scheme` as `name` in the bus directory until `termination`
/// fires. The socket appears (atomically, by rename) only once it accepts
/// connections, and `INIT_NOTIFY` is written then. Under a supervisor with
/// a file-descriptor store ([`super::fdstore`]) the socket and every
/// connection are kept there, and an instance started after one that died
/// serves them on ([`super::persist`]).
pub fn serve<S: Scheme>(name: &str, scheme: &mut S, termination: &Termination) -> io::Result<()> {
    if name.is_empty() || name.contains('/') {
        return Err(io::Error::new(ErrorKind::InvalidInput, "bad scheme name"));
    }
    let dir = super::scheme_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    let (persist, keeper, kept, resumed) = match Persist::from_env()? {
        Some((p, keeper, listener, resumed)) => (Some(p), Some(keeper), listener, resumed),
        None => (None, None, None, Vec::new()),
    };
    let listener = match kept {
        Some(listener) => listener,
        None => {
            let listener = bind(&dir, name, &path)?;
            if let Some(p) = &persist {
                p.keep_listener(listener.as_fd());
            }
            listener
        }
    };
    listener.set_nonblocking(true)?;
    if let Some(keeper) = keeper {
        scheme.keep(keeper);
    }
    let mut server = Server::new(scheme, listener, path.clone(), termination, persist)?;
    server.resume(resumed);
    info!("serving scheme {name} at {}", path.display());
    notify_ready()?;
    let result = server.run(termination);
    server.shutdown();
    result
}

/// Binds the scheme's socket under a hidden name and renames it into
/// place, so that it appears only once it accepts.
fn bind(dir: &std::path::Path, name: &str, path: &std::path::Path) -> io::Result<UnixListener> {
    let staging = dir.join(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_file(&staging);
    let listener = UnixListener::bind(&staging)?;
    // Anyone may connect, as anyone may open a Redox scheme: the scheme
    // decides at open from the caller's credentials (SO_PEERCRED), not
    // the umask of whoever started the daemon.
    std::fs::set_permissions(
        &staging,
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )?;
    std::fs::rename(&staging, path)?;
    Ok(listener)
}

/// One handle's connection (or a fresh one waiting for its Open).
struct Conn {
    stream: UnixStream,
    caller: Caller,
    handle: Option<HandleId>,
    /// The handle died with an earlier instance and did not come back:
    /// every request answers this.
    gone: Option<Errno>,
    /// Its key in the store and journal, and its journal slot.
    key: u64,
    slot: Option<SlotId>,
    reader: FrameReader,
    out: VecDeque<Outgoing>,
    /// Readable while the handle is ready for reading, once asked for.
    events: Option<OwnedFd>,
    /// Close once the output is flushed (a failed open).
    closing: bool,
    /// Whether a malformed frame was logged (once per connection).
    malformed: bool,
    /// The epoll events registered for the connection.
    interest: u32,
    /// Its requests parked now, and the bytes they hold.
    parked: usize,
    parked_bytes: usize,
    /// Complete frames wait in `reader` because the connection was
    /// backlogged when they arrived.
    stalled: bool,
}

/// Bytes of answers queued for a connection beyond which its requests are
/// not read until it reads them: a client that never reads cannot make the
/// daemon queue without bound.
const OUT_LIMIT: usize = super::wire::MAX_FRAME;

/// Requests of one connection that may be parked at once (and
/// [`OUT_LIMIT`] bytes of them): beyond, its further requests are not read
/// until some are answered — they wait, as a thread blocked in the call
/// would — so a client pipelining waits cannot make the daemon hold them
/// without bound.
const PARKED_LIMIT: usize = 256;

impl Conn {
    fn backlogged(&self) -> bool {
        self.parked >= PARKED_LIMIT
            || self.parked_bytes > OUT_LIMIT
            || self
                .out
                .iter()
                .map(|o| o.bytes.len() - o.sent)
                .sum::<usize>()
                > OUT_LIMIT
    }
}

impl ParkedReq {
    /// The bytes it holds while parked.
    fn bytes(&self) -> usize {
        match &self.req {
            Request::Call { payload, .. } => payload.len(),
            _ => 0,
        }
    }
}

struct Outgoing {
    bytes: Vec<u8>,
    sent: usize,
    fds: Vec<OwnedFd>,
    /// The request it answers (none for the rest of an earlier
    /// instance's answer), struck from the journal once it is out.
    tag: Option<u32>,
    /// Kept in the store for a next instance (it went out in part).
    kept: bool,
}

/// A request waiting for its condition.
struct ParkedReq {
    tag: u32,
    req: Request,
}

/// What executing a request asks of the loop.
enum Exec {
    Reply(Reply, Vec<OwnedFd>),
    /// The request waits: park it.
    Park(Park),
    /// Open made a handle: bind the connection to it.
    Bind(HandleId),
    /// Open or dup produced another file: send it; a connection that was
    /// opening closes after.
    Foreign(OwnedFd),
    /// Dup made a handle: give it a connection of its own.
    NewHandle(HandleId),
    /// fevent answered with this readiness.
    Events(EventFlags),
}

struct Server<'s, S: Scheme> {
    scheme: &'s mut S,
    epoll: OwnedFd,
    listener: UnixListener,
    path: PathBuf,
    conns: HashMap<u64, Conn>,
    next_conn: u64,
    parked: Parked<ParkedReq>,
    /// Keys woken since parked requests last ran.
    woken: Vec<WakeKey>,
    /// The scheme's tokens for its sources, by event-queue position.
    sources: Vec<usize>,
    /// The supervisor's store, when there is one.
    persist: Option<Persist>,
}

fn errno_reply(e: Errno) -> Exec {
    Exec::Reply(Reply::Error(e.0), Vec::new())
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn epoll_ctl(
    epoll: &OwnedFd,
    op: libc::c_int,
    fd: RawFd,
    events: u32,
    token: u64,
) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: `ev` is a valid epoll_event; the fds are live.
    cvt(unsafe { libc::epoll_ctl(epoll.as_raw_fd(), op, fd, &mut ev) }).map(drop)
}

fn peer_caller(stream: &UnixStream) -> Caller {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED fills a ucred of the given length.
    let r = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r < 0 {
        warn!("SO_PEERCRED: {}", io::Error::last_os_error());
    }
    Caller {
        pid: cred.pid as u32,
        uid: cred.uid,
        gid: cred.gid,
    }
}

/// The region's memfd as the client may use it: a read-only reopening
/// (through /proc) unless it asked to write, so a read-only client cannot
/// map the pages writable.
fn shareable_fd(region: &crate::ShmRegion, writable: bool) -> io::Result<OwnedFd> {
    if writable {
        return region.fd().try_clone_to_owned();
    }
    let path = format!("/proc/self/fd/{}", region.fd().as_raw_fd());
    Ok(std::fs::File::open(path)?.into())
}

fn new_eventfd() -> io::Result<OwnedFd> {
    // SAFETY: creating a fresh eventfd with valid flags.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
    // SAFETY: eventfd() just returned this fd; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes `fd` (an eventfd) readable or not.
fn set_ready(fd: &OwnedFd, ready: bool) {
    let mut value = 1u64;
    // SAFETY: 8-byte reads and writes of a local u64 on an eventfd we own;
    // EAGAIN (already clear, or counter full) is the state we want anyway.
    unsafe {
        if ready {
            libc::write(fd.as_raw_fd(), (&value as *const u64).cast(), 8);
        } else {
            libc::read(fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8);
        }
    }
}

impl<'s, S: Scheme> Server<'s, S> {
    fn new(
        scheme: &'s mut S,
        listener: UnixListener,
        path: PathBuf,
        termination: &Termination,
        persist: Option<Persist>,
    ) -> io::Result<Self> {
        // SAFETY: creating a fresh epoll instance.
        let epoll = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: epoll_create1 just returned this fd.
        let epoll = unsafe { OwnedFd::from_raw_fd(epoll) };
        let readable = libc::EPOLLIN as u32;
        epoll_ctl(
            &epoll,
            libc::EPOLL_CTL_ADD,
            listener.as_raw_fd(),
            readable,
            LISTENER,
        )?;
        epoll_ctl(
            &epoll,
            libc::EPOLL_CTL_ADD,
            termination.fd(),
            readable,
            TERMINATION,
        )?;
        let mut sources = Vec::new();
        for (fd, token) in scheme.sources() {
            let at = SOURCE + sources.len() as u64;
            epoll_ctl(&epoll, libc::EPOLL_CTL_ADD, fd, readable, at)?;
            sources.push(token);
        }
        Ok(Server {
            scheme,
            epoll,
            listener,
            path,
            conns: HashMap::new(),
            next_conn: 0,
            parked: Parked::default(),
            woken: Vec::new(),
            sources,
            persist,
        })
    }

    /// Serves on the connections an earlier instance left: the rest of a
    /// partly sent answer first, then an answer to every request it took
    /// (see [`super::persist`]).
    fn resume(&mut self, resumed: Vec<Resumed>) {
        let mut ids = Vec::new();
        for r in resumed {
            let caller = peer_caller(&r.stream);
            // The scheme rebuilds the handle, or says why it cannot.
            let handle = r.handle.map(|old| {
                let mut ctx = Context::new(caller);
                let handle = self.scheme.resume(old as HandleId, &mut ctx);
                self.absorb(&mut ctx);
                handle
            });
            let (bound, journaled) = match handle {
                Some(Ok(h)) => (Some(h), h as u64),
                // Journaled as opened, so a next instance answers it too.
                Some(Err(_)) => (None, 0),
                None => (None, NO_HANDLE),
            };
            let id = match self.add_conn_keyed(r.stream, caller, bound, journaled) {
                Ok(id) => id,
                Err(e) => {
                    warn!("taking over a connection: {e}");
                    continue;
                }
            };
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            conn.gone = handle.and_then(Result::err);
            conn.reader = r.reader;
            if let Some(events) = r.events {
                if let Some(p) = &self.persist {
                    p.keep_events(conn.key, events.as_fd());
                }
                conn.events = Some(events);
            }
            // What the stream and the answer stand at is journaled again
            // under the new key at once: an instance killed before it
            // reads or writes the connection must not leave it as new.
            let kept = !r.remainder.is_empty();
            if let (Some(p), Some(slot)) = (&mut self.persist, conn.slot) {
                let (taken, head) = conn.reader.partial();
                p.journal().set_partial(slot, taken, &head);
                if kept {
                    p.keep_answer(conn.key, slot, &r.remainder, 0);
                }
            }
            if kept {
                conn.out.push_back(Outgoing {
                    bytes: r.remainder,
                    sent: 0,
                    fds: Vec::new(),
                    tag: None,
                    kept: true,
                });
            }
            for tag in r.unanswered {
                let reply = match (bound, conn.gone) {
                    (Some(h), _) => match self.scheme.interrupted(h, tag) {
                        Some((value, data)) => Reply::Data {
                            value: value as u64,
                            data,
                        },
                        None => Reply::Error(Errno::EINTR.0),
                    },
                    (None, Some(e)) => Reply::Error(e.0),
                    (None, None) => Reply::Error(Errno::EINTR.0),
                };
                if let (Some(p), Some(slot)) = (&mut self.persist, conn.slot) {
                    p.journal().add_tag(slot, tag);
                }
                conn.out.push_back(Outgoing {
                    bytes: encode(tag, &reply),
                    sent: 0,
                    fds: Vec::new(),
                    tag: Some(tag),
                    kept: false,
                });
            }
            // Journaled whole under its new key: the old one goes.
            if let Some(p) = &mut self.persist {
                p.retire(r.old_key, r.old_slot);
            }
            ids.push(id);
        }
        if self.persist.is_some() {
            let mut ctx = Context::new(Caller::default());
            self.scheme.resumed(&mut ctx);
            self.absorb(&mut ctx);
        }
        // Frames the clients sent meanwhile are in the sockets; the
        // readiness they poll is the rebuilt handles'.
        for id in ids {
            self.refresh_readiness(id);
            self.conn_ready(id, libc::EPOLLIN as u32);
        }
    }

    fn run(&mut self, termination: &Termination) -> io::Result<()> {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 64];
        loop {
            let next = [self.scheme.next_deadline(), self.parked.next_deadline()]
                .into_iter()
                .flatten()
                .min();
            // Keys still woken after the last re-runs: go on at once.
            let next = if self.woken.is_empty() {
                next
            } else {
                Some(Instant::now())
            };
            let timeout = next.map_or(-1, |d| {
                let ms = d.saturating_duration_since(Instant::now()).as_millis();
                // Round up so a deadline is never woken for early and spun on.
                i32::try_from(ms + 1).unwrap_or(i32::MAX)
            });
            // SAFETY: `events` has room for its length of entries.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as i32,
                    timeout,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for ev in &events[..n as usize] {
                let (token, flags) = (ev.u64, ev.events);
                match token {
                    LISTENER => self.accept(),
                    TERMINATION => {
                        if termination.requested() {
                            return Ok(());
                        }
                    }
                    t if t >= CONN => self.conn_ready(t - CONN, flags),
                    t => {
                        let Some(&token) = usize::try_from(t - SOURCE)
                            .ok()
                            .and_then(|i| self.sources.get(i))
                        else {
                            continue;
                        };
                        let mut ctx = Context::new(Caller::default());
                        self.scheme.on_source(token, &mut ctx);
                        self.absorb(&mut ctx);
                    }
                }
            }
            if self
                .scheme
                .next_deadline()
                .is_some_and(|d| d <= Instant::now())
            {
                let mut ctx = Context::new(Caller::default());
                self.scheme.on_deadline(&mut ctx);
                self.absorb(&mut ctx);
            }
            self.rerun_parked();
            self.unstall();
            self.flush_all();
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let caller = peer_caller(&stream);
                    if let Err(e) = self.add_conn(stream, caller, None) {
                        warn!("accepting a client: {e}");
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    warn!("accept: {e}");
                    return;
                }
            }
        }
    }

    fn add_conn(
        &mut self,
        stream: UnixStream,
        caller: Caller,
        handle: Option<HandleId>,
    ) -> io::Result<()> {
        let journaled = handle.map_or(NO_HANDLE, |h| h as u64);
        self.add_conn_keyed(stream, caller, handle, journaled)
            .map(drop)
    }

    /// Adds a connection, kept in the store (when there is one) with
    /// `journaled` as its handle; returns its id.
    fn add_conn_keyed(
        &mut self,
        stream: UnixStream,
        caller: Caller,
        handle: Option<HandleId>,
        journaled: u64,
    ) -> io::Result<u64> {
        stream.set_nonblocking(true)?;
        let id = self.next_conn;
        self.next_conn += 1;
        let (key, slot) = match &mut self.persist {
            Some(p) => {
                let key = p.key(id);
                (key, p.add(key, stream.as_fd(), journaled))
            }
            None => (0, None),
        };
        epoll_ctl(
            &self.epoll,
            libc::EPOLL_CTL_ADD,
            stream.as_raw_fd(),
            libc::EPOLLIN as u32,
            CONN + id,
        )?;
        self.conns.insert(
            id,
            Conn {
                stream,
                caller,
                handle,
                gone: None,
                key,
                slot,
                reader: FrameReader::default(),
                out: VecDeque::new(),
                events: None,
                closing: false,
                malformed: false,
                interest: libc::EPOLLIN as u32,
                parked: 0,
                parked_bytes: 0,
                stalled: false,
            },
        );
        Ok(id)
    }

    fn conn_ready(&mut self, id: u64, flags: u32) {
        if flags & libc::EPOLLOUT as u32 != 0 {
            self.flush(id);
        }
        if flags & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 == 0 {
            return;
        }
        // Frames are handled as they complete, a socket read at a time, so
        // what is buffered stays within one frame; a connection whose
        // answers pile up unread is not read until they drain.
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            if conn.closing {
                break;
            }
            if conn.backlogged() {
                // A client that hung up can read nothing more.
                if flags & (libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
                    return self.drop_conn(id);
                }
                break;
            }
            let (persist, slot) = (&mut self.persist, conn.slot);
            let mut announce = |take| {
                if let (Some(p), Some(slot)) = (persist.as_mut(), slot) {
                    match take {
                        Take::Whole(head) => p.journal().set_taking(slot, &head),
                        Take::Piece => p.journal().set_unknown(slot),
                    }
                }
            };
            let drained = match conn
                .reader
                .fill_frame(conn.stream.as_raw_fd(), &mut announce)
            {
                Ok(Filled { bytes: 0, .. }) => return self.drop_conn(id),
                // What was read is journaled at once, before any of it is
                // acted on: a server killed after this knows where the
                // stream stands.
                Ok(filled) => {
                    self.journal_partial(id);
                    filled.drained
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!("connection {id}: {e}");
                    return self.drop_conn(id);
                }
            };
            self.take_frames(id);
            self.journal_partial(id);
            // Readiness is level-triggered: what comes later is reported.
            if drained {
                break;
            }
        }
        self.flush(id);
    }

    /// Records where connection `id`'s stream stands (see
    /// [`FrameReader::partial`]).
    fn journal_partial(&mut self, id: u64) {
        let (Some(p), Some(conn)) = (&mut self.persist, self.conns.get(&id)) else {
            return;
        };
        if let Some(slot) = conn.slot {
            let (taken, head) = conn.reader.partial();
            p.journal().set_partial(slot, taken, &head);
        }
    }

    /// Handles every complete frame buffered for connection `id`, until
    /// the connection is backlogged (the rest wait: `stalled`).
    fn take_frames(&mut self, id: u64) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            if conn.closing {
                return;
            }
            conn.stalled = conn.backlogged();
            if conn.stalled {
                return;
            }
            match conn.reader.next_frame() {
                None => return,
                Some(Ok(frame)) => self.handle_frame(id, frame),
                Some(Err((tag, e))) => {
                    // Only this frame is lost: the reader skips it. A tag
                    // to answer is there unless the frame was too short
                    // to hold one.
                    if std::mem::replace(&mut conn.malformed, true) {
                        debug!("connection {id}: {e}");
                    } else {
                        warn!(
                            "{}: connection {id}: {e} (further ones are logged at debug level)",
                            self.path.display()
                        );
                    }
                    if let Some(tag) = tag {
                        self.send(id, tag, &Reply::Error(Errno::EMSGSIZE.0), Vec::new());
                    }
                }
            }
        }
    }

    fn handle_frame(&mut self, id: u64, frame: Frame) {
        let (tag, req) = decode::<Request>(&frame.bytes);
        let req = match req {
            Ok(req) => req,
            Err(FrameError::Body | FrameError::Length(_)) => {
                debug!("connection {id}: undecodable request {tag}");
                return self.send(id, tag, &Reply::Error(Errno::EINVAL.0), Vec::new());
            }
        };
        // The tag first, then the stream's new position: killed between
        // the two, the next instance finds the frame read whole and its
        // tag listed, and answers it once (see `persist::resume`), rather
        // than lose the request.
        if let (Some(p), Some(slot)) = (&mut self.persist, self.conns.get(&id).and_then(|c| c.slot))
        {
            if !p.journal().add_tag(slot, tag) {
                warn!("connection {id}: more requests outstanding than the journal holds");
            }
        }
        self.journal_partial(id);
        let mut req = req;
        match self.execute(id, tag, &mut req, frame.fds, None) {
            Some(Exec::Park(park)) => {
                let p = ParkedReq { tag, req };
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.parked += 1;
                    conn.parked_bytes += p.bytes();
                }
                self.parked.park(id as usize, park, p);
            }
            Some(exec) => self.finish(id, tag, exec),
            None => {}
        }
    }

    /// Runs one request against the scheme: for the first time (`rerun`
    /// None), or again while parked (`Some(expired)`). `None` when the
    /// connection is gone.
    fn execute(
        &mut self,
        id: u64,
        tag: u32,
        req: &mut Request,
        fds: Vec<OwnedFd>,
        rerun: Option<bool>,
    ) -> Option<Exec> {
        let conn = self.conns.get(&id)?;
        if let Some(e) = conn.gone {
            return Some(errno_reply(e));
        }
        let expired = rerun == Some(true);
        let mut ctx = Context::rerun(conn.caller, expired).with_tag(tag);
        let handle = conn.handle;
        let has_events = conn.events.is_some();
        let exec = match (handle, req) {
            (None, Request::Open { path, flags }) => {
                match self.scheme.open(path, *flags as usize, &mut ctx) {
                    Ok(Opened::Handle(h)) => Exec::Bind(h),
                    Ok(Opened::Fd(fd)) => Exec::Foreign(fd),
                    Err(e) => errno_reply(e),
                }
            }
            (None, _) => errno_reply(Errno::EBADF),
            (Some(_), Request::Open { .. }) => errno_reply(Errno::EINVAL),
            (Some(_), Request::SendFds { .. }) if fds.is_empty() => errno_reply(Errno::EINVAL),
            (Some(h), Request::SendFds { arg }) => {
                match self.scheme.send_fds(h, fds, *arg, &mut ctx) {
                    Ok(v) => Exec::Reply(Reply::Value(v as u64), Vec::new()),
                    Err(e) => errno_reply(e),
                }
            }
            (Some(_), _) if !fds.is_empty() => errno_reply(Errno::EINVAL),
            (Some(h), Request::Dup { buf }) => match self.scheme.dup(h, buf, &mut ctx) {
                Ok(Opened::Handle(new)) => Exec::NewHandle(new),
                Ok(Opened::Fd(fd)) => Exec::Foreign(fd),
                Err(e) => errno_reply(e),
            },
            (
                Some(h),
                Request::Read {
                    len,
                    offset,
                    nonblock,
                },
            ) => {
                let Ok(len) = usize::try_from(*len).map(|l| l.min(super::wire::MAX_FRAME / 2))
                else {
                    return Some(errno_reply(Errno::EINVAL));
                };
                let mut data = vec![0; len];
                match parked::resolve(
                    self.scheme.read(h, &mut data, *offset, &mut ctx),
                    *nonblock,
                    expired,
                ) {
                    Ok(Answer::Park(park)) => Exec::Park(park),
                    Ok(Answer::Ready(n)) => {
                        data.truncate(n.min(len));
                        Exec::Reply(
                            Reply::Data {
                                value: n as u64,
                                data,
                            },
                            Vec::new(),
                        )
                    }
                    Err(e) => errno_reply(e),
                }
            }
            (Some(h), Request::Write { data, offset }) => {
                match self.scheme.write(h, data, *offset, &mut ctx) {
                    Ok(n) => Exec::Reply(Reply::Value(n as u64), Vec::new()),
                    Err(e) => errno_reply(e),
                }
            }
            (Some(_), Request::Call { metadata, .. }) if metadata.len() > 3 => {
                errno_reply(Errno::EINVAL)
            }
            (
                Some(h),
                Request::Call {
                    payload,
                    metadata,
                    nonblock,
                },
            ) => {
                // The handler may write the payload; a blocked call must be
                // re-run on the payload as the client sent it.
                let mut scratch = payload.clone();
                let answer = self.scheme.call(h, &mut scratch, metadata, &mut ctx);
                match parked::resolve(answer, *nonblock, expired) {
                    Ok(Answer::Park(park)) => Exec::Park(park),
                    Ok(Answer::Ready(v)) => Exec::Reply(
                        Reply::Data {
                            value: v as u64,
                            data: scratch,
                        },
                        Vec::new(),
                    ),
                    Err(e) => errno_reply(e),
                }
            }
            (Some(h), Request::Fevent { flags }) => {
                match self
                    .scheme
                    .fevent(h, EventFlags::from_bits_truncate(*flags), &mut ctx)
                {
                    Ok(ready) => Exec::Events(ready),
                    Err(e) => errno_reply(e),
                }
            }
            (Some(h), Request::Fstat) => match self.scheme.fstat(h, &mut ctx) {
                Ok(st) => Exec::Reply(
                    Reply::Stat {
                        mode: st.mode,
                        rdev: st.rdev,
                        size: st.size,
                    },
                    Vec::new(),
                ),
                Err(e) => errno_reply(e),
            },
            (
                Some(h),
                Request::Mmap {
                    offset,
                    len,
                    writable,
                },
            ) => {
                let Ok(len) = usize::try_from(*len) else {
                    return Some(errno_reply(Errno::EINVAL));
                };
                match self.scheme.mmap(h, *offset, len, &mut ctx) {
                    Ok(m) if *writable && !m.writable => errno_reply(Errno::EACCES),
                    Ok(m)
                        if m.offset
                            .checked_add(len)
                            .is_some_and(|end| end <= m.region.len()) =>
                    {
                        match shareable_fd(&m.region, *writable) {
                            Ok(fd) => Exec::Reply(
                                Reply::Mapped {
                                    offset: m.region.file_offset() + m.offset as u64,
                                },
                                vec![fd],
                            ),
                            Err(e) => errno_reply(e.into()),
                        }
                    }
                    Ok(_) => errno_reply(Errno::EINVAL),
                    Err(e) => errno_reply(e),
                }
            }
        };
        self.absorb(&mut ctx);
        if has_events && !matches!(exec, Exec::Park(_)) {
            self.refresh_readiness(id);
        }
        Some(exec)
    }

    /// Acts on a request's outcome and answers it.
    fn finish(&mut self, id: u64, tag: u32, exec: Exec) {
        match exec {
            Exec::Reply(reply, fds) => {
                self.send(id, tag, &reply, fds);
                // A connection whose open failed has no further use (one
                // whose handle died with an earlier instance stays, to say so).
                if let Some(conn) = self
                    .conns
                    .get_mut(&id)
                    .filter(|c| c.handle.is_none() && c.gone.is_none())
                {
                    conn.closing = true;
                }
            }
            Exec::Park(_) => unreachable!("parked by the caller"),
            Exec::Bind(h) => {
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.handle = Some(h);
                    if let (Some(p), Some(slot)) = (&mut self.persist, conn.slot) {
                        p.journal().set_handle(slot, h as u64);
                    }
                }
                self.send(id, tag, &Reply::Value(h as u64), Vec::new());
            }
            Exec::Foreign(fd) => {
                let opening = self.conns.get(&id).is_some_and(|c| c.handle.is_none());
                self.send(id, tag, &Reply::Fd, vec![fd]);
                if let (true, Some(conn)) = (opening, self.conns.get_mut(&id)) {
                    conn.closing = true;
                }
            }
            Exec::NewHandle(h) => {
                let caller = self.conns.get(&id).map(|c| c.caller).unwrap_or_default();
                match UnixStream::pair().and_then(|(ours, theirs)| {
                    self.add_conn(ours, caller, Some(h))?;
                    Ok(theirs)
                }) {
                    Ok(theirs) => self.send(id, tag, &Reply::Handle, vec![OwnedFd::from(theirs)]),
                    Err(e) => {
                        // The scheme made a handle nobody can reach: close it.
                        let mut ctx = Context::new(caller);
                        self.scheme.close(h, &mut ctx);
                        self.absorb(&mut ctx);
                        self.send(id, tag, &Reply::Error(Errno::from(e).0), Vec::new());
                    }
                }
            }
            Exec::Events(ready) => {
                let Some(conn) = self.conns.get_mut(&id) else {
                    return;
                };
                let mut fds = Vec::new();
                // The eventfd goes with every answer: a client that took the
                // connection over from an earlier process asks again, and
                // must get the one the server signals.
                let theirs = match &conn.events {
                    Some(fd) => fd.try_clone(),
                    None => new_eventfd().and_then(|ours| {
                        if let Some(p) = &self.persist {
                            p.keep_events(conn.key, ours.as_fd());
                        }
                        let theirs = ours.try_clone();
                        conn.events = Some(ours);
                        theirs
                    }),
                };
                match theirs {
                    Ok(fd) => fds.push(fd),
                    Err(e) => {
                        return self.send(id, tag, &Reply::Error(Errno::from(e).0), Vec::new())
                    }
                }
                if let Some(fd) = &conn.events {
                    set_ready(fd, ready.contains(EventFlags::READ));
                }
                self.send(
                    id,
                    tag,
                    &Reply::Events {
                        ready: ready.bits(),
                    },
                    fds,
                );
            }
        }
    }

    /// Brings a handle's eventfd in line with its readiness after the
    /// client acted on it (a read may have drained what made it ready).
    fn refresh_readiness(&mut self, id: u64) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        let (Some(h), Some(_)) = (conn.handle, &conn.events) else {
            return;
        };
        let mut ctx = Context::new(conn.caller);
        let ready = self.scheme.fevent(h, EventFlags::READ, &mut ctx);
        if let (Ok(ready), Some(fd)) = (ready, self.conns.get(&id).and_then(|c| c.events.as_ref()))
        {
            set_ready(fd, ready.contains(EventFlags::READ));
        }
        self.absorb(&mut ctx);
    }

    /// Takes in what a handler reported: readiness for pollers, keys for
    /// parked requests.
    fn absorb(&mut self, ctx: &mut Context) {
        self.deliver_events(ctx.take_events());
        for key in ctx.take_woken() {
            if !self.woken.contains(&key) {
                self.woken.push(key);
            }
        }
    }

    /// Makes posted readiness visible to pollers of those handles.
    fn deliver_events(&mut self, events: Vec<(HandleId, EventFlags)>) {
        for (h, flags) in events {
            if !flags.contains(EventFlags::READ) {
                continue;
            }
            for conn in self.conns.values() {
                if let (Some(ch), Some(fd)) = (conn.handle, &conn.events) {
                    if ch == h {
                        set_ready(fd, true);
                    }
                }
            }
        }
    }

    /// Runs the parked requests whose keys were woken or whose deadlines
    /// passed, until no request wakes another.
    fn rerun_parked(&mut self) {
        for _ in 0..parked::MAX_ROUNDS {
            let woken = std::mem::take(&mut self.woken);
            let now = Instant::now();
            if woken.is_empty() && self.parked.next_deadline().is_none_or(|d| d > now) {
                return;
            }
            // The scheme is borrowed inside the closure, so execute through
            // a split borrow: take the list out, run, put it back.
            let mut parked = std::mem::take(&mut self.parked);
            let answered = parked.rerun(&woken, now, |owner, p, expired| {
                match self.execute(owner as u64, p.tag, &mut p.req, Vec::new(), Some(expired)) {
                    Some(Exec::Park(park)) => Rerun::Parked(park),
                    other => Rerun::Answered(other),
                }
            });
            self.parked = parked;
            for (owner, p, exec) in answered {
                let id = owner as u64;
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.parked -= 1;
                    conn.parked_bytes -= p.bytes();
                }
                if let Some(exec) = exec {
                    self.finish(id, p.tag, exec);
                }
            }
        }
    }

    /// Takes the frames that waited in stalled connections that are no
    /// longer backlogged.
    fn unstall(&mut self) {
        let ready: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.stalled && !c.backlogged())
            .map(|(&id, _)| id)
            .collect();
        for id in ready {
            self.take_frames(id);
        }
    }

    fn send(&mut self, id: u64, tag: u32, reply: &Reply, fds: Vec<OwnedFd>) {
        debug_assert!(fds.len() <= MAX_FDS);
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.out.push_back(Outgoing {
                bytes: encode(tag, reply),
                sent: 0,
                fds,
                tag: Some(tag),
                kept: false,
            });
        }
    }

    fn flush_all(&mut self) {
        let ids: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.out.is_empty() || c.closing)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            self.flush(id);
        }
    }

    /// Sends what is queued without blocking; arms EPOLLOUT for the rest.
    fn flush(&mut self, id: u64) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        while let Some(out) = conn.out.front_mut() {
            let fds: Vec<RawFd> = if out.sent == 0 {
                out.fds.iter().map(|f| f.as_fd().as_raw_fd()).collect()
            } else {
                Vec::new()
            };
            match scm::send(conn.stream.as_raw_fd(), &out.bytes[out.sent..], &fds) {
                Ok(n) => {
                    out.sent += n;
                    let done = out.sent == out.bytes.len();
                    if let (Some(p), Some(slot)) = (&mut self.persist, conn.slot) {
                        // Its tag is struck once the answer is out, or
                        // once the store holds the rest of it.
                        if done || !out.kept {
                            if let Some(tag) = out.tag {
                                p.journal().remove_tag(slot, tag);
                            }
                        }
                        match (done, out.kept) {
                            (true, true) => p.answer_sent(conn.key, slot),
                            (false, false) => {
                                out.kept = true;
                                p.keep_answer(conn.key, slot, &out.bytes, out.sent);
                            }
                            (false, true) => p.journal().set_out_sent(slot, out.sent as u64),
                            (true, false) => {}
                        }
                    }
                    if done {
                        conn.out.pop_front();
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!("connection {id}: {e}");
                    return self.drop_conn(id);
                }
            }
        }
        let pending = !conn.out.is_empty();
        if !pending && conn.closing {
            return self.drop_conn(id);
        }
        let mut events = 0;
        if !conn.backlogged() {
            events |= libc::EPOLLIN as u32;
        }
        if pending {
            events |= libc::EPOLLOUT as u32;
        }
        if events != conn.interest {
            conn.interest = events;
            let fd = conn.stream.as_raw_fd();
            if let Err(e) = epoll_ctl(&self.epoll, libc::EPOLL_CTL_MOD, fd, events, CONN + id) {
                warn!("connection {id}: {e}");
            }
        }
    }

    /// The client is gone (or broke the protocol): its parked requests are
    /// dropped and its handle closed.
    fn drop_conn(&mut self, id: u64) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        if let Some(p) = &mut self.persist {
            if conn.out.front().is_some_and(|o| o.kept) {
                if let Some(slot) = conn.slot {
                    p.answer_sent(conn.key, slot);
                }
            }
            p.remove(conn.key, conn.slot);
        }
        let cancelled = self.parked.take_where(|owner, _| owner as u64 == id);
        if !cancelled.is_empty() {
            debug!(
                "connection {id}: {} parked requests cancelled",
                cancelled.len()
            );
        }
        if let Some(h) = conn.handle {
            let mut ctx = Context::new(conn.caller);
            self.scheme.close(h, &mut ctx);
            self.absorb(&mut ctx);
        }
    }

    /// Orderly exit: parked requests are answered ECANCELED, every handle
    /// is closed, the socket is removed.
    fn shutdown(&mut self) {
        let parked = self.parked.take_where(|_, _| true);
        for (owner, p) in parked {
            self.send(
                owner as u64,
                p.tag,
                &Reply::Error(Errno::ECANCELED.0),
                Vec::new(),
            );
        }
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.flush(id);
            self.drop_conn(id);
        }
        if let Some(p) = &self.persist {
            p.forget_listener();
        }
        let _ = std::fs::remove_file(&self.path);
        info!("scheme at {} stopped", self.path.display());
    }
}
