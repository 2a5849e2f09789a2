//! `scheme:virtio-gpu`, the daemon's private scheme ([`gpu_session::api`] has
//! the protocol): sessions that forward raw commands through the object
//! table, the device's interrupts as event sources, and device fence
//! progress reported to syncd.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use log::{error, info, warn};
use scheme_seam::{
    read_bytes, read_text, Answer, Context, Errno, EventFlags, HandleId, Mapping, Opened, Park,
    Result, Scheme, WakeKey,
};
use sync_client::TimelineOwner;
use virtio_gpu_proto::{
    CapsetHeader, CapsetId, CommandType, CtrlHdr, CtxDestroy, ResourceUnref, Wire,
};
use zerocopy::{FromBytes, IntoBytes};

use crate::command::{DeviceError, Payload, SubmitError};
use crate::device::{places_fenced, Gpu, Pending};
use crate::fence::Timeline;
use crate::memory::{Domain, Memory, Quota};
use crate::objects::{IdKind, NewId, Objects, Released, SessionId, SessionRelease};
use crate::ratelimit::RateLimit;
use crate::reclaim::Reclaim;
use crate::shape::Limits;
use crate::trace;
use crate::transport::Transport;
use crate::warn_limited;
use crate::Error;
use gpu_session::api::{self, QueueHeader, QueueReply};

/// What a handle is open on.
#[derive(Debug)]
enum Node {
    /// `stats`: counters as text.
    Stats,
    /// `objects`: the object table as text.
    Objects,
    /// A client of the device, serving the clients of `Domain`.
    Session(SessionId, Domain),
    /// A reader of the trace (its reader id is the handle id).
    Trace,
    /// A scanout (its index; None: the cursor) as the display showed it
    /// when opened (a PAM image).
    Display(Option<usize>, Vec<u8>),
}

/// The source token of the transport's loss descriptor, past its
/// interrupts'.
const LOSS: usize = usize::MAX;

/// Woken when the device answered something or its health changed: what
/// parked QUEUEs (ring room) and WAITs (an answer) wait for.
const DEVICE: WakeKey = WakeKey(0);
/// Woken when trace readers got records.
const TRACE: WakeKey = WakeKey(1);

/// Whether the device answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Health {
    /// It does.
    Answering,
    /// A command went unanswered for the device timeout: every fence in
    /// flight failed (ETIMEDOUT), and so does every call needing the device
    /// until it has answered everything it had.
    Stuck,
    /// It is gone for good (the backend exited): every fence in flight
    /// failed (ENODEV), and so does every call needing the device.
    Lost,
}

/// A command waiting for its answer.
#[derive(Debug)]
struct Ticket {
    session: SessionId,
    pending: Pending,
    response_len: usize,
    /// When the command was placed: unanswered for the device timeout, the
    /// device is stuck and the wait fails instead of lasting forever.
    placed: Instant,
}

/// How often to try reaching syncd while it is not there.
const SYNCD_RETRY: Duration = Duration::from_secs(1);

/// The scheme over one device.
pub struct GpuScheme<T: Transport> {
    gpu: Gpu<T>,
    handles: HashMap<HandleId, Node>,
    next: HandleId,
    objects: Objects,
    tickets: HashMap<u64, Ticket>,
    next_ticket: u64,
    /// Sessions' memory, by the domain they serve.
    memory: Memory,
    /// What closed sessions and released resources leave to the device.
    reclaim: Reclaim,
    /// Waits failed because the device did not answer in time.
    stuck: u64,
    /// A QUEUE found its ring full since room last freed: the next room
    /// makes every session handle readable (see [`api::QUEUE`]).
    room_wanted: bool,
    /// QUEUEs parked (or refused, non-blocking) on a full ring, in all.
    ring_full_parks: u64,
    /// The device timeline in syncd, once syncd is reachable (it starts
    /// after this daemon).
    sync: Option<TimelineOwner>,
    sync_retry: Option<Instant>,
    /// Sessions can make the driver fail at will: such failures are logged
    /// at a limited rate.
    log: RateLimit,
    /// Where an in-memory stream is copied to be walked.
    scratch: Vec<u8>,
    /// Contexts the host reported dead, in all.
    contexts_lost: u64,
    health: Health,
    /// What restarts of the sessions' owner (drmd) took over.
    restarts: Restarts,
}

/// What restarts of a process that owns sessions (drmd) took over, as it
/// reports them ([`api::TAKEN_OVER`], [`api::RESTARTED`]).
#[derive(Debug, Default)]
struct Restarts {
    count: u64,
    last_micros: u64,
    /// Objects of sessions taken back and kept, and of sessions taken
    /// back to close, in the restart going on.
    adopted_now: u64,
    reclaimed_now: u64,
    /// The same for the last restart done, and in all.
    last: (u64, u64),
    total: (u64, u64),
}

impl Restarts {
    /// Any session may say so, any number of times: counts saturate.
    fn restarted(&mut self, micros: u64) {
        self.count = self.count.saturating_add(1);
        self.last_micros = micros;
        self.last = (self.adopted_now, self.reclaimed_now);
        self.total.0 = self.total.0.saturating_add(self.adopted_now);
        self.total.1 = self.total.1.saturating_add(self.reclaimed_now);
        (self.adopted_now, self.reclaimed_now) = (0, 0);
    }
}

