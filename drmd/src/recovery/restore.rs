//! Taking a dead instance's handles back: each DRM file from its journaled
//! state and the descriptors kept for it, under the id it had, so every
//! client goes on with the handles, objects, context and display it had.
//! Nothing is sent to the device to rebuild them: the device still holds
//! every resource and context, because their sessions never closed.
//!
//! An EXECBUFFER the dead instance journaled as about to be queued is
//! settled by its session: the answer to its queue request is in the
//! session's stream if, and only if, virtio-gpud took it ([`Session::resume`]).
//! Found, the submit is published as it would have been and its client
//! gets that answer; not found, its arena space is taken back and the
//! client is told to retry (EINTR), which submits it once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use ::log::{info, warn};
use drm_uapi::virtgpu::ExecbufferHeader;
use gpu_session::api::QueueReply;
use gpu_session::Session;
use scheme_seam::token::Tokens;
use scheme_seam::{HandleId, Keeper};
use sync_client::{SyncobjTable, TimelineOwner};
use zerocopy::{FromBytes, IntoBytes};

use super::record::{FileState, Key, State, Submit};
use super::{fences_name, in_fences_name, session_name, syncobjs_name};
use crate::backend::DeviceSession;
use crate::device::Device;
use crate::events::Events;
use crate::file::{Arena, DrmFile, Restored};
use crate::gem::{Gem, Names};
use crate::handle::{Handle, Handles};
use crate::ioctl::virtgpu::{self, Signals};
use crate::kms::{Kms, Monitor};
use crate::master::Masters;

/// What a dead instance left, rebuilt.
pub struct Rebuilt {
    /// Every handle that came back.
    pub handles: Handles,
    /// dma-buf tokens.
    pub tokens: Tokens<HandleId>,
    /// Masters.
    pub masters: Masters,
    /// GEM_FLINK names.
    pub names: Names,
    /// The display.
    pub kms: Kms,
    /// The next mmap offset.
    pub offsets: u64,
    /// Answers to requests the dead instance took, by file.
    pub interrupted: HashMap<HandleId, (u32, Vec<u8>)>,
    /// Objects taken back.
    pub objects: usize,
    /// Files the journal lists that could not come back (their kept
    /// descriptors are let go of, which frees what they held).
    pub lost: usize,
}

/// Rebuilds what `state` says, with the descriptors in `keeper`, on
/// `device` (whose control session is the kept one) showing `monitors`.
pub fn rebuild(
    state: State,
    keeper: &mut Keeper,
    device: &mut Device,
    monitors: &[Monitor],
) -> Rebuilt {
    let now = Instant::now();
    let mut lost = 0;
    // Sessions first: objects are mapped again through them.
    let mut sessions: BTreeMap<u64, (Box<dyn DeviceSession>, Vec<QueueReply>)> = BTreeMap::new();
    for &id in state.files.keys() {
        let taken = keeper
            .take(&session_name(id as HandleId))
            .ok_or_else(|| std::io::Error::other("not kept"))
            .and_then(Session::resume);
        match taken {
            Ok((session, stale)) => {
                sessions.insert(id, (Box::new(session), stale));
            }
            Err(e) => {
                warn!("file {id}: its session: {e}; it does not come back");
                lost += 1;
            }
        }
    }
    let objects = map_objects(&state, &sessions, device.export_holder());
    let object = |key: Key| objects.get(&key).cloned();
    let mut timeline = |n: usize| -> Option<TimelineOwner> {
        let fd = keeper.take(&fences_name(n))?;
        TimelineOwner::resume(fd)
            .map_err(|e| warn!("output {n}: its flip timeline: {e}"))
            .ok()
    };
    let kms = match &state.kms {
        Some(k) => Kms::restore(monitors, k, &object, &mut timeline, now),
        None => Kms::new(monitors),
    };

    let mut handles = Handles::default();
    let mut interrupted = HashMap::new();
    // Every object waits for all the work drmd knew of: what used each
    // was not journaled per submit.
    let mut newest = 0;
    let mut files = Vec::new();
    for (id, f) in state.files {
        let Some((session, stale)) = sessions.remove(&id) else {
            continue;
        };
        let hid = id as HandleId;
        match file(hid, &f, session, &stale, keeper, &object, &kms) {
            Ok((file, answer, fence)) => {
                newest = newest.max(fence);
                if let Some(a) = answer {
                    interrupted.insert(hid, a);
                }
                files.push((hid, file));
            }
            Err(e) => {
                warn!("file {id}: {e}; it does not come back");
                lost += 1;
            }
        }
    }
    for gem in objects.values() {
        gem.set_fence(newest);
    }
    for (id, file) in files {
        handles.restore(id, Handle::File(Box::new(file)));
    }
    let mut tokens = Tokens::default();
    for (id, (key, token)) in state.dma_bufs {
        let Some(gem) = object(key) else {
            warn!("dma-buf {id}: its object was not mapped again; it does not come back");
            continue;
        };
        handles.restore(id as HandleId, Handle::DmaBuf(gem));
        if let Some(t) = token {
            tokens.restore(id as HandleId, t);
        }
    }
    for id in state.stats {
        handles.restore(id as HandleId, Handle::Stats);
    }
    handles.continue_from(state.marks.handles as HandleId);
    let mut masters = state.masters.unwrap_or_default();
    for id in masters.files() {
        if handles.file(id).is_err() {
            masters.close(id);
        }
    }
    let names = Names::restore(
        state
            .names
            .0
            .iter()
            .filter_map(|(&n, &k)| Some((n, Arc::downgrade(objects.get(&k)?)))),
        state.names.1,
    );
    info!(
        "taken back from the dead instance: {} handles, {} objects, {} answers settled; {lost} files lost",
        handles.ids().len(),
        objects.len(),
        interrupted.len()
    );
    Rebuilt {
        handles,
        tokens,
        masters,
        names,
        kms,
        offsets: state.marks.offsets,
        interrupted,
        objects: objects.len(),
        lost,
    }
}

