//! Translating redox-scheme's requests into [`Scheme`] calls: pure code over
//! decoded [`Op`]s, so it is unit-tested on Linux with ops built from
//! constructed submission entries, exactly as the kernel would send them.

use std::os::fd::{IntoRawFd, OwnedFd};

use redox_scheme::scheme::Op;
use redox_scheme::OpenResult;
use syscall::flag::MapFlags;
use syscall::schemev2::NewFdFlags;

use crate::parked::resolve;
use crate::{
    Answer, Context, Errno, EventFlags, HandleId, Mapping, Opened, Park, Scheme, Stat,
    CALL_NONBLOCK,
};

/// The scheme root's number: the handle the registered capability stands
/// for, which every path open is relative to.
pub(super) const ROOT: HandleId = usize::MAX;

/// A response carries a handle number in the word that also carries error
/// numbers, and from here up the kernel would read it as an error (the top
/// 4095 values); so are handler handle ids below it, which also keeps
/// [`ROOT`] apart from them.
pub(super) const FIRST_RESERVED_ID: HandleId = usize::MAX - 4095;

/// Redox's page size on every architecture it runs on.
const PAGE_SIZE: usize = 4096;

/// What a handler answered, still to be addressed to its request.
pub(super) enum Done {
    Value(Result<usize, Errno>),
    Opened(Result<OpenResult, Errno>),
}

/// Runs the handler for `op`: the answer, or the park it asked for.
/// `ctx.expired()` says whether a parked op runs at its deadline.
pub(super) fn run_op<S: Scheme>(
    scheme: &mut S,
    op: &mut Op,
    ctx: &mut Context,
) -> Result<Done, Park> {
    if let Op::OpenAt(req) = op {
        // Handles are no directories: only the root opens paths.
        if req.fd != ROOT {
            return Ok(Done::Opened(Err(Errno::EACCES)));
        }
        let opened = scheme.open(root_relative(req.path()), *req.flags(), ctx);
        return Ok(Done::Opened(admit(scheme, opened, ctx)));
    }
    if op.file_id() == Some(ROOT) {
        return Ok(Done::Value(on_root(op)));
    }
    let nonblock = op.is_explicitly_nonblock();
    let expired = ctx.expired();
    Ok(match op {
        Op::Dup(req) => {
            let opened = scheme.dup(req.fd, req.buf(), ctx);
            Done::Opened(admit(scheme, opened, ctx))
        }
        Op::Read(req) => {
            let (id, offset) = (req.fd, req.offset);
            return waiting(scheme.read(id, req.buf(), offset, ctx), nonblock, expired);
        }
        Op::Write(req) => Done::Value(scheme.write(req.fd, req.buf(), req.offset, ctx)),
        Op::Call(req) => {
            let (ids, payload, metadata) = req.fds_and_payload_and_metadata();
            // The first word's CALL_NONBLOCK bit is the client's O_NONBLOCK
            // for this call; the handler sees the word without it.
            let mut words = [0u64; 3];
            let words = &mut words[..metadata.len().min(3)];
            words.copy_from_slice(&metadata[..words.len()]);
            let call_nonblock = words.first().is_some_and(|w| w & CALL_NONBLOCK != 0);
            if let Some(first) = words.first_mut() {
                *first &= !CALL_NONBLOCK;
            }
            match *ids {
                [id] => {
                    let answer = scheme.call(id, payload, words, ctx);
                    return waiting(answer, nonblock || call_nonblock, expired);
                }
                // A call naming two handles at once (call_multiple_ids).
                _ => Done::Value(Err(Errno::EOPNOTSUPP)),
            }
        }
        Op::Fevent { fd, req_flags, .. } => {
            let wanted = event_flags(req_flags.bits());
            Done::Value(
                scheme
                    .fevent(*fd, wanted, ctx)
                    .map(|now| now.bits() as usize),
            )
        }
        Op::MmapPrep {
            fd,
            offset,
            len,
            flags,
            ..
        } => {
            let len = *len;
            let wants_write = flags.contains(MapFlags::PROT_WRITE);
            Done::Value(scheme.mmap(*fd, *offset, len, ctx).and_then(|m| {
                if wants_write && !m.writable {
                    return Err(Errno::EACCES);
                }
                window_address(&m, len)
            }))
        }
        Op::Fstat(req) => {
            let id = req.fd;
            Done::Value(scheme.fstat(id, ctx).map(|st| {
                fill_stat(req.buf(), &st);
                0
            }))
        }
        // The kernel does these itself once the scheme agrees; a mapping's
        // memory is the handler's to keep or free.
        Op::Fcntl { .. } | Op::Fsync { .. } | Op::Munmap { .. } => Done::Value(Ok(0)),
        Op::ParseError { errno, .. } => Done::Value(Err(Errno(*errno))),
        _ => Done::Value(Err(Errno::EOPNOTSUPP)),
    })
}

