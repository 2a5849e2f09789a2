//! Interrupts through the kernel's irq scheme, as it is in Redox's 2026
//! kernel (`src/scheme/irq.rs`, `src/arch/x86_shared/interrupt/irq.rs`,
//! read and write unchanged from 2026-04 to 2026-08):
//!
//! - A handle of `/scheme/irq/N` (ISA IRQs 0..16), `/scheme/irq/cpu-XX/N`
//!   (vector N + 32 of CPU XX; above 15 it is reserved by opening it with
//!   `O_CREAT` and freed by closing it) or `/scheme/irq/phandle-P/…` (a
//!   device-tree controller's interrupt) counts the interrupt's firings.
//! - Reading one never blocks: it gives the count as a native `usize`
//!   while it differs from the one last written back to the handle, and
//!   nothing otherwise. Each firing also posts a read event to every event
//!   queue watching the handle.
//! - A legacy line is masked at the interrupt controller when it fires;
//!   writing the count read back unmasks it (if no firing came since).
//!   MSI vectors are never masked, and are not written back here: the
//!   write would unmask the I/O APIC input of the same IRQ number, and
//!   IRQs 16..24 are also the I/O APIC's PCI INTx inputs, which another
//!   driver may be holding masked. Their firings are told from counts kept
//!   here instead.
//!
//! Waiting with a timeout: relibc ignores the event queue's timeout, so a
//! handle of the kernel's monotonic clock (`/scheme/time/1`), written the
//! deadline, posts an event when it passes. The kernel keeps every event
//! posted until it is read, so the handles are watched only while a wait
//! blocks: the scheme's own event loop takes the firings in between, and
//! a queue that watched them all the time would grow without end.

use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use event::{EventFlags, RawEventQueue};
use libredox::flag::CLOCK_MONOTONIC;
use log::debug;
use syscall::error::EINTR;

use super::pcid::LegacyInterrupt;

/// IRQ numbers count from IDT vector 32 (the kernel's `irq_to_vector`).
pub const VECTOR_BASE: u8 = 32;
/// What a read of an irq handle gives.
const COUNT: usize = std::mem::size_of::<usize>();
/// The event-queue token of the timer (lines use their index); events
/// are told apart by looking at the counts, not by token.
const TIMER: usize = usize::MAX;
/// The kernel's `TimeSpec`: `tv_sec: i64`, `tv_nsec: i32`, padded.
const TIMESPEC: usize = 16;
const _: () = assert!(std::mem::size_of::<syscall::data::TimeSpec>() == TIMESPEC);

/// The id of the boot processor, which this driver's vectors are taken
/// from and delivered to: pcid's own helper uses it both as the CPU to
/// name in `/scheme/irq/cpu-XX` and as the local APIC id of the MSI
/// address, and this follows.
pub fn bsp() -> io::Result<u8> {
    let mut id = [0u8; 8];
    // The kernel writes a u32 and reports a usize's worth of bytes.
    let n = File::open("/scheme/irq/bsp")?.read(&mut id)?;
    let id = match n {
        8 => u64::from_le_bytes(id),
        4 => u64::from(u32::from_le_bytes([id[0], id[1], id[2], id[3]])),
        _ => return Err(invalid(format!("/scheme/irq/bsp gave {n} bytes"))),
    };
    // The MSI address has eight bits of destination.
    u8::try_from(id).map_err(|_| invalid(format!("boot CPU id {id} does not fit an MSI address")))
}

/// Reserves up to `count` free vectors of CPU `cpu`, returning each one's
/// IRQ number with its handle; fewer (or none) when fewer are free.
pub fn allocate(cpu: u8, count: usize) -> io::Result<Vec<(u8, File)>> {
    let dir = format!("/scheme/irq/cpu-{cpu:02x}");
    let mut vectors = Vec::with_capacity(count);
    // The directory lists the vectors free when it is read.
    for entry in std::fs::read_dir(&dir)? {
        if vectors.len() == count {
            break;
        }
        let entry = entry?;
        let Some(irq) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u8>().ok())
        else {
            continue;
        };
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(entry.path());
        match opened {
            Ok(file) => vectors.push((irq, file)),
            // Taken by another driver since the listing.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => debug!("{dir}/{irq} is taken"),
            Err(e) => return Err(e),
        }
    }
    Ok(vectors)
}

