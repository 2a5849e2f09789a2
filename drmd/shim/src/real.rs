//! The C library's own functions, which the interposers call for
//! everything that is not a DRM node (found with `dlsym(RTLD_NEXT)`).

use std::sync::atomic::{AtomicUsize, Ordering};

use libc::{
    c_char, c_int, c_long, c_ulong, c_void, mode_t, nfds_t, off_t, pollfd, size_t, ssize_t,
};

/// Resolves `name` (NUL-terminated) once; aborts if the C library lacks it,
/// since the interposer could do nothing sensible without it.
fn resolve(cache: &AtomicUsize, name: &str) -> usize {
    let mut p = cache.load(Ordering::Relaxed);
    if p == 0 {
        // SAFETY: `name` is a NUL-terminated literal; RTLD_NEXT is a valid
        // pseudo-handle in a shared object.
        p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) } as usize;
        if p == 0 {
            eprintln!(
                "drm-shim: the C library has no {}",
                name.trim_end_matches('\0')
            );
            std::process::abort();
        }
        cache.store(p, Ordering::Relaxed);
    }
    p
}

macro_rules! real_fns {
    ($( $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty; )*) => {
        $(
            #[doc = concat!("The C library's `", stringify!($name), "`.")]
            ///
            /// # Safety
            /// As the C function.
            pub unsafe fn $name($($arg: $ty),*) -> $ret {
                static CACHE: AtomicUsize = AtomicUsize::new(0);
                let p = resolve(&CACHE, concat!(stringify!($name), "\0"));
                // SAFETY: `p` is the C library's function of this name,
                // whose prototype this is. Variadic ones (open, openat,
                // fcntl, ioctl) are called with their fixed arguments plus
                // the one optional word, which the x86_64 calling
                // convention passes exactly as a non-variadic call would.
                unsafe {
                    let f: unsafe extern "C" fn($($ty),*) -> $ret = std::mem::transmute(p);
                    f($($arg),*)
                }
            }
        )*
    };
}

real_fns! {
    open64(path: *const c_char, flags: c_int, mode: mode_t) -> c_int;
    openat64(dirfd: c_int, path: *const c_char, flags: c_int, mode: mode_t) -> c_int;
    fopen64(path: *const c_char, mode: *const c_char) -> *mut libc::FILE;
    close(fd: c_int) -> c_int;
    ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int;
    fcntl64(fd: c_int, cmd: c_int, arg: c_long) -> c_int;
    dup(fd: c_int) -> c_int;
    dup2(fd: c_int, new: c_int) -> c_int;
    dup3(fd: c_int, new: c_int, flags: c_int) -> c_int;
    mmap64(addr: *mut c_void, len: size_t, prot: c_int, flags: c_int, fd: c_int, off: off_t) -> *mut c_void;
    fstat64(fd: c_int, buf: *mut libc::stat64) -> c_int;
    stat64(path: *const c_char, buf: *mut libc::stat64) -> c_int;
    lstat64(path: *const c_char, buf: *mut libc::stat64) -> c_int;
    fstatat64(dirfd: c_int, path: *const c_char, buf: *mut libc::stat64, flags: c_int) -> c_int;
    access(path: *const c_char, mode: c_int) -> c_int;
    readlink(path: *const c_char, buf: *mut c_char, len: size_t) -> ssize_t;
    realpath(path: *const c_char, resolved: *mut c_char) -> *mut c_char;
    opendir(path: *const c_char) -> *mut libc::DIR;
    poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int;
    read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t;
    select(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, timeout: *mut libc::timeval) -> c_int;
}
