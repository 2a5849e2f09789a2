//! A daemon's life cycle, the same on both platforms: tell the starter it is
//! ready, and turn SIGTERM/SIGINT into an event the serving loop watches.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// Environment variable naming the fd of the pipe a starter waits on
/// (Redox init's protocol; used on Linux by tests and xtask too).
pub const INIT_NOTIFY: &str = "INIT_NOTIFY";

/// Tells whoever started this process that it serves now, by writing one
/// byte to the `INIT_NOTIFY` pipe, if one was given.
pub fn notify_ready() -> io::Result<()> {
    let Some(fd) = std::env::var(INIT_NOTIFY).ok() else {
        return Ok(());
    };
    let fd: RawFd = fd
        .parse()
        .map_err(|_| io::Error::other(format!("{INIT_NOTIFY}={fd} is not an fd number")))?;
    // SAFETY: the starter handed this fd to us for exactly this write; we
    // take ownership and close it after, as the protocol expects.
    let mut pipe = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    pipe.write_all(&[0])?;
    std::env::remove_var(INIT_NOTIFY);
    Ok(())
}

/// Write end of the termination pipe, for the signal handler.
static TERM_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(_: libc::c_int) {
    let fd = TERM_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; a full pipe just means a
        // wake-up is already pending.
        unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
    }
}

/// Becomes readable once SIGTERM or SIGINT arrives: watch it as an event
/// source and shut down in order when it fires.
#[derive(Debug)]
pub struct Termination {
    read: OwnedFd,
    _write: OwnedFd,
}

impl Termination {
    /// Installs the handlers. One per process.
    pub fn install() -> io::Result<Termination> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe() just created both and nobody else owns them.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        for fd in [&read, &write] {
            set_flags(fd.as_raw_fd())?;
        }
        TERM_PIPE.store(write.as_raw_fd(), Ordering::Relaxed);
        for signal in [libc::SIGTERM, libc::SIGINT] {
            // SAFETY: `on_signal` only performs an async-signal-safe write.
            let previous =
                unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
            if previous == libc::SIG_ERR {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Termination {
            read,
            _write: write,
        })
    }

    /// The fd to watch for readability.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Whether a termination signal has arrived (consumes the wake-up).
    pub fn requested(&self) -> bool {
        let mut b = [0u8; 16];
        // SAFETY: reading into a local buffer from our own non-blocking pipe.
        unsafe { libc::read(self.read.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) > 0 }
    }
}

fn set_flags(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own, with valid commands and flags.
    let ok = unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) >= 0
            && libc::fcntl(
                fd,
                libc::F_SETFL,
                libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
            ) >= 0
    };
    if ok {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
