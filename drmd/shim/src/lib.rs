//! `libdrm_shim.so`: an `LD_PRELOAD` library that makes a Linux DRM node
//! reach drmd over the scheme bus, so unmodified Linux programs (Mesa,
//! libdrm, GBM, piglit) use the stack as Redox programs will.
//!
//! Opening `/dev/dri/renderD128` or `/dev/dri/card0` (the directory is
//! `DRM_SHIM_DIR`) opens `/scheme/drm/<node>` on the bus (`SCHEME_DIR`).
//! Its ioctls are re-packed into relibc's wire encoding ([`ioctl`]), so the
//! bytes drmd receives are those relibc sends on Redox; fds that ioctls
//! return (sync_files, dma-bufs) are bus handles too, and the shim serves
//! their ioctls, `poll` and `mmap` the same way. `fstat`, `stat` and the
//! sysfs lookups Mesa's loader and libdrm make see a virtio-gpu device
//! ([`sysfs`]). Everything else goes to the C library untouched.
//!
//! x86_64 Linux only: the interposers of variadic C functions (`open`,
//! `ioctl`, `fcntl`) read their optional argument as a fixed one, which
//! that calling convention allows.
//!
//! `DRM_SHIM_DEBUG=1` prints each ioctl and its outcome to stderr.
//! `drmd::mesa` has the environment to run a Mesa program with.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod conns;
mod ioctl;
mod real;
mod sysfs;
mod user;

use std::ffi::CStr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::OnceLock;

use libc::{
    c_char, c_int, c_long, c_ulong, c_void, mode_t, nfds_t, off_t, pollfd, size_t, ssize_t,
};
use scheme_seam::SchemeFd;

use conns::Kind;

fn debug() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("DRM_SHIM_DEBUG").is_some_and(|v| v != "0"))
}

fn set_errno(e: i32) {
    // SAFETY: the calling thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// `-1` with errno `e`, as C functions fail.
fn fail(e: i32) -> c_int {
    set_errno(e);
    -1
}

/// The path as UTF-8, if it is one the shim may answer for.
///
/// # Safety
/// `path` is NULL or NUL-terminated.
unsafe fn path_str<'a>(path: *const c_char) -> Option<&'a str> {
    if path.is_null() {
        return None;
    }
    // SAFETY: the caller's guarantee.
    unsafe { CStr::from_ptr(path) }.to_str().ok()
}

/// Opens DRM node `path` on the bus, or None if `path` is not one.
///
/// # Safety
/// `path` is NULL or NUL-terminated.
unsafe fn open_node(path: *const c_char, flags: c_int) -> Option<c_int> {
    // SAFETY: the caller's guarantee.
    let (scheme_path, minor) = sysfs::node(unsafe { path_str(path) }?)?;
    let fd = match SchemeFd::open(&scheme_path, (flags & libc::O_NONBLOCK) as usize) {
        Ok(fd) => fd.into_fd(),
        Err(e) => return Some(fail(e.raw_os_error().unwrap_or(libc::ENODEV))),
    };
    let kind = Kind::Drm { minor };
    Some(conns::adopt(fd, kind, flags & libc::O_CLOEXEC != 0).unwrap_or_else(fail))
}

/// Calls `real` with `path`, redirected into the fake tree if it is one the
/// shim answers for.
///
/// # Safety
/// `path` is NULL or NUL-terminated.
unsafe fn redirected<R>(path: *const c_char, real: impl FnOnce(*const c_char) -> R) -> R {
    // SAFETY: the caller's guarantee.
    match unsafe { sysfs::redirect_c(path) } {
        Some(to) => real(to.as_ptr()),
        None => real(path),
    }
}

/// # Safety
/// As C's `open`.
#[no_mangle]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        open_node(path, flags).unwrap_or_else(|| redirected(path, |p| real::open64(p, flags, mode)))
    }
}

/// # Safety
/// As C's `open`.
#[no_mangle]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    // SAFETY: the same function.
    unsafe { open64(path, flags, mode) }
}

/// # Safety
/// As glibc's fortified `__open_2`.
#[no_mangle]
pub unsafe extern "C" fn __open_2(path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: the same function without a mode.
    unsafe { open64(path, flags, 0) }
}

/// # Safety
/// As glibc's fortified `__open64_2`.
#[no_mangle]
pub unsafe extern "C" fn __open64_2(path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: the same function without a mode.
    unsafe { open64(path, flags, 0) }
}

