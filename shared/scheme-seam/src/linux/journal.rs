//! The request journal: what a bus server had taken from each connection
//! and not yet answered, kept in shared memory that outlives the server
//! (it is held in the [`super::fdstore`]). A restarted server reads it to
//! answer every request the dead one took, and to pick up each
//! connection's stream where the dead one left it, so no client waits
//! forever and no stream loses its framing.
//!
//! One slot per connection, at a fixed place: the connection's key (0:
//! free), its handle (none yet: [`NO_HANDLE`]), the bytes of the frame it
//! was reading when it stopped (with that frame's first bytes), how much of
//! an answer it had sent when a send stopped part-way (the answer itself
//! is kept in the store), and the tags of the requests taken and not
//! answered. Each field is written
//! with one store, the key last when a slot is taken and first when it is
//! freed, so a server killed between two writes leaves a slot that reads
//! as either state.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use crate::ShmRegion;

/// The handle field of a connection not opened yet.
pub const NO_HANDLE: u64 = u64::MAX;
/// The read position while it is unknown: being rewritten, or while part
/// of a frame is being taken from the socket. A server killed then leaves
/// a stream whose framing cannot be recovered.
pub const UPDATING: u64 = u64::MAX;
/// The read position while a whole frame is being taken from the socket
/// (its first bytes in the head): a server killed then leaves the frame
/// either all in the socket, where its header shows, or all taken.
pub const TAKING: u64 = u64::MAX - 1;
/// Tags one connection may have outstanding: its parked requests and the
/// one running, with room to spare.
pub const MAX_TAGS: usize = 264;
/// Connections the journal has room for; a server with more serves the
/// rest without journaling them (logged).
pub const SLOTS: usize = 4096;

const KEY: usize = 0;
const HANDLE: usize = 8;
const CONSUMED: usize = 16;
const HEAD: usize = 24;
const OUT_SENT: usize = 32;
const COUNT: usize = 40;
const TAGS: usize = 44;
const SLOT: usize = TAGS + 4 * MAX_TAGS;
const SIZE: usize = SLOT * SLOTS;

/// A slot's place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotId(usize);

/// What a slot says of its connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The connection's key.
    pub key: u64,
    /// Its handle, or [`NO_HANDLE`].
    pub handle: u64,
    /// Bytes of the current frame read from the stream.
    pub consumed: u64,
    /// That frame's first bytes (as many of 8 as were read).
    pub head: Vec<u8>,
    /// Bytes sent of the answer kept in the store, if one is.
    pub out_sent: u64,
    /// Requests taken and not answered.
    pub tags: Vec<u32>,
}

/// The journal of one server.
#[derive(Debug)]
pub struct Journal {
    shm: ShmRegion,
    free: Vec<usize>,
}

impl Journal {
    /// A new, empty journal.
    pub fn create() -> io::Result<Journal> {
        Ok(Journal::over(ShmRegion::new("scheme-journal", SIZE)?))
    }

