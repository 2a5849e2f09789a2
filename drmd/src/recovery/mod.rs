//! Surviving drmd's own death: what a supervised drmd journals as its
//! state changes, and how the next instance takes every client's file
//! back from it (`docs/RESTART.md`).
//!
//! Under a supervisor with a store ([`scheme_seam::Keeper`]), drmd keeps
//! there every descriptor a client's state lives behind — each file's
//! virtio-gpud session (its resources, context and memory), its syncobj
//! tables in syncd, drmd's control session (exported objects), each
//! output's flip timeline — so none of them closes when drmd dies, and a
//! log of [`record::Record`]s that says what each is: files and their
//! GEM handles, objects, dma-bufs, masters, names and the display. After
//! every request drmd compares its state with what the log says
//! ([`Recovery::sync`]) and appends what changed; an EXECBUFFER also
//! journals its stage before it is queued, so that it is never submitted
//! twice. The next instance replays the log ([`inherited`]) and rebuilds
//! each handle under its old id ([`restore`]).

pub mod log;
pub mod record;
pub mod restore;

use std::collections::HashMap;

use ::log::warn;
use scheme_seam::token::Tokens;
use scheme_seam::{HandleId, Keeper};

use self::log::Log;
use self::record::{Key, Marks, Record, State, Submit};
use crate::file::DrmFile;
use crate::gem::{Gem, Names};
use crate::handle::{Handle, Handles};
use crate::kms::Kms;
use crate::master::Masters;

/// The log's name in the store.
const LOG: &str = "journal";
/// drmd's control session's.
pub const CONTROL: &str = "control";

/// The store name of file `id`'s session.
pub fn session_name(id: HandleId) -> String {
    format!("file/{id}/session")
}

/// Of file `id`'s syncobj table.
pub fn syncobjs_name(id: HandleId) -> String {
    format!("file/{id}/syncobjs")
}

/// Of file `id`'s in-fence table.
pub fn in_fences_name(id: HandleId) -> String {
    format!("file/{id}/in-fences")
}

/// Of output `n`'s flip timeline.
pub fn fences_name(n: usize) -> String {
    format!("output/{n}/fences")
}

/// What a dead instance's log says, if the store holds one that reads.
pub fn inherited(keeper: &mut Keeper) -> Option<State> {
    let region = match keeper.take_region(LOG) {
        Ok(Some(region)) => region,
        Ok(None) => return None,
        Err(e) => {
            warn!("recovery log kept but not mapped: {e}");
            return None;
        }
    };
    match Log::open(region) {
        Ok((_, records)) => Some(replay(&records)),
        Err(e) => {
            warn!("{e}: nothing of the dead instance's files is recovered");
            None
        }
    }
}

/// The state `records` (a log's, in order) add up to, as far as they
/// decode.
pub fn replay(records: &[Vec<u8>]) -> State {
    let mut state = State::default();
    for bytes in records {
        match postcard::from_bytes(bytes) {
            Ok(record) => state.apply(record),
            Err(e) => {
                // Records are never rewritten, so one that does not decode
                // was written by another drmd: nothing after it is trusted.
                warn!("recovery log: a record does not decode ({e}); the rest is dropped");
                break;
            }
        }
    }
    state
}

/// What the journal compares drmd's state with.
pub struct View<'a> {
    /// Every handle.
    pub handles: &'a Handles,
    /// dma-buf tokens.
    pub tokens: &'a Tokens<HandleId>,
    /// Masters.
    pub masters: &'a Masters,
    /// GEM_FLINK names.
    pub names: &'a Names,
    /// The display.
    pub kms: &'a Kms,
    /// High-water marks.
    pub marks: Marks,
}

/// The journal of a supervised drmd.
pub struct Recovery {
    keeper: Keeper,
    log: Log,
    /// What the log says.
    state: State,
    /// Answers to requests a dead instance took on a file, by file: the
    /// request's tag and the start of its payload.
    interrupted: HashMap<HandleId, (u32, Vec<u8>)>,
}

impl std::fmt::Debug for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recovery")
            .field("log_used", &self.log.used())
            .finish_non_exhaustive()
    }
}

impl Recovery {
    /// A journal in a new log, with `interrupted` answers of the instance
    /// before (see [`Recovery::interrupted`]). The log is put in the store
    /// by [`Recovery::commit`], once it says the whole state.
    pub fn new(
        keeper: Keeper,
        interrupted: HashMap<HandleId, (u32, Vec<u8>)>,
    ) -> std::io::Result<Recovery> {
        Ok(Recovery {
            keeper,
            log: Log::create()?,
            state: State::default(),
            interrupted,
        })
    }

