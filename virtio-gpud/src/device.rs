//! The virtio-gpu device: feature negotiation, the control and cursor
//! queues, fences, capsets, and the command API built on them.
//!
//! Commands go out with [`Gpu::submit`] (placed in the ring, not yet
//! announced), [`Gpu::flush`] notifies the device once for everything
//! placed since, and [`Gpu::wait`] collects one completion while stashing
//! the others. [`Gpu::call`] does all three for one command and decodes the
//! typed response. A full ring makes the submitter wait for completions; it
//! never fails or drops a command.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use virtio_gpu_proto::{
    CapsetHeader, CapsetId, CommandType, CtrlHdr, CtxCreate, CtxDestroy, CtxId, DisplayOne,
    Features, FenceId, GetCapset, GetCapsetInfo, GetDisplayInfo, GetEdid, GpuConfig, Queue,
    Request, ResourceId, RespCapset, Response, ResponseType, ScanoutId, Wire, EVENT_DISPLAY,
    MAX_SCANOUTS,
};
use zerocopy::FromBytes;

use crate::command::{CommandQueue, Completion, Payload, QueueStats, RequestId, SubmitError};
use crate::dma::DmaPool;
use crate::error::Error;
use crate::fence::{Fences, Timeline};
use crate::queue::{QueueError, SplitQueue};
use crate::trace::Tracer;
use crate::transport::Transport;

/// Features this driver uses when the device offers them.
const WANTED_FEATURES: Features = Features::VIRGL
    .union(Features::EDID)
    .union(Features::RESOURCE_UUID)
    .union(Features::RESOURCE_BLOB)
    .union(Features::CONTEXT_INIT)
    .union(Features::RING_EVENT_IDX)
    .union(Features::VERSION_1);

/// What the device reports of one scanout's display.
#[derive(Clone, Debug, Default)]
pub struct ScanoutDisplay {
    /// Its GET_DISPLAY_INFO entry: preferred geometry and connection.
    pub info: DisplayOne,
    /// Its EDID (GET_EDID; at most the answer's 1024 bytes, as long as
    /// the device said), empty when the device gives none.
    pub edid: Vec<u8>,
}

/// Tunables for [`Gpu::new`].
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Control queue entries (clamped to what the device allows). Each
    /// command takes two, so this is twice the commands in flight.
    pub ctrl_queue_size: u16,
    /// Cursor queue entries.
    pub cursor_queue_size: u16,
    /// How long a command may go unanswered before the device is declared
    /// stuck.
    pub timeout: Duration,
    /// Use event-index notification suppression when offered.
    pub event_idx: bool,
    /// The largest fence id the device is given (see [`crate::fence`]).
    pub fence_wrap: u64,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            ctrl_queue_size: 256,
            cursor_queue_size: 16,
            timeout: Duration::from_secs(10),
            event_idx: true,
            fence_wrap: crate::fence::DEFAULT_WRAP,
        }
    }
}

/// A capability set the device offers (GET_CAPSET_INFO).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapsetInfo {
    /// Its id.
    pub id: CapsetId,
    /// Newest version the device can fill in.
    pub max_version: u32,
    /// Bytes of capset data.
    pub max_size: u32,
}

/// A command in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a pending command must be waited for"]
pub struct Pending {
    /// Request id, to wait on.
    pub id: RequestId,
    /// The command.
    pub command: CommandType,
    /// The fence it carries.
    pub fence: Option<FenceId>,
}

/// Counters for the device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GpuStats {
    /// The control queue.
    pub ctrl: QueueStats,
    /// The cursor queue.
    pub cursor: QueueStats,
    /// Times a submitter waited for ring space.
    pub ring_full_waits: u64,
    /// Traffic by command and answer type.
    pub traffic: Traffic,
}

