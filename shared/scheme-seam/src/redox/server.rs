//! Serving a [`Scheme`] on Redox: one non-blocking scheme socket, one event
//! queue, and the kernel's requests translated into handler calls.
//!
//! The kernel opens `/scheme/<name>/<rest>` as `openat(root, "<rest>")` on
//! the capability registered with the name; that root is [`ROOT`], a number
//! no handler handle may take. Everything else a client does arrives tagged
//! with the handle number its open or dup answered.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::time::Instant;

use event::{EventFlags as WaitFor, RawEventQueue};
use libredox::flag::{CLOCK_MONOTONIC, O_CLOEXEC, O_RDWR};
use redox_scheme::scheme::{register_scheme_inner, IntoTag, Op};
use redox_scheme::{
    CallRequest, CallerCtx, Request, RequestKind, Response, SendFdRequest, SignalBehavior, Socket,
};
use syscall::error::{EAGAIN, EINTR};
use syscall::flag::FobtainFdFlags;

use super::dispatch::{run_op, Done, ROOT};
use super::{owned_fd, set_cloexec};
use crate::daemon::{notify_ready, Termination};
use crate::parked::{Parked, Rerun, MAX_ROUNDS};
use crate::{Caller, Context, Errno, EventFlags, HandleId, Scheme, WakeKey};

/// Event-queue tokens; a scheme's own sources follow from
/// [`FIRST_SOURCE`] on, in the order [`Scheme::sources`] gave them.
const SOCKET: usize = 0;
const TERMINATION: usize = 1;
const TIMER: usize = 2;
const FIRST_SOURCE: usize = 3;

/// Requests read per syscall.
const REQUEST_BATCH: usize = 32;

/// Serves `scheme` as `name` until `termination` fires.
///
/// Registers the scheme in this process's namespace, then calls
/// [`notify_ready`]. Requests are handled one at a time, in order; a `read`
/// or `call` answered [`crate::Answer::Park`] is kept with its keys and
/// deadline and runs again when a key is woken or the deadline passes,
/// unless the client asked not to wait (`O_NONBLOCK` on a read; for a call,
/// which Redox passes without the descriptor's flags, [`crate::CALL_NONBLOCK`]
/// in its first metadata word): then it is answered `EAGAIN`. A client interrupted
/// while parked (a signal) gets its request answered
/// [`Errno::ECANCELED`], which it sees as `EINTR`; the last close of a
/// handle, including by a client's exit, answers what is parked on it the
/// same way and calls [`Scheme::close`] once.
///
/// On Redox:
/// - handle ids must stay below `usize::MAX - 4095` (a larger one is closed
///   again and the open fails with `EIO`);
/// - open paths are relative to the scheme (`/scheme/drm/card0` opens
///   `"card0"`), leading slashes removed; `flags` are Redox `O_*` values;
/// - reads and writes see the kernel's file offset for the handle (each
///   open starts at 0 and advances by what was transferred);
/// - [`Scheme::sources`] is asked once, before serving starts, and each
///   source's event is edge-triggered: [`Scheme::on_source`] must drain it;
/// - `fcntl`, `fsync` and `munmap` succeed without reaching the handler;
///   other file operations (stat, path, truncate, directories) answer
///   `EOPNOTSUPP`.
///
/// Returns `Ok` once terminated, with every parked request answered
/// `ECANCELED`, and an error if the scheme socket or the event queue fails.
pub fn serve<S: Scheme>(name: &str, scheme: &mut S, termination: &Termination) -> io::Result<()> {
    let socket = Socket::nonblock().map_err(sys_io)?;
    let queue = RawEventQueue::new().map_err(|e| io::Error::from_raw_os_error(e.errno()))?;
    let subscribe = |fd: usize, token: usize| {
        queue
            .subscribe(fd, token, WaitFor::READ)
            .map_err(|e| io::Error::from_raw_os_error(e.errno()))
    };
    subscribe(socket.inner().raw(), SOCKET)?;
    subscribe(fd_number(termination.fd())?, TERMINATION)?;
    let mut timer = match Timer::open() {
        Ok(timer) => {
            subscribe(timer.fd.raw(), TIMER)?;
            Some(timer)
        }
        Err(e) => {
            log::warn!("no monotonic timer ({e}): deadlines only run when something else happens");
            None
        }
    };
    let sources = scheme.sources();
    for (i, &(fd, _)) in sources.iter().enumerate() {
        subscribe(fd_number(fd)?, FIRST_SOURCE + i)?;
    }

    register_scheme_inner(&socket, name, ROOT).map_err(sys_io)?;
    notify_ready()?;

    let mut server = Server {
        scheme,
        socket,
        parked: Parked::default(),
        woken: Vec::new(),
        outbox: VecDeque::new(),
    };
    // Readiness is edge-triggered: take whatever is already waiting before
    // the first wait.
    server.drain()?;
    loop {
        server.meet_deadline(timer.as_mut())?;
        let event = match queue.next_event() {
            Ok(event) => event,
            Err(e) if e.errno() == EINTR => continue,
            Err(e) => return Err(io::Error::from_raw_os_error(e.errno())),
        };
        match event.user_data {
            SOCKET => server.drain()?,
            TERMINATION => {
                if termination.requested() {
                    return server.shut_down();
                }
            }
            TIMER => {
                if let Some(timer) = timer.as_mut() {
                    timer.fired();
                }
                server.rerun();
                server.flush()?;
            }
            n => match n.checked_sub(FIRST_SOURCE).and_then(|i| sources.get(i)) {
                Some(&(_, token)) => server.source_ready(token)?,
                None => log::debug!("event for unknown token {n}"),
            },
        }
    }
}

