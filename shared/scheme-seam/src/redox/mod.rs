//! Redox: the adapter from [`Scheme`](crate::Scheme) to `redox-scheme`, and
//! the `libredox` client.
//!
//! Serving ([`serve`]) translates the kernel's requests into handler calls
//! one by one; clients ([`SchemeFd`]) are plain descriptors whose syscalls
//! the kernel turns into those requests. Where Redox and the Linux bus
//! differ in what a client can observe, the item's documentation says so.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

mod client;
mod dispatch;
mod server;

pub use client::SchemeFd;
pub use server::serve;

/// Takes ownership of a descriptor number the kernel just gave this process.
fn owned_fd(raw: usize) -> io::Result<OwnedFd> {
    let Ok(fd) = RawFd::try_from(raw) else {
        // std cannot hold it; give it back rather than leak it.
        let _ = libredox::call::close(raw);
        return Err(crate::Errno::EBADF.into());
    };
    // SAFETY: the kernel just created `fd` for this process and nothing else
    // owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Marks a descriptor close-on-exec, best effort: only a process that forks
/// and execs could notice it failed, which is no reason to fail the
/// operation that produced the descriptor.
fn set_cloexec(raw: usize) {
    use libredox::flag::{F_SETFD, O_CLOEXEC};
    let _ = libredox::call::fcntl(raw, F_SETFD as usize, O_CLOEXEC as usize);
}
