//! Which of the process's fds are handles on the scheme bus, and what
//! each is.
//!
//! A handle is a connection to its daemon; the shim keeps one
//! [`SchemeFd`] per connection (requests from several threads share it)
//! over a private, close-on-exec duplicate of the socket, and maps every
//! application fd of that connection to it. The daemon sees the handle
//! close when the application has closed its last fd of it and the shim
//! has dropped its duplicate.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use scheme_seam::SchemeFd;

use crate::real;

/// What a handle is, which says which ioctls it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A DRM node (drmd) with its minor number.
    Drm {
        /// 0 for `card0`, 128 for `renderD128`.
        minor: u32,
    },
    /// A dma-buf (drmd, from PRIME export).
    DmaBuf,
    /// A sync_file (syncd).
    SyncFile,
    /// An exported syncobj (syncd): only its token means anything.
    Syncobj,
}

/// One handle.
#[derive(Debug)]
pub struct Conn {
    /// The shim's own fd of the handle.
    pub fd: SchemeFd,
    /// What it is.
    pub kind: Kind,
}

static TABLE: Mutex<Option<HashMap<RawFd, Arc<Conn>>>> = Mutex::new(None);

fn with_table<R>(f: impl FnOnce(&mut HashMap<RawFd, Arc<Conn>>) -> R) -> R {
    let mut guard = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(HashMap::new))
}

/// The handle behind application fd `fd`, if it is one.
pub fn get(fd: RawFd) -> Option<Arc<Conn>> {
    with_table(|t| t.get(&fd).cloned())
}

/// Makes `fd` (a handle's socket, received from a daemon or opened) a
/// handle of `kind`, and returns the application's fd of it, close-on-exec
/// if `cloexec`.
pub fn adopt(fd: OwnedFd, kind: Kind, cloexec: bool) -> Result<RawFd, i32> {
    let cmd = if cloexec {
        libc::F_DUPFD_CLOEXEC
    } else {
        libc::F_DUPFD
    };
    // SAFETY: duplicating an fd this function owns.
    let app = unsafe { real::fcntl64(fd.as_raw_fd(), cmd, 0) };
    if app < 0 {
        return Err(errno());
    }
    // The shim's copy must not leak into exec'd programs, where it would
    // keep the handle open.
    // SAFETY: setting a flag on an fd this function owns.
    unsafe {
        real::fcntl64(
            fd.as_raw_fd(),
            libc::F_SETFD,
            libc::FD_CLOEXEC as libc::c_long,
        )
    };
    let conn = Arc::new(Conn {
        fd: SchemeFd::from_fd(fd),
        kind,
    });
    let stale = with_table(|t| t.insert(app, conn));
    drop(stale);
    Ok(app)
}

/// `new` is now another fd of `old`'s handle (dup), if `old` is one.
pub fn duplicated(old: RawFd, new: RawFd) {
    let stale = with_table(|t| {
        let conn = t.get(&old).cloned();
        match conn {
            Some(c) => t.insert(new, c),
            None => t.remove(&new),
        }
    });
    drop(stale);
}

/// The application closed `fd`: forget it (dropping the connection if it
/// was the last fd of its handle, outside the lock).
pub fn closed(fd: RawFd) {
    let stale = with_table(|t| t.remove(&fd));
    drop(stale);
}

/// The calling thread's errno.
pub fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