/// A request its handler parked, waiting for a key or its deadline.
///
/// `op` points into the client's buffers, which the kernel maps into this
/// process for the request and unmaps only when the request is answered
/// (redox-scheme's model for deferred answers, the contract of
/// `Op::from_sqe_unchecked`). A parked op is answered only by consuming it
/// into its [`Response`], so nothing can read those buffers once they are
/// gone; until then re-running the handler on them is as valid as the
/// first run.
struct ParkedOp {
    op: Op,
    caller: Caller,
}

struct Server<'s, S> {
    scheme: &'s mut S,
    socket: Socket,
    parked: Parked<ParkedOp>,
    /// Keys woken since parked requests last ran.
    woken: Vec<WakeKey>,
    /// Responses and events to write, in order, after each step.
    outbox: VecDeque<Response>,
}

impl<S: Scheme> Server<'_, S> {
    /// Handles every request waiting on the socket.
    fn drain(&mut self) -> io::Result<()> {
        let mut batch = Vec::with_capacity(REQUEST_BATCH);
        loop {
            match self
                .socket
                .read_requests(&mut batch, SignalBehavior::Restart)
            {
                Ok(()) if batch.is_empty() => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the kernel closed the scheme socket",
                    ))
                }
                Ok(()) => {
                    for req in batch.drain(..) {
                        self.handle(req)?;
                    }
                }
                Err(e) if e.errno == EAGAIN => return Ok(()),
                Err(e) => return Err(sys_io(e)),
            }
        }
    }

    fn handle(&mut self, req: Request) -> io::Result<()> {
        match req.kind() {
            RequestKind::Call(call) => self.call(call),
            RequestKind::SendFd(req) => self.send_fds(req),
            RequestKind::Cancellation(cancel) => {
                // The kernel cancels with the tag of the request it gave up
                // on; a request already answered is simply not found.
                let cancelled = self.parked.take_where(|_, p| p.op.req_id() == cancel.id);
                self.cancel(cancelled);
            }
            RequestKind::OnClose { id } => self.close(id),
            RequestKind::RecvFd(req) => self
                .outbox
                .push_back(Response::err(Errno::EOPNOTSUPP.0, req)),
            // Notifications that expect no answer and that no Scheme handles.
            RequestKind::OnDetach { .. }
            | RequestKind::MsyncMsg
            | RequestKind::MunmapMsg
            | RequestKind::MmapMsg => {}
        }
        self.rerun();
        self.flush()
    }

    fn call(&mut self, call: CallRequest) {
        let caller = to_caller(&call.caller());
        let mut op = match call.op() {
            Ok(op) => op,
            Err(call) => {
                self.outbox.push_back(Response::err(Errno::ENOSYS.0, call));
                return;
            }
        };
        let mut ctx = Context::new(caller);
        match run_op(self.scheme, &mut op, &mut ctx) {
            Ok(done) => self.outbox.push_back(done.respond(op)),
            Err(park) => {
                let owner = op.file_id().unwrap_or(ROOT);
                self.parked.park(owner, park, ParkedOp { op, caller });
            }
        }
        self.post(&mut ctx);
    }

    fn send_fds(&mut self, req: SendFdRequest) {
        let mut ctx = Context::new(to_caller(&req.caller()));
        let id = req.id();
        // Descriptors not obtained are closed by the kernel when the request
        // is answered.
        let result = if id == ROOT {
            Err(Errno::EBADF)
        } else {
            obtain_fds(&self.socket, &req)
                .and_then(|fds| self.scheme.send_fds(id, fds, req.arg(), &mut ctx))
        };
        self.outbox
            .push_back(Response::new(result.map_err(sys_error), req));
        self.post(&mut ctx);
    }

    /// The last reference to handle `id` is gone.
    fn close(&mut self, id: HandleId) {
        // Only a killed client leaves a request parked on a handle it then
        // closes: its answer goes nowhere, but frees the kernel's state.
        let orphans = self.parked.take_where(|owner, _| owner == id);
        self.cancel(orphans);
        if id != ROOT {
            let mut ctx = Context::new(Caller::default());
            self.scheme.close(id, &mut ctx);
            self.post(&mut ctx);
        }
    }

    fn source_ready(&mut self, token: usize) -> io::Result<()> {
        let mut ctx = Context::new(Caller::default());
        self.scheme.on_source(token, &mut ctx);
        self.post(&mut ctx);
        self.rerun();
        self.flush()
    }

    /// Acts on the scheme's timer and on parked deadlines that have passed,
    /// then sets the timer for the next one.
    fn meet_deadline(&mut self, timer: Option<&mut Timer>) -> io::Result<()> {
        if self
            .scheme
            .next_deadline()
            .is_some_and(|d| d <= Instant::now())
        {
            let mut ctx = Context::new(Caller::default());
            self.scheme.on_deadline(&mut ctx);
            self.post(&mut ctx);
        }
        self.rerun();
        self.flush()?;
        let next = [self.scheme.next_deadline(), self.parked.next_deadline()]
            .into_iter()
            .flatten()
            .min();
        // Keys still woken after the last re-runs: go on at once.
        let Some(deadline) = next.or((!self.woken.is_empty()).then(Instant::now)) else {
            return Ok(());
        };
        if let Some(timer) = timer {
            if let Err(e) = timer.arm(deadline) {
                log::warn!("cannot set the deadline timer: {e}");
            }
        }
        Ok(())
    }

    /// Answers every parked request and stops.
    fn shut_down(&mut self) -> io::Result<()> {
        let all = self.parked.take_where(|_, _| true);
        self.cancel(all);
        self.flush()
    }

    fn cancel(&mut self, ops: Vec<(HandleId, ParkedOp)>) {
        for (_, parked) in ops {
            self.outbox
                .push_back(Response::err(Errno::ECANCELED.0, parked.op));
        }
    }

    /// Runs the parked requests whose keys were woken or whose deadlines
    /// passed, until no request wakes another.
    fn rerun(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let woken = std::mem::take(&mut self.woken);
            let now = Instant::now();
            if woken.is_empty() && self.parked.next_deadline().is_none_or(|d| d > now) {
                return;
            }
            let Server {
                scheme,
                parked,
                outbox,
                woken: next,
                ..
            } = self;
            let mut events = Vec::new();
            let answered = parked.rerun(&woken, now, |_, p, expired| {
                let mut ctx = Context::rerun(p.caller, expired);
                let done = run_op(*scheme, &mut p.op, &mut ctx);
                events.extend(ctx.take_events());
                next.extend(ctx.take_woken());
                match done {
                    Ok(done) => Rerun::Answered(done),
                    Err(park) => Rerun::Parked(park),
                }
            });
            for (_, p, done) in answered {
                outbox.push_back(done.respond(p.op));
            }
            outbox.extend(events.into_iter().map(|(id, flags)| fevent(id, flags)));
        }
    }

    /// Queues the readiness changes a handler reported, and takes note of
    /// the keys it woke.
    fn post(&mut self, ctx: &mut Context) {
        self.outbox.extend(
            ctx.take_events()
                .into_iter()
                .map(|(id, flags)| fevent(id, flags)),
        );
        self.woken.extend(ctx.take_woken());
    }

    /// Writes everything queued.
    fn flush(&mut self) -> io::Result<()> {
        while !self.outbox.is_empty() {
            let before = self.outbox.len();
            self.socket
                .write_responses(&mut self.outbox, SignalBehavior::Restart)
                .map_err(sys_io)?;
            if self.outbox.len() == before {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the scheme socket took no responses",
                ));
            }
        }
        Ok(())
    }
}

