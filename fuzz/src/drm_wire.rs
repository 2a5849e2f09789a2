//! `drm_wire`: every ioctl payload drm-uapi knows, decoded the way the
//! daemons decode it (drmd's `ioctl/`, syncd's `scheme.rs`): the header,
//! the arrays by the header's counts (going on after an array that was not
//! carried, as the daemons do), `finish`, then the answer written back with
//! `set_header` / `set_array`.
//!
//! Input: `[ioctl: u8][misuse: u8][payload...]`. `ioctl` indexes
//! [`IOCTLS`] (modulo its length); `misuse` bits add calls a daemon must
//! never make but that must still be errors, not panics (a second header,
//! a write to an undeclared array, too many values, a header of another
//! size).
//!
//! Every call goes through [`Checked`], which holds an independent model of
//! the layout (a cursor over the payload, the spans declared) and checks
//! each result against it: the same values, the same errors, the payload
//! changed only where a write was allowed, and no more bytes allocated
//! than the payload holds (plus a little bookkeeping).

use std::mem::size_of;

use drm_uapi::core as dc;
use drm_uapi::sync_file as sf;
use drm_uapi::syncobj as so;
use drm_uapi::virtgpu as vg;
use drm_uapi::wire::{Payload, WireError, MAX_BYTES, MAX_COUNT};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes};

use crate::alloc_count::counted;
use crate::Input;

/// Bytes of bookkeeping a payload may allocate beyond its arrays (its list
/// of declared spans).
const BOOKKEEPING: usize = 1024;

/// One declared array: offset, element count, element size.
#[derive(Clone, Copy, Debug)]
struct Span {
    offset: usize,
    count: usize,
    elem: usize,
}

/// A [`Payload`] with a model of what each call must do.
pub struct Checked<'a> {
    p: Payload<'a>,
    /// The payload as received.
    orig: &'a [u8],
    /// What the payload must hold after the writes so far.
    model: Vec<u8>,
    cursor: usize,
    header: Option<usize>,
    spans: Vec<Span>,
    /// Bytes the payload's methods allocated.
    allocated: usize,
}

/// Panics unless the real and the model's results agree: equal values and
/// equal `Size`/`TooMany` errors; any `Layout` error matches another.
fn agree<T: PartialEq + std::fmt::Debug>(
    what: &str,
    real: &Result<T, WireError>,
    model: &Result<T, WireError>,
) {
    let same = match (real, model) {
        (Ok(a), Ok(b)) => a == b,
        (Err(WireError::Layout { .. }), Err(WireError::Layout { .. })) => true,
        (Err(a), Err(b)) => a == b,
        _ => false,
    };
    assert!(same, "{what}: payload gave {real:?}, the model {model:?}");
}

impl<'a> Checked<'a> {
    /// Wraps `buf`, whose received contents are `orig` (a copy).
    pub fn new(buf: &'a mut [u8], orig: &'a [u8]) -> Self {
        Checked {
            p: Payload::new(buf),
            orig,
            model: orig.to_vec(),
            cursor: 0,
            header: None,
            spans: Vec::new(),
            allocated: 0,
        }
    }

    fn len(&self) -> usize {
        self.orig.len()
    }

    /// The model of declaring the next array.
    fn declare(&self, count: u32, elem: usize, max: u32) -> Result<Span, WireError> {
        if count > max {
            return Err(WireError::TooMany { count, max });
        }
        let count = count as usize;
        // No overflow: count ≤ MAX_BYTES and elements are small.
        let end = self.cursor + count * elem;
        if end > self.len() {
            return Err(WireError::Size {
                expected: end,
                got: self.len(),
            });
        }
        Ok(Span {
            offset: self.cursor,
            count,
            elem,
        })
    }

    fn accept(&mut self, span: Span) {
        self.spans.push(span);
        self.cursor = span.offset + span.count * span.elem;
    }

