//! Core DRM ioctls Mesa needs: VERSION, GET_CAP, SET_CLIENT_CAP, GEM_CLOSE
//! (PRIME has a module of its own).

use drm_uapi::core::{self as dc, GemClose, GetCap, SetClientCap, VersionHeader};
use drm_uapi::wire::Payload;
use scheme_seam::{Errno, Result};

use super::wire;
use crate::file::DrmFile;
use crate::scheme::Node;

/// Linux's identity for this driver (ABI reference §2.5). Minor 1 tells
/// Mesa that fence fds work.
const NAME: &[u8] = b"virtio_gpu";
const DATE: &[u8] = b"0";
const DESC: &[u8] = b"virtio GPU";

/// VERSION (render, no permission): lengths are set to the real ones and
/// each string is copied up to the length the client gave, as
/// `drm_copy_field` does; Mesa asks twice.
pub fn version(payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut v: VersionHeader = p.header().map_err(wire)?;
    let name = p.skip_array::<u8>(len32(v.name_len)?).map_err(wire)?;
    let date = p.skip_array::<u8>(len32(v.date_len)?).map_err(wire)?;
    let desc = p.skip_array::<u8>(len32(v.desc_len)?).map_err(wire)?;
    p.finish().map_err(wire)?;
    for (index, text, room) in [
        (name, NAME, v.name_len),
        (date, DATE, v.date_len),
        (desc, DESC, v.desc_len),
    ] {
        let n = text.len().min(room as usize);
        p.set_array(index, &text[..n]).map_err(wire)?;
    }
    v.version_major = 0;
    v.version_minor = 1;
    v.version_patchlevel = 0;
    v.name_len = NAME.len() as u64;
    v.date_len = DATE.len() as u64;
    v.desc_len = DESC.len() as u64;
    p.set_header(&v).map_err(wire)?;
    Ok(0)
}

fn len32(len: u64) -> Result<u32> {
    u32::try_from(len).map_err(|_| Errno::EINVAL)
}

/// GET_CAP (render): what this DRM device supports. Unknown caps are
/// EINVAL, as Linux.
pub fn get_cap(payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut c: GetCap = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    c.value = match c.capability {
        // No dumb buffers or KMS yet: say so rather than fail later.
        dc::DRM_CAP_DUMB_BUFFER => 0,
        dc::DRM_CAP_PRIME => dc::DRM_PRIME_CAP_IMPORT | dc::DRM_PRIME_CAP_EXPORT,
        dc::DRM_CAP_SYNCOBJ | dc::DRM_CAP_SYNCOBJ_TIMELINE | dc::DRM_CAP_TIMESTAMP_MONOTONIC => 1,
        _ => return Err(Errno::EINVAL),
    };
    p.set_header(&c).map_err(wire)?;
    Ok(0)
}

/// SET_CLIENT_CAP (primary node only: Linux does not allow it on render
/// nodes): accepted for the caps Linux knows, with values 0 or 1; none
/// changes what this driver does yet.
pub fn set_client_cap(file: &DrmFile, payload: &mut [u8]) -> Result<usize> {
    if file.node == Node::Render {
        return Err(Errno::EACCES);
    }
    let mut p = Payload::new(payload);
    let c: SetClientCap = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    if !(1..=6).contains(&c.capability) || c.value > 1 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

/// GEM_CLOSE (render): the handle goes (see [`DrmFile::close_handle`]).
pub fn gem_close(file: &mut DrmFile, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let c: GemClose = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    if c.pad != 0 {
        return Err(Errno::EINVAL);
    }
    file.close_handle(c.handle)?;
    Ok(0)
}
