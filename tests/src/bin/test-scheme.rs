//! A scheme built on the seam that exercises every operation, for the
//! multi-process tests; also a small client for the tests to run (and kill)
//! as a separate process.
//!
//! `test-scheme serve NAME` serves `/scheme/NAME` with these paths:
//! - `echo`: write stores bytes, read returns them; a call returns the sum
//!   of its metadata and adds 1 to every payload byte.
//! - `wait/KEY`: a call blocks until KEY is signalled, then returns its value.
//! - `timed/KEY/MS`: the same, but it gives up MS milliseconds after it
//!   first parked and answers ETIME.
//! - `event/KEY`: readable (fevent READ) once KEY is signalled; a read
//!   blocks until then and returns the value as 8 bytes.
//! - `signal/KEY`: writing 8 bytes signals KEY with that value.
//! - `shm`: maps a 64 KiB shared region, whose upper half clients may only
//!   map read-only; read returns its first bytes, write puts bytes at its
//!   start.
//! - `fds`: send_fds hands the scheme a pipe's write end, into which it
//!   writes "from-daemon"; dup("pipe") returns the read end of a new pipe
//!   holding "to-client" (another file, passed back).
//! - `stats`: read returns "open=N closed=M".
//!
//! `test-scheme wait NAME KEY` opens `wait/KEY`, prints "parked", and blocks
//! in the call.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

use scheme_seam::daemon::Termination;
use std::time::{Duration, Instant};

use scheme_seam::{
    Answer, Context, Errno, EventFlags, HandleId, Mapping, Opened, Park, Result, Scheme, SchemeFd,
    ShmRegion, WakeKey,
};

const SHM_LEN: usize = 64 * 1024;

enum Kind {
    Echo(Vec<u8>),
    Wait(String),
    Timed(String, u64),
    Event(String),
    Signal(String),
    Shm,
    Fds,
    Stats,
}

struct TestScheme {
    handles: HashMap<HandleId, Kind>,
    next: HandleId,
    signals: HashMap<String, u64>,
    shm: Arc<ShmRegion>,
    closed: usize,
    /// How many times parked requests ran (a read of `stats` says).
    runs: usize,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for both ends.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: pipe2 just created both; nobody else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl TestScheme {
    fn kind(&mut self, id: HandleId) -> Result<&mut Kind> {
        self.handles.get_mut(&id).ok_or(Errno::EBADF)
    }
}

/// The wake key of signal name `key`.
fn key_of(key: &str) -> WakeKey {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    WakeKey(BuildHasherDefault::<DefaultHasher>::default().hash_one(key))
}

impl Scheme for TestScheme {
    fn open(&mut self, path: &str, _flags: usize, _ctx: &mut Context) -> Result<Opened> {
        let kind = match path.split_once('/') {
            None if path == "echo" => Kind::Echo(Vec::new()),
            None if path == "shm" => Kind::Shm,
            None if path == "fds" => Kind::Fds,
            None if path == "stats" => Kind::Stats,
            Some(("wait", key)) => Kind::Wait(key.into()),
            Some(("timed", rest)) => {
                let (key, ms) = rest.split_once('/').ok_or(Errno::ENOENT)?;
                Kind::Timed(key.into(), ms.parse().map_err(|_| Errno::ENOENT)?)
            }
            Some(("event", key)) => Kind::Event(key.into()),
            Some(("signal", key)) => Kind::Signal(key.into()),
            _ => return Err(Errno::ENOENT),
        };
        self.next += 1;
        self.handles.insert(self.next, kind);
        Ok(Opened::Handle(self.next))
    }