/// # Safety
/// As C's `openat`.
#[no_mangle]
pub unsafe extern "C" fn openat64(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    // SAFETY: the caller's guarantee.
    let absolute = unsafe { path_str(path) }.is_some_and(|p| p.starts_with('/'));
    if dirfd == libc::AT_FDCWD || absolute {
        // SAFETY: the caller's guarantees, passed on.
        if let Some(fd) = unsafe { open_node(path, flags) } {
            return fd;
        }
        // SAFETY: the caller's guarantees, passed on.
        return unsafe { redirected(path, |p| real::openat64(dirfd, p, flags, mode)) };
    }
    // SAFETY: the caller's guarantees, passed on.
    unsafe { real::openat64(dirfd, path, flags, mode) }
}

/// # Safety
/// As C's `openat`.
#[no_mangle]
pub unsafe extern "C" fn openat(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    // SAFETY: the same function.
    unsafe { openat64(dirfd, path, flags, mode) }
}

/// # Safety
/// As glibc's fortified `__openat_2`.
#[no_mangle]
pub unsafe extern "C" fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: the same function without a mode.
    unsafe { openat64(dirfd, path, flags, 0) }
}

/// # Safety
/// As glibc's fortified `__openat64_2`.
#[no_mangle]
pub unsafe extern "C" fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: the same function without a mode.
    unsafe { openat64(dirfd, path, flags, 0) }
}

/// # Safety
/// As C's `fopen`.
#[no_mangle]
pub unsafe extern "C" fn fopen64(path: *const c_char, mode: *const c_char) -> *mut libc::FILE {
    // SAFETY: the caller's guarantees, passed on.
    unsafe { redirected(path, |p| real::fopen64(p, mode)) }
}

/// # Safety
/// As C's `fopen`.
#[no_mangle]
pub unsafe extern "C" fn fopen(path: *const c_char, mode: *const c_char) -> *mut libc::FILE {
    // SAFETY: the same function.
    unsafe { fopen64(path, mode) }
}

/// # Safety
/// As C's `close`.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    conns::closed(fd);
    // SAFETY: the caller's guarantee.
    unsafe { real::close(fd) }
}

/// # Safety
/// As C's `ioctl`.
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    let Some(conn) = conns::get(fd) else {
        // SAFETY: the caller's guarantees, passed on.
        return unsafe { real::ioctl(fd, request, arg) };
    };
    // Every access to the caller's memory behind `arg` is checked.
    let result = ioctl::ioctl(&conn, request, arg as u64);
    if debug() {
        eprintln!(
            "drm-shim: ioctl({fd}, {request:#x}) on {:?} = {result:?}",
            conn.kind
        );
    }
    result.unwrap_or_else(fail)
}

/// # Safety
/// As C's `fcntl`.
#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_long) -> c_int {
    // SAFETY: the caller's guarantees, passed on.
    let r = unsafe { real::fcntl64(fd, cmd, arg) };
    if r >= 0 && (cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC) {
        conns::duplicated(fd, r);
    }
    r
}

/// # Safety
/// As C's `fcntl`.
#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_long) -> c_int {
    // SAFETY: the same function.
    unsafe { fcntl64(fd, cmd, arg) }
}

/// # Safety
/// As C's `dup`.
#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    // SAFETY: the caller's guarantee.
    let r = unsafe { real::dup(fd) };
    if r >= 0 {
        conns::duplicated(fd, r);
    }
    r
}

/// # Safety
/// As C's `dup2`.
#[no_mangle]
pub unsafe extern "C" fn dup2(fd: c_int, new: c_int) -> c_int {
    // SAFETY: the caller's guarantee.
    let r = unsafe { real::dup2(fd, new) };
    if r >= 0 && fd != new {
        conns::duplicated(fd, r);
    }
    r
}

/// # Safety
/// As C's `dup3`.
#[no_mangle]
pub unsafe extern "C" fn dup3(fd: c_int, new: c_int, flags: c_int) -> c_int {
    // SAFETY: the caller's guarantee.
    let r = unsafe { real::dup3(fd, new, flags) };
    if r >= 0 {
        conns::duplicated(fd, r);
    }
    r
}

