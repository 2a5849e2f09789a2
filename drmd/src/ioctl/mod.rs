//! One handler per ioctl, one module per area. Each handler decodes its
//! wire payload strictly (a wrong size or a count running past the payload
//! is EINVAL, never a panic), checks its flags, acts, and writes OUT
//! fields back into the payload.

pub mod core;
pub mod prime;
pub mod syncobj;
pub mod table;
pub mod virtgpu;

use drm_uapi::wire::WireError;
use scheme_seam::Errno;

/// A malformed payload, as the client sees it: EINVAL, or ENOMEM for an
/// array too large to carry (Linux's allocation of it fails).
pub fn wire(e: WireError) -> Errno {
    log::debug!("malformed ioctl payload: {e}");
    match e {
        WireError::TooMany { .. } => Errno::ENOMEM,
        _ => Errno::EINVAL,
    }
}