/// What the root answers to anything but an open: it has no contents.
fn on_root(op: &Op) -> Result<usize, Errno> {
    match op {
        Op::Fcntl { .. } | Op::Fsync { .. } | Op::Fevent { .. } => Ok(0),
        _ => Err(Errno::EBADF),
    }
}

/// A read's or call's answer as the op's outcome (see [`resolve`]).
fn waiting(answer: Result<Answer, Errno>, nonblock: bool, expired: bool) -> Result<Done, Park> {
    match resolve(answer, nonblock, expired) {
        Ok(Answer::Park(park)) => Err(park),
        Ok(Answer::Ready(n)) => Ok(Done::Value(Ok(n))),
        Err(e) => Ok(Done::Value(Err(e))),
    }
}

/// What open or dup produced, in the kernel's terms.
fn admit<S: Scheme>(
    scheme: &mut S,
    opened: Result<Opened, Errno>,
    ctx: &mut Context,
) -> Result<OpenResult, Errno> {
    match opened? {
        Opened::Handle(id) if id >= FIRST_RESERVED_ID => {
            log::error!("handle id {id:#x} is reserved on Redox; closing it");
            scheme.close(id, ctx);
            Err(Errno::EIO)
        }
        // POSITIONED: the kernel keeps the file offset, as for a file.
        Opened::Handle(id) => Ok(OpenResult::ThisScheme {
            number: id,
            flags: NewFdFlags::POSITIONED,
        }),
        Opened::Fd(fd) => Ok(OpenResult::OtherScheme { fd: raw_number(fd) }),
    }
}

/// Where in this process the kernel takes the client's pages from: the
/// window's address, if it is page aligned and `len` bytes fit in the region
/// from there.
fn window_address(mapping: &Mapping, len: usize) -> Result<usize, Errno> {
    let end = mapping.offset.checked_add(len).ok_or(Errno::EINVAL)?;
    if end > mapping.region.len() {
        return Err(Errno::EINVAL);
    }
    // Inside the region's mapping, so no overflow.
    let address = mapping.region.as_ptr() as usize + mapping.offset;
    if !address.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    Ok(address)
}

/// Writes a handler's [`Stat`] into Redox's.
///
/// Redox's `Stat` has no `st_rdev`. A device file's number rides in
/// `st_dev` instead, which identifies the scheme and so carries nothing a
/// client of a device file needs; relibc reads it back as `st_rdev` for
/// character and block devices (the patch under `recipes/`).
fn fill_stat(out: &mut syscall::Stat, st: &Stat) {
    // Redox keeps type and permission bits in 16 bits, as POSIX does.
    out.st_mode = (st.mode & 0xffff) as u16;
    out.st_size = st.size;
    out.st_nlink = 1;
    if st.is_device() {
        out.st_dev = st.rdev;
    }
}

/// The path below the scheme, as handlers expect it.
fn root_relative(path: &str) -> &str {
    path.trim_start_matches('/')
}

/// Redox's event bits, of which ours are the same low bits.
pub(super) fn event_flags(bits: usize) -> EventFlags {
    // Truncation only drops bits no handler knows.
    EventFlags::from_bits_truncate(bits as u32)
}

/// Gives up ownership of `fd` as the descriptor number the kernel uses.
fn raw_number(fd: OwnedFd) -> usize {
    // An OwnedFd is never negative.
    fd.into_raw_fd() as usize
}

#[cfg(test)]
mod tests {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::sync::Arc;

    use redox_scheme::scheme::Op;
    use redox_scheme::OpenResult;
    use syscall::flag::{MapFlags, O_NONBLOCK};
    use syscall::schemev2::{NewFdFlags, Opcode, Sqe, SqeFlags};

    use super::{run_op, Done, FIRST_RESERVED_ID, ROOT};
    use crate::{
        Answer, Caller, Context, Errno, EventFlags, HandleId, Mapping, Opened, Park, Scheme,
        ShmRegion, Stat, WakeKey, CALL_NONBLOCK,
    };