/// # Safety
/// As C's `mmap`.
#[no_mangle]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    let Some(conn) = conns::get(fd).filter(|c| c.kind != Kind::SyncFile) else {
        // SAFETY: the caller's guarantees, passed on.
        return unsafe { real::mmap64(addr, len, prot, flags, fd, off) };
    };
    // The daemon names the memory; the caller's own mapping of it is made
    // here with its address hint, protection and flags, and outlives ours.
    let region = match conn.fd.mmap(off as u64, len, prot & libc::PROT_WRITE != 0) {
        Ok(region) => region,
        Err(e) => {
            set_errno(e.raw_os_error().unwrap_or(libc::EINVAL));
            return libc::MAP_FAILED;
        }
    };
    let (memfd, at) = (region.fd().as_raw_fd(), region.file_offset() as off_t);
    // SAFETY: mapping a memfd the daemon gave, as the caller asked.
    unsafe { real::mmap64(addr, len, prot, flags, memfd, at) }
}

/// # Safety
/// As C's `mmap`.
#[no_mangle]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    // SAFETY: the same function.
    unsafe { mmap64(addr, len, prot, flags, fd, off) }
}

/// # Safety
/// As C's `fstat`.
#[no_mangle]
pub unsafe extern "C" fn fstat64(fd: c_int, buf: *mut libc::stat64) -> c_int {
    // SAFETY: the caller's guarantees, passed on.
    let r = unsafe { real::fstat64(fd, buf) };
    let Some(conn) = conns::get(fd).filter(|c| c.kind != Kind::SyncFile) else {
        return r;
    };
    if r != 0 {
        return r;
    }
    // What the daemon says the handle is (as relibc asks on Redox).
    match conn.fd.fstat() {
        Ok(st) => {
            // SAFETY: `buf` was just filled by the C library.
            let out = unsafe { &mut *buf };
            out.st_mode = st.mode;
            out.st_rdev = st.rdev;
            out.st_size = st.size as i64;
            0
        }
        Err(e) => fail(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

/// # Safety
/// As C's `fstat`.
#[no_mangle]
pub unsafe extern "C" fn fstat(fd: c_int, buf: *mut libc::stat64) -> c_int {
    // SAFETY: the same function.
    unsafe { fstat64(fd, buf) }
}

/// `stat`/`lstat` of `path` through `real`, redirected, with the node
/// entries made character devices.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `buf` is writable.
unsafe fn stat_path(
    path: *const c_char,
    buf: *mut libc::stat64,
    real: impl FnOnce(*const c_char, *mut libc::stat64) -> c_int,
) -> c_int {
    // SAFETY: the caller's guarantee.
    let Some(to) = (unsafe { sysfs::redirect_c(path) }) else {
        return real(path, buf);
    };
    let r = real(to.as_ptr(), buf);
    let entry = to
        .to_str()
        .ok()
        .and_then(|p| sysfs::node_entry(Path::new(p)));
    if let (0, Some((minor, mode))) = (r, entry) {
        // SAFETY: `buf` was just filled by the C library.
        sysfs::as_char_device(unsafe { &mut *buf }, minor, mode);
    }
    r
}

/// A path `stat` call of the C library and its `64` twin (glibc's headers
/// pick either; here they are the same function).
macro_rules! path_stat {
    ($name64:ident, $name:ident) => {
        /// # Safety
        #[doc = concat!("As C's `", stringify!($name), "`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name64(path: *const c_char, buf: *mut libc::stat64) -> c_int {
            // SAFETY: the caller's guarantees, passed on.
            unsafe { stat_path(path, buf, |p, b| real::$name64(p, b)) }
        }

        /// # Safety
        #[doc = concat!("As C's `", stringify!($name), "`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(path: *const c_char, buf: *mut libc::stat64) -> c_int {
            // SAFETY: the same function.
            unsafe { $name64(path, buf) }
        }
    };
}

path_stat!(stat64, stat);
path_stat!(lstat64, lstat);

/// # Safety
/// As C's `fstatat`.
#[no_mangle]
pub unsafe extern "C" fn fstatat64(
    dirfd: c_int,
    path: *const c_char,
    buf: *mut libc::stat64,
    flags: c_int,
) -> c_int {
    // SAFETY: the caller's guarantee.
    let p = unsafe { path_str(path) };
    if flags & libc::AT_EMPTY_PATH != 0 && p == Some("") {
        // SAFETY: the caller's guarantees, passed on.
        return unsafe { fstat64(dirfd, buf) };
    }
    if p.is_some_and(|p| p.starts_with('/')) {
        // SAFETY: the caller's guarantees, passed on.
        return unsafe { stat_path(path, buf, |p, b| real::fstatat64(dirfd, p, b, flags)) };
    }
    // SAFETY: the caller's guarantees, passed on.
    unsafe { real::fstatat64(dirfd, path, buf, flags) }
}

/// # Safety
/// As C's `fstatat`.
#[no_mangle]
pub unsafe extern "C" fn fstatat(
    dirfd: c_int,
    path: *const c_char,
    buf: *mut libc::stat64,
    flags: c_int,
) -> c_int {
    // SAFETY: the same function.
    unsafe { fstatat64(dirfd, path, buf, flags) }
}

/// # Safety
/// As C's `access`.
#[no_mangle]
pub unsafe extern "C" fn access(path: *const c_char, mode: c_int) -> c_int {
    // SAFETY: the caller's guarantees, passed on.
    unsafe { redirected(path, |p| real::access(p, mode)) }
}

/// # Safety
/// As C's `readlink`.
#[no_mangle]
pub unsafe extern "C" fn readlink(path: *const c_char, buf: *mut c_char, len: size_t) -> ssize_t {
    // SAFETY: the caller's guarantees, passed on.
    unsafe { redirected(path, |p| real::readlink(p, buf, len)) }
}

/// # Safety
/// As glibc's fortified `__readlink_chk`.
#[no_mangle]
pub unsafe extern "C" fn __readlink_chk(
    path: *const c_char,
    buf: *mut c_char,
    len: size_t,
    buflen: size_t,
) -> ssize_t {
    if len > buflen {
        std::process::abort();
    }
    // SAFETY: the same function, checked.
    unsafe { readlink(path, buf, len) }
}

/// # Safety
/// As C's `realpath`.
#[no_mangle]
pub unsafe extern "C" fn realpath(path: *const c_char, resolved: *mut c_char) -> *mut c_char {
    // SAFETY: the caller's guarantees, passed on.
    unsafe { redirected(path, |p| real::realpath(p, resolved)) }
}

/// # Safety
/// As glibc's fortified `__realpath_chk`.
#[no_mangle]
pub unsafe extern "C" fn __realpath_chk(
    path: *const c_char,
    resolved: *mut c_char,
    resolvedlen: size_t,
) -> *mut c_char {
    if !resolved.is_null() && resolvedlen < libc::PATH_MAX as size_t {
        std::process::abort();
    }
    // SAFETY: the same function, checked.
    unsafe { realpath(path, resolved) }
}

/// # Safety
/// As C's `opendir`.
#[no_mangle]
pub unsafe extern "C" fn opendir(path: *const c_char) -> *mut libc::DIR {
    // SAFETY: the caller's guarantees, passed on.
    unsafe { redirected(path, |p| real::opendir(p)) }
}

/// # Safety
/// As C's `poll`.
#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    if fds.is_null() || n == 0 {
        // SAFETY: the caller's guarantees, passed on.
        return unsafe { real::poll(fds, n, timeout) };
    }
    // SAFETY: the caller gave `n` entries.
    let entries = unsafe { std::slice::from_raw_parts_mut(fds, n as usize) };
    // A sync_file, and a DRM file's events, are polled through the
    // handle's readiness descriptor; the shim's connection keeps it open
    // while the poll runs.
    let mut held = Vec::new();
    let mut polled: Vec<pollfd> = entries.to_vec();
    for p in &mut polled {
        let pollable = |c: &conns::Conn| matches!(c.kind, Kind::SyncFile | Kind::Drm { .. });
        if let Some(conn) = conns::get(p.fd).filter(|c| pollable(c)) {
            match conn.fd.poll_fd() {
                Ok(ready) => p.fd = ready.as_raw_fd(),
                Err(e) => return fail(e.raw_os_error().unwrap_or(libc::EIO)),
            }
            held.push(conn);
        }
    }
    if held.is_empty() {
        // SAFETY: the caller's guarantees, passed on.
        return unsafe { real::poll(fds, n, timeout) };
    }
    // SAFETY: our own array of `n` entries.
    let r = unsafe { real::poll(polled.as_mut_ptr(), n, timeout) };
    for (entry, p) in entries.iter_mut().zip(&polled) {
        entry.revents = p.revents;
    }
    r
}

