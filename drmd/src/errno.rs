//! The errno a DRM client gets for what the daemons and the device below
//! answered.

use std::io;

use scheme_seam::Errno;
use virtio_gpu_proto::{CtrlHdr, ResponseType};
use zerocopy::FromBytes;

/// The answer header of a device command, as an errno.
pub fn answer_errno(answer: &[u8]) -> Result<(), Errno> {
    let (hdr, _) = CtrlHdr::read_from_prefix(answer).map_err(|_| Errno::EIO)?;
    if hdr.response_type().is_error() {
        log::debug!("device answered {}", hdr.response_type());
        return Err(if hdr.response_type() == ResponseType::ERR_OUT_OF_MEMORY {
            Errno::ENOMEM
        } else {
            Errno::EINVAL
        });
    }
    Ok(())
}

/// An I/O error from a daemon below, as this file's client sees it.
pub fn io_errno(e: io::Error) -> Errno {
    Errno(e.raw_os_error().unwrap_or(Errno::EIO.0))
}
