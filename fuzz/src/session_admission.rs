//! `session_admission`: virtio-gpud's object table
//! (`virtio_gpud::objects::Objects`) admitting arbitrary commands from
//! three sessions, after fixed set-up commands gave two of them memory,
//! contexts and resources (one attached, one shared by PRIME later if the
//! input asks), mixed with the table's other operations (share/adopt,
//! release, memory removal, session close, lost contexts).
//!
//! Input: a sequence of operations, each `[op: u8]` then its arguments:
//! - 0 admit: `[session][ctx fix][res fix][mem fix][flags][request: u16-prefixed]`
//!   and, with flags bit 0, `[stream: u16-prefixed]` (a SUBMIT_3D stream in
//!   the session's memory). A non-zero fix replaces the header's context,
//!   the command's resource or the backing entries' addresses with ones
//!   the table knows (ids and addresses are the table's, so the fuzzer
//!   need not guess them): the ctx and res fixes index the ids handed
//!   out so far (1 = the first); the mem fix's bits 0-5 index the
//!   session's allocations (1 = the first), bit 6 moves each entry to the next one, bit
//!   7 cuts the entries' lengths to fit.
//! - 1 share and adopt: `[from][to][res]`; 2 release: `[session][res]`;
//!   3 remove memory: `[session][mem]`; 4 close session: `[session]`;
//!   5 lose context: `[ctx]`; 6 add memory: `[session][size: u16]`.
//!
//! Checked against a model of the table the target keeps from the
//! operations' results (who holds which resource, contexts and their
//! sessions, lost contexts, memory and what it backs), compared with the
//! table's own listing (`describe`) at the end: an admitted command names
//! only its session's context and resources, backing entries lie in its
//! session's memory without overlapping, creates get fresh ids recorded
//! for their session, a refused command changes neither the table nor the
//! request; every DMA buffer is back in the pool afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use virtio_gpu_proto::{
    layout, CommandType, CtxAttachResource, CtxCreate, CtxId, Format, MemEntry, Resource3dParams,
    ResourceAttachBacking, ResourceCreate2d, ResourceCreate3d, ResourceId, Wire,
};
use virtio_gpud::dma::{DmaPool, DmaRegion};
use virtio_gpud::objects::{IdKind, NewId, Objects, SessionId};
use virtio_gpud::shape::Limits;
use zerocopy::IntoBytes;

use crate::{Input, Writer};

/// Bytes of DMA memory sessions allocate from.
const POOL: usize = 8 << 20;
/// Operations per input.
const MAX_OPS: usize = 64;

fn pool() -> &'static DmaPool {
    static POOL_ONCE: OnceLock<DmaPool> = OnceLock::new();
    POOL_ONCE.get_or_init(|| {
        DmaPool::new(DmaRegion::new_memfd(POOL, 0x1_0000_0000).expect("DMA region"))
    })
}

/// Offset of the resource id a command acts on.
fn resource_field(ty: CommandType) -> Option<usize> {
    layout(ty).and_then(|l| l.named_resource_field())
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
}

fn set_u32(b: &mut [u8], off: usize, v: u32) {
    if let Some(slot) = b.get_mut(off..off + 4) {
        slot.copy_from_slice(&v.to_le_bytes());
    }
}

/// The table as `describe` lists it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Listing {
    /// Resource → holders (creator first).
    resources: BTreeMap<u32, Vec<SessionId>>,
    /// Context → owner.
    contexts: BTreeMap<u32, SessionId>,
    /// Allocation address → (length, owner).
    memory: BTreeMap<u64, (u64, SessionId)>,
}

impl Listing {
    fn parse(text: &str) -> Listing {
        let mut l = Listing::default();
        for line in text.lines() {
            let w: Vec<&str> = line.split(' ').collect();
            match w.as_slice() {
                ["resource", id, "session", holders] => {
                    let holders = holders.split(',').map(|h| h.parse().unwrap()).collect();
                    assert!(l.resources.insert(id.parse().unwrap(), holders).is_none());
                }
                ["context", id, "session", owner] => {
                    let dup = l
                        .contexts
                        .insert(id.parse().unwrap(), owner.parse().unwrap());
                    assert!(dup.is_none());
                }
                ["memory", addr, len, "session", owner] => {
                    let addr = u64::from_str_radix(addr.trim_start_matches("0x"), 16).unwrap();
                    let entry = (len.parse().unwrap(), owner.parse().unwrap());
                    assert!(l.memory.insert(addr, entry).is_none());
                }
                _ => panic!("unexpected line in the objects listing: {line:?}"),
            }
        }
        l
    }
}