/// What went through the queues, by type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Commands placed, by type.
    pub commands: std::collections::BTreeMap<CommandType, u64>,
    /// Error answers, by response type.
    pub errors: std::collections::BTreeMap<ResponseType, u64>,
    /// Fenced commands placed.
    pub fences: u64,
    /// Bytes of commands placed (request and payload).
    pub bytes: u64,
    /// The most commands in flight at once.
    pub in_flight_high: usize,
    /// Interrupts acknowledged.
    pub interrupts: u64,
}

/// A negotiated, running virtio-gpu device.
pub struct Gpu<T: Transport> {
    transport: T,
    pool: DmaPool,
    ctrl: CommandQueue,
    cursor: CommandQueue,
    features: Features,
    config: GpuConfig,
    capsets: Vec<CapsetInfo>,
    /// Each scanout's display, as the device last reported it.
    displays: Vec<ScanoutDisplay>,
    /// The device signalled a display change not yet asked about.
    display_query: bool,
    /// Times the displays were asked again after a change.
    display_changes: u64,
    capset_cache: HashMap<(CapsetId, u32), Arc<[u8]>>,
    fences: Fences,
    /// Completions drained while waiting for another, until claimed.
    done: HashMap<RequestId, Completion>,
    /// Requests nobody will claim: their completions are dropped.
    detached: HashSet<RequestId>,
    /// Every request completed since [`Gpu::take_finished`], claimed or
    /// not (for whoever tracks what is in flight).
    finished: Vec<RequestId>,
    /// Fenced commands the device failed, not yet reported.
    failed_fences: Vec<(Timeline, FenceId)>,
    next_resource: u32,
    next_ctx: u32,
    timeout: Duration,
    ring_full_waits: u64,
    traffic: Traffic,
    tracer: Tracer,
}

