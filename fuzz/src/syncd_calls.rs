//! `syncd_calls`: syncd's scheme (`syncd::scheme::SyncScheme`) driven
//! through the `scheme_seam::Scheme` trait as the bus would drive it:
//! opens, calls with arbitrary payloads, ioctl nrs and metadata, dups,
//! reads, fevents, mmaps and closes, on a root, the timeline page, two
//! syncobj tables, two timeline owners and a sync_file opened first.
//!
//! Input: a sequence of operations, each `[op: u8]` then its arguments:
//! - 0 call: `[handle][nr][patch][patch at][payload: u16-prefixed][extra words: u8 count, u64s]`
//! - 1 dup: `[handle][patch][patch at][buf: u16-prefixed]`
//! - 2 open: `[path]` (one of the scheme's paths, by index, with numbers from the input)
//! - 3 close `[handle]`; 4 read `[handle][len: u16][offset: u8]`;
//!   5 fevent `[handle][flags]`; 6 mmap `[handle][offset: u16][len: u16]`
//!
//! `handle` indexes the handles open now. `nr` below 0xF0 indexes
//! [`NRS`]; from 0xF0 on a raw `u64` nr follows. A non-zero `patch` writes
//! the capability token of the handle it indexes into the payload (so a
//! MERGE, an FD_TO_HANDLE or a FILE_INFO can name a real sync_file).
//!
//! Checked: nothing panics; a call that parks left the payload and the
//! scheme's counters as they were, and run again at its deadline it
//! answers rather than park again; the scheme counts exactly the handles
//! that were opened and not closed.

use scheme_seam::{Answer, Caller, Context, Errno, EventFlags, HandleId, Opened, Scheme};
use sync_client::api;
use syncd::scheme::SyncScheme;

use drm_uapi::sync_file as sf;
use drm_uapi::syncobj as so;

use crate::{Input, Writer};

/// The nrs a call picks from: every one the scheme serves.
pub const NRS: &[u64] = &[
    sf::MERGE,
    sf::FILE_INFO,
    sf::SET_DEADLINE,
    so::CREATE,
    so::DESTROY,
    so::HANDLE_TO_FD,
    so::FD_TO_HANDLE,
    so::WAIT,
    so::RESET,
    so::SIGNAL,
    so::TIMELINE_WAIT,
    so::QUERY,
    so::TRANSFER,
    so::TIMELINE_SIGNAL,
    so::EVENTFD,
    api::TIMELINE_ID,
    api::SIGNAL,
    api::FAIL,
    api::TOKEN,
    api::SUBMIT_DEPS,
    api::CHECK_DEPS,
];

/// The handles opened at the start, in order.
pub const SETUP: &[&str] = &[
    "",
    "timelines",
    "syncobj",
    "syncobj",
    "timeline/gpu",
    "timeline/other",
];
/// Operations per input.
const MAX_OPS: usize = 64;

struct State {
    scheme: SyncScheme,
    ctx: Context,
    handles: Vec<HandleId>,
    /// The root handle, for the counters.
    root: HandleId,
}

impl State {
    fn pick(&self, b: u8) -> Option<HandleId> {
        (!self.handles.is_empty()).then(|| self.handles[usize::from(b) % self.handles.len()])
    }

    fn open(&mut self, path: &str) -> Result<HandleId, Errno> {
        let opened = self.scheme.open(path, 0, &mut self.ctx)?;
        self.opened(opened)
    }

    fn opened(&mut self, opened: Opened) -> Result<HandleId, Errno> {
        match opened {
            Opened::Handle(h) => {
                assert!(!self.handles.contains(&h), "handle {h} handed out twice");
                self.handles.push(h);
                Ok(h)
            }
            Opened::Fd(_) => Err(Errno::EBADF),
        }
    }

    /// The scheme's counters (its root's text).
    fn counters(&mut self) -> String {
        let mut buf = vec![0u8; 512];
        let Ok(Answer::Ready(n)) = self.scheme.read(self.root, &mut buf, 0, &mut self.ctx) else {
            panic!("the root reads");
        };
        buf.truncate(n);
        String::from_utf8(buf).expect("counters are text")
    }

    fn check_counts(&mut self) {
        let text = self.counters();
        let handles = text
            .lines()
            .find_map(|l| l.strip_prefix("handles "))
            .and_then(|n| n.parse::<usize>().ok())
            .expect("a handles line");
        assert_eq!(
            handles,
            self.handles.len(),
            "syncd counts {handles} handles, {} are open:\n{text}",
            self.handles.len()
        );
    }

    fn token(&mut self, h: HandleId) -> Option<u64> {
        let mut t = [0u8; 8];
        self.scheme
            .call(h, &mut t, &[api::TOKEN], &mut self.ctx)
            .ok()?;
        Some(u64::from_le_bytes(t))
    }

    /// Writes the token of the handle `patch` picks at `at` in `bytes`.
    fn patch(&mut self, bytes: &mut [u8], patch: u8, at: u8) {
        if patch == 0 || bytes.len() < 8 {
            return;
        }
        let Some(h) = self.pick(patch - 1) else {
            return;
        };
        if let Some(t) = self.token(h) {
            let at = usize::from(at) % (bytes.len() - 7);
            bytes[at..at + 8].copy_from_slice(&t.to_le_bytes());
        }
    }
}