    /// Puts the log in the store in place of the one before: from now on
    /// a restart starts from it.
    pub fn commit(&self) {
        if let Err(e) = self.keeper.keep_region(LOG, self.log.region()) {
            warn!("fd store: keeping the recovery log: {e}");
        }
    }

    fn write(&mut self, record: Record) {
        let bytes = match postcard::to_allocvec(&record) {
            Ok(bytes) => bytes,
            Err(e) => {
                warn!("recovery log: {e}");
                return;
            }
        };
        if !self.log.append(&bytes) {
            self.compact();
            if !self.log.append(&bytes) {
                warn!(
                    "recovery log: a record of {} bytes does not fit",
                    bytes.len()
                );
            }
        }
        self.state.apply(record);
    }

    /// Starts a new log from what the old one adds up to.
    fn compact(&mut self) {
        let mut log = match Log::create() {
            Ok(log) => log,
            Err(e) => return warn!("recovery log: {e}"),
        };
        for record in self.state.records() {
            let bytes = postcard::to_allocvec(&record).expect("records encode");
            if !log.append(&bytes) {
                return warn!("recovery log: the state outgrows a log");
            }
        }
        ::log::debug!(
            "recovery log compacted: {} bytes to {}",
            self.log.used(),
            log.used()
        );
        self.log = log;
        self.commit();
    }

    /// An EXECBUFFER of file `id` (request `tag`) is about to be queued.
    pub fn submitting(&mut self, id: HandleId, tag: u32, submit: Submit) {
        self.write(Record::Submitting(id as u64, tag, submit));
    }

    /// Request `tag` of `file` (`id`) is done: if it journaled a submit
    /// as about to be queued, that submit was published and answered with
    /// `published` (the start of its payload), or, without one, never
    /// reached the queue (refused, or parked on a full ring).
    pub fn settled(&mut self, id: HandleId, file: &DrmFile, tag: u32, published: Option<&[u8]>) {
        let pending = self
            .state
            .files
            .get(&(id as u64))
            .and_then(|f| f.submit.as_ref())
            .is_some_and(|(t, _)| *t == tag);
        if !pending {
            return;
        }
        let record = match published {
            Some(answer) => Record::Answered(
                id as u64,
                tag,
                answer.to_vec(),
                file.header(),
                file.out_fences.clone(),
            ),
            None => Record::Withdrawn(id as u64),
        };
        self.write(record);
    }

    /// The answer to request `tag` of file `id`, if a dead instance took
    /// it and its work was done.
    pub fn interrupted(&mut self, id: HandleId, tag: u32) -> Option<Vec<u8>> {
        match self.interrupted.get(&id) {
            Some((t, _)) if *t == tag => self.interrupted.remove(&id).map(|(_, a)| a),
            _ => None,
        }
    }

    /// Keeps the descriptor under `name`, logging a failure (the handle
    /// then does not survive a restart whole).
    pub fn keep(&self, name: &str, fd: std::os::fd::BorrowedFd<'_>) {
        if let Err(e) = self.keeper.keep(name, fd) {
            warn!("fd store: keeping {name}: {e}");
        }
    }

    fn forget(&self, name: &str) {
        if let Err(e) = self.keeper.forget(name) {
            warn!("fd store: {e}");
        }
    }

    /// Appends what changed in `touched` handles, and with `shared` in
    /// the state every handle shares (masters, names, the display: only
    /// primary files and the display's own timers change them).
    pub fn sync(&mut self, view: &View<'_>, touched: &[HandleId], shared: bool) {
        let mut lost = Vec::new();
        for &id in touched {
            let key = id as u64;
            match view.handles.get(id) {
                Some(Handle::File(file)) => self.sync_file(id, file, &mut lost),
                Some(Handle::DmaBuf(gem)) => {
                    self.sync_object(gem);
                    let entry = (gem.offset, view.tokens.of(id));
                    if self.state.dma_bufs.get(&key) != Some(&entry) {
                        self.write(Record::DmaBuf(key, entry.0, entry.1));
                    }
                }
                Some(Handle::Stats) => {
                    if !self.state.stats.contains(&key) {
                        self.write(Record::Stats(key));
                    }
                }
                None => self.sync_closed(id, &mut lost),
            }
        }
        if self.state.marks != view.marks {
            self.write(Record::Marks(view.marks));
        }
        if !shared {
            return self.drop_lost(lost);
        }
        if self.state.masters.as_ref() != Some(view.masters) {
            self.write(Record::Masters(view.masters.clone()));
        }
        let names = view.names.state();
        if self.state.names != names {
            self.write(Record::Names(names.0, names.1));
        }
        self.sync_kms(view.kms, &mut lost);
        self.drop_lost(lost);
    }

