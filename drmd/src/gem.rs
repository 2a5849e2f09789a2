//! GEM objects: a device resource with its backing, named by handles in
//! one or more DRM files and by the dma-bufs it was exported as.
//!
//! Each file that names an object holds the resource in virtio-gpud
//! through its own session; an exported object is also held by drmd's
//! control session for as long as the object exists anywhere in drmd, so
//! a dma-buf keeps its buffer alive after every file has closed it — as a
//! Linux dma-buf holds its GEM object.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use scheme_seam::ShmRegion;
use serde::{Deserialize, Serialize};

use crate::backend::DeviceSession;
use crate::recovery::record::ObjectState;

/// How an object's pixels reach the host when it is scanned out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Upload {
    /// A 2D resource whose guest backing is the image: damage is
    /// transferred before it is flushed.
    Transfer,
    /// A virgl resource, rendered on the host: flushed only.
    None,
}

/// An object's 2D image: what a framebuffer may be made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per pixel of its backing's lines (Transfer: the host reads
    /// the backing with lines of `width * cpp` bytes).
    pub cpp: u32,
    /// How its pixels reach the host.
    pub upload: Upload,
}

/// A GEM buffer object.
#[derive(Debug)]
pub struct Gem {
    /// The device's resource id.
    pub res: u32,
    /// Its 2D image, if it is one.
    pub image: Option<Image>,
    /// Bytes of backing.
    pub size: u32,
    /// The fake mmap offset (MAP's answer): one per object, the same in
    /// every file that has it, as Linux's vma offsets.
    pub offset: u64,
    /// drmd's mapping of the backing, shared with clients on mmap.
    pub map: Arc<ShmRegion>,
    /// The backing's mmap offset in the session that allocated it.
    pub backing: u64,
    /// The last device fence that used the object (0: none). Shared by
    /// every file that has the object, as a dma-buf's reservation is.
    fence: AtomicU64,
    /// Set on first export.
    export: OnceLock<Export>,
    /// Its GEM_FLINK name, once it has one.
    name: OnceLock<u32>,
    /// Whether its dma-bufs may be mapped writable: fixed by the first
    /// PRIME export (with DRM_RDWR or not), as Linux reuses the dma-buf
    /// file of the first export for every later one.
    dma_buf_writable: OnceLock<bool>,
}

/// An exported object's share with virtio-gpud.
#[derive(Debug)]
struct Export {
    /// virtio-gpud's share token: what an importing file adopts.
    token: u64,
    /// The shared resource.
    res: u32,
    /// drmd's control session, holding the resource for the dma-bufs.
    holder: Arc<dyn DeviceSession>,
}

impl Drop for Export {
    fn drop(&mut self) {
        // The object is gone from drmd: no dma-buf or file names it.
        // Files' holds went with their handles; this is the last of drmd's.
        if let Err(e) = self.holder.release(self.res) {
            log::warn!("releasing exported resource {}: {e}", self.res);
        }
    }
}

impl Gem {
    /// A new object over resource `res`, a 2D `image` or not, whose
    /// backing is `map`, at mmap offset `backing` of its session.
    pub fn new(
        res: u32,
        image: Option<Image>,
        size: u32,
        offset: u64,
        map: Arc<ShmRegion>,
        backing: u64,
    ) -> Gem {
        Gem {
            res,
            image,
            size,
            offset,
            map,
            backing,
            fence: AtomicU64::new(0),
            export: OnceLock::new(),
            name: OnceLock::new(),
            dma_buf_writable: OnceLock::new(),
        }
    }

    /// The last fence that used the object.
    pub fn fence(&self) -> u64 {
        self.fence.load(Ordering::Acquire)
    }

    /// Records a fence that uses the object.
    pub fn set_fence(&self, fence: u64) {
        self.fence.store(fence, Ordering::Release);
    }

    /// Records a PRIME export with DRM_RDWR or not: only the first one
    /// decides whether the object's dma-bufs may be mapped writable.
    pub fn exported_as(&self, rdwr: bool) {
        self.dma_buf_writable.get_or_init(|| rdwr);
    }

    /// Whether the object's dma-bufs may be mapped writable.
    pub fn dma_buf_writable(&self) -> bool {
        self.dma_buf_writable.get().copied().unwrap_or(false)
    }

