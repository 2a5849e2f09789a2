//! PRIME: sharing GEM objects between DRM files through dma-buf fds, as
//! Linux's `drm_prime.c` does for virtio-gpu's shmem objects.
//!
//! Export returns an fd, so it arrives as a `dup` of the DRM fd (see the
//! scheme): the new handle is a dma-buf on `scheme:drm` that holds the
//! object. Import carries the dma-buf's capability token and answers with
//! a handle to the same object — the handle the file already has for it,
//! if any.

use std::sync::Arc;

use drm_uapi::core::{PrimeHandle, PRIME_FLAG_CLOEXEC, PRIME_FLAG_RDWR};
use drm_uapi::wire::Payload;
use scheme_seam::{token, Answer, Errno, Result};
use virtio_gpu_proto::Features;
use zerocopy::FromBytes;

use super::{for_room, wire};
use crate::device::Device;
use crate::errno::io_errno;
use crate::file::DrmFile;
use crate::gem::Gem;

/// PRIME_HANDLE_TO_FD (the `dup`'s buffer after the nr): the object to
/// put in a new dma-buf. Unknown flags are EINVAL, an unknown handle
/// ENOENT, as Linux.
pub fn export(device: &Device, file: &DrmFile, args: &[u8]) -> Result<Arc<Gem>> {
    let h = PrimeHandle::read_from_bytes(args).map_err(|_| Errno::EINVAL)?;
    if h.flags & !(PRIME_FLAG_CLOEXEC | PRIME_FLAG_RDWR) != 0 || h.token != 0 {
        return Err(Errno::EINVAL);
    }
    let gem = file.bo(h.handle)?.clone();
    gem.export(&*file.session, device.export_holder())
        .map_err(io_errno)?;
    gem.exported_as(h.flags & PRIME_FLAG_RDWR == PRIME_FLAG_RDWR);
    Ok(gem)
}

/// PRIME_FD_TO_HANDLE: `dma_buf` finds the object a dma-buf token names.
/// Its flags are ignored, as Linux ignores them. Parks while the ring is
/// too full to attach the object to the file's context.
pub fn import(
    device: &Device,
    file: &mut DrmFile,
    payload: &mut [u8],
    dma_buf: impl FnOnce(u64) -> Option<Arc<Gem>>,
) -> Result<Answer> {
    let mut p = Payload::new(payload);
    let mut h: PrimeHandle = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    // Linux's dma_buf_get: an fd that is not open is EBADF, an open one
    // that is no dma-buf of this device EINVAL.
    let gem = match dma_buf(h.token) {
        Some(gem) => gem,
        None if h.token == token::NOT_OPEN => return Err(Errno::EBADF),
        None => return Err(Errno::EINVAL),
    };
    h.handle = match file.handle_of(&gem) {
        Some(handle) => handle,
        None => match file.open_object(gem, device.features.contains(Features::VIRGL))? {
            Some(handle) => handle,
            None => return Ok(for_room()),
        },
    };
    p.set_header(&h).map_err(wire)?;
    Ok(Answer::Ready(0))
}
