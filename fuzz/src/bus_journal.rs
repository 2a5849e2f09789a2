//! `bus_journal`: the Linux bus's request journal
//! (`scheme_seam::linux::journal::Journal`) as a dead server left it, and
//! the reader a next server resumes each connection's stream with
//! (`FrameReader::resume`) — memory another process wrote, read back by
//! the server that takes its connections over.
//!
//! Input: `[ops: u8][ops × op][scribbles: u8][scribbles × (u32 at, u8)]
//! [stream...]`. Each op is `[kind: u8]` and its arguments: take (key,
//! handle), release, set_handle, set_partial (consumed, head), set_taking
//! (head), set_unknown, set_out_sent, add_tag / remove_tag, on the slot
//! `[which: u8]` of those taken. Scribbles then overwrite bytes of the
//! journal's memory anywhere, as a dying writer could leave them.
//!
//! Checked against a model: without scribbles, the journal reopened says
//! exactly what the ops journaled (each slot's key, handle, position, the
//! frame's first bytes read, answer sent, tags); with them, what it says
//! stays in bounds (no key 0, at most 8 head bytes, at most `MAX_TAGS`
//! tags); either way a new server taking slots never takes one the dead
//! server left in use. The first connection's reader, resumed where the
//! journal says, then finds in the stream that follows the frames a model
//! finds there: the frame it was cut in completed from its journaled start
//! or skipped to its end, its tag given to answer when that frame was
//! taken past its header.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use scheme_seam::linux::frames::FrameReader;
use scheme_seam::linux::journal::{Entry, Journal, MAX_TAGS, TAKING, UPDATING};
use scheme_seam::linux::wire::MAX_FRAME;
use scheme_seam::ShmRegion;

use crate::bus_frames::{model, send, Side};
use crate::{Input, Writer};

/// Ops at most (each takes a slot at most).
const MAX_OPS: usize = 64;

/// One op: its kind, then its arguments.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// Takes a slot for `key` (made non-zero) with `handle`.
    Take(u64, u64),
    /// Releases the `n`-th slot taken.
    Release(u8),
    /// Sets its handle.
    Handle(u8, u64),
    /// Its frame read `consumed` bytes in, starting with `head`.
    Partial(u8, u64, [u8; 8]),
    /// A whole frame starting with `head` is being taken.
    Taking(u8, [u8; 8]),
    /// Its position is being rewritten.
    Unknown(u8),
    /// Bytes sent of its kept answer.
    OutSent(u8, u64),
    /// A tag taken (or, `false`, answered).
    Tag(u8, u32, bool),
}

fn head(input: &mut Input<'_>) -> [u8; 8] {
    input.u64().to_le_bytes()
}

fn op(input: &mut Input<'_>) -> Op {
    match input.u8() % 8 {
        0 => Op::Take(input.u64(), input.u64()),
        1 => Op::Release(input.u8()),
        2 => Op::Handle(input.u8(), input.u64()),
        3 => Op::Partial(input.u8(), u64::from(input.u16()), head(input)),
        4 => Op::Taking(input.u8(), head(input)),
        5 => Op::Unknown(input.u8()),
        6 => Op::OutSent(input.u8(), input.u64()),
        _ => Op::Tag(input.u8(), input.u32(), input.u8() & 1 == 1),
    }
}

/// What a slot holds, as the model keeps it.
#[derive(Clone, Debug, Default)]
struct Slot {
    key: u64,
    handle: u64,
    consumed: u64,
    head: [u8; 8],
    out_sent: u64,
    tags: Vec<u32>,
}

impl Slot {
    /// The entry a reader of the journal must find for it.
    fn entry(&self) -> Entry {
        let read = match self.consumed {
            UPDATING => 0,
            c => c.min(8) as usize,
        };
        Entry {
            key: self.key,
            handle: self.handle,
            consumed: self.consumed,
            head: self.head[..read].to_vec(),
            out_sent: self.out_sent,
            tags: self.tags.clone(),
        }
    }
}