fn u64_at(payload: &[u8], off: usize) -> Result<u64> {
    payload
        .get(off..off + 8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .ok_or(Errno::EINVAL)
}

/// What a driver error means to the session whose call met it: its own
/// malformed request (EINVAL), memory running out (ENOMEM), a device that
/// stopped answering (ETIMEDOUT), or a failing device (EIO).
fn errno_of(e: &Error) -> Errno {
    match e {
        Error::Submit(SubmitError::Malformed(_)) => Errno::EINVAL,
        Error::Submit(SubmitError::Dma(_)) | Error::Dma(_) => Errno::ENOMEM,
        Error::Timeout { .. } => Errno::ETIMEDOUT,
        _ => Errno::EIO,
    }
}

/// The host's texture limits, from its VIRGL2 capset. Reading it also
/// makes virglrenderer enforce them (it keeps its defaults until a capset
/// 2 has been filled once).
fn texture_limits<T: Transport>(gpu: &mut Gpu<T>) -> Limits {
    let caps = gpu.capset(CapsetId::VIRGL2, 2);
    let header = caps
        .as_deref()
        .ok()
        .and_then(|data| CapsetHeader::parse(CapsetId::VIRGL2, data).ok());
    let mut limits = Limits::default();
    if let (Some(h), Ok(data)) = (header, caps.as_deref()) {
        let t = h.texture_limits(data);
        limits.max_layers = t.max_texture_array_layers;
        limits.max_2d = t.max_texture_2d_size.unwrap_or(limits.max_2d);
        limits.max_3d = t.max_texture_3d_size.unwrap_or(limits.max_3d);
        limits.max_cube = t.max_texture_cube_size.unwrap_or(limits.max_cube);
    }
    log::info!("texture limits {limits:?}");
    limits
}

impl<T: Transport> GpuScheme<T> {
    /// Logs a driver error met on a session's behalf; its errno.
    fn device_errno(&mut self, e: &Error) -> Errno {
        warn_limited!(self.log, "device: {e}");
        errno_of(e)
    }

    /// Serves `gpu`, with `quota` for each domain's sessions and memory.
    pub fn new(mut gpu: Gpu<T>, quota: Quota) -> Self {
        let limits = texture_limits(&mut gpu);
        GpuScheme {
            gpu,
            handles: HashMap::new(),
            next: 0,
            objects: Objects::new(limits),
            tickets: HashMap::new(),
            next_ticket: 0,
            memory: Memory::new(quota),
            reclaim: Reclaim::default(),
            stuck: 0,
            room_wanted: false,
            ring_full_parks: 0,
            sync: None,
            sync_retry: None,
            log: RateLimit::default(),
            scratch: Vec::new(),
            contexts_lost: 0,
            restarts: Restarts::default(),
            health: Health::Answering,
        }
    }

    fn stats(&mut self) -> String {
        let gpu = &self.gpu;
        let stats = gpu.stats();
        let mut s = String::new();
        let _ = writeln!(s, "features {:?}", gpu.features());
        let _ = writeln!(
            s,
            "scanouts {} display_changes {}",
            gpu.config().num_scanouts.get(),
            gpu.display_changes()
        );
        for c in gpu.capsets() {
            let _ = writeln!(
                s,
                "capset {} version {} size {}",
                c.id.get(),
                c.max_version,
                c.max_size
            );
        }
        for (name, q) in [("ctrl", stats.ctrl), ("cursor", stats.cursor)] {
            let _ = writeln!(
                s,
                "{name} submitted {} completed {} errors {} notifies {} bogus {} \
                 suppressed_logs {}",
                q.submitted,
                q.completed,
                q.device_errors,
                q.notifies,
                q.bogus_used,
                q.suppressed_logs
            );
        }
        let _ = writeln!(s, "ring_full_waits {}", stats.ring_full_waits);
        let _ = writeln!(s, "ring_full_parks {}", self.ring_full_parks);
        let t = &stats.traffic;
        let _ = writeln!(
            s,
            "fences {} bytes {} in_flight_high {} interrupts {}",
            t.fences, t.bytes, t.in_flight_high, t.interrupts
        );
        for (ty, n) in &t.commands {
            let _ = writeln!(s, "command {ty} {n}");
        }
        for (ty, n) in &t.errors {
            let _ = writeln!(s, "error {ty} {n}");
        }
        let _ = writeln!(s, "in_flight {}", gpu.in_flight());
        let _ = writeln!(
            s,
            "fence_signaled {} fence_epochs {}",
            gpu.fences().last_signaled(Timeline::Global).get(),
            gpu.fences().epochs()
        );
        let _ = writeln!(s, "tickets {} stuck {}", self.tickets.len(), self.stuck);
        let health = match self.health {
            Health::Answering => "answering",
            Health::Stuck => "stuck",
            Health::Lost => "lost",
        };
        let _ = writeln!(s, "device {health}");
        let sessions = self
            .handles
            .values()
            .filter(|n| matches!(n, Node::Session(..)))
            .count();
        let _ = writeln!(s, "handles {} sessions {sessions}", self.handles.len());
        let _ = writeln!(
            s,
            "regions {} memory_used {} closing {} releases_waiting {}",
            self.memory.regions(),
            self.memory.used(),
            self.reclaim.closing(),
            self.reclaim.deferred()
        );
        let _ = writeln!(
            s,
            "contexts_lost {} lost_now {}",
            self.contexts_lost,
            self.objects.lost_contexts()
        );
        // Objects (resources, contexts, memory) each session holds, by
        // session: what an owner's restart adopts or reclaims.
        let mut sessions: Vec<SessionId> = self
            .handles
            .values()
            .filter_map(|n| match n {
                Node::Session(id, _) => Some(*id),
                _ => None,
            })
            .collect();
        sessions.sort_unstable();
        let held: Vec<String> = sessions
            .iter()
            .map(|&id| format!("{id}:{}", self.objects.held_by(id)))
            .collect();
        let _ = writeln!(s, "held_per_session {}", held.join(" "));
        let r = &self.restarts;
        let _ = writeln!(s, "device_resets {}", self.gpu.transport().resets());
        let _ = writeln!(
            s,
            "owner_restarts {} last_restart_us {} adopted_last {} reclaimed_last {} adopted_total {} reclaimed_total {}",
            r.count, r.last_micros, r.last.0, r.last.1, r.total.0, r.total.1
        );
        let (records, dropped) = self.gpu.tracer().counts();
        let _ = writeln!(s, "trace_records {records} trace_dropped {dropped}");
        s
    }

    fn queue(
        &mut self,
        session: SessionId,
        payload: &mut [u8],
        ctx: &mut Context,
    ) -> Result<Answer> {
        self.device_answers()?;
        // What the host has logged so far: a command for a context it
        // killed must not reach it.
        self.lose_contexts();
        let (head, _) = QueueHeader::read_from_prefix(payload).map_err(|_| Errno::EINVAL)?;
        let known = api::QUEUE_FENCED | api::QUEUE_DETACHED | api::QUEUE_STREAM_IN_MEMORY;
        if head.reserve > api::MAX_RESERVE || head.flags & !known != 0 {
            return Err(Errno::EINVAL);
        }
        // Read once here; everything below takes the parsed request.
        let request = Wire::parse(&mut payload[size_of::<QueueHeader>()..]).map_err(|e| {
            log::debug!("session {session}: {e:?}");
            Errno::EINVAL
        })?;
        // A full ring parks the request (before anything is admitted: it
        // runs again from the start) rather than holding the loop, and every
        // other session, until the device frees room.
        let queue = request.queue();
        let fenced = places_fenced(request.ty(), head.flags & api::QUEUE_FENCED != 0);
        if !self.gpu.has_room(queue, fenced, 1 + head.reserve as usize) {
            if let Err(e) = self.gpu.flush() {
                return Err(self.device_errno(&e));
            }
            if ctx.expired() {
                error!(
                    "device stuck: the {queue:?} ring stayed full (or its fences \
                     unfinished at a fence id wrap) for {:?}",
                    self.gpu.timeout()
                );
                self.stuck += 1;
                return Err(Errno::ETIMEDOUT);
            }
            self.room_wanted = true;
            self.ring_full_parks += 1;
            let until = Instant::now() + self.gpu.timeout();
            return Ok(Answer::Park(Park::on(DEVICE).until(until)));
        }
        let (mut request, stream) = if head.flags & api::QUEUE_STREAM_IN_MEMORY != 0 {
            self.stream_ref(session, request)?
        } else {
            (request, Payload::NONE)
        };
        // A stream in the session's memory is walked from a copy: what the
        // device reads afterwards is the session's to keep unchanged (its
        // own context is all a change could harm).
        let in_memory = match stream {
            Payload::Device { addr, len } => {
                let (buf, at) = self
                    .objects
                    .memory_at(session, addr, u64::from(len))
                    .ok_or(Errno::EACCES)?;
                self.scratch.resize(len as usize, 0);
                buf.read_bytes(at, &mut self.scratch);
                Some(self.scratch.as_slice())
            }
            Payload::Inline(_) => None,
        };
        let gpu = &mut self.gpu;
        let admitted = self
            .objects
            .admit(session, &mut request, in_memory, |kind| match kind {
                IdKind::Resource => NewId::Resource(gpu.new_resource_id()),
                IdKind::Context => NewId::Context(gpu.new_context_id()),
            })?;
        // Only once admitted: what is handed to the tracer goes with the
        // next command placed.
        self.gpu.tracer().set_origin(session);
        if self.gpu.tracer().is_on() {
            self.trace_stream(session, stream);
            self.trace_upload(&request);
        }
        let response_len = self.gpu.response_len(&request);
        let fence = fenced.then_some(Timeline::Global);
        let pending = self
            .gpu
            .submit_bytes(request.as_ref(), stream, response_len, fence);
        self.gpu.tracer().set_origin(0);
        let pending = match pending.and_then(|p| self.gpu.flush().map(|()| p)) {
            Ok(pending) => pending,
            Err(e) => return Err(self.device_errno(&e)),
        };
        self.reclaim.track(pending.id, session);
        let ticket = if head.flags & api::QUEUE_DETACHED != 0 {
            self.gpu.detach(&pending);
            0
        } else {
            self.next_ticket += 1;
            self.tickets.insert(
                self.next_ticket,
                Ticket {
                    session,
                    pending,
                    response_len,
                    placed: Instant::now(),
                },
            );
            self.next_ticket
        };
        let reply = QueueReply {
            ticket,
            fence: pending.fence.map_or(0, |f| f.get()),
            created: u64::from(admitted.created),
            answer_len: response_len as u64,
        };
        // Cannot fail: a payload that held a header and a request holds it.
        const _: () =
            assert!(size_of::<QueueReply>() <= size_of::<QueueHeader>() + size_of::<CtrlHdr>());
        reply.write_to_prefix(payload).map_err(|_| Errno::EINVAL)?;
        Ok(Answer::Ready(0))
    }

    /// Hands the tracer the bytes of a stream in the session's memory,
    /// which it cannot read itself.
    fn trace_stream(&mut self, session: SessionId, stream: Payload<'_>) {
        let Payload::Device { addr, len } = stream else {
            return;
        };
        let Some((buf, at)) = self.objects.memory_at(session, addr, u64::from(len)) else {
            return;
        };
        let mut bytes = vec![0u8; len as usize];
        buf.read_bytes(at, &mut bytes);
        self.gpu.tracer().provide_device_payload(bytes);
    }

    /// Hands the tracer what a TRANSFER_TO_HOST is about to read from its
    /// resource's backing, when a reader takes every byte.
    fn trace_upload(&mut self, request: &Wire<&mut [u8]>) {
        if !matches!(
            request.ty(),
            CommandType::TRANSFER_TO_HOST_2D | CommandType::TRANSFER_TO_HOST_3D
        ) || !self.gpu.tracer().wants_memory()
        {
            return;
        }
        let Some(res) = request.resource_id() else {
            return;
        };
        let contents = self.objects.backing_contents(res);
        self.gpu.tracer().provide_upload(contents);
    }

    /// Wakes the trace readers that got records.
    fn wake_readers(&mut self, ctx: &mut Context) {
        for id in self.gpu.tracer().take_woken() {
            ctx.post_event(id, EventFlags::READ);
            ctx.wake(TRACE);
        }
    }

    /// Splits a [`api::QUEUE_STREAM_IN_MEMORY`] request into the SUBMIT_3D
    /// fixed part and the stream it names, which must be the session's
    /// memory and exactly the command's size.
    fn stream_ref<'p>(
        &self,
        session: SessionId,
        request: Wire<&'p mut [u8]>,
    ) -> Result<(Wire<&'p mut [u8]>, Payload<'static>)> {
        if request.ty() != CommandType::SUBMIT_3D
            || request.bytes().len() != request.layout().request_len + size_of::<api::StreamRef>()
        {
            return Err(Errno::EINVAL);
        }
        let (fixed, tail) = request.split_payload();
        let (cmd, _) = virtio_gpu_proto::CmdSubmit::read_from_prefix(fixed.bytes())
            .map_err(|_| Errno::EINVAL)?;
        let (at, _) = api::StreamRef::read_from_prefix(tail).map_err(|_| Errno::EINVAL)?;
        // An empty stream has no bytes to point at (and an empty buffer
        // would stop the device's queue): it is sent without a reference.
        if at.pad != 0 || at.len == 0 || cmd.size.get() != at.len {
            return Err(Errno::EINVAL);
        }
        if !self
            .objects
            .owns_memory(session, at.addr, u64::from(at.len))
        {
            return Err(Errno::EACCES);
        }
        let stream = Payload::Device {
            addr: at.addr,
            len: at.len,
        };
        Ok((fixed, stream))
    }

    fn wait(
        &mut self,
        session: SessionId,
        payload: &mut [u8],
        ctx: &mut Context,
    ) -> Result<Answer> {
        let id = u64_at(payload, 0)?;
        let ticket = match self.tickets.get(&id) {
            Some(t) if t.session == session => t,
            _ => return Err(Errno::ENOENT),
        };
        if payload.len() < ticket.response_len.max(8) {
            return Err(Errno::EMSGSIZE);
        }
        let Some(done) = self.gpu.take_completion(&ticket.pending) else {
            if self.health == Health::Lost {
                self.tickets.remove(&id);
                return Err(Errno::ENODEV);
            }
            if self.health == Health::Answering && !ctx.expired() {
                let until = ticket.placed + self.gpu.timeout();
                return Ok(Answer::Park(Park::on(DEVICE).until(until)));
            }
            let t = self.tickets.remove(&id).expect("present");
            error!(
                "device stuck: {} unanswered for {:?}",
                t.pending.command,
                self.gpu.timeout()
            );
            self.gpu.detach(&t.pending);
            self.stuck += 1;
            return Err(Errno::ETIMEDOUT);
        };
        self.tickets.remove(&id);
        match done.result {
            Ok(bytes) => {
                payload[..bytes.len()].copy_from_slice(&bytes);
                Ok(Answer::Ready(bytes.len()))
            }
            Err(DeviceError::Response { response, .. }) => {
                let hdr = CtrlHdr {
                    ty: response.0.into(),
                    ..CtrlHdr::default()
                };
                payload[..24].copy_from_slice(hdr.as_bytes());
                Ok(Answer::Ready(24))
            }
            Err(DeviceError::ShortResponse { .. }) => Err(Errno::EIO),
        }
    }

    /// ALLOC: memory of the session's domain. Its device address is also
    /// its mmap offset on the session's handle.
    fn alloc(&mut self, session: SessionId, domain: Domain, payload: &mut [u8]) -> Result<usize> {
        let len = u64_at(payload, 0)?;
        if len == 0 || payload.len() < 16 {
            return Err(Errno::EINVAL);
        }
        let len = usize::try_from(len).map_err(|_| Errno::ENOMEM)?;
        let buf = self.memory.alloc(&mut self.gpu, domain, len)?;
        let addr = self.objects.add_memory(session, buf);
        payload[..8].copy_from_slice(&addr.to_le_bytes());
        payload[8..16].copy_from_slice(&addr.to_le_bytes());
        Ok(0)
    }

    fn info(&self, payload: &mut [u8]) -> Result<usize> {
        let capsets = self.gpu.capsets();
        let mut out = api::DeviceInfo {
            features: self.gpu.features().bits(),
            num_scanouts: self.gpu.config().num_scanouts.get(),
            num_capsets: capsets.len() as u32,
        }
        .as_bytes()
        .to_vec();
        for c in capsets {
            let entry = api::CapsetEntry {
                id: c.id.get(),
                max_version: c.max_version,
                max_size: c.max_size,
                pad: 0,
            };
            out.extend_from_slice(entry.as_bytes());
        }
        let dst = payload.get_mut(..out.len()).ok_or(Errno::EMSGSIZE)?;
        dst.copy_from_slice(&out);
        Ok(out.len())
    }

    fn displays(&self, payload: &mut [u8]) -> Result<usize> {
        let out: Vec<u8> = self
            .gpu
            .displays()
            .iter()
            .map(|d| d.info)
            .flat_map(|d| {
                let entry = api::DisplayEntry {
                    x: d.r.x.get(),
                    y: d.r.y.get(),
                    width: d.r.width.get(),
                    height: d.r.height.get(),
                    enabled: d.enabled.get(),
                    flags: d.flags.get(),
                };
                entry.as_bytes().to_vec()
            })
            .collect();
        let dst = payload.get_mut(..out.len()).ok_or(Errno::EMSGSIZE)?;
        dst.copy_from_slice(&out);
        Ok(out.len())
    }

    /// Releases everything a session owns on the device, except what
    /// another session still holds, without waiting for the device: its
    /// resources' UNREFs and contexts' destruction are sent detached, and
    /// its memory is freed once the device can no longer read it.
    fn release(&mut self, session: SessionId, domain: Domain) {
        let stale: Vec<u64> = self
            .tickets
            .iter()
            .filter(|(_, t)| t.session == session)
            .map(|(&id, _)| id)
            .collect();
        for id in stale {
            if let Some(t) = self.tickets.remove(&id) {
                self.gpu.detach(&t.pending);
            }
        }
        let SessionRelease {
            resources,
            contexts,
            memory,
        } = self.objects.take_session(session);
        let (n_resources, n_contexts) = (resources.len(), contexts.len());
        for r in resources {
            self.unref(session, r);
        }
        for c in &contexts {
            self.gpu.forget_context(*c);
            let destroy = Wire::owned(&CtxDestroy::new(*c));
            self.reclaim
                .send(&mut self.gpu, session, destroy, Vec::new(), true);
        }
        self.reclaim.close(session, memory);
        self.memory.close_session(domain);
        self.memory.withdraw_idle(&mut self.gpu);
        if n_resources > 0 || n_contexts > 0 {
            info!(
                "session {session} closed: releasing {n_resources} resources, {n_contexts} contexts"
            );
        }
    }

    /// Unrefs a resource nobody holds any more; its backing is freed once
    /// the device has answered.
    fn unref(&mut self, session: SessionId, r: Released) {
        let unref = Wire::owned(&ResourceUnref::new(r.id));
        self.reclaim
            .send(&mut self.gpu, session, unref, r.memory, false);
    }

    /// SHARE: payload = resource id (`u32`, pad to 8) in, token out.
    fn share(&mut self, session: SessionId, payload: &mut [u8]) -> Result<usize> {
        let res = u32::try_from(u64_at(payload, 0)?).map_err(|_| Errno::EINVAL)?;
        let token = self.objects.share(session, res)?;
        payload[..8].copy_from_slice(&token.to_le_bytes());
        Ok(0)
    }

    /// ADOPT: payload = token in; the resource id is the return value.
    fn adopt(&mut self, session: SessionId, payload: &[u8]) -> Result<usize> {
        let token = u64_at(payload, 0)?;
        Ok(self.objects.adopt(session, token)?.get() as usize)
    }

    /// RELEASE: payload = resource id (`u64`).
    fn release_resource(&mut self, session: SessionId, payload: &[u8]) -> Result<usize> {
        let res = u32::try_from(u64_at(payload, 0)?).map_err(|_| Errno::EINVAL)?;
        if let Some(r) = self.objects.release(session, res)? {
            self.unref(session, r);
        }
        Ok(0)
    }

    /// A session's call (see [`gpu_session::api`]).
    fn session_call(
        &mut self,
        session: SessionId,
        domain: Domain,
        payload: &mut [u8],
        metadata: &[u64],
        ctx: &mut Context,
    ) -> Result<Answer> {
        let ready = match *metadata.first().ok_or(Errno::EINVAL)? {
            api::QUEUE => return self.queue(session, payload, ctx),
            api::WAIT => {
                // A wait run again after an interrupt finds its answer
                // drained.
                self.gpu.poll();
                return self.wait(session, payload, ctx);
            }
            api::ALLOC => {
                self.device_answers()?;
                self.alloc(session, domain, payload)
            }
            api::FREE => {
                let addr = u64_at(payload, 0)?;
                self.objects.remove_memory(session, addr).map(|_| 0)
            }
            api::SHARE => self.share(session, payload),
            api::ADOPT => self.adopt(session, payload),
            api::RELEASE => self.release_resource(session, payload),
            api::TIMELINE => self
                .sync_owner()
                .map(|o| o.id() as usize)
                .ok_or(Errno::ENODEV),
            api::INFO => self.info(payload),
            api::TAKEN_OVER => {
                let vanished = payload.get(..4).ok_or(Errno::EINVAL)? != [0; 4];
                let held = self.objects.held_by(session);
                let r = &mut self.restarts;
                let now = match vanished {
                    true => &mut r.reclaimed_now,
                    false => &mut r.adopted_now,
                };
                *now = now.saturating_add(held as u64);
                Ok(held)
            }
            api::RESTARTED => {
                let micros = u64_at(payload, 0)?;
                self.restarts.restarted(micros);
                Ok(0)
            }
            api::DISPLAYS => self.displays(payload),
            api::EDID => {
                let scanout = payload.get(..4).ok_or(Errno::EINVAL)?;
                let scanout = u32::from_le_bytes(scanout.try_into().expect("4 bytes")) as usize;
                let edid = &self.gpu.displays().get(scanout).ok_or(Errno::ENOENT)?.edid;
                let dst = payload.get_mut(..edid.len()).ok_or(Errno::EMSGSIZE)?;
                dst.copy_from_slice(edid);
                Ok(edid.len())
            }
            api::CAPSET => {
                let word = |i: usize| -> Result<u32> {
                    let b = payload.get(i..i + 4).ok_or(Errno::EINVAL)?;
                    Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
                };
                let (id, version) = (word(0)?, word(4)?);
                let data = self
                    .gpu
                    .capset(virtio_gpu_proto::CapsetId::new(id), version)
                    .map_err(|e| match e {
                        Error::NoSuchCapset(_) => Errno::EINVAL,
                        e => {
                            warn_limited!(self.log, "device: {e}");
                            errno_of(&e)
                        }
                    })?;
                let n = data.len().min(payload.len());
                payload[..n].copy_from_slice(&data[..n]);
                Ok(data.len())
            }
            _ => Err(Errno::ENOTTY),
        };
        ready.map(Answer::Ready)
    }

    /// Connects to syncd if it is not yet, at most once a [`SYNCD_RETRY`].
    fn sync_owner(&mut self) -> Option<&TimelineOwner> {
        if self.sync.is_none() && self.sync_retry.is_none_or(|t| t.elapsed() >= SYNCD_RETRY) {
            self.sync_retry = Some(Instant::now());
            match TimelineOwner::create("virtio_gpu-controlq") {
                Ok(owner) => {
                    let done = self.gpu.fences().last_signaled(Timeline::Global).get();
                    if done > 0 {
                        let _ = owner.signal(done);
                    }
                    info!("device fences are syncd timeline {}", owner.id());
                    self.sync = Some(owner);
                }
                Err(e) => log::debug!("syncd not reachable yet: {e}"),
            }
        }
        self.sync.as_ref()
    }

    /// Takes every answer the device has returned and acts on it; returns
    /// how many there were.
    fn completions(&mut self, ctx: &mut Context) -> usize {
        // Drain everything: sources may be edge-triggered.
        let mut found = 0;
        loop {
            let n = self.gpu.poll();
            if n == 0 {
                break;
            }
            found += n;
        }
        self.lose_contexts();
        self.report_fences();
        self.reclaim_finished(ctx);
        self.refresh_displays(ctx);
        self.wake_readers(ctx);
        found
    }

    /// Asks the device about its displays again if it signalled a change
    /// (see [`Gpu::refresh_displays`]); every session handle then polls
    /// readable, so that drmd looks (see [`api::DISPLAYS`]).
    fn refresh_displays(&mut self, ctx: &mut Context) {
        match self.gpu.refresh_displays() {
            Ok(false) => {}
            Ok(true) => {
                info!(
                    "the displays changed: {:?}",
                    self.gpu
                        .displays()
                        .iter()
                        .map(|d| d.info)
                        .collect::<Vec<_>>()
                );
                self.wake_sessions(ctx);
            }
            Err(e) => warn_limited!(self.log, "asking the device about its displays: {e}"),
        }
    }

    /// Makes every session handle poll readable.
    fn wake_sessions(&self, ctx: &mut Context) {
        for (&id, node) in &self.handles {
            if matches!(node, Node::Session(..)) {
                ctx.post_event(id, EventFlags::READ);
            }
        }
    }

    /// Frees what waited for the commands the device finished, sends the
    /// releases that waited for ring room, and withdraws idle regions; wakes
    /// what waits for the device if it finished anything.
    fn reclaim_finished(&mut self, ctx: &mut Context) {
        let finished = self.gpu.take_finished();
        if finished.is_empty() {
            return;
        }
        ctx.wake(DEVICE);
        self.reclaim.finished(finished);
        if self.health == Health::Stuck && !self.reclaim.busy() {
            info!("the device answered everything it had: it answers again");
            self.health = Health::Answering;
        }
        self.reclaim.flush(&mut self.gpu);
        self.memory.withdraw_idle(&mut self.gpu);
        if std::mem::take(&mut self.room_wanted) {
            // Clients that were answered EAGAIN for a full ring (drmd's
            // non-blocking QUEUEs) learn of the room by polling a session.
            self.wake_sessions(ctx);
        }
    }

    /// Errs (without waiting) when the device does not answer now: ENODEV
    /// once it is lost, ETIMEDOUT while it is stuck.
    fn device_answers(&self) -> Result<()> {
        match self.health {
            Health::Answering => Ok(()),
            Health::Stuck => Err(Errno::ETIMEDOUT),
            Health::Lost => Err(Errno::ENODEV),
        }
    }

    /// The device is stuck or lost: says so, and fails every fence in
    /// flight at syncd at once, so that nobody waits on them for ever.
    fn declare(&mut self, health: Health, ctx: &mut Context) {
        let (errno, what) = match health {
            Health::Stuck => (
                Errno::ETIMEDOUT,
                "stuck: a command went unanswered for the device timeout",
            ),
            Health::Lost => (Errno::ENODEV, "lost: its backend is gone"),
            Health::Answering => return,
        };
        error!("device {what}; failing the fences in flight");
        if health == Health::Stuck {
            self.stuck += 1;
        }
        self.health = health;
        // Parked waits answer their error now, not at their deadlines.
        ctx.wake(DEVICE);
        let points = self.gpu.fences_in_flight();
        if let Some(owner) = self.sync_owner() {
            for point in points {
                // A point a later completion already covered cannot fail.
                let _ = owner.fail(point.get(), errno.0);
            }
        }
    }

    /// Takes note of the contexts the host reported dead: their sessions'
    /// next commands on them are EIO, as a lost context.
    fn lose_contexts(&mut self) {
        for ctx in self.gpu.take_context_errors() {
            if let Some(session) = self.objects.lose_context(ctx) {
                self.contexts_lost += 1;
                warn_limited!(
                    self.log,
                    "the host lost context {} of session {session}: its commands now fail with EIO",
                    ctx.get()
                );
            }
        }
    }

    /// Tells syncd what the device finished: failed fences first (a fence
    /// can only fail before its point is reached), then progress.
    fn report_fences(&mut self) {
        let failed = self.gpu.take_failed_fences();
        let progress = self.gpu.take_fence_progress();
        if failed.is_empty() && progress.is_empty() {
            return;
        }
        let Some(owner) = self.sync_owner() else {
            return;
        };
        let mut broken = false;
        for (_, fence) in failed {
            broken |= owner.fail(fence.get(), Errno::EIO.0).is_err();
        }
        for (timeline, fence) in progress {
            if timeline == Timeline::Global {
                broken |= owner.signal(fence.get()).is_err();
            }
        }
        if broken {
            warn!("lost syncd; reconnecting");
            self.sync = None;
        }
    }
}

