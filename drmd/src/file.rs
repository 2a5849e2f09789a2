//! A DRM file: what one `open` of a node owns. Handles mean nothing in
//! another file; closing the file (or its process dying) releases its
//! objects on the device, because its virtio-gpud session closes with it.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use scheme_seam::{Errno, ShmRegion};
use syncd::client::SyncobjTable;
use virtio_gpu_proto::{CtrlHdr, CtxCreate, CtxId, ResponseType};
use virtio_gpud::client::Session;
use zerocopy::{FromBytes, IntoBytes};

use crate::scheme::Node;

/// A GEM buffer object: a device resource with its backing.
#[derive(Debug)]
pub struct Bo {
    /// The device's resource id.
    pub res: u32,
    /// Bytes of backing.
    pub size: u32,
    /// Device address of the backing (in the session's memory).
    pub addr: u64,
    /// The mmap offset (the backing's offset in the session's memory).
    pub offset: u64,
    /// drmd's mapping of the backing, shared with the client on mmap.
    pub map: Arc<ShmRegion>,
    /// The last device fence that used the object (0: none).
    pub fence: u64,
}

/// Per-open-file state.
#[derive(Debug)]
pub struct DrmFile {
    /// The node it was opened through.
    pub node: Node,
    /// Its session with virtio-gpud: its resources, context and memory.
    pub session: Session,
    /// GEM handles.
    pub bos: HashMap<u32, Bo>,
    next_handle: u32,
    /// The device context, created on first use as Linux does.
    ctx: Option<CtxId>,
    /// Its syncobj table in syncd, opened on first use.
    syncobjs: Option<SyncobjTable>,
}

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

impl DrmFile {
    /// A new file on `node`, with a session of its own.
    pub fn open(node: Node) -> io::Result<DrmFile> {
        Ok(DrmFile {
            node,
            session: Session::open()?,
            bos: HashMap::new(),
            next_handle: 0,
            ctx: None,
            syncobjs: None,
        })
    }

    /// The file's context, created now if it does not exist yet.
    pub fn context(&mut self) -> Result<CtxId, Errno> {
        if let Some(ctx) = self.ctx {
            return Ok(ctx);
        }
        let placeholder = CtxId::new(1).expect("non-zero");
        let request = CtxCreate::new(placeholder, 0, "drmd client");
        let (reply, answer) = self
            .session
            .call(request.as_bytes(), 0, 24)
            .map_err(io_errno)?;
        answer_errno(&answer)?;
        let ctx = CtxId::new(reply.created as u32).ok_or(Errno::EIO)?;
        self.ctx = Some(ctx);
        Ok(ctx)
    }

    /// Whether the context exists (CONTEXT_INIT answers EEXIST then).
    pub fn has_context(&self) -> bool {
        self.ctx.is_some()
    }

    /// A new GEM handle for `bo`.
    pub fn insert(&mut self, bo: Bo) -> Result<u32, Errno> {
        self.next_handle = self.next_handle.checked_add(1).ok_or(Errno::ENOSPC)?;
        self.bos.insert(self.next_handle, bo);
        Ok(self.next_handle)
    }

    /// The object behind GEM handle `handle` (ENOENT, as Linux).
    pub fn bo(&mut self, handle: u32) -> Result<&mut Bo, Errno> {
        self.bos.get_mut(&handle).ok_or(Errno::ENOENT)
    }

    /// The file's syncobj table in syncd.
    pub fn syncobjs(&mut self) -> Result<&SyncobjTable, Errno> {
        if self.syncobjs.is_none() {
            self.syncobjs = Some(SyncobjTable::open().map_err(io_errno)?);
        }
        Ok(self.syncobjs.as_ref().expect("just set"))
    }
}
