//! What drmd journals, and the state the records add up to: everything a
//! restarted instance needs to rebuild each client's DRM file, the objects
//! they name and the display, in plain data. [`State::apply`] folds a
//! record in (a restarted instance replays the log with it, and the
//! writer keeps its own copy current the same way); [`State::records`]
//! says the whole state again, which is how the log is compacted.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::file::{ClientCaps, OutFences};
use crate::gem::Image;
use crate::kms::{Flip, Queued};
use crate::master::Masters;
use crate::node::Node;

/// An object's name in the journal: its mmap offset, which no other object
/// is given while the stack runs (the mark is journaled).
pub type Key = u64;

/// A handle's id in the scheme (a DRM file, a dma-buf, a stats reader): a
/// restarted instance gives each the id it had.
pub type Id = u64;

/// One change.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Record {
    /// A DRM file's scalars (made, or changed).
    File(Id, FileHeader),
    /// A handle (of any kind) closed.
    Closed(Id),
    /// A GEM handle of a file names an object.
    Handle(Id, u32, Key),
    /// A GEM handle closed.
    HandleClosed(Id, u32),
    /// A file's unclaimed out-fences.
    OutFences(Id, OutFences),
    /// A file's unread events.
    Events(Id, Vec<Vec<u8>>),
    /// An object (made, or exported or named since).
    Object(Key, ObjectState),
    /// An object nothing names any more.
    ObjectGone(Key),
    /// A dma-buf handle of an object, with its token once it has one.
    DmaBuf(Id, Key, Option<u64>),
    /// A reader of `stats`.
    Stats(Id),
    /// An EXECBUFFER about to be queued (its request tag), with what
    /// publishing it needs.
    Submitting(Id, u32, Submit),
    /// The EXECBUFFER journaled as about to be queued was not (refused,
    /// or parked on a full ring): nothing of it reached the device.
    Withdrawn(Id),
    /// An EXECBUFFER published: its request tag, the start of its payload
    /// written back, and the file's scalars and out-fences it changed —
    /// one record, so no restart sees the answer without the arena space
    /// the device still reads.
    Answered(Id, u32, Vec<u8>, FileHeader, OutFences),
    /// High-water marks.
    Marks(Marks),
    /// Master and authentication.
    Masters(Masters),
    /// GEM_FLINK names (name to object) and the last name given.
    Names(BTreeMap<u32, Key>, u32),
    /// The display.
    Kms(KmsState),
}

/// A DRM file's scalars.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FileHeader {
    /// The node it was opened through.
    pub node: Node,
    /// The user who opened it.
    pub uid: u32,
    /// Client caps.
    pub caps: ClientCaps,
    /// Its device context.
    pub ctx: Option<u32>,
    /// The last GEM handle given.
    pub next_handle: u32,
    /// Its command arena.
    pub arena: Option<ArenaState>,
    /// Whether its syncobj table is open (kept as `file/<id>/syncobjs`).
    pub syncobjs: bool,
    /// Its in-fence syncobj, in a table kept as `file/<id>/in-fences`.
    pub in_fences: Option<u32>,
}

/// Where a file's command arena stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArenaState {
    /// Device address of its first byte.
    pub addr: u64,
    /// Its mmap offset in the file's session.
    pub backing: u64,
    /// Where the next stream goes.
    pub head: u64,
    /// The newest fence of a stream in it.
    pub last_fence: u64,
}

/// A GEM object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ObjectState {
    /// The device resource.
    pub res: u32,
    /// Its 2D image, if it is one.
    pub image: Option<Image>,
    /// Bytes of backing.
    pub size: u32,
    /// The backing's mmap offset in the session that allocated it.
    pub backing: u64,
    /// The share token, once exported (drmd's control session holds it).
    pub token: Option<u64>,
    /// Whether its dma-bufs map writable, once exported.
    pub writable: Option<bool>,
    /// Its GEM_FLINK name.
    pub name: Option<u32>,
}

/// What an EXECBUFFER's publish needs, journaled before it is queued: a
/// restarted instance that finds the submit reached the device (its
/// session holds the answer) publishes it, else takes the arena back.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Submit {
    /// The context it runs in (made by the same request, perhaps).
    pub ctx: u32,
    /// The ioctl's header as the client sent it.
    pub header: Vec<u8>,
    /// Out-syncobjs (handle, point) and in-syncobjs to reset.
    pub outs: Vec<(u32, u64)>,
    /// In-syncobjs with the RESET flag.
    pub resets: Vec<u32>,
    /// The device timeline, if syncobjs are touched.
    pub timeline: Option<u32>,
    /// The arena's head before the stream was placed, and after (None: the
    /// stream went inline).
    pub mark: u64,
    /// See `mark`.
    pub placed: Option<u64>,
}

/// Ids given so far.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    /// The next object mmap offset.
    pub offsets: u64,
    /// The last handle id.
    pub handles: u64,
}

