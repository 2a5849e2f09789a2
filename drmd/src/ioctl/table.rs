//! The one table of DRM ioctls: which numbers exist, who may call them
//! (Linux's `drm_ioctls[]` in drm_ioctl.c and `virtio_gpu_ioctls[]` in
//! virtgpu_ioctl.c, Linux 6.12, where the legacy entries are gone) and the
//! handler that serves each; and the check `drm_ioctl` makes before any
//! handler runs:
//!
//! 1. a number with no entry is EINVAL, for every caller;
//! 2. `drm_ioctl_permit`: a ROOT_ONLY entry needs root, an AUTH entry an
//!    authenticated primary file, a MASTER entry the current master, and a
//!    render file may call only RENDER_ALLOW entries — each failure EACCES.
//!
//! The KMS entries not served (leases other than LIST_LESSEES) answer EOPNOTSUPP, as Linux does for what a driver does
//! not implement.

use scheme_seam::{Answer, Errno, Result};

use super::{atomic, core, kms, prime, syncobj, virtgpu, Call};

/// Who may call an ioctl (`DRM_AUTH`, `DRM_MASTER`, `DRM_ROOT_ONLY`,
/// `DRM_RENDER_ALLOW`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// A primary file must be authenticated.
    pub auth: bool,
    /// The file must be the current master.
    pub master: bool,
    /// The caller must be root.
    pub root_only: bool,
    /// Render files may call it.
    pub render: bool,
}

const fn access(auth: bool, master: bool, root_only: bool, render: bool) -> Access {
    Access {
        auth,
        master,
        root_only,
        render,
    }
}

/// Anyone on the primary node.
const ANY: Access = access(false, false, false, false);
/// Render nodes too.
const RENDER: Access = access(false, false, false, true);
const MASTER: Access = access(false, true, false, false);
const AUTH: Access = access(true, false, false, false);
const AUTH_MASTER_ROOT: Access = access(true, true, true, false);

/// An ioctl's handler: it decodes `call.payload`, acts, and answers.
pub type Handler = fn(&mut Call<'_>) -> Result<Answer>;

/// What an entry does here.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Served by this handler.
    Served(Handler),
    /// `drm_noop`: 0 once permitted.
    Noop,
    /// `drm_invalid_op`: EINVAL once permitted.
    Invalid,
    /// A KMS ioctl not served yet: this errno.
    NoModeset(Errno),
}

/// One entry of the table.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// Linux's name, without `DRM_IOCTL_`.
    pub name: &'static str,
    /// Who may call it.
    pub access: Access,
    /// What it does here.
    pub kind: Kind,
}

fn served(name: &'static str, access: Access, handler: Handler) -> Entry {
    Entry {
        name,
        access,
        kind: Kind::Served(handler),
    }
}

/// A handler's answer that never waits.
fn ready(r: Result<usize>) -> Result<Answer> {
    r.map(Answer::Ready)
}

/// A SYNCOBJ ioctl: syncd serves it.
fn syncobj(name: &'static str) -> Entry {
    served(name, RENDER, |c| {
        syncobj::forward(c.file, c.nr, c.payload, c.expired)
    })
}

/// An ioctl that returns an fd: it arrives as a `dup` (see the scheme).
fn returns_fd(name: &'static str) -> Entry {
    served(name, RENDER, |_| Err(Errno::EOPNOTSUPP))
}

const fn kms(name: &'static str, access: Access) -> Entry {
    Entry {
        name,
        access,
        kind: Kind::NoModeset(Errno::EOPNOTSUPP),
    }
}

