//! What lets a bus server be replaced without its clients losing their
//! handles: with a supervisor's [`FdStore`], the server keeps its
//! listening socket and every connection there, with the
//! [`Journal`] of what it took from each and had not answered, and the
//! rest of any answer it had only partly sent. The next instance takes
//! them back: the socket stays in the bus directory the whole time, a
//! connection's stream goes on where the last one stopped, and every
//! request the dead instance had taken is answered.
//!
//! The scheme's own state for a handle is the scheme's to rebuild
//! ([`crate::Scheme::resume`], from what it kept through its
//! [`crate::Keeper`]); a handle it cannot rebuild answers ENODEV from then
//! on (the client reopens). A connection that had not opened yet goes on
//! as if nothing happened. A request the dead instance took is answered
//! with its result if the scheme says its work was done
//! ([`crate::Scheme::interrupted`]), else EINTR (try again) — or the
//! handle's error, if it did not come back.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;

use log::{info, warn};

use crate::Keeper;

use super::fdstore::FdStore;
use super::frames::FrameReader;
use super::journal::{Entry, Journal, SlotId, NO_HANDLE, TAKING, UPDATING};

const LISTENER: &str = "listener";
const JOURNAL: &str = "journal";

fn conn_name(key: u64) -> String {
    format!("conn/{key:016x}")
}

fn out_name(key: u64) -> String {
    format!("out/{key:016x}")
}

fn events_name(key: u64) -> String {
    format!("events/{key:016x}")
}

/// A connection of a dead instance, to serve again.
#[derive(Debug)]
pub(super) struct Resumed {
    /// Its key in the dead instance (see [`Persist::retire`]).
    pub old_key: u64,
    /// Its slot in the journal, until it is journaled under a new key.
    pub old_slot: Option<SlotId>,
    /// Its socket.
    pub stream: UnixStream,
    /// The handle it had opened, in the dead instance.
    pub handle: Option<u64>,
    /// Its stream, where the dead instance stopped reading.
    pub reader: FrameReader,
    /// Requests taken and not answered (the frame cut short among them).
    pub unanswered: Vec<u32>,
    /// The rest of an answer the dead instance had partly sent: it goes
    /// first, so the client's stream keeps its framing.
    pub remainder: Vec<u8>,
    /// The readiness eventfd the client polls, if it was given one.
    pub events: Option<OwnedFd>,
}

/// What a server under a supervisor starts from: its store, the listener
/// an earlier instance kept, and that instance's connections.
pub(super) type TakenOver = (Persist, Keeper, Option<UnixListener>, Vec<Resumed>);

/// The store and journal of a server that has a supervisor.
#[derive(Debug)]
pub(super) struct Persist {
    store: Arc<FdStore>,
    journal: Journal,
    /// Keys of this instance's connections start with it.
    instance: u64,
}

/// A random non-zero 32-bit number: what tells this instance's
/// connection keys from a dead one's (a pid can come back).
fn instance_id() -> io::Result<u64> {
    let mut bytes = [0u8; 4];
    loop {
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        let id = u32::from_le_bytes(bytes);
        if id != 0 {
            return Ok(u64::from(id));
        }
    }
}

impl Persist {
    /// The supervisor's store, if the process has one, with the listener
    /// and connections a dead instance left in it.
    pub fn from_env() -> io::Result<Option<TakenOver>> {
        let Some(store) = FdStore::from_env()? else {
            return Ok(None);
        };
        let mut held = store.fetch()?;
        let listener = held.remove(LISTENER).map(UnixListener::from);
        let (mut journal, entries) = match held.remove(JOURNAL) {
            Some(fd) => {
                let journal = Journal::open(fd)?;
                let entries = journal.entries();
                (journal, entries)
            }
            None => {
                let journal = Journal::create()?;
                store.store(JOURNAL, journal.fd())?;
                (journal, Vec::new())
            }
        };
        let (resumed, twice) = resume(&mut held, entries, &mut journal);
        for name in twice {
            if let Err(e) = store.remove(&name) {
                warn!("fd store: {e}");
            }
        }
        let store = Arc::new(store);
        let keeper = Keeper::new(store.clone(), &mut held);
        for name in held.keys() {
            warn!("fd store: {name} left behind by an earlier instance, dropped");
        }
        if !resumed.is_empty() || listener.is_some() {
            info!(
                "taking over from an earlier instance: {} connections",
                resumed.len()
            );
        }
        let persist = Persist {
            store,
            journal,
            instance: instance_id()?,
        };
        Ok(Some((persist, keeper, listener, resumed)))
    }