impl<T: Transport> Scheme for GpuScheme<T> {
    fn open(&mut self, path: &str, _flags: usize, ctx: &mut Context) -> Result<Opened> {
        let path = path.trim_matches('/');
        let (name, option) = path.split_once('/').unwrap_or((path, ""));
        // The device itself (sessions), its traffic and its ownership are
        // for drmd (the stack's own user) and root debuggers only.
        let private = matches!(
            name,
            api::SESSION_PATH | api::TRACE_PATH | api::OBJECTS_PATH | api::DISPLAY_PATH
        );
        if private && !ctx.caller().is_privileged() {
            return Err(Errno::EACCES);
        }
        self.next += 1;
        let node = match (name, option) {
            (api::STATS_PATH, "") => Node::Stats,
            (api::OBJECTS_PATH, "") => Node::Objects,
            // A session serves the clients of a domain: its opener's uid,
            // or the one it names (drmd names its client's).
            (api::SESSION_PATH, domain) => {
                let domain = match domain {
                    "" => ctx.caller().uid,
                    uid => uid.parse().map_err(|_| Errno::ENOENT)?,
                };
                self.memory.open_session(domain)?;
                Node::Session(self.next as SessionId, domain)
            }
            (api::TRACE_PATH, option) => {
                let cap = match option {
                    "" => trace::DEFAULT_CAP,
                    "full" => usize::MAX,
                    cap => cap
                        .strip_prefix("cap=")
                        .and_then(|n| n.parse().ok())
                        .ok_or(Errno::EINVAL)?,
                };
                self.gpu.tracer().add_reader(self.next, cap);
                Node::Trace
            }
            (api::DISPLAY_PATH, what) => {
                let screen = self.gpu.transport().screen().ok_or(Errno::ENOENT)?;
                let (scanout, image) = match what {
                    "cursor" => (None, Some(screen.cursor_pam())),
                    scanout => {
                        let i = scanout.parse().map_err(|_| Errno::ENOENT)?;
                        (Some(i), screen.pam(i))
                    }
                };
                Node::Display(scanout, image.ok_or(Errno::ENOENT)?)
            }
            _ => return Err(Errno::ENOENT),
        };
        self.handles.insert(self.next, node);
        Ok(Opened::Handle(self.next))
    }