/// Takes the descriptors a client sent into this process.
fn obtain_fds(socket: &Socket, req: &SendFdRequest) -> Result<Vec<OwnedFd>, Errno> {
    let count = req.num_fds();
    if count == 0 {
        return Ok(Vec::new());
    }
    // Without MANUAL_FD the kernel picks the slots and writes their numbers
    // here.
    let mut raw = vec![usize::MAX; count];
    req.obtain_fd(socket, FobtainFdFlags::empty(), &mut raw)
        .map_err(|e| Errno(e.errno))?;
    // Own every descriptor before failing on any, so none leaks.
    let fds: Vec<io::Result<OwnedFd>> = raw
        .into_iter()
        .map(|fd| {
            set_cloexec(fd);
            owned_fd(fd)
        })
        .collect();
    fds.into_iter()
        .collect::<io::Result<_>>()
        .map_err(Errno::from)
}

fn fd_number(fd: RawFd) -> io::Result<usize> {
    usize::try_from(fd).map_err(|_| Errno::EBADF.into())
}

fn sys_io(e: syscall::Error) -> io::Error {
    io::Error::from_raw_os_error(e.errno)
}

/// A wake-up at the scheme's next deadline. The event queue cannot time out
/// (relibc ignores its timeout argument), so a handle of the kernel's time
/// scheme stands in: it becomes readable once the monotonic clock passes
/// the time written to it.
struct Timer {
    fd: libredox::Fd,
    /// The deadline last written, so an unchanged one is not written again.
    armed: Option<Instant>,
}