    /// The key of this instance's connection `id`.
    pub fn key(&self, id: u64) -> u64 {
        self.instance << 32 | (id & 0xffff_ffff)
    }

    /// Keeps the listener for the next instance.
    pub fn keep_listener(&self, listener: BorrowedFd<'_>) {
        if let Err(e) = self.store.store(LISTENER, listener) {
            warn!("fd store: keeping the listener: {e}");
        }
    }

    /// An orderly exit: the next instance binds a socket of its own.
    pub fn forget_listener(&self) {
        if let Err(e) = self.store.remove(LISTENER) {
            warn!("fd store: {e}");
        }
    }

    /// Keeps connection `key` (with `handle` or [`NO_HANDLE`]); its
    /// journal slot, or None when the journal is full (the connection is
    /// served, but a restart loses it).
    pub fn add(&mut self, key: u64, stream: BorrowedFd<'_>, handle: u64) -> Option<SlotId> {
        let slot = self.journal.take(key, handle);
        if slot.is_none() {
            warn!("request journal full: connection {key:x} is not kept across a restart");
            return None;
        }
        if let Err(e) = self.store.store(&conn_name(key), stream) {
            warn!("fd store: keeping connection {key:x}: {e}");
        }
        slot
    }

    /// Forgets connection `key`.
    pub fn remove(&mut self, key: u64, slot: Option<SlotId>) {
        if let Some(slot) = slot {
            self.journal.release(slot);
        }
        for name in [conn_name(key), events_name(key)] {
            if let Err(e) = self.store.remove(&name) {
                warn!("fd store: {e}");
            }
        }
    }

    /// Drops what a dead instance kept for connection `old` (and its
    /// journal slot), now kept and journaled under a key of this instance.
    pub fn retire(&mut self, old: u64, slot: Option<SlotId>) {
        for name in [conn_name(old), out_name(old), events_name(old)] {
            if let Err(e) = self.store.remove(&name) {
                warn!("fd store: {e}");
            }
        }
        if let Some(slot) = slot {
            self.journal.release(slot);
        }
    }

    /// Keeps connection `key`'s readiness eventfd: the client polls its
    /// copy, so a next instance must signal the same one.
    pub fn keep_events(&self, key: u64, fd: BorrowedFd<'_>) {
        if let Err(e) = self.store.store(&events_name(key), fd) {
            warn!("fd store: keeping an eventfd: {e}");
        }
    }

    /// The journal, for the server's per-request records.
    pub fn journal(&mut self) -> &mut Journal {
        &mut self.journal
    }

    /// An answer to `key` went out only in part: `frame` is kept whole in
    /// the store, with `sent` bytes of it gone, for a next instance to
    /// finish.
    pub fn keep_answer(&mut self, key: u64, slot: SlotId, frame: &[u8], sent: usize) {
        log::debug!(
            "connection {key:x}: {sent} of {} bytes of an answer sent, the rest kept",
            frame.len()
        );
        let kept = crate::ShmRegion::new("scheme-answer", frame.len())
            .inspect(|shm| shm.write_bytes(0, frame));
        match kept {
            Ok(shm) => {
                if let Err(e) = self.store.store(&out_name(key), shm.fd().as_fd()) {
                    warn!("fd store: keeping an answer: {e}");
                }
            }
            Err(e) => warn!("keeping an answer: {e}"),
        }
        self.journal.set_out_sent(slot, sent as u64);
    }

    /// The kept answer of `key` is all sent.
    pub fn answer_sent(&mut self, key: u64, slot: SlotId) {
        self.journal.set_out_sent(slot, 0);
        if let Err(e) = self.store.remove(&out_name(key)) {
            warn!("fd store: {e}");
        }
    }
}