/// Opens the handle of a legacy INTx line.
pub fn open_legacy(line: LegacyInterrupt) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    let path = match line {
        LegacyInterrupt::Irq(irq) => format!("/scheme/irq/{irq}"),
        LegacyInterrupt::Phandle {
            phandle,
            addr,
            cells,
        } => {
            let cells = usize::try_from(cells)
                .ok()
                .and_then(|n| addr.get(..n))
                .filter(|cells| !cells.is_empty())
                .ok_or_else(|| invalid(format!("interrupt specifier of {cells} cells")))?;
            let cells: Vec<String> = cells.iter().map(u32::to_string).collect();
            // The kernel reserves controller interrupts, as vectors.
            options.create(true).truncate(false);
            format!("/scheme/irq/phandle-{phandle}/{}", cells.join(","))
        }
    };
    options
        .open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("opening the INTx line {path}: {e}")))
}

/// How the function's interrupts come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// MSI-X: each handle its own vector.
    Msi,
    /// One legacy line, masked while its firing is handled.
    Legacy,
}

/// One interrupt handle.
#[derive(Debug)]
struct Line {
    file: File,
    /// MSI: the count last seen.
    seen: usize,
}

/// The function's interrupt handles, and what waiting for them takes.
#[derive(Debug)]
pub struct Lines {
    kind: Kind,
    lines: Vec<Line>,
    /// Legacy: the count read when the line last fired, to write back once
    /// the device has lowered it.
    unacked: Option<usize>,
    queue: RawEventQueue,
    timer: File,
}

impl Lines {
    /// Takes `files`, the function's handles of `kind` (bit `i` of what
    /// [`Lines::wait`] returns is `files[i]`; at most 32).
    pub fn new(kind: Kind, files: Vec<File>) -> io::Result<Lines> {
        if files.len() > 32 {
            return Err(invalid(format!("{} interrupt handles", files.len())));
        }
        let queue = RawEventQueue::new().map_err(queue_error)?;
        let timer = OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/scheme/time/{CLOCK_MONOTONIC}"))?;
        queue
            .subscribe(fd(&timer)?, TIMER, EventFlags::READ)
            .map_err(queue_error)?;
        let mut lines = Vec::with_capacity(files.len());
        for mut file in files {
            // A vector's count is the kernel's, kept across its users: what
            // it holds now is not this function's. (A legacy line's is
            // reported once, which a masked line left behind needs anyway.)
            let seen = match kind {
                Kind::Msi => count(&mut file)?.unwrap_or(0),
                Kind::Legacy => 0,
            };
            lines.push(Line { file, seen });
        }
        Ok(Lines {
            kind,
            lines,
            unacked: None,
            queue,
            timer,
        })
    }

    /// The handles, for an event loop.
    pub fn fds(&self) -> Vec<RawFd> {
        self.lines.iter().map(|l| l.file.as_raw_fd()).collect()
    }

    /// Which handles fired since the last look, without waiting.
    fn poll(&mut self) -> io::Result<u32> {
        let mut fired = 0;
        for (i, line) in self.lines.iter_mut().enumerate() {
            let Some(now) = count(&mut line.file)? else {
                continue;
            };
            match self.kind {
                Kind::Msi if now == line.seen => {}
                Kind::Msi => {
                    line.seen = now;
                    fired |= 1 << i;
                }
                Kind::Legacy => {
                    self.unacked = Some(now);
                    fired |= 1 << i;
                }
            }
        }
        Ok(fired)
    }