    /// The object as the recovery journal says it.
    pub fn state(&self) -> ObjectState {
        ObjectState {
            res: self.res,
            image: self.image,
            size: self.size,
            backing: self.backing,
            token: self.export_token(),
            writable: self.dma_buf_writable.get().copied(),
            name: self.name.get().copied(),
        }
    }

    /// An object a dead instance had, as journaled (`offset`: its key),
    /// mapped again as `map`; an exported one is held by `holder` still
    /// (a session kept across the restart).
    pub fn restore(
        offset: u64,
        state: &ObjectState,
        map: Arc<ShmRegion>,
        holder: &Arc<dyn DeviceSession>,
    ) -> Gem {
        let gem = Gem::new(
            state.res,
            state.image,
            state.size,
            offset,
            map,
            state.backing,
        );
        if let Some(token) = state.token {
            let _ = gem.export.set(Export {
                token,
                res: state.res,
                holder: holder.clone(),
            });
        }
        if let Some(w) = state.writable {
            let _ = gem.dma_buf_writable.set(w);
        }
        if let Some(name) = state.name {
            let _ = gem.name.set(name);
        }
        gem
    }

    /// The share token of an exported object.
    pub fn export_token(&self) -> Option<u64> {
        self.export.get().map(|e| e.token)
    }

    /// The share token an importing file adopts the resource with; on first
    /// export, `session` (a holder) shares it and `holder` takes a hold of
    /// drmd's own for the dma-bufs.
    pub fn export(
        &self,
        session: &dyn DeviceSession,
        holder: &Arc<dyn DeviceSession>,
    ) -> io::Result<u64> {
        if let Some(e) = self.export.get() {
            return Ok(e.token);
        }
        let token = session.share(self.res)?;
        holder.adopt(token)?;
        let export = Export {
            token,
            res: self.res,
            holder: holder.clone(),
        };
        Ok(self.export.get_or_init(|| export).token)
    }
}

/// GEM_FLINK's global names: any authenticated file can open an object by
/// its name (GEM_OPEN). A name does not keep its object alive — it goes
/// with the object's last handle or dma-buf, as in Linux — and is never
/// given to another object.
#[derive(Debug, Default)]
pub struct Names {
    objects: HashMap<u32, Weak<Gem>>,
    next: u32,
}

impl Names {
    /// Names whose objects still exist.
    pub fn live(&self) -> usize {
        self.objects
            .values()
            .filter(|g| g.strong_count() > 0)
            .count()
    }

    /// `gem`'s name, made on first use. The object must be exported
    /// already, so that a file opening it can adopt its resource.
    pub fn name(&mut self, gem: &Arc<Gem>) -> u32 {
        *gem.name.get_or_init(|| {
            self.objects.retain(|_, g| g.strong_count() > 0);
            self.next += 1;
            self.objects.insert(self.next, Arc::downgrade(gem));
            self.next
        })
    }

    /// Names and the objects' keys (their mmap offsets), and the last name
    /// given, for the recovery journal.
    pub fn state(&self) -> (std::collections::BTreeMap<u32, u64>, u32) {
        let live = self
            .objects
            .iter()
            .filter_map(|(&n, g)| Some((n, g.upgrade()?.offset)))
            .collect();
        (live, self.next)
    }

    /// The names a dead instance had given, over the objects restored.
    pub fn restore(names: impl IntoIterator<Item = (u32, Weak<Gem>)>, last: u32) -> Names {
        Names {
            objects: names.into_iter().collect(),
            next: last,
        }
    }

    /// The live object named `name`.
    pub fn get(&self, name: u32) -> Option<Arc<Gem>> {
        self.objects.get(&name)?.upgrade()
    }
}

/// Hands out mmap offsets: page-aligned, never reused, so an offset names
/// one object for the daemon's life.
#[derive(Debug)]
pub struct Offsets {
    next: u64,
}

impl Default for Offsets {
    fn default() -> Self {
        // Like Linux's DRM_FILE_PAGE_OFFSET_START: clear of 0, which some
        // clients treat as "no offset".
        Offsets { next: 1 << 32 }
    }
}

impl Offsets {
    /// Offsets from `next` on (a restarted instance goes on from where the
    /// dead one was).
    pub fn from(next: u64) -> Offsets {
        Offsets { next }
    }

    /// The next offset to give.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// An offset for an object of `size` bytes.
    pub fn take(&mut self, size: u32) -> u64 {
        let offset = self.next;
        self.next += u64::from(size).next_multiple_of(4096);
        offset
    }
}