    fn read(
        &mut self,
        id: HandleId,
        buf: &mut [u8],
        offset: u64,
        _ctx: &mut Context,
    ) -> Result<Answer> {
        let text = match self.handles.get(&id).ok_or(Errno::EBADF)? {
            Node::Stats => self.stats(),
            Node::Objects => self.objects.describe(),
            // Reading a session acknowledges its readiness (ring room after
            // an EAGAIN): there is nothing to read.
            Node::Session(..) => return Ok(Answer::Ready(0)),
            // A stream: offsets mean nothing; an empty trace parks the read.
            Node::Trace => {
                return Ok(match self.gpu.tracer().read(id, buf) {
                    0 if !buf.is_empty() => Answer::Park(Park::on(TRACE)),
                    n => Answer::Ready(n),
                });
            }
            Node::Display(_, image) => return Ok(Answer::Ready(read_bytes(image, buf, offset))),
        };
        Ok(Answer::Ready(read_text(&text, buf, offset)))
    }

    fn write(
        &mut self,
        id: HandleId,
        buf: &[u8],
        _offset: u64,
        ctx: &mut Context,
    ) -> Result<usize> {
        // `display/N` takes what its monitor asks for: `WxH`, or `off`.
        let &Node::Display(Some(scanout), _) = self.handles.get(&id).ok_or(Errno::EBADF)? else {
            return Err(Errno::EBADF);
        };
        let text = std::str::from_utf8(buf).map_err(|_| Errno::EINVAL)?.trim();
        let size = match text {
            "off" => None,
            size => {
                let (w, h) = size.split_once('x').ok_or(Errno::EINVAL)?;
                let parse = |v: &str| v.parse::<u32>().ok().filter(|v| (1..=16384).contains(v));
                Some((
                    parse(w).ok_or(Errno::EINVAL)?,
                    parse(h).ok_or(Errno::EINVAL)?,
                ))
            }
        };
        self.gpu.request_display(scanout, size).map_err(|e| {
            log::debug!("display/{scanout}: {e}");
            Errno::ENOENT
        })?;
        self.refresh_displays(ctx);
        Ok(buf.len())
    }

