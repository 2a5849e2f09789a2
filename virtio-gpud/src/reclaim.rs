//! What a closing session (or a released resource) leaves for the device
//! to undo, sent without waiting, and memory freed only once the device can
//! no longer read it.
//!
//! Releasing used to make synchronous device round trips inside the one
//! serving loop (up to the device timeout each with a stuck device), and to
//! free a closed session's memory while commands of it the device had not
//! finished — a detached SUBMIT_3D reading its stream in place — could
//! still read it. Now each RESOURCE_UNREF and CTX_DESTROY is queued
//! detached (or kept until the ring has room), a released resource's
//! backing is freed when its UNREF is answered, and the rest of a closed
//! session's memory when none of its commands is in flight.
//!
//! A closed session's CTX_DESTROY also waits for its commands: virgl loses
//! the fences of a context destroyed before they retire (a fenced submit
//! then never completes and the device looks stuck), so the context goes
//! only once the device has answered everything of the session's. (It is
//! fenced too, for the other sessions' sake: see `device::places_fenced`.)

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use virtio_gpu_proto::{Queue, Wire};

use crate::command::{Payload, RequestId};
use crate::device::{places_fenced, Gpu};
use crate::dma::DmaBuf;
use crate::objects::SessionId;
use crate::transport::Transport;

/// A release command for the device, and the memory it frees once done.
#[derive(Debug)]
struct Release {
    session: SessionId,
    request: Wire<Vec<u8>>,
    memory: Vec<DmaBuf>,
    /// Sent only once none of the session's commands is in flight.
    after_commands: bool,
}

/// Commands in flight per session, and memory waiting for them.
#[derive(Debug, Default)]
pub struct Reclaim {
    /// Every command in flight: whose (none for a release), and since when.
    in_flight: HashMap<RequestId, (Option<SessionId>, Instant)>,
    /// Each session's own commands in flight (releases not counted).
    per_session: HashMap<SessionId, usize>,
    /// Memory of closed sessions, freed once none of their commands is in
    /// flight.
    closing: HashMap<SessionId, Vec<DmaBuf>>,
    /// Memory a release command frees once answered.
    after: HashMap<RequestId, Vec<DmaBuf>>,
    /// Release commands waiting for room in the ring, or for their
    /// session's commands.
    deferred: VecDeque<Release>,
}

impl Reclaim {
    /// `request`, a command of `session`'s, is in flight.
    pub fn track(&mut self, request: RequestId, session: SessionId) {
        self.in_flight
            .insert(request, (Some(session), Instant::now()));
        *self.per_session.entry(session).or_default() += 1;
    }

    /// Takes note of commands the device finished; frees what waited for
    /// them.
    pub fn finished(&mut self, done: impl IntoIterator<Item = RequestId>) {
        for id in done {
            drop(self.after.remove(&id));
            let Some((Some(session), _)) = self.in_flight.remove(&id) else {
                continue;
            };
            let left = self.per_session.get_mut(&session).expect("tracked");
            *left -= 1;
            if *left == 0 {
                self.per_session.remove(&session);
                drop(self.closing.remove(&session));
            }
        }
    }

    /// `session` closed, leaving `memory` (backing nothing alive): freed at
    /// once if none of its commands is in flight, else when none is.
    pub fn close(&mut self, session: SessionId, memory: Vec<DmaBuf>) {
        if self.per_session.contains_key(&session) {
            self.closing.entry(session).or_default().extend(memory);
        }
    }

    /// Sends `request` (unanswered by anyone) on `session`'s behalf,
    /// freeing `memory` once the device has answered it; kept until the
    /// ring has room if it has none now, and with `after_commands` until
    /// none of the session's commands is in flight.
    pub fn send<T: Transport>(
        &mut self,
        gpu: &mut Gpu<T>,
        session: SessionId,
        request: Wire<Vec<u8>>,
        memory: Vec<DmaBuf>,
        after_commands: bool,
    ) {
        self.deferred.push_back(Release {
            session,
            request,
            memory,
            after_commands,
        });
        self.flush(gpu);
    }

    /// Sends the release commands that may go, as far as the ring has
    /// room; the others keep their order.
    pub fn flush<T: Transport>(&mut self, gpu: &mut Gpu<T>) {
        let mut waiting = VecDeque::new();
        while let Some(r) = self.deferred.pop_front() {
            if !gpu.has_room(Queue::Control, places_fenced(r.request.ty(), false), 1) {
                self.deferred.push_front(r);
                break;
            }
            if r.after_commands && self.per_session.contains_key(&r.session) {
                waiting.push_back(r);
                continue;
            }
            let response = gpu.response_len(&r.request);
            gpu.tracer().set_origin(r.session);
            let sent = gpu.submit_bytes(r.request.as_ref(), Payload::NONE, response, None);
            gpu.tracer().set_origin(0);
            match sent {
                Ok(pending) => {
                    gpu.detach(&pending);
                    self.in_flight.insert(pending.id, (None, Instant::now()));
                    self.after.insert(pending.id, r.memory);
                }
                Err(e) => {
                    // Not sent (no memory for the command itself): tried
                    // again at the next flush, its memory kept till then.
                    let command = r.request.ty();
                    log::warn!("releasing for session {}: {command}: {e}", r.session);
                    self.deferred.push_front(r);
                    break;
                }
            }
        }
        waiting.append(&mut self.deferred);
        self.deferred = waiting;
        if let Err(e) = gpu.flush() {
            log::warn!("notifying the device of releases: {e}");
        }
    }

    /// When the oldest command in flight was placed.
    pub fn oldest(&self) -> Option<Instant> {
        self.in_flight.values().map(|&(_, at)| at).min()
    }

    /// Whether any command is in flight.
    pub fn busy(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Closed sessions whose memory waits for their commands.
    pub fn closing(&self) -> usize {
        self.closing.len()
    }

    /// Release commands waiting for ring room.
    pub fn deferred(&self) -> usize {
        self.deferred.len()
    }
}