/// # Safety
/// As C's `read`.
#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t {
    let Some(conn) = conns::get(fd).filter(|c| matches!(c.kind, Kind::Drm { .. })) else {
        // SAFETY: the caller's guarantees, passed on.
        return unsafe { real::read(fd, buf, count) };
    };
    if buf.is_null() && count > 0 {
        return fail(libc::EFAULT) as ssize_t;
    }
    // A DRM file reads its events.
    let mut events = vec![0u8; count];
    match conn.fd.read(&mut events) {
        Ok(n) => {
            let n = n.min(count);
            // SAFETY: the caller gave `count` writable bytes at `buf`, and
            // `n <= count`.
            unsafe { std::ptr::copy_nonoverlapping(events.as_ptr(), buf.cast::<u8>(), n) };
            n as ssize_t
        }
        Err(e) => fail(e.raw_os_error().unwrap_or(libc::EIO)) as ssize_t,
    }
}

/// # Safety
/// As glibc's fortified `__read_chk`.
#[no_mangle]
pub unsafe extern "C" fn __read_chk(
    fd: c_int,
    buf: *mut c_void,
    count: size_t,
    buflen: size_t,
) -> ssize_t {
    if count > buflen {
        std::process::abort();
    }
    // SAFETY: the same function, checked.
    unsafe { read(fd, buf, count) }
}