/// A resource as the model knows it.
#[derive(Debug, Clone, Default)]
struct Res {
    holders: Vec<SessionId>,
    /// Allocations its backing entries lie in (one per entry).
    backing: Vec<u64>,
    /// Bytes of backing attached.
    backing_len: u64,
    /// Contexts it is attached to.
    contexts: Vec<u32>,
}

/// What the table must hold: the model, kept by the target from the
/// operations' results and compared with the table's listing at the end.
#[derive(Debug, Default)]
struct Model {
    resources: BTreeMap<u32, Res>,
    contexts: BTreeMap<u32, SessionId>,
    lost: BTreeSet<u32>,
    memory: BTreeMap<u64, (u64, SessionId)>,
}

impl Model {
    fn holds(&self, session: SessionId, res: u32) -> bool {
        self.resources
            .get(&res)
            .is_some_and(|r| r.holders.contains(&session))
    }

    /// The session's allocation holding `len` bytes at `addr`.
    fn allocation(&self, session: SessionId, addr: u64, len: u64) -> Option<u64> {
        self.memory.iter().find_map(|(&a, &(l, owner))| {
            (owner == session && addr >= a && addr.checked_add(len).is_some_and(|e| e <= a + l))
                .then_some(a)
        })
    }

    fn backs_something(&self, addr: u64) -> bool {
        self.resources.values().any(|r| r.backing.contains(&addr))
    }

    /// `session` lets go of `res`: the resource and the memory it alone
    /// used, if it was the last holder.
    fn let_go(&mut self, session: SessionId, res: u32) -> Option<BTreeSet<u64>> {
        let r = self.resources.get_mut(&res)?;
        r.holders.retain(|&h| h != session);
        if !r.holders.is_empty() {
            return None;
        }
        let r = self.resources.remove(&res).expect("present");
        let mut freed = BTreeSet::new();
        for a in r.backing {
            if !self.backs_something(a) && self.memory.remove(&a).is_some() {
                freed.insert(a);
            }
        }
        Some(freed)
    }

    fn listing(&self) -> Listing {
        Listing {
            resources: self
                .resources
                .iter()
                .map(|(&id, r)| (id, r.holders.clone()))
                .collect(),
            contexts: self.contexts.clone(),
            memory: self.memory.clone(),
        }
    }
}

/// The table, the model, and the ids the fixes pick from.
struct State {
    objects: Objects,
    model: Model,
    next_resource: u32,
    next_context: u32,
    /// Every id handed out, for the fixes.
    resources: Vec<u32>,
    contexts: Vec<u32>,
    /// Every allocation made: session, address, length.
    memory: Vec<(SessionId, u64, u64)>,
}

impl State {
    fn add_memory(&mut self, session: SessionId, len: usize) -> Option<u64> {
        let buf = pool().alloc(len, 4096).ok()?;
        let addr = self.objects.add_memory(session, buf);
        assert!(!self.model.memory.contains_key(&addr));
        self.model.memory.insert(addr, (len as u64, session));
        self.memory.push((session, addr, len as u64));
        Some(addr)
    }

    /// Compares the model with the table's own listing.
    fn check_listing(&self) {
        let listing = Listing::parse(&self.objects.describe());
        let model = self.model.listing();
        assert!(
            listing == model,
            "the table lists\n{listing:?}\nthe model holds\n{model:?}"
        );
    }