/// Each object mapped again through a session that can: the one that
/// allocated its backing, which is among the files that name it.
fn map_objects(
    state: &State,
    sessions: &BTreeMap<u64, (Box<dyn DeviceSession>, Vec<QueueReply>)>,
    holder: &Arc<dyn DeviceSession>,
) -> BTreeMap<Key, Arc<Gem>> {
    let mut objects = BTreeMap::new();
    for (&key, o) in &state.objects {
        let holders = state
            .files
            .iter()
            .filter(|(_, f)| f.handles.values().any(|&k| k == key))
            .filter_map(|(id, _)| sessions.get(id));
        let map = holders
            .into_iter()
            .find_map(|(s, _)| s.map(o.backing, o.size as usize).ok());
        match map {
            // The control session holds exported objects still.
            Some(map) => {
                let gem = Gem::restore(key, o, Arc::new(map), holder);
                objects.insert(key, Arc::new(gem));
            }
            None => warn!("object {key:#x}: no session maps its backing; it does not come back"),
        }
    }
    objects
}

/// A kept syncobj table, taken back.
fn table(keeper: &mut Keeper, name: &str, nonblocking: bool) -> Result<SyncobjTable, String> {
    let fd = keeper.take(name).ok_or(format!("{name} was not kept"))?;
    SyncobjTable::resume(fd, nonblocking).map_err(|e| format!("{name}: {e}"))
}

/// A file, its answer to the request its dead instance was running, and
/// the newest device fence it knew of.
type File = (DrmFile, Option<(u32, Vec<u8>)>, u64);

/// File `id` as `f` says, over its kept `session` (whose unread answers
/// are `stale`).
fn file(
    id: HandleId,
    f: &FileState,
    session: Box<dyn DeviceSession>,
    stale: &[QueueReply],
    keeper: &mut Keeper,
    object: &dyn Fn(Key) -> Option<Arc<Gem>>,
    kms: &Kms,
) -> Result<File, String> {
    let mut bos = HashMap::new();
    for (&handle, &key) in &f.handles {
        let gem = object(key).ok_or(format!("the object of its handle {handle} is gone"))?;
        bos.insert(handle, gem);
    }
    let mut header = f.header.clone();
    let syncobjs = match header.syncobjs {
        true => Some(table(keeper, &syncobjs_name(id), true)?),
        false => None,
    };
    let in_fences = match header.in_fences {
        Some(h) => Some((table(keeper, &in_fences_name(id), false)?, h)),
        None => None,
    };
    let mut arena = header
        .arena
        .map(|a| Arena::restore(a, &*session))
        .transpose()
        .map_err(|e| format!("its arena: {e}"))?;
    let mut answer = f.answered.clone();
    let mut newest = header.arena.map_or(0, |a| a.last_fence);
    // The submit's own reply is the only fenced one it could have left.
    let reached = f.submit.as_ref().and_then(|(tag, submit)| {
        let reply = stale.iter().rev().find(|r| r.fence != 0)?;
        Some((*tag, submit, reply.fence))
    });
    match &reached {
        Some((_, submit, _)) => {
            header.ctx = Some(submit.ctx);
            if let (Some(end), Some(arena)) = (submit.placed, arena.as_mut()) {
                arena.resume_at(end as usize);
            }
        }
        // Never queued: its placement is taken back (the journaled head
        // is from before it) and the client retries it.
        None if f.submit.is_some() => {
            info!("file {id}: its interrupted EXECBUFFER never reached the device: retried")
        }
        None => {}
    }
    let events = Events::restore(f.events.clone(), kms.promised_to(id));
    let parts = Restored {
        session,
        bos,
        syncobjs,
        arena,
        in_fences,
        out_fences: f.out_fences.clone(),
        events,
    };
    let mut file = DrmFile::restore(&header, parts);
    if let Some((tag, submit, fence)) = reached {
        info!("file {id}: its interrupted EXECBUFFER reached the device (fence {fence}): answered");
        answer = Some((tag, published(&mut file, submit, fence)));
        newest = newest.max(fence);
    }
    Ok((file, answer, newest))
}

/// The dead instance's publish stage for `submit`, which the device took
/// with `fence`: the start of the ioctl's payload it would have answered.
fn published(file: &mut DrmFile, submit: &Submit, fence: u64) -> Vec<u8> {
    let Ok(mut e) = ExecbufferHeader::read_from_bytes(&submit.header) else {
        return submit.header.clone();
    };
    let signals = Signals {
        timeline: submit.timeline,
        outs: &submit.outs,
        resets: &submit.resets,
    };
    virtgpu::publish(file, &mut e, submit.placed.is_some(), signals, fence);
    e.as_bytes().to_vec()
}