    fn dup(&mut self, id: HandleId, buf: &[u8], _ctx: &mut Context) -> Result<Opened> {
        match (self.kind(id)?, buf) {
            (Kind::Fds, b"pipe") => {
                let (read, write) = pipe()?;
                std::fs::File::from(write).write_all(b"to-client")?;
                Ok(Opened::Fd(read))
            }
            (Kind::Echo(data), b"") => {
                let copy = Kind::Echo(data.clone());
                self.next += 1;
                self.handles.insert(self.next, copy);
                Ok(Opened::Handle(self.next))
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn read(
        &mut self,
        id: HandleId,
        buf: &mut [u8],
        _offset: u64,
        _ctx: &mut Context,
    ) -> Result<Answer> {
        let text;
        let bytes: &[u8] = match self.handles.get(&id).ok_or(Errno::EBADF)? {
            Kind::Echo(data) => data,
            Kind::Event(key) => {
                let Some(value) = self.signals.get(key) else {
                    return Ok(Answer::Park(Park::on(key_of(key))));
                };
                text = value.to_le_bytes().to_vec();
                &text
            }
            Kind::Shm => {
                let n = buf.len().min(self.shm.len());
                self.shm.read_bytes(0, &mut buf[..n]);
                return Ok(Answer::Ready(n));
            }
            Kind::Stats => {
                text = format!(
                    "open={} closed={} runs={}",
                    self.handles.len(),
                    self.closed,
                    self.runs
                )
                .into_bytes();
                &text
            }
            _ => return Err(Errno::EBADF),
        };
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(Answer::Ready(n))
    }

    fn write(
        &mut self,
        id: HandleId,
        buf: &[u8],
        _offset: u64,
        ctx: &mut Context,
    ) -> Result<usize> {
        match self.kind(id)? {
            Kind::Echo(data) => *data = buf.to_vec(),
            Kind::Shm => {
                if buf.len() > self.shm.len() {
                    return Err(Errno::EFAULT);
                }
                self.shm.write_bytes(0, buf);
            }
            Kind::Signal(key) => {
                let value = u64::from_le_bytes(buf.try_into().map_err(|_| Errno::EINVAL)?);
                let key = key.clone();
                self.signals.insert(key.clone(), value);
                ctx.wake(key_of(&key));
                for (&h, kind) in &self.handles {
                    if matches!(kind, Kind::Event(k) if *k == key) {
                        ctx.post_event(h, EventFlags::READ);
                    }
                }
            }
            _ => return Err(Errno::EBADF),
        }
        Ok(buf.len())
    }

    fn call(
        &mut self,
        id: HandleId,
        payload: &mut [u8],
        metadata: &[u64],
        ctx: &mut Context,
    ) -> Result<Answer> {
        match self.handles.get(&id).ok_or(Errno::EBADF)? {
            Kind::Echo(_) => {
                payload.iter_mut().for_each(|b| *b = b.wrapping_add(1));
                Ok(Answer::Ready(metadata.iter().sum::<u64>() as usize))
            }
            Kind::Wait(key) | Kind::Timed(key, _) if self.signals.contains_key(key) => {
                Ok(Answer::Ready(self.signals[key] as usize))
            }
            Kind::Wait(key) => {
                self.runs += 1;
                Ok(Answer::Park(Park::on(key_of(key))))
            }
            Kind::Timed(_, _) if ctx.expired() => Err(Errno::ETIME),
            Kind::Timed(key, ms) => {
                self.runs += 1;
                let until = Instant::now() + Duration::from_millis(*ms);
                Ok(Answer::Park(Park::on(key_of(key)).until(until)))
            }
            _ => Err(Errno::ENOSYS),
        }
    }

    fn fevent(
        &mut self,
        id: HandleId,
        _flags: EventFlags,
        _ctx: &mut Context,
    ) -> Result<EventFlags> {
        match self.handles.get(&id).ok_or(Errno::EBADF)? {
            Kind::Event(key) if self.signals.contains_key(key) => Ok(EventFlags::READ),
            _ => Ok(EventFlags::empty()),
        }
    }

    fn mmap(
        &mut self,
        id: HandleId,
        offset: u64,
        len: usize,
        _ctx: &mut Context,
    ) -> Result<Mapping> {
        match self.handles.get(&id).ok_or(Errno::EBADF)? {
            Kind::Shm if offset as usize + len <= self.shm.len() && offset.is_multiple_of(4096) => {
                Ok(Mapping {
                    region: self.shm.clone(),
                    offset: offset as usize,
                    // The upper half is published read-only.
                    writable: offset + (len as u64) <= SHM_LEN as u64 / 2,
                })
            }
            Kind::Shm => Err(Errno::EINVAL),
            _ => Err(Errno::ENODEV),
        }
    }

    fn send_fds(
        &mut self,
        id: HandleId,
        fds: Vec<OwnedFd>,
        _arg: u64,
        _ctx: &mut Context,
    ) -> Result<usize> {
        if !matches!(self.kind(id)?, Kind::Fds) {
            return Err(Errno::EOPNOTSUPP);
        }
        let n = fds.len();
        for fd in fds {
            std::fs::File::from(fd).write_all(b"from-daemon")?;
        }
        Ok(n)
    }

    fn close(&mut self, id: HandleId, _ctx: &mut Context) {
        if self.handles.remove(&id).is_some() {
            self.closed += 1;
        }
    }
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve", name] => {
            let termination = Termination::install()?;
            let mut scheme = TestScheme {
                handles: HashMap::new(),
                next: 0,
                signals: HashMap::new(),
                shm: Arc::new(ShmRegion::new("test-scheme", SHM_LEN)?),
                closed: 0,
                runs: 0,
            };
            scheme_seam::serve(name, &mut scheme, &termination)
        }
        ["wait", name, key] => {
            let fd = SchemeFd::open(&format!("/scheme/{name}/wait/{key}"), 0)?;
            println!("parked");
            std::io::stdout().flush()?;
            let v = fd.call(&mut [], &[])?;
            println!("woke {v}");
            Ok(())
        }
        _ => Err(std::io::Error::other(
            "usage: test-scheme serve NAME | wait NAME KEY",
        )),
    }
}