    /// Admits `request`, checks the outcome against the model and updates
    /// it.
    fn admit(
        &mut self,
        session: SessionId,
        request: &mut [u8],
        stream: Option<&[u8]>,
    ) -> Result<u32, scheme_seam::Errno> {
        let orig = request.to_vec();
        let (mut next_res, mut next_ctx) = (self.next_resource, self.next_context);
        let mut asked = 0;
        // Bytes that are no request of the table's are EINVAL before
        // admission, as virtio-gpud's QUEUE answers them.
        let mut wire = match Wire::parse(&mut *request) {
            Ok(wire) => wire,
            Err(_) => return Err(scheme_seam::Errno::EINVAL),
        };
        let result = self.objects.admit(session, &mut wire, stream, |kind| {
            asked += 1;
            match kind {
                IdKind::Resource => {
                    next_res += 1;
                    NewId::Resource(ResourceId::new(next_res).expect("non-zero"))
                }
                IdKind::Context => {
                    next_ctx += 1;
                    NewId::Context(CtxId::new(next_ctx).expect("non-zero"))
                }
            }
        });
        assert!(asked <= 1, "admit asked for {asked} ids");
        let ty = CommandType(u32_at(&orig, 0));
        if crate::debug() {
            eprintln!("session {session}: {ty} ({} B) -> {result:?}", orig.len());
        }
        let Ok(admitted) = result else {
            assert_eq!(orig, request, "a refused {ty:?} changed the request");
            return result.map(|a| a.created);
        };
        (self.next_resource, self.next_context) = (next_res, next_ctx);
        let m = &mut self.model;
        let ctx = u32_at(&orig, 16);
        if ctx != 0 && ty != CommandType::CTX_CREATE {
            assert_eq!(
                m.contexts.get(&ctx),
                Some(&session),
                "{ty:?} admitted in context {ctx}, which is not session {session}'s"
            );
            assert!(
                !m.lost.contains(&ctx) || ty == CommandType::CTX_DESTROY,
                "{ty:?} admitted in lost context {ctx}"
            );
        }
        let res = resource_field(ty).map(|off| u32_at(&orig, off));
        match res {
            Some(0) => assert!(
                matches!(
                    ty,
                    CommandType::SET_SCANOUT
                        | CommandType::UPDATE_CURSOR
                        | CommandType::MOVE_CURSOR
                ),
                "{ty:?} admitted without a resource"
            ),
            Some(res) => assert!(
                m.holds(session, res),
                "{ty:?} admitted on resource {res}, which session {session} does not hold"
            ),
            None => {}
        }
        let res = res.unwrap_or(0);
        match ty {
            CommandType::CTX_CREATE => {
                let id = admitted.created;
                assert!(
                    id != 0 && !m.contexts.contains_key(&id),
                    "context id {id} reused"
                );
                assert_eq!(u32_at(request, 16), id);
                m.contexts.insert(id, session);
                self.contexts.push(id);
            }
            CommandType::RESOURCE_CREATE_2D
            | CommandType::RESOURCE_CREATE_3D
            | CommandType::RESOURCE_CREATE_BLOB => {
                let id = admitted.created;
                assert!(
                    id != 0 && !m.resources.contains_key(&id),
                    "resource id {id} reused"
                );
                assert_eq!(u32_at(request, 24), id);
                let r = Res {
                    holders: vec![session],
                    ..Res::default()
                };
                m.resources.insert(id, r);
                self.resources.push(id);
            }
            CommandType::RESOURCE_UNREF => {
                assert_eq!(
                    m.resources[&res].holders,
                    [session],
                    "unref of a shared resource"
                );
                m.resources.remove(&res);
            }
            CommandType::CTX_DESTROY => {
                m.contexts.remove(&ctx);
                m.lost.remove(&ctx);
                for r in m.resources.values_mut() {
                    r.contexts.retain(|&c| c != ctx);
                }
            }
            CommandType::CTX_ATTACH_RESOURCE | CommandType::CTX_DETACH_RESOURCE => {
                assert!(ctx != 0);
                let contexts = &mut m.resources.get_mut(&res).expect("held").contexts;
                contexts.retain(|&c| c != ctx);
                if ty == CommandType::CTX_ATTACH_RESOURCE {
                    contexts.push(ctx);
                }
            }
            CommandType::RESOURCE_DETACH_BACKING => {
                let r = m.resources.get_mut(&res).expect("held");
                assert_eq!(r.holders.len(), 1, "backing detached under another holder");
                r.backing.clear();
                r.backing_len = 0;
            }
            CommandType::RESOURCE_ATTACH_BACKING => {
                let n = u32_at(&orig, 28) as usize;
                let entries = &orig[32..];
                assert!((1..=16384).contains(&n) && entries.len() == n * 16);
                let mut allocations = Vec::new();
                let mut ranges: Vec<(u64, u64)> = Vec::new();
                for e in entries.chunks_exact(16) {
                    let addr = u64::from_le_bytes(e[..8].try_into().unwrap());
                    let len = u64::from(u32_at(e, 8));
                    assert!(len > 0, "an empty backing entry admitted");
                    let a = m.allocation(session, addr, len).unwrap_or_else(|| {
                        panic!("backing {addr:#x}+{len} outside session {session}'s memory")
                    });
                    allocations.push(a);
                    ranges.push((addr, addr + len));
                }
                ranges.sort_unstable();
                assert!(
                    ranges.windows(2).all(|w| w[0].1 <= w[1].0),
                    "overlapping backing"
                );
                let r = m.resources.get_mut(&res).expect("held");
                assert_eq!(r.holders.len(), 1, "backing attached under another holder");
                assert!(
                    r.backing.is_empty() && r.backing_len == 0,
                    "backing attached twice"
                );
                r.backing = allocations;
                r.backing_len = ranges.iter().map(|(a, b)| b - a).sum();
            }
            CommandType::TRANSFER_TO_HOST_3D | CommandType::TRANSFER_FROM_HOST_3D => {
                let r = &m.resources[&res];
                assert!(r.backing_len > 0, "transfer without backing");
                assert!(
                    ctx == 0 || r.contexts.contains(&ctx),
                    "transfer outside its context"
                );
            }
            CommandType::TRANSFER_TO_HOST_2D => {
                assert!(
                    m.resources[&res].backing_len > 0,
                    "transfer without backing"
                );
            }
            CommandType::SUBMIT_3D => {
                assert!(ctx != 0, "SUBMIT_3D admitted without a context");
                let bytes = stream.unwrap_or(&orig[32..]);
                assert_eq!(bytes.len(), u32_at(&orig, 24) as usize);
                let walked = virgl_stream::walk::walk(bytes).expect("an admitted stream walks");
                for named in walked.resources {
                    assert!(
                        m.resources
                            .get(&named)
                            .is_some_and(|r| r.contexts.contains(&ctx)),
                        "a stream names resource {named}, not attached to context {ctx}"
                    );
                }
            }
            _ => {}
        }
        Ok(admitted.created)
    }