/// The display.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct KmsState {
    /// Each output.
    pub outputs: Vec<OutputState>,
    /// Framebuffers.
    pub fbs: Vec<FbState>,
    /// Property blobs (id, owner, bytes).
    pub blobs: Vec<(u32, Option<Id>, Vec<u8>)>,
    /// The next object id.
    pub next_id: u32,
}

/// A framebuffer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FbState {
    /// Its id.
    pub id: u32,
    /// The file that made it.
    pub owner: Id,
    /// The object.
    pub key: Key,
    /// The GEM handle it was made with.
    pub handle: u32,
    /// Width, height, pitch, offset and fourcc.
    pub geometry: [u32; 5],
    /// Its origin in the resource's image.
    pub origin: (u32, u32),
    /// In the framebuffer table; not for one RMFB took out that a plane
    /// still shows.
    pub listed: bool,
}

/// One output's state.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct OutputState {
    /// The CRTC's mode, as its wire bytes.
    pub mode: Option<Vec<u8>>,
    /// The mode's blob.
    pub mode_blob: Option<u32>,
    /// The connector's EDID blob.
    pub edid_blob: Option<u32>,
    /// The primary plane's framebuffer and source.
    pub primary: Option<u32>,
    /// See `primary`.
    pub src: (u32, u32),
    /// The cursor: its image, position, hotspot, framebuffer, and the
    /// fence of an upload it waits for.
    pub cursor: Option<Key>,
    /// See `cursor`.
    pub cursor_pos: (i32, i32),
    /// See `cursor`.
    pub cursor_hot: (i32, i32),
    /// See `cursor`.
    pub cursor_fb: Option<u32>,
    /// See `cursor`.
    pub cursor_pending: Option<u64>,
    /// What SET_SCANOUT last set.
    pub shown: Option<(u32, [u32; 4])>,
    /// DPMS off.
    pub dpms_off: bool,
    /// The simulated vblank: the monotonic clock's ns when it went on (if
    /// on), the count then, and the frame time.
    pub vblank: (Option<u64>, u64, u64),
    /// A flip waiting for its vblank.
    pub flip: Option<Flip>,
    /// Events waiting for a vblank.
    pub queued: Vec<Queued>,
    /// The last point of its flips' timeline (kept as `output/<n>/fences`).
    pub fence_point: Option<u64>,
}

/// A DRM file, as the records say it.
#[derive(Clone, Debug, PartialEq)]
pub struct FileState {
    /// Its scalars.
    pub header: FileHeader,
    /// GEM handles.
    pub handles: BTreeMap<u32, Key>,
    /// Unclaimed out-fences.
    pub out_fences: OutFences,
    /// Unread events.
    pub events: Vec<Vec<u8>>,
    /// An EXECBUFFER journaled as about to be queued and not answered,
    /// by its request tag.
    pub submit: Option<(u32, Submit)>,
    /// The last EXECBUFFER answered.
    pub answered: Option<(u32, Vec<u8>)>,
}

/// Everything the records say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    /// DRM files.
    pub files: BTreeMap<Id, FileState>,
    /// Objects.
    pub objects: BTreeMap<Key, ObjectState>,
    /// dma-bufs: object and token.
    pub dma_bufs: BTreeMap<Id, (Key, Option<u64>)>,
    /// Readers of `stats`.
    pub stats: BTreeSet<Id>,
    /// High-water marks.
    pub marks: Marks,
    /// Master and authentication.
    pub masters: Option<Masters>,
    /// GEM_FLINK names and the last given.
    pub names: (BTreeMap<u32, Key>, u32),
    /// The display.
    pub kms: Option<KmsState>,
}

impl State {
    /// Folds `record` in. Records about a file that is not (or no longer)
    /// there change nothing: the log a dead instance left is the only
    /// witness, and it is read as it is.
    pub fn apply(&mut self, record: Record) {
        match record {
            Record::File(id, header) => match self.files.get_mut(&id) {
                Some(f) => f.header = header,
                None => {
                    self.files.insert(
                        id,
                        FileState {
                            header,
                            handles: BTreeMap::new(),
                            out_fences: OutFences::default(),
                            events: Vec::new(),
                            submit: None,
                            answered: None,
                        },
                    );
                }
            },
            Record::Closed(id) => {
                self.files.remove(&id);
                self.dma_bufs.remove(&id);
                self.stats.remove(&id);
            }
            Record::Handle(id, handle, key) => {
                if let Some(f) = self.files.get_mut(&id) {
                    f.handles.insert(handle, key);
                }
            }
            Record::HandleClosed(id, handle) => {
                if let Some(f) = self.files.get_mut(&id) {
                    f.handles.remove(&handle);
                }
            }
            Record::OutFences(id, fences) => {
                if let Some(f) = self.files.get_mut(&id) {
                    f.out_fences = fences;
                }
            }
            Record::Events(id, events) => {
                if let Some(f) = self.files.get_mut(&id) {
                    f.events = events;
                }
            }
            Record::Object(key, object) => {
                self.objects.insert(key, object);
            }
            Record::ObjectGone(key) => {
                self.objects.remove(&key);
            }
            Record::DmaBuf(id, key, token) => {
                self.dma_bufs.insert(id, (key, token));
            }
            Record::Stats(id) => {
                self.stats.insert(id);
            }
            Record::Submitting(id, tag, submit) => {
                if let Some(f) = self.files.get_mut(&id) {
                    f.submit = Some((tag, submit));
                }
            }
            Record::Withdrawn(id) => {
                if let Some(f) = self.files.get_mut(&id) {
                    f.submit = None;
                }
            }
            Record::Answered(id, tag, answer, header, out_fences) => {
                if let Some(f) = self.files.get_mut(&id) {
                    f.submit = None;
                    f.answered = Some((tag, answer));
                    f.header = header;
                    f.out_fences = out_fences;
                }
            }
            Record::Marks(marks) => self.marks = marks,
            Record::Masters(masters) => self.masters = Some(masters),
            Record::Names(names, last) => self.names = (names, last),
            Record::Kms(kms) => self.kms = Some(kms),
        }
    }