/// The entry for ioctl number `nr`, if Linux has one.
pub fn entry(nr: u64) -> Option<Entry> {
    let noop = |name, access| Entry {
        name,
        access,
        kind: Kind::Noop,
    };
    Some(match nr {
        0x00 => served("VERSION", RENDER, |c| ready(core::version(c.payload))),
        0x01 => served("GET_UNIQUE", ANY, |c| {
            ready(core::get_unique(c.masters.unique(c.id), c.payload))
        }),
        0x02 => served("GET_MAGIC", ANY, |c| {
            ready(core::get_magic(c.masters, c.id, c.payload))
        }),
        0x05 => served("GET_CLIENT", ANY, |c| {
            let authenticated = c.masters.authenticated(c.id);
            ready(core::get_client(authenticated, c.pid, c.payload))
        }),
        0x06 => served("GET_STATS", ANY, |c| ready(core::get_stats(c.payload))),
        0x07 => served("SET_VERSION", MASTER, |c| {
            ready(core::set_version(c.masters, c.id, c.payload))
        }),
        0x09 => served("GEM_CLOSE", RENDER, |c| core::gem_close(c.file, c.payload)),
        0x0a => served("GEM_FLINK", AUTH, |c| {
            ready(core::gem_flink(c.device, c.names, c.file, c.payload))
        }),
        0x0b => served("GEM_OPEN", AUTH, |c| {
            core::gem_open(c.device, c.names, c.file, c.payload)
        }),
        0x0c => served("GET_CAP", RENDER, |c| ready(core::get_cap(c.payload))),
        0x0d => served("SET_CLIENT_CAP", ANY, |c| {
            ready(core::set_client_cap(c.file, c.payload))
        }),
        0x10 => Entry {
            name: "SET_UNIQUE",
            access: AUTH_MASTER_ROOT,
            kind: Kind::Invalid,
        },
        0x11 => served("AUTH_MAGIC", MASTER, |c| {
            ready(core::auth_magic(c.masters, c.id, c.payload))
        }),
        0x12 => noop("BLOCK", AUTH_MASTER_ROOT),
        0x13 => noop("UNBLOCK", AUTH_MASTER_ROOT),
        0x1e => served("SET_MASTER", ANY, |c| {
            core::no_payload(c.payload)?;
            c.masters.set_master(c.id, c.pid).map(|()| Answer::Ready(0))
        }),
        0x1f => served("DROP_MASTER", ANY, |c| {
            core::no_payload(c.payload)?;
            c.masters
                .drop_master(c.id, c.pid)
                .map(|()| Answer::Ready(0))
        }),
        0x27 => noop("ADD_DRAW", AUTH_MASTER_ROOT),
        0x28 => noop("RM_DRAW", AUTH_MASTER_ROOT),
        0x2c => noop("FINISH", AUTH),
        0x2d => returns_fd("PRIME_HANDLE_TO_FD"),
        0x2e => served("PRIME_FD_TO_HANDLE", RENDER, |c| {
            prime::import(c.device, c.file, c.payload, c.dma_buf)
        }),
        0x3a => served("WAIT_VBLANK", ANY, |c| {
            kms::wait_vblank(c.kms, c.file, c.id, c.expired, c.payload)
        }),
        0x3b => served("CRTC_GET_SEQUENCE", ANY, |c| {
            ready(kms::crtc_get_sequence(c.kms, c.payload))
        }),
        0x3c => served("CRTC_QUEUE_SEQUENCE", ANY, |c| {
            ready(kms::crtc_queue_sequence(c.kms, c.file, c.id, c.payload))
        }),
        0x3f => noop("UPDATE_DRAW", AUTH_MASTER_ROOT),
        0x41 => served("VIRTGPU_MAP", RENDER, |c| {
            ready(virtgpu::map(c.file, c.payload))
        }),
        0x42 => served("VIRTGPU_EXECBUFFER", RENDER, |c| {
            virtgpu::execbuffer(c.device, c.file, c.payload, c.stage)
        }),
        0x43 => served("VIRTGPU_GETPARAM", RENDER, |c| {
            ready(virtgpu::getparam(c.device, c.payload))
        }),
        0x44 => served("VIRTGPU_RESOURCE_CREATE", RENDER, |c| {
            virtgpu::resource_create(c.device, c.file, c.payload)
        }),
        0x45 => served("VIRTGPU_RESOURCE_INFO", RENDER, |c| {
            ready(virtgpu::resource_info(c.file, c.payload))
        }),
        0x46 => served("VIRTGPU_TRANSFER_FROM_HOST", RENDER, |c| {
            virtgpu::transfer(c.device, c.file, false, c.payload)
        }),
        0x47 => served("VIRTGPU_TRANSFER_TO_HOST", RENDER, |c| {
            virtgpu::transfer(c.device, c.file, true, c.payload)
        }),
        0x48 => served("VIRTGPU_WAIT", RENDER, |c| {
            virtgpu::wait(c.device, c.file, c.payload, c.expired)
        }),
        0x49 => served("VIRTGPU_GET_CAPS", RENDER, |c| {
            ready(virtgpu::get_caps(c.device, c.payload))
        }),
        // Blob resources are not built: what Linux answers without the
        // RESOURCE_BLOB feature, which GETPARAM reports accordingly.
        0x4a => served("VIRTGPU_RESOURCE_CREATE_BLOB", RENDER, |_| {
            Err(Errno::EINVAL)
        }),
        0x4b => served("VIRTGPU_CONTEXT_INIT", RENDER, |c| {
            ready(virtgpu::context_init(c.device, c.file, c.payload))
        }),
        0xa0 => served("MODE_GETRESOURCES", ANY, |c| {
            ready(kms::get_resources(c.kms, c.id, c.payload))
        }),
        0xa1 => served("MODE_GETCRTC", ANY, |c| {
            ready(kms::get_crtc(c.kms, c.payload))
        }),
        0xa2 => served("MODE_SETCRTC", MASTER, |c| {
            kms::set_crtc(c.device, c.kms, c.payload)
        }),
        0xa3 => served("MODE_CURSOR", MASTER, |c| {
            kms::cursor(c.device, c.kms, c.file, false, c.payload)
        }),
        0xa4 => served("MODE_GETGAMMA", ANY, |c| {
            ready(kms::gamma(c.kms, c.payload))
        }),
        0xa5 => served("MODE_SETGAMMA", MASTER, |c| {
            ready(kms::gamma(c.kms, c.payload))
        }),
        0xa6 => served("MODE_GETENCODER", ANY, |c| {
            ready(kms::get_encoder(c.kms, c.payload))
        }),
        0xa7 => served("MODE_GETCONNECTOR", ANY, |c| {
            ready(kms::get_connector(c.kms, c.file, c.payload))
        }),
        0xa8 => noop("MODE_ATTACHMODE", MASTER),
        0xa9 => noop("MODE_DETACHMODE", MASTER),
        0xaa => served("MODE_GETPROPERTY", ANY, |c| {
            ready(kms::get_property(c.payload))
        }),
        0xab => served("MODE_SETPROPERTY", MASTER, |c| {
            kms::set_property(c.device, c.kms, c.payload)
        }),
        0xac => served("MODE_GETPROPBLOB", ANY, |c| {
            ready(kms::get_prop_blob(c.kms, c.payload))
        }),
        0xad => served("MODE_GETFB", ANY, |c| {
            let privileged = c.file.root || c.masters.is_master(c.id);
            kms::getfb(c.device, c.kms, c.file, privileged, c.payload)
        }),
        0xae => served("MODE_ADDFB", ANY, |c| {
            ready(kms::addfb(c.device, c.kms, c.file, c.id, c.payload))
        }),
        0xaf => served("MODE_RMFB", ANY, |c| {
            kms::rmfb(c.device, c.kms, c.id, false, c.payload)
        }),
        0xb0 => served("MODE_PAGE_FLIP", MASTER, |c| {
            kms::page_flip(c.device, c.kms, c.file, c.id, c.payload)
        }),
        0xb1 => served("MODE_DIRTYFB", MASTER, |c| {
            kms::dirtyfb(c.device, c.kms, c.payload)
        }),
        // drm_dumb_buffers.c: no dumb_create is ENOSYS, modeset or not.
        0xb2 => served("MODE_CREATE_DUMB", ANY, |c| {
            kms::create_dumb(c.device, c.file, c.payload)
        }),
        0xb3 => served("MODE_MAP_DUMB", ANY, |c| {
            ready(kms::map_dumb(c.file, c.payload))
        }),
        0xb4 => served("MODE_DESTROY_DUMB", ANY, |c| {
            kms::destroy_dumb(c.file, c.payload)
        }),
        0xb5 => served("MODE_GETPLANERESOURCES", ANY, |c| {
            ready(kms::get_plane_resources(c.kms, c.file, c.payload))
        }),
        0xb6 => served("MODE_GETPLANE", ANY, |c| {
            ready(kms::get_plane(c.kms, c.payload))
        }),
        0xb7 => served("MODE_SETPLANE", MASTER, |c| {
            kms::set_plane(c.device, c.kms, c.payload)
        }),
        0xb8 => served("MODE_ADDFB2", ANY, |c| {
            ready(kms::addfb2(c.device, c.kms, c.file, c.id, c.payload))
        }),
        0xb9 => served("MODE_OBJ_GETPROPERTIES", ANY, |c| {
            ready(kms::obj_get_properties(c.kms, c.file, c.payload))
        }),
        0xba => served("MODE_OBJ_SETPROPERTY", MASTER, |c| {
            kms::obj_set_property(c.device, c.kms, c.payload)
        }),
        0xbb => served("MODE_CURSOR2", MASTER, |c| {
            kms::cursor(c.device, c.kms, c.file, true, c.payload)
        }),
        0xbc => served("MODE_ATOMIC", MASTER, |c| {
            atomic::atomic(c.device, c.kms, c.file, c.id, c.payload)
        }),
        0xbd => served("MODE_CREATEPROPBLOB", ANY, |c| {
            ready(kms::create_prop_blob(c.kms, c.id, c.payload))
        }),
        0xbe => served("MODE_DESTROYPROPBLOB", ANY, |c| {
            ready(kms::destroy_prop_blob(c.kms, c.id, c.payload))
        }),
        0xbf => syncobj("SYNCOBJ_CREATE"),
        0xc0 => syncobj("SYNCOBJ_DESTROY"),
        0xc1 => returns_fd("SYNCOBJ_HANDLE_TO_FD"),
        0xc2 => syncobj("SYNCOBJ_FD_TO_HANDLE"),
        0xc3 => syncobj("SYNCOBJ_WAIT"),
        0xc4 => syncobj("SYNCOBJ_RESET"),
        0xc5 => syncobj("SYNCOBJ_SIGNAL"),
        0xc6 => kms("MODE_CREATE_LEASE", MASTER),
        0xc7 => served("MODE_LIST_LESSEES", MASTER, |c| {
            ready(kms::list_lessees(c.payload))
        }),
        0xc8 => kms("MODE_GET_LEASE", MASTER),
        0xc9 => kms("MODE_REVOKE_LEASE", MASTER),
        0xca => syncobj("SYNCOBJ_TIMELINE_WAIT"),
        0xcb => syncobj("SYNCOBJ_QUERY"),
        0xcc => syncobj("SYNCOBJ_TRANSFER"),
        0xcd => syncobj("SYNCOBJ_TIMELINE_SIGNAL"),
        0xce => served("MODE_GETFB2", ANY, |c| {
            let privileged = c.file.root || c.masters.is_master(c.id);
            kms::getfb2(c.device, c.kms, c.file, privileged, c.payload)
        }),
        0xcf => syncobj("SYNCOBJ_EVENTFD"),
        0xd0 => served("MODE_CLOSEFB", ANY, |c| {
            kms::rmfb(c.device, c.kms, c.id, true, c.payload)
        }),
        _ => return None,
    })
}