    fn count<R>(&mut self, f: impl FnOnce(&mut Payload<'a>) -> R) -> R {
        let (r, n) = counted(|| f(&mut self.p));
        self.allocated += n;
        r
    }

    /// [`Payload::header`].
    pub fn header<T: FromBytes + IntoBytes + Immutable + PartialEq + std::fmt::Debug>(
        &mut self,
    ) -> Result<T, WireError> {
        let real = self.count(|p| p.header::<T>());
        let size = size_of::<T>();
        let model = if self.header.is_some() || self.cursor != 0 {
            Err(WireError::Layout { reason: "" })
        } else {
            T::read_from_prefix(self.orig)
                .map(|(v, _)| v)
                .map_err(|_| WireError::Size {
                    expected: size,
                    got: self.len(),
                })
        };
        agree("header", &real, &model);
        if real.is_ok() {
            self.header = Some(size);
            self.cursor = size;
        }
        real
    }

    /// [`Payload::array`] (through `u32s`/`u64s` for those types, as the
    /// daemons call them).
    pub fn array<T: FromBytes + IntoBytes + Immutable + PartialEq + std::fmt::Debug>(
        &mut self,
        count: u32,
    ) -> Result<Vec<T>, WireError> {
        // The typed calls the daemons make, converted to `T` outside the
        // count (the conversion's copy is the harness's, not the payload's).
        let name = std::any::type_name::<T>();
        let real: Result<Vec<T>, WireError> = if name == "u32" {
            let v = self.count(|p| p.u32s(count));
            v.map(|v| {
                v.iter()
                    .map(|x| T::read_from_bytes(x.as_bytes()).unwrap())
                    .collect()
            })
        } else if name == "u64" {
            let v = self.count(|p| p.u64s(count));
            v.map(|v| {
                v.iter()
                    .map(|x| T::read_from_bytes(x.as_bytes()).unwrap())
                    .collect()
            })
        } else {
            self.count(|p| p.array::<T>(count))
        };
        let span = self.declare(count, size_of::<T>(), MAX_COUNT);
        let model = span.map(|s| {
            self.orig[s.offset..s.offset + s.count * s.elem]
                .chunks_exact(s.elem)
                .map(|c| T::read_from_bytes(c).expect("one element"))
                .collect::<Vec<T>>()
        });
        agree("array", &real, &model);
        if let Ok(s) = span {
            self.accept(s);
        }
        real
    }

    /// [`Payload::bytes`]: returns the array's index.
    pub fn bytes(&mut self, count: u32) -> Result<usize, WireError> {
        let real = self.count(|p| p.bytes(count));
        let span = self.declare(count, 1, MAX_BYTES);
        agree("bytes", &real, &span.map(|_| self.spans.len()));
        if let Ok(s) = span {
            self.accept(s);
        }
        real
    }

    /// [`Payload::skip_array`]: returns the array's index.
    pub fn skip_array<T>(&mut self, count: u32) -> Result<usize, WireError> {
        let real = self.count(|p| p.skip_array::<T>(count));
        let span = self.declare(count, size_of::<T>(), MAX_COUNT);
        agree("skip_array", &real, &span.map(|_| self.spans.len()));
        if let Ok(s) = span {
            self.accept(s);
        }
        real
    }

    /// [`Payload::array_bytes`], copied out.
    pub fn array_bytes(&mut self, index: usize) -> Result<Vec<u8>, WireError> {
        let real = self.count(|p| p.array_bytes(index).map(<[u8]>::to_vec));
        let model = match self.spans.get(index) {
            Some(s) => Ok(self.model[s.offset..s.offset + s.count * s.elem].to_vec()),
            None => Err(WireError::Layout { reason: "" }),
        };
        agree("array_bytes", &real, &model);
        real
    }

    /// [`Payload::finish`].
    pub fn finish(&mut self) -> Result<(), WireError> {
        let real = self.count(|p| p.finish());
        let model = if self.cursor == self.len() {
            Ok(())
        } else {
            Err(WireError::Size {
                expected: self.cursor,
                got: self.len(),
            })
        };
        agree("finish", &real, &model);
        assert_eq!(real.is_ok(), self.p.len() == self.cursor);
        real
    }

    /// [`Payload::set_header`].
    pub fn set_header<T: IntoBytes + Immutable>(&mut self, value: &T) -> Result<(), WireError> {
        let real = self.count(|p| p.set_header(value));
        let bytes = value.as_bytes();
        let model = if self.header == Some(bytes.len()) {
            self.model[..bytes.len()].copy_from_slice(bytes);
            Ok(())
        } else {
            Err(WireError::Layout { reason: "" })
        };
        agree("set_header", &real, &model);
        real
    }

    /// [`Payload::set_array`] (through `set_u64s` for `u64`s).
    pub fn set_array<T: IntoBytes + Immutable>(
        &mut self,
        index: usize,
        values: &[T],
    ) -> Result<(), WireError> {
        let real = if std::any::type_name::<T>() == "u64" {
            let v: Vec<u64> = values
                .as_bytes()
                .chunks_exact(8)
                .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
                .collect();
            self.count(|p| p.set_u64s(index, &v))
        } else {
            self.count(|p| p.set_array(index, values))
        };
        let model = match self.spans.get(index) {
            Some(s) if s.elem == size_of::<T>() && values.len() <= s.count => {
                let src = values.as_bytes();
                self.model[s.offset..s.offset + src.len()].copy_from_slice(src);
                Ok(())
            }
            _ => Err(WireError::Layout { reason: "" }),
        };
        agree("set_array", &real, &model);
        real
    }

    /// The checks at the end: returns what the payload must now hold.
    fn done(self) -> Vec<u8> {
        let limit = self.orig.len() + BOOKKEEPING;
        assert!(
            self.allocated <= limit,
            "a {}-byte payload allocated {} bytes",
            self.orig.len(),
            self.allocated
        );
        self.model
    }
}

/// Which daemon serves an ioctl (they number ioctls independently).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// drmd: the core DRM ioctls.
    Core,
    /// drmd: DRM_IOCTL_VIRTGPU_*.
    Virtgpu,
    /// drmd → syncd: DRM_IOCTL_SYNCOBJ_*.
    Syncobj,
    /// syncd: SYNC_IOC_*.
    SyncFile,
}