    fn call(
        &mut self,
        id: HandleId,
        payload: &mut [u8],
        metadata: &[u64],
        ctx: &mut Context,
    ) -> Result<Answer> {
        let &Node::Session(session, domain) = self.handles.get(&id).ok_or(Errno::EBADF)? else {
            return Err(Errno::ENOTTY);
        };
        let result = self.session_call(session, domain, payload, metadata, ctx);
        // A call may have drained completions (WAIT polls the device, a
        // full ring waits in QUEUE) whose interrupt will not come again:
        // their fences are reported now, not at the next interrupt.
        self.report_fences();
        self.lose_contexts();
        self.reclaim_finished(ctx);
        self.wake_readers(ctx);
        result
    }

    fn fevent(
        &mut self,
        id: HandleId,
        _flags: EventFlags,
        _ctx: &mut Context,
    ) -> Result<EventFlags> {
        match self.handles.get(&id).ok_or(Errno::EBADF)? {
            Node::Trace if self.gpu.tracer().readable(id) => Ok(EventFlags::READ),
            _ => Ok(EventFlags::empty()),
        }
    }

    fn mmap(
        &mut self,
        id: HandleId,
        offset: u64,
        len: usize,
        _ctx: &mut Context,
    ) -> Result<Mapping> {
        let &Node::Session(session, _) = self.handles.get(&id).ok_or(Errno::EBADF)? else {
            return Err(Errno::ENODEV);
        };
        // The offset is an allocation's device address: only one of the
        // session's own is mapped, and only it.
        let buf = self.objects.memory(session, offset).ok_or(Errno::EACCES)?;
        if len > buf.len() {
            return Err(Errno::EINVAL);
        }
        let region = buf.region();
        Ok(Mapping {
            region: region.shm().clone(),
            offset: (offset - region.device_addr()) as usize,
            writable: true,
        })
    }