/// Entries in a comparable order.
fn sorted(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by(|a, b| {
        (a.key, a.handle, a.consumed, &a.head, a.out_sent, &a.tags)
            .cmp(&(b.key, b.handle, b.consumed, &b.head, b.out_sent, &b.tags))
    });
    entries
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mut journal = Journal::create().expect("a journal's memory");
    // Slots taken and not released, in the order taken, and the model.
    let mut taken = Vec::new();
    let mut model_slots: BTreeMap<usize, Slot> = BTreeMap::new();
    let mut next = 0usize;
    let ops = usize::from(input.u8()).min(MAX_OPS);
    for _ in 0..ops {
        let op = op(&mut input);
        let pick = |n: u8, taken: &Vec<(_, usize)>| {
            (!taken.is_empty()).then(|| usize::from(n) % taken.len())
        };
        match op {
            Op::Take(key, handle) => {
                let key = key | 1;
                let slot = journal.take(key, handle).expect("a free slot");
                taken.push((slot, next));
                model_slots.insert(
                    next,
                    Slot {
                        key,
                        handle,
                        ..Slot::default()
                    },
                );
                next += 1;
            }
            Op::Release(n) => {
                if let Some(i) = pick(n, &taken) {
                    let (slot, id) = taken.remove(i);
                    journal.release(slot);
                    model_slots.remove(&id);
                }
            }
            Op::Handle(n, handle) => {
                if let Some(i) = pick(n, &taken) {
                    journal.set_handle(taken[i].0, handle);
                    model_slots.get_mut(&taken[i].1).expect("modelled").handle = handle;
                }
            }
            Op::Partial(n, consumed, h) => {
                if let Some(i) = pick(n, &taken) {
                    journal.set_partial(taken[i].0, consumed, &h);
                    let m = model_slots.get_mut(&taken[i].1).expect("modelled");
                    (m.consumed, m.head) = (consumed, h);
                }
            }
            Op::Taking(n, h) => {
                if let Some(i) = pick(n, &taken) {
                    journal.set_taking(taken[i].0, &h);
                    let m = model_slots.get_mut(&taken[i].1).expect("modelled");
                    (m.consumed, m.head) = (TAKING, h);
                }
            }
            Op::Unknown(n) => {
                if let Some(i) = pick(n, &taken) {
                    journal.set_unknown(taken[i].0);
                    model_slots.get_mut(&taken[i].1).expect("modelled").consumed = UPDATING;
                }
            }
            Op::OutSent(n, sent) => {
                if let Some(i) = pick(n, &taken) {
                    journal.set_out_sent(taken[i].0, sent);
                    model_slots.get_mut(&taken[i].1).expect("modelled").out_sent = sent;
                }
            }
            Op::Tag(n, tag, add) => {
                if let Some(i) = pick(n, &taken) {
                    let m = model_slots.get_mut(&taken[i].1).expect("modelled");
                    if add {
                        let added = journal.add_tag(taken[i].0, tag);
                        assert_eq!(added, m.tags.len() < MAX_TAGS, "room for a tag");
                        if added {
                            m.tags.push(tag);
                        }
                    } else {
                        journal.remove_tag(taken[i].0, tag);
                        if let Some(at) = m.tags.iter().position(|&t| t == tag) {
                            m.tags.swap_remove(at);
                        }
                    }
                }
            }
        }
    }
    let fd = journal.fd().try_clone_to_owned().expect("dup");
    let len = std::fs::File::from(fd.try_clone().expect("dup"))
        .metadata()
        .expect("fstat")
        .len() as usize;
    let scribbles = usize::from(input.u8());
    if scribbles > 0 {
        let raw = ShmRegion::map(fd.try_clone().expect("dup"), 0, len, true).expect("a map");
        for _ in 0..scribbles {
            let at = input.u32() as usize % len;
            raw.write_bytes(at, &[input.u8()]);
        }
    }
    drop(journal);

    let mut reopened = Journal::open(fd).expect("a dead server's journal opens");
    let entries = reopened.entries();
    if scribbles == 0 {
        let expected: Vec<Entry> = model_slots.values().map(Slot::entry).collect();
        assert_eq!(
            sorted(entries.clone()),
            sorted(expected),
            "the journal read back"
        );
    }
    for e in &entries {
        assert_ne!(e.key, 0, "an entry of no connection");
        assert!(e.head.len() <= 8 && e.tags.len() <= MAX_TAGS, "{e:?}");
    }
    // A next server's own connections never take a slot still in use.
    for k in 0..4u64 {
        reopened.take(u64::MAX - k, 0).expect("a free slot");
    }
    let after = reopened.entries();
    for e in &entries {
        assert!(after.contains(e), "a dead server's slot was taken: {e:?}");
    }

    let Some(first) = entries.first() else {
        return;
    };
    resume(first, input.rest());
}