    /// Waits up to `timeout` (zero: not at all) for a handle to fire;
    /// returns which fired since the last call (bit `i`: handle `i`).
    pub fn wait(&mut self, timeout: Duration) -> io::Result<u32> {
        let fired = self.poll()?;
        if fired != 0 || timeout.is_zero() {
            return Ok(fired);
        }
        self.watch(EventFlags::READ)?;
        // A deadline too far to represent is none: an interrupt alone ends
        // the wait.
        let fired = self.block(Instant::now().checked_add(timeout));
        let unwatched = self.watch(EventFlags::empty());
        let fired = fired?;
        unwatched?;
        Ok(fired)
    }

    /// Subscribes the queue to the handles (`READ`) or not (empty).
    fn watch(&self, flags: EventFlags) -> io::Result<()> {
        for (i, line) in self.lines.iter().enumerate() {
            self.queue
                .subscribe(fd(&line.file)?, i, flags)
                .map_err(queue_error)?;
        }
        Ok(())
    }

    /// Blocks until a handle fired or `deadline` passed, the handles
    /// watched.
    fn block(&mut self, deadline: Option<Instant>) -> io::Result<u32> {
        if let Some(deadline) = deadline {
            self.arm(deadline)?;
        }
        loop {
            // First of all: a firing between the caller's look and the
            // subscription posted no event.
            let fired = self.poll()?;
            if fired != 0 {
                return Ok(fired);
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Ok(0);
            }
            match self.queue.next_event() {
                // The timer, a firing, or a stale event (the timer of an
                // earlier wait, a firing an earlier look already took): the
                // look above tells.
                Ok(_) => {}
                Err(e) if e.errno() == EINTR => {}
                Err(e) => return Err(queue_error(e)),
            }
        }
    }

    /// Has the timer post an event once `deadline` has passed. Each write
    /// adds a wake-up; those of earlier waits still come, and cost a look.
    fn arm(&mut self, deadline: Instant) -> io::Result<()> {
        // The clock is read after `Instant::now()` (the same clock), so the
        // wake-up comes no earlier than `deadline` and finds it passed.
        let left = deadline.saturating_duration_since(Instant::now());
        let now = libredox::call::clock_gettime(CLOCK_MONOTONIC).map_err(sys)?;
        let now = u128::try_from(now.tv_sec).unwrap_or(0) * 1_000_000_000
            + u128::try_from(now.tv_nsec).unwrap_or(0);
        let at = now + left.as_nanos();
        let mut spec = [0u8; TIMESPEC];
        let secs = i64::try_from(at / 1_000_000_000).unwrap_or(i64::MAX);
        spec[..8].copy_from_slice(&secs.to_ne_bytes());
        // Below 10^9: fits.
        spec[8..12].copy_from_slice(&((at % 1_000_000_000) as i32).to_ne_bytes());
        self.timer.write_all(&spec)
    }

    /// Legacy: unmasks the line after a firing was handled.
    pub fn unmask(&mut self) -> io::Result<()> {
        if self.kind != Kind::Legacy {
            return Ok(());
        }
        let (Some(count), Some(line)) = (self.unacked.take(), self.lines.first_mut()) else {
            return Ok(());
        };
        if line.file.write(&count.to_ne_bytes())? == 0 {
            // The line fired again since: it stays masked, and its next
            // read reports that firing, whose handling unmasks it.
            debug!("INTx fired again before its acknowledgement");
        }
        Ok(())
    }
}

/// A handle's firing count if it has one to report.
fn count(file: &mut File) -> io::Result<Option<usize>> {
    let mut bytes = [0u8; COUNT];
    loop {
        match file.read(&mut bytes) {
            Ok(0) => return Ok(None),
            Ok(COUNT) => return Ok(Some(usize::from_ne_bytes(bytes))),
            Ok(n) => return Err(invalid(format!("an irq handle gave {n} bytes"))),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn fd(file: &File) -> io::Result<usize> {
    usize::try_from(file.as_raw_fd()).map_err(|_| invalid("negative fd".into()))
}

fn sys(e: libredox::error::Error) -> io::Error {
    io::Error::from_raw_os_error(e.errno())
}

/// The event crate's errors are of its own libredox version.
fn queue_error(e: event::libredox::error::Error) -> io::Error {
    io::Error::from_raw_os_error(e.errno())
}

fn invalid(what: String) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, what)
}