    /// The fixed set-up: sessions 1 and 2 with memory, a context each and
    /// resources attached to it; session 3 has nothing.
    fn new() -> State {
        let mut s = State {
            objects: Objects::new(Limits::default()),
            model: Model::default(),
            next_resource: 0,
            next_context: 0,
            resources: Vec::new(),
            contexts: Vec::new(),
            memory: Vec::new(),
        };
        let a = s.add_memory(1, 64 << 10).expect("memory");
        let b = s.add_memory(1, 4096).expect("memory");
        let c = s.add_memory(2, 16 << 10).expect("memory");
        let setup = |s: &mut State, session, mut req: Vec<u8>| {
            let created = s
                .admit(session, &mut req, None)
                .unwrap_or_else(|e| panic!("set-up command refused: {e:?}"));
            (ResourceId::new(created), CtxId::new(created))
        };
        let mut first_ctx = None;
        for (session, memory) in [(1, a), (2, c)] {
            let ctx = setup(&mut s, session, ctx_create()).1.expect("created");
            first_ctx.get_or_insert(ctx);
            let tex = setup(&mut s, session, texture_2d(64, 64))
                .0
                .expect("created");
            setup(&mut s, session, attach_backing(tex, &[(memory, 16384)]));
            setup(
                &mut s,
                session,
                CtxAttachResource::new(ctx, tex).as_bytes().to_vec(),
            );
        }
        let ctx = first_ctx.expect("created");
        let placeholder = ResourceId::new(1).expect("non-zero");
        let image = ResourceCreate2d::new(placeholder, Format(1), 64, 64);
        let image = setup(&mut s, 1, image.as_bytes().to_vec())
            .0
            .expect("created");
        setup(&mut s, 1, attach_backing(image, &[(a + 16384, 16384)]));
        let buffer = setup(&mut s, 1, buffer_3d(4096)).0.expect("created");
        setup(&mut s, 1, attach_backing(buffer, &[(b, 4096)]));
        setup(
            &mut s,
            1,
            CtxAttachResource::new(ctx, buffer).as_bytes().to_vec(),
        );
        s
    }
}

/// CTX_CREATE (the table assigns the id).
pub fn ctx_create() -> Vec<u8> {
    CtxCreate::new(CtxId::new(1).expect("non-zero"), 0, "fuzz")
        .as_bytes()
        .to_vec()
}

/// RESOURCE_CREATE_3D of a `w`×`h` RGBA8 render target.
pub fn texture_2d(w: u32, h: u32) -> Vec<u8> {
    let params = Resource3dParams {
        target: 2,
        format: 67,
        bind: (1 << 1) | (1 << 3),
        width: w,
        height: h,
        depth: 1,
        array_size: 1,
        ..Resource3dParams::default()
    };
    ResourceCreate3d::new(ResourceId::new(1).expect("non-zero"), &params)
        .as_bytes()
        .to_vec()
}

