//! The errno a DRM client gets for what the daemons below answered.

use std::io;

use scheme_seam::Errno;

/// An I/O error from a daemon below, as this file's client sees it.
pub fn io_errno(e: io::Error) -> Errno {
    Errno(e.raw_os_error().unwrap_or(Errno::EIO.0))
}

/// Whether a daemon below answered EAGAIN: a non-blocking call that would
/// have waited, which the ioctl parks on instead.
pub fn would_block(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::EAGAIN.0)
}