    /// Records what reached it; answers as told.
    #[derive(Default)]
    struct Fake {
        opened: Vec<(String, usize)>,
        closed: Vec<HandleId>,
        next_open: Option<Opened>,
        read_answer: Option<Result<Answer, Errno>>,
        call_parks: bool,
        ready: EventFlags,
        region: Option<Arc<ShmRegion>>,
        writable_maps: bool,
    }

    impl Scheme for Fake {
        fn open(&mut self, path: &str, flags: usize, _: &mut Context) -> Result<Opened, Errno> {
            self.opened.push((path.into(), flags));
            Ok(self.next_open.take().unwrap_or(Opened::Handle(5)))
        }
        fn read(
            &mut self,
            _: HandleId,
            buf: &mut [u8],
            _: u64,
            _: &mut Context,
        ) -> Result<Answer, Errno> {
            buf.fill(b'r');
            self.read_answer
                .clone()
                .unwrap_or(Ok(Answer::Ready(buf.len())))
        }
        fn call(
            &mut self,
            id: HandleId,
            payload: &mut [u8],
            metadata: &[u64],
            _: &mut Context,
        ) -> Result<Answer, Errno> {
            if self.call_parks {
                return Ok(Answer::Park(Park::on(WakeKey(1))));
            }
            payload.iter_mut().for_each(|b| *b += 1);
            Ok(Answer::Ready(id + metadata.iter().sum::<u64>() as usize))
        }
        fn fevent(
            &mut self,
            _: HandleId,
            _: EventFlags,
            _: &mut Context,
        ) -> Result<EventFlags, Errno> {
            Ok(self.ready)
        }
        fn mmap(
            &mut self,
            _: HandleId,
            offset: u64,
            _: usize,
            _: &mut Context,
        ) -> Result<Mapping, Errno> {
            Ok(Mapping {
                region: self.region.clone().ok_or(Errno::ENODEV)?,
                offset: offset as usize,
                writable: self.writable_maps,
            })
        }
        fn close(&mut self, id: HandleId, _: &mut Context) {
            self.closed.push(id);
        }
    }

    /// An op as the kernel would submit it; `args` point at buffers the
    /// test keeps alive for the op's lifetime.
    fn op(opcode: Opcode, flags: SqeFlags, args: [u64; 6]) -> Op {
        let sqe = Sqe {
            opcode: opcode as u8,
            sqe_flags: flags,
            _rsvd: 0,
            tag: 7,
            args,
            caller: 42,
        };
        // SAFETY: every pointer in `args` refers to a buffer of the stated
        // length that the calling test keeps alive while it uses the op.
        unsafe { Op::from_sqe_unchecked(&sqe) }.expect("a known opcode")
    }

    #[test]
    fn fstat_fills_redox_stat_with_the_device_number_in_st_dev() {
        struct Dev;
        impl Scheme for Dev {
            fn open(&mut self, _: &str, _: usize, _: &mut Context) -> Result<Opened, Errno> {
                Ok(Opened::Handle(1))
            }
            fn fstat(&mut self, id: HandleId, _: &mut Context) -> Result<Stat, Errno> {
                match id {
                    1 => Ok(Stat {
                        mode: Stat::CHAR_DEVICE | 0o666,
                        rdev: Stat::device_number(226, 128),
                        size: 0,
                    }),
                    _ => Err(Errno::EBADF),
                }
            }
            fn close(&mut self, _: HandleId, _: &mut Context) {}
        }
        let mut st = syscall::Stat::default();
        let stat_op = |fd: HandleId, st: &mut syscall::Stat| {
            let args = [
                fd as u64,
                st as *mut syscall::Stat as u64,
                std::mem::size_of::<syscall::Stat>() as u64,
                0,
                0,
                0,
            ];
            op(Opcode::Fstat, SqeFlags::empty(), args)
        };
        let mut ctx = Context::new(Caller::default());
        let done = run_op(&mut Dev, &mut stat_op(1, &mut st), &mut ctx);
        assert_eq!(value(done), Ok(0));
        assert_eq!(st.st_mode, 0o020_666);
        assert_eq!(st.st_dev, (226 << 8) | 128);
        let done = run_op(&mut Dev, &mut stat_op(2, &mut st), &mut ctx);
        assert_eq!(value(done), Err(Errno::EBADF));
    }

    fn run(s: &mut Fake, op: &mut Op) -> Result<Done, Park> {
        run_op(s, op, &mut Context::new(Caller::default()))
    }