/// RESOURCE_CREATE_3D of a `len`-byte vertex buffer.
pub fn buffer_3d(len: u32) -> Vec<u8> {
    let params = Resource3dParams {
        target: 0,
        format: 64,
        bind: 1 << 4,
        width: len,
        height: 1,
        depth: 1,
        array_size: 1,
        ..Resource3dParams::default()
    };
    ResourceCreate3d::new(ResourceId::new(1).expect("non-zero"), &params)
        .as_bytes()
        .to_vec()
}

/// RESOURCE_ATTACH_BACKING of `res` with `entries` (address, length).
pub fn attach_backing(res: ResourceId, entries: &[(u64, u32)]) -> Vec<u8> {
    let mut req = ResourceAttachBacking::new(res, entries.len() as u32)
        .as_bytes()
        .to_vec();
    for &(addr, len) in entries {
        req.extend_from_slice(MemEntry::new(addr, len).as_bytes());
    }
    req
}

fn pick<T: Copy>(list: &[T], choice: u8) -> Option<T> {
    (choice != 0 && !list.is_empty()).then(|| list[usize::from(choice - 1) % list.len()])
}

/// Applies an admit operation's fixes to `request`.
fn fix(s: &State, session: SessionId, request: &mut [u8], fixes: [u8; 3]) {
    let [ctx_fix, res_fix, mem_fix] = fixes;
    if let Some(ctx) = pick(&s.contexts, ctx_fix) {
        set_u32(request, 16, ctx);
    }
    let ty = CommandType(u32_at(request, 0));
    if let (Some(off), Some(res)) = (resource_field(ty), pick(&s.resources, res_fix)) {
        set_u32(request, off, res);
    }
    if mem_fix != 0 && ty == CommandType::RESOURCE_ATTACH_BACKING && request.len() > 32 {
        let own: Vec<(u64, u64)> = s
            .memory
            .iter()
            .filter(|m| m.0 == session)
            .map(|m| (m.1, m.2))
            .collect();
        if own.is_empty() {
            return;
        }
        for (i, e) in request[32..].chunks_exact_mut(16).enumerate() {
            // Bits 0-5 pick the allocation; with bit 6 each entry takes the
            // next one; bit 7 also cuts the entry's length to fit.
            let spread = if mem_fix & 0x40 != 0 { i } else { 0 };
            let first = usize::from(mem_fix & 0x3f).saturating_sub(1);
            let (base, len) = own[(first + spread) % own.len()];
            let addr = u64::from_le_bytes(e[..8].try_into().unwrap());
            e[..8].copy_from_slice(&(base + addr % len).to_le_bytes());
            if mem_fix & 0x80 != 0 {
                let l = u64::from(u32_at(e, 8)) % (len - addr % len) + 1;
                e[8..12].copy_from_slice(&(l as u32).to_le_bytes());
            }
        }
    }
}

/// The target.
pub fn run(data: &[u8]) {
    let free = pool().free_bytes();
    {
        let mut s = State::new();
        let mut input = Input::new(data);
        for _ in 0..MAX_OPS {
            if input.is_empty() {
                break;
            }
            operation(&mut s, &mut input);
        }
        s.check_listing();
    }
    assert_eq!(pool().free_bytes(), free, "DMA memory leaked");
}

fn session_of(b: u8) -> SessionId {
    SessionId::from(b % 3 + 1)
}