/// The connections in `held` (taken out of it), with what the journal
/// says of each. A connection kept twice (an instance killed while it
/// moved it to a key of its own) is one stream: served once. Journal
/// slots of connections no longer kept are released. Also returns the
/// names of the copies dropped, to take out of the store.
fn resume(
    held: &mut BTreeMap<String, OwnedFd>,
    entries: Vec<Entry>,
    journal: &mut Journal,
) -> (Vec<Resumed>, Vec<String>) {
    let mut entries: HashMap<u64, Entry> = entries.into_iter().map(|e| (e.key, e)).collect();
    let keys: Vec<u64> = held
        .keys()
        .filter_map(|n| u64::from_str_radix(n.strip_prefix("conn/")?, 16).ok())
        .collect();
    let mut streams = std::collections::HashSet::new();
    let mut twice = Vec::new();
    for &key in &keys {
        let Some(fd) = held.get(&conn_name(key)) else {
            continue;
        };
        if socket_inode(fd).is_some_and(|ino| !streams.insert(ino)) {
            twice.push(key);
        }
    }
    let mut dropped = Vec::new();
    for key in twice {
        log::debug!("connection {key:x} is kept twice: served once");
        for name in [conn_name(key), out_name(key), events_name(key)] {
            held.remove(&name);
            dropped.push(name);
        }
        if let Some(slot) = journal.slot_of(key) {
            journal.release(slot);
        }
        entries.remove(&key);
    }
    let stale: Vec<u64> = entries
        .keys()
        .copied()
        .filter(|k| !held.contains_key(&conn_name(*k)))
        .collect();
    for key in stale {
        if let Some(slot) = journal.slot_of(key) {
            journal.release(slot);
        }
    }
    let mut resumed = Vec::new();
    for key in keys {
        let Some(fd) = held.remove(&conn_name(key)) else {
            continue;
        };
        let out = held.remove(&out_name(key));
        let events = held.remove(&events_name(key));
        // Without a slot nothing is known of the connection: as if opened.
        let entry = entries.remove(&key).unwrap_or(Entry {
            key,
            handle: 0,
            consumed: 0,
            head: Vec::new(),
            out_sent: 0,
            tags: Vec::new(),
        });
        if entry.consumed == UPDATING {
            // Killed while the read position was rewritten: where the
            // stream stands is unknown, so the connection cannot go on;
            // closed, the client sees it end rather than wait.
            warn!("connection {key:x}: its stream position was being written; closing it");
            continue;
        }
        let taken = if entry.consumed == TAKING {
            // Killed around the receive of a whole frame: it is either
            // still in the socket (its header at the front: the client
            // cannot send a tag it is still waiting on again), so nothing
            // of it was taken, or gone whole, as if read to its end.
            let mut front = [0u8; 8];
            let still = super::scm::peek(fd.as_raw_fd(), &mut front)
                .is_ok_and(|n| n == front.len() && front[..] == entry.head[..]);
            if still {
                0
            } else {
                u64::MAX
            }
        } else {
            entry.consumed
        };
        let (reader, cut) = FrameReader::resume(taken, &entry.head);
        let remainder = out
            .and_then(|fd| {
                read_answer(fd)
                    .map_err(|e| warn!("a kept answer: {e}"))
                    .ok()
            })
            .map(|frame| frame[(entry.out_sent as usize).min(frame.len())..].to_vec())
            .unwrap_or_default();
        let mut unanswered = entry.tags;
        // A frame read whole whose request was listed before the position
        // was reset is in both: answered once.
        unanswered.extend(cut.filter(|t| !unanswered.contains(t)));
        log::debug!(
            "connection {key:x}: opened {}, unanswered {unanswered:?}, {} bytes of a frame read ({:02x?}), {} bytes of an answer to finish",
            entry.handle != NO_HANDLE,
            entry.consumed,
            entry.head,
            remainder.len()
        );
        resumed.push(Resumed {
            old_key: key,
            old_slot: journal.slot_of(key),
            stream: UnixStream::from(fd),
            handle: (entry.handle != NO_HANDLE).then_some(entry.handle),
            reader,
            unanswered,
            remainder,
            events,
        });
    }
    (resumed, dropped)
}

fn read_answer(fd: OwnedFd) -> io::Result<Vec<u8>> {
    let mut file = std::fs::File::from(fd);
    let mut frame = Vec::new();
    file.read_to_end(&mut frame)?;
    Ok(frame)
}