/// The target.
pub fn run(data: &[u8]) {
    let scheme = SyncScheme::new().expect("syncd's page");
    let ctx = Context::new(Caller {
        pid: 1,
        uid: 0,
        gid: 0,
    });
    let mut s = State {
        scheme,
        ctx,
        handles: Vec::new(),
        root: 0,
    };
    for path in SETUP {
        s.open(path).expect("set-up open");
    }
    s.root = s.handles[0];
    // A sync_file of the first timeline's point 1.
    let Ok(Answer::Ready(tid)) =
        s.scheme
            .call(s.handles[4], &mut [], &[api::TIMELINE_ID], &mut s.ctx)
    else {
        panic!("TIMELINE_ID");
    };
    s.open(&format!("fence/{tid}/1")).expect("fence file");
    let mut input = Input::new(data);
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        if operation(&mut s, &mut input) {
            s.check_counts();
        }
        let _ = s.ctx.take_events();
    }
    s.check_counts();
    let handles = std::mem::take(&mut s.handles);
    for h in handles {
        s.scheme.close(h, &mut s.ctx);
    }
}

/// One operation; returns whether it may have opened or closed handles.
fn operation(s: &mut State, input: &mut Input<'_>) -> bool {
    let op = input.u8() % 7;
    match op {
        0 => {
            let h = input.u8();
            let nr = match input.u8() {
                b @ 0..0xF0 => NRS[usize::from(b) % NRS.len()],
                _ => input.u64(),
            };
            let (patch, at) = (input.u8(), input.u8());
            let mut payload = input.bytes16().to_vec();
            let mut metadata = vec![nr];
            for _ in 0..input.u8() % 4 {
                metadata.push(input.u64());
            }
            let Some(h) = s.pick(h) else { return false };
            s.patch(&mut payload, patch, at);
            // Only waits park; the snapshot is for them.
            let may_park = matches!(nr, so::WAIT | so::TIMELINE_WAIT);
            let before = may_park.then(|| (payload.clone(), s.counters()));
            let r = s.scheme.call(h, &mut payload, &metadata, &mut s.ctx);
            if crate::debug() {
                eprintln!("call handle {h} nr {nr:#x} ({} B) -> {r:?}", payload.len());
            }
            if let Ok(Answer::Park(_)) = r {
                let before = before.expect("only a wait parks");
                assert!(before.0 == payload, "a parked call changed its payload");
                assert_eq!(before.1, s.counters(), "a parked call changed the scheme");
                let mut at_deadline = Context::rerun(Caller::default(), true);
                let r = s.scheme.call(h, &mut payload, &metadata, &mut at_deadline);
                assert!(
                    !matches!(r, Ok(Answer::Park(_))),
                    "a wait parked again at its deadline"
                );
            }
        }
        1 => {
            let h = input.u8();
            let (patch, at) = (input.u8(), input.u8());
            let mut buf = input.bytes16().to_vec();
            let Some(h) = s.pick(h) else { return false };
            s.patch(&mut buf, patch, at);
            let r = s.scheme.dup(h, &buf, &mut s.ctx);
            if crate::debug() {
                eprintln!("dup handle {h} ({} B) -> {r:?}", buf.len());
            }
            if let Ok(opened) = r {
                let _ = s.opened(opened);
            }
        }
        2 => {
            let path = match input.u8() % 6 {
                0 => String::new(),
                1 => api::PAGE_PATH.to_string(),
                2 => api::SYNCOBJ_PATH.to_string(),
                3 => format!("{}t{}", api::TIMELINE_PATH, input.u8()),
                4 => format!("{}{}/{}", api::FENCE_PATH, input.u8() % 4, input.u64()),
                _ => String::from_utf8_lossy(input.bytes16()).into_owned(),
            };
            let _ = s.open(&path);
        }
        3 => {
            let b = input.u8();
            if let Some(h) = s.pick(b) {
                if h != s.root {
                    s.handles.retain(|&x| x != h);
                    s.scheme.close(h, &mut s.ctx);
                }
            }
        }
        4 => {
            let h = input.u8();
            let mut buf = vec![0u8; usize::from(input.u16() % 8192)];
            let offset = u64::from(input.u8());
            if let Some(h) = s.pick(h) {
                if let Ok(Answer::Ready(n)) = s.scheme.read(h, &mut buf, offset, &mut s.ctx) {
                    assert!(n <= buf.len());
                }
            }
        }
        5 => {
            let h = input.u8();
            let flags = EventFlags::from_bits_truncate(u32::from(input.u8()));
            if let Some(h) = s.pick(h) {
                let _ = s.scheme.fevent(h, flags, &mut s.ctx);
            }
        }
        _ => {
            let h = input.u8();
            let (offset, len) = (u64::from(input.u16()), usize::from(input.u16()));
            if let Some(h) = s.pick(h) {
                if let Ok(m) = s.scheme.mmap(h, offset, len, &mut s.ctx) {
                    assert!(!m.writable, "syncd mapped its page writable");
                    assert!(m.offset + len <= m.region.len());
                }
            }
        }
    }
    matches!(op, 1..=3)
}

/// Seeds' side: a call on the handle at `handle` with the nr at index
/// `nr` of [`NRS`].
pub fn seed_call(w: &mut Writer, handle: u8, nr: u64, patch: Option<(u8, u8)>, payload: &[u8]) {
    let index = NRS.iter().position(|&n| n == nr).expect("a known nr");
    let (patch, at) = patch.unwrap_or((0, 0));
    w.u8(0).u8(handle).u8(index as u8).u8(patch).u8(at);
    w.bytes16(payload).u8(0);
}

/// Seeds' side: a dup of the handle at `handle`.
pub fn seed_dup(w: &mut Writer, handle: u8, patch: Option<(u8, u8)>, buf: &[u8]) {
    let (patch, at) = patch.unwrap_or((0, 0));
    w.u8(1).u8(handle).u8(patch).u8(at).bytes16(buf);
}