impl Timer {
    fn open() -> io::Result<Timer> {
        let fd = libredox::Fd::open(
            &format!("/scheme/time/{CLOCK_MONOTONIC}"),
            O_RDWR | O_CLOEXEC,
            0,
        )?;
        Ok(Timer { fd, armed: None })
    }

    fn arm(&mut self, deadline: Instant) -> io::Result<()> {
        if self.armed == Some(deadline) {
            return Ok(());
        }
        let now = libredox::call::clock_gettime(CLOCK_MONOTONIC)?;
        let at = monotonic_at(nanos(&now), Instant::now(), deadline);
        // Each write adds a wake-up; earlier ones still fire, and only cost a
        // needless re-run.
        self.fd.write(&syscall::data::TimeSpec::from_nanos(at))?;
        self.armed = Some(deadline);
        Ok(())
    }

    fn fired(&mut self) {
        self.armed = None;
    }
}

/// The monotonic clock's reading at `deadline`, given its reading `now_ns`
/// at `now`.
fn monotonic_at(now_ns: u128, now: Instant, deadline: Instant) -> u128 {
    now_ns + deadline.saturating_duration_since(now).as_nanos()
}

fn nanos(ts: &libredox::data::TimeSpec) -> u128 {
    let secs = u128::try_from(ts.tv_sec).unwrap_or(0);
    let subsec = u128::try_from(ts.tv_nsec).unwrap_or(0);
    secs * 1_000_000_000 + subsec
}

impl Done {
    pub(super) fn respond(self, op: Op) -> Response {
        match self {
            Done::Value(v) => Response::new(v.map_err(sys_error), op),
            // Ownership of an OtherScheme fd passes to the response: the
            // socket closes it once the response is written.
            Done::Opened(o) => Response::open_dup_like(o.map_err(sys_error), op),
        }
    }
}

fn fevent(id: HandleId, flags: EventFlags) -> Response {
    Response::post_fevent(id, flags.bits() as usize)
}

fn to_caller(ctx: &CallerCtx) -> Caller {
    Caller {
        pid: u32::try_from(ctx.pid).unwrap_or(u32::MAX),
        uid: ctx.uid,
        gid: ctx.gid,
    }
}

fn sys_error(e: Errno) -> syscall::Error {
    syscall::Error::new(e.0)
}
