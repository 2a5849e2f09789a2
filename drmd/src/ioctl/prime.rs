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
use scheme_seam::{Errno, Result};
use virtio_gpu_proto::{Features, ResourceId};
use zerocopy::FromBytes;

use super::wire;
use crate::device::Device;
use crate::file::{io_errno, DrmFile};
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
    gem.export(&file.session, device.export_holder())
        .map_err(io_errno)?;
    Ok(gem)
}

/// PRIME_FD_TO_HANDLE: `dma_buf` finds the object a dma-buf token names
/// (EBADF if none, as for an fd that is not a dma-buf of this device).
pub fn import(
    device: &Device,
    file: &mut DrmFile,
    payload: &mut [u8],
    dma_buf: impl FnOnce(u64) -> Option<Arc<Gem>>,
) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut h: PrimeHandle = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    let gem = dma_buf(h.token).ok_or(Errno::EBADF)?;
    h.handle = match file.handle_of(&gem) {
        Some(handle) => handle,
        None => {
            let token = gem.export_token().ok_or(Errno::EIO)?;
            let res = file.session.adopt(token).map_err(io_errno)?;
            let res = ResourceId::new(res).ok_or(Errno::EIO)?;
            // Opening a GEM object attaches it to the file's context.
            if device.features.contains(Features::VIRGL) {
                if let Err(e) = file.attach(res) {
                    let _ = file.session.release(res.get());
                    return Err(e);
                }
            }
            file.insert(gem)?
        }
    };
    p.set_header(&h).map_err(wire)?;
    Ok(0)
}