    /// Records that add up to this state, from nothing.
    pub fn records(&self) -> Vec<Record> {
        let mut out = vec![Record::Marks(self.marks)];
        for (&key, object) in &self.objects {
            out.push(Record::Object(key, object.clone()));
        }
        for (&id, f) in &self.files {
            out.push(Record::File(id, f.header.clone()));
            for (&handle, &key) in &f.handles {
                out.push(Record::Handle(id, handle, key));
            }
            out.push(Record::Events(id, f.events.clone()));
            match &f.answered {
                Some((tag, answer)) => out.push(Record::Answered(
                    id,
                    *tag,
                    answer.clone(),
                    f.header.clone(),
                    f.out_fences.clone(),
                )),
                None => out.push(Record::OutFences(id, f.out_fences.clone())),
            }
            if let Some((tag, submit)) = &f.submit {
                out.push(Record::Submitting(id, *tag, submit.clone()));
            }
        }
        for (&id, &(key, token)) in &self.dma_bufs {
            out.push(Record::DmaBuf(id, key, token));
        }
        out.extend(self.stats.iter().map(|&id| Record::Stats(id)));
        if let Some(m) = &self.masters {
            out.push(Record::Masters(m.clone()));
        }
        out.push(Record::Names(self.names.0.clone(), self.names.1));
        if let Some(kms) = &self.kms {
            out.push(Record::Kms(kms.clone()));
        }
        out
    }

    /// Whether any file, dma-buf or the display names object `key`.
    pub fn names_object(&self, key: Key) -> bool {
        self.files
            .values()
            .any(|f| f.handles.values().any(|&k| k == key))
            || self.dma_bufs.values().any(|&(k, _)| k == key)
            || self.kms.as_ref().is_some_and(|kms| {
                kms.fbs.iter().any(|fb| fb.key == key)
                    || kms.outputs.iter().any(|o| o.cursor == Some(key))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(ctx: Option<u32>) -> FileHeader {
        FileHeader {
            node: Node::Render,
            uid: 1000,
            caps: ClientCaps::default(),
            ctx,
            next_handle: 2,
            arena: None,
            syncobjs: false,
            in_fences: None,
        }
    }

    #[test]
    fn a_state_said_again_by_its_records_is_the_same_state() {
        let mut s = State::default();
        let object = ObjectState {
            res: 5,
            image: None,
            size: 4096,
            backing: 0x1000,
            token: Some(9),
            writable: Some(true),
            name: Some(1),
        };
        for r in [
            Record::Marks(Marks {
                offsets: 1 << 33,
                handles: 7,
            }),
            Record::File(3, header(None)),
            Record::File(3, header(Some(2))),
            Record::Object(1 << 32, object.clone()),
            Record::Object(1 << 33, object),
            Record::Handle(3, 1, 1 << 32),
            Record::Handle(3, 2, 1 << 33),
            Record::HandleClosed(3, 1),
            Record::ObjectGone(1 << 32),
            Record::Events(3, vec![vec![1, 2, 3]]),
            Record::Answered(3, 77, vec![0; 8], header(Some(2)), OutFences::default()),
            Record::DmaBuf(4, 1 << 33, None),
            Record::Stats(5),
            Record::Names([(1, 1 << 33)].into(), 1),
            Record::File(6, header(None)),
            Record::Closed(6),
            // About a file that is gone: nothing.
            Record::Handle(6, 1, 1 << 33),
        ] {
            s.apply(r);
        }
        assert_eq!(s.files.len(), 1);
        assert_eq!(s.files[&3].header.ctx, Some(2));
        assert_eq!(s.files[&3].handles, [(2, 1 << 33)].into());
        assert!(s.names_object(1 << 33) && !s.names_object(1 << 32));
        let mut again = State::default();
        for r in s.records() {
            // Each record survives the wire, too.
            let bytes = postcard::to_allocvec(&r).unwrap();
            again.apply(postcard::from_bytes(&bytes).unwrap());
        }
        assert_eq!(again, s);
    }
}