    fn close(&mut self, id: HandleId, ctx: &mut Context) {
        match self.handles.remove(&id) {
            Some(Node::Session(session, domain)) => {
                self.release(session, domain);
                self.wake_readers(ctx);
            }
            Some(Node::Trace) => self.gpu.tracer().remove_reader(id),
            _ => {}
        }
    }

    fn on_deadline(&mut self, ctx: &mut Context) {
        if self.health == Health::Lost {
            return;
        }
        if self.gpu.device_lost() {
            return self.declare(Health::Lost, ctx);
        }
        let timeout = self.gpu.timeout();
        let expired = |s: &Self| s.reclaim.oldest().is_some_and(|at| at.elapsed() >= timeout);
        if self.health != Health::Answering || !expired(self) {
            return;
        }
        // Before calling the device stuck, look at what it returned: an
        // answer whose interrupt went missing is an answer all the same.
        let found = self.completions(ctx);
        if found > 0 {
            warn!("{found} answers the device gave without an interrupt");
        }
        if expired(self) {
            self.declare(Health::Stuck, ctx);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        // The watchdog: the oldest command in flight unanswered for the
        // device timeout makes the device stuck. (Parked WAITs and QUEUEs
        // carry their own deadlines.)
        match self.health {
            Health::Answering => self.reclaim.oldest().map(|at| at + self.gpu.timeout()),
            _ => None,
        }
    }

    fn sources(&self) -> Vec<(RawFd, usize)> {
        let transport = self.gpu.transport();
        let loss = transport.loss_fd().map(|fd| (fd, LOSS));
        let interrupts = transport.interrupt_fds().into_iter().enumerate();
        interrupts.map(|(i, fd)| (fd, i)).chain(loss).collect()
    }

    fn on_source(&mut self, token: usize, ctx: &mut Context) {
        if token == LOSS {
            if self.health != Health::Lost && self.gpu.device_lost() {
                self.declare(Health::Lost, ctx);
            }
            return;
        }
        if let Err(e) = self.gpu.ack_interrupts() {
            warn!("acknowledging interrupts: {e}");
        }
        self.completions(ctx);
    }
}