/// The reader resumed where `entry` stands, fed `stream`, against the
/// model's frames of what it must find there.
fn resume(entry: &Entry, stream: &[u8]) {
    if entry.consumed == UPDATING || entry.consumed == TAKING {
        // Settled against the socket itself (a peek), not by the reader.
        return;
    }
    if crate::debug() {
        eprintln!("resuming {entry:?} on {stream:02x?}");
    }
    let (reader, lost) = FrameReader::resume(entry.consumed, &entry.head);
    let (whole, skip, tag) = match entry.consumed {
        c if c < 8 => {
            let n = (c as usize).min(entry.head.len());
            ([&entry.head[..n], stream].concat(), 0, None)
        }
        c => {
            let h = &entry.head;
            let announced = u32::from_le_bytes(h[..4].try_into().expect("8 head bytes"));
            let total = 4 + u64::from(announced);
            let tag = u32::from_le_bytes(h[4..8].try_into().expect("8 head bytes"));
            let valid = (4..=MAX_FRAME).contains(&(announced as usize));
            let skip = total.saturating_sub(c);
            (stream.to_vec(), skip, valid.then_some(tag))
        }
    };
    assert_eq!(lost, tag, "the tag of the frame cut past its header");
    let (a, b) = UnixStream::pair().expect("socketpair");
    let mut side = Side {
        reader,
        sock: b,
        received: 0,
        out: Vec::new(),
        fds: Vec::new(),
    };
    // What the resumed reader holds may already end a frame.
    side.take();
    let mut sent = 0;
    while sent < stream.len() {
        let n = send(a.as_raw_fd(), &stream[sent..], None);
        if n == 0 {
            side.catch_up(sent);
        }
        sent += n;
    }
    side.catch_up(sent);
    let rest = match usize::try_from(skip) {
        Ok(s) if s < whole.len() => &whole[s..],
        _ => &[],
    };
    let expected: Vec<_> = model(rest).into_iter().map(|(o, _)| o).collect();
    assert_eq!(side.out, expected, "the frames after the resumed one");
}

/// An input of `ops`, `scribbles` and the `stream` after.
pub fn seed(ops: &[Op], scribbles: &[(u32, u8)], stream: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(ops.len() as u8);
    for &op in ops {
        match op {
            Op::Take(key, handle) => w.u8(0).u64(key).u64(handle),
            Op::Release(n) => w.u8(1).u8(n),
            Op::Handle(n, h) => w.u8(2).u8(n).u64(h),
            Op::Partial(n, c, h) => w.u8(3).u8(n).u16(c as u16).raw(&h),
            Op::Taking(n, h) => w.u8(4).u8(n).raw(&h),
            Op::Unknown(n) => w.u8(5).u8(n),
            Op::OutSent(n, s) => w.u8(6).u8(n).u64(s),
            Op::Tag(n, t, add) => w.u8(7).u8(n).u32(t).u8(u8::from(add)),
        };
    }
    w.u8(scribbles.len() as u8);
    for &(at, v) in scribbles {
        w.u32(at).u8(v);
    }
    w.raw(stream).build()
}
