//! What each open handle of `scheme:drm` is: a DRM file, a dma-buf from a
//! PRIME export, or a reader of `stats`. One table, so that a handle is
//! looked up once and each call answers for the kind it finds.

use std::collections::HashMap;
use std::sync::Arc;

use scheme_seam::{Errno, HandleId, Result};

use crate::file::DrmFile;
use crate::gem::Gem;

/// An open handle.
pub enum Handle {
    /// A DRM file: an open of `card0` or `renderD128`.
    File(Box<DrmFile>),
    /// A dma-buf, holding its object.
    DmaBuf(Arc<Gem>),
    /// A reader of `stats`.
    Stats,
}

/// Every open handle, by id.
#[derive(Default)]
pub struct Handles {
    map: HashMap<HandleId, Handle>,
    next: HandleId,
}

impl Handles {
    /// Adds `handle`; returns its id.
    pub fn insert(&mut self, handle: Handle) -> HandleId {
        self.next += 1;
        self.map.insert(self.next, handle);
        self.next
    }

    /// Adds `handle` under `id`, an id a dead instance gave it (ids go on
    /// from the highest given).
    pub fn restore(&mut self, id: HandleId, handle: Handle) {
        self.next = self.next.max(id);
        self.map.insert(id, handle);
    }

    /// The last id given.
    pub fn last_id(&self) -> HandleId {
        self.next
    }

    /// Ids go on from `last` (the dead instance's mark).
    pub fn continue_from(&mut self, last: HandleId) {
        self.next = self.next.max(last);
    }

    /// Every handle's id.
    pub fn ids(&self) -> Vec<HandleId> {
        self.map.keys().copied().collect()
    }

    /// The handle `id`.
    pub fn get(&self, id: HandleId) -> Option<&Handle> {
        self.map.get(&id)
    }

    /// The DRM file `id`; EBADF if `id` is no file.
    pub fn file(&self, id: HandleId) -> Result<&DrmFile> {
        match self.map.get(&id) {
            Some(Handle::File(file)) => Ok(file),
            _ => Err(Errno::EBADF),
        }
    }

    /// The DRM file `id`, to change; EBADF if `id` is no file.
    pub fn file_mut(&mut self, id: HandleId) -> Result<&mut DrmFile> {
        match self.map.get_mut(&id) {
            Some(Handle::File(file)) => Ok(file),
            _ => Err(Errno::EBADF),
        }
    }

    /// The dma-buf `id`'s object, if `id` is a dma-buf.
    pub fn dma_buf(&self, id: HandleId) -> Option<&Arc<Gem>> {
        match self.map.get(&id) {
            Some(Handle::DmaBuf(gem)) => Some(gem),
            _ => None,
        }
    }

    /// Runs `f` on DRM file `id` with the rest of the table beside it (PRIME
    /// import reads a dma-buf while it changes the file); EBADF if `id` is
    /// no file.
    pub fn with_file<R>(
        &mut self,
        id: HandleId,
        f: impl FnOnce(&mut DrmFile, &Handles) -> R,
    ) -> Result<R> {
        match self.map.remove(&id) {
            Some(Handle::File(mut file)) => {
                let r = f(&mut file, self);
                self.map.insert(id, Handle::File(file));
                Ok(r)
            }
            Some(other) => {
                self.map.insert(id, other);
                Err(Errno::EBADF)
            }
            None => Err(Errno::EBADF),
        }
    }

    /// Every DRM file.
    pub fn files(&self) -> impl Iterator<Item = &DrmFile> {
        self.map.values().filter_map(|h| match h {
            Handle::File(file) => Some(&**file),
            _ => None,
        })
    }

    /// Every DRM file, by its handle, mutably.
    pub fn files_mut(&mut self) -> impl Iterator<Item = (HandleId, &mut DrmFile)> {
        self.map.iter_mut().filter_map(|(&id, h)| match h {
            Handle::File(file) => Some((id, &mut **file)),
            _ => None,
        })
    }

    /// Every dma-buf's object.
    pub fn dma_bufs(&self) -> impl Iterator<Item = &Arc<Gem>> {
        self.map.values().filter_map(|h| match h {
            Handle::DmaBuf(gem) => Some(gem),
            _ => None,
        })
    }

    /// Closes `id`, dropping what it held.
    pub fn remove(&mut self, id: HandleId) -> Option<Handle> {
        self.map.remove(&id)
    }
}