    /// The journal in `fd`, a memfd a previous server made; what it holds
    /// is read by [`Journal::entries`] before [`Journal::clear`].
    pub fn open(fd: OwnedFd) -> io::Result<Journal> {
        let len = std::fs::File::from(fd.try_clone()?).metadata()?.len();
        if len != SIZE as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a request journal of {len} bytes, not {SIZE}"),
            ));
        }
        let mut journal = Journal::over(ShmRegion::map(fd, 0, SIZE, true)?);
        // A previous server's slots stay taken until its connections are
        // journaled again under their new keys (then they are released):
        // a server killed in between leaves both, never neither.
        let free = std::mem::take(&mut journal.free);
        journal.free = free
            .into_iter()
            .filter(|&i| journal.u64_at(i * SLOT + KEY) == 0)
            .collect();
        Ok(journal)
    }

    fn over(shm: ShmRegion) -> Journal {
        let free = (0..SLOTS).rev().collect();
        Journal { shm, free }
    }

    /// The slot of connection `key`, if one is taken for it.
    pub fn slot_of(&self, key: u64) -> Option<SlotId> {
        (0..SLOTS)
            .find(|&i| key != 0 && self.u64_at(i * SLOT + KEY) == key)
            .map(SlotId)
    }

    /// The memfd, for the store.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.shm.fd()
    }

    fn u32_at(&self, at: usize) -> u32 {
        let mut b = [0u8; 4];
        self.shm.read_bytes(at, &mut b);
        u32::from_le_bytes(b)
    }

    fn u64_at(&self, at: usize) -> u64 {
        let mut b = [0u8; 8];
        self.shm.read_bytes(at, &mut b);
        u64::from_le_bytes(b)
    }

    /// Every slot in use, as a dead server left it.
    pub fn entries(&self) -> Vec<Entry> {
        (0..SLOTS)
            .map(|i| i * SLOT)
            .filter(|&base| self.u64_at(base + KEY) != 0)
            .map(|base| {
                let consumed = self.u64_at(base + CONSUMED);
                let mut head = [0u8; 8];
                self.shm.read_bytes(base + HEAD, &mut head);
                let read = if consumed == UPDATING {
                    0
                } else {
                    consumed.min(8)
                };
                let count = (self.u32_at(base + COUNT) as usize).min(MAX_TAGS);
                Entry {
                    key: self.u64_at(base + KEY),
                    handle: self.u64_at(base + HANDLE),
                    consumed,
                    head: head[..read as usize].to_vec(),
                    out_sent: self.u64_at(base + OUT_SENT),
                    tags: (0..count)
                        .map(|t| self.u32_at(base + TAGS + 4 * t))
                        .collect(),
                }
            })
            .collect()
    }

    /// A slot for the connection `key` (non-zero); None when all are taken.
    pub fn take(&mut self, key: u64, handle: u64) -> Option<SlotId> {
        debug_assert_ne!(key, 0);
        let i = self.free.pop()?;
        let base = i * SLOT;
        self.shm.write_bytes(base + HANDLE, &handle.to_le_bytes());
        self.shm.write_bytes(base + CONSUMED, &0u64.to_le_bytes());
        self.shm.write_bytes(base + OUT_SENT, &0u64.to_le_bytes());
        self.shm.write_bytes(base + COUNT, &0u32.to_le_bytes());
        self.shm.write_bytes(base + KEY, &key.to_le_bytes());
        Some(SlotId(i))
    }

    /// Frees `slot`.
    pub fn release(&mut self, slot: SlotId) {
        self.shm
            .write_bytes(slot.0 * SLOT + KEY, &0u64.to_le_bytes());
        self.free.push(slot.0);
    }

    /// The connection of `slot` opened `handle`.
    pub fn set_handle(&mut self, slot: SlotId, handle: u64) {
        self.shm
            .write_bytes(slot.0 * SLOT + HANDLE, &handle.to_le_bytes());
    }

    /// The connection has read `consumed` bytes of its current frame,
    /// starting with `head`.
    pub fn set_partial(&mut self, slot: SlotId, consumed: u64, head: &[u8]) {
        let base = slot.0 * SLOT;
        let mut bytes = [0u8; 8];
        let n = head.len().min(8);
        bytes[..n].copy_from_slice(&head[..n]);
        self.shm.write_bytes(base + HEAD, &bytes);
        self.shm
            .write_bytes(base + CONSUMED, &consumed.to_le_bytes());
    }

    /// The connection is about to take the whole frame starting with
    /// `head` from its socket ([`TAKING`]).
    pub fn set_taking(&mut self, slot: SlotId, head: &[u8; 8]) {
        let base = slot.0 * SLOT;
        self.shm.write_bytes(base + HEAD, head);
        self.shm.write_bytes(base + CONSUMED, &TAKING.to_le_bytes());
    }

    /// The connection is about to take part of a frame from its socket:
    /// until [`Journal::set_partial`] says how much, its position is
    /// unknown ([`UPDATING`]).
    pub fn set_unknown(&mut self, slot: SlotId) {
        self.shm
            .write_bytes(slot.0 * SLOT + CONSUMED, &UPDATING.to_le_bytes());
    }

    /// `sent` bytes of the answer kept in the store have gone out.
    pub fn set_out_sent(&mut self, slot: SlotId, sent: u64) {
        self.shm
            .write_bytes(slot.0 * SLOT + OUT_SENT, &sent.to_le_bytes());
    }

    /// Request `tag` was taken; false when the slot's list is full.
    pub fn add_tag(&mut self, slot: SlotId, tag: u32) -> bool {
        let base = slot.0 * SLOT;
        let count = self.u32_at(base + COUNT) as usize;
        if count >= MAX_TAGS {
            return false;
        }
        self.shm
            .write_bytes(base + TAGS + 4 * count, &tag.to_le_bytes());
        self.shm
            .write_bytes(base + COUNT, &(count as u32 + 1).to_le_bytes());
        true
    }

    /// Request `tag` was answered.
    pub fn remove_tag(&mut self, slot: SlotId, tag: u32) {
        let base = slot.0 * SLOT;
        let count = (self.u32_at(base + COUNT) as usize).min(MAX_TAGS);
        let Some(at) = (0..count).find(|&t| self.u32_at(base + TAGS + 4 * t) == tag) else {
            return;
        };
        // The last tag moves into the gap before the count shrinks: a
        // reader in between sees the moved tag twice, never loses one.
        let last = self.u32_at(base + TAGS + 4 * (count - 1));
        self.shm
            .write_bytes(base + TAGS + 4 * at, &last.to_le_bytes());
        self.shm
            .write_bytes(base + COUNT, &(count as u32 - 1).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_say_what_a_dead_server_left_and_a_new_one_reads_it() {
        let mut j = Journal::create().unwrap();
        let a = j.take(7, NO_HANDLE).unwrap();
        let b = j.take(9, NO_HANDLE).unwrap();
        j.set_handle(a, 3);
        for tag in [10, 11, 12] {
            assert!(j.add_tag(a, tag));
        }
        j.remove_tag(a, 10);
        j.remove_tag(a, 99);
        j.set_partial(b, 5, &[1, 2, 3, 4, 5]);
        j.set_out_sent(b, 40);
        let c = j.take(11, NO_HANDLE).unwrap();
        j.release(c);
        let again = Journal::open(j.fd().try_clone_to_owned().unwrap()).unwrap();
        let mut entries = again.entries();
        entries.sort_by_key(|e| e.key);
        assert_eq!(
            entries,
            vec![
                Entry {
                    key: 7,
                    handle: 3,
                    consumed: 0,
                    head: vec![],
                    out_sent: 0,
                    tags: vec![12, 11]
                },
                Entry {
                    key: 9,
                    handle: NO_HANDLE,
                    consumed: 5,
                    head: vec![1, 2, 3, 4, 5],
                    out_sent: 40,
                    tags: vec![]
                },
            ]
        );
        // Reopened, the slots in use stay taken until released.
        let mut again = again;
        let a = again.slot_of(7).unwrap();
        let b = again.slot_of(9).unwrap();
        let d = again.take(13, 0).unwrap();
        assert!(d != a && d != b);
        for slot in [a, b, d] {
            again.release(slot);
        }
        assert!(again.entries().is_empty());
        assert_eq!(again.slot_of(7), None);
    }

    #[test]
    fn a_full_journal_or_tag_list_refuses_without_corrupting() {
        let mut j = Journal::create().unwrap();
        let slots: Vec<SlotId> = (1..=SLOTS as u64).map(|k| j.take(k, 0).unwrap()).collect();
        assert!(j.take(u64::MAX, 0).is_none());
        for t in 0..MAX_TAGS as u32 {
            assert!(j.add_tag(slots[0], t));
        }
        assert!(!j.add_tag(slots[0], 9999));
        assert_eq!(j.entries()[0].tags.len(), MAX_TAGS);
        j.release(slots[5]);
        assert!(j.take(42, 0).is_some());
    }
}