    fn value(done: Result<Done, Park>) -> Result<usize, Errno> {
        match done {
            Ok(Done::Value(v)) => v,
            _ => panic!("expected a value"),
        }
    }

    fn opened(done: Result<Done, Park>) -> Result<OpenResult, Errno> {
        match done {
            Ok(Done::Opened(o)) => o,
            _ => panic!("expected an open result"),
        }
    }

    fn open_op(dir: HandleId, path: &str, flags: u64) -> Op {
        let args = [
            dir as u64,
            path.as_ptr() as u64,
            path.len() as u64,
            flags,
            0,
            0,
        ];
        op(Opcode::OpenAt, SqeFlags::empty(), args)
    }

    #[test]
    fn opening_at_the_root_gives_a_positioned_handle_for_the_relative_path() {
        let mut s = Fake::default();
        let mut op = open_op(ROOT, "/card0", 0x3);
        let result = opened(run(&mut s, &mut op)).unwrap();
        let OpenResult::ThisScheme { number, flags } = result else {
            panic!("a handle of this scheme expected, got {result:?}");
        };
        assert_eq!(number, 5);
        assert_eq!(flags, NewFdFlags::POSITIONED);
        assert_eq!(s.opened, vec![("card0".to_string(), 3)]);
    }

    #[test]
    fn opening_relative_to_a_handle_is_refused_without_asking_the_scheme() {
        let mut s = Fake::default();
        let mut op = open_op(5, "x", 0);
        assert_eq!(opened(run(&mut s, &mut op)).unwrap_err(), Errno::EACCES);
        assert!(s.opened.is_empty());
    }

    #[test]
    fn a_reserved_handle_id_is_closed_again_and_the_open_fails() {
        let mut s = Fake {
            next_open: Some(Opened::Handle(FIRST_RESERVED_ID)),
            ..Fake::default()
        };
        let mut op = open_op(ROOT, "x", 0);
        assert_eq!(opened(run(&mut s, &mut op)).unwrap_err(), Errno::EIO);
        assert_eq!(s.closed, vec![FIRST_RESERVED_ID]);
    }

    #[test]
    fn a_foreign_fd_is_handed_over_by_number() {
        let (keep, give) = std::io::pipe().unwrap();
        let give = OwnedFd::from(give);
        let raw = std::os::fd::AsRawFd::as_raw_fd(&give);
        let mut s = Fake {
            next_open: Some(Opened::Fd(give)),
            ..Fake::default()
        };
        let mut op = open_op(ROOT, "x", 0);
        match opened(run(&mut s, &mut op)).unwrap() {
            OpenResult::OtherScheme { fd } => {
                assert_eq!(fd, raw as usize);
                // SAFETY: ownership passed out with the number; take it back.
                drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
            }
            other => panic!("{other:?}"),
        }
        drop(keep);
    }

    fn read_op(id: HandleId, buf: &mut [u8], flags: u64) -> Op {
        let args = [
            id as u64,
            buf.as_mut_ptr() as u64,
            buf.len() as u64,
            0,
            flags,
            0,
        ];
        op(Opcode::Read, SqeFlags::empty(), args)
    }

    #[test]
    fn a_blocking_read_that_would_block_parks_and_a_nonblocking_one_answers() {
        let mut s = Fake {
            read_answer: Some(Ok(Answer::Park(Park::on(WakeKey(1))))),
            ..Fake::default()
        };
        let mut buf = [0u8; 4];
        let mut blocking = read_op(5, &mut buf, 0);
        assert_eq!(run(&mut s, &mut blocking).err(), Some(Park::on(WakeKey(1))));
        let mut nonblocking = read_op(5, &mut buf, O_NONBLOCK as u64);
        assert_eq!(value(run(&mut s, &mut nonblocking)), Err(Errno::EAGAIN));
        // A genuine EAGAIN from the handler is an answer, not a park.
        s.read_answer = Some(Err(Errno::EAGAIN));
        assert_eq!(value(run(&mut s, &mut blocking)), Err(Errno::EAGAIN));
        s.read_answer = Some(Ok(Answer::Ready(4)));
        assert_eq!(
            value(run(&mut s, &mut blocking)),
            Ok(4),
            "the re-run answers"
        );
        assert_eq!(buf, *b"rrrr");
    }