/// Which socket `fd` is (its inode in the socket filesystem).
fn socket_inode(fd: &OwnedFd) -> Option<u64> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: fstat writes a stat into the buffer given, for an fd we own.
    let r = unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) };
    // SAFETY: fstat succeeded, so the struct is written.
    (r == 0).then(|| unsafe { st.assume_init() }.st_ino)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::wire::{encode, Request};

    fn one(entry: Entry) -> Resumed {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let mut held = BTreeMap::new();
        held.insert(conn_name(entry.key), OwnedFd::from(ours));
        let mut journal = Journal::create().unwrap();
        let (mut resumed, dropped) = resume(&mut held, vec![entry], &mut journal);
        assert!(held.is_empty() && dropped.is_empty());
        resumed.pop().unwrap()
    }

    #[test]
    fn test_regression_a_connection_kept_twice_is_served_once() {
        // Killed while it moved a connection to a key of its own: the
        // store holds the socket under both keys, the journal both slots.
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let copy = ours.try_clone().unwrap();
        let mut held = BTreeMap::new();
        held.insert(conn_name(1), OwnedFd::from(ours));
        held.insert(conn_name(2), OwnedFd::from(copy));
        let mut journal = Journal::create().unwrap();
        let entry = |key| Entry {
            key,
            handle: 4,
            consumed: 0,
            head: vec![],
            out_sent: 0,
            tags: vec![],
        };
        journal.take(1, 4).unwrap();
        journal.take(2, 4).unwrap();
        // A slot whose connection the store no longer holds is freed.
        journal.take(3, 4).unwrap();
        let (resumed, dropped) =
            resume(&mut held, vec![entry(1), entry(2), entry(3)], &mut journal);
        assert_eq!(resumed.len(), 1);
        assert_eq!(dropped.len(), 3, "{dropped:?}");
        assert_eq!(journal.entries().len(), 1);
        assert!(resumed[0].old_slot.is_some());
    }

    #[test]
    fn test_regression_a_frame_read_whole_is_answered_once_and_not_skipped_past() {
        // Killed after frame 5 was read whole (the position says all of it)
        // and its request listed, before the position was reset: the
        // stream is at frame 6, which must not be eaten as the rest of 5,
        // and 5 is answered once.
        let frame = encode(5, &Request::Fstat);
        let r = one(Entry {
            key: 1,
            handle: 3,
            consumed: frame.len() as u64,
            head: frame[..8].to_vec(),
            out_sent: 0,
            tags: vec![5],
        });
        assert_eq!(r.unanswered, vec![5]);
        assert_eq!(
            r.reader.partial().0,
            0,
            "at the next frame: nothing to skip"
        );
        // Cut for real (its tag not listed): skipped and answered.
        let r = one(Entry {
            key: 2,
            handle: NO_HANDLE,
            consumed: 8,
            head: frame[..8].to_vec(),
            out_sent: 0,
            tags: vec![],
        });
        assert_eq!(r.unanswered, vec![5]);
        assert!(r.handle.is_none());
        assert_eq!(r.reader.partial().0, 8);
        // Killed around the receive of a whole frame (6): still in the
        // socket, it is read as usual; gone, it is answered.
        for (key, taken) in [(4, false), (5, true)] {
            let (ours, theirs) = UnixStream::pair().unwrap();
            let six = encode(6, &Request::Fstat);
            crate::linux::scm::send(theirs.as_raw_fd(), &six, &[]).unwrap();
            if taken {
                let mut gone = Vec::new();
                crate::linux::scm::recv(ours.as_raw_fd(), &mut gone, six.len(), &mut Vec::new())
                    .unwrap();
            }
            let mut held = BTreeMap::new();
            held.insert(conn_name(key), OwnedFd::from(ours));
            let entry = Entry {
                key,
                handle: 1,
                consumed: TAKING,
                head: six[..8].to_vec(),
                out_sent: 0,
                tags: vec![],
            };
            let (mut resumed, _) = resume(&mut held, vec![entry], &mut Journal::create().unwrap());
            let r = resumed.pop().unwrap();
            assert_eq!(r.unanswered, if taken { vec![6] } else { vec![] });
            assert_eq!(r.reader.partial().0, 0);
        }
        // Killed while the position was rewritten: the connection closes.
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let mut held = BTreeMap::new();
        held.insert(conn_name(3), OwnedFd::from(ours));
        let torn = Entry {
            key: 3,
            handle: 1,
            consumed: UPDATING,
            head: vec![],
            out_sent: 0,
            tags: vec![],
        };
        assert!(
            resume(&mut held, vec![torn], &mut Journal::create().unwrap())
                .0
                .is_empty()
        );
    }
}