/// # Safety
/// As C's `select`.
#[no_mangle]
pub unsafe extern "C" fn select(
    n: c_int,
    readfds: *mut libc::fd_set,
    writefds: *mut libc::fd_set,
    exceptfds: *mut libc::fd_set,
    timeout: *mut libc::timeval,
) -> c_int {
    // Only a read set naming a handle needs the shim: it becomes a poll,
    // which knows how to wait for handles.
    let limit = n.clamp(0, libc::FD_SETSIZE as c_int);
    // SAFETY: a non-NULL set is the caller's, valid for FD_ISSET.
    let is_set = |set: *mut libc::fd_set, fd| !set.is_null() && unsafe { libc::FD_ISSET(fd, set) };
    let handles = (0..limit).any(|fd| is_set(readfds, fd) && conns::get(fd).is_some());
    if !handles {
        // SAFETY: the caller's guarantees, passed on.
        return unsafe { real::select(n, readfds, writefds, exceptfds, timeout) };
    }
    let mut fds: Vec<pollfd> = (0..limit)
        .filter_map(|fd| {
            let mut events = 0;
            if is_set(readfds, fd) {
                events |= libc::POLLIN;
            }
            if is_set(writefds, fd) {
                events |= libc::POLLOUT;
            }
            if is_set(exceptfds, fd) {
                events |= libc::POLLPRI;
            }
            (events != 0).then_some(pollfd {
                fd,
                events,
                revents: 0,
            })
        })
        .collect();
    let ms = if timeout.is_null() {
        -1
    } else {
        // SAFETY: the caller's timeval.
        let t = unsafe { *timeout };
        (t.tv_sec.max(0) * 1000 + (t.tv_usec.max(0) + 999) / 1000).min(i64::from(c_int::MAX))
            as c_int
    };
    // SAFETY: our own array.
    let r = unsafe { poll(fds.as_mut_ptr(), fds.len() as nfds_t, ms) };
    if r < 0 {
        return r;
    }
    let mut ready = 0;
    for (set, bits) in [
        (readfds, libc::POLLIN | libc::POLLHUP | libc::POLLERR),
        (writefds, libc::POLLOUT | libc::POLLERR),
        (exceptfds, libc::POLLPRI),
    ] {
        if set.is_null() {
            continue;
        }
        // SAFETY: the caller's set.
        unsafe { libc::FD_ZERO(set) };
        for p in &fds {
            let wanted = match bits {
                b if b & libc::POLLIN != 0 => p.events & libc::POLLIN != 0,
                b if b & libc::POLLOUT != 0 => p.events & libc::POLLOUT != 0,
                _ => p.events & libc::POLLPRI != 0,
            };
            if wanted && p.revents & bits != 0 {
                // SAFETY: the caller's set; `p.fd` is below FD_SETSIZE.
                unsafe { libc::FD_SET(p.fd, set) };
                ready += 1;
            }
        }
    }
    ready
}

/// # Safety
/// As glibc's fortified `__poll_chk`.
#[no_mangle]
pub unsafe extern "C" fn __poll_chk(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: c_int,
    fdslen: size_t,
) -> c_int {
    if fdslen / size_of::<pollfd>() < n as usize {
        std::process::abort();
    }
    // SAFETY: the same function, checked.
    unsafe { poll(fds, n, timeout) }
}