impl<T: Transport> std::fmt::Debug for Gpu<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("features", &self.features)
            .field("capsets", &self.capsets)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> Gpu<T> {
    /// Negotiates features, sets up both queues in `pool`, starts the
    /// device and reads its configuration and capset list.
    pub fn new(mut transport: T, pool: DmaPool, opts: &GpuOptions) -> Result<Self, Error> {
        let offered = Features::from_bits_retain(transport.device_features()?);
        if !offered.contains(Features::VERSION_1) {
            return Err(Error::MissingFeature("VIRTIO_F_VERSION_1"));
        }
        let mut wanted = WANTED_FEATURES;
        if !opts.event_idx {
            wanted.remove(Features::RING_EVENT_IDX);
        }
        let features = offered & wanted;
        transport.set_driver_features(features.bits())?;
        let event_idx = features.contains(Features::RING_EVENT_IDX);

        let mut queue = |queue: Queue, size: u16| -> Result<CommandQueue, Error> {
            let index = queue.index();
            let size = size.min(transport.max_queue_size(index)?);
            let vq = SplitQueue::new(&pool, index, size, event_idx)?;
            transport.setup_queue(index, size, vq.addrs())?;
            Ok(CommandQueue::new(vq, pool.clone()))
        };
        let ctrl = queue(Queue::Control, opts.ctrl_queue_size)?;
        let cursor = queue(Queue::Cursor, opts.cursor_queue_size)?;
        transport.driver_ok()?;
        let config = transport.read_config()?;

        let mut gpu = Gpu {
            transport,
            pool,
            ctrl,
            cursor,
            features,
            config,
            capsets: Vec::new(),
            displays: Vec::new(),
            display_query: false,
            display_changes: 0,
            capset_cache: HashMap::new(),
            fences: Fences::with_wrap(opts.fence_wrap),
            done: HashMap::new(),
            detached: HashSet::new(),
            finished: Vec::new(),
            failed_fences: Vec::new(),
            next_resource: 1,
            next_ctx: 1,
            timeout: opts.timeout,
            ring_full_waits: 0,
            traffic: Traffic::default(),
            tracer: Tracer::default(),
        };
        for index in 0..gpu.config.num_capsets.get() {
            let info = gpu.call(&GetCapsetInfo::new(index), &[], None)?;
            gpu.capsets.push(CapsetInfo {
                id: CapsetId::new(info.capset_id.get()),
                max_version: info.capset_max_version.get(),
                max_size: info.capset_max_size.get(),
            });
        }
        gpu.query_displays()?;
        info!(
            "virtio-gpu: features {:?}, {} scanouts, capsets {:?}",
            gpu.features,
            gpu.config.num_scanouts.get(),
            gpu.capsets
        );
        Ok(gpu)
    }

    /// The bytes of the device's answer to `request` (header first), as
    /// its layout gives them; GET_CAPSET's answer holds the capset too, of
    /// the size the device announced for it.
    pub fn response_len(&self, request: &Wire<impl AsRef<[u8]>>) -> usize {
        let l = request.layout();
        if l.ty != CommandType::GET_CAPSET {
            return l.response_len;
        }
        let id = GetCapset::read_from_prefix(request.bytes()).map_or(0, |(c, _)| c.capset_id.get());
        let size = self
            .capsets
            .iter()
            .find(|c| c.id.get() == id)
            .map_or(0, |c| c.max_size);
        l.response_len + size as usize
    }

    /// Whether `queue` has room for `commands` more commands now, the
    /// first fenced or not (after draining what the device has finished).
    pub fn has_room(&mut self, queue: Queue, fenced: bool, commands: usize) -> bool {
        let ready = |gpu: &mut Self| {
            gpu.queue_mut(queue).has_room(commands) && (!fenced || gpu.fences.can_stamp())
        };
        if ready(self) {
            return true;
        }
        self.poll();
        ready(self)
    }

    /// How long a command may go unanswered before the device counts as
    /// stuck.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The trace of this device's traffic.
    pub fn tracer(&mut self) -> &mut Tracer {
        &mut self.tracer
    }

    /// Negotiated features.
    pub fn features(&self) -> Features {
        self.features
    }

    /// The configuration space as read at start-up.
    pub fn config(&self) -> GpuConfig {
        self.config
    }

    /// Capsets the device offers.
    pub fn capsets(&self) -> &[CapsetInfo] {
        &self.capsets
    }

    /// The DMA pool, for resource backing.
    pub fn pool(&self) -> &DmaPool {
        &self.pool
    }

    /// Each scanout's display, as the device last reported it.
    pub fn displays(&self) -> &[ScanoutDisplay] {
        &self.displays
    }

    /// Times the displays were asked again after the device signalled a
    /// change.
    pub fn display_changes(&self) -> u64 {
        self.display_changes
    }

    /// Asks the device for each scanout's display: GET_DISPLAY_INFO, and
    /// GET_EDID of each scanout when EDID was negotiated.
    fn query_displays(&mut self) -> Result<(), Error> {
        // Asked only of a device with scanouts: a vhost-user backend with
        // no display to ask stalls its queue on this.
        let scanouts = (self.config.num_scanouts.get() as usize).min(MAX_SCANOUTS);
        if scanouts == 0 {
            return Ok(());
        }
        let info = self.call(&GetDisplayInfo::new(), &[], None)?;
        let mut displays: Vec<ScanoutDisplay> = info.pmodes[..scanouts]
            .iter()
            .map(|&info| ScanoutDisplay {
                info,
                edid: Vec::new(),
            })
            .collect();
        if self.features.contains(Features::EDID) {
            for (i, d) in displays.iter_mut().enumerate() {
                // A scanout whose EDID the device will not give has none;
                // the others keep theirs.
                match self.call(&GetEdid::new(ScanoutId::new(i as u32)), &[], None) {
                    Ok(resp) => d.edid = resp.edid().to_vec(),
                    Err(e) => warn!("scanout {i}: no EDID ({e})"),
                }
            }
        }
        self.displays = displays;
        Ok(())
    }

    /// Acts on a configuration change the device signalled: a display
    /// event (virtio 1.2 §5.7.4) is acknowledged and the displays asked
    /// again — at once, or, where the transport needs it
    /// ([`Transport::display_queries_need_idle`]), once no fenced command
    /// is in flight. Returns whether they were asked (they may have
    /// changed); call it after every interrupt and batch of completions.
    pub fn refresh_displays(&mut self) -> Result<bool, Error> {
        if self.transport.config_changed() {
            let events = self.transport.read_config()?.events_read.get();
            if events != 0 {
                self.transport.clear_config_events(events)?;
            }
            self.display_query |= events & EVENT_DISPLAY != 0;
        }
        let busy = || self.ctrl.fences_in_flight().next().is_some();
        if !self.display_query || (self.transport.display_queries_need_idle() && busy()) {
            return Ok(false);
        }
        self.display_query = false;
        self.display_changes += 1;
        self.query_displays()?;
        Ok(true)
    }

    /// Makes the display the transport serves ask for `size` on `scanout`
    /// (see [`Transport::request_display`]); the change is then handled as
    /// the device's own, by [`Gpu::refresh_displays`].
    pub fn request_display(
        &mut self,
        scanout: usize,
        size: Option<(u32, u32)>,
    ) -> Result<(), Error> {
        Ok(self.transport.request_display(scanout, size)?)
    }

    /// The transport (e.g. for the display it serves).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Consumes pending interrupt signals (for event loops watching the
    /// transport's interrupt fds).
    pub fn ack_interrupts(&mut self) -> Result<(), Error> {
        self.traffic.interrupts += 1;
        Ok(self.transport.ack_interrupts()?)
    }

    /// Contexts the host reported dead since the last call (see
    /// [`Transport::take_context_errors`]).
    pub fn take_context_errors(&mut self) -> Vec<CtxId> {
        self.transport
            .take_context_errors()
            .into_iter()
            .filter_map(CtxId::new)
            .collect()
    }

    /// Fence progress.
    pub fn fences(&self) -> &Fences {
        &self.fences
    }

    /// The timelines that moved since the last call, each with the newest
    /// fence it reached: what completions did, reported once per batch.
    pub fn take_fence_progress(&mut self) -> Vec<(Timeline, FenceId)> {
        self.fences.take_progress()
    }

    /// Counters.
    pub fn stats(&self) -> GpuStats {
        GpuStats {
            ctrl: self.ctrl.stats(),
            cursor: self.cursor.stats(),
            ring_full_waits: self.ring_full_waits,
            traffic: self.traffic.clone(),
        }
    }

    /// A resource id never used before on this device. Ids are not reused,
    /// as in Linux: virglrenderer can confuse a new resource with a stale
    /// reference to an old one of the same id.
    pub fn new_resource_id(&mut self) -> ResourceId {
        let id = ResourceId::new(self.next_resource).expect("resource ids start at 1");
        self.next_resource += 1;
        id
    }

    /// A pool of DMA memory in a region of its own (a client's memory,
    /// shareable with that client alone).
    pub fn new_pool(&mut self, len: usize) -> Result<DmaPool, Error> {
        Ok(DmaPool::new(self.transport.create_region(len)?))
    }

    /// Withdraws a pool from [`Gpu::new_pool`] from the device. Its
    /// resources must be released first: the device may no longer touch it.
    pub fn release_pool(&mut self, pool: DmaPool) -> Result<(), Error> {
        Ok(self.transport.release_region(pool.region())?)
    }

    /// A context id never used before on this device.
    pub fn new_context_id(&mut self) -> CtxId {
        let id = CtxId::new(self.next_ctx).expect("context ids start at 1");
        self.next_ctx += 1;
        id
    }

    fn queue_mut(&mut self, queue: Queue) -> &mut CommandQueue {
        match queue {
            Queue::Control => &mut self.ctrl,
            Queue::Cursor => &mut self.cursor,
        }
    }

    /// Places `request` (+ `payload`) in its queue, fenced on `fence` when
    /// given, without notifying the device. Waits for room when the ring is
    /// full.
    pub fn submit<R: Request>(
        &mut self,
        request: &R,
        payload: &[u8],
        fence: Option<Timeline>,
    ) -> Result<Pending, Error> {
        let response_len = std::mem::size_of::<R::Response>();
        self.submit_bytes(
            Wire::of(request),
            Payload::Inline(payload),
            response_len,
            fence,
        )
    }

    /// Like [`Gpu::submit`] for a request read from bytes, its payload
    /// inline or in DMA memory; `response_len` is the answer's full size.
    pub fn submit_bytes(
        &mut self,
        request: Wire<&[u8]>,
        payload: Payload<'_>,
        response_len: usize,
        fence: Option<Timeline>,
    ) -> Result<Pending, Error> {
        if matches!(fence, Some(Timeline::Ring { .. }))
            && !self.features.contains(Features::CONTEXT_INIT)
        {
            return Err(Error::MissingFeature("VIRTIO_GPU_F_CONTEXT_INIT"));
        }
        let (command, queue) = (request.ty(), request.queue());
        let fence = fence.or(places_fenced(command, false).then_some(Timeline::Global));
        let request = request.bytes();
        let deadline = Instant::now() + self.timeout;
        loop {
            let fences = &mut self.fences;
            let q = match queue {
                Queue::Control => &mut self.ctrl,
                Queue::Cursor => &mut self.cursor,
            };
            let fence = fence.map(|t| (t, fences));
            match q.submit(request, payload, response_len, fence) {
                Ok((id, fence)) => {
                    let t = &mut self.traffic;
                    *t.commands.entry(command).or_default() += 1;
                    t.fences += u64::from(fence.is_some());
                    t.bytes += (request.len() + payload.len()) as u64;
                    let in_flight = self.ctrl.in_flight() + self.cursor.in_flight();
                    t.in_flight_high = t.in_flight_high.max(in_flight);
                    if self.tracer.is_on() {
                        let inline = match payload {
                            Payload::Inline(bytes) => Some(bytes),
                            Payload::Device { .. } => None,
                        };
                        self.tracer.command(queue, id, request, inline, fence);
                    }
                    return Ok(Pending { id, command, fence });
                }
                Err(SubmitError::Queue(QueueError::Full { .. }) | SubmitError::FenceWrap) => {
                    // Back-pressure: let the device see what is queued and
                    // wait for it to hand descriptors back.
                    self.ring_full_waits += 1;
                    self.flush()?;
                    self.wait_progress(deadline, Some(command))?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Notifies the device of everything submitted since the last flush:
    /// at most one notification per queue.
    pub fn flush(&mut self) -> Result<(), Error> {
        for queue in [Queue::Control, Queue::Cursor] {
            if self.queue_mut(queue).needs_notify() {
                self.transport.notify(queue.index())?;
            }
        }
        Ok(())
    }

    /// Drains every finished command from both queues into the stash;
    /// returns how many were drained.
    pub fn poll(&mut self) -> usize {
        let mut out = Vec::new();
        self.ctrl.drain(&mut self.fences, &mut out);
        self.cursor.drain(&mut self.fences, &mut out);
        let n = out.len();
        for c in out {
            if let Err(crate::command::DeviceError::Response { response, .. }) = &c.result {
                *self.traffic.errors.entry(*response).or_default() += 1;
            }
            if self.tracer.is_on() {
                self.tracer.response(&c);
            }
            if let (Err(_), Some(fence)) = (&c.result, c.fence) {
                self.failed_fences.push(fence);
            }
            self.finished.push(c.id);
            if !self.detached.remove(&c.id) {
                self.done.insert(c.id, c);
            }
        }
        n
    }

    /// Nobody will wait for `pending`: its completion is dropped when it
    /// arrives (a device error is still logged, counted, and reported
    /// through [`Gpu::take_failed_fences`] if it was fenced).
    pub fn detach(&mut self, pending: &Pending) {
        if self.done.remove(&pending.id).is_none() {
            self.detached.insert(pending.id);
        }
    }

    /// The requests completed since the last call, claimed or not.
    pub fn take_finished(&mut self) -> Vec<RequestId> {
        std::mem::take(&mut self.finished)
    }

    /// Fenced commands the device answered with an error since the last
    /// call: their fences are done, but failed.
    pub fn take_failed_fences(&mut self) -> Vec<(Timeline, FenceId)> {
        std::mem::take(&mut self.failed_fences)
    }

    /// Takes a completion that is already drained, if it is.
    pub fn take_completion(&mut self, pending: &Pending) -> Option<Completion> {
        self.done.remove(&pending.id)
    }

    /// The fence points of the commands in flight, lowest first.
    pub fn fences_in_flight(&self) -> Vec<FenceId> {
        let mut points: Vec<FenceId> = self
            .ctrl
            .fences_in_flight()
            .chain(self.cursor.fences_in_flight())
            .collect();
        points.sort_unstable();
        points
    }

    /// Whether the device is gone for good (see [`Transport::device_lost`]).
    pub fn device_lost(&mut self) -> bool {
        self.transport.device_lost()
    }

    /// Commands submitted and not yet completed, over both queues.
    pub fn in_flight(&self) -> usize {
        self.ctrl.in_flight() + self.cursor.in_flight()
    }

    /// Flushes, then drains completions, blocking until at least one
    /// arrives when none has yet; returns how many were drained (0 only
    /// when nothing is in flight).
    pub fn wait_any(&mut self) -> Result<usize, Error> {
        self.flush()?;
        let n = self.poll();
        if n > 0 || self.in_flight() == 0 {
            return Ok(n);
        }
        let deadline = Instant::now() + self.timeout;
        self.wait_progress(deadline, None)
    }

    /// Blocks until something completes or `deadline` passes.
    fn wait_progress(
        &mut self,
        deadline: Instant,
        command: Option<CommandType>,
    ) -> Result<usize, Error> {
        loop {
            let n = self.poll();
            if n > 0 {
                return Ok(n);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout {
                    command,
                    after: self.timeout,
                });
            }
            self.transport.wait_interrupt(deadline - now)?;
        }
    }

    /// Flushes, then blocks until `pending` completes; other completions
    /// that arrive meanwhile stay stashed for their own waiters.
    pub fn wait(&mut self, pending: Pending) -> Result<Completion, Error> {
        self.flush()?;
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(c) = self.done.remove(&pending.id) {
                return Ok(c);
            }
            if self.in_flight() == 0 {
                self.poll();
                return self.done.remove(&pending.id).ok_or(Error::UnknownRequest);
            }
            self.wait_progress(deadline, Some(pending.command))?;
        }
    }

    /// Blocks until `fence` on `timeline` has signalled.
    pub fn wait_fence(&mut self, timeline: Timeline, fence: FenceId) -> Result<(), Error> {
        self.flush()?;
        let deadline = Instant::now() + self.timeout;
        while !self.fences.is_signaled(timeline, fence) {
            self.wait_progress(deadline, None)?;
        }
        Ok(())
    }

    /// Submits `request`, waits for it, and decodes its typed response.
    pub fn call<R: Request>(
        &mut self,
        request: &R,
        payload: &[u8],
        fence: Option<Timeline>,
    ) -> Result<R::Response, Error> {
        let pending = self.submit(request, payload, fence)?;
        let bytes = self.wait(pending)?.result?;
        decode::<R::Response>(R::TYPE, &bytes)
    }

    /// Creates a 3D context; with CONTEXT_INIT negotiated it is bound to
    /// `capset` (the ABI reference §1.5, `context_init`).
    pub fn create_context(&mut self, capset: CapsetId, debug_name: &str) -> Result<CtxId, Error> {
        if !self.features.contains(Features::VIRGL) {
            return Err(Error::MissingFeature("VIRTIO_GPU_F_VIRGL"));
        }
        let ctx = self.new_context_id();
        let context_init = if self.features.contains(Features::CONTEXT_INIT) {
            capset.get()
        } else {
            0
        };
        self.call(&CtxCreate::new(ctx, context_init, debug_name), &[], None)?;
        debug!("created context {ctx:?} ({debug_name})");
        Ok(ctx)
    }

    /// Destroys a 3D context and forgets its timelines.
    pub fn destroy_context(&mut self, ctx: CtxId) -> Result<(), Error> {
        self.call(&CtxDestroy::new(ctx), &[], None)?;
        self.forget_context(ctx);
        Ok(())
    }

    /// Forgets a context's timelines (its destruction is on its way).
    pub fn forget_context(&mut self, ctx: CtxId) {
        self.fences.forget_context(ctx);
    }

    /// The data of capset `id` at `version`, validated (ABI reference §5.7)
    /// and cached: capsets do not change while the device runs.
    pub fn capset(&mut self, id: CapsetId, version: u32) -> Result<Arc<[u8]>, Error> {
        if let Some(data) = self.capset_cache.get(&(id, version)) {
            return Ok(data.clone());
        }
        let info = *self
            .capsets
            .iter()
            .find(|c| c.id == id)
            .ok_or(Error::NoSuchCapset(id))?;
        let request = GetCapset::new(id, version);
        let size = std::mem::size_of::<RespCapset>() + info.max_size as usize;
        let pending = self.submit_bytes(Wire::of(&request), Payload::NONE, size, None)?;
        let bytes = self.wait(pending)?.result?;
        decode::<RespCapset>(GetCapset::TYPE, &bytes)?;
        if bytes.len() != size {
            return Err(Error::UnexpectedResponse {
                command: GetCapset::TYPE,
                expected: RespCapset::TYPE,
                expected_len: size,
                got: RespCapset::TYPE,
                len: bytes.len(),
            });
        }
        let data: Arc<[u8]> = bytes[std::mem::size_of::<RespCapset>()..].into();
        CapsetHeader::parse(id, &data).map_err(|source| Error::Capset { id, source })?;
        self.capset_cache.insert((id, version), data.clone());
        Ok(data)
    }
}

/// Decodes a success response of type `R` from `bytes`.
/// Whether `command` is placed fenced, whether its sender `asked` for that
/// or not: a CTX_DESTROY always is. virglrenderer's sync thread drops the
/// fence it is waiting on whenever any context is destroyed
/// (`vrend_free_fences_for_context` marks `fence_waiting` invalid whatever
/// context that fence is of), so another client's last fenced command would
/// never be answered and the device would look stuck; a fence placed after
/// the destroy retires every id up to its own, the dropped one with it.
pub fn places_fenced(command: CommandType, asked: bool) -> bool {
    asked || command == CommandType::CTX_DESTROY
}

fn decode<R: Response>(command: CommandType, bytes: &[u8]) -> Result<R, Error> {
    if std::mem::size_of::<R>() == 0 {
        // Commands the device does not answer (the cursor queue's).
        return Ok(R::new_zeroed());
    }
    let got = CtrlHdr::read_from_prefix(bytes)
        .map(|(h, _)| h.response_type())
        .unwrap_or(ResponseType(0));
    match R::read_from_prefix(bytes) {
        Ok((resp, _)) if got == R::TYPE => Ok(resp),
        _ => Err(Error::UnexpectedResponse {
            command,
            expected: R::TYPE,
            expected_len: std::mem::size_of::<R>(),
            got,
            len: bytes.len(),
        }),
    }
}