type R = Result<(), WireError>;

/// One ioctl: its family, nr, and how the daemon decodes it.
pub struct Ioctl {
    /// For the seeds' file names.
    pub name: &'static str,
    /// Whose numbering `nr` is in.
    pub family: Family,
    /// The ioctl nr.
    pub nr: u64,
    decode: fn(&mut Checked<'_>) -> R,
}

macro_rules! ioctls {
    ($($name:literal, $family:ident, $nr:expr, $decode:expr;)*) => {
        /// Every ioctl drm-uapi defines a payload for (and those without one).
        pub const IOCTLS: &[Ioctl] = &[$(Ioctl {
            name: $name,
            family: Family::$family,
            nr: $nr,
            decode: $decode,
        },)*];
    };
}

ioctls! {
    "version", Core, dc::VERSION, version;
    "get_unique", Core, dc::GET_UNIQUE, get_unique;
    "get_magic", Core, dc::GET_MAGIC, |p| fixed::<dc::Auth>(p, |a| a.magic = 0x1234);
    "get_client", Core, dc::GET_CLIENT, |p| fixed::<dc::Client>(p, |c| { c.pid = 7; c.uid = 65534 });
    "get_stats", Core, dc::GET_STATS, |p| fixed::<dc::Stats>(p, |s| *s = dc::Stats::new_zeroed());
    "set_version", Core, dc::SET_VERSION, |p| fixed::<dc::SetVersion>(p, |v| { v.di_major = 1; v.di_minor = 4 });
    "gem_close", Core, dc::GEM_CLOSE, |p| header_only::<dc::GemClose>(p);
    "gem_flink", Core, dc::GEM_FLINK, |p| fixed::<dc::GemFlink>(p, |f| f.name = 1);
    "gem_open", Core, dc::GEM_OPEN, |p| fixed::<dc::GemOpen>(p, |o| { o.handle = 2; o.size = 4096 });
    "get_cap", Core, dc::GET_CAP, |p| fixed::<dc::GetCap>(p, |c| c.value = 1);
    "set_client_cap", Core, dc::SET_CLIENT_CAP, |p| header_only::<dc::SetClientCap>(p);
    "auth_magic", Core, dc::AUTH_MAGIC, |p| header_only::<dc::Auth>(p);
    "set_master", Core, dc::SET_MASTER, no_payload;
    "drop_master", Core, dc::DROP_MASTER, no_payload;
    "prime_handle_to_fd", Core, dc::PRIME_HANDLE_TO_FD, |p| header_only::<dc::PrimeHandle>(p);
    "prime_fd_to_handle", Core, dc::PRIME_FD_TO_HANDLE, |p| fixed::<dc::PrimeHandle>(p, |h| h.handle = 3);
    "map", Virtgpu, vg::MAP, |p| fixed::<vg::Map>(p, |m| m.offset = 1 << 32);
    "execbuffer", Virtgpu, vg::EXECBUFFER, execbuffer;
    "getparam", Virtgpu, vg::GETPARAM, |p| fixed::<vg::GetParam>(p, |g| g.value = 1);
    "resource_create", Virtgpu, vg::RESOURCE_CREATE, |p| fixed::<vg::ResourceCreate>(p, |r| { r.bo_handle = 1; r.res_handle = 9 });
    "resource_info", Virtgpu, vg::RESOURCE_INFO, |p| fixed::<vg::ResourceInfo>(p, |i| i.size = 4096);
    "transfer_from_host", Virtgpu, vg::TRANSFER_FROM_HOST, |p| header_only::<vg::Transfer>(p);
    "transfer_to_host", Virtgpu, vg::TRANSFER_TO_HOST, |p| header_only::<vg::Transfer>(p);
    "wait", Virtgpu, vg::WAIT, |p| header_only::<vg::Wait>(p);
    "get_caps", Virtgpu, vg::GET_CAPS, get_caps;
    "resource_create_blob", Virtgpu, vg::RESOURCE_CREATE_BLOB, create_blob;
    "context_init", Virtgpu, vg::CONTEXT_INIT, context_init;
    "syncobj_create", Syncobj, so::CREATE, |p| fixed::<so::Create>(p, |c| c.handle = 1);
    "syncobj_destroy", Syncobj, so::DESTROY, |p| header_only::<so::Destroy>(p);
    "syncobj_handle_to_fd", Syncobj, so::HANDLE_TO_FD, |p| header_only::<so::HandleToFd>(p);
    "syncobj_fd_to_handle", Syncobj, so::FD_TO_HANDLE, |p| fixed::<so::FdToHandle>(p, |f| f.handle = 2);
    "syncobj_wait", Syncobj, so::WAIT, syncobj_wait;
    "syncobj_timeline_wait", Syncobj, so::TIMELINE_WAIT, syncobj_timeline_wait;
    "syncobj_reset", Syncobj, so::RESET, syncobj_array;
    "syncobj_signal", Syncobj, so::SIGNAL, syncobj_array;
    "syncobj_query", Syncobj, so::QUERY, syncobj_query;
    "syncobj_transfer", Syncobj, so::TRANSFER, |p| header_only::<so::Transfer>(p);
    "syncobj_timeline_signal", Syncobj, so::TIMELINE_SIGNAL, syncobj_timeline_signal;
    "syncobj_eventfd", Syncobj, so::EVENTFD, no_payload;
    "sync_merge", SyncFile, sf::MERGE, |p| header_only::<sf::Merge>(p);
    "sync_file_info", SyncFile, sf::FILE_INFO, file_info;
    "sync_set_deadline", SyncFile, sf::SET_DEADLINE, |p| header_only::<sf::SetDeadline>(p);
}

/// A fixed struct read and checked to be the whole payload.
fn header_only<T: FromBytes + IntoBytes + Immutable + PartialEq + std::fmt::Debug>(
    p: &mut Checked<'_>,
) -> R {
    p.header::<T>()?;
    p.finish()
}

/// A fixed struct, with OUT fields written back by `answer`.
fn fixed<T: FromBytes + IntoBytes + Immutable + PartialEq + std::fmt::Debug>(
    p: &mut Checked<'_>,
    answer: impl FnOnce(&mut T),
) -> R {
    let mut v = p.header::<T>()?;
    p.finish()?;
    answer(&mut v);
    p.set_header(&v)
}

/// Ioctls without a payload: the daemons check it is empty.
fn no_payload(p: &mut Checked<'_>) -> R {
    p.finish()
}

/// drmd's VERSION (`ioctl/core.rs`).
fn version(p: &mut Checked<'_>) -> R {
    let mut v: dc::VersionHeader = p.header()?;
    let len32 = |len: u64| u32::try_from(len).map_err(|_| WireError::Layout { reason: "" });
    let name = p.skip_array::<u8>(len32(v.name_len)?)?;
    let date = p.skip_array::<u8>(len32(v.date_len)?)?;
    let desc = p.skip_array::<u8>(len32(v.desc_len)?)?;
    p.finish()?;
    for (index, text, room) in [
        (name, &b"virtio_gpu"[..], v.name_len),
        (date, b"0", v.date_len),
        (desc, b"virtio GPU", v.desc_len),
    ] {
        let n = text.len().min(room as usize);
        p.set_array(index, &text[..n])?;
    }
    v.version_minor = 1;
    v.name_len = 10;
    v.date_len = 1;
    v.desc_len = 10;
    p.set_header(&v)
}

/// drmd's GET_UNIQUE.
fn get_unique(p: &mut Checked<'_>) -> R {
    const UNIQUE: &[u8] = b"virtio0";
    let mut u: dc::UniqueHeader = p.header()?;
    let room_len = u32::try_from(u.unique_len).map_err(|_| WireError::Layout { reason: "" })?;
    let room = p.skip_array::<u8>(room_len)?;
    p.finish()?;
    if u.unique_len >= UNIQUE.len() as u64 {
        p.set_array(room, UNIQUE)?;
    }
    u.unique_len = UNIQUE.len() as u64;
    p.set_header(&u)
}

/// drmd's EXECBUFFER: every array declared before any is checked.
fn execbuffer(p: &mut Checked<'_>) -> R {
    let mut e: vg::ExecbufferHeader = p.header()?;
    let stream = p.bytes(e.size);
    let handles = p.array::<u32>(e.num_bo_handles);
    let ins = p.array::<vg::ExecSyncobj>(e.num_in_syncobjs);
    let outs = p.array::<vg::ExecSyncobj>(e.num_out_syncobjs);
    if e.flags & vg::EXECBUF_FENCE_FD_IN != 0 {
        p.array::<u64>(1)?;
    }
    p.finish()?;
    let (stream, _, _, _) = (stream?, handles?, ins?, outs?);
    let bytes = p.array_bytes(stream)?;
    assert_eq!(bytes.len(), e.size as usize);
    if e.flags & vg::EXECBUF_FENCE_FD_OUT != 0 {
        e.fence_fd = 5;
        p.set_header(&e)?;
    }
    Ok(())
}

/// drmd's GET_CAPS: the capset copied up to the client's room.
fn get_caps(p: &mut Checked<'_>) -> R {
    const CAPSET: [u8; 600] = [0xC5; 600];
    let c: vg::GetCapsHeader = p.header()?;
    let data = p.skip_array::<u8>(c.size)?;
    p.finish()?;
    let n = CAPSET.len().min(c.size as usize);
    p.set_array(data, &CAPSET[..n])
}

/// drmd's RESOURCE_CREATE_BLOB.
fn create_blob(p: &mut Checked<'_>) -> R {
    let mut b: vg::ResourceCreateBlobHeader = p.header()?;
    let cmd = p.bytes(b.cmd_size)?;
    p.finish()?;
    assert_eq!(p.array_bytes(cmd)?.len(), b.cmd_size as usize);
    b.bo_handle = 1;
    b.res_handle = 2;
    p.set_header(&b)
}

/// drmd's CONTEXT_INIT.
fn context_init(p: &mut Checked<'_>) -> R {
    let h: vg::ContextInitHeader = p.header()?;
    let params = p.array::<vg::ContextParam>(h.num_params);
    p.finish()?;
    params.map(drop)
}

/// syncd's WAIT: the points are zeros (at most MAX_COUNT of them).
fn syncobj_wait(p: &mut Checked<'_>) -> R {
    let mut w: so::WaitHeader = p.header()?;
    let handles = p.array::<u32>(w.count_handles);
    p.finish()?;
    handles?;
    w.first_signaled = w.count_handles.saturating_sub(1);
    p.set_header(&w)
}

/// syncd's TIMELINE_WAIT.
fn syncobj_timeline_wait(p: &mut Checked<'_>) -> R {
    let mut w: so::TimelineWaitHeader = p.header()?;
    let handles = p.array::<u32>(w.count_handles);
    let points = p.array::<u64>(w.count_handles);
    p.finish()?;
    let (handles, points) = (handles?, points?);
    assert_eq!(handles.len(), points.len());
    w.first_signaled = 0;
    p.set_header(&w)
}

/// syncd's RESET and SIGNAL.
fn syncobj_array(p: &mut Checked<'_>) -> R {
    let a: so::Array = p.header()?;
    let handles = p.array::<u32>(a.count_handles);
    p.finish()?;
    handles.map(drop)
}

/// syncd's QUERY: the points are written back at index 1.
fn syncobj_query(p: &mut Checked<'_>) -> R {
    let a: so::TimelineArray = p.header()?;
    let handles = p.array::<u32>(a.count_handles);
    let points = p.array::<u64>(a.count_handles);
    p.finish()?;
    let (handles, _) = (handles?, points?);
    let out: Vec<u64> = handles.iter().map(|&h| u64::from(h) * 3).collect();
    p.set_array(1, &out)
}

/// syncd's TIMELINE_SIGNAL.
fn syncobj_timeline_signal(p: &mut Checked<'_>) -> R {
    let a: so::TimelineArray = p.header()?;
    let handles = p.array::<u32>(a.count_handles);
    let points = p.array::<u64>(a.count_handles);
    p.finish()?;
    handles?;
    points.map(drop)
}

/// syncd's FILE_INFO: the fences written over the room, then the header.
fn file_info(p: &mut Checked<'_>) -> R {
    let mut h: sf::FileInfoHeader = p.header()?;
    let index = p.skip_array::<sf::FenceInfo>(h.num_fences)?;
    p.finish()?;
    let fences = 2.min(h.num_fences) as usize;
    let info = sf::FenceInfo {
        status: 1,
        timestamp_ns: 42,
        ..sf::FenceInfo::default()
    };
    if h.num_fences != 0 {
        p.set_array(index, &vec![info; fences])?;
    }
    h.num_fences = 2;
    h.status = 1;
    p.set_header(&h)
}

/// Calls a daemon must never make, each of which must be an error.
fn misuse(p: &mut Checked<'_>, bits: u8) {
    if bits & 1 != 0 {
        let _ = p.header::<u32>();
    }
    if bits & 2 != 0 {
        let _ = p.set_array(p.spans.len() + usize::from(bits >> 4), &[0u8]);
    }
    if bits & 4 != 0 {
        if let Some(i) = p.spans.iter().position(|s| s.elem == 1) {
            let too_many = vec![0u8; p.spans[i].count + 1];
            let _ = p.set_array(i, &too_many);
        }
    }
    if bits & 8 != 0 {
        let _ = p.set_header(&[0u8; 3]);
    }
    if bits & 16 != 0 {
        let _ = p.array_bytes(usize::from(bits));
    }
}

/// The target.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let ioctl = &IOCTLS[usize::from(input.u8()) % IOCTLS.len()];
    let misuse_bits = input.u8();
    let orig = input.rest();
    let mut buf = orig.to_vec();
    let expected = {
        let mut p = Checked::new(&mut buf, orig);
        let _ = (ioctl.decode)(&mut p);
        misuse(&mut p, misuse_bits);
        p.done()
    };
    assert!(
        buf == expected,
        "{}: the payload holds what no allowed write put there",
        ioctl.name
    );
}

/// A seed: `ioctl` (by name) with `payload`.
pub fn seed(name: &str, misuse: u8, payload: &[u8]) -> Vec<u8> {
    let index = IOCTLS
        .iter()
        .position(|i| i.name == name)
        .unwrap_or_else(|| panic!("no ioctl {name}"));
    let mut out = vec![index as u8, misuse];
    out.extend_from_slice(payload);
    out
}
