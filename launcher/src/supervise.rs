//! The launcher's loop: drmd's store, drmd's exits, the other daemons'
//! exits and SIGTERM, in one poll.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use log::{error, info, warn};
use scheme_seam::daemon::{notify_ready, Started, Termination};
use scheme_seam::linux::fdstore::{self, Held, FDSTORE_ENV};

/// The descriptor number drmd gets its store as.
const STORE_FD: RawFd = 4;
/// Restarts allowed in a [`BURST_WINDOW`] without delay; beyond, each
/// waits [`PAUSE`]: a drmd that dies as soon as it runs must not spin,
/// and one killed now and then comes back at once.
const BURST: usize = 60;
const BURST_WINDOW: Duration = Duration::from_secs(60);
const PAUSE: Duration = Duration::from_secs(1);

/// A binary next to this one.
fn sibling(name: &str) -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.with_file_name(name))
}

fn pidfd(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open on a child of ours; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// One running drmd with the launcher's end of its store socket.
struct Drmd {
    started: Started,
    exited: OwnedFd,
    store: OwnedFd,
    since: Instant,
}

/// What the launcher reports.
#[derive(Default)]
struct Counters {
    restarts: u64,
    last_restart: Option<Duration>,
}

/// Starts the stack and supervises it until SIGTERM.
pub fn run(gpu_args: &[String], status: Option<&Path>) -> io::Result<()> {
    let termination = Termination::install()?;
    raise_fd_limit();
    let mut gpu = Command::new(sibling("virtio-gpud")?);
    gpu.args(gpu_args);
    let mut gpu = Started::start(gpu)?;
    let mut sync = Started::start(Command::new(sibling("syncd")?))?;
    let others = [pidfd(gpu.pid())?, pidfd(sync.pid())?];
    let mut held = Held::default();
    let mut counters = Counters::default();
    let mut drmd = start_drmd(&mut held, &termination)?
        .ok_or_else(|| io::Error::other("terminated while starting drmd"))?;
    write_status(status, &drmd, &counters);
    notify_ready()?;
    info!(
        "stack up: virtio-gpud {}, syncd {}, drmd {}",
        gpu.pid(),
        sync.pid(),
        drmd.started.pid()
    );
    let mut recent: std::collections::VecDeque<Instant> = Default::default();
    let result = loop {
        let mut fds = [
            poll_in(termination.fd()),
            poll_in(drmd.store.as_raw_fd()),
            poll_in(drmd.exited.as_raw_fd()),
            poll_in(others[0].as_raw_fd()),
            poll_in(others[1].as_raw_fd()),
        ];
        if let Err(e) = poll(&mut fds, None) {
            break Err(e);
        }
        let ready = |i: usize| fds[i].revents != 0;
        if ready(0) && termination.requested() {
            break Ok(());
        }
        if ready(3) || ready(4) {
            break Err(io::Error::other(
                "virtio-gpud or syncd exited: the stack is down",
            ));
        }
        if ready(1) {
            serve_store(&mut held, &drmd);
        }
        if ready(2) {
            let exit = drmd.started.try_wait()?;
            let lived = drmd.since.elapsed();
            warn!(
                "drmd (pid {}) exited after {lived:.1?}: {exit:?}; {} descriptors kept",
                drmd.started.pid(),
                held.len()
            );
            // What it stored before dying is still queued on the socket.
            while serve_store(&mut held, &drmd) {}
            recent.retain(|t| t.elapsed() < BURST_WINDOW);
            if recent.len() >= BURST {
                warn!("{BURST} restarts within {BURST_WINDOW:?}: pausing {PAUSE:?}");
                std::thread::sleep(PAUSE);
            }
            recent.push_back(Instant::now());
            let down = Instant::now();
            match start_drmd(&mut held, &termination)? {
                Some(next) => drmd = next,
                None => break Ok(()),
            }
            counters.restarts += 1;
            counters.last_restart = Some(down.elapsed());
            info!(
                "drmd restarted (#{}, pid {}) in {:.1?}",
                counters.restarts,
                drmd.started.pid(),
                down.elapsed()
            );
            write_status(status, &drmd, &counters);
        }
    };
    // Stopped in the reverse of the order they started in.
    for (name, r) in [
        ("drmd", drmd.started.terminate()),
        ("syncd", sync.terminate()),
        ("virtio-gpud", gpu.terminate()),
    ] {
        match r {
            Ok(status) => info!("{name} stopped: {status}"),
            Err(e) => error!("stopping {name}: {e}"),
        }
    }
    result
}

/// Serves one record of drmd's store; false when nothing was waiting.
fn serve_store(held: &mut Held, drmd: &Drmd) -> bool {
    let mut p = [poll_in(drmd.store.as_raw_fd())];
    if !matches!(poll(&mut p, Some(Duration::ZERO)), Ok(1)) {
        return false;
    }
    match held.serve(drmd.store.as_raw_fd()) {
        Ok(more) => more,
        Err(e) => {
            warn!("drmd's store: {e}");
            false
        }
    }
}

/// Starts drmd with a fresh store socket over what `held` keeps, serving
/// the store until drmd is ready (its start takes the store back); None
/// if SIGTERM came first.
fn start_drmd(held: &mut Held, termination: &Termination) -> io::Result<Option<Drmd>> {
    let (ours, theirs) = fdstore::pair()?;
    let mut cmd = Command::new(sibling("drmd")?);
    cmd.env(FDSTORE_ENV, STORE_FD.to_string());
    let (started, mut ready) = Started::spawn(cmd, &[(theirs.as_raw_fd(), STORE_FD)])?;
    drop(theirs);
    let drmd = Drmd {
        exited: pidfd(started.pid())?,
        started,
        store: ours,
        since: Instant::now(),
    };
    loop {
        let mut fds = [
            poll_in(termination.fd()),
            poll_in(drmd.store.as_raw_fd()),
            poll_in(ready.as_raw_fd()),
        ];
        poll(&mut fds, None)?;
        if fds[0].revents != 0 && termination.requested() {
            return Ok(None);
        }
        if fds[1].revents != 0 {
            serve_store(held, &drmd);
        }
        if fds[2].revents != 0 {
            let mut byte = [0u8; 1];
            return match ready.read(&mut byte)? {
                1 => Ok(Some(drmd)),
                _ => Err(io::Error::other("drmd exited before it was ready")),
            };
        }
    }
}

fn poll_in(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// poll(2), with EINTR as nothing ready.
fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = timeout.map_or(-1, |t| i32::try_from(t.as_millis()).unwrap_or(i32::MAX));
    // SAFETY: `fds` is a live array of `fds.len()` pollfds.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            fds.iter_mut().for_each(|p| p.revents = 0);
            Ok(0)
        } else {
            Err(e)
        };
    }
    Ok(n as usize)
}

/// Rewrites the status file, atomically.
fn write_status(path: Option<&Path>, drmd: &Drmd, counters: &Counters) {
    let Some(path) = path else {
        return;
    };
    let text = format!(
        "drmd_pid {}\nrestarts {}\nlast_restart_ms {}\n",
        drmd.started.pid(),
        counters.restarts,
        counters.last_restart.map_or(0.0, |d| d.as_secs_f64() * 1e3)
    );
    let tmp = path.with_extension("tmp");
    if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)) {
        warn!("writing {}: {e}", path.display());
    }
}

/// The store holds a few descriptors per client of drmd (its connection,
/// its sessions): the soft limit goes up to the hard one, as systemd
/// raises it for services.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: setrlimit reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        log::warn!(
            "raising the descriptor limit: {}",
            io::Error::last_os_error()
        );
    }
}
