//! Core DRM ioctls (drm_ioctl.c, drm_auth.c, drm_gem.c): VERSION, the
//! client and master ioctls, GET_CAP, SET_CLIENT_CAP, GEM_CLOSE, GEM_FLINK
//! and GEM_OPEN (PRIME has a module of its own). Who may call each is
//! [`super::table`]'s; these are what they do once permitted.

use std::sync::Arc;

use drm_uapi::core::{
    self as dc, Auth, Client, GemClose, GemFlink, GemOpen, GetCap, SetClientCap, SetVersion, Stats,
    UniqueHeader, VersionHeader,
};
use drm_uapi::wire::Payload;
use scheme_seam::{Answer, Errno, HandleId, Result};
use virtio_gpu_proto::Features;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

use super::{for_room, wire};
use crate::device::Device;
use crate::errno::io_errno;
use crate::file::DrmFile;
use crate::gem::Names;
use crate::master::Masters;

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

/// GET_CAP (render too): Linux virtio_gpu's answers (ABI reference §3.3);
/// an unknown cap is EINVAL.
pub fn get_cap(payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut c: GetCap = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    c.value = match c.capability {
        dc::DRM_CAP_PRIME => dc::DRM_PRIME_CAP_IMPORT | dc::DRM_PRIME_CAP_EXPORT,
        dc::DRM_CAP_SYNCOBJ | dc::DRM_CAP_SYNCOBJ_TIMELINE | dc::DRM_CAP_TIMESTAMP_MONOTONIC => 1,
        dc::DRM_CAP_DUMB_BUFFER
        | dc::DRM_CAP_VBLANK_HIGH_CRTC
        | dc::DRM_CAP_CRTC_IN_VBLANK_EVENT => 1,
        dc::DRM_CAP_CURSOR_WIDTH | dc::DRM_CAP_CURSOR_HEIGHT => u64::from(crate::kms::CURSOR_SIZE),
        dc::DRM_CAP_DUMB_PREFERRED_DEPTH
        | dc::DRM_CAP_DUMB_PREFER_SHADOW
        | dc::DRM_CAP_ASYNC_PAGE_FLIP
        | dc::DRM_CAP_ADDFB2_MODIFIERS
        | dc::DRM_CAP_PAGE_FLIP_TARGET
        | dc::DRM_CAP_ATOMIC_ASYNC_PAGE_FLIP => 0,
        _ => return Err(Errno::EINVAL),
    };
    p.set_header(&c).map_err(wire)?;
    Ok(0)
}