fn operation(s: &mut State, input: &mut Input<'_>) {
    match input.u8() % 7 {
        0 => {
            let session = session_of(input.u8());
            let fixes = [input.u8(), input.u8(), input.u8()];
            let flags = input.u8();
            let mut request = input.bytes16().to_vec();
            let stream = (flags & 1 != 0).then(|| input.bytes16());
            fix(s, session, &mut request, fixes);
            let _ = s.admit(session, &mut request, stream);
        }
        1 => {
            let (from, to) = (session_of(input.u8()), session_of(input.u8()));
            let res = pick(&s.resources, input.u8().max(1)).unwrap_or(0);
            match s.objects.share(from, res) {
                Ok(token) => {
                    assert!(s.model.holds(from, res), "shared a resource not held");
                    let id = s.objects.adopt(to, token).expect("a fresh share token");
                    assert_eq!(id.get(), res);
                    let holders = &mut s.model.resources.get_mut(&res).expect("held").holders;
                    if !holders.contains(&to) {
                        holders.push(to);
                    }
                }
                Err(_) => assert!(!s.model.holds(from, res), "share refused to a holder"),
            }
        }
        2 => {
            let session = session_of(input.u8());
            let res = pick(&s.resources, input.u8().max(1)).unwrap_or(0);
            match s.objects.release(session, res) {
                Ok(released) => {
                    assert!(s.model.holds(session, res), "released a resource not held");
                    let freed = s.model.let_go(session, res);
                    let got = released.map(|r| {
                        assert_eq!(r.id.get(), res);
                        r.memory
                            .iter()
                            .map(|b| b.device_addr())
                            .collect::<BTreeSet<_>>()
                    });
                    assert_eq!(got, freed, "release of resource {res}");
                }
                Err(_) => assert!(!s.model.holds(session, res), "release refused to a holder"),
            }
        }
        3 => {
            let session = session_of(input.u8());
            let addr = pick(&s.memory, input.u8().max(1)).map_or(0, |m| m.1);
            let removable = s.model.memory.get(&addr).is_some_and(|m| m.1 == session)
                && !s.model.backs_something(addr);
            match s.objects.remove_memory(session, addr) {
                Ok(buf) => {
                    assert!(removable, "memory {addr:#x} removed while not removable");
                    assert_eq!(buf.device_addr(), addr);
                    s.model.memory.remove(&addr);
                }
                Err(_) => assert!(!removable, "memory {addr:#x} not removed"),
            }
        }
        4 => {
            let session = session_of(input.u8());
            let release = s.objects.take_session(session);
            let m = &mut s.model;
            let held: Vec<u32> = m
                .resources
                .iter()
                .filter(|(_, r)| r.holders.contains(&session))
                .map(|(&id, _)| id)
                .collect();
            // Which released resource takes shared memory along depends on
            // the order they go in: compare the ids and all the memory.
            let (mut want_ids, mut want_memory) = (BTreeSet::new(), BTreeSet::new());
            for id in held {
                if let Some(freed) = m.let_go(session, id) {
                    want_ids.insert(id);
                    want_memory.extend(freed);
                }
            }
            let got_ids: BTreeSet<u32> = release.resources.iter().map(|r| r.id.get()).collect();
            let got_memory: BTreeSet<u64> = release
                .resources
                .iter()
                .flat_map(|r| r.memory.iter().map(|b| b.device_addr()))
                .collect();
            assert_eq!(got_ids, want_ids, "resources released with the session");
            assert_eq!(got_memory, want_memory, "their memory");
            let contexts: BTreeSet<u32> = m
                .contexts
                .iter()
                .filter(|(_, &o)| o == session)
                .map(|(&c, _)| c)
                .collect();
            for c in &contexts {
                m.contexts.remove(c);
                m.lost.remove(c);
            }
            let got: BTreeSet<u32> = release.contexts.iter().map(|c| c.get()).collect();
            assert_eq!(got, contexts, "contexts released with the session");
            let memory: BTreeSet<u64> = m
                .memory
                .iter()
                .filter(|(&a, &(_, o))| o == session && !m.backs_something(a))
                .map(|(&a, _)| a)
                .collect();
            for a in &memory {
                m.memory.remove(a);
            }
            let got: BTreeSet<u64> = release.memory.iter().map(|b| b.device_addr()).collect();
            assert_eq!(got, memory, "memory released with the session");
        }
        5 => {
            let ctx = pick(&s.contexts, input.u8().max(1)).unwrap_or(1);
            let lost = s.objects.lose_context(CtxId::new(ctx).expect("non-zero"));
            let owner = s.model.contexts.get(&ctx).copied();
            let fresh = owner.is_some() && s.model.lost.insert(ctx);
            assert_eq!(lost, owner.filter(|_| fresh), "lose_context({ctx})");
        }
        _ => {
            let session = session_of(input.u8());
            let len = usize::from(input.u16()) + 1;
            s.add_memory(session, len);
        }
    }
}

/// Seeds' side: an admit operation.
pub fn seed_admit(
    w: &mut Writer,
    session: u8,
    fixes: [u8; 3],
    request: &[u8],
    stream: Option<&[u8]>,
) {
    w.u8(0).u8(session).u8(fixes[0]).u8(fixes[1]).u8(fixes[2]);
    w.u8(u8::from(stream.is_some())).bytes16(request);
    if let Some(stream) = stream {
        w.bytes16(stream);
    }
}

/// The known resources, contexts and allocations after the set-up, for
/// the seeds (ids the fixes pick by index).
pub fn setup_ids() -> (Vec<u32>, Vec<u32>, BTreeSet<u64>) {
    let s = State::new();
    let mem = s.memory.iter().map(|m| m.1).collect();
    (s.resources.clone(), s.contexts.clone(), mem)
}