    #[test]
    fn a_call_sees_payload_and_all_three_metadata_words() {
        let mut s = Fake::default();
        let mut payload = [1u8, 2, 3];
        let args = [9, payload.as_mut_ptr() as u64, 3, 100, 20, 3];
        let mut call = op(Opcode::Call, SqeFlags::empty(), args);
        assert_eq!(value(run(&mut s, &mut call)), Ok(9 + 123));
        assert_eq!(
            payload,
            [2, 3, 4],
            "the handler's writes reach the client buffer"
        );
        let mut both = op(Opcode::Call, SqeFlags::MULTIPLE_IDS, args);
        assert_eq!(value(run(&mut s, &mut both)), Err(Errno::EOPNOTSUPP));
    }

    #[test]
    fn a_call_nonblock_bit_is_taken_out_of_the_number_and_makes_a_park_eagain() {
        let mut s = Fake::default();
        let mut payload = [0u8; 1];
        let args = [9, payload.as_mut_ptr() as u64, 1, 100 | CALL_NONBLOCK, 0, 0];
        let mut call = op(Opcode::Call, SqeFlags::empty(), args);
        assert_eq!(
            value(run(&mut s, &mut call)),
            Ok(9 + 100),
            "the handler saw 100"
        );
        s.call_parks = true;
        assert_eq!(value(run(&mut s, &mut call)), Err(Errno::EAGAIN));
        let args = [9, payload.as_mut_ptr() as u64, 1, 100, 0, 0];
        let mut blocking = op(Opcode::Call, SqeFlags::empty(), args);
        assert!(run(&mut s, &mut blocking).is_err(), "a blocking call parks");
        let mut ctx = Context::rerun(Caller::default(), true);
        let done = run_op(&mut s, &mut blocking, &mut ctx);
        assert_eq!(
            value(done),
            Err(Errno::ETIMEDOUT),
            "parking at the deadline"
        );
    }

    #[test]
    fn fevent_answers_the_readiness_now() {
        let mut s = Fake {
            ready: EventFlags::READ,
            ..Fake::default()
        };
        let mut ev = op(Opcode::Fevent, SqeFlags::empty(), [5, 1, 0, 0, 0, 0]);
        assert_eq!(
            value(run(&mut s, &mut ev)),
            Ok(EventFlags::READ.bits() as usize)
        );
    }

    #[test]
    fn mmap_answers_the_page_aligned_window_address_inside_the_region() {
        let region = Arc::new(ShmRegion::new("dispatch-test", 4 * 4096).unwrap());
        let mut s = Fake {
            region: Some(region.clone()),
            ..Fake::default()
        };
        let write = MapFlags::PROT_READ | MapFlags::PROT_WRITE;
        let mmap = |offset: u64, len: u64, flags: MapFlags| {
            let args = [5, len, flags.bits() as u64, offset, 0, 0];
            op(Opcode::MmapPrep, SqeFlags::empty(), args)
        };
        let base = region.as_ptr() as usize;
        let read = MapFlags::PROT_READ;
        assert_eq!(
            value(run(&mut s, &mut mmap(4096, 8192, read))),
            Ok(base + 4096)
        );
        assert_eq!(
            value(run(&mut s, &mut mmap(100, 4096, read))),
            Err(Errno::EINVAL)
        );
        let too_long = mmap(8192, 3 * 4096, read);
        assert_eq!(value(run(&mut s, &mut { too_long })), Err(Errno::EINVAL));
        // A read-only window cannot be mapped writable; a writable one can.
        assert_eq!(
            value(run(&mut s, &mut mmap(0, 4096, write))),
            Err(Errno::EACCES)
        );
        s.writable_maps = true;
        assert_eq!(value(run(&mut s, &mut mmap(0, 4096, write))), Ok(base));
    }

    #[test]
    fn the_root_has_no_contents_and_unknown_operations_are_refused() {
        let mut s = Fake::default();
        let mut buf = [0u8; 4];
        assert_eq!(
            value(run(&mut s, &mut read_op(ROOT, &mut buf, 0))),
            Err(Errno::EBADF)
        );
        let mut fcntl = op(
            Opcode::Fcntl,
            SqeFlags::empty(),
            [ROOT as u64, 1, 0, 0, 0, 0],
        );
        assert_eq!(value(run(&mut s, &mut fcntl)), Ok(0));
        let mut truncate = op(Opcode::Ftruncate, SqeFlags::empty(), [5, 0, 0, 0, 0, 0]);
        assert_eq!(value(run(&mut s, &mut truncate)), Err(Errno::EOPNOTSUPP));
    }
}