/// Who is calling, for [`permit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The file is a render node's.
    pub render: bool,
    /// The file is authenticated (root at open, master, or AUTH_MAGIC).
    pub authenticated: bool,
    /// The file is the current master.
    pub master: bool,
    /// The caller is root now.
    pub root: bool,
}

/// `drm_ioctl_permit`: whether `caller` may call an ioctl of `access`.
pub fn permit(access: Access, caller: Caller) -> Result<()> {
    let denied = (access.root_only && !caller.root)
        || (access.auth && !caller.render && !caller.authenticated)
        || (access.master && !caller.master)
        || (!access.render && caller.render);
    if denied {
        Err(Errno::EACCES)
    } else {
        Ok(())
    }
}

/// The table's answer to `nr` before a handler runs: `Ok(entry)` for one
/// the caller may call, else the errno (EINVAL for no such ioctl, EACCES
/// for one the caller may not call).
pub fn check(nr: u64, caller: Caller) -> Result<Entry> {
    let entry = entry(nr).ok_or(Errno::EINVAL)?;
    permit(entry.access, caller)?;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDER_FILE: Caller = Caller {
        render: true,
        authenticated: false,
        master: false,
        root: false,
    };
    const PLAIN_PRIMARY: Caller = Caller {
        render: false,
        ..RENDER_FILE
    };

    #[test]
    fn the_uapi_numbers_name_their_entries() {
        use drm_uapi::{core as dc, syncobj as so, virtgpu as vg};
        for (nr, name) in [
            (dc::VERSION, "VERSION"),
            (dc::GET_CAP, "GET_CAP"),
            (dc::GEM_CLOSE, "GEM_CLOSE"),
            (dc::PRIME_HANDLE_TO_FD, "PRIME_HANDLE_TO_FD"),
            (dc::PRIME_FD_TO_HANDLE, "PRIME_FD_TO_HANDLE"),
            (vg::MAP, "VIRTGPU_MAP"),
            (vg::EXECBUFFER, "VIRTGPU_EXECBUFFER"),
            (vg::GETPARAM, "VIRTGPU_GETPARAM"),
            (vg::RESOURCE_CREATE, "VIRTGPU_RESOURCE_CREATE"),
            (vg::TRANSFER_FROM_HOST, "VIRTGPU_TRANSFER_FROM_HOST"),
            (vg::TRANSFER_TO_HOST, "VIRTGPU_TRANSFER_TO_HOST"),
            (vg::WAIT, "VIRTGPU_WAIT"),
            (vg::CONTEXT_INIT, "VIRTGPU_CONTEXT_INIT"),
            (so::CREATE, "SYNCOBJ_CREATE"),
            (so::HANDLE_TO_FD, "SYNCOBJ_HANDLE_TO_FD"),
            (so::WAIT, "SYNCOBJ_WAIT"),
            (so::TIMELINE_WAIT, "SYNCOBJ_TIMELINE_WAIT"),
            (so::EVENTFD, "SYNCOBJ_EVENTFD"),
        ] {
            assert_eq!(entry(nr).map(|e| e.name), Some(name), "{nr:#x}");
        }
    }

    #[test]
    fn holes_are_einval_for_everyone_before_any_permission() {
        for nr in [0x03, 0x0e, 0x14, 0x2f, 0x40, 0x4c, 0x9f, 0xd1, 0xff] {
            assert_eq!(check(nr, RENDER_FILE).err(), Some(Errno::EINVAL), "{nr:#x}");
        }
    }

    #[test]
    fn render_files_reach_only_render_allowed_ioctls() {
        for nr in [0x00, 0x09, 0x0c, 0x2d, 0x2e, 0x41, 0x4b, 0xbf, 0xcd, 0xcf] {
            assert!(check(nr, RENDER_FILE).is_ok(), "{nr:#x}");
        }
        // KMS, master and auth ioctls, SET_CLIENT_CAP, dumb buffers.
        for nr in [0x02, 0x0d, 0x1e, 0x1f, 0xa0, 0xa2, 0xb2, 0xbc, 0xce, 0xd0] {
            assert_eq!(check(nr, RENDER_FILE).err(), Some(Errno::EACCES), "{nr:#x}");
        }
    }

    #[test]
    fn master_auth_and_root_entries_need_them() {
        assert_eq!(check(0xa2, PLAIN_PRIMARY).err(), Some(Errno::EACCES));
        assert_eq!(check(0x0a, PLAIN_PRIMARY).err(), Some(Errno::EACCES));
        let master = Caller {
            master: true,
            authenticated: true,
            ..PLAIN_PRIMARY
        };
        assert!(check(0xa2, master).is_ok());
        assert!(check(0x0a, master).is_ok());
        // BLOCK needs root as well as the master.
        assert_eq!(check(0x12, master).err(), Some(Errno::EACCES));
        let root = Caller {
            root: true,
            ..master
        };
        assert!(matches!(check(0x12, root).map(|e| e.kind), Ok(Kind::Noop)));
        assert!(matches!(
            check(0x10, root).map(|e| e.kind),
            Ok(Kind::Invalid)
        ));
    }
}
