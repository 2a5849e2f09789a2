//! The scheme seam: one handler code path ([`Scheme`]) served on Redox and
//! on Linux with the same semantics.
//!
//! - [`handler`]: what a scheme implements, with blocking expressed as
//!   parked requests and readiness as posted events.
//! - `linux`: the scheme bus — Unix-domain sockets in one directory
//!   standing for `/scheme/`, one connection per open handle, fds passed
//!   with SCM_RIGHTS, shared memory as memfds, readiness as eventfds.
//! - `redox`: the adapter to `redox-scheme` and the `libredox` client.
//! - [`daemon`]: start-up readiness and orderly termination.
//! - [`keep`]: what a scheme keeps across its own restart.
//! - [`token`]: capability tokens naming a handle in another's request.
//! - [`metrics`]: the requests and bytes this process sends to schemes.
//!
//! See `docs/SCHEME.md` for the whole picture.

pub mod daemon;
pub mod errno;
pub mod handler;
pub mod keep;
#[cfg(target_os = "linux")]
pub mod linux;
pub mod metrics;
mod parked;
#[cfg(target_os = "redox")]
pub mod redox;
// The Redox request translation is pure and tested here on Linux.
#[cfg(all(test, target_os = "linux"))]
#[path = "redox/dispatch.rs"]
mod redox_dispatch;
pub mod shm;
pub mod token;

pub use errno::{Errno, Result};
pub use handler::{
    read_bytes, read_text, Answer, Caller, Context, EventFlags, HandleId, Mapping, Opened, Park,
    Scheme, Stat, WakeKey,
};
pub use keep::Keeper;
#[cfg(target_os = "linux")]
pub use linux::{serve, SchemeFd};
#[cfg(target_os = "redox")]
pub use redox::{serve, SchemeFd};
pub use shm::ShmRegion;

/// An answer an earlier instance's request left in a handle's stream
/// ([`SchemeFd::resume`]): its value and data, or its errno (0: an answer
/// of another kind).
pub type Stale = std::result::Result<(u64, Vec<u8>), i32>;

/// The bit of a call's first metadata word that makes this one call answer
/// EAGAIN instead of waiting. Redox carries `O_NONBLOCK` to schemes with
/// reads and writes but not with calls, so the client puts it here (for a
/// non-blocking handle, or [`SchemeFd::try_call`]) and the serving side
/// takes it out before the handler sees the word; on Linux the bus carries
/// the flag itself. No call number of any scheme here has this bit.
pub const CALL_NONBLOCK: u64 = 1 << 63;

/// The open flag that makes a handle's blocking requests answer EAGAIN
/// instead of waiting (the platform's `O_NONBLOCK`).
#[cfg(target_os = "linux")]
pub const NONBLOCK: usize = libc::O_NONBLOCK as usize;
/// The open flag that makes a handle's blocking requests answer EAGAIN
/// instead of waiting (the platform's `O_NONBLOCK`).
#[cfg(target_os = "redox")]
pub const NONBLOCK: usize = syscall::flag::O_NONBLOCK;