/// SET_CLIENT_CAP (primary node), checked as `drm_setclientcap`: each cap
/// takes 0 or 1 (ATOMIC up to 2, and it turns universal planes and aspect
/// ratios on with it); WRITEBACK_CONNECTORS (none are exposed) and
/// CURSOR_PLANE_HOTSPOT need ATOMIC first (EINVAL); unknown caps EINVAL.
pub fn set_client_cap(file: &mut DrmFile, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let c: SetClientCap = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    let limit = if c.capability == dc::DRM_CLIENT_CAP_ATOMIC {
        2
    } else {
        1
    };
    let needs_atomic = matches!(
        c.capability,
        dc::DRM_CLIENT_CAP_WRITEBACK_CONNECTORS | dc::DRM_CLIENT_CAP_CURSOR_PLANE_HOTSPOT
    );
    if needs_atomic && !file.caps.atomic {
        return Err(Errno::EINVAL);
    }
    if c.value > limit {
        return Err(Errno::EINVAL);
    }
    let on = c.value != 0;
    let caps = &mut file.caps;
    match c.capability {
        dc::DRM_CLIENT_CAP_STEREO_3D => caps.stereo_3d = on,
        dc::DRM_CLIENT_CAP_UNIVERSAL_PLANES => caps.universal_planes = on,
        dc::DRM_CLIENT_CAP_ASPECT_RATIO => caps.aspect_ratio = on,
        dc::DRM_CLIENT_CAP_ATOMIC => {
            caps.atomic = on;
            caps.universal_planes = on;
            caps.aspect_ratio = on;
        }
        dc::DRM_CLIENT_CAP_WRITEBACK_CONNECTORS => caps.writeback = on,
        dc::DRM_CLIENT_CAP_CURSOR_PLANE_HOTSPOT => caps.cursor_hotspot = on,
        drm_uapi::kms::REDOX_CLIENT_CAP_HOTPLUG_EVENTS => caps.redox_hotplug = on,
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}

/// A KMS ioctl without modeset: `errno`, except that LIST_LESSEES and
/// GET_LEASE check their pad first (drm_lease.c).
pub fn no_modeset(nr: u64, errno: Errno, payload: &[u8]) -> Result<usize> {
    const LIST_LESSEES: u64 = 0xc7;
    const GET_LEASE: u64 = 0xc8;
    let pad = payload.get(4..8).is_some_and(|p| p != [0; 4]);
    if matches!(nr, LIST_LESSEES | GET_LEASE) && pad {
        return Err(Errno::EINVAL);
    }
    Err(errno)
}

/// SET_MASTER / DROP_MASTER take no argument.
pub fn no_payload(payload: &[u8]) -> Result<()> {
    if payload.is_empty() {
        Ok(())
    } else {
        Err(Errno::EINVAL)
    }
}

/// GET_UNIQUE: the bus id `unique`, copied only if it fits the room (as
/// drm_getunique), and its length.
pub fn get_unique(unique: &str, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut u: UniqueHeader = p.header().map_err(wire)?;
    let room = p
        .skip_array::<u8>(u32::try_from(u.unique_len).map_err(|_| Errno::ENOMEM)?)
        .map_err(wire)?;
    p.finish().map_err(wire)?;
    if u.unique_len >= unique.len() as u64 {
        p.set_array(room, unique.as_bytes()).map_err(wire)?;
    }
    u.unique_len = unique.len() as u64;
    p.set_header(&u).map_err(wire)?;
    Ok(0)
}

/// GET_MAGIC: the file's magic number.
pub fn get_magic(masters: &mut Masters, file: HandleId, payload: &mut [u8]) -> Result<usize> {
    let mut a = Auth::read_from_bytes(payload).map_err(|_| Errno::EINVAL)?;
    a.magic = masters.magic(file)?;
    a.write_to(payload).map_err(|_| Errno::EINVAL)?;
    Ok(0)
}

/// AUTH_MAGIC (master): authenticates the file holding the number.
pub fn auth_magic(masters: &mut Masters, file: HandleId, payload: &[u8]) -> Result<usize> {
    let a = Auth::read_from_bytes(payload).map_err(|_| Errno::EINVAL)?;
    masters.auth_magic(file, a.magic)?;
    Ok(0)
}

/// GET_CLIENT: only the caller (index 0), with the overflow uid Linux
/// shows instead of the real one.
pub fn get_client(authenticated: bool, pid: u32, payload: &mut [u8]) -> Result<usize> {
    const OVERFLOW_UID: u64 = 65534;
    let mut c = Client::read_from_bytes(payload).map_err(|_| Errno::EINVAL)?;
    if c.idx != 0 {
        return Err(Errno::EINVAL);
    }
    c.auth = i32::from(authenticated);
    c.pid = u64::from(pid);
    c.uid = OVERFLOW_UID;
    c.magic = 0;
    c.iocs = 0;
    c.write_to(payload).map_err(|_| Errno::EINVAL)?;
    Ok(0)
}

/// GET_STATS: no counters, as every driver now.
pub fn get_stats(payload: &mut [u8]) -> Result<usize> {
    Stats::read_from_bytes(payload).map_err(|_| Errno::EINVAL)?;
    Stats::new_zeroed()
        .write_to(payload)
        .map_err(|_| Errno::EINVAL)?;
    Ok(0)
}

/// SET_VERSION (master): interface 1.0–1.4 (1.1 or later sets the bus id
/// GET_UNIQUE answers) and driver 0.0–0.1, -1 meaning any; the versions
/// the driver speaks come back.
pub fn set_version(masters: &mut Masters, file: HandleId, payload: &mut [u8]) -> Result<usize> {
    let mut v = SetVersion::read_from_bytes(payload).map_err(|_| Errno::EINVAL)?;
    if v.di_major != -1 {
        if v.di_major != 1 || !(0..=4).contains(&v.di_minor) {
            return Err(Errno::EINVAL);
        }
        if v.di_minor >= 1 {
            masters.set_busid(file);
        }
    }
    if v.dd_major != -1 && (v.dd_major != 0 || !(0..=1).contains(&v.dd_minor)) {
        return Err(Errno::EINVAL);
    }
    v = SetVersion {
        di_major: 1,
        di_minor: 4,
        dd_major: 0,
        dd_minor: 1,
    };
    v.write_to(payload).map_err(|_| Errno::EINVAL)?;
    Ok(0)
}

/// GEM_FLINK (authenticated): the object's global name, made on first use
/// and kept for the object's life; shared like a PRIME export, so that
/// another file's session can adopt its resource.
pub fn gem_flink(
    device: &Device,
    names: &mut Names,
    file: &DrmFile,
    payload: &mut [u8],
) -> Result<usize> {
    let mut f = GemFlink::read_from_bytes(payload).map_err(|_| Errno::EINVAL)?;
    let gem = file.bo(f.handle)?;
    gem.export(&*file.session, device.export_holder())
        .map_err(io_errno)?;
    f.name = names.name(gem);
    f.write_to(payload).map_err(|_| Errno::EINVAL)?;
    Ok(0)
}

/// GEM_OPEN (authenticated): a new handle to the object a global name
/// names (a new one even if the file has one already, as Linux). Parks
/// while the ring is too full to attach it to the file's context.
pub fn gem_open(
    device: &Device,
    names: &Names,
    file: &mut DrmFile,
    payload: &mut [u8],
) -> Result<Answer> {
    let mut o = GemOpen::read_from_bytes(payload).map_err(|_| Errno::EINVAL)?;
    let gem: Arc<_> = names.get(o.name).ok_or(Errno::ENOENT)?;
    o.size = u64::from(gem.size);
    let Some(handle) = file.open_object(gem, device.features.contains(Features::VIRGL))? else {
        return Ok(for_room());
    };
    o.handle = handle;
    o.write_to(payload).map_err(|_| Errno::EINVAL)?;
    Ok(Answer::Ready(0))
}

/// GEM_CLOSE (render): the handle goes (see [`DrmFile::close_handle`]),
/// once the ring has room to detach it. Stricter than Linux, which ignores
/// the pad.
pub fn gem_close(file: &mut DrmFile, payload: &mut [u8]) -> Result<Answer> {
    let mut p = Payload::new(payload);
    let c: GemClose = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    if c.pad != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(match file.close_handle(c.handle)? {
        Some(()) => Answer::Ready(0),
        None => for_room(),
    })
}
