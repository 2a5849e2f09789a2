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

/// How long [`Started::terminate`] waits after SIGTERM before SIGKILL.
#[cfg(target_os = "linux")]
pub const TERM_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// A daemon this process started the way init starts it: with an
/// `INIT_NOTIFY` pipe whose byte says it serves. Stopped with SIGTERM when
/// dropped (Linux; tests, tools and the demo start the stack this way).
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub struct Started {
    child: std::process::Child,
}

#[cfg(target_os = "linux")]
impl Started {
    /// Starts `cmd` and waits until it is ready (or has failed).
    pub fn start(cmd: std::process::Command) -> io::Result<Started> {
        use std::io::Read;

        let program = cmd.get_program().to_owned();
        let (mut started, mut ready) = Started::spawn(cmd, &[])?;
        let mut byte = [1u8];
        if let Err(e) = ready.read_exact(&mut byte) {
            let status = started.child.wait()?;
            return Err(io::Error::other(format!(
                "{program:?} exited ({status}) before it was ready: {e}"
            )));
        }
        Ok(started)
    }

    /// Starts `cmd` with the `INIT_NOTIFY` pipe, and each `(fd, number)` of
    /// `pass` as descriptor `number` of the child (numbers above 3), without
    /// waiting: its readiness byte (or end of file, if it fails first)
    /// comes on the returned pipe.
    pub fn spawn(
        mut cmd: std::process::Command,
        pass: &[(RawFd, RawFd)],
    ) -> io::Result<(Started, std::io::PipeReader)> {
        use std::os::unix::process::CommandExt;

        /// The descriptor number the daemon is told to write to.
        const NOTIFY_FD: RawFd = 3;
        if pass.iter().any(|&(_, n)| n <= NOTIFY_FD) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "passed descriptors go above INIT_NOTIFY's",
            ));
        }
        let (ready, notify) = std::io::pipe()?;
        let notify = OwnedFd::from(notify);
        let mut moves = vec![(notify.as_raw_fd(), NOTIFY_FD)];
        moves.extend_from_slice(pass);
        cmd.env(INIT_NOTIFY, NOTIFY_FD.to_string());
        // SAFETY: only fcntl and dup2, which are async-signal-safe, run
        // between fork and exec. Every source is first copied out of the
        // way (a source may have a target's number); each final duplicate
        // drops FD_CLOEXEC so it survives exec.
        unsafe {
            cmd.pre_exec(move || {
                let mut high = [0; 8];
                if moves.len() > high.len() {
                    return Err(io::Error::from_raw_os_error(libc::EMFILE));
                }
                for (i, &(fd, _)) in moves.iter().enumerate() {
                    high[i] = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 64);
                    if high[i] < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                for (i, &(_, number)) in moves.iter().enumerate() {
                    if libc::dup2(high[i], number) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        drop(notify);
        Ok((Started { child }, ready))
    }

    /// Whether the daemon has exited, and how (reaped then).
    pub fn try_wait(&mut self) -> io::Result<Option<std::process::ExitStatus>> {
        self.child.try_wait()
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit; a daemon still running after
    /// [`TERM_GRACE`] is killed.
    pub fn terminate(&mut self) -> io::Result<std::process::ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        // SAFETY: signalling our own child, which has not been reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + TERM_GRACE;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        log::warn!("pid {} ignored SIGTERM; killing it", self.child.id());
        self.child.kill()?;
        self.child.wait()
    }
}

#[cfg(target_os = "linux")]
impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.terminate();
    }
}