    /// Objects that lost a name: gone, if nothing names them now.
    fn drop_lost(&mut self, lost: Vec<Key>) {
        for key in lost {
            if self.state.objects.contains_key(&key) && !self.state.names_object(key) {
                self.write(Record::ObjectGone(key));
            }
        }
    }

    fn sync_file(&mut self, id: HandleId, file: &DrmFile, lost: &mut Vec<Key>) {
        let key = id as u64;
        let header = file.header();
        let before = self.state.files.get(&key).map(|f| f.header.clone());
        if before.as_ref() != Some(&header) {
            let had = |f: fn(&record::FileHeader) -> bool| before.as_ref().is_some_and(f);
            if header.syncobjs && !had(|h| h.syncobjs) {
                if let Some(table) = file.opened_syncobjs() {
                    self.keep(&syncobjs_name(id), table.as_fd());
                }
            }
            if header.in_fences.is_some() && !had(|h| h.in_fences.is_some()) {
                if let Some(table) = file.in_fence_table() {
                    self.keep(&in_fences_name(id), table.as_fd());
                }
            }
            self.write(Record::File(key, header));
        }
        for (&handle, gem) in &file.bos {
            self.sync_object(gem);
            let known = self
                .state
                .files
                .get(&key)
                .and_then(|f| f.handles.get(&handle));
            if known != Some(&gem.offset) {
                self.write(Record::Handle(key, handle, gem.offset));
            }
        }
        let gone: Vec<(u32, Key)> = self.state.files[&key]
            .handles
            .iter()
            .filter(|(h, _)| !file.bos.contains_key(h))
            .map(|(&h, &k)| (h, k))
            .collect();
        for (handle, object) in gone {
            self.write(Record::HandleClosed(key, handle));
            lost.push(object);
        }
        if self.state.files[&key].out_fences != file.out_fences {
            self.write(Record::OutFences(key, file.out_fences.clone()));
        }
        if !file.events.are(&self.state.files[&key].events) {
            self.write(Record::Events(key, file.events.unread()));
        }
    }

    fn sync_object(&mut self, gem: &Gem) {
        let state = gem.state();
        if self.state.objects.get(&gem.offset) != Some(&state) {
            self.write(Record::Object(gem.offset, state));
        }
    }

    fn sync_closed(&mut self, id: HandleId, lost: &mut Vec<Key>) {
        let key = id as u64;
        let file = self.state.files.get(&key);
        let known = file.is_some()
            || self.state.dma_bufs.contains_key(&key)
            || self.state.stats.contains(&key);
        if !known {
            return;
        }
        lost.extend(file.into_iter().flat_map(|f| f.handles.values().copied()));
        lost.extend(self.state.dma_bufs.get(&key).map(|&(k, _)| k));
        let had_tables = file.map(|f| (f.header.syncobjs, f.header.in_fences.is_some()));
        // Journaled first: a drmd killed before the kept descriptors go
        // leaves them to the next one's reclaim, never a file the log
        // lists whose session is gone.
        self.write(Record::Closed(key));
        if let Some((syncobjs, in_fences)) = had_tables {
            self.forget(&session_name(id));
            if syncobjs {
                self.forget(&syncobjs_name(id));
            }
            if in_fences {
                self.forget(&in_fences_name(id));
            }
        }
    }

    fn sync_kms(&mut self, kms: &Kms, lost: &mut Vec<Key>) {
        let state = kms.state();
        let Some(before) = &self.state.kms else {
            for (n, _) in state
                .outputs
                .iter()
                .enumerate()
                .filter(|(_, o)| o.fence_point.is_some())
            {
                if let Some(t) = kms.flip_timeline(n) {
                    self.keep(&fences_name(n), t.as_fd());
                }
            }
            return self.write_kms(kms, state);
        };
        if *before == state {
            return;
        }
        for (n, o) in state.outputs.iter().enumerate() {
            let had = before
                .outputs
                .get(n)
                .is_some_and(|b| b.fence_point.is_some());
            if o.fence_point.is_some() && !had {
                if let Some(t) = kms.flip_timeline(n) {
                    self.keep(&fences_name(n), t.as_fd());
                }
            }
        }
        lost.extend(before.fbs.iter().map(|f| f.key));
        lost.extend(before.outputs.iter().filter_map(|o| o.cursor));
        self.write_kms(kms, state);
    }

    fn write_kms(&mut self, kms: &Kms, state: record::KmsState) {
        let objects: Vec<&std::sync::Arc<Gem>> = kms.objects().collect();
        for gem in objects {
            self.sync_object(gem);
        }
        self.write(Record::Kms(state));
    }
}
